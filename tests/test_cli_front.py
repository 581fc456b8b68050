"""Issue 14, the command line: every option the API has, defaults in --help, rates > 1
refused, `fit` without --amount, spend checked before any purchase fit, `score` of a new log
with saved models, the verdict and progress lines."""

from __future__ import annotations

import functools
import inspect
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clvkit
from clvkit.cli import build_parser, main
from clvkit.datasets import cdnow_transactions

CAL, END = "1997-09-30", "1998-06-30"


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code: int, err: str, *needles: str) -> str:
    assert code == 2
    errors = [ln for ln in err.strip().splitlines() if ln and not ln.startswith("[")]
    assert len(errors) == 1 and errors[0].startswith("clvkit: error:"), err
    assert "Suggestion" in errors[0] and "Traceback" not in err
    for n in needles:
        assert n in errors[0], errors[0]
    return errors[0]


@pytest.fixture(scope="module")
def cdnow_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("front") / "cdnow.csv"
    cdnow_transactions().to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def fitted(cdnow_csv, tmp_path_factory) -> Path:
    """MLE fits on the CDNOW calibration window (to 1997-09-30), both models."""
    prefix = tmp_path_factory.mktemp("models") / "shop"
    argv = ["fit", str(cdnow_csv), "--amount", "amount", "--observation-end", CAL,
            "--method", "mle", "--out", str(prefix), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    return prefix


def _help(capsys, command: str) -> str:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    return capsys.readouterr().out


# ---- options and --help ------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["value", "report", "score"])
def test_help_shows_every_valuation_option_with_its_default(capsys, command):
    text = " ".join(_help(capsys, command).split())
    for flag in ("--cost-per-period", "--acquisition-cost", "--discounting", "--tiers", "--prob",
                 "--value-draws", "--value-method", "--margin", "--horizon"):  # fmt: skip
        assert flag in text
    assert "(default: expected)" in text and "(default: 52W)" in text
    assert "(default: 0.1)" in text and "(default: discrete)" in text and "(default: 0.9)" in text
    assert "1 values revenue, not profit" in text


def test_value_method_default_is_the_apis():
    from clvkit.value.engine import customer_value

    api = inspect.signature(customer_value).parameters["method"].default
    for argv in (["value", "m/shop"], ["report", "x.csv", "--calibration-end", CAL,
                                       "--observation-end", END], ["demo"]):  # fmt: skip
        assert build_parser().parse_args(argv).value_method == api == "expected"


@pytest.mark.parametrize("command", ["fit", "report", "backtest", "summarize", "score"])
def test_help_shows_cleaning_options_and_month_units(capsys, command):
    text = " ".join(_help(capsys, command).split())
    for flag in ("--returns", "--zero-amounts", "--duplicates", "--currency", "--fx-rate"):
        assert flag in text
    assert "{error,drop,net}" in text
    if command != "score":
        assert "M (a mean calendar month)" in text and "(default: W)" in text


@pytest.mark.parametrize(
    ("flag", "value", "needle"),
    [
        ("--annual-discount-rate", "10", "a rate above 1 (1000% a year)"),
        ("--annual-discount-rate", "-0.1", "negative"),
        ("--margin", "1.5", "share of revenue kept"),
        ("--prob", "90", "interval level"),
        ("--cost-per-period", "-1", "below 0"),
        ("--tiers", "top=0.1,rest=2", "NAME=SHARE"),
    ],
)
def test_out_of_range_rates_are_one_line_exit_2(capsys, tmp_path, flag, value, needle):
    # refused before anything is read: the prefix does not even exist
    code, _, err = _run(capsys, "value", str(tmp_path / "nothing"), flag, value)
    _one_line_error(code, err, needle)


def test_value_options_reach_the_api(fitted, tmp_path, capsys):
    out = tmp_path / "clv.csv"
    code, stdout, err = _run(
        capsys, "value", str(fitted), "--horizon", "26W", "--margin", "0.3",
        "--cost-per-period", "0.5", "--acquisition-cost", "20", "--discounting", "continuous",
        "--tiers", "top=0.1,rest=1", "--prob", "0.8", "--out", str(out), "--quiet",
    )  # fmt: skip
    assert code == 0, err
    bg = clvkit.load(f"{fitted}.bgnbd.nc")
    gg = clvkit.load(f"{fitted}.gamma_gamma.nc")
    rfm = pd.read_parquet(f"{fitted}.rfm.parquet")
    api = clvkit.customer_value(
        bg, gg, rfm, horizon="26W", margin=0.3, cost_per_period=0.5, acquisition_cost=20,
        discounting="continuous", tiers={"top": 0.1, "rest": 1.0}, annual_discount_rate=0.1,
        method="expected",
    )  # fmt: skip
    table = pd.read_csv(out, index_col=0)
    expected = api.summary(0.8)
    np.testing.assert_allclose(table["mean"], expected["mean"], rtol=1e-12)
    assert (table["tier"] == expected["tier"]).all() and set(table["tier"]) == {"top", "rest"}
    assert "CLV:CAC" in stdout  # the acquisition cost reached the new-customer line
    assert api.settings["discounting"] == "continuous" and api.settings["cost_per_period"] == 0.5


# ---- fit: purchase model only without --amount; spend checked first ------------------------
def test_fit_without_amount_fits_the_purchase_model_only(tmp_path, capsys):
    log = cdnow_transactions().drop(columns="amount")
    csv = tmp_path / "log.csv"
    log.to_csv(csv, index=False)
    prefix = tmp_path / "m" / "shop"
    code, out, err = _run(capsys, "fit", str(csv), "--method", "mle", "--out", str(prefix))
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["shop.bgnbd.nc",
                                                                  "shop.rfm.parquet"]  # fmt: skip
    assert "purchase model only" in out
    rfm = pd.read_parquet(f"{prefix}.rfm.parquet")
    assert "monetary_value" not in rfm and len(rfm) == 2357
    # valuing needs the spend model: one line saying how to get it
    code, _, err = _run(capsys, "value", str(prefix), "--quiet")
    _one_line_error(code, err, "--amount")


@pytest.mark.parametrize("command", ["fit", "report"])
def test_spend_input_is_checked_before_any_purchase_fit(tmp_path, capsys, monkeypatch, command):
    import clvkit.evaluation.run as run

    log = cdnow_transactions()
    ids = log["customer_id"].value_counts().index[:3]  # three repeat customers, amounts 0
    log.loc[log["customer_id"].isin(ids), "amount"] = 0.0
    csv = tmp_path / "log.csv"
    log.to_csv(csv, index=False)
    fitted_kinds = []
    real = run.fit_model

    def spy(name, kind, rfm, kw, data="rfm"):
        fitted_kinds.append(kind)
        return real(name, kind, rfm, kw, data)

    monkeypatch.setattr(run, "fit_model", spy)
    argv = {
        "fit": ["fit", str(csv), "--amount", "amount", "--out", str(tmp_path / "m" / "s")],
        "report": ["report", str(csv), "--calibration-end", CAL, "--observation-end", END,
                   "--out", str(tmp_path / "r.html")],
    }[command]  # fmt: skip
    code, _, err = _run(capsys, *argv, "--method", "nuts", "--quiet")
    _one_line_error(code, err, "monetary_value", "3 of 2,357 rows")
    assert fitted_kinds == ["spend"]  # no purchase sampling was started, let alone thrown away


# ---- score --------------------------------------------------------------------------------------
def test_score_values_a_new_log_with_saved_models(fitted, cdnow_csv, tmp_path, capsys):
    out = tmp_path / "scores.parquet"
    code, stdout, err = _run(
        capsys, "score", str(cdnow_csv), "--model-prefix", str(fitted), "--observation-end",
        END, "--out", str(out), "--quiet",
    )  # fmt: skip
    assert code == 0, err
    bg = clvkit.load(f"{fitted}.bgnbd.nc")
    gg = clvkit.load(f"{fitted}.gamma_gamma.nc")
    rfm = clvkit.rfm_summary(cdnow_transactions(), observation_end=END, amount="amount")
    api = clvkit.customer_value(bg, gg, rfm, horizon="52W", annual_discount_rate=0.1)
    table = pd.read_parquet(out)
    assert len(table) == 2357
    pd.testing.assert_series_equal(table["mean"], api.summary()["mean"])
    assert f"2,357 customers of {cdnow_csv} as of {END}" in stdout
    # the models' time unit is used; another one is refused before any work
    code, _, err = _run(capsys, "score", str(cdnow_csv), "--model-prefix", str(fitted),
                        "--time-unit", "D", "--quiet")  # fmt: skip
    _one_line_error(code, err, "fitted in 'W'")


# ---- report and backtest: verdict on stdout, progress on stderr ----------------------------------
def test_report_prints_the_verdict_and_progress_lines(cdnow_csv, tmp_path, capsys, monkeypatch):
    import clvkit.utils.progress as progress

    # stderr is not a terminal here: heartbeat lines while the backtest runs
    monkeypatch.setattr(progress, "heartbeat", functools.partial(progress.heartbeat, every=0.2))
    code, out, err = _run(
        capsys, "report", str(cdnow_csv), "--calibration-end", CAL, "--observation-end", END,
        "--method", "mle", "--out", str(tmp_path / "r.html"), "--seed", "3",
    )  # fmt: skip
    assert code == 0, err
    assert out.startswith("Verdict\nCustomer equity as of 1998-06-30 over the next 52 weeks: ")
    assert "[FAILED] Total holdout purchases: actual 1,882" in out
    assert "backtest: still running" in err
    assert "fitting gamma_gamma (mle) on 2,357 customers: valuation" in err
    # the spend fit starts before the purchase fit, in both fits
    assert err.index("fitting gamma_gamma") < err.index("fitting bgnbd")


def test_backtest_prints_the_verdict(cdnow_csv, tmp_path, capsys):
    code, out, err = _run(
        capsys, "backtest", str(cdnow_csv), "--calibration-end", CAL, "--observation-end", END,
        "--method", "mle", "--out", str(tmp_path / "bt"), "--quiet", "--seed", "1",
    )  # fmt: skip
    assert code == 0, err
    assert "Verdict\nNo valuation was run." in out
    assert "[FAILED] Total holdout purchases: actual 1,882, predicted 1,653" in out
    assert re.search(r"coverage_90 +\d+\.\d%", out)  # shares as percentages
