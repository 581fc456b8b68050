"""BG/BB (Fader, Hardie and Shang 2010, "Customer-base analysis in a discrete-time noncontractual
setting", Marketing Science 29(6)): the published donations fit, agreement with lifetimes'
BetaGeoBetaBinomFitter, the likelihood and predictions against independent computations at
extremes, the gradient against finite differences."""

from __future__ import annotations

import warnings

import mpmath
import numpy as np
import pandas as pd
import pytest
from scipy import special

import clvkit
from clvkit.datasets import donations_summary
from clvkit.models import registry

PUBLISHED = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}


@pytest.fixture(scope="module")
def donations() -> pd.DataFrame:
    return donations_summary()


@pytest.fixture(scope="module")
def mle(donations):
    return clvkit.BetaGeoBetaBinom().fit(donations, method="mle")


def _params(values: dict[str, float]) -> dict[str, np.ndarray]:
    return {k: np.array([[float(v)]]) for k, v in values.items()}


def _histories() -> dict[str, np.ndarray]:
    """The 22 distinct donation histories (x, t_x, n = 6)."""
    x, tx = [0], [0]
    for f in range(1, 7):
        for r in range(f, 7):
            x.append(f)
            tx.append(r)
    return {"frequency": np.array(x, float), "recency": np.array(tx, float), "n": np.full(22, 6.0)}


def test_donations_loader(donations):
    """11,104 donors of the 1995 cohort, six opportunities (1996-2001) each."""
    assert len(donations) == 11_104
    assert (donations["n"] == 6).all()
    assert int((donations["frequency"] == 0).sum()) == 3464
    assert int((donations["frequency"] == 6).sum()) == 1203
    assert donations.attrs["time_unit"] == "Y" and donations.attrs["kind"] == "discrete"


def test_donations_mle_matches_published(mle):
    """FHS 2010, Table 2: alpha 1.204, beta 0.750, gamma 0.657, delta 2.783, LL -33,225.58."""
    est = {k: float(mle.posterior_[k].mean()) for k in PUBLISHED}
    for k, v in PUBLISHED.items():
        assert est[k] == pytest.approx(v, abs=6e-4), k
    assert mle.log_likelihood_ == pytest.approx(-33225.58, abs=0.01)
    assert mle.stats_.n_rows == 22 and mle.stats_.n_customers == 11_104


def _lifetimes_fitter(values: dict[str, float]):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoBetaBinomFitter
    f = BetaGeoBetaBinomFitter()
    f.params_ = pd.Series(values)
    return f


def test_lifetimes_agreement(mle):
    """P(alive at n + m) and E[purchases in the next m opportunities] equal lifetimes' closed
    forms (FHS eqs. 11, 13; lifetimes evaluated at our MLE) to 1e-10, and lifetimes' own fit
    gives our parameters."""
    est = {k: float(mle.posterior_[k].mean()) for k in PUBLISHED}
    lt = _lifetimes_fitter(est)
    h = _histories()
    x, tx, n = h["frequency"], h["recency"], h["n"]
    table = pd.DataFrame(h)
    m = np.arange(0, 6)
    ours_alive = mle.spec.probability_alive(_params(est), h, m.astype(float))[0]
    ours_cum = mle.spec.expected_purchases(_params(est), h, m.astype(float))[0]
    for j, mm in enumerate(m):
        alive = np.asarray(lt.conditional_probability_alive(mm, x, tx, n))
        np.testing.assert_allclose(ours_alive[:, j], alive, rtol=1e-10)
        if mm > 0:
            cum = np.asarray(lt.conditional_expected_number_of_purchases_up_to_time(mm, x, tx, n))
            np.testing.assert_allclose(ours_cum[:, j], cum, rtol=1e-10)
    # the estimator's methods (a summary over the one MLE draw) give the same
    pa = mle.probability_alive(table)["mean"].to_numpy()
    np.testing.assert_allclose(pa, ours_alive[:, 0], rtol=1e-12)
    # FHS 2010 (Table 3 discussion): a donor who gave in all six years is alive with 1 - 0
    assert pa[-1] == pytest.approx(1.0)
    # lifetimes' fit on the weighted file: same maximum (its tolerance is looser)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoBetaBinomFitter
        from lifetimes.datasets import load_donations
    d = load_donations()
    f = BetaGeoBetaBinomFitter().fit(d["frequency"], d["recency"], d["periods"], d["weights"])
    for k in PUBLISHED:
        assert float(f.params_[k]) == pytest.approx(est[k], rel=2e-3), k


