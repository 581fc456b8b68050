"""BG/BB on simulated cohorts: the one generative process (spec.simulate) -> a purchase log ->
opportunity_summary gives back the simulated histories; parameter recovery and 90% interval
coverage over replications; value and equity with Gamma-Gamma through the Monte Carlo layer."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clvkit

TRUTH = {"alpha": 1.2, "beta": 0.75, "gamma": 0.66, "delta": 2.8}  # near the donations fit
SPEC = clvkit.BetaGeoBetaBinom.spec


def simulate_cohort(n_customers: int, n_opp: int, rng: np.random.Generator) -> pd.DataFrame:
    """Histories of a new cohort over ``n_opp`` opportunities from ``spec.simulate``."""
    params = {k: np.array([[v]]) for k, v in TRUTH.items()}
    fut = SPEC.simulate(params, SPEC.new_customer_columns(n_customers), float(n_opp), rng)
    freq = np.zeros(n_customers, dtype=np.int64)
    rec = np.zeros(n_customers, dtype=np.int64)
    for b in fut.batches:
        cust = b.customer[b.owner]
        np.add.at(freq, b.customer, b.count)
        np.maximum.at(rec, cust, b.times.astype(np.int64))
    out = pd.DataFrame(
        {"frequency": freq, "recency": rec, "n": np.full(n_customers, n_opp, dtype=np.int64)},
        index=pd.Index(np.arange(n_customers), name="customer_id"),
    )
    out.attrs["time_unit"] = "Y"
    return out


def test_log_round_trip():
    """A yearly log drawn from the simulated histories (purchase days anywhere in the year,
    some years with two purchases) summarizes back to exactly those histories."""
    rng = np.random.default_rng(2)
    table = simulate_cohort(500, 6, rng)
    ids, years = [np.arange(500)], [np.zeros(500, dtype=np.int64)]
    params = {k: np.array([[v]]) for k, v in TRUTH.items()}
    fut = SPEC.simulate(params, SPEC.new_customer_columns(500), 6.0, np.random.default_rng(2))
    for b in fut.batches:
        ids.append(b.customer[b.owner])
        years.append(b.times.astype(np.int64))
    ids, years = np.concatenate(ids), np.concatenate(years)
    extra = rng.random(ids.size) < 0.3  # a second purchase in the same year
    ids = np.concatenate([ids, ids[extra]])
    years = np.concatenate([years, years[extra]])
    day = rng.integers(0, 365, ids.size)
    dates = pd.to_datetime([f"{2010 + y}-01-01" for y in years]) + pd.to_timedelta(day, "D")
    log = pd.DataFrame({"customer_id": ids, "date": dates})
    out = clvkit.opportunity_summary(log, opportunity="Y", observation_end="2016-12-31")
    pd.testing.assert_frame_equal(out[["frequency", "recency", "n"]], table, check_exact=True)


@pytest.mark.slow
def test_interval_coverage_on_simulated_cohorts():
    """90% Laplace intervals of (alpha, beta, gamma, delta) cover the truth in 85-95% of
    4 x 100 intervals (100 cohorts of 2,000 customers over 8 opportunities), and the
    posterior means recover it (mean relative error under 5%)."""
    rng = np.random.default_rng(20261130)
    hits, means = [], []
    for rep in range(100):
        table = simulate_cohort(2000, 8, rng)
        m = clvkit.BetaGeoBetaBinom().fit(
            table, method="laplace", chains=1, draws=2000, random_seed=rep
        )
        s = m.summary(prob=0.9)
        hits.append([s.loc[k, "5%"] <= v <= s.loc[k, "95%"] for k, v in TRUTH.items()])
        means.append([s.loc[k, "mean"] for k in TRUTH])
    coverage = float(np.mean(hits))
    print(f"BG/BB 90% interval coverage: {coverage:.3f}; per parameter", np.mean(hits, axis=0))
    assert 0.85 <= coverage <= 0.95
    rel = np.mean(means, axis=0) / np.array(list(TRUTH.values())) - 1.0
    assert np.abs(rel).max() < 0.05, rel


def test_value_and_equity_with_gamma_gamma():
    """customer_value with Gamma-Gamma: undiscounted yearly CLV over 5 opportunities is spend x
    E[purchases in 5 opportunities] per customer, equity their sum; the simulated route agrees
    with the expected one within its Monte Carlo error."""
    rng = np.random.default_rng(4)
    table = simulate_cohort(3000, 6, rng)
    spend = rng.gamma(6.0, 8.0, len(table))  # independent of the purchase history
    table["monetary_value"] = np.where(table["frequency"] > 0, spend, 0.0)
    bgbb = clvkit.BetaGeoBetaBinom().fit(table, method="mle")
    gg = clvkit.GammaGamma().fit(table[table["frequency"] > 0], method="mle")
    kw = {"horizon": 5, "period": "Y", "annual_discount_rate": 0.0}
    value = clvkit.customer_value(bgbb, gg, table, random_seed=1, **kw)
    purchases = bgbb.expected_purchases(table, 5)["mean"].to_numpy()
    spend = gg.expected_spend(table)["mean"].to_numpy()
    clv = value.summary()["expected_clv"].reindex(table.index).to_numpy()
    np.testing.assert_allclose(clv, spend * purchases, rtol=1e-10)
    equity = float(value.equity.values.ravel()[0])
    assert equity == pytest.approx(float((spend * purchases).sum()), rel=1e-10)
    sim = clvkit.customer_value(bgbb, gg, table, method="simulate", random_seed=1, **kw)
    sim_equity = float(sim.equity.values.ravel()[0])
    assert sim_equity == pytest.approx(equity, rel=0.05)


@pytest.mark.filterwarnings("ignore::clvkit.ClvkitWarning")
def test_backtest_splits_on_the_opportunity_grid():
    """The backtest builds the table BG/BB reads (ModelSpec.data = "opportunities") from the
    log: by name it is fitted on the opportunity table; a fitted model in another unit is
    refused by name (tests/test_bgbb_layers.py checks the numbers)."""
    log = pd.DataFrame(
        {"customer_id": [1, 1, 2, 2, 3], "date": pd.to_datetime(
            ["2020-01-05", "2021-01-07", "2020-02-01", "2022-03-01", "2021-06-01"])}
    )  # fmt: skip
    kw = {"calibration_end": "2021-12-31", "observation_end": "2022-12-31", "time_unit": "Y"}
    res = clvkit.backtest(log, transactions_model="bgbb", fit_kwargs={"method": "map"},
                          n_samples=50, random_seed=0, **kw)  # fmt: skip
    assert res.rfm[["frequency", "recency", "n", "frequency_holdout", "n_holdout"]].to_dict(
        "list"
    ) == {"frequency": [1, 0, 0], "recency": [1, 0, 0], "n": [1, 1, 0],
          "frequency_holdout": [0, 1, 0], "n_holdout": [1, 1, 1]}  # fmt: skip
    assert int(res.customers["actual"].sum()) == 1
    fitted = clvkit.BetaGeoBetaBinom().fit(clvkit.datasets.donations_summary(), method="mle")
    with pytest.raises(clvkit.ClvkitError, match=r"fitted with time unit 'Y'.*uses 'Q'"):
        clvkit.backtest(log, transactions_model=fitted, **{**kw, "time_unit": "Q"})


def test_holdout_prediction_from_a_log():
    """Predicted vs actual on a holdout: a yearly log of 4,000 simulated donors over 8 years,
    split after 4 by opportunity_summary(calibration_end=...); the MLE on the calibration
    years predicts the holdout total within 3 predictive standard deviations (per-customer
    P(k) summed as independent counts), and per calibration frequency within 4."""
    rng = np.random.default_rng(11)
    params = {k: np.array([[v]]) for k, v in TRUTH.items()}
    n_cust = 4000
    fut = SPEC.simulate(params, SPEC.new_customer_columns(n_cust), 8.0, rng)
    ids, years = [np.arange(n_cust)], [np.zeros(n_cust, dtype=np.int64)]
    for b in fut.batches:
        ids.append(b.customer[b.owner])
        years.append(b.times.astype(np.int64))
    ids, years = np.concatenate(ids), np.concatenate(years)
    dates = pd.to_datetime([f"{2010 + y}-03-01" for y in years])
    log = pd.DataFrame({"customer_id": ids, "date": dates})
    split = clvkit.opportunity_summary(
        log, calibration_end="2014-12-31", observation_end="2018-12-31"
    )
    assert (split["n"] == 4).all() and (split["n_holdout"] == 4).all()
    cal = split[["frequency", "recency", "n"]].copy()
    cal.attrs["time_unit"] = split.attrs["time_unit"]
    m = clvkit.BetaGeoBetaBinom().fit(cal, method="mle")
    k = np.arange(5.0)
    post = {p: m.posterior_[p].to_numpy().reshape(1, 1) for p in TRUTH}
    pmf = SPEC.probability_of_purchases(post, SPEC.customer_columns(cal), 4.0, k)[0]
    mean = pmf @ k
    var = pmf @ k**2 - mean**2
    actual = split["frequency_holdout"].to_numpy()
    z = (actual.sum() - mean.sum()) / np.sqrt(var.sum())
    assert abs(z) < 3.0, z
    for f in range(5):
        sel = cal["frequency"].to_numpy() == f
        zf = (actual[sel].sum() - mean[sel].sum()) / np.sqrt(var[sel].sum())
        assert abs(zf) < 4.0, (f, zf)


@pytest.mark.slow
def test_dask_route_gives_the_same_bits():
    """clvkit.distributed.customer_value on a BG/BB posterior (Laplace, 200 draws) gives the
    in-memory route's equity bit for bit."""
    import dask

    from clvkit.distributed import customer_value as dask_customer_value

    d = clvkit.datasets.donations_summary()
    rng = np.random.default_rng(0)
    d["monetary_value"] = np.where(d["frequency"] > 0, rng.gamma(5.0, 10.0, len(d)), 0.0)
    fit = {"method": "laplace", "draws": 100, "chains": 2}
    bgbb = clvkit.BetaGeoBetaBinom().fit(d, random_seed=1, **fit)
    gg = clvkit.GammaGamma().fit(d[d["frequency"] > 0], random_seed=2, **fit)
    kw = {"horizon": 5, "period": "Y", "annual_discount_rate": 0.1, "random_seed": 3}
    local = clvkit.customer_value(bgbb, gg, d, **kw)
    with dask.config.set(scheduler="synchronous"):
        dist = dask_customer_value(bgbb, gg, d, npartitions=4, **kw)
    np.testing.assert_array_equal(local.equity.values, dist.equity.values)
    assert float(local.equity.mean()) > 0
