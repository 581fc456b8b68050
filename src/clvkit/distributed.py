"""RFM summaries and customer value on a Dask cluster, identical to the in-memory results.

Everything here runs on whatever Dask scheduler is active: a ``dask.distributed.Client`` (a
``LocalCluster`` on one machine, or ``Client("tcp://scheduler:8786")`` for a real cluster),
or Dask's local threads when there is none. Each worker runs clvkit's in-memory code on one
partition at a time; nothing is re-implemented here, so the results are the in-memory ones.

:func:`rfm_summary` / :func:`calibration_holdout`
    One pass reads the dates (first and last purchase day, rows after the end: the global
    facts the in-memory code takes from the whole log); then the log is shuffled by customer
    (each customer's purchases on one partition, in their original row order, so same-day
    amounts are summed in the same order) and :func:`clvkit.rfm_summary` runs per partition.
:func:`customer_value`
    CLV values depend on which customers share a chunk (the expected method's quadrature
    picks one node count per chunk; the simulation draws one random stream per chunk), so the
    in-memory chunks are rebuilt: customers in canonical order (the purchase model's order
    keys, for BG/NBD (frequency, T), then customer id), cut into ``chunk_size`` slices. A pass
    counts customers per key; the table is shuffled by key (each key on one partition, so
    positions are local ranks plus the key's offset), then by chunk (each chunk on one
    partition). Models, settings, chunks and accumulation are the in-memory ones
    (:mod:`clvkit.value`'s public job and accumulator API). Tier cuts come from a first
    pass over the tier sample (or over all customers when they are few, as in memory); then
    each partition scores its chunks and returns its per-customer rows and its exact per-draw
    equity sums (:class:`clvkit.utils.exactsum.ExactSum`), merged in a tree. Exact sums do not
    depend on the order of the merges, so equity draws are bit for bit the in-memory ones.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from clvkit.data import summary as data_summary
from clvkit.errors import ClvkitError, bad_rows_error
from clvkit.units import TIME_UNIT_ATTR, check_tz, format_time_unit
from clvkit.utils.checks import check_prob
from clvkit.utils.exactsum import ExactSum
from clvkit.value import (
    Accumulator,
    CashflowSettings,
    CustomerValue,
    GroupCodes,
    RunOptions,
    ValueJob,
    chunk_streams,
    group_levels,
    prepare_job,
    prob_label,
    tier_membership,
)

__all__ = ["DistributedValue", "calibration_holdout", "customer_value", "rfm_summary"]

_SEQ = "__clvkit_row"  # original row order, kept through the shuffle
_ID = "__clvkit_id"
_POS = "__clvkit_pos"
_CHUNK = "__clvkit_chunk"
_KEY = "__clvkit_key"  # prefix of the canonical-order key columns
_GROUP = "__clvkit_group"  # the customer's group (customer_value(by=...)), an index of levels


def _dd():
    try:
        import dask.dataframe as dd
        import distributed  # noqa: F401  (the scheduler users point clvkit at)
    except ImportError as exc:
        raise ClvkitError(
            f"clvkit.distributed needs Dask, which is not installed ({exc}). Suggestion: "
            "pip install 'clvkit[dask]'."
        ) from exc
    return dd


def _check_dask_frame(obj: Any, argument: str, suggestion: str) -> Any:
    dd = _dd()
    if isinstance(obj, pd.DataFrame):
        raise ClvkitError(
            f"argument {argument!r} is a pandas DataFrame; clvkit.distributed takes a Dask "
            f"DataFrame. Suggestion: {suggestion}"
        )
    if not isinstance(obj, dd.DataFrame):
        raise ClvkitError(
            f"argument {argument!r} must be a Dask DataFrame, got {type(obj).__name__}. "
            f"Suggestion: {suggestion}"
        )
    return obj


# ----------------------------------------------------------------------------------------------
# summaries
# ----------------------------------------------------------------------------------------------
def _tag_rows(part: pd.DataFrame, columns: list[Hashable], partition_info=None) -> pd.DataFrame:
    out = part[columns].copy()
    number = 0 if partition_info is None else int(partition_info["number"])
    out[_SEQ] = (np.int64(number) << np.int64(36)) + np.arange(len(out), dtype=np.int64)
    return out


def _day_stats(part: pd.DataFrame, date: Hashable, end: int | None, tz: str) -> pd.DataFrame:
    """One row: first and last day, rows, rows after ``end`` (dates validated as in memory)."""
    if len(part) == 0:
        return pd.DataFrame({"first": [], "last": [], "rows": [], "after": []}, dtype=np.int64)
    days = data_summary.parse_dates(part, date, tz)
    after = int((days > end).sum()) if end is not None else 0
    return pd.DataFrame(
        {"first": [days.min()], "last": [days.max()], "rows": [len(days)], "after": [after]},
        dtype=np.int64,
    )


def _global_days(tagged, date: Hashable, end: int | None, tz: str) -> tuple[int, int, int, int]:
    stats = tagged.map_partitions(
        _day_stats, date, end, tz,
        meta=pd.DataFrame({k: pd.Series(dtype=np.int64) for k in ("first", "last", "rows", "after")}),
    ).compute()  # fmt: skip
    if len(stats) == 0 or int(stats["rows"].sum()) == 0:
        raise ClvkitError(
            "argument 'transactions' is empty (0 rows). Suggestion: pass a log with at least one "
            "purchase."
        )
    first, last = int(stats["first"].min()), int(stats["last"].max())
    return first, last, int(stats["rows"].sum()), int(stats["after"].sum())


def _summary_meta(
    meta: pd.DataFrame, customer_id: Hashable, amount: Hashable | None, holdout: bool
):
    cols: dict[str, Any] = {
        "frequency": pd.Series(dtype=np.int64),
        "recency": pd.Series(dtype=np.float64),
        "T": pd.Series(dtype=np.float64),
    }
    if amount is not None:
        cols["monetary_value"] = pd.Series(dtype=np.float64)
    if holdout:
        cols["frequency_holdout"] = pd.Series(dtype=np.int64)
        if amount is not None:
            cols["monetary_value_holdout"] = pd.Series(dtype=np.float64)
        cols["duration_holdout"] = pd.Series(dtype=np.float64)
    index = pd.Index(meta[customer_id].iloc[:0], name="customer_id")
    return pd.DataFrame(cols, index=index)


def _summarize_part(
    part: pd.DataFrame,
    meta: pd.DataFrame,
    attrs: dict[str, Any],
    fn: Any,
    first_day_cut: int,
    end: int,
    kwargs: dict[str, Any],
) -> pd.DataFrame:
    """The in-memory summary of one partition (whole customers), in original row order.

    Rows after ``end`` are dropped first (the in-memory code would leave them out too, with a
    warning; the client warns once instead, and warning filters are not thread-safe)."""
    part = part.sort_values(_SEQ, kind="stable").drop(columns=_SEQ)
    out = None
    if len(part):
        days = data_summary.parse_dates(part, kwargs["date"], kwargs["tz"])
        keep = days <= end
        if not keep.all():
            part, days = part[keep], days[keep]
        if len(days) and days.min() <= first_day_cut:  # else nobody here is in the summary
            out = fn(part.reset_index(drop=True), **kwargs)
    if out is None:
        out = meta.copy()
    out.attrs = dict(attrs)
    return out


def _cleaning_attrs(shuffled, customer_id, date, amount, tz, end, cal) -> dict[str, Any]:
    """attrs ``cleaning``, ``currency`` (and ``late_customers``) of the whole log, as in memory:
    counted per partition of whole customers and summed (one more pass over the partitions)."""
    import dask

    kw = {"customer_id": customer_id, "date": date, "amount": amount, "tz": tz, "end": end}
    parts = dask.compute(
        *[dask.delayed(data_summary.part_stats)(p, **kw, cal=cal) for p in shuffled.to_delayed()]
    )
    keys = list(parts[0]["cleaning"]) if parts else []
    out: dict[str, Any] = {
        "cleaning": {k: sum(int(p["cleaning"][k]) for p in parts) for k in keys},
        "currency": None,
    }
    if cal is not None:
        late = [p["late_min"] for p in parts if p["late"]]
        out["late_customers"] = sum(p["late"] for p in parts)
        out["late_customers_example"] = min(late) if late else None
    return out


def _summary(
    transactions: Any,
    *,
    customer_id: Hashable,
    date: Hashable,
    amount: Hashable | None,
    time_unit: str | pd.Timedelta,
    observation_end: Any,
    calibration_end: Any,
    npartitions: int | None,
    tz: str | None = None,
):
    transactions = _check_dask_frame(
        transactions, "transactions",
        "use clvkit.rfm_summary for pandas, or dask.dataframe.from_pandas(df, npartitions=...).",
    )  # fmt: skip
    wanted = data_summary.check_column_arguments(
        customer_id, date, amount, list(transactions.columns)
    )
    unit, _ = data_summary.summary_unit(time_unit)
    zone = check_tz(tz)
    holdout = calibration_end is not None
    end = (
        None
        if observation_end is None
        else data_summary.end_day(observation_end, "observation_end")
    )
    cal = data_summary.end_day(calibration_end, "calibration_end") if holdout else None
    if holdout and cal >= end:
        raise ClvkitError(
            f"argument 'calibration_end' ({data_summary.iso_day(cal)}) is not before argument "
            f"'observation_end' ({data_summary.iso_day(end)}). Suggestion: the holdout period "
            "(calibration_end, observation_end] must be at least one day long."
        )
    if npartitions is not None and not (
        isinstance(npartitions, int | np.integer) and not isinstance(npartitions, bool)
        and npartitions >= 1
    ):  # fmt: skip
        raise ClvkitError(
            f"argument 'npartitions' must be a positive integer, got {npartitions!r}. "
            "Suggestion: leave it None to keep the number of partitions of 'transactions'."
        )
    columns = list(wanted.values())
    tagged = transactions.map_partitions(
        _tag_rows, columns,
        meta=transactions._meta[columns].assign(**{_SEQ: np.zeros(0, dtype=np.int64)}),
    )  # fmt: skip
    first, last, n_rows, n_after = _global_days(tagged, date, end, zone)
    if end is None:
        end = last
    if holdout and cal < first:
        raise ClvkitError(
            f"argument 'calibration_end' ({data_summary.iso_day(cal)}) is before the first purchase "
            f"({data_summary.iso_day(first)}), so no customer is in the calibration period. Suggestion: "
            "pass a calibration end on or after the first purchase."
        )
    if end < first:
        raise ClvkitError(
            f"argument 'observation_end' ({data_summary.iso_day(end)}) is before the first purchase "
            f"({data_summary.iso_day(first)}) and would exclude every purchase. Suggestion: pass the last "
            "day of the observation period, on or after the first purchase."
        )
    attrs: dict[str, Any] = {TIME_UNIT_ATTR: unit}
    kwargs: dict[str, Any] = {"customer_id": customer_id, "date": date, "amount": amount,
                              "time_unit": unit, "observation_end": data_summary.iso_day(end),
                              "tz": zone}  # fmt: skip
    if holdout:
        attrs["calibration_end"] = data_summary.iso_day(cal)
        kwargs["calibration_end"] = data_summary.iso_day(cal)
    attrs["observation_end"] = data_summary.iso_day(end)
    attrs["n_rows_after_observation_end"] = n_after
    meta = _summary_meta(transactions._meta, customer_id, amount, holdout)
    meta.attrs = dict(attrs)
    shuffled = tagged.shuffle(on=customer_id, npartitions=npartitions or tagged.npartitions)
    attrs.update(_cleaning_attrs(shuffled, customer_id, date, amount, zone, end, cal))
    meta.attrs = dict(attrs)
    # one partition is a part of the log: the caller warns once, for the whole log
    fn = functools.partial(data_summary.summarize_log, holdout=holdout, warn=False)
    out = shuffled.map_partitions(
        _summarize_part, meta.iloc[:0], attrs, fn, cal if holdout else end, end, kwargs, meta=meta,
        enforce_metadata=False,
    )  # fmt: skip
    return out, (n_after, data_summary.iso_day(end), n_rows)


def rfm_summary(
    transactions: Any,
    *,
    customer_id: Hashable = "customer_id",
    date: Hashable = "date",
    amount: Hashable | None = None,
    time_unit: str | pd.Timedelta = "W",
    observation_end: Any = None,
    npartitions: int | None = None,
    tz: str | None = None,
):
    """:func:`clvkit.rfm_summary` of a Dask DataFrame of purchases, as a Dask DataFrame.

    One pass over the log reads the dates (validating them, finding the last day when
    ``observation_end`` is None and counting rows after it); the log is then shuffled by
    customer and :func:`clvkit.rfm_summary` runs on each partition. The result is lazy,
    partitioned by a hash of the customer id, sorted by id within each partition;
    ``result.compute().sort_index()`` equals :func:`clvkit.rfm_summary` on the whole log
    (same rows, values, dtypes and ``attrs``). String ids keep the Dask frame's dtype (Dask
    turns object and ``str`` columns into ``string[pyarrow]`` unless its
    ``dataframe.convert-string`` option is off).

    Parameters
    ----------
    transactions : dask.dataframe.DataFrame
        One row per purchase; never modified.
    customer_id, date, amount, time_unit, observation_end, tz
        As in :func:`clvkit.rfm_summary`.
    npartitions : int, optional
        Partitions of the result (default: those of ``transactions``).

    Returns
    -------
    dask.dataframe.DataFrame
        Indexed by ``customer_id``; ``frequency``, ``recency``, ``T`` (and ``monetary_value``).
        Each computed partition carries the in-memory ``attrs``.

    Raises
    ------
    ClvkitError
        As :func:`clvkit.rfm_summary` (row errors count the rows of one partition), or when
        ``transactions`` is not a Dask DataFrame.

    Examples
    --------
    Without a ``dask.distributed.Client`` this runs on Dask's local threads:

    >>> import dask.dataframe as dd
    >>> log = pd.DataFrame({
    ...     "customer_id": ["a", "a", "a", "b"],
    ...     "date": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-01-15", "2024-01-08"]),
    ...     "amount": [5.0, 5.0, 20.0, 8.0],
    ... })
    >>> rfm = rfm_summary(dd.from_pandas(log, npartitions=2), amount="amount",
    ...                   observation_end="2024-01-29")
    >>> rfm.compute().sort_index()  # doctest: +NORMALIZE_WHITESPACE
                 frequency  recency    T  monetary_value
    customer_id
    a                    1      2.0  4.0            20.0
    b                    0      0.0  3.0             0.0
    """
    out, left_out = _summary(
        transactions, customer_id=customer_id, date=date, amount=amount, time_unit=time_unit,
        observation_end=observation_end, calibration_end=None, npartitions=npartitions, tz=tz,
    )  # fmt: skip
    data_summary.warn_left_out(*left_out)  # points at the caller, as in memory
    return out


def calibration_holdout(
    transactions: Any,
    *,
    calibration_end: Any,
    observation_end: Any,
    customer_id: Hashable = "customer_id",
    date: Hashable = "date",
    amount: Hashable | None = None,
    time_unit: str | pd.Timedelta = "W",
    npartitions: int | None = None,
    tz: str | None = None,
):
    """:func:`clvkit.calibration_holdout` of a Dask DataFrame of purchases, as a Dask DataFrame.

    As :func:`rfm_summary`: one pass over the dates, a shuffle by customer, then the in-memory
    :func:`clvkit.calibration_holdout` per partition; ``result.compute().sort_index()`` equals
    it on the whole log.
    """
    out, left_out = _summary(
        transactions, customer_id=customer_id, date=date, amount=amount, time_unit=time_unit,
        observation_end=observation_end, calibration_end=calibration_end,
        npartitions=npartitions, tz=tz,
    )  # fmt: skip
    data_summary.warn_left_out(*left_out)
    return out


# ----------------------------------------------------------------------------------------------
# customer value
# ----------------------------------------------------------------------------------------------
@dataclass
class DistributedValue(CustomerValue):
    """Result of :func:`customer_value`: a :class:`clvkit.value.CustomerValue` whose per-customer
    table is a persisted Dask DataFrame, ``customers``.

    ``equity``, ``tier_equity``, ``tier_count``, ``new_customer``, :meth:`equity_interval`,
    :meth:`tier_table`, :meth:`new_customer_value` and :meth:`report` are as in memory (and
    equal to it). ``customers`` has ``mean``, ``median``, ``lower_P`` and ``upper_P`` for each
    stored interval probability P (percent; ``probs``, default 50, 80, 90, 95),
    ``expected_clv``, ``p_alive``, ``expected_purchases``, ``expected_spend``, ``tier`` and
    ``p_<tier>``; :meth:`summary` selects the columns of :meth:`CustomerValue.summary`.
    """

    customers: Any = None

    def summary(self, prob: float = 0.9):
        """Per-customer table as :meth:`CustomerValue.summary` (a Dask DataFrame; ``prob`` one
        of ``settings["probs"]``)."""
        prob = check_prob(prob)
        stored = tuple(self.settings["probs"])
        if prob not in stored:
            raise ClvkitError(
                f"argument 'prob' is {prob}, but per-customer intervals were stored for "
                f"{stored} only. Suggestion: pass it to customer_value(..., probs=(..., {prob}))."
            )
        p = prob_label(prob)
        names = [c for c in self.customers.columns if not c.startswith(("lower_", "upper_"))]
        cols = [*names[:2], f"lower_{p}", f"upper_{p}", *names[2:]]
        return self.customers[cols].rename(columns={f"lower_{p}": "lower", f"upper_{p}": "upper"})


def _clean(part: pd.DataFrame, job: ValueJob, groups: Any = None) -> pd.DataFrame:
    """Validated float columns, as the in-memory path checks them (per partition), and the
    purchase model's canonical-order keys as columns ``__clvkit_key<i>``; with ``groups``
    (``(column, levels)``) the group index of each customer as ``__clvkit_group``."""
    if groups is not None:
        column, levels = groups
        codes = levels.get_indexer(part[column]).astype(np.int64)
        return _clean(part[job.columns], job).assign(**{_GROUP: codes})
    if len(part) == 0:
        cols = {c: np.zeros(0) for c in job.columns}
        out = pd.DataFrame(cols, index=part.index[:0])
    else:
        out = job.customer_table(part)
        cols = {c: out[c].to_numpy() for c in job.columns}
    keys = job.order_keys(cols)
    out = out.assign(**{f"{_KEY}{i}": np.asarray(k, dtype=np.float64) for i, k in enumerate(keys)})
    return out.rename_axis(_ID)


def _keys(frame: Any) -> list[str]:
    return [c for c in frame.columns if str(c).startswith(_KEY)]


def _pair_counts(part: pd.DataFrame) -> pd.DataFrame:
    return part.groupby(_keys(part)).size().rename("n").reset_index()


def _positions(part: pd.DataFrame, pairs: pd.DataFrame, chunk: int) -> pd.DataFrame:
    """Positions in the (order keys, id) order: a key's offset plus the rank within the key
    (each key is whole in this partition) and the chunk they fall in."""
    if len(part) == 0:
        return part.assign(**{_POS: np.zeros(0, np.int64), _CHUNK: np.zeros(0, np.int64)})
    keys = _keys(part)
    part = part.sort_values([*keys, _ID], kind="stable")
    start = part[keys].merge(pairs, on=keys, how="left")["start"]
    rank = part.groupby(keys, sort=False).cumcount().to_numpy()
    pos = start.to_numpy(dtype=np.int64) + rank
    return part.assign(**{_POS: pos, _CHUNK: pos // chunk})


def _arrays(part: pd.DataFrame, job: ValueJob) -> dict[str, np.ndarray]:
    return {c: part[c].to_numpy(dtype=np.float64) for c in job.columns}


def _expected_part(part: pd.DataFrame, job: ValueJob, groups: Any = None):
    """The expected pass over a partition's chunks: positions, each customer's mean expected
    CLV, the partition's exact per-draw expected equity and (``simulate`` with ``groups``)
    its exact per-draw expected equity by group."""
    part = part.sort_values(_POS)
    acc = Accumulator(len(part), job.S, job.tiers, probs=job.probs)
    _set_groups(acc, part, groups)
    simulate = job.method == "simulate"
    if len(part):
        run = job.runner(_arrays(part, job))
        cid = part[_CHUNK].to_numpy()
        for lo, hi in _runs(cid):
            idx = np.arange(lo, hi)
            clv, means, _, inverse = run.distinct(idx, None, "expected")
            mean = means[3] if inverse is None else means[3][inverse]
            sums = acc.chunk_expected(clv, inverse) if simulate else None
            acc.add_expected(idx, sums, mean)
            if simulate:
                acc.add_groups(acc.chunk_groups(clv, idx, inverse), expected=True)
    return part[_POS].to_numpy(), acc.stats["expected"], acc.expected_sums, acc.group_expected


def _set_groups(acc: Accumulator, part: pd.DataFrame, groups: Any) -> None:
    """Sum by group too (``groups``: ``(column, levels)``; ``None``: no groups)."""
    if groups is not None:
        codes = part[_GROUP].to_numpy(dtype=np.int64) if len(part) else np.zeros(0, np.int64)
        acc.set_groups(GroupCodes(codes, groups[1], groups[0]))


def _membership(n: int, job: Any, *parts: tuple) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tier membership and cuts from every customer's expected CLV (by canonical position, as
    in memory), and the expected CLV by position."""
    expected = np.empty(n)
    for pos, mean, *_ in parts:
        expected[pos] = mean
    member, cuts = tier_membership(expected, list(job.tiers.values()))
    return member, cuts, expected


