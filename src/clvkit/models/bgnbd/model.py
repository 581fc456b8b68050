"""The BG/NBD purchase model (Fader, Hardie and Lee 2005) in PyMC, on compressed statistics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from clvkit.inference.estimator import pymc_prior
from clvkit.models.base import PurchaseModel
from clvkit.models.bgnbd.likelihood import BGStats, bg_loglik_grad, compress_bg
from clvkit.models.bgnbd.spec import BGNBDSpec
from clvkit.models.inputs import RFMArrays, purchase_training_table, rate_meaning
from clvkit.models.registry import register
from clvkit.models.stats import rfm_rows, rfm_rows_dataset

__all__ = ["BetaGeo", "bg_pymc"]

_SHAPE = {"dist": "LogNormal", "mu": 0.0, "sigma": 2.0}
_SCALE = {"dist": "LogNormal", "mu": 0.0, "sigma": 5.0}


@register
class BetaGeo(PurchaseModel):
    """BG/NBD model of repeat purchases and drop-out, fitted with NUTS, MAP or MLE.

    Purchases of an alive customer follow a Poisson process with rate ``λ ~ Gamma(r, α)``
    (``α`` is a rate, in the time unit); after each repeat purchase the customer drops out
    with probability ``p ~ Beta(a, b)``.

    Parameters
    ----------
    priors : dict, optional
        Per-parameter overrides of the priors, e.g. ``{"r": {"dist": "Gamma", "alpha": 2.0,
        "beta": 4.0}}``. Families: ``LogNormal(mu, sigma)``, ``Gamma(alpha, beta)``,
        ``HalfNormal(sigma)``, ``Exponential(lam)``, ``HalfCauchy(beta)``. Defaults (weakly
        informative): ``r, a, b ~ LogNormal(0, 2)`` and ``alpha ~ LogNormal(0, 5)``, as ``alpha``
        is measured in time units. ``method="mle"`` ignores priors.

    Attributes
    ----------
    idata_ : arviz.InferenceData
        ``posterior`` (``r``, ``alpha``, ``a``, ``b`` over ``chain``, ``draw``),
        ``sample_stats`` and ``observed_data`` (the compressed statistics and their weights).
    time_unit_ : str
        Time unit of the training table (``rfm.attrs["time_unit"]``, required for fitting).
    method_ : str
        ``"nuts"``, ``"map"``, ``"mle"``, ``"laplace"``, or ``"given"`` for a model built by
        :meth:`from_params` / :meth:`from_posterior` (which has no ``stats_``).
    stats_ : BGStats or None
    n_customers_ : int

    Notes
    -----
    Fitting requires ``rfm.attrs["time_unit"]`` and at least one customer with a repeat
    purchase (with none, every method raises ``ClvkitError``: only the priors would speak).
    ``method="mle"`` (and ``"map"``) raise ``ClvkitError`` when the data put the maximum on the
    boundary of the parameter space (e.g. ``r, alpha -> inf``: no measurable variation in
    purchase rates, common with a handful of customers), where any finite estimate would be
    arbitrary; ``"map"`` with the default priors or ``"nuts"`` then give a proper answer.
    A table passed to a prediction method must
    carry the same unit; one without the attribute is taken to be in the model's unit.

    Examples
    --------
    >>> import pandas as pd
    >>> rfm = pd.DataFrame({"frequency": [0, 2, 1, 5], "recency": [0.0, 20.0, 3.0, 30.0],
    ...                     "T": [30.0, 35.0, 32.0, 36.0]})
    >>> rfm.attrs["time_unit"] = "W"
    >>> model = BetaGeo().fit(rfm, method="map")
    >>> model.probability_alive(rfm).columns.tolist()  # a summary over draws per customer
    ['mean', 'sd', 'lower', 'upper']
    """

    spec: ClassVar[BGNBDSpec] = BGNBDSpec()
    _default_priors: ClassVar[dict[str, dict[str, Any]]] = {
        "r": _SHAPE,
        "alpha": _SCALE,
        "a": _SHAPE,
        "b": _SHAPE,
    }

    # ---- hooks ------------------------------------------------------------------------------
    @staticmethod
    def _training_data(rfm: pd.DataFrame) -> RFMArrays:
        return purchase_training_table(
            rfm, "nothing at all about dropout (a and b would be the priors or arbitrary)"
        )

    def _prepare(self, rfm: pd.DataFrame) -> tuple[BGStats, str | None]:
        data = self._training_data(rfm)
        return compress_bg(data.frequency, data.recency, data.T), data.time_unit

    def _loglik_grad(self, theta: np.ndarray, stats: BGStats) -> tuple[float, np.ndarray]:
        return bg_loglik_grad(theta, stats)

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
        its gradient ``(m, 4)`` in that row's ``theta = log([r, alpha, a, b])``
        (:func:`clvkit.models.bgnbd.rows.bg_rows_loglik_grad`, compiled; the numpy form
        :func:`clvkit.models.bgnbd.likelihood.bg_loglik_rows_grad` is tested equal and slower
        at every size)."""
        from clvkit.models.bgnbd.rows import bg_rows_loglik_grad  # numba: compiled on first use

        return bg_rows_loglik_grad(theta, cols["frequency"], cols["recency"], cols["T"])

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
            parts.append("the dropout probability runs to 1 after every repeat purchase")
        return "; ".join(parts) or "these parameters are not identified by the data"

    def _x0(self, stats: BGStats) -> np.ndarray:
        # r = 1 and α matching the mean purchase rate; a = 1, b = 1.
        rate = max(float(stats.weight @ stats.frequency / (stats.weight @ stats.T + 1e-12)), 1e-6)
        return np.log([1.0, 1.0 / rate, 1.0, 1.0])

    def _native_kernel(self, stats: BGStats, codes: np.ndarray, pars: np.ndarray) -> Any:
        from clvkit.models.bgnbd.kernels import bg_native_kernel  # numba: compiled on first use

        return bg_native_kernel(stats, codes, pars)

    def _pymc_model(self, stats: BGStats, priors: dict[str, dict[str, Any]]) -> Any:
        return bg_pymc(stats, priors)

    def _observed_data(self, stats: BGStats) -> xr.Dataset:
        return rfm_rows_dataset(stats)

    @staticmethod
    def _stats_from_observed(ds: xr.Dataset) -> BGStats:
        return compress_bg(*rfm_rows(ds))


