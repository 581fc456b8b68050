"""Matplotlib plots of backtests, posterior checks, customer matrices and value distributions.

Every function takes an optional ``ax`` (a new figure is made when it is ``None``) and returns the
axes it drew on. Model matrices are computed on a frequency x recency grid, never per customer, so
memory stays bounded whatever the number of customers (draws are processed in chunks).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from clvkit.errors import ClvkitError
from clvkit.evaluation.holdout import _BG_VARS, _col, _posterior
from clvkit.models.bgnbd import predictions as predict

__all__ = [
    "plot_clv_distribution",
    "plot_conditional_expectations",
    "plot_equity",
    "plot_expected_purchases_matrix",
    "plot_frequency_ppc",
    "plot_pit",
    "plot_probability_alive_history",
    "plot_probability_alive_matrix",
    "plot_retention",
    "plot_tracking",
]

_ACTUAL = "black"
_MODEL = "tab:blue"
_CELLS = 4_000_000


def _axes(ax: Any) -> Any:
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(7, 4.5))
    return ax


def _need(df: pd.DataFrame, cols: list[str], argument: str) -> None:
    missing = [c for c in cols if c not in df]
    if missing:
        raise ClvkitError(
            f"argument {argument!r} lacks columns {missing}. Suggestion: pass the matching table "
            "of a clvkit.evaluation.holdout result."
        )


def _calibration_line(ax: Any, calibration_end: float | None) -> None:
    if calibration_end is not None:
        ax.axvline(calibration_end, color="grey", ls="--", lw=1)
        ax.text(calibration_end, 0.98, " holdout →", transform=ax.get_xaxis_transform(),
                va="top", ha="left", color="grey", fontsize=8)  # fmt: skip


def plot_tracking(
    tracking: pd.DataFrame,
    *,
    cumulative: bool = True,
    calibration_end: float | None = None,
    time_unit: str = "W",
    ax: Any = None,
) -> Any:
    """Repeat purchases per period, actual vs predicted with the predictive band.

    Parameters
    ----------
    tracking : pandas.DataFrame
        ``BacktestResult.tracking`` (see :func:`clvkit.evaluation.holdout.cohort_tracking`).
    cumulative : bool
        Cumulative (default) or incremental purchases.
    calibration_end : float, optional
        Draws a vertical line at the end of calibration.
    time_unit : str
        Axis label.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> res = clvkit.backtest(log, calibration_end="1997-09-30",  # doctest: +SKIP
    ...                       observation_end="1998-06-30")
    >>> plot_tracking(res.tracking, calibration_end=res.calibration_end)  # doctest: +SKIP
    """
    sfx = "_cumulative" if cumulative else ""
    cols = [f"actual{sfx}", f"predicted{sfx}", f"lower{sfx}", f"upper{sfx}"]
    _need(tracking, cols, "tracking")
    ax = _axes(ax)
    k = tracking.index.to_numpy() + 0.5
    prob = tracking.attrs.get("prob", 0.9)
    ax.fill_between(k, tracking[cols[2]], tracking[cols[3]], color=_MODEL, alpha=0.25,
                    step="mid", label=f"{prob:.0%} predictive band")  # fmt: skip
    cred = [f"credible_lower{sfx}", f"credible_upper{sfx}"]
    if all(c in tracking for c in cred) and (tracking[cred[1]] > tracking[cred[0]]).any():
        ax.fill_between(k, tracking[cred[0]], tracking[cred[1]], color=_MODEL, alpha=0.45,
                        step="mid", label=f"{prob:.0%} credible band of the expectation")  # fmt: skip
    ax.plot(k, tracking[cols[1]], color=_MODEL, lw=1.8, ls="--", label="model (expected)")
    ax.plot(k, tracking[cols[0]], color=_ACTUAL, lw=1.5, label="actual")
    _calibration_line(ax, calibration_end)
    kind = "Cumulative" if cumulative else "Incremental"
    ax.set(xlabel=f"period ({time_unit})", ylabel="repeat purchases",
           title=f"{kind} repeat purchases of the cohort")  # fmt: skip
    ax.set_xlim(0, k[-1] + 0.5)
    ax.legend(loc="upper left" if cumulative else "upper right", frameon=False)
    return ax


def plot_retention(
    retention: pd.DataFrame,
    *,
    calibration_end: float | None = None,
    time_unit: str = "W",
    show_alive: bool = True,
    ax: Any = None,
) -> Any:
    """Share of the cohort buying in each period (window), actual vs predicted, and share alive.

    Parameters
    ----------
    retention : pandas.DataFrame
        ``BacktestResult.retention``.
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
    >>> plot_retention(res.retention, calibration_end=res.calibration_end)  # doctest: +SKIP
    """
    _need(retention, ["actual", "predicted", "lower", "upper", "expected_alive"], "retention")
    ax = _axes(ax)
    r = retention
    if "n_eligible" in retention:  # skip the first periods, when few customers have entered
        r = retention[retention["n_eligible"] >= max(1, 0.05 * retention["n_eligible"].max())]
    k = r.index.to_numpy() + 0.5
    prob = retention.attrs.get("prob", 0.9)
    window = retention.attrs.get("window", 1)
    ax.fill_between(k, r["lower"], r["upper"], color=_MODEL, alpha=0.25, step="mid",
                    label=f"{prob:.0%} predictive band")  # fmt: skip
    if {"credible_lower", "credible_upper"} <= set(r) and (
        r["credible_upper"] > r["credible_lower"]
    ).any():
        ax.fill_between(k, r["credible_lower"], r["credible_upper"], color=_MODEL, alpha=0.45,
                        step="mid", label=f"{prob:.0%} credible band")  # fmt: skip
    ax.plot(k, r["predicted"], color=_MODEL, ls="--", lw=1.8, label="model (expected)")
    ax.plot(k, r["actual"], color=_ACTUAL, lw=1.3, label="actual")
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
    ax.legend(handles, labels, loc="upper right", frameon=False, fontsize=8)
    return ax


def plot_frequency_ppc(ppc: pd.DataFrame, ax: Any = None) -> Any:
    """Calibration histogram of repeat purchases: actual vs expected with the interval.

    Parameters
    ----------
    ppc : pandas.DataFrame
        :func:`clvkit.evaluation.holdout.frequency_ppc` output.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> plot_frequency_ppc(res.frequency_ppc)  # doctest: +SKIP
    """
    _need(ppc, ["actual", "expected", "lower", "upper"], "ppc")
    ax = _axes(ax)
    x = np.arange(len(ppc))
    w = 0.4
    ax.bar(x - w / 2, ppc["actual"], w, color="0.35", label="actual")
    ax.bar(x + w / 2, ppc["expected"], w, color=_MODEL, alpha=0.8, label="model (expected)")
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


def plot_conditional_expectations(ce: pd.DataFrame, ax: Any = None) -> Any:
    """Mean holdout purchases by calibration frequency, actual vs predicted (group sizes shown).

    Examples
    --------
    >>> plot_conditional_expectations(res.conditional_expectations)  # doctest: +SKIP
    """
    _need(ce, ["n_customers", "actual", "predicted"], "ce")
    ax = _axes(ax)
    x = np.arange(len(ce))
    ax.plot(x, ce["actual"], "o-", color=_ACTUAL, label="actual")
    ax.plot(x, ce["predicted"], "s--", color=_MODEL, label="model (conditional expectation)")
    ax.set_xticks(
        x, [f"{lab}\n(n={n})" for lab, n in zip(ce.index, ce["n_customers"], strict=True)]
    )
    ax.tick_params(axis="x", labelsize=8)
    ax.set(xlabel="purchases in calibration", ylabel="mean purchases in holdout",
           title="Conditional expectations: calibration vs holdout")  # fmt: skip
    ax.legend(frameon=False)
    return ax


def plot_pit(pit: np.ndarray, bins: int = 10, ax: Any = None) -> Any:
    """Histogram of (randomized) PIT values; flat within the band when the predictive is calibrated.

    Examples
    --------
    >>> plot_pit(res.customers["pit"])  # doctest: +SKIP
    """
    u = np.asarray(pit, dtype=float)
    u = u[np.isfinite(u)]
    if u.size == 0:
        raise ClvkitError("argument 'pit' has no finite values. Suggestion: pass PIT values.")
    ax = _axes(ax)
    ax.hist(u, bins=bins, range=(0, 1), color=_MODEL, alpha=0.7,
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


def _grid_mean(fn: Any, draws: dict[str, np.ndarray], x: np.ndarray, tx: np.ndarray) -> np.ndarray:
    """Posterior mean of fn(*params, x, tx) on a flattened grid, chunked over draws."""
    xg, tg = (g.ravel() for g in np.broadcast_arrays(x, tx))
    S = next(iter(draws.values())).size
    step = max(1, _CELLS // xg.size)
    total = np.zeros(xg.size)
    for lo in range(0, S, step):
        total += fn(*_col({k: v[lo : lo + step] for k, v in draws.items()}), xg, tg).sum(axis=0)
    return (total / S).reshape(np.broadcast(x, tx).shape)


def _matrix(ax, values, max_frequency, max_recency, T, title, cbar_label, cmap):
    ax = _axes(ax)
    im = ax.imshow(values, origin="lower", aspect="auto", cmap=cmap,
                   extent=(0, max_recency, -0.5, max_frequency + 0.5))  # fmt: skip
    ax.figure.colorbar(im, ax=ax, label=cbar_label)
    ax.set(xlabel=f"recency (age at last purchase; T = {T:g})",
           ylabel="repeat purchases (frequency)", title=title)  # fmt: skip
    return ax


def _grid(posterior, T, max_frequency, n_recency):
    draws = _posterior(posterior, _BG_VARS, "transactions_posterior")
    if not (np.isfinite(T) and T > 0):
        raise ClvkitError(f"argument 'T' must be a positive age, got {T!r}.")
    if int(max_frequency) != max_frequency or max_frequency < 1:
        raise ClvkitError(f"argument 'max_frequency' must be a positive integer: {max_frequency!r}")
    x = np.arange(int(max_frequency) + 1, dtype=float)[:, None]
    tx = np.linspace(0.0, T, int(n_recency))[None, :]
    # a customer with no repeat purchase has recency 0 whatever the column; it is alive for sure
    return draws, x, tx


def plot_probability_alive_matrix(
    transactions_posterior: Any,
    *,
    T: float,
    max_frequency: int = 30,
    n_recency: int = 100,
    ax: Any = None,
) -> Any:
    """Posterior mean P(alive) of a customer of age ``T`` over frequency x recency.

    Computed on a ``(max_frequency + 1) x n_recency`` grid (chunked over draws), so memory does
    not depend on the number of customers.

    Parameters
    ----------
    transactions_posterior : xarray.Dataset, InferenceData or fitted BetaGeo
    T : float
        Customer age (time since first purchase) in the model's time unit.
    max_frequency : int
    n_recency : int
        Grid points for recency in ``[0, T]``.
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> post = {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4}
    >>> ax = plot_probability_alive_matrix(post, T=39.0)
    >>> ax.get_images()[0].get_array().shape
    (31, 100)
    """
    draws, x, tx = _grid(transactions_posterior, T, max_frequency, n_recency)
    values = _grid_mean(lambda r, al, a, b, x_, t_: predict.bg_probability_alive(r, al, a, b, x_, t_, T),
                        draws, x, tx)  # fmt: skip
    return _matrix(ax, values, max_frequency, T, T, "Probability alive", "P(alive)", "RdYlGn")


def plot_expected_purchases_matrix(
    transactions_posterior: Any,
    *,
    t: float,
    T: float,
    max_frequency: int = 30,
    n_recency: int = 100,
    ax: Any = None,
) -> Any:
    """Posterior mean expected purchases in the next ``t`` periods over frequency x recency.

    Examples
    --------
    >>> post = {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4}
    >>> ax = plot_expected_purchases_matrix(post, t=52.0, T=39.0, max_frequency=10)
    >>> ax.get_images()[0].get_array().shape
    (11, 100)
    """
    if not (np.isfinite(t) and t > 0):
        raise ClvkitError(f"argument 't' must be a positive horizon, got {t!r}.")
    draws, x, tx = _grid(transactions_posterior, T, max_frequency, n_recency)
    values = _grid_mean(
        lambda r, al, a, b, x_, t_: predict.bg_expected_purchases(r, al, a, b, x_, t_, T, t),
        draws,
        x,
        tx,
    )
    return _matrix(ax, values, max_frequency, T, T, f"Expected purchases in the next {t:g} periods",
                   "expected purchases", "viridis")  # fmt: skip


def plot_probability_alive_history(
    transactions_posterior: Any,
    purchase_times: np.ndarray,
    *,
    end: float,
    prob: float = 0.9,
    n_grid: int = 400,
    ax: Any = None,
) -> Any:
    """P(alive) of one customer over its life, updated at each repeat purchase.

    Parameters
    ----------
    transactions_posterior : xarray.Dataset, InferenceData or fitted BetaGeo
    purchase_times : numpy.ndarray
        Repeat purchase times, in time units since the first purchase (> 0).
    end : float
        Last age to plot.
    prob : float
        Mass of the posterior band.
    n_grid : int
    ax : matplotlib.axes.Axes, optional

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> post = {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4}
    >>> ax = plot_probability_alive_history(post, np.array([2.0, 5.0, 9.0]), end=40.0)
    >>> round(float(ax.lines[0].get_ydata()[-1]), 3)  # x = 3, t_x = 9, T = 40
    0.103
    """
    draws = _posterior(transactions_posterior, _BG_VARS, "transactions_posterior")
    times = np.sort(np.asarray(purchase_times, dtype=float))
    if times.size and (not np.isfinite(times).all() or times[0] <= 0 or times[-1] > end):
        bad = times[~np.isfinite(times) | (times <= 0) | (times > end)]
        raise ClvkitError(
            f"argument 'purchase_times' has {bad.size} value(s) outside (0, end]; for example: "
            f"{bad[0]}. Suggestion: measure repeat purchases from the first purchase."
        )
    grid = np.union1d(np.linspace(0.0, end, int(n_grid)), times)
    n_before = np.searchsorted(times, grid, side="right").astype(float)
    last = np.where(n_before > 0, times[np.maximum(n_before.astype(int) - 1, 0)], 0.0)
    S = next(iter(draws.values())).size
    step = max(1, _CELLS // grid.size)
    vals = np.concatenate([
        predict.bg_probability_alive(*_col({k: v[lo : lo + step] for k, v in draws.items()}), n_before, last, grid)
        for lo in range(0, S, step)
    ])  # fmt: skip
    ax = _axes(ax)
    ax.plot(grid, vals.mean(axis=0), color=_MODEL, lw=1.8, label="P(alive), posterior mean")
    if S > 1:
        lo_b, hi_b = np.quantile(vals, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
        ax.fill_between(grid, lo_b, hi_b, color=_MODEL, alpha=0.25, label=f"{prob:.0%} interval")
    for i, t in enumerate(times):
        ax.axvline(t, color=_ACTUAL, lw=0.8, ls=":", label="repeat purchase" if i == 0 else None)
    ax.set(xlabel="time since first purchase", ylabel="P(alive)", ylim=(0, 1.03), xlim=(0, end),
           title="Probability alive over the customer's history")  # fmt: skip
    ax.legend(frameon=False, loc="best")
    return ax


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
    clv : xarray.DataArray or numpy.ndarray
        CLV draws with customers on the last axis (e.g. dims ``(chain, draw, customer_id)``), or
        one value per customer.
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
    arr = _as_draws(clv, "clv")
    per_customer = arr.reshape(-1, arr.shape[-1]).mean(axis=0) if arr.ndim > 1 else arr
    ax = _axes(ax)
    ax.hist(per_customer, bins=bins, color=_MODEL, alpha=0.8, edgecolor="white", log=log)
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

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> ax = plot_equity(rng.normal(1e5, 5e3, size=2000))
    >>> ax.get_title().startswith("Customer equity")
    True
    """
    if not (0 < prob < 1):
        raise ClvkitError(f"argument 'prob' must be in (0, 1), got {prob!r}.")
    draws = _as_draws(equity, "equity").ravel()
    lo, hi = np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2])
    ax = _axes(ax)
    ax.hist(draws, bins=bins, color=_MODEL, alpha=0.7, edgecolor="white", density=True)
    ax.axvspan(lo, hi, color="grey", alpha=0.2, label=f"{prob:.0%} interval [{lo:,.0f}, {hi:,.0f}]")
    ax.axvline(draws.mean(), color="tab:red", lw=1.5, label=f"mean {draws.mean():,.0f}")
    ax.set(xlabel="customer equity", ylabel="posterior density",
           title=f"Customer equity ({draws.size:,} draws)")  # fmt: skip
    ax.legend(frameon=False)
    return ax