def _expected_sums(*parts: tuple) -> ExactSum:
    return _merge(*(p[2] for p in parts))


def _runs(cid: np.ndarray):
    """(lo, hi) of the runs of equal chunk ids in a sorted array."""
    if cid.size == 0:
        return iter(())
    edges = np.flatnonzero(np.diff(cid)) + 1
    bounds = np.concatenate(([0], edges, [cid.size]))
    return zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)


def _score_part(
    part: pd.DataFrame, job: ValueJob, tiers: tuple, id_name: Hashable, groups: Any = None
) -> tuple[pd.DataFrame, ExactSum, ExactSum | None, np.ndarray | None]:
    """Score a partition's chunks with the in-memory accumulator: per-customer rows in
    canonical order, the partition's exact per-draw tier sums (``tiers``: membership, cuts
    and expected CLV by position, :func:`_membership`) and, with ``groups``, its exact
    per-draw group sums and customers per group and tier."""
    part = part.sort_values(_POS)
    m = len(part)
    member_all, cuts, expected = tiers
    acc = Accumulator(m, job.S, job.tiers, False, job.method == "simulate", probs=job.probs)
    pos = part[_POS].to_numpy()
    member = member_all[pos] if m else np.zeros(0, dtype=np.int64)
    acc.set_tiers(member, cuts)
    acc.stats["expected"][:] = expected[pos] if m else 0.0
    _set_groups(acc, part, groups)
    if m:
        run = job.runner(_arrays(part, job))
        stream = chunk_streams(job.sim_rng)
        cid = part[_CHUNK].to_numpy()
        for lo, hi in _runs(cid):
            idx = np.arange(lo, hi)
            clv, means, counts, inverse = run.distinct(idx, stream(int(cid[lo])))
            stats = acc.chunk_stats(clv, means, inverse)
            clv = clv if inverse is None else clv[:, inverse]
            acc.add_stats(idx, stats, clv, counts)
            acc.add_tiers(idx, acc.chunk_tiers(clv, member[idx], cuts))
            acc.add_groups(acc.chunk_groups(clv, idx))
            del clv, means, counts
    ids = pd.Index(part[_ID].to_numpy(), name=id_name, dtype=part[_ID].dtype)
    counts = None if groups is None else acc.group_tier_counts(acc.groups.codes, member)
    return acc.wide_table(ids, job.tiers), acc.sums, acc.group_sums, counts


