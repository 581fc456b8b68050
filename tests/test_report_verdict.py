"""Issue 14, the report and its verdict: the base valued as of the observation end, a verdict
that names failed checks, point fits shown as point estimates, readable cells, legends clear of
the holdout label."""

from __future__ import annotations

import re
from html import escape

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pandas as pd
import pytest

import clvkit
from clvkit.datasets import cdnow_transactions, simulate
from clvkit.evaluation.verdict import verdict
from clvkit.report import build_report, report_from_log

CAL, END = "1997-09-30", "1998-06-30"
VALUE = {"horizon": "52W", "annual_discount_rate": 0.1, "method": "expected"}
CDNOW_MLE = {"r": 0.2426, "alpha": 4.4137, "a": 0.793, "b": 2.4262}  # FHL 2005


@pytest.fixture(scope="module")
def cdnow_run():
    return report_from_log(
        cdnow_transactions(), calibration_end=CAL, observation_end=END,
        fit_kwargs={"method": "mle"}, value_kwargs=VALUE, n_samples=500, random_seed=0,
    )  # fmt: skip


@pytest.fixture(scope="module")
def late_log():
    """Customers acquired over 70 weeks, calibration to week 52: some arrive after it."""
    sim = simulate(
        1500, r=0.5, alpha=6.0, a=0.8, b=2.5, p=6.0, q=4.0, v=15.0, start="2024-01-01",
        acquisition_periods=70, observation_periods=78, random_seed=5,
    )  # fmt: skip
    start = pd.Timestamp("2024-01-01")
    cal = (start + pd.Timedelta(weeks=52)).date().isoformat()
    end = (start + pd.Timedelta(weeks=78) - pd.Timedelta(days=1)).date().isoformat()
    return sim.transactions, cal, end


# ---- item 1: today's base, the backtest a separate fit ---------------------------------------
def test_report_values_every_customer_known_at_the_observation_end(late_log):
    log, cal, end = late_log
    run = report_from_log(
        log, calibration_end=cal, observation_end=end, fit_kwargs={"method": "map"},
        value_kwargs=VALUE, n_samples=200, random_seed=0,
    )  # fmt: skip
    first = pd.to_datetime(log["date"]).dt.normalize().groupby(log["customer_id"]).min()
    n_all = int((first <= pd.Timestamp(end)).sum())
    n_late = int(((first > pd.Timestamp(cal)) & (first <= pd.Timestamp(end))).sum())
    assert n_late > 100  # the case of the issue: customers acquired after the calibration end
    # valuation: everyone known on the observation end, on all purchases to that date
    assert len(run.rfm) == n_all == run.value.settings["n_customers"]
    assert run.rfm.attrs["observation_end"] == end and "calibration_end" not in run.rfm.attrs
    expected = clvkit.rfm_summary(log, observation_end=end, amount="amount")
    pd.testing.assert_frame_equal(run.rfm, expected)
    # the valuation fits are fitted on that table, the backtest's on the calibration window
    assert run.transactions_model.n_customers_ == n_all
    assert len(run.backtest.customers) == n_all - n_late
    assert run.backtest.transactions_model is not run.transactions_model
    html = run.report.to_html()
    assert f"Values as of {end}: models fitted on all purchases up to {end}, {n_all:,}" in html
    assert f"{n_late:,} customers first seen after {cal} are valued but not in the backtest" in html
    assert f"Customers as of {end}" in html
    assert f"Predicted vs actual: backtest fitted to {cal}, holdout to {end}" in html
    n_repeat = int((run.rfm["frequency"] > 0).sum())
    assert f"Fitted on the {n_repeat:,} customers with repeat purchases" in html


def test_a_calibration_table_is_never_labelled_current(cdnow_run):
    log = cdnow_transactions()
    calib = clvkit.calibration_holdout(log, calibration_end=CAL, observation_end=END,
                                       amount="amount")[["frequency", "recency", "T",
                                                         "monetary_value"]]  # fmt: skip
    calib.attrs = {"time_unit": "W", "calibration_end": CAL, "observation_end": END}
    bg = clvkit.BetaGeo().fit(calib, method="mle")
    gg = clvkit.GammaGamma().fit(calib, method="mle")
    value = clvkit.customer_value(bg, gg, calib, **VALUE)
    html = build_report(calib, bg, gg, value, cdnow_run.backtest).to_html()
    assert f"Values as of {CAL} (the calibration end), not of {END}" in html
    assert f"Values as of {END}:" not in html


