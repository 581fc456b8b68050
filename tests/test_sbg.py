"""The sBG model (Fader and Hardie 2007, "How to project customer retention", Journal of
Interactive Marketing 21(1); Fader and Hardie 2010, "Customer-base valuation in a contractual
setting: the perils of ignoring heterogeneity", Marketing Science 29(1)): the published fits,
projections with intervals, DERL, the math against mpmath, the fit machinery."""

from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pandas as pd
import pytest

import clvkit
from clvkit import ShiftedBetaGeo, cohort_counts
from clvkit.inference.sampling import prior_arrays
from clvkit.models.sbg import math as sm
from clvkit.models.sbg.kernels import sbg_logp
from clvkit.models.sbg.likelihood import stats_from_table

# FH 2007, Figure 1 / Appendix: percent of each 1,000-customer cohort alive at the start of
# years 0..12; the model is fitted on years 0..7
REGULAR = [100, 63.1, 46.8, 38.2, 32.6, 28.9, 26.2, 24.1, 22.3, 20.7, 19.4, 18.3, 17.3]
HIGH_END = [100, 86.9, 74.3, 65.3, 59.3, 55.1, 51.7, 49.1, 46.8, 44.5, 42.7, 40.9, 39.4]


def _fit_table(series):
    return cohort_counts(series[:8], "Y", size=1000)


@pytest.mark.parametrize(
    ("series", "alpha", "beta", "ll"),
    [(REGULAR, 0.704, 1.182, -1680.27), (HIGH_END, 0.668, 3.806, -1611.16)],
)
def test_published_mle(series, alpha, beta, ll):
    """FH 2007: regular alpha 0.704, beta 1.182; high end alpha 0.668, beta 3.806."""
    m = ShiftedBetaGeo().fit(_fit_table(series), method="mle")
    assert round(float(m.posterior_["alpha"].item()), 3) == alpha
    assert round(float(m.posterior_["beta"].item()), 3) == beta
    assert round(m.log_likelihood_, 2) == ll
    assert m.time_unit_ == "Y" and m.n_customers_ == 1000


def test_published_projection_years_8_to_12():
    """Projected years 8-12 from the fits on years 1-7 against the actual (FH 2007, Figure 3):
    the MLE projections (within 1.7 points of the actual; all below it), and NUTS 90%
    intervals: the predictive intervals of the counts hold all ten (segment, year) actuals;
    the credible intervals of the expected count hold the regular segment's five, and miss
    the high end's five by at most 2.1 customers of 1,000 (the projection is a little low)."""
    projected = {
        "regular": [22.0, 20.4, 19.1, 18.0, 17.0],  # actual 22.3, 20.7, 19.4, 18.3, 17.3
        "high end": [46.0, 43.6, 41.4, 39.5, 37.8],  # actual 46.8, 44.5, 42.7, 40.9, 39.4
    }
    for name, series in (("regular", REGULAR), ("high end", HIGH_END)):
        table = _fit_table(series)
        mle = ShiftedBetaGeo().fit(table, method="mle")
        a, b = (float(mle.posterior_[p].item()) for p in ("alpha", "beta"))
        point = 100 * sm.survival_curve(a, b, np.arange(8.0, 13.0))
        np.testing.assert_allclose(point.round(1), projected[name], atol=1e-9)
        actual = np.array(series[8:]) * 10  # customers of the 1,000
        assert np.abs(point * 10 - actual).max() < 17  # within 1.7 points of the cohort
        nuts = ShiftedBetaGeo().fit(
            table, method="nuts", chains=2, draws=1000, random_seed=5, progressbar=False
        )
        proj = nuts.project(table, 5, prob=0.9, random_seed=6)
        assert proj.index.get_level_values("period").tolist() == [8, 9, 10, 11, 12]
        assert (proj["alive_now"] == series[7] * 10).all()
        assert (proj["pred_lower"] <= actual).all() and (actual <= proj["pred_upper"]).all()
        inside = (proj["lower"] <= actual) & (actual <= proj["upper"])
        if name == "regular":
            assert inside.all()
        else:  # the high-end cohort keeps slightly more customers than the sBG projects: the
            # actual lies 0.7-2.1 customers above the credible interval of the expected count
            assert not inside.any() and (actual > proj["upper"]).all()
            assert (actual - proj["upper"]).max() < 3.0
        # predictive intervals are wider than credible ones (binomial noise on top)
        assert ((proj["pred_upper"] - proj["pred_lower"]) > (proj["upper"] - proj["lower"])).all()


