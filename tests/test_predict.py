"""clvkit.models.bgnbd.predictions against published values, lifetimes, mpmath and Monte Carlo."""

from __future__ import annotations

import os

import mpmath as mp
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifetimes import BetaGeoFitter, GammaGammaFitter
from scipy import integrate, stats

from clvkit.errors import ClvkitError
from clvkit.models.bgnbd.predictions import (
    bg_expected_purchases,
    bg_expected_purchases_between,
    bg_expected_purchases_new_customer,
    bg_probability_alive,
    bg_probability_alive_at,
    bg_probability_alive_new_customer,
    bg_probability_of_purchases,
    bg_probability_purchase_in_window,
)
from clvkit.models.bgnbd.simulation import simulate
from clvkit.models.gamma_gamma.predictions import (
    gg_expected_spend,
    gg_expected_spend_new_customer,
    gg_sample_nu,
)

# MLE on the CDNOW calibration sample (78 weeks split at 39): Fader, Hardie and Lee (2005),
# "Counting your customers the easy way", Marketing Science 24(2), and the BTYD walkthrough.
BG = dict(r=0.2426, alpha=4.4137, a=0.7930, b=2.4262)
BG_ARGS = (BG["r"], BG["alpha"], BG["a"], BG["b"])
# Fader and Hardie (2013), "The Gamma-Gamma model of monetary value", CDNOW MLE.
GG = dict(p=6.2488, q=3.7446, v=15.4477)
GG_ARGS = (GG["p"], GG["q"], GG["v"])


@pytest.fixture(scope="module")
def cdnow(lifetimes_data_dir: str) -> pd.DataFrame:
    path = os.path.join(lifetimes_data_dir, "cdnow_customers_summary_with_transactions.csv")
    return pd.read_csv(path)


@pytest.fixture(scope="module")
def cdnow_arrays(cdnow: pd.DataFrame) -> tuple[np.ndarray, ...]:
    return tuple(cdnow[c].to_numpy(dtype=float) for c in ("x", "t_x", "T", "zbar"))


@pytest.fixture(scope="module")
def bgf() -> BetaGeoFitter:
    fitter = BetaGeoFitter()
    # lifetimes keeps fitted parameters as a Series indexed r, alpha, a, b (alpha unscaled).
    fitter.params_ = pd.Series(BG)[["r", "alpha", "a", "b"]]
    return fitter


@pytest.fixture(scope="module")
def ggf() -> GammaGammaFitter:
    fitter = GammaGammaFitter()
    fitter.params_ = pd.Series(GG)[["p", "q", "v"]]
    return fitter


# ---------------------------------------------------------------------------------------------
# Published reference values
# ---------------------------------------------------------------------------------------------
def test_new_customer_expectation_matches_hardie_spreadsheet() -> None:
    # Hardie's BG/NBD spreadsheet (bgnbd.xls, sheet "Tracking"): E[X(t)] at the CDNOW MLE.
    out = bg_expected_purchases_new_customer(*BG_ARGS, np.array([1.0, 3.0, 31.857]))
    np.testing.assert_allclose(out, [0.0532, 0.1506, 1.0405], atol=5e-5)


def test_customer_one_expects_1_226_purchases() -> None:
    # FHL (2005), section 5: customer 1 (x=2, t_x=30.43, T=38.86) expects 1.226 in 39 weeks.
    out = bg_expected_purchases(*BG_ARGS, 2, 30.43, 38.86, 39.0)
    assert round(float(out), 3) == 1.226


def test_gamma_gamma_first_ten_cdnow_customers(cdnow_arrays) -> None:
    # Fader and Hardie (2013), the Gamma-Gamma note: conditional expected average spend of the
    # first ten CDNOW customers.
    x, _, _, zbar = cdnow_arrays
    published = [24.65, 18.91, 35.17, 35.17, 35.17, 71.46, 18.91, 35.17, 27.28, 35.17]
    out = gg_expected_spend(*GG_ARGS, x[:10], zbar[:10])
    np.testing.assert_allclose(out, published, atol=0.02)
    assert gg_expected_spend_new_customer(*GG_ARGS) == pytest.approx(
        GG["p"] * GG["v"] / (GG["q"] - 1.0), rel=1e-15
    )


