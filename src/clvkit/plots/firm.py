"""The firm's customer equity: the cash flows of existing and future customers as a fan per
period, the sensitivities as a tornado, the equity history as a fan, the bridge from one
cut-off to the next as a waterfall, and a rolling-origin backtest's error by horizon."""

from __future__ import annotations

from typing import Any

import numpy as np

from clvkit.errors import ClvkitError
from clvkit.plots.common import ACTUAL, MODEL, axes
from clvkit.utils.checks import check_prob

__all__ = [
    "plot_cashflows",
    "plot_equity_bridge",
    "plot_equity_history",
    "plot_error_by_horizon",
    "plot_sensitivities",
]

#: Bar colours of the bridge: levels, gains, losses.
LEVEL, GAIN, LOSS = "tab:grey", "tab:green", "tab:red"


def _fan(
    ax: Any, x: np.ndarray, v: np.ndarray, probs: tuple[float, float], prefix: str, mean: str
) -> np.ndarray:
    """Central intervals of ``v`` ``(len(x), samples)`` as bands (the wider one lighter) and
    its mean as a line labelled ``mean``; returns the mean."""
    for p, alpha in sorted(zip(probs, (0.18, 0.35), strict=True), reverse=True):
        lo, hi = np.quantile(v, [(1 - p) / 2, (1 + p) / 2], axis=1)
        ax.fill_between(
            x, lo, hi, color=MODEL, alpha=alpha, lw=0, label=f"{prefix}{p:.0%} interval"
        )
    out = v.mean(axis=1)
    ax.plot(x, out, color=MODEL, lw=1.8, label=mean)
    return out


def _history(obj: Any, argument: str = "history") -> Any:
    if not (hasattr(obj, "equity") and hasattr(obj, "bridge_draws") and hasattr(obj, "table")):
        raise ClvkitError(
            f"argument {argument!r} must be an equity history, got {type(obj).__name__}. "
            "Suggestion: pass the result of clvkit.equity_history(...)."
        )
    return obj


def plot_equity_history(
    history: Any, ax: Any = None, *, prob: float = 0.9, inner: float = 0.5
) -> Any:
    """Customer equity at each cut-off: the posterior mean with a fan of two central intervals
    (``inner`` and ``prob``); cut-offs valued by a reused fit are open markers.

    Parameters
    ----------
    history : EquityHistory
        The result of :func:`clvkit.equity_history`.
    ax : matplotlib.axes.Axes, optional
    prob, inner : float
        The outer and inner interval probabilities.

    Returns
    -------
    matplotlib.axes.Axes
    """
    h = _history(history)
    prob, inner = check_prob(prob), check_prob(inner, "inner")
    e = h.equity.values.reshape(h.equity.shape[0], -1)
    x = np.asarray(h.cutoffs)
    ax = axes(ax)
    mean = _fan(ax, x, e, (prob, inner), "", "posterior mean")
    refit = np.asarray(h.table(prob)["refit"], dtype=bool)
    ax.plot(x[refit], mean[refit], "o", color=MODEL, ms=5, label="refit here")
    if (~refit).any():
        ax.plot(x[~refit], mean[~refit], "o", mfc="white", color=MODEL, ms=5,
                label="valued with an earlier fit")  # fmt: skip
    ax.set(xlabel="cut-off", ylabel="customer equity", title="Customer equity over time")
    ax.set_ylim(bottom=min(0.0, float(np.min(e))))
    ax.legend(frameon=False, fontsize="small")
    return ax


