"""Predicted vs actual plots of a backtest: tracking, retention, the frequency check,
conditional expectations and PIT.

Each function takes a :class:`clvkit.evaluation.BacktestResult` or the matching table of one
(``result.tracking``, ``result.retention``, ...), an optional ``ax``, and returns the axes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvkit.errors import ClvkitError
from clvkit.plots.common import ACTUAL, MODEL, axes, need

__all__ = [
    "plot_conditional_expectations",
    "plot_frequency_ppc",
    "plot_pit",
    "plot_retention",
    "plot_tracking",
]


def _table(obj: Any, name: str) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A result's table ``name`` with its calibration end and time unit, or the table itself."""
    if isinstance(obj, pd.DataFrame) or not hasattr(obj, name):
        return obj, {}
    return getattr(obj, name), {
        "calibration_end": getattr(obj, "calibration_end", None),
        "time_unit": getattr(obj, "time_unit", None),
    }


def _calibration_line(ax: Any, calibration_end: float | None) -> None:
    if calibration_end is not None:
        ax.axvline(calibration_end, color="grey", ls="--", lw=1)
        ax.text(calibration_end, 0.98, " holdout →", transform=ax.get_xaxis_transform(),
                va="top", ha="left", color="grey", fontsize=8)  # fmt: skip


def _legend_below(ax: Any, handles: Any = None, labels: Any = None) -> None:
    """The legend under the plot area, clear of the curves and of the "holdout" label."""
    if handles is None:
        handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2,
              frameon=False, fontsize=8)  # fmt: skip


def plot_tracking(
    tracking: Any,
    *,
    cumulative: bool = True,
    calibration_end: float | None = None,
    time_unit: str | None = None,
    ax: Any = None,
) -> Any:
    """Repeat purchases per period, actual vs predicted with the predictive band.

    Parameters
    ----------
    tracking : BacktestResult or pandas.DataFrame
        A backtest result (its calibration end and time unit are used unless given) or its
        ``tracking`` table (see :func:`clvkit.evaluation.cohort_tracking`).
    cumulative : bool
        Cumulative (default) or incremental purchases.
    calibration_end : float, optional
        Draws a vertical line at the end of calibration.
    time_unit : str, optional
        Axis label (default ``"W"``).
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> res = clvkit.backtest(log, calibration_end="1997-09-30",  # doctest: +SKIP
    ...                       observation_end="1998-06-30")
    >>> plot_tracking(res)  # doctest: +SKIP
    """
    tracking, found = _table(tracking, "tracking")
    calibration_end = found.get("calibration_end") if calibration_end is None else calibration_end
    time_unit = time_unit or found.get("time_unit") or "W"
    sfx = "_cumulative" if cumulative else ""
    cols = [f"actual{sfx}", f"predicted{sfx}", f"lower{sfx}", f"upper{sfx}"]
    need(tracking, cols, "tracking")
    ax = axes(ax)
    k = tracking.index.to_numpy() + 0.5
    prob = tracking.attrs.get("prob", 0.9)
    ax.fill_between(k, tracking[cols[2]], tracking[cols[3]], color=MODEL, alpha=0.25,
                    step="mid", label=f"{prob:.0%} predictive band")  # fmt: skip
    cred = [f"credible_lower{sfx}", f"credible_upper{sfx}"]
    if all(c in tracking for c in cred) and (tracking[cred[1]] > tracking[cred[0]]).any():
        ax.fill_between(k, tracking[cred[0]], tracking[cred[1]], color=MODEL, alpha=0.45,
                        step="mid", label=f"{prob:.0%} credible band of the expectation")  # fmt: skip
    ax.plot(k, tracking[cols[1]], color=MODEL, lw=1.8, ls="--", label="model (expected)")
    ax.plot(k, tracking[cols[0]], color=ACTUAL, lw=1.5, label="actual")
    _calibration_line(ax, calibration_end)
    kind = "Cumulative" if cumulative else "Incremental"
    ax.set(xlabel=f"period ({time_unit})", ylabel="repeat purchases",
           title=f"{kind} repeat purchases of the cohort")  # fmt: skip
    ax.set_xlim(0, k[-1] + 0.5)
    _legend_below(ax)
    return ax


def plot_retention(
    retention: Any,
    *,
    calibration_end: float | None = None,
    time_unit: str | None = None,
    show_alive: bool = True,
    ax: Any = None,
) -> Any:
    """Share of the cohort buying in each period (window), actual vs predicted, and share alive.

    Parameters
    ----------
    retention : BacktestResult or pandas.DataFrame
        A backtest result or its ``retention`` table.
    calibration_end : float, optional
    time_unit : str
    show_alive : bool
        Also plot the model's expected share alive (right axis).
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> plot_retention(res)  # doctest: +SKIP
    """
    retention, found = _table(retention, "retention")
    calibration_end = found.get("calibration_end") if calibration_end is None else calibration_end
    time_unit = time_unit or found.get("time_unit") or "W"
    need(retention, ["actual", "predicted", "lower", "upper", "expected_alive"], "retention")
    ax = axes(ax)
    r = retention
    if "n_eligible" in retention:  # skip the first periods, when few customers have entered
        r = retention[retention["n_eligible"] >= max(1, 0.05 * retention["n_eligible"].max())]
    k = r.index.to_numpy() + 0.5
    prob = retention.attrs.get("prob", 0.9)
    window = retention.attrs.get("window", 1)
    ax.fill_between(k, r["lower"], r["upper"], color=MODEL, alpha=0.25, step="mid",
                    label=f"{prob:.0%} predictive band")  # fmt: skip
    if {"credible_lower", "credible_upper"} <= set(r) and (
        r["credible_upper"] > r["credible_lower"]
    ).any():
        ax.fill_between(k, r["credible_lower"], r["credible_upper"], color=MODEL, alpha=0.45,
                        step="mid", label=f"{prob:.0%} credible band")  # fmt: skip
    ax.plot(k, r["predicted"], color=MODEL, ls="--", lw=1.8, label="model (expected)")
    ax.plot(k, r["actual"], color=ACTUAL, lw=1.3, label="actual")
    ax.set(xlabel=f"period ({time_unit})", ylim=(0, None),
           ylabel=f"share buying in the last {window} period(s)",
           title="Retention: share of the cohort still purchasing")  # fmt: skip
    _calibration_line(ax, calibration_end)
    handles, labels = ax.get_legend_handles_labels()
    if show_alive:
        ax2 = ax.twinx()
        (line,) = ax2.plot(k, r["expected_alive"], color="tab:green", lw=1.5, label="P(alive)")
        ax2.set_ylim(0, 1.02)
        ax2.set_ylabel("expected share alive", color="tab:green")
        handles.append(line)
        labels.append("model share alive (right)")
    _legend_below(ax, handles, labels)
    return ax


