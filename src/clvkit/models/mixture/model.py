"""Model averaging: a weighted mixture of fitted purchase models, itself a purchase model.

Draw ``j`` of the mixture is a draw of component ``k`` with probability ``w_k``: stacking or
pseudo-BMA weights from PSIS-LOO (:mod:`clvkit.inference.loo`), equal weights, or weights the
user gives. The mixture is a :class:`~clvkit.models.base.PurchaseModel` on the contract
(:class:`~clvkit.models.mixture.spec.MixtureSpec`), so customer value, equity, tiers, the
predictions, the backtest, plots and report take it like any fitted purchase model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd
import xarray as xr

from clvkit.errors import ClvkitError
from clvkit.inference.loo import (
    Loo,
    pseudo_bma_weights,
    psis_loo_blocks,
    stacking_weights,
)
from clvkit.models.base import PurchaseModel
from clvkit.models.contract import PurchaseSpec
from clvkit.models.mixture.spec import SEP, MixtureSpec, check_labels, component_param
from clvkit.models.registry import get, register
from clvkit.rng import check_random_seed, make_rng

__all__ = [
    "WEIGHT_METHODS",
    "MixtureStats",
    "ModelMixture",
    "blocked_loo",
    "largest_remainder",
]

#: Weight rules by name (or give a dict component -> weight).
WEIGHT_METHODS = ("stacking", "pseudo-bma", "equal")
#: Log-likelihood values (draws x distinct customers) held at once by the LOO weights.


def largest_remainder(weights: np.ndarray, total: int) -> np.ndarray:
    """Integer shares of ``total`` proportional to ``weights`` (largest remainder rounding;
    ties to the earlier component).

    Examples
    --------
    >>> largest_remainder(np.array([0.5, 0.3, 0.2]), 7).tolist()
    [4, 2, 1]
    """
    w = np.asarray(weights, dtype=np.float64)
    exact = w / w.sum() * total
    base = np.floor(exact).astype(np.int64)
    rest = total - int(base.sum())
    order = np.argsort(-(exact - base), kind="stable")
    base[order[:rest]] += 1
    return base


@dataclass(frozen=True)
class MixtureStats:
    """The components' training statistics (all fitted on the same customers)."""

    components: dict[str, Any]

    @property
    def n_customers(self) -> int:
        return int(next(iter(self.components.values())).n_customers)

    @property
    def fingerprint(self) -> str:
        return str(next(iter(self.components.values())).fingerprint)

    def __getattr__(self, name: str) -> Any:
        """Other statistics (e.g. ``T``) are the first component's: the same customers."""
        if name == "components" or name.startswith("__"):
            raise AttributeError(name)
        return getattr(next(iter(self.components.values())), name)


def _estimators(components: Any) -> dict[str, PurchaseModel]:
    """Component label -> unfitted estimator, from registry names, a dict of names, estimators
    or ``[name, settings]`` pairs (the form ``get_params`` gives)."""
    if isinstance(components, str) or not isinstance(components, Sequence | Mapping):
        raise ClvkitError(
            f"argument 'components' is {components!r}. Suggestion: a list of registered "
            "purchase model names, e.g. ('bgnbd', 'pnbd'), or a dict name -> estimator."
        )
    items = components.items() if isinstance(components, Mapping) else [(c, c) for c in components]
    out: dict[str, PurchaseModel] = {}
    for label, what in items:
        if isinstance(what, str):
            est = get(what, "purchase")()
        elif isinstance(what, Sequence) and len(what) == 2 and isinstance(what[0], str):
            est = get(what[0], "purchase")(**dict(what[1] or {}))
        elif isinstance(what, PurchaseModel) and not isinstance(what, ModelMixture):
            est = type(what)(**what.get_params())  # a clone: fit leaves the given one alone
        else:
            raise ClvkitError(
                f"argument 'components' gives {label!r} as {what!r}. Suggestion: a registered "
                "purchase model name (e.g. 'bgnbd') or an unfitted purchase estimator."
            )
        out[label] = est
    if not out:
        raise ClvkitError("argument 'components' is empty. Suggestion: give two or more models.")
    check_labels(list(out))
    return out


