"""Estimators with static covariates and hierarchical segments around any base model whose
spec declares ``covariate_links`` and whose estimator gives per-row likelihoods
(``_row_columns`` and ``_rows_loglik_grad``).

The fit runs on rows: customers with one covariate class (design row and segment) and one
history are one weighted row, so categorical covariates and segments keep the likelihood on
compressed statistics, and continuous covariates give one row per customer. Each gradient is
one call of the base's per-row kernel and a chain rule to the coefficients, segment effects and
spreads. NUTS runs on nutpie's ``from_pyfunc`` (:mod:`clvkit.inference.nutpie_pyfunc`).

Segments: the posterior holds each segment's log multiplier ``seg_<p>`` (``u_s ~ Normal(0,
sd_<p>^2)``). The sampler sees each ``u_s`` in the parametrisation that suits the segment's data
(:meth:`_CovariateModel._centring`): centred on the segment's own log-parameter (``c_s = log
theta + sign * u_s``, with the hierarchical prior ``Normal(u_s; 0, sd^2)`` in the log density,
and the base around them: ``log theta = mean(c_s) + sd * beta``) where its data pin it down
whatever the spread; elsewhere partially centred, ``x_s = u_s / sd^(1 - lam_s) + lam_s sign log
theta`` with ``lam_s`` the segment's shrinkage weight (Papaspiliopoulos, Roberts and Skold 2003;
Gorinova, Moore and Hoffman 2020), which is non-centred (``u_s = sd * x_s``) for a segment
whose data say nothing. The posterior is the same. The Laplace approximation chooses the same
way; point fits are non-centred (the centred posterior has no mode at ``sd -> 0``).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from types import SimpleNamespace
from typing import Any, ClassVar, NamedTuple, Self

import numpy as np
import pandas as pd
import xarray as xr

from clvkit.data.covariates import covariate_design
from clvkit.errors import ClvkitError
from clvkit.inference.estimator import ModelBase, prior_logp_grad
from clvkit.inference.layout import Layout
from clvkit.models.base import PurchaseModel, SpendModel
from clvkit.models.covariates.effects import effects
from clvkit.models.covariates.spec import (
    CovariatePurchaseSpec,
    CovariateSpendSpec,
    CovariateTerms,
    segment_codes,
)
from clvkit.models.registry import get, register
from clvkit.models.stats import fingerprint
from clvkit.utils.rows import unique_rows

__all__ = [
    "COEF_PRIOR",
    "SD_PRIOR",
    "CovariatePurchaseModel",
    "CovariateSpendModel",
    "CovariateStats",
    "with_covariates",
]

#: Default prior of each coefficient (per unit of its column; a categorical level: vs the
#: reference): multipliers ``exp(g)`` mostly within 1/7 .. 7.
COEF_PRIOR = {"dist": "Normal", "mu": 0.0, "sigma": 1.0}
#: Default prior of a segment spread (the sd of the segments' log multipliers).
SD_PRIOR = {"dist": "HalfNormal", "sigma": 1.0}
#: Prior of the standardised segment effects ``eta = u / sd`` (the log multipliers ``u ~
#: Normal(0, sd^2)``), and of ``new_<p>`` (an unseen segment's ``u = sd * new``); fixed.
SEG_PRIOR = {"dist": "Normal", "mu": 0.0, "sigma": 1.0}
#: Internal coordinates of a segment effect in a fit: ``u`` itself (as stored), (partially)
#: non-centred ``x = u / sd^(1 - lam) + lam sign log theta`` (``lam = 0``: ``eta = u / sd``), or
#: centred on the segment's own log-parameter ``log theta + sign * u``.
STORED, NONCENTRED, CENTRED = 0, 1, 2
#: :meth:`_CovariateModel._centring`: a segment effect is centred where its data sd is below
#: ``tau / CENTRE_RATIO``, ``tau`` the estimated spread between segments, i.e. where its
#: shrinkage weight ``info tau^2 / (1 + info tau^2)`` exceeds 0.98: well inside the data even
#: when the spread runs 3x below ``tau``. The others are partially centred
#: (:func:`_centre`). At 1.5, regions of 1,500, 1,200, 800 and 80 customers (weights 0.95, 0.94,
#: 0.92, 0.53) were centred but the smallest, and NUTS 4 x (1,000 + 1,000) diverged 62, 65 and
#: 131 times on three simulated bases, where the spread ran small (the centred segments'
#: funnel) or large (the small segment's ridge); partially centred, 20, 8 and 18 times.
CENTRE_RATIO = 7.0
#: NUTS's default target acceptance for segment fits where some segment is not centred (0.8
#: otherwise): the spread of a few segments has a long posterior tail, where a smaller step
#: avoids the last divergences (the bases above: 0, 0 and 0 divergences at 0.9, in 34 s
#: instead of 42). With every segment centred the geometry is clean and 0.8 is kept.
SEGMENT_TARGET_ACCEPT = 0.9


@dataclass(frozen=True)
class CovariateStats:
    """The rows a covariate model is fitted on.

    ``base``: the base model's statistics of all customers (validation, time unit). ``rows``:
    the base likelihood's columns per row; ``row_class`` each row's class and ``weight`` its
    number of customers; ``class_rows`` ``(C, k [+ 1])`` each class's design row (and segment
    code).
    """

    base: Any
    rows: dict[str, np.ndarray]
    row_class: np.ndarray
    weight: np.ndarray
    class_rows: np.ndarray
    n_customers: int
    has_segment: bool = False

    @property
    def fingerprint(self) -> str:
        arrays = [self.rows[k] for k in sorted(self.rows)]
        own = fingerprint(*arrays, self.row_class.astype(np.float64), self.weight,
                          self.class_rows.ravel())  # fmt: skip
        return f"{self.base.fingerprint}:{own}"

    @property
    def n_rows(self) -> int:
        return int(self.weight.size)

    @cached_property
    def design(self) -> np.ndarray:
        """``(C, k)`` C-contiguous: each class's design row (without the segment code)."""
        k = self.class_rows.shape[1] - (1 if self.has_segment else 0)
        return np.ascontiguousarray(self.class_rows[:, :k])

    @cached_property
    def segment(self) -> np.ndarray | None:
        """Each class's segment code ``(C,)`` as int, or None without segments."""
        return self.class_rows[:, -1].astype(np.int64) if self.has_segment else None

    @cached_property
    def class_start(self) -> np.ndarray:
        """The first row of each class (rows are sorted by class; each class has rows)."""
        return np.searchsorted(self.row_class, np.arange(self.class_rows.shape[0]))


