"""Counterfactual scoring: clvkit.counterfactual_value."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clvkit
from clvkit.errors import ClvkitError
from test_value_by import FLOW, _draws, covariate_model


@pytest.fixture(scope="module")
def rfm():
    rfm = clvkit.datasets.cdnow_calibration_summary()
    i = np.arange(len(rfm))
    return rfm.assign(
        channel=np.where(i % 3 == 0, "shop", "web"), region=np.where(i % 2 == 0, "n", "s")
    )


@pytest.fixture(scope="module")
def model(rfm):
    return covariate_model(rfm)


@pytest.fixture(scope="module")
def gg():
    return _draws(dict(p=6.2488, q=3.7446, v=15.4477), 40, 2)


@pytest.mark.parametrize("method", ["expected", "simulate"])
def test_no_change_is_the_customer_value_and_a_zero_difference(rfm, model, gg, method):
    cf = clvkit.counterfactual_value(
        model, gg, rfm, {"channel": rfm["channel"]}, method=method, random_seed=2, **FLOW
    )
    cv = clvkit.customer_value(model, gg, rfm, method=method, random_seed=2, **FLOW)
    assert (cf.difference.values == 0).all()
    assert cf.settings["n_changed"] == 0 and not cf.summary()["changed"].any()
    np.testing.assert_allclose(cf.equity.values, cv.equity.values, rtol=1e-12)
    np.testing.assert_allclose(cf.summary()["value"], cv.summary()["mean"], rtol=1e-12)


def test_changed_value_is_the_value_of_the_moved_table(rfm, model, gg):
    cf = clvkit.counterfactual_value(
        model, gg, rfm, {"channel": "web"}, random_seed=1, keep_draws=True, **FLOW
    )
    moved = rfm.assign(channel="web")
    cv = clvkit.customer_value(model, gg, moved, random_seed=1, **FLOW)
    np.testing.assert_allclose(cf.changed_equity.values, cv.equity.values, rtol=1e-9)
    np.testing.assert_allclose(cf.summary()["value_changed"], cv.summary()["mean"], rtol=1e-9)
    shop = (rfm["channel"] == "shop").to_numpy()
    assert cf.settings["n_changed"] == shop.sum() == 786
    s = cf.summary()
    assert (s.loc[~shop, "difference"] == 0).all() and (s.loc[shop, "difference"] != 0).all()
    # the difference per draw is summed from the joint draws (not a difference of summaries)
    d = cf.clv.sel(part="difference").values.reshape(40, -1)
    np.testing.assert_allclose(cf.difference.values.ravel(), d.sum(axis=1), rtol=1e-9)
    np.testing.assert_allclose(
        cf.difference.values, cf.changed_equity.values - cf.equity.values, rtol=1e-9, atol=1e-6
    )
    total = cf.total(0.9)
    diff = cf.difference.values.ravel()
    assert total.loc["difference", "lower"] == pytest.approx(np.quantile(diff, 0.05), rel=1e-12)
    assert total.loc["difference", "upper"] == pytest.approx(np.quantile(diff, 0.95), rel=1e-12)
    # per customer, the interval is the joint draws' quantiles
    lo = np.quantile(d, 0.05, axis=0)
    order = cf.clv.customer_id.values
    np.testing.assert_allclose(s.loc[order, "difference_lower"].to_numpy(), lo, rtol=1e-12)
    # the joint interval is narrower than the difference of the two intervals
    a, b = cf.equity.values.ravel(), cf.changed_equity.values.ravel()
    naive = np.quantile(b, 0.95) - np.quantile(a, 0.05)
    assert total.loc["difference", "upper"] - total.loc["difference", "lower"] < naive


def test_a_series_of_changes_moves_only_those_customers(rfm, model, gg):
    ids = rfm.index[rfm["region"] == "n"][:50]
    cf = clvkit.counterfactual_value(
        model, gg, rfm, {"region": pd.Series("s", index=ids)}, method="simulate", random_seed=3,
        by="region", **FLOW,
    )  # fmt: skip
    s = cf.summary()
    assert s["changed"].sum() == 50 and s.loc[ids, "changed"].all()
    assert (s.loc[~s["changed"], "difference"] == 0).all()
    g = cf.group_table()
    assert g["customers"].tolist() == [1179, 1178]  # groups of the as-is table
    assert g["difference"].sum() == pytest.approx(float(cf.difference.mean()), rel=1e-9)
    assert g.loc["s", "difference"] == 0.0  # no customer of 's' moved
    np.testing.assert_allclose(
        cf.group_equity.sum("group").sel(part="difference").values,
        cf.difference.values, rtol=1e-9, atol=1e-9,
    )  # fmt: skip


def test_a_dataframe_of_changes_and_an_unseen_segment(rfm, model, gg):
    frame = pd.DataFrame({"channel": ["shop", "shop"], "region": ["n", "x"]}, index=[1, 2])
    cf = clvkit.counterfactual_value(model, gg, rfm, frame, random_seed=0, **FLOW)
    s = cf.summary()
    # customer 1 is 'shop'/'n' already: unchanged; customer 2 ('web'/'s') moves
    assert s.index[s["changed"]].tolist() == [2] and s.loc[1, "difference"] == 0
    assert np.isfinite(s.loc[2, "value_changed"])  # an unseen segment: from the population
    assert sorted(cf.settings["changes"]) == ["channel", "region"]


def test_rfm_is_not_modified(rfm, model, gg):
    before = rfm.copy()
    clvkit.counterfactual_value(model, gg, rfm, {"channel": "shop"}, random_seed=0, **FLOW)
    pd.testing.assert_frame_equal(rfm, before)


def test_errors(rfm, model, gg):
    def run(changes, m=model):
        return clvkit.counterfactual_value(m, gg, rfm, changes, random_seed=0, **FLOW)

    with pytest.raises(ClvkitError, match=r"\['chan'\] that 'rfm' does not have.*Suggestion"):
        run({"chan": "web"})
    with pytest.raises(ClvkitError, match=r"\['frequency'\], which are not covariate"):
        run({"frequency": 1})
    with pytest.raises(ClvkitError, match=r"argument 'changes': column 'channel'.*not seen"):
        run({"channel": "mail"})
    with pytest.raises(ClvkitError, match="'changes' is empty"):
        run({})
    with pytest.raises(ClvkitError, match=r"name a customer not in 'rfm'.*999999"):
        run({"channel": pd.Series("web", index=[1, 999999])})
    bg = _draws(dict(r=0.2426, alpha=4.4137, a=0.793, b=2.4262), 40, 1)
    with pytest.raises(ClvkitError, match=r"not covariate or segment columns.*\[\]"):
        run({"channel": "web"}, bg)
