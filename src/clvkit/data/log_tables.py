"""One entry to the customer tables built from a purchase log, by the name models give them
(``ModelSpec.data``): ``"rfm"`` (continuous time, :func:`clvkit.rfm_summary` and
:func:`clvkit.calibration_holdout`) and ``"opportunities"`` (a grid of discrete occasions,
:func:`clvkit.opportunity_summary`). The backtest, the report and the CLI build tables through
it, so a model that reads either plugs into them."""

from __future__ import annotations

import os
from collections.abc import Hashable
from typing import Any

import pandas as pd

from clvkit.data.opportunities import opportunity_summary
from clvkit.data.summary import calibration_holdout, rfm_summary
from clvkit.errors import ClvkitError

__all__ = ["LOG_TABLES", "check_log_table", "log_table"]

#: The tables :func:`log_table` builds, with the function behind each.
LOG_TABLES = {"rfm": "clvkit.rfm_summary", "opportunities": "clvkit.opportunity_summary"}


def check_log_table(data: str, argument: str = "data") -> str:
    """``data`` (a model's ``ModelSpec.data``) if a purchase log gives that table, else a
    ``ClvkitError`` naming ``argument``."""
    if data not in LOG_TABLES:
        hint = (
            "a table of contracts is read by clvkit.contract_summary; backtest it with "
            "clvkit.retention_backtest (CLI: clvkit retention)"
            if data == "contracts"
            else f"use one of {list(LOG_TABLES)}"
        )
        raise ClvkitError(
            f"argument {argument!r} asks for the {data!r} table; a purchase log gives "
            f"the tables {list(LOG_TABLES)}. Suggestion: {hint}."
        )
    return data


def log_table(
    transactions: pd.DataFrame | str | os.PathLike,
    data: str = "rfm",
    *,
    time_unit: str = "W",
    observation_end: Any = None,
    calibration_end: Any = None,
    customer_id: Hashable = "customer_id",
    date: Hashable = "date",
    amount: Hashable | None = None,
    tz: str | None = None,
    **cleaning: Any,
) -> pd.DataFrame:
    """The ``data`` customer table of a purchase log, with a holdout after ``calibration_end``.

    Parameters
    ----------
    transactions : pandas.DataFrame, str or os.PathLike
        The purchase log (a CSV/Parquet path or glob: the file route). Not modified.
    data : {"rfm", "opportunities"}
        ``"rfm"``: :func:`clvkit.rfm_summary` (or :func:`clvkit.calibration_holdout` with
        ``calibration_end``) in units of ``time_unit``; ``"opportunities"``:
        :func:`clvkit.opportunity_summary` on a grid of ``time_unit`` opportunities.
    time_unit : str
        Time unit, or the opportunity period (``"Y"``, ``"Q"``, ``"M"``, ``"W"``...).
    observation_end, calibration_end : date-like, optional
        As in those functions (``calibration_end`` needs ``observation_end`` for ``"rfm"``).
    customer_id, date, amount, tz, cleaning
        Column names, zone and cleaning options (``returns``, ``zero_amounts``, ...), as in
        :func:`clvkit.rfm_summary`.

    Returns
    -------
    pandas.DataFrame

    Examples
    --------
    >>> log = pd.DataFrame({"customer_id": [1, 1, 2], "date": ["2021-03-01", "2023-05-01",
    ...                     "2022-02-02"]})
    >>> log_table(log, "opportunities", time_unit="Y").to_dict("list")
    {'frequency': [1, 0], 'recency': [2, 0], 'n': [2, 1]}
    >>> log_table(log, "rfm", time_unit="W")["frequency"].tolist()
    [1, 0]
    """
    check_log_table(data)
    columns = {"customer_id": customer_id, "date": date, "amount": amount, "tz": tz}
    if data == "opportunities":
        return opportunity_summary(
            transactions, opportunity=time_unit, observation_end=observation_end,
            calibration_end=calibration_end, **columns, **cleaning,
        )  # fmt: skip
    if calibration_end is None:
        return rfm_summary(
            transactions, observation_end=observation_end, time_unit=time_unit, **columns,
            **cleaning,
        )  # fmt: skip
    if observation_end is None:
        raise ClvkitError(
            "argument 'observation_end' is required with 'calibration_end' (the end of the "
            "holdout window). Suggestion: pass the last day observed."
        )
    return calibration_holdout(
        transactions, calibration_end=calibration_end, observation_end=observation_end,
        time_unit=time_unit, **columns, **cleaning,
    )  # fmt: skip
