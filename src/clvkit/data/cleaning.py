"""Cleaning options for messy purchase logs, shared by the in-memory and the file route.

Both routes (:mod:`clvkit.data.summary` for DataFrames, :mod:`clvkit.data.files` for CSV and
Parquet through DuckDB) apply the same steps in the same order, so one log gives one table and
the same counts in ``attrs["cleaning"]``:

1. **duplicates** -- exact duplicate rows: same customer, timestamp (after the ``tz`` rule),
   amount (and currency). ``"keep"`` (default) keeps them (same-day rows are summed into spend)
   and, when the log has times of day, warns with their count and an example; ``"drop"`` keeps
   the first of each set. In a log of dates only, equal rows are ordinary (two equal items
   bought on one day; CDNOW has 21), so they are counted but not warned about.
2. **currency** -- one currency per run. A ``currency`` column (by default the column named
   ``"currency"`` when the log has one and an amount is given) with one distinct value is
   recorded in ``attrs["currency"]``; several are refused unless ``fx_rate`` names a column of
   rates to one ``reporting_currency`` (``amount * rate``).
3. **returns** -- negative amounts. ``"error"`` (default) refuses them, ``"drop"`` drops those
   rows, ``"net"`` nets them against the same customer's purchases (:func:`net_returns`).
4. **zero_amounts** -- rows of amount 0 (after the steps above; a purchase netted to 0 is
   gone already). Counted either way, so a spend fit can be refused before any sampling;
   ``"keep"`` (default) keeps them as purchases, ``"drop"`` drops them.

This module imports neither route (no import cycle).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from clvkit.errors import ClvkitError

__all__ = [
    "CLEANING_KEYS",
    "NEGATIVE_HINT",
    "NET_TOLERANCE",
    "CleaningOptions",
    "cleaning_options",
    "currency_counts",
    "currency_error",
    "duplicates_warning",
    "empty_after_cleaning",
    "net_returns",
    "new_counts",
]

#: The keys of ``attrs["cleaning"]``, in order.
CLEANING_KEYS = (
    "rows",
    "duplicates",
    "duplicates_dropped",
    "returns",
    "returns_dropped",
    "returns_netted",
    "purchases_netted_out",
    "zero_amounts",
    "zero_amounts_dropped",
)

#: The suggestion for negative amounts (``returns="error"``), on every route.
NEGATIVE_HINT = (
    "pass returns='drop' to drop returns/refunds, or returns='net' to net them against the "
    "customer's purchases (or remove them first)."
)

#: Relative tolerance of netting: a purchase left with at most this share of its amount is
#: netted out, and a return exceeding the purchases by at most this share of it is not an
#: error (cents that do not add up exactly in binary floating point).
NET_TOLERANCE = 1e-9


@dataclass(frozen=True)
class CleaningOptions:
    """Checked cleaning options (see :func:`cleaning_options`)."""

    returns: str = "error"
    zero_amounts: str = "keep"
    duplicates: str = "keep"
    currency: Hashable | None = None
    fx_rate: Hashable | None = None
    reporting_currency: str | None = None

    @property
    def extra_columns(self) -> list[Hashable]:
        """The currency and rate columns to read besides id, date and amount."""
        return [c for c in (self.currency, self.fx_rate) if c is not None]


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise ClvkitError(
            f"argument {name!r} must be one of {', '.join(map(repr, allowed))}, got {value!r}. "
            f"Suggestion: pass e.g. {name}={allowed[1]!r}."
        )
    return value


def cleaning_options(
    *,
    returns: str = "error",
    zero_amounts: str = "keep",
    duplicates: str = "keep",
    currency: Hashable | None = None,
    fx_rate: Hashable | None = None,
    reporting_currency: str | None = None,
    customer_id: Hashable,
    date: Hashable,
    amount: Hashable | None,
    columns: list[Hashable],
) -> CleaningOptions:
    """Check the cleaning arguments against the log's ``columns``; resolve the currency column.

    ``currency=None`` uses a column named ``"currency"`` when the log has one (and an amount is
    given). ``fx_rate`` needs ``reporting_currency`` (the label of the converted amounts).

    Examples
    --------
    >>> cleaning_options(returns="net", customer_id="c", date="d", amount="a",
    ...                  columns=["c", "d", "a", "currency"]).currency
    'currency'
    """
    returns = _choice("returns", returns, ("error", "drop", "net"))
    zero_amounts = _choice("zero_amounts", zero_amounts, ("keep", "drop"))
    duplicates = _choice("duplicates", duplicates, ("keep", "drop"))
    taken = [customer_id, date, amount]
    if amount is None:
        for name, value, default in (
            ("returns", returns, "error"),
            ("zero_amounts", zero_amounts, "keep"),
            ("currency", currency, None),
            ("fx_rate", fx_rate, None),
        ):
            if value != default:
                raise ClvkitError(
                    f"argument {name!r} is {value!r}, but no amount column is given. "
                    "Suggestion: pass amount='<column>' too, or leave it out."
                )
        return CleaningOptions(returns, zero_amounts, duplicates)
    if currency is None and "currency" in columns and "currency" not in taken:
        currency = "currency"
    for name, value in (("currency", currency), ("fx_rate", fx_rate)):
        if value is None:
            continue
        if not isinstance(value, Hashable) or value not in columns:
            raise ClvkitError(
                f"argument {name!r} is {value!r}, which is not a column of transactions; its "
                f"columns are {list(columns)}. Suggestion: pass the name of the "
                f"{'currency' if name == 'currency' else 'exchange-rate'} column."
            )
        if value in taken:
            raise ClvkitError(
                f"argument {name!r} ({value!r}) names a column already used as customer id, "
                "date or amount. Suggestion: pass a column of its own."
            )
    if fx_rate is not None and currency is not None and fx_rate == currency:
        raise ClvkitError(
            f"arguments 'currency' and 'fx_rate' name the same column {fx_rate!r}. "
            "Suggestion: fx_rate is a column of numeric rates to the reporting currency."
        )
    if fx_rate is not None and (
        not isinstance(reporting_currency, str) or not reporting_currency.strip()
    ):
        raise ClvkitError(
            f"argument 'fx_rate' ({fx_rate!r}) converts amounts to one reporting currency, but "
            f"'reporting_currency' is {reporting_currency!r}. Suggestion: name it, e.g. "
            "reporting_currency='EUR'."
        )
    if fx_rate is None and reporting_currency is not None:
        raise ClvkitError(
            f"argument 'reporting_currency' is {reporting_currency!r} without 'fx_rate'. "
            "Suggestion: pass fx_rate='<column of rates to it>' (amount * rate), or leave "
            "reporting_currency out."
        )
    return CleaningOptions(returns, zero_amounts, duplicates, currency, fx_rate, reporting_currency)


def currency_error(column: Hashable, counts: dict[str, int]) -> ClvkitError:
    """The error for a log that mixes currencies without a conversion column."""
    order = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    found = ", ".join(f"{k}: {v:,} rows" for k, v in order)
    return ClvkitError(
        f"column {column!r} holds {len(order)} currencies ({found}); clvkit sums spend in one "
        f"currency and will not add them up. Suggestion: pass fx_rate='<column>' (rates to one "
        "currency, amount * rate) with reporting_currency='EUR' (say), or summarize one "
        f"currency at a time, e.g. df[df[{column!r}] == {order[0][0]!r}]."
    )


def duplicates_warning(n: int, n_total: int, example: dict[Any, Any]) -> str:
    """The warning text for exact duplicate rows kept (``duplicates="keep"``)."""
    return (
        f"{n:,} of {n_total:,} rows are exact duplicates of an earlier row (same customer, "
        f"timestamp and amount); for example: {example}. They are kept and summed into that "
        "day's spend (count in attrs['cleaning']['duplicates']). Suggestion: pass "
        "duplicates='drop' if they were recorded twice."
    )


def net_returns(
    cust: np.ndarray,
    time: np.ndarray,
    day: np.ndarray,
    amount: np.ndarray,
    example: Callable[[int], dict[Any, Any]],
    amount_name: Hashable,
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Net returns (negative amounts) against the same customer's purchases.

    The rule: a customer's rows are taken in time order (``time``, then row order). Each
    return, in that order, is subtracted from the customer's purchases dated on or before the
    return's day (``day``), the latest purchase first; a purchase reduced to 0 or less (to
    within :data:`NET_TOLERANCE` of its amount) is no longer a purchase, and the rest of the
    return goes to the purchase before it. A return larger than the customer's remaining
    purchases on or before its day is an error naming the customer. Zero-amount rows are not
    netted against (and stay as they are).

    Parameters
    ----------
    cust, time, day, amount : numpy.ndarray
        Per row, in row order: customer codes (their order is the order customers are checked
        in), int64 timestamps, int64 day numbers, float64 amounts.
    example : callable
        ``example(i)`` shows row ``i`` (for the error).
    amount_name : Hashable
        The amount column's name (for the error).

    Returns
    -------
    keep : numpy.ndarray
        bool per row: False for returns and purchases netted out.
    amount : numpy.ndarray
        New float64 amounts (purchases reduced by the returns netted against them).
    n_returns, n_netted_out : int
        Returns netted, and purchases netted out.

    Examples
    --------
    >>> keep, amt, n_ret, n_out = net_returns(
    ...     np.array([0, 0, 0, 0]), np.array([1, 2, 3, 4]), np.array([1, 2, 3, 4]),
    ...     np.array([10.0, 5.0, -8.0, 4.0]), lambda i: {}, "amount")
    >>> keep.tolist(), amt.tolist(), n_ret, n_out
    ([True, False, False, True], [7.0, 0.0, -8.0, 4.0], 1, 1)
    """
    amount = np.array(amount, dtype=np.float64, copy=True)
    keep = np.ones(amount.size, dtype=bool)
    neg = amount < 0
    if not neg.any():
        return keep, amount, 0, 0
    has_return = np.zeros(int(cust.max()) + 1, dtype=bool)
    has_return[cust[neg]] = True
    rows = np.flatnonzero(has_return[cust])
    rows = rows[np.lexsort((rows, time[rows], cust[rows]))]  # customer, time, row order
    start = np.flatnonzero(np.r_[True, cust[rows][1:] != cust[rows][:-1]])
    stop = np.r_[start[1:], rows.size]
    original = amount.copy()
    tolerance = NET_TOLERANCE * np.abs(original)
    bad: list[int] = []
    excess_of: dict[int, float] = {}
    n_out = 0
    order = rows.tolist()
    d0 = int(day[rows].min())
    key = cust[rows].astype(np.int64) * (int(day[rows].max()) - d0 + 1) + (day[rows] - d0)
    day_end = np.searchsorted(key, key, side="right").tolist()  # per row: end of its day
    for lo, hi in zip(start.tolist(), stop.tolist(), strict=True):
        # open purchases before the current row, in time order: the latest is netted first
        stack: list[int] = []
        for k in range(lo, hi):
            i = order[k]
            if amount[i] >= 0:
                if keep[i] and amount[i] > 0:
                    stack.append(i)
                continue
            left = -amount[i]
            keep[i] = False
            # later purchases the same day are the latest on or before the return's day
            targets = [j for j in order[k + 1 : day_end[k]] if keep[j] and amount[j] > 0]
            while left > 0 and (targets or stack):
                j = targets.pop() if targets else stack[-1]
                if amount[j] - left > tolerance[j]:
                    amount[j] -= left
                    left = 0.0
                else:
                    left -= amount[j]
                    amount[j] = 0.0
                    keep[j] = False
                    n_out += 1
                    if stack and stack[-1] == j:
                        stack.pop()
            if left > tolerance[i]:
                bad.append(i)
                excess_of[i] = left
                break  # one failing return per customer is enough
    if bad:
        shown = {**example(bad[0]), "excess": float(excess_of[bad[0]])}
        raise ClvkitError(
            f"column {amount_name!r} has returns larger than the customer's purchases on or "
            f"before their day for {len(bad):,} customers, so they cannot be netted; for "
            f"example: {shown}. Suggestion: check those customers' returns (a refund of an "
            "earlier, unlogged purchase?), or pass returns='drop' to drop every return."
        )
    return keep, amount, int(np.count_nonzero(neg)), n_out


def empty_after_cleaning(counts: dict[str, int]) -> ClvkitError:
    """The error for a log with no purchase left after cleaning."""
    return ClvkitError(
        f"no purchase is left after cleaning the log (counts: {counts}). Suggestion: check "
        "the returns, zero_amounts and duplicates options."
    )


def new_counts(n_rows: int) -> dict[str, int]:
    """``attrs["cleaning"]`` with every count 0 but ``rows``."""
    out = dict.fromkeys(CLEANING_KEYS, 0)
    out["rows"] = int(n_rows)
    return out


def currency_counts(values: pd.Series) -> dict[str, int]:
    """Rows per currency (values as text)."""
    counts = values.astype(str).value_counts(sort=False)
    return {str(k): int(v) for k, v in counts.items()}
