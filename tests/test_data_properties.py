"""Hypothesis property tests of rfm_summary and calibration_holdout on random purchase logs."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clvkit.data.summary import calibration_holdout, rfm_summary
from clvkit.errors import ClvkitError, ClvkitWarning
from clvkit.units import parse_time_unit

BASE = pd.Timestamp("2023-01-01")
SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def logs(draw, min_rows=1, max_rows=40):
    n = draw(st.integers(min_rows, max_rows))
    id_pool = draw(
        st.one_of(
            st.lists(st.integers(-5, 10**12), min_size=1, max_size=8, unique=True),
            st.lists(st.text(min_size=0, max_size=3), min_size=1, max_size=8, unique=True),
        )
    )
    ids = draw(st.lists(st.sampled_from(id_pool), min_size=n, max_size=n))
    day = draw(st.lists(st.integers(0, 60), min_size=n, max_size=n))
    hours = draw(st.lists(st.integers(0, 23), min_size=n, max_size=n))
    amount = draw(
        st.lists(
            st.one_of(st.just(0.0), st.floats(0, 1e6, allow_nan=False)), min_size=n, max_size=n
        )
    )
    dates = BASE + pd.to_timedelta(day, unit="D") + pd.to_timedelta(hours, unit="h")
    return pd.DataFrame({"customer_id": ids, "date": dates, "amount": amount})


def _reference(log: pd.DataFrame, end: pd.Timestamp) -> pd.DataFrame:
    """Slow, obvious pandas version: distinct purchase days per customer."""
    kept = log.assign(day=log["date"].dt.floor("D"))
    kept = kept[kept["day"] <= end]
    daily = kept.groupby(["customer_id", "day"])["amount"].sum().reset_index()
    rows = {}
    for cid, g in daily.groupby("customer_id"):
        g = g.sort_values("day")
        first, last = g["day"].iloc[0], g["day"].iloc[-1]
        freq = len(g) - 1
        rows[cid] = {
            "frequency": freq,
            "recency": (last - first).days,
            "T": (end - first).days,
            "monetary_value": g["amount"].iloc[1:].mean() if freq else 0.0,
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def _check_invariants(rfm: pd.DataFrame) -> None:
    assert rfm["frequency"].dtype == np.int64
    assert (rfm["frequency"] >= 0).all()
    assert not rfm.isna().to_numpy().any()
    assert np.isfinite(rfm.select_dtypes("number").to_numpy(dtype=float)).all()
    assert ((rfm["recency"] >= 0) & (rfm["recency"] <= rfm["T"])).all()
    assert (rfm.loc[rfm["frequency"] == 0, "recency"] == 0).all()
    if "monetary_value" in rfm:
        assert (rfm["monetary_value"] >= 0).all()
        assert (rfm.loc[rfm["frequency"] == 0, "monetary_value"] == 0).all()
    assert rfm.index.is_unique


@SETTINGS
@given(log=logs(), end_offset=st.integers(0, 70), unit=st.sampled_from(["D", "W", "1.5D", "30D"]))
def test_rfm_summary_matches_reference_and_invariants(log, end_offset, unit):
    before = copy.deepcopy(log)
    first = log["date"].min().floor("D")
    end = first + pd.Timedelta(days=end_offset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClvkitWarning)
        rfm = rfm_summary(log, amount="amount", time_unit=unit, observation_end=end)
    pd.testing.assert_frame_equal(log, before)
    _check_invariants(rfm)
    ref = _reference(log, end)
    assert set(rfm.index) == set(ref.index)
    ref = ref.loc[list(rfm.index)]
    days = parse_time_unit(unit) / pd.Timedelta(days=1)
    np.testing.assert_array_equal(rfm["frequency"].to_numpy(), ref["frequency"].to_numpy())
    np.testing.assert_allclose(rfm["recency"] * days, ref["recency"].astype(float), atol=1e-9)
    np.testing.assert_allclose(rfm["T"] * days, ref["T"].astype(float), atol=1e-9)
    np.testing.assert_allclose(
        rfm["monetary_value"], ref["monetary_value"].astype(float), rtol=1e-9, atol=1e-9
    )
    assert rfm.attrs["n_rows_after_observation_end"] == int((log["date"].dt.floor("D") > end).sum())


@SETTINGS
@given(log=logs(min_rows=2), cut=st.integers(0, 59), extra=st.integers(1, 10))
@pytest.mark.filterwarnings("ignore:observation_end=.*after the last purchase")  # on purpose
@pytest.mark.filterwarnings("ignore:.*exact duplicates of an earlier row")  # random logs
@pytest.mark.filterwarnings("ignore:.*first purchased after calibration_end")  # counted below
def test_calibration_plus_holdout_equals_total(log, cut, extra):
    first = log["date"].min().floor("D")
    last = log["date"].max().floor("D")
    cal = first + pd.Timedelta(days=min(cut, (last - first).days))
    end = last + pd.Timedelta(days=extra)
    ch = calibration_holdout(
        log, calibration_end=cal, observation_end=end, amount="amount", time_unit="D"
    )
    _check_invariants(ch[["frequency", "recency", "T", "monetary_value"]])
    assert not ch.isna().to_numpy().any()
    assert (ch["frequency_holdout"] >= 0).all()
    assert (ch.loc[ch["frequency_holdout"] == 0, "monetary_value_holdout"] == 0).all()
    np.testing.assert_allclose(ch["duration_holdout"], (end - cal).days)
    firsts = log["date"].dt.floor("D").groupby(log["customer_id"]).min()
    np.testing.assert_allclose(ch["T"], (cal - firsts.loc[list(ch.index)]).dt.days)
    assert (firsts.loc[list(ch.index)] <= cal).all()
    # every purchase day is in the calibration part, in a calibration customer's holdout, or
    # belongs to a customer whose first purchase falls in the holdout
    full = rfm_summary(log, amount="amount", time_unit="D", observation_end=end)
    total_days = int((full["frequency"] + 1).sum())
    newcomers = full.index.difference(ch.index)
    assert (full.loc[newcomers, "T"] < (end - cal).days).all()
    assert ch.attrs["late_customers"] == len(newcomers)
    assert ch.attrs["late_customers_example"] == (min(newcomers) if len(newcomers) else None)
    counted = (
        int((ch["frequency"] + 1).sum())
        + int(ch["frequency_holdout"].sum())
        + int((full.loc[newcomers, "frequency"] + 1).sum())
    )
    assert counted == total_days
    # spend adds up the same way (sums of daily amounts)
    spend_total = float(log["amount"].sum())
    first_day_spend = _first_day_spend(log)
    spend = (
        float((ch["monetary_value"] * ch["frequency"]).sum())
        + float((ch["monetary_value_holdout"] * ch["frequency_holdout"]).sum())
        + float((full.loc[newcomers, "monetary_value"] * full.loc[newcomers, "frequency"]).sum())
        + first_day_spend
    )
    np.testing.assert_allclose(spend, spend_total, rtol=1e-9, atol=1e-6)


def _first_day_spend(log: pd.DataFrame) -> float:
    day = log["date"].dt.floor("D")
    first = day.groupby(log["customer_id"]).transform("min")
    return float(log.loc[day == first, "amount"].sum())


# --- invalid logs raise ClvkitError and nothing else ------------------------------------------

_junk = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**20), 10**20),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["2024-01-01", "2024-13-01", "01/02/2024", "2024-01-01T10:00+05:00", "NaT"]),
    st.datetimes().map(pd.Timestamp),
)


@SETTINGS
@given(
    ids=st.lists(_junk, min_size=0, max_size=8),
    dates=st.lists(_junk, min_size=8, max_size=8),
    amounts=st.lists(_junk, min_size=8, max_size=8),
    end=_junk,
)
def test_arbitrary_input_raises_only_clvkit_error(ids, dates, amounts, end):
    n = len(ids)
    log = pd.DataFrame(
        {"customer_id": pd.Series(ids, dtype=object), "date": dates[:n], "amount": amounts[:n]}
    )
    for call in (
        lambda: rfm_summary(log, amount="amount", observation_end=end),
        lambda: calibration_holdout(
            log, calibration_end=end, observation_end="2030-01-01", amount="amount"
        ),
    ):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ClvkitWarning)
                out = call()
        except ClvkitError:
            continue
        _check_invariants(out[["frequency", "recency", "T", "monetary_value"]])


@SETTINGS
@given(
    log=logs(min_rows=3),
    kind=st.sampled_from(["id", "date", "amount", "negative", "text_amount", "column"]),
    row=st.integers(0, 2),
)
def test_injected_defects_are_reported(log, kind, row):
    bad = log.copy()
    if kind == "id":
        bad["customer_id"] = bad["customer_id"].astype(object)
        bad.loc[bad.index[row], "customer_id"] = None
        col = "customer_id"
    elif kind == "date":
        bad["date"] = bad["date"].dt.strftime("%Y-%m-%d").astype(object)
        bad.loc[bad.index[row], "date"] = "not-a-date"
        col = "date"
    elif kind == "amount":
        bad.loc[bad.index[row], "amount"] = np.nan
        col = "amount"
    elif kind == "negative":
        bad.loc[bad.index[row], "amount"] = -0.01
        col = "amount"
    elif kind == "text_amount":
        bad["amount"] = bad["amount"].astype(object)
        bad.loc[bad.index[row], "amount"] = "12,50 EUR"
        col = "amount"
    else:
        bad = bad.drop(columns="date")
        col = "date"
    try:
        rfm_summary(bad, amount="amount")
    except ClvkitError as err:
        msg = str(err)
        assert repr(col) in msg or f"{col}=" in msg
        assert "Suggestion" in msg
        if kind != "column":
            assert " 1 of " in msg
    else:
        raise AssertionError(f"defect {kind!r} was not reported")
