"""Customer value by group: customer_value(..., by=...), CustomerValue.group_table."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import clvkit
from clvkit.errors import ClvkitError

FLOW = {"horizon": "52W", "annual_discount_rate": 0.1}


@pytest.fixture(scope="module")
def rfm():
    rfm = clvkit.datasets.cdnow_calibration_summary()
    i = np.arange(len(rfm))
    return rfm.assign(
        channel=np.where(i % 3 == 0, "shop", "web"), region=np.where(i % 2 == 0, "n", "s")
    )


def _draws(values: dict, S: int, seed: int, spread: float = 0.05) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    return xr.Dataset(
        {
            k: (("chain", "draw"), (v * np.exp(spread * rng.standard_normal(S))).reshape(2, -1))
            for k, v in values.items()
        }
    )


@pytest.fixture(scope="module")
def bg():
    return _draws(dict(r=0.2426, alpha=4.4137, a=0.793, b=2.4262), 40, 1)


@pytest.fixture(scope="module")
def gg():
    return _draws(dict(p=6.2488, q=3.7446, v=15.4477), 40, 2)


def covariate_model(rfm: pd.DataFrame, S: int = 40, seed: int = 0):
    """A BG/NBD with a channel covariate and region segments, from a posterior (no fit)."""
    design = clvkit.covariate_design(rfm[["channel"]], rfm.index, reference={"channel": "web"})
    terms = {
        "base": "bgnbd", "links": {"alpha": -1, "a": 1, "b": 1},
        "encoding": design.encoding(), "segment": "region", "levels": ["n", "s"],
    }  # fmt: skip
    rng = np.random.default_rng(seed)
    post = _draws(dict(r=0.2426, alpha=4.4137, a=0.793, b=2.4262), S, seed)
    for p in ("alpha", "a", "b"):
        post[f"coef_{p}"] = (
            ("chain", "draw", "coefficient"),
            0.3 + 0.1 * rng.random((2, S // 2, 1)),
        )
        post[f"sd_{p}"] = (("chain", "draw"), 0.2 + 0.01 * rng.random((2, S // 2)))
        post[f"seg_{p}"] = (("chain", "draw", "segment"), rng.standard_normal((2, S // 2, 2)))
        post[f"new_{p}"] = (("chain", "draw"), rng.standard_normal((2, S // 2)))
    post.attrs = {"covariates": json.dumps(terms), "time_unit": "W"}
    return clvkit.CovariatePurchaseModel.from_posterior(post)


def test_cdnow_mle_value_by_repeat_buyers():
    rfm = clvkit.datasets.cdnow_calibration_summary()
    bg = clvkit.BetaGeo().fit(rfm, method="mle")
    gg = clvkit.GammaGamma().fit(rfm, method="mle")
    buyer = (rfm["frequency"] > 0).rename("repeat_buyer")
    res = clvkit.customer_value(bg, gg, rfm, by=buyer, **FLOW)
    table = res.group_table()
    assert table.index.name == "repeat_buyer"
    assert table["customers"].tolist() == [1411, 946]
    assert table["equity"].round(2).tolist() == [13695.47, 58528.84]
    assert table["equity"].sum() == pytest.approx(72224.31, abs=0.01)  # the reference total
    assert table["clv_mean"].round(3).tolist() == [9.706, 61.870]
    assert table["equity_share"].round(3).tolist() == [0.190, 0.810]
    # one-time buyers are all in the lowest tier; 2.5% of repeat buyers are platinum
    assert table.loc[False, "share_lead"] == 1.0
    assert table.loc[True, "share_platinum"] == pytest.approx(24 / 946)


@pytest.mark.parametrize("method", ["expected", "simulate"])
def test_group_equity_sums_to_total_equity_per_draw(rfm, bg, gg, method):
    res = clvkit.customer_value(bg, gg, rfm, by="region", method=method, random_seed=3, **FLOW)
    assert res.group_equity.dims == ("chain", "draw", "group")
    assert res.group_equity.coords["group"].values.tolist() == ["n", "s"]
    total = res.group_equity.sum("group").values
    np.testing.assert_allclose(total, res.equity.values, rtol=1e-9, atol=0)
    expected = res.group_expected_equity.sum("group").values
    np.testing.assert_allclose(expected, res.expected_equity.values, rtol=1e-9, atol=0)
    if method == "simulate":  # predictive and credible differ
        assert not np.allclose(res.group_equity.values, res.group_expected_equity.values)
        cred = res.group_table(kind="credible")
        assert cred["equity"].sum() == pytest.approx(float(res.expected_equity.mean()), rel=1e-9)


@pytest.mark.parametrize("method", ["expected", "simulate"])
def test_group_table_equals_sums_of_the_kept_draws(rfm, bg, gg, method):
    res = clvkit.customer_value(
        bg, gg, rfm, by="channel", method=method, random_seed=5, keep_draws=True, **FLOW
    )
    clv = res.clv.values.reshape(40, -1)
    table = res.group_table(0.8)
    eq = res.equity.values.ravel()
    for g in ("shop", "web"):
        cols = (rfm["channel"] == g).to_numpy()
        sums = clv[:, cols].sum(axis=1)
        np.testing.assert_allclose(res.group_equity.sel(group=g).values.ravel(), sums, rtol=1e-9)
        per = sums / cols.sum()
        row = table.loc[g]
        assert row["customers"] == cols.sum()
        assert row["clv_mean"] == pytest.approx(per.mean(), rel=1e-9)
        assert row["clv_lower"] == pytest.approx(np.quantile(per, 0.1), rel=1e-9)
        assert row["equity_upper"] == pytest.approx(np.quantile(sums, 0.9), rel=1e-9)
        assert row["equity_share"] == pytest.approx(np.mean(sums / eq), rel=1e-9)
    assert table["equity_share"].sum() == pytest.approx(1.0, rel=1e-12)
    tiers = pd.crosstab(rfm["channel"], res.summary()["tier"], normalize="index")
    for t in res.tier_table().index:
        np.testing.assert_allclose(table[f"share_{t}"], tiers[t].reindex(table.index).to_numpy())


def test_group_sums_do_not_depend_on_threads_row_order_or_chunks(rfm, bg, gg):
    kw = dict(by="channel", random_seed=0, **FLOW)
    one = clvkit.customer_value(bg, gg, rfm, n_jobs=1, **kw)
    shuffled = rfm.sample(frac=1.0, random_state=1)
    other = clvkit.customer_value(bg, gg, shuffled, n_jobs=2, **kw)
    np.testing.assert_array_equal(one.group_equity.values, other.group_equity.values)
    # smaller chunks: the customers' values agree to rounding (quadrature shared per chunk)
    small = clvkit.customer_value(bg, gg, shuffled, chunk_size=97, n_jobs=2, **kw)
    np.testing.assert_allclose(small.group_equity.values, one.group_equity.values, rtol=1e-12)
    np.testing.assert_allclose(
        small.group_equity.sum("group").values, small.equity.values, rtol=1e-9, atol=0
    )


def test_by_series_is_by_column(rfm, bg, gg):
    col = clvkit.customer_value(bg, gg, rfm, by="channel", random_seed=0, **FLOW)
    series = rfm["channel"].sample(frac=1.0, random_state=2).rename("how")
    ser = clvkit.customer_value(
        bg, gg, rfm.drop(columns="channel"), by=series, random_seed=0, **FLOW
    )
    np.testing.assert_array_equal(col.group_equity.values, ser.group_equity.values)
    assert ser.group_table().index.name == "how"


def test_group_errors(rfm, bg, gg):
    with pytest.raises(ClvkitError, match=r"'by' must be a column of 'rfm'.*Suggestion"):
        clvkit.customer_value(bg, gg, rfm, by="nope", **FLOW)
    gaps = rfm.assign(channel=rfm["channel"].where(rfm.index != 5))
    with pytest.raises(ClvkitError, match=r"column 'channel' of 'rfm' has no group.*1 of 2,357"):
        clvkit.customer_value(bg, gg, gaps, by="channel", **FLOW)
    with pytest.raises(ClvkitError, match=r"no group for the customer.*'customer_id': 1\b"):
        clvkit.customer_value(bg, gg, rfm, by=rfm["channel"].iloc[1:], **FLOW)
    res = clvkit.customer_value(bg, gg, rfm, **FLOW)
    with pytest.raises(ClvkitError, match="without 'by'"):
        res.group_table()
    res = clvkit.customer_value(bg, gg, rfm, by="region", **FLOW)
    with pytest.raises(ClvkitError, match="'predictive'"):
        res.group_table(kind="predictive")


def test_rfm_is_not_modified(rfm, bg, gg):
    before = rfm.copy()
    clvkit.customer_value(bg, gg, rfm, by="region", method="simulate", random_seed=1, **FLOW)
    pd.testing.assert_frame_equal(rfm, before)


def test_covariate_model_by_segment_equals_each_segment_alone(rfm, gg):
    model = covariate_model(rfm)
    res = clvkit.customer_value(model, gg, rfm, by="region", random_seed=4, **FLOW)
    for g in ("n", "s"):
        part = rfm[rfm["region"] == g]
        alone = clvkit.customer_value(model, gg, part, random_seed=4, **FLOW)
        np.testing.assert_allclose(
            res.group_equity.sel(group=g).values, alone.equity.values, rtol=1e-9
        )
    # the segments' own effects make their CLV per customer differ
    table = res.group_table()
    assert table.loc["n", "clv_mean"] != pytest.approx(table.loc["s", "clv_mean"], rel=0.01)


@pytest.mark.parametrize(("method", "npartitions"), [("expected", 3), ("simulate", 4)])
def test_dask_route_gives_the_same_groups(rfm, bg, gg, method, npartitions):
    dask = pytest.importorskip("dask")
    dd = pytest.importorskip("dask.dataframe")
    from clvkit import distributed as cd

    kw = dict(by="channel", method=method, random_seed=6, chunk_size=170, **FLOW)
    mem = clvkit.customer_value(bg, gg, rfm, **kw)
    shuffled = rfm.sample(frac=1.0, random_state=3)
    with dask.config.set(scheduler="synchronous"):
        dist = cd.customer_value(
            bg, gg, dd.from_pandas(shuffled, npartitions=2), npartitions=npartitions, **kw
        )
    np.testing.assert_array_equal(dist.group_equity.values, mem.group_equity.values)
    np.testing.assert_array_equal(
        dist.group_expected_equity.values, mem.group_expected_equity.values
    )
    pd.testing.assert_frame_equal(dist.group_table(), mem.group_table(), check_exact=True)
    with pytest.raises(ClvkitError, match="'by' must be a column of 'rfm'"):
        cd.customer_value(bg, gg, dd.from_pandas(rfm, npartitions=2), by="nope", **FLOW)
    gaps = rfm.assign(channel=rfm["channel"].where(rfm.index != 5))
    with pytest.raises(
        ClvkitError, match=r"column 'channel' of 'rfm' has no group.*'customer_id': 5"
    ):
        cd.customer_value(bg, gg, dd.from_pandas(gaps, npartitions=2), by="channel", **FLOW)


@pytest.mark.parametrize("method", ["expected", "simulate"])
def test_many_groups_are_summed_one_at_a_time_exactly(rfm, bg, gg, method):
    from math import fsum

    from clvkit.value.accumulate import FEW_GROUPS

    cell = pd.Series(rfm.index.to_numpy() % 25, index=rfm.index, name="cell")
    assert cell.nunique() > FEW_GROUPS
    res = clvkit.customer_value(
        bg, gg, rfm, by=cell, method=method, random_seed=2, keep_draws=True, **FLOW
    )
    clv = res.clv.values.reshape(40, -1)
    got = res.group_equity.values.reshape(40, -1)
    for g in (0, 7, 24):
        cols = (cell == g).to_numpy()
        assert [fsum(row) for row in clv[:, cols]] == got[:, g].tolist()  # correctly rounded
    assert res.group_table()["customers"].sum() == len(rfm)
