"""Contractual calibration/holdout split: the contract summary as of a calibration end, and
what each of its subscribers did between the calibration end and the observation end.

The calibration table is :func:`clvkit.contract_summary` of the contracts cut at the
calibration end (contracts starting after it dropped, ends after it blanked: still active), so
it is exactly what an analyst would have had on that day. Spells are matched between the two
windows by (customer id, spell start), never by the index label (a customer's ``"#2"`` spell
in the full window may not exist yet at the calibration end).

Dates are parsed by :func:`clvkit.contract_summary` itself (never by a second rule), and the
renewal grid (which renewals are due by a date) comes from it too: a subscription that started
on ``start`` and is still active on ``D`` has paid every renewal due by ``D``.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from clvkit.data.contracts import contract_summary, read_contracts
from clvkit.errors import ClvkitError
from clvkit.units import format_time_unit, parse_date, parse_time_unit

__all__ = ["contract_calibration_holdout", "period_ends", "renewals_due"]

_CAL_MONTHS = {"M": 1, "Q": 3, "Y": 12}
# columns a DataFrame input may carry that are not contracts (a split table is not contracts)
_HOLDOUT_COLUMNS = ("renewals_holdout", "churned_holdout", "duration_holdout")


def period_ends(start: Any, end: Any, period: str) -> list[pd.Timestamp]:
    """The ends of the whole periods after ``start`` up to ``end``: ``start + k`` periods,
    ``k = 1, 2, ...``; calendar periods fall on the same day of the month, clipped to the
    month's last day (as renewals do), or on month ends when ``start`` is a month end.

    Examples
    --------
    >>> [str(d.date()) for d in period_ends("2024-06-30", "2024-09-30", "M")]
    ['2024-07-31', '2024-08-31', '2024-09-30']
    >>> [str(d.date()) for d in period_ends("2024-01-15", "2024-03-20", "M")]
    ['2024-02-15', '2024-03-15']
    >>> [str(d.date()) for d in period_ends("2024-01-01", "2024-01-30", "2W")]
    ['2024-01-15', '2024-01-29']
    """
    unit = format_time_unit(period)
    s = parse_date(start, "calibration_end").normalize()
    e = parse_date(end, "observation_end").normalize()
    out: list[pd.Timestamp] = []
    k = 1
    while True:
        if unit[-1] in _CAL_MONTHS:
            months = (int(unit[:-1]) if len(unit) > 1 else 1) * _CAL_MONTHS[unit[-1]]
            if s.is_month_end:  # month ends stay month ends: 30 June, 31 July, 31 August...
                d = s + pd.offsets.MonthEnd(k * months)
            else:  # the same day of the month, clipped to the month's last day
                d = s + pd.DateOffset(months=k * months)
        else:
            d = s + k * parse_time_unit(unit, "period")
        if d > e:
            return out
        out.append(pd.Timestamp(d))
        k += 1


def renewals_due(
    starts: Sequence[Any] | np.ndarray | pd.Series, period: str, dates: Sequence[Any]
) -> tuple[np.ndarray, np.ndarray]:
    """Renewals due by each date, and the age then, of subscriptions started on ``starts``.

    Parameters
    ----------
    starts : array of dates
        Spell starts (the ``start`` column of a contract summary).
    period : str
        The billing period (as :func:`clvkit.contract_summary`'s).
    dates : sequence of dates
        Dates on or after every start.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray)
        ``due`` (int64, ``(n, len(dates))``): renewals on or before each date (0 in the first
        period); ``age`` (float64, same shape): periods from the start to each date, as
        :func:`clvkit.contract_summary`'s ``age`` of a subscriber still active then.

    Examples
    --------
    >>> due, age = renewals_due(["2024-01-31"], "M", ["2024-02-29", "2024-03-30"])
    >>> due.tolist(), age.round(3).tolist()
    ([[1, 1]], [[1.0, 1.968]])
    """
    starts = pd.Series(pd.to_datetime(np.asarray(starts)).normalize())
    n = len(starts)
    due = np.zeros((n, len(dates)), dtype=np.int64)
    age = np.zeros((n, len(dates)), dtype=np.float64)
    frame = pd.DataFrame({"customer_id": np.arange(n), "start": starts.to_numpy(), "end": None})
    for j, d in enumerate(dates):
        # each start its own active subscription, observed to d: contract_summary's own grid
        s = contract_summary(frame, period, d)
        due[:, j] = s["renewals"].to_numpy()
        age[:, j] = s["age"].to_numpy()
    return due, age


def _date_values(frame: pd.DataFrame, col: Hashable, tz: str | None) -> np.ndarray:
    """A date column as datetime64[D] (NaT where empty), parsed by contract_summary: every
    non-empty value becomes the start of its own one-row subscription."""
    s = frame[col]
    empty = s.isna().to_numpy().copy()
    if s.dtype == object or pd.api.types.is_string_dtype(s.dtype):
        empty |= (s.astype("string").str.strip() == "").fillna(True).to_numpy(dtype=bool)
    out = np.full(len(s), np.datetime64("NaT"), dtype="datetime64[D]")
    idx = np.flatnonzero(~empty)
    if idx.size:
        one = pd.DataFrame({"customer_id": idx, "start": s.iloc[idx].reset_index(drop=True)})
        one["end"] = None
        parsed = contract_summary(one, "D", tz=tz)  # sorted by id = idx order
        out[idx] = parsed["start"].to_numpy().astype("datetime64[D]")
    return out


def _spell_keys(summary: pd.DataFrame) -> pd.MultiIndex:
    """(customer code, spell start) of a summary of contracts whose ids are int64 codes (the
    index holds the code, or ``"<code>"`` / ``"<code>#k"`` when some customer has spells)."""
    codes = [int(str(label).split("#", 1)[0]) for label in summary.index]
    return pd.MultiIndex.from_arrays([codes, summary["start"].to_numpy()])


def contract_calibration_holdout(
    contracts: pd.DataFrame | str | os.PathLike,
    period: str = "M",
    calibration_end: Any = None,
    observation_end: Any = None,
    *,
    customer_id_col: Hashable = "customer_id",
    start_col: Hashable = "start",
    end_col: Hashable = "end",
    fee_col: Hashable | None = None,
    tz: str | None = "UTC",
) -> pd.DataFrame:
    """The contract summary at ``calibration_end`` with each subscriber's holdout behaviour.

    Parameters
    ----------
    contracts : pandas.DataFrame or path
        As :func:`clvkit.contract_summary`: one row per contract (customer id, start, end or
        empty while active, optional fee), or the path (or glob) of CSV/Parquet files read
        with DuckDB (same table, same errors).
    period : str
        Billing period (``"M"``, ``"Q"``, ``"Y"``, multiples, or a fixed duration ``"4W"``).
    calibration_end : date
        Last day of calibration: contracts starting after it are dropped, ends after it are
        treated as still active.
    observation_end : date, optional
        Last day of the holdout; default the latest start or end date in the table.
    customer_id_col, start_col, end_col, fee_col, tz
        As :func:`clvkit.contract_summary`.

    Returns
    -------
    pandas.DataFrame
        Exactly ``contract_summary`` of the cut table (index, ``cohort``, ``start``,
        ``renewals``, ``churned``, ``age``, ``fee``), plus ``renewals_holdout`` (int64:
        renewals paid after ``calibration_end`` up to ``observation_end``),
        ``churned_holdout`` (bool: the spell ended by ``observation_end``; True for spells
        already churned at ``calibration_end``) and ``duration_holdout`` (float64: periods
        from ``calibration_end`` to ``observation_end`` on the subscriber's renewal grid, 0
        for spells churned by ``calibration_end``; a model's ``expected_purchases`` over it
        counts exactly the renewals due). ``attrs``: the summary's, ``calibration_end`` and
        ``observation_end`` (ISO dates), ``time_unit``.

    Raises
    ------
    ClvkitError
        Every error of :func:`clvkit.contract_summary` (on the whole table, as of
        ``observation_end``), a missing ``calibration_end``, a ``calibration_end`` after
        ``observation_end``, or no contract started by ``calibration_end``.

    Examples
    --------
    >>> c = pd.DataFrame({"customer_id": [1, 2, 3],
    ...                   "start": ["2024-01-10", "2024-02-05", "2024-05-01"],
    ...                   "end": [None, "2024-05-20", None]})
    >>> t = contract_calibration_holdout(c, "M", "2024-03-31", "2024-06-30")
    >>> t[["renewals", "churned", "renewals_holdout", "churned_holdout"]]
    ... # doctest: +NORMALIZE_WHITESPACE
                 renewals  churned  renewals_holdout  churned_holdout
    customer_id
    1                   2    False                 3            False
    2                   1    False                 2             True
    """
    if calibration_end is None:
        raise ClvkitError(
            "argument 'calibration_end' is missing. Suggestion: pass the last day of the "
            "calibration window, e.g. calibration_end='2024-06-30'."
        )
    cal_ts = parse_date(calibration_end, "calibration_end").normalize()
    cols = [customer_id_col, start_col, end_col] + ([fee_col] if fee_col is not None else [])
    kw: dict[str, Any] = {
        "customer_id_col": customer_id_col,
        "start_col": start_col,
        "end_col": end_col,
        "tz": tz,
    }
    if isinstance(contracts, (str, os.PathLike)):
        frame = read_contracts(contracts, cols)  # the same reader as contract_summary(path)
    elif isinstance(contracts, pd.DataFrame):
        frame = contracts
    else:
        frame = contracts  # contract_summary names the problem
    # the whole table, checked once with contract_summary's errors (the caller's ids in them)
    full = contract_summary(frame, period, observation_end, fee_col=fee_col, **kw)
    obs = full.attrs["observation_end"]
    obs_ts = pd.Timestamp(obs)
    if cal_ts > obs_ts:
        raise ClvkitError(
            f"argument 'calibration_end' is {cal_ts.date()}, after observation_end {obs}. "
            "Suggestion: a calibration end before the end of observation."
        )
    frame = frame[cols].reset_index(drop=True)  # a new frame: the caller's is untouched
    start = _date_values(frame, start_col, tz)
    end = _date_values(frame, end_col, tz)
    cal = np.datetime64(cal_ts.date(), "D")
    keep = start <= cal
    if not keep.any():
        raise ClvkitError(
            f"argument 'calibration_end' is {cal_ts.date()}, before every contract's start "
            f"(the first starts on {start.min()}). Suggestion: a later calibration end."
        )
    cut = frame[keep].copy()
    cut[end_col] = cut[end_col].where(~(end[keep] > cal))  # ends after it: still active
    table = contract_summary(cut, period, cal_ts, fee_col=fee_col, **kw)
    # the same spells with int64 codes as ids (order-preserving): unambiguous matching keys
    codes = pd.factorize(frame[customer_id_col], sort=True)[0].astype(np.int64)
    coded, coded_cut = frame.copy(), cut.copy()
    coded[customer_id_col] = codes
    coded_cut[customer_id_col] = codes[keep]
    ext = contract_summary(coded_cut, period, obs_ts, **kw)  # cut spells, active ones to obs
    whole = contract_summary(coded, period, obs_ts, **kw)
    pos = _spell_keys(whole).get_indexer(_spell_keys(ext))
    if (pos < 0).any():  # pragma: no cover - every cut spell starts a spell of the whole table
        raise ClvkitError("internal error: a calibration spell has no match in the holdout.")
    n_cal = table["renewals"].to_numpy()
    active = ~table["churned"].to_numpy(bool)
    out = table.copy()
    out["renewals_holdout"] = np.where(active, whole["renewals"].to_numpy()[pos] - n_cal, 0)
    out["renewals_holdout"] = out["renewals_holdout"].astype(np.int64)
    out["churned_holdout"] = np.where(active, whole["churned"].to_numpy(bool)[pos], True)
    dur = np.where(active, ext["age"].to_numpy() - table["age"].to_numpy(), 0.0)
    out["duration_holdout"] = np.maximum(dur, 0.0).astype(np.float64)
    out.attrs = dict(table.attrs)
    out.attrs.update(
        {
            "calibration_end": str(cal_ts.date()),
            "observation_end": obs,
            "time_unit": table.attrs["time_unit"],
        }
    )
    return out
