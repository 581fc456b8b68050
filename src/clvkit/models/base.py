"""Estimator bases of purchase and spend models: the prediction methods, once, from the contract.

:class:`PurchaseModel` and :class:`SpendModel` add to :class:`clvkit.inference.estimator.ModelBase`
the user-facing predictions, each written once on the primitives of the model's ``spec``
(:class:`clvkit.models.contract.PurchaseSpec` / :class:`~clvkit.models.contract.SpendSpec`), so
a new model gets them by subclassing with its spec; results are DataArrays with dims ``chain,
draw`` and, per customer, ``customer_id``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from clvkit.errors import ClvkitError
from clvkit.inference.estimator import ModelBase
from clvkit.models.contract import PurchaseSpec, SpendSpec
from clvkit.rng import make_rng

__all__ = ["PurchaseModel", "SpendModel", "check_horizon"]


def check_horizon(t: Any, argument: str = "t") -> float:
    """``t`` as a finite, non-negative float (``ClvkitError`` naming ``argument`` otherwise)."""
    try:
        val = float(t)
    except (TypeError, ValueError):
        val = float("nan")
    if not np.isfinite(val) or val < 0:
        raise ClvkitError(
            f"argument {argument!r} is {t!r}. Suggestion: a finite, non-negative number of "
            "time units (the model's time_unit_)."
        )
    return val


class _LogLikelihood:
    """``log_likelihood``, shared by both kinds of model."""

    def log_likelihood(
        self, rfm: pd.DataFrame, params: Mapping[str, Any] | None = None
    ) -> xr.DataArray:
        """Per-customer log-likelihood of ``rfm`` (the spec's ``loglik``), per draw.

        Parameters
        ----------
        rfm : pandas.DataFrame
            Customer table with the model's columns.
        params : dict, optional
            Parameter values to evaluate at (numbers, or 1-D arrays of draws as one chain),
            e.g. ``{"r": 0.24, "alpha": 4.41, "a": 0.79, "b": 2.43}``; default: the fitted
            posterior. With ``params`` the model need not be fitted.

        Returns
        -------
        xarray.DataArray
            Dims ``chain, draw, customer_id``; summed over customers it is the log-likelihood
            the fit maximises (at a point: ``log_likelihood_``). For a spend model, customers
            without a repeat purchase contribute 0.

        Examples
        --------
        >>> from clvkit import BetaGeo
        >>> from clvkit.datasets import cdnow_calibration_summary
        >>> rfm = cdnow_calibration_summary()
        >>> model = BetaGeo().fit(rfm, method="mle")
        >>> ll = model.log_likelihood(rfm)
        >>> ll.dims, round(float(ll.sum()), 2)  # FHL 2005: -9582.4 at the MLE
        (('chain', 'draw', 'customer_id'), -9582.43)
        >>> at = model.log_likelihood(rfm.loc[[1]], params={"r": 0.2426, "alpha": 4.4137,
        ...                                                   "a": 0.793, "b": 2.4262})
        >>> round(at.item(), 4)
        -9.4597
        """
        if params is None:
            self._check_fitted()
        cols, ids = self._customers(rfm)
        d, shape = self._params(params)
        out = self.spec.loglik(d, cols)
        return self._wrap_given(out, shape, ids, "log_likelihood")

    def _wrap_given(self, values, shape, ids, name):
        if "_groups" in self.__dict__ and shape == tuple(
            self.posterior_.sizes[k] for k in ("chain", "draw")
        ):
            return self._wrap(values, shape, ids, name)
        coords = {"chain": np.arange(shape[0]), "draw": np.arange(shape[1]), "customer_id": ids}
        arr = np.asarray(values).reshape(*shape, len(ids))
        return xr.DataArray(arr, dims=("chain", "draw", "customer_id"), coords=coords, name=name)


class PurchaseModel(_LogLikelihood, ModelBase):
    """A purchase model: predictions from its :class:`~clvkit.models.contract.PurchaseSpec`."""

    spec: ClassVar[PurchaseSpec]

    def probability_alive(self, rfm: pd.DataFrame) -> xr.DataArray:
        """P(alive at the end of observation | history), per draw and customer.

        Examples
        --------
        >>> from clvkit import BetaGeo
        >>> from clvkit.datasets import cdnow_calibration_summary
        >>> rfm = cdnow_calibration_summary()
        >>> model = BetaGeo().fit(rfm, method="mle")
        >>> p = model.probability_alive(rfm.loc[[1, 3]])  # x = 2 and x = 0 (alive for sure)
        >>> p.dims, p.shape
        (('chain', 'draw', 'customer_id'), (1, 1, 2))
        >>> p.round(3).values.ravel().tolist()
        [0.727, 1.0]"""
        self._check_fitted()
        cols, ids = self._customers(rfm)
        d, shape = self._draws()
        out = self.spec.probability_alive(d, cols, np.zeros(1))[..., 0]
        return self._wrap(out, shape, ids, "probability_alive")

    def probability_alive_at(self, rfm: pd.DataFrame, t: float) -> xr.DataArray:
        """P(alive ``t`` time units after the end of observation | history).

        Examples
        --------
        >>> from clvkit import BetaGeo
        >>> from clvkit.datasets import cdnow_calibration_summary
        >>> rfm = cdnow_calibration_summary()
        >>> model = BetaGeo().fit(rfm, method="mle")
        >>> p = model.probability_alive_at(rfm.loc[[1]], t=10)  # 10 weeks on
        >>> p.dims, round(p.item(), 3)
        (('chain', 'draw', 'customer_id'), 0.675)"""
        self._check_fitted()
        cols, ids = self._customers(rfm)
        t = check_horizon(t)
        d, shape = self._draws()
        out = self.spec.probability_alive(d, cols, np.array([t]))[..., 0]
        return self._wrap(out, shape, ids, "probability_alive_at")

    def expected_purchases(self, rfm: pd.DataFrame, t: float) -> xr.DataArray:
        """Expected purchases in the next ``t`` time units, E[X(T, T+t] | history].

        Examples
        --------
        Customer 1 of CDNOW (x=2, t_x=30.43, T=38.86) expects 1.226 purchases in the next 39
        weeks (Fader, Hardie and Lee 2005):

        >>> from clvkit import BetaGeo
        >>> from clvkit.datasets import cdnow_calibration_summary
        >>> rfm = cdnow_calibration_summary()
        >>> model = BetaGeo().fit(rfm, method="mle")
        >>> e = model.expected_purchases(rfm.loc[[1]], t=39)
        >>> e.dims, e.shape, round(e.item(), 3)
        (('chain', 'draw', 'customer_id'), (1, 1, 1), 1.226)"""
        self._check_fitted()
        cols, ids = self._customers(rfm)
        t = check_horizon(t)
        d, shape = self._draws()
        out = self.spec.expected_purchases(d, cols, np.array([t]))[..., 0]
        return self._wrap(out, shape, ids, "expected_purchases")

    def expected_purchases_new_customer(self, t: float) -> xr.DataArray:
        """Expected repeat purchases of a new customer in its first ``t`` time units (an empty
        history at age 0), per draw.

        Examples
        --------
        E[X(t)] at 1, 3 and 31.857 weeks on CDNOW (Fader, Hardie and Lee 2005):

        >>> from clvkit import BetaGeo
        >>> from clvkit.datasets import cdnow_calibration_summary
        >>> rfm = cdnow_calibration_summary()
        >>> model = BetaGeo().fit(rfm, method="mle")
        >>> model.expected_purchases_new_customer(1).dims
        ('chain', 'draw')
        >>> [round(model.expected_purchases_new_customer(t).item(), 4) for t in (1, 3, 31.857)]
        [0.0532, 0.1506, 1.0405]"""
        t = check_horizon(t)
        d, shape = self._draws()
        out = self.spec.expected_purchases(d, self.spec.new_customer_columns(1), np.array([t]))
        return self._wrap(out[:, 0, 0], shape, None, "expected_purchases_new_customer")

    def probability_of_purchases(
        self, t: float, n: int, rfm: pd.DataFrame | None = None
    ) -> xr.DataArray:
        """P(exactly ``n`` purchases in a window of ``t`` time units).

        Without ``rfm``: a new customer's first ``t`` time units, dims ``chain, draw``. With
        ``rfm``: each customer's next ``t`` time units after its end of observation, given
        its history, dims ``chain, draw, customer_id``.

        Examples
        --------
        >>> from clvkit import BetaGeo
        >>> from clvkit.datasets import cdnow_calibration_summary
        >>> rfm = cdnow_calibration_summary()
        >>> model = BetaGeo().fit(rfm, method="mle")
        >>> p = [model.probability_of_purchases(39, n).item() for n in range(3)]
        >>> [round(v, 3) for v in p]  # P(X(39) = 0, 1, 2)
        [0.574, 0.199, 0.085]
        >>> given = model.probability_of_purchases(39, 0, rfm.loc[[1, 3]])  # existing customers
        >>> given.dims, given.round(3).values.ravel().tolist()
        (('chain', 'draw', 'customer_id'), [0.445, 0.856])
        """
        t = check_horizon(t)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ClvkitError(f"argument 'n' is {n!r}. Suggestion: a non-negative integer.")
        k = np.array([float(n)])
        if rfm is None:
            d, shape = self._draws()
            cols = self.spec.new_customer_columns(1)
            out = self.spec.probability_of_purchases(d, cols, t, k)[:, 0, 0]
            return self._wrap(out, shape, None, "probability_of_purchases")
        self._check_fitted()
        cols, ids = self._customers(rfm)
        d, shape = self._draws()
        out = self.spec.probability_of_purchases(d, cols, t, k)[..., 0]
        return self._wrap(out, shape, ids, "probability_of_purchases")

    def posterior_predictive(
        self,
        rfm: pd.DataFrame,
        t: float,
        random_seed: int | np.random.Generator | None = None,
    ) -> xr.DataArray:
        """Draws of each customer's purchase count in ``(T, T+t]``.

        For every posterior draw, the customer's latent state is drawn from its conditional
        posterior given the history and its future simulated (the spec's ``simulate``, the
        model's one generative process).

        Examples
        --------
        >>> from clvkit import BetaGeo
        >>> from clvkit.datasets import cdnow_calibration_summary
        >>> rfm = cdnow_calibration_summary()
        >>> model = BetaGeo().fit(rfm, method="mle")
        >>> sim = model.posterior_predictive(rfm.loc[[1, 2, 3]], t=39, random_seed=0)
        >>> sim.dims, sim.shape, bool((sim >= 0).all())
        (('chain', 'draw', 'customer_id'), (1, 1, 3), True)
        """
        rng = make_rng(random_seed)
        self._check_fitted()
        cols, ids = self._customers(rfm)
        t = check_horizon(t)
        d, shape = self._draws()
        future = self.spec.simulate(d, cols, t, rng)
        counts = np.zeros((shape[0] * shape[1], len(ids)), dtype=np.int64)
        for batch in future.batches:
            np.add.at(counts, (batch.draw, batch.customer), batch.count)
        return self._wrap(counts, shape, ids, "purchases")


class SpendModel(_LogLikelihood, ModelBase):
    """A spend model: predictions from its :class:`~clvkit.models.contract.SpendSpec`."""

    spec: ClassVar[SpendSpec]

    def expected_spend(self, rfm: pd.DataFrame) -> xr.DataArray:
        """Expected spend per future purchase given each customer's history, per draw.

        Examples
        --------
        Customers without a repeat purchase get the population mean. Customer 1 of CDNOW (2
        repeat purchases averaging $22.35) and customer 3 (none):

        >>> from clvkit import GammaGamma
        >>> from clvkit.datasets import cdnow_calibration_summary
        >>> rfm = cdnow_calibration_summary()
        >>> model = GammaGamma().fit(rfm, method="mle")
        >>> spend = model.expected_spend(rfm.loc[[1, 3]])
        >>> spend.dims, spend.round(2).values.ravel().tolist()
        (('chain', 'draw', 'customer_id'), [24.66, 35.17])"""
        self._check_fitted()
        cols, ids = self._customers(rfm)
        d, shape = self._draws()
        return self._wrap(self.spec.expected_spend(d, cols), shape, ids, "expected_spend")

    def expected_spend_new_customer(self) -> xr.DataArray:
        """Expected spend per purchase of a new customer (an empty history), per draw.

        Examples
        --------
        >>> from clvkit import GammaGamma
        >>> from clvkit.datasets import cdnow_calibration_summary
        >>> rfm = cdnow_calibration_summary()
        >>> model = GammaGamma().fit(rfm, method="mle")
        >>> spend = model.expected_spend_new_customer()
        >>> spend.dims, round(spend.item(), 2)
        (('chain', 'draw'), 35.17)"""
        d, shape = self._draws()
        out = self.spec.expected_spend(d, self.spec.new_customer_columns(1))[:, 0]
        return self._wrap(out, shape, None, "expected_spend_new_customer")
