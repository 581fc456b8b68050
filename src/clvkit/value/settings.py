"""The cash-flow settings of a customer-value computation, validated in one place.

:class:`CashflowSettings` groups horizon, period, discounting, margin and costs; it is what
:func:`clvkit.customer_value` and :func:`clvkit.distributed.customer_value` take (or build from
their keywords). :meth:`CashflowSettings.plan` turns it into a :class:`DiscountPlan` once the
time unit of the data is known.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from clvkit.errors import ClvkitError
from clvkit.units import parse_time_unit
from clvkit.value.discount import DiscountPlan

__all__ = ["DAYS_PER_YEAR", "CashflowSettings", "nonneg"]

DAYS_PER_YEAR = 365.25


def nonneg(name: str, value: Any, positive: bool = False) -> float:
    """``value`` as a finite float >= 0 (> 0 with ``positive``), else a ClvkitError naming it."""
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ClvkitError(f"argument {name!r} must be a number, got {value!r}.") from None
    if not np.isfinite(f) or f < 0 or (positive and f == 0):
        kind = "positive" if positive else "non-negative"
        raise ClvkitError(
            f"argument {name!r} must be a finite {kind} number, got {value!r}. "
            f"Suggestion: pass a {kind} value."
        )
    return f


def _duration(name: str, value: Any) -> float | pd.Timedelta:
    if isinstance(value, str | pd.Timedelta):
        return parse_time_unit(value, argument=name)
    return nonneg(name, value, positive=True)


@dataclass(frozen=True)
class CashflowSettings:
    """Horizon, discounting, margin and costs of a customer-value computation.

    Parameters
    ----------
    horizon : float or str
        Number of RFM time units, or a duration such as ``"52W"`` or ``"365D"``.
    period : str, pandas.Timedelta or float
        Cash-flow period (a fixed duration, or a number of time units). The last period is
        cut at the horizon.
    annual_discount_rate, discount_rate_per_period : float
        Exactly one: an annual rate (year = 365.25 days) or a rate per ``period``, as a
        fraction in [0, 1] (0.1 for 10%; a rate above 1 is refused: 10 would mean 1,000%).
    margin : float
        Share of revenue kept, in (0, 1]. The default 1 values *revenue*, not profit: pass
        your contribution margin (e.g. 0.3) to value profit.
    discounting : {"discrete", "continuous"}
        End-of-period ``(1 + R) ** -(k Delta)`` (Delta in years), or ``exp(-ln(1 + R) s)`` at
        each purchase time ``s`` (years).
    cost_per_period : float
        Cost per customer for each period that finds the customer alive at its start
        (continuous: a flow of ``cost_per_period`` per period while alive).
    acquisition_cost : float, optional
        Cost of acquiring a customer (CAC), compared with a new customer's CLV.

    Examples
    --------
    >>> s = CashflowSettings("52W", period="4W", annual_discount_rate=0.1, margin=0.3)
    >>> plan, rate = s.plan(pd.Timedelta(weeks=1))
    >>> plan.horizon, plan.n_periods, round(rate, 5)
    (52.0, 13, 0.00733)
    """

    horizon: float | str | pd.Timedelta
    period: float | str | pd.Timedelta = "30D"
    annual_discount_rate: float | None = None
    discount_rate_per_period: float | None = None
    margin: float = 1.0
    discounting: Literal["discrete", "continuous"] = "discrete"
    cost_per_period: float = 0.0
    acquisition_cost: float | None = None

    def __post_init__(self) -> None:
        _duration("horizon", self.horizon)
        _duration("period", self.period)
        if (self.annual_discount_rate is None) == (self.discount_rate_per_period is None):
            raise ClvkitError(
                "give exactly one of 'annual_discount_rate' and 'discount_rate_per_period'. "
                "Suggestion: annual_discount_rate=0.1 for 10% a year."
            )
        for name, per in (
            ("annual_discount_rate", "a year"),
            ("discount_rate_per_period", "a period"),
        ):
            if getattr(self, name) is not None:
                rate = nonneg(name, getattr(self, name))
                if rate > 1:
                    raise ClvkitError(
                        f"argument {name!r} is {rate:g}, a rate as a fraction: {rate:g} means "
                        f"{rate:,.0%} {per}. Suggestion: {rate / 100:g} for {rate:g}%."
                    )
                object.__setattr__(self, name, rate)
        margin = nonneg("margin", self.margin)
        if not 0 < margin <= 1:
            raise ClvkitError(
                f"argument 'margin' must be in (0, 1], got {self.margin!r}. Suggestion: 0.3 "
                "keeps 30% of revenue."
            )
        object.__setattr__(self, "margin", margin)
        object.__setattr__(self, "cost_per_period", nonneg("cost_per_period", self.cost_per_period))
        if self.acquisition_cost is not None:
            cac = nonneg("acquisition_cost", self.acquisition_cost, positive=True)
            object.__setattr__(self, "acquisition_cost", cac)
        if self.discounting not in ("discrete", "continuous"):
            raise ClvkitError(
                "argument 'discounting' must be 'discrete' or 'continuous', got "
                f"{self.discounting!r}."
            )

    @classmethod
    def build(cls, settings: CashflowSettings | None, **keywords: Any) -> CashflowSettings:
        """``settings`` with ``keywords`` replacing its fields (or the settings made of the
        keywords alone); unknown keywords are an error naming them."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(keywords) - fields)
        if unknown:
            raise ClvkitError(
                f"unknown argument(s) {unknown}. Suggestion: the cash-flow settings are "
                f"{sorted(fields)}."
            )
        if settings is None:
            if "horizon" not in keywords:
                raise ClvkitError(
                    "argument 'horizon' is missing. Suggestion: pass horizon='52W' (or "
                    "settings=CashflowSettings(...))."
                )
            return cls(**keywords)
        if not isinstance(settings, cls):
            raise ClvkitError(
                f"argument 'settings' must be a CashflowSettings, got {type(settings).__name__}."
                " Suggestion: clvkit.value.CashflowSettings(horizon='52W', ...)."
            )
        return dataclasses.replace(settings, **keywords) if keywords else settings

    def plan(self, unit: pd.Timedelta) -> tuple[DiscountPlan, float]:
        """The :class:`DiscountPlan` in time unit ``unit``, and the rate per period."""
        H, delta = (
            float(d / unit) if isinstance(d, pd.Timedelta) else d
            for d in (_duration("horizon", self.horizon), _duration("period", self.period))
        )
        if self.annual_discount_rate is not None:
            period_years = delta * (unit / pd.Timedelta(days=DAYS_PER_YEAR))
            rate = float(np.expm1(period_years * np.log1p(self.annual_discount_rate)))
        else:
            rate = float(self.discount_rate_per_period)
        plan = DiscountPlan(H, delta, rate, self.discounting == "continuous", self.cost_per_period)
        return plan, rate
