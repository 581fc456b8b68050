"""Tests of clvkit.value.engine: reference values, closed forms, Monte Carlo and property checks."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import integrate, stats

from clvkit.errors import ClvkitError
from clvkit.value.engine import DEFAULT_TIERS, customer_value

# CDNOW MLE (Fader, Hardie and Lee 2005; Fader and Hardie 2013), as used by lifetimes' docs
BG_MLE = {"r": 0.2426, "alpha": 4.4137, "a": 0.7930, "b": 2.4262}
GG_MLE = {"p": 6.2488, "q": 3.7446, "v": 15.4477}


def posterior(params: dict, draws: int = 1, chains: int = 1, noise: float = 0.0, seed: int = 0):
    """A posterior Dataset: the point ``params`` or lognormal draws around it."""
    rng = np.random.default_rng(seed)
    return xr.Dataset(
        {
            k: (("chain", "draw"), v * np.exp(noise * rng.standard_normal((chains, draws))))
            for k, v in params.items()
        },
        coords={"chain": np.arange(chains), "draw": np.arange(draws)},
    )


@pytest.fixture(scope="module")
def cdnow(lifetimes_data_dir) -> pd.DataFrame:
    d = pd.read_csv(
        os.path.join(lifetimes_data_dir, "cdnow_customers_summary_with_transactions.csv")
    )
    rfm = pd.DataFrame(
        {
            "frequency": d["x"].to_numpy(),
            "recency": d["t_x"].to_numpy(),
            "T": d["T"].to_numpy(),
            "monetary_value": d["zbar"].to_numpy(),
        },
        index=pd.Index(d["ID"].to_numpy(), name="customer_id"),
    )
    rfm.attrs["time_unit"] = "W"
    return rfm


def small_rfm(n: int = 6) -> pd.DataFrame:
    rfm = pd.DataFrame(
        {
            "frequency": [0, 1, 2, 5, 12, 0][:n],
            "recency": [0.0, 3.0, 30.43, 20.0, 38.0, 0.0][:n],
            "T": [38.86, 10.0, 38.86, 39.0, 39.0, 1.0][:n],
            "monetary_value": [0.0, 11.77, 22.35, 40.0, 15.0, 0.0][:n],
        },
        index=pd.Index(list("abcdef")[:n], name="customer_id"),
    )
    rfm.attrs["time_unit"] = "W"
    return rfm


# ------------------------------------------------------------------------------------------
# reference values
# ------------------------------------------------------------------------------------------
def test_matches_lifetimes_on_cdnow(cdnow):
    """lifetimes 0.11.3 GammaGammaFitter.customer_lifetime_value(bgf, ..., time=12,
    discount_rate=0.01, freq="W"): 12 steps of 4.345 weeks, 1% per step, at the CDNOW MLE."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lifetimes import BetaGeoFitter, GammaGammaFitter
        from lifetimes.utils import _customer_lifetime_value

    bgf = BetaGeoFitter()
    bgf.params_ = pd.Series(BG_MLE)

    def predict(t, x, tx, T):  # lifetimes' own formula; numpy in because of pandas 3
        return bgf.conditional_expected_number_of_purchases_up_to_time(
            t, np.asarray(x), np.asarray(tx), np.asarray(T)
        )

    bgf.predict = predict
    ggf = GammaGammaFitter()
    ggf.params_ = pd.Series(GG_MLE)
    x, m = cdnow["frequency"], cdnow["monetary_value"]
    spend = pd.Series(ggf.conditional_expected_average_profit(x.to_numpy(), m.to_numpy()), x.index)
    expected = _customer_lifetime_value(
        bgf, x, cdnow["recency"], cdnow["T"], spend, time=12, discount_rate=0.01, freq="W"
    ).to_numpy()

    res = customer_value(
        posterior(BG_MLE), posterior(GG_MLE), cdnow, horizon=12 * 4.345, period="4.345W",
        discount_rate_per_period=0.01, keep_draws=True,
    )  # fmt: skip
    got = res.summary()["mean"].to_numpy()
    assert res.settings["n_periods"] == 12
    np.testing.assert_allclose(got, expected, rtol=1e-4)
    np.testing.assert_allclose(float(res.equity.sum()), expected.sum(), rtol=1e-6)
    # single draw: the kept draw is the mean, the interval collapses
    np.testing.assert_allclose(res.clv.values[0, 0], got)
    assert res.clv.dims == ("chain", "draw", "customer_id")


def test_annual_rate_and_duration_strings_are_unit_conversions(cdnow):
    rfm = cdnow.iloc[:300]
    args = (posterior(BG_MLE), posterior(GG_MLE), rfm)
    a = customer_value(*args, horizon="364D", period="28D", annual_discount_rate=0.12)
    rate = 1.12 ** (28 / 365.25) - 1  # documented: a year is 365.25 days
    b = customer_value(*args, horizon=52, period="4W", discount_rate_per_period=rate)
    np.testing.assert_allclose(a.summary()["mean"], b.summary()["mean"], rtol=1e-12)
    assert a.settings["rate_per_period"] == pytest.approx(rate, rel=1e-12)


def test_zero_rate_continuous_equals_undiscounted_closed_form():
    """With R = 0 both schemes give P(alive) E[N(T, T+H]] E[z] (FHL 2005 eq. 10 times the
    Gamma-Gamma conditional mean), computed independently from lifetimes' formulas."""
    rfm = small_rfm()
    H = 40.0
    x, tx, T, m = (rfm[c].to_numpy() for c in ["frequency", "recency", "T", "monetary_value"])
    r, al, a, b = BG_MLE.values()
    from scipy.special import hyp2f1

    cond = (
        (a + b + x - 1) / (a - 1)
        * (1 - ((al + T) / (al + T + H)) ** (r + x) * hyp2f1(r + x, b + x, a + b + x - 1, H / (al + T + H)))
        / (1 + (x > 0) * a / (b + x - 1) * ((al + T) / (al + tx)) ** (r + x))
    )  # fmt: skip
    p, q, v = GG_MLE.values()
    spend = p * (v + x * m) / (p * x + q - 1)
    for disc in ("discrete", "continuous"):
        res = customer_value(
            posterior(BG_MLE), posterior(GG_MLE), rfm, horizon=H, period="3W",
            annual_discount_rate=0.0, discounting=disc,
        )  # fmt: skip
        np.testing.assert_allclose(res.summary()["mean"], cond * spend, rtol=1e-10)
        np.testing.assert_allclose(res.summary()["expected_purchases"], cond, rtol=1e-10)


