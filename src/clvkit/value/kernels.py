"""Private numerics for :mod:`clvkit.value.engine`: discount plans, expected discounted value (the
compiled kernels of :mod:`clvkit.models.bgnbd.quadrature`, same Gauss-Beta averages as :mod:`clvkit.models.bgnbd.predictions`),
and a vectorized simulation of each customer's future.

Shapes: population parameters ``(S, 1)`` (one row per paired draw), customer arrays ``(n,)``,
results ``(S, n)``. ``x`` repeat purchases, ``tx`` recency, ``T`` age, ``m`` mean spend.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from clvkit.models.bgnbd import predictions as predict
from clvkit.models.bgnbd import quadrature as _quadrature
from clvkit.models.gamma_gamma import predictions as gg_predict

PURCHASE_BATCH = 2_000_000  # simulated purchases held at once per chunk (about 100 MB)


def simulate_future(bg, gg, x, tx, T, m, plan, rng):
    """Simulate each (draw, customer) future over the horizon, exactly and without loops.

    ``(alive, lam, p)`` come from the conditional posterior, as in
    :func:`predict.bg_sample_latent` but drawn only where needed.
    An alive customer would make ``K0 ~ Poisson(lam H)`` purchases in the horizon ``H`` if
    immortal; the purchase after which it drops out is the ``M``-th, ``M ~ Geometric(p)``. So
    ``N = min(K0, M)`` purchases fall in the horizon. If ``M > K0`` their times are ``K0`` iid
    uniforms on ``(0, H)``; else the customer dies at ``tau = H * Beta(M, K0 - M + 1)`` (the M-th
    order statistic of ``K0`` uniforms) and the other ``M - 1`` times are iid uniform on
    ``(0, tau)``. Spends are ``Gamma(p_s, nu)`` with ``nu`` from :func:`gg_predict.gg_sample_nu`,
    drawn only for customers who buy.

    Returns ``(revenue, cost_units, count, p_alive)``, each ``(S, n)``: discounted revenue before margin,
    discounted cost in units of ``cost_per_period``, and purchases in the horizon.
    """
    sp, sq, sv = gg
    shape = np.broadcast_shapes(bg[0].shape, x.shape)
    revenue = np.zeros(shape)
    cost = np.zeros(shape)
    count = np.zeros(shape, dtype=np.int64)
    H = plan.horizon

    # The latent draw of predict.bg_sample_latent, made lazily: lam only where alive and p only
    # where a purchase falls in the horizon (dead customers buy nothing; p matters only then).
    r, alpha, a, b = bg
    pa = predict.bg_probability_alive(*bg, x, tx, T)
    di, ci = np.nonzero(rng.random(shape) < pa)  # alive units: draw index, customer index
    lam = rng.gamma(r[di, 0] + x[ci]) / (alpha[di, 0] + T[ci])  # Gamma(r + x, alpha + T)
    k0 = rng.poisson(lam * H)  # purchases in the horizon if the customer never died
    tau = np.full(di.shape, np.inf)  # death time; alive customers who buy nothing live on
    buy = np.nonzero(k0 > 0)[0]
    # purchases are simulated in batches of units holding at most PURCHASE_BATCH of them, so
    # a chunk of heavy buyers (tens of purchases per unit) does not hold them all at once
    start, bounds = 0, np.cumsum(k0[buy])
    while start < buy.size:
        done = bounds[start - 1] if start else 0
        end = max(start + 1, int(np.searchsorted(bounds, done + PURCHASE_BATCH, side="right")))
        units = buy[start:end]
        start = end
        kb = k0[units]
        d_b, c_b = di[units], ci[units]
        pdrop = rng.beta(a[d_b, 0], b[d_b, 0] + x[c_b])  # Beta(a, b + x) given alive
        mb = rng.geometric(np.maximum(pdrop, 1e-300))  # the purchase after which it drops out
        died = mb <= kb
        nb = np.minimum(kb, mb)
        tau_b = np.full(units.shape, np.inf)
        if np.any(died):
            tau_b[died] = H * rng.beta(mb[died], kb[died] - mb[died] + 1)
        tau[units] = tau_b
        # purchases, flattened: one entry per purchase
        owner = np.repeat(np.arange(units.size), nb)
        upper = np.where(died, tau_b, H)
        times = rng.random(owner.size) * upper[owner]
        last = np.cumsum(nb) - 1
        times[last[died]] = tau_b[died]
        nu = gg_predict.gg_sample_nu(sp[d_b, 0], sq[d_b, 0], sv[d_b, 0], x[c_b], m[c_b], rng)
        spend = rng.gamma(sp[d_b, 0][owner]) / nu[owner]
        rev_b = np.bincount(owner, weights=spend * plan.discount(times), minlength=units.size)
        revenue[d_b, c_b] = rev_b
        count[d_b, c_b] = nb
    if plan.cost_per_period > 0:
        cost[di, ci] = plan.cost_units_until(tau)
    return revenue, cost, count, pa


class DiscountPlan:
    """Cash-flow timing: horizon ``H`` and period ``delta`` in the RFM time unit, the rate per period.

    Discrete: cash of period ``k`` (ending at ``e_k = min(k delta, H)``) is discounted by
    ``(1 + rate) ** -(e_k / delta)``; continuous: cash at time ``s`` by ``exp(-ln(1 + rate) s / delta)``.
    A cost is charged for each period whose start finds the customer alive (discrete), or flows at
    ``cost_per_period / delta`` per time unit while alive (continuous).
    """

    n_nodes = 32  # Gauss-Legendre nodes on [0, H] for the continuous expectations

    def __init__(self, horizon, period, rate_per_period, continuous, cost_per_period):
        self.horizon = float(horizon)
        self.period = float(period)
        self.continuous = bool(continuous)
        self.cost_per_period = float(cost_per_period)
        self.log_rate = float(np.log1p(rate_per_period))  # per period
        self.n_periods = max(1, int(np.ceil(self.horizon / self.period - 1e-9)))
        k = np.arange(1, self.n_periods + 1)
        self.ends = np.minimum(k * self.period, self.horizon)
        self.starts = (k - 1) * self.period
        self.end_discount = np.exp(-self.log_rate * self.ends / self.period)

    def discount(self, t):
        """Discount factor of cash at time ``t`` (continuous) or in the period holding ``t``."""
        if self.continuous:
            return np.exp(-self.log_rate * np.asarray(t) / self.period)
        k = np.clip(
            np.ceil(np.asarray(t) / self.period - 1e-12).astype(np.int64), 1, self.n_periods
        )
        return self.end_discount[k - 1]

    def cost_units_until(self, tau):
        """Discounted cost (in units of cost_per_period) of a customer alive until ``tau``."""
        u = np.minimum(tau, self.horizon)
        if self.continuous:
            rate = self.log_rate / self.period
            if rate == 0:
                return u / self.period
            return -np.expm1(-rate * u) / rate / self.period
        cum = np.concatenate([[0.0], np.cumsum(self.end_discount)])
        n_started = np.minimum(np.ceil(u / self.period - 1e-12), self.n_periods)
        return cum[np.maximum(n_started, 0).astype(np.int64)]

    def _nodes(self):
        z, w = np.polynomial.legendre.leggauss(self.n_nodes)
        return 0.5 * self.horizon * (z + 1.0), 0.5 * self.horizon * w

    def revenue_weights(self):
        """Times ``t_j`` (the last is H) and weights ``w_j``: discounted purchases = sum w_j F(t_j)."""
        if not self.continuous:  # summation by parts; the last time is H
            d = self.end_discount
            return self.ends, d - np.append(d[1:], 0.0)
        # integration by parts: int e^{-rho s} dF(s) = e^{-rho H} F(H) + rho int e^{-rho s} F(s) ds
        s, g = self._nodes()
        rate = self.log_rate / self.period
        t = np.append(s, self.horizon)
        w = np.append(rate * np.exp(-rate * s) * g, np.exp(-rate * self.horizon))
        return t, w

    def cost_weights(self):
        """Times ``s_j`` and weights ``c_j``: discounted alive periods = sum_j c_j G(s_j)."""
        if not self.continuous:
            return self.starts, self.end_discount
        s, g = self._nodes()
        rate = self.log_rate / self.period
        return s, np.exp(-rate * s) * g / self.period


DRAW_BLOCK = 256  # draws per kernel task: fixed, so results do not depend on the thread count
PMap = Callable[[Callable[[int], Any], Iterable[int]], list]  # a (thread pool's) map to a list


def serial_map(fn: Callable[[int], Any], items: Iterable[int]) -> list:
    """``list(map(fn, items))``: the one-thread stand-in for a thread pool's map."""
    return [fn(i) for i in items]


