"""Predicted vs actual: holdout backtest, tracking, retention and posterior predictive checks.

The math lives in pure functions of posterior draws (``xarray.Dataset`` with variables ``r``,
``alpha``, ``a``, ``b`` and optionally ``p``, ``q``, ``v``) and numpy arrays; :func:`backtest` is
a thin entry point that splits a purchase log, fits (or takes) the models and calls them.

Conventions
-----------
- Times are in the summary's time unit, measured from the cohort origin (the earliest first
  purchase). Period ``k`` is ``[k, k + 1)`` clipped to the observation end ``H``.
- Predictive intervals and coverage come from the conditional posterior predictive: for each of
  ``n_samples`` posterior draws (resampled when there are fewer draws), each customer's state,
  rate and drop-out probability are drawn from their exact conditional posterior and the holdout
  purchases are simulated from the generative process.
- Coverage of a discrete count uses the randomized PIT ``u = F(y-) + V (F(y) - F(y-))`` with
  ``V ~ Uniform(0, 1)``, so the mass points do not inflate it; a central ``c`` interval covers
  when ``|u - 1/2| <= c / 2``.
- Retention and the share alive use the new-customer functions
  :func:`clvkit.models.bgnbd.predictions.bg_probability_purchase_in_window` (P(at least one purchase in
  ``(u, v]``) ``= G(0, u) - G(v - u, u)``) and
  :func:`clvkit.models.bgnbd.predictions.bg_probability_alive_new_customer` (``G(0, t)``), with
  ``G(c, u) = E[exp(-lam (c + p u))]``; the derivation is in their docstrings.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from clvkit.errors import ClvkitError, ClvkitWarning, bad_rows_error
from clvkit.models.bgnbd import predictions as predict
from clvkit.models.draws import BG_VARS, GG_VARS, flat_draws, posterior_dataset
from clvkit.models.gamma_gamma import predictions as gg_predict
from clvkit.units import format_time_unit, parse_time_unit, to_units

__all__ = [
    "BacktestResult",
    "CohortTracking",
    "backtest",
    "cohort_tracking",
    "conditional_expectations",
    "frequency_ppc",
    "holdout_metrics",
    "holdout_predictive",
]

_BG_VARS, _GG_VARS = BG_VARS, GG_VARS
_LEVELS = (0.5, 0.8, 0.9)
_CELLS = 2_000_000  # elements per chunk of a (draws x customers [x periods]) array


# --------------------------------------------------------------------------------------------
# Posterior handling
# --------------------------------------------------------------------------------------------
def _posterior(obj: Any, names: tuple[str, ...], argument: str) -> dict[str, np.ndarray]:
    """Flattened, validated posterior draws of ``names`` (see :mod:`clvkit.models.draws`)."""
    return flat_draws(posterior_dataset(obj, names, argument), names)


def _draw_index(n_draws: int, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Posterior draw behind each predictive sample: a subset, or all draws cycled when fewer."""
    if n_draws >= n_samples:
        return np.sort(rng.choice(n_draws, size=n_samples, replace=False))
    return np.resize(rng.permutation(n_draws), n_samples)


def _col(d: dict[str, np.ndarray], idx: np.ndarray | None = None) -> list[np.ndarray]:
    return [(v if idx is None else v[idx])[:, None] for v in d.values()]


# --------------------------------------------------------------------------------------------
# BG/NBD and Gamma-Gamma math (numpy, broadcasting: draws (S, 1), customers (N,))
# --------------------------------------------------------------------------------------------
def _pmf_binned(r, alpha, a, b, t, n_max):
    """P(X(t) = n) for n < n_max and P(X(t) >= n_max) of a new customer; last axis n_max + 1."""
    probs = predict.bg_probability_of_purchases(r, alpha, a, b, t, np.arange(n_max))
    tail = np.maximum(1.0 - probs.sum(-1, keepdims=True), 0.0)
    return np.concatenate([probs, tail], axis=-1)


def _expected_new(r, alpha, a, b, age):
    """E[X(age)] of a new customer on any grid of ages (0 where age <= 0); params (s, 1)."""
    flat = np.maximum(np.asarray(age, dtype=float), 0.0).ravel()
    uniq, inv = np.unique(flat, return_inverse=True)
    out = predict.bg_expected_purchases_new_customer(r, alpha, a, b, uniq)[:, inv]
    return out.reshape((-1, *np.shape(age)))


def _randomized_pit(samples, y, rng):
    """u = F(y-) + V (F(y) - F(y-)) with F the empirical predictive CDF over samples (axis 0)."""
    below = (samples < y).mean(axis=0)
    at_or_below = (samples <= y).mean(axis=0)
    return below + rng.random(np.shape(y)) * (at_or_below - below)


