"""One input, one answer: the in-memory route, the Parquet route and the CSV route agree.

The property test feeds one random purchase log to every route in ``ROUTES`` and asserts
identical tables (values, dtypes, index, attrs) and identical warnings, or the same ClvkitError
message (the CLI's one line on stderr, exit code 2), under two process time zones (``TZ=Asia/Tokyo`` and ``TZ=America/New_York``, each in a
subprocess, after checking that DuckDB's default session zone follows ``TZ``). The routes: a
DataFrame, a Parquet path, a CSV path, ``read_purchases`` of each then the DataFrame route, and
``clvkit summarize`` on each file.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from clvkit.cli import main as cli_main
from clvkit.data.summary import calibration_holdout, read_purchases, rfm_summary
from clvkit.errors import ClvkitError, ClvkitWarning


# ---- routes -----------------------------------------------------------------------------------
def write_parquet(log: pd.DataFrame, path: Path) -> None:
    """Parquet as pyarrow writes it; a float amount keeps NaN as NaN (not null), as Spark does."""
    table = pa.Table.from_pandas(log, preserve_index=False)
    if "amount" in log and log["amount"].dtype == np.float64:
        i = table.schema.get_field_index("amount")
        table = table.set_column(
            i, "amount", pa.array(log["amount"].to_numpy(), type=pa.float64(), from_pandas=False)
        )
    pq.write_table(table, path)


def write_log(log: pd.DataFrame, path: Path) -> str:
    """Write ``log`` as CSV or Parquet by the suffix of ``path``; returns the path."""
    if path.suffix == ".csv":
        log.to_csv(path, index=False)
    else:
        write_parquet(log, path)
    return str(path)


def _summarize(source: Any, kw: dict[str, Any]) -> pd.DataFrame:
    kw = dict(kw)
    if "calibration_end" in kw:
        return calibration_holdout(source, **kw)
    return rfm_summary(source, **kw)


def _memory(log: pd.DataFrame, folder: Path, kw: dict[str, Any]) -> pd.DataFrame:
    return _summarize(log, kw)


def _parquet(log: pd.DataFrame, folder: Path, kw: dict[str, Any]) -> pd.DataFrame:
    return _summarize(write_log(log, folder / "log.parquet"), kw)


def _csv(log: pd.DataFrame, folder: Path, kw: dict[str, Any]) -> pd.DataFrame:
    return _summarize(write_log(log, folder / "log.csv"), kw)


def _read_then_memory(fmt: str) -> Callable[[pd.DataFrame, Path, dict[str, Any]], pd.DataFrame]:
    """read_purchases(path) then the in-memory summary: must equal the file route."""

    def route(log: pd.DataFrame, folder: Path, kw: dict[str, Any]) -> pd.DataFrame:
        path = write_log(log, folder / f"read.{fmt}")
        cols = {k: kw[k] for k in ("customer_id", "date", "amount", "tz") if k in kw}
        frame = read_purchases(path, **cols)
        return _summarize(frame, {k: v for k, v in kw.items() if k != "tz"})

    return route


def _cli(fmt: str) -> Callable[[pd.DataFrame, Path, dict[str, Any]], pd.DataFrame]:
    """``clvkit summarize FILE --out table.parquet``, run in-process; its one-line error and its
    warnings (printed on stderr) are turned back into a ClvkitError and ClvkitWarnings."""

    def route(log: pd.DataFrame, folder: Path, kw: dict[str, Any]) -> pd.DataFrame:
        path = write_log(log, folder / f"cli.{fmt}")
        out = folder / "table.parquet"
        argv = ["summarize", path, "--out", str(out), "--quiet"]
        argv += ["--customer-id", kw.get("customer_id", "customer_id")]
        argv += ["--date", kw.get("date", "date")]
        flags = ("amount", "time_unit", "tz", "observation_end", "calibration_end")
        for key in flags:
            if kw.get(key) is not None:
                argv += ["--" + key.replace("_", "-"), str(kw[key])]
        stderr = io.StringIO()
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            code = cli_main(argv)
        lines = stderr.getvalue().splitlines()
        for line in lines:
            if line.startswith("clvkit: warning: ClvkitWarning: "):
                warnings.warn(line.split(": ", 3)[3], ClvkitWarning, stacklevel=2)
        if code != 0:
            errors = [line for line in lines if line.startswith("clvkit: error: ")]
            assert code == 2 and len(errors) == 1, (code, lines)
            raise ClvkitError(errors[0].removeprefix("clvkit: error: "))
        return pd.read_parquet(out)

    return route


#: (name, route): route(log, empty folder, keyword arguments) -> summary table
ROUTES: list[tuple[str, Callable[[pd.DataFrame, Path, dict[str, Any]], pd.DataFrame]]] = [
    ("memory", _memory),
    ("parquet", _parquet),
    ("csv", _csv),
    ("read_purchases(parquet)", _read_then_memory("parquet")),
    ("read_purchases(csv)", _read_then_memory("csv")),
    ("cli(parquet)", _cli("parquet")),
    ("cli(csv)", _cli("csv")),
]


def outcome(route: Callable, log: pd.DataFrame, kw: dict[str, Any]) -> tuple[str, Any, list[str]]:
    """('ok', table, warnings) or ('error', message, warnings) of one route."""
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result: tuple[str, Any] = ("ok", route(log, Path(tmp), kw))
        except ClvkitError as err:
            result = ("error", str(err))
    seen = [str(w.message) for w in caught if issubclass(w.category, ClvkitWarning)]
    others = [w for w in caught if not issubclass(w.category, ClvkitWarning)]
    assert not others, [str(w.message) for w in others]  # no numpy/pandas warning leaks
    return (*result, seen)


def assert_same_outcome(log: pd.DataFrame, kw: dict[str, Any]) -> None:
    want = outcome(ROUTES[0][1], log, kw)
    for name, route in ROUTES[1:]:
        got = outcome(route, log, kw)
        assert got[0] == want[0], (name, got[1], want[1])
        if want[0] == "error":
            assert got[1] == want[1], name
        else:
            pd.testing.assert_frame_equal(got[1], want[1], check_exact=True, obj=name)
            assert got[1].attrs == want[1].attrs, name
        assert got[2] == want[2], (name, got[2], want[2])


# ---- one test per bad case, on every route it applies to --------------------------------------
def _both(tmp_path: Path, log: pd.DataFrame, fmt: str = "parquet") -> str:
    return write_log(log, tmp_path / f"log.{fmt}")


def _same_error(sources: list[Any], call: Callable = rfm_summary, **kw: Any) -> str:
    messages = []
    for source in sources:
        with pytest.raises(ClvkitError) as err:
            call(source, **kw)
        messages.append(str(err.value))
    assert len(set(messages)) == 1, messages
    return messages[0]


def _same_table(sources: list[Any], call: Callable = rfm_summary, **kw: Any) -> pd.DataFrame:
    tables = [call(source, **kw) for source in sources]
    for table in tables[1:]:
        pd.testing.assert_frame_equal(table, tables[0], check_exact=True)
        assert table.attrs == tables[0].attrs
    return tables[0]


NY = pd.DataFrame(
    {
        "customer_id": [1, 1, 2],
        # 21:30 in New York is 01:30 or 02:30 UTC the next day
        "date": pd.to_datetime(
            ["2024-01-01 21:30", "2024-01-05 12:00", "2024-01-10 21:30"]
        ).tz_localize("America/New_York"),
    }
)


def test_zoned_dates_are_converted_to_utc_or_tz_on_every_route(tmp_path):
    sources = [NY, _both(tmp_path, NY), _both(tmp_path, NY, "csv")]
    utc = _same_table(sources, time_unit="D")
    # UTC days: 01-02, 01-05, 01-11 (main kept the local wall clock in memory: T = 9 and 5)
    assert utc["T"].tolist() == [9.0, 0.0] and utc["recency"].tolist() == [3.0, 0.0]
    assert utc.attrs["observation_end"] == "2024-01-11"
    local = _same_table(sources, time_unit="D", tz="America/New_York")
    assert local["T"].tolist() == [9.0, 0.0] and local["recency"].tolist() == [4.0, 0.0]
    assert local.attrs["observation_end"] == "2024-01-10"


BERLIN = pd.DataFrame(
    {
        "customer_id": ["007", "007", "007", "a1"],
        # offsets change with daylight saving on 2024-03-31
        "date": [
            "2024-03-30 23:30:00+01:00",
            "2024-03-31 00:30:00+01:00",
            "2024-04-01 00:30:00+02:00",
            "2024-04-02 12:00:00+02:00",
        ],
        "amount": [1.0, 2.0, 4.0, 8.0],
    }
)


def test_berlin_csv_with_changing_offsets_reads_on_every_route(tmp_path):
    csv = _both(tmp_path, BERLIN, "csv")
    sources = [BERLIN, csv, _both(tmp_path, BERLIN)]
    utc = _same_table(sources, time_unit="D", amount="amount")
    # UTC days: 03-30, 03-30, 03-31, 04-02: two purchase days for "007"
    assert utc.index.tolist() == ["007", "a1"]  # the zeros stay
    assert utc["frequency"].tolist() == [1, 0] and utc["monetary_value"].tolist() == [4.0, 0.0]
    assert utc["T"].tolist() == [3.0, 0.0]
    berlin = _same_table(sources, time_unit="D", amount="amount", tz="Europe/Berlin")
    # Berlin days: 03-30, 03-31, 04-01, 04-02: three purchase days
    assert berlin["frequency"].tolist() == [2, 0] and berlin["T"].tolist() == [3.0, 0.0]
    read = read_purchases(csv, amount="amount", tz="Europe/Berlin")
    assert read["date"].dt.strftime("%Y-%m-%d %H:%M").tolist() == [
        "2024-03-30 23:30", "2024-03-31 00:30", "2024-04-01 00:30", "2024-04-02 12:00"
    ]  # fmt: skip


def test_column_mixing_naive_and_zoned_values_follows_the_rule_per_value(tmp_path):
    log = pd.DataFrame(
        {
            "customer_id": [1, 1, 1],
            "date": ["2024-01-01", "2024-01-02T23:00:00-05:00", "2024-01-05 23:59:00"],
        }
    )
    objects = log.assign(  # the same values as Timestamp objects, naive and zoned
        date=pd.Series([pd.Timestamp(x) for x in log["date"]], dtype=object)
    )
    sources = [log, objects, _both(tmp_path, log), _both(tmp_path, log, "csv")]
    rfm = _same_table(sources, time_unit="D")
    # days 01-01 (naive), 01-03 (04:00 UTC), 01-05 (naive, time of day dropped)
    assert rfm["frequency"].tolist() == [2] and rfm["recency"].tolist() == [4.0]
    # "2024-01-01" ends in "-01" but is a date, not an offset
    assert rfm.attrs["observation_end"] == "2024-01-05"


def test_unknown_time_zone_is_one_error(tmp_path):
    msg = _same_error([NY, _both(tmp_path, NY), _both(tmp_path, NY, "csv")], tz="Mars/Olympus")
    assert msg.startswith("argument 'tz' is 'Mars/Olympus', which is not a time zone name.")
    with pytest.raises(ClvkitError, match="argument 'tz'"):
        read_purchases(_both(tmp_path, NY), tz=3)


def test_nan_amount_in_parquet_is_missing(tmp_path):
    log = pd.DataFrame({"customer_id": [1, 2, 3], "date": ["2024-01-01"] * 3,
                        "amount": [1.0, np.nan, 2.0]})  # fmt: skip
    path = _both(tmp_path, log)
    assert pq.read_table(path).column("amount").null_count == 0  # a real NaN, not a null
    msg = _same_error([log, path], amount="amount")
    assert msg.startswith("column 'amount' is missing in 1 of 3 rows; for example: {'row': 1, ")


def test_nan_customer_id_in_float_parquet_is_missing(tmp_path):
    log = pd.DataFrame({"customer_id": [1.0, np.nan, np.nan], "date": ["2024-01-01"] * 3})
    path = str(tmp_path / "ids.parquet")
    pq.write_table(
        pa.table({"customer_id": pa.array(log["customer_id"].to_numpy(), from_pandas=False),
                  "date": pa.array(log["date"])}), path,
    )  # fmt: skip
    msg = _same_error([log, path])
    assert msg.startswith("column 'customer_id' is missing in 2 of 3 rows")


@pytest.mark.parametrize(
    "text",
    [
        'customer_id,date\n"1,2024-01-01\n2,2024-01-05\n',
        'customer_id,date\n1,2024-01-01\n2,"2024-01-05\n',
    ],
)
def test_csv_with_unbalanced_quote_is_an_error(tmp_path, text):
    path = tmp_path / "quote.csv"
    path.write_text(text)
    with pytest.raises(ClvkitError, match=r"the file '.*quote\.csv' cannot be read"):
        rfm_summary(str(path))


def test_unreadable_files_are_one_error_naming_the_file(tmp_path, monkeypatch):
    ok = pd.DataFrame({"customer_id": [1, 2], "date": ["2024-01-01", "2024-01-02"]})
    latin = tmp_path / "latin.csv"
    latin.write_bytes("customer_id,date\nJosé,2024-01-01\n".encode("latin-1"))
    fake_gz = tmp_path / "fake.csv.gz"
    fake_gz.write_text("customer_id,date\n1,2024-01-01\n")
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all" * 10)
    whole = Path(_both(tmp_path, ok)).read_bytes()
    truncated = tmp_path / "truncated.parquet"
    truncated.write_bytes(whole[: len(whole) // 2])
    for path in (latin, fake_gz, garbage, truncated):
        with pytest.raises(ClvkitError) as err:
            rfm_summary(str(path))
        assert f"the file {str(path)!r} cannot be read" in str(err.value)
        assert "Suggestion:" in str(err.value)
        with pytest.raises(ClvkitError):
            read_purchases(str(path))
    with pytest.raises(ClvkitError, match="not utf-8 encoded"):
        rfm_summary(str(latin))
    locked = Path(_both(tmp_path, ok, "csv"))
    real_open = open

    def refusing_open(file, *args, **kwargs):  # chmod 000 does not stop root
        if os.fspath(file) == str(locked):
            raise PermissionError(13, "Permission denied", str(locked))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr("builtins.open", refusing_open)
    with pytest.raises(ClvkitError, match=r"the file '.*log\.csv' cannot be read \(Permission"):
        rfm_summary(str(locked))


def test_list_and_struct_ids_are_refused_on_both_routes(tmp_path):
    dates = ["2024-01-01", "2024-01-02"]
    for ids, kind in (([[1], [2]], "list"), ([{"a": 1}, {"a": 2}], "dict")):
        path = str(tmp_path / f"{kind}.parquet")
        pq.write_table(pa.table({"customer_id": pa.array(ids), "date": pa.array(dates)}), path)
        msg = _same_error([pd.DataFrame({"customer_id": ids, "date": dates}), path])
        assert msg.startswith(
            f"column 'customer_id' holds values that are not ids ({kind}: 2) in 2 of 2 rows"
        )


def test_bad_in_memory_ids_and_amounts_are_clvkit_errors():
    import decimal

    dates = ["2024-01-01", "2024-01-02"]
    with pytest.raises(ClvkitError, match=r"holds values that are not ids \(dict: 2\)"):
        rfm_summary(pd.DataFrame({"customer_id": [{"a": 1}, {"b": 2}], "date": dates}))
    sn = pd.DataFrame({"customer_id": [1, 2], "date": dates,
                       "amount": [decimal.Decimal("sNaN"), decimal.Decimal("2.5")]})  # fmt: skip
    with pytest.raises(ClvkitError, match=r"column 'amount' is missing in 1 of 2 rows"):
        rfm_summary(sn, amount="amount")
    for amounts in ([1 + 2j, 3 + 0j], pd.Series([1 + 2j, 3], dtype=object)):
        log = pd.DataFrame({"customer_id": [1, 2], "date": dates, "amount": amounts})
        with pytest.raises(ClvkitError, match=r"column 'amount' is not numeric in \d of 2 rows"):
            rfm_summary(log, amount="amount")


def test_mixed_kinds_of_ids_are_refused():
    log = pd.DataFrame({"customer_id": [1, 1.0, True, "1", 2], "date": ["2024-01-01"] * 5})
    with pytest.raises(ClvkitError) as err:
        rfm_summary(log)
    assert str(err.value).startswith(
        "column 'customer_id' holds values that are not ids (integer: 2, boolean: 1, float: 1, "
        "string: 1) in 1 of 5 rows; for example: {'row': 2, 'customer_id': True}"
    )
    no_bool = log.drop(index=2).reset_index(drop=True)
    with pytest.raises(ClvkitError) as err:
        rfm_summary(no_bool)
    assert str(err.value).startswith(
        "column 'customer_id' mixes kinds of ids (integer: 2, float: 1, string: 1), which would "
        "merge or split customers, in 2 of 4 rows; for example: {'row': 1, 'customer_id': 1.0}"
    )
    with pytest.raises(ClvkitError, match=r"not ids \(boolean: 2\)"):
        rfm_summary(pd.DataFrame({"customer_id": [True, False], "date": ["2024-01-01"] * 2}))
    cat = pd.DataFrame({"customer_id": pd.Categorical(["b", "a", "b"]), "date": ["2024-01-01"] * 3})
    assert rfm_summary(cat).index.tolist() == ["a", "b"]  # categorical strings are fine


def test_zero_padded_ids_keep_their_zeros_on_every_route(tmp_path):
    log = pd.DataFrame({"customer_id": ["007", "7", "010"],
                        "date": ["2024-01-01", "2024-01-02", "2024-01-03"]})  # fmt: skip
    csv = _both(tmp_path, log, "csv")
    rfm = _same_table([log, csv, _both(tmp_path, log)])
    assert rfm.index.tolist() == ["007", "010", "7"] and rfm.index.dtype == log["customer_id"].dtype
    assert read_purchases(csv)["customer_id"].tolist() == ["007", "7", "010"]
    ints = pd.DataFrame({"customer_id": [7, -3, 10], "date": log["date"]})
    rfm = _same_table([ints, _both(tmp_path, ints, "csv")])  # canonical integers: BIGINT
    assert rfm.index.tolist() == [-3, 7, 10] and rfm.index.dtype == np.int64


def test_sub_day_time_units_are_refused_on_every_route(tmp_path):
    path = _both(tmp_path, NY)
    for unit in ("h", "12h", pd.Timedelta(hours=23)):
        msg = _same_error([NY, path], time_unit=unit)
        assert msg.startswith(f"argument 'time_unit' is {unit!r} (")
        assert "shorter than a day" in msg and "time_unit='D'" in msg
        _same_error([NY, path], calibration_holdout, calibration_end="2024-01-05",
                    observation_end="2024-01-11", time_unit=unit)  # fmt: skip
    assert rfm_summary(path, time_unit="1.5D")["T"].iloc[0] == pytest.approx(6.0)


def test_amounts_that_overflow_are_refused_without_numpy_warnings(tmp_path):
    big = pd.DataFrame({"customer_id": ["a", "a", "a", "b"],
                        "date": ["2024-01-01", "2024-01-02", "2024-01-02", "2024-01-02"],
                        "amount": [1.0, 1e308, 1e308, 5.0]})  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        msg = _same_error([big, _both(tmp_path, big), _both(tmp_path, big, "csv")],
                          amount="amount")  # fmt: skip
        assert msg == (
            "column 'amount' sums to infinity (beyond the float64 range) for 1 customers; for "
            "example: {'customer_id': 'a'}. Suggestion: rescale the amounts (e.g. to thousands) "
            "before summarizing."
        )
        # the overflow on a holdout day
        _same_error([big, _both(tmp_path, big)], calibration_holdout, amount="amount",
                    calibration_end="2024-01-01", observation_end="2024-01-02")  # fmt: skip


def _gap_warnings(call: Callable, source: Any, **kw: Any) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call(source, **kw)
    return [str(w.message) for w in caught if issubclass(w.category, ClvkitWarning)]


def test_observation_end_long_after_the_data_warns_on_every_route(tmp_path):
    from clvkit.datasets import cdnow_transactions

    log = cdnow_transactions()  # 6,919 rows, last purchase 1998-06-30
    path = _both(tmp_path, log)
    for source in (log, path):
        got = _gap_warnings(rfm_summary, source, observation_end="1998-07-30")
        assert len(got) == 1 and got[0].startswith(
            "observation_end=1998-07-30 is 30 days after the last purchase in the log (1998-06-30)"
        )
        assert "T includes these 30 days (4.286 W)" in got[0]
        hold = _gap_warnings(calibration_holdout, source, calibration_end="1997-09-30",
                             observation_end="1999-06-30")  # fmt: skip
        assert len(hold) == 1 and "365 days after the last purchase" in hold[0]
        assert "duration_holdout counts 365 days" in hold[0]
        # the demo's own window ends on the last purchase: no warning
        assert _gap_warnings(calibration_holdout, source, calibration_end="1997-09-30",
                             observation_end="1998-06-30") == []  # fmt: skip
    # a small log whose quiet end is plausible at its own purchase rate does not warn
    small = pd.DataFrame({"customer_id": [1, 2], "date": ["2024-01-01", "2024-01-15"]})
    assert _gap_warnings(rfm_summary, small, observation_end="2024-01-29") == []


def test_gap_warning_uses_the_rate_at_the_end_of_the_log(tmp_path):
    # a cohort that thins out: 100 purchase days a day for 30 days, then one a day for 60 days.
    # The bar is P(no purchase day in the gap) < 0.1%: at the end's rate of one a day, 6 quiet
    # days (e^-6 = 0.25%) pass and 7 (e^-7 = 0.09%) warn; at the average rate of the whole log
    # (34 a day) even 1 quiet day would warn.
    start = pd.Timestamp("2024-01-01")
    busy = [(c, start + pd.Timedelta(days=d)) for d in range(30) for c in range(100)]
    thin = [(1000 + d, start + pd.Timedelta(days=30 + d)) for d in range(60)]
    log = pd.DataFrame(busy + thin, columns=["customer_id", "date"])
    last = log["date"].max()
    for source in (log, _both(tmp_path, log)):
        quiet = str((last + pd.Timedelta(days=6)).date())
        assert _gap_warnings(rfm_summary, source, observation_end=quiet) == []
        late = str((last + pd.Timedelta(days=7)).date())
        got = _gap_warnings(rfm_summary, source, observation_end=late)
        assert len(got) == 1
        assert "at the 1 purchase days per day of the log's last 28 days" in got[0]


def test_non_iso_text_dates_read_alike_on_both_routes(tmp_path):
    us = pd.DataFrame(
        {"customer_id": [1, 1, 2], "date": ["01/02/2024", "01/20/2024", "03/04/2024"]}
    )
    rfm = _same_table([us, _both(tmp_path, us, "csv")], time_unit="D")
    # the format pandas guesses from the first value (month first), on both routes
    assert rfm["recency"].tolist() == [18.0, 0.0] and rfm.attrs["observation_end"] == "2024-03-04"
    eu = us.assign(date=["01/02/2024", "20/01/2024", "03/04/2024"])
    msg = _same_error([eu, _both(tmp_path, eu, "csv")])
    assert msg.startswith("column 'date' is not a parseable date in 1 of 3 rows; for example: "
                          "{'row': 1, 'date': '20/01/2024'}")  # fmt: skip


def test_distributed_summaries_take_tz():
    dd = pytest.importorskip("dask.dataframe")
    from clvkit import distributed

    for tz in (None, "America/New_York"):
        got = distributed.rfm_summary(dd.from_pandas(NY, npartitions=2), time_unit="D", tz=tz)
        want = rfm_summary(NY, time_unit="D", tz=tz)
        pd.testing.assert_frame_equal(got.compute().sort_index(), want, check_exact=True)


def test_read_purchases_gives_the_file_route_answer(tmp_path):
    for fmt in ("csv", "parquet"):
        path = _both(tmp_path, BERLIN, fmt)
        for tz in (None, "Europe/Berlin"):
            frame = read_purchases(path, amount="amount", tz=tz)
            assert frame.dtypes.tolist() == [pd.StringDtype(na_value=np.nan),
                                              np.dtype("<M8[us]"), np.float64]  # fmt: skip
            direct = rfm_summary(path, amount="amount", tz=tz, time_unit="D")
            via = rfm_summary(frame, amount="amount", time_unit="D")
            pd.testing.assert_frame_equal(via, direct, check_exact=True)
            assert via.attrs == direct.attrs
    import clvkit

    assert clvkit.read_purchases is read_purchases  # exported at the top level
    before = BERLIN.copy(deep=True)
    frame = read_purchases(BERLIN, amount="amount")  # a DataFrame: validated, copied
    pd.testing.assert_frame_equal(BERLIN, before)
    assert frame["date"].dt.day.tolist() == [30, 30, 31, 2]


def test_backtest_accepts_a_path_and_tz(tmp_path):
    from clvkit.datasets import cdnow_transactions
    from clvkit.evaluation import backtest

    log = cdnow_transactions()
    post = {"r": 0.2426, "alpha": 4.4137, "a": 0.793, "b": 2.4262}
    kw = dict(calibration_end="1997-09-30", observation_end="1998-06-30",
              transactions_model=post, n_samples=200, random_seed=0)  # fmt: skip
    from_frame = backtest(log, **kw)
    from_path = backtest(_both(tmp_path, log), tz="UTC", **kw)
    pd.testing.assert_frame_equal(from_path.customers, from_frame.customers, check_exact=True)
    assert int(from_path.customers["actual"].sum()) == 1882
    with pytest.warns(ClvkitWarning, match="365 days after the last purchase"):
        backtest(log, **{**kw, "observation_end": "1999-06-30"})


# ---- random logs ------------------------------------------------------------------------------
START = pd.Timestamp("2024-03-05", tz="UTC")  # both DST changes (US 03-10, EU 03-31) inside
ZONES = ("Europe/Berlin", "America/New_York")


def _text(instant: pd.Timestamp, style: str) -> str:
    if style == "date":
        return instant.strftime("%Y-%m-%d")
    if style == "naive":
        return instant.strftime("%Y-%m-%d %H:%M:%S")
    if style == "Z":
        return instant.strftime("%Y-%m-%d %H:%M:%SZ")
    return instant.tz_convert(style).isoformat(sep=" ")


@st.composite
def cases(draw: st.DrawFn) -> tuple[pd.DataFrame, dict[str, Any]]:
    n_customers = draw(st.integers(1, 5))
    if draw(st.booleans()):
        pool = draw(st.lists(st.integers(-3, 10**6), min_size=n_customers, max_size=n_customers,
                             unique=True))  # fmt: skip
    else:  # zero-padded and lettered ids: never all canonical integers
        pool = draw(st.lists(st.from_regex(r"0[0-9]{1,3}|[a-z][0-9a-z]{0,3}", fullmatch=True),
                             min_size=n_customers, max_size=n_customers, unique=True))  # fmt: skip
    n = draw(st.integers(1, 12))
    ids = draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
    minutes = draw(st.lists(st.integers(0, 31 * 24 * 60), min_size=n, max_size=n))
    instants = [START + pd.Timedelta(minutes=m) for m in minutes]
    mode = draw(st.sampled_from(["text", "aware", "naive"]))
    if mode == "text":  # a column of strings, each naive or zoned on its own
        styles = draw(st.lists(st.sampled_from(["date", "naive", "Z", *ZONES]), min_size=n,
                               max_size=n))  # fmt: skip
        dates: Any = [_text(t, s) for t, s in zip(instants, styles, strict=True)]
    elif mode == "aware":
        dates = pd.DatetimeIndex(instants).tz_convert(draw(st.sampled_from(ZONES)))
    else:
        dates = pd.DatetimeIndex(instants).tz_localize(None)
    amounts = draw(st.lists(st.integers(0, 10**5), min_size=n, max_size=n))
    log = pd.DataFrame({"customer_id": ids, "date": dates, "amount": np.array(amounts) / 100})
    rows = draw(st.lists(st.integers(0, n - 1), min_size=n, max_size=n + 4))
    log = log.iloc[rows].reset_index(drop=True)  # duplicate rows, shuffled
    trouble = draw(st.sampled_from([None] * 6 + ["nan_amount", "no_id", "bad_date"]))
    if trouble:
        row = draw(st.integers(0, len(log) - 1))
        if trouble == "nan_amount":
            log.loc[row, "amount"] = np.nan
        elif trouble == "no_id":
            log["customer_id"] = log["customer_id"].astype(object)
            log.loc[row, "customer_id"] = None
        elif mode == "text":
            log.loc[row, "date"] = "not a date"
    kw: dict[str, Any] = {"amount": "amount", "time_unit": draw(st.sampled_from(["D", "W"]))}
    kw["tz"] = draw(st.sampled_from([None, "UTC", *ZONES, "Asia/Kolkata"]))
    end = draw(st.sampled_from([None, 10, 20, 31, 60]))
    if end is not None:
        kw["observation_end"] = str((START + pd.Timedelta(days=end)).date())
        if end <= 31 and draw(st.booleans()):
            kw["calibration_end"] = str((START + pd.Timedelta(days=end // 2)).date())
    return log, kw


@settings(max_examples=int(os.environ.get("CLVKIT_ROUTE_EXAMPLES", "25")), deadline=None,
          database=None, suppress_health_check=list(HealthCheck))  # fmt: skip
@given(case=cases())
def check_routes_agree(case: tuple[pd.DataFrame, dict[str, Any]]) -> None:
    log, kw = case
    before = log.copy(deep=True)
    assert_same_outcome(log, kw)
    pd.testing.assert_frame_equal(log, before)  # the caller's frame is never modified


def _duckdb_session_zone() -> str:
    import duckdb

    with duckdb.connect() as con:
        return con.execute("SELECT current_setting('TimeZone')").fetchone()[0]


@pytest.mark.slow
@pytest.mark.parametrize("process_tz", ["Asia/Tokyo", "America/New_York"])
def test_routes_agree_on_random_logs_under_process_tz(process_tz):
    env = {**os.environ, "TZ": process_tz}
    src = Path(__file__).resolve().parents[1] / "src"
    env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    run = subprocess.run(
        [sys.executable, __file__, process_tz],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    assert f"routes agree under TZ={process_tz}" in run.stdout


if __name__ == "__main__":
    expected = sys.argv[1]
    # without the fix the file route would follow this zone: the test means something only if
    # DuckDB's default session zone really is the process's TZ
    assert _duckdb_session_zone() == expected, (_duckdb_session_zone(), expected)
    check_routes_agree()
    print(f"routes agree under TZ={expected}")
