"""Out-of-core RFM summaries of purchase logs stored as CSV or Parquet files, with DuckDB.

:func:`clvkit.rfm_summary` and :func:`clvkit.calibration_holdout` come here when
``transactions`` is a path or a glob (``"logs/*.parquet"``) instead of a DataFrame.

Why DuckDB: the summary is a SQL group-by (by customer and day, then by customer), and DuckDB
runs it embedded in this process, streaming the files instead of loading them (Parquet column
pruning, no pandas copy of the log), on all cores, spilling to a temporary folder when the
hash tables outgrow memory; no server or cluster to run. The results are identical to the
in-memory path: same-day purchases merge with their amounts summed in file order, repeat and
holdout spend are summed day by day in date order (as numpy does), and recency, ``T`` and the
mean spend are computed from the integer day numbers in numpy.

Dates may be DATE or TIMESTAMP columns (time of day ignored; TIMESTAMPTZ taken in UTC) or
ISO 8601 strings; files are read in sorted path order.
"""

from __future__ import annotations

import datetime
import glob
import os
import shutil
import tempfile
from collections.abc import Hashable
from typing import Any

import numpy as np
import pandas as pd

from clvkit.errors import ClvkitError, bad_rows_error

__all__ = ["summarize_files"]

_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".csv.gz", ".tsv", ".txt")
_INT_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER")
_NUM_PREFIXES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "U", "FLOAT", "DOUBLE")
_NUM_PREFIXES += ("DECIMAL",)


def _files(path: str | os.PathLike) -> tuple[list[str], str]:
    """The files a path or glob names, sorted, and their reader (``parquet`` or ``csv``)."""
    pattern = os.fspath(path)
    files = sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern]
    files = [f for f in files if os.path.isfile(f)]
    if not files:
        raise ClvkitError(
            f"argument 'transactions' is the path {pattern!r}, which names no file. "
            "Suggestion: pass an existing .csv or .parquet file, a glob such as "
            "'logs/*.parquet', or a pandas DataFrame."
        )
    kinds = set()
    for f in files:
        low = f.lower()
        if low.endswith(_PARQUET):
            kinds.add("parquet")
        elif low.endswith(_CSV):
            kinds.add("csv")
        else:
            raise ClvkitError(
                f"argument 'transactions' names the file {f!r}, which is neither CSV nor "
                "Parquet. Suggestion: use files ending in .csv, .csv.gz or .parquet."
            )
    if len(kinds) > 1:
        raise ClvkitError(
            f"argument 'transactions' ({pattern!r}) mixes CSV and Parquet files. "
            "Suggestion: convert them to one format or summarize them separately."
        )
    return files, kinds.pop()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_list(files: list[str]) -> str:
    return "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"


def _is_number_type(t: str) -> bool:
    return t.startswith(_NUM_PREFIXES) or t == "BOOLEAN"


