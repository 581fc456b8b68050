"""Out-of-core RFM summaries of purchase logs stored as CSV or Parquet files, with DuckDB.

:func:`clvkit.rfm_summary`, :func:`clvkit.calibration_holdout` and
:func:`clvkit.data.read_purchases` come here when ``transactions`` is a path or a glob
(``"logs/*.parquet"``) instead of a DataFrame.

Why DuckDB: the summary is a SQL group-by (by customer and day, then by customer), and DuckDB
runs it embedded in this process, streaming the files instead of loading them (Parquet column
pruning, no pandas copy of the log), on all cores, spilling to a temporary folder when the
hash tables outgrow memory; no server or cluster to run. The results are identical to the
in-memory path: same-day purchases merge with their amounts summed in file order, repeat and
holdout spend are summed day by day in date order (as numpy does), and the table itself is
built by the same code (:func:`clvkit.data.summary.purchase_day_table`).

One answer for one input:

- Dates follow the purchase-day rule of :mod:`clvkit.data.summary`: DATE and naive TIMESTAMP columns and
  text without a UTC offset are wall-clock values as written; TIMESTAMPTZ columns and text with
  an offset or 'Z' (:data:`clvkit.units.ZONED_TEXT`, per row) are converted to ``tz`` (UTC by
  default) with ``timezone(tz, ts)`` in a session pinned to ``TimeZone='UTC'``, so the
  process's ``TZ`` never matters. ICU is built into the DuckDB Python wheel.
- CSV carries no types: every column is read as text (``all_varchar``) with strict quoting; an
  id column whose values are all canonical integers (``7``, ``-12``; at most 18 digits) becomes
  BIGINT, any other (``007``, ``a1``, ``1.0``) stays a string; amounts are parsed as DOUBLE.
- Parquet columns keep their types; ids must be integers, floats (NaN is a missing id) or
  strings, as in memory; NaN amounts are missing amounts (DuckDB's ``isnan`` is not used: it
  trusts Parquet statistics, which leave NaN out).
- A file DuckDB cannot read (encoding, truncated, not what its name says, unreadable) is one
  :class:`~clvkit.errors.ClvkitError` naming it. Files are read in sorted path order.
"""

from __future__ import annotations

import datetime
import glob
import os
import shutil
import tempfile
import warnings
from collections.abc import Hashable
from typing import Any

import numpy as np
import pandas as pd

from clvkit.data.checks import ID_KINDS, before_first_error, check_column_arguments, id_kind_error
from clvkit.data.cleaning import (
    NEGATIVE_HINT,
    CleaningOptions,
    cleaning_options,
    currency_error,
    duplicates_warning,
    empty_after_cleaning,
    net_returns,
    new_counts,
)
from clvkit.errors import ClvkitError, ClvkitWarning, bad_rows_error

__all__ = ["read_files", "summarize_files"]

_PARQUET = (".parquet", ".pq")
_CSV = (".csv", ".csv.gz", ".tsv", ".txt")
_INT_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER")
_NUM_PREFIXES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "U", "FLOAT", "DOUBLE")
_NUM_PREFIXES += ("DECIMAL",)
#: CSV ids that are all canonical integers (no sign but '-', no leading zero, <= 18 digits).
_CANONICAL_INT = r"^-?(?:0|[1-9][0-9]{0,17})$"
#: A CSV date column whose values all look like numbers holds numbers, not dates (as in pandas).
_NUMBER = r"^\s*[-+]?[0-9]+(?:\.[0-9]*)?\s*$"


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
        try:
            with open(f, "rb"):
                pass
        except OSError as exc:
            raise _unreadable(f, exc.strerror or str(exc)) from exc
    if len(kinds) > 1:
        raise ClvkitError(
            f"argument 'transactions' ({pattern!r}) mixes CSV and Parquet files. "
            "Suggestion: convert them to one format or summarize them separately."
        )
    return files, kinds.pop()


