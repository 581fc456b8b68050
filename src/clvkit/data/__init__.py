"""Data layer: a purchase log (DataFrame, CSV or Parquet) -> per-customer tables.

- :mod:`clvkit.data.summary`: the RFM summary, the calibration/holdout split, the
  purchase-day rule and the checks shared by every route;
- :mod:`clvkit.data.files`: the file route (DuckDB), which gives the same tables.
"""

from __future__ import annotations

from clvkit.data.contract_split import contract_calibration_holdout
from clvkit.data.contracts import cohort_counts, contract_summary, survival_table
from clvkit.data.log_tables import LOG_TABLES, log_table
from clvkit.data.opportunities import opportunity_split, opportunity_summary
from clvkit.data.summary import (
    calibration_holdout,
    coarsen_rfm,
    read_purchases,
    rfm_summary,
    summarize_log,
)

__all__ = [
    "LOG_TABLES",
    "calibration_holdout",
    "coarsen_rfm",
    "cohort_counts",
    "contract_calibration_holdout",
    "contract_summary",
    "log_table",
    "opportunity_split",
    "opportunity_summary",
    "read_purchases",
    "rfm_summary",
    "summarize_log",
    "survival_table",
]
