"""BG/BB (discrete opportunities) through the layers above ``models/``: the opportunity split,
the backtest, the report and the CLI, all reached through ``ModelSpec.data`` (issue 16)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import clvkit
from clvkit.cli import main
from clvkit.data.log_tables import log_table
from clvkit.data.opportunities import opportunity_split
from clvkit.datasets import simulate
from clvkit.evaluation.split import split_log

TRUTH = {"alpha": 1.2, "beta": 0.75, "gamma": 0.66, "delta": 2.8}  # near the donations MLE
CAL, OBS = "2020-02-11", "2020-03-24"  # weekly grid from 2020-01-01: weeks 0-5 and 6-11


@pytest.fixture(scope="module")
def sim():
    # one weekly cohort (acquired in week 0), 12 weekly opportunities; fixed 7-day grid
    return simulate(
        2000, model="bgbb", params=TRUTH, time_unit="W", acquisition_periods=1,
        observation_periods=12, p=6.0, q=4.0, v=15.0, random_seed=11,
    )  # fmt: skip


def test_opportunity_split_agrees_with_the_table(sim):
    sp = opportunity_split(
        sim.transactions, calibration_end=CAL, observation_end=OBS, opportunity="W",
        amount="amount",
    )  # fmt: skip
    t = sp.table
    assert (sp.calibration_end, sp.horizon) == (6.0, 12.0)
    np.testing.assert_array_equal(t["n"], np.floor(sp.calibration_end - sp.birth))
    np.testing.assert_array_equal(t["n_holdout"], sp.horizon - sp.calibration_end)
    # each repeat event sits at the middle of its opportunity: calibration ones are frequency
    in_cal = sp.repeat_time < sp.calibration_end
    assert np.all(sp.repeat_time % 1 == 0.5)
    freq = np.bincount(sp.repeat_customer[in_cal], minlength=len(t))
    hold = np.bincount(sp.repeat_customer[~in_cal], minlength=len(t))
    np.testing.assert_array_equal(freq, t["frequency"])
    np.testing.assert_array_equal(hold, t["frequency_holdout"])
    last = np.zeros(len(t))
    np.maximum.at(last, sp.repeat_customer[in_cal], sp.repeat_time[in_cal] - sp.birth[0])
    np.testing.assert_array_equal(np.floor(last), t["recency"])
    assert str(sp.origin.date()) == "2020-01-01"
    # holdout spend: mean per holdout opportunity with a purchase
    log = sim.transactions.assign(day=pd.to_datetime(sim.transactions["date"]))
    late = log[log["day"] > pd.Timestamp(CAL)].groupby("customer_id")["amount"].sum()
    expected = (late.reindex(t.index, fill_value=0.0) / t["frequency_holdout"].clip(lower=1)).where(
        t["frequency_holdout"] > 0, 0.0
    )
    np.testing.assert_allclose(t["monetary_value_holdout"], expected, rtol=1e-12)


def test_file_route_gives_the_same_split(sim, tmp_path):
    path = tmp_path / "log.csv"
    sim.transactions.to_csv(path, index=False)
    a = split_log(sim.transactions, calibration_end=CAL, observation_end=OBS, time_unit="W",
                  amount="amount", data="opportunities")  # fmt: skip
    b = split_log(str(path), calibration_end=CAL, observation_end=OBS, time_unit="W",
                  amount="amount", data="opportunities")  # fmt: skip
    pd.testing.assert_frame_equal(a.rfm, b.rfm, check_index_type=False)
    for k in ("birth", "repeat_customer", "repeat_time"):
        np.testing.assert_array_equal(getattr(a, k), getattr(b, k))
    assert (a.origin, a.calibration_end, a.horizon) == (b.origin, b.calibration_end, b.horizon)


def test_log_table_dispatch_and_errors(sim):
    t = log_table(sim.transactions, "opportunities", time_unit="W", observation_end=OBS)
    pd.testing.assert_frame_equal(
        t, clvkit.opportunity_summary(sim.transactions, opportunity="W", observation_end=OBS)
    )
    r = log_table(sim.transactions, "rfm", time_unit="W", observation_end=OBS)
    pd.testing.assert_frame_equal(r, clvkit.rfm_summary(sim.transactions, observation_end=OBS))
    with pytest.raises(clvkit.ClvkitError, match=r"'contracts' table.*retention_backtest"):
        log_table(sim.transactions, "contracts")
    with pytest.raises(clvkit.ClvkitError, match="same 'W' opportunity"):
        split_log(sim.transactions, calibration_end="2020-03-20", observation_end=OBS,
                  time_unit="W", data="opportunities")  # fmt: skip


def test_backtest_of_bgbb_tracks_the_holdout(sim):
    res = clvkit.backtest(
        sim.transactions, calibration_end=CAL, observation_end=OBS, time_unit="W",
        amount="amount", transactions_model="bgbb", fit_kwargs={"method": "laplace"},
        n_samples=400, random_seed=3,
    )  # fmt: skip
    assert res.transactions_model.spec.name == "bgbb"
    assert list(res.customers.columns[:2]) == ["recency", "n"]
    tr = res.tracking
    assert len(tr) == 12 and tr["actual"].iloc[0] == 0 and tr["predicted"].iloc[0] == 0
    # binned events and expected purchases agree period by period (no shift by one)
    assert int(tr["actual"].iloc[6:].sum()) == int(res.rfm["frequency_holdout"].sum())
    rel = (tr["predicted"].iloc[1:] - tr["actual"].iloc[1:]) / tr["actual"].iloc[1:]
    assert np.all(np.abs(rel) < 0.12), rel
    m = res.metrics.loc["purchases"]
    assert m["total_lower"] <= m["total_actual"] <= m["total_upper"]
    assert 0.85 <= m["coverage_90"] <= 0.95
    assert abs(m["aggregate_error_pct"]) < 5
    # frequency histogram over the n = 5 calibration opportunities
    ppc = res.frequency_ppc
    assert int(ppc["actual"].sum()) == len(res.rfm)
    assert np.all(np.abs(ppc["actual"] - ppc["expected"]) <= 4 * np.sqrt(ppc["expected"] + 1))
    # bins 6 and 7+ are out of reach (n = 5): left out, so 6 bins - 1 - 4 parameters
    assert ppc.attrs["dof"] == 1 and 0.001 < ppc.attrs["p_value"] <= 1


def test_value_needs_whole_opportunities():
    d = clvkit.datasets.donations_summary()
    m = clvkit.BetaGeoBetaBinom().fit(d, method="mle")
    table = d.assign(monetary_value=10.0)
    gg = {"p": 6.0, "q": 4.0, "v": 15.0}
    with pytest.raises(clvkit.ClvkitError, match=r"'horizon' is '52W', 0.9966 periods of 'Y'"):
        clvkit.customer_value(m, gg, table, horizon="52W", period="1Y", annual_discount_rate=0.1)
    with pytest.raises(clvkit.ClvkitError, match=r"Suggestion: horizon='2Y'"):
        clvkit.customer_value(m, gg, table, horizon="18M", period="1Y", annual_discount_rate=0.1)
    # any cash-flow period: yearly purchases discounted by the month that holds them
    monthly = clvkit.customer_value(
        m, gg, table, horizon="2Y", period="M", annual_discount_rate=0.1, method="expected"
    )
    yearly = clvkit.customer_value(
        m, gg, table, horizon="2Y", period="Y", annual_discount_rate=0.1, method="expected"
    )
    assert float(monthly.equity.mean()) == pytest.approx(float(yearly.equity.mean()), rel=1e-9)
    v = clvkit.customer_value(m, gg, table, horizon="60M", period="1Y", annual_discount_rate=0.1)
    w = clvkit.customer_value(m, gg, table, horizon="5Y", period="12M", annual_discount_rate=0.1)
    assert float(v.equity.mean()) == pytest.approx(float(w.equity.mean()), rel=1e-12)


def test_report_from_log_with_bgbb(sim, tmp_path):
    from clvkit.report import report_from_log

    with warnings.catch_warnings():
        warnings.simplefilter("error", clvkit.ClvkitWarning)
        run = report_from_log(
            sim.transactions, calibration_end=CAL, observation_end=OBS, time_unit="W",
            model="bgbb", fit_kwargs={"method": "laplace", "draws": 250},
            value_kwargs={"horizon": "26W", "period": "W", "annual_discount_rate": 0.1},
            n_samples=200, random_seed=0,
        )  # fmt: skip
    assert run.transactions_model.spec.name == "bgbb"
    assert list(run.rfm.columns[:3]) == ["frequency", "recency", "n"]
    assert run.rfm["n"].max() == 11 and run.backtest.rfm["n"].max() == 5
    assert run.verdict.as_of["valued_as_of"] == "2020-03-24"
    html = run.report.to_html()
    assert "BG/BB" in html and "Customer equity" in html
    with pytest.raises(clvkit.ClvkitError, match=r"'bgnbd' .*reads clvkit.rfm_summary"):
        report_from_log(sim.transactions, calibration_end=CAL, observation_end=OBS,
                        time_unit="W", model="bgbb", compare=("bgbb", "bgnbd"),
                        fit_kwargs={"method": "laplace"})  # fmt: skip


def _cli(capsys, *argv):
    code = main([*argv, "--quiet"])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli_discrete_commands(sim, tmp_path, capsys):
    log = tmp_path / "log.csv"
    sim.transactions.to_csv(log, index=False)
    code, out, _ = _cli(capsys, "summarize", str(log), "--table", "opportunities",
                        "--time-unit", "W", "--out", str(tmp_path / "opp.parquet"))  # fmt: skip
    assert code == 0
    got = pd.read_parquet(tmp_path / "opp.parquet")
    want = clvkit.opportunity_summary(str(log), opportunity="W")
    pd.testing.assert_frame_equal(got, want, check_like=True, check_index_type=False)
    prefix = str(tmp_path / "models" / "d")
    code, out, err = _cli(capsys, "fit", str(log), "--model", "bgbb", "--amount", "amount",
                          "--method", "mle", "--out", prefix)  # fmt: skip
    assert code == 0, err
    assert "BG/BB" in out and (tmp_path / "models" / "d.bgbb.nc").is_file()
    code, out, err = _cli(capsys, "value", prefix, "--horizon", "26W", "--period", "W",
                          "--seed", "1")  # fmt: skip
    assert code == 0, err
    equity = float(out.split("Customer equity: mean ")[1].split(";")[0].replace(",", ""))
    fitted = clvkit.load(prefix + ".bgbb.nc")
    table = pd.read_parquet(prefix + ".rfm.parquet")
    api = clvkit.customer_value(fitted, clvkit.load(prefix + ".gamma_gamma.nc"), table,
                                horizon="26W", period="W", annual_discount_rate=0.1, random_seed=1)  # fmt: skip
    assert equity == pytest.approx(float(api.equity.mean()), abs=0.01)
    code, _, err = _cli(capsys, "value", prefix, "--horizon", "60D")  # 8.6 weeks
    assert code == 2 and err.count("\n") == 1 and "whole opportunities" in err
    code, _, err = _cli(capsys, "fit", str(log), "--model", "sbg")
    assert code == 2 and err.count("\n") == 1 and "reads clvkit.contract_summary" in err
