"""BG/NBD's fast route to the expected discounted CLV (:meth:`BGNBDSpec.expected_value`).

The generic route of :meth:`clvkit.models.contract.PurchaseSpec.expected_value` evaluates the
expected purchases and P(alive) on the cash-flow grid for every (draw, customer). Here the
costly part, the Gauss-Beta averages given alive at ``T``, depends on ``(x, T)`` only: it is
computed once per distinct pair by the compiled kernels of :mod:`clvkit.models.bgnbd.quadrature`
(summed over the horizons in place), and P(alive), the spend and the cash-flow weights are
combined per customer in one more kernel. The contract tests check it against the generic route.
"""

from __future__ import annotations

import numpy as np

from clvkit.models.bgnbd import quadrature
from clvkit.models.contract import DRAW_BLOCK, Cashflow, Columns, Params, PMap, serial_map

__all__ = ["expected_value"]


def _pairs(x: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, ...]:
    """Distinct (x, T) pairs sorted by x then T, grouped by x (one Gauss rule per group).

    Returns ``(ux, gstart, pair_T, group, pair)``: the groups' x, their offsets into the pairs,
    the pairs' T, and each customer's group and pair.
    """
    order = np.lexsort((T, x))
    xs, Ts = x[order], T[order]
    new = np.empty(xs.size, dtype=bool)
    new[:1] = True
    new[1:] = (xs[1:] != xs[:-1]) | (Ts[1:] != Ts[:-1])
    pair = np.empty(x.size, dtype=np.int64)
    pair[order] = np.cumsum(new) - 1
    px, pT = xs[new], Ts[new]
    gnew = np.empty(px.size, dtype=bool)
    gnew[:1] = True
    gnew[1:] = px[1:] != px[:-1]
    gstart = np.append(np.flatnonzero(gnew), px.size).astype(np.int64)
    ux = px[gstart[:-1]]
    group = np.cumsum(gnew)[pair] - 1
    return ux, gstart, pT, group, pair


def expected_value(
    params: Params,
    cols: Columns,
    spend: np.ndarray,
    cashflow: Cashflow,
    pmap: PMap = serial_map,
    per_draw: bool = False,
) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray] | None]:
    """Expected discounted CLV given the history, per draw, by the compiled kernels.

    Arguments as :meth:`clvkit.models.contract.PurchaseSpec.expected_value`. The draws are
    split into fixed blocks of :data:`~clvkit.models.contract.DRAW_BLOCK` run through ``pmap``
    (the kernels release the GIL); the blocks do not depend on the pool, so neither do the
    results.

    Returns
    -------
    clv : numpy.ndarray
        ``(S, n)``.
    means : numpy.ndarray
        ``(4, n)``: means over draws of P(alive), expected purchases in the horizon, spend and
        CLV (non-finite where a draw's CLV is).
    draws : tuple or None
        With ``per_draw``, P(alive) and expected purchases per draw, each ``(S, n)``.
    """
    par = tuple(
        np.ascontiguousarray(np.asarray(params[k], dtype=np.float64)[:, 0])
        for k in ("r", "alpha", "a", "b")
    )
    x, tx, T = (
        np.ascontiguousarray(cols[k], dtype=np.float64) for k in ("frequency", "recency", "T")
    )
    spend = np.ascontiguousarray(spend, dtype=np.float64)
    ux, gstart, pT, group, pair = _pairs(x, T)
    grid = tuple(
        np.ascontiguousarray(v, dtype=np.float64)
        for v in (cashflow.times, cashflow.revenue_weights, cashflow.cost_weights)
    )
    i_h = int(cashflow.horizon_index)
    money = (float(cashflow.margin), float(cashflow.cost_per_period))
    S, U, n = par[0].size, pT.size, x.size
    uT, iT = np.unique(T, return_inverse=True)
    utx, itx = np.unique(tx, return_inverse=True)
    cust = (x, group, pair, iT.ravel().astype(np.int64), itx.ravel().astype(np.int64))
    tables = (ux, uT, utx)
    clv = np.empty((S, n))
    draws = tuple(np.empty((S, n) if per_draw else (0, 0)) for _ in range(2))
    visit = quadrature.draw_order(par[2], par[3])

    def block(lo: int) -> np.ndarray:  # pair values, then customers, of one block of draws
        rows = visit[lo : lo + DRAW_BLOCK]
        vals = tuple(np.empty((rows.size, U)) for _ in range(3))  # row j: draw rows[j]
        if U:
            quadrature.alive_values(par, rows, (ux, gstart, pT), grid, i_h, vals)
        sums = np.zeros((4, n))
        quadrature.assemble(par, rows, cust, tables, vals, spend, money, (clv, sums, *draws))
        return sums

    # per-block sums added in block order: the same rounding for any pool
    means = np.sum(pmap(block, range(0, S, DRAW_BLOCK)), axis=0) / S
    return clv, means, (draws if per_draw else None)
