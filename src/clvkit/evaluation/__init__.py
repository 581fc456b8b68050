"""Predicted vs actual: calibration/holdout backtests, tracking and interval coverage."""

from __future__ import annotations

from clvkit.evaluation.holdout import BacktestResult, backtest

__all__ = ["BacktestResult", "backtest"]
