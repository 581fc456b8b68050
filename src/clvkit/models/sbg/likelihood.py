"""sBG training data: compressed ``(renewals, churned)`` rows with weights, from a contract
summary or a cohort survival table; the weighted log-likelihood on them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from clvkit.errors import ClvkitError, bad_rows_error
from clvkit.models.sbg.math import loglik_dab, loglik_grad, loglik_terms
from clvkit.models.sbg.spec import contract_columns
from clvkit.models.stats import WeightedRows, distinct_rows

__all__ = [
    "SBGStats",
    "sbg_loglik_grad",
    "sbg_loglik_rows_grad",
    "stats_from_survival",
    "stats_from_table",
]


@dataclass(frozen=True)
class SBGStats(WeightedRows):
    """Distinct ``(renewals, churned)`` rows and how many customers share each."""

    KEY: ClassVar[tuple[str, ...]] = ("renewals", "churned", "weight")

    renewals: np.ndarray
    churned: np.ndarray
    weight: np.ndarray

    def dataset(self) -> xr.Dataset:
        """The rows as saved with a model (``observed_data``)."""
        return xr.Dataset({k: ("row", getattr(self, k)) for k in ("renewals", "churned", "weight")})

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> SBGStats:
        return cls(*(ds[k].to_numpy() for k in ("renewals", "churned", "weight")))


def compress(renewals, churned, weight=None) -> SBGStats:
    """Collapse equal ``(renewals, churned)`` rows into weighted rows (sorted)."""
    n, c, w = distinct_rows(renewals, churned, weight=weight)
    keep = w > 0
    return SBGStats(n[keep], c[keep], w[keep])


def is_survival_table(table: pd.DataFrame) -> bool:
    """Whether ``table`` is a cohort survival table (:func:`clvkit.survival_table`)."""
    return table.attrs.get("kind") == "survival" or (
        len(table.columns) > 0
        and all(isinstance(c, (int, np.integer)) for c in table.columns)
        and "renewals" not in table.columns
    )


def stats_from_survival(table: pd.DataFrame, argument: str = "summary") -> SBGStats:
    """Rows of a survival table: per cohort with counts ``N_0 .. N_K`` alive at the start of
    periods ``0..K`` (NaN after its last observed period), ``N_{k-1} - N_k`` customers churned
    after ``k - 1`` renewals and ``N_K`` active after ``K`` renewals."""
    mat = table.to_numpy(dtype=np.float64, na_value=np.nan)
    cols = list(table.columns)
    if cols != list(range(len(cols))) or mat.shape[1] < 2:
        raise ClvkitError(
            f"argument {argument!r} has columns {cols[:5]}... Suggestion: a survival table "
            "has integer columns 0, 1, ..., K (build it with clvkit.survival_table or "
            "clvkit.cohort_counts)."
        )
    obs = ~np.isnan(mat)
    gap = obs[:, 1:] & ~obs[:, :-1]
    vals = np.where(obs, mat, 0.0)
    bad = (~obs[:, 0]) | gap.any(axis=1) | (obs & (vals < 0)).any(axis=1)
    bad |= (obs[:, 1:] & (vals[:, 1:] > vals[:, :-1])).any(axis=1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise bad_rows_error(
            f"argument {argument!r}",
            "is not a survival table row (counts >= 0, falling, NaN only at the end)",
            int(bad.sum()),
            {"cohort": table.index[i], "counts": mat[i].tolist()},
            "build it with clvkit.survival_table or clvkit.cohort_counts.",
            n_total=len(table),
        )
    last = obs.sum(axis=1) - 1  # K per cohort
    n_parts, c_parts, w_parts = [], [], []
    for i in range(mat.shape[0]):
        K = int(last[i])
        v = mat[i, : K + 1]
        n_parts += [np.arange(K, dtype=np.float64), [float(K)]]
        c_parts += [np.ones(K), [0.0]]
        w_parts += [v[:-1] - v[1:], [v[K]]]
    return compress(np.concatenate(n_parts), np.concatenate(c_parts), np.concatenate(w_parts))


def stats_from_table(table: pd.DataFrame, argument: str = "summary") -> SBGStats:
    """Compressed rows of a contract summary or a survival table."""
    if not isinstance(table, pd.DataFrame):
        raise ClvkitError(
            f"argument {argument!r} must be a pandas DataFrame, got {type(table).__name__}. "
            "Suggestion: clvkit.contract_summary(...) or clvkit.survival_table(...)."
        )
    if is_survival_table(table):
        return stats_from_survival(table, argument)
    cols = contract_columns(table, argument)
    return compress(cols["renewals"], cols["churned"])


def sbg_loglik_grad(theta: np.ndarray, stats: SBGStats) -> tuple[float, np.ndarray]:
    """Weighted log-likelihood and gradient in ``(ln alpha, ln beta)``."""
    return loglik_grad(theta, stats.renewals, stats.churned, stats.weight)


def sbg_loglik_rows_grad(
    theta: np.ndarray, renewals: np.ndarray, churned: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The sBG log-likelihood of each row with that row's own parameters, and its gradient: the
    base likelihood (:func:`sbg_loglik_grad`) with per-row parameters.

    Row ``i`` is ``(renewals[i], churned[i])`` under ``theta[i] = log([alpha, beta])``
    (``(m, 2)``); returns ``ll`` ``(m,)`` and its gradient in the row's ``theta`` ``(m, 2)``.
    With every row at one ``theta0`` the weighted sums are :func:`sbg_loglik_grad`.
    """
    theta = np.asarray(theta, dtype=np.float64)
    a, b = np.exp(theta).T
    n = np.asarray(renewals, dtype=np.float64)
    c = np.asarray(churned, dtype=np.float64)
    da, db = loglik_dab(a, b, n, c)
    return loglik_terms(a, b, n, c), np.column_stack([a * da, b * db])
