"""Contractual data: a table of contracts -> per-customer renewal histories and cohort survival.

Convention (shared with the sBG model, :mod:`clvkit.models.sbg`): a subscriber pays at the
start of each period. Period 0 starts on the contract's start date; renewal ``k`` falls on the
start plus ``k`` periods. A customer who has paid ``n`` renewals and then ended has a lifetime
of ``T = n + 1`` periods (it contributes ``P(T = n + 1)``); a customer still active after ``n``
renewals has ``T > n`` (it contributes the survival ``S(n)``).

Periods:

- calendar ``"M"``, ``"Q"``, ``"Y"`` (and multiples ``"2M"``, ``"6M"``, ``"2Y"``): renewal ``k``
  falls on the same day of the month as the start, ``k`` periods later, counted from the start
  (not chained), and clipped to the last day of shorter months: a start on 31 January renews on
  28 (or 29) February, 31 March, 30 April, 31 May...
- a fixed duration (``"4W"``, ``"30D"``): renewal ``k`` falls ``k`` durations after the start.

Dates are days: timestamps are cut to their date by the rule of :func:`clvkit.rfm_summary`
(naive values as written, zoned ones converted to ``tz`` first).
"""

from __future__ import annotations

import glob
import os
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from clvkit.errors import ClvkitError, bad_rows_error
from clvkit.units import ZONED_TEXT, check_tz, format_time_unit, parse_date, parse_time_unit

__all__ = ["cohort_counts", "contract_summary", "read_contracts", "survival_table"]

_CAL_MONTHS = {"M": 1, "Q": 3, "Y": 12}


# ---- periods ------------------------------------------------------------------------------------
def _period(period: Any) -> tuple[str, int | None, int | None]:
    """(canonical unit, months per period or None, days per period or None)."""
    try:
        unit = format_time_unit(period)
    except (ValueError, TypeError) as exc:
        raise ClvkitError(
            f"argument 'period' is {period!r}. Suggestion: 'M', 'Q', 'Y' or a fixed duration "
            "such as '4W' or '30D'."
        ) from exc
    code = unit[-1]
    if code in _CAL_MONTHS:
        k = int(unit[:-1]) if len(unit) > 1 else 1
        return unit, k * _CAL_MONTHS[code], None
    td = parse_time_unit(unit, "period")
    if td % pd.Timedelta(days=1) != pd.Timedelta(0):
        raise ClvkitError(
            f"argument 'period' is {period!r}, not a whole number of days. Suggestion: 'M', "
            "'Q', 'Y' or whole days such as '4W' or '30D'."
        )
    return unit, None, int(td / pd.Timedelta(days=1))


def _renewal_day(start: np.ndarray, k: np.ndarray, months: int | None, days: int | None):
    """Day numbers (int64, days since 1970-01-01) of renewal ``k`` of contracts starting on
    day ``start``."""
    if months is None:
        return start + k * days
    s = start.astype("datetime64[D]")
    sm = s.astype("datetime64[M]")
    dom = (s - sm.astype("datetime64[D]")).astype(np.int64)  # day of month - 1
    tm = sm + (k * months).astype("timedelta64[M]")
    first = tm.astype("datetime64[D]")
    dim = ((tm + np.timedelta64(1, "M")).astype("datetime64[D]") - first).astype(np.int64)
    return first.astype(np.int64) + np.minimum(dom, dim - 1)


