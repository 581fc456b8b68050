"""Private numerics for :mod:`clvkit.value`: alive-conditional BG/NBD expectations and the
vectorized simulation of each customer's future.

Shapes: population parameters ``(S, 1)`` (one row per paired draw), customer arrays ``(n,)``,
results ``(S, n)``. Notation as in ``/docs``: ``x`` repeat purchases, ``tx`` recency, ``T`` age.

Given a customer alive at ``T`` (Fader, Hardie and Lee 2005), ``lam ~ Gamma(r + x, alpha + T)``
and ``p ~ Beta(a, b + x)``; a customer alive with rate ``lam`` and dropout ``p`` buys at rate
``lam * exp(-lam * p * s)`` at ``T + s``. Averaging over ``lam`` and ``p`` gives Gauss
hypergeometric closed forms:

- ``F(t) = E[N(T, T+t] | alive]
  = (a+b'-1)/(a-1) * (1 - (al/(al+t))**r' * 2F1(r', b'; a+b'-1; t/(al+t)))``
  (FHL 2005, eq. 10 without the P(alive) factor);
- ``G(s) = P(alive at T+s | alive at T) = E[(1 + p s/al)**-r']
  = (al/(al+s))**r' * 2F1(r', b'; a+b'; s/(al+s))`` (Euler's integral, then Pfaff's transform),

with ``r' = r + x``, ``al = alpha + T``, ``b' = b + x``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, hyp2f1

_A_NEAR_ONE = 1e-4  # F has a removable singularity at a = 1; interpolate across it


def probability_alive(r, alpha, a, b, x, tx, T):
    """P(alive at T | x, tx, T) for each draw and customer, ``(S, n)``."""
    with np.errstate(divide="ignore"):
        log_odds = (
            np.log(a)
            - np.log(np.where(x > 0, b + x - 1, 1.0))
            + (r + x) * (np.log(alpha + T) - np.log(alpha + tx))
        )
    return np.where(x > 0, expit(-log_odds), 1.0)


def mean_spend(p, q, v, x, m):
    """E[spend per purchase | x, m] (Gamma-Gamma); ``inf`` where the posterior mean does not exist."""
    den = p * x + q - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        out = p * (v + x * m) / den
    return np.where(den > 0, out, np.inf)


def _log_hyp2f1(A, B, C, z):
    """``(log|2F1(A, B; C; z)|, sign)`` for 0 <= z < 1, falling back on Euler's transformation
    2F1(A, B; C; z) = (1 - z)^(C - A - B) 2F1(C - A, C - B; C; z) where the direct value
    overflows. (2F1 is negative for some C < 0, which only x = 0 and a + b < 1 reach.)"""
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        h = hyp2f1(A, B, C, z)
        out, sign = np.log(np.abs(h)), np.sign(h)
        bad = ~np.isfinite(out)
        if np.any(bad):
            A, B, C, z = (np.broadcast_to(v, out.shape)[bad] for v in (A, B, C, z))
            h2 = hyp2f1(C - A, C - B, C, z)
            out[bad] = (C - A - B) * np.log1p(-z) + np.log(np.abs(h2))
            sign[bad] = np.sign(h2)
    return out, sign


def _alive_purchases_sum(r, alpha, a, b, x, T, times, weights):
    rr = r + x
    al = alpha + T
    log_al = np.log(al)
    bb = b + x
    c = a + bb - 1.0
    scale = c / (a - 1.0)
    total = 0.0
    for t, w in zip(times, weights, strict=True):
        log_h, sign = _log_hyp2f1(rr, bb, c, t / (al + t))
        log_y = rr * (log_al - np.log(al + t)) + log_h
        f = scale * np.where(sign > 0, -np.expm1(log_y), 1.0 - sign * np.exp(log_y))
        total = total + w * f
    return total, f


def alive_expected_purchases(r, alpha, a, b, x, T, times, weights):
    """``(sum_j w_j F(t_j), F(t_last))`` with F(t) = E[purchases in (T, T+t] | alive at T].

    Each result has shape ``(S, n)``. F is analytic in ``a`` but its closed form is 0/0 at
    ``a = 1`` and inf * 0 at ``a + b + x = 1``: there it is interpolated linearly across
    ``a +- 1e-4`` (error O(1e-8) relative).
    """
    a = np.broadcast_to(a, np.broadcast_shapes(np.shape(a), np.shape(x)))
    bb = b + x
    sing = np.where(np.abs(a - 1.0) < np.abs(a + bb - 1.0), 1.0, 1.0 - bb)
    near = np.abs(a - sing) < _A_NEAR_ONE
    if not np.any(near):
        return _alive_purchases_sum(r, alpha, a, b, x, T, times, weights)
    lo, hi = sing - _A_NEAR_ONE, sing + _A_NEAR_ONE
    f = _alive_purchases_sum(r, alpha, np.where(near, hi, a), b, x, T, times, weights)
    f_lo = _alive_purchases_sum(r, alpha, np.where(near, lo, a), b, x, T, times, weights)
    w = (a - lo) / (hi - lo)
    return tuple(np.where(near, u + w * (v - u), v) for u, v in zip(f_lo, f, strict=True))


def alive_survival(r, alpha, a, b, x, T, times, weights):
    """sum_j w_j G(s_j), G(s) = P(alive at T+s | alive at T), ``(S, n)``."""
    rr = r + x
    al = alpha + T
    log_al = np.log(al)
    bb = b + x
    c = a + bb
    total = 0.0
    for s, w in zip(times, weights, strict=True):
        if s == 0:
            total = total + w
            continue
        log_h, sign = _log_hyp2f1(rr, bb, c, s / (al + s))  # c = a + b' > 0: 2F1 > 0
        total = total + w * sign * np.exp(rr * (log_al - np.log(al + s)) + log_h)
    return total


def simulate_future(bg, gg, x, tx, T, m, plan, rng):
    """Simulate each (draw, customer) future over the horizon, exactly and without loops.

    Alive at ``T`` with probability P(alive). If alive, the purchase count of an immortal
    customer over the horizon ``H`` is ``K0 ~ NegBin(r', al/(al+H))`` (Poisson with a
    Gamma(r', al) rate) and the purchase that ends the relationship is the ``M``-th,
    ``M ~ Geometric(p)``, ``p ~ Beta(a, b')``. So ``N = min(K0, M)`` purchases fall in the
    horizon. If ``M > K0`` the times are ``K0`` iid uniforms on ``(0, H)``; else the customer
    dies at ``tau = H * Beta(M, K0 - M + 1)`` (the M-th order statistic) and the other ``M - 1``
    times are iid uniform on ``(0, tau)``. Spends are ``Gamma(p_s, nu)`` with
    ``nu ~ Gamma(p_s x + q, v + x m)``. Latent draws are made only where they matter.

    Returns ``(revenue, cost_units, count)``, each ``(S, n)``: discounted revenue before margin,
    discounted cost in units of ``cost_per_period``, and purchases in the horizon.
    """
    r, alpha, a, b = bg
    sp, sq, sv = gg
    shape = np.broadcast_shapes(r.shape, x.shape)
    revenue = np.zeros(shape)
    cost = np.zeros(shape)
    count = np.zeros(shape, dtype=np.int64)
    H = plan.horizon

    pa = probability_alive(r, alpha, a, b, x, tx, T)
    di, ci = np.nonzero(rng.random(shape) < pa)  # alive units: draw index, customer index
    xi = x[ci]
    rr = r[di, 0] + xi
    al = alpha[di, 0] + T[ci]
    k0 = rng.negative_binomial(rr, al / (al + H))
    # customers alive at T who buy nothing in the horizon are alive throughout it
    tau = np.full(di.shape, np.inf)
    buy = np.nonzero(k0 > 0)[0]
    if buy.size:
        kb = k0[buy]
        pdrop = rng.beta(a[di[buy], 0], b[di[buy], 0] + xi[buy])
        mb = rng.geometric(np.maximum(pdrop, 1e-300))
        died = mb <= kb
        nb = np.minimum(kb, mb)
        tau_b = np.full(buy.shape, np.inf)
        if np.any(died):
            tau_b[died] = H * rng.beta(mb[died], kb[died] - mb[died] + 1)
        tau[buy] = tau_b
        # purchases, flattened: one entry per purchase
        owner = np.repeat(np.arange(buy.size), nb)
        upper = np.where(died, tau_b, H)
        times = rng.random(owner.size) * upper[owner]
        last = np.cumsum(nb) - 1
        times[last[died]] = tau_b[died]
        d_b = di[buy]
        c_b = ci[buy]
        nu = rng.gamma(sp[d_b, 0] * x[c_b] + sq[d_b, 0]) / (sv[d_b, 0] + x[c_b] * m[c_b])
        spend = rng.gamma(sp[d_b, 0][owner]) / nu[owner]
        rev_b = np.bincount(
            owner, weights=spend * plan.discount_at_purchase(times), minlength=buy.size
        )
        revenue[d_b, c_b] = rev_b
        count[d_b, c_b] = nb
    if plan.cost_per_period > 0:
        cost[di, ci] = plan.cost_units_until(tau)
    return revenue, cost, count


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

    discount_at_purchase = discount

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


def expected_chunk(bg, gg, x, tx, T, m, plan, margin):
    """Expected discounted CLV given history, per draw: ``(clv, p_alive, purchases, spend)``.

    The alive-conditional parts depend on ``(x, T)`` only, so they are computed once per
    distinct pair in the chunk.
    """
    r, alpha, a, b = bg
    pa = probability_alive(r, alpha, a, b, x, tx, T)
    spend = mean_spend(*gg, x, m)
    keys, inv = np.unique(np.stack([x.astype(float), T]), axis=1, return_inverse=True)
    ux, uT = keys
    inv = inv.ravel()
    t_rev, w_rev = plan.revenue_weights()
    disc, purchases_h = alive_expected_purchases(r, alpha, a, b, ux, uT, t_rev, w_rev)
    clv = margin * spend * disc[:, inv]
    if plan.cost_per_period > 0:
        alive_cost = alive_survival(r, alpha, a, b, ux, uT, *plan.cost_weights())
        clv = clv - plan.cost_per_period * alive_cost[:, inv]
    return pa * clv, pa, pa * purchases_h[:, inv], spend
