"""Matplotlib plots of backtests, posterior checks, customer matrices and value distributions.

Every function takes an optional ``ax`` (a new figure is made when it is ``None``) and returns the
axes it drew on.

- :mod:`clvkit.plots.backtest`: predicted vs actual; each function takes a
  :class:`clvkit.evaluation.BacktestResult` or the matching table of one;
- :mod:`clvkit.plots.matrices`: P(alive) and expected purchases over a frequency x recency
  grid and P(alive) along one history, for any purchase model whose columns are
  ``frequency``, ``recency`` and ``T``, built with the model contract's primitives;
- :mod:`clvkit.plots.value`: CLV and customer-equity distributions, and value by group;
- :mod:`clvkit.plots.compare`: a model comparison (elpd differences, holdout totals);
- :mod:`clvkit.plots.retention`: the contractual retention backtest (cohort fans, rate curve);
- :mod:`clvkit.plots.subscriptions`: the value of a subscriber base by tenure;
- :mod:`clvkit.plots.effects`: a covariate model's effects (forest plot of multipliers);
- :mod:`clvkit.plots.firm`: a firm valuation's cash flows (fan) and sensitivities (tornado),
  the equity history (fan), the bridge between cut-offs (waterfall) and a rolling-origin
  backtest's error by horizon.
"""

from __future__ import annotations

from clvkit.plots.backtest import (
    plot_conditional_expectations,
    plot_frequency_ppc,
    plot_pit,
    plot_retention,
    plot_tracking,
)
from clvkit.plots.compare import plot_comparison, plot_elpd_differences, plot_holdout_totals
from clvkit.plots.effects import plot_effects
from clvkit.plots.firm import (
    plot_cashflows,
    plot_equity_bridge,
    plot_equity_history,
    plot_error_by_horizon,
    plot_sensitivities,
)
from clvkit.plots.matrices import (
    plot_expected_purchases_matrix,
    plot_probability_alive_history,
    plot_probability_alive_matrix,
)
from clvkit.plots.retention import (
    plot_retention_cohorts,
    plot_retention_fan,
    plot_retention_rate_curve,
)
from clvkit.plots.subscriptions import plot_value_by_tenure
from clvkit.plots.value import plot_clv_distribution, plot_equity, plot_value_by_group

__all__ = [
    "plot_cashflows",
    "plot_clv_distribution",
    "plot_comparison",
    "plot_conditional_expectations",
    "plot_effects",
    "plot_elpd_differences",
    "plot_equity",
    "plot_equity_bridge",
    "plot_equity_history",
    "plot_error_by_horizon",
    "plot_expected_purchases_matrix",
    "plot_frequency_ppc",
    "plot_holdout_totals",
    "plot_pit",
    "plot_probability_alive_history",
    "plot_probability_alive_matrix",
    "plot_retention",
    "plot_retention_cohorts",
    "plot_retention_fan",
    "plot_retention_rate_curve",
    "plot_sensitivities",
    "plot_tracking",
    "plot_value_by_group",
    "plot_value_by_tenure",
]
