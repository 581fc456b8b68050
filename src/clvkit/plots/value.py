"""Value plots: the distribution of CLV over customers and of customer equity over draws."""

from __future__ import annotations

from typing import Any

import numpy as np
import xarray as xr

from clvkit.errors import ClvkitError
from clvkit.plots.common import MODEL, axes
from clvkit.utils.checks import check_prob
from clvkit.value import CustomerValue

__all__ = ["plot_clv_distribution", "plot_equity"]


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
