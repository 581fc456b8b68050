"""Discounted cash flows per draw and period, through the model contract: the existing
customers' expected flows and the future cohorts' (expected, or simulated).

See :mod:`clvkit.firm.equity` for the cohort timing: cohort ``k`` is acquired at the start
``t_k = (k - 1) * period`` of cash-flow period ``k``, on the same period grid as the existing
customers.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np

from clvkit.models.contract import (
    Cashflow,
    PMap,
    PurchaseSpec,
    SpendSpec,
    n_draws,
    serial_map,
    take,
    take_draws,
)
from clvkit.utils.progress import progress
from clvkit.utils.rows import unique_rows
from clvkit.value.discount import DiscountPlan
from clvkit.value.job import PURCHASE_BATCH

__all__ = [
    "FLOW_CELLS",
    "SIM_CELLS",
    "FlowDraws",
    "PeriodGrid",
    "existing_flows",
    "existing_total",
    "future_flows",
    "new_customer_flows",
    "simulated_future",
]

#: Values (draws x customers) per chunk of the existing customers' per-period flows.
FLOW_CELLS = 8_000_000
#: (draw, customer) pairs per block of simulated new customers.
SIM_CELLS = 2_000_000


class PeriodGrid:
    """Per-period discount weights of a :class:`DiscountPlan`, for the existing customers
    (periods from the observation end) and for cohorts acquired at period starts.

    Interval ``i`` is a window ``[a_i, b_i]`` of a customer's own time (from the observation
    end, or from its acquisition): the whole periods ``[(j - 1) d, j d]`` and, when the horizon
    ``H`` is not a whole number of periods ``d``, the cut windows ``[j d, j d + r]`` (``r = H -
    (P - 1) d``) that end each cohort's horizon. Its discounted expected purchases are
    ``rev[i] @ F(times)`` and its discounted alive periods ``cost[i] @ G(times)``
    (``F`` expected purchases, ``G`` P(alive)), exactly as the plan discounts them: discrete,
    cash of the window at its end's factor ``(1 + rate) ** -(b / d)`` and a cost per window
    whose start finds the customer alive; continuous, integrals by Gauss-Legendre nodes per
    window. Summed over a customer's windows they give the plan's totals.
    """

    n_nodes = 8

    def __init__(self, plan: DiscountPlan) -> None:
        self.plan = plan
        P, d, H = plan.n_periods, plan.period, plan.horizon
        self.cut = H - (P - 1) * d
        self.partial = self.cut < d * (1 - 1e-9)
        n_full = P - 1 if self.partial else P
        windows = [((j - 1) * d, j * d) for j in range(1, n_full + 1)]
        if self.partial:
            windows += [(j * d, j * d + self.cut) for j in range(P)]
        self.n_full = n_full
        self.windows = np.array(windows)
        rows_r, rows_c = [], []
        for a, b in windows:
            rows_r.append(self._rev(a, b))
            rows_c.append(self._cost(a, b))
        times = np.unique(np.concatenate([t for r in rows_r + rows_c for t in (r[0],)]))
        self.times = times
        self.rev = self._matrix(rows_r)
        self.cost = self._matrix(rows_c)

    def _rev(self, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
        lr, d = self.plan.log_rate, self.plan.period
        if not self.plan.continuous:
            f = np.exp(-lr * b / d)
            return np.array([a, b]), np.array([-f, f])
        rho = lr / d
        z, w = np.polynomial.legendre.leggauss(self.n_nodes)
        s = a + 0.5 * (b - a) * (z + 1)
        g = 0.5 * (b - a) * w
        t = np.concatenate([[a, b], s])
        return t, np.concatenate(
            [[-np.exp(-rho * a), np.exp(-rho * b)], rho * np.exp(-rho * s) * g]
        )

    def _cost(self, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
        lr, d = self.plan.log_rate, self.plan.period
        if not self.plan.continuous:
            return np.array([a]), np.array([np.exp(-lr * b / d)])
        rho = lr / d
        z, w = np.polynomial.legendre.leggauss(self.n_nodes)
        s = a + 0.5 * (b - a) * (z + 1)
        return s, np.exp(-rho * s) * 0.5 * (b - a) * w / d

    def _matrix(self, rows: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        out = np.zeros((len(rows), self.times.size))
        for i, (t, w) in enumerate(rows):
            np.add.at(out[i], np.searchsorted(self.times, t), w)
        return out

    def window_cashflow(self, i: int, revenue: bool) -> Cashflow:
        """The contract's :class:`Cashflow` of window ``i``: its discounted expected purchases
        (``revenue``: margin 1, no cost) or minus its discounted alive units (cost 1 per
        period, revenue weights 0)."""
        row = self.rev[i] if revenue else self.cost[i]
        nz = np.flatnonzero(row)
        times = self.times[nz]
        zero = np.zeros(nz.size)
        return Cashflow(
            times=times,
            revenue_weights=row[nz] if revenue else zero,
            cost_weights=zero if revenue else row[nz],
            horizon_index=int(np.argmax(times)),
            margin=1.0,
            cost_per_period=0.0 if revenue else 1.0,
        )

    def existing(self) -> np.ndarray:
        """Window of each firm period ``p = 1 .. P`` for customers observed today ``(P,)``."""
        P = self.plan.n_periods
        idx = np.arange(P)
        if self.partial:
            idx[-1] = self.n_full + P - 1  # [(P - 1) d, H]
        return idx

    def cohort(self, k: int) -> np.ndarray:
        """Windows of firm periods ``k .. P`` for the cohort acquired at ``(k - 1) d``."""
        P = self.plan.n_periods
        idx = np.arange(P - k + 1)
        if self.partial:
            idx[-1] = self.n_full + (P - k)  # its last window [(P - k) d, (P - k) d + r]
        return idx

    def acquisition_discount(self) -> np.ndarray:
        """Discount factor of cash at each cohort's acquisition ``t_k = (k - 1) d`` ``(P,)``."""
        return np.exp(-self.plan.log_rate * np.arange(self.plan.n_periods))