# ---- item 2: the verdict ---------------------------------------------------------------------
def test_verdict_on_cdnow_names_the_failed_checks(cdnow_run):
    bt, v = cdnow_run.backtest, cdnow_run.verdict
    checks = {c.key: c for c in v.checks}
    m = bt.metrics.loc["purchases"]
    # the -12% CDNOW holdout bias: 1,882 actual repeat purchases, far above the interval
    assert m["total_actual"] == 1882
    assert m["aggregate_error_pct"] == pytest.approx(-12.146, abs=0.01)
    agg = checks["aggregate_purchases"]
    assert agg.status == "failed" and m["total_upper"] < 1882
    assert agg.values["p_ge"] == m["p_total_at_least_actual"] < 0.05
    assert agg.meaning.startswith("forecasts of total purchases are too low")
    assert "plan with the upper bound" in agg.meaning
    # the calibration histogram is fitted well by the MLE (the published fit): passed, with p
    cal = checks["calibration"]
    assert cal.status == "passed"
    assert cal.values["p_value"] == pytest.approx(bt.frequency_ppc.attrs["p_value"])
    # PIT uniformity: the chi-square of the 10-bin histogram, recomputed here
    hist = np.histogram(bt.customers["pit"], bins=10, range=(0, 1))[0]
    chi2 = float(((hist - hist.sum() / 10) ** 2 / (hist.sum() / 10)).sum())
    assert checks["pit"].values["chi_square"] == pytest.approx(chi2)
    # tracking: periods outside the per-period band, counted here
    tr = bt.tracking
    n_out = int(((tr["actual"] < tr["lower"]) | (tr["actual"] > tr["upper"])).sum())
    assert checks["tracking"].values["n_outside"] == n_out
    assert n_out >= 15 and checks["tracking"].status == "failed"  # 7.8 expected by chance
    assert "(holdout)" in checks["tracking"].meaning  # the worst periods, dated
    # no sampler check for point fits, and none shown as passed
    assert "sampler" not in checks
    assert v.supported is False
    assert v.summary_sentence().startswith("The backtest does not fully support the model")
    assert any("upper bound of the forecast" in s for s in v.next_steps)


def test_a_failed_check_is_never_shown_as_passed():
    # a posterior with three times CDNOW's r: the calibration histogram is badly off
    log = cdnow_transactions()
    post = dict(CDNOW_MLE, r=3 * CDNOW_MLE["r"])
    bt = clvkit.backtest(log, calibration_end=CAL, observation_end=END, transactions_model=post,
                         n_samples=300, random_seed=1)  # fmt: skip
    v = verdict(backtest=bt)
    cal = next(c for c in v.checks if c.key == "calibration")
    assert bt.frequency_ppc.attrs["p_value"] < 0.01
    assert cal.status == "failed" and "repeat purchases" in cal.meaning
    text = v.to_text()
    assert "[FAILED] Calibration frequency check" in text
    assert "[PASSED] Calibration frequency check" not in text


def test_report_opens_with_the_verdict_and_shows_failures_in_warn_boxes(cdnow_run):
    html = cdnow_run.report.to_html()
    verdict_at = html.index("<h2>Verdict</h2>")
    assert verdict_at < html.index("<h2>Customer value</h2>") < html.index("<h2>Models</h2>")
    for c in cdnow_run.verdict.checks:
        css = {"passed": "ok", "failed": "warn", "n/a": "note"}[c.status]
        assert f'<li class="{css}">{escape(c.line()[:40])}' in html
    assert '<li class="ok">[PASSED] Total holdout purchases' not in html


def test_p_alive_caveat_counts_the_customers_without_repeat_purchases(cdnow_run):
    rfm = cdnow_run.rfm
    n_zero = int((rfm["frequency"] == 0).sum())
    summary = cdnow_run.value.summary()
    assert (summary.loc[rfm["frequency"] == 0, "p_alive"] == 1).all()  # the model's property
    caveat = next(c for c in cdnow_run.verdict.caveats if "P(alive) = 1" in c)
    assert f"to all {n_zero:,} customers without a repeat purchase" in caveat
    assert "property of the model" in caveat and "not evidence" in caveat


def test_at_risk_customers_are_valuable_and_unlikely_alive(cdnow_run):
    risk = cdnow_run.verdict.at_risk
    rfm = cdnow_run.rfm
    past = rfm["frequency"] * rfm["monetary_value"]
    clv = cdnow_run.value.summary()["mean"]
    k = int(np.ceil(0.05 * len(rfm)))
    valuable = (past.rank(ascending=False, method="first") <= k) | (
        clv.rank(ascending=False, method="first") <= k
    )
    p_alive = cdnow_run.value.summary()["p_alive"]
    expected = set(rfm.index[valuable & (p_alive < 0.5)])
    assert set(risk.index) == expected and len(expected) > 0
    assert risk["past_spend"].is_monotonic_decreasing


