"""The front door of the firm valuation: `clvkit equity`, the cash-flow fan, the tornado and
the report section; their numbers are the API's."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import clvkit
from clvkit.cli import main
from clvkit.datasets import cdnow_transactions
from clvkit.firm import AcquisitionPlan, firm_equity
from clvkit.plots import plot_cashflows, plot_sensitivities
from clvkit.report_firm import equity_sentences, firm_report

FLOW = {"horizon": "52W", "period": "4W", "annual_discount_rate": 0.1}


@pytest.fixture(scope="module")
def valuation():
    rfm = clvkit.datasets.cdnow_calibration_summary()
    bg = clvkit.BetaGeo().fit(rfm, method="laplace", chains=1, draws=150, random_seed=1)
    gg = clvkit.GammaGamma().fit(rfm, method="laplace", chains=1, draws=150, random_seed=2)
    plan = AcquisitionPlan([100] * 13, cv=0.2, random_seed=3)
    return firm_equity(bg, gg, rfm, plan, **FLOW, margin=0.3, acquisition_cost=5.0,
                       random_seed=4)  # fmt: skip


def test_cashflow_fan_draws_the_flows_that_add_up_to_the_equity(valuation):
    ax = plot_cashflows(valuation)
    c = valuation.cashflows()
    net = next(ln for ln in ax.get_lines() if ln.get_label() == "net (mean)")
    np.testing.assert_allclose(net.get_ydata(), c["net_mean"].to_numpy(), rtol=1e-10)
    # the drawn net flows sum to the expected equity (the valuation's own identity)
    assert net.get_ydata().sum() == pytest.approx(float(valuation.expected_total.mean()), rel=1e-9)
    existing = next(ln for ln in ax.get_lines() if ln.get_label().startswith("existing"))
    np.testing.assert_allclose(existing.get_ydata(), c["existing_margin_mean"], rtol=1e-10)
    plt.close(ax.figure)


def test_tornado_bars_are_the_sensitivities_largest_on_top(valuation):
    t = valuation.sensitivities()
    ax = plot_sensitivities(valuation)
    widths = [b.get_width() for b in ax.patches]
    assert widths[::-1] == pytest.approx(list(t["delta_mean"]))  # largest |change| on top
    assert [tl.get_text() for tl in ax.get_yticklabels()][::-1] == [str(c) for c in t["change"]]
    plt.close(ax.figure)


def test_equity_sentences_carry_the_summary_and_unit_economics(valuation):
    s = valuation.summary()
    text = [x for x, _ in equity_sentences(valuation)]
    tot = s.loc["total"]
    assert f"{tot['mean']:,.0f} [{tot['lower']:,.0f}, {tot['upper']:,.0f}] (90% credible" in text[0]
    assert f"today's 2,357 customers {s.loc['existing', 'mean']:,.0f}" in text[0]
    assert f"({s.loc['future_share', 'mean']:.0%} of the total)" in text[0]
    u = valuation.unit_economics()
    assert any(f"CLV:CAC {u['clv_to_cac_mean']:.2f}" in x for x in text)
    top = valuation.sensitivities().iloc[0]
    assert any(x.startswith(f"The largest lever: {top['change']}") for x in text)
    page = firm_report(equity=valuation).to_html()
    assert "Value of the firm" in page and page.count("<img") == 2


def test_cli_equity_with_a_plan_is_the_api(capsys, tmp_path):
    log = tmp_path / "log.csv"
    cdnow_transactions().to_csv(log, index=False)
    out = tmp_path / "eq"
    argv = ["equity", str(log), "--plan", "50", "--plan-cv", "0.1", "--method", "map",
            "--horizon", "52W", "--period", "4W", "--acquisition-cost", "5", "--seed", "11",
            "--cashflows", "--out", str(out), "--quiet"]  # fmt: skip
    code = main(argv)
    text, err = capsys.readouterr()
    assert code == 0, err
    names = sorted(p.name for p in out.iterdir() if not p.name.startswith("."))
    assert names == ["cashflows.csv", "cashflows.png", "report.html", "sensitivities.csv",
                     "sensitivities.png", "summary.csv"]  # fmt: skip
    summary = pd.read_csv(out / "summary.csv", index_col=0)
    rfm = clvkit.rfm_summary(str(log), amount="amount")
    bg = clvkit.BetaGeo().fit(rfm, method="map", random_seed=11)
    gg = clvkit.GammaGamma().fit(rfm, method="map", random_seed=11)
    api = firm_equity(bg, gg, rfm, AcquisitionPlan([50] * 13, cv=0.1, random_seed=11),
                      horizon="52W", period="4W", annual_discount_rate=0.1, acquisition_cost=5,
                      random_seed=11).summary()  # fmt: skip
    np.testing.assert_allclose(summary["mean"], api["mean"], rtol=1e-9)
    assert "Customer equity of the firm over 52 W" in text


def test_cli_equity_acquisition_model_says_cdnow_stopped(capsys, tmp_path):
    log = tmp_path / "log.csv"
    cdnow_transactions().to_csv(log, index=False)
    code = main(["equity", str(log), "--method", "map", "--seed", "2", "--out",
                 str(tmp_path / "o"), "--quiet"])  # fmt: skip
    text, err = capsys.readouterr()
    assert code == 0, err
    assert "acquisition stopped after week 12" in text
    s = pd.read_csv(tmp_path / "o" / "summary.csv", index_col=0)
    assert s.loc["future", "mean"] == 0.0 and s.loc["total", "mean"] == s.loc["existing", "mean"]
    assert not (tmp_path / "o" / "cashflows.csv").exists()  # only with --cashflows


def test_cli_equity_bad_plan_is_one_line(capsys, tmp_path):
    code = main(["equity", "missing.csv", "--plan", "a,b", "--out", str(tmp_path / "o"),
                 "--quiet"])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 2 and "argument '--plan'" in err and len(err.strip().splitlines()) == 1


def test_the_tornado_is_computed_once_for_the_page_plot_and_sentences(valuation, monkeypatch):
    import clvkit.firm.equity as eq

    calls = []
    real = eq.sensitivities

    def counted(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(eq, "sensitivities", counted)
    valuation._sensitivity_tables.clear()
    first = valuation.sensitivities()
    first.iloc[0, 1] = -1.0  # a caller's edit does not reach the kept table
    firm_report(equity=valuation, cashflows=False).to_html()
    plt.close("all")
    assert len(calls) == 1
    pd.testing.assert_frame_equal(valuation.sensitivities(), real(valuation))
    valuation.sensitivities(prob=0.8)
    assert len(calls) == 2
