"""Shared pieces of the plots: axes, colours, column checks."""

from __future__ import annotations

from typing import Any

import pandas as pd

from clvkit.errors import ClvkitError

__all__ = ["ACTUAL", "MODEL", "axes", "need"]

ACTUAL = "black"
MODEL = "tab:blue"


def axes(ax: Any) -> Any:
    """``ax``, or the axes of a new figure when it is ``None``."""
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 4.5))
    return ax


def need(df: Any, cols: list[str], argument: str) -> None:
    """Refuse a table without ``cols``."""
    if not isinstance(df, pd.DataFrame):
        raise ClvkitError(
            f"argument {argument!r} must be a table (pandas DataFrame) or a BacktestResult, got "
            f"{type(df).__name__}. Suggestion: pass the result of clvkit.backtest."
        )
    missing = [c for c in cols if c not in df]
    if missing:
        raise ClvkitError(
            f"argument {argument!r} lacks columns {missing}. Suggestion: pass the matching table "
            "of a clvkit.backtest result (or the result itself)."
        )
