"""clvkit: Bayesian customer-lifetime-value modeling.

Layers (imports only point down; see docs/architecture.md): ``data`` (log -> customer tables)
-> ``models`` (one folder per model behind one contract; ``inference`` shared) -> ``value``
(Monte Carlo CLV and customer equity) -> ``evaluation`` (predicted vs actual) -> ``plots``,
``report``, ``cli``.

Public names are imported lazily, so ``import clvkit`` stays fast and a CLI call pays only for
what it uses.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "ClvkitError": "clvkit.errors",
    "NotFittedError": "clvkit.errors",
    "ClvkitWarning": "clvkit.errors",
    "ConvergenceWarning": "clvkit.errors",
    "SpendCorrelationWarning": "clvkit.errors",
    "rfm_summary": "clvkit.data.summary",
    "calibration_holdout": "clvkit.data.summary",
    "coarsen_rfm": "clvkit.data.summary",
    "read_purchases": "clvkit.data.summary",
    "opportunity_summary": "clvkit.data.opportunities",
    "log_table": "clvkit.data.log_tables",
    "covariate_design": "clvkit.data.covariates",
    **dict.fromkeys(
        ("contract_summary", "survival_table", "cohort_counts"), "clvkit.data.contracts"
    ),
    "BetaGeo": "clvkit.models.bgnbd.model",
    "GammaGamma": "clvkit.models.gamma_gamma.model",
    "ModifiedBetaGeo": "clvkit.models.mbgnbd.model",
    "ParetoNBD": "clvkit.models.pnbd.model",
    "BetaGeoBetaBinom": "clvkit.models.bgbb.model",
    **dict.fromkeys(
        ("ShiftedBetaGeo", "ShiftedBetaGeoPooled", "SubscriptionFee"), "clvkit.models.sbg"
    ),
    "load": "clvkit.models.persistence",
    "customer_value": "clvkit.value.engine",
    "counterfactual_value": "clvkit.value.counterfactual",
    "subscriber_value": "clvkit.value.subscriptions",
    "ModelMixture": "clvkit.models.mixture.model",
    "with_covariates": "clvkit.models.covariates.model",
    "CovariatePurchaseModel": "clvkit.models.covariates.model",
    "CovariateSpendModel": "clvkit.models.covariates.model",
    "CashflowSettings": "clvkit.value.settings",
    "backtest": "clvkit.evaluation",
    "compare": "clvkit.evaluation.compare_models",
    "contract_calibration_holdout": "clvkit.data.contract_split",
    "retention_backtest": "clvkit.evaluation.retention",
    "equity_history": "clvkit.firm.history",
    "rolling_backtest": "clvkit.evaluation.rolling",
    "firm_equity": "clvkit.firm.equity",
    **dict.fromkeys(("AcquisitionModel", "AcquisitionPlan"), "clvkit.firm.acquisition"),
    **dict.fromkeys(("Report", "report_from_log"), "clvkit.report"),
    "firm_report": "clvkit.report_firm",
}
_SUBMODULES = {
    "datasets",
    "data",
    "models",
    "evaluation",
    "inference",
    "value",
    "distributed",
    "plots",
    "report",
    "firm",
    "units",
    "errors",
    "rng",
}

__all__ = sorted([*_EXPORTS, *_SUBMODULES, "__version__"])


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    if name in _SUBMODULES:
        return importlib.import_module(f"clvkit.{name}")
    raise AttributeError(f"module 'clvkit' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
