"""rfm_summary / calibration_holdout on CSV and Parquet files (DuckDB): identical to in memory.

Published checks: the CDNOW sample's calibration summary (weeks 1997-01-01..1997-09-30) as in
Fader, Hardie and Lee (2005) and the BTYD/lifetimes data set ``cdnow_customers.csv``
(2,357 customers, 1,411 with no repeat purchase, 2,457 repeat purchase days in all).
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pandas as pd
import pytest

from clvkit import calibration_holdout, rfm_summary
from clvkit.datasets import cdnow_calibration_summary, cdnow_transactions, simulate
from clvkit.errors import ClvkitError, ClvkitWarning

CAL, END = "1997-09-30", "1998-06-30"
HOLDOUT_DAYS = 1_882


def _write(log: pd.DataFrame, folder, fmt: str, parts: int = 1) -> str:
    """Write ``log`` as ``parts`` files of one format; return the path or a glob of them."""
    folder.mkdir(exist_ok=True)
    chunks = np.array_split(np.arange(len(log)), parts)
    for i, rows in enumerate(chunks):
        part = log.iloc[rows]
        name = folder / f"part-{i}.{fmt}"
        if fmt == "csv":
            part.to_csv(name, index=False)
        else:
            part.to_parquet(name, index=False)
    return str(folder / f"part-0.{fmt}") if parts == 1 else str(folder / f"part-*.{fmt}")


@pytest.fixture(scope="module")
def cdnow_log() -> pd.DataFrame:
    log = cdnow_transactions()
    log["date"] = log["date"].dt.strftime("%Y-%m-%d")  # how a CSV export holds dates
    return log


@pytest.fixture(scope="module")
def sim_log() -> pd.DataFrame:
    sim = simulate(50_000, r=0.25, alpha=4.0, a=0.8, b=2.4, p=6.0, q=4.0, v=15.0, random_seed=5)
    return sim.transactions


def _assert_same(got: pd.DataFrame, want: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(got, want, check_exact=True)
    assert got.attrs == want.attrs


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
@pytest.mark.parametrize("parts", [1, 3])
def test_cdnow_files_identical_and_published(cdnow_log, tmp_path, fmt, parts):
    path = _write(cdnow_log, tmp_path / "log", fmt, parts)
    kw = {"amount": "amount", "time_unit": "W"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClvkitWarning)
        got = rfm_summary(path, observation_end=CAL, **kw)
        want = rfm_summary(cdnow_log, observation_end=CAL, **kw)
    _assert_same(got, want)
    assert got.attrs["n_rows_after_observation_end"] == 1_959  # dated 1997-10..1998-06

    # the published calibration summary (frequency, recency, T) holds on the file path too
    pub = cdnow_calibration_summary()
    np.testing.assert_array_equal(got["frequency"].to_numpy(), pub["frequency"].to_numpy())
    np.testing.assert_allclose(got["recency"], pub["recency"], atol=0.005)  # 2 decimals
    np.testing.assert_allclose(got["T"], pub["T"], atol=0.005)
    assert len(got) == 2_357
    assert int((got["frequency"] == 0).sum()) == 1_411
    assert int(got["frequency"].sum()) == int(pub["frequency"].sum()) == 2_457

    ch = calibration_holdout(path, calibration_end=CAL, observation_end=END, **kw)
    _assert_same(ch, calibration_holdout(cdnow_log, calibration_end=CAL, observation_end=END, **kw))
    # holdout purchase days of the calibration customers, weeks 40-78 (measured in memory)
    assert int(ch["frequency_holdout"].sum()) == HOLDOUT_DAYS


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_simulated_50k_identical(sim_log, tmp_path, fmt):
    assert sim_log.groupby(["customer_id", "date"]).size().max() >= 3  # merges of 3+ rows
    for parts in (1, 3):
        path = _write(sim_log, tmp_path / f"log{parts}", fmt, parts)
        for kw in ({"amount": "amount"}, {}):
            _assert_same(rfm_summary(path, **kw), rfm_summary(sim_log, **kw))
            ends = {"calibration_end": "2020-09-30", "observation_end": "2021-06-29"}
            got = calibration_holdout(path, **ends, **kw, time_unit="D")
            _assert_same(got, calibration_holdout(sim_log, **ends, **kw, time_unit="D"))
            assert got["frequency_holdout"].sum() > 10_000


def _errors_match(frame: pd.DataFrame, path: str, **kw) -> str:
    with pytest.raises(ClvkitError) as want:
        rfm_summary(frame, **kw)
    with pytest.raises(ClvkitError) as got:
        rfm_summary(path, **kw)
    assert str(got.value) == str(want.value)
    return str(got.value)


def test_validation_messages_match_in_memory(tmp_path):
    base = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "date": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-04"],
            "amount": [1.0, 2.0, 3.0, 4.0],
        }
    )

    def case(name, **changes):
        frame = base.copy()
        for col, (row, value) in changes.items():
            frame[col] = frame[col].astype(object)
            frame.loc[row, col] = value
        path = tmp_path / f"{name}.csv"
        frame.to_csv(path, index=False)
        return pd.read_csv(path), str(path)  # the in-memory twin reads the same file

    msg = _errors_match(*case("neg", amount=(2, -5.0)), amount="amount")
    assert "column 'amount' is negative in 1 of 4 rows" in msg and "'row': 2" in msg
    msg = _errors_match(*case("text", amount=(1, "$3")), amount="amount")
    assert "column 'amount' is not numeric in 1 of 4 rows" in msg and "'$3'" in msg
    msg = _errors_match(*case("noid", customer_id=(3, None)), amount="amount")
    assert "column 'customer_id' is missing in 1 of 4 rows" in msg
    msg = _errors_match(*case("nodate", date=(0, None)))
    assert "column 'date' is missing in 1 of 4 rows" in msg
    msg = _errors_match(*case("baddate", date=(1, "not a date")))
    assert "column 'date' is not a parseable date in 1 of 4 rows" in msg
    assert "'date': 'not a date'" in msg
    _, ok_path = case("ok")  # same message, less the hint about a DataFrame's index
    with pytest.raises(ClvkitError) as err:
        rfm_summary(ok_path, customer_id="user")
    pattern = (
        r"no column for customer_id='user'; its columns are \['customer_id', 'date', 'amount'\]"
    )
    assert re.search(pattern, str(err.value))
    msg = _errors_match(*case("early"), observation_end="2023-12-01")
    assert "argument 'observation_end' (2023-12-01) is before the first purchase" in msg

    numbers = pd.DataFrame({"customer_id": [1, 2], "date": [20240101, 20240102]})
    numbers.to_csv(tmp_path / "numbers.csv", index=False)
    msg = _errors_match(numbers, str(tmp_path / "numbers.csv"))
    assert "column 'date' holds numbers, not dates, in 2 of 2 rows" in msg


def test_glob_example_names_file_and_path_errors(tmp_path):
    log = pd.DataFrame(
        {"customer_id": [1, 2, 3, 4], "date": ["2024-01-01"] * 4, "amount": [1.0, 2, 3, -1]}
    )
    path = _write(log, tmp_path / "g", "parquet", parts=2)
    with pytest.raises(ClvkitError, match=r"negative in 1 of 4 rows.*'file': 'part-1.parquet', "):
        rfm_summary(path, amount="amount")
    with pytest.raises(ClvkitError, match="names no file"):
        rfm_summary(str(tmp_path / "nothing-*.csv"))
    (tmp_path / "g" / "x.json").write_text("{}")
    with pytest.raises(ClvkitError, match="neither CSV nor Parquet"):
        rfm_summary(str(tmp_path / "g" / "*"))


def test_calibration_holdout_rows_after_end_warn(cdnow_log, tmp_path):
    path = _write(cdnow_log, tmp_path / "w", "parquet")
    with pytest.warns(ClvkitWarning, match="1,959 of 6,919 rows are dated after"):
        rfm_summary(path, observation_end=CAL)
    with pytest.raises(ClvkitError, match=r"calibration_end.*before the first purchase"):
        calibration_holdout(path, calibration_end="1996-01-01", observation_end=END)