# ---------------------------------------------------------------------------------------------
# Agreement with lifetimes on the whole CDNOW summary (same formulas -> relative 1e-6)
# ---------------------------------------------------------------------------------------------
def test_probability_alive_matches_lifetimes(cdnow_arrays, bgf) -> None:
    x, tx, T, _ = cdnow_arrays
    ours = bg_probability_alive(*BG_ARGS, x, tx, T)
    np.testing.assert_allclose(ours, bgf.conditional_probability_alive(x, tx, T), rtol=1e-10)


@pytest.mark.parametrize("t", [1.0, 10.0, 39.0, 78.0])
def test_conditional_expectation_matches_lifetimes(cdnow_arrays, bgf, t) -> None:
    x, tx, T, _ = cdnow_arrays
    ours = bg_expected_purchases(*BG_ARGS, x, tx, T, t)
    theirs = bgf.conditional_expected_number_of_purchases_up_to_time(t, x, tx, T)
    np.testing.assert_allclose(ours, theirs, rtol=1e-8)


def test_new_customer_expectation_matches_lifetimes(bgf) -> None:
    t = np.array([0.5, 1.0, 3.0, 10.0, 31.857, 39.0, 78.0])
    ours = bg_expected_purchases_new_customer(*BG_ARGS, t)
    np.testing.assert_allclose(ours, bgf.expected_number_of_purchases_up_to_time(t), rtol=1e-9)


def test_gamma_gamma_matches_lifetimes(cdnow_arrays, ggf) -> None:
    x, _, _, zbar = cdnow_arrays
    theirs = ggf.conditional_expected_average_profit(x, zbar)
    np.testing.assert_allclose(gg_expected_spend(*GG_ARGS, x, zbar), theirs, rtol=1e-12)


def _mp_prob_n(t: float, n: int) -> float:
    """FHL (2005) eq. 8 at 50 digits, with the finite sum as written in the paper."""
    mp.mp.dps = 50
    r, alpha, a, b = (mp.mpf(v) for v in BG_ARGS)
    t = mp.mpf(t)
    nb = lambda j: mp.gamma(r + j) / (mp.gamma(r) * mp.factorial(j))  # noqa: E731
    first = mp.beta(a, b + n) / mp.beta(a, b) * nb(n) * (alpha / (alpha + t)) ** r
    first *= (t / (alpha + t)) ** n
    if n == 0:
        return float(first)
    tail = 1 - (alpha / (alpha + t)) ** r * mp.fsum(
        nb(j) * (t / (alpha + t)) ** j for j in range(n)
    )
    return float(first + mp.beta(a + 1, b + n - 1) / mp.beta(a, b) * tail)


@pytest.mark.parametrize("t", [1.0, 39.0, 78.0])
def test_probability_of_purchases_matches_lifetimes_and_sums_to_one(bgf, t) -> None:
    n = np.arange(0, 15)
    ours = bg_probability_of_purchases(*BG_ARGS, t, n)
    theirs = np.array([bgf.probability_of_n_purchases_up_to_time(t, int(k)) for k in n])
    # lifetimes forms 1 - (finite NB sum), which cancels once P(NB >= n) is tiny; compare where
    # that is harmless and use an mpmath evaluation of the same eq. 8 everywhere.
    big = theirs > 1e-9
    np.testing.assert_allclose(ours[big], theirs[big], rtol=1e-8)
    np.testing.assert_allclose(ours, [_mp_prob_n(t, int(k)) for k in n], rtol=1e-10)
    full = bg_probability_of_purchases(*BG_ARGS, t, np.arange(0, 3000))
    assert full.sum() == pytest.approx(1.0, abs=1e-10)
    # The mean of the distribution is E[X(t)].
    mean = (np.arange(0, 3000) * full).sum()
    assert mean == pytest.approx(float(bg_expected_purchases_new_customer(*BG_ARGS, t)), rel=1e-8)