def _direct_likelihood(a, b, g, d, x, tx, n, dps=40):
    """FHS eq. 5 in mpmath at ``dps`` digits: the Beta functions, and the sum over the death
    opportunities term by term (each term from the previous one by the exact ratio of Beta
    functions, B(p, q + 1) = B(p, q) q / (p + q), in ``dps``-digit arithmetic)."""
    with mpmath.workdps(dps):
        a, b, g, d = (mpmath.mpf(v) for v in (a, b, g, d))
        bab, bgd = mpmath.beta(a, b), mpmath.beta(g, d)
        total = mpmath.beta(a + x, b + (n - x)) / bab * mpmath.beta(g, d + n) / bgd
        term = mpmath.beta(a + x, b + (tx - x)) / bab * mpmath.beta(g + 1, d + tx) / bgd
        for i in range(int(n - tx)):
            total += term
            q1, q2 = b + (tx - x + i), d + tx + i
            term *= q1 / (a + x + q1) * q2 / (g + 1 + q2)
        return float(mpmath.log(total))


EXTREMES = [
    # (alpha, beta, gamma, delta), (x, t_x, n)
    ((1.204, 0.750, 0.657, 2.783), (0, 0, 6)),
    ((1e-4, 1e-4, 1e-4, 1e-4), (3, 10, 10_000)),
    ((1e4, 1e4, 1e4, 1e4), (5_000, 9_990, 10_000)),
    ((1e-4, 1e4, 1e4, 1e-4), (0, 0, 10_000)),
    ((1e4, 1e-4, 1e-4, 1e4), (10_000, 10_000, 10_000)),
    ((0.3, 2.0, 1.0, 0.5), (1, 1, 10_000)),
    ((50.0, 0.02, 0.02, 50.0), (2_000, 3_000, 10_000)),
]


@pytest.mark.parametrize(("p", "h"), EXTREMES)
def test_likelihood_against_mpmath(p, h):
    """The log-space recursion equals the direct sum at 40 digits for n up to 1e4 and
    parameters from 1e-4 to 1e4."""
    ours = clvkit.BetaGeoBetaBinom.spec.loglik(_params(dict(zip(PUBLISHED, p, strict=True))), {
        "frequency": np.array([h[0]], float), "recency": np.array([h[1]], float),
        "n": np.array([h[2]], float),
    })[0, 0]  # fmt: skip
    direct = _direct_likelihood(*p, *h)
    assert np.isfinite(ours)
    assert ours == pytest.approx(direct, rel=1e-9, abs=1e-9)