def test_survival_and_retention_published_fit():
    """S(t) = B(alpha, beta + t) / B(alpha, beta); retention r_t = (beta + t - 1) / (alpha +
    beta + t - 1) rises with tenure; at the regular MLE r_1 = 0.627 and r_7 = 0.911."""
    a, b = 0.704, 1.182
    r = sm.retention_rate(a, b, np.arange(1.0, 13.0))
    assert np.all(np.diff(r) > 0)
    assert round(float(r[0]), 3) == 0.627 and round(float(r[6]), 3) == 0.911
    s = sm.survival_curve(a, b, np.arange(0.0, 13.0))
    np.testing.assert_allclose(s[1:] / s[:-1], r, rtol=1e-13)
    m = ShiftedBetaGeo.from_params(alpha=a, beta=b, time_unit="Y")
    tab = m.retention_rate(12)
    np.testing.assert_allclose(tab["mean"].to_numpy(), r, rtol=1e-13)
    np.testing.assert_allclose(m.survival(12)["mean"].to_numpy(), s, rtol=1e-13)


@pytest.mark.parametrize(
    ("alpha", "beta", "n", "d"),
    [
        (0.704, 1.182, 0, 0.1),
        (0.668, 3.806, 4, 0.1),
        (0.668, 3.806, 50, 0.02),
        (2.5, 40.0, 0, 0.05),
        (1e-3, 1e-3, 0, 0.5),
        (1e3, 1e4, 1000, 0.01),
        (0.5, 0.5, 10_000, 0.1),
    ],
)
def test_derl_closed_form_equals_direct_sum(alpha, beta, n, d):
    """DERL (FH 2010): the 2F1 closed form (mpmath's hyp2f1, and scipy's where it is finite)
    equals the direct discounted sum of survival ratios to 1e-8, and so does ``derl`` (the
    closed form, or the summed series where scipy's hyp2f1 fails)."""
    direct = sm.derl_sum(alpha, beta, n, d)
    mp.mp.dps = 30
    b = mp.mpf(beta) + n
    closed = float(b / (alpha + b) * mp.hyp2f1(1, b + 1, alpha + b + 1, 1 / (1 + mp.mpf(d))))
    assert abs(closed - direct) <= 1e-8 * direct
    assert abs(float(sm.derl(alpha, beta, n, d)) - direct) <= 1e-8 * direct
    scipy_closed = float(sm.derl_hyp2f1(alpha, beta, n, d))
    if np.isfinite(scipy_closed):
        assert abs(scipy_closed - direct) <= 1e-8 * direct


def test_derl_published_value_and_estimator():
    """DERL of a new regular customer at d = 10% per year: 2.965 at the MLE; the estimator's
    ``derl`` per renewal count, rising with renewals (survivors are better customers)."""
    assert round(float(sm.derl(0.704, 1.182, 0, 0.1)), 3) == 2.965
    m = ShiftedBetaGeo.from_params(alpha=0.704, beta=1.182, time_unit="Y")
    tab = m.derl(0.1, [0, 1, 5])
    np.testing.assert_allclose(tab["mean"], sm.derl(0.704, 1.182, np.array([0, 1, 5]), 0.1))
    assert tab["mean"].is_monotonic_increasing
    with pytest.raises(clvkit.ClvkitError, match="discount_rate"):
        m.derl(0.0)


def test_expected_lifetime():
    """E[remaining periods | n renewals] = (alpha + beta + n - 1) / (alpha - 1) for alpha > 1,
    the sum of S(n + k) / S(n); infinite for alpha <= 1."""
    a, b, n = 3.0, 5.0, 4
    direct = sm.expected_renewals(a, b, n, 10**7) + 1.0
    closed = float(sm.expected_lifetime(a, b, n))
    assert closed == pytest.approx(11.0 / 2.0, rel=1e-14)
    assert abs(direct - closed) < 1e-6
    assert np.isinf(sm.expected_lifetime(0.704, 1.182, 0))


@pytest.mark.parametrize(("alpha", "beta"), [(0.704, 1.182), (1e-4, 1e4), (1e4, 1e-4), (50, 0.3)])
def test_p_churn_sums_to_one(alpha, beta):
    """sum_{t=1}^{N} P(T = t) + S(N) = 1 (telescoping), and P(T = t) = S(t - 1) - S(t)."""
    t = np.arange(1.0, 5001.0)
    p = np.exp(sm.log_p_churn(alpha, beta, t))
    s = sm.survival_curve(alpha, beta, t)
    assert math.fsum(p) + s[-1] == pytest.approx(1.0, abs=1e-10)
    # P(T = t) = S(t - 1) - S(t), to the accuracy of betaln (~1e-11 here) in the difference
    prev = np.concatenate([[1.0], s[:-1]])
    assert np.abs(p - (prev - s)).max() <= 1e-10


