"""MBG/NBD (clvkit.ModifiedBetaGeo, spec "mbgnbd"): its math against lifetimes, numerical
integration and mpmath; its likelihood's numpy, numba and PyMC forms as one function; extremes;
simulated histories. The layers above ``models/`` are in tests/test_mbgnbd_layers.py and the
calibration over replications in tests/test_mbgnbd_calibration.py.

lifetimes' ModifiedBetaGeoFitter uses the same parametrisation as Batislam et al. (2007) and
clvkit: (r, alpha, a, b) with p ~ Beta(a, b), no offset on b (its log-likelihood has
B(a, b + x + 1) / B(a, b) and a / (b + x), as ours).
"""

from __future__ import annotations

import itertools
import math
import warnings

import mpmath as mp
import numpy as np
import pandas as pd
import pytest
from lifetimes import ModifiedBetaGeoFitter
from scipy import integrate

import clvkit
from clvkit.datasets import cdnow_calibration_summary
from clvkit.inference import sampling
from clvkit.inference.estimator import resolve_priors
from clvkit.models import registry
from clvkit.models.mbgnbd.likelihood import mbg_loglik, mbg_loglik_grad
from clvkit.models.mbgnbd.model import mbg_pymc
from clvkit.models.mbgnbd.predictions import mbg_probability_alive

Model = clvkit.ModifiedBetaGeo
SPEC = Model.spec

#: MBG/NBD maximum likelihood on the CDNOW 39-week calibration summary (clvkit and lifetimes).
CDNOW_MLE = {"r": 0.524838, "alpha": 6.182988, "a": 0.891356, "b": 1.614000}
CDNOW_LL = -9582.1327


@pytest.fixture(scope="module")
def rfm() -> pd.DataFrame:
    return cdnow_calibration_summary()


@pytest.fixture(scope="module")
def lifetimes_fit(rfm) -> ModifiedBetaGeoFitter:
    return ModifiedBetaGeoFitter().fit(rfm["frequency"], rfm["recency"], rfm["T"])


def _params(point: dict[str, float]) -> dict[str, np.ndarray]:
    return {n: np.array([[float(point[n])]]) for n in SPEC.param_names}


def _cols(x, tx, T) -> dict[str, np.ndarray]:
    return {
        "frequency": np.atleast_1d(np.asarray(x, float)),
        "recency": np.atleast_1d(np.asarray(tx, float)),
        "T": np.atleast_1d(np.asarray(T, float)),
    }


# ---- CDNOW against lifetimes ---------------------------------------------------------------------


def test_mle_on_cdnow_matches_lifetimes(rfm, lifetimes_fit):
    """Same data, same likelihood: the MLE and the maximised log-likelihood agree with
    lifetimes' ModifiedBetaGeoFitter to 1e-5 relative (both optimisers stop near 1e-7)."""
    fit = Model().fit(rfm, method="mle")
    ours = {n: float(fit.posterior_[n].item()) for n in SPEC.param_names}
    theirs = lifetimes_fit.params_
    for n in SPEC.param_names:
        assert ours[n] == pytest.approx(float(theirs[n]), rel=1e-5), n
        assert ours[n] == pytest.approx(CDNOW_MLE[n], rel=1e-5), n
    assert fit.log_likelihood_ == pytest.approx(CDNOW_LL, abs=1e-3)
    # lifetimes' objective is the mean negative log-likelihood
    nll = lifetimes_fit._negative_log_likelihood(
        np.log(theirs[["r", "alpha", "a", "b"]].to_numpy()),
        rfm["frequency"].to_numpy(), rfm["recency"].to_numpy(), rfm["T"].to_numpy(),
        np.ones(len(rfm)), 0.0,
    )  # fmt: skip
    assert -nll * len(rfm) == pytest.approx(CDNOW_LL, abs=1e-3)
    # BG/NBD on the same data: -9582.4; MBG/NBD fits CDNOW as well (one-time buyers may be gone)
    bg = registry.get("bgnbd")().fit(rfm, method="mle")
    assert bg.log_likelihood_ == pytest.approx(-9582.43, abs=0.01)