def test_continuous_is_the_fine_period_limit_of_discrete():
    rfm = small_rfm()
    kw = dict(horizon=52.0, annual_discount_rate=0.5, cost_per_period=0.0)
    cont = customer_value(posterior(BG_MLE), posterior(GG_MLE), rfm, period="7D",
                          discounting="continuous", **kw)  # fmt: skip
    fine = customer_value(posterior(BG_MLE), posterior(GG_MLE), rfm, period="0.125D",
                          discounting="discrete", **kw)  # fmt: skip
    # end-of-period discounting lags by half a period on average: relative gap ~ ln(1.5) / 5840
    np.testing.assert_allclose(cont.summary()["mean"], fine.summary()["mean"], rtol=2e-4)


def test_expected_cost_closed_form_single_customer():
    """A customer with x = 0 is alive at T; with cost c per period and R = 0 its expected cost
    is c * sum_k G(start_k); G checked against quadrature above."""
    rfm = small_rfm(1)
    res = customer_value(
        posterior(BG_MLE), posterior(GG_MLE), rfm, horizon=12.0, period="4W",
        annual_discount_rate=0.0, cost_per_period=2.0,
    )  # fmt: skip
    no_cost = customer_value(
        posterior(BG_MLE), posterior(GG_MLE), rfm, horizon=12.0, period="4W",
        annual_discount_rate=0.0,
    )  # fmt: skip
    r, al, a, b = BG_MLE.values()
    T = rfm["T"].iloc[0]
    A = al + T
    beta = stats.beta(a, b)
    G = [
        integrate.quad(lambda p, s=s: (A / (A + p * s)) ** r * beta.pdf(p), 0, 1)[0] for s in (4, 8)
    ]
    cost = 2.0 * (1.0 + G[0] + G[1])
    diff = no_cost.summary()["mean"].iloc[0] - res.summary()["mean"].iloc[0]
    assert diff == pytest.approx(cost, rel=1e-7)


# ------------------------------------------------------------------------------------------
# joint propagation, consistency, Monte Carlo
# ------------------------------------------------------------------------------------------
def test_draws_are_paired_by_a_permutation_not_averaged():
    rfm = small_rfm()
    tp = posterior(BG_MLE, draws=3, noise=0.3, seed=1)
    sp = posterior(GG_MLE, draws=3, noise=0.3, seed=2)
    kw = dict(horizon=26.0, period="4W", annual_discount_rate=0.1)
    res = customer_value(tp, sp, rfm, random_seed=5, keep_draws=True, **kw)
    # equity of every (purchase draw i, spend draw j) combination, from point fits
    E = np.empty((3, 3))
    for i in range(3):
        for j in range(3):
            one = customer_value(tp.isel(draw=[i]), sp.isel(draw=[j]), rfm, **kw)
            E[i, j] = float(one.equity.sum())
    got = res.equity.values[0]
    js = [int(np.argmin(np.abs(E[i] - got[i]))) for i in range(3)]
    np.testing.assert_allclose(got, E[np.arange(3), js], rtol=1e-12)
    assert sorted(js) == [0, 1, 2]  # a permutation: each spend draw used once
    # and a point spend fit pairs with every purchase draw
    pt = customer_value(tp, posterior(GG_MLE), rfm, **kw)
    assert pt.equity.shape == (1, 3)
    # and the other way round: the larger posterior sets the draws
    sp4 = posterior(GG_MLE, draws=4, chains=2, noise=0.3, seed=3)
    other = customer_value(posterior(BG_MLE), sp4, rfm, keep_draws=True, **kw)
    assert other.equity.dims == ("chain", "draw") and other.equity.shape == (2, 4)
    assert np.unique(np.round(other.equity.values, 9)).size == 8  # every spend draw used once


def test_equity_is_sum_within_draws_and_chunking_does_not_matter(cdnow):
    tp = posterior(BG_MLE, draws=50, chains=2, noise=0.1, seed=3)
    sp = posterior(GG_MLE, draws=50, chains=2, noise=0.1, seed=4)
    kw = dict(horizon="52W", period="30D", annual_discount_rate=0.1, random_seed=1, keep_draws=True)
    big = customer_value(tp, sp, cdnow, **kw)
    small = customer_value(tp, sp, cdnow, chunk_size=97, **kw)
    # predict sizes its quadrature per block (stated accuracy 1e-9), so chunks agree to 1e-8
    np.testing.assert_allclose(big.clv.values, small.clv.values, rtol=1e-8)
    np.testing.assert_allclose(big.equity.values, big.clv.sum("customer_id").values, rtol=1e-12)
    assert float(big.equity.mean()) == pytest.approx(big.summary()["mean"].sum(), rel=1e-10)
    np.testing.assert_allclose(big.tier_equity.sum("tier"), big.equity, rtol=1e-10)
    assert big.equity.dims == ("chain", "draw")


