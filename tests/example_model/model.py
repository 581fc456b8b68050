"""The Poisson/exponential estimator: fitting hooks on clvkit's shared machinery.

Its math lives in :mod:`example_model.spec`; this file only feeds it to
:class:`clvkit.models.base.PurchaseModel` (fitting by MLE, MAP and Laplace on compressed
statistics; the prediction methods from the spec) and registers the model, which is all the
layers above ``models/`` need.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from clvkit.errors import ClvkitError
from clvkit.models.base import PurchaseModel
from clvkit.models.inputs import validate_rfm
from clvkit.models.registry import register
from clvkit.models.stats import fingerprint
from example_model.spec import PoissonExponentialSpec, loglik_grad

__all__ = ["PEStats", "PoissonExponential", "compress"]


@dataclass(frozen=True)
class PEStats:
    """Distinct ``(frequency, recency, T)`` rows and how many customers share each."""

    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    weight: np.ndarray

    @property
    def n_customers(self) -> int:
        return int(self.weight.sum())

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.frequency, self.recency, self.T, self.weight)


def compress(x: np.ndarray, tx: np.ndarray, T: np.ndarray, w: np.ndarray | None = None) -> PEStats:
    """Collapse customers with identical rows into weighted rows (sorted, so deterministic)."""
    w = np.ones_like(x, dtype=np.float64) if w is None else np.asarray(w, dtype=np.float64)
    rows, inverse = np.unique(np.stack([x, tx, T], axis=1), axis=0, return_inverse=True)
    weight = np.bincount(inverse.ravel(), weights=w, minlength=rows.shape[0])
    return PEStats(
        np.ascontiguousarray(rows[:, 0]),
        np.ascontiguousarray(rows[:, 1]),
        np.ascontiguousarray(rows[:, 2]),
        weight,
    )


@register
class PoissonExponential(PurchaseModel):
    """Poisson purchases at rate ``lam`` while alive; exponential lifetime with rate ``mu``.

    Parameters
    ----------
    priors : dict, optional
        Per-parameter overrides of the default ``LogNormal(0, 5)`` priors of ``lam`` and
        ``mu`` (rates per time unit). Fits with ``method="mle"``, ``"map"`` or ``"laplace"``
        (``"nuts"`` needs a compiled kernel or a PyMC graph, which this model does not give).
    """

    spec: ClassVar[PoissonExponentialSpec] = PoissonExponentialSpec()
    _default_priors: ClassVar[dict[str, dict[str, Any]]] = {
        "lam": {"dist": "LogNormal", "mu": 0.0, "sigma": 5.0},
        "mu": {"dist": "LogNormal", "mu": 0.0, "sigma": 5.0},
    }

    def _prepare(self, rfm: pd.DataFrame) -> tuple[PEStats, str | None]:
        data = validate_rfm(rfm)
        if data.time_unit is None:
            raise ClvkitError(
                "argument 'rfm' has no attrs['time_unit']. Suggestion: set "
                "rfm.attrs['time_unit'] = 'W' (or build it with clvkit.rfm_summary)."
            )
        return compress(data.frequency, data.recency, data.T), data.time_unit

    def _loglik_grad(self, theta: np.ndarray, stats: PEStats) -> tuple[float, np.ndarray]:
        return loglik_grad(theta, stats.frequency, stats.recency, stats.T, stats.weight)

    def _x0(self, stats: PEStats) -> np.ndarray:
        # lam = the mean purchase rate, mu = a tenth of it
        rate = max(float(stats.weight @ stats.frequency / (stats.weight @ stats.T + 1e-12)), 1e-6)
        return np.log([rate, 0.1 * rate])

    def _observed_data(self, stats: PEStats) -> xr.Dataset:
        return xr.Dataset(
            {
                "frequency": ("row", stats.frequency),
                "recency": ("row", stats.recency),
                "T": ("row", stats.T),
                "weight": ("row", stats.weight),
            }
        )

    @staticmethod
    def _stats_from_observed(ds: xr.Dataset) -> PEStats:
        return PEStats(*(ds[c].to_numpy() for c in ("frequency", "recency", "T", "weight")))
