"""Checks and messages shared by the in-memory route (:mod:`clvkit.data.summary`) and the file
route (:mod:`clvkit.data.files`): column arguments, kinds of customer ids, an end date before
the first purchase. Both routes import this module; it imports neither, so the data layer has
no import cycle.
"""

from __future__ import annotations

import datetime
from collections.abc import Hashable
from typing import Any

import numpy as np

from clvkit.errors import ClvkitError, bad_rows_error

__all__ = [
    "ID_KINDS",
    "before_first_error",
    "check_column_arguments",
    "id_kind",
    "id_kind_error",
    "iso_day",
]


#: The kinds of customer ids clvkit accepts; one column holds one kind.
ID_KINDS = ("integer", "float", "string")


def id_kind(value: Any) -> str:
    """The kind of one customer id: integer, float, string, or what it is instead.

    Examples
    --------
    >>> [id_kind(x) for x in (7, 7.0, "007", True, [7], {"a": 7})]
    ['integer', 'float', 'string', 'boolean', 'list', 'dict']
    """
    if isinstance(value, (bool, np.bool_)):
        return "boolean"
    if isinstance(value, (int, np.integer)):
        return "integer"
    if isinstance(value, (float, np.floating)):
        return "float"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple, np.ndarray)):
        return "list"
    if isinstance(value, dict):
        return "dict"
    if isinstance(value, (datetime.date, np.datetime64)):
        return "datetime"
    return type(value).__name__


def id_kind_error(
    col: Hashable, kinds: np.ndarray, example: Any, n_total: int
) -> ClvkitError | None:
    """The error for ids of a kind clvkit cannot use, or of several kinds; None when fine.

    ``kinds`` holds the kind of each row; ``example(mask)`` shows the first row of ``mask``.
    """
    names, counts = np.unique(kinds, return_counts=True)
    if len(names) == 1 and names[0] in ID_KINDS:
        return None
    pairs = zip(names.tolist(), counts.tolist(), strict=True)
    order = sorted(pairs, key=lambda kc: (-kc[1], kc[0]))
    found = ", ".join(f"{k}: {c:,}" for k, c in order)
    wrong = ~np.isin(kinds, ID_KINDS)
    if wrong.any():
        problem = f"holds values that are not ids ({found})"
    else:
        wrong = kinds != order[0][0]
        problem = f"mixes kinds of ids ({found}), which would merge or split customers,"
    return bad_rows_error(
        f"column {col!r}",
        problem,
        int(wrong.sum()),
        example(wrong),
        "use one kind of id throughout: integers or strings (floats without NaN also work; "
        f"booleans, lists and dicts are not ids), e.g. df[{col!r}].astype(str).",
        n_total=n_total,
    )


def check_column_arguments(
    customer_id: Hashable,
    date: Hashable,
    amount: Hashable | None,
    columns: list[Hashable],
    hint: str = "",
) -> dict[str, Hashable]:
    """Check the column-name arguments against the available ``columns``; returns them by role.

    Examples
    --------
    >>> check_column_arguments("user", "day", None, ["user", "day", "value"])
    {'customer_id': 'user', 'date': 'day'}
    """
    wanted: dict[str, Hashable] = {"customer_id": customer_id, "date": date}
    if amount is not None:
        wanted["amount"] = amount
    for arg, col in wanted.items():
        if not isinstance(col, Hashable) or col is None:
            raise ClvkitError(
                f"argument {arg!r} must be a column name, got {col!r}. "
                f"Suggestion: pass e.g. {arg}={arg!r}."
            )
    names = list(wanted.values())
    if len(set(map(repr, names))) < len(names):
        raise ClvkitError(
            f"arguments {', '.join(wanted)} must name different columns, got {wanted}. "
            "Suggestion: pass one column per argument."
        )
    missing = [f"{arg}={col!r}" for arg, col in wanted.items() if col not in columns]
    if missing:
        raise ClvkitError(
            f"transactions has no column for {', '.join(missing)}; its columns are "
            f"{list(columns)}. Suggestion: pass the right names, e.g. "
            f"customer_id='user', date='order_date', amount='revenue'{hint}."
        )
    return wanted


def iso_day(day: int) -> str:
    """An int64 day number as an ISO date."""
    return str(np.datetime64(int(day), "D"))


def before_first_error(
    argument: str, day: int, first: int, n_rows: int, example: Any
) -> ClvkitError:
    """The error for a calibration or observation end before the first purchase."""
    if argument == "calibration_end":
        problem = (
            f"({iso_day(day)}) is before the first purchase ({iso_day(first)}), so no customer is "
            "in the calibration period; it would exclude every purchase"
        )
        hint = "pass a calibration end on or after the first purchase."
    else:
        problem = (
            f"({iso_day(day)}) is before the first purchase ({iso_day(first)}) and would exclude "
            "every purchase"
        )
        hint = "pass the last day of the observation period, on or after the first purchase."
    return bad_rows_error(f"argument {argument!r}", problem, n_rows, example, hint)
