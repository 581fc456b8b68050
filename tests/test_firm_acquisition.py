"""Acquisition counts, the acquisition model and plans (issue 18, future customers)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clvkit
from clvkit.errors import ClvkitError
from clvkit.firm import AcquisitionModel, AcquisitionPlan, acquisition_counts


def _simulated_counts(rng, n=104, b0=3.0, b1=0.5, c=0.3, s=0.2, phi=20.0):
    k = np.arange(n)
    mu = np.exp(b0 + b1 * (k - (n - 1) / 2) / n + c * np.cos(2 * np.pi * k / 52)
                + s * np.sin(2 * np.pi * k / 52))  # fmt: skip
    return rng.negative_binomial(phi, phi / (phi + mu))


@pytest.fixture(scope="module")
def cdnow_log():
    return clvkit.datasets.cdnow_transactions(sample=False)


def test_gradient_matches_finite_differences():
    y = _simulated_counts(np.random.default_rng(3))
    m = AcquisitionModel(seasonality=52, harmonics=2).fit(pd.Series(y), method="map")
    rng = np.random.default_rng(0)
    for _ in range(3):
        theta = rng.normal(0, 0.5, size=len(m.param_names)) + np.r_[3.0, [0] * 5, 2.0]
        _, grad = m.log_density(theta)
        num = np.empty_like(theta)
        for i in range(theta.size):
            e = np.zeros_like(theta)
            e[i] = 1e-6
            num[i] = (m.log_density(theta + e)[0] - m.log_density(theta - e)[0]) / 2e-6
        np.testing.assert_allclose(grad, num, rtol=1e-6, atol=1e-5)


def test_parameter_recovery_coverage_laplace():
    """90% Laplace intervals of intercept, trend, the two seasonal coefficients and phi cover
    the truth in 92.4% of 5 x 100 simulated series (binomial sd 1.3%)."""
    truth = np.array([3.0, 0.5, 0.3, 0.2, 20.0])
    rng = np.random.default_rng(2026)
    hits = np.zeros(5)
    reps = 100
    for r in range(reps):
        y = _simulated_counts(rng)
        m = AcquisitionModel(seasonality=52, harmonics=1)
        m.fit(pd.Series(y), method="laplace", chains=1, draws=2000, random_seed=r)
        s = m.summary(0.9)
        hits += (s["lower"].to_numpy() <= truth) & (truth <= s["upper"].to_numpy())
    coverage = hits.sum() / (5 * reps)
    assert 0.85 <= coverage <= 0.95, (coverage, hits)
    assert coverage == pytest.approx(0.924, abs=1e-9)  # per parameter: see hits


def test_nuts_fit_recovers_and_converges():
    y = _simulated_counts(np.random.default_rng(7))
    m = AcquisitionModel(seasonality=52, harmonics=1).fit(
        pd.Series(y), method="nuts", chains=2, draws=300, tune=300, random_seed=1
    )
    s = m.summary(0.9)
    assert (s["r_hat"] < 1.02).all()
    # the same posterior as the Laplace approximation (coefficients: near-normal)
    lap = (
        AcquisitionModel(seasonality=52, harmonics=1)
        .fit(pd.Series(y), method="laplace", draws=4000, chains=1, random_seed=1)
        .summary(0.9)
    )
    coef = s.index[:-1]
    z = (s.loc[coef, "mean"] - lap.loc[coef, "mean"]).abs() / lap.loc[coef, "sd"]
    assert z.max() < 0.2, z
    np.testing.assert_allclose(s.loc[coef, "sd"], lap.loc[coef, "sd"], rtol=0.15)
    assert m.forecast(10).shape == (2, 300, 10)
    pred = m.forecast(10, kind="predictive", random_seed=1)
    assert pred.values.min() >= 0 and np.all(pred.values == np.round(pred.values))


def test_cdnow_acquisition_stopped(cdnow_log, tmp_path):
    counts = acquisition_counts(cdnow_log, period="W")
    assert len(counts) == 78 and counts.sum() == 23570
    assert counts.iloc[:12].min() == 1574 and (counts.iloc[12:] == 0).all()
    assert counts.attrs == {"period": "W", "start": "1997-01-01", "end": "1998-07-01"}
    # the file route (DuckDB) gives the same Series
    path = tmp_path / "cdnow.csv"
    cdnow_log.to_csv(path, index=False)
    pd.testing.assert_series_equal(acquisition_counts(str(path), period="W"), counts)
    m = AcquisitionModel(seasonality=None).fit(counts, method="map")
    assert m.diagnosis == (
        "No customer was acquired in the last 66 of 78 weeks: acquisition stopped after week "
        "12; future acquisition is forecast as zero."
    )
    assert m.stopped_ == 66
    assert float(np.abs(m.forecast(260).values).max()) == 0.0
    assert float(m.forecast(52, kind="predictive", random_seed=0).values.max()) == 0.0


def test_counts_do_not_modify_the_log(cdnow_log):
    log = cdnow_log.head(500)
    before = log.copy(deep=True)
    acquisition_counts(log, period="4W")
    pd.testing.assert_frame_equal(log, before)


def test_plan_exact_and_uncertain():
    plan = AcquisitionPlan([100, 120, 80])
    f = plan.forecast(5, n_draws=4)
    assert f.dims == ("chain", "draw", "period")
    np.testing.assert_array_equal(f.values[0], np.tile([100.0, 120.0, 80.0, 0.0, 0.0], (4, 1)))
    np.testing.assert_array_equal(plan.forecast(3, kind="predictive", n_draws=2).values[0],
                                  [[100.0, 120.0, 80.0]] * 2)  # fmt: skip
    u = AcquisitionPlan([100.0], cv=0.2, random_seed=1).forecast(1, n_draws=20000).values.ravel()
    assert u.mean() == pytest.approx(100, rel=0.01)
    assert u.std() == pytest.approx(20, rel=0.03)


@pytest.mark.parametrize(
    ("counts", "words"),
    [([3, -1, 2], "argument 'counts' is not a finite non-negative integer in 1 of 3 rows"),
     ([3, np.nan, 2], "argument 'counts' is not a finite non-negative integer in 1 of 3 rows"),
     ([3, 1.5, 2], "argument 'counts'")],
)  # fmt: skip
def test_bad_counts_refused(counts, words):
    with pytest.raises(ClvkitError, match="Suggestion") as err:
        AcquisitionModel().fit(counts, method="map")
    assert words in str(err.value)


def test_bad_arguments_refused(cdnow_log):
    with pytest.raises(ClvkitError, match="'period'"):
        acquisition_counts(cdnow_log, period="fortnight")
    with pytest.raises(ClvkitError, match="'cv'"):
        AcquisitionPlan([1, 2], cv=-0.1)
    with pytest.raises(ClvkitError, match="'counts'"):
        AcquisitionPlan([1, -2])
    with pytest.raises(ClvkitError, match="'seasonality'"):
        AcquisitionModel(seasonality=1)
    with pytest.raises(ClvkitError, match="'method'"):
        AcquisitionModel().fit([1, 2, 3, 4], method="mle")
    with pytest.raises(ClvkitError, match="not fitted"):
        AcquisitionModel().forecast(3)
    with pytest.raises(ClvkitError, match="'n_periods'"):
        AcquisitionPlan([1]).forecast(0)


def test_a_trend_carried_past_its_data_is_said_with_its_multiplier():
    """A growth trend fitted on 52 weekly counts and forecast 260 weeks: the sentence gives
    exp(trend * 260 / 52) per draw (median and interval); no sentence for 52 weeks or after a
    stop; firm_equity carries it and the report lists it as a warning."""
    y = _simulated_counts(np.random.default_rng(11), n=52, b1=0.8, c=0.0, s=0.0)
    counts = pd.Series(y)
    counts.attrs["period"] = "W"
    m = AcquisitionModel(trend="linear").fit(counts, method="laplace", chains=1, draws=4000,
                                             random_seed=1)  # fmt: skip
    ratio = np.exp(m.posterior_["trend"].to_numpy().ravel() * 5.0)
    lo, hi = np.quantile(ratio, [0.05, 0.95])
    text = m.extrapolation(260)
    assert text.startswith("The acquisition forecast runs 260 weeks ahead, 5.0 times the 52")
    assert f"by {np.median(ratio):.2f} [{lo:.2f}, {hi:.2f}] (90% interval)" in text
    assert m.extrapolation(52) is None
    assert AcquisitionModel(trend=None).fit(counts, method="map").extrapolation(260) is None
    rfm = clvkit.datasets.cdnow_calibration_summary()
    bg = clvkit.BetaGeo().fit(rfm, method="map")
    gg = clvkit.GammaGamma().fit(rfm, method="map")
    fe = clvkit.firm_equity(bg, gg, rfm, m, horizon="260W", period="4W",
                            annual_discount_rate=0.1, random_seed=0)  # fmt: skip
    assert fe.settings["acquisition_note"] == text
    from clvkit.report_firm import equity_sentences

    assert (text, "warn") in equity_sentences(fe)