@dataclass
class FlowDraws:
    """Discounted cash flows per draw and cash-flow period, ``(S, P)`` each: expected revenue
    (before margin) and costs of the existing customers and of the future cohorts, and the
    acquisition spend. Equity per draw is ``margin * (existing_revenue + future_revenue) -
    existing_cost - future_cost - acquisition`` summed over periods."""

    existing_revenue: np.ndarray
    existing_cost: np.ndarray
    future_revenue: np.ndarray
    future_cost: np.ndarray
    acquisition: np.ndarray
    margin: float

    def existing_total(self) -> np.ndarray:
        """Existing customers' equity per draw ``(S,)``."""
        return self.margin * self.existing_revenue.sum(1) - self.existing_cost.sum(1)

    def future_total(self) -> np.ndarray:
        """Future cohorts' equity per draw (net of acquisition spend) ``(S,)``."""
        return (
            self.margin * self.future_revenue.sum(1)
            - self.future_cost.sum(1)
            - self.acquisition.sum(1)
        )


def _distinct_chunks(
    purchase: PurchaseSpec,
    spend: SpendSpec,
    sp: Mapping[str, np.ndarray],
    cols: Mapping[str, np.ndarray],
    S: int,
) -> tuple[int, Iterator[tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]]]:
    """The existing customers with equal value keys once, in chunks of about
    :data:`FLOW_CELLS` values: the number of chunks and an iterator of ``(columns, expected
    spend (S, m), customers per row (m,))``."""
    key = np.concatenate([purchase.value_key(cols), spend.value_key(cols)], axis=1)
    first, _, weight = unique_rows(key)
    sub_all = take(cols, first)
    weight = weight.astype(np.float64)
    m = max(1, FLOW_CELLS // S)
    starts = range(0, first.size, m)

    def chunks() -> Iterator[tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]]:
        for lo in starts:
            sl = slice(lo, lo + m)
            sub = {c: v[sl] for c, v in sub_all.items()}
            yield sub, spend.expected_spend(sp, sub), weight[sl]

    return len(starts), chunks()


def existing_flows(
    purchase: PurchaseSpec,
    spend: SpendSpec,
    tp: Mapping[str, np.ndarray],
    sp: Mapping[str, np.ndarray],
    cols: Mapping[str, np.ndarray],
    grid: PeriodGrid,
    progressbar: bool = False,
    pmap: PMap = serial_map,
) -> tuple[np.ndarray, np.ndarray]:
    """Discounted expected revenue (before margin) and costs of the existing customers per
    draw and period ``(S, P)`` each. Each period is one :class:`Cashflow` (its window's
    weights); the purchase model's ``window_values`` sums each over the customers (BG/NBD's
    fast route without a pass over the customers per period); customers with equal value
    keys are computed once, in chunks of about :data:`FLOW_CELLS` values."""
    S = n_draws(tp)
    ex = grid.existing()
    with_cost = grid.plan.cost_per_period > 0
    P = ex.size
    rev = np.zeros((S, P))
    cost = np.zeros((S, P))
    flows = [grid.window_cashflow(i, True) for i in ex]
    costs = [grid.window_cashflow(i, False) for i in ex] if with_cost else []
    n, chunks = _distinct_chunks(purchase, spend, sp, cols, S)
    for sub, s, w in progress(chunks, n, progressbar, "existing customers' cash flows"):
        # one call for both: a cost window has no revenue weights, so its value is -alive units
        both = purchase.window_values(tp, sub, s, w, flows + costs, pmap)
        rev += both[:, :P]
        if with_cost:
            cost -= both[:, P:]
    return rev, grid.plan.cost_per_period * cost