@pytest.mark.parametrize("method", ["expected", "simulate"])
def test_n_jobs_does_not_change_results(cdnow, method):
    """Threads change nothing, bit for bit: each chunk has its own random stream (keyed by its
    index) and chunk results are added in chunk order. 25 chunks; tiers by expected CLV.
    (Chunk size is another matter: simulate draws one stream per chunk, so its values depend on
    chunk_size; expected agrees across chunk sizes to 1e-8, tested above.)"""
    tp = posterior(BG_MLE, draws=20, chains=2, noise=0.1, seed=3)
    sp = posterior(GG_MLE, draws=20, chains=2, noise=0.1, seed=4)
    kw = dict(horizon="52W", period="30D", annual_discount_rate=0.1, cost_per_period=0.2,
              method=method, chunk_size=97, keep_draws=True, random_seed=7)  # fmt: skip
    one = customer_value(tp, sp, cdnow, n_jobs=1, **kw)
    for n_jobs in (2, 3):
        res = customer_value(tp, sp, cdnow, n_jobs=n_jobs, **kw)
        names = ("equity", "expected_equity", "tier_equity", "tier_count", "new_customer", "clv")
        for name in names:
            assert np.array_equal(getattr(res, name).values, getattr(one, name).values), name
        if method == "simulate":
            assert np.array_equal(res.purchases.values, one.purchases.values)
        for prob in (0.5, 0.8, 0.9, 0.95):
            pd.testing.assert_frame_equal(res.summary(prob), one.summary(prob), check_exact=True)
    # the default (every usable core) is the same too, and so is a Generator seed
    default = customer_value(tp, sp, cdnow, **kw)
    assert np.array_equal(default.equity.values, one.equity.values)
    gen_kw = {**kw, "random_seed": np.random.default_rng(7)}
    from_gen = customer_value(tp, sp, cdnow, n_jobs=2, **gen_kw)
    assert np.array_equal(from_gen.equity.values, one.equity.values)


def test_n_jobs_does_not_change_results_across_draw_and_customer_blocks(cdnow):
    """Inside a chunk the expected method splits draws into blocks of 256 (kernels, tier cuts,
    tier sums, the first-pass copy) and customers into blocks of 128 (quantiles): with 600
    draws and 700-customer chunks every one of these has several blocks on the threads."""
    from clvkit.models.contract import DRAW_BLOCK
    from clvkit.value.accumulate import QUANTILE_BLOCK

    tp = posterior(BG_MLE, draws=300, chains=2, noise=0.1, seed=3)
    sp = posterior(GG_MLE, draws=300, chains=2, noise=0.1, seed=4)
    assert 600 > 2 * DRAW_BLOCK and 700 > 2 * QUANTILE_BLOCK
    kw = dict(horizon="52W", period="30D", annual_discount_rate=0.1, cost_per_period=0.2,
              chunk_size=700, random_seed=7)  # fmt: skip
    one = customer_value(tp, sp, cdnow, n_jobs=1, **kw)
    two = customer_value(tp, sp, cdnow, n_jobs=2, **kw)
    for name in ("equity", "tier_equity", "tier_count", "new_customer"):
        assert np.array_equal(getattr(two, name).values, getattr(one, name).values), name
    for prob in (0.5, 0.8, 0.9, 0.95):
        pd.testing.assert_frame_equal(two.summary(prob), one.summary(prob), check_exact=True)


def test_identical_customers_are_computed_once_with_the_same_bits(cdnow):
    """The expected method computes each distinct (x, t_x, T, m) once, and every x = 0 customer
    of the same age once (their values do not depend on t_x or m): the bits equal computing
    every customer, and most CDNOW customers (one-time buyers) are duplicates."""
    from clvkit.models.contract import take
    from clvkit.value import CashflowSettings, RunOptions, prepare_job

    tp = posterior(BG_MLE, draws=30, chains=2, noise=0.1, seed=3)
    sp = posterior(GG_MLE, draws=30, chains=2, noise=0.1, seed=4)
    rfm = cdnow
    flow = CashflowSettings(horizon="52W", period="30D", annual_discount_rate=0.1,
                            cost_per_period=0.3)  # fmt: skip
    job = prepare_job(tp, sp, rfm, flow, RunOptions("expected", chunk_size=400, random_seed=2))
    data = job.customer_table(rfm)
    cols = {c: data[c].to_numpy() for c in data.columns}
    run = job.runner(cols)
    order = job.canonical_order(data)
    distinct = 0
    for lo in range(0, len(data), job.chunk):
        idx = order[lo : lo + job.chunk]
        clv, means, _ = run.chunk(idx, np.random.default_rng(0))
        c_u, _, _, inverse = run.distinct(idx, np.random.default_rng(0))
        distinct += c_u.shape[1]
        assert inverse is None or np.array_equal(c_u[:, inverse], clv)
        every = take(cols, idx)
        spend = job.spend.expected_spend(job.spend_params, every)
        ref_clv, ref_means = job.purchase.expected_value(
            job.purchase_params, every, spend, job.cashflow
        )
        assert np.array_equal(clv, ref_clv) and np.array_equal(means, ref_means)
    assert distinct < 0.5 * len(data)  # 2,357 customers, about 1,000 distinct


def test_chunk_streams_are_seed_sequence_children():
    """Chunk i draws from child i of the simulation stream's SeedSequence, whatever the order
    in which chunks are made."""
    from clvkit.value import chunk_streams

    parent = np.random.default_rng(11).spawn(3)[2]
    stream = chunk_streams(parent)
    backwards = [stream(i).random(4) for i in reversed(range(5))][::-1]
    children = parent.bit_generator.seed_seq.spawn(5)
    expected = [np.random.Generator(np.random.PCG64(c)).random(4) for c in children]
    for got, want in zip(backwards, expected, strict=True):
        assert np.array_equal(got, want)
    # distinct chunks, distinct streams
    assert not np.array_equal(backwards[0], backwards[1])


