"""Tests for clvkit.data.summary: rfm_summary and calibration_holdout."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import pytest

from clvkit.data.summary import _purchase_days, _validate, calibration_holdout, rfm_summary
from clvkit.datasets import cdnow_calibration_summary, cdnow_transactions
from clvkit.errors import ClvkitError, ClvkitWarning


@pytest.fixture(scope="module")
def cdnow():
    return cdnow_transactions()


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClvkitWarning)
        return fn(*args, **kwargs)


# --- published reference ----------------------------------------------------------------------


def test_cdnow_reproduces_published_calibration_summary(cdnow):
    # Fader, Hardie and Lee (2005), "Counting your customers the easy way": 39-week calibration
    # period of the CDNOW sample, 2,357 customers, 2,457 repeat purchases; per-customer values
    # from lifetimes' cdnow_customers_summary_with_transactions.csv (rounded to 0.01).
    with pytest.warns(ClvkitWarning, match="1,959 of 6,919 rows"):
        rfm = rfm_summary(cdnow, amount="amount", observation_end="1997-09-30")
    pub = cdnow_calibration_summary()
    assert len(rfm) == 2357
    assert int((rfm["frequency"] > 0).sum()) == 946
    assert int(rfm["frequency"].sum()) == 2457
    pd.testing.assert_index_equal(rfm.index, pub.index)
    np.testing.assert_array_equal(rfm["frequency"].to_numpy(), pub["frequency"].to_numpy())
    for col in ("recency", "T", "monetary_value"):
        diff = np.abs(rfm[col].to_numpy() - pub[col].to_numpy())
        assert diff.max() <= 0.01 / 2 + 1e-9, col  # published values are rounded to 0.01
    assert rfm.attrs == {
        "time_unit": "W",
        "observation_end": "1997-09-30",
        "n_rows_after_observation_end": 1959,
        # CDNOW has dates only: 21 equal rows (same customer, day and amount) are counted, kept;
        # 8 rows have amount 0
        "cleaning": {
            "rows": 6919, "duplicates": 21, "duplicates_dropped": 0, "returns": 0,
            "returns_dropped": 0, "returns_netted": 0, "purchases_netted_out": 0,
            "zero_amounts": 8, "zero_amounts_dropped": 0,
        },
        "currency": None,
    }  # fmt: skip
    assert rfm["frequency"].dtype == np.int64
    assert list(rfm.columns) == ["frequency", "recency", "T", "monetary_value"]


def test_cdnow_holdout_matches_published_and_direct_count(cdnow):
    ch = calibration_holdout(
        cdnow, calibration_end="1997-09-30", observation_end="1998-06-30", amount="amount"
    )
    # Fader, Hardie and Lee (2005): 1,882 repeat purchases in weeks 40-78 by the 2,357 customers.
    assert int(ch["frequency_holdout"].sum()) == 1882
    # the calibration part is exactly rfm_summary up to calibration_end
    cal = _quiet(rfm_summary, cdnow, amount="amount", observation_end="1997-09-30")
    pd.testing.assert_frame_equal(ch[cal.columns], cal, check_like=False)
    # direct count on the log: distinct (customer, day) in (1997-09-30, 1998-06-30]
    hold = cdnow[(cdnow["date"] > "1997-09-30") & (cdnow["date"] <= "1998-06-30")]
    daily = hold.groupby(["customer_id", "date"])["amount"].sum().groupby(level=0)
    direct = daily.size().reindex(ch.index, fill_value=0)
    np.testing.assert_array_equal(ch["frequency_holdout"].to_numpy(), direct.to_numpy())
    mean = daily.mean().reindex(ch.index, fill_value=0.0)
    np.testing.assert_allclose(ch["monetary_value_holdout"].to_numpy(), mean.to_numpy())
    np.testing.assert_allclose(ch["duration_holdout"], 273 / 7)  # 273 days in the holdout
    assert ch.attrs["calibration_end"] == "1997-09-30"
    assert ch.attrs["observation_end"] == "1998-06-30"
    assert ch["frequency_holdout"].dtype == np.int64


def test_cdnow_master_agrees_with_lifetimes():
    # Cross-check against lifetimes' own summary (independent implementation) on the full log.
    lt_utils = pytest.importorskip("lifetimes.utils")
    log = cdnow_transactions(sample=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = lt_utils.calibration_and_holdout_data(
            log,
            "customer_id",
            "date",
            calibration_period_end="1997-09-30",
            observation_period_end="1998-06-30",
            freq="D",
            monetary_value_col="amount",
        )
    ch = calibration_holdout(
        log,
        calibration_end="1997-09-30",
        observation_end="1998-06-30",
        amount="amount",
        time_unit="D",
    )
    assert len(ch) == len(ref) == 23570
    np.testing.assert_array_equal(ch["frequency"], ref["frequency_cal"].astype(np.int64))
    np.testing.assert_allclose(ch["recency"], ref["recency_cal"])
    np.testing.assert_allclose(ch["T"], ref["T_cal"])
    np.testing.assert_allclose(ch["monetary_value"], ref["monetary_value_cal"], rtol=1e-12)
    np.testing.assert_array_equal(ch["frequency_holdout"], ref["frequency_holdout"].astype(int))
    # not compared: lifetimes' monetary_value_holdout averages rows, not purchase days (unlike
    # its own calibration columns); ours is checked against a direct daily count above.
    np.testing.assert_allclose(ch["duration_holdout"], ref["duration_holdout"])


# --- hand-computed cases ---------------------------------------------------------------------


def test_same_day_merge_units_and_inclusive_end():
    log = pd.DataFrame(
        {
            "user": ["x", "x", "x", "x", "y", "z", "z"],
            "when": [
                "2024-01-01 09:00",
                "2024-01-01 18:30",  # same day: merged, amounts summed
                "2024-01-08",
                "2024-01-22",  # = observation_end: counts
                "2024-01-10",
                "2024-01-05",
                "2024-01-23",  # after observation_end: left out
            ],
            "spend": [1.0, 2.0, 10.0, 0.0, 4.0, 7.0, 9.0],
        }
    )
    with pytest.warns(ClvkitWarning, match="1 of 7 rows"):
        rfm = rfm_summary(
            log,
            customer_id="user",
            date="when",
            amount="spend",
            time_unit="D",
            observation_end="2024-01-22",
        )
    expected = pd.DataFrame(
        {
            "frequency": np.array([2, 0, 0], dtype=np.int64),
            "recency": [21.0, 0.0, 0.0],
            "T": [21.0, 12.0, 17.0],
            "monetary_value": [5.0, 0.0, 0.0],  # (10 + 0) / 2; first day (3.0) excluded
        },
        index=pd.Index(["x", "y", "z"], name="customer_id"),
    )
    pd.testing.assert_frame_equal(rfm, expected, check_index_type=False)
    assert rfm.attrs["n_rows_after_observation_end"] == 1
    weeks = _quiet(
        rfm_summary,
        log,
        customer_id="user",
        date="when",
        time_unit="7D",
        observation_end="2024-01-22",
    )
    assert weeks.attrs["time_unit"] == "W"
    np.testing.assert_allclose(weeks["T"], expected["T"] / 7)
    assert "monetary_value" not in weeks
    # default observation_end is the last date of the log, so nothing is left out
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        full = rfm_summary(log, customer_id="user", date="when", time_unit="D")
    assert full.attrs["observation_end"] == "2024-01-23"
    assert full.loc["z", "frequency"] == 1 and full.loc["z", "recency"] == 18.0


def test_customers_first_seen_after_end_are_dropped():
    log = pd.DataFrame(
        {
            "customer_id": [1, 2, 2],
            "date": pd.to_datetime(["2024-01-01", "2024-02-01", "2024-02-05"]),
        }
    )
    rfm = _quiet(rfm_summary, log, observation_end="2024-01-15")
    assert list(rfm.index) == [1]
    assert rfm.attrs["n_rows_after_observation_end"] == 2


def test_input_flavours_give_the_same_table(cdnow):
    ref = _quiet(rfm_summary, cdnow, amount="amount", observation_end="1997-09-30")
    shuffled = cdnow.sample(frac=1.0, random_state=3)
    variants = {
        "shuffled": shuffled,
        "string dates": cdnow.assign(date=cdnow["date"].dt.strftime("%Y-%m-%d")),
        "time of day": cdnow.assign(date=cdnow["date"] + pd.Timedelta(hours=23, minutes=59)),
        "tz-aware": cdnow.assign(date=cdnow["date"].dt.tz_localize("America/New_York")),
        "second resolution": cdnow.assign(date=cdnow["date"].astype("datetime64[s]")),
        "nullable ints": cdnow.assign(customer_id=cdnow["customer_id"].astype("Int64")),
        "int amounts ok": cdnow.assign(amount=cdnow["amount"].astype("float32")),
    }
    for name, frame in variants.items():
        got = _quiet(rfm_summary, frame, amount="amount", observation_end="1997-09-30")
        assert np.array_equal(got.index.to_numpy(dtype=np.int64), ref.index.to_numpy()), name
        np.testing.assert_array_equal(got["frequency"], ref["frequency"], err_msg=name)
        for col in ("recency", "T"):
            np.testing.assert_allclose(got[col], ref[col], err_msg=name)
        np.testing.assert_allclose(got["monetary_value"], ref["monetary_value"], rtol=1e-6)
    # string customer ids: sorted lexicographically, same rows
    as_str = cdnow.assign(customer_id="c" + cdnow["customer_id"].astype(str).str.zfill(5))
    got = _quiet(rfm_summary, as_str, amount="amount", observation_end="1997-09-30")
    assert got.index[0] == "c00001" and got.index.is_monotonic_increasing
    np.testing.assert_array_equal(got["frequency"], ref["frequency"])


def test_sparse_integer_ids_and_packing_fallback():
    # ids far apart take the hash-factorize path; must agree with the compact path
    log = pd.DataFrame(
        {
            "customer_id": np.array([10**15, 5, 10**15, 5, -3], dtype=np.int64),
            "date": pd.to_datetime(
                ["2024-01-02", "2024-01-01", "2024-01-09", "2024-01-03", "2024-01-05"]
            ),
            "amount": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    rfm = rfm_summary(log, amount="amount", time_unit="D")
    assert list(rfm.index) == [-3, 5, 10**15]
    np.testing.assert_array_equal(rfm["frequency"], [0, 1, 1])
    np.testing.assert_allclose(rfm["monetary_value"], [0.0, 4.0, 3.0])
    # a date span so long that key and row number do not fit in 63 bits: argsort fallback
    wide = pd.DataFrame(
        {
            "customer_id": np.arange(6) % 3 * 10**6,
            "date": pd.to_datetime(["2200-01-01", "1700-01-01", "1900-06-01"] * 2)
            + pd.to_timedelta(np.arange(6), unit="D"),
            "amount": np.arange(6, dtype=float),
        }
    )
    log_w = _validate(wide.iloc[::-1], "customer_id", "date", "amount")
    cust, day, _, _ = _purchase_days(log_w, int(log_w.days.max()))
    order = np.lexsort((day, cust))
    np.testing.assert_array_equal(order, np.arange(6))
    rfm_w = rfm_summary(wide.iloc[::-1], amount="amount", time_unit="D")
    np.testing.assert_array_equal(rfm_w["frequency"], [1, 1, 1])
    np.testing.assert_allclose(rfm_w["monetary_value"], [3.0, 4.0, 5.0])


def test_holdout_hand_computed():
    log = pd.DataFrame(
        {
            "customer_id": [1, 1, 1, 1, 1, 2, 3],
            "date": pd.to_datetime(
                [
                    "2024-01-01",
                    "2024-01-10",  # = calibration_end: calibration
                    "2024-01-11",
                    "2024-01-11",  # same holdout day: merged
                    "2024-01-31",  # after observation_end
                    "2024-01-03",
                    "2024-01-20",  # first purchase in the holdout: not a calibration customer
                ]
            ),
            "amount": [1.0, 2.0, 3.0, 4.0, 100.0, 5.0, 6.0],
        }
    )
    with pytest.warns(ClvkitWarning, match="1 of 7 rows"):
        ch = calibration_holdout(
            log,
            calibration_end="2024-01-10",
            observation_end=pd.Timestamp("2024-01-24"),
            amount="amount",
            time_unit="D",
        )
    assert list(ch.index) == [1, 2]
    np.testing.assert_array_equal(ch["frequency"], [1, 0])
    np.testing.assert_allclose(ch["T"], [9.0, 7.0])
    np.testing.assert_array_equal(ch["frequency_holdout"], [1, 0])
    np.testing.assert_allclose(ch["monetary_value_holdout"], [7.0, 0.0])
    np.testing.assert_allclose(ch["duration_holdout"], [14.0, 14.0])
    assert list(ch.columns) == [
        "frequency",
        "recency",
        "T",
        "monetary_value",
        "frequency_holdout",
        "monetary_value_holdout",
        "duration_holdout",
    ]
    no_amount = calibration_holdout(
        log.iloc[:4], calibration_end="2024-01-10", observation_end="2024-01-24"
    )
    assert "monetary_value_holdout" not in no_amount
    np.testing.assert_allclose(no_amount["duration_holdout"], 2.0)


def test_caller_frame_is_not_modified(cdnow):
    frames = {
        "dates": cdnow.assign(date=cdnow["date"].dt.strftime("%Y-%m-%d")).iloc[::-1],
        "tz": cdnow.assign(date=cdnow["date"].dt.tz_localize("UTC")),
        "plain": cdnow,
    }
    for frame in frames.values():
        before = copy.deepcopy(frame)
        _quiet(rfm_summary, frame, amount="amount", observation_end="1997-09-30")
        calibration_holdout(
            frame, calibration_end="1997-09-30", observation_end="1998-06-30", amount="amount"
        )
        pd.testing.assert_frame_equal(frame, before)
        assert frame.attrs == before.attrs


# --- validation -------------------------------------------------------------------------------

GOOD = pd.DataFrame(
    {
        "customer_id": [1, 1, 2, 3],
        "date": ["2024-01-01", "2024-01-05", "2024-01-02", "2024-01-03"],
        "amount": [1.0, 2.0, 3.0, 4.0],
    }
)


@pytest.mark.parametrize(
    "change, patterns",
    [
        (lambda d: d.drop(columns="date"), ["date=", "columns are"]),
        (lambda d: d.drop(columns="amount"), ["amount="]),
        (lambda d: d.iloc[:0], ["empty"]),
        (
            lambda d: d.assign(customer_id=[1, None, 2, None]),
            ["'customer_id'", "missing", "2 of 4"],
        ),
        (
            lambda d: d.assign(date=["2024-01-01", "yesterday", "2024-01-02", "x"]),
            ["'date'", "not a parseable date", "2 of 4", "yesterday"],
        ),
        (
            lambda d: d.assign(date=[None, "2024-01-05", "2024-01-02", "2024-01-03"]),
            ["'date'", "missing", "1 of 4"],
        ),
        (
            lambda d: d.assign(date=[20240101, 20240105, 20240102, 20240103]),
            ["'date'", "numbers", "format='%Y%m%d'"],
        ),
        (lambda d: d.assign(amount=["1", "two", "3", "4"]), ["'amount'", "not numeric", "two"]),
        (
            lambda d: d.assign(amount=[1.0, -2.0, -3.0, 4.0]),
            ["'amount'", "negative", "2 of 4", "-2.0"],
        ),
        (lambda d: d.assign(amount=[1.0, np.nan, 3.0, 4.0]), ["'amount'", "missing", "1 of 4"]),
        (lambda d: d.assign(amount=[1.0, np.inf, 3.0, 4.0]), ["'amount'", "infinite"]),
        (lambda d: d.assign(amount=[True, False, True, True]), ["'amount'", "not numeric"]),
    ],
)
def test_bad_logs_raise_clvkit_error(change, patterns):
    bad = change(GOOD.copy())
    for call in (
        lambda: rfm_summary(bad, amount="amount"),
        lambda: calibration_holdout(
            bad, calibration_end="2024-01-02", observation_end="2024-01-05", amount="amount"
        ),
    ):
        with pytest.raises(ClvkitError) as info:
            call()
        msg = str(info.value)
        for pattern in patterns:
            assert pattern in msg, (pattern, msg)
        assert "Suggestion" in msg


@pytest.mark.parametrize(
    "call, patterns",
    [
        (
            lambda: rfm_summary(GOOD, observation_end="2023-12-31"),
            ["'observation_end'", "before the first purchase", "in 4 rows", "Suggestion"],
        ),
        (lambda: rfm_summary(GOOD, observation_end="not a date"), ["'observation_end'"]),
        (lambda: rfm_summary(GOOD, time_unit="m"), ["'time_unit'", "minutes"]),
        (lambda: rfm_summary(GOOD, time_unit=7), ["'time_unit'"]),
        (lambda: rfm_summary(GOOD, time_unit="-1D"), ["'time_unit'"]),
        (lambda: rfm_summary(GOOD.values), ["'transactions'", "DataFrame"]),
        (lambda: rfm_summary(GOOD, customer_id="date"), ["different columns"]),
        (lambda: rfm_summary(GOOD, customer_id=["customer_id"]), ["'customer_id'"]),
        (
            lambda: calibration_holdout(
                GOOD, calibration_end="2024-01-05", observation_end="2024-01-05"
            ),
            ["'calibration_end'", "not before", "'observation_end'"],
        ),
        (
            lambda: calibration_holdout(
                GOOD, calibration_end="2024-01-09", observation_end="2024-01-05"
            ),
            ["'calibration_end'", "not before"],
        ),
        (
            lambda: calibration_holdout(
                GOOD, calibration_end="2023-01-01", observation_end="2024-01-05"
            ),
            ["'calibration_end'", "before the first purchase"],
        ),
        (
            lambda: calibration_holdout(GOOD, calibration_end=None, observation_end="2024-01-05"),
            ["'calibration_end'", "missing"],
        ),
    ],
)
def test_bad_arguments_raise_clvkit_error(call, patterns):
    with pytest.raises(ClvkitError) as info:
        call()
    for pattern in patterns:
        assert pattern in str(info.value), (pattern, str(info.value))


def test_zero_amounts_are_legal():
    rfm = rfm_summary(GOOD.assign(amount=0.0), amount="amount", time_unit="D")
    np.testing.assert_array_equal(rfm["monetary_value"], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(rfm["frequency"], [1, 0, 0])
