"""Equity over time (issue 18): the bridge adds up draw by draw, refit=k reuses only earlier
fits, CDNOW's history over its 78 weeks equals customer_value run by hand, bad cut-offs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clvkit
from clvkit.datasets import cdnow_transactions, simulate
from clvkit.errors import ClvkitError
from clvkit.firm import equity_history

MAP = {"method": "map"}
#: customers who became inactive in each 13-week step of the simulated firm (measured)
LOST = [39, 130, 150, 173]
VALUE = {"horizon": "52W", "period": "4W", "annual_discount_rate": 0.1}
#: CDNOW cut-offs: every 13 weeks from week 13, and the log's last day (week 77.9)
CDNOW_CUTOFFS = [
    "1997-04-02", "1997-07-02", "1997-10-01", "1997-12-31", "1998-04-01", "1998-06-30"
]  # fmt: skip


def _table(log: pd.DataFrame, cutoff: str) -> pd.DataFrame:
    """The customer table at a cut-off, by hand."""
    c = pd.Timestamp(cutoff)
    return clvkit.rfm_summary(log[log["date"] <= c], amount="amount", observation_end=c)


@pytest.fixture(scope="module")
def simulated():
    """A firm acquiring customers over its first 52 of 78 weeks (known BG/NBD + Gamma-Gamma),
    valued every 13 weeks with Laplace fits of 200 draws (refit at every cut-off)."""
    sim = simulate(
        3000, r=0.25, alpha=4.0, a=0.8, b=2.5, p=6.0, q=4.0, v=15.0, acquisition_periods=52,
        observation_periods=78, random_seed=1,
    )  # fmt: skip
    hist = equity_history(
        sim.transactions, cutoffs="13W", fit_kwargs={"method": "laplace", "chains": 1,
        "draws": 200}, random_seed=0, observation_end=sim.observation_end, **VALUE,
    )  # fmt: skip
    return sim, hist


@pytest.fixture(scope="module")
def cdnow_history():
    return equity_history(
        cdnow_transactions(), cutoffs=CDNOW_CUTOFFS, fit_kwargs=MAP, random_seed=0, **VALUE
    )


def test_bridge_adds_up_draw_by_draw(simulated):
    """previous equity + new + lost + revaluation = next equity in each of the 200 draws of
    each of the 4 steps (to 1e-12); new customers bring value while the firm acquires."""
    _sim, hist = simulated
    d = hist.bridge_draws()
    assert d["new"].shape == (4, 1, 200)
    np.testing.assert_allclose(
        d["start"] + d["new"] + d["lost"] + d["revaluation"], d["end"], rtol=1e-12, atol=0
    )
    b = hist.bridge()
    np.testing.assert_allclose(
        b["start"] + b["new"] + b["lost"] + b["revaluation"], b["end"], rtol=1e-12
    )
    # acquisition over weeks 0-52: about 750 new customers per 13 weeks, none after week 52
    assert b["new_customers"].tolist() == [755, 723, 738, 0]
    assert (d["new"].values[:3] > 0).all() and (d["new"].values[3] == 0).all()
    # customers who became inactive lose value on average (in a draw, a refit may raise it)
    assert (b["lost"] < 0).all() and (d["lost"].values < 0).mean() > 0.9
    assert b["lost_customers"].tolist() == LOST
    # the interval of a part comes from its per-draw values: not degenerate with 200 draws
    assert (b["new_upper"].iloc[:3] > b["new_lower"].iloc[:3]).all()


def test_bridge_parts_equal_sums_of_customer_values(simulated):
    """Each part of the bridge from week 13 to week 26 is the sum, per draw, of the customers'
    CLV draws of customer_value run by hand (keep_draws) on the two tables with the same fits
    and seed (new customers, start and end exactly; the lost and the rest to 1e-9); the lost
    customers follow the lost rule, checked with the models' own probability_alive."""
    sim, hist = simulated
    log = sim.transactions
    c1, c2 = hist.cutoffs[0], hist.cutoffs[1]
    t1, t2 = _table(log, c1), _table(log, c2)
    seed = hist.settings["value_seed"]
    v1 = clvkit.customer_value(*hist.fits[c1], t1, **VALUE, random_seed=seed, keep_draws=True)
    v2 = clvkit.customer_value(*hist.fits[c2], t2, **VALUE, random_seed=seed, keep_draws=True)
    roles1, roles2 = hist.roles[0], hist.roles[1]
    first = log.groupby("customer_id")["date"].min()
    new_ids = first[(first > c1) & (first <= c2)].index
    assert set(roles2.index[roles2["since_previous"] == "new"]) == set(new_ids)

    lost = roles2.index[roles2["since_previous"] == "lost"]
    assert set(lost) == set(roles1.index[roles1["to_next"] == "lost"])
    # lost rule: no purchase in (c1, c2], P(alive) < 0.5 at c2 and >= 0.5 at c1
    bought = set(log.loc[(log["date"] > c1) & (log["date"] <= c2), "customer_id"])
    p2 = hist.fits[c2][0].probability_alive(t2.loc[t1.index])["mean"]
    p1 = hist.fits[c1][0].probability_alive(t1)["mean"]
    rule = [c for c in t1.index if c not in bought and p2[c] < 0.5 and p1[c] >= 0.5]
    assert sorted(rule) == sorted(lost) and len(lost) == LOST[0]

    def total(v, ids):
        return v.clv.sel(customer_id=list(ids)).sum("customer_id").values

    rest = roles2.index[roles2["since_previous"] == "rest"]
    d = hist.bridge_draws().isel(step=0)
    np.testing.assert_allclose(d["new"].values, total(v2, new_ids), rtol=1e-10)
    # the lost customers are valued on their own (same fits and seed): the expected method's
    # quadrature follows the chunk, so their CLV draws agree to about 1e-10 (measured 1.2e-10)
    np.testing.assert_allclose(d["lost"].values, total(v2, lost) - total(v1, lost), rtol=1e-9)
    np.testing.assert_allclose(
        d["revaluation"].values, total(v2, rest) - total(v1, rest), rtol=1e-9
    )
    np.testing.assert_array_equal(d["start"].values, v1.equity.values)
    np.testing.assert_array_equal(d["end"].values, v2.equity.values)


