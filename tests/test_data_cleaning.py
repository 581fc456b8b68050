"""Cleaning options for messy logs (issue 14, items 1 and 6): returns, zero amounts, exact
duplicates, currencies, customers acquired after the calibration end; every case on the
in-memory route and the file route (Parquet and CSV through DuckDB), which must agree."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from clvkit.data import calibration_holdout, read_purchases, rfm_summary
from clvkit.data.cleaning import net_returns
from clvkit.errors import ClvkitError, ClvkitWarning

MESSY = pd.DataFrame(
    {
        "customer_id": ["a", "a", "a", "a", "a", "b", "b", "b", "c", "c"],
        "date": [
            "2024-01-01 10:00", "2024-01-05 12:00", "2024-01-05 12:00", "2024-01-06 09:00",
            "2024-01-10 08:00", "2024-01-02 10:00", "2024-01-03 11:00", "2024-01-08 10:00",
            "2024-01-04 09:00", "2024-01-04 15:00",
        ],
        "amount": [100.0, 50.0, 50.0, -30.0, 20.0, 40.0, 0.0, 60.0, 25.0, -25.0],
    }
)  # fmt: skip
KW = {"amount": "amount", "time_unit": "D", "observation_end": "2024-01-10"}


def sources(tmp_path: Path, log: pd.DataFrame) -> list[Any]:
    log.to_parquet(tmp_path / "log.parquet", index=False)
    log.to_csv(tmp_path / "log.csv", index=False)
    return [log, str(tmp_path / "log.parquet"), str(tmp_path / "log.csv")]


def run(call, source, **kw) -> tuple[str, Any, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result: tuple[str, Any] = ("ok", call(source, **kw))
        except ClvkitError as err:
            result = ("error", str(err))
    return (*result, [str(w.message) for w in caught if w.category is ClvkitWarning])


def same(tmp_path: Path, log: pd.DataFrame, call=rfm_summary, **kw) -> tuple[str, Any, list]:
    """The outcome of ``call`` on every route; they must be identical."""
    before = log.copy(deep=True)
    outs = [run(call, s, **kw) for s in sources(tmp_path, log)]
    pd.testing.assert_frame_equal(log, before)  # the caller's frame is not modified
    kind, want, seen = outs[0]
    for got in outs[1:]:
        assert got[0] == kind and got[2] == seen, (got, outs[0])
        if kind == "ok":
            pd.testing.assert_frame_equal(got[1], want, check_exact=True)
            assert got[1].attrs == want.attrs
        else:
            assert got[1] == want
    return kind, want, seen


def counts(**nonzero: int) -> dict[str, int]:
    out = {
        "rows": 10, "duplicates": 1, "duplicates_dropped": 0, "returns": 2, "returns_dropped": 0,
        "returns_netted": 0, "purchases_netted_out": 0, "zero_amounts": 1,
        "zero_amounts_dropped": 0,
    }  # fmt: skip
    out.update(nonzero)
    return out


def test_returns_are_an_error_by_default_with_the_options_suggested(tmp_path):
    kind, msg, _ = same(tmp_path, MESSY, **KW)
    assert kind == "error"
    assert "column 'amount' is negative in 2 of 10 rows" in msg
    assert "returns='drop'" in msg and "returns='net'" in msg


def test_drop_returns(tmp_path):
    kind, rfm, seen = same(tmp_path, MESSY, returns="drop", **KW)
    assert kind == "ok"
    # a: days 01-01 (100), 01-05 (50 + 50, the duplicate kept), 01-10 (20)
    assert rfm.loc["a"].tolist() == [2, 9.0, 9.0, 60.0]
    assert rfm.loc["b"].tolist() == [2, 6.0, 8.0, 30.0]  # the zero-amount day is a purchase
    assert rfm.loc["c"].tolist() == [0, 0.0, 6.0, 0.0]
    assert rfm.attrs["cleaning"] == counts(returns_dropped=2)
    assert rfm.attrs["currency"] is None
    # times of day, so the duplicate kept is worth a warning
    assert len(seen) == 1 and "1 of 10 rows are exact duplicates" in seen[0]
    assert "'customer_id': 'a', 'date': '2024-01-05 12:00:00', 'amount': 50.0" in seen[0]


def test_net_returns_drop_duplicates_and_zero_amounts(tmp_path):
    kind, rfm, seen = same(
        tmp_path, MESSY, returns="net", duplicates="drop", zero_amounts="drop", **KW
    )
    assert kind == "ok" and seen == []
    # a: the 30 return on 01-06 nets against the latest purchase before it, 50 on 01-05 -> 20
    assert rfm.loc["a"].tolist() == [2, 9.0, 9.0, 20.0]
    assert rfm.loc["b"].tolist() == [1, 6.0, 8.0, 60.0]  # the zero-amount day is dropped
    assert "c" not in rfm.index  # its only purchase was returned the same day
    assert rfm.attrs["cleaning"] == counts(
        duplicates_dropped=1, returns_netted=2, purchases_netted_out=1, zero_amounts_dropped=1
    )


def test_a_return_spans_earlier_purchases_latest_first(tmp_path):
    log = pd.DataFrame(
        {
            "customer_id": [7, 7, 7, 7],
            "date": ["2024-01-01", "2024-01-02", "2024-01-03", "2024-01-09"],
            "amount": [30.0, 30.0, -45.0, 12.5],
        }
    )
    kind, rfm, _ = same(tmp_path, log, returns="net", amount="amount", time_unit="D")
    assert kind == "ok"
    # 45 = 30 (01-02, netted out) + 15 of 01-01's 30; then 01-09 is a repeat purchase of 12.5
    assert rfm.loc[7].tolist() == [1, 8.0, 8.0, 12.5]
    assert rfm.attrs["cleaning"]["purchases_netted_out"] == 1
    read = read_purchases(log, amount="amount", returns="net")
    assert read["amount"].tolist() == [15.0, 12.5]


def test_a_return_larger_than_the_purchases_before_it_names_the_customer(tmp_path):
    log = pd.concat(
        [
            MESSY,
            pd.DataFrame(
                {
                    "customer_id": ["d", "d"],
                    "date": ["2024-01-05 10:00", "2024-01-04 10:00"],
                    "amount": [10.0, -20.0],
                }
            ),
        ],
        ignore_index=True,
    )
    kind, msg, _ = same(tmp_path, log, returns="net", **KW)
    assert kind == "error"
    assert "for 1 customers" in msg and "'customer_id': 'd'" in msg
    assert "'date': '2024-01-04 10:00:00', 'amount': -20.0, 'excess': 20.0" in msg
    assert "Suggestion: " in msg and "returns='drop'" in msg


def test_net_returns_rule_on_arrays():
    # customer 0: purchases 10 (t=1), 5 (t=2); a return of 8 at t=3 takes 5, then 3 of 10
    keep, amount, n_ret, n_out = net_returns(
        np.array([0, 0, 0, 1, 1]),
        np.array([1, 2, 3, 1, 5]),
        np.array([0, 0, 0, 0, 0]),
        np.array([10.0, 5.0, -8.0, 4.0, -4.0]),
        lambda i: {"row": i},
        "amount",
    )
    assert keep.tolist() == [True, False, False, False, False]
    assert amount[0] == 7.0 and (n_ret, n_out) == (2, 2)
    # cents that do not add up exactly in binary: 30 - 10.1 - 19.9 is netted out, not 3.6e-15
    keep, amount, _, n_out = net_returns(
        np.zeros(3, dtype=np.int64), np.arange(3), np.zeros(3, dtype=np.int64),
        np.array([30.0, -10.1, -19.9]), lambda i: {}, "amount",
    )  # fmt: skip
    assert keep.tolist() == [False, False, False] and n_out == 1


def test_zero_amounts_are_counted_either_way(tmp_path):
    log = MESSY[MESSY["amount"] >= 0]
    kind, rfm, _ = same(tmp_path, log, **KW)
    assert kind == "ok" and rfm.attrs["cleaning"]["zero_amounts"] == 1
    assert rfm.loc["b", "monetary_value"] == 30.0
    kind, rfm, _ = same(tmp_path, log, zero_amounts="drop", **KW)
    assert kind == "ok" and rfm.attrs["cleaning"]["zero_amounts_dropped"] == 1
    assert rfm.loc["b", "monetary_value"] == 60.0


def test_duplicates_in_a_log_of_dates_only_are_counted_without_a_warning(tmp_path):
    log = pd.DataFrame(
        {"customer_id": [1, 1, 1], "date": ["2024-01-01", "2024-01-01", "2024-01-03"],
         "amount": [5.0, 5.0, 7.0]}
    )  # fmt: skip
    kind, rfm, seen = same(tmp_path, log, amount="amount", time_unit="D")
    assert seen == [] and rfm.attrs["cleaning"]["duplicates"] == 1
    assert rfm.loc[1, "monetary_value"] == 7.0
    kind, rfm, seen = same(tmp_path, log, amount="amount", time_unit="D", duplicates="drop")
    assert kind == "ok" and seen == [] and rfm.attrs["cleaning"]["duplicates_dropped"] == 1


def test_one_currency_is_recorded(tmp_path):
    log = MESSY.assign(currency="EUR")
    kind, rfm, _ = same(tmp_path, log, returns="drop", **KW)
    assert kind == "ok" and rfm.attrs["currency"] == "EUR"


def test_mixed_currencies_are_refused_unless_converted(tmp_path):
    log = MESSY.assign(currency=["EUR"] * 6 + ["USD"] * 4, rate=[1.0] * 6 + [0.5] * 4)
    kind, msg, _ = same(tmp_path, log, returns="drop", **KW)
    assert kind == "error"
    assert "column 'currency' holds 2 currencies (EUR: 6 rows, USD: 4 rows)" in msg
    assert "fx_rate=" in msg and "Suggestion:" in msg
    kind, rfm, _ = same(
        tmp_path, log, returns="drop", fx_rate="rate", reporting_currency="EUR", **KW
    )
    assert kind == "ok" and rfm.attrs["currency"] == "EUR"
    # b's 01-08 purchase of 60 USD is 30 EUR; its 01-03 zero stays a purchase
    assert rfm.loc["b", "monetary_value"] == 15.0
    kind, msg, _ = same(tmp_path, log, returns="drop", fx_rate="rate", **KW)
    assert kind == "error" and "reporting_currency" in msg and "Suggestion:" in msg
    kind, msg, _ = same(
        tmp_path, log.assign(rate=[1.0] * 9 + [-1.0]), returns="drop", fx_rate="rate",
        reporting_currency="EUR", **KW,
    )  # fmt: skip
    assert kind == "error" and "column 'rate' is not a positive finite rate in 1 of 10" in msg


def test_bad_cleaning_arguments(tmp_path):
    for kw, words in (
        ({"returns": "keep"}, "argument 'returns'"),
        ({"duplicates": "yes"}, "argument 'duplicates'"),
        ({"zero_amounts": None}, "argument 'zero_amounts'"),
        ({"currency": "ccy"}, "argument 'currency'"),
    ):
        kind, msg, _ = same(tmp_path, MESSY, **kw, **KW)
        assert kind == "error" and words in msg and "Suggestion:" in msg, msg


def test_customers_acquired_after_the_calibration_end_are_counted(tmp_path):
    kw = {"calibration_end": "2024-01-03", "observation_end": "2024-01-10", "time_unit": "D"}
    kind, ch, seen = same(tmp_path, MESSY, call=calibration_holdout, **kw)
    assert kind == "ok" and ch.index.tolist() == ["a", "b"]
    assert ch.attrs["late_customers"] == 1 and ch.attrs["late_customers_example"] == "c"
    assert seen == [
        "1 customer first purchased after calibration_end 2024-01-03 (e.g. id 'c') is not in "
        "the calibration table; value them with rfm_summary(..., observation_end='2024-01-10'). "
        "The count is in attrs['late_customers']."
    ]
    kind, ch, _ = same(tmp_path, MESSY, call=calibration_holdout, **{**kw, "calibration_end":
                       "2024-01-05"})  # fmt: skip
    assert ch.attrs["late_customers"] == 0 and ch.attrs["late_customers_example"] is None


def test_read_purchases_cleans_as_the_summary_does(tmp_path):
    opts = {"amount": "amount", "returns": "net", "duplicates": "drop"}
    frames = [read_purchases(s, **opts) for s in sources(tmp_path, MESSY)]
    for frame in frames[1:]:
        pd.testing.assert_frame_equal(frame, frames[0], check_exact=True)
        assert frame.attrs == frames[0].attrs
    assert frames[0]["amount"].tolist() == [100.0, 20.0, 20.0, 40.0, 0.0, 60.0]
    direct = rfm_summary(MESSY, **opts, time_unit="D", observation_end="2024-01-10")
    via = rfm_summary(frames[0], amount="amount", time_unit="D", observation_end="2024-01-10")
    pd.testing.assert_frame_equal(via, direct, check_exact=True)


def test_split_log_cleans_once_and_counts_late_customers(tmp_path):
    from clvkit.evaluation.split import split_log

    kw = {"calibration_end": "2024-01-03", "observation_end": "2024-01-10", "time_unit": "D"}
    opts = {"amount": "amount", "returns": "drop", "duplicates": "drop"}
    splits = []
    for source in sources(tmp_path, MESSY.assign(currency="EUR")):
        with pytest.warns(ClvkitWarning, match="1 customer first purchased after"):
            splits.append(split_log(source, **kw, **opts))
    for sp in splits[1:]:
        pd.testing.assert_frame_equal(sp.rfm, splits[0].rfm, check_exact=True)
        assert sp.rfm.attrs == splits[0].rfm.attrs
        np.testing.assert_array_equal(sp.repeat_time, splits[0].repeat_time)
    rfm = splits[0].rfm
    assert rfm.attrs["late_customers"] == 1 and rfm.attrs["late_customers_example"] == "c"
    assert rfm.attrs["currency"] == "EUR"
    assert rfm.attrs["cleaning"] == counts(duplicates_dropped=1, returns_dropped=2)
    # a: 01-01 in calibration; holdout days 01-05 (50, its duplicate dropped) and 01-10 (20)
    assert rfm.loc["a", "frequency_holdout"] == 2
    assert rfm.loc["a", "monetary_value_holdout"] == 35.0
    assert splits[0].repeat_time.tolist() == [4.0, 9.0, 2.0, 7.0]  # days since 01-01


def test_duplicate_count_equals_pandas_on_random_logs():
    rng = np.random.default_rng(5)
    n = 20_000
    log = pd.DataFrame(
        {
            "customer_id": rng.integers(0, 500, n),
            "date": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 40, n), unit="h"),
            "amount": rng.integers(0, 3, n).astype(float),
        }
    )
    want = int(log.duplicated().sum())
    assert want > 1000  # plenty of duplicates, and of same customer-and-time pairs that differ
    rfm = rfm_summary(log, amount="amount", duplicates="drop", time_unit="D")
    assert rfm.attrs["cleaning"]["duplicates"] == want
    kept = rfm_summary(log.drop_duplicates(), amount="amount", time_unit="D")
    pd.testing.assert_frame_equal(rfm, kept, check_exact=True)
    assert kept.attrs["cleaning"]["rows"] == n - want


def test_amount_options_need_an_amount(tmp_path):
    log = MESSY.drop(columns="amount")
    for kw in ({"returns": "net"}, {"zero_amounts": "drop"}, {"fx_rate": "rate"}):
        kind, msg, _ = same(tmp_path, log, time_unit="D", **kw)
        assert kind == "error" and "no amount column is given" in msg and "Suggestion:" in msg
    kind, rfm, seen = same(tmp_path, log, time_unit="D", duplicates="drop")
    assert kind == "ok" and seen == [] and rfm.attrs["cleaning"]["duplicates_dropped"] == 1
    assert rfm.loc["a", "frequency"] == 3  # days 01-01, 01-05, 01-06, 01-10


def _net_reference(cust, time, day, amount):
    """The netting rule written plainly (quadratic): for each return in time order, the
    customer's purchases on or before its day, latest first."""
    amount = amount.astype(float).copy()
    keep = np.ones(amount.size, dtype=bool)
    order = sorted(range(amount.size), key=lambda j: (cust[j], time[j], j))
    for i in order:
        if amount[i] >= 0:
            continue
        left, keep[i] = -amount[i], False
        targets = [j for j in order if cust[j] == cust[i] and day[j] <= day[i] and j != i]
        for j in reversed(targets):
            if left <= 0:
                break
            if not keep[j] or amount[j] <= 0:
                continue
            if amount[j] - left > 1e-9 * abs(amount[j]):
                amount[j] -= left
                left = 0.0
            else:
                left -= amount[j]
                amount[j], keep[j] = 0.0, False
        if left > 1e-9 * 1e9:  # not expected in these logs
            raise AssertionError("excess")
    return keep, amount


