"""The model contract: what a purchase or spend model gives every layer above ``models/``.

A model family is one :class:`PurchaseSpec` or :class:`SpendSpec` (its math: a few primitives
on posterior draws and per-customer arrays) plus an estimator class that fits it
(:class:`clvkit.inference.estimator.ModelBase`). ``value``, ``evaluation``, ``plots``,
``report``, ``cli``, ``distributed`` and ``persistence`` call only what is defined here, so a new
model plugs in with its own files and one :func:`clvkit.models.registry.register` call.

Conventions (every primitive):

- ``params``: parameter name -> posterior draws, float64 of shape ``(S, 1)`` for a scalar
  parameter (``S`` draws, broadcasting against customers) or ``(S, k)`` for a vector one
  (e.g. covariate coefficients, which may be negative: see ``param_support``).
- ``cols``: column name -> per-customer float64 arrays of shape ``(n,)``, built by
  :meth:`ModelSpec.customer_columns` from a customer table (for continuous-time models the RFM
  columns ``frequency``, ``recency``, ``T``; other models name their own, e.g. opportunities
  for BG/BB or renewals for sBG; covariates are further columns). A new customer is
  :meth:`ModelSpec.new_customer_columns`: an empty history.
- times ``t`` are in the model's time unit, measured from each customer's end of observation
  ``T``; results have shape ``(S, n, ...)``.
- randomness only through the ``numpy.random.Generator`` passed in.

What is derived, not implemented per model: the value layer's expected discounted CLV (from
:meth:`PurchaseSpec.expected_purchases` and :meth:`PurchaseSpec.probability_alive`, see
:meth:`PurchaseSpec.expected_value`), its simulated CLV (from :meth:`PurchaseSpec.simulate` and
:meth:`SpendSpec.sample_spend`), and the estimators' prediction methods. A model may override
:meth:`PurchaseSpec.expected_value` with a faster route (BG/NBD does, with compiled quadrature
kernels); the contract tests check that it equals the generic one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from clvkit.errors import ClvkitError

__all__ = [
    "DATA_TABLES",
    "DRAW_BLOCK",
    "SUPPORTS",
    "Cashflow",
    "Columns",
    "DataTable",
    "EventBatch",
    "Future",
    "ModelSpec",
    "PMap",
    "Params",
    "PurchaseSpec",
    "SpendSpec",
    "merge_futures",
    "n_draws",
    "n_rows",
    "scatter_parts",
    "serial_map",
    "take",
    "take_draws",
    "unit_batches",
]

Params = Mapping[str, np.ndarray]
Columns = Mapping[str, np.ndarray]
PMap = Callable[[Callable[[int], Any], Iterable[int]], list]  # a (thread pool's) map to a list

#: Parameter supports: ``positive`` (sampled on the log scale), ``real`` (as is; e.g.
#: regression coefficients) and ``unit`` (in (0, 1), sampled on the logit scale).
SUPPORTS = ("positive", "real", "unit")


@dataclass(frozen=True)
class DataTable:
    """A customer table a model may read (``ModelSpec.data``).

    ``builds``: the function that builds it from raw data. ``from_log``: whether it comes from a
    purchase log (then the backtest, the report and the CLI's log commands build it with
    :func:`clvkit.data.log_table`). ``age`` and ``holdout``: the columns holding each
    customer's time observed (to the calibration end) and the length of its holdout window, in
    the model's time unit.
    """

    builds: str
    from_log: bool
    age: str
    holdout: str

    def __str__(self) -> str:
        return self.builds


#: The customer tables a model may read, by ``ModelSpec.data``.
DATA_TABLES = {
    "rfm": DataTable(
        "clvkit.rfm_summary (a purchase log, continuous time)", True, "T", "duration_holdout"
    ),
    "opportunities": DataTable(
        "clvkit.opportunity_summary (a purchase log on a grid of occasions)",
        True,
        "n",
        "n_holdout",
    ),
    "contracts": DataTable(
        "clvkit.contract_summary (a table of contracts)", False, "age", "duration_holdout"
    ),
}

#: Draws per task when expected values are split over threads; fixed, so results do not
#: depend on the number of threads.
DRAW_BLOCK = 256


def serial_map(fn: Callable[[int], Any], items: Iterable[int]) -> list:
    """``list(map(fn, items))``: the one-thread stand-in for a thread pool's map."""
    return [fn(i) for i in items]