def _check_weights(weights: Any, labels: list[str]) -> None:
    if isinstance(weights, str):
        if weights not in WEIGHT_METHODS:
            raise ClvkitError(
                f"argument 'weights' is {weights!r}. Suggestion: one of {list(WEIGHT_METHODS)} "
                "or a dict component -> weight."
            )
        return
    if not isinstance(weights, Mapping):
        raise ClvkitError(
            f"argument 'weights' is {weights!r}. Suggestion: one of {list(WEIGHT_METHODS)} or "
            "a dict component -> weight, e.g. {'bgnbd': 0.7, 'pnbd': 0.3}."
        )
    unknown = sorted(set(weights) - set(labels))
    vals = []
    for v in weights.values():
        try:
            vals.append(float(v))
        except (TypeError, ValueError):
            vals.append(np.nan)
    bad = [k for k, v in zip(weights, vals, strict=True) if not (np.isfinite(v) and v >= 0)]
    if unknown or bad or not sum(vals) > 0:
        raise ClvkitError(
            f"argument 'weights' is {dict(weights)!r}: unknown components {unknown}, weights "
            f"that are not finite non-negative numbers {bad}, or all zero. Suggestion: give "
            f"non-negative weights, not all 0, for components of {labels}."
        )


@register
class ModelMixture(PurchaseModel):
    """A weighted mixture of purchase models (model averaging), itself a purchase model.

    ``fit`` fits each component, weighs them (by default Bayesian stacking of their PSIS-LOO
    predictive densities) and draws the mixture's posterior: draw ``j`` is a draw of component
    ``k`` with probability ``w_k`` (component ``k`` gets its share of the draws by largest
    remainder rounding, chosen at random with ``random_seed``). Every prediction, customer
    value and equity of the mixture come from the components' own primitives on their draws.

    Parameters
    ----------
    components : sequence of str or dict
        Registered purchase model names (each fitted with its default settings), or a dict
        name -> registered model name or unfitted estimator, e.g. ``{"bg": BetaGeo(), "bg_tight":
        BetaGeo(priors=...)}``. Default ``("bgnbd", "pnbd", "mbgnbd")``.
    weights : {"stacking", "pseudo-bma", "equal"} or dict
        ``"stacking"`` (Yao et al. 2018) or ``"pseudo-bma"`` (Bayesian-bootstrap pseudo-BMA)
        from each component's PSIS-LOO on the training customers (needs posterior draws: NUTS
        or Laplace fits), ``"equal"``, or a dict name -> weight (normalised; missing names 0).
    n_draws : int, optional
        Draws of the mixture (default: as many as the components have, the largest count
        among those with positive weight).

    Attributes
    ----------
    weights_ : pandas.Series
        Weight per component.
    loo_ : dict[str, Loo] or None
        Each component's PSIS-LOO when the weights came from it.
    components_ : dict[str, PurchaseModel]
        The fitted components. After :func:`clvkit.load` they hold the mixture's draws of
        each component (one chain), not their original posteriors.
    posterior_ : xarray.Dataset
        Dims ``chain=1, draw=S``; variables ``"<component>__<param>"`` (a full draw of every
        component in each draw) and ``"component"`` (the index of the active one); attrs
        ``time_unit``, ``model``, ``method``, ``components`` and ``weights`` (JSON),
        ``data_fingerprint``.
    spec : MixtureSpec
        The mixture's contract (an instance attribute: it depends on the components).

    Examples
    --------
    Stacking BG/NBD with a BG/NBD whose prior holds ``r`` near 1 (a worse fit of CDNOW):

    >>> from clvkit import BetaGeo
    >>> from clvkit.datasets import cdnow_calibration_summary
    >>> rfm = cdnow_calibration_summary()
    >>> bg = BetaGeo().fit(rfm, method="laplace", draws=200, random_seed=0)
    >>> tight = BetaGeo(priors={"r": {"dist": "LogNormal", "mu": 0.0, "sigma": 0.1}})
    >>> tight = tight.fit(rfm, method="laplace", draws=200, random_seed=0)
    >>> mix = ModelMixture.from_models({"bg": bg, "r_near_1": tight}, weights="stacking")
    >>> mix.weights_.round(2).to_dict()
    {'bg': 0.92, 'r_near_1': 0.08}
    >>> dict(mix.posterior_.sizes)
    {'chain': 1, 'draw': 800}
    >>> [float(m.expected_purchases(rfm.loc[[1]], t=39)["mean"].round(3).item())
    ...  for m in (bg, tight, mix)]
    [1.233, 1.265, 1.235]
    """

    spec: ClassVar[MixtureSpec] = MixtureSpec({})  # the template; instances have their own
    composite: ClassVar[bool] = True
    _default_priors: ClassVar[dict[str, dict[str, Any]]] = {}

    def __init__(
        self,
        components: Sequence[str] | Mapping[str, Any] = ("bgnbd", "pnbd", "mbgnbd"),
        weights: str | Mapping[str, float] = "stacking",
        n_draws: int | None = None,
    ) -> None:
        self.components = components
        self.weights = weights
        self.n_draws = n_draws
        self.priors = None
        self._estimators = _estimators(components)
        self.spec = MixtureSpec({k: e.spec for k, e in self._estimators.items()})

    def get_params(self) -> dict[str, Any]:
        """The constructor settings (JSON-serialisable: components as ``[name, settings]``)."""
        return {
            "components": {k: [e.spec.name, e.get_params()] for k, e in self._estimators.items()},
            "weights": self.weights if isinstance(self.weights, str) else dict(self.weights),
            "n_draws": self.n_draws,
        }

    def __repr__(self) -> str:
        return (
            f"ModelMixture(components={list(self._estimators)!r}, weights={self.weights!r}, "
            f"n_draws={self.n_draws!r})"
        )

    # ---- fitting ------------------------------------------------------------------------------
    def fit(
        self,
        rfm: pd.DataFrame,
        *,
        method: str = "nuts",
        random_seed: int | np.random.Generator | None = None,
        **fit_kwargs: Any,
    ) -> Self:
        """Fit every component on ``rfm``, weigh them and draw the mixture's posterior.

        Parameters
        ----------
        rfm : pandas.DataFrame
            Customer table (with ``attrs["time_unit"]``).
        method : str
            Each component's fit method (``"nuts"``, ``"laplace"``; point fits ``"map"``,
            ``"mle"`` only with ``weights="equal"`` or a dict, as LOO needs draws).
        random_seed : int or numpy.random.Generator, optional
            Seed of the component fits, the pseudo-BMA bootstrap and the mixture's draws.
        **fit_kwargs
            Passed to each component's ``fit`` (``chains``, ``draws``, ``tune``, ...).

        Returns
        -------
        self
        """
        random_seed = check_random_seed(random_seed)
        _check_weights(self.weights, list(self._estimators))
        if self.weights in ("stacking", "pseudo-bma") and method in ("map", "mle"):
            raise ClvkitError(
                f"weights={self.weights!r} need each component's posterior draws (PSIS-LOO), "
                f"but method={method!r} gives one point. Suggestion: fit with method='nuts' or "
                "'laplace', or pass weights='equal' or a dict of weights."
            )
        fitted = {}
        for label, est in self._estimators.items():
            fresh = type(est)(**est.get_params())
            fitted[label] = fresh.fit(rfm, method=method, random_seed=random_seed, **fit_kwargs)
        self._combine(fitted, make_rng(random_seed), rfm)
        return self

    @classmethod
    def from_models(
        cls,
        models: Mapping[str, PurchaseModel],
        weights: str | Mapping[str, float] = "stacking",
        n_draws: int | None = None,
        random_seed: int | np.random.Generator | None = 0,
        rfm: pd.DataFrame | None = None,
    ) -> Self:
        """A mixture of already fitted purchase models.

        Parameters
        ----------
        models : dict
            Name -> fitted purchase model; they must share the time unit and be fitted on the
            same customers (``data_fingerprint``).
        weights : {"stacking", "pseudo-bma", "equal"} or dict
            As in the class.
        n_draws : int, optional
            Draws of the mixture (default: the largest draw count among weighted components).
        random_seed : int or numpy.random.Generator, optional
            Seed of the pseudo-BMA bootstrap and of the choice of draws.
        rfm : pandas.DataFrame, optional
            The customer table the models were fitted on, for LOO weights of models whose
            saved statistics do not hold their columns (the built-in ones do).

        Returns
        -------
        ModelMixture
        """
        if not isinstance(models, Mapping) or not models:
            raise ClvkitError(
                f"argument 'models' is {type(models).__name__}. Suggestion: a dict name -> "
                "fitted purchase model, e.g. {'bgnbd': bg, 'pnbd': pnbd}."
            )
        for label, m in models.items():
            if not isinstance(m, PurchaseModel) or isinstance(m, ModelMixture):
                raise ClvkitError(
                    f"argument 'models' gives {label!r} as {type(m).__name__}. Suggestion: "
                    "fitted purchase models (BetaGeo, ...), not spend models or mixtures."
                )
            m._check_fitted()
        mix = cls(components=dict(models), weights=weights, n_draws=n_draws)
        _check_weights(weights, list(models))
        mix._combine(dict(models), make_rng(random_seed), rfm)
        return mix

    def _combine(
        self, models: dict[str, PurchaseModel], rng: np.random.Generator, rfm: pd.DataFrame | None
    ) -> None:
        """Check the fitted components, compute the weights and draw the mixture's posterior."""
        labels = list(models)
        units = {m.time_unit_ for m in models.values()}
        if len(units) > 1:
            raise ClvkitError(
                f"the models are in different time units {sorted(map(str, units))}. "
                "Suggestion: fit every component on the same customer table."
            )
        prints = {k: m.posterior_.attrs.get("data_fingerprint", "") for k, m in models.items()}
        if len({p for p in prints.values() if p}) > 1:
            raise ClvkitError(
                f"the models were fitted on different customers (data fingerprints {prints}). "
                "Suggestion: fit every component on the same customer table."
            )
        draws = {k: m._draws() for k, m in models.items()}
        loo = None
        if isinstance(self.weights, str) and self.weights != "equal":
            loo = self._loo(models, draws, rfm)
            pointwise = np.stack([loo[k].pointwise for k in labels], axis=1)
            counts = loo[labels[0]].counts
            if self.weights == "stacking":
                w = stacking_weights(pointwise, counts)
            else:
                w = pseudo_bma_weights(pointwise, counts, random_seed=rng)
        elif self.weights == "equal":
            w = np.full(len(labels), 1.0 / len(labels))
        else:
            w = np.array([float(self.weights.get(k, 0.0)) for k in labels])
            w = w / w.sum()
        # components in order of weight (largest first, ties as given): the first one's
        # order_keys order the customers, so a mixture with one active component is exactly it
        order = np.argsort(-w, kind="stable")
        labels, w = [labels[i] for i in order], w[order]
        models = {k: models[k] for k in labels}
        sizes = {k: d[1][0] * d[1][1] for k, d in draws.items()}
        S = self.n_draws
        if S is None:
            S = max(sizes[k] for k, wk in zip(labels, w, strict=True) if wk > 0)
        if isinstance(S, bool) or not isinstance(S, int | np.integer) or S < 1:
            raise ClvkitError(f"argument 'n_draws' is {S!r}. Suggestion: a positive integer.")
        S = int(S)
        share = largest_remainder(w, S)
        active = rng.permutation(np.repeat(np.arange(len(labels)), share))
        rows = {}
        for k, label in enumerate(labels):
            Sk = sizes[label]
            here = np.flatnonzero(active == k)
            pick = np.empty(S, dtype=np.int64)
            # the component's share of draws (in their order; without replacement when it has
            # enough), any of its draws where it is not active (a real draw, never used)
            pick[here] = np.sort(rng.choice(Sk, here.size, replace=here.size > Sk))
            rest = np.flatnonzero(active != k)
            pick[rest] = rng.integers(0, Sk, size=rest.size)
            rows[label] = pick
        spec = MixtureSpec({k: m.spec for k, m in models.items()})
        flat = spec.params_from(
            {k: {p: v[rows[k]] for p, v in draws[k][0].items()} for k in labels}, active
        )
        post = _posterior(flat)
        methods = {m.method_ for m in models.values()}
        fingerprint = next((p for p in prints.values() if p), "")
        attrs = {
            "time_unit": units.pop() or "",
            "model": type(self).spec.model_name,
            "method": methods.pop() if len(methods) == 1 else "mixture",
            "components": json.dumps({k: m.spec.name for k, m in models.items()}),
            "weights": json.dumps(dict(zip(labels, map(float, w), strict=True))),
            "data_fingerprint": fingerprint,
            "clvkit_version": models[labels[0]].posterior_.attrs.get("clvkit_version", ""),
            "sampler": "",
            "priors": "",
        }
        if all(m.method_ == "nuts" for m in models.values()):
            attrs["diagnostics"] = json.dumps(_combined_diagnostics(models), default=float)
        post.attrs.update(attrs)
        self.spec = spec
        self.components_ = dict(models)
        self.loo_ = loo
        stats = None
        if all(m.stats_ is not None for m in models.values()):
            stats = MixtureStats({k: m.stats_ for k, m in models.items()})
        groups = {"posterior": post}
        if stats is not None:
            groups["observed_data"] = self._observed_data(stats)
        self._set_fitted(groups, attrs, stats)

    def _loo(
        self,
        models: dict[str, PurchaseModel],
        draws: dict[str, tuple[dict, tuple[int, int]]],
        rfm: pd.DataFrame | None,
    ) -> dict[str, Loo]:
        """PSIS-LOO of each component on the distinct customer rows, with counts."""
        point = [k for k, d in draws.items() if d[1][0] * d[1][1] < 2]
        if point:
            raise ClvkitError(
                f"weights={self.weights!r} need posterior draws (PSIS-LOO), but {point} "
                "are point fits (one draw). Suggestion: fit them with method='nuts' or "
                "'laplace', or pass weights='equal' or a dict of weights."
            )
        specs = {k: m.spec for k, m in models.items()}
        columns = list(MixtureSpec(specs).columns)
        if rfm is not None:
            merged: dict[str, np.ndarray] = {}
            for s in specs.values():
                for c, v in s.customer_columns(rfm).items():
                    merged.setdefault(c, v)
            table = np.stack([merged[c] for c in columns], axis=1)
            rows, counts = np.unique(table, axis=0, return_counts=True)
            counts = counts.astype(np.float64)
            for k, m in models.items():
                fp = m.posterior_.attrs.get("data_fingerprint", "")
                if fp and m._prepare(rfm)[0].fingerprint != fp:
                    raise ClvkitError(
                        f"argument 'rfm' is not the table model {k!r} was fitted on (data "
                        "fingerprint differs). Suggestion: pass the training table."
                    )
        else:
            obs = None
            for m in models.values():
                if m.stats_ is not None:
                    ds = m._observed_data(m.stats_)
                    if all(c in ds for c in [*columns, "weight"]):
                        obs = ds
                        break
            if obs is None:
                raise ClvkitError(
                    f"weights={self.weights!r} need the customers the models were fitted on, "
                    f"and their saved statistics do not hold the columns {columns}. "
                    "Suggestion: pass rfm= (the training table) or give weights."
                )
            rows = np.stack([obs[c].to_numpy().astype(np.float64) for c in columns], axis=1)
            counts = obs["weight"].to_numpy().astype(np.float64)
        cols = {c: np.ascontiguousarray(rows[:, i]) for i, c in enumerate(columns)}
        return {k: blocked_loo(m.spec, *draws[k], cols, counts) for k, m in models.items()}

    # ---- saving and loading -------------------------------------------------------------------
    def _observed_data(self, stats: MixtureStats) -> xr.Dataset:
        parts = []
        for k, st in stats.components.items():
            ds = self.components_[k]._observed_data(st)
            ds = ds.rename({v: component_param(k, str(v)) for v in ds.data_vars})
            ds = ds.rename({d: component_param(k, str(d)) for d in ds.dims})
            parts.append(ds)
        out = xr.merge(parts)
        out.attrs["components"] = json.dumps({k: m.spec.name for k, m in self.components_.items()})
        return out

    @staticmethod
    def _stats_from_observed(ds: xr.Dataset) -> MixtureStats:
        names = json.loads(ds.attrs["components"])
        out = {}
        for label, name in names.items():
            prefix = f"{label}{SEP}"
            sub = ds[[v for v in ds.data_vars if str(v).startswith(prefix)]]
            sub = sub.rename({v: str(v)[len(prefix) :] for v in sub.data_vars})
            sub = sub.rename({d: str(d)[len(prefix) :] for d in sub.dims})
            out[label] = get(name)._stats_from_observed(sub)
        return MixtureStats(out)

    @classmethod
    def spec_for(cls, attrs: Mapping[str, Any]) -> MixtureSpec:
        """The mixture's spec from a posterior's ``attrs["components"]`` (name -> model)."""
        raw = attrs.get("components")
        try:
            names = json.loads(raw) if isinstance(raw, str) else dict(raw)
        except (TypeError, ValueError) as exc:
            raise ClvkitError(
                f"a ModelMixture posterior has attrs['components'] = {raw!r}. Suggestion: pass "
                "the fitted mixture itself, or the posterior_ of one."
            ) from exc
        return MixtureSpec({k: get(str(v), "purchase").spec for k, v in names.items()})

    def _set_fitted(
        self, groups: dict[str, xr.Dataset], attrs: dict[str, Any], stats: Any, idata: Any = None
    ) -> None:
        super()._set_fitted(groups, attrs, stats, idata)
        self.weights_ = pd.Series(json.loads(attrs["weights"]), name="weight", dtype=np.float64)
        self.weights_.index.name = "component"
        if "components_" not in self.__dict__:  # loaded: components from the mixture's draws
            self.spec = self.spec_for(attrs)
            self.loo_ = None
            self.components_ = self._components_from_draws(groups["posterior"], attrs, stats)

    def _components_from_draws(
        self, post: xr.Dataset, attrs: dict[str, Any], stats: MixtureStats | None
    ) -> dict[str, PurchaseModel]:
        out = {}
        names = json.loads(attrs["components"])
        for label, spec in self.spec.components.items():
            cls = get(names[label], "purchase")
            ds = xr.Dataset({p: post[component_param(label, p)] for p in spec.param_names})
            ds.attrs = {"time_unit": attrs.get("time_unit", "")}
            model = cls.from_posterior(ds)
            if stats is not None:  # the training statistics too (method_ stays "given")
                sub_attrs = {**model.posterior_.attrs, "data_fingerprint": stats.fingerprint}
                model.posterior_.attrs.update(sub_attrs)
                groups = {"posterior": model.posterior_}
                model._set_fitted(groups, sub_attrs, stats.components[label])
            out[label] = model
        return out

    @classmethod
    def from_params(cls, *, time_unit: str | None = None, **params: Any) -> Self:
        """Not available for a mixture: build one with :meth:`from_models` from components
        made by their own ``from_params``."""
        raise ClvkitError(
            "ModelMixture.from_params is not available. Suggestion: build each component with "
            "its own from_params (e.g. BetaGeo.from_params(...)) and mix them with "
            "ModelMixture.from_models({...}, weights={...})."
        )

    @classmethod
    def from_posterior(cls, posterior: Any, time_unit: str | None = None) -> Self:
        """A mixture from a ``ModelMixture`` posterior (its attrs name the components)."""
        if isinstance(posterior, ModelMixture):
            posterior = posterior.posterior_
        attrs = dict(getattr(posterior, "attrs", {}) or {})
        if attrs.get("model") != cls.spec.model_name:
            raise ClvkitError(
                "argument 'posterior' is not a ModelMixture posterior. Suggestion: pass "
                "mixture.posterior_, or build the mixture with ModelMixture.from_models."
            )
        spec = cls.spec_for(attrs)
        from clvkit.models.registry import resolve

        _, post = resolve(_Holder(spec, posterior), "purchase", "posterior")
        names = json.loads(attrs["components"])
        mix = cls(components={k: v for k, v in names.items()}, weights=json.loads(attrs["weights"]))
        new_attrs = {**attrs, "method": "given", "data_fingerprint": ""}
        if time_unit is not None:
            new_attrs["time_unit"] = time_unit
        ds = post[list(spec.param_names)].copy()
        ds.attrs = dict(new_attrs)
        mix._set_fitted({"posterior": ds}, new_attrs, None)
        return mix

    # ---- what differs from a single model ------------------------------------------------------
    @property
    def log_likelihood_(self) -> float:
        """Not defined for a mixture (see ``loo_`` and each of ``components_``)."""
        raise ClvkitError(
            "a ModelMixture has no single log-likelihood at a point. Suggestion: compare the "
            "components (mixture.loo_, mixture.components_[name].log_likelihood_)."
        )

    def diagnostics(self) -> dict[str, Any]:
        """The components' NUTS diagnostics combined (worst R-hat and ESS, all divergences),
        with each component's under ``"components"``; recorded when the mixture was made, so
        a loaded mixture has them too. ``ClvkitError`` unless every component is a NUTS fit."""
        self._check_fitted()
        raw = self._attrs.get("diagnostics")
        if not raw:
            raise ClvkitError(
                f"diagnostics need NUTS fits of every component; this mixture's method is "
                f"{self.method_!r}. Suggestion: fit the components with method='nuts'."
            )
        return json.loads(raw)

    def summary(self, prob: float = 0.9) -> pd.DataFrame:
        """Each component's parameter summary (rows ``"<component>__<param>"``) with its weight."""
        self._check_fitted()
        frames = []
        for k, m in self.components_.items():
            table = m.summary(prob)
            table.index = [component_param(k, str(p)) for p in table.index]
            table.insert(0, "weight", float(self.weights_[k]))
            frames.append(table)
        return pd.concat(frames)


