"""clvkit.models.bgnbd.predictions at extreme inputs: frequency to 1e4, T to 1e5, parameters from 1e-4 to 1e4."""

from __future__ import annotations

import itertools
import warnings

import mpmath as mp
import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter

from clvkit.errors import ClvkitError
from clvkit.models.bgnbd.predictions import (
    bg_expected_purchases,
    bg_expected_purchases_between,
    bg_expected_purchases_new_customer,
    bg_probability_alive,
    bg_probability_alive_at,
    bg_probability_of_purchases,
)
from clvkit.models.bgnbd.simulation import simulate
from clvkit.models.gamma_gamma.predictions import (
    gg_expected_spend,
    gg_sample_nu,
)

VALUES = (1e-4, 1.0, 1e4)
# All 81 combinations of (r, alpha, a, b) in {1e-4, 1, 1e4}, as (S, 1) draws.
GRID = np.array(list(itertools.product(VALUES, repeat=4)))
R, ALPHA, A, B = (GRID[:, i : i + 1] for i in range(4))


def _customers() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows = [
        (x, tx, T)
        for x in (0.0, 1.0, 100.0, 1e4)
        for T in (1.0, 1e3, 1e5)
        for tx in (0.0, T / 2, T)
        if not (x == 0 and tx > 0)
    ]
    x, tx, T = (np.array(c) for c in zip(*rows, strict=True))
    return x, tx, T


def test_bg_functions_finite_and_bounded_on_extreme_grid() -> None:
    x, tx, T = _customers()
    t = np.array([0.0, 1.0, 1e3, 1e5])
    pa = bg_probability_alive(R, ALPHA, A, B, x, tx, T)
    assert np.isfinite(pa).all() and (pa >= 0).all() and (pa <= 1).all()
    assert (pa[:, x == 0] == 1.0).all()

    ep = bg_expected_purchases(R, ALPHA, A, B, x, tx, T, t)  # (81, N, 4)
    assert np.isfinite(ep).all() and (ep >= 0).all()
    assert (ep[..., 0] == 0).all()
    # Bounds: purchases come at rate <= lambda, so E <= P(alive) E[lambda | alive] t.
    upper = pa[..., None] * (R + x)[..., None] / (ALPHA + T)[..., None] * t
    assert (ep <= upper * (1 + 1e-9)).all()
    assert (np.diff(ep, axis=-1) >= -1e-12 * ep[..., 1:]).all()

    sv = bg_probability_alive_at(R, ALPHA, A, B, x, tx, T, t)
    assert np.isfinite(sv).all() and (sv >= 0).all()
    np.testing.assert_allclose(sv[..., 0], pa, rtol=1e-12)
    assert (np.diff(sv, axis=-1) <= 1e-15).all()

    between = bg_expected_purchases_between(R, ALPHA, A, B, x, tx, T, t[:-1], t[1:])
    assert np.isfinite(between).all() and (between >= 0).all()
    np.testing.assert_allclose(between.sum(-1), ep[..., -1], rtol=1e-9, atol=1e-300)

    new = bg_expected_purchases_new_customer(R, ALPHA, A, B, t)
    assert np.isfinite(new).all() and (new >= 0).all()
    assert (new <= R / ALPHA * t * (1 + 1e-9)).all()


def test_probability_of_purchases_extreme() -> None:
    n = np.array([0.0, 1.0, 10.0, 1e3, 1e4])
    for t in (1e-3, 1.0, 1e5):
        probs = bg_probability_of_purchases(R, ALPHA, A, B, t, n)
        assert np.isfinite(probs).all() and (probs >= 0).all() and (probs <= 1 + 1e-12).all()
        assert (probs.sum(axis=-1) <= 1 + 1e-9).all()