def _links(spec: Any, links: Sequence[str] | None) -> dict[str, int]:
    """Linked parameter -> sign, from process or parameter names (``None``: all)."""
    table = dict(getattr(spec, "covariate_links", {}) or {})
    if not table:
        raise ClvkitError(
            f"{spec.label} takes no covariates. Suggestion: use one of the models with "
            "covariate links (BG/NBD, Pareto/NBD, MBG/NBD, Gamma-Gamma, sBG, BG/BB)."
        )
    if links is None:
        return {p: int(s) for p, (_, s) in table.items()}
    if isinstance(links, str):
        links = [links]
    out: dict[str, int] = {}
    processes = {proc for proc, _ in table.values()}
    for item in links:
        hits = [p for p, (proc, _) in table.items() if item in (p, proc)]
        if not hits:
            raise ClvkitError(
                f"argument 'links' names {item!r}, which is neither a process "
                f"({sorted(processes)}) nor a linked parameter ({list(table)}) of "
                f"{spec.label}. Suggestion: e.g. links=['purchase']."
            )
        out.update({p: int(table[p][1]) for p in hits})
    return {p: out[p] for p in table if p in out}  # the spec's order


def _clone(model: Any, kind: str) -> ModelBase:
    """An unfitted base estimator from a registry name, ``[name, settings]`` or an estimator."""
    if isinstance(model, str):
        return get(model, kind)()
    if isinstance(model, Sequence) and len(model) == 2 and isinstance(model[0], str):
        return get(model[0], kind)(**dict(model[1] or {}))
    if isinstance(model, ModelBase) and not getattr(model, "composite", False):
        if model.spec.kind != kind:
            raise ClvkitError(
                f"argument 'model' is a {model.spec.kind} model ({model.spec.label}), not a "
                f"{kind} model. Suggestion: use clvkit.with_covariates(model, ...)."
            )
        return type(model)(**model.get_params())
    raise ClvkitError(
        f"argument 'model' is {model!r}. Suggestion: a registered model name (e.g. 'bgnbd') or "
        "an unfitted estimator such as clvkit.BetaGeo()."
    )


def _exp(x: Any) -> float:
    """``exp`` of a float without raising (``inf`` beyond the range)."""
    with np.errstate(over="ignore"):
        return float(np.exp(float(x)))


