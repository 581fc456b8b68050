"""Exactly rounded, order-independent sums of float64 values, vectorized over rows (draws).

Customer equity is a per-draw sum over millions of customers. A float sum depends on the order
and grouping of its terms, so chunking, threads or Dask partitions would change its last bits.
Here each sum is kept *exactly*, as a fixed-point integer in units of 2**-1074 (the smallest
subnormal), split into ``K = 67`` signed 64-bit limbs of 32 bits each (a "superaccumulator",
as in R. Neal, "Fast exact summation using small and large superaccumulators", 2015). Integer
addition is associative, so any order, chunking or merge tree gives the same integer, and
:meth:`ExactSum.result` rounds it once, to nearest with ties to even: the float nearest the
exact sum (what :func:`math.fsum` returns), the same bits whatever the partitioning.

Adding a value costs a few integer operations (numba, no GIL): its 53-bit mantissa is added
to an int64 bin for its sign and exponent (a bin holds 1,023 of them), and the used bins move
to the limbs every 1,023 values (each move adds < 2**32 to three limbs; carries are propagated
once per row and call). Infinities and NaNs are summed separately (their float
sum does not depend on order either) and win over the finite part, as in a float sum.

Each accumulator row can hold several *groups* (value tiers): :meth:`ExactSum.add_tiered`
sends each value to the group given by per-row decreasing cut points, so the total, tier sums
and tier counts come out of one pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from clvkit.utils.numba_cache import njit

__all__ = ["ExactSum", "exact_sum"]

K = 67  # 32-bit limbs: bits 0 .. 2143 in units of 2**-1074 (2**1024 needs bit 2098)


@njit(nogil=True)
def _normalize(acc):
    """Propagate carries: limbs 0 .. K-2 end in [0, 2**32), the top limb keeps the sign."""
    for k in range(acc.shape[0] - 1):
        carry = acc[k] >> 32  # arithmetic shift: floor division by 2**32
        acc[k] -= carry << 32
        acc[k + 1] += carry


@njit(nogil=True)
def _normalize_all(state):
    for s in range(state.shape[0]):
        for g in range(state.shape[1]):
            _normalize(state[s, g])


@njit(nogil=True)
def _add_int(acc, total, key):
    """Add ``total * 2**(pos - 1074)`` (``total`` < 2**63, sign and ``pos`` from the float key
    ``key`` = sign and biased exponent bits) to the limbs ``acc``; each limb gets < 2**32."""
    biased = key & 0x7FF
    pos = biased - 1 if biased > 0 else 0  # lowest mantissa bit sits at 2**(pos - 1074)
    i = pos >> 5
    off = pos & 31
    p0 = (total << off) & 0xFFFFFFFF
    rest = total >> (32 - off)  # < 2**62
    p1 = rest & 0xFFFFFFFF
    p2 = rest >> 32
    if key >> 11:
        acc[i] -= p0
        acc[i + 1] -= p1
        acc[i + 2] -= p2
    else:
        acc[i] += p0
        acc[i + 1] += p1
        acc[i + 2] += p2


@njit(nogil=True)
def _flush(groups, bins, used, n_used):
    """Move the used bins into the limbs ``groups[t]`` and clear them."""
    for u in range(n_used):
        t = used[u] // 4096
        key = used[u] % 4096
        _add_int(groups[t], bins[t, key], key)
        bins[t, key] = 0


@njit(nogil=True)
def _add_tiered(state, special, counts, col_counts, values, bits, cuts, weights, groups):
    """Add ``values[s, j]`` ``weights[j]`` times (an empty ``weights``: once) to ``state[s,
    tier]``; tier = ``groups[j]`` if ``groups`` is not empty, else the first k with ``values[s,
    j] > cuts[s, k]`` (the cuts must not increase in k), else the last group. ``counts[s,
    tier]`` and ``col_counts[j, tier]`` count (weighted).

    Per row, mantissas are first summed exactly per (group, sign and exponent) in int64 bins,
    which hold 1,023 mantissas of < 2**53; every 1,023 values the used bins move to the limbs
    (< 2**32 per limb each): a few integer operations per value. A value of weight w adds
    ``w`` mantissas, in parts that keep a bin below 1,023 of them: the same integer as adding
    the value ``w`` times.
    """
    weighted = weights.size > 0
    fixed = groups.size > 0
    S, m = values.shape
    n_cuts = cuts.shape[1]
    n_groups = state.shape[1]
    bins = np.zeros((n_groups, 4096), dtype=np.int64)
    used = np.empty(n_groups * 4096, dtype=np.int64)
    for s in range(S):
        n_used = 0
        since = 0
        for j in range(m):
            v = values[s, j]
            if fixed:
                t = groups[j]
            else:
                t = 0  # branch-free: the cuts decrease, so the tier is the number of cuts >= v
                for k in range(n_cuts):
                    t += 0 if v > cuts[s, k] else 1
                if t >= n_groups:
                    t = n_groups - 1
            w = weights[j] if weighted else 1
            counts[s, t] += w
            col_counts[j, t] += w
            b = bits[s, j]
            if (b & 0x7FFFFFFFFFFFFFFF) == 0 or w == 0:  # +0.0 or -0.0 (or no weight)
                continue
            key = (b >> 52) & 0xFFF
            if (key & 0x7FF) == 0x7FF:  # inf or nan
                special[s, t] += v  # once is as w times: inf + inf = inf, nan stays
                continue
            mant = b & 0xFFFFFFFFFFFFF
            if key & 0x7FF:
                mant |= 0x10000000000000  # implicit leading bit of a normal number
            while w > 0:
                c = min(w, 1023 - since)
                if bins[t, key] == 0:  # a nonzero value leaves its bin nonzero
                    used[n_used] = t * 4096 + key
                    n_used += 1
                bins[t, key] += mant * c
                since += c
                w -= c
                if since == 1023:
                    _flush(state[s], bins, used, n_used)
                    n_used = 0
                    since = 0
        _flush(state[s], bins, used, n_used)
        for g in range(n_groups):
            _normalize(state[s, g])


@njit(nogil=True)
def _bits_at(acc, lo, n):
    """The ``n`` (<= 62) bits of a non-negative normalized accumulator from bit ``lo`` up."""
    out = np.int64(0)
    mask = (np.int64(1) << n) - 1
    for k in range(acc.shape[0]):
        c = acc[k]
        if c == 0:
            continue
        sh = 32 * k - lo
        if sh >= 0:
            part = (c << sh) & mask if sh < 63 else np.int64(0)
        else:
            part = (c >> (-sh)) & mask if -sh < 63 else np.int64(0)
        out |= part
    return out


@njit(nogil=True)
def _any_below(acc, lo):
    """Whether any bit below bit ``lo`` is set."""
    for k in range(acc.shape[0]):
        base = 32 * k
        if base >= lo:
            break
        c = acc[k]
        width = lo - base
        if width < 63:
            c &= (np.int64(1) << width) - 1
        if c != 0:
            return True
    return False


@njit(nogil=True)
def _round(acc_in):
    """The float nearest the accumulator's exact value (ties to even)."""
    acc = acc_in.copy()
    _normalize(acc)
    negative = acc[acc.shape[0] - 1] < 0
    if negative:
        for k in range(acc.shape[0]):
            acc[k] = -acc[k]
        _normalize(acc)
    h = -1
    for k in range(acc.shape[0] - 1, -1, -1):
        if acc[k] != 0:
            h = k
            break
    if h < 0:
        return 0.0
    top = acc[h]
    nb = 0
    while top > 0:
        top >>= 1
        nb += 1
    B = 32 * h + nb - 1  # highest set bit
    if B <= 52:  # fewer than 54 bits: exactly representable (subnormal or small normal)
        value = math.ldexp(float(_bits_at(acc, 0, B + 1)), -1074)
    else:
        lo = B - 52
        mant = _bits_at(acc, lo, 53)
        if _bits_at(acc, lo - 1, 1) and ((mant & 1) or _any_below(acc, lo - 1)):
            mant += 1
        value = math.ldexp(float(mant), lo - 1074) if lo - 1074 <= 971 else math.inf
    return -value if negative else value


