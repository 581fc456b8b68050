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

__all__ = ["expected_value", "grid_sums"]


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
                acc_c += cw[j] * math.exp(-si * L)
            rev[i, u] = acc
            cost[i, u] = acc_c


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
    i_h = int(cashflow.horizon_index)
    clv = np.empty((S, n))

    def block(lo: int) -> np.ndarray:
        sl = slice(lo, lo + DRAW_BLOCK)
        rb, ab, sb, bb = r[sl], alpha[sl], s[sl], beta[sl]
        pa = np.exp(log_alive(rb, ab, sb, bb, x, tx, T))  # (b, n)
        b = rb.shape[0]
        rev_u, at_h, cost_u = (np.empty((b, uT.size)) for _ in range(3))
        grid_sums(
            np.ascontiguousarray(sb[:, 0]), np.ascontiguousarray(bb[:, 0]), uT, times, rw, cw,
            i_h, rev_u, at_h, cost_u,
        )  # fmt: skip
        rate = pa * (rb + x) / (ab + T)  # (b, n)
        cum_h = rate * at_h[:, iT]
        rev = rate * rev_u[:, iT]
        sp = spend[sl]
        val = cashflow.margin * sp * rev
        if has_cost:
            val = val - cashflow.cost_per_period * (pa * cost_u[:, iT])
        clv[sl] = val
        return np.stack([pa.sum(axis=0), cum_h.sum(axis=0), sp.sum(axis=0), val.sum(axis=0)])

    means = np.sum(pmap(block, range(0, S, DRAW_BLOCK)), axis=0) / S
    return clv, means
