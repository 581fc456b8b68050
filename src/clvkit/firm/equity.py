"""The firm's customer equity: the existing base plus the cohorts it will acquire, per draw.

Existing customers are valued by :func:`clvkit.customer_value` (so with no future acquisition
the firm's equity IS its equity, draw for draw). Future cohorts use the same paired posterior
draws (purchase draw ``s`` with spend draw ``perm[s]``, rebuilt by
:func:`clvkit.value.job.prepare_job` from the same seed) and the same discounting:

- cohort timing: the cohort of cash-flow period ``k`` (``k = 1 .. P``) is acquired at the
  period's start ``t_k = (k - 1) * period`` after the observation end; its acquisition
  purchase and its acquisition cost fall at ``t_k`` (discount factor ``(1 + rate) ** -(k-1)``,
  so cohort 1 is undiscounted, like a new customer in :func:`clvkit.customer_value`); its
  repeat purchases and costs follow the new-customer model over the remaining horizon ``H -
  t_k`` on the same period grid (so a repeat purchase in firm period ``p`` is discounted
  exactly as an existing customer's purchase in period ``p``);
- value: ``future = sum_k N_k disc(t_k) (V_new(H - t_k) - CAC)``, ``V_new(h)`` the value of a new
  customer over ``h`` (margin on the acquisition purchase plus discounted repeat purchases,
  minus costs: the definition of :attr:`CustomerValue.new_customer`);
- ``method="expected"``: ``N_k`` the acquisition forecast's expected counts per draw and
  ``V_new`` expected (the spend model's expected spend), so intervals are credible;
  ``method="simulate"``: predictive counts per draw, and each new customer's future simulated
  with the purchase model's ``simulate``, every purchase's spend drawn with ``sample_spend``
  (one latent spend level per customer), so intervals are predictive, as the existing part's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from clvkit.errors import ClvkitError
from clvkit.models.contract import PurchaseSpec, SpendSpec, n_draws, serial_map, take
from clvkit.rng import check_random_seed
from clvkit.units import parse_time_unit
from clvkit.utils.progress import progress
from clvkit.value.discount import DiscountPlan
from clvkit.value.engine import customer_value
from clvkit.value.job import PURCHASE_BATCH, RunOptions, ValueJob, prepare_job
from clvkit.value.result import CustomerValue
from clvkit.value.settings import CashflowSettings

__all__ = ["FirmEquity", "FlowDraws", "PeriodGrid", "firm_equity"]

#: Values per block of the existing customers' per-period flows (draws x customers x times).
FLOW_CELLS = 4_000_000


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


def existing_flows(
    purchase: PurchaseSpec,
    spend: SpendSpec,
    tp: Mapping[str, np.ndarray],
    sp: Mapping[str, np.ndarray],
    cols: Mapping[str, np.ndarray],
    grid: PeriodGrid,
    progressbar: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Discounted expected revenue (before margin) and alive-period units of the existing
    customers per draw and period ``(S, P)`` each, through the contract's primitives;
    customers with equal value keys are computed once."""
    S = n_draws(tp)
    key = np.concatenate([purchase.value_key(cols), spend.value_key(cols)], axis=1)
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    weight = np.bincount(inverse.ravel(), minlength=first.size).astype(np.float64)
    sub_all = take(cols, first)
    ex = grid.existing()
    rev_w = grid.rev[ex]
    cost_w = grid.cost[ex]
    with_cost = grid.plan.cost_per_period > 0
    P = ex.size
    rev = np.zeros((S, P))
    cost = np.zeros((S, P))
    m = max(1, FLOW_CELLS // (S * grid.times.size))
    starts = range(0, first.size, m)
    for lo in progress(starts, len(starts), progressbar, "existing customers' cash flows"):
        sl = slice(lo, lo + m)
        sub = {c: v[sl] for c, v in sub_all.items()}
        F = purchase.expected_purchases(tp, sub, grid.times)  # (S, m, U)
        s = spend.expected_spend(sp, sub) * weight[sl]  # (S, m)
        rev += np.einsum("sm,smu,pu->sp", s, F, rev_w, optimize=True)
        if with_cost:
            G = purchase.probability_alive(tp, sub, grid.times)
            cost += np.einsum("m,smu,pu->sp", weight[sl], G, cost_w, optimize=True)
    return rev, grid.plan.cost_per_period * cost


def _new_customer(
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
    spend0, R, C, _ = _new_customer(purchase, spend, tp, sp, grid)
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
) -> np.ndarray:
    """Predictive value of the future cohorts per draw ``(S,)`` for whole ``counts`` ``(S,
    P)``: a pool of new customers simulated over the horizon, the first ``counts[s, 0]`` of
    draw ``s`` acquired at ``t_1``, the next ``counts[s, 1]`` at ``t_2``, ..., each one's
    purchases cut at its own remaining horizon ``H - t_k`` and discounted at firm time
    ``t_k + u``; spends from ``sample_spend`` (one latent level per customer, the acquisition
    purchase first)."""
    plan = grid.plan
    S, P = counts.shape
    counts = counts.astype(np.int64)
    total = counts.sum(axis=1)
    n = int(total.max()) if S else 0
    value = -acquisition_cost * (counts * grid.acquisition_discount()[None, :]).sum(axis=1)
    if n == 0:
        return value
    # cohort of pool customer j in draw s: searchsorted on the cumulative counts (-1: unused)
    cum = np.cumsum(counts, axis=1)
    t_k = np.arange(P) * plan.period
    cols = {**purchase.new_customer_columns(n), **spend.new_customer_columns(n)}
    future = purchase.simulate(tp, cols, plan.horizon, rng, PURCHASE_BATCH)
    seen = np.zeros((S, n), dtype=bool)
    revenue = np.zeros(S)

    def cohort_of(draw: np.ndarray, customer: np.ndarray) -> np.ndarray:
        k = np.empty(draw.size, dtype=np.int64)
        for s in np.unique(draw):
            at = draw == s
            k[at] = np.searchsorted(cum[s], customer[at], side="right")
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
    value += margin * revenue
    if plan.cost_per_period > 0:
        d, c = future.alive_draw, future.alive_customer
        k = cohort_of(d, c)
        keep = k < P
        d, c, k, death = d[keep], c[keep], k[keep], future.death[keep]
        units = np.zeros(d.size)
        for kk in np.unique(k):
            at = k == kk
            own = DiscountPlan(
                plan.horizon - t_k[kk], plan.period, np.expm1(plan.log_rate), plan.continuous,
                plan.cost_per_period,
            )  # fmt: skip
            units[at] = own.cost_units_until(death[at]) * np.exp(-plan.log_rate * kk)
        value -= plan.cost_per_period * np.bincount(d, weights=units, minlength=S)
    return value


def _period_counts(
    acquisition: Any,
    kind: str,
    S: int,
    plan: DiscountPlan,
    unit: pd.Timedelta,
    rng: np.random.Generator,
) -> np.ndarray:
    """New customers per draw and cash-flow period ``(S, P)`` from an acquisition model or
    plan: its forecast in its own periods, paired with the value draws (by position when the
    numbers agree; evenly spaced when it has more; recycled in shuffled blocks when fewer) and
    each of its periods put in the cash-flow period holding the period's midpoint."""
    P = plan.n_periods
    if acquisition is None:
        return np.zeros((S, P))
    if not hasattr(acquisition, "forecast"):
        raise ClvkitError(
            f"argument 'acquisition' must be an AcquisitionModel, an AcquisitionPlan or None, "
            f"got {type(acquisition).__name__}. Suggestion: clvkit.AcquisitionPlan([...])."
        )
    period = getattr(acquisition, "period_", None)
    seed = int(rng.integers(2**63))
    plan_like = hasattr(acquisition, "cv")
    if period is None:
        if not plan_like:
            raise ClvkitError(
                "argument 'acquisition' does not know its period length. Suggestion: fit it on "
                "acquisition_counts(...) (whose attrs give the period) or pass period= to fit."
            )
        fc = acquisition.forecast(P, kind=kind, n_draws=S, random_seed=seed)
        return fc.values.reshape(-1, P)
    a = float(parse_time_unit(period) / unit)
    m = max(1, int(np.ceil(plan.horizon / a - 1e-9)))
    if plan_like:
        fc = acquisition.forecast(m, kind=kind, n_draws=S, random_seed=seed)
    else:
        fc = acquisition.forecast(m, kind=kind, random_seed=seed)
    flat = fc.values.reshape(-1, m)
    A = flat.shape[0]
    if A == 1:
        flat = np.repeat(flat, S, axis=0)
    elif A > S:
        flat = flat[np.round(np.linspace(0, A - 1, S)).astype(np.int64)]
    elif A < S:
        reps = -(-S // A)
        flat = flat[np.concatenate([rng.permutation(A) for _ in range(reps)])[:S]]
    mid = (np.arange(m) + 0.5) * a
    keep = mid < plan.horizon
    target = np.minimum((mid[keep] // plan.period).astype(np.int64), P - 1)
    out = np.zeros((S, P))
    for j, p in zip(np.flatnonzero(keep), target, strict=True):
        out[:, p] += flat[:, j]
    return out


@dataclass
class FirmEquity:
    """Result of :func:`firm_equity`.

    Attributes
    ----------
    existing : xarray.DataArray
        Equity of today's customers per draw ``(chain, draw)``: ``customer_value``'s equity.
    future : xarray.DataArray
        Value of the future cohorts net of acquisition spend per draw ``(chain, draw)``.
    total : xarray.DataArray
        ``existing + future``.
    expected_future : xarray.DataArray
        The future part with expected counts and expected values (credible); equals
        ``future`` with ``method="expected"``.
    new_customers : xarray.DataArray
        New customers per draw and cash-flow period ``(chain, draw, period)`` (expected
        counts, or predictive ones with ``method="simulate"``).
    customer_value : CustomerValue
        The valuation of the existing base.
    settings : dict
        ``customer_value``'s settings plus the acquisition's description.
    """

    existing: xr.DataArray
    future: xr.DataArray
    total: xr.DataArray
    expected_future: xr.DataArray
    new_customers: xr.DataArray
    customer_value: CustomerValue
    settings: dict[str, Any]
    job: ValueJob = field(repr=False)
    grid: PeriodGrid = field(repr=False)
    cols: dict[str, np.ndarray] = field(repr=False)
    expected_counts: np.ndarray = field(repr=False)
    progressbar: bool = False
    _flows: FlowDraws | None = field(default=None, repr=False)

    @property
    def flow_draws(self) -> FlowDraws:
        """Expected discounted flows per draw and period (computed on first use: the existing
        customers' expected purchases at every period end)."""
        if self._flows is None:
            job = self.job
            rev, cost = existing_flows(
                job.purchase, job.spend, job.purchase_params, job.spend_params, self.cols,
                self.grid, self.progressbar,
            )  # fmt: skip
            frev, fcost, acq = future_flows(
                job.purchase, job.spend, job.purchase_params, job.spend_params, self.grid,
                self.expected_counts, self.settings["acquisition_cost"] or 0.0,
            )  # fmt: skip
            self._flows = FlowDraws(rev, cost, frev, fcost, acq, job.cashflow.margin)
        return self._flows

    @property
    def expected_total(self) -> xr.DataArray:
        """Expected equity per draw: ``customer_value.expected_equity + expected_future``."""
        return self.customer_value.expected_equity + self.expected_future

    def summary(self, prob: float = 0.9) -> pd.DataFrame:
        """Existing, future and total equity (mean, sd, central ``prob`` interval) and the
        future share of the total (per draw).

        Examples
        --------
        The rows: ``existing``, ``future``, ``total``, ``future_share``.
        """
        prob = _check_prob(prob)
        parts = {
            "existing": self.existing.values.ravel(),
            "future": self.future.values.ravel(),
            "total": self.total.values.ravel(),
        }
        tot = parts["total"]
        with np.errstate(divide="ignore", invalid="ignore"):
            share = np.where(tot != 0, parts["future"] / tot, np.nan)
        if np.all(np.isfinite(share)):
            parts["future_share"] = share
        return pd.DataFrame({k: _stats(v, prob) for k, v in parts.items()}).T

    def cashflows(self, prob: float = 0.9) -> pd.DataFrame:
        """Per cash-flow period: discounted expected revenue and margin of existing and future
        customers, costs, acquisition spend and the net flow, each as mean and central ``prob``
        interval over draws, plus the new customers acquired (mean). Flows are expected per
        draw (credible), whatever the method; summed over periods, the net flow of each draw
        is :attr:`expected_total` (the equity with ``method="expected"``)."""
        prob = _check_prob(prob)
        f = self.flow_draws
        plan = self.grid.plan
        m = f.margin
        items = {
            "existing_revenue": f.existing_revenue,
            "existing_margin": m * f.existing_revenue - f.existing_cost,
            "future_revenue": f.future_revenue,
            "future_margin": m * f.future_revenue - f.future_cost,
            "acquisition_spend": f.acquisition,
            "net": m * (f.existing_revenue + f.future_revenue)
            - f.existing_cost - f.future_cost - f.acquisition,
        }  # fmt: skip
        q = [(1 - prob) / 2, (1 + prob) / 2]
        out = pd.DataFrame(
            {"start": plan.starts, "end": plan.ends, "discount": plan.end_discount,
             "new_customers": self.expected_counts.mean(axis=0)},
            index=pd.RangeIndex(1, plan.n_periods + 1, name="period"),
        )  # fmt: skip
        for name, v in items.items():
            lo, hi = np.quantile(v, q, axis=0)
            out[f"{name}_mean"] = v.mean(axis=0)
            out[f"{name}_lower"] = lo
            out[f"{name}_upper"] = hi
        return out

    def flows(self) -> xr.Dataset:
        """The per-draw flows of :meth:`cashflows` as a Dataset ``(chain, draw, period)``
        (for fan charts)."""
        f = self.flow_draws
        C, D = self.existing.shape
        P = self.grid.plan.n_periods
        dims = ("chain", "draw", "period")
        data = {
            n: (dims, getattr(f, n).reshape(C, D, P))
            for n in ("existing_revenue", "existing_cost", "future_revenue", "future_cost",
                      "acquisition")
        }  # fmt: skip
        coords = {"chain": self.existing["chain"].values, "draw": self.existing["draw"].values,
                  "period": np.arange(1, P + 1)}  # fmt: skip
        return xr.Dataset(data, coords=coords, attrs={"margin": f.margin})

    def sensitivities(self, **kwargs: Any) -> pd.DataFrame:
        """The tornado table: see :func:`clvkit.firm.sensitivity.sensitivities`."""
        from clvkit.firm.sensitivity import sensitivities

        return sensitivities(self, **kwargs)

    def unit_economics(self, prob: float = 0.9) -> pd.Series:
        """CLV:CAC and payback of a new customer: see
        :func:`clvkit.firm.sensitivity.unit_economics`."""
        from clvkit.firm.sensitivity import unit_economics

        return unit_economics(self, prob)


def _check_prob(prob: Any) -> float:
    if not (isinstance(prob, float | int) and 0 < prob < 1):
        raise ClvkitError(f"argument 'prob' must be in (0, 1), got {prob!r}. Suggestion: prob=0.9.")
    return float(prob)


def _stats(v: np.ndarray, prob: float) -> dict[str, float]:
    lo, hi = np.quantile(v, [(1 - prob) / 2, (1 + prob) / 2])
    sd = float(v.std(ddof=1)) if v.size > 1 else 0.0
    return {"mean": float(v.mean()), "sd": sd, "lower": float(lo), "upper": float(hi)}


def _seed_int(random_seed: Any) -> int:
    """One integer seed for every part (a Generator gives one draw; None fresh entropy)."""
    seed = check_random_seed(random_seed)
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1, np.uint64)[0] % 2**63)
    if isinstance(seed, np.random.Generator):
        return int(seed.integers(2**63))
    if isinstance(seed, np.random.SeedSequence):
        return int(seed.generate_state(1, np.uint64)[0] % 2**63)
    return int(seed)


def firm_equity(
    transactions_model: Any,
    spend_model: Any,
    rfm: pd.DataFrame,
    acquisition: Any = None,
    *,
    horizon: float | str,
    period: float | str | pd.Timedelta = "30D",
    annual_discount_rate: float | None = None,
    discount_rate_per_period: float | None = None,
    discounting: Literal["discrete", "continuous"] = "discrete",
    margin: float = 1.0,
    acquisition_cost: float = 0.0,
    cost_per_period: float = 0.0,
    method: Literal["expected", "simulate"] = "expected",
    draws: int | None = None,
    random_seed: int | np.random.Generator | None = None,
    progressbar: bool = False,
    n_jobs: int | None = None,
) -> FirmEquity:
    """Customer equity of the firm: today's customers plus the cohorts it will acquire.

    Parameters
    ----------
    transactions_model, spend_model, rfm
        As :func:`clvkit.customer_value` (any registered purchase and spend models).
    acquisition : AcquisitionModel, AcquisitionPlan or None
        New customers per future period (None: no future acquisition, so the equity is
        ``customer_value``'s, draw for draw). A model's or plan's periods are put in the
        cash-flow period holding their midpoint (exact when the cash-flow period is a whole
        number of them); period 1 starts at the observation end.
    horizon, period, annual_discount_rate, discount_rate_per_period, discounting, margin,
    cost_per_period
        The cash-flow settings (:class:`clvkit.CashflowSettings`), one discounting for the
        existing customers and the future cohorts.
    acquisition_cost : float
        Cost of acquiring one new customer (CAC), paid at its acquisition.
    method : {"expected", "simulate"}
        Expected values with expected counts (credible intervals), or simulated futures with
        predictive counts (predictive intervals); see the module notes.
    draws, random_seed, progressbar, n_jobs
        As :func:`clvkit.customer_value` (the same seed gives the same existing equity).

    Returns
    -------
    FirmEquity

    Examples
    --------
    >>> import xarray as xr
    >>> bg = xr.Dataset({k: (("chain", "draw"), [[v]]) for k, v in
    ...     dict(r=0.2426, alpha=4.4137, a=0.793, b=2.4262).items()})
    >>> gg = xr.Dataset({k: (("chain", "draw"), [[v]]) for k, v in
    ...     dict(p=6.2488, q=3.7446, v=15.4477).items()})
    >>> rfm = pd.DataFrame({"frequency": [2, 0], "recency": [30.43, 0.0], "T": [38.86, 38.86],
    ...     "monetary_value": [22.35, 0.0]}, index=pd.Index([1, 2], name="customer_id"))
    >>> rfm.attrs["time_unit"] = "W"
    >>> from clvkit.firm import AcquisitionPlan
    >>> fe = firm_equity(bg, gg, rfm, AcquisitionPlan([10] * 13), horizon="52W", period="4W",
    ...     annual_discount_rate=0.1, acquisition_cost=20)
    >>> fe.summary()["mean"].round(1).to_dict()["existing"]
    45.1
    """
    flow = CashflowSettings(
        horizon=horizon, period=period, annual_discount_rate=annual_discount_rate,
        discount_rate_per_period=discount_rate_per_period, margin=margin,
        discounting=discounting, cost_per_period=cost_per_period,
        acquisition_cost=acquisition_cost if acquisition_cost else None,
    )  # fmt: skip
    seed = _seed_int(random_seed)
    cv = customer_value(
        transactions_model, spend_model, rfm, flow, method=method, draws=draws,
        random_seed=seed, progressbar=progressbar, n_jobs=n_jobs,
    )  # fmt: skip
    holder = pd.DataFrame(index=rfm.index[:0])
    holder.attrs = dict(rfm.attrs)
    options = RunOptions(method, None, None, None, seed, draws)
    job = prepare_job(transactions_model, spend_model, holder, flow, options, serial_map)
    if not np.array_equal(job.new, cv.new_customer.values.ravel(), equal_nan=True):
        raise ClvkitError(  # the pairing is rebuilt from the seed: a guard, never expected
            "the future cohorts could not be paired with customer_value's draws. Suggestion: "
            "report this."
        )
    unit = parse_time_unit(cv.settings["time_unit"])
    grid = PeriodGrid(job.plan)
    S = job.S
    firm_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(18, 0)))
    acq_seed = int(firm_rng.integers(2**63))
    expected_counts = _period_counts(
        acquisition, "expected", S, job.plan, unit, np.random.default_rng(acq_seed)
    )
    cac = flow.acquisition_cost or 0.0
    frev, fcost, acq = future_flows(
        job.purchase, job.spend, job.purchase_params, job.spend_params, grid, expected_counts, cac
    )
    expected_future = flow.margin * frev.sum(1) - fcost.sum(1) - acq.sum(1)
    if method == "simulate":
        counts = _period_counts(
            acquisition, "predictive", S, job.plan, unit, np.random.default_rng(acq_seed)
        )
        future = simulated_future(
            job.purchase, job.spend, job.purchase_params, job.spend_params, grid, counts,
            flow.margin, cac, np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(18, 1))),
        )  # fmt: skip
    else:
        counts, future = expected_counts, expected_future
    existing = cv.equity
    C, D = existing.shape
    coords = {"chain": existing["chain"].values, "draw": existing["draw"].values}
    fut = xr.DataArray(future.reshape(C, D), dims=("chain", "draw"), coords=coords)
    settings = {
        **cv.settings,
        "acquisition": None if acquisition is None else getattr(acquisition, "diagnosis", ""),
        "cohort_timing": "start of each cash-flow period",
        "random_seed": seed,
    }
    table = job.customer_table(rfm)
    return FirmEquity(
        existing=existing,
        future=fut,
        total=existing + fut,
        expected_future=xr.DataArray(
            expected_future.reshape(C, D), dims=("chain", "draw"), coords=coords
        ),
        new_customers=xr.DataArray(
            counts.reshape(C, D, -1),
            dims=("chain", "draw", "period"),
            coords={**coords, "period": np.arange(1, grid.plan.n_periods + 1)},
        ),
        customer_value=cv,
        settings=settings,
        job=job,
        grid=grid,
        cols={c: table[c].to_numpy() for c in table.columns},
        expected_counts=expected_counts,
        progressbar=progressbar,
    )
