"""Predicted vs actual, for any registered model: calibration/holdout backtests, tracking,
retention and interval coverage.

- :mod:`clvkit.evaluation.split`: a log read and summarized once (:func:`split_log`);
- :mod:`clvkit.evaluation.predictive`: per-customer holdout predictions, PIT, metrics;
- :mod:`clvkit.evaluation.ppc`: the calibration frequency histogram check;
- :mod:`clvkit.evaluation.tracking`: cohort tracking and retention per period;
- :mod:`clvkit.evaluation.run`: :func:`backtest` and :class:`BacktestResult`;
- :mod:`clvkit.evaluation.rolling`: :func:`rolling_backtest` (many origins and horizons);
- :mod:`clvkit.evaluation.compare_models`: :func:`compare` (which model to trust: PSIS-LOO,
  weights, holdout scores) and :func:`compare_log`.

Models are reached only through the contract (:mod:`clvkit.models.contract`) and the registry.
"""

from __future__ import annotations

from clvkit.evaluation.compare_models import Comparison, compare, compare_log
from clvkit.evaluation.compare_words import comparison_words
from clvkit.evaluation.ppc import frequency_ppc
from clvkit.evaluation.predictive import (
    conditional_expectations,
    holdout_metrics,
    holdout_predictive,
)
from clvkit.evaluation.retention import (
    RetentionBacktest,
    retention_backtest,
    retention_backtest_split,
)
from clvkit.evaluation.rolling import RollingBacktest, rolling_backtest
from clvkit.evaluation.run import BacktestResult, backtest, backtest_split
from clvkit.evaluation.split import HoldoutSplit, split_log
from clvkit.evaluation.tracking import CohortTracking, cohort_tracking

__all__ = [
    "BacktestResult",
    "CohortTracking",
    "Comparison",
    "HoldoutSplit",
    "RetentionBacktest",
    "RollingBacktest",
    "backtest",
    "backtest_split",
    "cohort_tracking",
    "compare",
    "compare_log",
    "comparison_words",
    "conditional_expectations",
    "frequency_ppc",
    "holdout_metrics",
    "holdout_predictive",
    "retention_backtest",
    "retention_backtest_split",
    "rolling_backtest",
    "split_log",
]