# --------------------------------------------------------------------------------------------
# Per-customer holdout prediction, conditional expectations and metrics
# --------------------------------------------------------------------------------------------
def holdout_predictive(
    transactions_posterior: Any,
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    duration: np.ndarray | float,
    *,
    actual: np.ndarray,
    spend_posterior: Any = None,
    monetary_value: np.ndarray | None = None,
    actual_revenue: np.ndarray | None = None,
    prob: float = 0.9,
    n_samples: int = 2000,
    random_seed: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Per-customer predicted holdout purchases (and revenue) with intervals and PIT values.

    Parameters
    ----------
    transactions_posterior : xarray.Dataset, InferenceData or fitted model
        BG/NBD draws ``r, alpha, a, b``.
    frequency, recency, T : numpy.ndarray
        Calibration summary, shape ``(N,)``.
    duration : numpy.ndarray or float
        Holdout length of each customer in time units.
    actual : numpy.ndarray
        Observed holdout purchases.
    spend_posterior : optional
        Gamma-Gamma draws ``p, q, v``; with ``monetary_value`` and ``actual_revenue`` adds the
        revenue columns (holdout revenue is simulated as a Gamma(p X, nu) total).
    prob : float
        Mass of the reported central predictive interval.
    n_samples : int
        Predictive samples per customer (posterior draws subsampled or cycled).
    random_seed : int or numpy.random.Generator, optional

    Returns
    -------
    pandas.DataFrame
        ``frequency``, ``actual``, ``predicted`` (posterior mean of the conditional expectation,
        over all draws), ``lower``, ``upper``, ``pit`` (randomized), and with spend
        ``actual_revenue``, ``predicted_revenue``, ``revenue_lower``, ``revenue_upper``,
        ``revenue_pit``.

    Examples
    --------
    >>> post = {"r": 0.2426, "alpha": 4.4137, "a": 0.793, "b": 2.4262}
    >>> tab = holdout_predictive(post, np.array([0, 5]), np.array([0.0, 30.0]),
    ...                          np.array([38.0, 38.0]), 39.0, actual=np.array([0, 4]),
    ...                          random_seed=1)
    >>> tab["predicted"].round(3).tolist()
    [0.198, 2.827]
    """
    _check_prob(prob)
    from clvkit.rng import make_rng

    rng = make_rng(random_seed)
    bg = _posterior(transactions_posterior, _BG_VARS, "transactions_posterior")
    x = np.asarray(frequency, dtype=np.float64)
    tx = np.asarray(recency, dtype=np.float64)
    TT = np.asarray(T, dtype=np.float64)
    y = np.asarray(actual, dtype=np.float64)
    n = x.size
    _same_length(n, recency=tx, T=TT, actual=y)
    dur = np.broadcast_to(np.asarray(duration, dtype=np.float64), (n,))
    with_spend = spend_posterior is not None
    if with_spend:
        if monetary_value is None or actual_revenue is None:
            raise ClvkitError(
                "arguments 'monetary_value' and 'actual_revenue' are needed with "
                "'spend_posterior'. Suggestion: pass both or drop spend_posterior."
            )
        gg = _posterior(spend_posterior, _GG_VARS, "spend_posterior")
        z = np.asarray(monetary_value, dtype=np.float64)
        y_rev = np.asarray(actual_revenue, dtype=np.float64)
        _same_length(n, monetary_value=z, actual_revenue=y_rev)
    S = next(iter(bg.values())).size
    idx = _draw_index(S, n_samples, rng)
    lo_q, hi_q = (1 - prob) / 2, (1 + prob) / 2
    cols: dict[str, np.ndarray] = {
        k: np.empty(n) for k in ("predicted", "lower", "upper", "pit")
    }  # fmt: skip
    if with_spend:
        gidx = _draw_index(next(iter(gg.values())).size, n_samples, rng)  # independent pairing
        for k in ("predicted_revenue", "revenue_lower", "revenue_upper", "revenue_pit"):
            cols[k] = np.empty(n)
    # posterior mean of the conditional expectation: all customers per block of draws, so each
    # draw's Gauss rules are built once (blocks of customers would rebuild them per block)
    cols["predicted"][:] = 0.0
    d_step = max(1, _CELLS // max(n, 1))
    for d in np.unique(dur):  # one holdout length in the usual split
        m = dur == d
        for lo in range(0, S, d_step):
            sub = {k: v[lo : lo + d_step] for k, v in bg.items()}
            ep = predict.bg_expected_purchases(*_col(sub), x[m], tx[m], TT[m], d)
            cols["predicted"][m] += ep.sum(axis=0)
    cols["predicted"] /= S
    step = max(1, _CELLS // max(S, n_samples))
    for lo in range(0, n, step):
        sl = slice(lo, min(n, lo + step))
        xs, txs, Ts, ds = x[sl], tx[sl], TT[sl], dur[sl]
        mean_x = cols["predicted"][sl]
        alive, lam, p_drop = predict.bg_sample_latent(*_col(bg, idx), xs, txs, Ts, rng)
        sims = predict.bg_sample_purchases(alive, lam, p_drop, ds, rng)
        qs = np.quantile(sims, [lo_q, hi_q], axis=0, method="inverted_cdf")
        cols["lower"][sl], cols["upper"][sl] = qs
        cols["pit"][sl] = _randomized_pit(sims, y[sl], rng)
        if with_spend:
            p, q, v = _col(gg, gidx)
            zs = z[sl]
            # nu | history ~ Gamma(p x + q, rate v + x zbar); revenue | X, nu ~ Gamma(p X, nu)
            nu = gg_predict.gg_sample_nu(p, q, v, xs, zs, rng)
            shape_rev = p * sims
            rev = np.where(sims > 0, rng.gamma(np.maximum(shape_rev, 1e-300), 1.0 / nu), 0.0)
            spend = gg_predict.gg_expected_spend(*_col(gg), xs, zs).mean(axis=0)
            cols["predicted_revenue"][sl] = mean_x * spend  # independence of spend and counts
            rq = np.quantile(rev, [lo_q, hi_q], axis=0)
            cols["revenue_lower"][sl], cols["revenue_upper"][sl] = rq
            cols["revenue_pit"][sl] = _randomized_pit(rev, y_rev[sl], rng)
    out = pd.DataFrame({"frequency": x.astype(np.int64), "actual": y})
    for k in ("predicted", "lower", "upper", "pit"):
        out[k] = cols[k]
    if with_spend:
        out["actual_revenue"] = y_rev
        for k in ("predicted_revenue", "revenue_lower", "revenue_upper", "revenue_pit"):
            out[k] = cols[k]
    out.attrs["prob"] = prob
    return out


def conditional_expectations(
    frequency: np.ndarray, actual: np.ndarray, predicted: np.ndarray, max_frequency: int = 7
) -> pd.DataFrame:
    """Mean actual and predicted holdout purchases by calibration frequency (0..max, max+).

    Parameters
    ----------
    frequency : numpy.ndarray
        Calibration repeat purchases per customer.
    actual, predicted : numpy.ndarray
        Holdout purchases and their predicted means.
    max_frequency : int
        Last group, which pools ``frequency >= max_frequency``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``"0", ..., "7+"`` with ``n_customers``, ``actual``, ``predicted``.

    Examples
    --------
    >>> conditional_expectations(np.array([0, 0, 9]), np.array([1, 0, 5]),
    ...                          np.array([0.5, 0.5, 6.0]), max_frequency=2)  # doctest: +NORMALIZE_WHITESPACE
                           n_customers  actual  predicted
    calibration_frequency
    0                                2     0.5        0.5
    1                                0     NaN        NaN
    2+                               1     5.0        6.0
    """
    if max_frequency < 1:
        raise ClvkitError(f"argument 'max_frequency' must be >= 1, got {max_frequency}.")
    g = np.minimum(np.asarray(frequency, dtype=np.int64), max_frequency)
    k = max_frequency + 1
    counts = np.bincount(g, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        act = np.bincount(g, weights=np.asarray(actual, float), minlength=k) / counts
        pred = np.bincount(g, weights=np.asarray(predicted, float), minlength=k) / counts
    labels = [str(i) for i in range(max_frequency)] + [f"{max_frequency}+"]
    out = pd.DataFrame(
        {"n_customers": counts, "actual": act, "predicted": pred},
        index=pd.Index(labels, name="calibration_frequency"),
    )
    return out


def holdout_metrics(table: pd.DataFrame, levels: tuple[float, ...] = _LEVELS) -> pd.DataFrame:
    """Error, correlation and interval coverage of a :func:`holdout_predictive` table.

    Returns
    -------
    pandas.DataFrame
        Rows ``purchases`` (and ``revenue``), columns ``mae``, ``rmse``, ``total_actual``,
        ``total_predicted``, ``aggregate_error_pct`` (predicted minus actual, in % of actual),
        ``correlation`` (Pearson) and ``coverage_50``, ... (share of randomized PITs inside the
        central interval).

    Examples
    --------
    >>> tab = pd.DataFrame({"actual": [0.0, 2.0], "predicted": [0.5, 1.5], "pit": [0.5, 0.99]})
    >>> holdout_metrics(tab, levels=(0.5,)).loc["purchases", ["mae", "coverage_50"]].tolist()
    [0.5, 0.5]
    """
    rows = {}
    pairs = [("purchases", "actual", "predicted", "pit")]
    if "revenue_pit" in table:
        pairs.append(("revenue", "actual_revenue", "predicted_revenue", "revenue_pit"))
    for name, a_col, p_col, pit_col in pairs:
        y = table[a_col].to_numpy(float)
        f = table[p_col].to_numpy(float)
        u = table[pit_col].to_numpy(float)
        err = f - y
        row = {
            "mae": float(np.abs(err).mean()),
            "rmse": float(np.sqrt((err**2).mean())),
            "total_actual": float(y.sum()),
            "total_predicted": float(f.sum()),
            "aggregate_error_pct": float(100 * (f.sum() - y.sum()) / y.sum())
            if y.sum()
            else np.nan,
            "correlation": float(np.corrcoef(f, y)[0, 1]) if y.std() and f.std() else np.nan,
        }
        for lev in levels:
            row[f"coverage_{round(100 * lev)}"] = float((np.abs(u - 0.5) <= lev / 2).mean())
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")


def frequency_ppc(
    transactions_posterior: Any,
    frequency: np.ndarray,
    T: np.ndarray,
    *,
    max_frequency: int = 7,
    prob: float = 0.9,
    n_samples: int = 1000,
    random_seed: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Posterior predictive check of the calibration repeat-purchase histogram (0..max, max+).

    The expected number of customers with ``n`` repeat purchases is ``sum_i P(X(T_i) = n)``
    (Fader, Hardie and Lee 2005, eq. 8) averaged over the draws; the interval comes from
    histograms simulated per draw (a multinomial per distinct age ``T``).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``"0", ..., "7+"`` with ``actual``, ``expected``, ``lower``, ``upper``.
        ``attrs`` hold ``chi_square`` (sum of (actual - expected)^2 / expected), ``dof``
        (bins - 1 - 4 parameters) and ``p_value`` (chi-square reference, approximate).

    Examples
    --------
    >>> post = {"r": 0.2426, "alpha": 4.4137, "a": 0.793, "b": 2.4262}
    >>> ppc = frequency_ppc(post, np.array([0, 1, 3]), np.array([30.0, 30.0, 20.0]),
    ...                     max_frequency=2, random_seed=0)
    >>> round(float(ppc["expected"].sum()), 6)
    3.0
    """
    _check_prob(prob)
    from clvkit.rng import make_rng

    rng = make_rng(random_seed)
    bg = _posterior(transactions_posterior, _BG_VARS, "transactions_posterior")
    x = np.minimum(np.asarray(frequency, dtype=np.int64), max_frequency)
    t_uniq, inv = np.unique(np.asarray(T, dtype=np.float64), return_inverse=True)
    S = next(iter(bg.values())).size
    k = max_frequency + 1
    # expected histogram over all draws (distinct T only) and, from the same pmf blocks,
    # predictive histograms: the customers sharing an age T_g are i.i.d. categorical given the
    # draw, so their bin counts are Multinomial(n_g, pmf_g); summing over g is exact and
    # costs (samples x distinct T x bins), whatever the number of customers
    n_g = np.bincount(inv, minlength=t_uniq.size)
    expected = np.zeros(k)
    idx = _draw_index(S, n_samples, rng)
    order = np.argsort(idx, kind="stable")  # samples grouped by draw (idx is sorted if S >= n)
    bounds = np.searchsorted(idx[order], np.arange(0, S + 1))
    hist = np.zeros((n_samples, k))
    step = max(1, _CELLS // (k * t_uniq.size))
    for lo in range(0, S, step):
        hi = min(S, lo + step)
        sub = {n: v[lo:hi] for n, v in bg.items()}
        pm = _pmf_binned(
            *[v[..., None] for v in _col(sub)], t_uniq[:, None], max_frequency
        )  # (s, G, k)
        expected += np.einsum("sgk,g->k", pm, n_g.astype(float))
        pos = order[bounds[lo] : bounds[hi]]  # samples whose draw is in this block
        if pos.size:
            ps = pm[idx[pos] - lo]
            ps = ps / ps.sum(-1, keepdims=True)  # guard the multinomial against rounding
            hist[pos] = rng.multinomial(n_g, ps).sum(axis=1)
    expected /= S
    actual = np.bincount(x, minlength=k).astype(float)
    lower, upper = np.quantile(hist, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    labels = [str(i) for i in range(max_frequency)] + [f"{max_frequency}+"]
    out = pd.DataFrame(
        {"actual": actual, "expected": expected, "lower": lower, "upper": upper},
        index=pd.Index(labels, name="repeat_purchases"),
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = float(np.sum((actual - expected) ** 2 / expected))
    dof = max(k - 1 - 4, 1)
    out.attrs.update(chi_square=chi2, dof=dof, p_value=float(stats.chi2.sf(chi2, dof)), prob=prob)
    return out


# --------------------------------------------------------------------------------------------
# Cohort tracking and retention
# --------------------------------------------------------------------------------------------
class CohortTracking(NamedTuple):
    """Tables returned by :func:`cohort_tracking`: ``tracking`` (repeat purchases per period) and
    ``retention`` (share of the cohort purchasing per period), actual vs predicted with bands.

    Examples
    --------
    >>> CohortTracking._fields
    ('tracking', 'retention')
    """

    tracking: pd.DataFrame
    retention: pd.DataFrame


def _window_counts(sample, customer, period, first_period, n_samples, n_periods, window):
    """Per sample and period, customers with >= 1 event in the window ending at that period.

    Events must be sorted by (sample, customer, time). ``first_period[customer]`` is the first
    period in which that customer counts (eligible).
    """
    if sample.size == 0:
        return np.zeros((n_samples, n_periods))
    seg = sample.astype(np.int64) * (customer.max() + 1) + customer
    keep = np.ones(seg.size, dtype=bool)  # first event of each distinct (segment, period)
    keep[1:] = (seg[1:] != seg[:-1]) | (period[1:] != period[:-1])
    seg, per, smp, cus = seg[keep], period[keep], sample[keep], customer[keep]
    nxt = np.full(seg.size, n_periods, dtype=np.int64)
    same = seg[1:] == seg[:-1]
    nxt[:-1][same] = per[1:][same]
    start = np.maximum(per, first_period[cus])
    end = np.minimum(np.minimum(per + window - 1, nxt - 1), n_periods - 1)
    ok = start <= end
    width = n_periods + 1
    size = n_samples * width
    diff = np.bincount(smp[ok] * width + start[ok], minlength=size) - np.bincount(
        smp[ok] * width + end[ok] + 1, minlength=size
    )
    return np.cumsum(diff.reshape(n_samples, width), axis=1)[:, :-1].astype(float)


def _simulate_cohort(bg, birth, horizon, n_periods, window, first_period, rng):
    """Simulated repeat purchases per period and window-retained customers, per sample.

    bg: (M, 1) parameter arrays; birth (n,). Returns (incremental (M, K), retained (M, K)).
    """
    r, alpha, a, b = bg
    M, n = r.shape[0], birth.size
    inc = np.zeros((M, n_periods))
    ret = np.zeros((M, n_periods))
    step = max(1, _CELLS // (8 * max(M, 1)))  # ~250k (sample, customer) pairs per chunk
    for lo in range(0, n, step):
        s = birth[lo : lo + step]
        span = horizon - s
        shape = (M, s.size)
        lam = rng.gamma(r * np.ones(shape), 1.0 / alpha)
        p = np.clip(rng.beta(a * np.ones(shape), b * np.ones(shape)), 1e-12, 1.0)
        n_arr = rng.poisson(np.minimum(lam * span, 1e9))
        kept = np.minimum(n_arr, rng.geometric(p)).ravel()
        total = int(kept.sum())
        if total == 0:
            continue
        # the kept events are the first `kept` of `n_arr` uniform arrivals on (s, H]:
        # order statistics U_(j) = E_1 + ... + E_j over E_1 + ... + E_{N+1}, E ~ Exp(1)
        pair = np.repeat(np.arange(kept.size), kept)
        e = rng.standard_exponential(total)
        cs = np.cumsum(e)
        seg_start = np.cumsum(kept) - kept
        base = np.concatenate([[0.0], cs])[seg_start]
        csum = cs - base[pair]
        s_k = csum[np.cumsum(kept)[kept > 0] - 1]  # sum of the kept spacings, per pair with events
        rest = rng.standard_gamma(n_arr.ravel()[kept > 0] - kept[kept > 0] + 1.0)
        denom = np.zeros(kept.size)
        denom[kept > 0] = s_k + rest
        cust = pair % s.size
        smp = pair // s.size
        times = s[cust] + csum / denom[pair] * span[cust]
        per = np.minimum(np.floor(times).astype(np.int64), n_periods - 1)
        inc += np.bincount(smp * n_periods + per, minlength=M * n_periods).reshape(M, n_periods)
        # events come out sorted by (sample, customer, time): pairs are raveled (M, n) and the
        # order statistics of one pair increase
        ret += _window_counts(smp, cust, per, first_period[lo : lo + step], M, n_periods, window)
    return inc, ret


def cohort_tracking(
    transactions_posterior: Any,
    birth: np.ndarray,
    repeat_customer: np.ndarray,
    repeat_time: np.ndarray,
    *,
    horizon: float,
    window: int = 1,
    prob: float = 0.9,
    n_samples: int = 1000,
    random_seed: int | np.random.Generator | None = None,
) -> CohortTracking:
    """Tracking and retention of a cohort, actual vs predicted, per period.

    Each customer enters at its first purchase ``birth[i]``; its prediction is the new-customer
    process from there (unconditional on its history), aggregated over distinct birth times.

    Parameters
    ----------
    transactions_posterior : xarray.Dataset, InferenceData or fitted model
        BG/NBD draws.
    birth : numpy.ndarray
        First purchase time of each customer, in time units from the cohort origin (>= 0).
    repeat_customer, repeat_time : numpy.ndarray
        Index into ``birth`` and time of each observed repeat purchase.
    horizon : float
        Observation end ``H``; periods are ``[k, k + 1)`` for ``k = 0 .. ceil(H) - 1``.
    window : int
        Retention counts a customer in period ``k`` when it buys at least once in periods
        ``k - window + 1 .. k``; only customers born by the window's start count.
    prob : float
        Mass of the central predictive bands (simulated from the generative process).
    n_samples : int
        Simulated cohorts; means use the distinct posterior draws behind them.
    random_seed : int or numpy.random.Generator, optional

    Returns
    -------
    CohortTracking
        ``tracking``: per period ``actual``, ``predicted``, ``lower``, ``upper`` (incremental) and
        ``actual_cumulative``, ``predicted_cumulative``, ``lower_cumulative``,
        ``upper_cumulative``. ``retention``: ``n_eligible``, ``actual``, ``predicted``,
        ``lower``, ``upper`` (shares) and ``expected_alive`` (model share alive at period end).
        ``lower``/``upper`` are predictive bands (simulated purchases: parameter and process
        uncertainty); ``credible_lower``/``credible_upper`` (and ``_cumulative``) are credible
        bands of the expected curve (parameter uncertainty only; zero width for a point fit).

    Examples
    --------
    >>> post = {"r": 0.5, "alpha": 5.0, "a": 0.8, "b": 2.5}
    >>> out = cohort_tracking(post, np.array([0.0, 0.5]), np.array([0]), np.array([2.3]),
    ...                       horizon=4.0, random_seed=0)
    >>> out.tracking["actual"].tolist()
    [0.0, 0.0, 1.0, 0.0]
    """
    _check_prob(prob)
    if int(window) != window or window < 1:
        raise ClvkitError(f"argument 'window' must be a positive integer, got {window!r}.")
    window = int(window)
    from clvkit.rng import make_rng

    rng = make_rng(random_seed)
    bg = _posterior(transactions_posterior, _BG_VARS, "transactions_posterior")
    birth = np.asarray(birth, dtype=np.float64)
    H = float(horizon)
    if birth.size == 0 or not np.isfinite(H) or (birth < 0).any() or (birth > H).any():
        raise ClvkitError(
            "argument 'birth' must be non-empty with 0 <= birth <= horizon. Suggestion: measure "
            "first purchases from the cohort origin and keep customers born by the horizon."
        )
    K = max(1, int(np.ceil(H)))
    starts = np.arange(K, dtype=float)
    ends = np.minimum(starts + 1.0, H)
    first_period = np.ceil(birth + window - 1 - 1e-9).astype(np.int64)
    n_eligible = np.bincount(np.minimum(first_period, K), minlength=K + 1)[:K].cumsum()

    # actual
    rc = np.asarray(repeat_customer, dtype=np.int64)
    rt = np.asarray(repeat_time, dtype=np.float64)
    per = np.minimum(np.floor(rt).astype(np.int64), K - 1)
    inc_actual = np.bincount(per, minlength=K).astype(float)
    order = np.lexsort((rt, rc))
    ret_actual = _window_counts(
        np.zeros(rc.size, dtype=np.int64), rc[order], per[order], first_period, 1, K, window
    )[0]

    # analytic means over the distinct draws behind the samples, by distinct birth time
    S = next(iter(bg.values())).size
    idx = _draw_index(S, n_samples, rng)
    uniq = np.unique(idx)
    b_u, b_inv = np.unique(birth, return_inverse=True)
    nb = np.bincount(b_inv).astype(float)
    fp_u = np.ceil(b_u + window - 1 - 1e-9)
    cum_draws = np.zeros((uniq.size, K))  # expected cumulative purchases per draw
    ret_draws = np.zeros((uniq.size, K))  # expected number retained per draw
    alive_mean = np.zeros(K)
    elig = fp_u[:, None] <= starts[None, :]  # (G, K)
    w_start = starts - window + 1
    step = max(1, _CELLS // (b_u.size * K))
    for lo in range(0, uniq.size, step):
        sl = slice(lo, lo + step)
        prm = [v[..., None] for v in _col(bg, uniq[sl])]  # (s, 1, 1)
        age_end = ends[None, :] - b_u[:, None]  # (G, K)
        e_new = _expected_new(*_col(bg, uniq[sl]), age_end)
        cum_draws[sl] = np.einsum("sgk,g->sk", e_new, nb)
        u = np.maximum(w_start[None, :] - b_u[:, None], 0.0)
        pr = predict.bg_probability_purchase_in_window(*prm, u, np.maximum(age_end, u))
        ret_draws[sl] = np.einsum("sgk,gk->sk", pr, elig * nb[:, None])
        alive = predict.bg_probability_alive_new_customer(*prm, np.maximum(age_end, 0.0))
        alive_mean += np.einsum("sgk,gk->k", alive, elig * nb[:, None])
    q = [(1 - prob) / 2, (1 + prob) / 2]
    cum_mean = cum_draws.mean(axis=0)
    inc_draws = np.diff(cum_draws, axis=1, prepend=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ret_mean = ret_draws.mean(axis=0) / n_eligible
        cred_ret = np.quantile(ret_draws, q, axis=0) / n_eligible
        alive_mean /= uniq.size * n_eligible

    # predictive bands by simulation
    inc_sim, ret_sim = _simulate_cohort(_col(bg, idx), birth, H, K, window, first_period, rng)
    lo_inc, hi_inc = np.quantile(inc_sim, q, axis=0)
    lo_cum, hi_cum = np.quantile(np.cumsum(inc_sim, axis=1), q, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        lo_ret, hi_ret = np.quantile(ret_sim, q, axis=0) / n_eligible
        ret_share = ret_actual / n_eligible
    index = pd.RangeIndex(K, name="period")
    tracking = pd.DataFrame(
        {
            "actual": inc_actual,
            "predicted": np.diff(cum_mean, prepend=0.0),
            "lower": lo_inc,
            "upper": hi_inc,
            "actual_cumulative": inc_actual.cumsum(),
            "predicted_cumulative": cum_mean,
            "lower_cumulative": lo_cum,
            "upper_cumulative": hi_cum,
            "credible_lower": np.quantile(inc_draws, q[0], axis=0),
            "credible_upper": np.quantile(inc_draws, q[1], axis=0),
            "credible_lower_cumulative": np.quantile(cum_draws, q[0], axis=0),
            "credible_upper_cumulative": np.quantile(cum_draws, q[1], axis=0),
        },
        index=index,
    )
    retention = pd.DataFrame(
        {
            "n_eligible": n_eligible,
            "actual": ret_share,
            "predicted": ret_mean,
            "lower": lo_ret,
            "upper": hi_ret,
            "credible_lower": cred_ret[0],
            "credible_upper": cred_ret[1],
            "expected_alive": alive_mean,
        },
        index=index,
    )
    tracking.attrs.update(prob=prob, horizon=H)
    retention.attrs.update(prob=prob, window=window, horizon=H)
    return CohortTracking(tracking, retention)


# --------------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------------
def _same_length(n: int, **arrays: np.ndarray) -> None:
    for name, arr in arrays.items():
        if np.ndim(arr) != 1 or len(arr) != n:
            raise ClvkitError(
                f"argument {name!r} has shape {np.shape(arr)}, but 'frequency' has {n} customers. "
                "Suggestion: pass aligned 1-D arrays, one entry per customer."
            )


def _check_prob(prob: float) -> None:
    if not (0 < prob < 1):
        raise ClvkitError(
            f"argument 'prob' must be in (0, 1), got {prob!r}. Suggestion: use 0.9 for a 90% band."
        )


def _check_unit(obj: Any, unit: str, argument: str) -> None:
    """A fitted model or posterior that records a time unit must use the backtest's unit."""
    if obj is None or isinstance(obj, dict):
        return
    for holder in (obj, getattr(obj, "posterior_", None), getattr(obj, "posterior", None)):
        recorded = getattr(holder, "attrs", {}).get("time_unit") if holder is not None else None
        if recorded:
            if format_time_unit(recorded) != unit:
                raise ClvkitError(
                    f"argument {argument!r} was fitted with time unit {recorded!r}, but the "
                    f"backtest uses {unit!r}. Suggestion: pass time_unit={recorded!r} or refit."
                )
            return


@dataclass
class BacktestResult:
    """Predicted vs actual on a holdout period; see :func:`backtest`.

    Attributes
    ----------
    customers : pandas.DataFrame
        Per customer (indexed by customer id): calibration summary, actual and predicted holdout
        purchases with the ``prob`` interval and randomized PIT (and revenue when modelled).
    conditional_expectations : pandas.DataFrame
        Mean actual vs predicted holdout purchases by calibration frequency.
    metrics : pandas.DataFrame
        MAE, RMSE, aggregate error, correlation and 50/80/90% coverage.
    frequency_ppc : pandas.DataFrame
        Calibration repeat-purchase histogram, actual vs expected with interval; chi-square in
        ``attrs``.
    tracking, retention : pandas.DataFrame
        Per period, see :func:`cohort_tracking`.
    calibration_end : float
        Calibration end in time units from the cohort origin.
    time_unit : str
    origin : pandas.Timestamp
        Cohort origin (the earliest first purchase); period ``k`` starts ``k`` units after it.
    rfm : pandas.DataFrame
        The calibration summary with holdout columns (``clvkit.data.calibration_holdout``).
    transactions_model, spend_model
        The fitted models (or posteriors) used.

    Examples
    --------
    Every ``plot_*`` method draws on an optional ``ax`` and returns it:

    >>> from clvkit.datasets import cdnow_transactions
    >>> post = {"r": 0.2426, "alpha": 4.4137, "a": 0.793, "b": 2.4262}  # CDNOW MLE (FHL 2005)
    >>> res = backtest(cdnow_transactions(), calibration_end="1997-09-30",
    ...                observation_end="1998-06-30", transactions_model=post,
    ...                n_samples=200, random_seed=0)
    >>> res.conditional_expectations["n_customers"].tolist()
    [1411, 439, 214, 100, 62, 38, 29, 64]
    >>> [type(f(ax=None)).__name__ for f in (res.plot_tracking, res.plot_retention,
    ...  res.plot_frequency_ppc, res.plot_conditional_expectations, res.plot_pit)]
    ['Axes', 'Axes', 'Axes', 'Axes', 'Axes']
    """

    customers: pd.DataFrame
    conditional_expectations: pd.DataFrame
    metrics: pd.DataFrame
    frequency_ppc: pd.DataFrame
    tracking: pd.DataFrame
    retention: pd.DataFrame
    calibration_end: float
    time_unit: str
    origin: pd.Timestamp
    rfm: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    transactions_model: Any = field(default=None, repr=False)
    spend_model: Any = field(default=None, repr=False)

    def plot_tracking(self, cumulative: bool = True, ax: Any = None) -> Any:
        """Actual vs predicted repeat purchases per period; see :func:`clvkit.plots.plot_tracking`."""
        from clvkit import plots

        return plots.plot_tracking(
            self.tracking, cumulative=cumulative, calibration_end=self.calibration_end,
            time_unit=self.time_unit, ax=ax,
        )  # fmt: skip

    def plot_retention(self, ax: Any = None) -> Any:
        """Share of the cohort purchasing per period; see :func:`clvkit.plots.plot_retention`."""
        from clvkit import plots

        return plots.plot_retention(
            self.retention, calibration_end=self.calibration_end, time_unit=self.time_unit, ax=ax
        )

    def plot_frequency_ppc(self, ax: Any = None) -> Any:
        """Calibration histogram check; see :func:`clvkit.plots.plot_frequency_ppc`."""
        from clvkit import plots

        return plots.plot_frequency_ppc(self.frequency_ppc, ax=ax)

    def plot_conditional_expectations(self, ax: Any = None) -> Any:
        """Holdout means by calibration frequency."""
        from clvkit import plots

        return plots.plot_conditional_expectations(self.conditional_expectations, ax=ax)

    def plot_pit(self, revenue: bool = False, ax: Any = None) -> Any:
        """Histogram of the randomized PIT values (flat when calibrated)."""
        from clvkit import plots

        col = "revenue_pit" if revenue else "pit"
        return plots.plot_pit(self.customers[col].to_numpy(), ax=ax)


def _prepare_log(
    transactions: pd.DataFrame,
    customer_id: str,
    date: str,
    amount: str | None,
    observation_end: pd.Timestamp,
) -> pd.DataFrame:
    """Validated, same-day-merged copy of the log up to observation_end (caller's frame untouched)."""
    if not isinstance(transactions, pd.DataFrame):
        raise ClvkitError(
            f"argument 'transactions' must be a pandas DataFrame, got {type(transactions).__name__}."
        )
    cols = [customer_id, date] + ([amount] if amount is not None else [])
    missing = [c for c in cols if c not in transactions.columns]
    if missing:
        raise ClvkitError(
            f"column(s) {missing} not in 'transactions' (columns: {list(transactions.columns)}). "
            "Suggestion: pass customer_id=, date= (and amount=) naming your columns."
        )
    df = transactions[cols].copy()
    df.columns = ["customer_id", "date"] + (["amount"] if amount is not None else [])
    bad = df["customer_id"].isna()
    if bad.any():
        raise bad_rows_error(
            f"column {customer_id!r}", "is missing", int(bad.sum()),
            transactions[bad.to_numpy()].iloc[0].to_dict(), "drop those rows", len(df),
        )  # fmt: skip
    try:
        dates = pd.to_datetime(df["date"], errors="coerce")
    except (TypeError, ValueError) as exc:
        raise ClvkitError(
            f"column {date!r} cannot be read as dates. Suggestion: convert it with pd.to_datetime."
        ) from exc
    bad = dates.isna()
    if bad.any():
        raise bad_rows_error(
            f"column {date!r}", "is missing or not a date", int(bad.sum()),
            transactions[bad.to_numpy()].iloc[0].to_dict(),
            "fix or drop those rows (pd.to_datetime(..., errors='coerce') shows them)", len(df),
        )  # fmt: skip
    df["date"] = dates.dt.normalize()
    if amount is not None:
        amt = pd.to_numeric(df["amount"], errors="coerce")
        bad = ~np.isfinite(amt.to_numpy(dtype=float, na_value=np.nan)) | (amt < 0).to_numpy()
        if bad.any():
            raise bad_rows_error(
                f"column {amount!r}", "is missing, not finite or negative", int(bad.sum()),
                transactions[bad].iloc[0].to_dict(), "drop returns and empty amounts", len(df),
            )  # fmt: skip
        df["amount"] = amt.astype(float)
    df = df[df["date"] <= observation_end]
    if amount is not None:
        df = df.groupby(["customer_id", "date"], as_index=False, sort=True)["amount"].sum()
    else:
        df = df.drop_duplicates(["customer_id", "date"]).sort_values(["customer_id", "date"])
    return df.reset_index(drop=True)


def _cohort_events(log: pd.DataFrame, cal_end: pd.Timestamp) -> tuple[pd.Series, pd.DataFrame]:
    """First purchase date per customer born by ``cal_end``, and their repeat purchase days."""
    first = log.groupby("customer_id")["date"].transform("min")
    log = log[first <= cal_end]
    first = first[first <= cal_end]
    first_c = log.assign(first=first).groupby("customer_id")["first"].first()
    return first_c, log[log["date"] > first]


def backtest(
    transactions: pd.DataFrame | str | os.PathLike,
    *,
    calibration_end: str | pd.Timestamp,
    observation_end: str | pd.Timestamp,
    time_unit: str = "W",
    customer_id: str = "customer_id",
    date: str = "date",
    amount: str | None = None,
    transactions_model: Any = None,
    spend_model: Any = None,
    fit_kwargs: dict[str, Any] | None = None,
    prob: float = 0.9,
    max_frequency: int = 7,
    retention_window: int = 1,
    n_samples: int = 2000,
    random_seed: int | None = None,
    tz: str | None = None,
) -> BacktestResult:
    """Fit on a calibration window and compare predictions with the holdout window.

    Parameters
    ----------
    transactions : pandas.DataFrame, str or os.PathLike
        Purchase log; same-day purchases of a customer merge (amounts summed). A CSV or Parquet
        path or glob is read with :func:`clvkit.data.read_purchases` (the file route).
    calibration_end, observation_end : str or pandas.Timestamp
        Last day of the calibration and of the holdout window (inclusive).
    time_unit : str
        Period length and model time unit (``"W"``, ``"D"``, ``"30D"``...).
    customer_id, date, amount : str
        Column names; with ``amount`` the Gamma-Gamma spend model is backtested too.
    transactions_model, spend_model : optional
        Fitted ``BetaGeo`` / ``GammaGamma`` (or their posterior ``Dataset`` / ``InferenceData``)
        calibrated on this window; fitted here when ``None``.
    fit_kwargs : dict, optional
        Passed to ``fit`` (e.g. ``method="map"``, ``draws=500``).
    prob : float
        Mass of the reported intervals and bands.
    max_frequency : int
        Last pooled group of the conditional-expectation and histogram tables.
    retention_window : int
        Periods in the rolling retention window.
    n_samples : int
        Predictive samples per customer and simulated cohorts for the bands.
    random_seed : int, optional
    tz : str, optional
        Zone that zoned timestamps are converted to before they are cut to days (IANA name;
        default UTC); naive timestamps are wall-clock times, as in :func:`clvkit.rfm_summary`.

    Returns
    -------
    BacktestResult

    Examples
    --------
    >>> from clvkit.datasets import cdnow_transactions
    >>> post = {"r": 0.2426, "alpha": 4.4137, "a": 0.793, "b": 2.4262}
    >>> res = backtest(cdnow_transactions(), calibration_end="1997-09-30",
    ...                observation_end="1998-06-30", transactions_model=post,
    ...                n_samples=200, random_seed=0)
    >>> int(res.customers["actual"].sum())
    1882
    >>> res.plot_tracking()  # doctest: +SKIP
    """
    _check_prob(prob)
    unit = parse_time_unit(time_unit)
    try:
        cal_end = pd.Timestamp(calibration_end)
        obs_end = pd.Timestamp(observation_end)
    except (TypeError, ValueError) as exc:
        raise ClvkitError(
            "arguments 'calibration_end' and 'observation_end' must be dates. "
            "Suggestion: pass ISO strings such as '1997-09-30'."
        ) from exc
    if not cal_end < obs_end:
        raise ClvkitError(
            f"argument 'calibration_end' ({cal_end.date()}) must be before 'observation_end' "
            f"({obs_end.date()}). Suggestion: leave a holdout window after calibration."
        )
    from clvkit.data.summary import calibration_holdout, read_purchases

    # one purchase-day rule for both passes below: dates become naive wall-clock values
    transactions = read_purchases(
        transactions, customer_id=customer_id, date=date, amount=amount, tz=tz
    )
    with warnings.catch_warnings():
        # rows after observation_end are left out by design; other warnings (a holdout window
        # running past the data) reach the caller
        warnings.filterwarnings("ignore", "[0-9,]+ of [0-9,]+ rows are dated after", ClvkitWarning)
        rfm = calibration_holdout(
            transactions,
            calibration_end=cal_end,
            observation_end=obs_end,
            customer_id=customer_id,
            date=date,
            amount=amount,
            time_unit=unit,
        )
    first_c, repeats = _cohort_events(
        _prepare_log(transactions, customer_id, date, amount, obs_end), cal_end
    )
    if not first_c.index.equals(rfm.index):
        first_c = first_c.reindex(rfm.index)
    fit_kwargs = dict(fit_kwargs or {})
    if random_seed is not None:
        fit_kwargs.setdefault("random_seed", random_seed)
    if transactions_model is None:
        from clvkit.models.bgnbd.model import BetaGeo

        transactions_model = BetaGeo().fit(rfm[["frequency", "recency", "T"]].copy(), **fit_kwargs)
    if spend_model is None and amount is not None:
        from clvkit.models.gamma_gamma.model import GammaGamma

        cols = ["frequency", "recency", "T", "monetary_value"]
        spend_model = GammaGamma().fit(rfm.loc[rfm["frequency"] > 0, cols].copy(), **fit_kwargs)
    for name, obj in (("transactions_model", transactions_model), ("spend_model", spend_model)):
        _check_unit(obj, format_time_unit(unit), name)
    from clvkit.rng import make_rng

    rng = make_rng(random_seed)
    with_spend = spend_model is not None and amount is not None
    table = holdout_predictive(
        transactions_model,
        rfm["frequency"].to_numpy(),
        rfm["recency"].to_numpy(),
        rfm["T"].to_numpy(),
        rfm["duration_holdout"].to_numpy(),
        actual=rfm["frequency_holdout"].to_numpy(),
        spend_posterior=spend_model if with_spend else None,
        monetary_value=rfm["monetary_value"].to_numpy() if with_spend else None,
        actual_revenue=(rfm["frequency_holdout"] * rfm["monetary_value_holdout"]).to_numpy()
        if with_spend
        else None,
        prob=prob,
        n_samples=n_samples,
        random_seed=rng,
    )
    table.index = rfm.index
    customers = pd.concat([rfm[["recency", "T"]], table], axis=1)
    ce = conditional_expectations(
        table["frequency"], table["actual"], table["predicted"], max_frequency
    )
    metrics = holdout_metrics(table)
    ppc = frequency_ppc(
        transactions_model,
        rfm["frequency"].to_numpy(),
        rfm["T"].to_numpy(),
        max_frequency=max_frequency,
        prob=prob,
        n_samples=min(n_samples, 1000),
        random_seed=rng,
    )
    origin = first_c.min()
    birth = to_units((first_c - origin).to_numpy(), unit)
    pos = rfm.index.get_indexer(repeats["customer_id"])
    coh = cohort_tracking(
        transactions_model,
        birth,
        pos,
        to_units((repeats["date"] - origin).to_numpy(), unit),
        horizon=to_units(obs_end - origin, unit),
        window=retention_window,
        prob=prob,
        n_samples=min(n_samples, 1000),
        random_seed=rng,
    )
    return BacktestResult(
        customers=customers,
        conditional_expectations=ce,
        metrics=metrics,
        frequency_ppc=ppc,
        tracking=coh.tracking,
        retention=coh.retention,
        calibration_end=to_units(cal_end - origin, unit),
        time_unit=format_time_unit(unit),
        origin=origin,
        rfm=rfm,
        transactions_model=transactions_model,
        spend_model=spend_model,
    )