class _Source:
    """A DuckDB connection with a ``log`` view of typed columns and row numbers."""

    def __init__(
        self,
        path: str | os.PathLike,
        customer_id: Hashable,
        date: Hashable,
        amount: Hashable | None,
    ) -> None:
        import duckdb

        self.files, kind = _files(path)
        self.tmp = tempfile.mkdtemp(prefix="clvkit-duckdb-")
        self.con = duckdb.connect(config={"temp_directory": self.tmp})
        try:
            self._open(customer_id, date, amount, kind)
        except BaseException:
            self.close()
            raise

    def _open(
        self, customer_id: Hashable, date: Hashable, amount: Hashable | None, kind: str
    ) -> None:
        reader = (
            f"read_parquet({_sql_list(self.files)}, filename = true, union_by_name = true)"
            if kind == "parquet"
            else f"read_csv({_sql_list(self.files)}, filename = true, union_by_name = true)"
        )
        self.reader = reader
        described = self.con.execute(f"DESCRIBE SELECT * FROM {reader}").fetchall()
        self.types = {row[0]: row[1] for row in described if row[0] != "filename"}
        self.customer_id, self.date, self.amount = customer_id, date, amount
        self._check_columns()
        self._make_view()

    def close(self) -> None:
        self.con.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _check_columns(self) -> None:
        from clvkit.data import check_column_arguments

        check_column_arguments(self.customer_id, self.date, self.amount, list(self.types))

    def _make_view(self) -> None:
        cid, d = _quote(self.customer_id), _quote(self.date)
        t_id, t_date = self.types[self.customer_id], self.types[self.date]
        id_expr = f"CAST({cid} AS BIGINT)" if t_id in _INT_TYPES else cid
        if t_date == "DATE" or t_date.startswith("TIMESTAMP"):
            # TIMESTAMP WITH TIME ZONE -> TIMESTAMP is the UTC wall clock (no ICU needed)
            day = f"CAST(CAST({d} AS TIMESTAMP) AS DATE) - DATE '1970-01-01'"
            self.date_kind = "date"
        elif _is_number_type(t_date):
            day = "NULL::BIGINT"
            self.date_kind = "number"
        else:
            ts = f"COALESCE(TRY_CAST({d} AS TIMESTAMP), TRY_CAST({d} AS DATE))"
            day = f"CAST({ts} AS DATE) - DATE '1970-01-01'"
            self.date_kind = "text"
        cols = [f"{id_expr} AS cid", f"{d} AS raw_date", f"{day} AS day"]
        if self.amount is not None:
            a, t_amt = _quote(self.amount), self.types[self.amount]
            if t_amt == "BOOLEAN":
                amt, self.amount_kind = "NULL::DOUBLE", "bool"
            elif _is_number_type(t_amt):
                amt, self.amount_kind = f"CAST({a} AS DOUBLE)", "number"
            else:
                amt, self.amount_kind = f"TRY_CAST({a} AS DOUBLE)", "text"
            cols += [f"{a} AS raw_amount", f"{amt} AS amt"]
        cols += ["filename AS file", "row_number() OVER () - 1 AS rn"]
        self.con.execute(f"CREATE TEMP VIEW log AS SELECT {', '.join(cols)} FROM {self.reader}")

    # ---- validation -------------------------------------------------------------------------
    def _example(self, where: str, columns: list[tuple[str, Hashable]]) -> dict[Any, Any]:
        """The first offending row, shaped like the in-memory path's example."""
        select = ", ".join(expr for expr, _ in columns)
        row = self.con.execute(
            f"SELECT file, rn, file_rn, {select} FROM (SELECT *, rn - min(rn) OVER "
            f"(PARTITION BY file) AS file_rn FROM log) WHERE {where} ORDER BY rn LIMIT 1"
        ).fetchone()
        if len(self.files) > 1:
            out: dict[Any, Any] = {"file": os.path.basename(row[0]), "row": int(row[2])}
        else:
            out = {"row": int(row[1])}
        for (_, name), value in zip(columns, row[3:], strict=True):
            if value is None:  # as pandas shows a missing value read from a file
                value = float("nan")
            elif isinstance(value, np.generic):
                value = value.item()
            elif isinstance(value, datetime.datetime):  # as pandas shows a Timestamp
                value = str(pd.Timestamp(value))
            elif isinstance(value, datetime.date):  # a CSV's ISO date, as its text
                value = value.isoformat()
            out[name] = value
        return out

    def validate(self) -> dict[str, int]:
        """Check every row as :func:`clvkit.data.rfm_summary` does; return counts and days."""
        checks = [
            ("no_id", "cid IS NULL"),
            ("no_date", "raw_date IS NULL"),
            ("bad_date", "raw_date IS NOT NULL AND day IS NULL"),
        ]
        if self.amount is not None:
            checks += [
                ("bad_amt", "raw_amount IS NOT NULL AND amt IS NULL"),
                ("no_amt", "raw_amount IS NULL OR isnan(amt)"),
                ("inf_amt", "isinf(amt)"),
                ("neg_amt", "amt < 0"),
            ]
        counts = ", ".join(f"count_if({cond}) AS {name}" for name, cond in checks)
        row = self.con.execute(
            f"SELECT count(*) AS n, min(day) AS first, max(day) AS last, {counts} FROM log"
        ).fetchone()
        res = dict(zip(["n", "first", "last"] + [c[0] for c in checks], row, strict=True))
        n = int(res["n"])
        if n == 0:
            raise ClvkitError(
                "argument 'transactions' is empty (0 rows). Suggestion: pass a log with at "
                "least one purchase."
            )
        cid, date, amount = self.customer_id, self.date, self.amount
        conds = dict(checks)

        def fail(key: str, col: Hashable, raw: str, problem: str, hint: str) -> None:
            if res[key]:
                raise bad_rows_error(
                    f"column {col!r}",
                    problem,
                    int(res[key]),
                    self._example(conds[key], [(raw, col)]),
                    hint,
                    n_total=n,
                )

        fail("no_id", cid, "cid", "is missing", "drop rows without a customer id.")
        fail(
            "no_date", date, "raw_date", "is missing", "drop or fill rows without a purchase date."
        )
        if self.date_kind == "number":
            res["bad_date"] = n
            conds["bad_date"] = "TRUE"
            fail(
                "bad_date",
                date,
                "raw_date",
                "holds numbers, not dates,",
                "convert it first, e.g. pd.to_datetime(df[col].astype(str), format='%Y%m%d').",
            )
        fail(
            "bad_date",
            date,
            "raw_date",
            "is not a parseable date",
            "use one date format throughout (ISO 'YYYY-MM-DD' is safest) or convert "
            "with pd.to_datetime(..., format=...) first.",
        )
        if amount is not None:
            if self.amount_kind == "bool":
                res["bad_amt"], conds["bad_amt"] = n, "TRUE"
            fail(
                "bad_amt",
                amount,
                "raw_amount",
                "is not numeric",
                "pass spend as numbers (strip currency symbols, thousands separators).",
            )
            fail(
                "no_amt", amount, "raw_amount", "is missing", "drop or fill rows without an amount."
            )
            fail("inf_amt", amount, "amt", "is infinite", "drop rows with infinite amounts.")
            fail(
                "neg_amt",
                amount,
                "amt",
                "is negative",
                "remove returns/refunds or net them into purchases.",
            )
        return {"n": n, "first": int(res["first"]), "last": int(res["last"])}

    def first_day_example(self, first: int) -> dict[Any, Any]:
        return self._example(
            f"day = {int(first)}", [("cid", self.customer_id), ("raw_date", self.date)]
        )

    # ---- the purchase days ------------------------------------------------------------------
    def purchase_days(self, end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, Any]:
        """Customer codes, day numbers and amounts of each purchase day up to ``end``, sorted by
        customer then day, and the sorted customer ids (as ``clvkit.data._purchase_days``).

        DuckDB groups the rows by customer and day; only the purchase days come back, as numpy
        arrays. A day's amount is the sum of its rows; for days of three or more rows the sum is
        redone in numpy (``np.add.reduceat`` over the rows in file order, as the in-memory path
        does), since floating-point addition is not associative.
        """
        has_amt = self.amount is not None
        self.con.execute(
            f"CREATE TEMP TABLE days AS SELECT cid, day, count(*) AS m"
            f"{', sum(amt) AS amt' if has_amt else ''} FROM log WHERE day <= {int(end)} "
            "GROUP BY cid, day"
        )
        per_customer = self.con.execute(
            "SELECT cid, count(*) AS n FROM days GROUP BY cid ORDER BY cid"
        ).fetchnumpy()
        cols = "day, m, amt" if has_amt else "day"
        rows = self.con.execute(f"SELECT {cols} FROM days ORDER BY cid, day").fetchnumpy()
        counts = np.asarray(per_customer["n"], dtype=np.int64)
        cust = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
        day = np.asarray(rows["day"], dtype=np.int64)
        amount = None
        if has_amt:
            amount = np.asarray(rows["amt"], dtype=np.float64)
            m = np.asarray(rows["m"], dtype=np.int64)
            many = m >= 3
            if many.any():
                parts = self.con.execute(
                    "SELECT l.amt FROM log l JOIN (SELECT cid, day FROM days WHERE m >= 3) d "
                    "ON l.cid = d.cid AND l.day = d.day ORDER BY l.cid, l.day, l.rn"
                ).fetchnumpy()["amt"]
                sizes = m[many]
                starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
                amount[many] = np.add.reduceat(np.asarray(parts, dtype=np.float64), starts)
        return cust, day, amount, per_customer["cid"]

    def n_after(self, end: int) -> int:
        return int(self.con.execute(f"SELECT count_if(day > {int(end)}) FROM log").fetchone()[0])


