"""BG/BB on the model contract: the primitives every layer above ``models/`` uses.

The customer table has ``frequency`` (x: opportunities with a purchase after the first),
``recency`` (t_x: the last such opportunity, 0 if none) and ``n`` (opportunities after the
first up to the end of observation), as built by :func:`clvkit.data.opportunity_summary`; the
model's time unit is the opportunity period, and times ``t`` count opportunities after ``n``
(see :mod:`clvkit.models.bgbb.predictions`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd

from clvkit.errors import ClvkitError, bad_rows_error
from clvkit.models.bgbb.likelihood import bgbb_loglik_customers
from clvkit.models.bgbb.predictions import (
    bgbb_expected_purchases,
    bgbb_probability_alive,
    bgbb_probability_of_purchases,
)
from clvkit.models.bgbb.simulation import simulate
from clvkit.models.contract import Columns, Future, Params, PurchaseSpec

__all__ = ["BGBBSpec", "validate_opportunities"]

COLUMNS = ("frequency", "recency", "n")
_HINT = "build the table with clvkit.opportunity_summary"


def _p(params: Params) -> tuple[np.ndarray, ...]:
    return tuple(
        np.asarray(params[k], dtype=np.float64) for k in ("alpha", "beta", "gamma", "delta")
    )


def _c(cols: Columns) -> tuple[np.ndarray, ...]:
    x = np.asarray(cols["frequency"], dtype=np.float64)
    tx = np.where(x > 0, np.asarray(cols["recency"], dtype=np.float64), 0.0)
    return x, tx, np.asarray(cols["n"], dtype=np.float64)


def _example(table: pd.DataFrame, mask: np.ndarray) -> dict[str, Any]:
    i = int(np.flatnonzero(mask)[0])
    row = {"customer_id": table.index[i], **{c: table[c].iloc[i] for c in COLUMNS}}
    return {k: v.item() if isinstance(v, np.generic) else v for k, v in row.items()}


def validate_opportunities(table: Any, argument: str = "rfm") -> dict[str, np.ndarray]:
    """Float64 copies of ``frequency``, ``recency`` and ``n`` of a discrete-opportunity table,
    checked: whole numbers with ``0 <= frequency <= recency <= n`` and ``recency = 0`` exactly
    when ``frequency = 0`` (``ClvkitError`` naming the column, the count of bad rows and one)."""
    if not isinstance(table, pd.DataFrame):
        raise ClvkitError(
            f"argument {argument!r} must be a pandas DataFrame, got {type(table).__name__}. "
            f"Suggestion: {_HINT}(...)."
        )
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ClvkitError(
            f"argument {argument!r} lacks column(s) {missing}; it has {list(table.columns)}. "
            f"BG/BB reads frequency, recency and n (opportunities). Suggestion: {_HINT}(...)."
        )
    if len(table) == 0:
        raise ClvkitError(f"argument {argument!r} has no rows. Suggestion: pass customers.")
    out = {}
    for c in COLUMNS:
        v = pd.to_numeric(table[c], errors="coerce").to_numpy(dtype=np.float64, copy=True)
        bad = ~np.isfinite(v) | (v < 0) | (v != np.round(v))
        if bad.any():
            raise bad_rows_error(
                f"column {c!r} of {argument!r}", "is missing or not a whole number >= 0",
                int(bad.sum()), _example(table, bad), f"{_HINT}, which counts opportunities",
                n_total=len(table),
            )  # fmt: skip
        out[c] = v
    x, tx, n = out["frequency"], out["recency"], out["n"]
    for mask, what, problem in (
        (tx > n, "column 'recency'", "is after the last opportunity n"),
        (x > tx, "column 'frequency'", "exceeds recency (purchases at opportunities 1..recency)"),
        ((x == 0) != (tx == 0), "column 'recency'", "is 0 with purchases or > 0 without any"),
    ):
        if mask.any():
            raise bad_rows_error(
                f"{what} of {argument!r}", problem, int(mask.sum()), _example(table, mask),
                _HINT, n_total=len(table),
            )  # fmt: skip
    return out


class BGBBSpec(PurchaseSpec):
    """BG/BB (Fader, Hardie and Shang 2010): at each discrete opportunity an alive customer buys
    with probability ``p ~ Beta(alpha, beta)``; before each opportunity it dies with
    probability ``theta ~ Beta(gamma, delta)``. Time is counted in opportunities."""

    name: ClassVar[str] = "bgbb"
    model_name: ClassVar[str] = "BetaGeoBetaBinom"
    label: ClassVar[str] = "BG/BB"
    param_names: ClassVar[tuple[str, ...]] = ("alpha", "beta", "gamma", "delta")
    covariate_links: ClassVar[dict[str, tuple[str, int]]] = {
        "alpha": ("purchase", 1),
        "beta": ("purchase", 1),
        "gamma": ("dropout", 1),
        "delta": ("dropout", 1),
    }
    process_texts: ClassVar[dict[str, tuple[str, str]]] = {
        "purchase": (
            "P(buy at an opportunity while alive)",
            "are {x} as likely to buy at an opportunity",
        ),
        "dropout": (
            "P(drop out before an opportunity)",
            "are {x} as likely to drop out at each opportunity",
        ),
    }
    columns: ClassVar[tuple[str, ...]] = COLUMNS
    #: It reads :func:`clvkit.opportunity_summary`'s table, not the continuous-time RFM table
    #: that the backtest, ``compare`` and the report build from a log (they ask for ``"rfm"``).
    data: ClassVar[str] = "opportunities"
    whole_periods: ClassVar[bool] = True

    def customer_columns(self, table: pd.DataFrame, argument: str = "rfm") -> dict[str, np.ndarray]:
        return validate_opportunities(table, argument)

    def process_means(self, params: Params) -> dict[str, np.ndarray]:
        """P(buy at an opportunity while alive) ``alpha / (alpha + beta)`` and P(drop out
        before an opportunity) ``gamma / (gamma + delta)``, per draw."""
        al, be, ga, de = (
            np.asarray(params[n], dtype=np.float64).reshape(-1)
            for n in ("alpha", "beta", "gamma", "delta")
        )
        return {"purchase": al / (al + be), "dropout": ga / (ga + de)}

    def value_key(self, cols: Columns) -> np.ndarray:
        return np.stack(_c(cols), axis=1)

    def order_keys(self, cols: Columns) -> list[np.ndarray]:
        return [np.asarray(cols["frequency"]), np.asarray(cols["n"])]

    def loglik(self, params: Params, cols: Columns) -> np.ndarray:
        return bgbb_loglik_customers(*_p(params), *_c(cols))

    def probability_alive(self, params: Params, cols: Columns, t: np.ndarray) -> np.ndarray:
        return bgbb_probability_alive(_p(params), *_c(cols), t)

    def expected_purchases(self, params: Params, cols: Columns, t: np.ndarray) -> np.ndarray:
        return bgbb_expected_purchases(_p(params), *_c(cols), t)

    def probability_of_purchases(
        self, params: Params, cols: Columns, t: float | np.ndarray, k: np.ndarray
    ) -> np.ndarray:
        return bgbb_probability_of_purchases(_p(params), *_c(cols), t, k)

    def simulate(
        self,
        params: Params,
        cols: Columns,
        horizon: float | np.ndarray,
        rng: np.random.Generator,
        batch_size: int = 2_000_000,
    ) -> Future:
        return simulate(*_p(params), *_c(cols), horizon, rng, batch_size)