@pytest.mark.slow
def test_simulate_agrees_with_expected_and_is_wider(cdnow):
    """Same seed -> same pairing, so per draw the simulated equity minus the expected one has
    mean 0; |mean| < 4 standard errors. Predictive spread >= parameter spread (total variance)."""
    S = 300
    tp = posterior(BG_MLE, draws=S, noise=0.05, seed=5)
    sp = posterior(GG_MLE, draws=S, noise=0.05, seed=6)
    for disc, cost in [("discrete", 0.0), ("discrete", 0.4), ("continuous", 0.4)]:
        kw = dict(horizon="52W", period="4W", annual_discount_rate=0.1, discounting=disc,
                  cost_per_period=cost, margin=0.4, random_seed=11)  # fmt: skip
        ex = customer_value(tp, sp, cdnow, method="expected", **kw)
        si = customer_value(tp, sp, cdnow, method="simulate", **kw)
        d = si.equity.values.ravel() - ex.equity.values.ravel()
        assert abs(d.mean()) < 4 * d.std(ddof=1) / np.sqrt(S)
        ei, si_int = ex.equity_interval(0.9), si.equity_interval(0.9)
        assert si_int["upper"] - si_int["lower"] >= ei["upper"] - ei["lower"]
        # per customer: simulate's spread exceeds the credible spread on average
        se, ss = ex.summary(0.8), si.summary(0.8)
        assert (ss["upper"] - ss["lower"]).mean() > (se["upper"] - se["lower"]).mean()
        # P(alive) and expected spend are the same closed forms in both methods
        np.testing.assert_allclose(ss["p_alive"], se["p_alive"], rtol=1e-12)


@pytest.mark.parametrize("batch", [None, 5_000])
def test_simulated_purchase_counts_match_expectation(batch, monkeypatch):
    """Mean simulated purchases per customer vs the closed form, within 5 standard errors; also
    with purchases simulated in batches of 5,000 (large chunks hold 2 million at a time)."""
    from clvkit.value import job

    if batch is not None:
        monkeypatch.setattr(job, "PURCHASE_BATCH", batch)
    rfm = small_rfm()
    S = 20_000
    tp, sp = posterior(BG_MLE, draws=S), posterior(GG_MLE, draws=S)
    kw = dict(horizon=60.0, period="4W", annual_discount_rate=0.0)
    si = customer_value(tp, sp, rfm, method="simulate", random_seed=3, keep_draws=True, **kw)
    ex = customer_value(posterior(BG_MLE), posterior(GG_MLE), rfm, **kw)
    n = si.purchases.values.reshape(S, -1)
    se = n.std(axis=0, ddof=1) / np.sqrt(S)
    z = (n.mean(axis=0) - ex.summary()["expected_purchases"].to_numpy()) / se
    assert np.all(np.abs(z) < 5), z
    # revenue: CLV mean vs closed form within 5 standard errors
    c = si.clv.values.reshape(S, -1)
    zc = (c.mean(axis=0) - ex.summary()["mean"].to_numpy()) / (c.std(axis=0, ddof=1) / np.sqrt(S))
    assert np.all(np.abs(zc) < 5), zc


# ------------------------------------------------------------------------------------------
# properties
# ------------------------------------------------------------------------------------------
params = st.fixed_dictionaries(
    {
        "r": st.floats(0.05, 5), "alpha": st.floats(0.5, 50), "a": st.floats(0.1, 5),
        "b": st.floats(0.1, 10), "p": st.floats(0.5, 10), "q": st.floats(1.5, 10),
        "v": st.floats(1, 50),
    }
)  # fmt: skip
# recency > 0 for repeat customers: the models refuse a repeat customer with recency 0
customer = st.tuples(st.integers(0, 60), st.floats(1e-3, 1), st.floats(0.5, 200), st.floats(1, 500))


def _one(c):
    x, frac, T, m = c
    rfm = pd.DataFrame(
        {"frequency": [x], "recency": [frac * T if x else 0.0], "T": [T],
         "monetary_value": [m if x else 0.0]},
        index=pd.Index([0], name="customer_id"),
    )  # fmt: skip
    rfm.attrs["time_unit"] = "W"
    return rfm


def _split(pr):
    return (
        posterior({k: pr[k] for k in ("r", "alpha", "a", "b")}),
        posterior({k: pr[k] for k in ("p", "q", "v")}),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    params,
    customer,
    st.floats(0, 0.5),  # rates above 1 (100% a year) are refused (issue 14)
    st.floats(0.001, 0.5),
    st.sampled_from(["discrete", "continuous"]),
)
def test_clv_falls_with_rate_and_grows_with_horizon(pr, c, r1, dr, disc):
    tp, sp = _split(pr)
    rfm = _one(c)

    def clv(rate, h):
        res = customer_value(tp, sp, rfm, horizon=h, period="4W", annual_discount_rate=rate,
                             discounting=disc)  # fmt: skip
        return float(res.summary()["mean"].iloc[0])

    base = clv(r1, 52.0)
    assert np.isfinite(base) and base > 0
    assert clv(r1 + dr, 52.0) <= base * (1 + 1e-9)
    assert clv(r1, 104.0) >= base * (1 - 1e-9)


@settings(max_examples=15, deadline=None)
@given(params, st.integers(0, 2**32 - 1))
def test_tiers_partition_customers_and_equity(pr, seed):
    tp, sp = _split(pr)
    rfm = small_rfm()
    big = pd.concat([rfm] * 40, ignore_index=True).rename_axis("customer_id")
    big.attrs["time_unit"] = "W"
    tp = posterior(
        dict(zip(tp.data_vars, [tp[k].item() for k in tp.data_vars], strict=True)),
        20,
        noise=0.2,
        seed=seed % 1000,
    )
    res = customer_value(tp, sp, big, horizon=30.0, annual_discount_rate=0.1, method="simulate",
                         random_seed=seed)  # fmt: skip
    n = len(big)
    counts = res.tier_count.values
    np.testing.assert_allclose(counts.sum(-1), n)
    # ties at a cut go down, so a tier never exceeds its rank share
    caps = np.diff(np.ceil(np.array([0, *DEFAULT_TIERS.values()]) * n - 1e-9))
    assert np.all(counts[..., :-1].cumsum(-1) <= np.cumsum(caps)[:-1])
    np.testing.assert_allclose(res.tier_equity.sum("tier"), res.equity, rtol=1e-9, atol=1e-9)
    summ = res.summary()
    tier_p = summ[[f"p_{t}" for t in DEFAULT_TIERS]].to_numpy()
    np.testing.assert_allclose(tier_p.sum(1), 1.0)


