"""Plots of the firm's equity over time: the drawn numbers are the results' numbers."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import clvkit
from clvkit.datasets import cdnow_transactions
from clvkit.errors import ClvkitError
from clvkit.plots import plot_equity_bridge, plot_equity_history, plot_error_by_horizon

MAP = {"method": "laplace", "draws": 200}


@pytest.fixture(scope="module")
def history():
    return clvkit.equity_history(
        cdnow_transactions(), cutoffs=["1997-03-26", "1997-06-25", "1997-12-24"],
        horizon="52W", annual_discount_rate=0.1, fit_kwargs=MAP, refit=2, random_seed=0,
    )  # fmt: skip


@pytest.fixture(scope="module")
def rolling():
    return clvkit.rolling_backtest(
        cdnow_transactions(), origins=["1997-06-25", "1997-09-24"], horizons=[13, 26],
        fit_kwargs={"method": "map"}, n_samples=200, random_seed=0,
    )  # fmt: skip


def test_history_fan_draws_the_mean_and_marks_reused_fits(history):
    ax = plot_equity_history(history)
    table = history.table()
    mean_line = next(ln for ln in ax.get_lines() if ln.get_label() == "posterior mean")
    np.testing.assert_allclose(mean_line.get_ydata(), table["equity"].to_numpy(), rtol=1e-12)
    reused = next(ln for ln in ax.get_lines() if ln.get_label() == "valued with an earlier fit")
    assert list(table["refit"]) == [True, False, True]  # refit=2
    np.testing.assert_allclose(reused.get_ydata(), table["equity"].to_numpy()[[1]])
    plt.close(ax.figure)


def test_bridge_waterfall_bars_add_up_to_the_bridge(history):
    bridge = history.bridge()
    for j in range(len(bridge)):
        ax = plot_equity_bridge(history, step=j)
        row = bridge.iloc[j]
        bars = ax.patches
        assert len(bars) == 5
        heights = [b.get_height() for b in bars]
        np.testing.assert_allclose(
            heights, [row["start"], row["new"], row["lost"], row["revaluation"], row["end"]],
            rtol=1e-12,
        )  # fmt: skip
        # each part starts where the previous ended, and the last part ends at the end bar
        assert bars[1].get_y() == pytest.approx(row["start"])
        assert bars[3].get_y() + heights[3] == pytest.approx(row["end"], rel=1e-9)
        plt.close(ax.figure)
    ax = plot_equity_bridge(history, step="1997-12-24")
    assert ax.patches[4].get_height() == pytest.approx(bridge["end"].iloc[-1])
    plt.close(ax.figure)


def test_bridge_refuses_a_step_it_does_not_have(history):
    with pytest.raises(ClvkitError, match="argument 'step'"):
        plot_equity_bridge(history, step=5)
    with pytest.raises(ClvkitError, match="argument 'step'"):
        plot_equity_bridge(history, step="1997-05-01")
    with pytest.raises(ClvkitError, match="equity history"):
        plot_equity_history(pd.DataFrame())


def test_error_by_horizon_draws_the_mean_over_origins(rolling):
    ax = plot_error_by_horizon(rolling)
    by = rolling.by_horizon()
    mean_line = next(ln for ln in ax.get_lines() if ln.get_label() == "mean over origins")
    np.testing.assert_allclose(mean_line.get_ydata(), by["mae"].to_numpy())
    labels = [t.get_text() for t in ax.texts]
    assert labels == [f"{c:.0%}" for c in by["coverage"]]
    assert len(ax.get_lines()) == 1 + rolling.table().reset_index()["origin"].nunique()
    plt.close(ax.figure)
