"""clvkit.opportunity_summary: a purchase log on a grid of discrete opportunities (for BG/BB),
on the DataFrame and the file (DuckDB) route."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import pytest

import clvkit


@pytest.fixture
def log() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 1, 2, 3, 3, 4],
            "date": [
                "2020-03-01",
                "2021-05-01",
                "2021-06-01",
                "2023-01-09",
                "2022-02-02",
                "2020-12-31",
                "2024-01-02",
                "2024-03-01",
            ],
            "amount": [10.0, 2.0, 3.0, 4.0, 5.0, 7.0, 9.0, 1.0],
        }
    )


def test_calendar_years(log):
    """Opportunity 0 is the year of the first purchase; two purchases in 2021 count once (their
    amounts summed); n counts the years after the first up to the observation end."""
    with pytest.warns(clvkit.ClvkitWarning):
        out = clvkit.opportunity_summary(log, amount="amount", observation_end="2023-12-31")
    assert out.index.tolist() == [1, 2, 3]  # customer 4 starts after the end
    assert out["frequency"].tolist() == [2, 0, 0]
    assert out["recency"].tolist() == [3, 0, 0]
    assert out["n"].tolist() == [3, 1, 3]
    assert out["monetary_value"].tolist() == [4.5, 0.0, 0.0]  # (2 + 3 + 4) / 2
    assert out.dtypes.astype(str).tolist() == ["int64", "int64", "int64", "float64"]
    assert out.attrs["time_unit"] == "Y" and out.attrs["kind"] == "discrete"
    assert out.attrs["observation_end"] == "2023-12-31"
    assert out.attrs["n_rows_after_observation_end"] == 2


def test_rows_after_the_end_warn(log):
    with pytest.warns(clvkit.ClvkitWarning, match="2 of 8 rows are dated after"):
        clvkit.opportunity_summary(log, observation_end="2023-12-31")


def test_quarters_weeks_and_origin(log):
    q = clvkit.opportunity_summary(log, opportunity="Q", observation_end="2024-03-31")
    # customer 1: 2020Q1 -> 2021Q2 (5, twice), 2023Q1 (12); end 2024Q1 (16)
    assert q.loc[1].tolist() == [2, 12, 16]
    # customer 3: 2020Q4 -> 2024Q1 (13)
    assert q.loc[3].tolist() == [1, 13, 13]
    assert q.attrs["time_unit"] == "Q"
    w = clvkit.opportunity_summary(
        log, opportunity="W", observation_end="2024-03-31", origin="2020-02-24"
    )  # a Monday
    # customer 2 (2022-02-02) is in week (2022-02-02 - 2020-02-24) // 7 = 101
    end_week = (pd.Timestamp("2024-03-31") - pd.Timestamp("2020-02-24")).days // 7
    assert w.loc[2, "n"] == end_week - 101
    assert w.attrs["time_unit"] == "W"


def test_calibration_holdout(log):
    """Calibration up to 2022, holdout 2023-2024: counts of holdout opportunities with a
    purchase; customers first seen in the holdout are left out and counted."""
    out = clvkit.opportunity_summary(
        log, calibration_end="2022-12-31", observation_end="2024-12-31"
    )
    assert out.index.tolist() == [1, 2, 3]
    assert out["frequency"].tolist() == [1, 0, 0]
    assert out["recency"].tolist() == [1, 0, 0]
    assert out["n"].tolist() == [2, 0, 2]
    assert out["frequency_holdout"].tolist() == [1, 0, 1]
    assert out["n_holdout"].tolist() == [2, 2, 2]
    assert out.attrs["late_customers"] == 1 and out.attrs["calibration_end"] == "2022-12-31"


@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_file_route_equals_frame(log, tmp_path, ext):
    """The DuckDB file route gives the same table and attrs."""
    path = tmp_path / f"log.{ext}"
    getattr(log, f"to_{ext}")(path, index=False)
    kw = {"amount": "amount", "calibration_end": "2022-12-31", "observation_end": "2024-12-31"}
    a = clvkit.opportunity_summary(log, **kw)
    b = clvkit.opportunity_summary(str(path), **kw)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert a.attrs == b.attrs


def test_caller_frame_unchanged(log):
    before, attrs = log.copy(deep=True), copy.deepcopy(log.attrs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        clvkit.opportunity_summary(log, amount="amount", observation_end="2023-06-30")
    pd.testing.assert_frame_equal(log, before)
    assert log.attrs == attrs


def test_same_errors_as_rfm_summary(log, tmp_path):
    """Bad rows give rfm_summary's error, on both routes."""
    bad = log.copy()
    bad.loc[3, "date"] = "not a date"
    with pytest.raises(clvkit.ClvkitError) as rfm_err:
        clvkit.rfm_summary(bad)
    with pytest.raises(clvkit.ClvkitError) as opp_err:
        clvkit.opportunity_summary(bad)
    assert str(opp_err.value) == str(rfm_err.value)
    assert "column 'date'" in str(opp_err.value) and "1 of 8 rows" in str(opp_err.value)
    neg = log.copy()
    neg.loc[0, "amount"] = -1.0
    path = tmp_path / "neg.csv"
    neg.to_csv(path, index=False)
    msgs = set()
    for src in (neg, str(path)):
        with pytest.raises(clvkit.ClvkitError, match="Suggestion") as e:
            clvkit.opportunity_summary(src, amount="amount")
        msgs.add(str(e.value))
        with pytest.raises(clvkit.ClvkitError) as r:
            clvkit.rfm_summary(src, amount="amount")
        assert str(r.value) == str(e.value)
    assert len(msgs) == 1


def test_argument_errors(log):
    with pytest.raises(clvkit.ClvkitError, match=r"'observation_end' \(2019-01-01\) is before"):
        clvkit.opportunity_summary(log, observation_end="2019-01-01")
    with pytest.raises(clvkit.ClvkitError, match=r"'calibration_end'.*after observation_end"):
        clvkit.opportunity_summary(log, calibration_end="2025-01-01", observation_end="2024-12-31")
    with pytest.raises(clvkit.ClvkitError, match=r"'origin'.*calendar period"):
        clvkit.opportunity_summary(log, origin="2020-01-01")
    with pytest.raises(clvkit.ClvkitError, match=r"'origin'.*after the first purchase"):
        clvkit.opportunity_summary(log, opportunity="W", origin="2021-01-01")
    with pytest.raises(clvkit.ClvkitError, match="whole number of days"):
        clvkit.opportunity_summary(log, opportunity="12h")
    with pytest.raises(clvkit.ClvkitError, match="'opportunity'"):
        clvkit.opportunity_summary(log, opportunity=7)


def test_bgbb_fits_the_summary(log):
    """The table is what BG/BB reads (validated, with its time unit)."""
    big = pd.concat([log.assign(customer_id=log["customer_id"] + 10 * k) for k in range(30)])
    out = clvkit.opportunity_summary(big, observation_end="2024-12-31")
    m = clvkit.BetaGeoBetaBinom().fit(out, method="map")
    assert m.time_unit_ == "Y"
    pa = m.probability_alive(out)["mean"]
    assert np.isfinite(pa).all() and ((pa > 0) & (pa <= 1)).all()
