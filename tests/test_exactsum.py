"""Exact, order-independent per-draw sums (clvkit.utils.exactsum)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clvkit.utils.exactsum import ExactSum, exact_sum


def _wide(rng: np.random.Generator, n: int) -> np.ndarray:
    """Values over the whole exponent range, both signs, with exact cancellations."""
    x = rng.standard_normal(n) * 10.0 ** rng.integers(-300, 300, n)
    return np.concatenate([x, -x[: n // 3], rng.lognormal(3, 2, n)])


@pytest.mark.parametrize("seed", range(5))
def test_matches_fsum_and_ignores_order_and_chunking(seed):
    rng = np.random.default_rng(seed)
    x = _wide(rng, 5000)
    expected = math.fsum(x)
    assert exact_sum(x) == expected
    shuffled = x[rng.permutation(x.size)]
    assert exact_sum(shuffled) == expected
    # chunks of uneven sizes, merged in a random order
    cuts = np.sort(rng.choice(np.arange(1, x.size), 7, replace=False))
    parts = []
    for piece in np.split(shuffled, cuts):
        acc = ExactSum(1)
        acc.add(piece[None, :])
        parts.append(acc)
    total = ExactSum(1)
    for i in rng.permutation(len(parts)):
        total.merge(parts[i])
    assert total.result()[0, 0] == expected
    # the float sum does depend on the order (why the exact sum is needed)
    assert len({float(np.sum(x[rng.permutation(x.size)])) for _ in range(20)}) > 1


def test_rows_are_independent_sums():
    rng = np.random.default_rng(1)
    x = rng.lognormal(2, 3, (50, 3000)) * rng.choice([-1, 1], (50, 3000))
    acc = ExactSum(50)
    acc.add(x[:, :1234])
    acc.add(x[:, 1234:])
    got = acc.result()[:, 0]
    assert np.array_equal(got, [math.fsum(r) for r in x])
    assert np.array_equal(exact_sum(x, axis=1), got)
    assert np.array_equal(exact_sum(x.T, axis=0), got)


def test_rounding_edge_cases():
    tiny = 5e-324
    assert exact_sum(np.array([tiny] * 3)) == 3 * tiny  # subnormals are exact
    assert exact_sum(np.array([1.0, 2.0**-53])) == 1.0  # a tie rounds to even (down)
    assert exact_sum(np.array([1.0 + 2.0**-52, 2.0**-53])) == 1.0 + 2.0**-51  # ... or up
    assert exact_sum(np.array([1.0, 2.0**-53, 2.0**-200])) == 1.0 + 2.0**-52  # sticky bit
    assert exact_sum(np.array([1e308, 1e308])) == math.inf  # overflow after exact addition
    assert exact_sum(np.array([1e308, 1e308, -1e308])) == 1e308  # no intermediate overflow
    assert exact_sum(np.array([0.0, -0.0])) == 0.0
    assert exact_sum(np.zeros(0)) == 0.0
    x = np.full(100_000, 0.1)
    assert exact_sum(x) == math.fsum(x) != float(np.cumsum(x)[-1])  # a running sum drifts


def test_non_finite_values_win_as_in_a_float_sum():
    assert exact_sum(np.array([1.0, math.inf, 2.0])) == math.inf
    assert exact_sum(np.array([-math.inf, 1.0])) == -math.inf
    assert math.isnan(exact_sum(np.array([math.inf, -math.inf])))
    assert math.isnan(exact_sum(np.array([1.0, math.nan])))


def test_tiered_sums_counts_and_ties():
    rng = np.random.default_rng(2)
    x = rng.lognormal(0, 1, (40, 500))
    x[:, :5] = 1.0  # ties at a cut go to the lower tier
    cuts = np.tile([3.0, 1.0], (40, 1))  # decreasing: tier 0 is > 3, tier 1 in (1, 3]
    acc = ExactSum(40, 3)
    hits = acc.add_tiered(x, cuts)
    tier = np.where(x > 3.0, 0, np.where(x > 1.0, 1, 2))
    assert np.array_equal(hits, np.stack([(tier == k).sum(0) for k in range(3)], axis=1))
    assert np.array_equal(acc.counts, np.stack([(tier == k).sum(1) for k in range(3)], axis=1))
    sums = acc.result()
    for s in range(40):
        for k in range(3):
            assert sums[s, k] == math.fsum(x[s][tier[s] == k])
    assert np.array_equal(acc.total(), [math.fsum(r) for r in x])
    assert (tier[:, :5] == 2).all()


def test_weighted_columns_equal_repeated_columns():
    """A column of weight w gives the sums and counts of w copies (the value layer sums each
    distinct customer once per customer sharing it); weights above a bin's 1,023 split."""
    rng = np.random.default_rng(5)
    x = _wide(rng, 300)[None, :].repeat(3, axis=0) * np.array([[1.0], [-0.5], [3.0]])
    x[1, 7] = math.inf
    w = rng.integers(0, 40, x.shape[1])
    w[:3], w[7] = [0, 1, 5000], 3  # none, once, several flushes; the inf 3 times
    cuts = np.tile([1e10, 0.0], (3, 1))
    expanded = np.repeat(x, w, axis=1)
    ref = ExactSum(3, 3)
    ref_hits = ref.add_tiered(expanded, cuts)
    acc = ExactSum(3, 3)
    hits = acc.add_tiered(x, cuts, weights=w)
    assert np.array_equal(acc.state, ref.state)
    assert np.array_equal(acc.counts, ref.counts)
    assert np.array_equal(acc.result(), ref.result(), equal_nan=True)
    assert acc.total()[1] == math.inf  # w copies of inf
    assert np.array_equal(np.add.reduceat(ref_hits, np.r_[0, np.cumsum(w)[:-1]])[w > 0],
                          hits[w > 0])  # fmt: skip
    assert hits[0].sum() == 0 and acc.counts.sum() == 3 * w.sum()
    for s in (0, 2):
        assert acc.total()[s] == math.fsum(expanded[s])
    with pytest.raises(ValueError, match="weights must be"):
        acc.add_tiered(x, cuts, weights=-w)


