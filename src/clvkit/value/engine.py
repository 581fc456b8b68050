"""Monte Carlo customer value: discounted CLV per customer and total customer equity.

Every CLV draw combines one draw of the purchase model with one draw of the spend model. The
two posteriors are independent, so draws are paired by a random permutation made from
``random_seed`` (the smaller posterior is recycled in shuffled blocks; a point fit pairs with
everything). Spend is never averaged over draws before it is combined. Both models are used
only through the model contract (:mod:`clvkit.models.contract`).

Customers are processed in chunks: for a chunk we hold ``(draws x chunk)`` values and accumulate
per-draw equity (the sum over customers *within* a draw) and per-customer statistics, so memory
stays bounded unless ``keep_draws=True``.

Time: ``horizon`` is a number in the RFM table's time unit or a duration string (``"52W"``,
``"365D"``); ``period`` is a duration. An annual rate ``R`` becomes ``(1 + R) ** (period_days /
365.25) - 1`` per period (a year is 365.25 days).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any, Literal

import numpy as np
import pandas as pd

from clvkit.errors import ClvkitError
from clvkit.models.contract import DRAW_BLOCK, PMap
from clvkit.utils.system import usable_cores
from clvkit.value.accumulate import (
    DEFAULT_TIERS,
    Accumulator,
    GroupCodes,
    group_codes,
    tier_membership,
)
from clvkit.value.chunks import chunk_streams, kernel_threads, ordered_map, progress
from clvkit.value.job import RunOptions, ValueJob, prepare_job
from clvkit.value.result import STORED_PROBS, CustomerValue
from clvkit.value.settings import CashflowSettings

__all__ = ["DEFAULT_TIERS", "KEEP_VALUES", "CashflowSettings", "CustomerValue", "customer_value"]

#: The expected method keeps its first pass's values for the second when draws x customers is
#: at most this (400 MB); above it the second pass recomputes them (the same bits).
KEEP_VALUES = 50_000_000


def customer_value(
    transactions_model: Any,
    spend_model: Any,
    rfm: pd.DataFrame,
    settings: CashflowSettings | None = None,
    *,
    method: Literal["expected", "simulate"] = "expected",
    tiers: Mapping[str, float] | None = None,
    tier_sample_size: int | None = None,
    chunk_size: int | None = None,
    n_jobs: int | None = None,
    random_seed: int | np.random.Generator | None = None,
    keep_draws: bool = False,
    progressbar: bool = False,
    draws: int | None = None,
    probs: tuple[float, ...] = STORED_PROBS,
    by: Hashable | pd.Series | None = None,
    **cashflow: Any,
) -> CustomerValue:
    """Discounted CLV per customer and total customer equity, with intervals.

    Parameters
    ----------
    transactions_model, spend_model
        A fitted purchase model (e.g. ``BetaGeo``) and spend model (e.g. ``GammaGamma``) of
        the model registry, their ``InferenceData``, or posterior ``xarray.Dataset`` s over
        ``(chain, draw)`` (e.g. ``r, alpha, a, b`` / ``p, q, v``).
    rfm : pandas.DataFrame
        Indexed by customer, with the columns both models read (BG/NBD and Gamma-Gamma:
        ``frequency``, ``recency``, ``T``, ``monetary_value``); ``rfm.attrs["time_unit"]``
        must agree with the purchase model's time unit.
    settings : CashflowSettings, optional
        Horizon, period, discounting, margin and costs (see :class:`CashflowSettings`).
        Its fields may instead (or also, overriding them) be passed as keywords:
        ``horizon``, ``period`` (default ``"30D"``), ``annual_discount_rate`` or
        ``discount_rate_per_period``, ``margin`` (default 1), ``discounting`` (default
        ``"discrete"``), ``cost_per_period`` (default 0), ``acquisition_cost``.
    method : {"expected", "simulate"}
        ``"expected"`` (the default): per draw, the expected discounted CLV given the history;
        intervals show parameter (credible) uncertainty. It is what a manager can target (a
        customer's value does not depend on a lucky simulated future), deterministic given the
        posterior (no seed involved) and the fastest. ``"simulate"``: per draw, one simulated
        future of each customer (and of the new customer); adds the randomness of the
        futures, so intervals are predictive (``result.expected_equity`` still holds the
        credible, expected equity).
    tiers : mapping, optional
        Tier name -> cumulative top share, last share 1 (default :data:`DEFAULT_TIERS`).
        Membership is fixed for both methods: customers ranked by their posterior-mean
        expected CLV (a first, expected pass over every draw), ties in the canonical order
        (identical customers by id); the top ``ceil(share n)`` customers are in the tiers up to
        that share, exactly. Each tier's equity is then summed per draw of the method.
    tier_sample_size : int, optional
        Deprecated, no effect (tiers used to come from per-draw cuts of a sample); passing it
        warns.
    chunk_size : int, optional
        Customers per chunk (default: about 8 million values per chunk for the expected
        method, whose chunks share Gauss rules and identical customers and split their work
        over ``n_jobs`` threads; 1.5 million for ``"simulate"``, whose chunks also hold up to
        2 million simulated purchases at a time).
    n_jobs : int, optional
        Number of threads processing chunks at once, and within a chunk of the expected
        method, blocks of 256 draws (the compiled kernels and numpy's heavy parts release the
        GIL). Default: the number of usable cores, ``len(os.sched_getaffinity(0))``. Results
        do not depend on it: each chunk draws from its own random stream, keyed by the chunk's
        position, the draw blocks are fixed, and per-draw sums are exact
        (:mod:`clvkit.utils.exactsum`), so the order chunks finish in does not matter. At most
        ``n_jobs + 1`` chunks are held at once.
    random_seed : int or numpy.random.Generator, optional
        Seeds the draw pairing and the simulation. With ``method="simulate"`` the simulated
        values depend on ``chunk_size`` (it decides which customers share a random stream), not
        on ``n_jobs`` nor on the row order of ``rfm``.
    keep_draws : bool
        Keep the full ``(chain, draw, customer_id)`` CLV array as ``result.clv``.
    progressbar : bool
        Show progress over chunks on stderr.
    draws : int, optional
        Use this many posterior draws, evenly spaced over the flattened ``(chain, draw)``
        posterior (the result then has one chain whose ``draw`` coordinate is the position);
        default every draw. At most the number of draws (1 for a point fit);
        ``settings["n_draws"]`` records the number used.
    probs : sequence of float
        Central interval probabilities whose per-customer bounds are stored
        (:meth:`CustomerValue.summary` accepts these without ``keep_draws``); default
        ``(0.5, 0.8, 0.9, 0.95)``.
    by : column name or pandas.Series, optional
        Also value the customers by group: a column of ``rfm`` (a segment, a channel) or a
        Series indexed by customer id (every customer of ``rfm`` needs a non-missing value).
        Each group's equity is summed exactly per draw, chunk by chunk (memory ``draws x
        groups``: an exact sum takes 552 bytes, so 4,000 draws x 20 groups hold 44 MB per
        chunk in flight, ``n_jobs + 1`` at most; never ``draws x customers``):
        ``result.group_equity`` ``(chain, draw, group)`` and :meth:`CustomerValue.group_table`
        (customers, CLV per customer and equity with intervals, share of equity, tier shares).
        Works with any purchase and spend models.

    Returns
    -------
    CustomerValue

    Notes
    -----
    - Pairing: CLV draw ``s`` uses purchase draw ``s`` and spend draw ``perm[s]`` (a random
      permutation from ``random_seed``; the smaller posterior is recycled in shuffled blocks).
    - Two passes over the chunks: the expected pass (every customer's expected CLV per draw:
      its posterior mean ranks the tiers, its per-draw sum is ``expected_equity``), then the
      method's pass (per-customer summaries, tier equity by membership, membership
      probabilities). With ``method="expected"`` the second pass reuses the first's values
      when draws x customers is at most :data:`KEEP_VALUES`, else recomputes them.
    - Memory: a chunk holds ``draws x chunk_size`` values (``n_jobs + 1`` chunks at a time);
      the full array only with ``keep_draws=True``.
    - ``method="expected"`` needs the expected purchases per distinct ``(frequency, T)`` pair
      and time point only; customers are visited sorted by that pair, then by customer id, and
      chunks are slices of that order (so results do not depend on the row order of ``rfm``,
      and :func:`clvkit.distributed.customer_value` rebuilds the same chunks on Dask).
    - Equity, tier equity and tier counts are exact per-draw sums, rounded once (to nearest):
      the same bits for any ``n_jobs`` or partitioning.
    - The new-customer value is the margin on the acquisition purchase (time 0, undiscounted)
      plus the discounted repeat purchases of a customer with ``x = 0, T = 0``, minus costs:
      expected per draw (``"expected"``), or one simulated future per draw, spends drawn from
      the spend model (``"simulate"``).

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> bg = xr.Dataset({k: (("chain", "draw"), [[v]]) for k, v in
    ...     dict(r=0.2426, alpha=4.4137, a=0.793, b=2.4262).items()})
    >>> gg = xr.Dataset({k: (("chain", "draw"), [[v]]) for k, v in
    ...     dict(p=6.2488, q=3.7446, v=15.4477).items()})
    >>> rfm = pd.DataFrame({"frequency": [2, 0], "recency": [30.43, 0.0], "T": [38.86, 38.86],
    ...     "monetary_value": [22.35, 0.0]}, index=pd.Index([1, 2], name="customer_id"))
    >>> rfm.attrs["time_unit"] = "W"
    >>> res = customer_value(bg, gg, rfm, horizon="52W", period="4W",
    ...     annual_discount_rate=0.1)
    >>> res.summary()["mean"].round(2).tolist()
    [36.65, 8.43]
    >>> round(float(res.equity.mean()), 2)
    45.08
    """
    flow = CashflowSettings.build(settings, **cashflow)
    options = RunOptions(method, tiers, tier_sample_size, chunk_size, random_seed, draws, probs)
    n_jobs = check_n_jobs(n_jobs)
    with kernel_threads(n_jobs) as pmap:
        job = prepare_job(transactions_model, spend_model, _attrs_of(rfm), flow, options, pmap)
        table = job.customer_table(rfm)
        groups = None if by is None else group_codes(rfm, by)
        return _run(job, table, pmap, n_jobs, keep_draws, progressbar, groups)


def check_n_jobs(n_jobs: Any) -> int:
    """``n_jobs`` as a positive int (None: every usable core)."""
    if n_jobs is None:
        return usable_cores()
    if isinstance(n_jobs, bool) or not (isinstance(n_jobs, int | np.integer) and n_jobs >= 1):
        raise ClvkitError(
            f"argument 'n_jobs' must be a positive integer, got {n_jobs!r}. Suggestion: leave it "
            "None to use every usable core."
        )
    return int(n_jobs)


def _attrs_of(rfm: Any) -> pd.DataFrame:
    """An empty frame carrying ``rfm``'s attrs (the time unit), or a clear error."""
    if not isinstance(rfm, pd.DataFrame):
        raise ClvkitError(
            f"argument 'rfm' must be a pandas DataFrame, got {type(rfm).__name__}. "
            "Suggestion: build it with clvkit.rfm_summary."
        )
    holder = pd.DataFrame(index=rfm.index[:0])
    holder.attrs = dict(rfm.attrs)
    return holder


