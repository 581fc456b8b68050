"""Static covariates and hierarchical segments on the models of the contract."""

from clvkit.models.covariates.model import (
    CovariatePurchaseModel,
    CovariateSpendModel,
    with_covariates,
)
from clvkit.models.covariates.spec import CovariatePurchaseSpec, CovariateSpendSpec, CovariateTerms

__all__ = [
    "CovariatePurchaseModel",
    "CovariatePurchaseSpec",
    "CovariateSpendModel",
    "CovariateSpendSpec",
    "CovariateTerms",
    "with_covariates",
]
