"""Predicted vs actual retention (the contractual backtest): the calibration/holdout split of a
contract table, the per-cohort and per-period comparison, its coverage on simulated sBG data,
the pandas and file routes, the plots and the ``clvkit retention`` command."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import betaln

import clvkit
from clvkit import ClvkitError, contract_calibration_holdout, contract_summary
from clvkit.cli import main
from clvkit.data.contract_split import period_ends, renewals_due
from clvkit.evaluation import retention_backtest, retention_backtest_split
from clvkit.evaluation.common import model_draws

CAL, OBS = "2024-03-31", "2024-06-30"


def _contracts() -> pd.DataFrame:
    """Seven customers: an active one, one ending in the holdout, one starting in it, one with
    two spells before the calibration end, one whose second spell starts in the holdout, one
    whose end falls on its first renewal in the holdout (then a new spell) and one continued
    (a contract starting on the day the previous one ends) after the calibration end."""
    rows = [
        (1, "2024-01-10", None),
        (2, "2024-02-05", "2024-05-20"),
        (3, "2024-05-01", None),
        (4, "2024-01-15", "2024-02-20"),
        (4, "2024-03-01", None),
        (5, "2024-01-20", "2024-02-25"),
        (5, "2024-04-15", None),
        (6, "2024-03-20", "2024-04-20"),
        (6, "2024-05-10", None),
        (7, "2024-02-01", "2024-04-01"),
        (7, "2024-04-01", None),
    ]
    return pd.DataFrame(rows, columns=["customer_id", "start", "end"])


def _simulate(rng, alpha, beta, n_cohorts=12, size=300, first="2023-01-01", obs="2024-12-31"):
    """Monthly contracts from an sBG: cohort c starts in month c (day 1-28), each subscriber
    churns after its period with probability theta ~ Beta(alpha, beta); a lifetime of L
    periods ends on renewal date L (not paid); ends after ``obs`` are left empty."""
    month = np.repeat(np.datetime64(first, "M") + np.arange(n_cohorts), size)
    day = rng.integers(0, 28, month.size)
    start = month.astype("datetime64[D]") + day
    life = np.minimum(rng.geometric(rng.beta(alpha, beta, month.size)), 600)
    end = (month + life).astype("datetime64[D]") + day
    end = pd.Series(end).where(end <= np.datetime64(obs))
    return pd.DataFrame({"customer_id": np.arange(month.size), "start": start, "end": end})


# ---- the split ----------------------------------------------------------------------------------
def test_split_by_hand():
    c = _contracts()
    before = c.copy()
    t = contract_calibration_holdout(c, "M", CAL, OBS)
    pd.testing.assert_frame_equal(c, before)  # the caller's frame is untouched
    assert t.index.tolist() == ["1", "2", "4", "4#2", "5", "6", "7"]
    assert t["renewals"].tolist() == [2, 1, 1, 0, 1, 0, 1]
    assert t["churned"].tolist() == [False, False, True, False, True, False, False]
    # 2 pays 5 April and 5 May, then ends; 6 ends on its first renewal date (not paid); 7's
    # contract continues on 1 April: one spell, 3 renewals in the holdout
    assert t["renewals_holdout"].tolist() == [3, 2, 0, 3, 0, 0, 3]
    assert t["churned_holdout"].tolist() == [False, True, True, False, True, True, False]
    assert t["renewals_holdout"].dtype == np.int64 and t["churned_holdout"].dtype == bool
    # 1 (10 Jan): 2 + 21/31 periods at 31 March, 5 + 20/30 at 30 June
    assert t.loc["1", "duration_holdout"] == pytest.approx(3 + 20 / 30 - 21 / 31, abs=1e-12)
    assert t.loc["4", "duration_holdout"] == 0.0
    assert t.attrs["calibration_end"] == CAL and t.attrs["observation_end"] == OBS
    assert t.attrs["time_unit"] == "M"
    # exactly contract_summary of the contracts cut at the calibration end
    cut = c[pd.to_datetime(c["start"]) <= CAL].copy()
    cut["end"] = cut["end"].where(pd.to_datetime(cut["end"]) <= CAL)
    ref = contract_summary(cut, "M", CAL)
    pd.testing.assert_frame_equal(t[ref.columns], ref)


def test_split_duration_counts_the_renewals_due():
    """The model's renewals due over duration_holdout are the renewals due by the observation
    end (so a subscriber active throughout has paid all of them)."""
    rng = np.random.default_rng(5)
    c = _simulate(rng, 1.0, 3.0, n_cohorts=6, size=60, obs="2024-06-30")
    t = contract_calibration_holdout(c, "M", "2024-01-17", "2024-06-30")
    act = t[~t["churned"]]
    due, _ = renewals_due(act["start"].to_numpy(), "M", ["2024-06-30"])
    spec, model = model_draws({"alpha": 1.0, "beta": 3.0}, "purchase", "model")
    cols = spec.customer_columns(act)
    # P(k renewals) is 0 beyond the renewals due: its support ends at due - renewals
    k = np.arange(0, 12)
    p = spec.probability_of_purchases(model, cols, act["duration_holdout"].to_numpy() + 1e-9, k)
    last = (p[0] > 0).sum(axis=1) - 1
    np.testing.assert_array_equal(last, due[:, 0] - act["renewals"].to_numpy())
    still = ~act["churned_holdout"]
    np.testing.assert_array_equal(
        act.loc[still, "renewals_holdout"], (due[:, 0] - act["renewals"].to_numpy())[still]
    )


def test_period_ends():
    assert [d.date().isoformat() for d in period_ends(CAL, OBS, "M")] == [
        "2024-04-30", "2024-05-31", "2024-06-30",
    ]  # fmt: skip
    assert [d.date().isoformat() for d in period_ends("2024-01-15", "2024-04-14", "M")] == [
        "2024-02-15", "2024-03-15",
    ]  # fmt: skip
    assert len(period_ends("2024-01-01", "2024-12-31", "4W")) == 13
    assert period_ends("2024-01-01", "2024-01-20", "Q") == []


def test_split_file_routes_same(tmp_path):
    c = _contracts()
    ref = contract_calibration_holdout(c, "M", CAL, OBS)
    c.to_csv(tmp_path / "contracts.csv", index=False)
    c.to_parquet(tmp_path / "contracts.parquet")
    for name in ("contracts.csv", "contracts.parquet"):
        pd.testing.assert_frame_equal(
            contract_calibration_holdout(tmp_path / name, "M", CAL, OBS), ref
        )


@pytest.mark.parametrize(
    ("change", "kwargs", "match"),
    [
        (None, {"calibration_end": "2024-07-31"}, "'calibration_end' is 2024-07-31, after"),
        (None, {"calibration_end": None}, "'calibration_end' is missing"),
        (None, {"calibration_end": "2023-12-31"}, "before every contract's start"),
        ((1, "end", "2023-01-01"), {}, "column 'end' is before the start"),
        ((1, "start", "2024-13-45"), {}, "column 'start' is not a parseable date"),
        ((0, "end", "2024-09-01"), {}, "after observation_end 2024-06-30"),
    ],
)
def test_split_errors_same_on_both_routes(tmp_path, change, kwargs, match):
    c = _contracts()
    if change is not None:
        c.loc[change[0], change[1]] = change[2]
    path = tmp_path / "c.csv"
    c.to_csv(path, index=False)
    args = {"period": "M", "calibration_end": CAL, "observation_end": OBS, **kwargs}
    messages = []
    for source in (c, path):
        with pytest.raises(ClvkitError, match=match) as err:
            contract_calibration_holdout(source, **args)
        assert "Suggestion:" in str(err.value)
        messages.append(str(err.value))
    assert messages[0] == messages[1]


# ---- the backtest -------------------------------------------------------------------------------
def test_backtest_by_hand():
    """One posterior draw (alpha 1, beta 3): the expected active counts are sums of
    S(n + m_k) / S(n); the actual ones counted by hand."""
    a, b = 1.0, 3.0
    c = _contracts()
    res = retention_backtest(c, "M", CAL, OBS, model={"alpha": a, "beta": b}, random_seed=3)
    all_ = res.periods.loc["all"]
    assert all_["period_end"].tolist() == ["2024-04-30", "2024-05-31", "2024-06-30"]
    # active at the calibration end: 1 (n 2), 2 (n 1), 4#2 (n 0), 6 (n 0), 7 (n 1); every one
    # owes one renewal per holdout month; 2 stops after two, 6 pays none
    assert all_["actual"].tolist() == [4, 4, 3]
    assert all_["active_start"].tolist() == [5, 5, 5]
    n = np.array([2, 1, 0, 0, 1])
    m = np.arange(1, 4)
    expected = np.exp(betaln(a, b + n[:, None] + m) - betaln(a, b + n[:, None])).sum(axis=0)
    np.testing.assert_allclose(all_["expected"], expected, rtol=1e-12)
    feb = res.periods.loc["2024-02"]  # customers 2 and 7 (n 1 each)
    np.testing.assert_allclose(
        feb["expected"], 2 * np.exp(betaln(a, b + 1 + m) - betaln(a, b + 1)), rtol=1e-12
    )
    assert feb["actual"].tolist() == [2, 2, 1]
    np.testing.assert_allclose(all_["actual_rate"], [4 / 5, 1.0, 3 / 4])
    jan = res.periods.loc["2024-01"]  # 1 (active), 4 and 5 (churned by the calibration end)
    assert jan["n_customers"].iloc[0] == 3 and jan["active_start"].iloc[0] == 1
    assert res.periods.loc["all", "n_customers"].iloc[0] == 7  # churned spells counted too
    # per customer: expected renewals over the holdout, 3 renewals due for each
    cust = res.customers
    assert cust.index.tolist() == ["1", "2", "4#2", "6", "7"]
    assert cust["actual"].tolist() == [3, 2, 3, 0, 3]
    e = [np.exp(betaln(a, b + k + j) - betaln(a, b + k)) for k in n for j in (1, 2, 3)]
    np.testing.assert_allclose(cust["predicted"], np.reshape(e, (5, 3)).sum(axis=1))
    # the tenure curve: r_t = (b + t - 1) / (a + b + t - 1) for a new subscriber
    t = res.tenure.index.to_numpy()
    np.testing.assert_allclose(res.tenure["predicted_rate"], (b + t - 1) / (a + b + t - 1))
    assert res.tenure.loc[1, "at_risk"] == 7  # every spell started and paid period 0
    assert "cohort-periods" in res.verdict


def test_pandas_and_csv_backtests_agree(tmp_path):
    rng = np.random.default_rng(11)
    c = _simulate(rng, 0.9, 2.5, n_cohorts=6, size=80, obs="2024-06-30")
    before = c.copy()
    path = tmp_path / "c.csv"
    c.to_csv(path, index=False)
    kw = {"method": "map", "random_seed": 4, "n_samples": 300}
    r1 = retention_backtest(c, "M", "2023-12-31", "2024-06-30", **kw)
    r2 = retention_backtest(str(path), "M", "2023-12-31", "2024-06-30", **kw)
    pd.testing.assert_frame_equal(c, before)
    pd.testing.assert_frame_equal(r1.periods, r2.periods)
    pd.testing.assert_frame_equal(r1.customers, r2.customers)
    pd.testing.assert_frame_equal(r1.tenure, r2.tenure)
    assert r1.verdict == r2.verdict
    assert r1.periods.loc["all"].shape[0] == 6


def test_backtest_takes_a_fitted_model_and_refuses_others():
    rng = np.random.default_rng(2)
    c = _simulate(rng, 0.9, 2.5, n_cohorts=4, size=60, obs="2024-06-30")
    t = contract_calibration_holdout(c, "M", "2023-12-31", "2024-06-30")
    fitted = clvkit.ShiftedBetaGeo().fit(t, method="map")
    a = retention_backtest_split(t, model=fitted, random_seed=1, n_samples=200)
    b = retention_backtest_split(t, model="sbg", method="map", random_seed=1, n_samples=200)
    np.testing.assert_allclose(a.periods["expected"], b.periods["expected"], rtol=1e-6)
    with pytest.raises(ClvkitError, match=r"model 'bgnbd' \(BG/NBD\) reads clvkit.rfm_summary"):
        retention_backtest_split(t, model="bgnbd")
    bg = {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4}
    with pytest.raises(ClvkitError, match="a BG/NBD model, which reads 'rfm' tables"):
        retention_backtest_split(t, model=bg)
    with pytest.raises(ClvkitError, match="unknown purchase model 'nope'"):
        retention_backtest_split(t, model="nope")
    weekly = t.copy()
    weekly.attrs["time_unit"] = "W"
    with pytest.raises(ClvkitError, match="fitted with time unit"):
        retention_backtest_split(weekly, model=fitted)
    with pytest.raises(ClvkitError, match="lacks columns \\['renewals_holdout'"):
        retention_backtest_split(t.drop(columns="renewals_holdout"))
    with pytest.raises(ClvkitError, match="'n_samples'"):
        retention_backtest_split(t, model=fitted, n_samples=0)
    with pytest.raises(ClvkitError, match="'prob'"):
        retention_backtest_split(t, model=fitted, prob=1.5)
    with pytest.raises(ClvkitError, match="less than one period"):
        retention_backtest(c, "M", "2024-06-10", "2024-06-30", model=fitted)


@pytest.mark.slow
def test_predictive_band_covers_90_percent_of_cohort_periods():
    """16 replications of 12 monthly cohorts of 300 subscribers from an sBG with known
    (alpha, beta) drawn from [0.5, 2] x [1, 4], observed for 24 months; NUTS on the first 18,
    6 holdout months: the 90% predictive bands cover the actual active counts in 85-95% of the
    16 x 72 = 1,152 cohort-periods (93.8% in our run: a band of counts holds at least its
    mass), and with the band's ends randomized (the PIT) in 85-95% too (90.3%)."""
    rng = np.random.default_rng(7)
    hits, pits = [], []
    for r in range(16):
        alpha, beta = rng.uniform(0.5, 2.0), rng.uniform(1.0, 4.0)
        c = _simulate(rng, alpha, beta)
        res = retention_backtest(
            c, "M", "2024-06-30", "2024-12-31", random_seed=r, n_samples=1000,
            fit_kwargs={"chains": 2, "draws": 500, "tune": 500},
        )  # fmt: skip
        cells = res.periods.drop(index="all", level="cohort")
        assert len(cells) == 72
        hits.append(cells["covered"].to_numpy())
        pits.append(cells["pit"].to_numpy())
    coverage = np.concatenate(hits).mean()
    assert 0.85 <= coverage <= 0.95, coverage
    randomized = (np.abs(np.concatenate(pits) - 0.5) <= 0.45).mean()
    assert 0.85 <= randomized <= 0.95, randomized