# ---------------------------------------------------------------------------------------------
# Closed forms at high precision (mpmath, 40 digits)
# ---------------------------------------------------------------------------------------------
def _mp_alive_purchases(a, bp, k, z):
    """E_p[(1 - (1+pz)^-k)/p], p ~ Beta(a, bp): FHL (2005) eq. 10 numerator, a != 1."""
    a, bp, k, z = (mp.mpf(v) for v in (a, bp, k, z))
    h = mp.hyp2f1(k, bp, a + bp - 1, z / (1 + z))
    return float((a + bp - 1) / (a - 1) * (1 - (1 + z) ** (-k) * h))


def _mp_alive_survival(a, bp, k, z):
    """E_p[(1+pz)^-k], p ~ Beta(a, bp) = 2F1(k, a; a+bp; -z) (Euler's integral)."""
    a, bp, k, z = (mp.mpf(v) for v in (a, bp, k, z))
    return float(mp.hyp2f1(k, a, a + bp, -z))


@pytest.mark.parametrize("a", [0.1, 0.793, 3.0])
@pytest.mark.parametrize("b", [0.5, 2.4262, 10.0])
@pytest.mark.parametrize("r", [0.2426, 2.0])
def test_conditional_functions_match_mpmath(a, b, r) -> None:
    mp.mp.dps = 40
    alpha = 4.4137
    x = np.array([0, 1, 7, 29, 0, 3, 12, 29], dtype=float)
    T = np.array([1.0, 5.0, 38.86, 38.86, 100.0, 100.0, 100.0, 300.0])
    tx = np.minimum(T, np.array([0.0, 4.0, 30.0, 38.0, 0.0, 20.0, 90.0, 299.0]))
    s = np.array([1.0, 39.0, 104.0])
    pa = bg_probability_alive(r, alpha, a, b, x, tx, T)
    ep = bg_expected_purchases(r, alpha, a, b, x, tx, T, s)  # (N, 3)
    sv = bg_probability_alive_at(r, alpha, a, b, x, tx, T, s)
    for i in range(x.size):
        for j in range(s.size):
            z = s[j] / (alpha + T[i])
            ref_p = pa[i] * _mp_alive_purchases(a, b + x[i], r + x[i], z)
            ref_s = pa[i] * _mp_alive_survival(a, b + x[i], r + x[i], z)
            assert ep[i, j] == pytest.approx(ref_p, rel=1e-8), (i, j)
            assert sv[i, j] == pytest.approx(ref_s, rel=1e-7, abs=1e-12), (i, j)


def test_a_equal_one_has_no_singularity() -> None:
    # The hypergeometric closed forms divide by a - 1; the quadrature does not. Reference:
    # mpmath quadrature of the Beta(1, b') average, b' (1-p)^(b'-1) (1 - (1+pz)^-k) / p.
    mp.mp.dps = 30
    r, alpha, b, x, T, s = 0.5, 3.0, 2.0, 4, 20.0, 30.0
    k, bp, z = r + x, b + x, s / (alpha + T)
    ref = mp.quad(lambda p: bp * (1 - p) ** (bp - 1) * (1 - (1 + p * z) ** (-k)) / p, [0, 1])
    pa = bg_probability_alive(r, alpha, 1.0, b, x, 15.0, T)
    ours = bg_expected_purchases(r, alpha, 1.0, b, x, 15.0, T, s)
    assert float(ours) == pytest.approx(float(pa) * float(ref), rel=1e-10)
    near = bg_expected_purchases(r, alpha, np.array([[1 - 1e-7], [1 + 1e-7]]), b, x, 15.0, T, s)
    np.testing.assert_allclose(near.ravel(), float(ours), rtol=1e-6)


