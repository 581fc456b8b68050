"""Shared plumbing of the models: priors, fitting by NUTS/MAP/MLE, idata, summary, save.

Each model (``BetaGeo``, ``GammaGamma``) subclasses :class:`ModelBase` once and supplies its
data preparation, numpy log-likelihood (with gradient) and PyMC graph.
"""

from __future__ import annotations

import json
import math
import os
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import gammaln, ndtri

from clvkit.errors import ClvkitError, ConvergenceWarning, NotFittedError
from clvkit.inference import diagnostics as _diagnostics
from clvkit.inference import sampling as _sampling
from clvkit.models.inputs import RFMArrays, check_time_unit
from clvkit.rng import check_random_seed

if TYPE_CHECKING:
    import arviz as az

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "PRIOR_DISTS", "ModelBase", "resolve_priors"]

FORMAT_NAME = "clvkit-model"
FORMAT_VERSION = 1
METHODS = ("nuts", "map", "mle", "laplace")

#: Supported prior families (all on the positive half-line) and their parameter names,
#: spelled as in PyMC.
PRIOR_DISTS: dict[str, tuple[str, ...]] = {
    "LogNormal": ("mu", "sigma"),
    "Gamma": ("alpha", "beta"),
    "HalfNormal": ("sigma",),
    "Exponential": ("lam",),
    "HalfCauchy": ("beta",),
}


