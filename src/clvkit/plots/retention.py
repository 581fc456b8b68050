"""Plots of the contractual retention backtest (:func:`clvkit.retention_backtest`): predicted vs
actual survival of each cohort after the calibration end, with credible and predictive bands,
and the retention-rate curve by tenure."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvkit.errors import ClvkitError
from clvkit.plots.common import ACTUAL, MODEL, axes, need

__all__ = ["plot_retention_cohorts", "plot_retention_fan", "plot_retention_rate_curve"]

_PERIOD_COLS = ["active_start", "actual", "expected", "lower", "upper", "pred_lower", "pred_upper"]


def _periods(result: Any) -> pd.DataFrame:
    table = getattr(result, "periods", result)
    need(table, _PERIOD_COLS, "result")
    return table


def plot_retention_fan(
    result: Any, cohort: str = "all", *, share: bool = True, ax: Any = None
) -> Any:
    """One cohort's (or all cohorts') subscribers active after the calibration end: actual vs
    the model's expected count (credible band) and predictive band.

    Parameters
    ----------
    result : RetentionBacktest or pandas.DataFrame
        A result of :func:`clvkit.retention_backtest` or its ``periods`` table.
    cohort : str
        A cohort label, or ``"all"``.
    share : bool
        Plot shares of the subscribers active at the calibration end (else counts).
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    table = _periods(result)
    if cohort not in table.index.get_level_values(0):
        raise ClvkitError(
            f"argument 'cohort' is {cohort!r}, not a cohort of the result. Suggestion: one of "
            f"{list(dict.fromkeys(table.index.get_level_values(0)))[:8]}."
        )
    t = table.loc[cohort]
    s0 = float(t["active_start"].iloc[0])
    scale = 1.0 / s0 if share and s0 > 0 else 1.0
    k = np.concatenate([[0], t.index.to_numpy()])

    def col(c: str) -> np.ndarray:
        return np.concatenate([[s0], t[c].to_numpy(np.float64)]) * scale

    ax = axes(ax)
    prob = table.attrs.get("prob", 0.9)
    ax.fill_between(k, col("pred_lower"), col("pred_upper"), color=MODEL, alpha=0.18,
                    label=f"{prob:.0%} predictive band")  # fmt: skip
    ax.fill_between(k, col("lower"), col("upper"), color=MODEL, alpha=0.4,
                    label=f"{prob:.0%} credible band (expected)")  # fmt: skip
    ax.plot(k, col("expected"), color=MODEL, lw=1.5, label="expected")
    ax.plot(k, col("actual"), color=ACTUAL, marker="o", ms=3, lw=1.2, label="actual")
    unit = table.attrs.get("time_unit", "")
    ax.set_xlabel(f"periods after the calibration end ({unit})" if unit else "periods")
    ax.set_ylabel("share still active" if share else "subscribers still active")
    ax.set_title(f"cohort {cohort}" if cohort != "all" else "all cohorts")
    ax.legend(fontsize=7)
    return ax


def plot_retention_cohorts(
    result: Any, cohorts: list[str] | None = None, *, max_cohorts: int = 12, share: bool = True
) -> Any:
    """Small multiples: :func:`plot_retention_fan` for each cohort (the most recent
    ``max_cohorts`` when ``cohorts`` is not given) and all cohorts together.

    Returns
    -------
    numpy.ndarray of matplotlib.axes.Axes
        The grid's axes (unused ones hidden).
    """
    import matplotlib.pyplot as plt

    table = _periods(result)
    names = [c for c in dict.fromkeys(table.index.get_level_values(0)) if c != "all"]
    chosen = list(cohorts) if cohorts is not None else names[-max_cohorts:]
    chosen = [*chosen, "all"]
    ncol = min(4, len(chosen))
    nrow = int(np.ceil(len(chosen) / ncol))
    fig, grid = plt.subplots(nrow, ncol, figsize=(3.2 * ncol, 2.6 * nrow), sharex=True,
                             squeeze=False)  # fmt: skip
    flat = grid.ravel()
    for ax, c in zip(flat, chosen, strict=False):
        plot_retention_fan(table, c, share=share, ax=ax)
        ax.set_xlabel("")
        ax.set_ylabel("")
        if ax is not flat[0]:
            legend = ax.get_legend()
            if legend is not None:
                legend.remove()
    for ax in flat[len(chosen) :]:
        ax.set_visible(False)
    fig.supxlabel("periods after the calibration end")
    fig.supylabel("share still active" if share else "subscribers still active")
    fig.tight_layout()
    return grid


def plot_retention_rate_curve(result: Any, *, ax: Any = None) -> Any:
    """Retention rate by tenure: the model's rate for a new subscriber (credible band) and
    the observed rate (at the observation end, and at the calibration end).

    Parameters
    ----------
    result : RetentionBacktest or pandas.DataFrame
        A result of :func:`clvkit.retention_backtest` or its ``tenure`` table.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    table = getattr(result, "tenure", result)
    need(table, ["at_risk", "actual_rate", "predicted_rate", "lower", "upper"], "result")
    t = table[table["at_risk"] > 0]
    k = t.index.to_numpy()
    ax = axes(ax)
    prob = table.attrs.get("prob", 0.9)
    ax.fill_between(k, t["lower"], t["upper"], color=MODEL, alpha=0.3,
                    label=f"model, {prob:.0%} credible band")  # fmt: skip
    ax.plot(k, t["predicted_rate"], color=MODEL, lw=1.5, label="model")
    ax.plot(k, t["actual_rate"], color=ACTUAL, marker="o", ms=3, lw=1, label="observed")
    if "calibration_rate" in t:
        ax.plot(k, t["calibration_rate"], color=ACTUAL, ls=":", lw=1,
                label="observed at the calibration end")  # fmt: skip
    ax.set_xlabel("tenure (renewal number)")
    ax.set_ylabel("retention rate")
    ax.legend(fontsize=8)
    return ax
