"""Tests for clvkit.datasets: the CDNOW loaders and the BG/NBD + Gamma-Gamma simulator."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from scipy.special import hyp2f1, roots_jacobi

from clvkit.datasets import cdnow_calibration_summary, cdnow_transactions, simulate
from clvkit.errors import ClvkitError


def test_cdnow_sample_shape_and_ids():
    log = cdnow_transactions()
    assert log.shape == (6919, 3)
    assert list(log.columns) == ["customer_id", "date", "amount"]
    assert log["date"].dtype.kind == "M" and log["amount"].dtype == np.float64
    ids = np.sort(log["customer_id"].unique())
    np.testing.assert_array_equal(ids, np.arange(1, 2358))
    assert log["date"].min() == pd.Timestamp("1997-01-01")
    assert log["date"].max() == pd.Timestamp("1998-06-30")
    assert (log["amount"] >= 0).all()


def test_cdnow_master_shape():
    log = cdnow_transactions(sample=False)
    assert log.shape == (69659, 3)
    assert log["customer_id"].nunique() == 23570
    assert log["date"].min() == pd.Timestamp("1997-01-01")
    assert log["date"].max() == pd.Timestamp("1998-06-30")


def test_cdnow_calibration_summary_published_totals():
    # Fader, Hardie and Lee (2005): 2,357 customers, 2,457 repeat purchases in the 39-week
    # calibration period, 1,411 customers with none.
    rfm = cdnow_calibration_summary()
    assert len(rfm) == 2357
    assert rfm.index.name == "customer_id"
    assert int(rfm["frequency"].sum()) == 2457
    assert int((rfm["frequency"] == 0).sum()) == 1411
    assert rfm.attrs == {"time_unit": "W", "observation_end": "1997-09-30"}
    assert ((rfm["recency"] <= rfm["T"]) & (rfm["recency"] >= 0)).all()


# --- simulate: recovery of the generative process --------------------------------------------

R, ALPHA, A, B = 2.0, 10.0, 1.2, 6.0
P_SHAPE, Q, V = 6.0, 4.0, 15.0


def _beta_average(f, a, b, n_nodes=80):
    """E[f(p)] for p ~ Beta(a, b) by Gauss-Jacobi quadrature; f maps (K, 1) nodes to (K, N)."""
    # weight (1-x)^(b-1) (1+x)^(a-1) on [-1, 1] is the Beta(a, b) density of p = (1+x)/2
    x, w = roots_jacobi(n_nodes, b - 1.0, a - 1.0)
    w = w / w.sum()
    return np.tensordot(w, f(((1.0 + x) / 2.0)[:, None]), axes=1)


def _z(mean_diff, sd, n):
    return mean_diff / (sd / np.sqrt(n))


@pytest.fixture(scope="module")
def sim100k():
    return simulate(
        100_000,
        r=R,
        alpha=ALPHA,
        a=A,
        b=B,
        p=P_SHAPE,
        q=Q,
        v=V,
        acquisition_periods=12,
        observation_periods=78,
        random_seed=20240601,
    )


def test_simulate_share_alive_and_rate_of_alive(sim100k):
    # Theory, per customer with window L: given lam, p the customer is alive at the end with
    # probability E[(1-p)^N(L)] = exp(-lam p L) and, if alive, N(L) ~ Poisson(lam (1-p) L).
    # Averaging over lam ~ Gamma(r, alpha):
    #   P(alive) = E_p[(alpha/(alpha+pL))^r],
    #   E[N/L; alive] = E_p[(1-p) r/(alpha+pL) (alpha/(alpha+pL))^r].
    # Tolerance: 5 Monte Carlo standard errors (false alarm rate ~6e-7 per check).
    truth = sim100k.truth
    L = 78.0 - truth["first_purchase_time"].to_numpy()
    n = len(L)
    alive = truth["alive"].to_numpy()
    p_alive = _beta_average(lambda p: (ALPHA / (ALPHA + p * L)) ** R, A, B)
    share = alive.mean()
    assert 0.2 < share < 0.8  # a meaningful mix of alive and dead customers
    assert abs(_z(share - p_alive.mean(), np.sqrt(share * (1 - share)), n)) < 5

    rate_num = _beta_average(
        lambda p: (1 - p) * R / (ALPHA + p * L) * (ALPHA / (ALPHA + p * L)) ** R, A, B
    )
    ratio_theory = rate_num.sum() / p_alive.sum()
    y = np.where(alive, truth["n_repeat"].to_numpy() / L, 0.0)
    ratio_emp = y.sum() / alive.sum()
    # delta-method SE of a ratio of means
    se = np.std(y - ratio_emp * alive) / (alive.mean() * np.sqrt(n))
    assert abs(ratio_emp - ratio_theory) < 5 * se
    # and the rate of alive customers is well below the population mean r/alpha = 0.2
    assert ratio_theory < 0.8 * R / ALPHA


def test_simulate_expected_purchases_closed_form(sim100k):
    # Fader, Hardie and Lee (2005), eq. 9: E[X(t)] for a new customer,
    # (a+b-1)/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))], checked against
    # the quadrature of E[(1 - (alpha/(alpha+pL))^r)/p] and against the simulated counts.
    truth = sim100k.truth
    L = 78.0 - truth["first_purchase_time"].to_numpy()
    closed = (
        (A + B - 1)
        / (A - 1)
        * (1 - (ALPHA / (ALPHA + L)) ** R * hyp2f1(R, B, A + B - 1, L / (ALPHA + L)))
    )
    quad = _beta_average(lambda p: (1 - (ALPHA / (ALPHA + p * L)) ** R) / p, A, B)
    np.testing.assert_allclose(quad, closed, rtol=1e-6)
    counts = truth["n_repeat"].to_numpy()
    assert abs(_z(counts.mean() - closed.mean(), counts.std(), len(counts))) < 5
    # the log holds exactly one first purchase plus n_repeat repeats per customer
    rows = sim100k.transactions.groupby("customer_id").size()
    np.testing.assert_array_equal(rows.to_numpy(), counts + 1)


def test_simulate_latent_distributions(sim100k):
    truth = sim100k.truth
    n = len(truth)
    lam, p = truth["lam"].to_numpy(), truth["p"].to_numpy()
    assert abs(_z(lam.mean() - R / ALPHA, np.sqrt(R) / ALPHA, n)) < 5
    mean_p = A / (A + B)
    sd_p = np.sqrt(A * B / ((A + B) ** 2 * (A + B + 1)))
    assert abs(_z(p.mean() - mean_p, sd_p, n)) < 5
    # first purchases uniform over the 12-week acquisition window
    t0 = truth["first_purchase_time"].to_numpy()
    assert stats.kstest(t0 / 12.0, "uniform").pvalue > 1e-4
    # dead customers died inside the window, right at their last purchase
    dead = ~truth["alive"].to_numpy()
    death = truth["death_time"].to_numpy()
    assert np.isinf(death[~dead]).all()
    assert ((death[dead] > t0[dead]) & (death[dead] < 78.0)).all()
    assert (truth["n_repeat"].to_numpy()[dead] >= 1).all()


def test_simulate_mean_spend(sim100k):
    # Gamma-Gamma: E[z | nu] = p / nu and E[1/nu] = v / (q - 1), so E[z] = p v / (q - 1) = 30.
    # Per-customer means are iid with finite variance (q > 2): 5 standard errors.
    log = sim100k.transactions
    per_customer = log.groupby("customer_id")["amount"].mean().to_numpy()
    theory = P_SHAPE * V / (Q - 1)
    assert abs(_z(per_customer.mean() - theory, per_customer.std(), len(per_customer))) < 5
    assert (log["amount"] > 0).all()


def test_simulate_dates_and_reproducibility():
    kw = dict(r=0.5, alpha=2.0, a=0.8, b=2.0, p=3.0, q=5.0, v=10.0, start="2021-03-01")
    one = simulate(
        2000, **kw, acquisition_periods=30, observation_periods=90, time_unit="D", random_seed=7
    )
    two = simulate(
        2000,
        **kw,
        acquisition_periods=30,
        observation_periods=90,
        time_unit="D",
        random_seed=np.random.default_rng(7),
    )
    pd.testing.assert_frame_equal(one.transactions, two.transactions)
    pd.testing.assert_frame_equal(one.truth, two.truth)
    log = one.transactions
    assert log["date"].min() >= pd.Timestamp("2021-03-01")
    assert one.observation_end == pd.Timestamp("2021-03-01") + pd.Timedelta(days=89)
    assert log["date"].max() <= one.observation_end
    assert one.truth["first_purchase"].max() < pd.Timestamp("2021-03-31")
    # sorted by customer, then date
    assert (np.diff(log["customer_id"].to_numpy()) >= 0).all()
    same = log["customer_id"].to_numpy()[1:] == log["customer_id"].to_numpy()[:-1]
    assert (np.diff(log["date"].to_numpy().astype(np.int64))[same] >= 0).all()
    assert one.time_unit == "D" and one.params["q"] == 5.0
    no_spend = simulate(10, r=1, alpha=1, a=1, b=1, random_seed=0)
    assert list(no_spend.transactions.columns) == ["customer_id", "date"]
    assert "nu" not in no_spend.truth


@pytest.mark.parametrize(
    "kwargs, name",
    [
        (dict(n_customers=0), "n_customers"),
        (dict(n_customers=2.5), "n_customers"),
        (dict(r=-1.0), "'r'"),
        (dict(alpha=float("nan")), "alpha"),
        (dict(p=1.0), "'p', 'q', 'v'"),
        (dict(acquisition_periods=50, observation_periods=10), "observation_periods"),
        (dict(time_unit="m"), "time_unit"),  # minutes or months? refused
        (dict(start="not a date"), "start"),
        (dict(random_seed="seed"), "random_seed"),
        (dict(random_seed=-1), "random_seed"),
    ],
)
def test_simulate_rejects_bad_arguments(kwargs, name):
    base = dict(n_customers=10, r=1.0, alpha=1.0, a=1.0, b=1.0)
    base.update(kwargs)
    n = base.pop("n_customers")
    with pytest.raises(ClvkitError, match=name):
        simulate(n, **base)


def test_simulate_extreme_dropout():
    # p ~ Beta(1000, 0.001) is 1 to machine precision: every customer dies at its first repeat.
    sure = simulate(20_000, r=5.0, alpha=5.0, a=1000.0, b=1e-3, random_seed=3).truth
    assert sure["n_repeat"].max() == 1
    assert (~sure["alive"] == (sure["n_repeat"] == 1)).all()
    # p ~ Beta(0.001, 1000) is ~0: nobody dies and counts are Poisson(lam L) given lam.
    # With lam fixed near 0.5 (r = 1e6) the counts have mean = variance = 0.5 L.
    never = simulate(20_000, r=1e6, alpha=2e6, a=1e-3, b=1e3, random_seed=4).truth
    assert never["alive"].mean() > 0.99
    L = 78.0 - never["first_purchase_time"].to_numpy()
    resid = (never["n_repeat"].to_numpy() - 0.5 * L) / np.sqrt(0.5 * L)
    assert abs(resid.mean()) < 5 / np.sqrt(len(L))  # 5 standard errors
    assert abs(resid.var() - 1) < 0.05  # sd of the variance of ~N(0,1) over 20k is ~0.01


def test_simulate_rfm_matches_truth():
    sim = simulate(5000, r=1.0, alpha=5.0, a=1.0, b=4.0, p=5.0, q=3.0, v=10.0, random_seed=9)
    rfm = sim.rfm()
    truth = sim.truth
    assert rfm.attrs["observation_end"] == "2021-06-29"
    assert len(rfm) == 5000
    # same-day repeats merge, so frequency is at most the simulated repeat count
    assert (rfm["frequency"] <= truth["n_repeat"]).all()
    # ...and merging is rare at ~0.2 purchases a week
    assert rfm["frequency"].sum() > 0.97 * truth["n_repeat"].sum()
    # T from the day grid is the continuous age minus less than one day
    age = 78.0 - truth["first_purchase_time"]
    gap_days = (age - rfm["T"]) * 7
    assert ((gap_days > 0) & (gap_days <= 1 + 1e-9)).all()
    # dead customers' last purchase is the death, on the same day
    dead = ~truth["alive"]
    death_days = np.floor(truth.loc[dead, "death_time"] * 7)
    first_days = np.floor(truth.loc[dead, "first_purchase_time"] * 7)
    np.testing.assert_allclose(rfm.loc[dead, "recency"] * 7, death_days - first_days)
    split = sim.rfm(calibration_end="2020-12-31")
    assert split.attrs["calibration_end"] == "2020-12-31"
    assert int((split["frequency"] + 1).sum() + split["frequency_holdout"].sum()) == int(
        (rfm["frequency"] + 1).sum()
    )  # everyone is acquired in the first 12 weeks, long before the calibration end


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 300),
    r=st.floats(0.05, 20),
    alpha=st.floats(0.5, 50),
    a=st.floats(0.05, 20),
    b=st.floats(0.05, 20),
    acq=st.floats(0.5, 30),
    extra=st.floats(0.0, 60),
    unit=st.sampled_from(["W", "D", "30D"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_simulate_properties(n, r, alpha, a, b, acq, extra, unit, seed):
    sim = simulate(
        n,
        r=r,
        alpha=alpha,
        a=a,
        b=b,
        p=2.0,
        q=3.0,
        v=4.0,
        acquisition_periods=acq,
        observation_periods=acq + extra,
        time_unit=unit,
        random_seed=seed,
    )
    log, truth = sim.transactions, sim.truth
    assert len(log) == n + int(truth["n_repeat"].sum())
    assert not log.isna().any().any() and (log["amount"] > 0).all()
    assert log["date"].min() >= sim.start and log["date"].max() <= sim.observation_end
    t0 = truth["first_purchase_time"]
    assert ((t0 >= 0) & (t0 < acq)).all()
    dead = ~truth["alive"]
    assert (truth.loc[dead, "n_repeat"] >= 1).all()
    assert (truth.loc[dead, "death_time"] < acq + extra).all()
    assert np.isinf(truth.loc[~dead, "death_time"]).all()
    rfm = sim.rfm()
    assert len(rfm) == n and (rfm["recency"] <= rfm["T"]).all()
    exact = sim.rfm(exact=True)
    np.testing.assert_array_equal(exact["frequency"], truth["n_repeat"])
    assert (exact["recency"] <= exact["T"]).all() and (exact["T"] > 0).all()
    assert ((exact["recency"] > 0) == (exact["frequency"] > 0)).all()


# --- simulate: the exact continuous-time summary ----------------------------------------------


def test_simulate_exact_rfm_matches_truth():
    sim = simulate(5000, r=1.0, alpha=5.0, a=1.0, b=4.0, p=5.0, q=3.0, v=10.0, random_seed=9)
    exact = sim.rfm(exact=True)
    truth, log = sim.truth, sim.transactions
    assert exact.attrs["exact_times"] is True and exact.attrs["time_unit"] == "W"
    assert exact.attrs["observation_end"] == "2021-06-29"
    assert list(exact.columns) == ["frequency", "recency", "T", "monetary_value"]
    assert exact["frequency"].dtype == np.int64 and exact.index.name == "customer_id"
    # every purchase counts: no same-day merging
    np.testing.assert_array_equal(exact["frequency"], truth["n_repeat"])
    t0 = truth["first_purchase_time"].to_numpy()
    np.testing.assert_allclose(exact["T"], 78.0 - t0, rtol=1e-12)
    dead = ~truth["alive"].to_numpy()
    np.testing.assert_allclose(
        exact["recency"].to_numpy()[dead], truth["death_time"].to_numpy()[dead] - t0[dead]
    )
    # the last purchase time from the log's own continuous times
    last = pd.Series(sim.purchase_times).groupby(log["customer_id"].to_numpy()).max()
    rep = exact["frequency"].to_numpy() > 0
    np.testing.assert_allclose(exact["recency"].to_numpy()[rep], (last.to_numpy() - t0)[rep])
    assert (exact.loc[~rep, "recency"] == 0).all()
    assert ((exact["recency"] > 0) | ~rep).all() and (exact["recency"] < exact["T"]).all()
    # mean spend of the repeat purchases (the first purchase excluded)
    later = log[log.groupby("customer_id").cumcount() > 0]
    zbar = later.groupby("customer_id")["amount"].mean()
    np.testing.assert_allclose(exact.loc[zbar.index, "monetary_value"], zbar, rtol=1e-9)
    assert (exact.loc[~rep, "monetary_value"] == 0).all()
    # the day-resolution summary is the same data on the day grid, minus merged purchases
    day = sim.rfm()
    gap = (exact["T"] - day["T"]) * 7
    assert ((gap >= 0) & (gap <= 1 + 1e-9)).all()
    assert (day["frequency"] <= exact["frequency"]).all()
    assert (day["frequency"] < exact["frequency"]).any()


def test_simulate_exact_calibration_holdout():
    sim = simulate(
        4000, r=1.0, alpha=5.0, a=1.0, b=4.0, p=5.0, q=3.0, v=10.0, time_unit="D",
        acquisition_periods=60, observation_periods=200, random_seed=5,
    )  # fmt: skip
    split = sim.rfm(calibration_end="2020-02-19", exact=True)  # day 49: mid-acquisition
    cut = 50.0  # end of 2020-02-19, in days since 2020-01-01
    t0 = sim.truth["first_purchase_time"]
    np.testing.assert_array_equal(split.index, t0.index[t0 <= cut])
    assert split.attrs["calibration_end"] == "2020-02-19"
    np.testing.assert_allclose(split["T"], cut - t0[split.index])
    np.testing.assert_allclose(split["duration_holdout"], 150.0)
    # calibration + holdout purchases are every repeat purchase
    total = split["frequency"] + split["frequency_holdout"]
    np.testing.assert_array_equal(total, sim.truth.loc[split.index, "n_repeat"])
    # brute force on the continuous times
    times = pd.Series(sim.purchase_times, index=sim.transactions["customer_id"].to_numpy())
    amount = pd.Series(sim.transactions["amount"].to_numpy(), index=times.index)
    for cid in split.index[:300]:
        t, z = times.loc[[cid]].to_numpy(), amount.loc[[cid]].to_numpy()
        cal, hold = t <= cut, t > cut
        row = split.loc[cid]
        assert row["frequency"] == cal.sum() - 1
        assert row["recency"] == pytest.approx(t[cal].max() - t[0])
        assert row["monetary_value"] == pytest.approx(z[cal][1:].mean() if cal.sum() > 1 else 0)
        assert row["monetary_value_holdout"] == pytest.approx(z[hold].mean() if hold.any() else 0)
    with pytest.raises(ClvkitError, match="calibration_end"):
        sim.rfm(calibration_end="2020-07-18", exact=True)  # the last day: no holdout
    with pytest.raises(ClvkitError, match="calibration_end"):
        sim.rfm(calibration_end="not a date", exact=True)
    with pytest.raises(ClvkitError, match="exact"):
        sim.rfm(exact="yes")


def test_simulate_exact_rfm_recovers_parameters_by_mle():
    # BG/NBD and Gamma-Gamma MLE on 50,000 customers: with the exact summary every parameter
    # is within 3 standard errors of the truth (sd of the log parameter from the Laplace fit;
    # per-parameter false alarm rate 0.3%). The day-resolution summary merges same-day
    # purchases and shifts alpha by more than 3 of them: the defect this option removes.
    from clvkit.models import BetaGeo, GammaGamma

    truth_bg = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
    truth_gg = {"p": 6.0, "q": 4.0, "v": 15.0}
    sim = simulate(50_000, **truth_bg, **truth_gg, random_seed=2000)

    def z_scores(cls, rfm, truth):
        mle = cls().fit(rfm, method="mle").idata_.posterior
        lap = cls().fit(rfm, method="laplace", chains=2, draws=1000, random_seed=1)
        post = lap.idata_.posterior
        return {
            k: (np.log(mle[k].item()) - np.log(v)) / float(np.log(post[k]).std())
            for k, v in truth.items()
        }

    exact = sim.rfm(exact=True)
    for cls, truth in ((BetaGeo, truth_bg), (GammaGamma, truth_gg)):
        z = z_scores(cls, exact, truth)
        assert all(abs(v) < 3 for v in z.values()), (cls.__name__, z)
    z_day = z_scores(BetaGeo, sim.rfm(), truth_bg)
    assert z_day["alpha"] > 3, z_day
