"""Cash-flow timing: when revenue and costs fall and how they are discounted (model-free).

A :class:`DiscountPlan` turns the horizon, period, rate and discounting scheme into the
weights of the model contract's :class:`~clvkit.models.contract.Cashflow` (for expected
values) and into discount factors of simulated event times.
"""

from __future__ import annotations

import numpy as np

from clvkit.models.contract import Cashflow

__all__ = ["DiscountPlan"]


class DiscountPlan:
    """Horizon ``H`` and period ``delta`` in the RFM time unit, and the rate per period.

    Discrete: cash of period ``k`` (ending at ``e_k = min(k delta, H)``) is discounted by
    ``(1 + rate) ** -(e_k / delta)``; continuous: cash at time ``s`` by
    ``exp(-ln(1 + rate) s / delta)``. A cost is charged for each period whose start finds the
    customer alive (discrete), or flows at ``cost_per_period / delta`` per time unit while
    alive (continuous).

    Examples
    --------
    >>> plan = DiscountPlan(3.0, 1.0, 0.1, False, 0.0)
    >>> plan.discount(np.array([0.5, 2.5])).round(4).tolist()
    [0.9091, 0.7513]
    """

    n_nodes = 32  # Gauss-Legendre nodes on [0, H] for the continuous expectations

    def __init__(
        self,
        horizon: float,
        period: float,
        rate_per_period: float,
        continuous: bool,
        cost_per_period: float,
    ) -> None:
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

    def discount(self, t: np.ndarray) -> np.ndarray:
        """Discount factor of cash at time ``t`` (continuous) or in the period holding ``t``."""
        if self.continuous:
            return np.exp(-self.log_rate * np.asarray(t) / self.period)
        k = np.clip(
            np.ceil(np.asarray(t) / self.period - 1e-12).astype(np.int64), 1, self.n_periods
        )
        return self.end_discount[k - 1]

    def cost_units_until(self, tau: np.ndarray) -> np.ndarray:
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

    def _nodes(self) -> tuple[np.ndarray, np.ndarray]:
        z, w = np.polynomial.legendre.leggauss(self.n_nodes)
        return 0.5 * self.horizon * (z + 1.0), 0.5 * self.horizon * w

    def revenue_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Times ``t_j`` (the last is H) and weights ``w_j``: discounted purchases =
        sum_j w_j F(t_j), F the expected purchases in (T, T + t]."""
        if not self.continuous:  # summation by parts; the last time is H
            d = self.end_discount
            return self.ends, d - np.append(d[1:], 0.0)
        # integration by parts: int e^{-rho s} dF(s) = e^{-rho H} F(H) + rho int e^{-rho s} F(s) ds
        s, g = self._nodes()
        rate = self.log_rate / self.period
        t = np.append(s, self.horizon)
        w = np.append(rate * np.exp(-rate * s) * g, np.exp(-rate * self.horizon))
        return t, w

    def cost_weights(self) -> tuple[np.ndarray, np.ndarray]:
        """Times ``s_j`` and weights ``c_j``: discounted alive periods = sum_j c_j G(s_j),
        G the probability of being alive at T + s."""
        if not self.continuous:
            return self.starts, self.end_discount
        s, g = self._nodes()
        rate = self.log_rate / self.period
        return s, np.exp(-rate * s) * g / self.period

    def cashflow(self, margin: float) -> Cashflow:
        """The contract's :class:`~clvkit.models.contract.Cashflow`: the distinct revenue and
        cost times on one grid with both weights, and the index of the horizon."""
        t_rev, w_rev = self.revenue_weights()
        parts_t, parts_r, parts_c = [t_rev], [w_rev], [np.zeros_like(w_rev)]
        if self.cost_per_period > 0:
            s_cost, c_cost = self.cost_weights()
            parts_t.append(s_cost)
            parts_r.append(np.zeros_like(c_cost))
            parts_c.append(c_cost)
        times, inv = np.unique(np.concatenate(parts_t), return_inverse=True)
        wr = np.bincount(inv, weights=np.concatenate(parts_r), minlength=times.size)
        wc = np.bincount(inv, weights=np.concatenate(parts_c), minlength=times.size)
        return Cashflow(
            times=times,
            revenue_weights=wr,
            cost_weights=wc,
            horizon_index=int(inv[t_rev.size - 1]),  # the last revenue time is H
            margin=float(margin),
            cost_per_period=self.cost_per_period,
        )