def _centre(info: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How NUTS reads the segment effects ``u`` (data curvature ``info``): which to centre,
    and the power ``lam`` of the others' partial centring.

    ``tau^2`` is the DerSimonian-Laird estimate of the spread between segments given the data
    variances ``1 / info``. A segment is centred where its data sd is below ``tau /
    CENTRE_RATIO``. The others get ``lam = info tau^2 / (1 + info tau^2)``, their shrinkage
    weight, the power at which the spread of ``x = u / sd^(1 - lam)`` given the data stops
    changing with ``sd`` at ``sd = tau`` (so it changes least over the spread's posterior). No
    spread beyond the noise: all fully non-centred (``lam = 0``)."""
    flags = np.zeros(u.size, dtype=bool)
    lam = np.zeros(u.size)
    ok = np.isfinite(info) & (info > 0) & np.isfinite(u)
    if ok.sum() < 2:
        return flags, lam
    w, y = info[ok], u[ok]
    with np.errstate(all="ignore"):
        q = float(w @ (y - (w @ y) / w.sum()) ** 2)
        tau2 = (q - (w.size - 1)) / (w.sum() - (w @ w) / w.sum())
    if not (np.isfinite(tau2) and tau2 > 0):
        return flags, lam
    flags[ok] = w * tau2 > CENTRE_RATIO**2
    lam[ok] = np.where(flags[ok], 0.0, w * tau2 / (1.0 + w * tau2))
    return flags, lam


class _SegCoords(NamedTuple):
    """A linked parameter's segment effects at a point (:meth:`_CovariateModel._seg_coords`):
    the internal coordinates ``x``, the spread ``sd``, the base log-parameter, the link's sign,
    each segment's mode and partial-centring power ``lam``, ``scale = sd^(1 - lam)`` (``du /
    dx`` of the non-centred ones) and the log multipliers ``u``."""

    x: np.ndarray
    sd: float
    base: float
    sign: int
    modes: np.ndarray
    lam: np.ndarray
    scale: np.ndarray
    u: np.ndarray


class _CovariateModel:
    """The shared estimator of :class:`CovariatePurchaseModel` and :class:`CovariateSpendModel`."""

    composite: ClassVar[bool] = True
    numpy_nuts: ClassVar[bool] = True
    kind: ClassVar[str]
    _spec_type: ClassVar[type]

    def __init__(
        self,
        model: Any = "bgnbd",
        columns: Sequence[str] | None = None,
        *,
        categorical: Sequence[str] = (),
        reference: Mapping[str, Any] | None = None,
        links: Sequence[str] | str | None = None,
        segment: str | None = None,
        priors: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.model = model
        self.columns = None if columns is None else [str(c) for c in columns]
        self.categorical = [str(c) for c in categorical]
        self.reference = None if reference is None else dict(reference)
        self.links = links
        self.segment = segment
        self.priors = priors
        self._base = _clone(model, self.kind)
        if not self.columns and segment is None:
            raise ClvkitError(
                "a covariate model needs covariate columns or a segment column. Suggestion: "
                "e.g. columns=['channel', 'first_amount'] or segment='region'."
            )
        if segment is not None and self.columns and segment in self.columns:
            raise ClvkitError(
                f"column {segment!r} is both a covariate and the segment column. Suggestion: "
                "use it as one of the two."
            )
        provisional = {"names": list(self.columns or []), "centre": {}, "levels": {}}
        terms = CovariateTerms(
            _links(self._base.spec, links),
            provisional if self.columns else None,
            segment,
            (),
        )
        fixed = sorted(k for k in (priors or {}) if str(k).startswith(("seg_", "new_")))
        if fixed:
            raise ClvkitError(
                f"argument 'priors' names {fixed}: a segment's log multiplier is Normal(0, "
                "sd^2) by construction (its standardised effect Normal(0, 1)). Suggestion: set "
                "the prior of the spread, e.g. priors={'sd_alpha': {'dist': 'HalfNormal', "
                "'sigma': 0.5}}."
            )
        self.spec = self._spec_type(self._base.spec, terms)
        defaults = dict(self._base._default_priors)
        for p in terms.links:
            defaults[f"coef_{p}"] = COEF_PRIOR
            defaults[f"sd_{p}"] = SD_PRIOR
            defaults[f"seg_{p}"] = SEG_PRIOR
            defaults[f"new_{p}"] = SEG_PRIOR
        self._default_priors = {k: v for k, v in defaults.items() if k in self.spec.param_names}

    def get_params(self) -> dict[str, Any]:
        """The constructor settings (JSON-serialisable; the base model as ``[name, settings]``)."""
        ref = None
        if self.reference is not None:
            ref = {
                k: (v.item() if isinstance(v, np.generic) else v) for k, v in self.reference.items()
            }
        return {
            "model": [self._base.spec.name, self._base.get_params()],
            "columns": self.columns,
            "categorical": list(self.categorical),
            "reference": ref,
            "links": None if self.links is None else list(self.spec.terms.links),
            "segment": self.segment,
            "priors": None if self.priors is None else {k: dict(v) for k, v in self.priors.items()},
        }

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model={self._base!r}, columns={self.columns!r}, "
            f"links={list(self.spec.terms.links)!r}, segment={self.segment!r})"
        )

    def fit(self, rfm: pd.DataFrame, *, method: str = "nuts", **kwargs: Any) -> Self:
        """Fit as any model (see :meth:`clvkit.BetaGeo.fit`); ``rfm`` carries the covariate
        and segment columns. ``method="mle"`` is refused with segments: without their prior
        the spread and the segment effects are not identified (use ``"map"`` or ``"nuts"``)."""
        if method == "mle" and self.segment is not None:
            raise ClvkitError(
                "method='mle' cannot fit segments: without the prior on the segment effects "
                "only their product with the spread is identified. Suggestion: "
                "method='map' or method='nuts'."
            )
        # segment effects: non-centred during the fit; NUTS and Laplace choose per segment in _x0
        segmented = self.segment is not None
        self._seg_state = "noncentred" if segmented else None
        self._seg_lam = None
        self._centre_pending = segmented and (
            method == "laplace"
            or (method == "nuts" and kwargs.get("sampler", "nutpie") == "nutpie")
        )
        try:
            return super().fit(rfm, method=method, **kwargs)  # type: ignore[misc]
        finally:
            self._seg_state, self._seg_lam = None, None
            self._centre_pending = False

    # ---- hooks --------------------------------------------------------------------------------
    def _prepare(self, table: pd.DataFrame) -> tuple[CovariateStats, str | None]:
        base = self._base
        base_stats, unit = base._prepare(table)  # the base's validation and errors
        if not hasattr(base, "_rows_loglik_grad"):
            raise ClvkitError(
                f"{base.spec.label} has no per-row likelihood, so it cannot be fitted with "
                "covariates yet. Suggestion: use BG/NBD, Pareto/NBD, MBG/NBD or Gamma-Gamma."
            )
        encoding, z = None, np.zeros((len(table), 0))
        if self.columns:
            missing = [c for c in self.columns if c not in table.columns]
            if missing:
                raise ClvkitError(
                    f"argument 'rfm' lacks the covariate column(s) {missing}. Suggestion: join "
                    "the covariates to the customer table by customer id, e.g. "
                    "rfm.join(covariates)."
                )
            design = covariate_design(
                table, table, columns=self.columns, categorical=self.categorical,
                reference=self.reference,
            )  # fmt: skip
            encoding, z = design.encoding(), design.matrix
        levels: tuple[Any, ...] = ()
        if self.segment is not None:
            if self.segment not in table.columns:
                segment_codes(table, self.segment, (), "rfm")  # raises: names the column
            values = table[self.segment]
            if values.isna().any():
                segment_codes(table, self.segment, (), "rfm")  # raises: names a row
            levels = tuple(pd.unique(values.astype(object)))
            try:
                levels = tuple(sorted(levels))
            except TypeError:
                levels = tuple(sorted(levels, key=str))
            if len(levels) < 2:
                raise ClvkitError(
                    f"segment column {self.segment!r} has one level ({levels[0]!r}) for all "
                    f"{len(table):,} customers. Suggestion: leave segment out."
                )
            codes = segment_codes(table, self.segment, levels, "rfm")
            z = np.column_stack([z, codes])
        terms = CovariateTerms(self.spec.terms.links, encoding, self.segment, levels)
        self.spec = self._spec_type(self._base.spec, terms)
        cols, mask = base._row_columns(table)
        names = sorted(cols)
        z_used = z[mask]
        if z_used.shape[1]:
            first, cls_of, _ = unique_rows(z_used)
            classes = z_used[first]
        else:
            classes, cls_of = np.zeros((1, 0)), np.zeros(int(mask.sum()), dtype=np.int64)
        key = np.column_stack([cls_of.astype(np.float64), *(cols[c][mask] for c in names)])
        first, _, weight = unique_rows(key)
        uniq = key[first]
        rows = {c: np.ascontiguousarray(uniq[:, j + 1]) for j, c in enumerate(names)}
        stats = CovariateStats(
            base_stats, rows, uniq[:, 0].astype(np.int64), weight.astype(np.float64),
            classes.astype(np.float64), int(base_stats.n_customers), self.segment is not None,
        )  # fmt: skip
        return stats, unit

    def _split(self, theta: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The base's unconstrained parameters and the covariate parameters by name."""
        layout = self._layout()
        P = len(self._base.spec.param_names)
        extra = {n: theta[layout.slice(n)] for n in self.spec.terms.param_names()}
        return theta[:P], extra

    def _loglik_grad(self, theta: np.ndarray, stats: CovariateStats) -> tuple[float, np.ndarray]:
        terms = self.spec.terms
        base_names = self._base.spec.param_names
        P = len(base_names)
        internal = np.asarray(theta, dtype=np.float64)
        theta = self._actual(internal)
        layout = self._layout()
        base_theta, extra = self._split(theta)
        from clvkit.models.covariates.linear import class_gradients, row_params  # numba

        links = list(terms.links)
        k, L = len(terms.names), len(links)
        z = stats.design
        seg = stats.segment
        C = stats.class_rows.shape[0]
        link_col = np.array([base_names.index(p) for p in links], dtype=np.int64)
        sign = np.array([float(terms.links[p]) for p in links])
        coef = np.zeros((L, k))
        n_seg = 0
        if seg is not None:
            n_seg = layout.sizes[layout.names.index(f"seg_{links[0]}")]
        seg_u = np.zeros((L, n_seg))
        for q, p in enumerate(links):
            if k:
                coef[q] = extra[f"coef_{p}"]
            if seg is not None:
                seg_u[q] = self._seg_coords(theta, p).u
        no_seg = np.zeros(0, dtype=np.int64)
        seg_arr = no_seg if seg is None else seg
        one_each = C == stats.n_rows  # rows are sorted by class: then row i is class i
        U = row_params(
            np.ascontiguousarray(base_theta), z, coef, link_col, sign, seg_arr, seg_u,
            stats.row_class, one_each,
        )  # fmt: skip
        ll_rows, g_rows = self._base._rows_loglik_grad(U, stats.rows)
        value, g_base, g_coef, g_seg = class_gradients(
            ll_rows, np.ascontiguousarray(g_rows), stats.weight, stats.row_class, C, z,
            link_col, sign, seg_arr, n_seg,
        )  # fmt: skip
        grad = np.zeros(theta.size)
        grad[:P] = g_base
        for q, p in enumerate(links):
            if k:
                grad[layout.slice(f"coef_{p}")] = g_coef[q]
            if seg is not None:
                self._seg_back(theta, p, g_seg[q], grad)
        return value, self._actual_back(internal, grad)

    # ---- segment effects: the internal coordinates of a fit --------------------------------------
    def _modes(self, p: str, n: int) -> np.ndarray:
        """How the entries of ``seg_<p>`` in ``theta`` are read (``STORED``, ``NONCENTRED``,
        ``CENTRED``): stored outside a fit, non-centred in point fits, per segment
        (:meth:`_centring`) in NUTS and Laplace."""
        state = getattr(self, "_seg_state", None)
        if state is None:
            return np.full(n, STORED)
        if isinstance(state, str):
            return np.full(n, NONCENTRED)
        return state[p]

    def _lams(self, p: str, n: int) -> np.ndarray:
        """The power ``lam`` of the spread in each non-centred coordinate of ``seg_<p>``,
        ``x = u / sd^(1 - lam) + lam sign log theta`` (:func:`_centre`): 0 (fully
        non-centred) outside NUTS and Laplace fits."""
        lams = getattr(self, "_seg_lam", None)
        if not isinstance(getattr(self, "_seg_state", None), dict) or lams is None:
            return np.zeros(n)
        return lams[p]

    def _seg_coords(self, theta: np.ndarray, p: str) -> _SegCoords:
        """The segment effects of linked parameter ``p`` at ``theta`` (:class:`_SegCoords`);
        non-centred ones read ``u = sd^(1 - lam) (x - lam sign log theta)``."""
        layout = self._layout()
        x = theta[layout.slice(f"seg_{p}")]
        sd = _exp(theta[layout.slice(f"sd_{p}")][0])
        base = float(theta[self._base.spec.param_names.index(p)])
        sign = self.spec.terms.links[p]
        m = self._modes(p, x.size)
        lam = self._lams(p, x.size)
        scale = sd ** (1.0 - lam)
        shift = lam * sign * base
        u = np.where(
            m == NONCENTRED, scale * (x - shift), np.where(m == CENTRED, sign * (x - base), x)
        )
        return _SegCoords(x, sd, base, sign, m, lam, scale, u)

    def _seg_back(self, theta: np.ndarray, p: str, g_u: np.ndarray, grad: np.ndarray) -> None:
        """Add ``g_u`` (the gradient in the log multipliers ``u`` of ``p``) to ``grad`` in
        the internal coordinates (chain rule through :meth:`_seg_coords`)."""
        layout = self._layout()
        sc = self._seg_coords(theta, p)
        nc, ce = sc.modes == NONCENTRED, sc.modes == CENTRED
        grad[layout.slice(f"seg_{p}")] += np.where(
            nc, sc.scale * g_u, np.where(ce, sc.sign * g_u, g_u)
        )
        # d u / d log sd = (1 - lam) u; d u / d log theta = -lam sign sd^(1 - lam) (centred: -sign)
        grad[layout.slice(f"sd_{p}")] += float(np.sum(((1.0 - sc.lam) * sc.u * g_u)[nc]))
        j = self._base.spec.param_names.index(p)
        grad[j] -= sc.sign * float(np.sum((sc.lam * sc.scale * g_u)[nc]) + np.sum(g_u[ce]))

    def _recentred(self, p: str) -> bool:
        """Whether the base log-parameter of ``p`` is read non-centred around the centred
        segments (in NUTS and Laplace when some segment of ``p`` is centred): ``log theta =
        mean(c_s) + sd * beta``, ``c_s`` the centred segments' own log-parameters. Its spread
        given them scales with ``sd`` (a funnel) where ``beta``'s does not."""
        state = getattr(self, "_seg_state", None)
        return isinstance(state, dict) and bool(np.any(state[p] == CENTRED))

    def _actual(self, theta: np.ndarray) -> np.ndarray:
        """``theta`` with each recentred base entry (:meth:`_recentred`) the base
        log-parameter itself."""
        layout = self._layout()
        out = np.array(theta, dtype=np.float64)
        for p in self.spec.terms.links:
            if self._recentred(p):
                j = self._base.spec.param_names.index(p)
                ce = self._seg_state[p] == CENTRED
                sd = _exp(theta[layout.slice(f"sd_{p}")][0])
                out[j] = float(np.mean(theta[layout.slice(f"seg_{p}")][ce])) + sd * theta[j]
        return out

    def _actual_back(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """A gradient in the :meth:`_actual` coordinates of internal ``theta``, chained to the
        internal coordinates (in place)."""
        layout = self._layout()
        for p in self.spec.terms.links:
            if self._recentred(p):
                j = self._base.spec.param_names.index(p)
                ce = self._seg_state[p] == CENTRED
                sd = _exp(theta[layout.slice(f"sd_{p}")][0])
                gb = float(grad[j])
                grad[j] = gb * sd
                seg = grad[layout.slice(f"seg_{p}")]
                seg[ce] += gb / int(ce.sum())
                grad[layout.slice(f"sd_{p}")] += gb * sd * float(theta[j])
        return grad

    def _objective(
        self, stats: Any, priors: dict[str, dict[str, Any]] | None, jacobian: bool = False
    ) -> Any:
        """The base objective; with segments, entries not read non-centred get the
        hierarchical prior ``Normal(u; 0, sd^2)`` instead of the standard normal of the
        standardised effects (so every parametrisation has one posterior of ``u``, ``sd``)."""
        fun = super()._objective(stats, priors, jacobian)  # type: ignore[misc]
        if priors is None or self.spec.terms.segment is None:
            return fun

        def fun_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
            try:
                return corrected(theta)
            except (OverflowError, ValueError, ZeroDivisionError):  # far out in warm-up
                return -math.inf, np.zeros(np.size(theta))

        def corrected(theta: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad = fun(theta)
            internal = np.asarray(theta, dtype=np.float64)
            theta = self._actual(internal)
            layout = self._layout()
            ga = np.zeros(theta.size)  # in the actual coordinates
            names = self._base.spec.param_names
            for p in self.spec.terms.links:
                x, sd, _, sign, m, lam, scale, u = self._seg_coords(theta, p)
                nc = m == NONCENTRED
                own = ~nc | (lam > 0.0)
                if not own.any():
                    continue
                xo, uo = x[own], u[own]
                # log Normal(u; 0, sd^2) + log |du/dx|; non-centred: du/dx = sd^(1 - lam)
                power = np.where(nc, lam, 1.0)[own]
                with np.errstate(all="ignore"):
                    q = 0.5 * xo * xo - power * math.log(sd) - 0.5 * (uo / sd) ** 2
                    value += float(np.sum(q))
                    dq = -uo / sd**2  # d log Normal(u; 0, sd^2) / du
                dudx = np.where(m == CENTRED, float(sign), np.where(nc, scale, 1.0))[own]
                g = np.zeros(x.size)
                g[own] = xo + dq * dudx
                ga[layout.slice(f"seg_{p}")] += g
                ga[layout.slice(f"sd_{p}")] += float(np.sum(power * ((uo / sd) ** 2 - 1.0)))
                dbase = np.where(m == CENTRED, 1.0, np.where(nc, lam * scale, 0.0))[own]
                ga[names.index(p)] -= sign * float(np.sum(dq * dbase))
                if self._recentred(p):  # the base prior at the base, not at beta
                    j = names.index(p)
                    for t_, sgn in ((internal[j], -1.0), (theta[j], 1.0)):
                        lp, dlp = prior_logp_grad(math.exp(t_), priors[p])
                        lp, dlp = lp + (t_ if jacobian else 0.0), dlp * math.exp(t_) + jacobian
                        value += sgn * lp
                        if sgn < 0:
                            grad = np.array(grad, dtype=np.float64)
                            grad[j] -= dlp
                        else:
                            ga[j] += dlp
                    if jacobian:  # d log theta / d beta = sd
                        value += math.log(sd)
                        ga[layout.slice(f"sd_{p}")] += 1.0
            return value, np.asarray(grad, dtype=np.float64) + self._actual_back(internal, ga)

        return fun_grad

    def _centring(
        self, stats: CovariateStats, theta: np.ndarray
    ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """How NUTS reads each segment effect, from a point ``theta`` of the non-centred
        parametrisation (the start): per linked parameter, ``(centred, lam)`` per segment.

        As the pooled sBG's cohorts (:func:`clvkit.models.sbg.pooled.centring_flags`): an
        effect is centred where the segment's data alone pin it down well within the spread
        between segments, ``sigma_s < tau / CENTRE_RATIO`` (:func:`_centre`): there the
        non-centred ``eta = u / sd`` is tied to ``sd`` by the data (a curved ridge where NUTS
        diverges), while the segment's own log-parameter is nearly independent of the
        population. The others are partially centred with their shrinkage weight ``lam``,
        between the ridge and the funnel of a small spread. ``sigma_s^2 = 1 / I_s``, ``I_s`` the
        segment's marginal precision of ``u_s`` at ``theta``: the inverse of the diagonal of
        the inverse of its Hessian block over the linked parameters (the curvature in ``u_s``
        alone overstates it where two links trade off, as BG/NBD's ``a`` and ``b``: there a
        dropout spread near 0 was taken for a real one, the large segments centred, and NUTS
        stuck in the funnel)."""
        layout = self._layout()
        stored = np.array(theta, dtype=np.float64)
        links = list(self.spec.terms.links)
        for p in links:
            stored[layout.slice(f"seg_{p}")] = self._seg_coords(theta, p).u
        state, self._seg_state = getattr(self, "_seg_state", None), None
        h = 1e-4
        slices = [layout.slice(f"seg_{p}") for p in links]
        L, n_seg = len(links), slices[0].stop - slices[0].start
        hess = np.empty((n_seg, L, L))  # per segment: the Hessian block over the links
        try:
            for j, sl in enumerate(slices):
                step = np.zeros(stored.size)
                step[sl] = h  # the segments' likelihoods are separate: one step for all
                with np.errstate(all="ignore"):
                    gp = self._loglik_grad(stored + step, stats)[1]
                    gm = self._loglik_grad(stored - step, stats)[1]
                for i, si in enumerate(slices):
                    hess[:, i, j] = (gp[si] - gm[si]) / (2 * h)
        finally:
            self._seg_state = state
        hess = 0.5 * (hess + np.swapaxes(hess, 1, 2))
        info = np.full((n_seg, L), np.nan)  # NaN: a singular block, left non-centred
        with np.errstate(all="ignore"):
            for k in range(n_seg):
                try:
                    info[k] = 1.0 / np.diag(np.linalg.inv(-hess[k]))
                except np.linalg.LinAlgError:
                    pass
        return {
            p: _centre(info[:, i], stored[sl])
            for i, (p, sl) in enumerate(zip(links, slices, strict=True))
        }

    def _mixed_start(self, stats: CovariateStats, x0: np.ndarray) -> np.ndarray:
        """The NUTS start in the mixed parametrisation: the non-centred posterior mode from
        ``x0``, the centring chosen there (:meth:`_centring`) and set for the fit."""
        from clvkit.inference.sampling import start_point

        start = start_point(self._objective(stats, self._resolve_priors()), x0)
        choice = self._centring(stats, start)
        layout = self._layout()
        out = start.copy()
        for p, (f, lam) in choice.items():
            sc = self._seg_coords(start, p)  # non-centred: sc.u from eta
            partial = sc.u / sc.sd ** (1.0 - lam) + lam * sc.sign * sc.base
            out[layout.slice(f"seg_{p}")] = np.where(f, sc.base + sc.sign * sc.u, partial)
        self._seg_state = {p: np.where(f, CENTRED, NONCENTRED) for p, (f, _) in choice.items()}
        self._seg_lam = {p: lam for p, (_, lam) in choice.items()}
        for p in choice:
            if self._recentred(p):  # beta = (log theta - mean(c_s)) / sd
                j = self._base.spec.param_names.index(p)
                ce = self._seg_state[p] == CENTRED
                sd = math.exp(float(out[layout.slice(f"sd_{p}")][0]))
                out[j] = (out[j] - float(np.mean(out[layout.slice(f"seg_{p}")][ce]))) / sd
        return out

    def _stored_posterior(self, post: xr.Dataset) -> xr.Dataset:
        """A posterior of the fit's internal coordinates with ``seg_<p>`` the log multipliers."""
        post = post.copy()
        for p, sign in self.spec.terms.links.items():
            da = post[f"seg_{p}"].transpose("chain", "draw", ...)
            x = da.to_numpy()
            m = self._modes(p, x.shape[-1])
            sd = post[f"sd_{p}"].transpose("chain", "draw").to_numpy()[..., None]
            base = np.log(post[p].transpose("chain", "draw").to_numpy())[..., None]
            if self._recentred(p):  # base = mean(c_s) + sd * beta
                ce = m == CENTRED
                base = x[..., ce].mean(axis=-1, keepdims=True) + sd * base
                post[p] = post[p].copy(data=np.exp(base[..., 0]))
            lam = self._lams(p, x.shape[-1])
            scale = sd ** (1.0 - lam)
            nc_u = scale * (x - lam * sign * base)
            u = np.where(m == NONCENTRED, nc_u, np.where(m == CENTRED, sign * (x - base), x))
            post[f"seg_{p}"] = da.copy(data=u)
        return post

    def _point_sd_log(self, theta: np.ndarray) -> np.ndarray:
        """Standard errors of a point fit with segments: from the information of the
        non-centred objective (where the fit found the mode), by the delta method to the
        stored log multipliers ``u = sd * eta``."""
        if self.spec.terms.segment is None:
            return super()._point_sd_log(theta)  # type: ignore[misc]
        layout = self._layout()
        theta = np.asarray(theta, dtype=np.float64)
        internal = theta.copy()
        jac = np.eye(theta.size)
        for p in self.spec.terms.links:
            sl, i_sd = layout.slice(f"seg_{p}"), layout.slice(f"sd_{p}").start
            sd = math.exp(float(theta[i_sd]))
            internal[sl] = theta[sl] / sd
            for i in range(sl.start, sl.stop):
                jac[i, i] = sd
                jac[i, i_sd] = theta[i]  # d (sd eta) / d log sd = u
        priors = json.loads(self._attrs["priors"]) if self.method_ == "map" else None
        self._seg_state = "noncentred"
        try:
            chol, _ = self._information(self._objective(self.stats_, priors), internal)
            if chol is None:
                return super()._point_sd_log(internal)  # type: ignore[misc]  # warns: inf
        finally:
            self._seg_state = None
        inv = np.linalg.inv(chol)
        cov = jac @ (inv.T @ inv) @ jac.T
        return np.sqrt(np.diag(cov))

    def _x0(self, stats: CovariateStats) -> np.ndarray:
        x = np.zeros(self._layout().dim)
        P = len(self._base.spec.param_names)
        x[:P] = self._base._x0(stats.base)
        layout = self._layout()
        for p in self.spec.terms.links:
            if self.spec.terms.segment is not None:
                x[layout.slice(f"sd_{p}")] = np.log(0.3)
        if getattr(self, "_centre_pending", False):  # NUTS with segments: choose the centring
            self._centre_pending = False
            x = self._mixed_start(stats, x)
        return x

    def _unbounded_meaning(self, up: list[str], down: list[str], values: dict[str, float]) -> str:
        base = [n for n in up + down if n in self._base.spec.param_names]
        coefs = [n for n in up + down if n not in base]
        parts = []
        if base:
            parts.append(self._base._unbounded_meaning(
                [n for n in up if n in base], [n for n in down if n in base], values))  # fmt: skip
        if coefs:
            parts.append(
                f"the effects {coefs} run off: a level or value that separates customers "
                "completely (e.g. a level where no customer ever repeats)"
            )
        return "; ".join(parts)

    def _target_accept(self) -> float:
        """:data:`SEGMENT_TARGET_ACCEPT` when some segment effect is not centred (the spread's
        posterior then shapes the geometry), else the base default (0.8)."""
        state = getattr(self, "_seg_state", None)
        if isinstance(state, dict) and any(np.any(m != CENTRED) for m in state.values()):
            return SEGMENT_TARGET_ACCEPT
        return super()._target_accept()  # type: ignore[misc]

    def _fit_attrs(self) -> dict[str, str]:
        out = {
            "covariates": json.dumps(
                {"base": self._base.spec.model_name, **self.spec.terms.to_json()}, default=str
            )
        }
        state = getattr(self, "_seg_state", None)
        if isinstance(state, dict):  # NUTS: which segment effects were sampled centred
            levels = [str(v) for v in self.spec.terms.levels]
            out["segment_centred"] = json.dumps(
                {p: [lv for lv, m in zip(levels, modes, strict=True) if m == CENTRED]
                 for p, modes in state.items()}
            )  # fmt: skip
            lams = getattr(self, "_seg_lam", None) or {}
            out["segment_partial"] = json.dumps(
                {p: {lv: round(float(w), 3) for lv, w in zip(levels, lam, strict=True) if w > 0}
                 for p, lam in lams.items()}
            )  # fmt: skip
        return out

    def _observed_data(self, stats: CovariateStats) -> xr.Dataset:
        base = self._base._observed_data(stats.base)
        base = base.rename({v: f"base__{v}" for v in base.data_vars})
        base = base.rename({d: f"base__{d}" for d in base.dims})
        rows = {f"row__{c}": (("row",), v) for c, v in stats.rows.items()}
        ds = xr.Dataset(
            {
                **rows,
                "row_class": (("row",), stats.row_class),
                "row_weight": (("row",), stats.weight),
                "class_rows": (("class", "class_column"), stats.class_rows),
            }
        )
        out = xr.merge([base, ds])
        out.attrs = {**base.attrs, "base_model": self._base.spec.model_name,
                     "n_customers": int(stats.n_customers),
                     "has_segment": int(stats.has_segment)}  # fmt: skip
        return out

    @staticmethod
    def _stats_from_observed(ds: xr.Dataset) -> CovariateStats:
        cls = get(str(ds.attrs["base_model"]))
        base_vars = [v for v in ds.data_vars if str(v).startswith("base__")]
        sub = ds[base_vars]
        sub = sub.rename({v: str(v)[6:] for v in sub.data_vars})
        sub = sub.rename({d: str(d)[6:] for d in sub.dims if str(d).startswith("base__")})
        base = cls._stats_from_observed(sub)
        rows = {str(v)[5:]: ds[v].to_numpy() for v in ds.data_vars if str(v).startswith("row__")}
        return CovariateStats(
            base, rows, ds["row_class"].to_numpy().astype(np.int64),
            ds["row_weight"].to_numpy().astype(np.float64),
            ds["class_rows"].to_numpy().astype(np.float64), int(base.n_customers),
            bool(ds.attrs.get("has_segment", 0)),
        )  # fmt: skip

    def effects(self, prob: float = 0.9) -> pd.DataFrame:
        """What each covariate (and segment) does to each process, as multipliers of the
        process means with intervals and a sentence each; see
        :func:`clvkit.models.covariates.effects.effects`.

        Parameters
        ----------
        prob : float
            Probability of the central intervals, in (0, 1).

        Returns
        -------
        pandas.DataFrame
            Columns ``kind, coefficient, process, meaning, multiplier, lower, upper,
            p_above_1, sentence``; e.g. "Customers from channel 'shop' instead of 'web' buy
            1.92x [1.78, 2.07] as often (90% interval)."
        """
        self._check_fitted()  # type: ignore[attr-defined]
        return effects(self, prob)

    # ---- the spec of a posterior ----------------------------------------------------------------
    @classmethod
    def spec_for(cls, attrs: Mapping[str, Any]) -> Any:
        """The spec from a posterior's ``attrs["covariates"]`` (base model, links, encoding,
        segments)."""
        raw = attrs.get("covariates")
        try:
            d = json.loads(raw) if isinstance(raw, str) else dict(raw)
            base = get(str(d["base"]), cls.kind).spec
            terms = CovariateTerms.from_json(d)
        except (TypeError, ValueError, KeyError) as exc:
            raise ClvkitError(
                f"a {cls.__name__} posterior has attrs['covariates'] = {raw!r}. Suggestion: pass "
                "the fitted model itself, or its posterior_."
            ) from exc
        return cls._spec_type(base, terms)

    def _set_fitted(
        self, groups: dict[str, xr.Dataset], attrs: dict[str, Any], stats: Any, idata: Any = None
    ) -> None:
        if getattr(self, "_seg_state", None) is not None and "posterior" in groups:
            groups = {**groups, "posterior": self._stored_posterior(groups["posterior"])}
        self._seg_state, self._seg_lam = None, None  # from here on theta holds the log multipliers
        super()._set_fitted(groups, attrs, stats, idata)  # type: ignore[misc]
        if attrs.get("covariates"):
            self.spec = self.spec_for(attrs)

    def _layout(self) -> Layout:
        cached = self.__dict__.get("_layout_cache")
        if cached is None or cached[0] is not self.spec:
            cached = (self.spec, Layout.of(self.spec))
            self._layout_cache = cached
        return cached[1]

    @classmethod
    def from_params(cls, *, time_unit: str | None = None, **params: Any) -> Self:
        """Not available: the parameters need the covariate encoding of a fit. Build a model
        at given draws with :meth:`from_posterior` of a posterior whose ``attrs`` carry it (a
        fitted model's ``posterior_``)."""
        raise ClvkitError(
            f"{cls.__name__}.from_params is not available (the coefficients need the covariate "
            "encoding of a fit). Suggestion: fit the model, or use from_posterior with a "
            "fitted model's posterior_ (edited draws keep its attrs)."
        )

    @classmethod
    def from_posterior(cls, posterior: Any, time_unit: str | None = None) -> Self:
        """A model from a posterior of this class (its ``attrs`` name the base model and the
        covariate encoding); ``method_`` is ``"given"``."""
        from clvkit.models.registry import resolve

        if isinstance(posterior, ModelBase):
            posterior = posterior.posterior_
        attrs = dict(getattr(posterior, "attrs", {}) or {})
        if not attrs.get("covariates"):
            raise ClvkitError(
                f"argument 'posterior' has no attrs['covariates']. Suggestion: pass a fitted "
                f"{cls.__name__} or its posterior_."
            )
        spec = cls.spec_for(attrs)
        _, post = resolve(SimpleNamespace(spec=spec, posterior_=posterior), cls.kind, "posterior")
        d = json.loads(attrs["covariates"])
        design = spec.terms.design
        model = cls(
            get(str(d["base"]), cls.kind).spec.name,
            None if design is None else list(design.columns),
            segment=spec.terms.segment,
            links=list(spec.terms.links),
        )
        model.spec = spec
        ds = Layout.of(spec).normalize(post[list(spec.param_names)], "posterior")
        ds = ds.transpose("chain", "draw", ...).copy()
        unit = time_unit if time_unit is not None else (post.attrs.get("time_unit") or "")
        new_attrs = {
            "time_unit": unit,
            "model": spec.model_name,
            "method": "given",
            "data_fingerprint": "",
            "clvkit_version": attrs.get("clvkit_version", ""),
            "sampler": "",
            "priors": "",
            "covariates": attrs["covariates"],
        }
        ds.attrs = dict(new_attrs)
        model._set_fitted({"posterior": ds}, new_attrs, None)
        return model


@register
class CovariatePurchaseModel(_CovariateModel, PurchaseModel):
    """A purchase model (BG/NBD, Pareto/NBD, MBG/NBD, ...) with static covariates and
    hierarchical segments; see :func:`with_covariates`."""

    kind: ClassVar[str] = "purchase"
    _spec_type: ClassVar[type] = CovariatePurchaseSpec
    spec: ClassVar[Any] = CovariatePurchaseSpec.template()
    _default_priors: ClassVar[dict[str, dict[str, Any]]] = {}


@register
class CovariateSpendModel(_CovariateModel, SpendModel):
    """A spend model (Gamma-Gamma) with static covariates and hierarchical segments; see
    :func:`with_covariates`."""

    kind: ClassVar[str] = "spend"
    _spec_type: ClassVar[type] = CovariateSpendSpec
    spec: ClassVar[Any] = CovariateSpendSpec.template()
    _default_priors: ClassVar[dict[str, dict[str, Any]]] = {}


def with_covariates(
    model: Any,
    columns: Sequence[str] | None = None,
    *,
    categorical: Sequence[str] = (),
    reference: Mapping[str, Any] | None = None,
    links: Sequence[str] | str | None = None,
    segment: str | None = None,
    priors: Mapping[str, Mapping[str, Any]] | None = None,
) -> CovariatePurchaseModel | CovariateSpendModel:
    """A model with static covariates and (optionally) hierarchical segments.

    Parameters
    ----------
    model : str or estimator
        The base model: a registered name (``"bgnbd"``, ``"pnbd"``, ``"mbgnbd"``,
        ``"gamma_gamma"``, ...) or an unfitted estimator (its priors are kept).
    columns : sequence of str, optional
        Covariate columns of the customer table passed to ``fit`` and to every prediction
        (join them by customer id). Numeric columns enter centred on their mean in the fit;
        text, boolean and category columns (and those in ``categorical``) as indicators
        against a reference level (see :func:`clvkit.covariate_design`).
    categorical : sequence of str
        Numeric columns to treat as categorical.
    reference : dict, optional
        Categorical column -> reference level (default: its most frequent level).
    links : sequence of str, optional
        The processes or parameters the covariates act on (default: all the model's links,
        e.g. BG/NBD's ``"purchase"`` (``alpha``) and ``"dropout"`` (``a``, ``b``)).
    segment : str, optional
        A column of segments with partially pooled effects: segment ``s``'s log multiplier
        ``seg_<p>[s] ~ Normal(0, sd_<p>^2)`` (the posterior holds it), the spread ``sd_<p>``
        learned. NUTS and Laplace sample each segment centred or non-centred as its data
        suit (``posterior_.attrs["segment_centred"]``, a JSON string: parameter -> centred levels).
    priors : dict, optional
        Prior overrides by parameter name (base parameters, ``coef_<p>``, ``sd_<p>``; the
        segment effects' prior is fixed by the hierarchy: naming ``seg_<p>`` or ``new_<p>`` is
        an error).

    Notes
    -----
    A segment not in the fit is valued from the population of segments: its log multiplier is
    ``sd_<p> * new_<p>``, with ``new_<p> ~ Normal(0, 1)`` sampled with the posterior (the data
    do not inform it), shared by every unseen segment in a draw. A point fit (``"map"``) puts
    it at 0: the median segment.

    Returns
    -------
    CovariatePurchaseModel or CovariateSpendModel
        Unfitted; ``fit(rfm)`` as any model (``method="mle"`` is refused with segments).
    """
    kinds = {"purchase": CovariatePurchaseModel, "spend": CovariateSpendModel}
    if isinstance(model, str):
        kind = get(model).spec.kind
    elif isinstance(model, Sequence) and len(model) == 2 and isinstance(model[0], str):
        kind = get(model[0]).spec.kind
    else:
        kind = getattr(getattr(model, "spec", None), "kind", "purchase")
    return kinds[kind](
        model, columns, categorical=categorical, reference=reference, links=links,
        segment=segment, priors=priors,
    )  # fmt: skip
