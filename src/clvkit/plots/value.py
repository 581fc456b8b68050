"""Value plots: the distribution of CLV over customers and of customer equity over draws."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from clvkit.errors import ClvkitError
from clvkit.plots.common import MODEL, axes
from clvkit.utils.checks import check_prob
from clvkit.value import CustomerValue

__all__ = ["plot_clv_distribution", "plot_equity", "plot_value_by_group"]


def _per_customer(value: CustomerValue) -> np.ndarray:
    """Each customer's posterior-mean expected CLV (the tiers' ranking basis) of a result."""
    table = value.summary(value.settings.get("probs", (0.9,))[-1])
    col = table["expected_clv"] if "expected_clv" in table.columns else table["mean"]
    return np.asarray(col.compute() if hasattr(col, "compute") else col, dtype=float)


def _as_draws(values: Any, argument: str) -> np.ndarray:
    arr = np.asarray(values.values if isinstance(values, xr.DataArray) else values, dtype=float)
    bad = ~np.isfinite(arr)
    if arr.size == 0 or bad.any():
        raise ClvkitError(
            f"argument {argument!r} has {int(bad.sum())} non-finite of {arr.size} values"
            f"{'' if arr.size else ' (it is empty)'}. Suggestion: pass the value-layer draws."
        )
    return arr


def plot_clv_distribution(clv: Any, *, bins: int = 50, log: bool = True, ax: Any = None) -> Any:
    """Distribution over customers of the posterior mean CLV.

    Parameters
    ----------
    clv : CustomerValue, xarray.DataArray or numpy.ndarray
        A :func:`clvkit.customer_value` result (its customers' posterior-mean expected CLV, no
        kept draws needed), CLV draws with customers on the last axis (e.g. dims ``(chain,
        draw, customer_id)``), or one value per customer.
    bins : int
    log : bool
        Log-scaled count axis (CLV is very skewed).
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ax = plot_clv_distribution(rng.gamma(0.5, 40.0, size=(100, 500)))
    >>> len(ax.patches)
    50
    """
    if isinstance(clv, CustomerValue):
        per_customer = _as_draws(_per_customer(clv), "clv")
    else:
        arr = _as_draws(clv, "clv")
        per_customer = arr.reshape(-1, arr.shape[-1]).mean(axis=0) if arr.ndim > 1 else arr
    ax = axes(ax)
    ax.hist(per_customer, bins=bins, color=MODEL, alpha=0.8, edgecolor="white", log=log)
    for q, ls in ((0.5, "--"), (0.9, ":")):
        v = np.quantile(per_customer, q)
        ax.axvline(v, color="k", ls=ls, lw=1, label=f"{q:.0%} of customers below {v:,.2f}")
    ax.axvline(per_customer.mean(), color="tab:red", lw=1.2,
               label=f"mean {per_customer.mean():,.2f}")  # fmt: skip
    ax.set(xlabel="expected CLV per customer (posterior mean)", ylabel="customers",
           title=f"CLV distribution over {per_customer.size:,} customers")  # fmt: skip
    ax.legend(frameon=False)
    return ax


def plot_equity(equity: Any, *, prob: float = 0.9, bins: int = 40, ax: Any = None) -> Any:
    """Posterior distribution of customer equity (sum of CLV per draw) with its interval.

    ``equity`` is a :func:`clvkit.customer_value` result (its ``equity`` draws) or the draws.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ax = plot_equity(rng.normal(1e5, 5e3, size=2000))
    >>> ax.get_title().startswith("Customer equity")
    True
    """
    check_prob(prob)
    if isinstance(equity, CustomerValue):
        equity = equity.equity
    draws = _as_draws(equity, "equity").ravel()
    lo, hi = np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2])
    ax = axes(ax)
    ax.hist(draws, bins=bins, color=MODEL, alpha=0.7, edgecolor="white", density=True)
    ax.axvspan(lo, hi, color="grey", alpha=0.2, label=f"{prob:.0%} interval [{lo:,.0f}, {hi:,.0f}]")
    ax.axvline(draws.mean(), color="tab:red", lw=1.5, label=f"mean {draws.mean():,.0f}")
    ax.set(xlabel="customer equity", ylabel="posterior density",
           title=f"Customer equity ({draws.size:,} draws)")  # fmt: skip
    ax.legend(frameon=False)
    return ax


def plot_value_by_group(value: Any, *, prob: float = 0.9, ax: Any = None) -> Any:
    """Value by group (``customer_value(..., by=...)``): each group's CLV per customer with its
    central ``prob`` interval, one row per group (highest first), labelled with the group's
    customers and its share of the total equity with that share's interval.

    Parameters
    ----------
    value : CustomerValue
        From :func:`clvkit.customer_value` with ``by=``.
    prob : float
        Interval probability (credible or predictive as the result's method, see
        :meth:`CustomerValue.group_table`).
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes
    """
    if not isinstance(value, CustomerValue):
        raise ClvkitError(
            f"argument 'value' must be a CustomerValue, got {type(value).__name__}. "
            "Suggestion: clvkit.customer_value(..., by='segment')."
        )
    prob = check_prob(prob)
    t = value.group_table(prob).sort_values("clv_mean")
    ax = axes(ax)
    y = np.arange(len(t))
    mean = t["clv_mean"].to_numpy(dtype=float)
    err = [mean - t["clv_lower"].to_numpy(dtype=float), t["clv_upper"].to_numpy(dtype=float) - mean]
    ax.errorbar(mean, y, xerr=np.maximum(err, 0.0), fmt="o", color=MODEL, capsize=3, ms=5)
    labels = [
        f"{g}\n{int(r['customers']):,} customers, {r['equity_share']:.0%} "
        f"[{r['share_lower']:.0%}, {r['share_upper']:.0%}] of equity"
        for g, r in t.iterrows()
    ]
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_ylim(-0.7, len(t) - 0.3)
    ax.set(xlabel=f"CLV per customer ({prob:.0%} interval)",
           title=f"Value by {t.index.name or 'group'}")  # fmt: skip
    return ax
