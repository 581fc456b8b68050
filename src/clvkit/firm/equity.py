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
from clvkit.firm.flows import (
    FlowDraws,
    PeriodGrid,
    existing_flows,
    future_flows,
    simulated_future,
)
from clvkit.firm.sensitivity import sensitivities, unit_economics
from clvkit.models.contract import serial_map
from clvkit.rng import check_random_seed
from clvkit.units import parse_time_unit
from clvkit.utils.checks import check_prob
from clvkit.value.chunks import kernel_threads
from clvkit.value.discount import DiscountPlan
from clvkit.value.engine import check_n_jobs, customer_value
from clvkit.value.job import RunOptions, ValueJob, prepare_job
from clvkit.value.result import CustomerValue
from clvkit.value.settings import CashflowSettings

__all__ = ["FirmEquity", "firm_equity"]


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


def _extrapolation(acquisition: Any, plan: DiscountPlan, unit: pd.Timedelta) -> str | None:
    """The acquisition model's sentence on a trend carried beyond its data over the
    valuation's horizon (:meth:`AcquisitionModel.extrapolation`), if it has one."""
    period = getattr(acquisition, "period_", None)
    if period is None or not hasattr(acquisition, "extrapolation"):
        return None
    a = float(parse_time_unit(period) / unit)
    return acquisition.extrapolation(max(1, int(np.ceil(plan.horizon / a - 1e-9))))


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
        ``customer_value``'s settings plus the acquisition's description (``acquisition``),
        ``cohort_timing`` and the ``random_seed`` used.

    Methods: :meth:`summary` (existing, future, total, future share), :meth:`cashflows` (per
    period, for a fan chart; :meth:`flows` per draw), :meth:`sensitivities` (the tornado
    table) and :meth:`unit_economics` (CLV:CAC and payback of a new customer).
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
    n_jobs: int = 1
    _flows: FlowDraws | None = field(default=None, repr=False)
    _sensitivity_tables: dict[Any, pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def flow_draws(self) -> FlowDraws:
        """Expected discounted flows per draw and period (computed on first use: the existing
        customers' expected purchases at every period end)."""
        if self._flows is None:
            job = self.job
            with kernel_threads(self.n_jobs) as pmap:
                rev, cost = existing_flows(
                    job.purchase, job.spend, job.purchase_params, job.spend_params, self.cols,
                    self.grid, self.progressbar, pmap,
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
        future share of the total (per draw): rows ``existing``, ``future``, ``total``,
        ``future_share`` (left out when a draw's total is 0)."""
        prob = check_prob(prob)
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
        prob = check_prob(prob)
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

    def sensitivities(
        self, changes: Mapping[str, float] | None = None, prob: float = 0.9
    ) -> pd.DataFrame:
        """The tornado table: see :func:`clvkit.firm.sensitivity.sensitivities`. Kept per
        ``(changes, prob)``: the report, its sentences, the plot and the CLI's table ask for
        the same one (each a few passes over today's customers; 39 s at 1M)."""
        key = (None if changes is None else tuple(sorted(dict(changes).items())), prob)
        if key not in self._sensitivity_tables:
            self._sensitivity_tables[key] = sensitivities(self, changes, prob)
        return self._sensitivity_tables[key].copy()

    def unit_economics(self, prob: float = 0.9) -> pd.Series:
        """CLV:CAC and payback of a new customer: see
        :func:`clvkit.firm.sensitivity.unit_economics`."""
        return unit_economics(self, prob)


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
        sim_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(18, 1)))
        future = simulated_future(
            job.purchase, job.spend, job.purchase_params, job.spend_params, grid, counts,
            flow.margin, cac, sim_rng, progressbar,
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
        "acquisition_note": _extrapolation(acquisition, job.plan, unit),
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
        n_jobs=check_n_jobs(n_jobs),
    )