# ---- plots and the command ----------------------------------------------------------------------
def test_plots():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from clvkit import plots

    res = retention_backtest(_contracts(), "M", CAL, OBS, model={"alpha": 1.0, "beta": 3.0})
    ax = plots.plot_retention_fan(res)
    assert len(ax.lines) == 2
    np.testing.assert_allclose(ax.lines[1].get_ydata(), [1.0, 0.8, 0.8, 0.6])
    grid = plots.plot_retention_cohorts(res)
    assert sum(a.get_visible() for a in grid.ravel()) == 4  # three cohorts and all
    ax = plots.plot_retention_rate_curve(res)
    assert len(ax.lines) == 3
    with pytest.raises(ClvkitError, match="not a cohort"):
        plots.plot_retention_fan(res, "2020-01")
    plt.close("all")


def test_cli_retention(tmp_path, capsys):
    path = tmp_path / "c.csv"
    _contracts().to_csv(path, index=False)
    out, fig, page = tmp_path / "t.csv", tmp_path / "f.png", tmp_path / "r.html"
    argv = ["retention", str(path), "--period", "M", "--calibration-end", CAL,
            "--observation-end", OBS, "--method", "map", "--seed", "1", "--samples", "200",
            "--quiet"]  # fmt: skip
    assert main([*argv, "--out", str(out), "--plot", str(fig), "--report", str(page)]) == 0
    table = pd.read_csv(out, index_col=[0, 1])
    assert table.loc["all", "actual"].tolist() == [4, 4, 3]
    assert fig.stat().st_size > 0
    html = page.read_text()
    assert "cohort-periods" in html and html.count("<img") == 5  # 3 cohorts, all, tenure
    assert "cohort-periods" in capsys.readouterr().out
    for bad, match in (
        (["--calibration-end", "2024-09-30"], "after observation_end"),
        (["--out", str(tmp_path / "t.xlsx")], "--out"),
        (["--report", str(tmp_path / "r.pdf")], "--report"),
        (["--model", "nope"], "unknown purchase model 'nope'"),
        (["--model", "bgnbd"], "not clvkit.contract_summary"),
    ):
        assert main([*argv, *bad]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and match in err and err.startswith("clvkit: error:")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.csv", "f.png", "r.html", "t.csv"]


def test_split_zoned_dates_follow_contract_summary():
    """Dates are cut to days by contract_summary's rule (zoned values converted to tz first):
    a start at 22:00 New York time on 31 March is 1 April in UTC, after the calibration end."""
    c = pd.DataFrame(
        {
            "customer_id": [1, 2, 3],
            "start": ["2024-01-01T23:30:00-05:00", "2024-02-10T01:00:00+02:00",
                      "2024-03-31T22:00:00-05:00"],
            "end": [None, "2024-05-01T23:30:00-05:00", None],
        }
    )  # fmt: skip
    utc = contract_calibration_holdout(c, "M", CAL, OBS)
    assert utc.index.tolist() == [1, 2]
    assert utc["start"].dt.strftime("%m-%d").tolist() == ["01-02", "02-09"]
    ny = contract_calibration_holdout(c, "M", CAL, OBS, tz="America/New_York")
    assert ny.index.tolist() == [1, 2, 3] and ny["renewals_holdout"].tolist() == [3, 1, 3]
    aware = c.assign(**{k: pd.to_datetime(c[k], utc=True) for k in ("start", "end")})
    pd.testing.assert_frame_equal(contract_calibration_holdout(aware, "M", CAL, OBS), utc)