def existing_total(
    purchase: PurchaseSpec,
    spend: SpendSpec,
    tp: Mapping[str, np.ndarray],
    sp: Mapping[str, np.ndarray],
    cols: Mapping[str, np.ndarray],
    cashflow: Cashflow,
    pmap: PMap = serial_map,
) -> np.ndarray:
    """Expected equity of the existing customers per draw ``(S,)`` on the whole horizon (one
    ``window_values`` call per chunk of distinct customers)."""
    S = n_draws(tp)
    total = np.zeros(S)
    for sub, s, w in _distinct_chunks(purchase, spend, sp, cols, S)[1]:
        total += purchase.window_values(tp, sub, s, w, [cashflow], pmap)[:, 0]
    return total


def new_customer_flows(
    purchase: PurchaseSpec, spend: SpendSpec, tp: Mapping, sp: Mapping, grid: PeriodGrid
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Expected spend per purchase ``(S,)`` and discounted purchases / alive units per window
    ``(S, I)`` of a new customer, and its columns."""
    cols = {**purchase.new_customer_columns(1), **spend.new_customer_columns(1)}
    spend0 = spend.expected_spend(sp, cols)[:, 0]
    F = purchase.expected_purchases(tp, cols, grid.times)[:, 0, :]
    R = F @ grid.rev.T
    if grid.plan.cost_per_period > 0:
        C = purchase.probability_alive(tp, cols, grid.times)[:, 0, :] @ grid.cost.T
    else:
        C = np.zeros_like(R)
    return spend0, R, C, cols


def future_flows(
    purchase: PurchaseSpec,
    spend: SpendSpec,
    tp: Mapping[str, np.ndarray],
    sp: Mapping[str, np.ndarray],
    grid: PeriodGrid,
    counts: np.ndarray,
    acquisition_cost: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Discounted expected revenue (before margin), costs and acquisition spend of the future
    cohorts per draw and period ``(S, P)``, for ``counts`` new customers ``(S, P)``."""
    spend0, R, C, _ = new_customer_flows(purchase, spend, tp, sp, grid)
    S, P = counts.shape
    disc = grid.acquisition_discount()
    rev = np.zeros((S, P))
    cost = np.zeros((S, P))
    for k in range(1, P + 1):
        w = counts[:, k - 1] * disc[k - 1]  # (S,)
        if not np.any(w):
            continue
        idx = grid.cohort(k)
        rev[:, k - 1 :] += (w * spend0)[:, None] * R[:, idx]
        rev[:, k - 1] += w * spend0  # the acquisition purchase, at t_k
        cost[:, k - 1 :] += w[:, None] * C[:, idx]
    acq = acquisition_cost * counts * disc[None, :]
    return rev, grid.plan.cost_per_period * cost, acq


def simulated_future(
    purchase: PurchaseSpec,
    spend: SpendSpec,
    tp: Mapping[str, np.ndarray],
    sp: Mapping[str, np.ndarray],
    grid: PeriodGrid,
    counts: np.ndarray,
    margin: float,
    acquisition_cost: float,
    rng: np.random.Generator,
    progressbar: bool = False,
) -> np.ndarray:
    """Predictive value of the future cohorts per draw ``(S,)`` for whole ``counts`` ``(S,
    P)``: new customers simulated over the horizon, the first ``counts[s, 0]`` of draw ``s``
    acquired at ``t_1``, the next ``counts[s, 1]`` at ``t_2``, ..., each one's purchases cut at
    its own remaining horizon ``H - t_k`` and discounted at firm time ``t_k + u``; spends from
    ``sample_spend`` (one latent level per customer, the acquisition purchase first).

    Customers are simulated in blocks of about :data:`SIM_CELLS` (draw, customer) pairs, each
    block only for the draws that acquire that many customers, so memory is bounded; the work
    grows with the number of new customers summed over draws."""
    plan = grid.plan
    S, P = counts.shape
    counts = counts.astype(np.int64)
    total = counts.sum(axis=1)
    n = int(total.max()) if S else 0
    value = -acquisition_cost * (counts * grid.acquisition_discount()[None, :]).sum(axis=1)
    if n == 0:
        return value
    cum = np.cumsum(counts, axis=1)
    t_k = np.arange(P) * plan.period
    revenue = np.zeros(S)
    cost = np.zeros(S)
    block = max(1, SIM_CELLS // S)
    offsets = range(0, n, block)
    for off in progress(offsets, len(offsets), progressbar, "future customers simulated"):
        active = np.flatnonzero(total > off)
        b = min(block, n - off)
        rev, cst = _simulate_block(
            purchase, spend, take_draws(tp, active), take_draws(sp, active), plan,
            cum[active], t_k, off, b, rng,
        )  # fmt: skip
        revenue[active] += rev
        cost[active] += cst
    return value + margin * revenue - plan.cost_per_period * cost


def _simulate_block(
    purchase: PurchaseSpec,
    spend: SpendSpec,
    tp: Mapping[str, np.ndarray],
    sp: Mapping[str, np.ndarray],
    plan: DiscountPlan,
    cum: np.ndarray,
    t_k: np.ndarray,
    offset: int,
    n: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Discounted revenue and cost units per draw of pool customers ``offset .. offset + n``
    (``cum``: cumulative counts per draw and period of these draws)."""
    S, P = cum.shape
    cols = {**purchase.new_customer_columns(n), **spend.new_customer_columns(n)}
    future = purchase.simulate(tp, cols, plan.horizon, rng, PURCHASE_BATCH)
    seen = np.zeros((S, n), dtype=bool)
    revenue = np.zeros(S)

    def cohort_of(draw: np.ndarray, customer: np.ndarray) -> np.ndarray:
        k = np.empty(draw.size, dtype=np.int64)
        order = np.argsort(draw, kind="stable")
        bounds = np.searchsorted(draw[order], np.arange(S + 1))
        for s in np.flatnonzero(np.diff(bounds)):
            at = order[bounds[s] : bounds[s + 1]]
            k[at] = np.searchsorted(cum[s], customer[at] + offset, side="right")
        return k  # P: not acquired in this draw

    for ev in future.batches:
        k = cohort_of(ev.draw, ev.customer)
        used = k < P
        count = ev.count + 1  # the acquisition purchase first, then the repeat purchases
        spends = spend.sample_spend(sp, cols, ev.draw, ev.customer, count, rng)
        owner = np.repeat(np.arange(count.size), count)
        first = np.zeros(spends.size, dtype=bool)
        first[np.concatenate(([0], np.cumsum(count)[:-1]))] = True
        t0 = np.where(used, t_k[np.minimum(k, P - 1)], 0.0)
        when = np.empty(spends.size)
        when[first] = t0
        when[~first] = t0[np.repeat(np.arange(ev.count.size), ev.count)] + ev.times
        inside = (when <= plan.horizon) & used[owner]
        factor = np.where(first, np.exp(-plan.log_rate * when / plan.period), 0.0)
        later = ~first & inside
        factor[later] = plan.discount(when[later])
        revenue += np.bincount(ev.draw[owner], weights=spends * factor * inside, minlength=S)
        seen[ev.draw, ev.customer] = True
    rest_d, rest_c = np.nonzero(~seen)
    if rest_d.size:  # no repeat purchase: the acquisition purchase only
        k = cohort_of(rest_d, rest_c)
        keep = k < P
        rest_d, rest_c, k = rest_d[keep], rest_c[keep], k[keep]
        one = np.ones(rest_d.size, dtype=np.int64)
        spends = spend.sample_spend(sp, cols, rest_d, rest_c, one, rng)
        factor = np.exp(-plan.log_rate * t_k[k] / plan.period)
        revenue += np.bincount(rest_d, weights=spends * factor, minlength=S)
    cost = np.zeros(S)
    if plan.cost_per_period > 0:
        d, c = future.alive_draw, future.alive_customer
        k = cohort_of(d, c)
        keep = k < P
        d, k, death = d[keep], k[keep], future.death[keep]
        units = np.zeros(d.size)
        for kk in np.unique(k):
            at = k == kk
            own = DiscountPlan(
                plan.horizon - t_k[kk], plan.period, np.expm1(plan.log_rate), plan.continuous,
                plan.cost_per_period,
            )  # fmt: skip
            units[at] = own.cost_units_until(death[at]) * np.exp(-plan.log_rate * kk)
        cost = np.bincount(d, weights=units, minlength=S)
    return revenue, cost