def plot_equity_bridge(history: Any, step: Any = None, ax: Any = None, *, prob: float = 0.9) -> Any:
    """Waterfall from one cut-off's equity to the next: start, value of new customers, value
    lost with customers who became inactive, revaluation of the rest, end; each part with the
    central ``prob`` interval of its per-draw value.

    Parameters
    ----------
    history : EquityHistory
    step : date or int, optional
        The later cut-off of the pair (a date of ``history.cutoffs`` or its position among
        the steps, ``0`` the first pair); default the last pair.
    ax : matplotlib.axes.Axes, optional
    prob : float

    Returns
    -------
    matplotlib.axes.Axes
    """
    h = _history(history)
    prob = check_prob(prob)
    table = h.bridge(prob)
    if step is None:
        j = len(table) - 1
    elif isinstance(step, int | np.integer) and not isinstance(step, bool):
        if not -len(table) <= step < len(table):
            raise ClvkitError(
                f"argument 'step' is {step}, but the history has {len(table)} step(s). "
                f"Suggestion: an integer in 0..{len(table) - 1}, or a cut-off date."
            )
        j = int(step) % len(table)
    else:
        import pandas as pd

        try:
            when = pd.Timestamp(step)
        except (TypeError, ValueError):
            when = None
        if when is None or when not in table.index:
            raise ClvkitError(
                f"argument 'step' is {step!r}, not a later cut-off of the history "
                f"({[str(c.date()) for c in table.index]}). Suggestion: one of those dates."
            )
        j = int(table.index.get_loc(when))
    row = table.iloc[j]
    ax = axes(ax)
    level = float(row["start"])
    labels = [f"{row['from'].date()}"]
    ax.bar(0, level, color=LEVEL, width=0.6)
    seen = [0.0, level, float(row["end"])]
    for i, part in enumerate(("new", "lost", "revaluation"), start=1):
        v = float(row[part])
        lo, hi = float(row[f"{part}_lower"]), float(row[f"{part}_upper"])
        ax.bar(i, v, bottom=level, color=GAIN if v >= 0 else LOSS, width=0.6)
        top = level + v
        seen += [top, level + lo, level + hi]
        ax.errorbar(i, top, yerr=[[max(v - lo, 0.0)], [max(hi - v, 0.0)]], fmt="none",
                    color=ACTUAL, capsize=3, lw=1)  # fmt: skip
        ax.plot([i - 1 - 0.3, i + 0.3], [level, level], color=ACTUAL, lw=0.6, ls=":")
        n = {"new": "new_customers", "lost": "lost_customers", "revaluation": "other_customers"}
        labels.append(f"{part}\n{int(row[n[part]]):,}")
        level = top
    ax.bar(4, float(row["end"]), color=LEVEL, width=0.6)
    labels.append(f"{table.index[j].date()}")
    ax.set_xticks(range(5), labels, fontsize="small")
    ax.axhline(0.0, color=ACTUAL, lw=0.6)
    span = max(seen) - min(seen)
    ax.set_ylim(min(seen) - 0.02 * span, max(seen) + 0.08 * span)
    ax.set(ylabel="customer equity", xlabel="part (customers in it)",
           title=f"Equity bridge ({prob:.0%} intervals of the parts)")  # fmt: skip
    return ax


