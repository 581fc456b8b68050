"""Hypothesis properties of clvkit.models.bgnbd.predictions (invariants that hold for any valid input)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from clvkit.models.bgnbd.predictions import (
    bg_expected_purchases,
    bg_expected_purchases_between,
    bg_expected_purchases_new_customer,
    bg_probability_alive,
    bg_probability_alive_at,
    bg_probability_of_purchases,
)
from clvkit.models.gamma_gamma.predictions import (
    gg_expected_spend,
)

SETTINGS = settings(max_examples=60, deadline=None)

# Parameters log-uniform over [1e-3, 1e3]; customers with x <= 1000, T <= 1e4.
param = st.floats(-3.0, 3.0).map(lambda e: float(10.0**e))
params = st.tuples(param, param, param, param)


@st.composite
def customers(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = draw(st.integers(1, 6))
    x = np.array(draw(st.lists(st.integers(0, 1000), min_size=n, max_size=n)), dtype=float)
    T = np.array(draw(st.lists(st.floats(0.0, 1e4), min_size=n, max_size=n)))
    u = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n)))
    tx = np.where(x > 0, u * T, 0.0)
    return x, tx, T


horizons = st.lists(st.floats(0.0, 1e4), min_size=1, max_size=5).map(lambda v: np.sort(v))


@SETTINGS
@given(params, customers())
def test_probability_alive_is_a_probability(p, cust) -> None:
    x, tx, T = cust
    pa = bg_probability_alive(*p, x, tx, T)
    assert np.all((pa >= 0) & (pa <= 1))
    assert np.all(pa[x == 0] == 1.0)


@SETTINGS
@given(params, customers(), horizons)
def test_expected_purchases_nonnegative_and_nondecreasing(p, cust, t) -> None:
    x, tx, T = cust
    ep = bg_expected_purchases(*p, x, tx, T, t)  # (N, P), t sorted
    assert np.all(np.isfinite(ep)) and np.all(ep >= 0)
    assert np.all(np.diff(ep, axis=-1) >= -1e-12 * ep[:, 1:])
    new = bg_expected_purchases_new_customer(*p, t)
    assert np.all(new >= 0) and np.all(np.diff(new) >= -1e-12 * new[1:])


@SETTINGS
@given(params, customers(), st.floats(0.0, 1e3), st.floats(0.0, 1e3), st.floats(0.0, 1e3))
def test_between_is_additive_over_adjacent_intervals(p, cust, s, d1, d2) -> None:
    x, tx, T = cust
    m, e = s + d1, s + d1 + d2
    parts = bg_expected_purchases_between(
        *p, x, tx, T, np.array([s, m, s]), np.array([m, e, e])
    )  # one call: shared nodes, so additivity holds to rounding
    np.testing.assert_allclose(parts[:, 0] + parts[:, 1], parts[:, 2], rtol=1e-12, atol=1e-300)
    # Separate calls may pick different node counts: agreement to quadrature accuracy.
    whole = bg_expected_purchases_between(*p, x, tx, T, s, e)
    np.testing.assert_allclose(parts[:, 2], whole, rtol=1e-6, atol=1e-300)
    if s == 0.0:
        np.testing.assert_allclose(
            parts[:, 2], bg_expected_purchases(*p, x, tx, T, e), rtol=1e-6, atol=1e-300
        )


@SETTINGS
@given(params, customers(), horizons)
def test_probability_alive_at_is_nonincreasing(p, cust, t) -> None:
    x, tx, T = cust
    sv = bg_probability_alive_at(*p, x, tx, T, np.concatenate([[0.0], t]))
    pa = bg_probability_alive(*p, x, tx, T)
    np.testing.assert_allclose(sv[:, 0], pa, rtol=1e-12)
    assert np.all(sv >= 0) and np.all(np.diff(sv, axis=-1) <= 1e-15)


@SETTINGS
@given(params, st.floats(1e-3, 1e3))
def test_probability_of_purchases_is_a_distribution(p, t) -> None:
    probs = bg_probability_of_purchases(*p, t, np.arange(0, 200))
    assert np.all((probs >= 0) & (probs <= 1 + 1e-12))
    assert probs.sum() <= 1 + 1e-9


@SETTINGS
@given(
    st.floats(0.1, 100.0),
    st.floats(1.01, 100.0),
    st.floats(0.1, 1e3),
    st.integers(0, 1000),
    st.floats(0.0, 1e4),
)
def test_gamma_gamma_spend_is_between_prior_mean_and_observed_mean(p, q, v, x, zbar) -> None:
    # p(v + x zbar)/(p x + q - 1) is a weighted average of the prior mean p v/(q-1) and zbar.
    spend = float(gg_expected_spend(p, q, v, x, zbar))
    prior = p * v / (q - 1.0)
    lo, hi = min(prior, zbar), max(prior, zbar)
    assert lo * (1 - 1e-12) <= spend <= hi * (1 + 1e-12)