def test_sampling_finite_at_extremes() -> None:
    x, tx, T = _customers()
    rng = np.random.default_rng(5)
    # purchase rates up to ~2e4 per time unit (r = 1e4, alpha = 1e-4): a horizon of 1e5 would
    # mean ~2e9 events for one customer, refused with a suggestion instead of running out of
    # memory; one time unit is simulated event by event
    with pytest.raises(ClvkitError, match=r"purchases in the horizon.*Suggestion"):
        for _ in simulate(R, ALPHA, A, B, x, tx, T, 1e5, rng).batches:
            pass
    future = simulate(R, ALPHA, A, B, x, tx, T, 1.0, rng)
    alive = np.zeros(future.p_alive.shape, dtype=bool)
    alive[future.alive_draw, future.alive_customer] = True
    counts = np.zeros(alive.shape, dtype=np.int64)
    for batch in future.batches:
        assert (batch.count >= 0).all() and batch.count.dtype == np.int64
        assert np.isfinite(batch.times).all() and (batch.times >= 0).all()
        assert (batch.times <= 1.0).all()
        np.add.at(counts, (batch.draw, batch.customer), batch.count)
    lam, p = future.latent["lam"], future.latent["p"]
    assert np.isfinite(lam).all() and (lam >= 0).all()
    drawn = ~np.isnan(p)
    assert ((p[drawn] >= 0) & (p[drawn] <= 1)).all()
    assert (counts[~alive] == 0).all()
    assert (future.death >= 0).all()
    pq = np.array(list(itertools.product(VALUES, repeat=3)))
    P, Q, V = (pq[:, i : i + 1] for i in range(3))
    spend = gg_expected_spend(P, Q, V, np.array([0.0, 1.0, 1e4]), np.array([0.0, 1e-4, 1e4]))
    # p x + q <= 1 has an infinite mean (returned as inf, never nan or a negative number).
    assert not np.isnan(spend).any() and (spend > 0).all()
    finite = (P * np.array([0.0, 1.0, 1e4]) + Q) > 1
    assert np.isfinite(spend[finite]).all() and np.isinf(spend[~finite]).all()
    nu = gg_sample_nu(P, Q, V, np.array([0.0, 1.0, 1e4]), np.array([0.0, 1e-4, 1e4]), rng)
    assert np.isfinite(nu).all() and (nu >= 0).all()


def _mp_purchases(r, alpha, a, b, x, T, s):
    mp.mp.dps = 50
    a, bp, k, z = (mp.mpf(v) for v in (a, b + x, r + x, s / (alpha + T)))
    h = mp.hyp2f1(k, bp, a + bp - 1, z / (1 + z))
    return (a + bp - 1) / (a - 1) * (1 - (1 + z) ** (-k) * h)


@pytest.mark.parametrize(
    ("r", "alpha", "a", "b", "x", "tx", "T", "s", "rtol"),
    [
        # Heavy buyers with long histories (the CDNOW MLE and other parameters).
        (0.2426, 4.4137, 0.7930, 2.4262, 1e4, 9.9e4, 1e5, 52.0, 1e-8),
        (0.2426, 4.4137, 0.7930, 2.4262, 1e4, 9.9e4, 1e5, 2e3, 1e-8),
        (0.2426, 4.4137, 0.7930, 2.4262, 300.0, 290.0, 300.0, 52.0, 1e-8),
        (5.0, 1e-4, 3.0, 1e4, 1e3, 900.0, 1e3, 100.0, 1e-8),
        (1e4, 1e4, 1e4, 1e4, 1e4, 5e4, 1e5, 1e3, 1e-8),
        (1e-4, 1e-4, 1e-4 + 0.5, 1e-4, 10.0, 50.0, 100.0, 1e3, 1e-8),
        # Long horizon for a young customer (z = s / (alpha + T) = 20): fewer correct digits.
        (0.2426, 4.4137, 0.7930, 2.4262, 0.0, 0.0, 0.5, 99.0, 1e-6),
    ],
)
def test_extreme_values_match_mpmath(r, alpha, a, b, x, tx, T, s, rtol) -> None:
    ours = bg_expected_purchases(r, alpha, a, b, x, tx, T, s)
    pa = bg_probability_alive(r, alpha, a, b, x, tx, T)
    ref = float(pa) * float(_mp_purchases(r, alpha, a, b, x, T, s))
    assert float(ours) == pytest.approx(ref, rel=rtol)


@pytest.mark.parametrize(("z", "rtol"), [(10.0, 1e-10), (100.0, 1e-10), (1e3, 1e-7)])
def test_new_customer_long_horizons_match_mpmath(z, rtol) -> None:
    # Long horizons relative to alpha bring the singularity at p = -1/z close to the Beta's
    # support; accuracy degrades gracefully (2e-3 at z = 1e4, where the node count is capped).
    r, alpha, a, b = 0.2426, 4.4137, 0.7930, 2.4262
    mp.mp.dps = 40
    zz = mp.mpf(z)
    h = mp.hyp2f1(r, b, a + b - 1, zz / (1 + zz))
    ref = float((a + b - 1) / (a - 1) * (1 - (1 + zz) ** (-r) * h))
    ours = float(bg_expected_purchases_new_customer(r, alpha, a, b, alpha * z))
    assert ours == pytest.approx(ref, rel=rtol)