@dataclass(frozen=True)
class Cashflow:
    """What the value layer asks an expected-value computation for.

    Discounted expected purchases are ``sum_j revenue_weights[j] * E[purchases in (T, T +
    times[j]]]`` and discounted expected alive periods ``sum_j cost_weights[j] * P(alive at T +
    times[j])`` (both given the history), so any discounting scheme reduces to weights on a
    grid of horizons; ``times[horizon_index]`` is the horizon itself.
    """

    times: np.ndarray
    revenue_weights: np.ndarray
    cost_weights: np.ndarray
    horizon_index: int
    margin: float = 1.0
    cost_per_period: float = 0.0


@dataclass
class EventBatch:
    """Simulated future events (purchases, renewals) of some (draw, customer) units.

    ``draw`` and ``customer`` index the units (rows of ``params``, positions in ``cols``);
    ``count`` is each unit's number of events in the horizon; ``times`` holds the event times
    after ``T``, unit by unit in ``draw`` order (``count.sum()`` entries).
    """

    draw: np.ndarray
    customer: np.ndarray
    count: np.ndarray
    times: np.ndarray

    @property
    def owner(self) -> np.ndarray:
        """Index into the units of each event."""
        return np.repeat(np.arange(self.count.size), self.count)


@dataclass
class Future:
    """One simulated future per (draw, customer), drawn from each customer's conditional posterior.

    ``p_alive`` (``(S, n)``) is P(alive at ``T`` | history) per draw. ``alive_draw`` and
    ``alive_customer`` list the units drawn alive at ``T``; ``death`` is each one's time of
    death after ``T`` (``inf`` when it outlives the horizon; for contractual models, the end of
    the last paid period). ``batches`` yields the events in batches of bounded size; ``death``
    is complete once they are consumed (models may fill it lazily). Consumers must draw
    anything else they need from the same generator only after a batch is yielded, so one seed
    gives one future. ``latent`` optionally holds the model's latent draws per alive unit
    (e.g. BG/NBD's ``lam`` and ``p``, the truth that ``clvkit.datasets.simulate`` reports),
    complete, like ``death``, once the batches are consumed; nothing else relies on it.
    """

    p_alive: np.ndarray
    alive_draw: np.ndarray
    alive_customer: np.ndarray
    death: np.ndarray
    batches: Iterator[EventBatch] = field(repr=False)
    latent: dict[str, np.ndarray] = field(default_factory=dict, repr=False)