def test_grouped_columns_equal_forced_tiers():
    """add_grouped (each column to its fixed group, optionally weighted) gives the sums and
    counts of add_tiered with cuts forcing each column's group, in one pass."""
    rng = np.random.default_rng(6)
    x = _wide(rng, 200)[None, :] * rng.lognormal(0, 1, (5, 1))
    groups = rng.integers(0, 3, x.shape[1])
    w = rng.integers(1, 4, x.shape[1])
    ref = ExactSum(5, 3)
    for k in range(3):
        forced = np.full((5, 2), -np.inf)
        forced[:, :k] = np.inf
        keep = groups == k
        ref.add_tiered(np.repeat(x[:, keep], w[keep], axis=1), forced)
    acc = ExactSum(5, 3)
    hits = acc.add_grouped(x, groups, w, block=2, pmap=lambda fn, it: [fn(i) for i in it])
    assert np.array_equal(acc.state, ref.state) and np.array_equal(acc.counts, ref.counts)
    assert np.array_equal(hits, 5 * w[:, None] * (groups[:, None] == np.arange(3)))
    assert acc.result()[0, 1] == math.fsum(np.repeat(x[0, groups == 1], w[groups == 1]))
    with pytest.raises(ValueError, match="groups must be"):
        acc.add_grouped(x, groups + 1)


def test_shape_errors():
    acc = ExactSum(3, 2)
    with pytest.raises(ValueError, match="values must have shape"):
        acc.add(np.zeros((2, 4)))
    with pytest.raises(ValueError, match="cuts must have shape"):
        acc.add_tiered(np.zeros((3, 4)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="cannot merge"):
        acc.merge(ExactSum(3, 1))


finite = st.floats(allow_nan=False, allow_infinity=False)


@settings(max_examples=300, deadline=None)
@given(st.lists(finite, max_size=60), st.randoms(use_true_random=False))
def test_property_equals_fsum_in_any_order(values, rnd):
    x = np.array(values, dtype=np.float64)
    try:
        expected = math.fsum(values)
    except OverflowError:  # fsum's partial sums overflowed; the exact sum is out of range
        expected = None
    got = exact_sum(x)
    if expected is not None:
        assert got == expected
    shuffled = list(values)
    rnd.shuffle(shuffled)
    again = exact_sum(np.array(shuffled, dtype=np.float64))
    assert again == got or (math.isnan(again) and math.isnan(got))