def _index(values: Any) -> pd.Index:
    arr = values.to_numpy() if hasattr(values, "to_numpy") else np.asarray(values)
    if arr.dtype.kind == "O" or arr.dtype.kind in "US":
        return pd.Index(arr.astype(object), name="customer_id")
    return pd.Index(arr, name="customer_id")


def summarize_files(
    path: str | os.PathLike,
    *,
    customer_id: Hashable,
    date: Hashable,
    amount: Hashable | None,
    time_unit: str,
    observation_end: Any,
    calibration_end: Any = None,
) -> tuple[pd.DataFrame, int, int]:
    """The RFM table (or calibration/holdout table) of a log on disk, as :mod:`clvkit.data`.

    ``time_unit`` is canonical; ``observation_end`` may be ``None`` (the last day in the log);
    a ``calibration_end`` adds the holdout columns. Returns the table with its ``attrs``, the
    number of rows after the observation end and the number of rows (for the caller's
    warning).

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> folder = tempfile.mkdtemp()
    >>> pd.DataFrame({"customer_id": [1, 1, 2], "date": ["2024-01-01", "2024-01-08",
    ...               "2024-01-03"]}).to_csv(f"{folder}/log.csv", index=False)
    >>> rfm, n_after, n_rows = summarize_files(
    ...     f"{folder}/log.csv", customer_id="customer_id", date="date", amount=None,
    ...     time_unit="W", observation_end=None)
    >>> rfm  # doctest: +NORMALIZE_WHITESPACE
                 frequency  recency         T
    customer_id
    1                    1      1.0  1.000000
    2                    0      0.0  0.714286
    >>> n_after, n_rows
    (0, 3)
    """
    from clvkit.data import _frame, _iso, _parse_end, _summarize
    from clvkit.units import TIME_UNIT_ATTR, parse_time_unit

    unit_days = parse_time_unit(time_unit) / pd.Timedelta(days=1)
    holdout = calibration_end is not None
    src = _Source(path, customer_id, date, amount)
    try:
        info = src.validate()
        if observation_end is None:
            end = info["last"]
        else:
            end = _parse_end(observation_end, "observation_end")
        cal = _parse_end(calibration_end, "calibration_end") if holdout else end
        bound, arg = (cal, "calibration_end") if holdout else (end, "observation_end")
        if bound < info["first"]:
            if holdout:
                problem = (
                    f"({_iso(cal)}) is before the first purchase ({_iso(info['first'])}), so "
                    "no customer is in the calibration period; it would exclude every purchase"
                )
                hint = "pass a calibration end on or after the first purchase."
            else:
                problem = (
                    f"({_iso(end)}) is before the first purchase ({_iso(info['first'])}) and "
                    "would exclude every purchase"
                )
                hint = (
                    "pass the last day of the observation period, on or after the first purchase."
                )
            raise bad_rows_error(
                f"argument {arg!r}", problem, info["n"], src.first_day_example(info["first"]), hint
            )
        cust, day, amt, ids = src.purchase_days(end)
        n_after = src.n_after(end) if end < info["last"] else 0
    finally:
        src.close()
    customers = _index(ids)
    n_customers = len(customers)
    attrs: dict[str, Any] = {TIME_UNIT_ATTR: time_unit}
    if not holdout:
        columns = _summarize(cust, day, amt, n_customers, end, unit_days)
    else:  # as clvkit.data.calibration_holdout
        in_cal = day <= cal
        columns = _summarize(
            cust[in_cal],
            day[in_cal],
            amt[in_cal] if amt is not None else None,
            n_customers,
            cal,
            unit_days,
        )
        known = np.zeros(n_customers, dtype=bool)
        known[columns["code"]] = True
        hold = ~in_cal & known[cust]
        freq_h = np.bincount(cust[hold], minlength=n_customers)[columns["code"]]
        columns["frequency_holdout"] = freq_h.astype(np.int64)
        if amt is not None:
            total_h = np.bincount(cust[hold], weights=amt[hold], minlength=n_customers)
            columns["monetary_value_holdout"] = np.divide(
                total_h[columns["code"]], freq_h, out=np.zeros(freq_h.size), where=freq_h > 0
            )
        columns["duration_holdout"] = np.full(freq_h.size, (end - cal) / unit_days)
        attrs["calibration_end"] = _iso(cal)
    attrs["observation_end"] = _iso(end)
    attrs["n_rows_after_observation_end"] = n_after
    out = _frame(columns, customers)
    out.attrs = attrs
    return out, n_after, info["n"]