def resolve_priors(
    defaults: Mapping[str, Mapping[str, Any]],
    overrides: Mapping[str, Mapping[str, Any]] | None,
) -> dict[str, dict[str, Any]]:
    """Merge per-parameter prior overrides into the defaults and validate them.

    A prior is a plain dict such as ``{"dist": "Gamma", "alpha": 2.0, "beta": 1.0}``.

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
    """Log-density of a prior at ``theta > 0`` and its derivative in ``theta``."""
    d = spec["dist"]
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


def pymc_prior(name: str, spec: Mapping[str, Any]) -> Any:
    """Create the PyMC random variable for a validated prior (inside a model context)."""
    import pymc as pm

    params = {k: v for k, v in spec.items() if k != "dist"}
    return getattr(pm, spec["dist"])(name, **params)


class ModelBase:
    """Common machinery; subclasses set the class attributes and the ``_`` hooks."""

    _model_name: ClassVar[str]
    _param_names: ClassVar[tuple[str, ...]]
    _default_priors: ClassVar[dict[str, dict[str, Any]]]
    _time_unit_required: ClassVar[bool]

    def __init__(self, priors: Mapping[str, Mapping[str, Any]] | None = None) -> None:
        self.priors = priors

    # ---- hooks ------------------------------------------------------------------------------
    def _prepare(self, rfm: pd.DataFrame) -> tuple[Any, str | None]:  # pragma: no cover
        raise NotImplementedError

    def _loglik_grad(self, theta: np.ndarray, stats: Any) -> tuple[float, np.ndarray]:
        raise NotImplementedError  # pragma: no cover

    def _x0(self, stats: Any) -> np.ndarray:  # pragma: no cover
        raise NotImplementedError

    def _pymc_model(self, stats: Any, priors: dict[str, dict[str, Any]]) -> Any:
        raise NotImplementedError  # pragma: no cover

    def _observed_data(self, stats: Any) -> xr.Dataset:  # pragma: no cover
        raise NotImplementedError

    @staticmethod
    def _stats_from_observed(ds: xr.Dataset) -> Any:  # pragma: no cover
        raise NotImplementedError

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
            log parameters at its mode (covariance: inverse negative Hessian), for large bases
            where the posterior is tight and nearly normal; it raises ``ClvkitError`` if that
            Hessian is not negative definite.
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
            ``"pymc"`` runs PyMC's own NUTS on the PyMC model. All sample the log parameters.

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
        priors = resolve_priors(self._default_priors, self.priors)
        stats, time_unit = self._prepare(rfm)
        names = self._param_names
        if method == "nuts" and sampler == "nutpie":
            objective = self._objective(stats, priors)
            try:
                start = _sampling.maximize(objective, self._x0(stats), "MAP start")[0]
            except ClvkitError:
                start = self._x0(stats)
            from clvkit.inference.nutpie_native import sample_native  # numba C callbacks

            posterior, sample_stats = sample_native(
                self._model_name,
                _sampling.kernel_arrays(self._model_name, stats, priors, names)[1],
                names,
                start,
                chains=int(chains),
                draws=int(draws),
                tune=int(tune),
                random_seed=random_seed,
                progressbar=progressbar,
            )
        elif method == "laplace":
            posterior, sample_stats = _sampling.laplace_posterior(
                _sampling.kernel_logp(self._model_name, stats, priors, names),
                names,
                self._x0(stats),
                chains=int(chains),
                draws=int(draws),
                random_seed=random_seed,
                what=self._model_name,
            )
        elif method == "nuts":
            posterior, sample_stats = _sampling.sample_nuts(
                self._pymc_model(stats, priors),
                names,
                sampler=sampler,
                chains=int(chains),
                draws=int(draws),
                tune=int(tune),
                random_seed=random_seed,
                progressbar=progressbar,
            )
        else:
            objective = self._objective(stats, priors if method == "map" else None)
            try:
                theta, value, nit = _sampling.maximize(
                    objective, self._x0(stats), f"{self._model_name} {method.upper()}"
                )
            except _sampling.NotConvergedError as exc:
                self._check_bounded(objective, exc.theta, method, stats)
                raise
            self._check_bounded(objective, theta, method, stats)
            values = np.exp(theta)
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
            "model": self._model_name,
            "method": method,
            "data_fingerprint": stats.fingerprint,
            "clvkit_version": _version(),
            "sampler": sampler if method == "nuts" else "",
            "priors": json.dumps(priors) if method != "mle" else "",
        }
        posterior.attrs.update(attrs)
        groups = {
            "posterior": posterior,
            "sample_stats": sample_stats,
            "observed_data": self._observed_data(stats),
        }
        self._set_fitted(groups, attrs, stats)
        if method == "nuts":
            _sampling.warn_convergence(self.diagnostics(), self._model_name)
        return self

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
        self.n_customers_ = stats.n_customers

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

    def _unbounded_meaning(self, up: list[str], down: list[str], values: dict[str, float]) -> str:
        """What parameters running off (``up`` to infinity, ``down`` to 0) mean in the data."""
        return ""  # pragma: no cover - both models override it

    def _check_bounded(self, objective: Any, theta: np.ndarray, method: str, stats: Any) -> None:
        """Raise ``ClvkitError`` when the MLE (or MAP) objective has no maximum: it keeps rising,
        or stays flat, as some parameters run to 0 or infinity (see
        :func:`clvkit.inference.sampling.unbounded_direction`)."""
        d = _sampling.unbounded_direction(objective, theta)
        if d is None:
            return
        names = self._param_names
        big = np.abs(d) >= 0.3 * np.abs(d).max()
        up = [n for n, m, s in zip(names, big, d, strict=True) if m and s > 0]
        down = [n for n, m, s in zip(names, big, d, strict=True) if m and s < 0]
        moves = " and ".join([f"{n} -> infinity" for n in up] + [f"{n} -> 0" for n in down])
        values = {n: float(np.exp(t)) for n, t in zip(names, theta, strict=True)}
        meaning = self._unbounded_meaning(up, down, values)
        n = stats.n_customers
        if method == "mle":
            what = f"{self._model_name} maximum-likelihood estimate does not exist for these data"
            fix = (
                "fit with method='map' or method='nuts' (their priors keep the parameters "
                "finite), or fit on more customers or a longer calibration window"
            )
        else:
            what = f"{self._model_name} posterior mode (MAP) does not exist with these priors"
            fix = f"pass proper, tighter priors for {sorted(up + down)}, or use method='nuts'"
        raise ClvkitError(
            f"{what}: the {'likelihood' if method == 'mle' else 'posterior'} keeps rising or "
            f"stays flat as {moves} ({n:,} customers; {meaning}), so any finite estimate "
            f"would be an arbitrary point on that ray. Suggestion: {fix}."
        )

    def _objective(self, stats: Any, priors: dict[str, dict[str, Any]] | None):
        names = self._param_names

        def fun_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
            with np.errstate(all="ignore"):
                value, grad = self._loglik_grad(theta, stats)
            if priors is not None:
                grad = grad.copy()
                for i, n in enumerate(names):
                    t = math.exp(theta[i])
                    lp, dlp = prior_logp_grad(t, priors[n])
                    value += lp
                    grad[i] += dlp * t
            return value, grad

        return fun_grad

    # ---- fitted state -----------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if "_groups" not in self.__dict__:
            raise NotFittedError(
                f"This {type(self).__name__} is not fitted yet. Suggestion: call "
                f"model.fit(rfm) first (or clvkit.load(path) for a saved model)."
            )

    def _draws(self) -> tuple[dict[str, np.ndarray], tuple[int, int]]:
        """Posterior draws as ``(S, 1)`` arrays and the ``(chain, draw)`` shape."""
        self._check_fitted()
        post = self.posterior_
        shape = (post.sizes["chain"], post.sizes["draw"])
        out = {n: post[n].to_numpy().reshape(-1, 1).astype(np.float64) for n in self._param_names}
        return out, shape

    def _wrap(
        self, values: np.ndarray, shape: tuple[int, int], data: RFMArrays | None, name: str
    ) -> xr.DataArray:
        post = self.posterior_
        coords = {"chain": post["chain"].to_numpy(), "draw": post["draw"].to_numpy()}
        if data is None:
            return xr.DataArray(
                np.asarray(values).reshape(shape), dims=("chain", "draw"), coords=coords, name=name
            )
        coords["customer_id"] = data.customer_id
        arr = np.asarray(values).reshape(*shape, len(data.customer_id))
        return xr.DataArray(arr, dims=("chain", "draw", "customer_id"), coords=coords, name=name)

    def _check_unit(self, data: RFMArrays) -> None:
        check_time_unit(data.time_unit, self.time_unit_)

    @property
    def log_likelihood_(self) -> float:
        """Log-likelihood of the fitted data at the point estimate (posterior mean for NUTS)."""
        self._check_fitted()
        post = self.posterior_
        theta = np.log([float(post[n].mean()) for n in self._param_names])
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
            self._groups["posterior"], self._groups.get("sample_stats"), self._param_names
        )

    def summary(self, prob: float = 0.9) -> pd.DataFrame:
        """Posterior summary: mean, sd, central ``prob`` interval, R-hat, bulk and tail ESS.

        For point fits (MAP/MLE) ``mean`` is the estimate, ``sd`` the asymptotic standard error
        from the observed information (delta method from the log scale), the interval a normal
        interval on the log scale, and R-hat/ESS are NaN (no sampler).

        Parameters
        ----------
        prob : float
            Interval probability, in (0, 1).

        Returns
        -------
        pandas.DataFrame
            One row per parameter.
        """
        self._check_fitted()
        if not (isinstance(prob, (int, float)) and 0 < prob < 1):
            raise ClvkitError(f"argument 'prob' is {prob!r}. Suggestion: a number in (0, 1).")
        names = self._param_names
        post = self.posterior_
        lo_q, hi_q = (1 - prob) / 2, (1 + prob) / 2
        lo_name, hi_name = f"{100 * lo_q:g}%", f"{100 * hi_q:g}%"
        rows = {}
        if self.method_ in ("nuts", "laplace"):
            for n in names:
                draws = post[n].transpose("chain", "draw").to_numpy()
                v = draws.ravel()
                rows[n] = {
                    "mean": v.mean(),
                    "sd": v.std(ddof=1),
                    lo_name: np.quantile(v, lo_q),
                    hi_name: np.quantile(v, hi_q),
                    "r_hat": _diagnostics.rhat(draws),
                    "ess_bulk": _diagnostics.ess_bulk(draws),
                    "ess_tail": _diagnostics.ess_tail(draws),
                }
        else:
            theta = np.log([float(post[n].values.ravel()[0]) for n in names])
            sd_log = self._point_sd_log(theta)
            z = float(ndtri(hi_q))
            with np.errstate(over="ignore", invalid="ignore"):
                for i, n in enumerate(names):
                    est = math.exp(theta[i])
                    rows[n] = {
                        "mean": est,
                        "sd": est * sd_log[i],
                        lo_name: est * np.exp(-z * sd_log[i]),
                        hi_name: est * np.exp(z * sd_log[i]),
                        "r_hat": np.nan,
                        "ess_bulk": np.nan,
                        "ess_tail": np.nan,
                    }
        return pd.DataFrame.from_dict(rows, orient="index")

    def _point_sd_log(self, theta: np.ndarray) -> np.ndarray:
        """Standard errors of the log parameters of a point fit, from the observed information
        (the negative Hessian of the objective). Where that is not positive definite (a flat or
        saddle direction: the estimate is not a strict maximum, as for a boundary fit saved before
        ``fit`` refused them), every standard error is ``inf`` and a
        ``ConvergenceWarning`` says which parameters are not bounded."""
        names = self._param_names
        priors = json.loads(self._attrs["priors"]) if self.method_ == "map" else None
        objective = self._objective(self.stats_, priors)
        with np.errstate(all="ignore"):
            info = -_sampling.hessian_log_scale(objective, theta)
        try:
            chol = np.linalg.cholesky(info) if np.all(np.isfinite(info)) else None
        except np.linalg.LinAlgError:
            chol = None
        if chol is not None:
            inv = np.linalg.inv(chol)  # info^-1 = inv^T inv
            sd_log = np.sqrt(np.sum(inv * inv, axis=0))
            if np.all(np.isfinite(sd_log)):
                return sd_log
        flat = ""
        if np.all(np.isfinite(info)):
            v = np.linalg.eigh(info)[1]
            d = np.abs(v[:, 0])
            flat = (
                " (flattest along "
                + ", ".join(n for n, x in zip(names, d >= 0.3 * d.max(), strict=True) if x)
                + ")"
            )
        warnings.warn(
            f"{self._model_name} {self.method_.upper()} estimate is not a strict maximum: the "
            f"observed information is not positive definite{flat}, so standard errors and "
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
        into place. Read it back with :func:`clvkit.load`.
        """
        self._check_fitted()
        path = os.fspath(path)
        folder = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(folder):
            raise ClvkitError(
                f"argument 'path' is {path!r}, whose folder does not exist. "
                "Suggestion: create the folder first."
            )
        idata = self.idata_.copy()
        idata.attrs.update(
            {
                "clvkit_format": FORMAT_NAME,
                "clvkit_format_version": FORMAT_VERSION,
                "settings": json.dumps(self.get_params()),
            }
        )
        from clvkit.utils.io import atomic_path  # temp + rename, usual file mode (umask)

        with atomic_path(path) as tmp:
            idata.to_netcdf(tmp, engine="h5netcdf")


def _version() -> str:
    import clvkit

    return str(clvkit.__version__)