# ---- item 7: point fits and formatting -------------------------------------------------------
def _cells(html: str) -> list[str]:
    return [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", html)]


def _first_table_after(html: str, marker: str) -> list[list[str]]:
    """The cells (th and td) of each row of the first table after ``marker``."""
    table = re.search(r"<table.*?</table>", html[html.index(marker) :], re.S).group(0)
    return [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", tr)]
        for tr in re.findall(r"<tr[^>]*>(.*?)</tr>", table, re.S)
    ]


def test_point_fit_report_has_no_collapsed_interval_nor_draws_text(cdnow_run):
    html = cdnow_run.report.to_html()
    text = re.sub(r"<[^>]+>", " ", html)
    assert not re.search(r"(\d[\d,.]*) – \1(?!\d)", text)
    assert "posterior draw" not in text
    headline = cdnow_run.verdict.headline
    assert "point estimate" in headline and "no interval" in headline and " – " not in headline


def test_report_cells_read_as_numbers_people_read(cdnow_run):
    html = cdnow_run.report.to_html()
    cells = _cells(html)
    assert cells and not [c for c in cells if c.lower() in {"nan", "none", "inf", "-inf"}]
    assert not [c for c in cells if re.search(r"\d\.\d{5,}", c)]
    text = re.sub(r"<img[^>]*>", "", html)
    assert not re.search(r"\d\.\d{5,}", re.sub(r"<style>.*?</style>", "", text, flags=re.S))
    # tier counts: integers, equal to the per-customer table's tier column
    counts = cdnow_run.value.summary()["tier"].value_counts()
    rows = _first_table_after(html, "<h3>Value tiers</h3>")
    col = rows[0].index("count")
    shown = {r[0]: r[col] for r in rows[1:] if r and r[0] in counts.index}
    assert shown == {tier: f"{n:,}" for tier, n in counts.items()}
    # the horizon of the matrices with its unit name ("the next 71.7 weeks", not "71.7143
    # periods")
    T_med = float(np.median(cdnow_run.rfm["T"]))
    assert f"Expected purchases in the next {T_med:.1f} weeks" in html
    assert f"{T_med:.4f}" not in html
    # headline cards: currency label, horizon with its unit name
    assert "Customer equity, next 52 weeks (log currency)" in html
    assert "New customer CLV, next 52 weeks (log currency)" in html


def test_legend_is_clear_of_the_holdout_label(cdnow_run):
    import matplotlib.pyplot as plt

    from clvkit import plots

    for draw in (
        lambda ax: plots.plot_tracking(cdnow_run.backtest, ax=ax),
        lambda ax: plots.plot_tracking(cdnow_run.backtest, cumulative=False, ax=ax),
        lambda ax: plots.plot_retention(cdnow_run.backtest, ax=ax),
    ):
        fig, ax = plt.subplots(figsize=(6, 4), dpi=110)
        draw(ax)
        fig.tight_layout()
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        label = next(t for t in ax.texts if "holdout" in t.get_text())
        legend = ax.get_legend()
        box_l, box_t = legend.get_window_extent(renderer), label.get_window_extent(renderer)
        assert not box_l.overlaps(box_t)
        assert fig.bbox.contains(box_l.x0, box_l.y0)  # the legend stays on the figure
        plt.close(fig)


def test_report_from_log_needs_an_amount_column():
    with pytest.raises(clvkit.ClvkitError, match=r"argument 'amount' is None.*Suggestion"):
        report_from_log(cdnow_transactions(), calibration_end=CAL, observation_end=END,
                        amount=None)  # fmt: skip


@pytest.mark.filterwarnings("ignore::clvkit.ConvergenceWarning")  # a short run: either status
def test_sampler_diagnostics_are_checks_of_the_verdict():
    rfm = clvkit.datasets.cdnow_calibration_summary()
    bg = clvkit.BetaGeo().fit(rfm, chains=2, draws=300, tune=300, random_seed=1,
                              progressbar=False)  # fmt: skip
    gg = clvkit.GammaGamma().fit(rfm, chains=2, draws=300, tune=300, random_seed=1,
                                 progressbar=False)  # fmt: skip
    v = verdict(transactions_model=bg, spend_model=gg)
    sampler = [c for c in v.checks if c.key == "sampler"]
    assert [c.title for c in sampler] == [
        "Sampler diagnostics (BG/NBD, valuation fit)",
        "Sampler diagnostics (Gamma-Gamma, valuation fit)",
    ]
    for c, model in zip(sampler, (bg, gg), strict=True):
        d = model.diagnostics()
        assert c.status == ("passed" if d["ok"] else "failed")
        assert f"min bulk ESS {round(d['min_ess_bulk']):,}," in c.detail  # an integer
        assert f"{d['divergences']} divergences (2 chains x 300 draws)" in c.detail


def test_cleaning_counts_and_currency_of_the_table_are_on_the_page(cdnow_run):
    # the attrs the summaries record when cleaning (returns, duplicates) and with a currency
    rfm = cdnow_run.rfm.copy()
    rfm.attrs = dict(cdnow_run.rfm.attrs)
    rfm.attrs["cleaning"] = {"rows": 6919, "returns_dropped": 3, "duplicates_dropped": 12}
    rfm.attrs["currency"] = "EUR"
    run = cdnow_run
    rep = build_report(rfm, run.transactions_model, run.spend_model, run.value, run.backtest)
    html = rep.to_html()
    assert "The log (valuation), 6,919 rows; returns dropped: 3; duplicates dropped: 12." in html
    assert "Currency: EUR." in html
    assert "Customer equity, next 52 weeks (EUR)" in html
    equity = float(run.value.equity.values.mean())
    assert rep.verdict.headline.startswith(
        f"Customer equity as of {END} over the next 52 weeks: {equity:,.0f} EUR (point estimate"
    )


def _synthetic_backtest(pit: np.ndarray, coverage_90: float, tracking: pd.DataFrame):
    from clvkit.evaluation import BacktestResult

    n = pit.size
    metrics = pd.DataFrame(
        {"total_actual": [100.0], "total_predicted": [100.0], "aggregate_error_pct": [0.0],
         "coverage_90": [coverage_90], "total_lower": [90.0], "total_upper": [110.0],
         "p_total_at_least_actual": [0.5]},
        index=["purchases"],
    )  # fmt: skip
    ppc = pd.DataFrame({"actual": [1.0]})
    ppc.attrs.update(chi_square=2.0, dof=3, p_value=0.57)
    customers = pd.DataFrame({"pit": pit}, index=pd.RangeIndex(n, name="customer_id"))
    return BacktestResult(
        customers=customers, conditional_expectations=pd.DataFrame(), metrics=metrics,
        frequency_ppc=ppc, tracking=tracking, retention=pd.DataFrame(), calibration_end=5.0,
        time_unit="W", origin=pd.Timestamp("2024-01-01"),
    )  # fmt: skip


def test_pit_coverage_and_tracking_checks_on_known_inputs():
    rng = np.random.default_rng(0)
    quiet = pd.DataFrame({"actual": [10.0] * 10, "lower": [5.0] * 10, "upper": [15.0] * 10})
    quiet.attrs["prob"] = 0.9
    ok = verdict(backtest=_synthetic_backtest(rng.uniform(size=2000), 0.9, quiet))
    assert {c.key: c.status for c in ok.checks} == {
        "aggregate_purchases": "passed", "coverage": "passed", "calibration": "passed",
        "pit": "passed", "tracking": "passed",
    }  # fmt: skip
    assert ok.supported is True and ok.summary_sentence().endswith("all 5 checks passed.")
    # PIT piled up at the top: actual purchases above their forecasts; coverage 80% of 90%
    high = rng.uniform(0.3, 1.0, size=2000)
    spikes = quiet.copy()
    spikes.loc[[2, 6, 7], "actual"] = [30.0, 40.0, 2.0]  # 3 of 10 outside: p = 0.07 at 10%
    spikes.loc[[8, 9], "actual"] = [25.0, 28.0]  # 5 of 10: p < 0.001
    bad = verdict(backtest=_synthetic_backtest(high, 0.8, spikes))
    checks = {c.key: c for c in bad.checks}
    hist = np.histogram(high, bins=10, range=(0, 1))[0]
    assert checks["pit"].values["histogram"] == hist.tolist()
    assert checks["pit"].status == "failed"
    assert checks["pit"].meaning.startswith("actual purchases tend to be above their forecasts")
    assert checks["coverage"].status == "failed" and "too narrow" in checks["coverage"].meaning
    assert checks["coverage"].values["tolerance"] == pytest.approx(3 * np.sqrt(0.09 / 2000))
    tr = checks["tracking"]
    assert tr.status == "failed" and tr.values["n_outside"] == 5
    # the worst period first (period 6), dated from the origin in weeks, in the holdout (>= 5)
    assert tr.values["worst_periods"][0].startswith(
        "period starting 2024-02-12 (holdout): actual 40"
    )
    assert "more purchases than the model allows in 4 periods and fewer in 1" in tr.meaning


def test_report_from_a_file_equals_the_report_from_the_frame(cdnow_run, tmp_path):
    path = tmp_path / "cdnow.parquet"
    cdnow_transactions().to_parquet(path)
    run = report_from_log(
        str(path), calibration_end=CAL, observation_end=END, fit_kwargs={"method": "mle"},
        value_kwargs=VALUE, n_samples=500, random_seed=0,
    )  # fmt: skip
    pd.testing.assert_frame_equal(run.rfm, cdnow_run.rfm)
    pd.testing.assert_frame_equal(run.backtest.customers, cdnow_run.backtest.customers)
    assert run.value.equity.values.tolist() == cdnow_run.value.equity.values.tolist()
    assert run.verdict.to_text() == cdnow_run.verdict.to_text()