def test_predictions_on_cdnow_match_lifetimes(rfm, lifetimes_fit):
    """At lifetimes' MLE, for all 2,357 customers: P(alive), conditional expected purchases at
    several horizons, and the new customer's expected purchases and P(n purchases), equal to
    lifetimes' closed forms (scipy hyp2f1, finite everywhere here) to 1e-8 relative."""
    point = lifetimes_fit.params_.to_dict()
    params = _params(point)
    cols = SPEC.customer_columns(rfm)
    x, tx, T = rfm["frequency"], rfm["recency"], rfm["T"]
    pa = SPEC.probability_alive(params, cols, np.array([0.0]))[0, :, 0]
    theirs = lifetimes_fit.conditional_probability_alive(x, tx, T)
    np.testing.assert_allclose(pa, theirs, rtol=1e-12)
    assert pa[x.to_numpy() == 0].max() < 1.0  # unlike BG/NBD, one-time buyers may be gone
    t = np.array([1.0, 10.0, 39.0, 52.0, 104.0])
    ep = SPEC.expected_purchases(params, cols, t)[0]
    for j, tj in enumerate(t):
        ref = lifetimes_fit.conditional_expected_number_of_purchases_up_to_time(tj, x, tx, T)
        ref = np.asarray(ref, dtype=float)
        assert np.isfinite(ref).all()
        np.testing.assert_allclose(ep[:, j], ref, rtol=1e-8)
    new = SPEC.new_customer_columns(1)
    ours_new = SPEC.expected_purchases(params, new, t)[0, 0]
    ref_new = [lifetimes_fit.expected_number_of_purchases_up_to_time(tj) for tj in t]
    np.testing.assert_allclose(ours_new, ref_new, rtol=1e-8)
    k = np.arange(8.0)
    pmf = SPEC.probability_of_purchases(params, new, 39.0, k)[0, 0]
    ref_pmf = [lifetimes_fit.probability_of_n_purchases_up_to_time(39.0, int(n)) for n in k]
    np.testing.assert_allclose(pmf, ref_pmf, rtol=1e-8)
    # the estimator's summaries are the spec's values at one draw
    fit = Model.from_params(**point, time_unit="W")
    got = fit.probability_alive(rfm)["mean"].to_numpy()
    np.testing.assert_allclose(got, theirs, rtol=1e-12)


def test_one_time_buyers_may_be_gone(rfm):
    """The issue's complaint about BG/NBD (P(alive) = 1 for every one-time buyer): MBG/NBD's
    P(alive) of a customer without repeat purchases falls with the time since the first
    purchase, and a new customer is alive after its first purchase with probability b/(a+b)."""
    params = _params(CDNOW_MLE)
    T = np.array([0.0, 1.0, 39.0, 104.0])
    pa = SPEC.probability_alive(params, _cols(np.zeros(4), np.zeros(4), T), np.array([0.0]))
    pa = pa[0, :, 0]
    r, alpha, a, b = (CDNOW_MLE[n] for n in ("r", "alpha", "a", "b"))
    want = 1.0 / (1.0 + a / b * ((alpha + T) / alpha) ** r)
    np.testing.assert_allclose(pa, want, rtol=1e-14)
    assert pa[0] == pytest.approx(b / (a + b), rel=1e-14)
    assert np.all(np.diff(pa) < 0)
    assert pa.round(4).tolist() == [0.6442, 0.626, 0.3893, 0.2854]


# ---- the likelihood: integration, gradient, one function ---------------------------------------

POINTS = [
    (0.524838, 6.182988, 0.891356, 1.614),  # CDNOW MLE
    (2.0, 0.3, 5.0, 0.2),
    (1e-3, 1e3, 1e-3, 1e3),
    (50.0, 1e-2, 20.0, 1e-2),
    (1e-4, 1e-4, 1e4, 1e4),
]


def _individual(lam, p, x, tx, T):
    """L(lambda, p): alive at T after x + 1 survived coin flips, or dropped right after the
    last purchase (for x = 0 right after the first one)."""
    return (1 - p) ** (x + 1) * lam**x * math.exp(-lam * T) + p * (1 - p) ** x * lam**x * math.exp(
        -lam * tx
    )


