"""Customer matrices and histories of a purchase model, through the model contract.

P(alive) and expected purchases are computed on a frequency x recency grid of constructed
customer columns (``frequency``, ``recency``, ``T``) with :meth:`PurchaseSpec.probability_alive`
and :meth:`PurchaseSpec.expected_purchases`, never per customer, so memory stays bounded
whatever the number of customers (draws are processed in chunks). Models whose customer
columns are not exactly these (e.g. a discrete-opportunity model) are refused with a
:class:`~clvkit.errors.ClvkitError`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from clvkit.errors import ClvkitError
from clvkit.models.contract import PurchaseSpec, n_draws, n_rows, take_draws
from clvkit.models.registry import flat_params, resolve
from clvkit.plots.common import ACTUAL, MODEL, axes

__all__ = [
    "fitted_max_T",
    "plot_expected_purchases_matrix",
    "plot_probability_alive_history",
    "plot_probability_alive_matrix",
]

_CELLS = 4_000_000
_RFM = ("frequency", "recency", "T")


def _rfm_model(obj: Any) -> tuple[PurchaseSpec, dict[str, np.ndarray]]:
    """The spec and ``(S, k)`` draws of a purchase model whose columns are frequency, recency, T."""
    spec, post = resolve(obj, "purchase", "transactions_posterior")
    if set(spec.columns) != set(_RFM):
        raise ClvkitError(
            f"argument 'transactions_posterior' is a {spec.label} model, whose customer columns "
            f"are {list(spec.columns)}; these plots need a model of frequency, recency and T. "
            "Suggestion: plot its predictions per customer instead."
        )
    return spec, flat_params(spec, post)


def _draw_chunks(
    fn: Callable[[dict[str, np.ndarray], dict[str, np.ndarray]], np.ndarray],
    params: dict[str, np.ndarray],
    cols: dict[str, np.ndarray],
) -> Iterator[np.ndarray]:
    """``fn(params, cols)`` (``(s, n)``) over blocks of draws small enough to stay bounded."""
    step = max(1, _CELLS // max(n_rows(cols), 1))
    for lo in range(0, n_draws(params), step):
        yield fn(take_draws(params, slice(lo, lo + step)), cols)


def _draw_values(fn, params, cols) -> np.ndarray:
    """``fn(params, cols)`` over all draws, ``(S, n)``."""
    return np.concatenate(list(_draw_chunks(fn, params, cols)))


def _grid_mean(fn, params, cols) -> np.ndarray:
    """Posterior mean of ``fn(params, cols)`` over all draws, holding one block at a time."""
    total = np.zeros(n_rows(cols))
    for block in _draw_chunks(fn, params, cols):
        total += block.sum(axis=0)
        del block  # not held while the next block is computed
    return total / n_draws(params)


def _matrix(ax, values, max_frequency, max_recency, T, title, cbar_label, cmap):
    ax = axes(ax)
    im = ax.imshow(values, origin="lower", aspect="auto", cmap=cmap,
                   extent=(0, max_recency, -0.5, max_frequency + 0.5))  # fmt: skip
    ax.figure.colorbar(im, ax=ax, label=cbar_label)
    ax.set(xlabel=f"recency (age at last purchase; T = {T:g})",
           ylabel="repeat purchases (frequency)", title=title)  # fmt: skip
    return ax


def _grid(
    obj: Any, T: float, max_frequency: int, n_recency: int
) -> tuple[PurchaseSpec, dict[str, np.ndarray], dict[str, np.ndarray], tuple[int, int]]:
    """Spec, draws and the constructed columns of the frequency x recency grid at age ``T``."""
    spec, params = _rfm_model(obj)
    if not (np.isfinite(T) and T > 0):
        raise ClvkitError(f"argument 'T' must be a positive age, got {T!r}. Suggestion: T=39.0.")
    if int(max_frequency) != max_frequency or max_frequency < 1:
        raise ClvkitError(
            f"argument 'max_frequency' must be a positive integer, got {max_frequency!r}. "
            "Suggestion: max_frequency=30."
        )
    x = np.arange(int(max_frequency) + 1, dtype=float)[:, None]
    tx = np.linspace(0.0, T, int(n_recency))[None, :]
    xg, tg = (g.ravel().astype(np.float64) for g in np.broadcast_arrays(x, tx))
    # a customer with no repeat purchase has recency 0 whatever the column
    cols = {"frequency": xg, "recency": np.where(xg > 0, tg, 0.0), "T": np.full(xg.size, T)}
    return spec, params, cols, (x.size, tx.size)


def fitted_max_T(obj: Any) -> float:
    """The largest customer age ``T`` of the data a purchase model was fitted on: from a fitted
    model's compressed statistics (``stats_``) or an ``InferenceData``'s ``observed_data``;
    a ClvkitError when the model does not record them (given parameters, a bare posterior)."""
    stats = getattr(obj, "stats_", None)
    T = getattr(stats, "T", None) if stats is not None else None
    if T is None and hasattr(obj, "groups") and "observed_data" in obj.groups():
        obs = obj.observed_data
        T = obs["T"].to_numpy() if "T" in obs.data_vars else None
    if T is None or np.size(T) == 0:
        raise ClvkitError(
            f"argument 'T' is missing and the {type(obj).__name__} passed as "
            "'transactions_posterior' does not record the data it was fitted on. Suggestion: "
            "pass T= (a customer age in the model's time unit), e.g. T=rfm['T'].max()."
        )
    return float(np.max(T))


def plot_probability_alive_matrix(
    transactions_posterior: Any,
    *,
    T: float | None = None,
    max_frequency: int = 30,
    n_recency: int = 100,
    ax: Any = None,
) -> Any:
    """Posterior mean P(alive) of a customer of age ``T`` over frequency x recency.

    Computed on a ``(max_frequency + 1) x n_recency`` grid (chunked over draws), so memory does
    not depend on the number of customers.

    Parameters
    ----------
    transactions_posterior : fitted purchase model, InferenceData, posterior Dataset or dict
        Any registered purchase model whose customer columns are frequency, recency and T.
    T : float, optional
        Customer age (time since first purchase) in the model's time unit. Default: the largest
        ``T`` of the data the model was fitted on (:func:`fitted_max_T`; a fitted model or its
        ``InferenceData`` record it, given parameters do not).
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
    if T is None:
        T = fitted_max_T(transactions_posterior)
    spec, params, cols, shape = _grid(transactions_posterior, T, max_frequency, n_recency)
    zero = np.zeros(1)
    values = _grid_mean(lambda p, c: spec.probability_alive(p, c, zero)[..., 0], params, cols)
    return _matrix(ax, values.reshape(shape), max_frequency, T, T, "Probability alive",
                   "P(alive)", "RdYlGn")  # fmt: skip


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
        raise ClvkitError(
            f"argument 't' must be a positive horizon, got {t!r}. Suggestion: t=52.0."
        )
    spec, params, cols, shape = _grid(transactions_posterior, T, max_frequency, n_recency)
    horizon = np.array([float(t)])
    values = _grid_mean(lambda p, c: spec.expected_purchases(p, c, horizon)[..., 0], params, cols)
    return _matrix(ax, values.reshape(shape), max_frequency, T, T,
                   f"Expected purchases in the next {t:g} periods", "expected purchases",
                   "viridis")  # fmt: skip


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
    transactions_posterior : fitted purchase model, InferenceData, posterior Dataset or dict
        Any registered purchase model whose customer columns are frequency, recency and T.
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
    spec, params = _rfm_model(transactions_posterior)
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
    cols = {"frequency": n_before, "recency": last, "T": grid}
    zero = np.zeros(1)
    vals = _draw_values(lambda p, c: spec.probability_alive(p, c, zero)[..., 0], params, cols)
    S = vals.shape[0]
    ax = axes(ax)
    ax.plot(grid, vals.mean(axis=0), color=MODEL, lw=1.8, label="P(alive), posterior mean")
    if S > 1:
        lo_b, hi_b = np.quantile(vals, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
        ax.fill_between(grid, lo_b, hi_b, color=MODEL, alpha=0.25, label=f"{prob:.0%} interval")
    for i, t in enumerate(times):
        ax.axvline(t, color=ACTUAL, lw=0.8, ls=":", label="repeat purchase" if i == 0 else None)
    ax.set(xlabel="time since first purchase", ylabel="P(alive)", ylim=(0, 1.03), xlim=(0, end),
           title="Probability alive over the customer's history")  # fmt: skip
    ax.legend(frameon=False, loc="best")
    return ax
