"""Accumulating chunks of CLV draws: per-draw tier cuts, exact per-draw equity and tier sums,
per-customer summaries, and the :class:`~clvkit.value.result.CustomerValue` they make.

Shared by :func:`clvkit.customer_value` and :mod:`clvkit.distributed` (whose partitions each
hold an :class:`Accumulator` and merge their exact sums), so both give the same bits.
"""

from __future__ import annotations

import itertools
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from clvkit.errors import ClvkitError, bad_rows_error
from clvkit.models.contract import DRAW_BLOCK, PMap, serial_map
from clvkit.utils.exactsum import ExactSum
from clvkit.value.result import STORED_PROBS, CustomerValue, prob_label

__all__ = [
    "DEFAULT_TIERS",
    "FEW_GROUPS",
    "QUANTILE_BLOCK",
    "Accumulator",
    "GroupCodes",
    "check_tiers",
    "column_quantiles",
    "group_codes",
    "group_levels",
    "grouped_sum",
    "plain",
    "range_counts",
    "tier_membership",
]

#: Value tiers by expected-CLV rank: name -> cumulative top share (the last must be 1).
DEFAULT_TIERS: dict[str, float] = {"platinum": 0.01, "gold": 0.05, "iron": 0.20, "lead": 1.0}

QUANTILE_BLOCK = 128  # customers per quantile task (their draws sorted on one thread)


def check_tiers(tiers: Mapping[str, float]) -> dict[str, float]:
    """Validated tiers: names -> increasing cumulative top shares in (0, 1], ending at 1."""
    out = {str(k): float(v) for k, v in dict(tiers).items()}
    shares = list(out.values())
    if (
        not out
        or shares[-1] != 1.0
        or any(not 0 < s <= 1 for s in shares)
        or any(b <= a for a, b in itertools.pairwise(shares))
    ):
        raise ClvkitError(
            f"argument 'tiers' must map names to increasing cumulative top shares in (0, 1] "
            f"ending at 1, got {tiers!r}. Suggestion: {DEFAULT_TIERS}."
        )
    return out