class ModelSpec(ABC):
    """What every model family declares: names, parameters, the columns it reads."""

    #: ``"purchase"`` or ``"spend"``.
    kind: ClassVar[str]
    #: Short name used by the CLI and the registry, e.g. ``"bgnbd"``.
    name: ClassVar[str]
    #: Name stored in saved models and posterior attrs, e.g. ``"BetaGeo"``.
    model_name: ClassVar[str]
    #: Human-readable name for reports, e.g. ``"BG/NBD"``.
    label: ClassVar[str]
    #: Population parameters, in the order the samplers use.
    param_names: ClassVar[tuple[str, ...]]
    #: Support of each parameter (see :data:`SUPPORTS`); missing names are ``"positive"``.
    #: A vector parameter's support applies to every element.
    param_support: ClassVar[dict[str, str]] = {}
    #: Vector parameters and their lengths, e.g. ``{"coef_alpha": 3}`` for the coefficients of
    #: three covariate columns; missing names are scalars (one value per draw). A name listed
    #: here is a vector even of length 1. Draws of a vector parameter are ``(S, k)`` arrays in
    #: ``params``; in a posterior it is one variable with dims ``(chain, draw, <name>_dim)``;
    #: one prior applies to all its elements. A class attribute, or an instance one when the
    #: length depends on the data (a covariate design).
    param_sizes: ClassVar[dict[str, int]] = {}
    #: Names of a vector parameter's elements (the coordinates of its ``<name>_dim``, e.g.
    #: :attr:`clvkit.data.Covariates.names`); by default ``"0"`` .. ``"k-1"``.
    param_coords: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: Parameters that static covariates may scale (:mod:`clvkit.models.covariates`): name ->
    #: ``(process, sign)``, the customer's parameter being ``theta * exp(sign * g'z)`` (e.g.
    #: BG/NBD's ``{"alpha": ("purchase", -1), ...}``: a positive coefficient, more purchases).
    #: Positive parameters only; empty: the model takes no covariates.
    covariate_links: ClassVar[dict[str, tuple[str, int]]] = {}
    #: What each mean of :meth:`process_means` is and how a multiplier of it reads in a
    #: sentence: process -> ``(meaning, phrase)``, the phrase taking the multiplier as ``{x}``,
    #: e.g. ``"purchase": ("purchases per time unit while alive", "buy {x} as often")``.
    process_texts: ClassVar[dict[str, tuple[str, str]]] = {}
    #: Columns of the customer table it reads.
    columns: ClassVar[tuple[str, ...]]
    #: Whether the model involves time (spend models usually do not).
    uses_time: ClassVar[bool] = True
    #: The customer table it reads (see :data:`DATA_TABLES`): ``"rfm"`` for
    #: :func:`clvkit.rfm_summary` of a purchase log in continuous time.
    data: ClassVar[str] = "rfm"

    def support(self, name: str) -> str:
        """The support of parameter ``name``."""
        return self.param_support.get(name, "positive")

    def param_size(self, name: str) -> int:
        """The length of parameter ``name``: 1 for a scalar, ``param_sizes[name]`` for a vector."""
        return int(self.param_sizes.get(name, 1))

    def element_names(self, name: str) -> tuple[str, ...]:
        """Names of the elements of vector parameter ``name`` (``param_coords`` or
        ``"0"`` .. ``"k-1"``); ``()`` for a scalar."""
        if name not in self.param_sizes:
            return ()
        default = tuple(str(i) for i in range(self.param_size(name)))
        return tuple(str(x) for x in self.param_coords.get(name, default))

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {self.label}>"

    @abstractmethod
    def customer_columns(self, table: pd.DataFrame, argument: str = "rfm") -> dict[str, np.ndarray]:
        """Validated float64 copies of the columns this model reads (``ClvkitError`` naming
        the column, the number of bad rows and one example when they are not valid)."""

    def new_customer_columns(self, n: int = 1) -> dict[str, np.ndarray]:
        """Columns of ``n`` new customers: an empty history at age 0 (by default every column
        0; a model whose empty history is not all zeros overrides it)."""
        return {c: np.zeros(n) for c in self.columns}

    def process_means(self, params: Params) -> dict[str, np.ndarray]:
        """The mean quantity of each process of :attr:`covariate_links` per draw: process name
        -> ``(S,)`` from ``(S, 1)`` parameters (e.g. BG/NBD's purchases per time unit while
        alive, ``r / alpha``; :attr:`process_texts` says what each is). A covariate's effect
        on a process is the ratio of these means (``clvkit.models.covariates.effects``).
        Default: none (a model without covariate links)."""
        return {}

    @abstractmethod
    def value_key(self, cols: Columns) -> np.ndarray:
        """``(n, k)`` float array: customers with equal rows get equal predictions (used to
        compute the expected values of identical customers once)."""

    @abstractmethod
    def loglik(self, params: Params, cols: Columns) -> np.ndarray:
        """Per-customer log-likelihood of the observed columns, ``(S, n)`` (for model
        comparison; the fit uses the same likelihood on compressed statistics)."""


