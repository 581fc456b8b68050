"""Pareto/NBD's fast route to the expected discounted CLV (:meth:`ParetoNBDSpec.expected_value`).

Given alive at ``T``, the expected purchases in ``(T, T + t_j]`` are ``(r + x) / (α + T) ·
G_j`` and P(alive at ``T + t_j``) is ``e^{-s L_j}``, with ``G_j`` and ``L_j = log1p(t_j / (β +
T))`` functions of the draw and ``T`` only (:mod:`clvkit.models.pnbd.predictions`). So the
cash-flow sums over the grid are computed once per (draw, distinct ``T``) and each customer
needs only its P(alive), computed once per distinct row with each bracket term once per pair.
The contract tests check it against the generic route.
"""

from __future__ import annotations

import numpy as np

from clvkit.models.contract import DRAW_BLOCK, Cashflow, Columns, Params, PMap, serial_map
from clvkit.models.pnbd.predictions import expected_factor, log_alive

__all__ = ["expected_value"]


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
    iT = iT.ravel()
    times = np.asarray(cashflow.times, dtype=np.float64)
    rw = np.asarray(cashflow.revenue_weights, dtype=np.float64)
    cw = np.asarray(cashflow.cost_weights, dtype=np.float64)
    has_cost = cashflow.cost_per_period > 0
    i_h = int(cashflow.horizon_index)
    clv = np.empty((S, n))

    def block(lo: int) -> np.ndarray:
        sl = slice(lo, lo + DRAW_BLOCK)
        rb, ab, sb, bb = r[sl], alpha[sl], s[sl], beta[sl]
        pa = np.exp(log_alive(rb, ab, sb, bb, x, tx, T))  # (b, n)
        B = (bb + uT)[..., None]  # (b, U, 1)
        fac = expected_factor(sb[..., None], B, times)  # (b, U, J)
        rate = (rb + x) / (ab + T)  # (b, n)
        cum_h = pa * rate * fac[:, iT, i_h]
        rev = pa * rate * (fac @ rw)[:, iT]
        sp = spend[sl]
        val = cashflow.margin * sp * rev
        if has_cost:
            surv = np.exp(-sb[..., None] * np.log1p(times / B))  # (b, U, J)
            val = val - cashflow.cost_per_period * (pa * (surv @ cw)[:, iT])
        clv[sl] = val
        return np.stack([pa.sum(axis=0), cum_h.sum(axis=0), sp.sum(axis=0), val.sum(axis=0)])

    means = np.sum(pmap(block, range(0, S, DRAW_BLOCK)), axis=0) / S
    return clv, means