def tier_membership(expected: np.ndarray, shares: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Fixed tiers from the posterior-mean expected CLV of ``n`` customers (canonical order).

    Customers are ranked by ``expected``, largest first; ties keep the canonical order (the
    purchase model's order keys, then customer id: identical customers rank by id). Tier j
    holds the ranks ``[ceil(share_{j-1} n), ceil(share_j n))``.

    Returns ``(member, cuts)``: each customer's tier index ``(n,)`` and each tier's cut
    ``(n_tiers,)``, the lowest expected CLV among its members (an empty tier takes the cut
    above it). Tier j's CLV range is ``[cuts[j], cuts[j - 1])`` (``cuts[-1] = +inf``); the
    last tier's is everything below ``cuts[-2]``.

    Examples
    --------
    >>> member, cuts = tier_membership(np.array([5.0, 1.0, 9.0, 1.0]), [0.25, 1.0])
    >>> member.tolist(), cuts.tolist()
    ([1, 1, 0, 1], [9.0, 1.0])
    """
    expected = np.asarray(expected, dtype=np.float64)
    n = expected.size
    rank = np.argsort(-expected, kind="stable")
    ks = np.array([int(np.ceil(share * n - 1e-9)) for share in shares[:-1]] + [n])
    member = np.empty(n, dtype=np.int64)
    member[rank] = np.searchsorted(ks, np.arange(n), side="right")
    cuts = np.empty(len(shares))
    prev = np.inf
    for j in range(len(shares)):
        hi = int(ks[j])
        lo = 0 if j == 0 else int(ks[j - 1])
        prev = float(expected[rank[hi - 1]]) if hi > lo else prev  # the tier's lowest value
        cuts[j] = prev
    return member, cuts


def range_counts(clv: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """``(m, n_tiers)``: per column of ``clv (S, m)``, the draws in each tier's CLV range
    (:func:`tier_membership`): at or above ``cuts[0]``, in ``[cuts[j], cuts[j - 1])``, ..., and
    below ``cuts[-2]`` for the last tier."""
    S, m = clv.shape
    above = np.empty((len(cuts) + 1, m), dtype=np.int64)  # draws >= each range's lower end
    above[0] = 0
    for j, c in enumerate(cuts[:-1]):
        above[j + 1] = np.count_nonzero(clv >= c, axis=0)
    above[-1] = S
    return np.diff(above, axis=0).T


def column_quantiles(values: np.ndarray, levels: list[float]) -> np.ndarray:
    """Quantiles over axis 0 (numpy's default linear method) from one sort: ``(levels, n)``."""
    srt = np.ascontiguousarray(values.T)  # each customer's draws contiguous: a fast row sort
    srt.sort(axis=1)
    h = (srt.shape[1] - 1) * np.asarray(levels)
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, srt.shape[1] - 1)
    return (srt[:, lo] + (h - lo)[None, :] * (srt[:, hi] - srt[:, lo])).T


@dataclass(frozen=True)
class GroupCodes:
    """Customers' groups: ``codes (n,)`` index ``levels`` (sorted); ``name`` labels them."""

    codes: np.ndarray
    levels: pd.Index
    name: Hashable


def plain(value: Any) -> Any:
    """A numpy scalar as its Python value (for error messages)."""
    return value.item() if isinstance(value, np.generic) else value


def group_codes(rfm: pd.DataFrame, by: Any, argument: str = "by") -> GroupCodes:
    """Each customer's group from ``by``: a column of ``rfm`` or a Series indexed by customer
    id (aligned to ``rfm``'s index; every customer needs one). Groups are the sorted distinct
    values (a categorical's categories that occur, in their order); a missing value is an
    error naming the column, the count and an example."""
    if isinstance(by, pd.Series):
        if by.index.has_duplicates:
            dup = by.index[by.index.duplicated()]
            raise bad_rows_error(
                f"index of argument {argument!r}", "is duplicated", len(dup), plain(dup[0]),
                "one group per customer id",
            )  # fmt: skip
        missing = ~rfm.index.isin(by.index)
        if missing.any():
            raise bad_rows_error(
                f"argument {argument!r}", "has no group for the customer", int(missing.sum()),
                {"customer_id": plain(rfm.index[np.flatnonzero(missing)[0]])},
                f"give {argument!r} a value for every customer id of 'rfm'", len(rfm),
            )  # fmt: skip
        values = by.reindex(rfm.index)
        name = by.name if by.name is not None else "group"
        what = f"argument {argument!r}"
    elif isinstance(by, Hashable) and by in rfm.columns:
        values, name, what = rfm[by], by, f"column {by!r} of 'rfm'"
    else:
        raise ClvkitError(
            f"argument {argument!r} must be a column of 'rfm' or a pandas Series indexed by "
            f"customer id, got {by!r}; 'rfm' has columns {list(rfm.columns)}. Suggestion: join "
            "the segments to the customer table by id, or pass by=series."
        )
    bad = values.isna().to_numpy()
    if bad.any():
        raise bad_rows_error(
            what, "has no group (missing value)", int(bad.sum()),
            {"customer_id": plain(rfm.index[np.flatnonzero(bad)[0]])},
            "fill the gaps with a level such as 'unknown'", len(rfm),
        )  # fmt: skip
    levels = group_levels(values, what)
    codes = levels.get_indexer(values)
    return GroupCodes(np.asarray(codes, dtype=np.int64), levels, name)


def group_levels(values: pd.Series, what: str = "argument 'by'") -> pd.Index:
    """The groups of ``values`` (no missing values): the sorted distinct values, or a
    categorical's categories that occur, in their order. The same for any subset holding every
    distinct value (so a partitioned table gets the levels of its distinct values)."""
    try:
        _, levels = pd.factorize(values, sort=True)
    except TypeError as exc:
        raise ClvkitError(
            f"{what} mixes values that cannot be ordered ({exc}). Suggestion: make the groups "
            "one type, e.g. text."
        ) from exc
    return pd.Index(list(levels))  # inferred from the values: one dtype on every route


#: Above this many groups, :func:`grouped_sum` sums one group at a time (bounded memory).
FEW_GROUPS = 8


def grouped_sum(
    clv: np.ndarray,
    codes: np.ndarray,
    n_groups: int,
    inverse: np.ndarray | None = None,
    pmap: PMap = serial_map,
) -> ExactSum:
    """Exact per-draw sums ``(S, n_groups)`` of a chunk's CLV by group: customer ``j`` of the
    chunk (column ``j`` of ``clv (S, m)``, or column ``inverse[j]`` when ``clv`` holds the
    distinct customers only) adds to group ``codes[j]``. A distinct column shared by several
    customers of one group is added once with that many as its weight (the same exact sums).

    With more than :data:`FEW_GROUPS` groups, each group's columns are summed on their own, so
    memory stays ``S x groups`` plus one chunk (not ``chunk x groups``).
    """
    S = clv.shape[0]
    part = ExactSum(S, n_groups)
    codes = np.asarray(codes, dtype=np.int64)
    weights = None
    if inverse is None:
        cols, groups = None, codes
    else:  # customers per (distinct column, group): usually one group per column
        d = clv.shape[1]
        code = np.asarray(inverse, dtype=np.int64) * n_groups + codes
        counts = np.bincount(code, minlength=d * n_groups)
        pairs = np.flatnonzero(counts)
        cols, groups, weights = pairs // n_groups, pairs % n_groups, counts[pairs]
        if cols.size == d:  # one group per column: no copy
            cols = None
    if n_groups <= FEW_GROUPS:
        values = clv if cols is None else clv[:, cols]
        part.add_grouped(values, groups, weights, pmap, DRAW_BLOCK)
        return part
    by_group = np.argsort(groups, kind="stable")
    edges = np.searchsorted(groups[by_group], np.arange(n_groups + 1))
    for g in np.flatnonzero(np.diff(edges)):
        sel = by_group[edges[g] : edges[g + 1]]
        sub = ExactSum(S, 1)
        take = sel if cols is None else cols[sel]
        sub.add_tiered(
            clv[:, take],
            np.zeros((S, 0)),
            pmap,
            DRAW_BLOCK,
            None if weights is None else weights[sel],
        )
        part.state[:, g], part.special[:, g], part.counts[:, g] = (
            sub.state[:, 0], sub.special[:, 0], sub.counts[:, 0],
        )  # fmt: skip
    return part


class Accumulator:
    """Per-customer summaries and exact per-draw sums of ``n`` customers, ``S`` draws.

    Two passes feed it. The expected pass (:meth:`chunk_expected`, :meth:`add_expected`)
    gives each customer's posterior-mean expected CLV and the exact per-draw expected equity;
    :meth:`set_tiers` then fixes tier membership from those means. The chosen method's pass
    (:meth:`chunk_stats`, :meth:`chunk_tiers`) gives per-customer summaries, each tier's exact
    per-draw equity by that membership and the membership probabilities.

    ``chunk_*`` methods are pure (run them on worker threads); ``add_*`` store their results.
    With ``keep`` the full ``(S, n)`` CLV array (and with ``simulate`` the purchase counts)
    is kept. ``probs`` are the central interval probabilities stored per customer.
    """

    def __init__(
        self,
        n: int,
        S: int,
        tiers: Mapping[str, float],
        keep: bool = False,
        simulate: bool = False,
        pmap: PMap = serial_map,
        probs: tuple[float, ...] = STORED_PROBS,
    ) -> None:
        self.pmap = pmap  # a map over threads for blocks of one chunk
        self.n_t = len(tiers)
        self.S = S
        self.sums = ExactSum(S, self.n_t)  # per-draw equity of each tier, exact (any order)
        self.expected_sums = ExactSum(S, 1)  # per-draw expected equity, exact
        keys = ("mean", "median", "p_alive", "purchases", "spend", "expected")
        self.stats = {k: np.empty(n) for k in keys}
        self.tier_p = np.empty((n, self.n_t))
        self.member = np.zeros(n, dtype=np.int64)
        self.cuts = np.full(self.n_t, np.nan)
        self.q = {float(p): np.empty((2, n)) for p in probs}
        self.clv = np.empty((S, n)) if keep else None
        self.cnt = np.empty((S, n), dtype=np.int64) if keep and simulate else None
        self.groups: GroupCodes | None = None  # customers' groups (:meth:`set_groups`)
        self.group_sums: ExactSum | None = None  # per-draw equity of each group, exact
        self.group_expected: ExactSum | None = None  # per-draw expected equity of each group
        self.group_counts: np.ndarray | None = None  # (groups, tiers) customers, when merged

    # -- groups (customer_value(..., by=...)) ---------------------------------------------------
    def set_groups(self, groups: GroupCodes) -> None:
        """Sum the customers' values by group too: exact per-draw sums ``(S, groups)`` of the
        method's CLV and of the expected CLV (memory: ``S x groups``, never ``S x n``)."""
        self.groups = groups
        self.group_sums = ExactSum(self.S, len(groups.levels))
        self.group_expected = ExactSum(self.S, len(groups.levels))

    def chunk_groups(self, clv, idx, inverse=None) -> ExactSum | None:
        """A chunk's exact per-draw sums by group (customers ``idx``; pure, thread-safe);
        ``None`` without groups."""
        if self.groups is None:
            return None
        g = self.groups
        return grouped_sum(clv, g.codes[idx], len(g.levels), inverse, self.pmap)

    def group_tier_counts(self, codes: np.ndarray, member: np.ndarray) -> np.ndarray:
        """``(groups, tiers)``: customers of each group in each tier (``codes`` and ``member``
        of the same customers)."""
        n_g, n_t = len(self.groups.levels), self.n_t
        flat = np.asarray(codes, dtype=np.int64) * n_t + np.asarray(member, dtype=np.int64)
        return np.bincount(flat, minlength=n_g * n_t).reshape(n_g, n_t)

    def add_groups(self, part: ExactSum | None, expected: bool = False) -> None:
        """Add a chunk's :meth:`chunk_groups` to the method's (or the expected) group sums."""
        if part is not None:
            (self.group_expected if expected else self.group_sums).merge(part)

    # -- pass 1: expected CLV ------------------------------------------------------------------
    def chunk_expected(self, clv, inverse=None) -> ExactSum:
        """A chunk's exact per-draw expected equity; ``clv (S, d)`` holds the distinct
        customers' expected CLV and ``inverse`` maps the chunk's customers to them."""
        part = ExactSum(self.S, 1)
        if inverse is None:
            part.add_tiered(clv, np.zeros((self.S, 0)), self.pmap, DRAW_BLOCK)
            return part

        def block(lo: int) -> None:  # expand a block of draws at a time (bounded memory)
            rows = slice(lo, lo + DRAW_BLOCK)
            sub = ExactSum(min(self.S, lo + DRAW_BLOCK) - lo, 1)
            sub.add(np.take(clv[rows], inverse, axis=1))
            part.state[rows], part.special[rows], part.counts[rows] = (
                sub.state, sub.special, sub.counts,
            )  # fmt: skip

        self.pmap(block, range(0, self.S, DRAW_BLOCK))
        return part

    def add_expected(self, idx, part: ExactSum | None, expected: np.ndarray) -> None:
        """Store a chunk's :meth:`chunk_expected` (None: not summed, as for the expected
        method, whose equity is the expected equity) and its customers' mean expected CLV."""
        if part is not None:
            self.expected_sums.merge(part)
        self.stats["expected"][idx] = expected

    def set_tiers(self, member: np.ndarray, cuts: np.ndarray) -> None:
        """Fix each customer's tier (``(n,)`` tier indices) and the tiers' cuts
        (:func:`tier_membership`)."""
        self.member = np.asarray(member, dtype=np.int64)
        self.cuts = np.asarray(cuts, dtype=np.float64)

    # -- pass 2: the chosen method -------------------------------------------------------------
    def chunk_tiers(self, clv, member, cuts, inverse=None):
        """A chunk's exact per-draw tier sums by fixed membership ``member`` (the chunk's
        customers' tier indices) as an :class:`ExactSum`, and its customers' membership
        probabilities ``(chunk, tiers)``: the share of draws whose CLV falls in each tier's
        range (``cuts``, :func:`tier_membership`). Pure (thread-safe).

        With ``inverse``, ``clv (S, d)`` holds the distinct customers' columns and ``inverse``
        maps the chunk's customers to them: each column is summed once per customer of each
        tier that shares it (exact weights, so the same sums as the expanded columns).

        The sums are exact integers until rounded in :meth:`result`, so adding chunks in any
        order (or on any Dask partition) gives the same bits.
        """
        S, n_t = self.S, self.n_t
        # customers per (distinct column, tier): usually one tier per column
        part = grouped_sum(clv, member, n_t, inverse, self.pmap)
        counts = np.concatenate(
            self.pmap(
                lambda lo: range_counts(clv[:, lo : lo + QUANTILE_BLOCK], cuts),
                range(0, clv.shape[1], QUANTILE_BLOCK),
            ),
            axis=0,
        ) if clv.shape[1] else np.zeros((0, n_t), dtype=np.int64)  # fmt: skip
        if inverse is not None:
            counts = counts[inverse]
        return part, counts / S

    def add_tiers(self, idx, parts):
        """Add a chunk's :meth:`chunk_tiers` (exact: any order gives the same sums)."""
        part, t_p = parts
        self.sums.merge(part)
        self.tier_p[idx] = t_p

    def chunk_stats(self, clv, means, inverse=None):
        """Per-customer summaries over draws of one chunk (pure, thread-safe); ``means`` are
        the chunk's mean P(alive), purchases, spend and CLV
        (:meth:`clvkit.value.job.ChunkRunner.distinct`), and ``inverse`` maps customers to
        the columns of ``clv`` and ``means`` (``None``: one each)."""
        levels = sorted({0.5} | {lv for p in self.q for lv in ((1 - p) / 2, (1 + p) / 2)})
        qs = np.concatenate(
            self.pmap(
                lambda lo: column_quantiles(clv[:, lo : lo + QUANTILE_BLOCK], levels),
                range(0, clv.shape[1], QUANTILE_BLOCK),
            ),
            axis=1,
        )
        if inverse is not None:
            means, qs = means[:, inverse], qs[:, inverse]
        qs = dict(zip(levels, qs, strict=True))
        return {
            "mean": means[3], "p_alive": means[0], "purchases": means[1],
            "spend": means[2], "median": qs[0.5],
            **{p: (qs[(1 - p) / 2], qs[(1 + p) / 2]) for p in self.q},
        }  # fmt: skip

    def add_stats(self, idx, stats, clv, purchases):
        """Store a chunk's :meth:`chunk_stats` (and the kept draws)."""
        for k in ("mean", "median", "p_alive", "purchases", "spend"):
            self.stats[k][idx] = stats[k]
        for p, arr in self.q.items():
            arr[0, idx], arr[1, idx] = stats[p]
        if self.clv is not None:
            self.clv[:, idx] = clv
        if self.cnt is not None:
            self.cnt[:, idx] = purchases

    def group_result(
        self, coords: Mapping[str, Any], shape: tuple[int, int], method: str, tiers: list[str]
    ) -> dict[str, Any]:
        """The group fields of :class:`CustomerValue`: ``group_equity`` and
        ``group_expected_equity`` ``(chain, draw, group)`` and the groups' customer and tier
        counts."""
        g = self.groups
        dims = ("chain", "draw", "group")
        gcoords = {**coords, "group": np.asarray(g.levels, dtype=object)}

        def per_group(a, name):
            return xr.DataArray(a.reshape((*shape, -1)), coords=gcoords, dims=dims, name=name)

        equity = per_group(self.group_sums.result(), "group_equity")
        expected = (
            equity.rename("group_expected_equity")
            if method == "expected"
            else per_group(self.group_expected.result(), "group_expected_equity")
        )
        counts = self.group_counts
        if counts is None:
            counts = self.group_tier_counts(g.codes, self.member)
        table = pd.DataFrame(counts, index=pd.Index(g.levels, name=g.name), columns=tiers)
        table.insert(0, "customers", counts.sum(axis=1))
        return {
            "group_equity": equity,
            "group_expected_equity": expected,
            "_group_counts": table,
        }

    def table(self, ids: pd.Index, tiers: Mapping[str, float]) -> pd.DataFrame:
        """Per-customer table: mean and median CLV of the method, the expected CLV (the tier
        ranking basis), P(alive), expected purchases and spend, the tier (fixed by expected
        CLV) and each tier's membership probability."""
        names = list(tiers)
        st = self.stats
        return pd.DataFrame(
            {
                "mean": st["mean"], "median": st["median"], "expected_clv": st["expected"],
                "p_alive": st["p_alive"], "expected_purchases": st["purchases"],
                "expected_spend": st["spend"],
                "tier": pd.Categorical.from_codes(self.member, categories=names, ordered=True),
                **{f"p_{t}": self.tier_p[:, j] for j, t in enumerate(names)},
            },
            index=ids.copy(),
        )  # fmt: skip

    def wide_table(self, ids: pd.Index, tiers: Mapping[str, float]) -> pd.DataFrame:
        """:meth:`table` with ``lower_P`` and ``upper_P`` after the mean and median, for each
        stored interval probability P (percent, e.g. ``lower_90``; ``lower_97.5`` for 0.975)."""
        table = self.table(ids, tiers)
        at = 2
        for p in sorted(self.q):
            lo, hi = self.q[p]
            table.insert(at, f"lower_{prob_label(p)}", lo)
            table.insert(at + 1, f"upper_{prob_label(p)}", hi)
            at += 2
        return table

    def result(
        self,
        ids: pd.Index,
        job: Any,
        settings: dict[str, Any],
        cls: type[CustomerValue] = CustomerValue,
        **extra: Any,
    ) -> CustomerValue:
        """The :class:`CustomerValue` (or subclass ``cls`` with fields ``extra``) of the
        accumulated customers ``ids``; ``job`` gives the draws' coords, the tiers and the new
        customer's value (a :class:`clvkit.value.job.ValueJob`)."""
        coords, tiers = job.coords, job.tiers
        names = list(tiers)
        shape = (coords["chain"].size, coords["draw"].size)
        dims = ("chain", "draw")
        tcoords = {**coords, "tier": names}

        def per_draw(a):
            return xr.DataArray(a.reshape(shape), coords=coords, dims=dims)

        def per_tier(a):
            return xr.DataArray(a.reshape((*shape, -1)), coords=tcoords, dims=(*dims, "tier"))

        def full(a, name):
            if a is None:
                return None
            cid = xr.DataArray(ids.to_numpy(), dims="customer_id")
            return xr.DataArray(
                a.reshape((*shape, -1)), dims=(*dims, "customer_id"), name=name,
                coords={**coords, "customer_id": cid},
            )  # fmt: skip

        equity = per_draw(self.sums.total()).rename("equity")
        expected = per_draw(self.expected_sums.result()[:, 0]).rename("expected_equity")
        if job.method == "expected":
            expected = equity.rename("expected_equity")  # the same draws
        if self.groups is not None:
            extra = {**self.group_result(coords, shape, job.method, names), **extra}
        return cls(
            equity,
            per_tier(self.sums.result()).rename("tier_equity"),
            per_tier(self.sums.counts.astype(np.int64)).rename("tier_count"),
            per_draw(job.new).rename("new_customer_clv"),
            settings,
            self.table(ids, tiers),
            {p: tuple(q) for p, q in self.q.items()},
            full(self.clv, "clv"),
            full(self.cnt, "purchases"),
            dict(tiers),
            expected,
            self.cuts.copy(),
            **extra,
        )