def plot_error_by_horizon(rolling: Any, ax: Any = None) -> Any:
    """A rolling-origin backtest's mean absolute error per customer by horizon: one faint line
    per origin and their mean, with the coverage of the per-customer intervals written at
    each horizon.

    Parameters
    ----------
    rolling : RollingBacktest
        The result of :func:`clvkit.rolling_backtest`.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not (hasattr(rolling, "table") and hasattr(rolling, "by_horizon")):
        raise ClvkitError(
            f"argument 'rolling' must be a rolling backtest, got {type(rolling).__name__}. "
            "Suggestion: pass the result of clvkit.rolling_backtest(...)."
        )
    t = rolling.table()
    by = rolling.by_horizon()
    if by.empty:
        raise ClvkitError(
            "argument 'rolling' has no evaluated (origin, horizon) pair. Suggestion: earlier "
            "origins or shorter horizons (see rolling.notes)."
        )
    ax = axes(ax)
    for _, sub in t.reset_index().groupby("origin"):
        ax.plot(sub["horizon"], sub["mae"], color=MODEL, alpha=0.3, lw=1, marker=".")
    ax.plot(by.index, by["mae"], color=MODEL, lw=2, marker="o", label="mean over origins")
    for h, r in by.iterrows():
        ax.annotate(f"{r['coverage']:.0%}", (h, r["mae"]), textcoords="offset points",
                    xytext=(0, 8), ha="center", fontsize="small")  # fmt: skip
    unit = getattr(rolling, "settings", {}).get("time_unit", "")
    ax.set(xlabel=f"horizon ({unit})" if unit else "horizon",
           ylabel="mean absolute error (purchases per customer)",
           title="Forecast error by horizon (labels: interval coverage)")  # fmt: skip
    ax.set_ylim(bottom=0.0)
    ax.legend(frameon=False, fontsize="small")
    return ax


def _firm(obj: Any) -> Any:
    if not (hasattr(obj, "flows") and hasattr(obj, "cashflows") and hasattr(obj, "sensitivities")):
        raise ClvkitError(
            f"argument 'equity' must be a firm valuation, got {type(obj).__name__}. "
            "Suggestion: pass the result of clvkit.firm_equity(...)."
        )
    return obj


def plot_cashflows(equity: Any, ax: Any = None, *, prob: float = 0.9, inner: float = 0.5) -> Any:
    """Discounted net cash flow per period (margin minus costs and acquisition spend), as a
    fan of two central intervals over draws, split into existing customers and the future
    cohorts (their means as lines).

    Parameters
    ----------
    equity : FirmEquity
        The result of :func:`clvkit.firm_equity`.
    ax : matplotlib.axes.Axes, optional
    prob, inner : float
        The outer and inner interval probabilities.

    Returns
    -------
    matplotlib.axes.Axes
    """
    f = _firm(equity)
    prob, inner = check_prob(prob), check_prob(inner, "inner")
    d = f.flows()
    m = float(d.attrs["margin"])
    existing = m * d["existing_revenue"] - d["existing_cost"]
    future = m * d["future_revenue"] - d["future_cost"] - d["acquisition"]
    net = (existing + future).stack(sample=("chain", "draw")).transpose("period", "sample")
    x = d["period"].to_numpy()
    v = net.to_numpy()
    ax = axes(ax)
    _fan(ax, x, v, (prob, inner), "net, ", "net (mean)")
    ax.plot(x, existing.mean(("chain", "draw")).to_numpy(), color=ACTUAL, lw=1, ls="--",
            label="existing customers (mean)")  # fmt: skip
    ax.plot(x, future.mean(("chain", "draw")).to_numpy(), color=GAIN, lw=1, ls="-.",
            label="future customers, net of acquisition (mean)")  # fmt: skip
    ax.axhline(0.0, color=ACTUAL, lw=0.6)
    ax.set(xlabel="cash-flow period", ylabel="discounted cash flow",
           title="Discounted cash flow per period")  # fmt: skip
    ax.legend(frameon=False, fontsize="small")
    return ax


def plot_sensitivities(equity: Any, ax: Any = None, *, prob: float = 0.9, **kwargs: Any) -> Any:
    """Tornado chart: the change of expected equity for each lever (one point more retention,
    10% more purchases, spend, acquisition, CAC, one point of margin: the firm valuation's
    ``sensitivities``), on the same draws, with its central ``prob`` interval; the largest on
    top.

    Parameters
    ----------
    equity : FirmEquity or pandas.DataFrame
        The result of :func:`clvkit.firm_equity`, or its ``sensitivities()`` table.
    ax : matplotlib.axes.Axes, optional
    prob : float
    **kwargs
        Passed to ``sensitivities`` (e.g. ``changes=``).

    Returns
    -------
    matplotlib.axes.Axes
    """
    import pandas as pd

    prob = check_prob(prob)
    if isinstance(equity, pd.DataFrame):
        table = equity
    else:
        table = _firm(equity).sensitivities(prob=prob, **kwargs)
    need = ["change", "delta_mean", "delta_lower", "delta_upper"]
    missing = [c for c in need if c not in table]
    if missing:
        raise ClvkitError(
            f"argument 'equity' lacks columns {missing}. Suggestion: pass a firm valuation or "
            "its sensitivities() table."
        )
    t = table.reindex(table["delta_mean"].abs().sort_values().index)
    ax = axes(ax)
    y = np.arange(len(t))
    mean = t["delta_mean"].to_numpy(dtype=float)
    ax.barh(y, mean, color=[GAIN if v >= 0 else LOSS for v in mean], height=0.6)
    ax.errorbar(mean, y, xerr=[np.maximum(mean - t["delta_lower"].to_numpy(dtype=float), 0),
                               np.maximum(t["delta_upper"].to_numpy(dtype=float) - mean, 0)],
                fmt="none", color=ACTUAL, capsize=3, lw=1)  # fmt: skip
    ax.set_yticks(y, [str(c) for c in t["change"]], fontsize="small")
    ax.axvline(0.0, color=ACTUAL, lw=0.8)
    ax.set(xlabel="change of customer equity",
           title=f"What moves equity ({prob:.0%} intervals, same draws)")  # fmt: skip
    return ax
