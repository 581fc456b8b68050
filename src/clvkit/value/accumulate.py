"""Accumulating chunks of CLV draws: per-draw tier cuts, exact per-draw equity and tier sums,
per-customer summaries, and the :class:`~clvkit.value.result.CustomerValue` they make.

Shared by :func:`clvkit.customer_value` and :mod:`clvkit.distributed` (whose partitions each
hold an :class:`Accumulator` and merge their exact sums), so both give the same bits.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from clvkit.errors import ClvkitError
from clvkit.models.contract import DRAW_BLOCK, PMap, serial_map
from clvkit.utils.exactsum import ExactSum
from clvkit.value.result import STORED_PROBS, CustomerValue

__all__ = [
    "DEFAULT_TIERS",
    "QUANTILE_BLOCK",
    "Accumulator",
    "check_tiers",
    "column_quantiles",
    "tier_cuts",
]

#: Value tiers by rank within each draw: name -> cumulative top share (the last must be 1).
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


def tier_cuts(values: np.ndarray, shares: list[float], pmap: PMap = serial_map) -> np.ndarray:
    """Per-draw cuts ``(S, n_tiers - 1)``: a value above cut j is in tier j or higher.

    Cut j is the (k_j + 1)-th largest value, k_j = ceil(share_j n), so at most k_j customers
    are above it (ties at a cut fall to the lower tier). Blocks of draws go through ``pmap``.
    """
    S, n = values.shape
    ks = [int(np.ceil(share * n - 1e-9)) for share in shares[:-1]]
    kth = sorted({n - k - 1 for k in ks if k < n})
    cuts = np.full((S, len(ks)), -np.inf)
    cols = [j for j, k in enumerate(ks) if k < n]

    def block(lo: int) -> None:
        part = np.partition(values[lo : lo + DRAW_BLOCK], kth, axis=1)  # one copy, all cuts
        for j in cols:
            cuts[lo : lo + DRAW_BLOCK, j] = part[:, n - ks[j] - 1]

    if kth:
        pmap(block, range(0, S, DRAW_BLOCK))
    return cuts


def column_quantiles(values: np.ndarray, levels: list[float]) -> np.ndarray:
    """Quantiles over axis 0 (numpy's default linear method) from one sort: ``(levels, n)``."""
    srt = np.ascontiguousarray(values.T)  # each customer's draws contiguous: a fast row sort
    srt.sort(axis=1)
    h = (srt.shape[1] - 1) * np.asarray(levels)
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, srt.shape[1] - 1)
    return (srt[:, lo] + (h - lo)[None, :] * (srt[:, hi] - srt[:, lo])).T


class Accumulator:
    """Per-customer summaries and exact per-draw tier sums of ``n`` customers, ``S`` draws.

    ``chunk_*`` methods are pure (run them on worker threads); ``add_*`` store their results.
    With ``keep`` the full ``(S, n)`` CLV array (and with ``simulate`` the purchase counts)
    is kept.
    """

    def __init__(
        self,
        n: int,
        S: int,
        tiers: Mapping[str, float],
        keep: bool = False,
        simulate: bool = False,
        pmap: PMap = serial_map,
    ) -> None:
        self.pmap = pmap  # a map over threads for blocks of one chunk
        self.n_t = len(tiers)
        self.S = S
        self.sums = ExactSum(S, self.n_t)  # per-draw equity of each tier, exact (any order)
        self.stats = {k: np.empty(n) for k in ("mean", "median", "p_alive", "purchases", "spend")}
        self.tier_p = np.empty((n, self.n_t))
        self.q = {p: np.empty((2, n)) for p in STORED_PROBS if p != 0.5}
        self.q[0.5] = np.empty((2, n))
        self.clv = np.empty((S, n)) if keep else None
        self.cnt = np.empty((S, n), dtype=np.int64) if keep and simulate else None

    def chunk_tiers(self, clv, cuts):
        """A chunk's exact per-draw tier sums and counts (an :class:`ExactSum`) and its
        customers' tier probabilities ``(chunk, tiers)``. Pure (thread-safe).

        A value above cut j (the cuts decrease) and no earlier cut is in tier j; ties at a cut
        fall to the lower tier. The sums are exact integers until rounded in :meth:`result`,
        so adding chunks in any order (or on any Dask partition) gives the same bits.
        """
        part = ExactSum(self.S, self.n_t)
        hits = part.add_tiered(clv, cuts, self.pmap, DRAW_BLOCK)
        return part, hits / clv.shape[0]

    def add_tiers(self, idx, parts):
        """Add a chunk's :meth:`chunk_tiers` (exact: any order gives the same sums)."""
        part, t_p = parts
        self.sums.merge(part)
        self.tier_p[idx] = t_p

    def chunk_stats(self, clv, means, inverse=None):
        """Per-customer summaries over draws of one chunk (pure, thread-safe); ``means`` are
        the chunk's mean P(alive), purchases, spend and CLV (:meth:`clvkit.value.job.ChunkRunner.distinct`), and
        ``inverse`` maps customers to the columns of ``clv`` and ``means`` (``None``: one each)."""
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

    def table(self, ids: pd.Index, tiers: Mapping[str, float]) -> pd.DataFrame:
        """Per-customer table: mean, median, P(alive), expected purchases and spend, the most
        probable tier (ties go to the higher tier) and each tier's probability."""
        names = list(tiers)
        st = self.stats
        top = self.tier_p.argmax(axis=1)
        return pd.DataFrame(
            {
                "mean": st["mean"], "median": st["median"], "p_alive": st["p_alive"],
                "expected_purchases": st["purchases"], "expected_spend": st["spend"],
                "tier": pd.Categorical.from_codes(top, categories=names, ordered=True),
                **{f"p_{t}": self.tier_p[:, j] for j, t in enumerate(names)},
            },
            index=ids.copy(),
        )  # fmt: skip

    def wide_table(self, ids: pd.Index, tiers: Mapping[str, float]) -> pd.DataFrame:
        """:meth:`table` with ``lower_P`` and ``upper_P`` after the mean and median, for each
        stored interval probability P (50, 80, 90, 95)."""
        table = self.table(ids, tiers)
        at = 2
        for p in STORED_PROBS:
            lo, hi = self.q[p]
            table.insert(at, f"lower_{round(p * 100)}", lo)
            table.insert(at + 1, f"upper_{round(p * 100)}", hi)
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

        return cls(
            per_draw(self.sums.total()).rename("equity"),
            per_tier(self.sums.result()).rename("tier_equity"),
            per_tier(self.sums.counts.astype(float)).rename("tier_count"),
            per_draw(job.new).rename("new_customer_clv"),
            settings,
            self.table(ids, tiers),
            {p: tuple(q) for p, q in self.q.items()},
            full(self.clv, "clv"),
            full(self.cnt, "purchases"),
            dict(tiers),
            **extra,
        )