# ---------------------------------------------------------------------------------------------
# Shapes and the multi-period API
# ---------------------------------------------------------------------------------------------
def test_shapes_draws_customers_periods(cdnow_arrays) -> None:
    x, tx, T, zbar = cdnow_arrays
    rng = np.random.default_rng(3)
    draws = {k: v * np.exp(rng.normal(0.0, 0.05, size=(5, 1))) for k, v in BG.items()}
    args = (draws["r"], draws["alpha"], draws["a"], draws["b"])
    assert bg_probability_alive(*args, x, tx, T).shape == (5, x.size)
    assert bg_expected_purchases(*args, x, tx, T, 10.0).shape == (5, x.size)
    starts, ends = np.arange(4) * 13.0, np.arange(1, 5) * 13.0
    periods = bg_expected_purchases_between(*args, x, tx, T, starts, ends)
    assert periods.shape == (5, x.size, 4)
    # Periods add up to the whole horizon and agree with single-period calls.
    total = bg_expected_purchases(*args, x, tx, T, 52.0)
    np.testing.assert_allclose(periods.sum(axis=-1), total, rtol=1e-10)
    third = bg_expected_purchases_between(*args, x, tx, T, 26.0, 39.0)
    np.testing.assert_allclose(periods[..., 2], third, rtol=1e-8)  # node counts differ
    # Each draw equals a scalar-parameter call for that draw.
    # (The node count follows the whole call, so agreement is to quadrature accuracy.)
    one = bg_expected_purchases(*(v[2, 0] for v in args), x, tx, T, 10.0)
    np.testing.assert_allclose(bg_expected_purchases(*args, x, tx, T, 10.0)[2], one, rtol=1e-8)
    assert bg_probability_alive_at(*args, x, tx, T, np.array([0.0, 5.0])).shape == (5, x.size, 2)
    assert bg_expected_purchases_new_customer(*args, np.array([1.0, 2.0])).shape == (5, 2)
    gg = (GG["p"] * np.ones((5, 1)), GG["q"], GG["v"])
    assert gg_expected_spend(*gg, x, zbar).shape == (5, x.size)
    future = simulate(*args, x, tx, T, 10.0, rng)
    assert future.p_alive.shape == (5, x.size)
    assert future.alive_draw.shape == future.alive_customer.shape == future.death.shape
    assert gg_sample_nu(*gg, x, zbar, rng).shape == (5, x.size)


def test_alive_at_zero_is_probability_alive(cdnow_arrays) -> None:
    x, tx, T, _ = cdnow_arrays
    np.testing.assert_allclose(
        bg_probability_alive_at(*BG_ARGS, x, tx, T, 0.0),
        bg_probability_alive(*BG_ARGS, x, tx, T),
        rtol=1e-14,
    )


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "word"),
    [
        (lambda: bg_expected_purchases(*BG_ARGS, 1, 1.0, 2.0, -1.0), "'t'"),
        (lambda: bg_probability_of_purchases(*BG_ARGS, 1.0, -1), "'n'"),
        (lambda: bg_probability_of_purchases(*BG_ARGS, 1.0, 1.5), "'n'"),
        (lambda: bg_probability_alive(*BG_ARGS, 1, 3.0, 2.0), "'recency'"),
        (lambda: bg_probability_alive(-0.1, 1.0, 1.0, 1.0, 1, 1.0, 2.0), "'r'"),
        (lambda: bg_probability_alive(*BG_ARGS, -1, 1.0, 2.0), "'frequency'"),
        (lambda: bg_expected_purchases(*BG_ARGS, 1, 1.0, 2.0, np.nan), "'t'"),
        (lambda: bg_expected_purchases_between(*BG_ARGS, 1, 1.0, 2.0, 5.0, 4.0), "'start'"),
        (lambda: bg_expected_purchases(np.ones(3), *BG_ARGS[1:], 1, 1.0, 2.0, 1.0), "(S, 1)"),
        (lambda: gg_expected_spend(*GG_ARGS, 1, -5.0), "'monetary_value'"),
        (lambda: gg_sample_nu(*GG_ARGS, 1, 5.0, rng=42), "'rng'"),
        (lambda: bg_probability_alive(np.ones(3), 1.0, 1.0, 1.0, [1, 2], [1, 1], [2, 2]), "(S, 1)"),
        (lambda: gg_expected_spend(*GG_ARGS, [1, 2, 3], [1.0, 2.0]), "(N,)"),
        (lambda: bg_expected_purchases_between(*BG_ARGS, 1, 1, 2, [0, 1], [1, 2, 3]), "(N,)"),
    ],
)
def test_bad_input_raises_clvkit_error(call, word) -> None:
    with pytest.raises(ClvkitError, match="Suggestion") as info:
        call()
    assert word in str(info.value)


