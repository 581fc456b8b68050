"""Tier shares when a draw's equity is 0 (issue 12, item 4): defined, never "nan%"."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import clvkit
from clvkit.report import build_report

# r = 1e12, alpha = 1e10: every customer buys 100 times a week, so P(alive) of every repeat
# customer who has not bought for 11 weeks or more underflows to exactly 0: each CLV in that
# draw is 0
DEAD = {"r": 1e12, "alpha": 1e10, "a": 1.0, "b": 1.0}
LIVE = {"r": 0.5, "alpha": 5.0, "a": 0.8, "b": 2.5}
SPEND = {"p": 6.0, "q": 4.0, "v": 15.0}


def _post(*draws: dict[str, float]) -> xr.Dataset:
    return xr.Dataset(
        {k: (("chain", "draw"), [[d[k] for d in draws]]) for k in draws[0]},
        coords={"chain": [0], "draw": np.arange(len(draws))},
    )


@pytest.fixture(scope="module")
def rfm() -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "frequency": [2, 3, 1, 4],
            "recency": [10.0, 20.0, 5.0, 30.0],
            "T": [40.0, 40.0, 38.0, 41.0],
            "monetary_value": [20.0, 35.0, 15.0, 50.0],
        },
        index=pd.Index([1, 2, 3, 4], name="customer_id"),
    )
    out.attrs["time_unit"] = "W"
    return out


def _value(rfm, method, *draws):
    gg = _post(*[SPEND] * len(draws))
    return clvkit.customer_value(
        _post(*draws), gg, rfm, horizon=52, annual_discount_rate=0.1, method=method,
        random_seed=0, keep_draws=True, tiers={"top": 0.25, "rest": 1.0},
    )  # fmt: skip


@pytest.mark.parametrize("method", ["expected", "simulate"])
def test_draw_with_zero_equity_is_left_out_of_the_shares(rfm, method):
    res = _value(rfm, method, LIVE, DEAD)
    eq = res.equity.values.ravel()
    assert eq[1] == 0.0 and eq[0] > 0
    assert np.all(res.clv.values[0, 1] == 0.0)
    table = res.tier_table()
    assert table.attrs["zero_equity_draws"] == 1
    te = res.tier_equity.values[0, 0]  # the live draw
    want = te / eq[0]
    np.testing.assert_allclose(table["equity_share"], want, rtol=1e-12)
    np.testing.assert_allclose(table["share_lower"], want, rtol=1e-12)
    np.testing.assert_allclose(table["share_upper"], want, rtol=1e-12)
    assert table["equity_share"].sum() == pytest.approx(1.0)
    text = res.report()
    assert "nan" not in text.lower()
    assert "equity is 0 in 1 of 2 draws" in text
    assert f"{want[0]:.1%} of equity" in text


def test_zero_equity_in_every_draw_reports_no_share(rfm):
    res = _value(rfm, "expected", DEAD, DEAD)
    assert np.all(res.equity.values == 0.0)
    table = res.tier_table()
    assert table.attrs["zero_equity_draws"] == 2
    assert table[["equity_share", "share_lower", "share_upper"]].isna().all().all()
    assert table["equity"].tolist() == [0.0, 0.0]
    text = res.report()
    assert "nan" not in text.lower()
    assert text.count("share of equity n/a") == 2


def test_html_report_never_prints_nan_percent(rfm):
    cdnow = clvkit.datasets.cdnow_calibration_summary()
    bg = clvkit.BetaGeo().fit(cdnow, method="mle")
    gg = clvkit.GammaGamma().fit(cdnow, method="mle")
    res = _value(rfm, "simulate", LIVE, DEAD, DEAD)
    html = build_report(rfm, bg, gg, res).to_html()
    assert "nan%" not in html.lower()
    assert "Total equity is 0 in 2 of 3 draws" in html