@pytest.fixture(scope="module")
def tiered(cdnow):
    """CDNOW valued both ways with 200 draws (kept), the same posterior and seed."""
    tp = posterior(BG_MLE, draws=200, noise=0.1, seed=7)
    sp = posterior(GG_MLE, draws=200, noise=0.1, seed=8)
    kw = dict(horizon="52W", annual_discount_rate=0.1, random_seed=2, keep_draws=True)
    return (customer_value(tp, sp, cdnow, method="expected", **kw),
            customer_value(tp, sp, cdnow, method="simulate", **kw))  # fmt: skip


def test_tiers_are_fixed_by_expected_clv_for_both_methods(tiered):
    """Issue 14 item 3: one membership, ranked by posterior-mean expected CLV, whatever the
    method; exact counts (ceil(share n)), the same in tier_table and summary()["tier"]."""
    exp, sim = tiered
    n = 2357
    want = [24, 118 - 24, 472 - 118, n - 472]
    for res in (exp, sim):
        table, summ = res.tier_table(), res.summary()
        assert table["count"].tolist() == want and table["count"].dtype.kind == "i"
        counts = summ["tier"].value_counts().reindex(table.index)
        assert counts.tolist() == want
        assert (res.tier_count.values == np.array(want)).all()  # the same in every draw
        # membership is the top of the expected-CLV ranking
        top = summ["expected_clv"].sort_values(ascending=False, kind="stable")
        assert (summ.loc[top.index[:24], "tier"] == "platinum").all()
        assert (summ.loc[top.index[24:118], "tier"] == "gold").all()
        # the cut is the tier's lowest expected CLV
        for name, row in table.iterrows():
            assert row["cut"] == summ.loc[summ["tier"] == name, "expected_clv"].min()
        # tier equity per draw is the members' CLV of the method, summed
        clv = res.clv.values.reshape(200, n)
        for j, name in enumerate(table.index):
            members = (summ["tier"] == name).to_numpy()
            np.testing.assert_allclose(
                res.tier_equity.values[..., j].ravel(), clv[:, members].sum(1), rtol=1e-12
            )
        # membership probabilities: the share of draws in each tier's expected-CLV range
        cuts = table["cut"].to_numpy()
        above = np.stack([(clv >= c).mean(0) for c in cuts[:-1]])
        p = np.diff(np.vstack([np.zeros(n), above, np.ones(n)]), axis=0).T
        np.testing.assert_allclose(summ[[f"p_{t}" for t in table.index]].to_numpy(), p)
    pd.testing.assert_series_equal(exp.summary()["tier"], sim.summary()["tier"])
    np.testing.assert_allclose(sim.summary()["expected_clv"], exp.summary()["mean"], rtol=1e-12)
    # simulate keeps the expected (credible) equity besides the predictive one
    np.testing.assert_allclose(sim.expected_equity.values, exp.equity.values, rtol=1e-12)
    assert exp.expected_equity is not None
    np.testing.assert_array_equal(exp.expected_equity.values, exp.equity.values)
    cred = sim.equity_interval(0.9, kind="credible")
    pd.testing.assert_series_equal(cred, exp.equity_interval(0.9), rtol=1e-12)
    pred = sim.equity_interval(0.9)  # simulate's default: predictive
    assert pred["upper"] - pred["lower"] > cred["upper"] - cred["lower"]
    with pytest.raises(ClvkitError, match=r"predictive.*method='simulate'"):
        exp.equity_interval(0.9, kind="predictive")
    with pytest.raises(ClvkitError, match="'kind'"):
        sim.equity_interval(0.9, kind="both")


def test_top_tier_share_no_longer_rewards_lucky_draws(tiered):
    """Issue 14 item 3: per-draw ranks let simulate's top 1% be the luckiest customers of each
    draw (22.7% vs 15.3% of equity in the issue). With fixed membership, simulate's mean tier
    share agrees with expected's up to Monte Carlo error."""
    exp, sim = tiered
    e, s = exp.tier_table(), sim.tier_table()
    assert e.loc["platinum", "equity_share"] == pytest.approx(0.1782, abs=1e-4)
    assert s.loc["platinum", "equity_share"] == pytest.approx(0.1782, abs=0.01)
    # the old per-draw ranking of the same simulated values: the lucky top 1% hold far more
    clv = sim.clv.values.reshape(200, -1)
    lucky = np.sort(clv, axis=1)[:, -24:].sum(1) / clv.sum(1)
    assert lucky.mean() > s.loc["platinum", "equity_share"] + 0.05
    # simulated tier shares are predictive: wider than the credible ones
    for name in e.index:
        assert s.loc[name, "share_upper"] - s.loc[name, "share_lower"] > (
            e.loc[name, "share_upper"] - e.loc[name, "share_lower"]
        )


def test_tier_sample_size_is_deprecated_and_ignored(cdnow):
    from clvkit.errors import ClvkitWarning

    tp = posterior(BG_MLE, draws=10, noise=0.1, seed=7)
    sp = posterior(GG_MLE, draws=10, noise=0.1, seed=8)
    kw = dict(horizon="52W", annual_discount_rate=0.1, random_seed=0)
    base = customer_value(tp, sp, cdnow, **kw)
    with pytest.warns(ClvkitWarning, match="tier_sample_size.*no effect"):
        old = customer_value(tp, sp, cdnow, tier_sample_size=1000, **kw)
    pd.testing.assert_frame_equal(old.tier_table(), base.tier_table())


