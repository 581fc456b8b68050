"""Cohort tracking and retention, actual vs predicted per period, for any purchase model.

Each customer enters at its first purchase; its prediction is a new customer's (an empty
history, :meth:`PurchaseSpec.new_customer_columns`) from there:

- expected cumulative purchases: :meth:`PurchaseSpec.expected_purchases` at each age;
- expected share alive: :meth:`PurchaseSpec.probability_alive` at each age;
- predictive bands: cohorts simulated with :meth:`PurchaseSpec.simulate` on empty histories,
  each customer over its own span from birth to the observation end;
- expected retention (P(at least one purchase in a window)): the optional
  :meth:`PurchaseSpec.probability_purchase_in_window` when the model gives it (BG/NBD does, in
  closed form); otherwise (it returns ``None``) the mean of the simulated cohorts (Monte Carlo).

Times are in the summary's time unit, measured from the cohort origin (the earliest first
purchase). Period ``k`` is ``[k, k + 1)`` clipped to the observation end ``H``.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from clvkit.errors import ClvkitError
from clvkit.evaluation.common import CELLS, draw_index, model_draws
from clvkit.models.contract import PurchaseSpec, n_draws, take_draws
from clvkit.rng import make_rng
from clvkit.utils.checks import check_prob
from clvkit.utils.numba_cache import njit

__all__ = [
    "CohortTracking",
    "cohort_batch_counts",
    "cohort_tracking",
    "simulate_cohort",
    "window_counts",
]

#: Name of the optional exact-retention capability of a purchase spec.


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


def window_counts(
    sample: np.ndarray,
    customer: np.ndarray,
    period: np.ndarray,
    first_period: np.ndarray,
    n_samples: int,
    n_periods: int,
    window: int,
) -> np.ndarray:
    """Per sample and period, customers with >= 1 event in the window ending at that period.

    Events must be sorted by (sample, customer, time). ``first_period[customer]`` is the first
    period in which that customer counts (eligible). Returns ``(n_samples, n_periods)``.

    Examples
    --------
    >>> window_counts(np.zeros(2, int), np.array([0, 0]), np.array([1, 3]), np.array([0]),
    ...               1, 4, 1).tolist()
    [[0.0, 1.0, 0.0, 1.0]]
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


@njit(nogil=True)
def cohort_batch_counts(draw, customer, count, times, birth, first_period, window, inc, diff):
    """Add one batch of simulated events to the per-period counts, in one pass (no sort of
    the events): ``inc[d, k]`` += the unit's events in period ``k``; ``diff`` (``(M, K + 1)``,
    a difference array) gets the unit's window-retention intervals, as :func:`window_counts`.

    Units hold ``count[u]`` events each, their times after birth in ``times`` unit by unit;
    ``birth[customer[u]]`` shifts them to the cohort clock and period ``k`` is ``[k, k + 1)``,
    the last one open-ended.
    """
    K = inc.shape[1]
    buf = np.empty(max(1, count.max() if count.size else 1), dtype=np.int64)
    pos = 0
    for u in range(count.size):
        d, c, m = draw[u], customer[u], count[u]
        for e in range(m):
            per = min(int(np.floor(birth[c] + times[pos + e])), K - 1)
            inc[d, per] += 1.0
            buf[e] = per
        pos += m
        if m == 0:
            continue
        pers = np.sort(buf[:m])
        fp = first_period[c]
        for j in range(m):
            p = pers[j]
            if j > 0 and p == pers[j - 1]:
                continue  # one interval per distinct period
            nxt = K
            for jj in range(j + 1, m):
                if pers[jj] != p:
                    nxt = pers[jj]
                    break
            start = max(p, fp)
            end = min(p + window - 1, nxt - 1, K - 1)
            if start <= end:
                diff[d, start] += 1
                diff[d, end + 1] -= 1