def _run(
    job: ValueJob,
    data: pd.DataFrame,
    pmap: PMap,
    n_jobs: int,
    keep_draws: bool,
    progressbar: bool,
    groups: GroupCodes | None = None,
) -> CustomerValue:
    """Value every customer of ``data`` (validated columns) in canonical-order chunks: an
    expected pass (tier membership, expected equity), then the method's pass."""
    n, S, chunk = len(data), job.S, job.chunk
    cols = {c: data[c].to_numpy() for c in data.columns}
    run = job.runner(cols, pmap)
    order = job.canonical_order(data)
    acc = Accumulator(n, S, job.tiers, keep_draws, job.method == "simulate", pmap, job.probs)
    if groups is not None:
        acc.set_groups(groups)
    simulate = job.method == "simulate"
    starts = range(0, n, chunk)
    sim_stream = chunk_streams(job.sim_rng)
    # the expected method's second pass reuses the first's values when they are few
    kept: dict[int, tuple] = {}
    keep = job.method == "expected" and S * n <= KEEP_VALUES

    # pass 1: expected CLV of every customer (all draws): tier membership, expected equity
    def expected_chunk(lo: int):
        idx = order[lo : lo + chunk]
        clv, means, _, inverse = run.distinct(idx, None, "expected")
        # the expected method's equity (pass 2) is the expected equity: no sum needed here
        part = acc.chunk_expected(clv, inverse) if simulate else None
        group = acc.chunk_groups(clv, idx, inverse) if simulate else None
        mean = means[3] if inverse is None else means[3][inverse]
        return lo, idx, (part, group), mean, ((clv, means, inverse) if keep else None)

    label = "expected CLV" if job.method == "simulate" else "customer value (1/2)"
    results = ordered_map(expected_chunk, starts, n_jobs)
    for lo, idx, (part, group), mean, values in progress(results, len(starts), progressbar, label):
        acc.add_expected(idx, part, mean)
        acc.add_groups(group, expected=True)
        if values is not None:
            kept[lo] = values
    member, cuts = tier_membership(acc.stats["expected"][order], list(job.tiers.values()))
    by_row = np.empty(n, dtype=np.int64)
    by_row[order] = member
    acc.set_tiers(by_row, cuts)

    # pass 2: the method's values: summaries, tier sums by membership (exact sums: any order)
    def value_chunk(lo: int):
        # runs in a worker thread: reads shared inputs
        idx = order[lo : lo + chunk]
        if lo in kept:
            (clv, means, inverse), counts = kept.pop(lo), None
        else:
            clv, means, counts, inverse = run.distinct(idx, sim_stream(lo // chunk))
        stats = acc.chunk_stats(clv, means, inverse)
        parts = acc.chunk_tiers(clv, by_row[idx], cuts, inverse)
        group = acc.chunk_groups(clv, idx, inverse)
        if inverse is not None and keep_draws:  # the full columns, only to keep them
            out = np.empty((S, idx.size))

            def fill(r: int) -> None:  # a block of draws of this chunk's columns
                rows = slice(r, r + DRAW_BLOCK)
                np.take(clv[rows], inverse, axis=1, out=out[rows])

            pmap(fill, range(0, S, DRAW_BLOCK))
            clv = out
        return idx, clv, counts, stats, parts, group

    label = "customer value" if job.method == "simulate" else "customer value (2/2)"
    results = ordered_map(value_chunk, starts, n_jobs)
    for idx, clv, counts, stats, parts, group in progress(results, len(starts), progressbar, label):
        acc.add_stats(idx, stats, clv, counts)
        acc.add_tiers(idx, parts)
        acc.add_groups(group)
        del clv, counts, stats, parts, group  # hold at most n_jobs + 1 chunks

    settings = {**job.settings, "n_customers": n}
    return acc.result(data.index, job, settings)
