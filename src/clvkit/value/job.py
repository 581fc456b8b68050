"""One customer-value computation, prepared: models resolved through the registry, draws
paired, settings checked, seeds split; and the runner that values a chunk of customers.

Everything model-specific goes through :mod:`clvkit.models.contract`: the customer columns,
their canonical order and identity key, expected values, simulated futures and spend. Shared
by :func:`clvkit.customer_value` and :mod:`clvkit.distributed` (so both compute the same chunks
with the same random streams).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from clvkit.errors import ClvkitError, ClvkitWarning, bad_rows_error
from clvkit.models import registry
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
from clvkit.rng import check_random_seed
from clvkit.units import TIME_UNIT_ATTR, format_time_unit, parse_time_unit
from clvkit.utils.rows import unique_rows
from clvkit.value.accumulate import DEFAULT_TIERS, check_tiers
from clvkit.value.discount import DiscountPlan
from clvkit.value.result import STORED_PROBS, check_probs
from clvkit.value.settings import CashflowSettings

__all__ = ["PURCHASE_BATCH", "ChunkRunner", "RunOptions", "ValueJob", "prepare_job"]

PURCHASE_BATCH = 2_000_000  # simulated purchases held at once per chunk (about 100 MB)


@dataclass(frozen=True)
class RunOptions:
    """How a value computation runs: method, tiers, chunking, seed, draws and stored interval
    probabilities. ``tier_sample_size`` is deprecated and has no effect (tiers are exact)."""

    method: str = "expected"
    tiers: Mapping[str, float] | None = None
    tier_sample_size: int | None = None
    chunk_size: int | None = None
    random_seed: Any = None
    draws: int | None = None
    probs: Any = STORED_PROBS

    def __post_init__(self) -> None:
        if self.method not in ("expected", "simulate"):
            raise ClvkitError(
                f"argument 'method' must be 'expected' or 'simulate', got {self.method!r}."
            )
        object.__setattr__(
            self, "tiers", check_tiers(DEFAULT_TIERS if self.tiers is None else self.tiers)
        )
        if self.tier_sample_size is not None:
            warnings.warn(
                "argument 'tier_sample_size' has no effect: tiers are now exact, fixed by each "
                "customer's posterior-mean expected CLV (no sample). Suggestion: drop it.",
                ClvkitWarning,
                stacklevel=4,
            )
        draws = self.draws
        if draws is not None and (
            isinstance(draws, bool) or not (isinstance(draws, int | np.integer) and draws >= 1)
        ):
            raise ClvkitError(
                f"argument 'draws' must be a positive integer (the posterior draws to use), got "
                f"{draws!r}. Suggestion: draws=500, or None for every draw."
            )
        object.__setattr__(self, "probs", check_probs(self.probs))
        chunk = self.chunk_size
        if chunk is not None and (
            isinstance(chunk, bool) or not (isinstance(chunk, int | np.integer) and chunk >= 1)
        ):
            raise ClvkitError(f"argument 'chunk_size' must be a positive integer, got {chunk!r}.")
        object.__setattr__(self, "random_seed", check_random_seed(self.random_seed))


@dataclass
class ValueJob:
    """Resolved models, paired draws and settings of one value computation.

    ``purchase`` and ``spend`` are the models' contract specs, ``purchase_params`` and
    ``spend_params`` their paired draws (``(S, k)`` each, row ``s`` of both makes CLV draw
    ``s``); ``new`` is the CLV of a new customer per draw (expected, or simulated with
    ``method="simulate"``); ``probs`` the per-customer interval probabilities to store.
    """

    purchase: PurchaseSpec
    spend: SpendSpec
    purchase_params: dict[str, np.ndarray]
    spend_params: dict[str, np.ndarray]
    coords: dict[str, np.ndarray]
    plan: DiscountPlan
    cashflow: Cashflow
    method: str
    tiers: dict[str, float]
    chunk: int
    probs: tuple[float, ...]
    sim_rng: np.random.Generator
    new: np.ndarray
    settings: dict[str, Any]

    @property
    def S(self) -> int:
        """Number of (paired) draws."""
        return n_draws(self.purchase_params)

    @property
    def columns(self) -> list[str]:
        """The customer columns both models read, purchase model's first."""
        return list(dict.fromkeys([*self.purchase.columns, *self.spend.columns]))

    def customer_table(self, rfm: Any, argument: str = "rfm") -> pd.DataFrame:
        """Validated float copies of the columns both models read (the caller's frame is not
        touched), indexed by customer; duplicated ids are an error."""
        cols: dict[str, np.ndarray] = {}
        for spec in (self.purchase, self.spend):
            cols.update(spec.customer_columns(rfm, argument))
        if rfm.index.has_duplicates:
            dup = rfm.index[rfm.index.duplicated()]
            raise bad_rows_error(
                f"index 'customer_id' of {argument!r}", "is duplicated", len(dup), dup[0],
                "one row per customer",
            )  # fmt: skip
        return pd.DataFrame({c: cols[c] for c in self.columns}, index=rfm.index.copy())

    def order_keys(self, cols: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """The purchase model's sort keys of the canonical customer order (ties: by id)."""
        return self.purchase.order_keys(cols)

    def canonical_order(self, table: pd.DataFrame) -> np.ndarray:
        """Row positions sorted by the purchase model's order keys, then customer id: the order
        customers are visited in (for BG/NBD (frequency, T): the expected method's costly part
        depends on them only and is computed once per distinct pair in a chunk). Chunks are
        slices of this order, so they do not depend on the table's row order, and
        :mod:`clvkit.distributed` can rebuild them from any partitioning. Unorderable ids
        (mixed types) tie-break by row position."""
        keys = self.order_keys({c: table[c].to_numpy() for c in table.columns})[::-1]
        index = table.index
        if index.is_monotonic_increasing:
            return np.lexsort(keys)  # stable: ties keep the (sorted) row order
        try:
            by_id = index.argsort(kind="stable")
        except TypeError:
            return np.lexsort(keys)
        rank = np.empty(len(index), dtype=np.int64)
        rank[by_id] = np.arange(len(index))
        return np.lexsort((rank, *keys))

    def runner(self, cols: Mapping[str, np.ndarray], pmap: PMap = serial_map) -> ChunkRunner:
        """A :class:`ChunkRunner` over the customers ``cols`` (positions index them)."""
        return ChunkRunner(self, cols, pmap)


class ChunkRunner:
    """Values chunks of customers for a :class:`ValueJob` through the model contract."""

    def __init__(self, job: ValueJob, cols: Mapping[str, np.ndarray], pmap: PMap) -> None:
        self.job = job
        self.cols = {c: np.asarray(cols[c], dtype=np.float64) for c in job.columns}
        self.n = len(next(iter(self.cols.values())))
        self.pmap = pmap

    def chunk(self, idx: np.ndarray, rng: np.random.Generator | None):
        """``(clv, means, counts)`` for customers ``idx``: CLV ``(S, len(idx))``; the means over
        draws of P(alive), purchases, spend and CLV ``(4, len(idx))``; simulated purchase
        counts ``(S, len(idx))`` (``None`` for the expected method)."""
        clv, means, counts, inverse = self.distinct(idx, rng)
        if inverse is None:
            return clv, means, counts
        return clv[:, inverse], means[:, inverse], counts

    def distinct(self, idx: np.ndarray, rng: np.random.Generator | None, method: str | None = None):
        """:meth:`chunk` for the distinct customers only, and ``inverse`` mapping ``idx`` to
        them (``None``: every customer is computed). ``method`` overrides the job's (the
        expected pass that ranks the tiers runs with ``"expected"`` under either method).

        The expected method's values depend on the models' :meth:`value_key` rows only (for
        BG/NBD and Gamma-Gamma ``(x, t_x, T, m)``, and for ``x = 0`` on ``T`` only), so
        customers sharing them get the same bits whether computed once or not: one-time buyers
        of the same age (most customers of a typical log) are computed, and their quantiles
        sorted, once per chunk.
        """
        job = self.job
        sub = take(self.cols, idx)
        counts = inverse = None
        if (method or job.method) == "expected":
            key = np.concatenate([job.purchase.value_key(sub), job.spend.value_key(sub)], axis=1)
            _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
            inverse = inverse.ravel()
            if first.size == idx.size:
                inverse = None
            else:
                idx, sub = idx[first], take(sub, first)
            spend = self._expected_spend(sub)
            clv, means = job.purchase.expected_value(
                job.purchase_params, sub, spend, job.cashflow, self.pmap
            )
        else:
            clv, means, counts = self._simulate(sub, rng)
        # a non-finite draw makes its customer's mean non-finite: scan the draws only then
        bad = None if np.isfinite(means[3]).all() else ~np.isfinite(clv)
        if bad is not None and bad.any():
            d, c = np.argwhere(bad)[0]
            raise bad_rows_error(
                "customer value", "is not finite (numerical failure)", int(bad.any(axis=0).sum()),
                {"row": int(idx[c]), "draw": int(d), **{k: float(v[c]) for k, v in sub.items()}},
                "report this with the row shown", self.n,
            )  # fmt: skip
        return clv, means, counts, inverse

    def _expected_spend(self, sub: Mapping[str, np.ndarray]) -> np.ndarray:
        """The spend model's expected spend ``(S, n)``, computed once per distinct
        :meth:`value_key` row (e.g. every one-time buyer shares one)."""
        job = self.job
        first, inverse, _ = unique_rows(job.spend.value_key(sub))
        if first.size == inverse.size:
            return job.spend.expected_spend(job.spend_params, sub)
        few = job.spend.expected_spend(job.spend_params, take(sub, first))
        return np.take(few, inverse, axis=1)

    def _simulate(self, sub: Mapping[str, np.ndarray], rng: np.random.Generator):
        """One simulated future per (draw, customer): discounted CLV, means, purchase counts.

        The purchase model's events come in batches; each batch's spends are drawn right
        after it (the contract's order, so one seed gives one future)."""
        job, plan = self.job, self.job.plan
        future = job.purchase.simulate(job.purchase_params, sub, plan.horizon, rng, PURCHASE_BATCH)
        shape = future.p_alive.shape
        revenue = np.zeros(shape)
        count = np.zeros(shape, dtype=np.int64)
        for ev in future.batches:
            spend = job.spend.sample_spend(
                job.spend_params, sub, ev.draw, ev.customer, ev.count, rng
            )
            rev = np.bincount(
                ev.owner, weights=spend * plan.discount(ev.times), minlength=ev.count.size
            )
            revenue[ev.draw, ev.customer] = rev
            count[ev.draw, ev.customer] = ev.count
        cost = np.zeros(shape)
        if plan.cost_per_period > 0:
            cost[future.alive_draw, future.alive_customer] = plan.cost_units_until(future.death)
        clv = job.cashflow.margin * revenue - plan.cost_per_period * cost
        spend = job.spend.expected_spend(job.spend_params, sub)
        means = np.stack(
            [future.p_alive.mean(axis=0), count.mean(axis=0), spend.mean(axis=0), clv.mean(axis=0)]
        )
        return clv, means, count


# ----------------------------------------------------------------------------------------------
# preparation
# ----------------------------------------------------------------------------------------------
def _check_whole(spec: Any, name: str, value: Any, periods: float, unit: pd.Timedelta) -> None:
    """A model of whole periods (``PurchaseSpec.whole_periods``) needs a horizon of whole
    periods: a fraction would be cut off silently ("52W" is 0.9966 years: no opportunity). The
    cash-flow period may be any length: an opportunity's purchases fall in the period holding
    its time."""
    if abs(periods - round(periods)) > 1e-6 or round(periods) < 1:
        unit_text = format_time_unit(unit)
        raise ClvkitError(
            f"argument {name!r} is {value!r}, {periods:.4g} periods of {unit_text!r}, but "
            f"{spec.label} counts whole opportunities. Suggestion: {name}="
            f"'{max(round(periods), 1)}{unit_text}' (a whole number of the unit the model was "
            "fitted in)."
        )


def _resolve_unit(rfm: pd.DataFrame, models: dict[str, tuple[Any, xr.Dataset]]) -> pd.Timedelta:
    """The time unit: ``rfm.attrs`` and the posteriors' attrs of the models that involve time
    (spend models usually do not) must agree."""
    found = {}
    if rfm.attrs.get(TIME_UNIT_ATTR):
        found["rfm.attrs['time_unit']"] = rfm.attrs[TIME_UNIT_ATTR]
    for name, (spec, post) in models.items():
        if spec.uses_time and post.attrs.get(TIME_UNIT_ATTR):
            found[f"{name} time_unit"] = post.attrs[TIME_UNIT_ATTR]
    if not found:
        raise ClvkitError(
            "no time unit: neither rfm.attrs['time_unit'] nor the models' attrs carry one. "
            "Suggestion: set rfm.attrs['time_unit'] = 'W' (or the unit of recency and T)."
        )
    parsed = {k: parse_time_unit(v, argument=k) for k, v in found.items()}
    first = next(iter(parsed.values()))
    if any(v != first for v in parsed.values()):
        shown = {k: format_time_unit(v) for k, v in parsed.items()}
        raise ClvkitError(
            f"time units disagree: {shown}. Suggestion: rebuild the RFM table in the unit the "
            "models were fitted in."
        )
    return first


def _repeat_histogram(obj: Any) -> pd.Series | None:
    """Customers per frequency > 0 in the data a model was fitted on (its ``observed_data``
    holds compressed rows with a ``weight``), or None when the model does not record it."""
    stats = getattr(obj, "stats_", None)  # a fitted clvkit model: no need to build its idata_
    if stats is not None and hasattr(stats, "frequency") and hasattr(stats, "weight"):
        x, w = np.asarray(stats.frequency), np.asarray(stats.weight)
    else:
        obs = getattr(obj, "observed_data", None) if hasattr(obj, "groups") else None
        if obs is None or not {"frequency", "weight"} <= set(obs.data_vars):
            return None
        x = obs["frequency"].to_numpy()
        w = obs["weight"].to_numpy()
    keep = x > 0
    return pd.Series(w[keep]).groupby(x[keep]).sum()


def _check_fitted_customers(t_model: Any, s_model: Any) -> None:
    """Both models must come from the same customers: the spend model (fitted on the repeat
    customers) must have as many customers at each frequency as the transactions model."""
    t_hist, s_hist = _repeat_histogram(t_model), _repeat_histogram(s_model)
    if t_hist is None or s_hist is None:
        return
    both = pd.concat([t_hist, s_hist], axis=1, keys=["transactions", "spend"]).fillna(0)
    bad = both[~np.isclose(both["transactions"], both["spend"])]
    if len(bad):
        f = bad.index[0]
        raise bad_rows_error(
            "argument 'spend_model'", "was fitted on other customers than 'transactions_model': "
            "their numbers of repeat customers differ", len(bad),
            f"frequency {f:g}: {bad.loc[f, 'transactions']:,.0f} customers in the transactions "
            f"model, {bad.loc[f, 'spend']:,.0f} in the spend model",
            "fit both models on the same RFM table", len(both),
        )  # fmt: skip


def thinned(total: int, draws: int | None) -> np.ndarray | None:
    """``draws`` positions evenly spaced over ``total`` (flattened chain-major) draws, or None
    for all of them; a ClvkitError when more are asked than there are."""
    if draws is None or draws == total:
        return None
    if draws > total:
        raise ClvkitError(
            f"argument 'draws' is {draws}, but the posterior has {total} draw(s) (chains x "
            f"draws{'; a point fit has 1' if total == 1 else ''}). Suggestion: draws <= {total}, "
            "or None for every draw."
        )
    return np.round(np.linspace(0, total - 1, draws)).astype(np.int64)


def _pair_draws(
    t: tuple[Any, xr.Dataset],
    s: tuple[Any, xr.Dataset],
    rng: np.random.Generator,
    draws: int | None = None,
):
    """Pair purchase and spend draws by a random permutation; returns both parameter dicts
    (``(S, k)`` arrays, row ``s`` of each pairs) and the coords of the larger posterior.

    With ``draws``, the pairs at ``draws`` evenly spaced positions of the larger posterior
    (flattened chain-major) are kept: one chain, the draw coordinate is the position."""
    tp, sp = registry.flat_params(*t), registry.flat_params(*s)
    St, Ss = n_draws(tp), n_draws(sp)
    S = max(St, Ss)

    def index(k: int) -> np.ndarray:  # S indices into k draws: shuffled blocks of a permutation
        if k == S:
            return rng.permutation(k) if k > 1 else np.zeros(1, dtype=np.int64)
        reps = -(-S // k)
        return rng.permutation(np.concatenate([rng.permutation(k) for _ in range(reps)])[:S])

    ti = np.arange(S) if St == S else index(St)
    si = index(Ss)
    src = t[1] if St == S else s[1]
    coords = {"chain": src["chain"].values, "draw": src["draw"].values}
    keep = thinned(S, draws)
    if keep is not None:
        ti, si = ti[keep], si[keep]
        coords = {"chain": np.zeros(1, dtype=np.int64), "draw": keep}
    return take_draws(tp, ti), take_draws(sp, si), coords


def prepare_job(
    transactions_model: Any,
    spend_model: Any,
    rfm: pd.DataFrame,
    cashflow: CashflowSettings,
    options: RunOptions,
    pmap: PMap = serial_map,
) -> ValueJob:
    """Resolve both models, check the settings against the time unit (``rfm`` only for its
    ``attrs``), pair the draws, split the seed and value a new customer."""
    t = registry.resolve(transactions_model, "purchase", "transactions_model")
    s = registry.resolve(spend_model, "spend", "spend_model")
    unit = _resolve_unit(rfm, {"transactions_model": t, "spend_model": s})
    _check_fitted_customers(transactions_model, spend_model)
    plan, rate = cashflow.plan(unit)
    if t[0].whole_periods:
        _check_whole(t[0], "horizon", cashflow.horizon, plan.horizon, unit)
    flow = plan.cashflow(cashflow.margin)

    rng = np.random.default_rng(options.random_seed)
    pair_rng, _, sim_rng, new_rng = rng.spawn(4)  # child 1: the former tier-cut sample
    tp, sp, coords = _pair_draws(t, s, pair_rng, options.draws)
    purchase, spend = t[0], s[0]
    S = n_draws(tp)
    available = max(n_draws(registry.flat_params(*t)), n_draws(registry.flat_params(*s)))
    # a new customer: the acquisition purchase (at time 0, undiscounted) plus its repeat purchases
    new_cols = {**purchase.new_customer_columns(1), **spend.new_customer_columns(1)}
    spend0 = spend.expected_spend(sp, new_cols)
    if not np.all(np.isfinite(spend0)):
        bad = ~np.isfinite(spend0[:, 0])
        d = int(np.flatnonzero(bad)[0])
        raise bad_rows_error(
            f"argument 'spend_model' (draws of {list(spend.param_names)})",
            "gives an infinite expected spend for a customer with no repeat purchases (the "
            f"mean of {spend.label}'s spend does not exist), so expected CLV (which also ranks "
            "the value tiers) does not exist", int(bad.sum()),
            {k: v[d].tolist() for k, v in sp.items()},
            "refit the spend model (more data, or a prior keeping q above 1)", S,
        )  # fmt: skip
    if options.method == "simulate":
        new = _simulated_new(purchase, spend, tp, sp, new_cols, plan, cashflow.margin, new_rng)
    else:
        repeat = purchase.expected_value(tp, new_cols, spend0, flow, pmap)[0][:, 0]
        new = cashflow.margin * spend0[:, 0] + repeat

    # expected: chunks share Gauss rules and identical customers, and run blocks on threads
    per_chunk = 8_000_000 if options.method == "expected" else 1_500_000
    chunk = max(1, per_chunk // S) if options.chunk_size is None else options.chunk_size
    settings = {
        "method": options.method, "discounting": cashflow.discounting,
        "time_unit": format_time_unit(unit), "horizon": plan.horizon, "period": plan.period,
        "n_periods": plan.n_periods, "rate_per_period": rate,
        "annual_discount_rate": cashflow.annual_discount_rate, "margin": cashflow.margin,
        "cost_per_period": cashflow.cost_per_period, "acquisition_cost": cashflow.acquisition_cost,
        "n_draws": S, "n_draws_available": available, "probs": options.probs,
        "tiers_by": "posterior-mean expected CLV",
        "pairing": "random permutation of spend draws",
        "purchase_model": purchase.name, "spend_model": spend.name,
    }  # fmt: skip
    return ValueJob(
        purchase, spend, tp, sp, coords, plan, flow, options.method, dict(options.tiers),
        int(chunk), options.probs, sim_rng, new, settings,
    )  # fmt: skip


def _simulated_new(
    purchase: PurchaseSpec,
    spend: SpendSpec,
    tp: dict[str, np.ndarray],
    sp: dict[str, np.ndarray],
    cols: Mapping[str, np.ndarray],
    plan: DiscountPlan,
    margin: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """One simulated future of a new customer per draw ``(S,)``: the acquisition purchase (time
    0, undiscounted) and the repeat purchases of the model's generative process, all spends
    from one latent spend level per draw (``sample_spend``), minus costs while alive."""
    future = purchase.simulate(tp, cols, plan.horizon, rng, PURCHASE_BATCH)
    S = future.p_alive.shape[0]
    revenue = np.zeros(S)
    seen = np.zeros(S, dtype=bool)
    for ev in future.batches:
        count = ev.count + 1  # the acquisition purchase first, then the repeat purchases
        spends = spend.sample_spend(sp, cols, ev.draw, ev.customer, count, rng)
        starts = np.concatenate(([0], np.cumsum(count)[:-1]))
        weight = np.ones(int(count.sum()))
        later = np.ones(weight.size, dtype=bool)
        later[starts] = False
        weight[later] = plan.discount(ev.times)
        owner = np.repeat(np.arange(count.size), count)
        revenue[ev.draw] = np.bincount(owner, weights=spends * weight, minlength=count.size)
        seen[ev.draw] = True
    rest = np.flatnonzero(~seen)  # no repeat purchase: the acquisition purchase only
    if rest.size:
        one = np.ones(rest.size, dtype=np.int64)
        revenue[rest] = spend.sample_spend(sp, cols, rest, np.zeros_like(rest), one, rng)
    cost = np.zeros(S)
    if plan.cost_per_period > 0:
        alive = future.alive_draw[future.alive_customer == 0]
        cost[alive] = plan.cost_units_until(future.death[future.alive_customer == 0])
    return margin * revenue - plan.cost_per_period * cost
