"""Subscriber value through clvkit.customer_value: sBG renewals x the SubscriptionFee spend
side (value = margin x fee x discounted expected renewals, FH 2010's DERL), equity with
intervals, the new subscriber, retention elasticity."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clvkit
from clvkit import ShiftedBetaGeo
from clvkit.models.sbg import math as sm
from clvkit.models.sbg.fee import SubscriptionFee


def _table() -> pd.DataFrame:
    t = pd.DataFrame(
        {
            "renewals": [5, 2, 3],
            "churned": [False, False, True],
            "age": [5.0, 2.5, 3.5],
            "fee": [20.0, 10.0, 30.0],
        },
        index=pd.Index(["a", "b", "c"], name="customer_id"),
    )
    t.attrs["time_unit"] = "M"
    return t


def test_value_is_margin_fee_derl():
    """Monthly discounting at d: a subscriber active after n renewals pays renewal k in month
    k (discounted (1 + d)^-k), so its value is margin x fee x DERL(d | n) / (1 + d); a churned
    one is worth 0; a new one pays now and then renews: margin x list fee x (1 + DERL(d | 0)
    / (1 + d))."""
    a, b, d = 3.0, 10.0, 0.01
    model = ShiftedBetaGeo.from_params(alpha=a, beta=b, time_unit="M")
    fee = SubscriptionFee.from_params(list_fee=15.0)
    v = clvkit.customer_value(
        model, fee, _table(), horizon=3000, period="M", discount_rate_per_period=d, margin=0.3
    )
    mean = v.summary()["mean"]
    z = 1.0 / (1.0 + d)
    exact_a = 0.3 * 20.0 * z * float(sm.derl(a, b, 5, d))
    exact_b = 0.3 * 10.0 * z * float(sm.derl(a, b, 2, d))
    assert mean["a"] == pytest.approx(exact_a, rel=1e-9)
    assert mean["b"] == pytest.approx(exact_b, rel=1e-9)
    assert mean["c"] == 0.0
    assert float(v.equity.mean()) == pytest.approx(exact_a + exact_b, rel=1e-9)
    new = v.new_customer_value()["clv_mean"]
    assert new == pytest.approx(0.3 * 15.0 * (1.0 + z * float(sm.derl(a, b, 0, d))), rel=1e-9)


def test_equity_intervals_and_elasticity():
    """Equity of a simulated subscriber base with credible (expected) and predictive
    (simulated) intervals, and the retention elasticity: one point more retention per period
    raises equity by a stated share."""
    rng = np.random.default_rng(3)
    n = 400
    renewals = rng.integers(0, 24, n)
    churned = rng.random(n) < 0.4
    table = pd.DataFrame(
        {
            "renewals": renewals,
            "churned": churned,
            "age": renewals + np.where(churned, 1.0, rng.random(n)),
            "fee": rng.choice([10.0, 20.0], n),
        },
        index=pd.Index(np.arange(n), name="customer_id"),
    )
    table.attrs["time_unit"] = "M"
    draws = np.random.default_rng(4)
    model = ShiftedBetaGeo.from_params(
        alpha=0.8 * np.exp(0.05 * draws.standard_normal(200)),
        beta=2.5 * np.exp(0.05 * draws.standard_normal(200)),
        time_unit="M",
    )
    fee = SubscriptionFee.from_params(list_fee=15.0)
    kw = {"horizon": 60, "period": "M", "discount_rate_per_period": 0.01, "random_seed": 5}
    expected = clvkit.customer_value(model, fee, table, **kw)
    simulated = clvkit.customer_value(model, fee, table, method="simulate", **kw)
    e, s = expected.equity.to_numpy().ravel(), simulated.equity.to_numpy().ravel()
    assert abs(s.mean() - e.mean()) < 4 * s.std() / np.sqrt(s.size)
    assert s.std() > e.std()  # predictive intervals are wider than credible ones
    better = clvkit.customer_value(model.improved_retention(0.01), fee, table, **kw)
    lift = better.equity.to_numpy().ravel() / e - 1.0
    assert np.all(lift > 0)
    # +1 point of retention (mean churn 0.24 -> 0.23) adds 2.9% to equity (2.6% to 3.2%)
    assert 0.025 < lift.mean() < 0.035 and lift.max() - lift.min() < 0.01


def test_fee_column_checked():
    model = ShiftedBetaGeo.from_params(alpha=1.0, beta=2.0, time_unit="M")
    fee = SubscriptionFee.from_params(list_fee=15.0)
    t = _table().drop(columns="fee")
    with pytest.raises(clvkit.ClvkitError, match=r"no column 'fee'.*fee_col"):
        clvkit.customer_value(model, fee, t, horizon=12, period="M", annual_discount_rate=0.1)
    t = _table()
    t.loc["b", "fee"] = -1.0
    with pytest.raises(clvkit.ClvkitError, match=r"column 'fee'.*negative in 1 of 3 rows"):
        clvkit.customer_value(model, fee, t, horizon=12, period="M", annual_discount_rate=0.1)
    with pytest.raises(clvkit.ClvkitError, match="not fitted"):
        SubscriptionFee().fit(_table(), method="map")
    with pytest.raises(clvkit.ClvkitError, match="mean churn"):
        model.improved_retention(0.5)