def simulate_cohort(
    spec: PurchaseSpec,
    params: dict[str, np.ndarray],
    birth: np.ndarray,
    horizon: float,
    n_periods: int,
    window: int,
    first_period: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulated repeat purchases per period and window-retained customers, per sample.

    Every row of ``params`` (``(M, k)`` draws) simulates the whole cohort once: each customer,
    an empty history born at ``birth[i]``, over ``(birth[i], horizon]`` with
    :meth:`PurchaseSpec.simulate`. Returns ``(incremental (M, K), retained (M, K))``. Each
    batch of events is counted by the compiled :func:`cohort_batch_counts` in one pass.
    """
    M, n = n_draws(params), birth.size
    inc = np.zeros((M, n_periods))
    diff = np.zeros((M, n_periods + 1), dtype=np.int64)
    step = max(1, CELLS // max(M, 1))
    birth = np.ascontiguousarray(birth, dtype=np.float64)
    first_period = np.ascontiguousarray(first_period, dtype=np.int64)
    for lo in range(0, n, step):
        s = birth[lo : lo + step]
        future = spec.simulate(params, spec.new_customer_columns(s.size), horizon - s, rng)
        fp = first_period[lo : lo + step]
        for batch in future.batches:
            cohort_batch_counts(
                np.ascontiguousarray(batch.draw, dtype=np.int64),
                np.ascontiguousarray(batch.customer, dtype=np.int64),
                np.ascontiguousarray(batch.count, dtype=np.int64),
                np.ascontiguousarray(batch.times, dtype=np.float64),
                s, fp, int(window), inc, diff,
            )  # fmt: skip
    ret = np.cumsum(diff, axis=1)[:, :-1].astype(float)
    return inc, ret


def new_customer_expected(
    spec: PurchaseSpec, params: dict[str, np.ndarray], age: np.ndarray
) -> np.ndarray:
    """E[purchases by ``age``] of a new customer on any grid of ages (0 where ``age <= 0``).

    Returns ``(S, *age.shape)``.
    """
    flat = np.maximum(np.asarray(age, dtype=float), 0.0).ravel()
    uniq, inv = np.unique(flat, return_inverse=True)
    out = spec.expected_purchases(params, spec.new_customer_columns(1), uniq)[:, 0, :]
    return out[:, inv].reshape((-1, *np.shape(age)))


def new_customer_alive(
    spec: PurchaseSpec, params: dict[str, np.ndarray], age: np.ndarray
) -> np.ndarray:
    """P(alive at ``age``) of a new customer on any grid of ages >= 0; ``(S, *age.shape)``."""
    flat = np.maximum(np.asarray(age, dtype=float), 0.0).ravel()
    uniq, inv = np.unique(flat, return_inverse=True)
    out = spec.probability_alive(params, spec.new_customer_columns(1), uniq)[:, 0, :]
    return out[:, inv].reshape((-1, *np.shape(age)))


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
    transactions_posterior : fitted purchase model, InferenceData, posterior Dataset or dict
        Draws of any registered purchase model.
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
    check_prob(prob)
    if int(window) != window or window < 1:
        raise ClvkitError(
            f"argument 'window' must be a positive integer, got {window!r}. Suggestion: use 1."
        )
    window = int(window)
    rng = make_rng(random_seed)
    spec, params = model_draws(transactions_posterior, "purchase", "transactions_posterior")
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
    ret_actual = window_counts(
        np.zeros(rc.size, dtype=np.int64), rc[order], per[order], first_period, 1, K, window
    )[0]

    # analytic means over the distinct draws behind the samples, by distinct birth time
    S = n_draws(params)
    idx = draw_index(S, n_samples, rng)
    uniq = np.unique(idx)
    b_u, b_inv = np.unique(birth, return_inverse=True)
    nb = np.bincount(b_inv).astype(float)
    fp_u = np.ceil(b_u + window - 1 - 1e-9)
    exact = True  # until the model says it has no closed form for the window probability
    cum_draws = np.zeros((uniq.size, K))  # expected cumulative purchases per draw
    ret_draws = np.zeros((uniq.size, K))  # expected number retained per draw
    alive_mean = np.zeros(K)
    elig = fp_u[:, None] <= starts[None, :]  # (G, K)
    w_start = starts - window + 1
    age_end = ends[None, :] - b_u[:, None]  # (G, K)
    step = max(1, CELLS // (b_u.size * K))
    for lo in range(0, uniq.size, step):
        sl = slice(lo, lo + step)
        sub = take_draws(params, uniq[sl])
        cum_draws[sl] = np.einsum("sgk,g->sk", new_customer_expected(spec, sub, age_end), nb)
        if exact:
            u = np.maximum(w_start[None, :] - b_u[:, None], 0.0)
            pr = spec.probability_purchase_in_window(sub, u, np.maximum(age_end, u))
            if pr is None:
                exact = False
            else:
                ret_draws[sl] = np.einsum("sgk,gk->sk", pr, elig * nb[:, None])
        alive = new_customer_alive(spec, sub, np.maximum(age_end, 0.0))
        alive_mean += np.einsum("sgk,gk->k", alive, elig * nb[:, None])

    # predictive bands by simulation
    inc_sim, ret_sim = simulate_cohort(
        spec, take_draws(params, idx), birth, H, K, window, first_period, rng
    )
    if not exact:  # Monte Carlo: per draw, the mean of the cohorts it simulated
        pos = np.searchsorted(uniq, idx)
        ret_draws = np.zeros((uniq.size, K))
        np.add.at(ret_draws, pos, ret_sim)
        ret_draws /= np.bincount(pos, minlength=uniq.size)[:, None]
    q = [(1 - prob) / 2, (1 + prob) / 2]
    cum_mean = cum_draws.mean(axis=0)
    inc_draws = np.diff(cum_draws, axis=1, prepend=0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ret_mean = ret_draws.mean(axis=0) / n_eligible
        cred_ret = np.quantile(ret_draws, q, axis=0) / n_eligible
        alive_mean /= uniq.size * n_eligible
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
    tracking.attrs.update(prob=prob, horizon=H, model=spec.name)
    retention.attrs.update(
        prob=prob, window=window, horizon=H, model=spec.name,
        retention="exact" if exact else "simulated",
    )  # fmt: skip
    return CohortTracking(tracking, retention)