def test_lifetimes_breaks_where_we_do_not() -> None:
    # lifetimes 0.11.3 evaluates FHL eqs. 9-10 with scipy's hyp2f1. At r = 1e4, alpha = 1e-4,
    # a = b = 1e4 it returns nan for the new-customer expectation and -inf for a customer with
    # x = 300, t_x = 290, T = 300; we stay finite and match the limit below.
    fitter = BetaGeoFitter()
    fitter.params_ = pd.Series({"r": 1e4, "alpha": 1e-4, "a": 1e4, "b": 1e4})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs_new = fitter.expected_number_of_purchases_up_to_time(10.0)
        theirs = fitter.conditional_expected_number_of_purchases_up_to_time(
            52.0, np.array([300.0]), np.array([290.0]), np.array([300.0])
        )
    assert not np.isfinite(theirs_new) and not np.isfinite(theirs).all()
    new = float(bg_expected_purchases_new_customer(1e4, 1e-4, 1e4, 1e4, 10.0))
    # lambda ~ 1e8 per unit time, so every customer drops out well within t = 10 and makes a
    # geometric number of purchases with mean E[1/p] = (a + b - 1) / (a - 1).
    assert new == pytest.approx((1e4 + 1e4 - 1) / (1e4 - 1), rel=1e-9)
    ours = bg_expected_purchases(1e4, 1e-4, 1e4, 1e4, 300.0, 290.0, 300.0, 52.0)
    assert np.isfinite(ours).all() and (ours >= 0).all()


def _mp_survival(r, alpha, a, b, x, T, s):
    """E_p[(1 + p z)^-k], p ~ Beta(a, b + x), z = s / (alpha + T): 2F1(k, a; a + b + x; -z),
    by Pfaff's transformation (1 + z)^-k 2F1(k, b + x; a + b + x; z / (1 + z))."""
    mp.mp.dps = 50
    a, bp, k, z = (mp.mpf(v) for v in (a, b + x, r + x, s / (alpha + T)))
    return (1 + z) ** (-k) * mp.hyp2f1(k, bp, a + bp, z / (1 + z))


def test_random_realistic_cases_match_mpmath_to_1e10() -> None:
    """Gauss rules sized by ``gauss.node_count`` meet 1e-10 relative: 48 random customers and
    parameters (a 0.1-5, b 0.3-30, x 0-300, horizons 13-520 weeks; one customer per call, so
    each gets its own node count) for the expected purchases and P(alive at T + t), against
    mpmath. The former rule left up to 2.6e-6 at 10 years in such cases."""
    rng = np.random.default_rng(2026)
    worst = 0.0
    for _ in range(48):
        r, alpha = np.exp(rng.uniform(np.log(0.1), np.log(3.0))), rng.uniform(0.5, 30.0)
        a, b = np.exp(rng.uniform(np.log(0.1), np.log(5.0))), np.exp(rng.uniform(np.log(0.3), 3.4))
        T = rng.uniform(0.5, 150.0)
        x = float(np.floor(np.exp(rng.uniform(0.0, np.log(300.0)))) - 1.0)
        tx = T * rng.uniform(0.2, 1.0) if x > 0 else 0.0
        s = float(rng.choice([13.0, 52.0, 104.0, 260.0, 520.0]))
        pa = float(bg_probability_alive(r, alpha, a, b, x, tx, T))
        purchases = float(bg_expected_purchases(r, alpha, a, b, x, tx, T, s))
        alive = float(bg_probability_alive_at(r, alpha, a, b, x, tx, T, s))
        ref_p = pa * float(_mp_purchases(r, alpha, a, b, x, T, s))
        ref_a = pa * float(_mp_survival(r, alpha, a, b, x, T, s))
        case = (r, alpha, a, b, x, tx, T, s)
        assert purchases == pytest.approx(ref_p, rel=1e-10), case
        assert alive == pytest.approx(ref_a, rel=1e-10), case
        worst = max(worst, abs(purchases / ref_p - 1), abs(alive / ref_a - 1))
    assert worst < 1e-10
