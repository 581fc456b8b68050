"""Explicit time units: parsing, conversion and the attribute names they travel under.

A time unit is a fixed duration (``"D"``, ``"W"``, ``"30D"``, ``"4.345W"``, any pandas Timedelta
string) or a mean calendar period: a month ``"M"`` is 365.25 / 12 = 30.4375 days, a quarter
``"Q"`` 91.3125 days and a year ``"Y"`` 365.25 days, the same 365.25-day year the value layer
discounts with (multiples too: ``"12M"``, ``"0.5Y"``). Every RFM summary and every fitted model
stores its unit, so that horizons are never misread.

Spellings (pandas refuses ``"M"``/``"Y"`` and reads ``"m"`` as minutes):

- month: ``"M"``, ``"mo"``, ``"month"``, ``"months"`` (any case but the bare ``"m"``);
- quarter: ``"Q"``, ``"q"``, ``"quarter"``, ``"quarters"``;
- year: ``"Y"``, ``"y"``, ``"year"``, ``"years"``, ``"yr"``;
- a bare ``"m"`` (``"12m"``) is refused as ambiguous: write ``"M"`` for months or ``"min"`` for
  minutes.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from clvkit.errors import ClvkitError

__all__ = [
    "CALENDAR_DAYS",
    "TIME_UNIT_ATTR",
    "ZONED_TEXT",
    "check_tz",
    "duration_in_units",
    "format_time_unit",
    "parse_date",
    "parse_time_unit",
    "to_units",
    "tz_error",
]

#: Key under which the time unit is stored in ``DataFrame.attrs`` and model attrs.
TIME_UNIT_ATTR = "time_unit"

#: A date string is *zoned* when a time of day is followed by a UTC offset or zone designator
#: (``"...T10:00Z"``, ``"... 10:00:00+02:00"``, ``"... 10:00 +0530"``, ``"... 10:00 UTC"``). A bare
#: date such as ``"2024-01-01"`` ends in ``-01`` but has no time of day, so it is not zoned. The
#: same pattern (Python ``re`` and DuckDB's RE2 read it alike) decides on every route.
ZONED_TEXT = (
    r"[0-9]:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]+)?)?\s*(?:[Zz]|UTC|[+-][0-9]{2}(?::?[0-9]{2})?)\s*$"
)

_BARE = re.compile(r"^\s*([A-Za-z]+)\s*$")

#: Days in the mean calendar periods (a 365.25-day year, as the value layer discounts with).
CALENDAR_DAYS = {"Y": 365.25, "Q": 365.25 / 4, "M": 365.25 / 12}

_CALENDAR_WORDS = {
    "M": ("M", "mo", "mon", "month", "months"),
    "Q": ("Q", "q", "quarter", "quarters"),
    "Y": ("Y", "y", "yr", "yrs", "year", "years"),
}
_CALENDAR = re.compile(
    r"^\s*([-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)?\s*([A-Za-z]+)\s*$"
)


def _calendar_unit(word: str) -> str | None:
    """``"M"``, ``"Q"`` or ``"Y"`` for a calendar-period word, else None (case rules above)."""
    for code, words in _CALENDAR_WORDS.items():
        if word in words or (len(word) > 1 and word.lower() in words):
            return code
    return None


def parse_time_unit(unit: str | pd.Timedelta, argument: str = "time_unit") -> pd.Timedelta:
    """Turn a time unit into a positive :class:`pandas.Timedelta`.

    Parameters
    ----------
    unit : str or pandas.Timedelta
        ``"D"``, ``"W"``, ``"h"``, a Timedelta string such as ``"30D"`` or ``"4.345W"``, or a
        mean calendar period: ``"M"`` (30.4375 days), ``"Q"`` (91.3125 days), ``"Y"`` (365.25
        days), with an optional multiple (``"12M"``, ``"0.5Y"``); see the module docstring.
    argument : str
        The argument name to show in errors.

    Returns
    -------
    pandas.Timedelta

    Examples
    --------
    >>> parse_time_unit("W")
    Timedelta('7 days 00:00:00')
    >>> parse_time_unit("30D").days
    30
    >>> parse_time_unit("M"), parse_time_unit("1Y") / pd.Timedelta(days=1)
    (Timedelta('30 days 10:30:00'), 365.25)
    """
    if isinstance(unit, pd.Timedelta):
        td = unit
    elif isinstance(unit, str):
        text = unit.strip()
        cal = _CALENDAR.match(text)
        code = _calendar_unit(cal.group(2)) if cal else None
        if cal and cal.group(2) == "m":
            raise ClvkitError(
                f"argument {argument!r} is {unit!r}: a lower-case 'm' is ambiguous (pandas reads "
                "it as minutes). Suggestion: write 'M' (or 'mo', 'month') for mean calendar "
                "months of 30.4375 days, or 'min' for minutes."
            )
        if code is not None:
            count = float(cal.group(1)) if cal.group(1) else 1.0
            td = pd.Timedelta(days=count * CALENDAR_DAYS[code]) if np.isfinite(count) else None
            if td is None or count <= 0:
                raise ClvkitError(
                    f"argument {argument!r} must be a positive duration, got {unit!r}. "
                    "Suggestion: use e.g. 'M', '12M' or '0.5Y'."
                )
        else:
            if _BARE.match(text):
                text = "1" + text
            try:
                td = pd.Timedelta(text)
            except (ValueError, TypeError, OverflowError) as exc:
                raise ClvkitError(
                    f"argument {argument!r} is {unit!r}, which is not a duration. "
                    "Suggestion: use 'D', 'W', 'M' (a mean calendar month, 30.4375 days), 'Q', "
                    "'Y' (365.25 days), or a multiple such as '30D', '4.345W', '12M' or '0.5Y'."
                ) from exc
    else:
        raise ClvkitError(
            f"argument {argument!r} must be a string such as 'W' or a pandas.Timedelta, "
            f"got {type(unit).__name__}."
        )
    if pd.isna(td) or td <= pd.Timedelta(0):
        raise ClvkitError(
            f"argument {argument!r} must be a positive duration, got {unit!r}. "
            "Suggestion: use e.g. 'D', 'W', 'M' or '12M'."
        )
    td = td.round("ms")  # '4.345W' is 30D 09:57:35.999999999 in float arithmetic
    if td <= pd.Timedelta(0):
        raise ClvkitError(
            f"argument {argument!r} must be a positive duration, got {unit!r}. "
            "Suggestion: use e.g. 'D', 'W', 'M' or '12M'."
        )
    return td


def parse_date(value: Any, argument: str) -> pd.Timestamp:
    """A date argument as a timezone-naive ``pandas.Timestamp``, or a clear ``ClvkitError``.

    Examples
    --------
    >>> parse_date("1997-09-30", "calibration_end")
    Timestamp('1997-09-30 00:00:00')
    """
    try:
        ts = pd.Timestamp(value)
    except (TypeError, ValueError, OverflowError) as exc:
        raise ClvkitError(
            f"argument {argument!r} is {value!r}, which is not a date. "
            "Suggestion: use 'YYYY-MM-DD'."
        ) from exc
    if pd.isna(ts):
        raise ClvkitError(f"argument {argument!r} is missing. Suggestion: use 'YYYY-MM-DD'.")
    return ts.tz_localize(None) if ts.tzinfo is not None else ts


def check_tz(tz: Any) -> str:
    """The zone that zoned timestamps are converted to: ``tz`` checked, or ``"UTC"`` for None.

    Examples
    --------
    >>> check_tz(None), check_tz("Europe/Berlin")
    ('UTC', 'Europe/Berlin')
    """
    if tz is None:
        return "UTC"
    import zoneinfo

    try:
        if not isinstance(tz, str) or not tz.strip():
            raise ValueError(tz)
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError, OSError) as exc:
        raise tz_error(tz) from exc
    return tz


def tz_error(tz: Any) -> ClvkitError:
    """The error for an unknown time zone name (shared by every route)."""
    return ClvkitError(
        f"argument 'tz' is {tz!r}, which is not a time zone name. Suggestion: pass an IANA "
        "name such as 'UTC', 'Europe/Berlin' or 'America/New_York', or None for UTC."
    )


def format_time_unit(unit: str | pd.Timedelta) -> str:
    """Canonical string for a time unit, stable across save and load.

    Examples
    --------
    >>> format_time_unit("W"), format_time_unit("30D"), format_time_unit("12h")
    ('W', '30D', '0.5D')
    >>> format_time_unit("month"), format_time_unit("3M"), format_time_unit("12M")
    ('M', 'Q', 'Y')
    >>> format_time_unit("0.5Y"), format_time_unit("2Y")
    ('6M', '2Y')
    """
    td = parse_time_unit(unit)
    if td == pd.Timedelta(days=7):
        return "W"
    if td == pd.Timedelta(days=1):
        return "D"
    days = td / pd.Timedelta(days=1)
    if td % pd.Timedelta(days=1) != pd.Timedelta(0):  # not whole days: a calendar multiple?
        # years, one quarter, months, quarters: '12M' -> 'Y', '3M' -> 'Q', '0.5Y' -> '6M'
        for code, single in (("Y", False), ("Q", True), ("M", False), ("Q", False)):
            count = days / CALENDAR_DAYS[code]
            k = round(count)
            if (
                k >= 1
                and (k == 1 or not single)
                and pd.Timedelta(days=k * CALENDAR_DAYS[code]) == td
            ):
                return code if k == 1 else f"{k}{code}"
    return f"{days:.12g}D"


def to_units(
    delta: pd.Timedelta | np.ndarray | pd.Series | pd.TimedeltaIndex,
    unit: str | pd.Timedelta,
) -> np.ndarray | float:
    """Express a duration (or array of durations) in the given time unit, as float.

    Examples
    --------
    >>> to_units(pd.Timedelta(days=14), "W")
    2.0
    """
    td = parse_time_unit(unit)
    if isinstance(delta, pd.Timedelta):
        return float(delta / td)
    arr = np.asarray(delta, dtype="timedelta64[ns]")
    return arr.astype(np.int64) / float(td.value)


def duration_in_units(value: Any, unit: str | pd.Timedelta | None, argument: str) -> float:
    """A time argument as a float number of ``unit``: a number (already in units) or a duration
    string (``"26W"``, ``"365D"``) converted with ``unit``. Finite and >= 0, else a ClvkitError.

    Examples
    --------
    >>> duration_in_units("26W", "W", "t"), duration_in_units(4, "W", "t")
    (26.0, 4.0)
    >>> duration_in_units("14D", "W", "t")
    2.0
    """
    if isinstance(value, str | pd.Timedelta) and not _is_number_text(value):
        if unit is None:
            raise ClvkitError(
                f"argument {argument!r} is the duration {value!r}, but the time unit is not "
                "known. Suggestion: pass a number of time units, or data whose attrs carry "
                "'time_unit'."
            )
        return float(parse_time_unit(value, argument) / parse_time_unit(unit))
    try:
        val = float(value)
    except (TypeError, ValueError):
        val = float("nan")
    if not np.isfinite(val) or val < 0:
        raise ClvkitError(
            f"argument {argument!r} is {value!r}. Suggestion: a finite, non-negative number of "
            "time units, or a duration such as '26W' or '365D'."
        )
    return val


def _is_number_text(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True
