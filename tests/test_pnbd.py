"""Pareto/NBD (clvkit.ParetoNBD): the published CDNOW fit, agreement with lifetimes, and the
numerics against mpmath at the extremes of issue 15 (frequency up to 1e4, T up to 1e5,
parameters from 1e-4 to 1e4)."""

from __future__ import annotations

import warnings

import mpmath as mp
import numpy as np
import pandas as pd
import pytest

import clvkit
from clvkit.datasets import cdnow_calibration_summary
from clvkit.models.pnbd.likelihood import compress_pnbd, pnbd_loglik_grad
from clvkit.models.pnbd.numerics import ZMAX, log_k
from clvkit.models.pnbd.spec import ParetoNBDSpec

mp.mp.dps = 40
SPEC = ParetoNBDSpec()


# ---- mpmath references (independent of clvkit's K decomposition where it matters) ------------


def ref_log_k(p, q, A, B):
    """log ∫_0^∞ (A+u)^-p (B+u)^-q du by mpmath's hypergeometric function (Euler integral)."""
    p, q, A, B = map(mp.mpf, (p, q, A, B))
    if A <= B:
        return mp.log(A ** (1 - p) * B ** (-q) / (p + q - 1) * mp.hyp2f1(1, q, p + q, 1 - A / B))
    return mp.log(B ** (1 - q) * A ** (-p) / (p + q - 1) * mp.hyp2f1(1, p, p + q, 1 - B / A))


def ref_bracket(r, alpha, s, beta, x, tx, T):
    """log of (α+T)^-m (β+T)^-s + s ∫_{t_x}^T (α+τ)^-m (β+τ)^-(s+1) dτ (the published
    integral, summed in 40 digits) and log (α+T)^-m (β+T)^-s."""
    r, alpha, s, beta, x, tx, T = map(mp.mpf, (r, alpha, s, beta, x, tx, T))
    m = r + x
    alive = (alpha + T) ** (-m) * (beta + T) ** (-s)
    if T > tx:
        # K(m, s+1; t_x) - K(m, s+1; T), both by hyp2f1, in 40 digits (no cancellation issue)
        k1 = mp.exp(ref_log_k(m, s + 1, alpha + tx, beta + tx))
        k2 = mp.exp(ref_log_k(m, s + 1, alpha + T, beta + T))
        integral = k1 - k2
    else:
        integral = mp.mpf(0)
    return mp.log(alive + s * integral), mp.log(alive)


def ref_loglik(r, alpha, s, beta, x, tx, T):
    lb, _ = ref_bracket(r, alpha, s, beta, x, tx, T)
    r_, a_, s_, b_ = map(mp.mpf, (r, alpha, s, beta))
    return mp.loggamma(r_ + x) - mp.loggamma(r_) + r_ * mp.log(a_) + s_ * mp.log(b_) + lb


def ref_alive(r, alpha, s, beta, x, tx, T):
    lb, la = ref_bracket(r, alpha, s, beta, x, tx, T)
    return mp.exp(la - lb)


def _params(r, alpha, s, beta):
    return {
        k: np.array([[v]])
        for k, v in zip(("r", "alpha", "s", "beta"), (r, alpha, s, beta), strict=True)
    }


def _cols(x, tx, T):
    return {
        "frequency": np.atleast_1d(np.asarray(x, float)),
        "recency": np.atleast_1d(np.asarray(tx, float)),
        "T": np.atleast_1d(np.asarray(T, float)),
    }


# ---- the published fit ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return cdnow_calibration_summary()


@pytest.fixture(scope="module")
def mle(cdnow) -> clvkit.ParetoNBD:
    return clvkit.ParetoNBD().fit(cdnow, method="mle")


