"""The Gamma-Gamma spend model (Fader and Hardie 2013) in PyMC, on compressed statistics."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from clvkit.errors import ClvkitError, SpendCorrelationWarning
from clvkit.inference.estimator import pymc_prior
from clvkit.models.base import SpendModel
from clvkit.models.gamma_gamma.likelihood import (
    GGStats,
    compress_gg,
    gg_loglik_grad,
)
from clvkit.models.gamma_gamma.spec import GammaGammaSpec
from clvkit.models.inputs import RFMArrays, validate_rfm
from clvkit.models.registry import register

__all__ = ["GammaGamma", "SpendCorrelationWarning", "gg_pymc"]

#: |corr(frequency, monetary_value)| above which the independence assumption is flagged.
CORRELATION_THRESHOLD = 0.3

_SHAPE = {"dist": "LogNormal", "mu": 0.0, "sigma": 2.0}
_SCALE = {"dist": "LogNormal", "mu": 0.0, "sigma": 5.0}


@register
class GammaGamma(SpendModel):
    """Gamma-Gamma model of spend per purchase, fitted with NUTS, MAP or MLE.

    Each purchase's spend is ``Gamma(p, ν)``; ``ν ~ Gamma(q, v)`` across customers. Only
    customers with ``frequency > 0`` are used; ``monetary_value`` is their mean spend over
    repeat purchases. The likelihood is the density of the mean spend ``z̄`` (not of the total
    ``x z̄``, which differs by ``Σ ln x``); on CDNOW it gives -4055.92 at the MLE.

    Parameters
    ----------
    priors : dict, optional
        Per-parameter overrides (families as in :class:`clvkit.BetaGeo`). Defaults: ``p, q ~
        LogNormal(0, 2)`` and ``v ~ LogNormal(0, 5)`` (``v`` is in currency units).

    Attributes
    ----------
    idata_ : arviz.InferenceData
        ``posterior`` with ``p``, ``q``, ``v``; ``observed_data`` with the compressed
        ``(frequency, monetary_value, weight)`` rows.
    time_unit_ : str or None
        The training table's time unit if it had one (spend involves no time).
    method_ : str
        ``"nuts"``, ``"map"``, ``"mle"``, ``"laplace"``, or ``"given"`` for a model built by
        :meth:`from_params` / :meth:`from_posterior` (which has no ``stats_``).
    stats_ : GGStats or None
    n_customers_ : int
        Number of repeat customers used.

    Raises
    ------
    ClvkitError
        At fit time, with every method, when no customer has a repeat purchase or the repeat
        customers' ``monetary_value`` is one constant (no variation to model); with
        ``method="mle"`` or ``"map"`` when the maximum lies on the boundary (see
        :class:`clvkit.BetaGeo`).

    Warns
    -----
    SpendCorrelationWarning
        When ``|corr(frequency, monetary_value)| > 0.3`` among repeat customers.

    Examples
    --------
    >>> import pandas as pd
    >>> rfm = pd.DataFrame({"frequency": [0, 2, 1, 5, 3],
    ...                     "monetary_value": [0.0, 30.0, 25.0, 27.0, 20.0]})
    >>> GammaGamma().fit(rfm, method="map").n_customers_
    4
    """

    spec: ClassVar[GammaGammaSpec] = GammaGammaSpec()
    _default_priors: ClassVar[dict[str, dict[str, Any]]] = {"p": _SHAPE, "q": _SHAPE, "v": _SCALE}

    # ---- hooks ------------------------------------------------------------------------------
    @staticmethod
    def _training_data(rfm: pd.DataFrame) -> RFMArrays:
        """The validated table; errors if no customer has a repeat purchase or spend does not
        vary among them."""
        data = validate_rfm(rfm, need_recency=False, need_monetary=True)
        rep = data.frequency > 0
        if not rep.any():
            raise ClvkitError(
                "argument 'rfm' has no customer with frequency > 0, so spend cannot be "
                "modelled. Suggestion: use a longer calibration period."
            )
        m = data.monetary_value[rep]
        if np.ptp(m) <= 1e-9 * np.max(m):
            raise ClvkitError(
                f"column 'monetary_value' of 'rfm' is {float(m[0]):g} for "
                + (f"all {m.size:,} repeat customers" if m.size > 1 else "the one repeat customer")
                + ": spend has no variation, so the Gamma-Gamma model cannot estimate "
                "how spend varies (its likelihood has no maximum). Suggestion: use the real "
                "order amounts, which vary, or, if every purchase is worth the same, value "
                "customers with that fixed amount per purchase (expected purchases from "
                "BetaGeo times the price) instead of a spend model."
            )
        return data

    def _prepare(self, rfm: pd.DataFrame) -> tuple[GGStats, str | None]:
        data = self._training_data(rfm)
        rep = data.frequency > 0
        x, m = data.frequency[rep], data.monetary_value[rep]
        if x.size > 2 and np.std(x) > 0 and np.std(m) > 0:
            corr = float(np.corrcoef(x, m)[0, 1])
            if abs(corr) > CORRELATION_THRESHOLD:
                warnings.warn(
                    f"corr(frequency, monetary_value) = {corr:.2f} among the {x.size:,} repeat "
                    f"customers (|corr| > {CORRELATION_THRESHOLD}); the Gamma-Gamma model assumes "
                    "spend is independent of purchase frequency. Suggestion: check the spend "
                    "data (outliers, refunds) or segment customers before trusting spend "
                    "predictions.",
                    SpendCorrelationWarning,
                    stacklevel=3,
                )
        return compress_gg(x, m), data.time_unit

    def _loglik_grad(self, theta: np.ndarray, stats: GGStats) -> tuple[float, np.ndarray]:
        return gg_loglik_grad(theta, stats)

    def _row_columns(self, table: pd.DataFrame) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The columns of the per-row likelihood (validated as for fitting) and which
        customers enter it: those with a repeat purchase (frequency > 0)."""
        data = self._training_data(table)
        assert data.monetary_value is not None
        mask = data.frequency > 0
        cols = {"frequency": data.frequency, "monetary_value": data.monetary_value}
        return cols, mask

    def _rows_loglik_grad(
        self, theta: np.ndarray, cols: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The base likelihood with per-row parameters: each row's log-likelihood ``(m,)`` and
        its gradient ``(m, 3)`` in that row's ``theta = log([p, q, v])``, for repeat customers
        (:func:`clvkit.models.gamma_gamma.rows.gg_rows_loglik_grad`, compiled; the numpy form
        :func:`clvkit.models.gamma_gamma.likelihood.gg_loglik_rows_grad` is tested equal)."""
        from clvkit.models.gamma_gamma.rows import gg_rows_loglik_grad  # numba: on first use

        return gg_rows_loglik_grad(theta, cols["frequency"], cols["monetary_value"])

    def _unbounded_meaning(self, up: list[str], down: list[str], values: dict[str, float]) -> str:
        parts = []
        if {"q", "v"} <= set(up):
            mean = values["p"] * values["v"] / (values["q"] - 1)
            parts.append(
                "average spend shows no variation between customers that the model can "
                f"measure: every customer's mean spend per purchase tends to {mean:.4g}"
            )
        if "p" in up:
            parts.append("spend shows no variation between a customer's purchases")
        return "; ".join(parts) or "these parameters are not identified by the data"

    def _x0(self, stats: GGStats) -> np.ndarray:
        # p = 1, q = 2 and v matching the mean spend p v / (q - 1).
        mean = float(stats.weight @ stats.monetary_value / stats.weight.sum())
        return np.log([1.0, 2.0, mean])

    def _native_kernel(self, stats: GGStats, codes: np.ndarray, pars: np.ndarray) -> Any:
        from clvkit.models.gamma_gamma.kernels import gg_native_kernel  # numba, on first use

        return gg_native_kernel(stats, codes, pars)

    def _pymc_model(self, stats: GGStats, priors: dict[str, dict[str, Any]]) -> Any:
        return gg_pymc(stats, priors)

    def _observed_data(self, stats: GGStats) -> xr.Dataset:
        return xr.Dataset(
            {
                "frequency": ("row", stats.frequency),
                "monetary_value": ("row", stats.monetary_value),
                "weight": ("row", stats.weight),
            }
        )

    @staticmethod
    def _stats_from_observed(ds: xr.Dataset) -> GGStats:
        return compress_gg(
            ds["frequency"].to_numpy(), ds["monetary_value"].to_numpy(), ds["weight"].to_numpy()
        )


def gg_pymc(s: GGStats, priors: dict[str, dict[str, Any]]) -> Any:
    """PyMC model with the weighted, compressed Gamma-Gamma log-likelihood
    (:func:`clvkit.models.gamma_gamma.likelihood.gg_loglik`, tested equal) as a Potential."""
    import pymc as pm
    import pytensor.tensor as pt

    xv = s.x_values
    x, w = s.frequency, s.weight
    log_xm = np.log(x * s.monetary_value)
    xm = x * s.monetary_value
    with pm.Model() as model:
        p = pymc_prior("p", priors["p"])
        q = pymc_prior("q", priors["q"])
        v = pymc_prior("v", priors["v"])
        gl = pt.gammaln
        C = gl(p * xv + q) - gl(p * xv) - gl(q) + q * pt.log(v) + np.log(xv)
        row = (p * x - 1.0) * log_xm - (p * x + q) * pt.log(v + xm)
        pm.Potential("loglik", pt.dot(s.x_weight, C) + pt.dot(w, row))
    return model