def _unreadable(name: str, reason: str) -> ClvkitError:
    return ClvkitError(
        f"argument 'transactions': the file {name!r} cannot be read ({reason}). Suggestion: "
        "check that it is a complete, readable Parquet file or a UTF-8 CSV file with a header "
        "row and balanced quotes (re-export it if needed), or load it yourself and pass a "
        "DataFrame."
    )


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sql_list(files: list[str]) -> str:
    return "[" + ", ".join(_literal(f) for f in files) + "]"


def _is_number_type(t: str) -> bool:
    return t.startswith(_NUM_PREFIXES) or t == "BOOLEAN"


def _is_nan(x: str) -> str:
    """SQL for 'x is NaN' that does not trust Parquet statistics (isnan does, and misses NaN)."""
    return f"(NOT isfinite({x}) AND NOT isinf({x}))"


def _id_kind(t: str) -> str:
    """The kind of the ids in a column of DuckDB type ``t``, named as clvkit.data.checks.id_kind."""
    if t in _INT_TYPES or t in ("UBIGINT", "HUGEINT", "UHUGEINT"):
        return "integer"
    if t in ("FLOAT", "DOUBLE"):
        return "float"
    if t == "VARCHAR":
        return "string"
    if t == "BOOLEAN":
        return "boolean"
    if t.endswith("]") or t.startswith("LIST"):
        return "list"
    if t.startswith(("STRUCT", "MAP")):
        return "dict"
    if t.startswith(("DATE", "TIMESTAMP", "TIME")):
        return "datetime"
    if t.startswith("DECIMAL"):
        return "Decimal"
    if t == "BLOB":
        return "bytes"
    return t.lower()


