"""MBG/NBD through every layer above ``models/``, with no edit there: customer value (expected and
simulate, and its fast expected route against the generic one), the backtest, the CLI (``fit``,
``value`` and ``report`` with ``--model mbgnbd``), save/load, the Dask route and the registry."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import clvkit
from clvkit.cli import main
from clvkit.datasets import cdnow_calibration_summary, cdnow_transactions
from clvkit.errors import ClvkitWarning
from clvkit.models import registry
from clvkit.models.contract import Cashflow, PurchaseSpec

Model = clvkit.ModifiedBetaGeo
SPEC = Model.spec
MLE = {"r": 0.524838, "alpha": 6.182988, "a": 0.891356, "b": 1.614000}
GG_POINT = {"p": 6.25, "q": 3.74, "v": 15.44}
CAL, END = "1997-09-30", "1998-06-30"


@pytest.fixture(scope="module")
def rfm() -> pd.DataFrame:
    return cdnow_calibration_summary()


@pytest.fixture(scope="module")
def mle(rfm):
    return Model().fit(rfm, method="mle")


def _posterior(point: dict[str, float], S: int, sd: float = 0.0, seed: int = 0) -> xr.Dataset:
    """S draws around a point (log-normal jitter), named as an MBG/NBD posterior."""
    rng = np.random.default_rng(seed)
    return xr.Dataset(
        {
            k: (("chain", "draw"), v * np.exp(sd * rng.standard_normal((1, S))))
            for k, v in point.items()
        },
        attrs={"model": "ModifiedBetaGeo", "time_unit": "W"},
    )


def test_registry_names_and_resolution(mle):
    """Registered as "mbgnbd" / "ModifiedBetaGeo"; a bare dict of r, alpha, a, b keeps meaning
    BG/NBD (MBG/NBD shares its parameter names), a posterior naming its model is MBG/NBD."""
    assert registry.get("mbgnbd") is Model and registry.get("ModifiedBetaGeo") is Model
    assert "mbgnbd" in registry.names("purchase") and SPEC.label == "MBG/NBD"
    assert registry.spec_of(dict(MLE), "purchase", "m").name == "bgnbd"
    assert registry.spec_of(_posterior(MLE, 2), "purchase", "m").name == "mbgnbd"
    assert registry.spec_of(mle, "purchase", "m").name == "mbgnbd"
    assert registry.spec_of(mle.posterior_, "purchase", "m").name == "mbgnbd"


def test_customer_value_expected(rfm, mle):
    """Undiscounted expected CLV is expected spend times expected purchases, customer by
    customer; a new customer is worth its first purchase plus b/(a+b) times its BG/NBD-like
    repeats (it may drop out at once)."""
    before = rfm.copy(deep=True)
    res = clvkit.customer_value(
        mle, GG_POINT, rfm, horizon=52.0, period="7D", discount_rate_per_period=0.0,
        method="expected",
    )  # fmt: skip
    pd.testing.assert_frame_equal(rfm, before)
    params = {n: mle.posterior_[n].to_numpy().reshape(1, 1) for n in SPEC.param_names}
    cols = SPEC.customer_columns(rfm)
    purchases = SPEC.expected_purchases(params, cols, np.array([52.0]))[0, :, 0]
    gg = registry.get("gamma_gamma").spec
    gparams = {k: np.array([[v]]) for k, v in GG_POINT.items()}
    spend = gg.expected_spend(gparams, gg.customer_columns(rfm))[0]
    assert res.equity.item() == pytest.approx(float(spend @ purchases), rel=1e-9)
    new = SPEC.expected_purchases(params, SPEC.new_customer_columns(1), [52.0]).item()
    prior_spend = GG_POINT["p"] * GG_POINT["v"] / (GG_POINT["q"] - 1)
    assert res.new_customer.item() == pytest.approx(prior_spend * (1 + new), rel=1e-9)
    # the BG/NBD at the same data values more (it keeps every one-time buyer alive)
    bg = registry.get("bgnbd")().fit(rfm, method="mle")
    bg_res = clvkit.customer_value(
        bg, GG_POINT, rfm, horizon=52.0, period="7D", discount_rate_per_period=0.0,
        method="expected",
    )  # fmt: skip
    assert res.equity.item() < bg_res.equity.item()


def test_customer_value_simulate_matches_expected(rfm):
    """Equity simulated over 200 identical draws (independent futures) agrees with the expected
    equity within 4 standard errors; one seed gives one answer."""
    S = 200
    post = Model.from_posterior(_posterior(MLE, S))
    spend = {k: np.full(S, v) for k, v in GG_POINT.items()}
    kw = dict(horizon=52.0, period="7D", discount_rate_per_period=0.0)
    exp = clvkit.customer_value(post, spend, rfm, method="expected", **kw).equity.values.ravel()
    sim = clvkit.customer_value(post, spend, rfm, method="simulate", random_seed=5, **kw)
    e = sim.equity.values.ravel()
    assert e.size == S and np.ptp(exp) == pytest.approx(0.0, abs=1e-6)
    se = e.std(ddof=1) / math.sqrt(S)
    assert abs(e.mean() - exp[0]) <= 4 * se, (e.mean(), exp[0], se)
    again = clvkit.customer_value(post, spend, rfm, method="simulate", random_seed=5, **kw)
    np.testing.assert_array_equal(again.equity.values, sim.equity.values)


def test_fast_expected_value_equals_generic_route_on_cdnow(rfm):
    """MBG/NBD's expected_value (BG/NBD's compiled kernels at b + 1, scaled for one-time
    buyers) equals the contract's generic route for every CDNOW customer, 64 draws."""
    S = 64
    post = _posterior(MLE, S, sd=0.1, seed=3)
    params = {n: post[n].to_numpy().reshape(S, 1) for n in SPEC.param_names}
    cols = SPEC.customer_columns(rfm)
    times = np.arange(1.0, 53.0)
    disc = 1.0 / 1.002**times
    rev_w = disc - np.append(disc[1:], 0.0)
    cf = Cashflow(times=times, revenue_weights=rev_w, cost_weights=disc,
                  horizon_index=times.size - 1, margin=0.3, cost_per_period=0.05)  # fmt: skip
    spend = 20.0 + np.random.default_rng(3).gamma(2.0, 5.0, size=(S, len(rfm)))
    clv, means = SPEC.expected_value(params, cols, spend, cf)
    gclv, gmeans = PurchaseSpec.expected_value(SPEC, params, cols, spend, cf)
    np.testing.assert_allclose(clv, gclv, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(means, gmeans, rtol=1e-8, atol=1e-12)


def test_backtest_on_cdnow(mle):
    """The backtest predicts holdout purchases with MBG/NBD's expected_purchases and reports
    intervals, coverage and where the actual total falls. On CDNOW (MLE): predicted total
    1,576.7 against 1,882 actual (BG/NBD: 1,653.4); 90% per-customer coverage 0.895."""
    res = clvkit.backtest(
        cdnow_transactions(), calibration_end=CAL, observation_end=END,
        transactions_model=mle, n_samples=1000, random_seed=0,
    )  # fmt: skip
    cal = res.customers
    split = res.rfm.loc[cal.index]
    params = {n: mle.posterior_[n].to_numpy().reshape(1, 1) for n in SPEC.param_names}
    want = SPEC.expected_purchases(params, SPEC.customer_columns(split), np.array([39.0]))
    np.testing.assert_allclose(cal["predicted"].to_numpy(), want[0, :, 0], rtol=1e-10)
    m = res.metrics.loc["purchases"]
    assert m["total_actual"] == 1882
    assert m["total_predicted"] == pytest.approx(1576.73, abs=0.01)
    assert m["coverage_90"] == pytest.approx(0.8948, abs=1e-4)
    assert m["total_upper"] < m["total_actual"] and m["p_total_at_least_actual"] == 0.0
    assert res.transactions_model.spec.name == "mbgnbd"


def test_save_load_round_trip(rfm, tmp_path):
    fit = Model().fit(rfm, method="map", random_seed=1)
    fit.save(tmp_path / "m.nc")
    loaded = clvkit.load(tmp_path / "m.nc")
    assert type(loaded) is Model and loaded.posterior_.attrs["model"] == "ModifiedBetaGeo"
    xr.testing.assert_identical(loaded.posterior_, fit.posterior_)
    pd.testing.assert_frame_equal(loaded.probability_alive(rfm), fit.probability_alive(rfm))
    assert loaded.log_likelihood_ == fit.log_likelihood_


# ---- CLI ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cdnow_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("mbgcli") / "cdnow.csv"
    cdnow_transactions().to_csv(path, index=False)
    return path


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_fit_and_value(cdnow_csv, tmp_path, capsys, rfm):
    prefix = tmp_path / "m" / "cdnow"
    code, out, _ = _run(
        capsys, "fit", str(cdnow_csv), "--amount", "amount", "--observation-end", CAL,
        "--method", "mle", "--model", "mbgnbd", "--out", str(prefix), "--quiet",
    )  # fmt: skip
    assert code == 0 and "MBG/NBD" in out and "0.5248" in out
    assert (tmp_path / "m" / "cdnow.mbgnbd.nc").is_file()
    table = tmp_path / "clv.csv"
    code, out, _ = _run(
        capsys, "value", str(prefix), "--model", "mbgnbd", "--horizon", "52W",
        "--annual-discount-rate", "0.1", "--value-method", "expected", "--out", str(table),
        "--quiet",
    )  # fmt: skip
    assert code == 0
    clv = pd.read_csv(table, index_col=0)
    equity = float(out.split("Customer equity: mean ")[1].split(";")[0].replace(",", ""))
    assert len(clv) == 2357 and equity == pytest.approx(clv["mean"].sum(), rel=1e-6)
    # the same number from the Python API on the saved model
    loaded = clvkit.load(tmp_path / "m" / "cdnow.mbgnbd.nc")
    gg = clvkit.load(tmp_path / "m" / "cdnow.gamma_gamma.nc")
    saved = pd.read_parquet(tmp_path / "m" / "cdnow.rfm.parquet")
    api = clvkit.customer_value(loaded, gg, saved, horizon="52W", annual_discount_rate=0.1,
                                method="expected")  # fmt: skip
    assert api.equity.item() == pytest.approx(equity, rel=1e-6)


@pytest.mark.slow
def test_cli_report(cdnow_csv, tmp_path, capsys):
    html = tmp_path / "r.html"
    code, _, _ = _run(
        capsys, "report", str(cdnow_csv), "--calibration-end", CAL, "--observation-end", END,
        "--model", "mbgnbd", "--method", "map", "--out", str(html), "--quiet",
    )  # fmt: skip
    assert code == 0
    text = html.read_text()
    assert "MBG/NBD purchase model" in text


# ---- Dask ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("method", "npartitions"), [("expected", 3), ("simulate", 4)])
def test_dask_route_identical(rfm, method, npartitions):
    pytest.importorskip("dask")
    dd = pytest.importorskip("dask.dataframe")
    distributed = pytest.importorskip("dask.distributed")
    from clvkit import distributed as cd

    post = _posterior(MLE, 60, sd=0.1, seed=1)
    gg = xr.Dataset({k: (("chain", "draw"), np.full((1, 60), v)) for k, v in GG_POINT.items()})
    kw = {"horizon": "52W", "annual_discount_rate": 0.1, "method": method, "random_seed": 5,
          "chunk_size": 170, "cost_per_period": 0.5}  # fmt: skip
    mem = clvkit.customer_value(post, gg, rfm, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        )
        client = distributed.Client(cluster)
    try:
        shuffled = rfm.sample(frac=1.0, random_state=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ClvkitWarning)
            dist = cd.customer_value(post, gg, dd.from_pandas(shuffled, npartitions=2),
                                     npartitions=npartitions, **kw)  # fmt: skip
        got = dist.summary().compute().sort_index()
    finally:
        client.close()
        cluster.close()
    for name in ("equity", "expected_equity", "tier_equity", "tier_count", "new_customer"):
        assert np.array_equal(getattr(mem, name).values, getattr(dist, name).values), name
    pd.testing.assert_frame_equal(got, mem.summary().sort_index(), check_exact=True)
    assert mem.settings["n_draws"] == 60