def test_ties_in_expected_clv_split_by_customer_id():
    """Identical customers have equal expected CLV: the lower ids take the higher tier."""
    rfm = pd.concat([small_rfm()] * 50, ignore_index=True).rename_axis("customer_id")
    rfm.attrs["time_unit"] = "W"
    rfm = rfm.iloc[::-1]  # row order does not matter
    res = customer_value(posterior(BG_MLE), posterior(GG_MLE), rfm, horizon=30.0,
                         annual_discount_rate=0.1)  # fmt: skip
    summ = res.summary()
    assert res.tier_table()["count"].tolist() == [3, 12, 45, 240]
    # the top group is customer 4 (x = 12) repeated at ids 4, 10, 16, ...: ids 4, 10, 16 lead
    plat = sorted(summ.index[summ["tier"] == "platinum"])
    assert plat == [4, 10, 16]
    assert summ.loc[plat, "p_platinum"].tolist() == [1.0, 1.0, 1.0]


def test_new_customer_is_predictive_under_simulate():
    """Issue 14 papercut: the new-customer interval was the expected one under simulate."""
    tp, sp = posterior(BG_MLE, draws=4000), posterior(GG_MLE, draws=4000)  # a point, repeated
    kw = dict(horizon="52W", annual_discount_rate=0.1, margin=0.3)
    exp = customer_value(tp, sp, small_rfm(), method="expected", **kw).new_customer_value()
    sim = customer_value(tp, sp, small_rfm(), method="simulate", random_seed=1, **kw)
    nc = sim.new_customer_value()
    assert exp["clv_lower"] == pytest.approx(exp["clv_upper"])  # one point: no spread
    assert nc["clv_upper"] - nc["clv_lower"] > exp["clv_mean"]  # one future per draw: wide
    # the mean of the simulated futures is the expected value, within 4 standard errors
    v = sim.new_customer.values.ravel()
    assert abs(v.mean() - exp["clv_mean"]) < 4 * v.std() / np.sqrt(v.size)
    # the acquisition purchase (undiscounted) is always there: CLV >= 0, and > 0 always
    assert (v > 0).all()


# ------------------------------------------------------------------------------------------
# results API
# ------------------------------------------------------------------------------------------
def test_summary_new_customer_and_report(cdnow):
    rfm = cdnow.copy()
    before = rfm.copy()
    tp = posterior(BG_MLE, draws=100, noise=0.1, seed=1)
    sp = posterior(GG_MLE, draws=100, noise=0.1, seed=2)
    res = customer_value(tp, sp, rfm, horizon="52W", annual_discount_rate=0.1, margin=0.3,
                         acquisition_cost=5.0, random_seed=0)  # fmt: skip
    pd.testing.assert_frame_equal(rfm, before)  # the caller's frame is untouched
    assert rfm.attrs == before.attrs
    s = res.summary(0.9)
    assert list(s.index) == list(cdnow.index)
    assert np.all(s["lower"] <= s["median"]) and np.all(s["median"] <= s["upper"])
    assert set(s["tier"].cat.categories) == set(DEFAULT_TIERS)
    with pytest.raises(ClvkitError, match="keep_draws"):
        _ = res.clv
    with pytest.raises(ClvkitError, match="prob"):
        res.summary(0.73)
    nc = res.new_customer_value()
    # new customer at the mean parameters: margin * (first spend + repeat purchases x spend)
    p, q, v = GG_MLE.values()
    assert nc["clv_mean"] > 0.3 * p * v / (q - 1)
    assert nc["clv_to_cac_mean"] == pytest.approx(nc["clv_mean"] / 5.0)
    assert nc["clv_minus_cac_mean"] == pytest.approx(nc["clv_mean"] - 5.0)
    text = res.report()
    assert "Customer equity" in text and "platinum" in text and "CLV:CAC" in text


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_progressbar_writes_to_stderr_only(capsys, n_jobs):
    customer_value(posterior(BG_MLE), posterior(GG_MLE), small_rfm(), horizon=5.0,
                   annual_discount_rate=0.1, chunk_size=2, progressbar=True,
                   n_jobs=n_jobs)  # fmt: skip
    out = capsys.readouterr()
    assert out.out == ""


def test_new_customer_closed_form():
    """A new customer (x = 0, T = 0) with R = 0: E[N(0, H)] = (a+b-1)/(a-1) (1 - (al/(al+H))^r
    2F1(r, b; a+b-1; H/(al+H))) (FHL 2005 eq. 9), plus the acquisition purchase."""
    from scipy.special import hyp2f1

    r, al, a, b = BG_MLE.values()
    p, q, v = GG_MLE.values()
    H = 52.0
    EN = (a + b - 1) / (a - 1) * (1 - (al / (al + H)) ** r * hyp2f1(r, b, a + b - 1, H / (al + H)))
    res = customer_value(posterior(BG_MLE), posterior(GG_MLE), small_rfm(), horizon=H,
                         annual_discount_rate=0.0)  # fmt: skip
    assert res.new_customer.values.item() == pytest.approx(p * v / (q - 1) * (1 + EN), rel=1e-10)


# ------------------------------------------------------------------------------------------
# bad input
# ------------------------------------------------------------------------------------------
def test_fitted_models_entry_point_and_mismatched_spend_model(cdnow):
    """customer_value takes fitted models directly; a spend model fitted on other customers
    (its repeat-customer counts per frequency differ from the transactions model's) is refused."""
    import warnings

    from clvkit import BetaGeo, GammaGamma

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bg = BetaGeo().fit(cdnow, method="mle")
        gg = GammaGamma().fit(cdnow, method="mle")
        gg_other = GammaGamma().fit(cdnow.iloc[:1500], method="mle")
    kw = dict(horizon="52W", period="4W", annual_discount_rate=0.1)
    via_models = customer_value(bg, gg, cdnow, **kw)
    via_data = customer_value(bg.idata_.posterior, gg.idata_.posterior, cdnow, **kw)
    np.testing.assert_allclose(via_models.summary()["mean"], via_data.summary()["mean"])
    # the MLE matches the published CDNOW values used elsewhere in this file
    assert bg.idata_.posterior["r"].item() == pytest.approx(BG_MLE["r"], rel=1e-3)
    with pytest.raises(
        ClvkitError, match=r"spend_model.*other customers.*frequency 1: .*Suggestion"
    ):
        customer_value(bg, gg_other, cdnow, **kw)