@pytest.mark.parametrize(
    ("x", "tx", "T"), [(0, 0.0, 30.0), (0, 0.0, 2.0), (1, 5.0, 30.0), (4, 20.0, 25.0)]
)
def test_loglik_matches_double_integral(x, tx, T):
    """The closed form against a direct two-dimensional integration over p and lambda of the
    individual likelihood times the Gamma(r, alpha) and Beta(a, b) densities (scipy; shapes
    above 1, so the integrands are smooth)."""
    r, alpha, a, b = 2.0, 4.0, 2.0, 3.0
    c_gam = alpha**r / math.gamma(r)
    c_bet = 1.0 / (math.gamma(a) * math.gamma(b) / math.gamma(a + b))

    def prior(lam, p):  # Gamma(r, alpha) and Beta(a, b) densities
        return (
            c_gam
            * lam ** (r - 1)
            * math.exp(-alpha * lam)
            * c_bet
            * p ** (a - 1)
            * (1 - p) ** (b - 1)
        )

    def integrand(lam, p):
        return _individual(lam, p, x, tx, T) * prior(lam, p)

    val = 0.0
    for lo, hi in ((0.0, 1.0), (1.0, 60.0)):  # lambda in pieces, p in [0, 1]
        val += integrate.dblquad(integrand, 0.0, 1.0, lo, hi, epsabs=0, epsrel=1e-10)[0]
    ll = SPEC.loglik(_params(dict(zip(SPEC.param_names, (r, alpha, a, b), strict=True))),
                     _cols(x, tx, T))[0, 0]  # fmt: skip
    assert ll == pytest.approx(math.log(val), rel=1e-8)
    # P(alive) is the share of the first term
    alive = 0.0
    for lo, hi in ((0.0, 1.0), (1.0, 60.0)):
        alive += integrate.dblquad(
            lambda lam, p: (1 - p) ** (x + 1) * lam**x * math.exp(-lam * T) * prior(lam, p),
            0.0, 1.0, lo, hi, epsabs=0, epsrel=1e-10,
        )[0]  # fmt: skip
    pa = mbg_probability_alive(r, alpha, a, b, x, tx, T)
    assert float(pa) == pytest.approx(alive / val, rel=1e-8)


def test_gradient_matches_finite_differences(rfm):
    stats_, _ = Model()._prepare(rfm)
    for point in POINTS[:4]:
        theta = np.log(point)
        value, grad = mbg_loglik_grad(theta, stats_)
        h = 1e-4  # central differences: truncation ~h^2, rounding ~eps |value| / h
        num = [
            (mbg_loglik_grad(theta + h * e, stats_)[0] - mbg_loglik_grad(theta - h * e, stats_)[0])
            / (2 * h)
            for e in np.eye(4)
        ]
        np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-8 * abs(value))


def test_numpy_numba_pymc_and_per_customer_logliks_are_one_function(rfm):
    model = Model()
    stats_, _ = model._prepare(rfm)
    names = SPEC.param_names
    supports = Model()._supports()
    priors = resolve_priors(Model._default_priors, None)
    codes, pars = sampling.prior_arrays(names, priors, supports)
    kern = model._native_kernel(stats_, codes, pars)
    numba_logp = sampling.kernel_logp(kern.logp, kern.arrays)
    pm_model = mbg_pymc(stats_, priors)
    potential = pm_model.compile_fn(
        pm_model.potentials[0], inputs=pm_model.free_RVs, point_fn=False
    )
    cols = SPEC.customer_columns(rfm)
    for given in POINTS:
        theta = np.log(given)
        point = tuple(np.exp(theta))
        ref = mbg_loglik(*point, stats_)
        assert np.isfinite(ref), point
        value, grad = mbg_loglik_grad(theta, stats_)
        assert value == pytest.approx(ref, rel=1e-12, abs=1e-9)
        k_value, k_grad = numba_logp(theta)
        p_grad = np.zeros(4)
        p_value = sampling.nb_prior(theta, codes, pars, p_grad)
        assert k_value - p_value == pytest.approx(ref, rel=1e-11, abs=1e-8), point
        np.testing.assert_allclose(k_grad - p_grad, grad, rtol=1e-7, atol=1e-6 * abs(ref))
        assert float(potential(*point)) == pytest.approx(ref, rel=1e-10, abs=1e-8), point
        per = SPEC.loglik({n: np.array([[v]]) for n, v in zip(names, point, strict=True)}, cols)
        assert float(per.sum()) == pytest.approx(ref, rel=1e-11, abs=1e-8), point


# ---- extremes ------------------------------------------------------------------------------------

VALUES = (1e-4, 1.0, 1e4)
GRID = np.array(list(itertools.product(VALUES, repeat=4)))  # 81 (r, alpha, a, b)
EXTREME = {n: GRID[:, i : i + 1] for i, n in enumerate(SPEC.param_names)}