# ---------------------------------------------------------------------------------------------
# Monte Carlo: the samplers reproduce the closed forms
# ---------------------------------------------------------------------------------------------
def _zscore(samples: np.ndarray, target: np.ndarray, bernoulli: bool = False) -> np.ndarray:
    """|sample mean - target| in standard errors (for 0/1 samples, the SE under the target)."""
    n = samples.shape[0]
    var = target * (1.0 - target) if bernoulli else samples.var(axis=0)
    se = np.sqrt(var / n)
    diff = np.abs(samples.mean(axis=0) - target)
    # A degenerate target (variance 0) must be hit exactly.
    return np.where(se > 0, diff / np.where(se > 0, se, 1.0), np.where(diff == 0, 0.0, np.inf))


def _simulated(future, shape):
    """(alive at T, alive at T + horizon, purchase counts) per (draw, customer) of a Future."""
    counts = np.zeros(shape, dtype=np.int64)
    for batch in future.batches:
        np.add.at(counts, (batch.draw, batch.customer), batch.count)
    alive = np.zeros(shape, dtype=bool)
    alive[future.alive_draw, future.alive_customer] = True
    survived = np.zeros(shape, dtype=bool)
    keep = np.isinf(future.death)
    survived[future.alive_draw[keep], future.alive_customer[keep]] = True
    return alive, survived, counts


def test_simulated_futures_match_expectations(cdnow_arrays) -> None:
    # 40,000 exact posterior draws for each of 12 CDNOW customers through the one generative
    # process (clvkit.models.bgnbd.simulation.simulate); every check at 4.5 standard errors
    # (a false alarm has probability ~7e-6 per comparison).
    x, tx, T, _ = cdnow_arrays
    idx = np.array([0, 1, 2, 5, 8, 17, 28, 50, 157, 1000, 1516, 2000])
    xs, txs, Ts = x[idx], tx[idx], T[idx]
    rng = np.random.default_rng(20240611)
    reps = 40_000
    ones = np.ones((reps, 1))
    t = 39.0
    future = simulate(*(v * ones for v in BG_ARGS), xs, txs, Ts, t, rng)
    alive, survived, counts = _simulated(future, (reps, idx.size))
    pa = bg_probability_alive(*BG_ARGS, xs, txs, Ts)
    assert np.all(_zscore(alive.astype(float), pa, bernoulli=True) < 4.5)
    assert np.all(
        _zscore(counts.astype(float), bg_expected_purchases(*BG_ARGS, xs, txs, Ts, t)) < 4.5
    )
    # Survival: alive at T and no dropout in (T, T+t].
    p_surv = bg_probability_alive_at(*BG_ARGS, xs, txs, Ts, t)
    assert np.all(_zscore(survived.astype(float), p_surv, bernoulli=True) < 4.5)
    # The alive posterior of lambda is Gamma(r + x, alpha + T).
    lam = np.zeros((reps, idx.size))
    lam[future.alive_draw, future.alive_customer] = future.latent["lam"]
    lam_alive_mean = lam.sum(0) / alive.sum(0)
    np.testing.assert_allclose(lam_alive_mean, (BG["r"] + xs) / (BG["alpha"] + Ts), rtol=0.03)