def test_cdnow_history_over_78_weeks(cdnow_history):
    """CDNOW every 13 weeks from week 13 to the log's end (MAP fits at every cut-off): the
    customers per cut-off are the log's first purchases up to it (all 2,357: acquisition
    stopped after week 12), and each equity is customer_value run by hand on that cut-off's
    table with the same fit and seed, draw for draw (bit for bit)."""
    log = cdnow_transactions()
    t = cdnow_history.table()
    first = log.groupby("customer_id")["date"].min()
    expected = [int((first <= pd.Timestamp(c)).sum()) for c in CDNOW_CUTOFFS]
    assert t["customers"].tolist() == expected == [2357] * 6
    assert t["new_customers"].tolist() == [2357, 0, 0, 0, 0, 0]
    assert t["refit"].all() and list(t["fit_cutoff"]) == list(pd.DatetimeIndex(CDNOW_CUTOFFS))
    seed = cdnow_history.settings["value_seed"]
    for i, c in enumerate(CDNOW_CUTOFFS):
        fit = cdnow_history.fits[pd.Timestamp(c)]
        by_hand = clvkit.customer_value(*fit, _table(log, c), **VALUE, random_seed=seed)
        np.testing.assert_array_equal(cdnow_history.equity.values[i], by_hand.equity.values)
    # measured: 140,035 at week 13 (a fit on 13 weeks), then 69,000-81,000 as the cohort ages
    # with no new customers
    assert t["equity"].tolist() == pytest.approx(
        [140034.5, 77386.3, 73267.0, 76830.1, 80586.3, 69352.9], abs=0.1
    )
    b = cdnow_history.bridge()
    assert b["lost_customers"].tolist() == [143, 123, 76, 51, 85]
    assert b["lost"].round(0).tolist() == [-13136, -7558, -3836, -2037, -4987]
    assert (b["new"] == 0).all() and (b["new_customers"] == 0).all()
    assert "1997-04-02 -> 1997-07-02" in cdnow_history.report()


def test_refit_every_k_reuses_the_latest_earlier_fit():
    """refit=2 on five CDNOW cut-offs: cut-offs 1, 3, 5 are fitted, 2 and 4 are valued with the
    fit of the cut-off before; each fit is the MAP fit of its own cut-off's table (same data
    fingerprint and parameters as a fit by hand: no data after its cut-off), and a reused
    fit's valuation equals customer_value by hand with that fit."""
    log = cdnow_transactions()
    cutoffs = CDNOW_CUTOFFS[:5]
    hist = equity_history(log, cutoffs=cutoffs, fit_kwargs=MAP, refit=2, random_seed=4, **VALUE)
    t = hist.table()
    dates = pd.DatetimeIndex(cutoffs)
    assert list(t["fit_cutoff"]) == [dates[0], dates[0], dates[2], dates[2], dates[4]]
    assert t["refit"].tolist() == [True, False, True, False, True]
    assert sorted(hist.fits) == [dates[0], dates[2], dates[4]]
    for c in hist.fits:
        bg, gg = hist.fits[c]
        table = _table(log, c)
        hand_bg = clvkit.BetaGeo().fit(table[["frequency", "recency", "T"]], method="map")
        hand_gg = clvkit.GammaGamma().fit(table[["frequency", "monetary_value"]], method="map")
        for fit, hand in ((bg, hand_bg), (gg, hand_gg)):
            assert (
                fit.posterior_.attrs["data_fingerprint"]
                == hand.posterior_.attrs["data_fingerprint"]
            )
            for k in hand.posterior_.data_vars:
                assert fit.posterior_[k].values.item() == pytest.approx(
                    hand.posterior_[k].values.item(), rel=1e-12
                )
    seed = hist.settings["value_seed"]
    by_hand = clvkit.customer_value(*hist.fits[dates[2]], _table(log, cutoffs[3]), **VALUE,
                                    random_seed=seed)  # fmt: skip
    np.testing.assert_array_equal(hist.equity.values[3], by_hand.equity.values)
    assert hist.bridge()["refit"].tolist() == [False, True, False, True]