@njit(nogil=True)
def _round_all(state, special, out):
    for s in range(state.shape[0]):
        for g in range(state.shape[1]):
            sp = special[s, g]
            out[s, g] = sp if sp != 0.0 or sp != sp else _round(state[s, g])


class ExactSum:
    """Exact per-row sums, in ``groups`` groups per row; mergeable across chunks and processes.

    Parameters
    ----------
    rows : int
        Number of independent sums (e.g. posterior draws).
    groups : int
        Sums per row (e.g. value tiers); :meth:`add` uses group 0.

    Examples
    --------
    The float sum depends on the order; the exact sum does not:

    >>> import numpy as np
    >>> x = np.array([[1e16, 1.0, -1e16, 1.0]])
    >>> float(x.sum()), float(x[:, ::-1].sum())
    (1.0, 0.0)
    >>> acc = ExactSum(1)
    >>> acc.add(x)
    >>> float(acc.result()[0, 0])
    2.0
    """

    def __init__(self, rows: int, groups: int = 1) -> None:
        self.state = np.zeros((rows, groups, K), dtype=np.int64)
        self.special = np.zeros((rows, groups))
        self.counts = np.zeros((rows, groups), dtype=np.int64)

    @property
    def shape(self) -> tuple[int, int]:
        return self.special.shape

    def add(self, values: np.ndarray) -> None:
        """Add ``values`` of shape ``(rows, m)`` to group 0 of each row."""
        self.add_tiered(values, np.zeros((self.shape[0], 0)))

    def add_grouped(
        self,
        values: np.ndarray,
        groups: np.ndarray,
        weights: np.ndarray | None = None,
        pmap: Callable[[Callable[[int], Any], Iterable[int]], list] | None = None,
        block: int = 256,
    ) -> np.ndarray:
        """Add column ``j`` of ``values (rows, m)`` to group ``groups[j]`` of every row
        (``weights[j]`` times with ``weights``), in one pass: the sums of
        :meth:`add_tiered` with cuts forcing each column's group. Returns the weighted
        ``(m, groups)`` counts."""
        groups = np.ascontiguousarray(groups, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        if groups.shape != values.shape[1:] or (
            groups.size and not (0 <= groups.min() and groups.max() < self.shape[1])
        ):
            raise ValueError(f"groups must be {values.shape[1:]} indices below {self.shape[1]}")
        return self._add(values, np.zeros((self.shape[0], 0)), pmap, block, weights, groups)

    def add_tiered(
        self,
        values: np.ndarray,
        cuts: np.ndarray,
        pmap: Callable[[Callable[[int], Any], Iterable[int]], list] | None = None,
        block: int = 256,
        weights: np.ndarray | None = None,
    ) -> np.ndarray:
        """Add ``values (rows, m)``: a value above ``cuts[s, k]`` (decreasing in ``k``) and not
        above an earlier cut goes to group ``k``, the rest to the last group.

        Returns the ``(m, groups)`` count of rows in which each column fell in each group.
        With ``pmap`` (a thread pool's map), blocks of ``block`` rows run through it: rows are
        independent sums, so the result is the same. With ``weights`` (``(m,)`` non-negative
        integers), column ``j`` counts ``weights[j]`` times: the same sums and counts as adding
        it that many times (e.g. once per customer sharing a distinct column).
        """
        return self._add(values, cuts, pmap, block, weights, None)

    def _add(self, values, cuts, pmap, block, weights, groups) -> np.ndarray:
        """:meth:`add_tiered`; with ``groups``, column ``j`` goes to group ``groups[j]``."""
        values = np.asarray(values, dtype=np.float64)
        cuts = np.ascontiguousarray(cuts, dtype=np.float64)
        if values.ndim != 2 or values.shape[0] != self.shape[0]:
            raise ValueError(f"values must have shape ({self.shape[0]}, m), got {values.shape}")
        if cuts.ndim != 2 or cuts.shape[0] != self.shape[0] or cuts.shape[1] >= self.shape[1]:
            raise ValueError(f"cuts must have shape ({self.shape[0]}, < groups), got {cuts.shape}")
        if weights is None:
            weights = np.zeros(0, dtype=np.int64)
        else:
            weights = np.ascontiguousarray(weights, dtype=np.int64)
            if weights.shape != (values.shape[1],) or (weights < 0).any():
                raise ValueError(
                    f"weights must be {values.shape[1]} non-negative integers, got {weights!r}"
                )
        groups = np.zeros(0, dtype=np.int64) if groups is None else groups
        if pmap is None:  # one block, on this thread
            pmap, block = (lambda fn, items: [fn(i) for i in items]), max(self.shape[0], 1)

        def rows(lo: int) -> np.ndarray:
            hi = lo + block
            col_counts = np.zeros((values.shape[1], self.shape[1]), dtype=np.int64)
            v = np.ascontiguousarray(values[lo:hi])  # a copy per block (none if contiguous)
            _add_tiered(
                self.state[lo:hi], self.special[lo:hi], self.counts[lo:hi], col_counts, v,
                v.view(np.int64), cuts[lo:hi], weights, groups,
            )  # fmt: skip
            return col_counts

        return np.sum(pmap(rows, range(0, max(self.shape[0], 1), block)), axis=0)

    def merge(self, other: ExactSum) -> ExactSum:
        """Add another accumulator's sums into this one (exact); returns ``self``."""
        if other.shape != self.shape:
            raise ValueError(f"cannot merge shapes {other.shape} and {self.shape}")
        self.state += other.state  # normalized limbs are < 2**32: no overflow
        self.special += other.special
        self.counts += other.counts
        _normalize_all(self.state)
        return self

    def result(self) -> np.ndarray:
        """Correctly rounded sums, ``(rows, groups)``."""
        out = np.empty(self.shape)
        _round_all(self.state, self.special, out)
        return out

    def total(self) -> np.ndarray:
        """Correctly rounded sums over all groups of each row, ``(rows,)``."""
        both = ExactSum(self.shape[0], 1)
        both.state[:, 0] = self.state.sum(axis=1)  # a few groups of < 2**32 limbs: no overflow
        both.special[:, 0] = self.special.sum(axis=1)
        _normalize_all(both.state)
        return both.result()[:, 0]


def exact_sum(values: np.ndarray, axis: int = -1) -> np.ndarray | float:
    """Correctly rounded sum of float64 ``values`` along ``axis`` (what :func:`math.fsum` gives).

    Examples
    --------
    >>> import math
    >>> x = [0.1] * 10
    >>> exact_sum(np.array(x)) == math.fsum(x), sum(x) == math.fsum(x)
    (True, False)
    """
    a = np.moveaxis(np.asarray(values, dtype=np.float64), axis, -1)
    lead = a.shape[:-1]
    flat = a.reshape(-1, a.shape[-1]) if a.size else np.zeros((max(1, math.prod(lead)), 0))
    acc = ExactSum(flat.shape[0])
    acc.add(flat)
    out = acc.result()[:, 0].reshape(lead)
    return float(out) if out.ndim == 0 else out
