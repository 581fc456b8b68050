"""New customers per period: counted from a log, modelled, or planned.

- :func:`acquisition_counts`: new customers (first purchase dates) per period of a log;
- :class:`AcquisitionModel`: a Bayesian negative-binomial count model of those counts, with a
  log-linear trend and Fourier seasonality, fitted by NUTS (nutpie on a numpy log density),
  MAP or Laplace; it says in words when acquisition stopped (and then forecasts zero);
- :class:`AcquisitionPlan`: counts the user plans, with an optional uncertainty.

Both the model and the plan have ``forecast(n_periods, kind=...)`` -> ``(chain, draw,
period)`` counts of new customers per future period, period 1 starting at the end of the
observed counts, and ``period`` (the length of one period, a :class:`pandas.Timedelta`, or
``None`` for a plan in the valuation's cash-flow periods).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr
from scipy import special

from clvkit.data import read_purchases
from clvkit.errors import ClvkitError, ClvkitWarning, bad_rows_error
from clvkit.inference.diagnostics import ess_bulk, rhat
from clvkit.inference.nutpie_pyfunc import sample_pyfunc
from clvkit.inference.sampling import TARGET_ACCEPT, check_target_accept
from clvkit.rng import check_random_seed, make_rng
from clvkit.units import format_time_unit, parse_date, parse_time_unit

__all__ = [
    "AcquisitionModel",
    "AcquisitionPlan",
    "acquisition_counts",
    "period_words",
    "stopped_run",
]

#: A trailing run of empty periods means "acquisition stopped" when a Poisson process at the
#: mean rate of the periods before it would give such a run with probability below this.
STOP_PROBABILITY = 1e-3


def period_words(period: pd.Timedelta) -> tuple[str, str]:
    """``(singular, plural)`` words of a period: ``("week", "weeks")`` for 7 days, else e.g.
    ``("period of 4W", "periods of 4W")``."""
    names = {1: "day", 7: "week"}
    days = period / pd.Timedelta(days=1)
    if days in names:
        return names[days], names[days] + "s"
    if abs(days - 30.4375) < 1e-9:
        return "month", "months"
    if abs(days - 91.3125) < 1e-9:
        return "quarter", "quarters"
    text = format_time_unit(period)
    return f"period of {text}", f"periods of {text}"


def acquisition_counts(
    log: pd.DataFrame | str | os.PathLike,
    *,
    customer_id: Hashable = "customer_id",
    date: Hashable = "date",
    period: str | pd.Timedelta = "W",
    start: Any = None,
    end: Any = None,
) -> pd.Series:
    """New customers per period: each customer counted once, in the period of its first
    purchase.

    Parameters
    ----------
    log : pandas.DataFrame or path
        A purchase log, or a CSV/Parquet path or glob (read by DuckDB through
        :func:`clvkit.read_purchases`: the same Series).
    customer_id, date : str
        Column names.
    period : str or pandas.Timedelta
        Length of a period (``"W"``, ``"4W"``, ``"M"`` = 30.4375 days, ...).
    start, end : date-like, optional
        First day of the first period (default: the first purchase day) and last day observed
        (default: the last purchase day). Periods are ``[start + k p, start + (k + 1) p)``;
        only whole periods up to ``end`` are counted (a cut last period would look like a
        drop): customers first seen after the last whole period are left out with a warning.
        Customers first seen before ``start`` are not new and are not counted.

    Returns
    -------
    pandas.Series
        int64 counts indexed by period start (``period_start``), zeros included;
        ``attrs``: ``period`` (canonical text), ``start``, ``end`` (ISO days of the first
        period's start and of the end of the last whole period).

    Examples
    --------
    >>> log = pd.DataFrame({"customer_id": [1, 1, 2, 3], "date": pd.to_datetime(
    ...     ["2024-01-01", "2024-01-20", "2024-01-09", "2024-01-10"])})
    >>> acquisition_counts(log, period="W", end="2024-01-21").tolist()
    [1, 2, 0]
    """
    step = parse_time_unit(period, argument="period")
    frame = read_purchases(log, customer_id=customer_id, date=date)
    if len(frame) == 0:
        raise ClvkitError("argument 'log' has no purchases. Suggestion: pass a non-empty log.")
    first = frame.groupby(customer_id, sort=False)[date].min()
    first_day = first.dt.floor("D")
    t0 = first_day.min() if start is None else parse_date(start, "start").floor("D")
    last = frame[date].max().floor("D") if end is None else parse_date(end, "end").floor("D")
    stop = last + pd.Timedelta(days=1)  # the end of the last observed day
    n = int(np.floor((stop - t0) / step + 1e-9))
    if n < 1:
        raise ClvkitError(
            f"argument 'end' ({last.date()}) leaves no whole period of {format_time_unit(step)} "
            f"after 'start' ({t0.date()}). Suggestion: a shorter 'period' or a later 'end'."
        )
    k = np.floor((first_day - t0) / step + 1e-9).to_numpy()
    late = k >= n
    if late.any() and (first_day[late] < stop).any():
        cut = late & (first_day < stop).to_numpy()
        warnings.warn(
            f"{int(cut.sum()):,} customers first seen after the last whole period (ending "
            f"{(t0 + n * step).date()}) are left out of the acquisition counts. Suggestion: "
            "pass an 'end' at a period boundary to count them.",
            ClvkitWarning,
            stacklevel=2,
        )
    keep = (k >= 0) & ~late
    counts = np.bincount(k[keep].astype(np.int64), minlength=n)[:n].astype(np.int64)
    index = pd.DatetimeIndex(t0 + np.arange(n) * step, name="period_start")
    out = pd.Series(counts, index=index, name="new_customers")
    out.attrs = {
        "period": format_time_unit(step),
        "start": str(t0.date()),
        "end": str((t0 + n * step).date()),
    }
    return out


def _check_counts(counts: Any, argument: str, integer: bool) -> np.ndarray:
    """``counts`` as a 1-D float array of finite, non-negative (integer) values."""
    try:
        arr = np.asarray(counts, dtype=np.float64)
    except (TypeError, ValueError):
        raise ClvkitError(
            f"argument {argument!r} must be numbers of new customers, got {counts!r:.80}. "
            "Suggestion: a sequence or Series of non-negative counts."
        ) from None
    if arr.ndim != 1 or arr.size == 0:
        raise ClvkitError(
            f"argument {argument!r} must be a non-empty 1-D sequence of counts, got shape "
            f"{arr.shape}. Suggestion: one count per period."
        )
    bad = ~np.isfinite(arr) | (arr < 0)
    if integer:
        bad |= np.isfinite(arr) & (arr != np.round(arr))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        what = "non-negative integer" if integer else "non-negative number"
        label = counts.index[i] if isinstance(counts, pd.Series) else i
        raise bad_rows_error(
            f"argument {argument!r}", f"is not a finite {what}", int(bad.sum()),
            {"period": label, "count": float(arr[i])},
            f"pass finite {what}s of new customers per period", arr.size,
        )  # fmt: skip
    return arr


def stopped_run(counts: np.ndarray) -> int:
    """Length of the trailing run of empty periods when it shows that acquisition stopped
    (at least 3 periods, and a Poisson process at the mean rate of the earlier periods gives
    such a run with probability below :data:`STOP_PROBABILITY`), else 0.

    Examples
    --------
    >>> stopped_run(np.array([5, 7, 6, 0, 0, 0])), stopped_run(np.array([1, 0, 1, 0, 0, 0]))
    (3, 0)
    """
    nz = np.flatnonzero(counts > 0)
    if nz.size == 0:
        return 0
    run = counts.size - 1 - int(nz[-1])
    rate = counts[: nz[-1] + 1].mean()
    if run >= 3 and -rate * run < np.log(STOP_PROBABILITY):
        return run
    return 0


class AcquisitionModel:
    """Bayesian model of new customers per period.

    ``y_k ~ NegativeBinomial(mu_k, phi)`` (mean ``mu_k``, variance ``mu_k + mu_k**2 / phi``) with
    ``log mu_k = intercept + trend * x_k + sum_h (c_h cos(2 pi h k / L) + s_h sin(2 pi h k /
    L))``, ``x_k = (k - (n - 1) / 2) / n`` (so ``trend`` is the change of log mean over the
    observed span and ``intercept`` the log mean at its middle), ``L`` the season length.
    Priors (weakly informative, log scale): ``intercept ~ Normal(log(mean y + 0.5), 2.5)``,
    ``trend ~ Normal(0, 1)``, each seasonal coefficient ``~ Normal(0, 1)``,
    ``1 / sqrt(phi) ~ HalfNormal(1)``; ``priors`` overrides them (``{"intercept": (mean, sd),
    "trend": (mean, sd), "season": (mean, sd), "inv_sqrt_phi": scale}``).

    Stopped acquisition: when the counts end with a run of empty periods that a Poisson
    process at the earlier mean rate would give with probability below
    :data:`STOP_PROBABILITY` (e.g. CDNOW: nobody new after week 12 of 78), :attr:`diagnosis`
    says so, the model is fitted on the periods up to the last new customer (for its summary),
    and :meth:`forecast` is zero: a fitted decline is not extrapolated.

    Parameters
    ----------
    trend : {"linear", None}
        A log-linear trend, or none.
    seasonality : int, optional
        Season length ``L`` in periods (52 for weeks in a year), or None.
    harmonics : int
        Fourier pairs of the seasonality (at most ``L / 2``).
    priors : mapping, optional
        Overrides of the default priors (see above).

    Examples
    --------
    >>> y = pd.Series([3, 5, 4, 6, 5, 7, 6, 8])
    >>> m = AcquisitionModel().fit(y, method="map")
    >>> round(float(m.forecast(2).mean()), 1) > 5
    True
    """

    def __init__(
        self,
        trend: Literal["linear"] | None = "linear",
        seasonality: int | None = None,
        harmonics: int = 2,
        priors: Mapping[str, Any] | None = None,
    ) -> None:
        if trend not in ("linear", None):
            raise ClvkitError(
                f"argument 'trend' must be 'linear' or None, got {trend!r}. Suggestion: "
                "trend='linear'."
            )
        if seasonality is not None and (
            isinstance(seasonality, bool)
            or not isinstance(seasonality, int | np.integer)
            or seasonality < 2
        ):
            raise ClvkitError(
                f"argument 'seasonality' must be a season length of at least 2 periods, got "
                f"{seasonality!r}. Suggestion: 52 for weekly counts with a yearly season."
            )
        if seasonality is not None and not (
            isinstance(harmonics, int | np.integer) and 1 <= harmonics <= seasonality // 2
        ):
            raise ClvkitError(
                f"argument 'harmonics' must be an integer in [1, {seasonality // 2}], got "
                f"{harmonics!r}. Suggestion: harmonics=2."
            )
        known = {"intercept", "trend", "season", "inv_sqrt_phi"}
        if priors is not None and set(priors) - known:
            raise ClvkitError(
                f"argument 'priors' has unknown keys {sorted(set(priors) - known)}. "
                f"Suggestion: use {sorted(known)}."
            )
        self.trend = trend
        self.seasonality = None if seasonality is None else int(seasonality)
        self.harmonics = int(harmonics)
        self.priors = dict(priors or {})

    # -- design -----------------------------------------------------------------------------
    @property
    def param_names(self) -> tuple[str, ...]:
        """Parameter names: ``intercept``, ``trend``, ``season_cos<h>``/``season_sin<h>``,
        ``phi``."""
        names = ["intercept"] + (["trend"] if self.trend else [])
        if self.seasonality:
            for h in range(1, self.harmonics + 1):
                names += [f"season_cos{h}", f"season_sin{h}"]
        return (*names, "phi")

    def design(self, k: np.ndarray, n: int) -> np.ndarray:
        """The ``(len(k), p)`` design of periods ``k`` (0 = first observed) for ``n`` observed
        periods: intercept, trend and Fourier columns (``phi`` excluded)."""
        k = np.asarray(k, dtype=np.float64)
        cols = [np.ones_like(k)]
        if self.trend:
            cols.append((k - (n - 1) / 2) / n)
        if self.seasonality:
            for h in range(1, self.harmonics + 1):
                w = 2 * np.pi * h * k / self.seasonality
                cols += [np.cos(w), np.sin(w)]
        return np.stack(cols, axis=1)

    def _prior(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
        p = len(self.param_names) - 1
        mean = np.zeros(p)
        sd = np.ones(p)
        mu0, sd0 = self.priors.get("intercept", (np.log(y.mean() + 0.5), 2.5))
        mean[0], sd[0] = mu0, sd0
        j = 1
        if self.trend:
            mean[1], sd[1] = self.priors.get("trend", (0.0, 1.0))
            j = 2
        if self.seasonality:
            m, s = self.priors.get("season", (0.0, 1.0))
            mean[j:], sd[j:] = m, s
        scale = float(self.priors.get("inv_sqrt_phi", 1.0))
        if not (np.all(sd > 0) and scale > 0 and np.all(np.isfinite(mean))):
            raise ClvkitError(
                f"argument 'priors' {self.priors!r} has a non-positive scale. Suggestion: "
                "positive standard deviations."
            )
        return mean, sd, scale

    def log_density(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """Log posterior (up to a constant) and its gradient at ``theta`` = (coefficients,
        log phi), on the data of the last :meth:`fit`."""
        X, y = self._X, self._y
        mean, sd, scale = self._prior_values
        beta, log_phi = theta[:-1], theta[-1]
        eta = X @ beta
        mu = np.exp(eta)
        phi = np.exp(log_phi)
        log_den = np.logaddexp(log_phi, eta)  # log(phi + mu)
        ll = (
            special.gammaln(y + phi) - special.gammaln(phi) - special.gammaln(y + 1)
            + phi * (log_phi - log_den) + y * (eta - log_den)
        )  # fmt: skip
        d_eta = phi * (y - mu) / (phi + mu)
        d_phi = (
            special.digamma(y + phi) - special.digamma(phi) + log_phi - log_den + 1
            - (phi + y) / (phi + mu)
        )  # fmt: skip
        z = (beta - mean) / sd
        # 1/sqrt(phi) ~ HalfNormal(scale), on log phi (with the Jacobian)
        lp_phi = -0.5 * np.exp(-log_phi) / scale**2 - 0.5 * log_phi
        value = float(ll.sum() - 0.5 * (z**2).sum() + lp_phi)
        grad = np.empty_like(theta)
        grad[:-1] = X.T @ d_eta - z / sd
        grad[-1] = phi * d_phi.sum() + 0.5 * np.exp(-log_phi) / scale**2 - 0.5
        return value, grad

    # -- fit ----------------------------------------------------------------------------------
    def fit(
        self,
        counts: pd.Series | Sequence[float] | np.ndarray,
        *,
        method: Literal["nuts", "map", "laplace"] = "nuts",
        chains: int = 4,
        draws: int = 1000,
        tune: int = 1000,
        period: str | pd.Timedelta | None = None,
        random_seed: int | np.random.Generator | None = None,
        progressbar: bool = False,
        target_accept: float = TARGET_ACCEPT,
    ) -> AcquisitionModel:
        """Fit the model to new customers per period.

        Parameters
        ----------
        counts : pandas.Series or sequence
            Non-negative integer counts per period, in time order (e.g.
            :func:`acquisition_counts`, whose ``attrs["period"]`` gives the period length).
        method : {"nuts", "map", "laplace"}
            NUTS (nutpie) draws; the posterior mode (one draw, fast); or a normal
            approximation at the mode on the unconstrained scale (``chains x draws`` draws).
        chains, draws, tune : int
            NUTS settings (``chains x draws`` draws also for ``"laplace"``).
        period : str or pandas.Timedelta, optional
            Length of a period; default ``counts.attrs["period"]``. Needed to value future
            cohorts in another time unit.
        random_seed : int or numpy.random.Generator, optional
            Seeds NUTS / the Laplace draws.
        progressbar : bool
            nutpie's progress bar.
        target_accept : float
            NUTS's target acceptance rate (higher: smaller steps, where it diverges).

        Returns
        -------
        AcquisitionModel
            ``self``, with ``posterior_`` (``xarray.Dataset`` over ``(chain, draw)``),
            ``counts_``, ``diagnosis``, ``stopped_`` (the trailing empty periods judged a stop,
            0 if none).
        """
        y = _check_counts(counts, "counts", integer=True)
        if method not in ("nuts", "map", "laplace"):
            raise ClvkitError(
                f"argument 'method' must be 'nuts', 'map' or 'laplace', got {method!r}. "
                "Suggestion: method='map' for a quick fit."
            )
        given = period if period is not None else getattr(counts, "attrs", {}).get("period")
        self.period_ = None if given is None else parse_time_unit(given, argument="period")
        random_seed = check_random_seed(random_seed)
        self.counts_ = (
            counts.copy() if isinstance(counts, pd.Series) else pd.Series(y.astype(np.int64))
        )
        self.stopped_ = stopped_run(y)
        fit_y = y[: y.size - self.stopped_]
        p = len(self.param_names)
        if fit_y.size < p:
            raise ClvkitError(
                f"argument 'counts' has {fit_y.size} period(s) to fit, fewer than the model's "
                f"{p} parameters. Suggestion: more periods, trend=None or no seasonality."
            )
        self._y = fit_y
        self._X = self.design(np.arange(fit_y.size), fit_y.size)
        self._n_fit = fit_y.size
        self._prior_values = self._prior(fit_y)
        mode = self._mode()
        names = self.param_names
        supports = ("real",) * (p - 1) + ("positive",)
        if method == "nuts":
            for name, v in (("chains", chains), ("draws", draws), ("tune", tune)):
                if not isinstance(v, int | np.integer) or isinstance(v, bool) or v < 1:
                    raise ClvkitError(f"argument {name!r} must be a positive integer, got {v!r}.")
            post, stats = sample_pyfunc(
                self.log_density, names, supports, mode, chains=chains, draws=draws,
                tune=tune, random_seed=random_seed, progressbar=progressbar,
                target_accept=check_target_accept(target_accept),
            )  # fmt: skip
            self.sample_stats_ = stats
        else:
            if method == "map":
                flat = mode[None, :]
                shape = (1, 1)
            else:
                cov = np.linalg.inv(self._neg_hessian(mode))
                rng = make_rng(random_seed)
                flat = rng.multivariate_normal(mode, cov, size=chains * draws)
                shape = (chains, draws)
            vals = flat.copy()
            vals[:, -1] = np.exp(vals[:, -1])
            post = xr.Dataset(
                {n: (("chain", "draw"), vals[:, i].reshape(shape)) for i, n in enumerate(names)},
                coords={"chain": np.arange(shape[0]), "draw": np.arange(shape[1])},
            )
            self.sample_stats_ = None
        post.attrs.update(
            {"model": "AcquisitionModel", "method": method, "n_periods": int(y.size),
             "n_fit_periods": int(fit_y.size), "stopped_periods": int(self.stopped_)}
        )  # fmt: skip
        if self.period_ is not None:
            post.attrs["period"] = format_time_unit(self.period_)
        self.posterior_ = post
        self.method_ = method
        self.diagnosis = self._diagnose(y)
        return self

    def _mode(self) -> np.ndarray:
        from scipy import optimize  # heavy: imported on first fit

        p = len(self.param_names)
        x0 = np.zeros(p)
        x0[0] = np.log(self._y.mean() + 0.5)
        x0[-1] = np.log(10.0)
        res = optimize.minimize(
            lambda t: tuple(-v for v in self.log_density(t)), x0, jac=True, method="BFGS",
            options={"gtol": 1e-8, "maxiter": 2000},
        )  # fmt: skip
        if not np.all(np.isfinite(res.x)):
            raise ClvkitError(
                "the acquisition model's posterior mode was not found (non-finite parameters). "
                "Suggestion: check the counts, or pass tighter priors."
            )
        return res.x

    def _neg_hessian(self, theta: np.ndarray, eps: float = 1e-5) -> np.ndarray:
        """Minus the Hessian of the log density, by central differences of the gradient."""
        p = theta.size
        H = np.empty((p, p))
        for i in range(p):
            e = np.zeros(p)
            e[i] = eps
            H[i] = (self.log_density(theta + e)[1] - self.log_density(theta - e)[1]) / (2 * eps)
        return -(H + H.T) / 2

    def _check_fitted(self) -> None:
        if not hasattr(self, "posterior_"):
            raise ClvkitError(
                "this AcquisitionModel is not fitted. Suggestion: call .fit(counts) first."
            )

    def _diagnose(self, y: np.ndarray) -> str:
        one, many = ("period", "periods") if self.period_ is None else period_words(self.period_)
        n = y.size
        if self.stopped_:
            last = n - self.stopped_
            return (
                f"No customer was acquired in the last {self.stopped_} of {n} {many}: "
                f"acquisition stopped after {one} {last}; future acquisition is forecast as "
                "zero."
            )
        mu = np.exp(self.posterior_["intercept"].to_numpy().ravel())
        text = (
            f"Fitted on {n} {many} ({int(y.sum()):,} new customers, {y.mean():,.1f} per {one}); "
            f"mean level {np.mean(mu):,.1f} per {one} at the middle of the span"
        )
        if self.trend:
            ratio = np.exp(self.posterior_["trend"].to_numpy().ravel())
            lo, hi = np.quantile(ratio, [0.05, 0.95])
            text += f", trend x{np.mean(ratio):.2f} over the span"
            if ratio.size > 1:
                text += f" (90% interval {lo:.2f} to {hi:.2f})"
        return text + "."

    # -- results ------------------------------------------------------------------------------
    def _draws(self) -> np.ndarray:
        """``(S, p)`` coefficient draws and ``(S,)`` phi."""
        post = self.posterior_
        return np.stack([post[n].to_numpy().ravel() for n in self.param_names], axis=1)

    def forecast(
        self,
        n_periods: int,
        *,
        kind: Literal["expected", "predictive"] = "expected",
        random_seed: int | np.random.Generator | None = None,
    ) -> xr.DataArray:
        """New customers in each of the next ``n_periods`` periods, per posterior draw.

        ``"expected"``: the mean ``mu_k`` per draw (credible); ``"predictive"``: a negative
        binomial draw per draw and period. Zero in every draw when acquisition stopped.

        Returns
        -------
        xarray.DataArray
            ``(chain, draw, period)``, period ``1 .. n_periods`` after the observed counts.
        """
        self._check_fitted()
        n_periods = _check_n_periods(n_periods)
        if kind not in ("expected", "predictive"):
            raise ClvkitError(f"argument 'kind' must be 'expected' or 'predictive', got {kind!r}.")
        post = self.posterior_
        C, D = post.sizes["chain"], post.sizes["draw"]
        if self.stopped_:
            values = np.zeros((C * D, n_periods))
        else:
            theta = self._draws()
            n = self._n_fit
            X = self.design(np.arange(n, n + n_periods), n)
            mu = np.exp(theta[:, :-1] @ X.T)
            if kind == "expected":
                values = mu
            else:
                rng = make_rng(random_seed)
                phi = theta[:, -1:]
                values = rng.poisson(rng.gamma(phi, mu / phi)).astype(np.float64)
        return xr.DataArray(
            values.reshape(C, D, n_periods),
            dims=("chain", "draw", "period"),
            coords={"chain": post["chain"].values, "draw": post["draw"].values,
                    "period": np.arange(1, n_periods + 1)},
            name="new_customers",
        )  # fmt: skip

    def extrapolation(self, n_periods: int, prob: float = 0.9) -> str | None:
        """A sentence when a forecast of ``n_periods`` carries the fitted trend beyond the
        length of the span it was fitted on: how far, and how much the trend then multiplies
        the level (per draw, ``exp(trend * n_periods / n)``, with its central ``prob``
        interval). ``None`` without a trend, after a stop, or for a shorter forecast."""
        self._check_fitted()
        n = self._n_fit
        if self.stopped_ or not self.trend or n_periods <= n:
            return None
        one, many = ("period", "periods") if self.period_ is None else period_words(self.period_)
        ratio = np.exp(self.posterior_["trend"].to_numpy().ravel() * n_periods / n)
        lo, hi = np.quantile(ratio, [(1 - prob) / 2, (1 + prob) / 2])
        return (
            f"The acquisition forecast runs {n_periods} {many} ahead, {n_periods / n:.1f} times "
            f"the {n} {many} it was fitted on: by its last {one} the fitted trend multiplies "
            f"new customers by {np.median(ratio):.2f} [{lo:.2f}, {hi:.2f}] ({prob:.0%} "
            "interval). That part of the value rests on the trend continuing; compare with a "
            "plan (AcquisitionPlan) or trend=None."
        )

    def summary(self, prob: float = 0.9) -> pd.DataFrame:
        """Posterior mean, sd and central ``prob`` interval of each parameter (with R-hat and
        bulk ESS for NUTS fits)."""
        self._check_fitted()
        rows = {}
        for n in self.param_names:
            x = self.posterior_[n].to_numpy()
            flat = x.ravel()
            lo, hi = np.quantile(flat, [(1 - prob) / 2, (1 + prob) / 2])
            row = {"mean": flat.mean(), "sd": flat.std(ddof=1) if flat.size > 1 else 0.0,
                   "lower": lo, "upper": hi}  # fmt: skip
            if self.method_ == "nuts":
                row.update(r_hat=rhat(x), ess_bulk=ess_bulk(x))
            rows[n] = row
        return pd.DataFrame.from_dict(rows, orient="index")


def _check_n_periods(n_periods: Any) -> int:
    if isinstance(n_periods, bool) or not (
        isinstance(n_periods, int | np.integer) and n_periods >= 1
    ):
        raise ClvkitError(
            f"argument 'n_periods' must be a positive integer, got {n_periods!r}. "
            "Suggestion: the number of future periods to forecast, e.g. 52."
        )
    return int(n_periods)


class AcquisitionPlan:
    """New customers the firm plans to acquire per future period, with optional uncertainty.

    Parameters
    ----------
    counts : sequence or pandas.Series
        Planned new customers in future periods 1, 2, ... (non-negative). Periods after the
        last count get zero.
    cv : float
        Coefficient of variation of the plan: each draw multiplies the whole plan by one
        gamma multiplier of mean 1 and sd ``cv`` (a plan missed or beaten in every period
        together, the usual budget risk); 0 (default): the counts exactly.
    period : str or pandas.Timedelta, optional
        Length of a plan period; default None: the valuation's cash-flow period.
    random_seed : int or numpy.random.Generator, optional
        Seeds the multipliers (and, for ``kind="predictive"``, the rounding to whole
        customers).

    Examples
    --------
    >>> AcquisitionPlan([10, 20]).forecast(3, n_draws=2).values.tolist()
    [[[10.0, 20.0, 0.0], [10.0, 20.0, 0.0]]]
    """

    def __init__(
        self,
        counts: pd.Series | Sequence[float] | np.ndarray,
        *,
        cv: float = 0.0,
        period: str | pd.Timedelta | None = None,
        random_seed: int | np.random.Generator | None = None,
    ) -> None:
        self.counts = _check_counts(counts, "counts", integer=False)
        try:
            cv_f = float(cv)
        except (TypeError, ValueError):
            cv_f = float("nan")
        if not np.isfinite(cv_f) or cv_f < 0:
            raise ClvkitError(
                f"argument 'cv' must be a finite non-negative number, got {cv!r}. Suggestion: "
                "0.2 for a plan uncertain by about 20%."
            )
        self.cv = cv_f
        self.period_ = None if period is None else parse_time_unit(period, argument="period")
        self.random_seed = check_random_seed(random_seed)
        self.stopped_ = 0
        self.diagnosis = (
            f"Acquisition plan: {self.counts.sum():,.0f} new customers over {self.counts.size} "
            f"period(s)" + (f", uncertainty cv {self.cv:g} (one multiplier per draw)." if self.cv
                            else ", taken as exact.")
        )  # fmt: skip

    def forecast(
        self,
        n_periods: int,
        *,
        kind: Literal["expected", "predictive"] = "expected",
        n_draws: int = 1,
        random_seed: int | np.random.Generator | None = None,
    ) -> xr.DataArray:
        """Planned new customers per future period and draw ``(1, n_draws, n_periods)``:
        ``counts * m_s`` (``"expected"``) or, for ``"predictive"``, those rounded to whole
        customers at random (floor plus a Bernoulli of the fraction, so the mean is kept)."""
        n_periods = _check_n_periods(n_periods)
        if isinstance(n_draws, bool) or not (
            isinstance(n_draws, int | np.integer) and n_draws >= 1
        ):
            raise ClvkitError(f"argument 'n_draws' must be a positive integer, got {n_draws!r}.")
        n_draws = int(n_draws)
        if kind not in ("expected", "predictive"):
            raise ClvkitError(f"argument 'kind' must be 'expected' or 'predictive', got {kind!r}.")
        seed = self.random_seed if random_seed is None else check_random_seed(random_seed)
        rng = make_rng(seed)
        base = np.zeros(n_periods)
        m = min(n_periods, self.counts.size)
        base[:m] = self.counts[:m]
        if self.cv > 0:
            shape = 1.0 / self.cv**2
            mult = rng.gamma(shape, 1.0 / shape, size=n_draws)
        else:
            mult = np.ones(n_draws)
        values = mult[:, None] * base[None, :]
        if kind == "predictive":
            whole = np.floor(values)
            values = whole + (rng.random(values.shape) < values - whole)
        return xr.DataArray(
            values[None],
            dims=("chain", "draw", "period"),
            coords={
                "chain": [0],
                "draw": np.arange(n_draws),
                "period": np.arange(1, n_periods + 1),
            },
            name="new_customers",
        )
