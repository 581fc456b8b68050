"""Numbers as people read them: counts as integers, rates as percentages, money, time spans.

Used by the verdict, the HTML report and the command line, so one number reads the same
everywhere: ``count(24.0) == "24"``, never ``"24.000"``.
"""

from __future__ import annotations

import math
import re
from typing import Any

__all__ = ["NA", "count", "horizon_text", "money", "number", "percent", "unit_name"]

#: What a missing value is shown as (with a reason next to it where there is one).
NA = "–"

_UNIT_NAMES = {"D": "day", "W": "week", "M": "month", "Q": "quarter", "Y": "year", "h": "hour"}


def _finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def count(v: Any) -> str:
    """A count as an integer with thousands separators.

    Examples
    --------
    >>> count(24.0), count(1885.4), count(float("nan"))
    ('24', '1,885', '–')
    """
    return f"{round(float(v)):,}" if _finite(v) else NA


def number(v: Any, digits: int = 4) -> str:
    """A real number with at most ``digits`` significant digits and at most 4 decimals
    (integers as integers, magnitudes below 0.001 in scientific notation).

    Examples
    --------
    >>> number(0.007859073182081972), number(6675.259), number(167.23), number(None)
    ('0.0079', '6,675', '167.2', '–')
    >>> number(0.000238), number(4.285714285714286)
    ('2.38e-04', '4.286')
    """
    if not _finite(v):
        return NA
    v = float(v)
    if v == 0:
        return "0"
    if abs(v) < 1e-3:
        return f"{v:.2e}"
    mag = math.floor(math.log10(abs(v)))
    if mag >= digits - 1:
        return f"{round(v):,}"
    decimals = min(digits - 1 - mag, 4)
    text = f"{v:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def percent(v: Any, digits: int = 1) -> str:
    """A share in [0, 1] as a percentage.

    Examples
    --------
    >>> percent(0.179), percent(0.90284), percent(float("nan"))
    ('17.9%', '90.3%', '–')
    """
    return f"{100 * float(v):.{digits}f}%" if _finite(v) else NA


def money(v: Any, currency: str | None = None) -> str:
    """An amount: no decimals from 1,000 up, two below; the currency code after it.

    Examples
    --------
    >>> money(72224.31, "USD"), money(36.644), money(float("inf"))
    ('72,224 USD', '36.64', '–')
    """
    if not _finite(v):
        return NA
    v = float(v)
    text = f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.2f}"
    return f"{text} {currency}" if currency else text


def unit_name(time_unit: str, plural: bool = True) -> str:
    """The name of a time unit (``"W"`` -> ``"weeks"``, ``"30D"`` -> ``"periods of 30 days"``).

    Examples
    --------
    >>> unit_name("W"), unit_name("D", plural=False), unit_name("30D"), unit_name("M")
    ('weeks', 'day', 'periods of 30 days', 'months')
    """
    found = re.fullmatch(r"\s*(\d*(?:\.\d+)?)\s*([A-Za-z]+)\s*", str(time_unit))
    if not found:
        return str(time_unit)
    n, code = found.groups()
    name = _UNIT_NAMES.get(code) or _UNIT_NAMES.get(code.upper()) or code
    if n and float(n) != 1:
        return f"{'periods' if plural else 'period'} of {number(float(n))} {name}s"
    return name + ("s" if plural else "")


def horizon_text(horizon: Any, time_unit: str) -> str:
    """A time span with its unit's name, e.g. ``"32.7 weeks"``.

    Examples
    --------
    >>> horizon_text(32.7142857, "W"), horizon_text(52.0, "W"), horizon_text(1.0, "Y")
    ('32.7 weeks', '52 weeks', '1 year')
    """
    if not _finite(horizon):
        return NA
    h = float(horizon)
    text = f"{h:,.0f}" if abs(h - round(h)) < 0.05 else f"{h:,.1f}"
    return f"{text} {unit_name(time_unit, plural=text != '1')}"