def test_simulated_purchases_given_state() -> None:
    # A new customer with (lam, p) all but fixed (Gamma and Beta with sd / mean ~ 1e-3): then
    # E[count in t] = (1 - exp(-lam p t)) / p and P(count = 0) = exp(-lam t).
    rng = np.random.default_rng(7)
    lam = np.array([0.1, 0.5, 2.0, 2.0, 5.0])
    p = np.array([1e-7, 0.3, 0.05, 1.0 - 1e-9, 0.5])
    t = 4.0
    reps = 100_000
    k = 1e6  # concentration of both priors
    par = lambda v: np.repeat(v, reps)[:, None]  # noqa: E731 - (5 reps, 1) draws
    r, alpha = par(np.full(5, k)), par(k / lam)
    a, b = par(p * k), par((1 - p) * k)
    zero = np.zeros(1)
    future = simulate(r, alpha, a, b, zero, zero, zero, t, rng)
    _, _, counts = _simulated(future, (5 * reps, 1))
    counts = counts.reshape(5, reps).T.astype(float)
    mean = -np.expm1(-lam * p * t) / p
    assert np.all(_zscore(counts, mean) < 4.5)
    assert np.all(_zscore((counts == 0).astype(float), np.exp(-lam * t), bernoulli=True) < 4.5)
    assert np.all(counts[:, 3] <= 1)  # p = 1: the first purchase is the last


def test_gamma_gamma_nu_implies_expected_spend(cdnow_arrays) -> None:
    x, _, _, zbar = cdnow_arrays
    rng = np.random.default_rng(11)
    reps = 50_000
    nu = gg_sample_nu(GG["p"] * np.ones((reps, 1)), GG["q"], GG["v"], x[:10], zbar[:10], rng)
    spend = GG["p"] / nu  # E[z | nu] = p / nu; p x + q > 2 so its variance is finite
    assert np.all(_zscore(spend, gg_expected_spend(*GG_ARGS, x[:10], zbar[:10])) < 4.5)


# ---------------------------------------------------------------------------------------------
# New customer: P(alive at age t) and P(>= 1 purchase in (start, end])
# ---------------------------------------------------------------------------------------------
def _beta_average(fn, a, b):
    """E[fn(p)] for p ~ Beta(a, b) by adaptive quadrature (independent of the Gauss rule)."""
    val, _ = integrate.quad(lambda p: fn(p) * stats.beta.pdf(p, a, b), 0, 1, limit=200)
    return val


def _g_closed_form(r, alpha, a, b, c, u):
    """G(c, u) = (alpha / (alpha + c + u))^r 2F1(r, b; a + b; u / (alpha + c + u)), mpmath."""
    r, alpha, a, b, c, u = (mp.mpf(v) for v in (r, alpha, a, b, c, u))
    d = alpha + c + u
    return (alpha / d) ** r * mp.hyp2f1(r, b, a + b, u / d)


@pytest.mark.parametrize("t", [0.5, 10.0, 52.0, 500.0])
def test_probability_alive_new_customer_matches_quadrature(t) -> None:
    r, al, a, b = BG_ARGS
    ref = _beta_average(lambda p: (al / (al + p * t)) ** r, a, b)
    assert bg_probability_alive_new_customer(r, al, a, b, t) == pytest.approx(ref, rel=1e-7)
    # and P(alive at T + t) of a customer with no history (x = 0, T = 0)
    via_alive_at = bg_probability_alive_at(r, al, a, b, 0, 0.0, 0.0, t)
    assert float(np.squeeze(via_alive_at)) == pytest.approx(ref, rel=1e-7)