class PurchaseSpec(ModelSpec):
    """A purchase (or renewal) process with dropout: what the value and evaluation layers use."""

    kind: ClassVar[str] = "purchase"

    #: Whether time advances in whole periods of the time unit (BG/BB's opportunities): the
    #: value layer then asks for a horizon and a cash-flow period of whole periods.
    whole_periods: ClassVar[bool] = False

    def order_keys(self, cols: Columns) -> list[np.ndarray]:
        """Sort keys for the value layer's canonical customer order, most significant first
        (customers who share a key run together; ties are broken by customer id)."""
        return [np.asarray(cols[c]) for c in self.columns]

    @abstractmethod
    def probability_alive(self, params: Params, cols: Columns, t: np.ndarray) -> np.ndarray:
        """P(alive at ``T + t`` | history), ``(S, n, P)`` for horizons ``t`` of shape ``(P,)``;
        ``t = 0`` is P(alive now)."""

    @abstractmethod
    def expected_purchases(self, params: Params, cols: Columns, t: np.ndarray) -> np.ndarray:
        """E[purchases in ``(T, T + t]`` | history], ``(S, n, P)`` for ``t`` of shape ``(P,)``;
        non-decreasing in ``t``, 0 at ``t = 0``."""

    @abstractmethod
    def probability_of_purchases(
        self, params: Params, cols: Columns, t: float | np.ndarray, k: np.ndarray
    ) -> np.ndarray:
        """P(exactly ``k`` purchases in ``(T, T + t]`` | history), ``(S, n, K)`` for counts
        ``k`` of shape ``(K,)``; ``t`` is one window or one per customer ``(n,)``."""

    @abstractmethod
    def simulate(
        self,
        params: Params,
        cols: Columns,
        horizon: float | np.ndarray,
        rng: np.random.Generator,
        batch_size: int = 2_000_000,
    ) -> Future:
        """One future per (draw, customer) over ``(T, T + horizon]`` (``horizon`` a number or
        one per customer), latent state drawn from the conditional posterior given the
        history; at most about ``batch_size`` events per batch."""

    def probability_purchase_in_window(
        self, params: Params, start: np.ndarray, end: np.ndarray
    ) -> np.ndarray | None:
        """Optional: P(at least one purchase at ages in ``(start, end]``) of a new customer,
        ``(S, *shape)`` for ``start <= end`` of one shape; ``None`` (the default) when the
        model has no closed form, and callers (the backtest's retention) simulate instead."""
        return None

    def expected_value(
        self,
        params: Params,
        cols: Columns,
        spend: np.ndarray,
        cashflow: Cashflow,
        pmap: PMap = serial_map,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Expected discounted CLV per draw and customer given the history.

        ``clv = margin * spend * R - cost_per_period * C`` with ``R`` the discounted expected
        purchases and ``C`` the discounted expected alive periods (see :class:`Cashflow`);
        ``spend`` ``(S, n)`` is the spend model's expected spend per purchase (independent of
        the purchase process given the history). Returns ``(clv (S, n), means (4, n))``, the
        means over draws of P(alive now), expected purchases in the horizon, spend and CLV.

        This generic route evaluates :meth:`expected_purchases` and :meth:`probability_alive`
        on the cash-flow grid, in fixed blocks of :data:`DRAW_BLOCK` draws through ``pmap``;
        models may override it with a faster route that gives the same values.
        """
        S = n_draws(params)
        n = n_rows(cols)
        clv = np.empty((S, n))
        times = np.asarray(cashflow.times, dtype=np.float64)
        has_cost = cashflow.cost_per_period > 0

        def block(lo: int) -> np.ndarray:
            sub = {k: v[lo : lo + DRAW_BLOCK] for k, v in params.items()}
            cum = self.expected_purchases(sub, cols, times)
            rev = cum @ cashflow.revenue_weights
            grid = np.concatenate([[0.0], times]) if has_cost else np.zeros(1)
            alive = self.probability_alive(sub, cols, grid)
            cost = alive[..., 1:] @ cashflow.cost_weights if has_cost else 0.0
            sp = spend[lo : lo + DRAW_BLOCK]
            val = cashflow.margin * sp * rev - cashflow.cost_per_period * cost
            clv[lo : lo + DRAW_BLOCK] = val
            return np.stack(
                [
                    alive[..., 0].sum(axis=0),
                    cum[..., cashflow.horizon_index].sum(axis=0),
                    sp.sum(axis=0),
                    val.sum(axis=0),
                ]
            )

        means = np.sum(pmap(block, range(0, S, DRAW_BLOCK)), axis=0) / S
        return clv, means

    def window_values(
        self,
        params: Params,
        cols: Columns,
        spend: np.ndarray,
        weight: np.ndarray,
        cashflows: Sequence[Cashflow],
        pmap: PMap = serial_map,
    ) -> np.ndarray:
        """Expected discounted CLV summed over customers, per draw and cash flow ``(S, K)``.

        ``sum_i weight[i] * clv_k[:, i]`` for each of the ``K`` cash flows (e.g. one per
        cash-flow period, for a per-period table), with ``clv_k`` of :meth:`expected_value`
        and ``weight`` ``(n,)`` (customers per row of ``cols``). This generic route makes one
        :meth:`expected_value` call per cash flow; models may override it with a faster route
        that gives the same values (the contract tests check it).
        """
        w = np.asarray(weight, dtype=np.float64)
        out = np.empty((n_draws(params), len(cashflows)))
        for k, cf in enumerate(cashflows):
            out[:, k] = self.expected_value(params, cols, spend, cf, pmap)[0] @ w
        return out


class SpendSpec(ModelSpec):
    """Spend per purchase (or fee per period), independent of the purchase process."""

    kind: ClassVar[str] = "spend"
    uses_time: ClassVar[bool] = False

    @abstractmethod
    def expected_spend(self, params: Params, cols: Columns) -> np.ndarray:
        """E[spend of a future purchase | history], ``(S, n)`` (``inf`` where the mean does
        not exist)."""

    @abstractmethod
    def sample_spend(
        self,
        params: Params,
        cols: Columns,
        draw: np.ndarray,
        customer: np.ndarray,
        count: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Spend of each simulated event: units ``(draw, customer)`` with ``count`` events
        each (as in :class:`EventBatch`); returns ``count.sum()`` values, unit by unit, with
        each unit's latent spend level drawn from its conditional posterior."""