@pytest.mark.parametrize(
    ("alpha", "beta", "t"),
    [(1e-4, 1e-4, 1e6), (1e4, 1e4, 1e6), (1e-4, 1e4, 0.0 + 3), (1e4, 1e-4, 7), (0.7, 1.2, 1e6)],
)
def test_survival_against_mpmath_at_extremes(alpha, beta, t):
    mp.mp.dps = 50
    exact = mp.beta(alpha, beta + t) / mp.beta(alpha, beta)
    got = float(sm.log_survival(alpha, beta, t))
    assert got == pytest.approx(float(mp.log(exact)), rel=1e-10, abs=1e-10)
    exact_p = mp.beta(alpha + 1, beta + t - 1) / mp.beta(alpha, beta)
    assert float(sm.log_p_churn(alpha, beta, t)) == pytest.approx(
        float(mp.log(exact_p)), rel=1e-10, abs=1e-10
    )


@pytest.mark.parametrize("alpha", [0.5, 0.9995, 1.0, 1.0004, 1.002, 3.0])
def test_expected_renewals_against_mpmath(alpha):
    """The closed form (and its series near alpha = 1) against mpmath's sum, 1e-9."""
    mp.mp.dps = 40
    for beta, n, m in [(1.2, 0, 5), (3.8, 7, 50), (0.01, 0, 300), (100.0, 1000, 20)]:
        a, b = mp.mpf(alpha), mp.mpf(beta)

        def s(t, a=a, b=b):
            return mp.beta(a, b + t)

        exact = mp.fsum(s(n + j) for j in range(1, m + 1)) / s(n)
        got = float(sm.expected_renewals(alpha, beta, n, m))
        assert got == pytest.approx(float(exact), rel=1e-9)


def test_gradient_and_kernel():
    """The numpy gradient against finite differences; the numba kernel equals the numpy
    log-likelihood plus the log prior and Jacobian."""
    table = _fit_table(REGULAR)
    stats = stats_from_table(table)
    theta = np.log([0.8, 1.5])
    ll, g = sm.loglik_grad(theta, stats.renewals, stats.churned, stats.weight)
    h = 1e-6
    for i in range(2):
        e = np.zeros(2)
        e[i] = h
        up = sm.loglik_grad(theta + e, stats.renewals, stats.churned, stats.weight)[0]
        dn = sm.loglik_grad(theta - e, stats.renewals, stats.churned, stats.weight)[0]
        assert g[i] == pytest.approx((up - dn) / (2 * h), rel=1e-6)
    grad = np.empty(2)
    lognormal = {"dist": "LogNormal", "mu": 0.0, "sigma": 2.0}
    codes, pars = prior_arrays(("alpha", "beta"), {"alpha": lognormal, "beta": lognormal},
                               ("positive", "positive"))  # fmt: skip
    value = sbg_logp(theta, stats.renewals, stats.churned, stats.weight, codes, pars, grad)
    lp = ll
    for x in theta:  # LogNormal(0, 2) density of exp(x) times the Jacobian exp(x)
        lp += -np.log(2.0) - 0.5 * np.log(2 * np.pi) - 0.5 * (x / 2.0) ** 2
    assert value == pytest.approx(lp, rel=1e-12)
    np.testing.assert_allclose(grad, g - theta / 4.0, rtol=1e-9)


def test_methods_agree_on_published_series():
    """MAP (weak LogNormal(0, 2) priors), Laplace and NUTS all land near the MLE on 1,000
    customers."""
    table = _fit_table(HIGH_END)
    fits = {
        "map": ShiftedBetaGeo().fit(table, method="map"),
        "laplace": ShiftedBetaGeo().fit(table, method="laplace", random_seed=1),
        "nuts": ShiftedBetaGeo().fit(table, method="nuts", chains=2, draws=500,
                                     random_seed=1, progressbar=False),
    }  # fmt: skip
    for name, m in fits.items():
        a = float(m.posterior_["alpha"].mean())
        b = float(m.posterior_["beta"].mean())
        assert abs(a - 0.668) < 0.05 and abs(b - 3.806) < 0.5, name
    assert fits["nuts"].diagnostics()["max_rhat"] < 1.02


def test_summary_and_survival_table_fit_agree():
    """A contract summary and its survival table give the same compressed rows and fit."""
    rng = np.random.default_rng(4)
    n = 3000
    start = pd.Timestamp("2022-01-01") + pd.to_timedelta(rng.integers(0, 28, n), unit="D")
    life = rng.geometric(rng.beta(1.0, 3.0, n))
    end = [
        s + pd.DateOffset(months=int(k)) - pd.Timedelta(days=1)
        for s, k in zip(start, life, strict=True)
    ]
    contracts = pd.DataFrame({"customer_id": np.arange(n), "start": start, "end": end})
    obs = "2023-06-30"
    contracts.loc[contracts["end"] > obs, "end"] = pd.NaT
    summary = clvkit.contract_summary(contracts, "M", obs)
    table = clvkit.survival_table(summary)
    a = ShiftedBetaGeo().fit(summary, method="mle")
    b = ShiftedBetaGeo().fit(table, method="mle")
    for p in ("alpha", "beta"):
        assert float(a.posterior_[p].item()) == pytest.approx(float(b.posterior_[p].item()))
    assert abs(float(a.posterior_["alpha"].item()) - 1.0) < 0.25
    assert abs(float(a.posterior_["beta"].item()) - 3.0) < 0.9


