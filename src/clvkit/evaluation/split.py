"""A purchase log split once into what a backtest compares: the calibration/holdout table and the
cohort's first and repeat purchase days."""

from __future__ import annotations

import os
import warnings
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from clvkit.data.log_tables import check_log_table
from clvkit.data.opportunities import opportunity_split
from clvkit.data.summary import calibration_holdout, read_purchases
from clvkit.errors import ClvkitError, ClvkitWarning
from clvkit.units import format_time_unit, parse_date, parse_time_unit, to_units

__all__ = ["HoldoutSplit", "split_log"]


@dataclass
class HoldoutSplit:
    """A log split at ``calibration_end``; see :func:`split_log`.

    Attributes
    ----------
    rfm : pandas.DataFrame
        :func:`clvkit.data.calibration_holdout` table (indexed by customer id).
    birth : numpy.ndarray
        First purchase of each ``rfm`` customer, in time units from ``origin``.
    repeat_customer, repeat_time : numpy.ndarray
        Position in ``rfm`` and time (from ``origin``) of each repeat purchase day up to the
        observation end.
    origin : pandas.Timestamp
        The cohort origin: the earliest first purchase.
    calibration_end, horizon : float
        Calibration end and observation end in time units from ``origin``.
    time_unit : str
    amount : str or None
        The amount column of the log (spend is backtested only with one).
    """

    rfm: pd.DataFrame = field(repr=False)
    birth: np.ndarray = field(repr=False)
    repeat_customer: np.ndarray = field(repr=False)
    repeat_time: np.ndarray = field(repr=False)
    origin: pd.Timestamp
    calibration_end: float
    horizon: float
    time_unit: str
    amount: Hashable | None = None


