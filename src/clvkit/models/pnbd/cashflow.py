"""Pareto/NBD's fast route to the expected discounted CLV (:meth:`ParetoNBDSpec.expected_value`).

Given alive at ``T``, the expected purchases in ``(T, T + t_j]`` are ``(r + x) / (α + T) ·
G_j`` and P(alive at ``T + t_j``) is ``e^{-s L_j}``, with ``G_j`` and ``L_j = log1p(t_j / (β +
T))`` functions of the draw and ``T`` only (:mod:`clvkit.models.pnbd.predictions`). So the
cash-flow sums over the grid are computed once per (draw, distinct ``T``) and each customer
needs only its P(alive), computed once per distinct row with each bracket term once per pair.
The contract tests check it against the generic route.
"""

from __future__ import annotations

import math

import numpy as np

from clvkit.models.contract import DRAW_BLOCK, Cashflow, Columns, Params, PMap, serial_map
from clvkit.models.pnbd.predictions import log_alive
from clvkit.utils.numba_cache import njit

__all__ = ["combine", "expected_value", "grid_sums"]


@njit(nogil=True, error_model="numpy")
def grid_sums(s, beta, uT, times, rw, cw, i_h, rev, at_h, cost):  # pragma: no cover - compiled
    """Per (draw, distinct T): ``rev = Σ_j rw_j G_j``, ``at_h = G_{i_h}`` and ``cost = Σ_j cw_j
    e^{-s L_j}`` with ``G_j = B L_j g((s-1) L_j)``, ``L_j = log1p(t_j / B)``, ``B = β + T`` (as
    :func:`clvkit.models.pnbd.predictions.expected_factor`)."""
    for i in range(rev.shape[0]):
        si = s[i]
        for u in range(uT.size):
            B = beta[i] + uT[u]
            acc = 0.0
            acc_c = 0.0
            for j in range(times.size):
                L = math.log1p(times[j] / B)
                z = (si - 1.0) * L
                g = 1.0 if z == 0.0 else -math.expm1(-z) / z
                G = B * L * g
                acc += rw[j] * G
                if j == i_h:
                    at_h[i, u] = G
                if cw[j] != 0.0:  # a zero weight adds +0.0 (the term is at most 1)
                    acc_c += cw[j] * math.exp(-si * L)
            rev[i, u] = acc
            cost[i, u] = acc_c


@njit(nogil=True, error_model="numpy")
def combine(pa, r, alpha, x, T, iT, sums_u, spend, money, clv, sums, terms):  # pragma: no cover
    """CLV per (draw, customer) of a block into ``clv`` and the sums over its draws of
    purchases in the horizon, spend and CLV into ``sums[1:]`` (row 0, P(alive), is left to the
    caller), row by row (numpy's order for an axis-0 sum of a C-ordered array over more than
    one column); with a non-empty ``terms`` (4, b, n) the terms are written there instead.
    ``sums_u`` = (rev, at_h, cost) per (draw, distinct T) from :func:`grid_sums`, ``iT`` each
    customer's T; ``money`` = (margin, cost_per_period). The operations of the former numpy
    expressions, in their order."""
    rev_u, at_h, cost_u = sums_u
    margin, cpp = money
    keep = terms.shape[1] > 0
    for i in range(pa.shape[0]):
        ri = r[i]
        ai = alpha[i]
        for j in range(pa.shape[1]):
            p = pa[i, j]
            u = iT[j]
            rate = p * (ri + x[j]) / (ai + T[j])
            cum = rate * at_h[i, u]
            sp = spend[i, j]
            val = margin * sp * (rate * rev_u[i, u])
            if cpp > 0.0:
                val = val - cpp * (p * cost_u[i, u])
            clv[i, j] = val
            if keep:
                terms[0, i, j], terms[1, i, j], terms[2, i, j], terms[3, i, j] = p, cum, sp, val
            elif i == 0:
                sums[1, j], sums[2, j], sums[3, j] = cum, sp, val
            else:
                sums[1, j] += cum
                sums[2, j] += sp
                sums[3, j] += val


def expected_value(
    params: Params,
    cols: Columns,
    spend: np.ndarray,
    cashflow: Cashflow,
    pmap: PMap = serial_map,
) -> tuple[np.ndarray, np.ndarray]:
    """Expected discounted CLV given the history, per draw: ``(clv (S, n), means (4, n))`` as
    :meth:`clvkit.models.contract.PurchaseSpec.expected_value`, in fixed blocks of
    :data:`~clvkit.models.contract.DRAW_BLOCK` draws through ``pmap``."""
    r, alpha, s, beta = (
        np.asarray(params[k], dtype=np.float64) for k in ("r", "alpha", "s", "beta")
    )
    x, tx, T = (np.asarray(cols[k], dtype=np.float64) for k in ("frequency", "recency", "T"))
    S, n = r.shape[0], x.size
    uT, iT = np.unique(T, return_inverse=True)
    uT = np.ascontiguousarray(uT)
    iT = iT.ravel()
    times, rw, cw = (
        np.ascontiguousarray(v, dtype=np.float64)
        for v in (cashflow.times, cashflow.revenue_weights, cashflow.cost_weights)
    )
    has_cost = cashflow.cost_per_period > 0
    money = (float(cashflow.margin), float(cashflow.cost_per_period) if has_cost else 0.0)
    i_h = int(cashflow.horizon_index)
    clv = np.empty((S, n))
    spend = np.ascontiguousarray(spend, dtype=np.float64)
    x, T, iT = (np.ascontiguousarray(v) for v in (x, T, iT.astype(np.int64)))
    r1, a1, s1, b1 = (np.ascontiguousarray(v[:, 0]) for v in (r, alpha, s, beta))

    def block(lo: int) -> np.ndarray:
        sl = slice(lo, lo + DRAW_BLOCK)
        pa = np.exp(log_alive(r[sl], alpha[sl], s[sl], beta[sl], x, tx, T))  # (b, n)
        b = pa.shape[0]
        sums_u = tuple(np.empty((b, uT.size)) for _ in range(3))  # rev, at_h, cost
        grid_sums(s1[sl], b1[sl], uT, times, rw, cw, i_h, *sums_u)
        sums = np.empty((4, n))
        # one customer: numpy sums a single column pairwise, so keep the terms and let it
        terms = np.empty((4, b, n) if n == 1 else (4, 0, 0))
        combine(pa, r1[sl], a1[sl], x, T, iT, sums_u, spend[sl], money, clv[sl], sums, terms)
        if n == 1:
            sums = terms.sum(axis=1)
        sums[0] = pa.sum(axis=0)  # pa may be F-ordered (then summed pairwise): numpy's sum
        return sums

    means = np.sum(pmap(block, range(0, S, DRAW_BLOCK)), axis=0) / S
    return clv, means