def _extreme_customers() -> dict[str, np.ndarray]:
    rows = [
        (x, tx, T)
        for x in (0.0, 1.0, 100.0, 1e4)
        for T in (1.0, 1e3, 1e5)
        for tx in (0.0, T / 2, T)
        if not (x == 0 and tx > 0)
    ]
    return _cols(*(np.array(c) for c in zip(*rows, strict=True)))


def test_finite_and_bounded_on_extreme_grid():
    """Frequency up to 1e4, T up to 1e5, every parameter in {1e-4, 1, 1e4}: no NaN or Inf."""
    cols = _extreme_customers()
    t = np.array([0.0, 1.0, 1e3, 1e5])
    ll = SPEC.loglik(EXTREME, cols)  # a density in t_x and T: may exceed 0 at huge rates
    assert np.isfinite(ll).all()
    pa = SPEC.probability_alive(EXTREME, cols, t)
    assert np.isfinite(pa).all() and (pa >= 0).all() and (pa <= 1).all()
    assert (np.diff(pa, axis=-1) <= 1e-15).all()
    ep = SPEC.expected_purchases(EXTREME, cols, t)
    assert np.isfinite(ep).all() and (ep >= 0).all() and (ep[..., 0] == 0).all()
    x, T = cols["frequency"], cols["T"]
    upper = pa[..., :1] * (EXTREME["r"] + x)[..., None] / (EXTREME["alpha"] + T)[..., None] * t
    assert (ep <= upper * (1 + 1e-9)).all()
    pmf = SPEC.probability_of_purchases(EXTREME, cols, 1.0, np.array([0.0, 1.0, 10.0, 1e3]))
    assert np.isfinite(pmf).all() and (pmf >= 0).all() and (pmf.sum(-1) <= 1 + 1e-9).all()


def _mp_loglik(r, alpha, a, b, x, tx, T):
    mp.mp.dps = 50
    r, alpha, a, b, x, tx, T = (mp.mpf(v) for v in (r, alpha, a, b, x, tx, T))
    lb = lambda u, v: mp.loggamma(u) + mp.loggamma(v) - mp.loggamma(u + v)  # noqa: E731
    A = mp.loggamma(r + x) - mp.loggamma(r) + r * mp.log(alpha) + lb(a, b + x + 1) - lb(a, b)
    alive = (alpha + T) ** (-(r + x))
    dead = a / (b + x) * (alpha + tx) ** (-(r + x))
    return A + mp.log(alive + dead), alive / (alive + dead)


def _mp_purchases(r, alpha, a, b, x, T, s):
    """E[purchases in (T, T+s] | alive at T]: (a+b+x)/(a-1) (1 - (1+z)^-(r+x)
    2F1(r+x, b+x+1; a+b+x; z/(1+z))), z = s/(alpha+T) (Batislam et al. 2007; lifetimes)."""
    mp.mp.dps = 50
    a, bp, k, z = (mp.mpf(v) for v in (a, b + x + 1, r + x, s / (alpha + T)))
    h = mp.hyp2f1(k, bp, a + bp - 1, z / (1 + z))
    return (a + bp - 1) / (a - 1) * (1 - (1 + z) ** (-k) * h)