def split_log(
    transactions: pd.DataFrame | str | os.PathLike,
    *,
    calibration_end: str | pd.Timestamp,
    observation_end: str | pd.Timestamp,
    time_unit: str = "W",
    customer_id: Hashable = "customer_id",
    date: Hashable = "date",
    amount: Hashable | None = None,
    tz: str | None = None,
    returns: str = "error",
    zero_amounts: str = "keep",
    duplicates: str = "keep",
    currency: Hashable | None = None,
    fx_rate: Hashable | None = None,
    reporting_currency: str | None = None,
    data: str = "rfm",
) -> HoldoutSplit:
    """Read and summarize a log once for a backtest.

    The log is read with :func:`clvkit.data.read_purchases` (a path or glob through DuckDB,
    a DataFrame validated and copied), summarized once with
    :func:`clvkit.data.calibration_holdout`, and its purchase days (same-day purchases merged,
    up to ``observation_end``) give the cohort events. Zoned timestamps and zoned
    ``calibration_end``/``observation_end`` follow the purchase-day rule (wall-clock days in
    ``tz``, default UTC), as in :func:`clvkit.rfm_summary`. The cleaning options
    (``returns``, ``zero_amounts``, ``duplicates``, ``currency``, ``fx_rate``,
    ``reporting_currency``) are those of :func:`clvkit.rfm_summary`, applied once when the log
    is read; ``rfm.attrs`` carries their counts (``cleaning``), the ``currency`` and the
    customers first seen after ``calibration_end`` (``late_customers``, with a warning).

    ``data="opportunities"`` splits on a grid of ``time_unit`` opportunities instead
    (:func:`clvkit.data.opportunity_split`, for models that read
    :func:`clvkit.opportunity_summary`'s table, e.g. BG/BB): times are opportunity numbers
    from the origin's, and ``rfm`` holds ``n`` and ``n_holdout`` for ``T`` and
    ``duration_holdout``.

    Examples
    --------
    >>> log = pd.DataFrame({"customer_id": [1, 1, 2], "date": ["2024-01-01", "2024-01-10",
    ...                     "2024-01-08"]})
    >>> sp = split_log(log, calibration_end="2024-01-07", observation_end="2024-01-14",
    ...                time_unit="D")
    >>> sp.rfm.index.tolist(), sp.repeat_time.tolist(), sp.horizon
    ([1], [9.0], 13.0)
    >>> sp.rfm.attrs["late_customers"], sp.rfm.attrs["late_customers_example"]  # 2: on 01-08
    (1, 2)
    """
    cleaning = {
        "returns": returns, "zero_amounts": zero_amounts, "duplicates": duplicates,
        "currency": currency, "fx_rate": fx_rate, "reporting_currency": reporting_currency,
    }  # fmt: skip
    if check_log_table(data) == "opportunities":
        return _opportunity_split(
            transactions, calibration_end=calibration_end, observation_end=observation_end,
            time_unit=time_unit, customer_id=customer_id, date=date, amount=amount, tz=tz,
            **cleaning,
        )  # fmt: skip
    unit = parse_time_unit(time_unit)
    cal_end = parse_date(calibration_end, "calibration_end").normalize()
    obs_end = parse_date(observation_end, "observation_end").normalize()
    if not cal_end < obs_end:
        raise ClvkitError(
            f"argument 'calibration_end' ({cal_end.date()}) must be before 'observation_end' "
            f"({obs_end.date()}). Suggestion: leave a holdout window after calibration."
        )
    # one purchase-day rule for both uses below: dates become naive wall-clock values
    log = read_purchases(
        transactions, customer_id=customer_id, date=date, amount=amount, tz=tz, **cleaning
    )
    with warnings.catch_warnings():
        # rows after observation_end are left out by design; other warnings (a holdout window
        # running past the data) reach the caller
        warnings.filterwarnings("ignore", "[0-9,]+ of [0-9,]+ rows are dated after", ClvkitWarning)
        rfm = calibration_holdout(
            log, calibration_end=cal_end, observation_end=obs_end, customer_id=customer_id,
            date=date, amount=amount, time_unit=unit,
        )  # fmt: skip
    rfm.attrs.update(log.attrs)  # the counts of the log as read, before it was cleaned
    day = log[date].to_numpy().astype("datetime64[D]")
    keep = day <= obs_end.to_datetime64().astype("datetime64[D]")
    days = pd.DataFrame({"c": log[customer_id].to_numpy()[keep], "d": day[keep]})
    days = days.drop_duplicates()
    first = days.groupby("c", sort=False)["d"].transform("min")
    first_c = days.assign(f=first).groupby("c")["f"].first().reindex(rfm.index)
    origin = pd.Timestamp(first_c.min())
    repeats = days[(days["d"] > first) & days["c"].isin(rfm.index)]
    birth = to_units((first_c - origin).to_numpy(), unit)
    return HoldoutSplit(
        rfm=rfm,
        birth=np.asarray(birth, dtype=np.float64),
        repeat_customer=rfm.index.get_indexer(repeats["c"]),
        repeat_time=np.asarray(to_units((repeats["d"] - origin).to_numpy(), unit), float),
        origin=origin,
        calibration_end=float(to_units(cal_end - origin, unit)),
        horizon=float(to_units(obs_end - origin, unit)),
        time_unit=format_time_unit(unit),
        amount=amount,
    )


def _opportunity_split(
    transactions: Any, *, calibration_end: Any, observation_end: Any, time_unit: str,
    amount: Hashable | None, **options: Any,
) -> HoldoutSplit:  # fmt: skip
    """:func:`split_log` on a grid of ``time_unit`` opportunities."""
    sp = opportunity_split(
        transactions, calibration_end=calibration_end, observation_end=observation_end,
        opportunity=time_unit, amount=amount, **options,
    )  # fmt: skip
    if sp.horizon <= sp.calibration_end:
        raise ClvkitError(
            f"arguments 'calibration_end' ({calibration_end}) and 'observation_end' "
            f"({observation_end}) fall in the same {time_unit!r} opportunity, so the holdout has "
            "no opportunity. Suggestion: end the calibration at least one opportunity earlier."
        )
    late = int(sp.table.attrs.get("late_customers", 0))
    if late:
        warnings.warn(
            f"{late:,} customers made their first purchase after calibration_end="
            f"{sp.table.attrs['calibration_end']} and are not in the backtest (their count is "
            "in rfm.attrs['late_customers']). Suggestion: a backtest follows the customers "
            "known at the calibration end.",
            ClvkitWarning,
            stacklevel=3,
        )
    return HoldoutSplit(
        rfm=sp.table,
        birth=sp.birth,
        repeat_customer=sp.repeat_customer,
        repeat_time=sp.repeat_time,
        origin=sp.origin,
        calibration_end=sp.calibration_end,
        horizon=sp.horizon,
        time_unit=sp.table.attrs["time_unit"],
        amount=amount,
    )