def test_net_returns_follows_the_plain_rule_on_random_logs():
    rng = np.random.default_rng(11)
    for _ in range(30):
        n = 300
        cust = rng.integers(0, 12, n)
        time = rng.integers(0, 40, n) * 6  # hours: several rows a day, ties in time
        day = time // 24
        amount = rng.integers(1, 50, n).astype(float)
        amount[rng.random(n) < 0.15] *= -0.2  # small returns: always covered by the first row
        first = np.array([np.flatnonzero(cust == c)[np.argmin(time[cust == c])] for c in cust])
        amount[first] = 1000.0  # each customer's first row is a large purchase
        keep, netted, *_ = net_returns(cust, time, day, amount, lambda i: {}, "amount")
        want_keep, want = _net_reference(cust, time, day, amount)
        np.testing.assert_array_equal(keep, want_keep)
        np.testing.assert_array_equal(netted[keep], want[keep])


def test_the_default_observation_end_is_the_last_day_as_read(tmp_path):
    # the return on 01-12 is dropped, but the log was observed until then
    log = pd.concat(
        [MESSY, pd.DataFrame({"customer_id": ["b"], "date": ["2024-01-12"], "amount": [-5.0]})],
        ignore_index=True,
    )
    kind, rfm, _ = same(tmp_path, log, amount="amount", time_unit="D", returns="drop")
    assert kind == "ok" and rfm.attrs["observation_end"] == "2024-01-12"
    assert rfm.loc["a", "T"] == 11.0