@pytest.mark.parametrize(
    ("r", "alpha", "a", "b", "x", "tx", "T", "s"),
    [
        (0.5248, 6.183, 0.8914, 1.614, 1e4, 9.9e4, 1e5, 52.0),
        (0.5248, 6.183, 0.8914, 1.614, 0.0, 0.0, 1e5, 52.0),
        (0.5248, 6.183, 0.8914, 1.614, 300.0, 290.0, 300.0, 52.0),
        (5.0, 1e-4, 3.0, 1e4, 1e3, 900.0, 1e3, 100.0),
        (1e4, 1e4, 1e4, 1e4, 1e4, 5e4, 1e5, 1e3),
        (1e-4, 1e-4, 1e-4 + 0.5, 1e-4, 10.0, 50.0, 100.0, 1e3),
        (1e-4, 1e4, 2.0, 1e4, 0.0, 0.0, 1e5, 1e3),
        (1e4, 1e-4, 1e-4 + 0.5, 1e-4, 1e4, 1e5, 1e5, 1.0),
    ],
)
def test_extreme_values_match_mpmath(r, alpha, a, b, x, tx, T, s):
    """Log-likelihood to 1e-12 relative or 1e-10 absolute (it is a sum of log-gamma terms of
    size up to ~1e5), P(alive) to 1e-12 relative (or 1e-300 absolute), expected purchases to
    1e-8 relative, against 50-digit mpmath."""
    params = _params({"r": r, "alpha": alpha, "a": a, "b": b})
    cols = _cols(x, tx, T)
    ll_ref, pa_ref = _mp_loglik(r, alpha, a, b, x, tx, T)
    ll = SPEC.loglik(params, cols)[0, 0]
    assert ll == pytest.approx(float(ll_ref), rel=1e-12, abs=1e-10)
    pa = SPEC.probability_alive(params, cols, np.array([0.0]))[0, 0, 0]
    assert pa == pytest.approx(float(pa_ref), rel=1e-12, abs=1e-300)
    ep = SPEC.expected_purchases(params, cols, np.array([s]))[0, 0, 0]
    ref = float(pa_ref * _mp_purchases(r, alpha, a, b, x, T, s))
    assert np.isfinite(ep)
    assert ep == pytest.approx(ref, rel=1e-8, abs=1e-300)


def test_lifetimes_breaks_where_we_do_not():
    """lifetimes' closed forms (scipy hyp2f1) overflow at large parameters; ours stay finite."""
    fitter = ModifiedBetaGeoFitter()
    fitter.params_ = pd.Series({"r": 1e4, "alpha": 1e-4, "a": 1e4, "b": 1e4})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = fitter.conditional_expected_number_of_purchases_up_to_time(
            52.0, np.array([300.0]), np.array([290.0]), np.array([300.0])
        )
        theirs_new = fitter.expected_number_of_purchases_up_to_time(10.0)
    assert not (np.isfinite(theirs).all() and np.isfinite(theirs_new))
    params = _params({"r": 1e4, "alpha": 1e-4, "a": 1e4, "b": 1e4})
    ours = SPEC.expected_purchases(params, _cols(300.0, 290.0, 300.0), np.array([52.0]))
    assert np.isfinite(ours).all() and (ours >= 0).all()
    # lambda ~ 1e8 per time unit: a new customer survives its first purchase with probability
    # b/(a+b) and then makes a geometric number of purchases with mean E[1/p] over Beta(a, b+1)
    new = SPEC.expected_purchases(params, SPEC.new_customer_columns(1), np.array([10.0]))
    assert new.item() == pytest.approx(0.5 * (1e4 + 1e4) / (1e4 - 1), rel=1e-9)


# ---- the generative process ---------------------------------------------------------------------


def _simulate_histories(point, n, T, H, seed):
    """New customers from the model's one generative process over ``T + H``; returns the
    calibration table (first ``T``) and the holdout counts (next ``H``)."""
    rng = np.random.default_rng(seed)
    fut = SPEC.simulate(_params(point), SPEC.new_customer_columns(n), T + H, rng)
    x = np.zeros(n)
    tx = np.zeros(n)
    hold = np.zeros(n)
    for batch in fut.batches:
        cust = np.repeat(batch.customer, batch.count)
        cal = batch.times <= T[cust]
        np.add.at(x, cust[cal], 1.0)
        np.maximum.at(tx, cust[cal], batch.times[cal])
        np.add.at(hold, cust[~cal], 1.0)
    alive = np.zeros(n, dtype=bool)  # alive at the end of calibration
    death = np.full(n, -np.inf)
    death[fut.alive_customer] = fut.death
    alive = death > T
    rfm = pd.DataFrame({"frequency": x, "recency": tx, "T": T})
    rfm.attrs["time_unit"] = "W"
    return rfm, hold, alive


