"""sBG's fast route to the expected discounted CLV (:meth:`ShiftedBetaGeoSpec.expected_value`).

Given active after ``n`` renewals, the renewal ``k`` falls at ``u0 + k - 1`` and is paid with
probability ``r_k = S(n + k) / S(n)``, ``r_k = r_{k-1} (beta + n + k - 1) / (alpha + beta + n +
k - 1)``. So the discounted expected renewals on a cash-flow grid are one pass over the
renewals in the horizon per (draw, customer), each renewal weighted by the revenue weights of
the grid times at or after it, and the discounted alive periods one pass over the grid, P(alive
at ``t_j``) being ``r`` of the renewals due by then; the same numbers as the generic route
(closed forms on the grid), which the contract tests check.
"""

from __future__ import annotations

import math

import numpy as np

from clvkit.models.contract import DRAW_BLOCK, Cashflow, Columns, Params, PMap, serial_map
from clvkit.utils.numba_cache import njit

__all__ = ["expected_value"]


@njit(nogil=True, error_model="numpy")
def _block(alpha, beta, rows, n, ch, u0, times, suffix, cost_w, jh, spend, money, clv, sums):
    """CLV of draws ``rows`` (``times`` sorted, ``suffix[j]`` the revenue weights of times
    ``>= times[j]``, ``jh`` the horizon's sorted index); ``sums`` (4, n) receives the draws'
    sums of P(alive now), expected renewals in the horizon, spend and CLV."""
    margin = money[0]
    cpp = money[1]
    P = times.size
    for q in range(rows.size):
        s = rows[q]
        a = alpha[s]
        b = beta[s]
        for i in range(n.size):
            sp = spend[s, i]
            if ch[i] > 0.0:
                val = 0.0
                clv[s, i] = val
                sums[2, i] += sp
                continue
            bn = b + n[i]
            r = 1.0
            k = 0  # renewals due so far
            rev = 0.0
            cost = 0.0
            cum = 0.0
            cum_h = 0.0
            for j in range(P):
                t = times[j]
                m = math.floor(t - u0[i]) + 1.0 if t >= u0[i] else 0.0
                while k < m:
                    r *= (bn + k) / (a + bn + k)
                    k += 1
                    cum += r
                    rev += r * suffix[j]
                cost += cost_w[j] * r
                if j == jh:
                    cum_h = cum
            val = margin * sp * rev - cpp * cost
            clv[s, i] = val
            sums[0, i] += 1.0
            sums[1, i] += cum_h
            sums[2, i] += sp
            sums[3, i] += val


def expected_value(
    params: Params,
    cols: Columns,
    spend: np.ndarray,
    cashflow: Cashflow,
    pmap: PMap = serial_map,
) -> tuple[np.ndarray, np.ndarray]:
    """Expected discounted CLV per draw and customer (arguments and returns as
    :meth:`clvkit.models.contract.PurchaseSpec.expected_value`), draws in fixed blocks of
    :data:`~clvkit.models.contract.DRAW_BLOCK` through ``pmap``."""
    alpha = np.ascontiguousarray(np.asarray(params["alpha"], dtype=np.float64)[:, 0])
    beta = np.ascontiguousarray(np.asarray(params["beta"], dtype=np.float64)[:, 0])
    n, ch, age = (
        np.ascontiguousarray(cols[c], dtype=np.float64) for c in ("renewals", "churned", "age")
    )
    u0 = n + 1.0 - age
    times = np.asarray(cashflow.times, dtype=np.float64)
    order = np.argsort(times, kind="stable")
    ts = np.ascontiguousarray(times[order])
    rw = np.asarray(cashflow.revenue_weights, dtype=np.float64)[order]
    suffix = np.ascontiguousarray(np.cumsum(rw[::-1])[::-1])
    cw = np.asarray(cashflow.cost_weights, dtype=np.float64)[order]
    cw = np.ascontiguousarray(cw if cashflow.cost_per_period > 0 else np.zeros_like(cw))
    jh = int(np.flatnonzero(order == int(cashflow.horizon_index))[0])
    money = np.array([float(cashflow.margin), float(cashflow.cost_per_period)])
    spend = np.ascontiguousarray(spend, dtype=np.float64)
    S = alpha.size
    clv = np.empty((S, n.size))

    def block(lo: int) -> np.ndarray:
        sums = np.zeros((4, n.size))
        rows = np.arange(lo, min(lo + DRAW_BLOCK, S), dtype=np.int64)
        _block(alpha, beta, rows, n, ch, u0, ts, suffix, cw, jh, spend, money, clv, sums)
        return sums

    means = np.sum(pmap(block, range(0, S, DRAW_BLOCK)), axis=0) / S
    return clv, means
