"""Shared plumbing of the models: priors, fitting by NUTS/MAP/MLE/Laplace, idata, summary, save.

Nothing here is specific to a model. An estimator class sets ``spec`` (a
:class:`clvkit.models.contract.ModelSpec`: parameter names, supports, names) and
``_default_priors``, and gives the hooks

- ``_prepare(rfm) -> (stats, time_unit)``: validated, compressed statistics (with
  ``.n_customers`` and ``.fingerprint``) and the table's time unit;
- ``_loglik_grad(theta, stats) -> (value, gradient)``: the numpy log-likelihood on the
  unconstrained scale (:mod:`clvkit.inference.transforms`: log for positive parameters,
  identity for real ones, logit for those in (0, 1));
- ``_x0(stats)``: an unconstrained starting point;
- ``_observed_data(stats)`` / ``_stats_from_observed(ds)``: the statistics to and from the
  saved ``observed_data`` group.

``theta`` is the flat unconstrained vector: the parameters in ``spec.param_names`` order, a
vector parameter (``spec.param_sizes``) taking as many consecutive entries as it has elements
(:class:`clvkit.inference.layout.Layout`); without vector parameters, one entry each.

Optional capabilities: ``_native_kernel`` (a compiled log posterior: nutpie's native NUTS, the
default ``sampler="nutpie"``) and ``_pymc_model`` (a PyMC graph: ``sampler="pymc"`` and
``"nutpie-pytensor"``). Without either, ``method="nuts"`` is refused with a suggestion;
``method="laplace"``, ``"map"`` and ``"mle"`` work from the numpy objective alone.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import gammaln, ndtri

from clvkit.errors import ClvkitError, ConvergenceWarning, NotFittedError
from clvkit.inference import diagnostics as _diagnostics
from clvkit.inference import sampling as _sampling
from clvkit.inference import transforms as _transforms
from clvkit.inference.layout import Layout
from clvkit.models.contract import ModelSpec
from clvkit.models.inputs import check_time_unit
from clvkit.rng import check_random_seed
from clvkit.units import TIME_UNIT_ATTR, format_time_unit
from clvkit.utils.checks import check_prob

if TYPE_CHECKING:
    import arviz as az

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "PRIOR_DISTS",
    "PRIOR_SUPPORT",
    "ModelBase",
    "prior_logp_grad",
    "pymc_prior",
    "resolve_priors",
]

FORMAT_NAME = "clvkit-model"
FORMAT_VERSION = 1
METHODS = ("nuts", "map", "mle", "laplace")

#: Supported prior families and their parameter names, spelled as in PyMC.
PRIOR_DISTS: dict[str, tuple[str, ...]] = {
    "LogNormal": ("mu", "sigma"),
    "Gamma": ("alpha", "beta"),
    "HalfNormal": ("sigma",),
    "Exponential": ("lam",),
    "HalfCauchy": ("beta",),
    "Normal": ("mu", "sigma"),
    "Beta": ("alpha", "beta"),
}
#: The parameter support each prior family is for (see ``ModelSpec.support``).
PRIOR_SUPPORT: dict[str, str] = {
    "LogNormal": "positive",
    "Gamma": "positive",
    "HalfNormal": "positive",
    "Exponential": "positive",
    "HalfCauchy": "positive",
    "Normal": "real",
    "Beta": "unit",
}


def resolve_priors(
    defaults: Mapping[str, Mapping[str, Any]],
    overrides: Mapping[str, Mapping[str, Any]] | None,
    supports: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """Merge per-parameter prior overrides into the defaults and validate them.

    A prior is a plain dict such as ``{"dist": "Gamma", "alpha": 2.0, "beta": 1.0}``; its
    family must suit the parameter's support (``supports``, default ``"positive"``): positive
    parameters take LogNormal, Gamma, HalfNormal, Exponential or HalfCauchy, real ones Normal,
    those in (0, 1) Beta.

    Examples
    --------
    >>> resolve_priors({"r": {"dist": "LogNormal", "mu": 0.0, "sigma": 2.0}}, None)
    {'r': {'dist': 'LogNormal', 'mu': 0.0, 'sigma': 2.0}}
    """
    out = {k: dict(v) for k, v in defaults.items()}
    if overrides is None:
        return out
    if not isinstance(overrides, Mapping):
        raise ClvkitError(
            f"argument 'priors' must be a dict of parameter -> prior dict, got "
            f"{type(overrides).__name__}. Suggestion: priors={{'r': {{'dist': 'Gamma', "
            "'alpha': 2.0, 'beta': 1.0}}."
        )
    for name, spec in overrides.items():
        if name not in out:
            raise ClvkitError(
                f"argument 'priors' names unknown parameter {name!r}. "
                f"Suggestion: use one of {list(out)}."
            )
        if not isinstance(spec, Mapping) or spec.get("dist") not in PRIOR_DISTS:
            raise ClvkitError(
                f"argument 'priors[{name!r}]' is {spec!r}. Suggestion: a dict with 'dist' in "
                f"{list(PRIOR_DISTS)} and its parameters, e.g. {{'dist': 'LogNormal', "
                "'mu': 0.0, 'sigma': 2.0}."
            )
        dist = spec["dist"]
        support = (supports or {}).get(name, "positive")
        if PRIOR_SUPPORT[dist] != support:
            fits = [d for d, s in PRIOR_SUPPORT.items() if s == support]
            raise ClvkitError(
                f"argument 'priors[{name!r}]' is a {dist} prior, for {PRIOR_SUPPORT[dist]} "
                f"parameters, but {name!r} is {support}. Suggestion: use one of {fits}."
            )
        keys = set(spec) - {"dist"}
        if keys != set(PRIOR_DISTS[dist]):
            raise ClvkitError(
                f"argument 'priors[{name!r}]' ({dist}) has parameters {sorted(keys)}. "
                f"Suggestion: give exactly {list(PRIOR_DISTS[dist])}."
            )
        clean: dict[str, Any] = {"dist": dist}
        for k in PRIOR_DISTS[dist]:
            try:
                val = float(spec[k])
            except (TypeError, ValueError):
                val = math.nan
            if not math.isfinite(val) or (k != "mu" and val <= 0):
                raise ClvkitError(
                    f"argument 'priors[{name!r}]' has {k}={spec[k]!r}. Suggestion: use a finite "
                    "number (positive for scales and shapes)."
                )
            clean[k] = val
        out[name] = clean
    return out


def prior_logp_grad(theta: float, spec: Mapping[str, Any]) -> tuple[float, float]:
    """Log-density of a prior at ``theta`` (inside its support) and its derivative in ``theta``."""
    d = spec["dist"]
    if d == "Normal":
        mu, s = spec["mu"], spec["sigma"]
        z = (theta - mu) / s
        return -math.log(s) - 0.5 * math.log(2 * math.pi) - 0.5 * z * z, -z / s
    if d == "Beta":
        a, b = spec["alpha"], spec["beta"]
        lp = (
            (a - 1) * math.log(theta)
            + (b - 1) * math.log1p(-theta)
            - float(gammaln(a) + gammaln(b) - gammaln(a + b))
        )
        return lp, (a - 1) / theta - (b - 1) / (1 - theta)
    if d == "LogNormal":
        mu, s = spec["mu"], spec["sigma"]
        z = (math.log(theta) - mu) / s
        lp = -math.log(theta) - math.log(s) - 0.5 * math.log(2 * math.pi) - 0.5 * z * z
        return lp, (-1.0 - z / s) / theta
    if d == "Gamma":
        a, b = spec["alpha"], spec["beta"]
        lp = a * math.log(b) - float(gammaln(a)) + (a - 1) * math.log(theta) - b * theta
        return lp, (a - 1) / theta - b
    if d == "HalfNormal":
        s = spec["sigma"]
        lp = 0.5 * math.log(2 / math.pi) - math.log(s) - 0.5 * (theta / s) ** 2
        return lp, -theta / s**2
    if d == "Exponential":
        lam = spec["lam"]
        return math.log(lam) - lam * theta, -lam
    if d == "HalfCauchy":
        b = spec["beta"]
        lp = math.log(2 / math.pi) - math.log(b) - math.log1p((theta / b) ** 2)
        return lp, -2 * theta / (b * b + theta * theta)
    raise ClvkitError(f"unknown prior family {d!r}")  # pragma: no cover - validated earlier


def pymc_prior(name: str, spec: Mapping[str, Any], dims: str | None = None) -> Any:
    """Create the PyMC random variable for a validated prior (inside a model context); a
    vector parameter passes ``dims=clvkit.inference.layout.param_dim(name)`` (its elements
    share the prior; the model's coords from ``Layout.pymc_coords()``)."""
    import pymc as pm

    params = {k: v for k, v in spec.items() if k != "dist"}
    if dims is not None:
        params["dims"] = dims
    return getattr(pm, spec["dist"])(name, **params)


class ModelBase:
    """Common machinery; subclasses set ``spec``, ``_default_priors`` and the ``_`` hooks."""

    #: The model's contract: parameter names and supports, names for files and reports.
    spec: ClassVar[ModelSpec]
    _default_priors: ClassVar[dict[str, dict[str, Any]]]
    #: A model built from other models (a mixture): its ``spec`` depends on its settings, so
    #: it is set per instance, and the registry finds the class by name only (not listed).
    composite: ClassVar[bool] = False
    #: Whether ``method="nuts"`` without a compiled kernel samples the numpy log posterior
    #: (``_objective``) with nutpie's ``from_pyfunc`` (models whose ``_loglik_grad`` runs
    #: compiled code, e.g. the covariate models) instead of requiring a PyMC model.
    numpy_nuts: ClassVar[bool] = False

    def __init__(self, priors: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.priors = priors

    # ---- hooks ------------------------------------------------------------------------------
    def _prepare(self, rfm: pd.DataFrame) -> tuple[Any, str | None]:  # pragma: no cover
        raise NotImplementedError

    def _loglik_grad(self, theta: np.ndarray, stats: Any) -> tuple[float, np.ndarray]:
        raise NotImplementedError  # pragma: no cover

    def _x0(self, stats: Any) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _observed_data(self, stats: Any) -> xr.Dataset:  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def _stats_from_observed(ds: xr.Dataset) -> Any:  # pragma: no cover
        raise NotImplementedError

    # ---- optional capabilities ----------------------------------------------------------------
    def _native_kernel(self, stats: Any, codes: np.ndarray, pars: np.ndarray) -> Any:
        """A :class:`clvkit.inference.nutpie_native.NativeKernel` (compiled log posterior with
        the priors encoded as ``codes, pars``), or None when the model has none."""
        return None

    def _pymc_model(self, stats: Any, priors: dict[str, dict[str, Any]]) -> Any:
        """A PyMC model of the posterior, or None when the model has none."""
        return None

    def _unbounded_meaning(self, up: list[str], down: list[str], values: dict[str, float]) -> str:
        """What parameters running off (``up`` to their upper end, ``down`` to the lower one)
        mean in the data; models may say more."""
        return "these parameters are not identified by the data"

    def _target_accept(self) -> float:
        """NUTS's default target acceptance rate for this model (see :meth:`fit`), asked after
        the start point (and any parametrisation chosen there)."""
        return _sampling.TARGET_ACCEPT

    def _fit_attrs(self) -> dict[str, str]:
        """Further posterior attributes a fit records (a composite model's settings that its
        spec is rebuilt from, see :meth:`spec_for`)."""
        return {}

    # ---- the spec ---------------------------------------------------------------------------
    @classmethod
    def spec_for(cls, attrs: Mapping[str, Any]) -> ModelSpec:
        """The spec of a posterior of this class with these ``attrs``: ``cls.spec`` (a
        ``composite`` model rebuilds its spec from them)."""
        return cls.spec

    def _supports(self) -> tuple[str, ...]:
        """The support of each parameter (of each element: ``self._layout().flat_supports``)."""
        return tuple(self.spec.support(n) for n in self.spec.param_names)

    def _layout(self) -> Layout:
        """Where each parameter sits in the flat unconstrained vector (vector parameters take
        ``spec.param_sizes[name]`` entries)."""
        return Layout.of(self.spec)

    def _resolve_priors(self) -> dict[str, dict[str, Any]]:
        names = self.spec.param_names
        return resolve_priors(
            self._default_priors, self.priors, dict(zip(names, self._supports(), strict=True))
        )

    # ---- settings ---------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        """The constructor settings (scikit-learn convention)."""
        return {
            "priors": None if self.priors is None else {k: dict(v) for k, v in self.priors.items()}
        }

    def __repr__(self) -> str:
        return f"{type(self).__name__}(priors={self.priors!r})"

    # ---- fitting ----------------------------------------------------------------------------
    def fit(
        self,
        rfm: pd.DataFrame,
        *,
        method: str = "nuts",
        chains: int = 4,
        draws: int = 1000,
        tune: int = 1000,
        random_seed: int | np.random.Generator | None = None,
        progressbar: bool = True,
        sampler: str = "nutpie",
        target_accept: float | None = None,
    ) -> Self:
        """Fit the model to an RFM table.

        Parameters
        ----------
        rfm : pandas.DataFrame
            RFM table (see ``clvkit.rfm_summary``); its ``attrs["time_unit"]`` is recorded.
        method : {"nuts", "map", "mle", "laplace"}
            ``"nuts"`` samples the posterior; ``"map"`` finds the posterior mode (in the natural
            parameterisation, no Jacobian); ``"mle"`` maximises the likelihood alone. A point
            fit is stored as a posterior of one chain and one draw. ``"laplace"`` draws
            ``chains x draws`` samples from the normal approximation of the posterior of the
            unconstrained (e.g. log) parameters at its mode (covariance: inverse negative
            Hessian), for large bases where the posterior is tight and nearly normal; it raises
            ``ClvkitError`` if that Hessian is not negative definite.
        chains, draws, tune : int
            NUTS settings (ignored by point fits; ``"laplace"`` uses ``chains`` and ``draws``).
        random_seed : int, numpy.random.Generator or numpy.random.SeedSequence, optional
            Seed for the sampler (and for the Laplace draws); checked by
            :func:`clvkit.rng.check_random_seed` for every method.
        progressbar : bool
            Show the sampler's progress bar.
        sampler : {"nutpie", "nutpie-pytensor", "pymc"}
            NUTS implementation: ``"nutpie"`` runs nutpie on clvkit's numba log-density kernels,
            called from nutpie's threads as C functions (default and fastest: cached
            compilation, no graph to compile, no Python per gradient);
            ``"nutpie-pytensor"`` runs nutpie on the PyMC model compiled with numba;
            ``"pymc"`` runs PyMC's own NUTS on the PyMC model. All sample the unconstrained
            parameters (log scale for positive ones). ``"nutpie"`` falls back to the PyMC model
            when a model has no compiled kernel; a model with neither is refused
            (``ClvkitError``: use ``method="laplace"`` or ``"map"``).
        target_accept : float, optional
            NUTS's target acceptance rate in (0, 1), which sets its step size; a higher one
            (e.g. 0.95) takes smaller steps, which removes divergences in curved posteriors at
            the cost of more gradients per draw. Default 0.8 (0.9 for hierarchical segments
            that are not all centred, see ``docs/covariates.md``); recorded in
            ``posterior_.attrs``.

        Returns
        -------
        self

        Raises
        ------
        ClvkitError
            For bad arguments, data the model cannot learn from (see the model class), and for
            ``"mle"`` / ``"map"`` when the objective has no maximum: it keeps rising, or stays
            flat to within 0.01 over a 1000-fold change, as some parameters run to 0 or
            infinity (e.g. ``r, alpha -> inf`` together: no measurable variation in purchase
            rates). Such a fit has no estimate to report (its standard errors are infinite), so
            fit refuses it and names the parameters and what they mean, instead of returning an
            arbitrary point; ``"map"`` with the default priors and ``"nuts"`` are proper then.
        """
        if method not in METHODS:
            raise ClvkitError(
                f"argument 'method' is {method!r}. Suggestion: use one of {list(METHODS)}."
            )
        if sampler not in _sampling.SAMPLERS:
            raise ClvkitError(
                f"argument 'sampler' is {sampler!r}. "
                f"Suggestion: use one of {list(_sampling.SAMPLERS)}."
            )
        for arg, val, lo in (("chains", chains, 1), ("draws", draws, 1), ("tune", tune, 0)):
            if isinstance(val, bool) or not isinstance(val, (int, np.integer)) or val < lo:
                raise ClvkitError(f"argument {arg!r} is {val!r}. Suggestion: an integer >= {lo}.")
        random_seed = check_random_seed(random_seed)
        if target_accept is not None:
            target_accept = _sampling.check_target_accept(target_accept)
        priors = self._resolve_priors()
        stats, time_unit = self._prepare(rfm)
        names = self.spec.param_names
        supports = self._supports()
        layout = self._layout()
        flat_supports = layout.flat_supports  # one per entry of the flat vector
        model_name = self.spec.model_name
        kernel = None
        if method in ("nuts", "laplace"):
            codes, pars = _sampling.prior_arrays(names, priors, supports, layout.sizes)
            kernel = self._native_kernel(stats, codes, pars)
        pymc_model = None
        pyfunc = method == "nuts" and sampler == "nutpie" and kernel is None and self.numpy_nuts
        if method == "nuts" and (sampler != "nutpie" or kernel is None) and not pyfunc:
            pymc_model = self._pymc_model(stats, priors)
            if pymc_model is None:
                what = "a compiled log posterior" if sampler == "nutpie" else "a PyMC model"
                raise ClvkitError(
                    f"{self.spec.label} has no NUTS sampler here: sampler={sampler!r} needs "
                    f"{what}, which this model does not provide. Suggestion: fit with "
                    "method='laplace' (normal approximation of the posterior) or method='map'."
                )
        nuts_kw = dict(chains=int(chains), draws=int(draws), tune=int(tune),
                       random_seed=random_seed, progressbar=progressbar)  # fmt: skip
        if method == "nuts" and sampler == "nutpie" and (kernel is not None or pyfunc):
            objective = self._objective(stats, priors)
            start = _sampling.start_point(objective, self._x0(stats))  # the MAP, near enough
            if target_accept is None:  # asked after the start (and any choice made there)
                target_accept = self._target_accept()
            if kernel is not None:
                from clvkit.inference.nutpie_native import sample_native  # numba C callbacks

                posterior, sample_stats = sample_native(
                    kernel, layout.keys, flat_supports, start, target_accept=target_accept,
                    **nuts_kw,
                )  # fmt: skip
            else:
                from clvkit.inference.nutpie_pyfunc import sample_pyfunc  # nutpie, ArviZ

                posterior, sample_stats = sample_pyfunc(
                    self._objective(stats, priors, jacobian=True), layout.keys, flat_supports,
                    start, target_accept=target_accept, **nuts_kw,
                )  # fmt: skip
            posterior = layout.pack(posterior)
        elif method == "laplace":
            if kernel is not None:
                logp = _sampling.kernel_logp(kernel.logp, kernel.arrays)
            else:
                logp = self._objective(stats, priors, jacobian=True)
            posterior, sample_stats = _sampling.laplace_posterior(
                logp,
                layout.keys,
                self._x0(stats),
                chains=int(chains),
                draws=int(draws),
                random_seed=random_seed,
                what=model_name,
                supports=flat_supports,
            )
            posterior = layout.pack(posterior)
        elif method == "nuts":
            if target_accept is None:
                target_accept = self._target_accept()
            posterior, sample_stats = _sampling.sample_nuts(
                pymc_model, names, sampler=sampler, target_accept=target_accept, **nuts_kw
            )
            posterior = layout.normalize(posterior)
        else:
            objective = self._objective(stats, priors if method == "map" else None)
            try:
                theta, value, nit = _sampling.maximize(
                    objective, self._x0(stats), f"{model_name} {method.upper()}"
                )
            except _sampling.NotConvergedError as exc:
                self._check_bounded(objective, exc.theta, method, stats)
                raise
            self._check_bounded(objective, theta, method, stats)
            self._check_strict(objective, theta, method, stats)
            values = _transforms.to_natural(theta, flat_supports)
            if layout.has_vectors:
                posterior = layout.dataset(values[None, None, :])
            else:
                posterior = xr.Dataset(
                    {n: (("chain", "draw"), [[v]]) for n, v in zip(names, values, strict=True)},
                    coords={"chain": [0], "draw": [0]},
                )
            sample_stats = xr.Dataset(
                {
                    "lp": (("chain", "draw"), [[value]]),
                    "n_iterations": (("chain", "draw"), [[nit]]),
                },
                coords={"chain": [0], "draw": [0]},
            )
        attrs = {
            "time_unit": time_unit if time_unit is not None else "",
            "model": model_name,
            "method": method,
            "data_fingerprint": stats.fingerprint,
            "clvkit_version": _version(),
            "sampler": sampler if method == "nuts" else "",
            "target_accept": target_accept if method == "nuts" else "",
            "priors": json.dumps(priors) if method != "mle" else "",
            **self._fit_attrs(),
        }
        posterior.attrs.update(attrs)
        groups = {
            "posterior": posterior,
            "sample_stats": sample_stats,
            "observed_data": self._observed_data(stats),
        }
        self._set_fitted(groups, attrs, stats)
        if method == "nuts":
            _sampling.warn_convergence(self.diagnostics(), model_name, target_accept)
        return self

    # ---- a model from given parameters ----------------------------------------------------------
    @classmethod
    def from_params(cls, *, time_unit: str | None = None, **params: Any) -> Self:
        """A model at given parameter values (one draw), usable for predictions, customer
        value and backtests, e.g. ``BetaGeo.from_params(r=0.24, alpha=4.4, a=0.79, b=2.43,
        time_unit="W")``.

        Each parameter is a number (one draw) or a 1-D array of draws (one chain); a vector
        parameter (``spec.param_sizes``) is a list or 1-D array of its ``k`` elements (one
        draw) or an ``(S, k)`` array of draws. All of ``spec.param_names`` are required and
        each must lie in its support. ``method_`` is
        ``"given"``; there are no training data, so :meth:`save`, :attr:`log_likelihood_`
        and :meth:`diagnostics` refuse (:meth:`log_likelihood` of a table works).

        Examples
        --------
        >>> from clvkit import GammaGamma
        >>> gg = GammaGamma.from_params(p=6.2488, q=3.7446, v=15.4477)
        >>> gg.method_, round(gg.expected_spend_new_customer().item(), 2)
        ('given', 35.17)
        """
        names = cls.spec.param_names
        unknown = sorted(set(params) - set(names))
        missing = [n for n in names if n not in params]
        if unknown or missing:
            raise ClvkitError(
                f"{cls.__name__}.from_params got unknown parameters {unknown} and lacks "
                f"{missing}. Suggestion: pass exactly {list(names)} as keyword arguments."
            )
        layout = Layout.of(cls.spec)
        if layout.has_vectors:
            return cls.from_posterior(layout.draws(params), time_unit=time_unit)
        values = {}
        for n in names:
            try:
                v = np.asarray(params[n], dtype=np.float64)
            except (TypeError, ValueError):
                v = np.asarray(np.nan)
            if v.ndim > 1:
                raise ClvkitError(
                    f"argument {n!r} has shape {v.shape}. Suggestion: a number or a 1-D array "
                    "of draws."
                )
            values[n] = np.atleast_1d(v)
        return cls.from_posterior(values, time_unit=time_unit)

    @classmethod
    def from_posterior(cls, posterior: Any, time_unit: str | None = None) -> Self:
        """A model from given posterior draws: an ``InferenceData``, a posterior
        ``xarray.Dataset`` (dims ``chain, draw``), a dict of draws or a fitted model of this
        class; ``method_`` is
        ``"given"`` (see :meth:`from_params`). ``time_unit`` defaults to the posterior's
        ``attrs["time_unit"]``; a given one must agree with it.

        Examples
        --------
        >>> from clvkit import BetaGeo
        >>> fitted = BetaGeo.from_params(r=0.24, alpha=4.41, a=0.79, b=2.43, time_unit="W")
        >>> again = BetaGeo.from_posterior(fitted.posterior_)
        >>> again.time_unit_, again.method_, dict(again.posterior_.sizes)
        ('W', 'given', {'chain': 1, 'draw': 1})
        """
        from clvkit.models import registry  # same layer; lazy: registry imports the models
        from clvkit.units import format_time_unit

        if isinstance(posterior, ModelBase):
            posterior = posterior.posterior_
        attrs = dict(getattr(posterior, "attrs", {}) or {})
        inner = getattr(posterior, "posterior", None)
        if inner is not None and not isinstance(posterior, xr.Dataset):
            attrs.update(getattr(inner, "attrs", {}) or {})
        named = attrs.get("model")
        if named and named != cls.spec.model_name:
            spec = registry.spec_of(posterior, cls.spec.kind, "posterior")  # refuses a spend
            raise ClvkitError(
                f"argument 'posterior' holds a {spec.label} posterior, not {cls.spec.label}. "
                f"Suggestion: use {registry.get(spec.model_name).__name__}.from_posterior."
            )
        layout = Layout.of(cls.spec)
        if layout.has_vectors and isinstance(posterior, dict):  # (S, k) draws of a vector
            posterior = layout.draws(posterior, "posterior")
        # validated against this class's spec (it need not be registered)
        holder = SimpleNamespace(spec=cls.spec, posterior_=posterior)
        _, post = registry.resolve(holder, cls.spec.kind, "posterior")
        names = list(cls.spec.param_names)
        given = post.attrs.get("time_unit") or None
        unit = given
        if time_unit is not None:
            try:
                unit = format_time_unit(time_unit)
            except ValueError as exc:
                raise ClvkitError(
                    f"argument 'time_unit' is {time_unit!r}. Suggestion: 'W', 'D', '30D', ..."
                ) from exc
            if given is not None and format_time_unit(given) != unit:
                raise ClvkitError(
                    f"argument 'time_unit' is {unit!r} but the posterior is in {given!r}. "
                    "Suggestion: leave time_unit out, or convert the parameters first."
                )
        ds = layout.normalize(post[names], "posterior").transpose("chain", "draw", ...).copy()
        ds = ds.assign_coords(chain=np.arange(ds.sizes["chain"]), draw=np.arange(ds.sizes["draw"]))
        attrs = {
            "time_unit": unit or "",
            "model": cls.spec.model_name,
            "method": "given",
            "data_fingerprint": "",
            "clvkit_version": _version(),
            "sampler": "",
            "priors": "",
        }
        ds.attrs = dict(attrs)
        model = cls()
        model._set_fitted({"posterior": ds}, attrs, None)
        return model

    def _set_fitted(
        self, groups: dict[str, xr.Dataset], attrs: dict[str, Any], stats: Any, idata: Any = None
    ) -> None:
        self._groups = groups
        self._attrs = dict(attrs)
        self._idata = idata
        self.stats_ = stats
        unit = attrs.get("time_unit", "")
        self.time_unit_ = unit or None
        self.method_ = attrs["method"]
        self.n_customers_ = None if stats is None else stats.n_customers

    @property
    def idata_(self) -> az.InferenceData:
        """The fit as ArviZ ``InferenceData``: ``posterior`` (dims chain, draw),
        ``sample_stats`` and ``observed_data`` (the compressed statistics), with the time unit,
        method, priors and data fingerprint in ``attrs``. Built on first access (importing
        ArviZ takes ~2.5 s, which a fit alone does not need)."""
        self._check_fitted()
        if self._idata is None:
            import arviz as az

            idata = az.InferenceData(**self._groups)
            idata.attrs.update(self._attrs)
            self._idata = idata
        return self._idata

    @property
    def posterior_(self) -> xr.Dataset:
        """Posterior draws of the parameters, dims ``(chain, draw)``; attrs as ``idata_``."""
        self._check_fitted()
        return self._groups["posterior"]

    def _check_bounded(self, objective: Any, theta: np.ndarray, method: str, stats: Any) -> None:
        """Raise ``ClvkitError`` when the MLE (or MAP) objective has no maximum: it keeps rising,
        or stays flat, as some parameters run to the ends of their support (see
        :func:`clvkit.inference.sampling.unbounded_direction`)."""
        d = _sampling.unbounded_direction(objective, theta)
        if d is None:
            return
        layout = self._layout()
        names = layout.labels  # one per entry of the flat vector
        supports = layout.flat_supports
        ends = {
            "positive": ("infinity", "0"),
            "real": ("+infinity", "-infinity"),
            "unit": ("1", "0"),
        }
        big = np.abs(d) >= 0.3 * np.abs(d).max()
        up = [n for n, m, s in zip(names, big, d, strict=True) if m and s > 0]
        down = [n for n, m, s in zip(names, big, d, strict=True) if m and s < 0]
        sup = dict(zip(names, supports, strict=True))
        moves = " and ".join(
            [f"{n} -> {ends[sup[n]][0]}" for n in up] + [f"{n} -> {ends[sup[n]][1]}" for n in down]
        )
        natural = _transforms.to_natural(np.asarray(theta, dtype=np.float64), supports)
        values = {n: float(v) for n, v in zip(names, natural, strict=True)}
        meaning = self._unbounded_meaning(up, down, values)
        n = stats.n_customers
        model_name = self.spec.model_name
        if method == "mle":
            what = f"{model_name} maximum-likelihood estimate does not exist for these data"
            fix = (
                "fit with method='map' or method='nuts' (their priors keep the parameters "
                "finite), or fit on more customers or a longer calibration window"
            )
        else:
            what = f"{model_name} posterior mode (MAP) does not exist with these priors"
            fix = f"pass proper, tighter priors for {sorted(up + down)}, or use method='nuts'"
        raise ClvkitError(
            f"{what}: the {'likelihood' if method == 'mle' else 'posterior'} keeps rising or "
            f"stays flat as {moves} ({n:,} customers; {meaning}), so any finite estimate "
            f"would be an arbitrary point on that ray. Suggestion: {fix}."
        )

    def _objective(
        self, stats: Any, priors: dict[str, dict[str, Any]] | None, jacobian: bool = False
    ):
        """``theta -> (value, gradient)`` on the unconstrained scale: the log-likelihood, plus
        the log priors (MAP: in the natural parameterisation) when ``priors`` are given, plus
        the log Jacobian of the transforms when ``jacobian`` (the density NUTS samples)."""
        layout = self._layout()
        names = layout.owners  # the parameter of each entry: a vector's prior for each element
        supports = layout.flat_supports
        if priors is not None and jacobian:  # the density NUTS samples: priors compiled
            codes, pars = _sampling.prior_arrays(
                layout.names, priors, layout.supports, layout.sizes
            )

            def log_posterior(theta: np.ndarray) -> tuple[float, np.ndarray]:
                with np.errstate(all="ignore"):
                    value, grad = self._loglik_grad(theta, stats)
                grad = np.array(grad, dtype=np.float64)
                theta = np.asarray(theta, dtype=np.float64)
                return value + _sampling.nb_prior(theta, codes, pars, grad), grad

            return log_posterior

        def fun_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
            with np.errstate(all="ignore"):
                value, grad = self._loglik_grad(theta, stats)
            if priors is not None:
                grad = grad.copy()
                for i, n in enumerate(names):
                    t, dt = _transforms.dnatural(theta[i], supports[i])
                    lp, dlp = prior_logp_grad(t, priors[n])
                    value += lp
                    grad[i] += dlp * dt
                    if jacobian:
                        lj, dlj = _transforms.log_jacobian(theta[i], supports[i])
                        value += lj
                        grad[i] += dlj
            return value, grad

        return fun_grad

    # ---- fitted state -----------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if "_groups" not in self.__dict__:
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet. Suggestion: call "
                f"model.fit(rfm) first (or clvkit.load(path) for a saved model)."
            )

    def _check_data(self, what: str) -> None:
        self._check_fitted()
        if self.stats_ is None:
            raise ClvkitError(
                f"{what} needs the training data, but this {type(self).__name__} was built "
                f"from given parameters (method_='given'). Suggestion: fit the model to the "
                "data with model.fit(rfm); or keep the parameters themselves, e.g. "
                "model.posterior_.to_netcdf(path)."
            )

    def _draws(self) -> tuple[dict[str, np.ndarray], tuple[int, int]]:
        """Posterior draws as ``(S, 1)`` arrays (``(S, k)`` for vector parameters) and the
        ``(chain, draw)`` shape."""
        self._check_fitted()
        post = self.posterior_
        shape = (post.sizes["chain"], post.sizes["draw"])
        out = {}
        for n in self.spec.param_names:
            v = post[n].transpose("chain", "draw", ...).to_numpy().astype(np.float64)
            out[n] = v.reshape(shape[0] * shape[1], -1)
        return out, shape

    def _wrap(
        self, values: np.ndarray, shape: tuple[int, int], ids: pd.Index | None, name: str
    ) -> xr.DataArray:
        """``(S[, n])`` values as a DataArray with dims ``chain, draw[, customer_id]``."""
        post = self.posterior_
        coords = {"chain": post["chain"].to_numpy(), "draw": post["draw"].to_numpy()}
        if ids is None:
            return xr.DataArray(
                np.asarray(values).reshape(shape), dims=("chain", "draw"), coords=coords, name=name
            )
        coords["customer_id"] = ids
        arr = np.asarray(values).reshape(*shape, len(ids))
        return xr.DataArray(arr, dims=("chain", "draw", "customer_id"), coords=coords, name=name)

    def _customers(self, rfm: pd.DataFrame, argument: str = "rfm") -> tuple[dict, pd.Index]:
        """The spec's validated columns of ``rfm`` and its customer ids, after checking that
        its time unit (if any) is the model's."""
        cols = self.spec.customer_columns(rfm, argument=argument)
        unit = rfm.attrs.get(TIME_UNIT_ATTR)
        model_unit = getattr(self, "time_unit_", None)  # None before a fit
        check_time_unit(format_time_unit(unit) if unit is not None else None, model_unit)
        return cols, rfm.index.copy()

    def _params(self, params: Mapping[str, Any] | None) -> tuple[dict[str, np.ndarray], tuple]:
        """Draws of the fitted posterior (``params=None``) or of given parameter values (a
        dict of numbers or 1-D draws, validated like :meth:`from_params`)."""
        if params is None:
            return self._draws()
        other = type(self).from_params(**dict(params)) if isinstance(params, Mapping) else None
        if other is None:
            raise ClvkitError(
                f"argument 'params' must be a dict of parameter values, got "
                f"{type(params).__name__}. Suggestion: params={{'r': 0.24, ...}} or None."
            )
        return other._draws()

    @property
    def log_likelihood_(self) -> float:
        """Log-likelihood of the fitted data at the point estimate (posterior mean for NUTS)."""
        self._check_data("log_likelihood_")
        post = self.posterior_
        layout = self._layout()
        if layout.has_vectors:  # each element's mean
            means = layout.flat(post).mean(axis=(0, 1))
        else:
            means = np.array([float(post[n].mean()) for n in self.spec.param_names])
        theta = _transforms.to_unconstrained(means, layout.flat_supports)
        return self._loglik_grad(theta, self.stats_)[0]

    # ---- diagnostics and summary --------------------------------------------------------------
    def diagnostics(self) -> dict[str, Any]:
        """Convergence figures of a NUTS fit (R-hat, bulk/tail ESS, divergences, verdict).

        Raises ``ClvkitError`` for point fits, which have no sampler diagnostics.
        """
        self._check_fitted()
        if self.method_ != "nuts":
            raise ClvkitError(
                f"diagnostics need a NUTS fit; this model was fitted with method={self.method_!r}."
                " Suggestion: fit(rfm, method='nuts')."
            )
        return _sampling.check_convergence(
            self._groups["posterior"], self._groups.get("sample_stats"), self.spec.param_names
        )  # each element of a vector parameter counts on its own

    def summary(self, prob: float = 0.9) -> pd.DataFrame:
        """Posterior summary: mean, sd, central ``prob`` interval, R-hat, bulk and tail ESS.

        For point fits (MAP/MLE) ``mean`` is the estimate, ``sd`` the asymptotic standard error
        from the observed information (delta method from the unconstrained scale: log for
        positive parameters), the interval a normal interval on that scale, and R-hat/ESS are
        NaN (no sampler). A model built from given draws (``method_ == "given"``) shows their
        mean, sd and quantiles, with R-hat/ESS NaN.

        Parameters
        ----------
        prob : float
            Interval probability, in (0, 1).

        Returns
        -------
        pandas.DataFrame
            One row per parameter; a vector parameter (``spec.param_sizes``) has one row per
            element, indexed ``"name[element]"`` (e.g. ``"coef_alpha[channel[B]]"``).
        """
        self._check_fitted()
        check_prob(prob)
        layout = self._layout()
        names = layout.labels  # a vector parameter: one row per element, "name[element]"
        supports = layout.flat_supports
        post = self.posterior_
        flat = layout.flat(post) if layout.has_vectors else None
        lo_q, hi_q = (1 - prob) / 2, (1 + prob) / 2
        lo_name, hi_name = f"{100 * lo_q:g}%", f"{100 * hi_q:g}%"
        rows = {}
        if self.method_ in ("nuts", "laplace", "given"):
            sampled = self.method_ != "given"
            for i, n in enumerate(names):
                if flat is None:
                    draws = post[n].transpose("chain", "draw").to_numpy()
                else:
                    draws = np.ascontiguousarray(flat[:, :, i])
                v = draws.ravel()
                rows[n] = {
                    "mean": v.mean(),
                    "sd": v.std(ddof=1) if v.size > 1 else np.nan,
                    lo_name: np.quantile(v, lo_q),
                    hi_name: np.quantile(v, hi_q),
                    "r_hat": _diagnostics.rhat(draws) if sampled else np.nan,
                    "ess_bulk": _diagnostics.ess_bulk(draws) if sampled else np.nan,
                    "ess_tail": _diagnostics.ess_tail(draws) if sampled else np.nan,
                }
        else:
            if flat is None:
                est_all = np.array([float(post[n].values.ravel()[0]) for n in names])
            else:
                est_all = flat[0, 0].copy()
            theta = _transforms.to_unconstrained(est_all, supports)
            sd_theta = self._point_sd_log(theta)
            z = float(ndtri(hi_q))
            with np.errstate(over="ignore", invalid="ignore"):
                for i, n in enumerate(names):
                    est, dest = _transforms.dnatural(theta[i], supports[i])
                    if supports[i] == "positive":  # bit-for-bit the log-scale formulas
                        est = math.exp(theta[i])
                        lo, hi = est * np.exp(-z * sd_theta[i]), est * np.exp(z * sd_theta[i])
                    else:
                        lo_hi = theta[i] + np.array([-z, z]) * sd_theta[i]
                        lo, hi = _transforms.to_natural(lo_hi[:, None], (supports[i],))[:, 0]
                    rows[n] = {
                        "mean": est,
                        "sd": dest * sd_theta[i],
                        lo_name: lo,
                        hi_name: hi,
                        "r_hat": np.nan,
                        "ess_bulk": np.nan,
                        "ess_tail": np.nan,
                    }
        return pd.DataFrame.from_dict(rows, orient="index")

    def _information(self, objective: Any, theta: np.ndarray) -> tuple[np.ndarray | None, str]:
        """The Cholesky factor of the observed information (the negative Hessian of the
        objective) at ``theta``, or ``None`` where it is not positive definite, with the
        parameters along its flattest direction (text)."""
        names = self._layout().labels
        with np.errstate(all="ignore"):
            info = -_sampling.hessian_log_scale(objective, theta)
        try:
            chol = np.linalg.cholesky(info) if np.all(np.isfinite(info)) else None
        except np.linalg.LinAlgError:
            chol = None
        if chol is not None and np.all(np.isfinite(np.linalg.inv(chol))):
            return chol, ""
        flat = ""
        if np.all(np.isfinite(info)):
            d = np.abs(np.linalg.eigh(info)[1][:, 0])
            flat = ", ".join(n for n, x in zip(names, d >= 0.3 * d.max(), strict=True) if x)
        return None, flat

    def _check_strict(self, objective: Any, theta: np.ndarray, method: str, stats: Any) -> None:
        """Raise ``ClvkitError`` when the point fit is not a strict maximum (the objective is
        flat along a ridge through it, e.g. three Gamma-Gamma parameters from two repeat
        customers): any point on the ridge fits as well, so the estimate would be arbitrary."""
        chol, flat = self._information(objective, theta)
        if chol is not None:
            return
        what = "maximum-likelihood estimate" if method == "mle" else "posterior mode (MAP)"
        along = f" along {flat}" if flat else ""
        raise ClvkitError(
            f"{self.spec.model_name} {what} is not unique for these data "
            f"({stats.n_customers:,} customers): the objective is flat{along} at the optimum, "
            "so any point on that ridge fits as well. Suggestion: fit with method='nuts' (the "
            "posterior shows the ridge), pass tighter priors with method='map', or fit on more "
            "customers."
        )

    def _point_sd_log(self, theta: np.ndarray) -> np.ndarray:
        """Standard errors of the unconstrained parameters (log scale for positive ones) of a
        point fit, from the observed information (the negative Hessian of the objective).
        Where that is not positive definite (a flat or saddle direction: the estimate is not a
        strict maximum, as for a boundary fit saved before ``fit`` refused them), every
        standard error is ``inf`` and a ``ConvergenceWarning`` says which parameters are not
        bounded."""
        names = self._layout().labels
        priors = json.loads(self._attrs["priors"]) if self.method_ == "map" else None
        chol, flattest = self._information(self._objective(self.stats_, priors), theta)
        if chol is not None:
            inv = np.linalg.inv(chol)  # info^-1 = inv^T inv
            return np.sqrt(np.sum(inv * inv, axis=0))
        flat = f" (flattest along {flattest})" if flattest else ""
        warnings.warn(
            f"{self.spec.model_name} {self.method_.upper()} estimate is not a strict maximum: "
            f"the observed information is not positive definite{flat}, so standard errors and "
            "intervals are undefined and shown as inf. Suggestion: refit with method='map' or "
            "method='nuts'.",
            ConvergenceWarning,
            stacklevel=3,
        )
        return np.full(len(names), np.inf)

    # ---- persistence ------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> None:
        """Write the fitted model (posterior, data statistics, priors, time unit) to NetCDF.

        The file is written to a temporary file in the same folder and then atomically moved
        into place. Read it back with :func:`clvkit.load`. A model built by
        :meth:`from_params` / :meth:`from_posterior` has no data statistics and is refused
        (``ClvkitError``): save its posterior instead.
        """
        from clvkit.utils.io import atomic_path, model_file_path  # temp + rename, umask mode

        self._check_data("save")
        path = model_file_path(path)
        idata = self.idata_.copy()
        idata.attrs.update(
            {
                "clvkit_format": FORMAT_NAME,
                "clvkit_format_version": FORMAT_VERSION,
                "settings": json.dumps(self.get_params()),
            }
        )
        with atomic_path(path) as tmp:
            idata.to_netcdf(tmp, engine="h5netcdf")


def _version() -> str:
    import clvkit

    return str(clvkit.__version__)
