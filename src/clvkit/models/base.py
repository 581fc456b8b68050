"""Estimator bases of purchase and spend models: the prediction methods, once, from the contract.

:class:`PurchaseModel` and :class:`SpendModel` add to :class:`clvkit.inference.estimator.ModelBase`
the user-facing predictions, each written once on the primitives of the model's ``spec``
(:class:`clvkit.models.contract.PurchaseSpec` / :class:`~clvkit.models.contract.SpendSpec`), so
a new model gets them by subclassing with its spec.

Per-customer predictions return a summary over the posterior draws by default: a pandas
DataFrame indexed by ``customer_id`` with ``mean``, ``sd`` (over draws, ddof 0), ``lower`` and
``upper`` (the central ``prob`` interval, default 90%), computed over chunks of customers so
that memory stays bounded (about :data:`PREDICT_VALUES` values at a time). New-customer
predictions return the same four numbers as a Series. ``return_draws=True`` gives the full
DataArray with dims ``chain, draw`` and, per customer, ``customer_id``. Times ``t`` are numbers
of the model's time unit (``time_unit_``) or durations such as ``"26W"``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from clvkit.errors import ClvkitError
from clvkit.inference.estimator import ModelBase
from clvkit.models.contract import PurchaseSpec, SpendSpec
from clvkit.rng import make_rng
from clvkit.units import duration_in_units
from clvkit.utils.checks import check_prob

__all__ = ["PREDICT_VALUES", "PurchaseModel", "SpendModel", "summarize_draws"]

#: Values (draws x customers) computed at once by the summarizing predictions.
PREDICT_VALUES = 2_000_000
SUMMARY_COLUMNS = ("mean", "sd", "lower", "upper")


def summarize_draws(values: np.ndarray, prob: float = 0.9, counts: bool = False) -> np.ndarray:
    """Per-column summary of draws ``values (S, m)``: rows mean, sd (ddof 0), lower, upper of
    the central ``prob`` interval, and with ``counts`` P(value = 0) (a fifth row); the interval
    of counts uses the inverted CDF, so its ends are counts.

    Examples
    --------
    >>> summarize_draws(np.array([[0.0, 2.0], [1.0, 2.0], [2.0, 2.0]]), 0.5).round(3).tolist()
    [[1.0, 2.0], [0.816, 0.0], [0.5, 2.0], [1.5, 2.0]]
    """
    S = values.shape[0]
    srt = np.ascontiguousarray(values.T)  # each column's draws contiguous: a fast row sort
    srt.sort(axis=1)
    levels = np.array([(1 - prob) / 2, (1 + prob) / 2])
    if counts:  # inverted CDF: the smallest value whose empirical CDF reaches the level
        idx = np.clip(np.ceil(levels * S - 1e-9).astype(np.int64) - 1, 0, S - 1)
        q = srt[:, idx].T.astype(np.float64)
    else:  # numpy's default (linear) quantile
        h = (S - 1) * levels
        lo = np.floor(h).astype(np.int64)
        hi = np.minimum(lo + 1, S - 1)
        q = (srt[:, lo] + (h - lo) * (srt[:, hi] - srt[:, lo])).T
    rows = [values.mean(axis=0), values.std(axis=0), q[0], q[1]]
    if counts:
        rows.append((values == 0).mean(axis=0))
    return np.stack(rows).astype(np.float64)


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


class _Summaries:
    """Chunked summaries of per-customer predictions, shared by both kinds of model."""

    def _time(self, t: Any, argument: str = "t") -> float:
        """``t`` in the model's time unit: a number of units or a duration string."""
        return duration_in_units(t, getattr(self, "time_unit_", None), argument)

    def _per_customer(
        self,
        rfm: pd.DataFrame,
        fn: Callable[[dict, dict], np.ndarray],
        name: str,
        prob: float,
        return_draws: bool,
        counts: bool = False,
    ) -> pd.DataFrame | xr.DataArray:
        """``fn(draws, cols)`` -> ``(S, m)`` values, over chunks of customers: the summary
        frame (or, with ``return_draws``, the full DataArray).

        Deterministic predictions (``counts=False``) are computed once per distinct
        ``spec.value_key`` row (customers with equal rows get equal predictions), in key order,
        so chunks hold similar customers (e.g. one-time buyers of one age are computed once).
        Simulated counts are drawn for every customer, chunk after chunk from the one generator.
        """
        if not return_draws:
            prob = check_prob(prob)
        self._check_fitted()
        cols, ids = self._customers(rfm)
        d, shape = self._draws()
        S, n = shape[0] * shape[1], len(ids)
        inverse = None
        if not counts and n > 1:
            key = np.asarray(self.spec.value_key(cols), dtype=np.float64).reshape(n, -1)
            _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
            inverse = inverse.ravel()
            cols = {k: np.asarray(v)[first] for k, v in cols.items()}
        m = len(next(iter(cols.values()))) if cols else n
        chunk = max(1, PREDICT_VALUES // max(S, 1))
        names = [*SUMMARY_COLUMNS, *(["p_zero"] if counts else [])]
        full = np.empty((S, m), dtype=np.int64 if counts else np.float64) if return_draws else None
        out = None if return_draws else np.empty((len(names), m))
        for lo in range(0, m, chunk):
            sub = {k: v[lo : lo + chunk] for k, v in cols.items()}
            values = fn(d, sub)
            if full is not None:
                full[:, lo : lo + chunk] = values
            else:
                out[:, lo : lo + chunk] = summarize_draws(values, prob, counts)
        if full is not None:
            return self._wrap(full if inverse is None else full[:, inverse], shape, ids, name)
        if inverse is not None:
            out = out[:, inverse]
        frame = pd.DataFrame(dict(zip(names, out, strict=True)), index=ids)
        if frame.index.name is None:
            frame.index.name = "customer_id"
        frame.attrs.update({"prediction": name, "prob": prob, "n_draws": S})
        return frame

    def _new_customer(
        self, values: np.ndarray, shape: tuple[int, int], name: str, prob: float, draws: bool
    ) -> pd.Series | xr.DataArray:
        """A new customer's draws ``(S,)``: their summary Series or the DataArray."""
        if draws:
            return self._wrap(values, shape, None, name)
        prob = check_prob(prob)
        row = summarize_draws(np.asarray(values, dtype=np.float64).reshape(-1, 1), prob)[:, 0]
        out = pd.Series(dict(zip(SUMMARY_COLUMNS, row, strict=True)), name=name)
        out.attrs.update({"prob": prob, "n_draws": int(np.size(values))})
        return out


class PurchaseModel(_Summaries, _LogLikelihood, ModelBase):
    """A purchase model: predictions from its :class:`~clvkit.models.contract.PurchaseSpec`."""

    spec: ClassVar[PurchaseSpec]

    def probability_alive(
        self, rfm: pd.DataFrame, *, prob: float = 0.9, return_draws: bool = False
    ) -> pd.DataFrame | xr.DataArray:
        """P(alive at the end of observation | history), summarized over draws per customer.

        Parameters
        ----------
        rfm : pandas.DataFrame
            Customer table with the model's columns.
        prob : float
            Central interval probability of ``lower`` and ``upper`` (default 0.9).
        return_draws : bool
            Return every draw (a DataArray, dims ``chain, draw, customer_id``, 8 bytes per
            draw and customer) instead of the summary.

        Returns
        -------
        pandas.DataFrame or xarray.DataArray
            Indexed by ``customer_id``: ``mean``, ``sd`` (over draws), ``lower``, ``upper``;
            computed over chunks of customers. With ``return_draws``, the draws.

        Examples
        --------
        >>> from clvkit import BetaGeo
        >>> from clvkit.datasets import cdnow_calibration_summary
        >>> rfm = cdnow_calibration_summary()
        >>> model = BetaGeo().fit(rfm, method="mle")
        >>> model.probability_alive(rfm.loc[[1, 3]]).round(3)  # x = 2; x = 0 (alive for sure)
        ... # doctest: +NORMALIZE_WHITESPACE
                      mean   sd  lower  upper
        customer_id
        1            0.727  0.0  0.727  0.727
        3            1.000  0.0  1.000  1.000
        >>> p = model.probability_alive(rfm.loc[[1, 3]], return_draws=True)
        >>> p.dims, p.shape
        (('chain', 'draw', 'customer_id'), (1, 1, 2))
        """

        def fn(d, cols):
            return self.spec.probability_alive(d, cols, np.zeros(1))[..., 0]

        return self._per_customer(rfm, fn, "probability_alive", prob, return_draws)

    def probability_alive_at(
        self, rfm: pd.DataFrame, t: float | str, *, prob: float = 0.9, return_draws: bool = False
    ) -> pd.DataFrame | xr.DataArray:
        """P(alive ``t`` time units after the end of observation | history), per customer.

        Parameters
        ----------
        rfm : pandas.DataFrame
            Customer table with the model's columns.
        t : float or str
            A number of the model's time units (``time_unit_``) or a duration (``"26W"``).
        prob : float
            Central interval probability of ``lower`` and ``upper`` (default 0.9).
        return_draws : bool
            Return every draw (a DataArray, dims ``chain, draw, customer_id``, 8 bytes per
            draw and customer) instead of the summary.

        Returns
        -------
        pandas.DataFrame or xarray.DataArray
            Indexed by ``customer_id``: ``mean``, ``sd`` (over draws), ``lower``, ``upper``;
            computed over chunks of customers. With ``return_draws``, the draws.

        Examples
        --------
        >>> from clvkit import BetaGeo
        >>> from clvkit.datasets import cdnow_calibration_summary
        >>> rfm = cdnow_calibration_summary()
        >>> model = BetaGeo().fit(rfm, method="mle")
        >>> float(model.probability_alive_at(rfm.loc[[1]], t=10).loc[1, "mean"].round(3))  # 10 weeks
        0.675
        >>> float(model.probability_alive_at(rfm.loc[[1]], t="70D").loc[1, "mean"].round(3))
        0.675
        """
        t = self._time(t)

        def fn(d, cols):
            return self.spec.probability_alive(d, cols, np.array([t]))[..., 0]

        return self._per_customer(rfm, fn, "probability_alive_at", prob, return_draws)

    def expected_purchases(
        self, rfm: pd.DataFrame, t: float | str, *, prob: float = 0.9, return_draws: bool = False
    ) -> pd.DataFrame | xr.DataArray:
        """Expected purchases in the next ``t`` time units, E[X(T, T+t] | history].

        Parameters
        ----------
        rfm : pandas.DataFrame
            Customer table with the model's columns.
        t : float or str
            A number of the model's time units (``time_unit_``) or a duration (``"26W"``).
        prob : float
            Central interval probability of ``lower`` and ``upper`` (default 0.9).
        return_draws : bool
            Return every draw (a DataArray, dims ``chain, draw, customer_id``, 8 bytes per
            draw and customer) instead of the summary.

        Returns
        -------
        pandas.DataFrame or xarray.DataArray
            Indexed by ``customer_id``: ``mean``, ``sd`` (over draws), ``lower``, ``upper``;
            computed over chunks of customers. With ``return_draws``, the draws.

        Examples
        --------
        Customer 1 of CDNOW (x=2, t_x=30.43, T=38.86) expects 1.226 purchases in the next 39
        weeks (Fader, Hardie and Lee 2005):

        >>> from clvkit import BetaGeo
        >>> from clvkit.datasets import cdnow_calibration_summary
        >>> rfm = cdnow_calibration_summary()
        >>> model = BetaGeo().fit(rfm, method="mle")
        >>> e = model.expected_purchases(rfm.loc[[1]], t=39)
        >>> list(e.columns), float(e.loc[1, "mean"].round(3))
        (['mean', 'sd', 'lower', 'upper'], 1.226)
        >>> float(model.expected_purchases(rfm.loc[[1]], t="39W").loc[1, "mean"].round(3))
        1.226
        >>> model.expected_purchases(rfm.loc[[1]], t=39, return_draws=True).shape
        (1, 1, 1)
        """
        t = self._time(t)

        def fn(d, cols):
            return self.spec.expected_purchases(d, cols, np.array([t]))[..., 0]

        return self._per_customer(rfm, fn, "expected_purchases", prob, return_draws)

    def expected_purchases_new_customer(
        self, t: float | str, *, prob: float = 0.9, return_draws: bool = False
    ) -> pd.Series | xr.DataArray:
        """Expected repeat purchases of a new customer in its first ``t`` time units (an empty
        history at age 0), summarized over draws.

        Parameters
        ----------
        t : float or str
            A number of the model's time units (``time_unit_``) or a duration (``"26W"``).
        prob : float
            Central interval probability of ``lower`` and ``upper`` (default 0.9).
        return_draws : bool
            Return the draws (a DataArray, dims ``chain, draw``) instead of the summary (a
            Series: ``mean``, ``sd``, ``lower``, ``upper``).

        Examples
        --------
        E[X(t)] at 1, 3 and 31.857 weeks on CDNOW (Fader, Hardie and Lee 2005):

        >>> from clvkit import BetaGeo
        >>> from clvkit.datasets import cdnow_calibration_summary
        >>> rfm = cdnow_calibration_summary()
        >>> model = BetaGeo().fit(rfm, method="mle")
        >>> model.expected_purchases_new_customer(1).index.tolist()
        ['mean', 'sd', 'lower', 'upper']
        >>> [round(float(model.expected_purchases_new_customer(t)["mean"]), 4) for t in (1, 3, 31.857)]
        [0.0532, 0.1506, 1.0405]
        >>> model.expected_purchases_new_customer("3W", return_draws=True).dims
        ('chain', 'draw')
        """
        t = self._time(t)
        d, shape = self._draws()
        out = self.spec.expected_purchases(d, self.spec.new_customer_columns(1), np.array([t]))
        return self._new_customer(
            out[:, 0, 0], shape, "expected_purchases_new_customer", prob, return_draws
        )

    def probability_of_purchases(
        self,
        t: float | str,
        n: int,
        rfm: pd.DataFrame | None = None,
        *,
        prob: float = 0.9,
        return_draws: bool = False,
    ) -> pd.DataFrame | pd.Series | xr.DataArray:
        """P(exactly ``n`` purchases in a window of ``t`` time units).

        Without ``rfm``: a new customer's first ``t`` time units (a Series: ``mean``, ``sd``,
        ``lower``, ``upper``; draws: dims ``chain, draw``). With ``rfm``: each customer's next
        ``t`` time units after its end of observation, given its history (a DataFrame indexed
        by ``customer_id``; draws: dims ``chain, draw, customer_id``).

        Parameters
        ----------
        t : float or str
            A number of the model's time units (``time_unit_``) or a duration (``"26W"``).
        n : int
            Number of purchases.
        rfm : pandas.DataFrame, optional
            Customer table with the model's columns.
        prob : float
            Central interval probability of ``lower`` and ``upper`` (default 0.9).
        return_draws : bool
            Return every draw (a DataArray, dims ``chain, draw, customer_id``, 8 bytes per
            draw and customer) instead of the summary.

        Examples
        --------
        >>> from clvkit import BetaGeo
        >>> from clvkit.datasets import cdnow_calibration_summary
        >>> rfm = cdnow_calibration_summary()
        >>> model = BetaGeo().fit(rfm, method="mle")
        >>> p = [float(model.probability_of_purchases(39, n)["mean"]) for n in range(3)]
        >>> [round(v, 3) for v in p]  # P(X(39) = 0, 1, 2)
        [0.574, 0.199, 0.085]
        >>> given = model.probability_of_purchases(39, 0, rfm.loc[[1, 3]])  # existing customers
        >>> given["mean"].round(3).tolist()
        [0.445, 0.856]
        """
        t = self._time(t)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ClvkitError(f"argument 'n' is {n!r}. Suggestion: a non-negative integer.")
        k = np.array([float(n)])
        if rfm is None:
            d, shape = self._draws()
            cols = self.spec.new_customer_columns(1)
            out = self.spec.probability_of_purchases(d, cols, t, k)[:, 0, 0]
            return self._new_customer(out, shape, "probability_of_purchases", prob, return_draws)

        def fn(d, cols):
            return self.spec.probability_of_purchases(d, cols, t, k)[..., 0]

        return self._per_customer(rfm, fn, "probability_of_purchases", prob, return_draws)

    def posterior_predictive(
        self,
        rfm: pd.DataFrame,
        t: float | str,
        random_seed: int | np.random.Generator | None = None,
        *,
        prob: float = 0.9,
        return_draws: bool = False,
    ) -> pd.DataFrame | xr.DataArray:
        """Each customer's purchase count in ``(T, T+t]``, simulated: its summary over draws.

        For every posterior draw, the customer's latent state is drawn from its conditional
        posterior given the history and its future simulated (the spec's ``simulate``, the
        model's one generative process). Customers are simulated in chunks, one after the
        other from the one generator, so the summary and the draws of one seed agree.

        Parameters
        ----------
        rfm : pandas.DataFrame
            Customer table with the model's columns.
        t : float or str
            A number of the model's time units (``time_unit_``) or a duration (``"26W"``).
        random_seed : int or numpy.random.Generator, optional
            Seed of the simulation.
        prob : float
            Central interval probability of ``lower`` and ``upper`` (default 0.9).
        return_draws : bool
            Return every simulated count (an int64 DataArray, dims ``chain, draw,
            customer_id``) instead of the summary.

        Returns
        -------
        pandas.DataFrame or xarray.DataArray
            Indexed by ``customer_id``: ``mean``, ``sd``, ``lower`` and ``upper`` of the count
            (the interval's ends are counts: inverted-CDF quantiles) and ``p_zero``, the share
            of draws with no purchase. With ``return_draws``, the counts.

        Examples
        --------
        >>> from clvkit import BetaGeo
        >>> from clvkit.datasets import cdnow_calibration_summary
        >>> rfm = cdnow_calibration_summary()
        >>> model = BetaGeo().fit(rfm, method="mle")
        >>> sim = model.posterior_predictive(rfm.loc[[1, 2, 3]], t=39, random_seed=0)
        >>> list(sim.columns)
        ['mean', 'sd', 'lower', 'upper', 'p_zero']
        >>> draws = model.posterior_predictive(rfm.loc[[1, 2, 3]], t=39, random_seed=0,
        ...                                    return_draws=True)
        >>> draws.dims, draws.shape, bool((draws >= 0).all())
        (('chain', 'draw', 'customer_id'), (1, 1, 3), True)
        """
        rng = make_rng(random_seed)
        t = self._time(t)

        def fn(d, cols):
            future = self.spec.simulate(d, cols, t, rng)
            counts = np.zeros(future.p_alive.shape, dtype=np.int64)
            for batch in future.batches:  # each (draw, customer) unit is in one batch
                counts[batch.draw, batch.customer] = batch.count
            return counts

        return self._per_customer(rfm, fn, "purchases", prob, return_draws, counts=True)


class SpendModel(_Summaries, _LogLikelihood, ModelBase):
    """A spend model: predictions from its :class:`~clvkit.models.contract.SpendSpec`."""

    spec: ClassVar[SpendSpec]

    def expected_spend(
        self, rfm: pd.DataFrame, *, prob: float = 0.9, return_draws: bool = False
    ) -> pd.DataFrame | xr.DataArray:
        """Expected spend per future purchase given each customer's history, summarized over
        draws.

        Parameters
        ----------
        rfm : pandas.DataFrame
            Customer table with the model's columns.
        prob : float
            Central interval probability of ``lower`` and ``upper`` (default 0.9).
        return_draws : bool
            Return every draw (a DataArray, dims ``chain, draw, customer_id``, 8 bytes per
            draw and customer) instead of the summary.

        Returns
        -------
        pandas.DataFrame or xarray.DataArray
            Indexed by ``customer_id``: ``mean``, ``sd`` (over draws), ``lower``, ``upper``;
            computed over chunks of customers. With ``return_draws``, the draws.

        Examples
        --------
        Customers without a repeat purchase get the population mean. Customer 1 of CDNOW (2
        repeat purchases averaging $22.35) and customer 3 (none):

        >>> from clvkit import GammaGamma
        >>> from clvkit.datasets import cdnow_calibration_summary
        >>> rfm = cdnow_calibration_summary()
        >>> model = GammaGamma().fit(rfm, method="mle")
        >>> model.expected_spend(rfm.loc[[1, 3]])["mean"].round(2).tolist()
        [24.66, 35.17]
        >>> model.expected_spend(rfm.loc[[1, 3]], return_draws=True).dims
        ('chain', 'draw', 'customer_id')
        """
        return self._per_customer(
            rfm, self.spec.expected_spend, "expected_spend", prob, return_draws
        )

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
