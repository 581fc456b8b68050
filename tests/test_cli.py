"""The command line end to end: CDNOW and a simulated CSV, and every bad-input case."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clvkit
from clvkit.cli import main
from clvkit.datasets import cdnow_transactions, simulate

CAL, END = "1997-09-30", "1998-06-30"


@pytest.fixture(scope="module")
def cdnow_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "cdnow.csv"
    log = cdnow_transactions()
    log.rename(columns={"customer_id": "cust", "date": "day", "amount": "value"}).to_csv(
        path, index=False
    )
    return path


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("*")}


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


COLS = ("--customer-id", "cust", "--date", "day", "--amount", "value")


def test_fit_value_round_trip_on_cdnow(cdnow_csv, tmp_path, capsys):
    prefix = tmp_path / "models" / "cdnow"
    code, out, _ = _run(
        capsys, "fit", str(cdnow_csv), *COLS, "--observation-end", CAL, "--method", "mle",
        "--out", str(prefix), "--quiet",
    )  # fmt: skip
    assert code == 0
    for suffix in (".bgnbd.nc", ".gamma_gamma.nc", ".rfm.parquet"):
        assert (tmp_path / "models" / f"cdnow{suffix}").is_file()
    # MLE on the 39-week CDNOW calibration summary: r = 0.2426 (Fader, Hardie and Lee 2005)
    assert "0.2426" in out or "0.2425" in out
    rfm = pd.read_parquet(tmp_path / "models" / "cdnow.rfm.parquet")
    assert len(rfm) == 2357 and int(rfm["frequency"].sum()) == 2457

    table = tmp_path / "clv.csv"
    code, out, _ = _run(
        capsys, "value", str(prefix), "--horizon", "52W", "--annual-discount-rate", "0.1",
        "--value-method", "expected", "--out", str(table), "--quiet",
    )  # fmt: skip
    assert code == 0
    assert "Customer equity" in out
    clv = pd.read_csv(table, index_col=0)
    assert len(clv) == 2357
    assert np.isfinite(clv["mean"]).all() and (clv["mean"] >= 0).all()
    # The printed equity mean is the sum of the per-customer means (one draw: MLE).
    equity = float(out.split("Customer equity: mean ")[1].split(";")[0].replace(",", ""))
    assert equity == pytest.approx(clv["mean"].sum(), rel=1e-6)

    # a model file under the name of earlier versions (cdnow.beta_geo.nc) still loads
    models = tmp_path / "models"
    (models / "cdnow.bgnbd.nc").rename(models / "cdnow.beta_geo.nc")
    code, out_old, _ = _run(
        capsys, "value", str(prefix), "--value-method", "expected", "--model", "bgnbd", "--quiet"
    )  # fmt: skip
    assert code == 0
    old = float(out_old.split("Customer equity: mean ")[1].split(";")[0].replace(",", ""))
    assert old == equity


def test_model_options_come_from_the_registry(cdnow_csv, tmp_path, capsys):
    from clvkit.cli import build_parser
    from clvkit.models.registry import names

    parser = build_parser()
    for command in (["fit", "log.csv"], ["backtest", "log.csv", "--calibration-end", CAL,
                                         "--observation-end", END], ["demo"]):  # fmt: skip
        args = parser.parse_args(command)
        assert (args.model, args.spend_model) == ("bgnbd", "gamma_gamma")
    # an unknown name: one line listing the registered models, before any work or output
    for argv in (
        ["fit", str(cdnow_csv), *COLS, "--model", "pareto_nope", "--out", str(tmp_path / "m")],
        ["backtest", str(cdnow_csv), *COLS, "--calibration-end", CAL, "--observation-end", END,
         "--spend-model", "fee_nope", "--out", str(tmp_path / "bt")],
        ["report", str(cdnow_csv), *COLS, "--calibration-end", CAL, "--observation-end", END,
         "--model", "gamma_gamma", "--out", str(tmp_path / "r.html")],
    ):  # fmt: skip
        code, _, err = _run(capsys, *argv)
        _assert_one_line_error(code, err, "Suggestion")
        # no progress line ("[  0.0s] ..."): nothing was read or fitted
        assert not any(line.startswith("[") for line in err.splitlines())
        # the models of a purchase log (rfm and opportunities), not the contractual ones
        log_models = names("purchase", ("rfm", "opportunities"))
        assert "sbg" not in log_models and "bgbb" in log_models
        assert str(log_models) in err or str(names("spend")) in err
    assert _files(tmp_path) == set()
    # a saved model name works too, and files are named by the short name
    args = parser.parse_args(["fit", "log.csv", "--model", "BetaGeo"])
    from clvkit.cli.common import model_classes

    purchase, _ = model_classes(args)
    assert args.model == "bgnbd" == purchase.spec.name


def test_fit_reads_a_glob_through_duckdb(tmp_path, monkeypatch, capsys):
    # `clvkit fit logs/*.parquet` hands the glob to the DuckDB route (data.files), never pandas
    import clvkit.data.files as files

    log = cdnow_transactions().head(2000)
    folder = tmp_path / "logs"
    folder.mkdir()
    log.iloc[:1000].to_parquet(folder / "a.parquet")
    log.iloc[1000:].to_parquet(folder / "b.parquet")
    seen = []
    real = files.summarize_files

    def spy(path, **kw):
        seen.append(str(path))
        return real(path, **kw)

    def no_pandas(*args, **kwargs):
        raise AssertionError("the log was read with pandas")

    monkeypatch.setattr(files, "summarize_files", spy)
    monkeypatch.setattr(pd, "read_parquet", no_pandas)
    monkeypatch.setattr(pd, "read_csv", no_pandas)
    code, _, err = _run(
        capsys, "fit", str(folder / "*.parquet"), "--amount", "amount", "--method", "mle",
        "--out", str(tmp_path / "m" / "shop"), "--quiet",
    )  # fmt: skip
    assert code == 0, err
    assert seen == [str(folder / "*.parquet")]
    monkeypatch.undo()
    rfm = pd.read_parquet(tmp_path / "m" / "shop.rfm.parquet")
    expected = clvkit.rfm_summary(log, amount="amount")
    pd.testing.assert_frame_equal(rfm, expected, check_like=True)


def test_report_reads_and_summarizes_the_log_once(cdnow_csv, tmp_path, monkeypatch, capsys):
    import clvkit.data.files as files
    import clvkit.data.summary as summary

    calls = {"summarize_log": 0, "read_files": 0}

    def counted(module, name):
        real = getattr(module, name)

        def wrapper(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(module, name, wrapper)

    counted(summary, "summarize_log")
    counted(files, "read_files")
    report = tmp_path / "report.html"
    code, _, err = _run(
        capsys, "report", str(cdnow_csv), *COLS, "--calibration-end", CAL, "--observation-end",
        END, "--method", "mle", "--value-method", "expected", "--out", str(report), "--quiet",
        "--seed", "1",
    )  # fmt: skip
    assert code == 0, err
    # loaded once (the split's purchase days); summarized twice: the valuation table (all
    # purchases to the observation end, by DuckDB from the path) and the backtest's
    # calibration/holdout table are two tables now
    assert calls == {"summarize_log": 2, "read_files": 1}
    text = report.read_text()
    assert "BG/NBD purchase model" in text and "Gamma-Gamma spend model" in text
    assert "chi-square" in text


def test_backtest_command_on_cdnow(cdnow_csv, tmp_path, capsys):
    out_dir = tmp_path / "bt"
    code, out, _ = _run(
        capsys, "backtest", str(cdnow_csv), "--customer-id", "cust", "--date", "day",
        "--calibration-end", CAL, "--observation-end", END, "--method", "mle",
        "--out", str(out_dir), "--quiet", "--seed", "1",
    )  # fmt: skip
    assert code == 0, out
    names = _files(out_dir)
    for name in ("customers.csv", "metrics.csv", "tracking.csv", "retention.png", "pit.png"):
        assert name in names
    customers = pd.read_csv(out_dir / "customers.csv", index_col=0)
    # 1,882 same-day-merged repeat purchases in the CDNOW holdout (BTYD walkthrough, sec. 4.4)
    assert int(customers["actual"].sum()) == 1882
    assert (out_dir / "retention.png").stat().st_size > 10_000


def test_report_on_simulated_csv(tmp_path, capsys):
    sim = simulate(
        3000, r=0.5, alpha=6.0, a=0.8, b=2.5, p=6.0, q=4.0, v=15.0,
        start="2024-01-01", acquisition_periods=12, observation_periods=78, random_seed=7,
    )  # fmt: skip
    path = tmp_path / "sim.parquet"
    sim.transactions.to_parquet(path)
    start = pd.Timestamp("2024-01-01")
    cal = (start + pd.Timedelta(weeks=52)).date().isoformat()
    end = (start + pd.Timedelta(weeks=78) - pd.Timedelta(days=1)).date().isoformat()
    report = tmp_path / "out" / "report.html"
    code, _, _ = _run(
        capsys, "report", str(path), "--calibration-end", cal, "--observation-end", end,
        "--method", "laplace", "--out", str(report), "--quiet", "--seed", "3",
    )  # fmt: skip
    assert code == 0
    text = report.read_text()
    assert text.count("data:image/png;base64,") >= 8
    assert "Predicted vs actual" in text and "Customer equity" in text
    assert "Laplace approximation" in text
    assert _files(tmp_path / "out") == {"report.html"}


# ---- bad input: one line on stderr, exit 2, nothing partial ---------------------------------
def _assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln]
    # progress lines ("[  0.0s] ...") may precede it; the error is one line, and the last
    errors = [ln for ln in lines if not ln.startswith("[")]
    assert len(errors) == 1, err
    assert errors[0] == lines[-1] and errors[0].startswith("clvkit: error:")
    assert "Traceback" not in err
    for n in needles:
        assert n in errors[0]


def test_missing_file(tmp_path, capsys):
    code, _, err = _run(capsys, "fit", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "m"))
    # the API's error for the same path (the CLI reads PURCHASES through rfm_summary(path))
    _assert_one_line_error(code, err, "nope.csv", "names no file")
    assert _files(tmp_path) == set()


def test_missing_column(cdnow_csv, tmp_path, capsys):
    code, _, err = _run(
        capsys, "fit", str(cdnow_csv), "--customer-id", "customer", "--date", "day",
        "--amount", "value", "--out", str(tmp_path / "m"), "--quiet",
    )  # fmt: skip
    _assert_one_line_error(code, err, "customer_id='customer'", "has no column")
    assert _files(tmp_path) == set()


def test_unparseable_date(cdnow_csv, tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    log = pd.read_csv(cdnow_csv)
    log.loc[5, "day"] = "not a date"
    log.to_csv(bad, index=False)
    out = tmp_path / "out"
    code, _, err = _run(
        capsys, "fit", str(bad), *COLS, "--method", "mle", "--out", str(out / "m"), "--quiet"
    )
    _assert_one_line_error(code, err, "'day'", "not a date")
    assert not out.exists() or _files(out) == set()


def test_report_bad_split_leaves_nothing(cdnow_csv, tmp_path, capsys):
    report = tmp_path / "r" / "report.html"
    code, _, err = _run(
        capsys, "report", str(cdnow_csv), *COLS, "--calibration-end", END,
        "--observation-end", CAL, "--method", "mle", "--out", str(report), "--quiet",
    )  # fmt: skip
    _assert_one_line_error(code, err, "calibration_end")
    assert not report.exists()


def test_corrupt_and_foreign_model_files(cdnow_csv, tmp_path, capsys):
    prefix = tmp_path / "m" / "shop"
    code, _, _ = _run(
        capsys, "fit", str(cdnow_csv), *COLS, "--observation-end", CAL, "--method", "mle",
        "--out", str(prefix), "--quiet",
    )  # fmt: skip
    assert code == 0
    bg_path = tmp_path / "m" / "shop.bgnbd.nc"
    good = bg_path.read_bytes()
    bg_path.write_bytes(good[: len(good) // 3])  # truncated: corrupt
    out_csv = tmp_path / "clv.csv"
    code, _, err = _run(capsys, "value", str(prefix), "--out", str(out_csv), "--quiet")
    _assert_one_line_error(code, err)
    assert not out_csv.exists()

    import xarray as xr

    xr.Dataset({"x": ("i", [1.0, 2.0])}).to_netcdf(bg_path, engine="h5netcdf")  # not ours
    code, _, err = _run(capsys, "value", str(prefix), "--out", str(out_csv), "--quiet")
    _assert_one_line_error(code, err)
    assert not out_csv.exists()

    code, _, err = _run(capsys, "value", str(tmp_path / "m" / "other"), "--quiet")
    _assert_one_line_error(code, err, "does not exist")


def test_console_script_has_no_traceback(tmp_path):
    exe = Path(sys.executable).with_name("clvkit")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "clvkit.cli"]
    env = dict(os.environ)
    proc = subprocess.run(
        [*cmd, "backtest", str(tmp_path / "missing.csv"), "--calibration-end", CAL,
         "--observation-end", END],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip
    _assert_one_line_error(proc.returncode, proc.stderr, "missing.csv")


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, capsys):
    out = tmp_path / "demo"
    code, stdout, _ = _run(
        capsys, "demo", "--out", str(out), "--chains", "2", "--draws", "300", "--tune", "300",
        "--quiet",
    )  # fmt: skip
    assert code == 0
    assert f"Report: {(out / 'report.html').resolve()}" in stdout
    assert {"report.html", "customer_value.csv", "backtest_metrics.csv"} <= _files(out)
    html = (out / "report.html").read_text()
    assert "Sampler diagnostics" in html and html.count("data:image/png;base64,") >= 8