def test_cdnow_mle_matches_fader_hardie_lee(mle):
    # Fader, Hardie and Lee (2005), "A note on implementing the Pareto/NBD model in MATLAB"
    # and the BTYD walkthrough (Dziurzynski, Wadsworth, McCarthy), CDNOW 39-week calibration:
    # r = 0.553, alpha = 10.58, s = 0.606, beta = 11.67, log-likelihood = -9594.98.
    post = mle.posterior_
    got = {n: float(post[n].item()) for n in ("r", "alpha", "s", "beta")}
    assert round(got["r"], 3) == 0.553
    assert round(got["alpha"], 2) == 10.58
    assert round(got["s"], 3) == 0.606
    assert round(got["beta"], 2) == 11.67
    assert abs(mle.log_likelihood_ - (-9594.98)) < 0.01


def test_agrees_with_lifetimes(cdnow, mle):
    from lifetimes import ParetoNBDFitter

    # lifetimes' Nelder-Mead starts from a random point (numpy's global generator) and stops at
    # tol=1e-4 by default, where beta (sd 6) still wanders by ~2e-4 relative between starts; at
    # tol=1e-10 it converges to clvkit's maximum to ~1e-7.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.random.seed(0)  # noqa: NPY002 - lifetimes draws its start from the global generator
        lt = ParetoNBDFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"], tol=1e-10)
    ours = np.array([float(mle.posterior_[n].item()) for n in ("r", "alpha", "s", "beta")])
    theirs = lt.params_[["r", "alpha", "s", "beta"]].to_numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-4)
    # predictions at the same parameters: every CDNOW customer
    lt.params_ = pd.Series(dict(zip(("r", "alpha", "s", "beta"), ours, strict=True)))
    cols = SPEC.customer_columns(cdnow)
    prm = _params(*ours)
    pa = SPEC.probability_alive(prm, cols, np.array([0.0]))[0, :, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pa_lt = lt.conditional_probability_alive(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    np.testing.assert_allclose(pa, np.asarray(pa_lt), rtol=1e-4, atol=0)
    t = np.array([1.0, 10.0, 39.0, 78.0, 520.0])
    ep = SPEC.expected_purchases(prm, cols, t)[0]
    for j, tj in enumerate(t):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            e_lt = lt.conditional_expected_number_of_purchases_up_to_time(
                tj, cdnow["frequency"], cdnow["recency"], cdnow["T"]
            )
        np.testing.assert_allclose(ep[:, j], np.asarray(e_lt), rtol=1e-4, atol=0)


def test_where_lifetimes_is_not_finite():
    """lifetimes 0.11.3 is accurate on CDNOW-like parameters (checked against mpmath: P(alive)
    to ~1e-13 up to x = 1,000) but returns NaN at extreme parameters, e.g. r = alpha_small,
    s = beta_big: (r, alpha, s, beta) = (1e-4, 1e4, 1e4, 1e-4); clvkit is finite and matches
    mpmath there."""
    from lifetimes import ParetoNBDFitter

    prm = (1e-4, 1e4, 1e4, 1e-4)
    x, tx, T = 3, 0.5, 1e3
    lt = ParetoNBDFitter()
    lt.params_ = pd.Series(dict(zip(("r", "alpha", "s", "beta"), prm, strict=True)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ll_lt = -lt._negative_log_likelihood(list(prm), *(np.array([v]) for v in (x, tx, T, 1)), 0)
        pa_lt = float(lt.conditional_probability_alive(x, tx, T))
    assert np.isnan(ll_lt) and np.isnan(pa_lt)
    ll = SPEC.loglik(_params(*prm), _cols(x, tx, T))[0, 0]
    assert ll == pytest.approx(float(ref_loglik(*prm, x, tx, T)), rel=1e-12)
    pa = SPEC.probability_alive(_params(*prm), _cols(x, tx, T), np.array([0.0]))[0, 0, 0]
    assert pa == 0.0 and float(ref_alive(*prm, x, tx, T)) < 1e-300


# ---- numerics against mpmath ------------------------------------------------------------------


def _k_cases():
    rng = np.random.default_rng(1)
    cases = []
    while len(cases) < 60:
        p = 10 ** rng.uniform(-4, 4)
        q = 10 ** rng.uniform(-4, 4) + rng.integers(0, 2)
        if p + q - 1 <= 1e-4:
            continue
        A = 10 ** rng.uniform(-4, 5)
        B = A * 10 ** rng.uniform(-0.6, 0.6) if len(cases) % 3 == 0 else 10 ** rng.uniform(-4, 5)
        cases.append((p, q, A, B))
    # both sides of the series / quadrature seam
    for z in (ZMAX - 1e-9, ZMAX + 1e-9):
        cases += [(1.5, 0.7, 10.0 * (1 - z), 10.0), (2.5, 1.7, 10.0, 10.0 * (1 - z))]
    # large s and beta (NUTS warm-up): the quadrature stops early on its concavity bound
    cases += [
        (0.5, 1001.0, 10.0, 20000.0),
        (1001.5, 0.6, 20000.0, 11.0),
        (3.5, 1e4 + 1.0, 1e-2, 2e5),
        (0.55, 31.0, 10.6, 600.0),
        (30.55, 4.0, 10.6, 156.0),
    ]
    return cases


@pytest.mark.parametrize("p, q, A, B", _k_cases())
def test_log_k_and_gradient_against_mpmath(p, q, A, B):
    d = np.empty(4)
    v = log_k(p, q, p + q - 1, A, B, np.log(A), np.log(B), np.log(p + q - 1), d, True)
    ref = ref_log_k(p, q, A, B)
    assert abs(v - float(ref)) <= 1e-12 * max(1.0, abs(float(ref)))
    refs = [
        mp.diff(lambda u: ref_log_k(u, q, A, B), p),
        mp.diff(lambda u: ref_log_k(p, u, A, B), q),
        mp.diff(lambda u: ref_log_k(p, q, u, B), A),
        mp.diff(lambda u: ref_log_k(p, q, A, u), B),
    ]
    for k in range(4):
        rk = float(refs[k])
        assert abs(d[k] - rk) <= 1e-8 * max(abs(rk), 1e-8), (k, d[k], rk)


EXTREMES = [
    # (r, alpha, s, beta, x, t_x, T)
    (0.553, 10.58, 0.606, 11.67, 2, 30.43, 38.86),
    (0.553, 10.58, 0.606, 11.67, 0, 0.0, 38.86),
    (0.553, 10.58, 0.606, 11.67, 10_000, 99_999.0, 1e5),
    (0.553, 10.58, 0.606, 11.67, 10_000, 5.0, 1e5),
    (1e-4, 1e-4, 1e-4, 1e-4, 0, 0.0, 1e5),
    (1e4, 1e4, 1e4, 1e4, 10_000, 1e5, 1e5),  # t_x = T
    (1e-4, 1e4, 1e4, 1e-4, 3, 0.5, 1e3),
    (1e4, 1e-4, 1e-4, 1e4, 100, 1e-3, 1e5),
    (2.0, 1e-4, 3.0, 1e4, 1, 0.0, 1e-3),  # t_x = 0 with x > 0
    (0.3, 1e3, 1e-4, 1e-4, 10_000, 1e4, 1e5),
    (1.0, 1.0, 1.0, 1.0, 5, 5.0, 5.0),  # integer parameters
]


@pytest.mark.parametrize("case", EXTREMES)
def test_loglik_and_alive_finite_and_exact_at_extremes(case):
    *prm, x, tx, T = case
    ll = SPEC.loglik(_params(*prm), _cols(x, tx, T))[0, 0]
    ref = float(ref_loglik(*prm, x, tx, T))
    assert np.isfinite(ll)
    assert abs(ll - ref) <= 1e-10 * max(1.0, abs(ref))
    pa = SPEC.probability_alive(_params(*prm), _cols(x, tx, T), np.array([0.0]))[0, 0, 0]
    pa_ref = float(ref_alive(*prm, x, tx, T))
    assert np.isfinite(pa) and 0.0 <= pa <= 1.0
    assert pa == pytest.approx(pa_ref, rel=1e-10, abs=1e-300)


@pytest.mark.parametrize("case", EXTREMES[:9])
def test_gradient_against_mpmath(case):
    *prm, x, tx, T = case
    stats = compress_pnbd(np.array([x]), np.array([tx]), np.array([T]))
    _, grad = pnbd_loglik_grad(np.log(prm), stats)
    assert np.isfinite(grad).all()
    for k in range(4):

        def f(e, k=k):
            v = list(prm)
            v[k] = mp.exp(e)
            return ref_loglik(*v, x, tx, T)

        rk = float(mp.diff(f, mp.log(prm[k])))
        assert abs(grad[k] - rk) <= 1e-8 * max(abs(rk), 1.0), (k, grad[k], rk)


def test_gradient_against_finite_differences(cdnow):
    stats = compress_pnbd(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    theta = np.log([0.6, 9.0, 0.9, 20.0])
    _, g = pnbd_loglik_grad(theta, stats)
    h = 1e-6
    for k in range(4):
        e = np.zeros(4)
        e[k] = h
        fd = (pnbd_loglik_grad(theta + e, stats)[0] - pnbd_loglik_grad(theta - e, stats)[0]) / 2 / h
        assert g[k] == pytest.approx(fd, rel=1e-6, abs=1e-5)


@pytest.mark.parametrize("s", [0.606, 1.0, 1.0 + 1e-12, 1.0 - 1e-9, 3.0, 1e-4, 1e4])
def test_expected_purchases_against_mpmath(s):
    r, alpha, beta = 0.553, 10.58, 11.67
    x, tx, T = 3, 20.0, 38.0
    t = np.array([0.5, 10.0, 52.0, 1e4])
    got = SPEC.expected_purchases(_params(r, alpha, s, beta), _cols(x, tx, T), t)[0, 0]
    pa = ref_alive(r, alpha, s, beta, x, tx, T)
    B = mp.mpf(beta) + T
    for j, tj in enumerate(t):
        surv = mp.quad(lambda u: (B / (B + u)) ** s, [0, min(tj, 1), tj])
        ref = float(pa * (r + x) / (alpha + T) * surv)
        assert got[j] == pytest.approx(ref, rel=1e-10)
    assert np.isfinite(got).all()


def ref_pmf(r, alpha, s, beta, x, tx, T, t, k):
    """P(k purchases in (T, T+t] | history) by mpmath: dead now, or alive and then dead at u in
    (0, t) after k purchases, or alive throughout."""
    pa = ref_alive(r, alpha, s, beta, x, tx, T)
    m, a, b = mp.mpf(r) + x, mp.mpf(alpha) + T, mp.mpf(beta) + T

    def nb(u):
        pi = a / (a + u)
        return (
            mp.exp(mp.loggamma(m + k) - mp.loggamma(m) - mp.loggamma(k + 1)) * pi**m * (1 - pi) ** k
        )

    dens = lambda u: s * b**s * (b + u) ** (-s - 1) * nb(u)  # noqa: E731
    inner = (b / (b + t)) ** s * nb(t) + mp.quad(dens, [0, t / 100, t / 10, t])
    return float(pa * inner + (1 - pa) * (k == 0))


@pytest.mark.parametrize(
    "case",
    [
        (0.553, 10.58, 0.606, 11.67, 2, 30.43, 38.86, 39.0),
        (0.553, 10.58, 0.606, 11.67, 0, 0.0, 0.0, 39.0),  # a new customer
        (2.0, 0.5, 5.0, 300.0, 40, 50.0, 60.0, 13.0),
        (1e-3, 1e-2, 0.2, 1e3, 1, 2.0, 100.0, 500.0),
    ],
)
def test_probability_of_purchases_against_mpmath(case):
    *prm, x, tx, T, t = case
    k = np.array([0.0, 1.0, 2.0, 5.0, 20.0])
    got = SPEC.probability_of_purchases(_params(*prm), _cols(x, tx, T), t, k)[0, 0]
    for j, kj in enumerate(k):
        ref = ref_pmf(*prm, x, tx, T, t, int(kj))
        assert got[j] == pytest.approx(ref, rel=1e-8, abs=1e-14), (kj, got[j], ref)


def test_new_customer_expectation_and_alive():
    prm = _params(0.553, 10.58, 0.606, 11.67)
    new = SPEC.new_customer_columns(2)
    assert (SPEC.probability_alive(prm, new, np.array([0.0])) == 1.0).all()
    # E[X(t)] of a new customer: r beta / (alpha (s - 1)) [1 - (beta/(beta+t))^(s-1)]
    t = 39.0
    ref = 0.553 * 11.67 / (10.58 * (0.606 - 1)) * (1 - (11.67 / (11.67 + t)) ** (0.606 - 1))
    got = SPEC.expected_purchases(prm, new, np.array([t]))[0, :, 0]
    np.testing.assert_allclose(got, ref, rtol=1e-12)


def test_native_kernel_equals_numpy_objective(cdnow):
    from clvkit.inference.sampling import prior_arrays
    from clvkit.models.pnbd.kernels import pnbd_native_kernel

    model = clvkit.ParetoNBD()
    stats, _ = model._prepare(cdnow)
    priors = model._resolve_priors()
    names = model.spec.param_names
    codes, pars = prior_arrays(names, priors, ("positive",) * 4)
    kern = pnbd_native_kernel(stats, codes, pars)
    eta = np.log([0.6, 9.0, 0.9, 20.0])
    grad = np.empty(4)
    lp = kern.logp(eta, *kern.arrays, grad)
    ll, _ = pnbd_loglik_grad(eta, stats)
    zero = np.zeros(4)
    prior = kern.logp(eta, *kern.arrays, zero) - ll  # the prior and Jacobian part
    assert np.isfinite(prior)
    np.testing.assert_allclose(lp - prior, ll, rtol=1e-13)
    # the per-customer log-likelihood sums to the objective
    per = SPEC.loglik(_params(*np.exp(eta)), SPEC.customer_columns(cdnow))
    assert per.sum() == pytest.approx(ll, rel=1e-11)


def test_fit_methods_and_errors(cdnow):
    lap = clvkit.ParetoNBD().fit(cdnow, method="laplace", random_seed=0, draws=200, chains=2)
    assert lap.posterior_["r"].shape == (2, 200)
    assert float(lap.posterior_["r"].mean()) == pytest.approx(0.553, abs=0.01)
    mp_ = clvkit.ParetoNBD().fit(cdnow, method="map")
    assert float(mp_.posterior_["r"].item()) == pytest.approx(0.55, abs=0.02)
    none = cdnow.assign(frequency=0, recency=0.0)
    with pytest.raises(clvkit.ClvkitError, match=r"frequency.*Suggestion"):
        clvkit.ParetoNBD().fit(none, method="mle")
    with pytest.raises(clvkit.ClvkitError, match=r"nuts.*Suggestion|Suggestion"):
        clvkit.ParetoNBD().fit(cdnow, method="nuts", sampler="pymc", draws=10, tune=10)


def test_tabulated_series_equals_pair_by_pair(cdnow):
    """The likelihood's tabulated series (one table per frequency, ``k_table``) equals the
    pair-by-pair evaluation (``log_k`` per customer, ``pnbd_row``), here at a posterior-tail
    point where the series is long and some pairs use quadrature."""
    from clvkit.models.pnbd.numerics import pnbd_row

    cols = SPEC.customer_columns(cdnow)
    for prm in [(0.553, 10.58, 0.606, 11.67), (0.55, 10.58, 6.0, 250.0), (2.0, 30.0, 0.3, 2.0)]:
        per = SPEC.loglik(_params(*prm), cols)[0]
        g, d1, d2 = np.empty(4), np.empty(4), np.empty(4)
        x, tx, T = cols["frequency"], cols["recency"], cols["T"]
        one = [pnbd_row(*prm, x[i], tx[i], T[i], g, d1, d2, False) for i in range(0, x.size, 7)]
        np.testing.assert_allclose(per[::7], one, rtol=1e-12)