def test_bad_training_tables():
    with pytest.raises(clvkit.ClvkitError, match="time_unit"):
        t = _fit_table(REGULAR)
        t.attrs.pop("time_unit")
        ShiftedBetaGeo().fit(t, method="mle")
    bad = pd.DataFrame({0: [100.0], 1: [120.0]})
    bad.attrs["time_unit"] = "Y"
    with pytest.raises(clvkit.ClvkitError, match="survival table row"):
        ShiftedBetaGeo().fit(bad, method="mle")
    none = pd.DataFrame({"renewals": [1, 2], "churned": [False, False], "age": [1.5, 2.5]})
    none.attrs["time_unit"] = "M"
    with pytest.raises(clvkit.ClvkitError, match="no churned customer"):
        ShiftedBetaGeo().fit(none, method="mle")
    wrong = none.assign(age=[3.0, 2.5])
    with pytest.raises(clvkit.ClvkitError, match=r"column 'age'.*1 of 2 rows"):
        ShiftedBetaGeo().fit(wrong, method="mle")


def test_per_customer_predictions_by_hand():
    """alpha = beta = 1: S(t) = 1 / (t + 1). An active customer with 2 renewals at age 2.25:
    renewals due at 0.75, 1.75, ...; a churned one predicts nothing."""
    m = ShiftedBetaGeo.from_params(alpha=1.0, beta=1.0, time_unit="M")
    table = pd.DataFrame(
        {"renewals": [2, 2], "churned": [False, True], "age": [2.25, 2.5]},
        index=pd.Index(["a", "b"], name="customer_id"),
    )
    table.attrs["time_unit"] = "M"
    pa = m.probability_alive(table)["mean"]
    assert pa.tolist() == [1.0, 0.0]
    # due in 2 periods: renewals 3 and 4 (at 0.75 and 1.75); S(3)/S(2) = 3/4, S(4)/S(2) = 3/5
    e = m.expected_purchases(table, 2.0)["mean"]
    assert e["a"] == pytest.approx(0.75 + 0.6, rel=1e-13) and e["b"] == 0.0
    at = m.probability_alive_at(table, 2.0)["mean"]
    assert at["a"] == pytest.approx(0.6, rel=1e-13)
    pk = m.spec.probability_of_purchases(
        {"alpha": np.array([[1.0]]), "beta": np.array([[1.0]])},
        m.spec.customer_columns(table), 2.0, np.arange(4.0),
    )  # fmt: skip
    np.testing.assert_allclose(pk[0, 0], [1 - 0.75, 0.75 - 0.6, 0.6, 0.0], rtol=1e-13)
    # a new subscriber pays renewals at 1, 2, ...: sum_{j=1}^{3} 1 / (j + 1)
    new = m.expected_purchases_new_customer(3.0)["mean"]
    assert new == pytest.approx(1 / 2 + 1 / 3 + 1 / 4, rel=1e-13)


def test_simulated_cohorts_recover_parameters():
    """Contract summaries simulated by the model's one generative process (new subscribers,
    spec.simulate over per-customer windows) give back alpha and beta."""
    spec = ShiftedBetaGeo.spec
    n = 20_000
    rng = np.random.default_rng(12)
    windows = rng.integers(1, 25, n).astype(float)  # months observed after the first payment
    params = {"alpha": np.array([[0.8]]), "beta": np.array([[2.5]])}
    fut = spec.simulate(params, spec.new_customer_columns(n), windows, rng)
    counts = np.zeros(n, dtype=np.int64)
    for batch in fut.batches:
        np.add.at(counts, batch.customer, batch.count)
    death = np.full(n, np.inf)
    death[fut.alive_customer] = fut.death
    churned = np.isfinite(death)
    table = pd.DataFrame(
        {"renewals": counts, "churned": churned, "age": np.where(churned, counts + 1.0, windows)}
    )
    table.attrs["time_unit"] = "M"
    m = ShiftedBetaGeo().fit(table, method="laplace", random_seed=3)
    for p, true in (("alpha", 0.8), ("beta", 2.5)):
        draws = m.posterior_[p].to_numpy().ravel()
        lo, hi = np.quantile(draws, [0.005, 0.995])
        assert lo < true < hi, (p, lo, hi)
