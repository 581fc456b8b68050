"""The value of a subscriber base (:func:`clvkit.subscriber_value`): value by tenure."""

from __future__ import annotations

from typing import Any

import numpy as np

from clvkit.plots.common import MODEL, axes, need

__all__ = ["plot_value_by_tenure"]


def plot_value_by_tenure(result: Any, *, ax: Any = None) -> Any:
    """Value of the active subscribers by tenure (renewals paid): the posterior mean of each
    group's value with its credible interval.

    Parameters
    ----------
    result : SubscriberValue or pandas.DataFrame
        A result of :func:`clvkit.subscriber_value` or its ``by_tenure`` table.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    table = getattr(result, "by_tenure", result)
    need(table, ["value", "value_lower", "value_upper", "n_active"], "result")
    n = table.index.to_numpy()
    v = table["value"].to_numpy(dtype=np.float64)
    err = np.vstack([v - table["value_lower"].to_numpy(), table["value_upper"].to_numpy() - v])
    ax = axes(ax)
    prob = getattr(result, "settings", {}).get("prob", 0.9)
    ax.bar(n, v, color=MODEL, alpha=0.7, width=0.8, label="value (posterior mean)")
    ax.errorbar(n, v, yerr=err, fmt="none", ecolor="black", lw=1,
                label=f"{prob:.0%} credible interval")  # fmt: skip
    ax.set_xlabel("tenure (renewals paid)")
    ax.set_ylabel("value of the active subscribers")
    ax.legend(fontsize=8)
    return ax