def plot_frequency_ppc(ppc: Any, ax: Any = None) -> Any:
    """Calibration histogram of repeat purchases: actual vs expected with the interval.

    Parameters
    ----------
    ppc : BacktestResult or pandas.DataFrame
        A backtest result or :func:`clvkit.evaluation.frequency_ppc` output.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> plot_frequency_ppc(res)  # doctest: +SKIP
    """
    ppc, _ = _table(ppc, "frequency_ppc")
    need(ppc, ["actual", "expected", "lower", "upper"], "ppc")
    ax = axes(ax)
    x = np.arange(len(ppc))
    w = 0.4
    ax.bar(x - w / 2, ppc["actual"], w, color="0.35", label="actual")
    ax.bar(x + w / 2, ppc["expected"], w, color=MODEL, alpha=0.8, label="model (expected)")
    err = np.vstack([ppc["expected"] - ppc["lower"], ppc["upper"] - ppc["expected"]])
    prob = ppc.attrs.get("prob", 0.9)
    ax.errorbar(x + w / 2, ppc["expected"], yerr=np.maximum(err, 0), fmt="none", ecolor="k",
                capsize=3, lw=1, label=f"{prob:.0%} predictive interval")  # fmt: skip
    ax.set_xticks(x, ppc.index.astype(str))
    title = "Calibration repeat purchases"
    if "chi_square" in ppc.attrs:
        a = ppc.attrs
        title += f"  (χ² = {a['chi_square']:.1f}, dof {a['dof']}, p = {a['p_value']:.2f})"
    ax.set(xlabel="repeat purchases in calibration", ylabel="customers", title=title)
    ax.legend(frameon=False)
    return ax


def plot_conditional_expectations(ce: Any, ax: Any = None) -> Any:
    """Mean holdout purchases by calibration frequency, actual vs predicted (group sizes shown).

    ``ce`` is a backtest result or its ``conditional_expectations`` table.

    Examples
    --------
    >>> plot_conditional_expectations(res)  # doctest: +SKIP
    """
    ce, _ = _table(ce, "conditional_expectations")
    need(ce, ["n_customers", "actual", "predicted"], "ce")
    ax = axes(ax)
    x = np.arange(len(ce))
    ax.plot(x, ce["actual"], "o-", color=ACTUAL, label="actual")
    ax.plot(x, ce["predicted"], "s--", color=MODEL, label="model (conditional expectation)")
    ax.set_xticks(
        x, [f"{lab}\n(n={n})" for lab, n in zip(ce.index, ce["n_customers"], strict=True)]
    )
    ax.tick_params(axis="x", labelsize=8)
    ax.set(xlabel="purchases in calibration", ylabel="mean purchases in holdout",
           title="Conditional expectations: calibration vs holdout")  # fmt: skip
    ax.legend(frameon=False)
    return ax


def plot_pit(pit: Any, bins: int = 10, revenue: bool = False, ax: Any = None) -> Any:
    """Histogram of (randomized) PIT values; flat within the band when the predictive is calibrated.

    ``pit`` is an array of PIT values or a backtest result (its ``customers["pit"]``, or
    ``customers["revenue_pit"]`` with ``revenue=True``).

    Examples
    --------
    >>> plot_pit(res, revenue=True)  # doctest: +SKIP
    """
    if hasattr(pit, "customers"):
        col = "revenue_pit" if revenue else "pit"
        need(pit.customers, [col], "pit")
        pit = pit.customers[col].to_numpy()
    u = np.asarray(pit, dtype=float)
    u = u[np.isfinite(u)]
    if u.size == 0:
        raise ClvkitError("argument 'pit' has no finite values. Suggestion: pass PIT values.")
    ax = axes(ax)
    ax.hist(u, bins=bins, range=(0, 1), color=MODEL, alpha=0.7,
            edgecolor="white", label="customers")  # fmt: skip
    expected = u.size / bins
    half = 1.96 * np.sqrt(expected * (1 - 1 / bins))
    ax.axhspan(expected - half, expected + half, color="tab:orange", alpha=0.25, zorder=3,
               label="uniform, 95% band")  # fmt: skip
    ax.axhline(expected, color="tab:orange", lw=1, zorder=3)
    ax.set(xlabel="randomized PIT", ylabel="customers", title="Calibration of the predictive (PIT)",
           xlim=(0, 1))  # fmt: skip
    ax.legend(loc="lower right", framealpha=0.9)
    return ax