def blocked_loo(
    spec: PurchaseSpec,
    params: dict[str, np.ndarray],
    shape: tuple[int, int],
    cols: dict[str, np.ndarray],
    counts: np.ndarray,
) -> Loo:
    """:func:`clvkit.inference.loo.psis_loo_blocks` of ``spec.loglik`` on the distinct customer
    rows ``cols`` (with ``counts``): bounded memory, equal to one ``psis_loo`` call."""
    return psis_loo_blocks(
        lambda idx: spec.loglik(params, {c: v[idx] for c, v in cols.items()}), counts, shape[0]
    )


def _combined_diagnostics(models: Mapping[str, PurchaseModel]) -> dict[str, Any]:
    """The components' NUTS diagnostics: worst R-hat and ESS, all divergences."""
    per = {k: m.diagnostics() for k, m in models.items()}
    first = next(iter(per.values()))
    return {
        "max_rhat": max(d["max_rhat"] for d in per.values()),
        "min_ess_bulk": min(d["min_ess_bulk"] for d in per.values()),
        "min_ess_tail": min(d["min_ess_tail"] for d in per.values()),
        "divergences": int(sum(d["divergences"] for d in per.values())),
        "chains": first["chains"],
        "draws": first["draws"],
        "ok": all(bool(d["ok"]) for d in per.values()),
        "problems": [f"{k}: {p}" for k, d in per.items() for p in d["problems"]],
        "components": per,
    }


@dataclass(frozen=True)
class _Holder:
    """A spec and a posterior, in the shape :func:`clvkit.models.registry.resolve` takes."""

    spec: PurchaseSpec
    posterior_: Any


def _posterior(flat: dict[str, np.ndarray]) -> xr.Dataset:
    """``(S, k)`` draws as a one-chain posterior (vector parameters get a dim of their own)."""
    data = {}
    for name, v in flat.items():
        if v.shape[1] == 1:
            data[name] = (("chain", "draw"), v[None, :, 0])
        else:
            data[name] = (("chain", "draw", f"{name}_dim"), v[None])
    S = next(iter(flat.values())).shape[0]
    return xr.Dataset(data, coords={"chain": [0], "draw": np.arange(S)})