def _beta_rule(a: float, b: float, k: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Jacobi nodes and weights of Beta(a, b) on (0, 1) (exact for polynomials of
    degree < 2k)."""
    u, w = special.roots_jacobi(k, b - 1.0, a - 1.0)
    return (1.0 + u) / 2.0, w / w.sum()


def test_likelihood_against_enumeration_of_death_times():
    """Independent of the Beta-function algebra: the individual likelihood by enumerating the
    opportunity of death (alive at n, or dead before each of t_x + 1 .. n), a polynomial in
    p and theta, averaged over p ~ Beta(alpha, beta) and theta ~ Beta(gamma, delta) with
    Gauss-Jacobi rules (exact for these degrees)."""
    a, b, g, d = 1.5, 0.8, 0.7, 2.5
    spec = clvkit.BetaGeoBetaBinom.spec
    p, wp = _beta_rule(a, b)
    th, wt = _beta_rule(g, d)
    P, TH = np.meshgrid(p, th, indexing="ij")
    W = np.outer(wp, wt)
    for x, tx, n in [(0, 0, 4), (2, 3, 5), (1, 1, 3), (4, 4, 4), (3, 7, 10)]:
        like = np.zeros_like(P)
        for tau in range(tx + 1, n + 2):  # alive at opportunities 1..tau-1
            pr = (1 - TH) ** n if tau == n + 1 else (1 - TH) ** (tau - 1) * TH
            like += pr * P**x * (1 - P) ** (tau - 1 - x)
        ours = spec.loglik(_params(dict(zip(PUBLISHED, (a, b, g, d), strict=True))), {
            "frequency": np.array([x], float), "recency": np.array([tx], float),
            "n": np.array([n], float),
        })[0, 0]  # fmt: skip
        assert ours == pytest.approx(np.log(np.sum(W * like)), rel=1e-12)


@pytest.mark.parametrize(
    "theta",
    [
        np.log([1.204, 0.750, 0.657, 2.783]),
        np.log([1e-3, 50.0, 20.0, 1e-2]),
        np.log([30, 30, 30, 30]),
    ],
)
def test_gradient_against_finite_differences(theta):
    """The analytic gradient (log scale) equals central differences of the objective."""
    rng = np.random.default_rng(5)
    n = rng.integers(1, 200, 300).astype(float)
    tx = np.floor(rng.random(300) * (n + 1))
    x = np.where(tx > 0, np.minimum(tx, 1 + np.floor(rng.random(300) * tx)), 0.0)
    from clvkit.models.bgbb.likelihood import bgbb_loglik_grad, compress_bgbb

    s = compress_bgbb(x, tx, n)
    _, g = bgbb_loglik_grad(theta, s)
    h = 1e-6
    fd = np.array(
        [
            (bgbb_loglik_grad(theta + h * e, s)[0] - bgbb_loglik_grad(theta - h * e, s)[0])
            / (2 * h)
            for e in np.eye(4)
        ]
    )
    np.testing.assert_allclose(g, fd, rtol=1e-5, atol=1e-4)


def test_tables_equal_direct_values():
    """The Gamma/digamma tables (small n next to the rows) give the directly computed
    log-likelihood, gradient and per-customer terms."""
    from clvkit.models.bgbb.likelihood import bgbb_loglik_grad, bgbb_terms, compress_bgbb

    h = _histories()
    s = compress_bgbb(h["frequency"], h["recency"], h["n"], np.arange(1.0, 23.0))
    for theta in (np.log([1.204, 0.750, 0.657, 2.783]), np.log([1e-4, 1e4, 3.0, 1e-3])):
        a, ga = bgbb_loglik_grad(theta, s, tables=True)
        b, gb = bgbb_loglik_grad(theta, s, tables=False)
        assert a == pytest.approx(b, rel=1e-13)
        np.testing.assert_allclose(ga, gb, rtol=1e-11, atol=1e-9)
        p = np.exp(theta)[:, None]
        ta = bgbb_terms(*p, h["frequency"], h["recency"], h["n"], tables=True)
        tb = bgbb_terms(*p, h["frequency"], h["recency"], h["n"], tables=False)
        # lnG near 1e4 is ~8e4: its rounding (ulp 1.5e-11) bounds the absolute agreement
        np.testing.assert_allclose(ta, tb, rtol=1e-12, atol=1e-10)


def test_survival_sum_against_mpmath():
    """sum_{j=1}^{k} B(gamma, a+j)/B(gamma, a) (the expected alive opportunities) equals mpmath
    on both routes (term by term up to DIRECT_MAX, the Gamma closed form beyond), at gamma near
    and equal to 1 and for large a."""
    from clvkit.models.bgbb.predictions import DIRECT_MAX, survival_sum

    cases = [(1.0, 5.0, 7), (1.0 + 1e-9, 5.0, 7), (0.657, 8.783, 3), (30.0, 1e4, 10),
             (1e-4, 1e-4, 50), (1.0 + 1e-3, 1e4, 1500), (2.5, 3.0, DIRECT_MAX + 500)]  # fmt: skip
    for g, a, k in cases:
        ours = float(survival_sum(np.array(g), np.array(a), np.array([float(k)]))[0])
        with mpmath.workdps(30):
            direct = mpmath.fsum(mpmath.beta(g, a + j) / mpmath.beta(g, a) for j in range(1, k + 1))
        assert ours == pytest.approx(float(direct), rel=1e-10), (g, a, k)


def test_predictions_at_extremes_are_finite():
    """P(alive), expectations and P(k) stay finite and in range for n up to 1e4 and
    parameters from 1e-4 to 1e4."""
    spec = clvkit.BetaGeoBetaBinom.spec
    cols = {
        "frequency": np.array([0.0, 3.0, 5000.0, 10_000.0]),
        "recency": np.array([0.0, 10.0, 9990.0, 10_000.0]),
        "n": np.full(4, 10_000.0),
    }
    t = np.array([0.0, 1.0, 10.0, 100.0, 5000.0])
    for p in EXTREMES:
        params = _params(dict(zip(PUBLISHED, p[0], strict=True)))
        alive = spec.probability_alive(params, cols, t)
        cum = spec.expected_purchases(params, cols, t)
        pmf = spec.probability_of_purchases(params, cols, 10.0, np.arange(11.0))
        assert np.isfinite(alive).all() and alive.min() >= 0 and alive.max() <= 1
        assert np.isfinite(cum).all() and np.diff(cum, axis=-1).min() >= -1e-9
        assert (cum[..., 2] <= 10 + 1e-9).all()
        np.testing.assert_allclose(pmf.sum(-1), 1.0, atol=1e-9)
        np.testing.assert_allclose(pmf @ np.arange(11.0), cum[..., 2], rtol=1e-7, atol=1e-12)


def test_donations_holdout_prediction(mle, donations):
    """In-sample check of the fit: 11,104 x E[purchases in the first 6 opportunities of a new
    donor] at the MLE is within 1% of the 24,615 repeat donations observed in 1996-2001."""
    per = float(mle.expected_purchases_new_customer(6).iloc[0])
    total = 11_104 * per
    assert total == pytest.approx(float(donations["frequency"].sum()), rel=0.01)


def test_nuts_on_donations(donations):
    """The compiled kernel samples the posterior: means near the MLE, R-hat ~ 1."""
    m = clvkit.BetaGeoBetaBinom().fit(donations, method="nuts", draws=500, random_seed=3)
    s = m.summary()
    for k, v in PUBLISHED.items():
        assert s.loc[k, "mean"] == pytest.approx(v, rel=0.05), k
        assert s.loc[k, "r_hat"] < 1.01


def test_kernel_equals_objective(mle):
    """The nutpie kernel is the numpy objective plus log prior and log Jacobian (value and
    gradient), at the default priors."""
    from clvkit.inference.sampling import prior_arrays
    from clvkit.models.bgbb.kernels import bgbb_kernel_arrays, bgbb_logp

    names = tuple(PUBLISHED)
    priors = mle._resolve_priors()
    codes, pars = prior_arrays(names, priors, ("positive",) * 4)
    objective = mle._objective(mle.stats_, priors, jacobian=True)
    for eta in (np.log([1.1, 0.8, 0.7, 2.5]), np.log([0.01, 30.0, 5.0, 0.2])):
        grad = np.zeros(4)
        val = bgbb_logp(eta, *bgbb_kernel_arrays(mle.stats_), codes, pars, grad)
        ov, og = objective(eta)
        assert val == pytest.approx(ov, rel=1e-12)
        np.testing.assert_allclose(grad, og, rtol=1e-10, atol=1e-8)


def test_registry_and_save_load(mle, tmp_path):
    assert registry.get("bgbb") is clvkit.BetaGeoBetaBinom
    assert clvkit.BetaGeoBetaBinom.spec.label == "BG/BB"
    mle.save(tmp_path / "bgbb.nc")
    back = clvkit.load(tmp_path / "bgbb.nc")
    assert type(back) is clvkit.BetaGeoBetaBinom
    assert back.log_likelihood_ == pytest.approx(mle.log_likelihood_, rel=1e-14)


def test_bad_tables_refused(donations):
    """Non-integer, inconsistent or missing columns: ClvkitError naming the column, the count
    and one row."""
    bad = donations.iloc[:10].copy()
    bad["recency"] = bad["recency"].astype(float)
    bad.iloc[2, bad.columns.get_loc("recency")] = 7.0
    with pytest.raises(
        clvkit.ClvkitError, match=r"column 'recency'.*after the last opportunity.*1 of 10"
    ):
        clvkit.BetaGeoBetaBinom().fit(bad)
    half = donations.iloc[:10].astype(float)
    half.iloc[0, 0] = 0.5
    with pytest.raises(clvkit.ClvkitError, match=r"column 'frequency'.*whole number.*Suggestion"):
        clvkit.BetaGeoBetaBinom().fit(half)
    cdnow = clvkit.datasets.cdnow_calibration_summary()
    with pytest.raises(clvkit.ClvkitError, match=r"lacks column\(s\) \['n'\].*opportunity_summary"):
        clvkit.BetaGeoBetaBinom().fit(cdnow)
    none = donations.copy()
    none.attrs = {}
    with pytest.raises(clvkit.ClvkitError, match="time_unit"):
        clvkit.BetaGeoBetaBinom().fit(none)