def _paid(start, day, strict, months, days):
    """Largest ``k >= 0`` with renewal ``k`` on or before ``day`` (before it if ``strict``);
    with ``strict`` and ``day == start``, 0."""
    if months is None:
        k = (day - start) // days
    else:
        s = start.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
        d = day.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64)
        k = np.maximum((d - s) // months, 0)
    k = np.maximum(k, 0)
    for _ in range(2):  # at most one step back
        r = _renewal_day(start, k, months, days)
        over = np.where(strict, r >= day, r > day)
        over &= k > 0
        k = np.where(over, k - 1, k)
    return k


def _cohort_labels(start: np.ndarray, unit: str, months: int | None, days: int | None):
    d = pd.DatetimeIndex(start.astype("datetime64[D]"))
    if months is not None:
        code = unit[-1]
        freq = {"M": "M", "Q": "Q", "Y": "Y"}[code]
        return d.to_period(freq).astype(str).to_numpy(dtype=object)
    origin = 4 if days % 7 == 0 else 0  # 1970-01-05 is a Monday
    w = (start - origin) // days * days + origin
    return pd.DatetimeIndex(w.astype("datetime64[D]")).strftime("%Y-%m-%d").to_numpy(dtype=object)


# ---- parsing ------------------------------------------------------------------------------------
def _example(frame: pd.DataFrame, mask: np.ndarray, cols: list) -> dict:
    i = int(np.flatnonzero(mask)[0])
    out = {}
    for c in cols:
        v = frame[c].iloc[i]
        out[c] = (
            None
            if v is None or v is pd.NaT or (isinstance(v, float) and np.isnan(v))
            else (v.item() if isinstance(v, np.generic) else v)
        )
    return out


def _days(frame: pd.DataFrame, col: Hashable, tz: str, required: bool) -> np.ndarray:
    """A date column as float day numbers (NaN where empty and not ``required``)."""
    s = frame[col]
    what = f"column {col!r}"
    empty = s.isna().to_numpy().copy()
    if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
        text = s.astype("string")
        empty |= (text.str.strip() == "").fillna(True).to_numpy(dtype=bool)
    if required and empty.any():
        raise bad_rows_error(
            what, "is missing", int(empty.sum()), _example(frame, empty, [col]),
            "every contract needs a start date.", n_total=len(s),
        )  # fmt: skip
    out = np.full(len(s), np.nan)
    ok = ~empty
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        vals = s.dt.tz_convert(tz).dt.tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(s.dtype):
        vals = s
    elif pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        raise bad_rows_error(
            what, "holds numbers, not dates,", int(ok.sum()), _example(frame, ok, [col]),
            "convert it first, e.g. pd.to_datetime(df[col].astype(str), format='%Y%m%d').",
            n_total=len(s),
        )  # fmt: skip
    else:
        text = s.where(ok).astype("string")
        zoned = text.str.contains(ZONED_TEXT, regex=True).fillna(False).to_numpy(dtype=bool)
        vals = pd.Series(pd.NaT, index=s.index, dtype="datetime64[us]")
        for part, utc in ((zoned, True), (ok & ~zoned, False)):
            if part.any():
                p = pd.to_datetime(text[part], errors="coerce", utc=utc, format="ISO8601")
                if utc:
                    p = p.dt.tz_convert(tz).dt.tz_localize(None)
                vals[part] = p.astype("datetime64[us]")
    arr = pd.Series(vals).to_numpy().astype("datetime64[D]")
    bad = ok & np.isnat(arr)
    if bad.any():
        raise bad_rows_error(
            what, "is not a parseable date", int(bad.sum()), _example(frame, bad, [col]),
            "use ISO dates 'YYYY-MM-DD' (or leave the end empty while a contract is active).",
            n_total=len(s),
        )  # fmt: skip
    out[ok] = arr[ok].astype(np.int64)
    return out


def read_contracts(path: str | os.PathLike, columns: Sequence[Hashable]) -> pd.DataFrame:
    """Read a CSV or Parquet file (or a glob of them, in sorted path order) of contracts with
    DuckDB: CSV columns as text (so ids and dates are parsed by the one in-memory rule),
    Parquet columns with their types."""
    import duckdb

    pattern = os.fspath(path)
    files = sorted(glob.glob(pattern)) if any(c in pattern for c in "*?[") else [pattern]
    if not files or not all(os.path.isfile(f) for f in files):
        raise ClvkitError(
            f"argument 'contracts' is {pattern!r}, which names no file. Suggestion: pass a "
            "DataFrame or the path (or glob) of CSV or Parquet files."
        )
    parquet = all(f.endswith(".parquet") for f in files)
    lst = "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"
    reader = (
        f"read_parquet({lst})" if parquet else f"read_csv({lst}, all_varchar=true, header=true)"
    )
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone='UTC'")
        frame = con.execute(f"SELECT * FROM {reader}").df()
    except duckdb.Error as exc:
        raise ClvkitError(
            f"argument 'contracts': could not read {pattern!r} ({exc}). Suggestion: check the "
            "files are CSV with a header row or Parquet."
        ) from exc
    finally:
        con.close()
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ClvkitError(
            f"argument 'contracts' lacks columns {missing}. Suggestion: name the columns with "
            "customer_id_col=, start_col=, end_col=, fee_col=."
        )
    frame = frame[list(columns)].copy()
    if not parquet:
        idc = columns[0]
        txt = frame[idc].astype("string")
        if txt.notna().all() and txt.str.fullmatch(r"-?(0|[1-9][0-9]{0,17})").all():
            frame[idc] = txt.astype(np.int64)
        if len(columns) > 3:
            fc = columns[3]
            frame[fc] = pd.to_numeric(frame[fc], errors="coerce").astype(np.float64)
    return frame


# ---- the summary ------------------------------------------------------------------------------
def contract_summary(
    contracts: pd.DataFrame | str | os.PathLike,
    period: str = "M",
    observation_end: Any = None,
    *,
    customer_id_col: Hashable = "customer_id",
    start_col: Hashable = "start",
    end_col: Hashable = "end",
    fee_col: Hashable | None = None,
    tz: str | None = "UTC",
) -> pd.DataFrame:
    """Per-customer renewal histories from a table of contracts.

    Parameters
    ----------
    contracts : pandas.DataFrame or path
        One row per contract: customer id, start date, end date (empty while active) and
        optionally a fee; or the path (or glob) of CSV/Parquet files with those columns, read
        with DuckDB and summarised by the same code (same table, same errors).
    period : str
        Billing period: calendar ``"M"``, ``"Q"``, ``"Y"`` (renewals on the same day of the
        month, clipped to the month's last day) or a fixed duration such as ``"4W"``, ``"30D"``.
    observation_end : date, optional
        End of observation; default the latest start or end date in the table. Contracts
        ending on or before it have churned.
    customer_id_col, start_col, end_col, fee_col : str
        Column names; ``fee_col`` is optional.
    tz : str, optional
        Zone that zoned timestamps are converted to before they are cut to days (default UTC).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` (one row per spell, see below), with ``cohort`` (str: the
        calendar period of the start, ``"2024-01"``, ``"2024Q1"``, ``"2024"``; for a fixed
        duration the start date of the cohort window, windows counted from 1970-01-05 when the
        duration is whole weeks, else from 1970-01-01), ``start`` (datetime64), ``renewals``
        (int64: renewals paid, 0 in the first period), ``churned`` (bool), ``age`` (float64:
        periods from the start to ``observation_end``, or to the end for churned customers,
        fractional within a period) and ``fee`` (float64, the last contract's fee, with
        ``fee_col``). ``attrs``: ``time_unit``, ``period``, ``observation_end`` (ISO date) and
        ``kind = "contractual"``.

    Notes
    -----
    A customer pays at the start of each period: renewal ``k`` is paid when it falls before
    the end (a contract ending exactly on a renewal date did not renew) and, while active, on
    or before ``observation_end``. Churned after ``n`` renewals is a lifetime ``T = n + 1``
    periods; active after ``n`` renewals is ``T > n``.

    Several contracts of one customer: one that starts on the day the previous one ends
    continues it (one spell, renewals counted from the first start, the last fee). One that
    starts after a gap is a new spell, a separate row; when any customer has more than one
    spell, the index holds strings, ``"<id>"`` for first spells and ``"<id>#2"``, ``"<id>#3"``
    for later ones.

    Raises
    ------
    ClvkitError
        Naming the column, the number of bad rows and one example: missing or unparseable
        dates, an end before its start, overlapping contracts of one customer, dates after
        ``observation_end``, missing or negative fees, duplicate rows, missing ids.

    Examples
    --------
    >>> c = pd.DataFrame({"customer_id": [1, 2], "start": ["2024-01-31", "2024-02-10"],
    ...                   "end": [None, "2024-04-10"]})
    >>> s = contract_summary(c, "M", "2024-06-30")
    >>> s[["cohort", "renewals", "churned"]]  # doctest: +NORMALIZE_WHITESPACE
                  cohort  renewals  churned
    customer_id
    1            2024-01         5    False
    2            2024-02         1     True
    """
    unit, months, days = _period(period)
    tz = check_tz(tz)
    cols = [customer_id_col, start_col, end_col] + ([fee_col] if fee_col is not None else [])
    if isinstance(contracts, (str, os.PathLike)):
        frame = read_contracts(contracts, cols)
    elif isinstance(contracts, pd.DataFrame):
        missing = [c for c in cols if c not in contracts.columns]
        if missing:
            raise ClvkitError(
                f"argument 'contracts' lacks columns {missing}. Suggestion: name the columns "
                "with customer_id_col=, start_col=, end_col=, fee_col=."
            )
        frame = contracts[cols].reset_index(drop=True)  # a new frame: the caller's is untouched
    else:
        raise ClvkitError(
            f"argument 'contracts' is a {type(contracts).__name__}. Suggestion: a DataFrame or "
            "a path of CSV/Parquet files."
        )
    if len(frame) == 0:
        raise ClvkitError("argument 'contracts' has no rows. Suggestion: pass contracts.")
    ids = frame[customer_id_col]
    bad = ids.isna().to_numpy()
    if bad.any():
        raise bad_rows_error(
            f"column {customer_id_col!r}", "is missing", int(bad.sum()),
            _example(frame, bad, cols), "drop rows without a customer id.", n_total=len(frame),
        )  # fmt: skip
    start = _days(frame, start_col, tz, required=True)
    end = _days(frame, end_col, tz, required=False)
    fee = None
    if fee_col is not None:
        fee = pd.to_numeric(frame[fee_col], errors="coerce").to_numpy(dtype=np.float64)
        bad = ~np.isfinite(fee) | (fee < 0)
        if bad.any():
            raise bad_rows_error(
                f"column {fee_col!r}", "is missing, not a number or negative", int(bad.sum()),
                _example(frame, bad, cols), "give every contract a fee >= 0.", n_total=len(frame),
            )  # fmt: skip
    bad = end < start
    if bad.any():
        raise bad_rows_error(
            f"column {end_col!r}", "is before the start", int(bad.sum()),
            _example(frame, bad, cols), f"fix the dates or swap {start_col!r} and {end_col!r}.",
            n_total=len(frame),
        )  # fmt: skip
    dup = frame.duplicated(keep="first").to_numpy()
    if dup.any():
        raise bad_rows_error(
            "argument 'contracts'", "has duplicate rows", int(dup.sum()),
            _example(frame, dup, cols), "drop them with contracts.drop_duplicates().",
            n_total=len(frame),
        )  # fmt: skip
    latest = np.nanmax(np.concatenate([start, end]))
    if observation_end is None:
        obs = int(latest)
    else:
        obs = int(np.datetime64(parse_date(observation_end, "observation_end"), "D").astype(int))
        late = (start > obs) | (end > obs)
        if late.any():
            raise bad_rows_error(
                f"columns {start_col!r} / {end_col!r}", "are after observation_end "
                f"{np.datetime64(obs, 'D')}", int(late.sum()), _example(frame, late, cols),
                "pass a later observation_end, or drop (or blank the end of) those contracts.",
                n_total=len(frame),
            )  # fmt: skip
    # order by customer and start (stable, so ties keep file order)
    codes, uniq = pd.factorize(ids, sort=True)
    order = np.lexsort((start, codes))
    c, s, e = codes[order], start[order], end[order]
    same = np.concatenate([[False], c[1:] == c[:-1]])
    prev_end = np.concatenate([[np.nan], e[:-1]])
    overlap = same & (np.isnan(prev_end) | (s < prev_end))
    if overlap.any():
        raise bad_rows_error(
            f"columns {start_col!r} / {end_col!r}",
            "overlap an earlier contract of the same customer", int(overlap.sum()),
            _example(frame, np.isin(np.arange(len(frame)), order[overlap]), cols),
            "end a contract before the next one starts (a contract may start on the day "
            "the previous one ends: they form one spell).", n_total=len(frame),
        )  # fmt: skip
    new_spell = ~(same & (s == prev_end))
    spell_id = np.cumsum(new_spell) - 1
    first = np.flatnonzero(new_spell)
    last = np.append(first[1:] - 1, len(s) - 1)
    sp_cust = c[first]
    sp_start = s[first].astype(np.int64)
    sp_end = e[last]
    churned = ~np.isnan(sp_end)
    stop = np.where(churned, sp_end, obs).astype(np.int64)
    n = _paid(sp_start, stop, churned, months, days)
    r0 = _renewal_day(sp_start, n, months, days)
    r1 = _renewal_day(sp_start, n + 1, months, days)
    age = n + (stop - r0) / (r1 - r0)
    rank = np.arange(len(first)) - np.searchsorted(sp_cust, sp_cust, side="left")  # 0, 1, ..
    base = np.asarray(uniq)[sp_cust]
    if (rank > 0).any():
        index = pd.Index(
            [str(b) if k == 0 else f"{b}#{k + 1}" for b, k in zip(base, rank, strict=True)],
            dtype=object, name="customer_id",
        )  # fmt: skip
    else:
        index = pd.Index(base, name="customer_id")
    out = pd.DataFrame(
        {
            "cohort": pd.array(_cohort_labels(sp_start, unit, months, days), dtype=object),
            "start": sp_start.astype("datetime64[D]").astype("datetime64[us]"),
            "renewals": n.astype(np.int64),
            "churned": churned,
            "age": age.astype(np.float64),
        },
        index=index,
    )
    if fee is not None:
        out["fee"] = fee[order][last]
    del spell_id
    out.attrs.update(
        {
            "time_unit": unit,
            "period": unit,
            "observation_end": str(np.datetime64(obs, "D")),
            "kind": "contractual",
        }
    )
    return out


# ---- survival tables ----------------------------------------------------------------------------
def _survival_attrs(unit: str, obs: str | None) -> dict[str, Any]:
    return {"time_unit": unit, "period": unit, "observation_end": obs, "kind": "survival"}


def survival_table(summary_or_contracts: pd.DataFrame | str | os.PathLike, *args, **kwargs):
    """The cohort x period survival table: number alive at the start of each period.

    Parameters
    ----------
    summary_or_contracts : pandas.DataFrame or path
        A :func:`contract_summary` table, or contracts (a frame or files) with the arguments of
        :func:`contract_summary` after it.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``cohort`` (sorted), integer columns ``0..K``: the number of the cohort's
        customers who paid renewal ``k`` (column 0: the cohort's size), float64 with NaN where
        some customer of the cohort is still active before renewal ``k`` (not yet observed that
        far). ``attrs`` as the summary's, ``kind = "survival"``.

    Examples
    --------
    >>> c = pd.DataFrame({"customer_id": [1, 2, 3], "start": ["2024-01-05"] * 3,
    ...                   "end": [None, "2024-02-01", "2024-03-20"]})
    >>> survival_table(c, "M", "2024-04-30").iloc[0].tolist()
    [3.0, 2.0, 2.0, 1.0]
    """
    table = summary_or_contracts
    if not (isinstance(table, pd.DataFrame) and {"renewals", "churned", "cohort"} <= set(table)):
        table = contract_summary(table, *args, **kwargs)
    elif args or kwargs:
        raise ClvkitError(
            "survival_table got a contract summary and further arguments. Suggestion: pass "
            "the period and other arguments to contract_summary, or pass the contracts."
        )
    n = table["renewals"].to_numpy(np.int64)
    churned = table["churned"].to_numpy(bool)
    codes, cohorts = pd.factorize(table["cohort"], sort=True)
    K = int(n.max()) + 1
    k = np.arange(K + 1)
    paid = np.zeros((cohorts.size, K + 1))
    np.add.at(paid, codes, (n[:, None] >= k[None, :]).astype(float))
    # observed through k while no active customer has fewer than k renewals
    horizon = np.full(cohorts.size, K)
    active = ~churned
    np.minimum.at(horizon, codes[active], n[active])
    paid[k[None, :] > horizon[:, None]] = np.nan
    last = int(np.max(horizon))
    out = pd.DataFrame(paid[:, : last + 1], index=pd.Index(cohorts, name="cohort"))
    out.columns = pd.RangeIndex(last + 1)
    out.attrs.update(
        _survival_attrs(table.attrs.get("time_unit", ""), table.attrs.get("observation_end"))
    )
    return out


def cohort_counts(
    alive: Sequence[float] | Mapping[Hashable, Sequence[float]] | pd.DataFrame,
    period: str = "Y",
    *,
    size: float | None = None,
) -> pd.DataFrame:
    """A survival table from published counts (or shares) alive at the start of each period.

    Parameters
    ----------
    alive : sequence, dict of sequences or DataFrame
        Counts alive at the start of periods 0, 1, ..., K per cohort (one sequence: one cohort
        named ``"0"``; a dict: cohort -> sequence; a DataFrame: cohorts as rows, periods as
        columns, NaN after the last observed period).
    period : str
        The period (``time_unit`` of the table).
    size : float, optional
        Shares given: percentages of the cohort (first value 100) are scaled to a cohort of
        ``size`` customers, ``round(alive / alive[0] * size)``.

    Returns
    -------
    pandas.DataFrame
        As :func:`survival_table`.

    Examples
    --------
    >>> cohort_counts([100, 63.1, 46.8], size=1000).iloc[0].tolist()
    [1000.0, 631.0, 468.0]
    """
    unit, _, _ = _period(period)
    if isinstance(alive, pd.DataFrame):
        rows = {i: alive.loc[i].to_numpy(np.float64) for i in alive.index}
    elif isinstance(alive, Mapping):
        rows = {k: np.asarray(v, dtype=np.float64) for k, v in alive.items()}
    else:
        rows = {"0": np.asarray(alive, dtype=np.float64)}
    if not rows:
        raise ClvkitError("argument 'alive' is empty. Suggestion: counts per period.")
    K = max(v.size for v in rows.values())
    mat = np.full((len(rows), K), np.nan)
    for i, v in enumerate(rows.values()):
        v = v[~np.isnan(v)] if np.isnan(v).any() else v
        if v.ndim != 1 or v.size == 0:
            raise ClvkitError("argument 'alive' has an empty cohort. Suggestion: counts.")
        if size is not None:
            v = np.round(v / v[0] * float(size))
        mat[i, : v.size] = v
    obs = ~np.isnan(mat)
    vals = np.where(obs, mat, 0.0)
    bad = obs & ((vals < 0) | (vals != np.round(vals)))
    if bad.any():
        r, j = np.argwhere(bad)[0]
        raise bad_rows_error(
            "argument 'alive'", "is not a count (a whole number >= 0)", int(bad.sum()),
            {"cohort": list(rows)[r], "period": int(j), "alive": float(mat[r, j])},
            "pass counts, or shares with size= (the cohort's number of customers).",
        )  # fmt: skip
    inc = obs[:, 1:] & (vals[:, 1:] > vals[:, :-1])
    if inc.any():
        r, j = np.argwhere(inc)[0]
        raise bad_rows_error(
            "argument 'alive'", "increases from one period to the next", int(inc.sum()),
            {"cohort": list(rows)[r], "period": int(j) + 1, "alive": float(mat[r, j + 1])},
            "counts alive can only fall: pass the customers of the cohort still paying.",
        )  # fmt: skip
    out = pd.DataFrame(mat, index=pd.Index([str(k) for k in rows], name="cohort"))
    out.columns = pd.RangeIndex(K)
    out.attrs.update(_survival_attrs(unit, None))
    return out