class _Source:
    """A DuckDB connection with a ``log`` view of typed columns and row numbers."""

    def __init__(
        self,
        path: str | os.PathLike,
        customer_id: Hashable,
        date: Hashable,
        amount: Hashable | None,
        tz: str,
        cleaning: dict[str, Any] | None = None,
    ) -> None:
        import duckdb

        self.cleaning = cleaning or {}
        self.rel = "log"  # the rows summarized: the log, or its cleaned view
        self.files, kind = _files(path)
        self.pattern = os.fspath(path)
        self.tmp = tempfile.mkdtemp(prefix="clvkit-duckdb-")
        self.con = duckdb.connect(config={"temp_directory": self.tmp})
        self.tz = tz
        try:
            # zoned values are converted with timezone(tz, ts); the session zone (which follows
            # the process's TZ by default) must play no part
            self.con.execute("SET TimeZone = 'UTC'")
            try:
                self.con.execute(
                    f"SELECT timezone({_literal(tz)}, TIMESTAMPTZ '2000-01-01 00:00Z')"
                )
            except duckdb.Error as exc:
                from clvkit.units import tz_error

                raise tz_error(tz) from exc
            self._open(customer_id, date, amount, kind)
        except BaseException:
            self.close()
            raise

    def q(self, sql: str) -> Any:
        """Run ``sql``; a DuckDB error (unreadable, malformed file) becomes a ClvkitError."""
        import duckdb

        try:
            return self.con.execute(sql)
        except duckdb.Error as exc:
            message = str(exc)
            named = [f for f in self.files if f in message or os.path.basename(f) in message]
            name = named[0] if named else self.files[0] if len(self.files) == 1 else self.pattern
            lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
            reason = lines[0].split("Error: ", 1)[-1] if lines else type(exc).__name__
            reason += "".join(f" {line}" for line in lines[1:] if "utf-8" in line.lower())
            raise _unreadable(name, reason) from exc

    def _open(
        self, customer_id: Hashable, date: Hashable, amount: Hashable | None, kind: str
    ) -> None:
        self.kind = kind
        if kind == "parquet":
            reader = f"read_parquet({_sql_list(self.files)}, filename = true, union_by_name = true)"
        else:  # CSV carries no types: read text and type it here, with strict quoting
            reader = (
                f"read_csv({_sql_list(self.files)}, filename = true, union_by_name = true, "
                "all_varchar = true, header = true, quote = '\"', escape = '\"', "
                "strict_mode = true)"
            )
        self.reader = reader
        described = self.q(f"DESCRIBE SELECT * FROM {reader}").fetchall()
        self.types = {row[0]: row[1] for row in described if row[0] != "filename"}
        if kind == "csv" and len(self.types) == 1:
            (only,) = self.types
            if any(c in str(only) for c in ",;\t|") and only not in (customer_id, date, amount):
                raise _unreadable(
                    self.files[0] if len(self.files) == 1 else self.pattern,
                    f"its header was read as the one column {only!r}: an unbalanced quote or "
                    "an unusual delimiter",
                )
        self.customer_id, self.date, self.amount = customer_id, date, amount
        self._check_columns()
        self.opts: CleaningOptions = cleaning_options(
            **self.cleaning, customer_id=customer_id, date=date, amount=amount,
            columns=list(self.types),
        )  # fmt: skip
        self._make_view()

    def close(self) -> None:
        self.con.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def _check_columns(self) -> None:
        check_column_arguments(self.customer_id, self.date, self.amount, list(self.types))

    def _make_view(self) -> None:
        from clvkit.units import ZONED_TEXT

        cid, d = _quote(self.customer_id), _quote(self.date)
        t_id, t_date = self.types[self.customer_id], self.types[self.date]
        zoned_any = zoned_all = True
        text_dates = t_date == "VARCHAR"
        if self.kind == "csv" or text_dates:
            # one scan: CSV ids typed, numeric CSV dates spotted, and whether text dates are
            # zoned at all (the per-row test, about 0.2 s per million rows and query, is then
            # needed only for columns that mix zoned and naive values)
            csv = self.kind == "csv"
            zoned = f"regexp_matches({d}, {_literal(ZONED_TEXT)})"
            parts = [
                f"bool_and(regexp_matches({cid}, {_literal(_CANONICAL_INT)})) "
                f"FILTER (WHERE {cid} IS NOT NULL)" if csv else "FALSE",
                f"bool_and(regexp_matches({d}, {_literal(_NUMBER)})) "
                f"FILTER (WHERE {d} IS NOT NULL)" if csv else "FALSE",
                f"bool_or({zoned}) FILTER (WHERE {d} IS NOT NULL)" if text_dates else "TRUE",
                f"bool_and({zoned}) FILTER (WHERE {d} IS NOT NULL)" if text_dates else "TRUE",
            ]  # fmt: skip
            ints, numbers, zoned_any, zoned_all = self.q(
                f"SELECT {', '.join(parts)} FROM {self.reader}"
            ).fetchone()
            if csv:
                t_id = "BIGINT" if ints else "VARCHAR"
                t_date = "DOUBLE" if numbers else t_date
        self.id_kind = _id_kind(t_id)
        self.id_type = t_id
        id_expr = f"CAST({cid} AS BIGINT)" if t_id in _INT_TYPES else cid
        if self.id_kind == "float":
            id_expr = f"CAST({cid} AS DOUBLE)"
        tz = _literal(self.tz)
        if t_date == "DATE" or (t_date.startswith("TIMESTAMP") and "TIME ZONE" not in t_date):
            wall = f"CAST({d} AS TIMESTAMP)"  # wall clock as written
            self.date_kind = "date"
        elif t_date.startswith("TIMESTAMP"):
            wall = f"timezone({tz}, {d})"  # an instant: its wall clock in tz
            self.date_kind = "date"
        elif _is_number_type(t_date):
            wall = "NULL::TIMESTAMP"
            self.date_kind = "number"
        else:  # text: zoned (offset after a time of day) or naive, row by row
            as_zoned = f"timezone({tz}, TRY_CAST({d} AS TIMESTAMPTZ))"
            as_naive = (
                f"COALESCE(TRY_CAST({d} AS TIMESTAMP), "
                f"CAST(TRY_CAST({d} AS DATE) AS TIMESTAMP){self._guessed_format(d)})"
            )
            if zoned_all:
                wall = as_zoned
            elif not zoned_any:
                wall = as_naive
            else:
                test = f"regexp_matches({d}, {_literal(ZONED_TEXT)})"
                wall = f"CASE WHEN {test} THEN {as_zoned} ELSE {as_naive} END"
            self.date_kind = "text"
        cols = [
            f"{id_expr} AS cid",
            f"{cid} AS raw_id",
            f"{d} AS raw_date",
            f"{wall} AS wall",
            f"CAST({wall} AS DATE) - DATE '1970-01-01' AS day",
        ]
        if self.amount is not None:
            a, t_amt = _quote(self.amount), self.types[self.amount]
            if t_amt == "BOOLEAN":
                amt, self.amount_kind = "NULL::DOUBLE", "bool"
            elif _is_number_type(t_amt):
                amt, self.amount_kind = f"CAST({a} AS DOUBLE)", "number"
            else:
                amt, self.amount_kind = f"TRY_CAST({a} AS DOUBLE)", "text"
            cols += [f"{a} AS raw_amount", f"{amt} AS amt"]
        if self.opts.currency is not None:
            cur = _quote(self.opts.currency)
            cols += [f"{cur} AS raw_cur", f"CAST({cur} AS VARCHAR) AS cur"]
        if self.opts.fx_rate is not None:
            r, t_r = _quote(self.opts.fx_rate), self.types[self.opts.fx_rate]
            rate = (
                "NULL::DOUBLE" if t_r == "BOOLEAN" else f"CAST({r} AS DOUBLE)"
                if _is_number_type(t_r) else f"TRY_CAST({r} AS DOUBLE)"
            )  # fmt: skip
            cols += [f"{r} AS raw_rate", f"{rate} AS rate"]
        cols += ["filename AS file", "row_number() OVER () - 1 AS rn"]
        self.q(f"CREATE TEMP VIEW log AS SELECT {', '.join(cols)} FROM {self.reader}")

    def _guessed_format(self, d: str) -> str:
        """``, try_strptime(d, fmt)`` for a non-ISO format pandas guesses from the first date.

        pandas parses a text column with the format it guesses from its first value (e.g.
        ``%m/%d/%Y``), else as ISO 8601; DuckDB's casts read ISO 8601, so the guess is tried
        too, and both routes read such a column alike.
        """
        from pandas.tseries.api import guess_datetime_format

        first = self.q(f"SELECT {d} FROM {self.reader} WHERE {d} IS NOT NULL LIMIT 1").fetchone()
        if first is None or not isinstance(first[0], str):
            return ""
        try:
            fmt = guess_datetime_format(first[0].strip())
        except (ValueError, TypeError, OverflowError):
            fmt = None
        if fmt is None or fmt.startswith("%Y-%m-%d") or "%z" in fmt or "%Z" in fmt:
            return ""
        return f", try_strptime({d}, {_literal(fmt)})"

    # ---- validation -------------------------------------------------------------------------
    def _example(self, where: str, columns: list[tuple[str, Hashable]]) -> dict[Any, Any]:
        """The first offending row, shaped like the in-memory path's example."""
        select = ", ".join(expr for expr, _ in columns)
        row = self.q(
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
        no_id = "cid IS NULL"
        if self.id_kind == "float":
            no_id = f"cid IS NULL OR {_is_nan('cid')}"
        checks = [
            ("no_id", no_id),
            ("no_date", "raw_date IS NULL"),
            ("bad_date", "raw_date IS NOT NULL AND day IS NULL"),
        ]
        if self.amount is not None:
            checks += [
                ("bad_amt", "raw_amount IS NOT NULL AND amt IS NULL"),
                ("no_amt", f"raw_amount IS NULL OR {_is_nan('amt')}"),
                ("inf_amt", "isinf(amt)"),
                ("neg_amt", "amt < 0" if self.opts.returns == "error" else "FALSE"),
                ("zero_amt", "amt = 0"),  # a count for the cleaning step, not a check
            ]
        counts = ", ".join(f"count_if({cond}) AS {name}" for name, cond in checks)
        row = self.q(
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
        if self.id_kind not in ID_KINDS:  # one SQL type, one kind: every row has it
            err = id_kind_error(
                cid,
                np.full(n, self.id_kind, dtype=object).astype(str),
                lambda mask: self._example("TRUE", [("raw_id", cid)]),
                n,
            )
            if err is not None:
                raise err
        fail(
            "no_date", date, "raw_date", "is missing", "drop or fill rows without a purchase date."
        )
        if self.date_kind == "number":
            example = self._example("TRUE", [("raw_date", date)])
            if isinstance(example[date], str):  # CSV text: as pandas' CSV reader types it
                text = example[date].strip()
                example[date] = int(text) if text.lstrip("+-").isdigit() else float(text)
            raise bad_rows_error(
                f"column {date!r}",
                "holds numbers, not dates,",
                n,
                example,
                "convert it first, e.g. pd.to_datetime(df[col].astype(str), format='%Y%m%d').",
                n_total=n,
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
                "pass spend as real numbers (strip currency symbols, thousands separators).",
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
                NEGATIVE_HINT,
            )
        info = {"n": n, "first": int(res["first"]), "last": int(res["last"])}
        if amount is not None:
            info["zero"] = int(res["zero_amt"])
        return info

    # ---- cleaning ---------------------------------------------------------------------------
    def clean(
        self, info: dict[str, int], warn: bool = True
    ) -> tuple[dict[str, Any], dict[str, int]]:
        """Apply the cleaning options (as :func:`clvkit.data.summary` does in memory).

        Sets :attr:`rel` to the view of the cleaned rows; returns the extra attrs (``cleaning``,
        ``currency``) and the cleaned rows' ``n``, ``first`` and ``last`` day. ``info``: what
        :meth:`validate` returned (reused while no row is changed). ``warn``: warn about
        duplicates kept (:func:`read_files` leaves it to the summary).
        """
        opts, has_amt, n = self.opts, self.amount is not None, info["n"]
        counts = new_counts(n)
        if opts.currency is not None:
            missing = int(self.q("SELECT count_if(raw_cur IS NULL) FROM log").fetchone()[0])
            if missing:
                raise bad_rows_error(
                    f"column {opts.currency!r}", "is missing", missing,
                    self._example("raw_cur IS NULL", [("raw_cur", opts.currency)]),
                    "fill in the currency of every row, or drop those rows.", n_total=n,
                )  # fmt: skip
        keys = "cid, wall" + (", amt" if has_amt else "") + (", cur" if opts.currency else "")
        groups = self.q(f"SELECT count(*) FROM (SELECT 1 FROM log GROUP BY {keys})").fetchone()[0]
        n_dup = n - int(groups)
        counts["duplicates"] = n_dup
        rel = "log"
        if n_dup:
            numbered = (
                f"(SELECT *, row_number() OVER (PARTITION BY {keys} ORDER BY rn) AS k FROM log)"
            )
            if opts.duplicates == "drop":
                self.q(
                    f"CREATE TEMP VIEW c_dedup AS SELECT * EXCLUDE (k) FROM {numbered} WHERE k = 1"
                )
                rel = "c_dedup"
                counts["duplicates_dropped"] = n_dup
            elif (
                warn
                and has_amt
                and self.q(  # a log of dates only: equal rows are ordinary, not warned about
                    "SELECT bool_or(wall <> CAST(CAST(wall AS DATE) AS TIMESTAMP)) FROM log"
                ).fetchone()[0]
            ):
                rn = int(self.q(f"SELECT min(rn) FROM {numbered} WHERE k > 1").fetchone()[0])
                shown = [("cid", self.customer_id), ("wall", self.date)]
                shown += [("amt", self.amount)] if has_amt else []
                example = self._example(f"rn = {rn}", shown)
                warnings.warn(duplicates_warning(n_dup, n, example), ClvkitWarning, stacklevel=5)
        currency = None
        if opts.currency is not None:
            per = {str(k): int(v) for k, v in self.q(
                "SELECT cur, count(*) FROM log GROUP BY cur").fetchall()}  # fmt: skip
            if len(per) > 1 and opts.fx_rate is None:
                raise currency_error(opts.currency, per)
            currency = opts.reporting_currency if opts.fx_rate is not None else next(iter(per))
        if has_amt:
            if opts.fx_rate is not None:
                self._check_rates(n)
                self.q(
                    f"CREATE TEMP VIEW c_conv AS SELECT * REPLACE (amt * rate AS amt) FROM {rel}"
                )
                rel = "c_conv"
            n_neg = int(self.q(f"SELECT count_if(amt < 0) FROM {rel}").fetchone()[0])
            counts["returns"] = n_neg
            if n_neg and opts.returns == "drop":
                self.q(f"CREATE TEMP VIEW c_noret AS SELECT * FROM {rel} WHERE amt >= 0")
                rel = "c_noret"
                counts["returns_dropped"] = n_neg
            elif n_neg and opts.returns == "net":
                rel = self._net(rel, counts)
            n_zero = info["zero"] if rel == "log" else None
            if n_zero is None:
                n_zero = int(self.q(f"SELECT count_if(amt = 0) FROM {rel}").fetchone()[0])
            counts["zero_amounts"] = n_zero
            if n_zero and opts.zero_amounts == "drop":
                self.q(f"CREATE TEMP VIEW c_nozero AS SELECT * FROM {rel} WHERE amt <> 0")
                rel = "c_nozero"
                counts["zero_amounts_dropped"] = n_zero
        self.rel = rel
        if rel == "log":
            return {"cleaning": counts, "currency": currency}, info
        left, first = self.q(f"SELECT count(*), min(day) FROM {rel}").fetchone()
        if not left:
            raise empty_after_cleaning(counts)
        # the last day as read is the default observation end (as in memory)
        info = {"n": int(left), "first": int(first), "last": info["last"]}
        return {"cleaning": counts, "currency": currency}, info

    def _check_rates(self, n: int) -> None:
        """The exchange-rate column: numeric, present, positive and finite (as in memory)."""
        col = self.opts.fx_rate
        not_real = "raw_rate IS NOT NULL AND rate IS NULL"
        if self.types[col] == "BOOLEAN":
            not_real = "TRUE"
        checks = [
            (not_real, "raw_rate", "is not numeric", "pass exchange rates as numbers."),
            (f"raw_rate IS NULL OR {_is_nan('rate')}", "raw_rate", "is missing",
             "fill in the rate of every row."),
            ("NOT (isfinite(rate) AND rate > 0)", "rate", "is not a positive finite rate",
             "pass rates > 0 that convert each amount to the reporting currency "
             "(amount * rate)."),
        ]  # fmt: skip
        done = []
        for cond, raw, problem, hint in checks:
            where = " AND ".join([f"({cond})"] + [f"NOT ({c})" for c in done])
            bad = int(self.q(f"SELECT count_if({where}) FROM log").fetchone()[0])
            if bad:
                raise bad_rows_error(
                    f"column {col!r}", problem, bad, self._example(where, [(raw, col)]), hint,
                    n_total=n,
                )  # fmt: skip
            done.append(cond)

    def _net(self, rel: str, counts: dict[str, int]) -> str:
        """Net returns in numpy (:func:`clvkit.data.cleaning.net_returns`) for the customers
        who have any; returns the view of the netted rows."""
        who = f"(SELECT DISTINCT cid FROM {rel} WHERE amt < 0)"
        got = self.q(
            f"SELECT cid, epoch_us(wall) AS w, day, amt, rn FROM {rel} WHERE cid IN {who} "
            "ORDER BY rn"
        ).fetchnumpy()
        ids = self.ids(got["cid"])
        codes, _ = pd.factorize(pd.Series(ids), sort=True)
        wall = np.asarray(got["w"], dtype=np.int64)
        amt = np.asarray(got["amt"], dtype=np.float64)

        def example(i: int) -> dict[Any, Any]:
            cid = ids[i]
            return {
                self.customer_id: cid.item() if isinstance(cid, np.generic) else cid,
                self.date: str(pd.Timestamp(np.datetime64(int(wall[i]), "us"))),
                self.amount: float(amt[i]),
            }

        kept, netted, n_ret, n_out = net_returns(
            codes.astype(np.int64), wall, np.asarray(got["day"], dtype=np.int64), amt, example,
            self.amount,
        )  # fmt: skip
        counts["returns_netted"], counts["purchases_netted_out"] = n_ret, n_out
        rows = pd.DataFrame({"rn": np.asarray(got["rn"], dtype=np.int64)[kept],
                             "new_amt": netted[kept]})  # fmt: skip
        self.con.register("c_netted_rows", rows)
        self.q(
            f"CREATE TEMP VIEW c_net AS SELECT * FROM {rel} WHERE cid NOT IN {who} UNION ALL "
            f"SELECT r.* REPLACE (n.new_amt AS amt) FROM {rel} r JOIN c_netted_rows n "
            "ON r.rn = n.rn"
        )
        return "c_net"

    def first_day_example(self, first: int) -> dict[Any, Any]:
        where = f"day = {int(first)}"
        if self.rel != "log":
            where += f" AND rn IN (SELECT rn FROM {self.rel})"
        return self._example(where, [("cid", self.customer_id), ("wall", self.date)])

    # ---- the purchase days ------------------------------------------------------------------
    def purchase_days(self, end: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, Any]:
        """Customer codes, day numbers and amounts of each purchase day up to ``end``, sorted by
        customer then day, and the sorted customer ids (as the in-memory route in ``clvkit.data.summary``).

        DuckDB groups the rows by customer and day; only the purchase days come back, as numpy
        arrays. A day's amount is the sum of its rows; for days of three or more rows the sum is
        redone in numpy (``np.add.reduceat`` over the rows in file order, as the in-memory path
        does), since floating-point addition is not associative.
        """
        has_amt = self.amount is not None
        self.q(
            f"CREATE TEMP TABLE days AS SELECT cid, day, count(*) AS m"
            f"{', sum(amt) AS amt' if has_amt else ''} FROM {self.rel} WHERE day <= {int(end)} "
            "GROUP BY cid, day"
        )
        per_customer = self.q("SELECT cid, count(*) AS n FROM days GROUP BY cid ORDER BY cid")
        per_customer = per_customer.fetchnumpy()
        cols = "day, m, amt" if has_amt else "day"
        rows = self.q(f"SELECT {cols} FROM days ORDER BY cid, day").fetchnumpy()
        counts = np.asarray(per_customer["n"], dtype=np.int64)
        cust = np.repeat(np.arange(counts.size, dtype=np.int64), counts)
        day = np.asarray(rows["day"], dtype=np.int64)
        amount = None
        if has_amt:
            amount = np.asarray(rows["amt"], dtype=np.float64)
            m = np.asarray(rows["m"], dtype=np.int64)
            many = m >= 3
            if many.any():
                parts = self.q(
                    f"SELECT l.amt FROM {self.rel} l JOIN (SELECT cid, day FROM days WHERE m >= 3) d "
                    "ON l.cid = d.cid AND l.day = d.day ORDER BY l.cid, l.day, l.rn"
                ).fetchnumpy()["amt"]
                sizes = m[many]
                starts = np.concatenate(([0], np.cumsum(sizes)[:-1]))
                with np.errstate(over="ignore", invalid="ignore"):
                    sums = np.add.reduceat(np.asarray(parts, dtype=np.float64), starts)
                amount[many] = sums
        return cust, day, amount, per_customer["cid"]

    def n_after(self, end: int) -> int:
        return int(self.q(f"SELECT count_if(day > {int(end)}) FROM {self.rel}").fetchone()[0])

    def ids(self, values: Any) -> Any:
        """Ids fetched from DuckDB, typed as the in-memory route types them."""
        arr = values.to_numpy() if hasattr(values, "to_numpy") else np.asarray(values)
        if self.id_kind == "string":
            return pd.array(arr.astype(object), dtype="str")
        if self.id_kind == "integer" and self.id_type in _INT_TYPES:
            return arr.astype(np.int64, copy=False)
        if self.id_kind == "float":
            return arr.astype(np.float64, copy=False)
        return arr


def summarize_files(
    path: str | os.PathLike,
    *,
    customer_id: Hashable,
    date: Hashable,
    amount: Hashable | None,
    tz: str,
    end: int | None,
    cal: int | None,
    cleaning: dict[str, Any] | None = None,
    warn: bool = True,
) -> dict[str, Any]:
    """The purchase days of a log on disk, for :func:`clvkit.data.summary.purchase_day_table`.

    ``end`` (``None``: the last day in the log) and ``cal`` are day numbers. Returns ``cust``,
    ``day``, ``amt``, ``customers`` (sorted ids), ``first`` and ``last`` (days in the log),
    ``end``, ``n_rows`` and ``n_left_out`` (rows after ``end``), all after the ``cleaning``
    options (keywords of :func:`clvkit.data.cleaning.cleaning_options`), and ``extra``, the
    attrs ``cleaning`` and ``currency``. ``warn=False``: no warning about duplicates kept.

    Examples
    --------
    >>> import tempfile, pandas as pd
    >>> folder = tempfile.mkdtemp()
    >>> pd.DataFrame({"customer_id": [1, 1, 2], "date": ["2024-01-01", "2024-01-08",
    ...               "2024-01-03"]}).to_csv(f"{folder}/log.csv", index=False)
    >>> days = summarize_files(f"{folder}/log.csv", customer_id="customer_id", date="date",
    ...                        amount=None, tz="UTC", end=None, cal=None)
    >>> days["cust"], days["day"] - days["first"], list(days["customers"])
    (array([0, 0, 1]), array([0, 7, 2]), [1, 2])
    """
    src = _Source(path, customer_id, date, amount, tz, cleaning)
    try:
        extra, info = src.clean(src.validate(), warn=warn)
        end = info["last"] if end is None else end
        bound, arg = (cal, "calibration_end") if cal is not None else (end, "observation_end")
        if bound < info["first"]:
            raise before_first_error(
                arg, bound, info["first"], info["n"], src.first_day_example(info["first"])
            )
        cust, day, amt, ids = src.purchase_days(end)
        n_after = src.n_after(end) if end < info["last"] else 0
        customers = pd.Index(src.ids(ids), name="customer_id")
    finally:
        src.close()
    return {
        "cust": cust, "day": day, "amt": amt, "customers": customers, "first": info["first"],
        "last": info["last"], "end": end, "n_rows": info["n"], "n_left_out": n_after,
        "extra": extra,
    }  # fmt: skip


def read_files(
    path: str | os.PathLike,
    *,
    customer_id: Hashable,
    date: Hashable,
    amount: Hashable | None,
    tz: str,
    cleaning: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """The validated, cleaned log on disk as a DataFrame (see
    :func:`clvkit.data.read_purchases`)."""
    src = _Source(path, customer_id, date, amount, tz, cleaning)
    try:
        extra, _ = src.clean(src.validate(), warn=False)
        cols = "cid, wall" + (", amt" if amount is not None else "")
        got = src.q(f"SELECT {cols} FROM {src.rel} ORDER BY rn").fetchnumpy()
        columns: dict[Hashable, Any] = {
            customer_id: src.ids(got["cid"]),
            date: np.asarray(got["wall"]).astype("datetime64[us]"),
        }
        if amount is not None:
            columns[amount] = np.asarray(got["amt"], dtype=np.float64)
    finally:
        src.close()
    out = pd.DataFrame(columns)
    out.attrs = extra
    return out
