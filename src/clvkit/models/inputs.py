"""Validation of RFM tables handed to the models (fit and predict)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from clvkit.errors import ClvkitError, bad_rows_error
from clvkit.units import TIME_UNIT_ATTR, format_time_unit

__all__ = [
    "RFMArrays",
    "check_time_unit",
    "purchase_training_table",
    "rate_meaning",
    "validate_rfm",
]


@dataclass(frozen=True)
class RFMArrays:
    """Validated copies of an RFM table's columns (never views of the caller's frame)."""

    customer_id: pd.Index
    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    monetary_value: np.ndarray | None
    time_unit: str | None


def _example(rfm: pd.DataFrame, mask: np.ndarray, cols: list[str]) -> dict[str, Any]:
    i = int(np.flatnonzero(mask)[0])
    row = {"customer_id": rfm.index[i]}
    row.update({c: rfm[c].iloc[i] for c in cols})
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in row.items()}


def _raise_if(rfm: pd.DataFrame, mask: np.ndarray, what: str, problem: str, cols, suggestion):
    n_bad = int(mask.sum())
    if n_bad:
        raise bad_rows_error(
            what, problem, n_bad, _example(rfm, mask, cols), suggestion, n_total=len(rfm)
        )


def validate_rfm(
    rfm: Any,
    *,
    need_recency: bool = True,
    need_monetary: bool = False,
    argument: str = "rfm",
) -> RFMArrays:
    """Check an RFM table and return float copies of its columns.

    Parameters
    ----------
    rfm : pandas.DataFrame
        Indexed by customer, with ``frequency``, ``recency``, ``T`` (and ``monetary_value``).
    need_recency : bool
        Whether ``recency`` and ``T`` are required (False for the spend model).
    need_monetary : bool
        Whether ``monetary_value`` is required.
    argument : str
        The argument name shown in errors.

    Returns
    -------
    RFMArrays

    Examples
    --------
    >>> df = pd.DataFrame({"frequency": [0, 2], "recency": [0.0, 3.0], "T": [5.0, 6.0]})
    >>> validate_rfm(df).frequency.tolist()
    [0.0, 2.0]
    """
    if not isinstance(rfm, pd.DataFrame):
        raise ClvkitError(
            f"argument {argument!r} must be a pandas DataFrame, got {type(rfm).__name__}. "
            "Suggestion: build it with clvkit.rfm_summary(...)."
        )
    cols = ["frequency"]
    if need_recency:
        cols += ["recency", "T"]
    if need_monetary:
        cols.append("monetary_value")
    missing = [c for c in cols if c not in rfm.columns]
    if missing:
        raise ClvkitError(
            f"argument {argument!r} lacks column(s) {missing}; it has {list(rfm.columns)}. "
            "Suggestion: build it with clvkit.rfm_summary(...) or rename the columns."
        )
    if len(rfm) == 0:
        raise ClvkitError(f"argument {argument!r} has no rows. Suggestion: pass customers.")
    arrays: dict[str, np.ndarray] = {}
    for c in cols:
        values = pd.to_numeric(rfm[c], errors="coerce").to_numpy(dtype=np.float64, copy=True)
        bad = ~np.isfinite(values)
        _raise_if(
            rfm,
            bad,
            f"column {c!r} of {argument!r}",
            "is missing, non-numeric or infinite",
            [c],
            "drop or fill those customers before fitting",
        )
        arrays[c] = values
    x = arrays["frequency"]
    _raise_if(
        rfm,
        (x < 0) | (x != np.round(x)),
        f"column 'frequency' of {argument!r}",
        "is negative or not a whole number",
        ["frequency"],
        "frequency counts repeat purchases; rebuild the table with clvkit.rfm_summary",
    )
    if need_recency:
        rec, T = arrays["recency"], arrays["T"]
        _raise_if(
            rfm, T < 0, f"column 'T' of {argument!r}", "is negative", ["T"],
            "T is the customer's age at the end of observation, so it is >= 0",
        )  # fmt: skip
        _raise_if(
            rfm,
            rec < 0,
            f"column 'recency' of {argument!r}",
            "is negative",
            ["recency"],
            "recency is last minus first purchase time and cannot be negative",
        )
        _raise_if(
            rfm,
            rec > T * (1 + 1e-12) + 1e-12,
            f"column 'recency' of {argument!r}",
            "exceeds T",
            ["recency", "T"],
            "the last purchase cannot be after the end of observation; check the cut-off date",
        )
        _raise_if(
            rfm,
            (x > 0) & (rec <= 0),
            f"column 'recency' of {argument!r}",
            "is 0 for customers with frequency > 0",
            ["frequency", "recency"],
            "repeat purchases happen after the first one; merge same-day purchases",
        )
        _raise_if(
            rfm,
            (x == 0) & (rec != 0),
            f"column 'recency' of {argument!r}",
            "is not 0 for customers with frequency 0",
            ["frequency", "recency"],
            "a customer without repeat purchases has recency 0",
        )
    money = None
    if need_monetary:
        money = arrays["monetary_value"]
        _raise_if(
            rfm,
            (x > 0) & (money <= 0),
            f"column 'monetary_value' of {argument!r}",
            "is <= 0 for customers with frequency > 0",
            ["frequency", "monetary_value"],
            "drop returns/zero-value orders or those customers before fitting the spend model",
        )
    unit = rfm.attrs.get(TIME_UNIT_ATTR)
    time_unit = format_time_unit(unit) if unit is not None else None
    return RFMArrays(
        customer_id=rfm.index.copy(),
        frequency=x,
        recency=arrays.get("recency", np.zeros_like(x)),
        T=arrays.get("T", np.zeros_like(x)),
        monetary_value=money,
        time_unit=time_unit,
    )


def check_time_unit(data_unit: str | None, model_unit: str | None, argument: str = "rfm") -> None:
    """Raise when the table's time unit differs from the fitted model's.

    A table without a ``time_unit`` attribute is taken to be in the model's unit.
    """
    if data_unit is not None and model_unit is not None and data_unit != model_unit:
        raise ClvkitError(
            f"argument {argument!r} is in time unit {data_unit!r} but the model was fitted in "
            f"{model_unit!r}. Suggestion: rebuild the RFM table with time_unit={model_unit!r} "
            "or refit the model."
        )


def purchase_training_table(rfm: pd.DataFrame, dropout: str) -> RFMArrays:
    """:func:`validate_rfm` for fitting a purchase model: the table must carry its time unit and
    hold at least one repeat purchase (else ``ClvkitError``; ``dropout`` completes the sentence
    "the data say nothing about purchase rates beyond 'low' and ...")."""
    data = validate_rfm(rfm)
    if data.time_unit is None:
        raise ClvkitError(
            "argument 'rfm' has no attrs['time_unit'], so horizons would be ambiguous. "
            "Suggestion: build it with clvkit.rfm_summary(..., time_unit='W') or set "
            "rfm.attrs['time_unit'] = 'W' (or 'D', '30D', ...)."
        )
    if not (data.frequency > 0).any():
        raise ClvkitError(
            f"column 'frequency' of 'rfm' is 0 for all {data.frequency.size:,} customers: "
            "nobody made a repeat purchase, so the data say nothing about purchase rates "
            f"beyond 'low' and {dropout}. Suggestion: use a longer calibration window (or more "
            "customers), so that some customers buy again."
        )
    return data


def rate_meaning(up: list[str], values: dict[str, float]) -> list[str]:
    """The sentence for an unbounded MLE of the Gamma(r, alpha) purchase rate, if it is one."""
    if not {"r", "alpha"} <= set(up):
        return []
    rate = values["r"] / values["alpha"]
    return [
        "the purchase rates show no variation between customers that the model can "
        f"measure: Gamma(r, alpha) shrinks to one rate, r/alpha = {rate:.4g} per time unit"
    ]
