"""Backtest: closed forms, CDNOW reference values, simulation with known truth, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import clvkit
from clvkit.datasets import cdnow_calibration_summary, cdnow_transactions, simulate
from clvkit.errors import ClvkitError
from clvkit.evaluation import (
    cohort_tracking,
    conditional_expectations,
    frequency_ppc,
    holdout_metrics,
    holdout_predictive,
)
from clvkit.evaluation.tracking import simulate_cohort, window_counts
from clvkit.models.bgnbd import predictions as predict

# Maximum-likelihood BG/NBD estimates for the CDNOW sample (Fader, Hardie and Lee 2005, Table 1)
MLE = {"r": 0.2426, "alpha": 4.4137, "a": 0.7930, "b": 2.4262}
CAL_END, OBS_END = "1997-09-30", "1998-06-30"


@pytest.fixture(scope="module")
def cdnow_result():
    return clvkit.backtest(
        cdnow_transactions(),
        calibration_end=CAL_END,
        observation_end=OBS_END,
        transactions_model=MLE,
        n_samples=500,
        random_seed=7,
    )


# ---------------------------------------------------------------------------------------------
# CDNOW: published data facts and conditional expectations
# ---------------------------------------------------------------------------------------------
def test_cdnow_holdout_and_group_actuals(cdnow_result):
    cust = cdnow_result.customers
    assert len(cust) == 2357
    assert int(cust["actual"].sum()) == 1882  # holdout repeat purchase days
    assert int(cust["frequency"].sum()) == 2457  # calibration repeat purchase days
    ce = cdnow_result.conditional_expectations
    assert ce["n_customers"].tolist() == [1411, 439, 214, 100, 62, 38, 29, 64]
    # actual means recomputed here from the raw log, independently of clvkit
    log = cdnow_transactions().drop_duplicates(["customer_id", "date"])
    first = log.groupby("customer_id")["date"].transform("min")
    rep = log[log["date"] > first]
    cal = rep[rep["date"] <= CAL_END].groupby("customer_id").size().reindex(range(1, 2358))
    hold = rep[rep["date"] > CAL_END].groupby("customer_id").size().reindex(range(1, 2358))
    grp = np.minimum(cal.fillna(0).to_numpy(), 7)
    means = pd.Series(hold.fillna(0).to_numpy()).groupby(grp).mean().to_numpy()
    np.testing.assert_allclose(ce["actual"].to_numpy(), means, rtol=1e-12)
    # BTYD walkthrough (BG/NBD, censor 7) actual row, to the printed 4 decimals
    np.testing.assert_allclose(
        ce["actual"], [0.2367, 0.6970, 1.3925, 1.5600, 2.5323, 2.9474, 3.8621, 6.3594], atol=1e-4
    )


def test_cdnow_conditional_expectations_match_lifetimes(cdnow_result):
    # Reference computed independently with lifetimes 0.11.3
    # (BetaGeoFitter.conditional_expected_number_of_purchases_up_to_time, hyp2f1 closed form,
    # FHL 2005 eq. 10) at the MLE, averaged per calibration-frequency group, on the published
    # summary (times rounded to 0.01 week). The BTYD walkthrough prints this table from a
    # knitr chunk; we could not retrieve its printed numbers, so lifetimes is the reference.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # lifetimes' import warns under pandas 3
        from lifetimes import BetaGeoFitter

    pub = cdnow_calibration_summary()
    fitter = BetaGeoFitter()
    fitter.params_ = pd.Series(MLE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = np.asarray(
            fitter.conditional_expected_number_of_purchases_up_to_time(
                39.0, pub["frequency"].to_numpy(), pub["recency"].to_numpy(), pub["T"].to_numpy()
            )
        )
    ref_groups = pd.Series(ref).groupby(np.minimum(pub["frequency"].to_numpy(), 7)).mean()
    ce = cdnow_result.conditional_expectations
    np.testing.assert_allclose(ce["predicted"].to_numpy(), ref_groups.to_numpy(), atol=1e-3)
    # the values themselves (lifetimes, MLE, published summary), 4 decimals
    np.testing.assert_allclose(
        ref_groups.to_numpy(),
        [0.2251, 0.5231, 1.0441, 1.5202, 2.1638, 2.6538, 3.5039, 6.1571],
        atol=1e-4,
    )


def test_cdnow_frequency_ppc_matches_published_fit():
    pub = cdnow_calibration_summary()
    ppc = frequency_ppc(MLE, pub["frequency"], pub["T"], n_samples=300, random_seed=0)
    # expected counts sum to the number of customers; the 0 bin is close to the actual 1,411
    assert ppc["expected"].sum() == pytest.approx(2357, rel=1e-9)
    assert ppc["actual"].tolist() == [1411, 439, 214, 100, 62, 38, 29, 64]
    # lifetimes' P(X(t) = n) summed over customers, as an independent reference
    from lifetimes import BetaGeoFitter

    fitter = BetaGeoFitter()
    fitter.params_ = pd.Series(MLE)
    ref0 = sum(fitter.probability_of_n_purchases_up_to_time(t, 0) for t in pub["T"])
    assert ppc["expected"].iloc[0] == pytest.approx(ref0, rel=1e-8)
    assert (ppc["lower"] <= ppc["expected"]).all() and (ppc["expected"] <= ppc["upper"]).all()
    chi2 = ((ppc["actual"] - ppc["expected"]) ** 2 / ppc["expected"]).sum()
    assert ppc.attrs["chi_square"] == pytest.approx(chi2)
    assert ppc.attrs["p_value"] > 0.05  # the BG/NBD fits CDNOW's calibration histogram


def test_cdnow_tracking_totals(cdnow_result):
    tr = cdnow_result.tracking
    assert len(tr) == 78  # 1997-01-01 .. 1998-06-30 in weeks, last one partial
    assert tr["actual_cumulative"].iloc[-1] == 2457 + 1882
    assert tr["actual"].sum() == 2457 + 1882
    # the cumulative prediction is the sum of the increments, and bands are ordered
    np.testing.assert_allclose(tr["predicted"].cumsum(), tr["predicted_cumulative"], rtol=1e-12)
    assert (tr["lower_cumulative"] <= tr["upper_cumulative"]).all()
    # at week 78 the MLE predicts ~4,180 repeat purchases; actual 4,339 lies inside the band
    last = tr.iloc[-1]
    assert 4100 < last["predicted_cumulative"] < 4250
    assert last["lower_cumulative"] <= last["actual_cumulative"] <= last["upper_cumulative"]


def test_cohort_tracking_expected_equals_sum_of_new_customer_expectations():
    births = np.array([0.0, 0.0, 1.5, 3.25])
    res = cohort_tracking(MLE, births, np.array([], int), np.array([]), horizon=6.0, n_samples=50)
    ends = np.minimum(np.arange(1, 7), 6.0)
    direct = sum(
        predict.bg_expected_purchases_new_customer(*MLE.values(), np.maximum(ends - s, 0)).ravel()
        for s in births
    )
    np.testing.assert_allclose(res.tracking["predicted_cumulative"], direct, rtol=1e-10)
    assert res.tracking["actual_cumulative"].iloc[-1] == 0


def test_window_counts_by_hand():
    # one sample, customers 0 and 1; events (customer, period): (0,1),(0,1),(0,4),(1,2)
    # window 2: customer 0 counts in periods 1,2,4,5; customer 1 (eligible from period 3) in 3
    counts = window_counts(
        np.zeros(4, int), np.array([0, 0, 0, 1]), np.array([1, 1, 4, 2]),
        np.array([0, 3]), 1, 6, 2,
    )  # fmt: skip
    assert counts[0].tolist() == [0, 1, 1, 1, 1, 1]


# ---------------------------------------------------------------------------------------------
# simulation with known truth: intervals and bands are calibrated
# ---------------------------------------------------------------------------------------------
TRUTH = {"r": 0.5, "alpha": 5.0, "a": 0.8, "b": 2.5}
SPEND = {"p": 6.0, "q": 4.0, "v": 15.0}


@pytest.fixture(scope="module")
def simulated_log():
    return simulate(3000, **TRUTH, **SPEND, observation_periods=78.0, random_seed=2)


@pytest.fixture(scope="module")
def simulated_result(simulated_log):
    sim = simulated_log
    return clvkit.backtest(
        sim.transactions,
        calibration_end=sim.start + pd.Timedelta(weeks=39),
        observation_end=sim.observation_end,
        amount="amount",
        transactions_model=TRUTH,
        spend_model=SPEND,
        n_samples=800,
        random_seed=11,
    )


@pytest.mark.slow
def test_coverage_near_nominal_at_the_truth(simulated_result):
    m = simulated_result.metrics
    n = len(simulated_result.customers)
    for level in (50, 80, 90):
        se = np.sqrt(level / 100 * (1 - level / 100) / n)
        for row in ("purchases", "revenue"):
            # 4 standard errors of a binomial share, plus 0.01 for the finite predictive sample
            assert abs(m.loc[row, f"coverage_{level}"] - level / 100) < 4 * se + 0.01, (row, level)
    # randomized PIT is uniform (Kolmogorov-Smirnov)
    assert stats.kstest(simulated_result.customers["pit"], "uniform").pvalue > 0.001
    assert abs(m.loc["purchases", "aggregate_error_pct"]) < 10


@pytest.mark.slow
def test_tracking_and_retention_within_bands_at_the_truth(simulated_result):
    tr, rt = simulated_result.tracking, simulated_result.retention
    inc = ((tr["actual"] >= tr["lower"]) & (tr["actual"] <= tr["upper"])).mean()
    cum = (
        (tr["actual_cumulative"] >= tr["lower_cumulative"])
        & (tr["actual_cumulative"] <= tr["upper_cumulative"])
    ).mean()
    ok = rt["n_eligible"] > 0
    ret = ((rt["actual"] >= rt["lower"]) & (rt["actual"] <= rt["upper"]))[ok].mean()
    assert inc >= 0.8 and ret >= 0.8  # pointwise 90% bands
    assert cum >= 0.7  # the cumulative curve is one autocorrelated path
    # the expected curve itself tracks the realized one closely
    rel = abs(tr["predicted_cumulative"].iloc[-1] / tr["actual_cumulative"].iloc[-1] - 1)
    assert rel < 0.06
    # expected share alive decreases and the predicted share buying stays below it
    alive = rt.loc[ok, "expected_alive"].to_numpy()
    assert (np.diff(alive) <= 1e-12).all()
    assert (rt.loc[ok, "predicted"] <= rt.loc[ok, "expected_alive"]).all()


@pytest.mark.slow
def test_fitted_models_on_simulated_data_recover_truth_and_calibrate(simulated_log):
    # the models fitted on the calibration window (MAP) rather than the truth
    sim = simulated_log
    res = clvkit.backtest(
        sim.transactions,
        calibration_end=sim.start + pd.Timedelta(weeks=39),
        observation_end=sim.observation_end,
        amount="amount",
        fit_kwargs={"method": "map"},
        n_samples=500,
        random_seed=4,
    )
    fitted = res.transactions_model.idata_.posterior
    for k in ("r", "alpha"):
        assert float(fitted[k].mean()) == pytest.approx(TRUTH[k], rel=0.2)
    m = res.metrics
    n = len(res.customers)
    for level in (50, 80, 90):
        se = np.sqrt(level / 100 * (1 - level / 100) / n)
        assert abs(m.loc["purchases", f"coverage_{level}"] - level / 100) < 4 * se + 0.02
        assert abs(m.loc["revenue", f"coverage_{level}"] - level / 100) < 4 * se + 0.02
    assert abs(m.loc["purchases", "aggregate_error_pct"]) < 12
    last = res.tracking.iloc[-1]
    assert last["lower_cumulative"] <= last["actual_cumulative"] <= last["upper_cumulative"]


def test_holdout_predictive_simulation_matches_closed_form():
    x = np.array([0, 1, 4, 12])
    tx = np.array([0.0, 5.0, 30.0, 37.0])
    T = np.full(4, 38.0)
    cust = pd.DataFrame({"frequency": x, "recency": tx, "T": T})
    tab = holdout_predictive(MLE, cust, 39.0, actual=np.zeros(4), n_samples=20000, random_seed=5)
    exact = predict.bg_expected_purchases(*MLE.values(), x, tx, T, 39.0).ravel()
    np.testing.assert_allclose(tab["predicted"], exact, rtol=1e-12)
    assert (tab["lower"] <= tab["predicted"]).all() and (tab["predicted"] <= tab["upper"]).all()
    # PIT of y = 0 lies in [0, P(X = 0)]; P(X=0) >= P(dead) > 0 for x > 0
    assert ((tab["pit"] >= 0) & (tab["pit"] <= 1)).all()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 12), st.floats(0, 10), st.floats(0, 10)), min_size=1,
                max_size=60))  # fmt: skip
def test_conditional_expectations_are_group_means(rows):
    f, y, p = (np.array(c) for c in zip(*rows, strict=True))
    ce = conditional_expectations(f, y, p, max_frequency=7)
    assert ce["n_customers"].sum() == len(rows)
    has = ce["n_customers"] > 0
    total = (ce.loc[has, "actual"] * ce.loc[has, "n_customers"]).sum()
    assert total == pytest.approx(y.sum(), rel=1e-9, abs=1e-9)
    assert ce.loc[~has, "actual"].isna().all()


def test_holdout_metrics_by_hand():
    tab = pd.DataFrame(
        {"actual": [0.0, 2.0, 4.0], "predicted": [1.0, 2.0, 2.0], "pit": [0.1, 0.5, 0.97]}
    )
    m = holdout_metrics(tab).loc["purchases"]
    assert m["mae"] == pytest.approx(1.0)
    assert m["rmse"] == pytest.approx(np.sqrt(5 / 3))
    assert m["aggregate_error_pct"] == pytest.approx(100 * (5 - 6) / 6)
    assert m["coverage_50"] == pytest.approx(1 / 3)
    assert m["coverage_90"] == pytest.approx(2 / 3)
    assert m["correlation"] == pytest.approx(np.corrcoef([1, 2, 2], [0, 2, 4])[0, 1])


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------
def test_backtest_does_not_modify_input_and_names_bad_arguments():
    log = cdnow_transactions().head(300)
    before = log.copy()
    with pytest.raises(ClvkitError, match="calibration_end"):
        clvkit.backtest(log, calibration_end=OBS_END, observation_end=CAL_END,
                        transactions_model=MLE)  # fmt: skip
    with pytest.raises(ClvkitError, match="prob"):
        clvkit.backtest(log, calibration_end=CAL_END, observation_end=OBS_END,
                        transactions_model=MLE, prob=1.5)  # fmt: skip
    with pytest.raises(ClvkitError, match="'when'"):
        clvkit.backtest(log, calibration_end=CAL_END, observation_end=OBS_END, date="when",
                        transactions_model=MLE)  # fmt: skip
    with pytest.raises(ClvkitError, match=r"variables \['r'\].*match no purchase model"):
        clvkit.backtest(log, calibration_end=CAL_END, observation_end=OBS_END,
                        transactions_model={"r": 1.0})  # fmt: skip
    bad = log.copy()
    bad.loc[bad.index[:3], "amount"] = -5.0
    with pytest.raises(ClvkitError, match=r"amount.*3.*Suggestion"):
        clvkit.backtest(bad, calibration_end=CAL_END, observation_end=OBS_END, amount="amount",
                        transactions_model=MLE, spend_model={"p": 6, "q": 4, "v": 15})  # fmt: skip
    pd.testing.assert_frame_equal(log, before)


def test_time_unit_mismatch_is_reported():
    import xarray as xr

    post = xr.Dataset({k: (("chain", "draw"), [[v]]) for k, v in MLE.items()})
    post.attrs["time_unit"] = "D"
    with pytest.raises(ClvkitError, match=r"time unit 'D'.*Suggestion"):
        clvkit.backtest(cdnow_transactions().head(300), calibration_end=CAL_END,
                        observation_end=OBS_END, transactions_model=post)  # fmt: skip


def test_negative_posterior_draw_is_reported():
    with pytest.raises(ClvkitError, match=r"'alpha'.*1 of 3.*Suggestion"):
        holdout_predictive({"r": [1, 1, 1], "alpha": [1, -1, 1], "a": [1, 1, 1], "b": [1, 1, 1]},
                           pd.DataFrame({"frequency": [0], "recency": [0.0], "T": [1.0]}), 1.0,
                           actual=np.array([0]))  # fmt: skip


def test_misaligned_arrays_are_reported():
    with pytest.raises(ClvkitError, match=r"'actual' has shape \(3,\).*Suggestion"):
        holdout_predictive(MLE, pd.DataFrame({"frequency": [0, 1], "recency": [0.0, 1.0],
                           "T": [2.0, 2.0]}), 1.0, actual=np.array([0, 1, 2]))  # fmt: skip


def test_backtest_function_survives_submodule_import():
    import clvkit.evaluation.run as bt_module

    assert clvkit.backtest is bt_module.backtest
    assert clvkit.evaluation.backtest is bt_module.backtest
    assert callable(clvkit.backtest)


def test_simulated_cohort_matches_closed_forms():
    # the order-statistics simulation of purchase times agrees with E[X(t)] and P(>= 1 in window)
    from clvkit.models.registry import get

    rng = np.random.default_rng(8)
    births = np.repeat([0.0, 2.5, 6.0], 400)
    H, K, window = 20.0, 20, 3
    first = np.ceil(births + window - 1 - 1e-9).astype(np.int64)
    M = 400
    params = {k: np.full((M, 1), v) for k, v in TRUTH.items()}
    inc, ret = simulate_cohort(get("bgnbd").spec, params, births, H, K, window, first, rng)
    res = cohort_tracking(TRUTH, births, np.array([], int), np.array([]), horizon=H,
                          window=window, n_samples=10, random_seed=0)  # fmt: skip
    pred_inc = res.tracking["predicted"].to_numpy()
    se_inc = inc.std(axis=0) / np.sqrt(M)
    assert (np.abs(inc.mean(axis=0) - pred_inc) < 4.5 * se_inc + 1e-9).all()
    n_elig = res.retention["n_eligible"].to_numpy()
    ok = n_elig > 0
    share = ret[:, ok] / n_elig[ok]
    se_ret = share.std(axis=0) / np.sqrt(M)
    pred_ret = res.retention["predicted"].to_numpy()[ok]
    assert (np.abs(share.mean(axis=0) - pred_ret) < 4.5 * se_ret + 1e-9).all()


@settings(max_examples=50, deadline=None)
@given(
    events=st.lists(
        st.tuples(st.integers(0, 1), st.integers(0, 3), st.integers(0, 9)), max_size=40
    ),
    first=st.lists(st.integers(0, 10), min_size=4, max_size=4),
    window=st.integers(1, 4),
)
def test_window_counts_match_brute_force(events, first, window):
    # (sample, customer, period) events; count customers with an event in [k - w + 1, k]
    ev = sorted(events)
    cols = np.array(ev, dtype=np.int64).reshape(-1, 3)
    smp, cus, per = cols[:, 0], cols[:, 1], cols[:, 2]
    first = np.array(first)
    got = window_counts(smp, cus, per, first, 2, 10, window)
    want = np.zeros((2, 10))
    for s in range(2):
        for c in range(4):
            for k in range(first[c], 10):
                if any(e[0] == s and e[1] == c and k - window + 1 <= e[2] <= k for e in ev):
                    want[s, k] += 1
    np.testing.assert_array_equal(got, want)


def test_longer_retention_window_raises_the_share():
    births = np.linspace(0.0, 8.0, 50)
    kw = {"horizon": 30.0, "n_samples": 100, "random_seed": 0}
    none = (np.array([], int), np.array([]))
    one = cohort_tracking(MLE, births, *none, window=1, **kw).retention
    four = cohort_tracking(MLE, births, *none, window=4, **kw).retention
    both = (one["n_eligible"] == 50) & (four["n_eligible"] == 50)
    assert both.sum() > 10
    assert (four.loc[both, "predicted"] > one.loc[both, "predicted"]).all()
    # at most four times the one-period share (union bound over the four periods)
    upper = one["predicted"].rolling(4).sum()
    assert (four.loc[both, "predicted"] <= upper[both] + 1e-12).all()
    # customers become eligible only once their whole window follows their first purchase
    assert four["n_eligible"].iloc[4] == (births <= 1.0).sum()  # window of period 4 starts at 1


def test_credible_band_of_the_expectation():
    import xarray as xr

    births = np.linspace(0.0, 10.0, 300)
    none = (np.array([], int), np.array([]))
    point = cohort_tracking(MLE, births, *none, horizon=40.0, n_samples=200, random_seed=0)
    t = point.tracking
    np.testing.assert_allclose(t["credible_lower_cumulative"], t["predicted_cumulative"])
    np.testing.assert_allclose(t["credible_upper_cumulative"], t["predicted_cumulative"])
    rng = np.random.default_rng(0)
    post = xr.Dataset(
        {k: (("chain", "draw"), v * np.exp(0.1 * rng.standard_normal((2, 200))))
         for k, v in MLE.items()}
    )  # fmt: skip
    full = cohort_tracking(post, births, *none, horizon=40.0, n_samples=400, random_seed=0)
    last = full.tracking.iloc[-1]
    assert last["credible_lower_cumulative"] < last["predicted_cumulative"]
    assert last["predicted_cumulative"] < last["credible_upper_cumulative"]
    # parameter uncertainty alone is narrower than parameter plus process uncertainty
    cred = last["credible_upper_cumulative"] - last["credible_lower_cumulative"]
    pred = last["upper_cumulative"] - last["lower_cumulative"]
    assert 0 < cred < pred
    r = full.retention[full.retention["n_eligible"] > 0]
    assert (r["credible_lower"] <= r["predicted"] + 1e-12).all()
    assert (r["predicted"] <= r["credible_upper"] + 1e-12).all()


# ---------------------------------------------------------------------------------------------
# zoned dates, the model contract, layering
# ---------------------------------------------------------------------------------------------
def test_tz_aware_dates_and_ends_follow_the_purchase_day_rule():
    # a tz-aware date column passed calibration_holdout but backtest died with a raw TypeError
    # (naive purchase days compared with a zoned end); zoned values are cut to UTC days as in
    # rfm_summary, so the result equals the naive log's whose wall clock is UTC
    naive = cdnow_transactions().head(3000)
    zoned = naive.assign(date=pd.to_datetime(naive["date"]).dt.tz_localize("UTC"))
    before = zoned.copy()
    kw = {"transactions_model": MLE, "n_samples": 100, "random_seed": 3}
    ref = clvkit.backtest(naive, calibration_end=CAL_END, observation_end=OBS_END, **kw)
    for ends in (
        (CAL_END, OBS_END),
        (pd.Timestamp(CAL_END, tz="UTC"), pd.Timestamp(OBS_END, tz="UTC")),
    ):
        got = clvkit.backtest(zoned, calibration_end=ends[0], observation_end=ends[1], **kw)
        pd.testing.assert_frame_equal(got.customers, ref.customers)
        pd.testing.assert_frame_equal(got.tracking, ref.tracking)
    # holdout repeat purchase days of the calibration cohort, counted here from the raw log
    days = naive.assign(day=pd.to_datetime(naive["date"]).dt.normalize())
    days = days.drop_duplicates(["customer_id", "day"])
    first = days.groupby("customer_id")["day"].transform("min")
    cohort = first <= CAL_END
    hold = (days["day"] > CAL_END) & (days["day"] <= OBS_END) & cohort
    assert int(ref.customers["actual"].sum()) == int(hold.sum()) == 724
    assert len(ref.customers) == days.loc[cohort, "customer_id"].nunique()
    pd.testing.assert_frame_equal(zoned, before)


def test_frequency_ppc_degrees_of_freedom_come_from_the_model():
    from clvkit.models.registry import get

    pub = cdnow_calibration_summary()
    ppc = frequency_ppc(MLE, pub["frequency"], pub["T"], n_samples=50, random_seed=0)
    k = len(ppc)
    assert ppc.attrs["dof"] == k - 1 - len(get("bgnbd").spec.param_names) == 3
    assert ppc.attrs["p_value"] == pytest.approx(stats.chi2.sf(ppc.attrs["chi_square"], 3))


def test_evaluation_reaches_models_only_through_the_contract():
    # no module of clvkit.evaluation imports plots (the old backtest <-> plots cycle) or a
    # model's own package
    import ast
    from pathlib import Path

    import clvkit.evaluation as ev

    for path in Path(ev.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            for name in names:
                assert not name.startswith("clvkit.plots"), (path.name, name)
                assert not name.startswith(("clvkit.models.bgnbd", "clvkit.models.gamma")), (
                    path.name,
                    name,
                )


def test_holdout_revenue_is_the_spend_models_simulated_total():
    # revenue draws come from SpendSpec.sample_spend of the simulated purchases: for
    # Gamma-Gamma the total of X purchases is Gamma(p X, nu), so at a point posterior and a
    # customer with a long history (nu nearly known) its mean is E[X] E[spend]
    cust = pd.DataFrame(
        {"frequency": [30], "recency": [37.0], "T": [38.0], "monetary_value": [40.0]}
    )
    tab = holdout_predictive(MLE, cust, 39.0, actual=np.array([3]), spend_posterior=SPEND,
                             actual_revenue=np.array([120.0]), n_samples=4000, random_seed=2)  # fmt: skip
    from clvkit.models.registry import get

    gg = get("gamma_gamma").spec
    prm = {k: np.array([[v]]) for k, v in SPEND.items()}
    spend = gg.expected_spend(prm, {"frequency": np.array([30.0]),
                                    "monetary_value": np.array([40.0])})[0, 0]  # fmt: skip
    assert tab["predicted_revenue"].iloc[0] == pytest.approx(tab["predicted"].iloc[0] * spend)
    assert tab["revenue_lower"].iloc[0] < tab["predicted_revenue"].iloc[0]
    assert tab["predicted_revenue"].iloc[0] < tab["revenue_upper"].iloc[0]
    assert 0 <= tab["revenue_pit"].iloc[0] <= 1


def test_backtest_emits_no_floating_point_warning():
    """Issue 14 papercut: "invalid value encountered in multiply" (0 x -inf inside np.where, in
    the old predict.py) on every backtest. Now P(X(t) = n) never forms 0 * log(0); a log with
    string ids, times of day, customers first seen on the calibration end (T = 0) and a spend
    model backtests with every numpy floating-point error and RuntimeWarning raised."""
    log = cdnow_transactions()
    log = log.assign(customer_id="c" + log["customer_id"].astype(str))
    late = pd.DataFrame({
        "customer_id": ["late1", "late2", "late2"],
        "date": pd.to_datetime(["1997-09-30 13:00", "1997-09-30 10:00", "1998-02-01 09:30"]),
        "amount": [10.0, 5.0, 7.0],
    })  # fmt: skip
    log = pd.concat([log.assign(date=pd.to_datetime(log["date"])), late], ignore_index=True)
    with warnings.catch_warnings(), np.errstate(invalid="raise", divide="raise", over="raise"):
        warnings.simplefilter("error", RuntimeWarning)
        res = clvkit.backtest(
            log, calibration_end="1997-09-30", observation_end="1998-06-30", amount="amount",
            transactions_model=MLE, spend_model={"p": 6.25, "q": 3.74, "v": 15.44},
            n_samples=200, random_seed=0,
        )  # fmt: skip
    assert len(res.customers) == 2357 + 2
    assert res.customers.loc["late2", "actual"] == 1
    assert res.customers.loc["late1", "T"] == 0


@pytest.mark.parametrize("suffix", ["parquet", "csv", "glob"])
def test_backtest_takes_paths_like_rfm_summary(tmp_path, suffix):
    """Issue 14 papercut: clvkit.backtest("x.parquet", ...) was refused while rfm_summary takes
    paths; a file, a CSV or a glob of Parquet parts give the in-memory result."""
    log = cdnow_transactions()
    if suffix == "glob":
        for i, part in enumerate(np.array_split(np.arange(len(log)), 3)):
            log.iloc[part].to_parquet(tmp_path / f"p{i}.parquet", index=False)
        path = str(tmp_path / "p*.parquet")
    else:
        path = tmp_path / f"log.{suffix}"
        getattr(log, f"to_{suffix}")(path, index=False)
    kw = dict(calibration_end="1997-09-30", observation_end="1998-06-30", amount="amount",
              transactions_model=MLE, spend_model={"p": 6.25, "q": 3.74, "v": 15.44},
              n_samples=200, random_seed=0)  # fmt: skip
    mem = clvkit.backtest(log, **kw)
    got = clvkit.backtest(path, **kw)
    pd.testing.assert_frame_equal(got.customers, mem.customers)
    pd.testing.assert_frame_equal(got.metrics, mem.metrics)
    assert int(got.customers["actual"].sum()) == 1882


@pytest.mark.parametrize("window", [1, 3])
def test_compiled_cohort_counts_equal_the_vectorized_ones(window):
    """simulate_cohort counts each batch in one compiled pass (issue 14 speed); the counts equal
    the former vectorized route (bincount per period, window_counts on sorted events)."""
    from clvkit.evaluation.tracking import cohort_batch_counts
    from clvkit.models.registry import get

    spec = get("bgnbd").spec
    rng = np.random.default_rng(3)
    M, K, H = 30, 12, 11.5
    births = np.sort(rng.uniform(0, 6, 200))
    first = np.ceil(births + window - 1 - 1e-9).astype(np.int64)
    params = {k: np.full((M, 1), v) for k, v in {**TRUTH, "r": 2.0}.items()}
    future = spec.simulate(params, spec.new_customer_columns(births.size), H - births, rng, 500)
    inc = np.zeros((M, K))
    diff = np.zeros((M, K + 1), dtype=np.int64)
    want_inc, want_ret, n_batches = np.zeros((M, K)), np.zeros((M, K)), 0
    for b in future.batches:
        n_batches += 1
        cohort_batch_counts(b.draw, b.customer, b.count, b.times, births, first, window, inc, diff)
        owner = b.owner
        times = births[b.customer[owner]] + b.times
        per = np.minimum(np.floor(times).astype(np.int64), K - 1)
        smp = b.draw[owner]
        want_inc += np.bincount(smp * K + per, minlength=M * K).reshape(M, K)
        order = np.lexsort((times, owner))
        want_ret += window_counts(smp[order], b.customer[owner][order], per[order], first, M, K,
                                  window)  # fmt: skip
    assert n_batches > 3 and want_inc.sum() > 1000
    np.testing.assert_array_equal(inc, want_inc)
    np.testing.assert_array_equal(np.cumsum(diff, axis=1)[:, :-1], want_ret)


def test_backtest_sizes_its_samples_to_the_base():
    """Issue 14 (speed on the user's path): without n_samples the simulation work is bounded by
    a budget of futures; CDNOW keeps the full 2,000 samples and 1,000 cohorts, and the counts
    used are recorded for the report."""
    from clvkit.evaluation.run import sample_counts

    post = {"r": 0.2426, "alpha": 4.4137, "a": 0.793, "b": 2.4262}  # CDNOW MLE (FHL 2005)
    res = clvkit.backtest(
        cdnow_transactions(), calibration_end="1997-09-30", observation_end="1998-06-30",
        transactions_model=post, random_seed=0,
    )  # fmt: skip
    assert res.metrics.attrs["n_samples"] == 2000
    assert res.metrics.attrs["n_cohorts"] == 1000
    assert sample_counts(100_000, None) == (400, 200)
    assert sample_counts(40_000, None) == (1000, 500)
    for n in (1, 2_357, 10**5, 10**6, 10**8):  # bounded work, never below the floors
        per, coh = sample_counts(n, None)
        assert 250 <= per <= 2000 and 200 <= coh <= 1000
        assert per * n <= max(40_000_000, 250 * n) and coh * n <= max(20_000_000, 200 * n)
    with pytest.raises(clvkit.ClvkitError, match="n_samples"):
        sample_counts(10, 0)