@pytest.mark.parametrize(("u", "v"), [(0.0, 1.0), (3.0, 4.0), (10.0, 30.0), (70.0, 78.0)])
def test_probability_purchase_in_window_matches_quadrature(u, v) -> None:
    r, al, a, b = BG_ARGS
    # P(>= 1 purchase in (u, v] | p) = E_lam[exp(-lam p u) (1 - exp(-lam (v - u)))]
    ref = _beta_average(lambda p: (al / (al + p * u)) ** r - (al / (al + p * u + v - u)) ** r, a, b)
    assert bg_probability_purchase_in_window(r, al, a, b, u, v) == pytest.approx(ref, rel=1e-7)


# Points from 1e-3 to 1e3 in every parameter and ages to 1e5, inside the documented range of the
# quadrature (z = t / alpha <= 100, r <= 20, or z <= 1e-3 for larger r; see the predict module
# docstring, which also gives the error beyond: the node cap of 128 limits z ~ 1e3 and above).
EXTREME_POINTS = [
    (1e-3, 1e-3, 1e-3, 1e-3, 0.1),
    (1e-3, 1.0, 1e-3, 1e3, 100.0),
    (1e-3, 1e3, 1e3, 1e-3, 1e5),
    (1.0, 1e3, 1e-3, 1e-3, 1e5),
    (1.0, 1e3, 1e3, 1e3, 1e5),
    (1.0, 1.0, 1.0, 1e-3, 100.0),
    (1.0, 1e-3, 1e-3, 1e3, 0.1),
    (0.2426, 4.4137, 0.793, 2.4262, 400.0),
    (5.0, 1e3, 0.05, 1e3, 1e5),
    (20.0, 1.0, 5.0, 0.1, 10.0),  # tiny value (2e-11) dominated by the Beta tail near p = 0
    (1e3, 1e3, 1.0, 1e3, 1.0),
]


@pytest.mark.parametrize(("r", "al", "a", "b", "t"), EXTREME_POINTS)
def test_new_customer_probabilities_match_mpmath_hyp2f1(r, al, a, b, t) -> None:
    # closed forms: Euler's integral for 2F1 plus Pfaff's transformation (DLMF 15.6.1, 15.8.1)
    mp.mp.dps = 40
    alive = _g_closed_form(r, al, a, b, 0.0, t)
    assert float(bg_probability_alive_new_customer(r, al, a, b, t)) == pytest.approx(
        float(alive), rel=1e-9
    )
    for w in (1e-6, 1.0, 1e3):  # a short window keeps its relative accuracy (no cancellation)
        ref = alive - _g_closed_form(r, al, a, b, w, t)
        got = float(bg_probability_purchase_in_window(r, al, a, b, t, t + w))
        assert got == pytest.approx(float(ref), rel=1e-8)


def test_probability_purchase_in_window_by_simulation() -> None:
    # simulate the generative process directly: Poisson arrivals, death after each purchase
    rng = np.random.default_rng(3)
    r, al, a, b = 0.6, 3.0, 1.5, 4.0
    n = 400_000
    lam = rng.gamma(r, 1 / al, n)
    p = rng.beta(a, b, n)
    u, v = 5.0, 7.0
    alive_at_u = rng.random(n) < np.exp(-lam * p * u)  # deaths are a Poisson(lam p) thinning
    hit = alive_at_u & (rng.exponential(1 / lam) < v - u)
    se = np.sqrt(hit.mean() * (1 - hit.mean()) / n)
    assert abs(hit.mean() - bg_probability_purchase_in_window(r, al, a, b, u, v)) < 4 * se