def _merge(*sums: ExactSum) -> ExactSum:
    out = ExactSum(*sums[0].shape)
    for s in sums:
        out.merge(s)
    return out


def _add(*arrays: np.ndarray) -> np.ndarray:
    return functools.reduce(operator.add, arrays)


def _tree(delayed_fn, items: list, fan_in: int = 8):
    while len(items) > 1:
        items = [delayed_fn(*items[i : i + fan_in]) for i in range(0, len(items), fan_in)]
    return items[0]


def customer_value(
    transactions_model: Any,
    spend_model: Any,
    rfm: Any,
    settings: CashflowSettings | None = None,
    *,
    method: Literal["expected", "simulate"] = "expected",
    tiers: Mapping[str, float] | None = None,
    tier_sample_size: int | None = None,
    chunk_size: int | None = None,
    random_seed: int | np.random.Generator | None = None,
    time_unit: str | None = None,
    npartitions: int | None = None,
    draws: int | None = None,
    probs: tuple[float, ...] = (0.5, 0.8, 0.9, 0.95),
    by: Hashable | None = None,
    **cashflow: Any,
) -> DistributedValue:
    """:func:`clvkit.customer_value` on a Dask DataFrame of RFM rows, bit for bit.

    The arguments mean what they mean in :func:`clvkit.customer_value` (``settings`` or the
    cash-flow keywords build the same :class:`clvkit.value.CashflowSettings`; ``keep_draws`` and
    ``n_jobs`` do not exist here: each partition's chunks run one after the other on a worker
    thread, holding one ``(draws x chunk_size)`` block at a time). For the same models, seed
    and ``chunk_size``, equity, tier sums and counts, the new-customer value and every
    per-customer number equal the in-memory ones exactly.

    Passes (the first is computed at once; the others are one graph, persisted, so the
    shuffles run once):

    1. per partition: the in-memory row checks and counts per canonical-order key (the
       purchase model's ``order_keys``; BG/NBD: (frequency, T)), and the number of distinct
       ids (duplicates are an error, as in memory);
    2. shuffle by key, rank each customer in (key, id) order; shuffle by chunk
       (``position // chunk_size``);
    3. per partition, the expected pass: each customer's mean expected CLV (gathered on one
       worker, 8 bytes a customer, for the tiers' membership) and the exact per-draw expected
       equity;
    4. per partition: score its chunks, return per-customer rows and exact per-draw sums,
       merged in a tree (fan-in 8).

    Parameters
    ----------
    rfm : dask.dataframe.DataFrame or pandas.DataFrame
        Indexed by customer id, with the columns both models read (BG/NBD and Gamma-Gamma:
        ``frequency``, ``recency``, ``T``, ``monetary_value``, e.g. from :func:`rfm_summary`).
        A pandas frame is split into ``npartitions``.
    time_unit : str, optional
        The RFM time unit, when the frame's metadata carries no ``attrs["time_unit"]``.
    npartitions : int, optional
        Partitions after the shuffles (default: those of ``rfm``).
    by : column name, optional
        A column of ``rfm``: also value by group, as in memory (``group_equity``,
        :meth:`~clvkit.value.CustomerValue.group_table`; the same bits).

    Returns
    -------
    DistributedValue
        ``customers`` is a persisted Dask DataFrame, partitions in canonical order.
    """
    dd = _dd()
    if isinstance(rfm, pd.DataFrame):
        if npartitions is not None and not isinstance(npartitions, int | np.integer):
            raise ClvkitError(
                f"argument 'npartitions' must be a positive integer, got {npartitions!r}."
            )
        frame = rfm.copy(deep=False)
        rfm = dd.from_pandas(frame, npartitions=npartitions or 1, sort=False)
    rfm = _check_dask_frame(
        rfm, "rfm", "build it with clvkit.distributed.rfm_summary or dask.dataframe.from_pandas."
    )
    if npartitions is None:
        npartitions = rfm.npartitions
    if isinstance(npartitions, bool) or not (
        isinstance(npartitions, int | np.integer) and npartitions >= 1
    ):
        raise ClvkitError(
            f"argument 'npartitions' must be a positive integer, got {npartitions!r}. "
            "Suggestion: leave it None to keep the partitions of 'rfm'."
        )
    meta = rfm._meta
    holder = pd.DataFrame(index=meta.index[:0])
    holder.attrs = dict(meta.attrs)
    if time_unit is not None:
        holder.attrs[TIME_UNIT_ATTR] = format_time_unit(time_unit)
    flow = CashflowSettings.build(settings, **cashflow)
    options = RunOptions(method, tiers, tier_sample_size, chunk_size, random_seed, draws, probs)
    job = prepare_job(transactions_model, spend_model, holder, flow, options)
    missing = [c for c in job.columns if c not in meta.columns]
    if missing:
        raise ClvkitError(
            f"argument 'rfm' lacks column(s) {missing}; it has {list(meta.columns)}. "
            "Suggestion: build it with clvkit.distributed.rfm_summary (with amount=...)."
        )
    _dd()
    import dask

    groups = None
    if by is not None:  # the levels of the whole table, before the shuffles
        if not isinstance(by, Hashable) or by not in meta.columns:
            raise ClvkitError(
                f"argument 'by' must be a column of 'rfm', got {by!r}; 'rfm' has columns "
                f"{list(meta.columns)}. Suggestion: add the groups as a column of the frame."
            )
        distinct, n_missing = dask.compute(rfm[by].drop_duplicates(), rfm[by].isna().sum())
        if int(n_missing):
            first = rfm.index[rfm[by].isna()].head(1, npartitions=-1)[0]
            raise bad_rows_error(
                f"column {by!r} of 'rfm'", "has no group (missing value)", int(n_missing),
                {"customer_id": first.item() if isinstance(first, np.generic) else first},
                "fill the gaps with a level such as 'unknown'",
            )  # fmt: skip
        groups = (by, group_levels(distinct, f"column {by!r} of 'rfm'"))

    # pass 1: checks, histogram of the order keys, distinct ids
    used = job.columns if by is None or by in job.columns else [*job.columns, by]
    float_meta = _clean(meta[used].iloc[:0], job, groups)
    keys = _keys(float_meta)
    clean = rfm[used].map_partitions(_clean, job, groups, meta=float_meta)
    pair_meta = pd.DataFrame({**{k: np.zeros(0) for k in keys}, "n": np.zeros(0, np.int64)})
    counts, n_ids = dask.compute(
        clean.map_partitions(_pair_counts, meta=pair_meta), clean.index.nunique()
    )
    pairs = counts.groupby(keys, as_index=False)["n"].sum()
    pairs = pairs.sort_values(keys, kind="stable").reset_index(drop=True)
    n = int(pairs["n"].sum())
    if n == 0:
        raise ClvkitError("argument 'rfm' has no rows. Suggestion: pass at least one customer.")
    if int(n_ids) != n:
        raise bad_rows_error(
            "index 'customer_id' of 'rfm'", "is duplicated", n - int(n_ids),
            "(found by counting distinct ids across partitions)", "one row per customer", n,
        )  # fmt: skip
    pairs["start"] = np.concatenate(([0], np.cumsum(pairs["n"].to_numpy())[:-1])).astype(np.int64)
    pairs = pairs.drop(columns="n")

    # pass 2: canonical positions and chunks
    id_name = meta.index.name
    table = clean.reset_index()
    by_pair = table.shuffle(on=keys, npartitions=npartitions)
    pos_meta = table._meta.assign(**{_POS: np.zeros(0, np.int64), _CHUNK: np.zeros(0, np.int64)})
    placed = by_pair.map_partitions(_positions, pairs, job.chunk, meta=pos_meta)
    by_chunk = placed.shuffle(on=_CHUNK, npartitions=npartitions)
    parts = by_chunk.to_delayed()
    delayed = dask.delayed

    # pass 3: expected CLV of every customer: tier membership, expected equity
    firsts = [delayed(_expected_part, nout=4)(p, job, groups) for p in parts]
    member = delayed(_membership, nout=3)(n, job, *firsts)
    expected_total = delayed(_expected_sums)(*firsts)

    # pass 4: scoring and the exact per-draw sums
    scored = [delayed(_score_part, nout=4)(p, job, member, id_name, groups) for p in parts]
    none = (np.zeros(0, dtype=np.int64), np.zeros(len(job.tiers)), np.zeros(0))
    out_meta = _score_part(pos_meta, job, none, id_name)[0]
    frames = [delayed(operator.getitem)(s, 0) for s in scored]
    total = _tree(delayed(_merge), [delayed(operator.getitem)(s, 1) for s in scored])
    by_group: list = []
    if groups is not None:
        by_group = [
            _tree(delayed(_merge), [delayed(operator.getitem)(s, 2) for s in scored]),
            _tree(delayed(_add), [delayed(operator.getitem)(s, 3) for s in scored]),
        ]
        if job.method == "simulate":
            by_group.append(_tree(delayed(_merge), [f[3] for f in firsts]))
    # one graph: the chunk shuffle runs once
    frames, total, expected_total, member, by_group = dask.persist(
        frames, total, expected_total, member, by_group
    )
    customers = dd.from_delayed(frames, meta=out_meta, verify_meta=False)
    sums, expected_sums, (_, cuts, _), by_group = dask.compute(
        total, expected_total, member, by_group
    )

    settings = {
        **job.settings, "n_customers": n, "engine": "dask",
        "npartitions": int(npartitions), "chunk_size": job.chunk,
    }  # fmt: skip
    acc = Accumulator(0, job.S, job.tiers)
    acc.sums, acc.expected_sums = sums, expected_sums
    acc.set_tiers(np.zeros(0, dtype=np.int64), cuts)
    if groups is not None:
        acc.set_groups(GroupCodes(np.zeros(0, dtype=np.int64), groups[1], by))
        acc.group_sums, acc.group_counts = by_group[0], by_group[1]
        if job.method == "simulate":
            acc.group_expected = by_group[2]
    ids = pd.Index([], name=id_name)
    return acc.result(ids, job, settings, cls=DistributedValue, customers=customers)
