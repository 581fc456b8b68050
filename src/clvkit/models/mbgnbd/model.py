"""The MBG/NBD purchase model (Batislam, Denizel and Filiztekin 2007), on compressed statistics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from clvkit.inference.estimator import pymc_prior
from clvkit.models.base import PurchaseModel
from clvkit.models.inputs import RFMArrays, purchase_training_table, rate_meaning
from clvkit.models.mbgnbd.likelihood import MBGStats, compress_mbg, mbg_loglik_grad
from clvkit.models.mbgnbd.spec import MBGNBDSpec
from clvkit.models.registry import register
from clvkit.models.stats import rfm_rows, rfm_rows_dataset

__all__ = ["ModifiedBetaGeo", "mbg_pymc"]

_SHAPE = {"dist": "LogNormal", "mu": 0.0, "sigma": 2.0}
_SCALE = {"dist": "LogNormal", "mu": 0.0, "sigma": 5.0}


@register
class ModifiedBetaGeo(PurchaseModel):
    """MBG/NBD model of repeat purchases and drop-out, fitted with NUTS, Laplace, MAP or MLE.

    Purchases of an alive customer follow a Poisson process with rate ``λ ~ Gamma(r, α)``
    (``α`` is a rate, in the time unit); after each purchase, the first one included, the
    customer drops out with probability ``p ~ Beta(a, b)``. Unlike BG/NBD, a customer who never
    bought again may be gone: P(alive) < 1 for frequency 0, falling with the time since the
    first purchase, and a new customer is alive after its first purchase with probability
    ``b / (a + b)``.

    Parameters
    ----------
    priors : dict, optional
        Per-parameter overrides of the priors (families as for :class:`clvkit.BetaGeo`).
        Defaults: ``r, a, b ~ LogNormal(0, 2)`` and ``alpha ~ LogNormal(0, 5)``.
        ``method="mle"`` ignores priors.

    Attributes
    ----------
    posterior_ : xarray.Dataset
        ``r``, ``alpha``, ``a``, ``b`` over ``chain``, ``draw``.
    time_unit_ : str
    method_ : str
    stats_ : MBGStats or None
    n_customers_ : int

    Notes
    -----
    Fitting requires ``rfm.attrs["time_unit"]`` and at least one customer with a repeat
    purchase. ``method="mle"`` raises ``ClvkitError`` when the maximum lies on the boundary
    of the parameter space.

    Examples
    --------
    >>> import pandas as pd
    >>> rfm = pd.DataFrame({"frequency": [0, 2, 1, 5], "recency": [0.0, 20.0, 3.0, 30.0],
    ...                     "T": [30.0, 35.0, 32.0, 36.0]})
    >>> rfm.attrs["time_unit"] = "W"
    >>> model = ModifiedBetaGeo().fit(rfm, method="map")
    >>> bool(model.probability_alive(rfm)["mean"].iloc[0] < 1.0)  # frequency 0: maybe gone
    True
    """

    spec: ClassVar[MBGNBDSpec] = MBGNBDSpec()
    _default_priors: ClassVar[dict[str, dict[str, Any]]] = {
        "r": _SHAPE,
        "alpha": _SCALE,
        "a": _SHAPE,
        "b": _SHAPE,
    }

    # ---- hooks ------------------------------------------------------------------------------
    @staticmethod
    def _training_data(rfm: pd.DataFrame) -> RFMArrays:
        return purchase_training_table(rfm, "cannot tell early dropout from a low rate")

    def _prepare(self, rfm: pd.DataFrame) -> tuple[MBGStats, str | None]:
        data = self._training_data(rfm)
        return compress_mbg(data.frequency, data.recency, data.T), data.time_unit

    def _loglik_grad(self, theta: np.ndarray, stats: MBGStats) -> tuple[float, np.ndarray]:
        return mbg_loglik_grad(theta, stats)

    def _row_columns(self, table: pd.DataFrame) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The columns of the per-row likelihood (validated as for fitting; recency 0 where
        the frequency is 0, as in the compressed statistics) and which customers enter it
        (all)."""
        data = self._training_data(table)
        tx = np.where(data.frequency > 0, data.recency, 0.0)
        cols = {"frequency": data.frequency, "recency": tx, "T": data.T}
        return cols, np.ones(data.frequency.size, dtype=bool)

    def _rows_loglik_grad(
        self, theta: np.ndarray, cols: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The base likelihood with per-row parameters: each row's log-likelihood ``(m,)`` and
        its gradient ``(m, 4)`` in that row's ``theta = log([r, alpha, a, b])``
        (:func:`clvkit.models.mbgnbd.rows.mbg_rows_loglik_grad`, compiled; the numpy form
        :func:`clvkit.models.mbgnbd.likelihood.mbg_loglik_rows_grad` is tested equal)."""
        from clvkit.models.mbgnbd.rows import mbg_rows_loglik_grad  # numba: compiled on first use

        return mbg_rows_loglik_grad(theta, cols["frequency"], cols["recency"], cols["T"])

    def _unbounded_meaning(self, up: list[str], down: list[str], values: dict[str, float]) -> str:
        parts = rate_meaning(up, values)
        if {"a", "b"} <= set(up):
            p = values["a"] / (values["a"] + values["b"])
            parts.append(
                "the dropout probabilities show no variation between customers: Beta(a, b) "
                f"shrinks to one value, a/(a+b) = {p:.4g}"
            )
        elif "a" in down or ("b" in up and "a" not in up):
            parts.append("the data show no sign of dropout: the dropout probability runs to 0")
        elif "b" in down or ("a" in up and "b" not in up):
            parts.append("the dropout probability runs to 1 after every purchase")
        return "; ".join(parts) or "these parameters are not identified by the data"

    def _x0(self, stats: MBGStats) -> np.ndarray:
        # r = 1 and α matching the mean purchase rate; a = 1, b = 1.
        rate = max(float(stats.weight @ stats.frequency / (stats.weight @ stats.T + 1e-12)), 1e-6)
        return np.log([1.0, 1.0 / rate, 1.0, 1.0])

    def _native_kernel(self, stats: MBGStats, codes: np.ndarray, pars: np.ndarray) -> Any:
        from clvkit.models.mbgnbd.kernels import mbg_native_kernel  # numba: compiled on first use

        return mbg_native_kernel(stats, codes, pars)

    def _pymc_model(self, stats: MBGStats, priors: dict[str, dict[str, Any]]) -> Any:
        return mbg_pymc(stats, priors)

    def _observed_data(self, stats: MBGStats) -> xr.Dataset:
        return rfm_rows_dataset(stats)

    @staticmethod
    def _stats_from_observed(ds: xr.Dataset) -> MBGStats:
        return compress_mbg(*rfm_rows(ds))


def mbg_pymc(s: MBGStats, priors: dict[str, dict[str, Any]]) -> Any:
    """PyMC model with the weighted, compressed MBG/NBD log-likelihood
    (:func:`clvkit.models.mbgnbd.likelihood.mbg_loglik`, tested equal) as a Potential."""
    import pymc as pm
    import pytensor.tensor as pt

    xv = s.x_values
    with pm.Model() as model:
        r = pymc_prior("r", priors["r"])
        alpha = pymc_prior("alpha", priors["alpha"])
        a = pymc_prior("a", priors["a"])
        b = pymc_prior("b", priors["b"])
        gl = pt.gammaln
        A = (
            gl(r + xv)
            - gl(r)
            + r * pt.log(alpha)
            + gl(a + b)
            + gl(b + xv + 1.0)
            - gl(b)
            - gl(a + b + xv + 1.0)
        )
        x = s.frequency
        u = -(r + x) * pt.log(alpha + s.T)
        v = pt.log(a) - pt.log(b + x) - (r + x) * pt.log(alpha + s.recency)
        pm.Potential("loglik", pt.dot(s.x_weight, A) + pt.dot(s.weight, pt.logaddexp(u, v)))
    return model