def test_file_route_gives_the_same_history(tmp_path):
    """A CSV of the log (the DuckDB route) gives the same equity draws as the DataFrame."""
    log = cdnow_transactions()
    path = tmp_path / "cdnow.csv"
    log.assign(date=log["date"].dt.strftime("%Y-%m-%d")).to_csv(path, index=False)
    kw = dict(cutoffs=CDNOW_CUTOFFS[:2], fit_kwargs=MAP, random_seed=2, **VALUE)
    a = equity_history(log, **kw)
    b = equity_history(str(path), **kw)
    np.testing.assert_array_equal(a.equity.values, b.equity.values)
    pd.testing.assert_frame_equal(a.table(), b.table())


@pytest.mark.parametrize(
    ("cutoffs", "match"),
    [
        (
            ["1997-10-01", "1997-07-02", "1998-01-01"],
            "'cutoffs': 1 of 3 date\\(s\\) out of increasing order",
        ),
        (
            ["1996-12-01", "1997-07-02"],
            "'cutoffs': 1 of 2 date\\(s\\) on or before the log's first purchase",
        ),
        (["1997-01-01"], "'cutoffs': 1 of 1 date\\(s\\) on or before the log's first purchase"),
        (
            ["1997-07-02", "1998-07-01"],
            "'cutoffs': 1 of 2 date\\(s\\) after the log's end \\(1998-06-30\\)",
        ),
        (["1997-07-02", "1997-07-02"], "'cutoffs': 1 of 2 date\\(s\\) duplicated"),
        ([], "'cutoffs' is empty"),
        ("800W", "'cutoffs' is the step '800W', longer than the log"),
    ],
)
def test_bad_cutoffs(cutoffs, match):
    with pytest.raises(ClvkitError, match=match) as err:
        equity_history(cdnow_transactions(), cutoffs=cutoffs, fit_kwargs=MAP, **VALUE)
    assert "Suggestion:" in str(err.value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"refit": 0}, "'refit' must be 'every' or a positive integer"),
        ({"refit": "sometimes"}, "'refit' must be 'every'"),
        ({"lost_threshold": 1.0}, "'lost_threshold' must be in \\(0, 1\\)"),
        ({"amount": None}, "'amount' is None"),
        ({"transactions_model": "nope"}, "nope"),
        ({"annual_discount_rate": None}, "exactly one of 'annual_discount_rate'"),
    ],
)
def test_bad_arguments(kwargs, match):
    args = {**VALUE, "cutoffs": CDNOW_CUTOFFS[:2], "fit_kwargs": MAP, **kwargs}
    with pytest.raises(ClvkitError, match=match):
        equity_history(cdnow_transactions(), **args)


@pytest.mark.slow
def test_cdnow_history_nuts_intervals():
    """CDNOW's history with NUTS fits (2 chains x 1,000 draws after 1,000 tuning, at every
    13-week cut-off; about 17 s): real credible intervals around each equity (measured: 125,971
    [91,488, 165,113] at week 13 on 13 weeks of data, 68,593 [65,209, 71,971] at the end), and
    a bridge that adds up per draw."""
    hist = equity_history(
        cdnow_transactions(), cutoffs=CDNOW_CUTOFFS, random_seed=5, **VALUE,
        fit_kwargs={"method": "nuts", "chains": 2, "draws": 1000, "tune": 1000},
    )  # fmt: skip
    t = hist.table()
    assert hist.equity.shape == (6, 2, 1000)
    assert ((t["equity_lower"] < t["equity"]) & (t["equity"] < t["equity_upper"])).all()
    assert t["equity"].tolist() == pytest.approx(
        [125971, 74874, 71885, 75736, 79865, 68593], rel=0.02
    )
    width = (t["equity_upper"] - t["equity_lower"]) / t["equity"]
    # the interval narrows as the history grows: 58% of the mean at week 13, 10% at the end
    assert width.iloc[0] > 0.5 and width.iloc[-1] < 0.11
    assert width.is_monotonic_decreasing
    d = hist.bridge_draws()
    np.testing.assert_allclose(
        d["start"] + d["new"] + d["lost"] + d["revaluation"], d["end"], rtol=1e-12, atol=0
    )
    b = hist.bridge()
    assert b["lost"].tolist() == pytest.approx([-11759, -7170, -3533, -1960, -5026], rel=0.05)
    assert (b["lost_upper"] < 0).all()


def test_progress_over_cutoffs(capsys):
    """progressbar=True reports the fits and the valuations over the cut-offs on stderr."""
    equity_history(
        cdnow_transactions(), cutoffs=CDNOW_CUTOFFS[:2], fit_kwargs=MAP, progressbar=True,
        **VALUE,
    )  # fmt: skip
    err = capsys.readouterr().err
    assert "equity history: tables and fits: 2/2 (100%), done" in err
    assert "equity history: valuations: 2/2 (100%), done" in err
