"""BG/NBD's fast route to the expected discounted CLV (:meth:`BGNBDSpec.expected_value`).

The generic route of :meth:`clvkit.models.contract.PurchaseSpec.expected_value` evaluates the
expected purchases and P(alive) on the cash-flow grid for every (draw, customer). Here the
costly part, the Gauss-Beta averages given alive at ``T``, depends on ``(x, T)`` only: it is
computed once per distinct pair by the compiled kernels of :mod:`clvkit.models.bgnbd.quadrature`
(summed over the horizons in place), and P(alive), the spend and the cash-flow weights are
combined per customer in one more kernel. The contract tests check it against the generic route.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from clvkit.models.bgnbd import quadrature
from clvkit.models.contract import DRAW_BLOCK, Cashflow, Columns, Params, PMap, serial_map

__all__ = ["expected_value", "window_values"]


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


def _prepare(params: Params, cols: Columns) -> tuple[tuple[np.ndarray, ...], ...]:
    """The kernels' inputs: draws ``(r, alpha, a, b)``, the (x, T) pair groups ``(ux, gstart,
    pair_T)``, the customers ``(x, group, pair, iT, itx)`` and the tables ``(ux, uT, utx)``."""
    par = tuple(
        np.ascontiguousarray(np.asarray(params[k], dtype=np.float64)[:, 0])
        for k in ("r", "alpha", "a", "b")
    )
    x, tx, T = (
        np.ascontiguousarray(cols[k], dtype=np.float64) for k in ("frequency", "recency", "T")
    )
    ux, gstart, pT, group, pair = _pairs(x, T)
    uT, iT = np.unique(T, return_inverse=True)
    utx, itx = np.unique(tx, return_inverse=True)
    cust = (x, group, pair, iT.ravel().astype(np.int64), itx.ravel().astype(np.int64))
    return par, (ux, gstart, pT), cust, (ux, uT, utx)


def _grid(cashflow: Cashflow) -> tuple[np.ndarray, ...]:
    return tuple(
        np.ascontiguousarray(v, dtype=np.float64)
        for v in (cashflow.times, cashflow.revenue_weights, cashflow.cost_weights)
    )


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
    par, groups, cust, tables = _prepare(params, cols)
    spend = np.ascontiguousarray(spend, dtype=np.float64)
    grid = _grid(cashflow)
    i_h = int(cashflow.horizon_index)
    money = (float(cashflow.margin), float(cashflow.cost_per_period))
    S, U, n = par[0].size, groups[2].size, cust[0].size
    clv = np.empty((S, n))
    draws = tuple(np.empty((S, n) if per_draw else (0, 0)) for _ in range(2))
    visit = quadrature.draw_order(par[2], par[3])

    def block(lo: int) -> np.ndarray:  # pair values, then customers, of one block of draws
        rows = visit[lo : lo + DRAW_BLOCK]
        vals = tuple(np.empty((rows.size, U)) for _ in range(3))  # row j: draw rows[j]
        if U:
            quadrature.alive_values(par, rows, groups, grid, i_h, vals)
        sums = np.zeros((4, n))
        quadrature.assemble(par, rows, cust, tables, vals, spend, money, (clv, sums, *draws))
        return sums

    # per-block sums added in block order: the same rounding for any pool
    means = np.sum(pmap(block, range(0, S, DRAW_BLOCK)), axis=0) / S
    return clv, means, (draws if per_draw else None)


def window_values(
    params: Params,
    cols: Columns,
    spend: np.ndarray,
    weight: np.ndarray,
    cashflows: Sequence[Cashflow],
    pmap: PMap = serial_map,
) -> np.ndarray:
    """Expected discounted CLV summed over customers, per draw and cash flow ``(S, K)``, as
    :meth:`clvkit.models.contract.PurchaseSpec.window_values`.

    A customer's value is its P(alive) times the values given alive of its (x, T) pair, so
    per draw the customers' ``weight * P(alive) * spend`` and ``weight * P(alive)`` are summed
    per pair once (:func:`~clvkit.models.bgnbd.quadrature.pair_sums`), and each cash flow
    costs only the pair values (:func:`~clvkit.models.bgnbd.quadrature.alive_values`), not a
    pass over the customers. Draw blocks as :func:`expected_value`.
    """
    par, groups, cust, tables = _prepare(params, cols)
    spend = np.ascontiguousarray(spend, dtype=np.float64)
    weight = np.ascontiguousarray(weight, dtype=np.float64)
    grids = [(_grid(cf), int(cf.horizon_index), float(cf.margin), float(cf.cost_per_period))
             for cf in cashflows]  # fmt: skip
    S, U = par[0].size, groups[2].size
    out = np.zeros((S, len(grids)))
    visit = quadrature.draw_order(par[2], par[3])

    def block(lo: int) -> None:
        rows = visit[lo : lo + DRAW_BLOCK]
        if not U:
            return
        sums = np.zeros((2, rows.size, U))
        quadrature.pair_sums(par, rows, cust, tables, spend, weight, sums)
        vals = tuple(np.empty((rows.size, U)) for _ in range(3))
        for k, (grid, i_h, margin, cost_per_period) in enumerate(grids):
            quadrature.alive_values(par, rows, groups, grid, i_h, vals)
            total = margin * np.einsum("ju,ju->j", vals[0], sums[0])
            if cost_per_period > 0.0:
                total -= cost_per_period * np.einsum("ju,ju->j", vals[2], sums[1])
            out[rows, k] = total

    pmap(block, range(0, S, DRAW_BLOCK))
    return out
