"""Purchase log -> the discrete-opportunity table of BG/BB (purchases at an opportunity grid).

A log is read exactly as :func:`clvkit.rfm_summary` reads it (through
:func:`clvkit.read_purchases`: same checks, same errors, same cleaning options, a DataFrame or a
CSV/Parquet path or glob through DuckDB), then each purchase day is put on a grid of
opportunities (calendar years, quarters or months, or a fixed duration such as ``"W"`` or
``"30D"``), and several purchases at one opportunity count once.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from clvkit.data.checks import before_first_error, iso_day
from clvkit.data.summary import end_day, read_purchases
from clvkit.errors import ClvkitError, ClvkitWarning
from clvkit.units import format_time_unit, parse_time_unit

__all__ = ["OpportunitySplit", "opportunity_split", "opportunity_summary"]

_MONTHS = {"M": 1, "Q": 3, "Y": 12}


def _calendar_months(unit: str) -> int | None:
    """Months per opportunity for a calendar unit ('M', 'Q', 'Y', '6M', '2Y', ...), else None."""
    code = unit[-1]
    if code not in _MONTHS:
        return None
    count = unit[:-1]
    try:
        k = int(count) if count else 1
    except ValueError:
        return None
    return k * _MONTHS[code]


def _grid(unit: str, origin: Any, first_day: int) -> tuple[Callable, Callable, str]:
    """Functions day number -> opportunity number and opportunity -> its first day
    (``datetime64[D]``), and a description of the grid of a log whose first day is
    ``first_day``."""
    months = _calendar_months(unit)
    if months is not None:
        if origin is not None:
            raise ClvkitError(
                f"argument 'origin' is for fixed-duration opportunities; the opportunity "
                f"{unit!r} is a calendar period, whose grid starts with the calendar. "
                "Suggestion: drop origin, or pass a fixed duration such as opportunity='W'."
            )

        def calendar(days: np.ndarray) -> np.ndarray:
            m = np.asarray(days, dtype="datetime64[D]").astype("datetime64[M]").astype(np.int64)
            return (m + 1970 * 12) // months  # months since year 0: years start in January

        def calendar_start(o: np.ndarray) -> np.ndarray:
            m = np.asarray(o, dtype=np.int64) * months - 1970 * 12
            return m.astype("datetime64[M]").astype("datetime64[D]")

        return calendar, calendar_start, f"calendar {unit}"
    length = parse_time_unit(unit, "opportunity") / pd.Timedelta(days=1)
    if length != round(length) or length < 1:
        raise ClvkitError(
            f"argument 'opportunity' is {unit!r} ({length:g} days): a fixed-duration "
            "opportunity must be a whole number of days. Suggestion: use 'W', '30D', or a "
            "calendar period 'M', 'Q' or 'Y'."
        )
    step = round(length)
    start = first_day if origin is None else end_day(origin, "origin")
    if start > first_day:
        raise ClvkitError(
            f"argument 'origin' ({iso_day(start)}) is after the first purchase "
            f"({iso_day(first_day)}). Suggestion: pass an origin on or before it."
        )

    def fixed(days: np.ndarray) -> np.ndarray:
        return (np.asarray(days, dtype=np.int64) - start) // step

    def fixed_start(o: np.ndarray) -> np.ndarray:
        return (start + np.asarray(o, dtype=np.int64) * step).astype("datetime64[D]")

    return fixed, fixed_start, f"{step}-day periods"


def opportunity_summary(
    transactions: pd.DataFrame | str | os.PathLike,
    *,
    customer_id: Hashable = "customer_id",
    date: Hashable = "date",
    amount: Hashable | None = None,
    opportunity: str = "Y",
    observation_end: Any = None,
    calibration_end: Any = None,
    origin: Any = None,
    tz: str | None = None,
    returns: str = "error",
    zero_amounts: str = "keep",
    duplicates: str = "keep",
    currency: Hashable | None = None,
    fx_rate: Hashable | None = None,
    reporting_currency: str | None = None,
) -> pd.DataFrame:
    """Summarize a purchase log on a grid of discrete opportunities, for BG/BB.

    Opportunity 0 of a customer is the one of its first purchase; ``frequency`` counts the
    later opportunities with a purchase (several purchases at one opportunity count once, their
    amounts summed), ``recency`` is the last of them (0 if none) and ``n`` the opportunities
    after the first up to the one holding ``observation_end``. End the observation on the last
    day of an opportunity: a partly observed last opportunity counts as a whole one.

    Parameters
    ----------
    transactions : pandas.DataFrame, str or os.PathLike
        One row per purchase, or a CSV/Parquet path or glob (read by DuckDB). Not modified.
    customer_id, date, amount : str
        Column names, as in :func:`clvkit.rfm_summary`; ``amount`` adds ``monetary_value``.
    opportunity : str
        The opportunity period: calendar ``"Y"`` (default), ``"Q"``, ``"M"`` or a multiple
        (``"6M"``; multiples that divide a year start in January), or a fixed whole number of
        days (``"W"``, ``"14D"``) counted from ``origin``.
    observation_end : date-like, optional
        Last day observed (inclusive); default the last date of the log. Later rows are left
        out with a :class:`~clvkit.errors.ClvkitWarning`.
    calibration_end : date-like, optional
        With it, ``frequency``, ``recency`` and ``n`` describe opportunities up to the one
        holding ``calibration_end`` (end it on the last day of an opportunity: purchases are
        assigned by opportunity), and ``frequency_holdout`` (opportunities with a purchase
        after it, up to ``observation_end``), with ``amount`` ``monetary_value_holdout`` (mean
        spend per holdout opportunity with a purchase, 0 without) and ``n_holdout``
        (opportunities after it) are
        added; customers whose first purchase is later are left out (counted in
        ``attrs["late_customers"]``).
    origin : date-like, optional
        First day of the fixed-duration grid (default: the first day of the log).
    tz, returns, zero_amounts, duplicates, currency, fx_rate, reporting_currency
        As in :func:`clvkit.rfm_summary`.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` (sorted) with ``frequency``, ``recency``, ``n`` (int64),
        with ``amount`` ``monetary_value`` (float64: mean spend per repeat opportunity, 0 when
        frequency is 0), and with ``calibration_end`` ``frequency_holdout`` and ``n_holdout``
        (int64). ``attrs``: ``time_unit`` (the opportunity period, canonical),
        ``observation_end``, ``kind="discrete"``, ``opportunity`` (the grid), ``cleaning``,
        ``currency``, ``n_rows_after_observation_end``, and with a split
        ``calibration_end`` and ``late_customers``.

    Raises
    ------
    ClvkitError
        As :func:`clvkit.rfm_summary` for the log; for a bad ``opportunity`` or ``origin``, an
        ``observation_end`` before the first purchase, or a ``calibration_end`` after
        ``observation_end``.

    Examples
    --------
    >>> log = pd.DataFrame({"customer_id": [1, 1, 1, 1, 2],
    ...                     "date": ["2020-03-01", "2021-05-01", "2021-06-01", "2023-01-09",
    ...                              "2022-02-02"]})
    >>> opportunity_summary(log, observation_end="2023-12-31")  # doctest: +NORMALIZE_WHITESPACE
                 frequency  recency  n
    customer_id
    1                    2        3  3
    2                    0        0  1
    """
    return _on_grid(
        transactions, customer_id=customer_id, date=date, amount=amount, opportunity=opportunity,
        observation_end=observation_end, calibration_end=calibration_end, origin=origin, tz=tz,
        returns=returns, zero_amounts=zero_amounts, duplicates=duplicates, currency=currency,
        fx_rate=fx_rate, reporting_currency=reporting_currency,
    ).table  # fmt: skip


@dataclass
class Grid:
    """A log on its opportunity grid: the summary ``table`` (its customers: ``customers``, a
    mask over all customer codes) and the per-(customer code ``c``, opportunity ``o``) rows
    with a purchase; ``first``, ``cal`` and ``end``: each code's first opportunity and the
    opportunities of the calibration and observation ends; ``first_day(o)``: the first day of
    opportunity ``o`` (``datetime64[D]``)."""

    table: pd.DataFrame
    c: np.ndarray
    o: np.ndarray
    first: np.ndarray
    cal: int
    end: int
    customers: np.ndarray
    first_day: Callable[[np.ndarray], np.ndarray]


def _on_grid(
    transactions: pd.DataFrame | str | os.PathLike,
    *,
    customer_id: Hashable,
    date: Hashable,
    amount: Hashable | None,
    opportunity: str,
    observation_end: Any,
    calibration_end: Any,
    origin: Any,
    tz: str | None,
    **cleaning: Any,
) -> Grid:
    """:func:`opportunity_summary`, keeping the grid (see :class:`Grid`)."""
    unit = format_time_unit(opportunity) if isinstance(opportunity, str) else None
    if unit is None:
        raise ClvkitError(
            f"argument 'opportunity' must be a string such as 'Y', 'M' or 'W', got "
            f"{type(opportunity).__name__}. Suggestion: opportunity='Y'."
        )
    log = read_purchases(
        transactions, customer_id=customer_id, date=date, amount=amount, tz=tz, **cleaning
    )
    if len(log) == 0:
        raise ClvkitError(
            "the purchase log has no rows left after cleaning. Suggestion: check the cleaning "
            "options (returns, zero_amounts) and the input."
        )
    days = log[date].to_numpy(dtype="datetime64[D]").astype(np.int64)
    first_day, last_day = int(days.min()), int(days.max())
    end = last_day if observation_end is None else end_day(observation_end, "observation_end")
    example = {"first purchase": iso_day(first_day)}
    if end < first_day:
        raise before_first_error("observation_end", end, first_day, len(log), example)
    cal = None if calibration_end is None else end_day(calibration_end, "calibration_end")
    if cal is not None and cal > end:
        raise ClvkitError(
            f"argument 'calibration_end' ({iso_day(cal)}) is after observation_end "
            f"({iso_day(end)}). Suggestion: pass a calibration end before the observation end."
        )
    if cal is not None and cal < first_day:
        raise before_first_error("calibration_end", cal, first_day, len(log), example)
    opp, opening, described = _grid(unit, origin, first_day)
    keep = days <= end
    n_after = int(keep.size - keep.sum())
    if n_after:
        warnings.warn(
            f"{n_after:,} of {keep.size:,} rows are dated after observation_end="
            f"{iso_day(end)} and were left out of the summary (their count is in "
            "attrs['n_rows_after_observation_end']). Suggestion: pass calibration_end to keep "
            "them as a holdout period.",
            ClvkitWarning,
            stacklevel=2,
        )
    ids = log[customer_id].to_numpy()[keep]
    o = opp(days[keep])
    amt = log[amount].to_numpy(dtype=np.float64)[keep] if amount is not None else None
    codes, uniques = pd.factorize(pd.Series(ids), sort=True)
    # one row per (customer, opportunity), amounts summed
    frame = pd.DataFrame({"c": codes, "o": o, "a": amt if amt is not None else 0.0})
    per = frame.groupby(["c", "o"], sort=True)["a"].sum().reset_index()
    c = per["c"].to_numpy()
    po = per["o"].to_numpy(dtype=np.int64)
    pa = per["a"].to_numpy(dtype=np.float64)
    first_o = np.full(uniques.size, np.iinfo(np.int64).max)
    np.minimum.at(first_o, c, po)
    rel = po - first_o[c]
    end_o = int(opp(np.array([end]))[0])
    cal_o = int(opp(np.array([cal]))[0]) if cal is not None else end_o
    customers = first_o <= cal_o  # not late
    in_cal = (rel > 0) & (po <= cal_o)
    size = uniques.size
    freq = np.bincount(c[in_cal], minlength=size)
    rec = np.zeros(size, dtype=np.int64)
    np.maximum.at(rec, c[in_cal], rel[in_cal])
    out = pd.DataFrame(
        {
            "frequency": freq.astype(np.int64),
            "recency": rec,
            "n": (cal_o - first_o).astype(np.int64),
        },
        index=pd.Index(uniques, name="customer_id"),
    )
    if amount is not None:
        spend = np.bincount(c[in_cal], weights=pa[in_cal], minlength=size)
        out["monetary_value"] = np.where(freq > 0, spend / np.maximum(freq, 1), 0.0)
    if cal is not None:
        hold = po > cal_o
        freq_h = np.bincount(c[hold], minlength=size)
        out["frequency_holdout"] = freq_h.astype(np.int64)
        if amount is not None:
            spend_h = np.bincount(c[hold], weights=pa[hold], minlength=size)
            out["monetary_value_holdout"] = np.divide(
                spend_h, freq_h, out=np.zeros(size), where=freq_h > 0
            )
        out["n_holdout"] = np.full(size, end_o - cal_o, dtype=np.int64)
    attrs = dict(log.attrs)
    attrs.update(
        time_unit=unit,
        observation_end=iso_day(end),
        kind="discrete",
        opportunity=described,
        n_rows_after_observation_end=n_after,
    )
    if cal is not None:
        attrs.update(calibration_end=iso_day(cal), late_customers=int((~customers).sum()))
    out.attrs = attrs
    return Grid(out[customers], c, po, first_o, cal_o, end_o, customers, opening)


@dataclass
class OpportunitySplit:
    """A log split at a calibration end on its opportunity grid; see :func:`opportunity_split`.

    Times count opportunity periods from the start of the origin's (the earliest first
    opportunity): period ``k`` is ``[k, k + 1)`` and holds opportunity ``k``, whose purchases
    are placed at its middle, ``k + 0.5``. So a backtest that bins events by period and a
    model's expected purchases by an age (floored to whole opportunities) agree.

    ``table``: :func:`opportunity_summary` with ``calibration_end``. ``birth``: the middle of
    each table customer's first opportunity; ``repeat_customer`` and ``repeat_time``: position
    in ``table`` and middle of every later opportunity with a purchase up to the observation
    end; ``origin``: the first day of the origin's opportunity; ``calibration_end`` and
    ``horizon``: the ends of the opportunities holding the calibration and observation ends
    (so a customer's ``n`` is ``floor(calibration_end - birth)`` and ``n_holdout`` is
    ``horizon - calibration_end``).
    """

    table: pd.DataFrame
    birth: np.ndarray
    repeat_customer: np.ndarray
    repeat_time: np.ndarray
    origin: pd.Timestamp
    calibration_end: float
    horizon: float


def opportunity_split(
    transactions: pd.DataFrame | str | os.PathLike,
    *,
    calibration_end: Any,
    observation_end: Any,
    opportunity: str = "Y",
    customer_id: Hashable = "customer_id",
    date: Hashable = "date",
    amount: Hashable | None = None,
    origin: Any = None,
    tz: str | None = None,
    **cleaning: Any,
) -> OpportunitySplit:
    """A log read once and split for a backtest on its opportunity grid.

    Parameters and errors as :func:`opportunity_summary` (``cleaning``: its ``returns``,
    ``zero_amounts``, ``duplicates``, ``currency``, ``fx_rate``, ``reporting_currency``); both
    dates are required.

    Examples
    --------
    >>> log = pd.DataFrame({"customer_id": [1, 1, 1, 2],
    ...                     "date": ["2020-03-01", "2021-05-01", "2023-01-09", "2021-02-02"]})
    >>> sp = opportunity_split(log, calibration_end="2021-12-31", observation_end="2023-12-31")
    >>> sp.birth.tolist(), sp.repeat_time.tolist(), sp.calibration_end, sp.horizon
    ([0.5, 1.5], [1.5, 3.5], 2.0, 4.0)
    >>> sp.table["n"].tolist(), str(sp.origin.date())
    ([1, 0], '2020-01-01')
    """
    for name, value in (("calibration_end", calibration_end), ("observation_end", observation_end)):
        if value is None:
            raise ClvkitError(
                f"argument {name!r} is required for a split. Suggestion: pass the last day of "
                "the calibration and of the holdout window."
            )
    g = _on_grid(
        transactions, customer_id=customer_id, date=date, amount=amount, opportunity=opportunity,
        observation_end=observation_end, calibration_end=calibration_end, origin=origin, tz=tz,
        **cleaning,
    )  # fmt: skip
    codes = np.flatnonzero(g.customers)  # table row i is customer code codes[i]
    row = np.full(g.customers.size, -1)
    row[codes] = np.arange(codes.size)
    o0 = int(g.first[codes].min())
    repeat = (g.o > g.first[g.c]) & g.customers[g.c]
    return OpportunitySplit(
        table=g.table,
        birth=g.first[codes] - o0 + 0.5,
        repeat_customer=row[g.c[repeat]],
        repeat_time=g.o[repeat] - o0 + 0.5,
        origin=pd.Timestamp(g.first_day(np.array([o0]))[0]),
        calibration_end=float(g.cal - o0 + 1),
        horizon=float(g.end - o0 + 1),
    )