def test_simulated_histories_calibrate_and_fit_recovers_parameters():
    """20,000 new customers simulated over their windows: P(alive at T | history) is calibrated
    (sum of probabilities vs number alive, within 4 sd; also among one-time buyers, whom
    BG/NBD would call all alive), and the MLE recovers the truth within 4 standard errors."""
    truth = {"r": 0.5, "alpha": 6.0, "a": 0.9, "b": 1.6}
    n = 20_000
    T = np.random.default_rng(1).uniform(20.0, 78.0, n)
    rfm, _, alive = _simulate_histories(truth, n, T, np.zeros(n), seed=2026)
    p = SPEC.probability_alive(_params(truth), SPEC.customer_columns(rfm), np.array([0.0]))
    p = p[0, :, 0]
    for mask in (np.ones(n, dtype=bool), rfm["frequency"].to_numpy() == 0):
        sd = math.sqrt(float(np.sum(p[mask] * (1 - p[mask]))))
        assert abs(p[mask].sum() - alive[mask].sum()) <= 4 * sd, (p[mask].sum(), alive[mask].sum())
    zero = rfm["frequency"].to_numpy() == 0
    assert alive[zero].mean() < 0.5  # most one-time buyers here are gone
    fit = Model().fit(rfm, method="mle")
    summ = fit.summary()
    for name, true in truth.items():
        assert abs(summ.loc[name, "mean"] - true) <= 4 * summ.loc[name, "sd"], summ


def test_purchase_window_probability_of_new_customers():
    """P(at least one repeat purchase at ages in (start, end]) of a new customer: 1 - P(X(end)
    = 0) for start = 0, and against 200,000 simulated new customers (4 standard errors)."""
    params = _params(CDNOW_MLE)
    start = np.array([0.0, 0.0, 10.0, 26.0])
    end = np.array([1.0, 39.0, 20.0, 52.0])
    got = SPEC.probability_purchase_in_window(params, start, end)[0]
    new = SPEC.new_customer_columns(1)
    for j in (0, 1):
        p0 = SPEC.probability_of_purchases(params, new, end[j], np.array([0.0]))[0, 0, 0]
        assert got[j] == pytest.approx(1.0 - p0, rel=1e-10)
    n = 200_000
    fut = SPEC.simulate(params, SPEC.new_customer_columns(n), 52.0, np.random.default_rng(9))
    hit = np.zeros((start.size, n), dtype=bool)
    for batch in fut.batches:
        cust = np.repeat(batch.customer, batch.count)
        for j in range(start.size):
            inside = (batch.times > start[j]) & (batch.times <= end[j])
            hit[j, cust[inside]] = True
    share = hit.mean(axis=1)
    se = np.sqrt(got * (1 - got) / n)
    assert np.all(np.abs(share - got) <= 4 * se), (share, got)
    # about a third of new customers drop out at their first purchase
    assert fut.alive_customer.size / n == pytest.approx(
        CDNOW_MLE["b"] / (CDNOW_MLE["a"] + CDNOW_MLE["b"]), abs=4 * math.sqrt(0.25 / n)
    )


def test_nuts_fit_on_cdnow(rfm):
    """NUTS through nutpie on the compiled kernel: converged, and the posterior centred near
    the MLE (within half a posterior sd)."""
    fit = Model().fit(rfm, method="nuts", chains=2, draws=300, tune=300, random_seed=4)
    diag = fit.diagnostics
    diag = diag() if callable(diag) else diag
    assert diag["divergences"] == 0 and diag["max_rhat"] < 1.02
    post = fit.posterior_
    for n in SPEC.param_names:
        sd = float(post[n].std())
        assert (
            abs(float(np.log(post[n]).median()) - math.log(CDNOW_MLE[n])) < 0.5 * sd / CDNOW_MLE[n]
        )


def test_probability_of_purchases_given_history_matches_simulation():
    """P(n purchases in (T, T + 39] | history) for a one-time buyer, a lapsed and a frequent
    buyer, against 200,000 simulated futures each (counts 0..5, within 4 standard errors)."""
    params = _params(CDNOW_MLE)
    cols = _cols([0.0, 2.0, 10.0], [0.0, 5.0, 37.0], [39.0, 39.0, 39.0])
    k = np.arange(6.0)
    pmf = SPEC.probability_of_purchases(params, cols, 39.0, k)[0]
    reps = 200_000
    big = {c: np.repeat(v, reps) for c, v in cols.items()}
    fut = SPEC.simulate(params, big, 39.0, np.random.default_rng(11))
    counts = np.zeros(3 * reps, dtype=np.int64)
    for batch in fut.batches:
        np.add.at(counts, batch.customer, batch.count)
    counts = counts.reshape(3, reps)
    for i in range(3):
        share = np.array([(counts[i] == n).mean() for n in range(k.size)])
        se = np.sqrt(pmf[i] * (1 - pmf[i]) / reps)
        assert np.all(np.abs(share - pmf[i]) <= 4 * se + 1e-12), (i, share, pmf[i])