def expected_chunk(
    bg, gg, x, tx, T, m, plan, margin, pmap: PMap = serial_map, per_draw: bool = False
):
    """Expected discounted CLV given the history, per draw.

    CLV = P(alive) * (margin * E[spend] * sum_j w_j F(t_j) - cost * sum_j c_j G(s_j)), with F, G
    the expected purchases in (T, T+t] and P(alive at T+s), both given alive at T, and w, c the
    plan's weights. F and G depend on (x, T) only, so they are computed once per distinct pair,
    by the compiled kernels of :mod:`clvkit.models.bgnbd.quadrature` (same Gauss-Beta averages as
    :mod:`clvkit.models.bgnbd.predictions`, summed over the horizons in place).

    The draws are split into fixed blocks of :data:`DRAW_BLOCK` run through ``pmap`` (a
    thread pool's map: the kernels release the GIL); the blocks do not depend on the pool, so
    neither do the results.

    Returns ``(clv, means, draws)``: ``clv`` (S, n); ``means`` (4, n), the means over draws of
    P(alive), expected purchases, expected spend and CLV (non-finite where a draw's CLV is);
    ``draws`` is ``None``, or with ``per_draw`` the first three per draw, each (S, n).
    """
    r, alpha, a, b = (np.ascontiguousarray(np.broadcast_to(v, bg[0].shape)[:, 0]) for v in bg)
    sp, sq, sv = (np.ascontiguousarray(np.broadcast_to(v, bg[0].shape)[:, 0]) for v in gg)
    x, tx, T, m = (np.ascontiguousarray(v, dtype=np.float64) for v in (x, tx, T, m))
    # distinct (x, T) pairs sorted by x then T; groups of equal x share one Gauss rule
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
    times, w_rev, w_cost, i_h = _plan_times(plan)
    S, U, n = r.size, px.size, x.size
    uT, iT = np.unique(T, return_inverse=True)
    utx, itx = np.unique(tx, return_inverse=True)
    clv = np.empty((S, n))
    draws = tuple(np.empty((S, n) if per_draw else (0, 0)) for _ in range(3))
    visit = _quadrature.draw_order(a, b)

    def block(lo: int) -> np.ndarray:  # pair values, then customers, of one block of draws
        rows = visit[lo : lo + DRAW_BLOCK]
        rev, fh, cost = (np.empty((rows.size, U)) for _ in range(3))  # row j: draw rows[j]
        if U:
            _quadrature.alive_values(
                r, alpha, a, b, rows, ux, gstart, pT, times, w_rev, w_cost, i_h, rev, fh, cost
            )  # fmt: skip
        sums = np.zeros((4, n))
        _quadrature.assemble(
            r, alpha, a, b, sp, sq, sv, ux, x, m, group, pair, uT, iT, utx, itx, rev, fh, cost,
            float(margin), plan.cost_per_period, rows, clv, sums, *draws,
        )  # fmt: skip
        return sums

    # per-block sums added in block order: the same rounding for any pool
    means = np.sum(pmap(block, range(0, S, DRAW_BLOCK)), axis=0) / S
    return clv, means, (draws if per_draw else None)


def _plan_times(plan):
    """Distinct horizons of the plan with their revenue and cost weights, and the index of H."""
    t_rev, w_rev = plan.revenue_weights()
    parts_t, parts_r, parts_c = [t_rev], [w_rev], [np.zeros_like(w_rev)]
    if plan.cost_per_period > 0:
        s_cost, c_cost = plan.cost_weights()
        parts_t.append(s_cost)
        parts_r.append(np.zeros_like(c_cost))
        parts_c.append(c_cost)
    times, inv = np.unique(np.concatenate(parts_t), return_inverse=True)
    wr = np.bincount(inv, weights=np.concatenate(parts_r), minlength=times.size)
    wc = np.bincount(inv, weights=np.concatenate(parts_c), minlength=times.size)
    i_h = int(inv[t_rev.size - 1])  # the last revenue time is H
    return times, wr, wc, i_h