@settings(max_examples=60, deadline=None)
@given(
    r=st.floats(0.05, 5),
    al=st.floats(0.5, 50),
    a=st.floats(0.2, 5),
    b=st.floats(0.2, 10),
    t=st.floats(0.01, 200),
)
def test_window_from_zero_is_one_minus_pmf_zero(r, al, a, b, t) -> None:
    # P(>= 1 purchase in (0, t]) = 1 - P(X(t) = 0) (FHL 2005 eq. 8)
    p0 = float(bg_probability_of_purchases(r, al, a, b, t, 0))
    assert bg_probability_purchase_in_window(r, al, a, b, 0.0, t) == pytest.approx(
        1 - p0, rel=1e-6, abs=1e-9
    )


@settings(max_examples=60, deadline=None)
@given(
    r=st.floats(0.05, 5),
    al=st.floats(0.5, 50),
    a=st.floats(0.2, 5),
    b=st.floats(0.2, 10),
    u=st.floats(0, 100),
    w=st.floats(0.01, 50),
)
def test_window_probability_bounds(r, al, a, b, u, w) -> None:
    pw = float(bg_probability_purchase_in_window(r, al, a, b, u, u + w))
    # a probability, at most P(alive at u), and at most the expected count in the window
    expected = bg_expected_purchases_new_customer(r, al, a, b, [u, u + w]).ravel()
    assert 0 <= pw <= float(bg_probability_alive_new_customer(r, al, a, b, u)) + 1e-12
    assert pw <= expected[1] - expected[0] + 1e-9
    # larger windows are more likely to contain a purchase
    assert pw <= float(bg_probability_purchase_in_window(r, al, a, b, u, u + 2 * w)) + 1e-12


def test_new_customer_shapes_match_pointwise_values() -> None:
    rng = np.random.default_rng(0)
    draws = [np.array(BG_ARGS) * np.exp(rng.normal(0, 0.05, 4)) for _ in range(3)]
    r, al, a, b = (np.array(col).reshape(-1, 1, 1) for col in zip(*draws, strict=True))
    start = rng.uniform(0, 60, (5, 4))
    end = start + rng.uniform(0, 3, (5, 4))
    alive = bg_probability_alive_new_customer(r, al, a, b, start)
    window = bg_probability_purchase_in_window(r, al, a, b, start, end)
    assert alive.shape == window.shape == (3, 5, 4)
    for s, g, k in [(0, 0, 0), (1, 4, 3), (2, 2, 1)]:
        prm = (r[s, 0, 0], al[s, 0, 0], a[s, 0, 0], b[s, 0, 0])
        ref = _beta_average(
            lambda p, prm=prm, u=start[g, k]: (1 + p * u / prm[1]) ** -prm[0], *prm[2:]
        )
        assert alive[s, g, k] == pytest.approx(ref, rel=1e-7)
        assert window[s, g, k] == pytest.approx(
            float(bg_probability_purchase_in_window(*prm, start[g, k], end[g, k])), rel=1e-12
        )
    # (S, 1) draws against (N,) ages; scalar parameters against any shape
    flat = bg_probability_alive_new_customer(r[:, :, 0], al[:, :, 0], a[:, :, 0], b[:, :, 0],
                                             start[0])  # fmt: skip
    np.testing.assert_allclose(flat, alive[:, 0, :], rtol=1e-12)
    assert bg_probability_alive_new_customer(*BG_ARGS, start).shape == (5, 4)


def test_new_customer_bad_input() -> None:
    r = np.full((3, 1), BG["r"])
    with pytest.raises(ClvkitError, match="share an axis"):
        bg_probability_alive_new_customer(r, 4.4, 0.8, 2.4, np.ones((3, 2)))
    with pytest.raises(ClvkitError, match="exceeds 'end'"):
        bg_probability_purchase_in_window(*BG_ARGS, 2.0, 1.0)
    with pytest.raises(ClvkitError, match="'t'"):
        bg_probability_alive_new_customer(*BG_ARGS, -1.0)
    with pytest.raises(ClvkitError, match="'alpha'"):
        bg_probability_alive_new_customer(0.2, -4.0, 0.8, 2.4, 1.0)
