"""Plots of a model comparison (:func:`clvkit.compare`): elpd differences and holdout totals.

Each function takes a :class:`clvkit.evaluation.Comparison` or its ``table``, an optional
``ax``, and returns the axes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvkit.plots.common import ACTUAL, MODEL, axes, need

__all__ = ["plot_comparison", "plot_elpd_differences", "plot_holdout_totals"]


def _table(obj: Any) -> pd.DataFrame:
    return obj if isinstance(obj, pd.DataFrame) or not hasattr(obj, "table") else obj.table


def _labels(table: pd.DataFrame) -> list[str]:
    labels = table["label"].astype(str)
    dup = labels.duplicated(keep=False)
    return [
        f"{lab} ({k})" if d else lab for k, lab, d in zip(table.index, labels, dup, strict=True)
    ]


def _finish(ax: Any, n: int) -> None:
    """Rows evenly spaced with a margin; the legend under the plot, clear of the bars."""
    ax.set_ylim(-0.6, n - 0.4)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False, fontsize=8)


def plot_elpd_differences(comparison: Any, *, ax: Any = None) -> Any:
    """Each model's elpd_loo minus the best one's, with ±2 standard errors of the paired
    difference (a bar that reaches 0 is within noise).

    Parameters
    ----------
    comparison : Comparison or pandas.DataFrame
        A :func:`clvkit.compare` result or its ``table``.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    t = _table(comparison)
    need(t, ["label", "elpd_diff", "diff_se"], "comparison")
    ax = axes(ax)
    y = np.arange(len(t))[::-1]
    d = -t["elpd_diff"].to_numpy(float)
    ax.errorbar(d, y, xerr=2 * t["diff_se"].to_numpy(float), fmt="o", color=MODEL, capsize=4,
                label="elpd_loo − best ± 2 se")  # fmt: skip
    ax.axvline(0, color="grey", lw=1, ls="--")
    ax.set_yticks(y, _labels(t))
    ax.set(xlabel="difference in elpd_loo to the best model", title="PSIS-LOO (calibration)")
    _finish(ax, len(t))
    return ax


def plot_holdout_totals(comparison: Any, *, ax: Any = None) -> Any:
    """Each model's predicted holdout total with its central predictive interval, and the
    actual total.

    Parameters
    ----------
    comparison : Comparison or pandas.DataFrame
        A :func:`clvkit.compare` result on a table with a holdout, or its ``table``.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    t = _table(comparison)
    need(t, ["label", "total_predicted", "total_lower", "total_upper", "total_actual"],
         "comparison")  # fmt: skip
    ax = axes(ax)
    y = np.arange(len(t))[::-1]
    mid = t["total_predicted"].to_numpy(float)
    lo, hi = t["total_lower"].to_numpy(float), t["total_upper"].to_numpy(float)
    prob = t.attrs.get("prob", 0.9)
    ax.errorbar(mid, y, xerr=[mid - lo, hi - mid], fmt="o", color=MODEL, capsize=4,
                label=f"predicted, {prob:.0%} interval")  # fmt: skip
    ax.axvline(float(t["total_actual"].iloc[0]), color=ACTUAL, lw=1.5, label="actual")
    ax.set_yticks(y, _labels(t))
    ax.set(xlabel="holdout purchases, all customers", title="Holdout total")
    ax.margins(x=0.05)
    _finish(ax, len(t))
    return ax


def plot_comparison(comparison: Any, *, axs: Any = None) -> Any:
    """Both panels side by side (the totals only when the comparison has a holdout).

    Parameters
    ----------
    comparison : Comparison or pandas.DataFrame
    axs : sequence of two matplotlib.axes.Axes, optional

    Returns
    -------
    numpy.ndarray of matplotlib.axes.Axes
    """
    t = _table(comparison)
    holdout = "total_actual" in t
    fig = None
    if axs is None:
        import matplotlib.pyplot as plt

        fig, axs = plt.subplots(1, 2 if holdout else 1, figsize=(11 if holdout else 6, 3.5),
                                squeeze=False)  # fmt: skip
        axs = axs[0]
    plot_elpd_differences(t, ax=axs[0])
    if holdout:
        plot_holdout_totals(t, ax=axs[1])
    if fig is not None:  # its own figure: room for each panel's model labels
        fig.tight_layout()
    return np.asarray(axs)