@pytest.mark.parametrize(
    ("kw", "pattern"),
    [
        ({"horizon": -5.0}, "horizon.*positive"),
        ({"horizon": "-3W"}, "horizon"),
        ({"annual_discount_rate": -0.1}, "annual_discount_rate.*non-negative"),
        (
            {"annual_discount_rate": None, "discount_rate_per_period": -0.01},
            "discount_rate_per_period",
        ),
        ({"discount_rate_per_period": 0.01}, "exactly one"),
        ({"annual_discount_rate": None}, "exactly one"),
        ({"margin": 0.0}, r"margin.*\(0, 1\]"),
        ({"margin": 1.5}, r"margin.*\(0, 1\]"),
        ({"cost_per_period": -1.0}, "cost_per_period"),
        ({"method": "mean"}, "method"),
        ({"discounting": "yearly"}, "discounting"),
        ({"tiers": {"top": 0.1, "rest": 0.9}}, "tiers"),
        ({"period": "1 m"}, "period"),  # minutes or months? ("1 month" is a month now)
        ({"n_jobs": 0}, "n_jobs.*positive integer"),
        ({"n_jobs": 1.5}, "n_jobs.*positive integer"),
        ({"n_jobs": True}, "n_jobs.*positive integer"),
        # issue 14 item 5: a rate of 10 (meant as 10%) is 1,000%
        ({"annual_discount_rate": 10}, r"10 means 1,000% a year\. Suggestion: 0\.1 for 10%"),
        (
            {"annual_discount_rate": None, "discount_rate_per_period": 2},
            r"'discount_rate_per_period' is 2.*200% a period\. Suggestion: 0\.02 for 2%",
        ),
        # issue 14 item 4: draws= and probs=
        ({"draws": 0}, "'draws' must be a positive integer"),
        ({"draws": 1.5}, "'draws' must be a positive integer"),
        ({"draws": True}, "'draws' must be a positive integer"),
        ({"draws": 2}, r"'draws' is 2, but the posterior has 1 draw.*point fit has 1"),
        ({"probs": (0.9, 1.5)}, r"'probs' must be .* in \(0, 1\)"),
        ({"probs": ()}, "'probs'"),
        ({"probs": "90%"}, "'probs'"),
    ],
)
def test_bad_arguments(kw, pattern):
    args = {"horizon": 10.0, "annual_discount_rate": 0.1, **kw}
    with pytest.raises(ClvkitError, match=pattern):
        customer_value(posterior(BG_MLE), posterior(GG_MLE), small_rfm(), **args)


def test_bad_rfm_tables():
    good = small_rfm()
    no_m = good.drop(columns="monetary_value")
    with pytest.raises(ClvkitError, match=r"monetary_value.*Suggestion"):
        customer_value(
            posterior(BG_MLE), posterior(GG_MLE), no_m, horizon=5, annual_discount_rate=0
        )
    bad = good.copy()
    bad.loc[["b", "c"], "recency"] = 100.0
    with pytest.raises(ClvkitError, match=r"'recency'.*2 of 6 rows.*'customer_id': 'b'"):
        customer_value(posterior(BG_MLE), posterior(GG_MLE), bad, horizon=5, annual_discount_rate=0)
    bad = good.copy()
    bad.loc["d", "monetary_value"] = np.nan
    with pytest.raises(ClvkitError, match=r"'monetary_value'.*1 of 6 rows;.*'monetary_value': nan"):
        customer_value(posterior(BG_MLE), posterior(GG_MLE), bad, horizon=5, annual_discount_rate=0)
    days = good.copy()
    days.attrs["time_unit"] = "D"
    tp = posterior(BG_MLE).assign_attrs(time_unit="W")
    with pytest.raises(ClvkitError, match="time units disagree"):
        customer_value(tp, posterior(GG_MLE), days, horizon=5, annual_discount_rate=0)
    nounit = good.copy()
    nounit.attrs = {}
    with pytest.raises(ClvkitError, match="time_unit"):
        customer_value(
            posterior(BG_MLE), posterior(GG_MLE), nounit, horizon=5, annual_discount_rate=0
        )


def test_bad_posteriors():
    with pytest.raises(ClvkitError, match=r"spend_model.*\['p', 'q', 'v'\]"):
        customer_value(posterior(BG_MLE), posterior(BG_MLE), small_rfm(), horizon=5,
                       annual_discount_rate=0)  # fmt: skip
    for method in ("expected", "simulate"):  # expected CLV ranks the tiers of both
        with pytest.raises(ClvkitError, match=r"'q'.*infinite.*tiers"):
            customer_value(posterior(BG_MLE), posterior({**GG_MLE, "q": 0.8}), small_rfm(),
                           horizon=5, annual_discount_rate=0, method=method)  # fmt: skip
    neg = posterior({**BG_MLE, "r": -1.0})
    with pytest.raises(ClvkitError, match=r"'r'.*positive"):
        customer_value(neg, posterior(GG_MLE), small_rfm(), horizon=5, annual_discount_rate=0)


