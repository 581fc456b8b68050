"""The Pareto/NBD estimator: fitting hooks on clvkit's shared machinery, on compressed statistics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from clvkit.models.base import PurchaseModel
from clvkit.models.inputs import RFMArrays, purchase_training_table, rate_meaning
from clvkit.models.pnbd.likelihood import (
    PNBStats,
    compress_pnbd,
    pnbd_loglik_grad,
)
from clvkit.models.pnbd.spec import ParetoNBDSpec
from clvkit.models.registry import register
from clvkit.models.stats import rfm_rows, rfm_rows_dataset

__all__ = ["ParetoNBD"]

_SHAPE = {"dist": "LogNormal", "mu": 0.0, "sigma": 2.0}
_SCALE = {"dist": "LogNormal", "mu": 0.0, "sigma": 5.0}


@register
class ParetoNBD(PurchaseModel):
    """Pareto/NBD model of repeat purchases and drop-out, fitted with NUTS, Laplace, MAP or MLE.

    Purchases of an alive customer follow a Poisson process with rate ``λ ~ Gamma(r, α)``; its
    lifetime is exponential with rate ``μ ~ Gamma(s, β)`` (``α`` and ``β`` are rates, in the
    time unit), so unlike BG/NBD a customer may drop out at any time, also before a first repeat
    purchase. The likelihood is computed without the cancelling hypergeometric terms of the
    published form (:mod:`clvkit.models.pnbd.numerics`): finite and accurate for frequencies
    up to 1e4, ages up to 1e5 and parameters from 1e-4 to 1e4.

    Parameters
    ----------
    priors : dict, optional
        Per-parameter overrides of the priors (families as :class:`clvkit.BetaGeo`). Defaults
        (weakly informative): ``r, s ~ LogNormal(0, 2)`` and ``alpha, beta ~ LogNormal(0, 5)``.
        ``method="mle"`` ignores priors.

    Attributes
    ----------
    idata_ : arviz.InferenceData
        ``posterior`` (``r``, ``alpha``, ``s``, ``beta`` over ``chain``, ``draw``),
        ``sample_stats`` and ``observed_data`` (the compressed statistics and their weights).
    time_unit_ : str
    method_ : str
        ``"nuts"``, ``"laplace"``, ``"map"``, ``"mle"`` or ``"given"``.
    stats_ : PNBStats or None
    n_customers_ : int

    Notes
    -----
    Fitting requires ``rfm.attrs["time_unit"]`` and at least one customer with a repeat
    purchase. ``method="nuts"`` runs nutpie on a compiled kernel of the log posterior
    (:mod:`clvkit.models.pnbd.kernels`); there is no PyMC graph (``sampler="pymc"`` is refused).

    Examples
    --------
    >>> from clvkit.datasets import cdnow_calibration_summary
    >>> model = ParetoNBD().fit(cdnow_calibration_summary(), method="mle")
    >>> [round(float(model.posterior_[n].item()), 3) for n in ("r", "alpha", "s", "beta")]
    [0.553, 10.578, 0.606, 11.668]
    """

    spec: ClassVar[ParetoNBDSpec] = ParetoNBDSpec()
    _default_priors: ClassVar[dict[str, dict[str, Any]]] = {
        "r": _SHAPE,
        "alpha": _SCALE,
        "s": _SHAPE,
        "beta": _SCALE,
    }

    @staticmethod
    def _training_data(rfm: pd.DataFrame) -> RFMArrays:
        return purchase_training_table(rfm, "cannot separate them from dropout")

    def _prepare(self, rfm: pd.DataFrame) -> tuple[PNBStats, str | None]:
        data = self._training_data(rfm)
        return compress_pnbd(data.frequency, data.recency, data.T), data.time_unit

    def _loglik_grad(self, theta: np.ndarray, stats: PNBStats) -> tuple[float, np.ndarray]:
        return pnbd_loglik_grad(theta, stats)

    def _row_columns(self, table: pd.DataFrame) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The columns of the per-row likelihood (validated as for fitting) and which
        customers enter it (all)."""
        data = self._training_data(table)
        cols = {"frequency": data.frequency, "recency": data.recency, "T": data.T}
        return cols, np.ones(data.frequency.size, dtype=bool)

    def _rows_loglik_grad(
        self, theta: np.ndarray, cols: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The base likelihood with per-row parameters: each row's log-likelihood ``(m,)`` and
        its gradient ``(m, 4)`` in that row's ``theta = log([r, alpha, s, beta])``
        (:func:`clvkit.models.pnbd.rows.pnbd_rows_loglik_grad`: series tabulated per frequency
        while ``r`` and ``s`` are shared; the direct form
        :func:`clvkit.models.pnbd.likelihood.pnbd_loglik_rows_grad` is tested equal)."""
        from clvkit.models.pnbd.rows import pnbd_rows_loglik_grad  # numba: compiled on first use

        return pnbd_rows_loglik_grad(theta, cols["frequency"], cols["recency"], cols["T"])

    def _unbounded_meaning(self, up: list[str], down: list[str], values: dict[str, float]) -> str:
        parts = rate_meaning(up, values)
        if {"s", "beta"} <= set(up):
            rate = values["s"] / values["beta"]
            parts.append(
                "the dropout rates show no variation between customers: Gamma(s, beta) "
                f"shrinks to one rate, s/beta = {rate:.4g} per time unit"
            )
        elif "s" in down or ("beta" in up and "s" not in up):
            parts.append("the data show no sign of dropout: the dropout rate runs to 0")
        return "; ".join(parts) or "these parameters are not identified by the data"

    def _x0(self, stats: PNBStats) -> np.ndarray:
        # r = 1, α matching the mean purchase rate; s = 1, β = the mean age
        rate = max(float(stats.weight @ stats.frequency / (stats.weight @ stats.T + 1e-12)), 1e-6)
        age = max(float(stats.weight @ stats.T / stats.weight.sum()), 1e-6)
        return np.log([1.0, 1.0 / rate, 1.0, age])

    def _native_kernel(self, stats: PNBStats, codes: np.ndarray, pars: np.ndarray) -> Any:
        from clvkit.models.pnbd.kernels import pnbd_native_kernel  # numba: compiled on first use

        return pnbd_native_kernel(stats, codes, pars)

    def _observed_data(self, stats: PNBStats) -> xr.Dataset:
        return rfm_rows_dataset(stats)

    @staticmethod
    def _stats_from_observed(ds: xr.Dataset) -> PNBStats:
        return compress_pnbd(*rfm_rows(ds))
