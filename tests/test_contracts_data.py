"""Contractual data: clvkit.contract_summary, survival_table and cohort_counts; the renewal
convention, calendar periods and month ends, spells, every error on both routes (pandas and
files through DuckDB), the caller's frame untouched."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

import clvkit
from clvkit import ClvkitError, cohort_counts, contract_summary, survival_table


def _contracts() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4, 4, 5, 5],
            "start": [
                "2024-01-31", "2024-01-10", "2024-02-29", "2024-01-15", "2024-03-15",
                "2024-02-01", "2024-04-20",
            ],
            "end": [
                None, "2024-04-10", "2024-03-29", "2024-03-15", None,
                "2024-03-01", "2024-05-01",
            ],
            "fee": [10.0, 12.0, 9.0, 20.0, 25.0, 5.0, 6.0],
        }
    )  # fmt: skip


def test_summary_values_and_convention():
    """Renewals on the same day of the month, clipped at month ends; churned after n renewals
    (a contract ending on a renewal date did not renew it); back-to-back contracts are one
    spell; a gap starts spell '<id>#2'."""
    c = _contracts()
    before = (c.copy(deep=True), copy.deepcopy(c.attrs))
    s = contract_summary(c, "M", "2024-06-30", fee_col="fee")
    pd.testing.assert_frame_equal(c, before[0])
    assert c.attrs == before[1]
    assert s.index.tolist() == ["1", "2", "3", "4", "5", "5#2"]
    assert s.index.name == "customer_id"
    assert s["cohort"].tolist() == [
        "2024-01",
        "2024-01",
        "2024-02",
        "2024-01",
        "2024-02",
        "2024-04",
    ]
    # 1: from 31 Jan, renewals 29 Feb, 31 Mar, 30 Apr, 31 May, 30 Jun (on observation_end)
    # 2: renewals 10 Feb, 10 Mar; ends 10 Apr on renewal 3: churned after 2
    # 3: from 29 Feb, ends 29 Mar, the day renewal 1 falls: churned after 0
    # 4: 15 Jan -> 15 Mar, then 15 Mar -> open: one spell, renewals to 15 Jun
    # 5: 1 Feb -> 1 Mar (0 renewals), gap, 20 Apr -> 1 May (0 renewals)
    assert s["renewals"].tolist() == [5, 2, 0, 5, 0, 0]
    assert s["churned"].tolist() == [False, True, True, False, True, True]
    assert s["renewals"].dtype == np.int64 and s["churned"].dtype == bool
    assert s["age"].dtype == np.float64 and s["start"].dtype.kind == "M"
    # ages: 1 is 0 days into period 5 (30 Jun .. 31 Jul); 4: 15 of 30 days into period 5
    np.testing.assert_allclose(
        s["age"].to_numpy(),
        [5.0, 3.0, 1.0, 5 + 15 / 30, 1.0, 11 / 30],
        rtol=1e-14,
    )
    assert s["fee"].tolist() == [10.0, 12.0, 9.0, 25.0, 5.0, 6.0]  # the spell's last fee
    assert s.attrs == {
        "time_unit": "M",
        "period": "M",
        "observation_end": "2024-06-30",
        "kind": "contractual",
    }


def test_integer_ids_kept_without_gaps_and_default_observation_end():
    c = _contracts().iloc[:5]
    s = contract_summary(c, "M")
    assert s.index.dtype == np.int64 and s.index.tolist() == [1, 2, 3, 4]
    assert s.attrs["observation_end"] == "2024-04-10"  # the latest date in the table


@pytest.mark.parametrize(
    ("period", "renewals", "cohort", "unit"),
    [
        ("Q", [1, 0, 0, 1, 0, 0], "2024Q1", "Q"),
        ("Y", [0, 0, 0, 0, 0, 0], "2024", "Y"),
        # 28-day windows from Monday 1970-01-05; 30-day windows from 1970-01-01
        ("4W", [5, 3, 1, 5, 1, 0], "2024-01-22", "28D"),
        ("30D", [5, 3, 0, 5, 0, 0], "2024-01-18", "30D"),
    ],
)
def test_periods(period, renewals, cohort, unit):
    s = contract_summary(_contracts(), period, "2024-06-30")
    assert s["renewals"].tolist() == renewals
    assert s["cohort"].iloc[0] == cohort
    assert s.attrs["time_unit"] == unit
    assert ((s["age"] >= s["renewals"]) & (s["age"] <= s["renewals"] + 1)).all()


def test_survival_table_and_censoring():
    c = pd.DataFrame(
        {
            "customer_id": [1, 2, 3, 4, 5],
            "start": ["2024-01-05", "2024-01-05", "2024-01-20", "2024-02-03", "2024-02-10"],
            "end": [None, "2024-02-01", "2024-03-25", "2024-02-20", None],
        }
    )
    s = contract_summary(c, "M", "2024-04-30")
    t = survival_table(s)
    # January: 1 active after 3 renewals (5 Apr), 2 churned after 0, 3 after 2; all observed
    # through renewal 3. February: 5 active after 2 renewals censors it after period 2
    np.testing.assert_array_equal(t.loc["2024-01"].to_numpy(), [3.0, 2.0, 2.0, 1.0])
    np.testing.assert_array_equal(t.loc["2024-02"].to_numpy(), [2.0, 1.0, 1.0, np.nan])
    assert list(t.columns) == [0, 1, 2, 3] and t.index.name == "cohort"
    assert t.attrs["kind"] == "survival" and t.attrs["time_unit"] == "M"
    pd.testing.assert_frame_equal(survival_table(c, "M", "2024-04-30"), t)
    with pytest.raises(ClvkitError, match="further arguments"):
        survival_table(s, "M")


def test_cohort_counts():
    t = cohort_counts({"regular": [100, 63.1, 46.8], "high": [100, 86.9]}, "Y", size=1000)
    np.testing.assert_array_equal(t.loc["regular"], [1000.0, 631.0, 468.0])
    np.testing.assert_array_equal(t.loc["high"], [1000.0, 869.0, np.nan])
    assert t.attrs["time_unit"] == "Y"
    with pytest.raises(ClvkitError, match=r"argument 'alive' increases.*1 row"):
        cohort_counts([100, 90, 95])
    with pytest.raises(ClvkitError, match=r"not a count.*'alive': 63.1"):
        cohort_counts([100, 63.1])


# ---- errors, on both routes -------------------------------------------------------------------
BAD = {
    "missing start": (
        {"start": ["2024-01-01", None]},
        r"column 'start' is missing in 1 of 2 rows; for example: .*Suggestion",
    ),
    "unparseable date": (
        {"end": ["2024-13-45", None]},
        r"column 'end' is not a parseable date in 1 of 2 rows; for example: .*2024-13-45",
    ),
    "end before start": (
        {"end": ["2023-12-01", None]},
        r"column 'end' is before the start in 1 of 2 rows; for example: .*2023-12-01",
    ),
    "overlap": (
        {"customer_id": [1, 1], "end": ["2024-03-01", None], "start": ["2024-01-01", "2024-02-01"]},
        r"overlap an earlier contract of the same customer in 1 of 2 rows.*2024-02-01",
    ),
    "after observation end": (
        {"end": ["2024-09-01", None]},
        r"after observation_end 2024-06-30 in 1 of 2 rows.*2024-09-01.*Suggestion",
    ),
    "negative fee": (
        {"fee": [-1.0, 3.0]},
        r"column 'fee' is missing, not a number or negative in 1 of 2 rows.*-1",
    ),
    "missing fee": (
        {"fee": [np.nan, 3.0]},
        r"column 'fee' is missing, not a number or negative in 1 of 2 rows",
    ),
    "duplicate rows": (
        {"customer_id": [1, 1], "start": ["2024-01-01"] * 2, "end": [None] * 2, "fee": [9.0] * 2},
        r"has duplicate rows in 1 of 2 rows",
    ),
}


def _bad_frame(change: dict) -> pd.DataFrame:
    base = {
        "customer_id": [1, 2],
        "start": ["2024-01-01", "2024-02-01"],
        "end": ["2024-03-01", None],
        "fee": [10.0, 12.0],
    }
    base.update(change)
    return pd.DataFrame(base)


@pytest.mark.parametrize("case", list(BAD))
@pytest.mark.parametrize("route", ["pandas", "csv", "parquet"])
def test_errors_name_the_rows(case, route, tmp_path):
    change, pattern = BAD[case]
    frame = _bad_frame(change)
    if route == "pandas":
        arg = frame
    elif route == "csv":
        arg = tmp_path / "contracts.csv"
        frame.to_csv(arg, index=False)
    else:
        arg = tmp_path / "contracts.parquet"
        frame.to_parquet(arg, index=False)
    with pytest.raises(ClvkitError, match=pattern) as err:
        contract_summary(arg, "M", "2024-06-30", fee_col="fee")
    MESSAGES.setdefault(case, set()).add(str(err.value))
    assert len(MESSAGES[case]) == 1, "the routes give different messages"


MESSAGES: dict[str, set[str]] = {}


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_file_route_equals_pandas(fmt, tmp_path):
    c = _contracts()
    c["start"] = pd.to_datetime(c["start"])
    c["end"] = pd.to_datetime(c["end"])
    for part, rows in (("a", slice(0, 4)), ("b", slice(4, None))):
        path = tmp_path / f"contracts_{part}.{fmt}"
        if fmt == "csv":
            c.iloc[rows].to_csv(path, index=False)
        else:
            c.iloc[rows].to_parquet(path, index=False)
    kw = {"observation_end": "2024-06-30", "fee_col": "fee"}
    mem = contract_summary(c, "M", **kw)
    files = contract_summary(str(tmp_path / f"contracts_*.{fmt}"), "M", **kw)
    pd.testing.assert_frame_equal(files, mem)
    assert files.attrs == mem.attrs
    pd.testing.assert_frame_equal(
        survival_table(str(tmp_path / f"contracts_*.{fmt}"), "M", **kw), survival_table(mem)
    )


def test_zoned_timestamps_cut_to_the_day_in_tz():
    c = pd.DataFrame({"customer_id": [1], "start": ["2024-01-31T23:30:00-05:00"], "end": [None]})
    utc = contract_summary(c, "M", "2024-03-15")
    ny = contract_summary(c, "M", "2024-03-15", tz="America/New_York")
    assert utc["start"].iloc[0] == pd.Timestamp("2024-02-01")
    assert ny["start"].iloc[0] == pd.Timestamp("2024-01-31")
    assert utc["renewals"].iloc[0] == 1 and ny["renewals"].iloc[0] == 1  # 1 Mar / 29 Feb


def test_bad_arguments():
    with pytest.raises(ClvkitError, match="period"):
        contract_summary(_contracts(), "bogus")
    with pytest.raises(ClvkitError, match="whole number of days"):
        contract_summary(_contracts(), "12h")
    with pytest.raises(ClvkitError, match=r"lacks columns \['begin'\]"):
        contract_summary(_contracts(), "M", start_col="begin")
    with pytest.raises(ClvkitError, match="names no file"):
        contract_summary("/nonexistent/contracts.csv", "M")


def test_exports():
    assert clvkit.data.contract_summary is contract_summary
    assert clvkit.data.survival_table is survival_table
    assert clvkit.data.cohort_counts is cohort_counts