def n_draws(params: Params) -> int:
    """Number of draws ``S`` of a parameter mapping (all must agree)."""
    sizes = {np.shape(v)[0] for v in params.values()}
    if len(sizes) != 1:
        raise ClvkitError(
            f"parameters have different numbers of draws {sorted(sizes)}. Suggestion: pass "
            "every parameter as (S, 1) draws of one posterior."
        )
    return sizes.pop()


def n_rows(cols: Columns) -> int:
    """Number of customers ``n`` of a column mapping (all must agree)."""
    sizes = {np.shape(v)[0] for v in cols.values()}
    if len(sizes) != 1:
        raise ClvkitError(
            f"customer columns have different lengths {sorted(sizes)}. Suggestion: pass "
            "aligned 1-D arrays, one entry per customer."
        )
    return sizes.pop()


def take(cols: Columns, idx: np.ndarray) -> dict[str, np.ndarray]:
    """The columns of customers ``idx``."""
    return {k: np.asarray(v)[idx] for k, v in cols.items()}


def take_draws(params: Params, idx: np.ndarray | slice) -> dict[str, np.ndarray]:
    """The parameter draws of rows ``idx``."""
    return {k: np.asarray(v)[idx] for k, v in params.items()}


def unit_batches(count: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Indices of the units with ``count > 0``, in order, in consecutive batches of about
    ``batch_size`` events (at least one unit each): how a model's ``Future.batches`` bounds
    its memory."""
    units = np.flatnonzero(count > 0)
    bounds = np.cumsum(count[units])
    start = 0
    while start < units.size:
        done = bounds[start - 1] if start else 0
        end = max(start + 1, int(np.searchsorted(bounds, done + batch_size, "right")))
        yield units[start:end]
        start = end


def scatter_parts(
    parts: Iterable[tuple[np.ndarray | None, Any]], size: int, axis: int
) -> np.ndarray:
    """One array from the results of disjoint parts, as composite models make them: ``parts``
    yields ``(idx, result)``, ``idx`` the draws (``axis=0``, a mixture's components) or the
    customers (``axis=1``, a covariate model's classes) of that part; ``idx`` ``None`` means the
    part is everything, and its result is returned as it is."""
    out = None
    for idx, res in parts:
        res = np.asarray(res)
        if idx is None:
            return res
        if out is None:
            shape = list(res.shape)
            shape[axis] = size
            out = np.empty(shape, dtype=res.dtype)
        if axis == 0:
            out[idx] = res
        else:
            out[:, idx] = res
    if out is None:
        raise ValueError("scatter_parts: no parts")
    return out


def merge_futures(parts: list[tuple[np.ndarray, Future]], S: int, n: int, axis: str) -> Future:
    """One future from the futures of disjoint parts of the (draw, customer) units, as
    composite models make them: ``parts`` holds ``(idx, future)``, ``idx`` the draws
    (``axis="draw"``, a mixture's components) or the customers (``axis="customer"``, a
    covariate model's classes) of that part. ``p_alive`` is put back in place; alive units,
    deaths and latent draws follow one part after the other with indices mapped back; the
    parts' batches are chained (deaths and latent draws are refreshed as each part's batches
    are consumed)."""
    by_draw = axis == "draw"
    p_alive = np.empty((S, n))
    for idx, fut in parts:
        if by_draw:
            p_alive[idx] = fut.p_alive
        else:
            p_alive[:, idx] = fut.p_alive
    alive_draw = np.concatenate(
        [idx[np.asarray(f.alive_draw)] if by_draw else np.asarray(f.alive_draw) for idx, f in parts]
    )
    alive_customer = np.concatenate(
        [np.asarray(f.alive_customer) if by_draw else idx[np.asarray(f.alive_customer)]
         for idx, f in parts]
    )  # fmt: skip
    sizes = [np.size(f.alive_draw) for _, f in parts]
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    death = np.concatenate([np.asarray(f.death, dtype=np.float64) for _, f in parts])
    latent: dict[str, np.ndarray] = {}

    def refresh(j: int, fut: Future) -> None:
        lo, hi = offsets[j], offsets[j + 1]
        death[lo:hi] = fut.death
        for key, val in fut.latent.items():
            if key not in latent:
                latent[key] = np.full(death.size, np.nan)
            latent[key][lo:hi] = val

    for j, (_, fut) in enumerate(parts):
        refresh(j, fut)

    def batches() -> Iterator[EventBatch]:
        for j, (idx, fut) in enumerate(parts):
            for b in fut.batches:
                draw = idx[b.draw] if by_draw else b.draw
                customer = b.customer if by_draw else idx[b.customer]
                yield EventBatch(draw=draw, customer=customer, count=b.count, times=b.times)
            refresh(j, fut)

    return Future(
        p_alive=p_alive,
        alive_draw=alive_draw,
        alive_customer=alive_customer,
        death=death,
        batches=batches(),
        latent=latent,
    )