def bg_pymc(s: BGStats, priors: dict[str, dict[str, Any]]) -> Any:
    """PyMC model with the weighted, compressed BG/NBD log-likelihood
    (:func:`clvkit.models.bgnbd.likelihood.bg_loglik`, tested equal) as a Potential."""
    import pymc as pm
    import pytensor.tensor as pt

    zero = s.frequency == 0
    xv = s.x_values
    x1, tx1, T1, w1 = s.frequency[~zero], s.recency[~zero], s.T[~zero], s.weight[~zero]
    T0, w0 = s.T[zero], s.weight[zero]
    with pm.Model() as model:
        r = pymc_prior("r", priors["r"])
        alpha = pymc_prior("alpha", priors["alpha"])
        a = pymc_prior("a", priors["a"])
        b = pymc_prior("b", priors["b"])
        gl = pt.gammaln
        A = gl(r + xv) - gl(r) + r * pt.log(alpha) + gl(a + b) + gl(b + xv) - gl(b) - gl(a + b + xv)
        ll = pt.dot(s.x_weight, A)
        if w0.size:
            ll = ll - r * pt.dot(w0, pt.log(alpha + T0))
        if w1.size:
            u = -(r + x1) * pt.log(alpha + T1)
            v = pt.log(a) - pt.log(b + x1 - 1.0) - (r + x1) * pt.log(alpha + tx1)
            ll = ll + pt.dot(w1, pt.logaddexp(u, v))
        pm.Potential("loglik", ll)
    return model
