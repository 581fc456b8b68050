"""The command line of the firm's equity over time: `clvkit history` and `clvkit rolling` give
the API's tables, write only their own output folder, and refuse bad input in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clvkit
from clvkit.cli import main
from clvkit.datasets import cdnow_transactions

FIT = ("--method", "map", "--seed", "3", "--quiet")


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def log(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli_firm") / "log.csv"
    cdnow_transactions().to_csv(path, index=False)
    return path


def test_history_writes_the_api_tables_and_plots(capsys, log, tmp_path):
    out = tmp_path / "hist"
    cutoffs = "1997-04-02,1997-10-01,1998-04-01"
    code, text, err = _run(capsys, "history", str(log), "--cutoffs", cutoffs, "--refit", "2",
                           "--out", str(out), *FIT)  # fmt: skip
    assert code == 0, err
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == [
        "bridge.csv", "bridge.png", "equity_history.png", "history.csv", "report.html",
    ]  # fmt: skip
    page = (out / "report.html").read_text()
    assert "Customer equity on 1998-04-01" in page and "Bridge from each cut-off" in page
    table = pd.read_csv(out / "history.csv", index_col=0, parse_dates=True)
    api = clvkit.equity_history(
        str(log), cutoffs=cutoffs.split(","), horizon="52W", annual_discount_rate=0.1,
        fit_kwargs={"method": "map", "random_seed": 3}, refit=2, random_seed=3,
    ).table()  # fmt: skip
    np.testing.assert_allclose(table["equity"], api["equity"], rtol=1e-9)
    assert list(table["refit"]) == [True, False, True]
    bridge = pd.read_csv(out / "bridge.csv", index_col=0)
    np.testing.assert_allclose(
        bridge["start"] + bridge["new"] + bridge["lost"] + bridge["revaluation"],
        bridge["end"], rtol=1e-9,
    )  # fmt: skip
    assert "Customer equity over time" in text and "Bridge" in text


def test_rolling_writes_the_error_by_horizon(capsys, log, tmp_path):
    out = tmp_path / "roll"
    code, text, err = _run(capsys, "rolling", str(log), "--origins", "1997-06-25,1997-09-24",
                           "--horizons", "13,26", "--samples", "200", "--out", str(out), *FIT)  # fmt: skip
    assert code == 0, err
    by = pd.read_csv(out / "by_horizon.csv", index_col=0)
    assert list(by.index) == [13, 26] and list(by["origins"]) == [2, 2]
    assert (out / "error_by_horizon.png").stat().st_size > 10_000
    assert "Per-customer 90% intervals cover" in (out / "report.html").read_text()
    assert by["mae"].iloc[1] > by["mae"].iloc[0]  # error grows with the horizon
    assert "Rolling-origin backtest" in text


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("history", "--cutoffs", "2030-01-01"), "argument 'cutoffs'"),
        (("history", "--refit", "often"), "argument '--refit'"),
        (("history", "--cutoffs", " , "), "argument '--cutoffs' is empty"),
        (("rolling", "--origins", "1990-01-01"), "argument 'origins'"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(capsys, log, tmp_path, argv, message):
    code, _, err = _run(capsys, argv[0], str(log), *argv[1:], "--out", str(tmp_path / "o"), *FIT)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_an_existing_folder_of_the_user_is_not_touched(capsys, log, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    code, _, err = _run(capsys, "history", str(log), "--out", str(mine), *FIT)
    assert code == 2 and "--out" in err
    assert (mine / "notes.txt").read_text() == "keep me"
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