def test_cashflow_settings_object_equals_the_keywords():
    """A CashflowSettings gives the keyword call's bits; keywords override its fields; unknown
    keywords and a missing horizon are refused by name."""
    from clvkit.value import CashflowSettings

    tp = posterior(BG_MLE, draws=20, noise=0.1, seed=3)
    sp = posterior(GG_MLE, draws=20, noise=0.1, seed=4)
    rfm = small_rfm()
    kw = dict(horizon="52W", period="4W", annual_discount_rate=0.1, margin=0.4,
              cost_per_period=0.2, acquisition_cost=30.0)  # fmt: skip
    by_kw = customer_value(tp, sp, rfm, random_seed=1, **kw)
    flow = CashflowSettings(**kw)
    by_obj = customer_value(tp, sp, rfm, flow, random_seed=1)
    assert np.array_equal(by_obj.equity.values, by_kw.equity.values)
    assert np.array_equal(by_obj.new_customer.values, by_kw.new_customer.values)
    pd.testing.assert_frame_equal(by_obj.summary(), by_kw.summary(), check_exact=True)
    assert by_obj.settings == by_kw.settings
    assert by_obj.settings["margin"] == 0.4 and by_obj.settings["n_periods"] == 13
    # a keyword overrides the object's field
    half = customer_value(tp, sp, rfm, flow, margin=0.2, cost_per_period=0.0, random_seed=1)
    ref = customer_value(tp, sp, rfm, random_seed=1, **{**kw, "margin": 0.2, "cost_per_period": 0})
    assert np.array_equal(half.equity.values, ref.equity.values)
    np.testing.assert_allclose(
        half.equity.values, 0.5 * customer_value(tp, sp, rfm, flow, cost_per_period=0.0,
                                                 random_seed=1).equity.values, rtol=1e-12,
    )  # fmt: skip
    with pytest.raises(ClvkitError, match=r"unknown argument.*'horizont'.*Suggestion"):
        customer_value(tp, sp, rfm, horizont=5, annual_discount_rate=0.1)
    with pytest.raises(ClvkitError, match=r"'horizon' is missing.*Suggestion"):
        customer_value(tp, sp, rfm, annual_discount_rate=0.1)
    with pytest.raises(ClvkitError, match=r"'settings' must be a CashflowSettings"):
        customer_value(tp, sp, rfm, {"horizon": 5})
    with pytest.raises(ClvkitError, match=r"'margin'.*\(0, 1\]"):
        CashflowSettings(horizon=5, annual_discount_rate=0.1, margin=2)


# ------------------------------------------------------------------------------------------
# issue 14: draws=, probs=, margin in the report
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["expected", "simulate"])
def test_draws_thins_evenly_over_chains_and_draws(cdnow, method):
    tp = posterior(BG_MLE, draws=50, chains=2, noise=0.1, seed=3)
    sp = posterior(GG_MLE, draws=50, chains=2, noise=0.1, seed=4)
    kw = dict(horizon="52W", annual_discount_rate=0.1, random_seed=5, method=method)
    full = customer_value(tp, sp, cdnow, keep_draws=True, **kw)
    thin = customer_value(tp, sp, cdnow, draws=10, keep_draws=True, **kw)
    assert full.settings["n_draws"] == 100 and thin.settings["n_draws"] == 10
    assert thin.settings["n_draws_available"] == 100
    keep = [0, 11, 22, 33, 44, 55, 66, 77, 88, 99]  # evenly spaced over chain 0, then chain 1
    assert thin.equity.dims == ("chain", "draw") and thin.equity.shape == (1, 10)
    assert thin.equity["draw"].values.tolist() == keep
    # the thinned draws are the full run's pairs at those positions (the quadrature's node
    # count follows the draws of a chunk: equal to 1e-8, as across chunk sizes)
    flat = full.expected_equity.values.ravel()
    np.testing.assert_allclose(thin.expected_equity.values.ravel(), flat[keep], rtol=1e-8)
    if method == "expected":
        clv = full.clv.values.reshape(100, -1)[keep]
        np.testing.assert_allclose(thin.clv.values.reshape(10, -1), clv, rtol=1e-8)
    assert customer_value(tp, sp, cdnow, draws=100, **kw).settings["n_draws"] == 100
    with pytest.raises(ClvkitError, match="'draws' is 101, but the posterior has 100"):
        customer_value(tp, sp, cdnow, draws=101, **kw)


def test_probs_sets_the_stored_interval_levels(cdnow):
    """Issue 14 papercut: value.summary(prob=0.75) failed without kept draws."""
    tp = posterior(BG_MLE, draws=40, noise=0.1, seed=3)
    sp = posterior(GG_MLE, draws=40, noise=0.1, seed=4)
    kw = dict(horizon="52W", annual_discount_rate=0.1, random_seed=5)
    res = customer_value(tp, sp, cdnow, probs=(0.75, 0.9), **kw)
    kept = customer_value(tp, sp, cdnow, keep_draws=True, **kw)
    assert res.settings["probs"] == (0.75, 0.9)
    pd.testing.assert_frame_equal(res.summary(0.75), kept.summary(0.75), rtol=1e-12)
    pd.testing.assert_frame_equal(res.summary(0.9), kept.summary(0.9), rtol=1e-12)
    with pytest.raises(ClvkitError, match=r"stored for \(0.75, 0.9\) only.*probs=\(\.\.\., 0.5\)"):
        res.summary(0.5)


def test_report_says_margin_one_is_revenue(cdnow):
    """Issue 14 item 5: margin defaults to 1 and nothing said it is revenue."""
    kw = dict(horizon="52W", annual_discount_rate=0.1)
    one = customer_value(posterior(BG_MLE), posterior(GG_MLE), cdnow, **kw)
    assert "margin 1 (margin 1 = revenue, not profit)" in one.report()
    assert one.settings["margin"] == 1.0
    part = customer_value(posterior(BG_MLE), posterior(GG_MLE), cdnow, margin=0.3, **kw)
    assert "margin 0.3," in part.report() and "revenue, not profit" not in part.report()
    assert part.equity.item() == pytest.approx(0.3 * one.equity.item(), rel=1e-12)
