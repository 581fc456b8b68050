"""The shifted-beta-geometric (sBG) model of contractual retention (Fader and Hardie 2007)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from clvkit.errors import ClvkitError
from clvkit.models.base import PurchaseModel, summarize_draws
from clvkit.models.registry import register
from clvkit.models.sbg import math as sbg_math
from clvkit.models.sbg.likelihood import (
    SBGStats,
    is_survival_table,
    sbg_loglik_grad,
    stats_from_table,
)
from clvkit.models.sbg.spec import ShiftedBetaGeoSpec, contract_columns
from clvkit.units import format_time_unit

__all__ = ["ShiftedBetaGeo"]

_SHAPE = {"dist": "LogNormal", "mu": 0.0, "sigma": 2.0}


@register
class ShiftedBetaGeo(PurchaseModel):
    """sBG model of subscriber retention, fitted with NUTS, Laplace, MAP or MLE.

    Each subscriber pays at the start of each period and churns at the end of it with
    probability ``theta ~ Beta(alpha, beta)``, its own and constant (Fader and Hardie 2007,
    "How to project customer retention"). Retention rises with tenure because the cohort keeps
    its low-``theta`` members. Fits on a :func:`clvkit.contract_summary` table (one row per
    customer: ``renewals``, ``churned``, ``age``) or a survival table
    (:func:`clvkit.survival_table`, :func:`clvkit.cohort_counts`), compressed to one row per
    distinct ``(renewals, churned)``; the time unit is the billing period.

    Parameters
    ----------
    priors : dict, optional
        Per-parameter prior overrides; default ``alpha, beta ~ LogNormal(0, 2)``.

    Examples
    --------
    >>> from clvkit import cohort_counts
    >>> regular = cohort_counts([100, 63.1, 46.8, 38.2, 32.6, 28.9, 26.2, 24.1], "Y", size=1000)
    >>> m = ShiftedBetaGeo().fit(regular, method="mle")
    >>> [round(float(m.posterior_[p].item()), 3) for p in ("alpha", "beta")]
    [0.704, 1.182]
    """

    spec: ClassVar[ShiftedBetaGeoSpec] = ShiftedBetaGeoSpec()
    _default_priors: ClassVar[dict[str, dict[str, Any]]] = {"alpha": _SHAPE, "beta": _SHAPE}

    # ---- hooks ------------------------------------------------------------------------------
    def _prepare(self, table: pd.DataFrame) -> tuple[SBGStats, str | None]:
        stats = stats_from_table(table, "table")
        unit = table.attrs.get("time_unit")
        if not unit:
            raise ClvkitError(
                "argument 'table' has no attrs['time_unit'] (the billing period). Suggestion: "
                "build it with clvkit.contract_summary / survival_table / cohort_counts, or set "
                "table.attrs['time_unit'] = 'M'."
            )
        if stats.weight.sum() <= 0 or not (stats.churned > 0).any():
            raise ClvkitError(
                "argument 'table' has no churned customer, so the churn probability cannot be "
                "estimated. Suggestion: observe the cohorts longer, or fit with method='map'."
            )
        return stats, format_time_unit(unit)

    def _loglik_grad(self, theta: np.ndarray, stats: SBGStats) -> tuple[float, np.ndarray]:
        return sbg_loglik_grad(theta, stats)

    def _row_columns(self, table: pd.DataFrame) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The columns of the per-row likelihood (validated as for fitting) and which
        customers enter it (all); a contract summary, one row per customer."""
        self._prepare(table)  # the fitting checks and errors
        if is_survival_table(table):
            raise ClvkitError(
                "argument 'table' is a cohort survival table, which has no row per customer "
                "to carry covariates. Suggestion: fit on clvkit.contract_summary(...) with "
                "the covariate columns joined by customer id."
            )
        cols = contract_columns(table, "table")
        out = {"renewals": cols["renewals"], "churned": cols["churned"]}
        return out, np.ones(out["renewals"].size, dtype=bool)

    def _rows_loglik_grad(
        self, theta: np.ndarray, cols: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The base likelihood with per-row parameters: each row's log-likelihood ``(m,)`` and
        its gradient ``(m, 2)`` in that row's ``theta = log([alpha, beta])``
        (:func:`clvkit.models.sbg.rows.sbg_rows_loglik_grad`, compiled; the numpy form
        :func:`clvkit.models.sbg.likelihood.sbg_loglik_rows_grad` is tested equal)."""
        from clvkit.models.sbg.rows import sbg_rows_loglik_grad  # numba: compiled on first use

        return sbg_rows_loglik_grad(theta, cols["renewals"], cols["churned"])

    def _unbounded_meaning(self, up: list[str], down: list[str], values: dict[str, float]) -> str:
        if {"alpha", "beta"} <= set(up):
            p = values["alpha"] / (values["alpha"] + values["beta"])
            return (
                "the churn probabilities show no variation between customers: Beta(alpha, "
                f"beta) shrinks to one value, alpha/(alpha+beta) = {p:.4g} (a geometric model)"
            )
        return "these parameters are not identified by the data"

    def _x0(self, stats: SBGStats) -> np.ndarray:
        # alpha / (alpha + beta) = the share churning after their first period, alpha + beta = 2
        first = float(stats.weight[(stats.renewals == 0) & (stats.churned > 0)].sum())
        at_risk = float(stats.weight.sum())
        p = min(max(first / max(at_risk, 1e-12), 0.02), 0.98)
        return np.log([2.0 * p, 2.0 * (1.0 - p)])

    def _native_kernel(self, stats: SBGStats, codes: np.ndarray, pars: np.ndarray) -> Any:
        from clvkit.models.sbg.kernels import sbg_native_kernel  # numba: compiled on first use

        return sbg_native_kernel(stats, codes, pars)

    def _observed_data(self, stats: SBGStats) -> xr.Dataset:
        return stats.dataset()

    @staticmethod
    def _stats_from_observed(ds: xr.Dataset) -> SBGStats:
        return SBGStats.from_dataset(ds)

    # ---- retention predictions ----------------------------------------------------------------
    def _ab(self) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
        d, shape = self._draws()
        return d["alpha"], d["beta"], shape

    def _table(self, values: np.ndarray, shape, index: pd.Index, name: str, prob, draws):
        if draws:
            arr = values.reshape(*shape, -1)
            return xr.DataArray(
                arr,
                dims=("chain", "draw", index.name),
                coords={"chain": np.arange(shape[0]), "draw": np.arange(shape[1]),
                        index.name: index.to_numpy()},
                name=name,
            )  # fmt: skip
        out = summarize_draws(values, prob)
        frame = pd.DataFrame(out.T, index=index, columns=["mean", "sd", "lower", "upper"])
        frame.attrs.update({"prediction": name, "prob": prob, "n_draws": values.shape[0]})
        return frame

    def survival(
        self, periods: int | np.ndarray = 12, *, prob: float = 0.9, return_draws: bool = False
    ) -> pd.DataFrame | xr.DataArray:
        """Survival ``S(t)``: the share of a new cohort still paying at the start of period
        ``t`` (``t = 0..periods`` for an integer, else the given ``t``), per draw.

        Returns a frame indexed by ``period`` with ``mean``, ``sd``, ``lower``, ``upper``
        (credible interval at ``prob``), or with ``return_draws`` the draws.
        """
        t = np.arange(int(periods) + 1) if np.ndim(periods) == 0 else np.asarray(periods)
        a, b, shape = self._ab()
        vals = sbg_math.survival_curve(a, b, t.astype(np.float64)[None, :])
        idx = pd.Index(t, name="period")
        return self._table(vals, shape, idx, "survival", prob, return_draws)

    def retention_rate(
        self, periods: int | np.ndarray = 12, *, prob: float = 0.9, return_draws: bool = False
    ) -> pd.DataFrame | xr.DataArray:
        """Retention rate ``r_t = S(t) / S(t - 1)`` by tenure ``t = 1..periods`` (rising with
        ``t``: heterogeneity, not customers changing), per draw."""
        t = np.arange(1, int(periods) + 1) if np.ndim(periods) == 0 else np.asarray(periods)
        a, b, shape = self._ab()
        vals = sbg_math.retention_rate(a, b, t.astype(np.float64)[None, :])
        idx = pd.Index(t, name="period")
        return self._table(vals, shape, idx, "retention_rate", prob, return_draws)

    def derl(
        self,
        discount_rate: float,
        renewals: int | np.ndarray = 0,
        *,
        prob: float = 0.9,
        return_draws: bool = False,
    ) -> pd.DataFrame | xr.DataArray:
        """Discounted expected residual lifetime (Fader and Hardie 2010) of a customer with
        ``renewals`` renewals, valued at the end of its current period (the next renewal
        undiscounted), at ``discount_rate`` per period; see
        :func:`clvkit.models.sbg.math.derl`. Times the fee and the margin: the residual value."""
        d = float(discount_rate)
        if not np.isfinite(d) or d <= 0:
            raise ClvkitError(
                f"argument 'discount_rate' is {discount_rate!r}. Suggestion: a rate per period "
                "> 0, e.g. 0.1 for 10% per period."
            )
        n = np.atleast_1d(np.asarray(renewals, dtype=np.float64))
        a, b, shape = self._ab()
        vals = sbg_math.derl(a, b, n[None, :], d)
        idx = pd.Index(n.astype(np.int64), name="renewals")
        return self._table(vals, shape, idx, "derl", prob, return_draws)

    def expected_lifetime(
        self, renewals: int | np.ndarray = 0, *, prob: float = 0.9, return_draws: bool = False
    ) -> pd.DataFrame | xr.DataArray:
        """Expected remaining periods paid (the current one included) after ``renewals``
        renewals: ``(alpha + beta + n - 1) / (alpha - 1)``, ``inf`` for ``alpha <= 1``."""
        n = np.atleast_1d(np.asarray(renewals, dtype=np.float64))
        a, b, shape = self._ab()
        vals = sbg_math.expected_lifetime(a, b, n[None, :])
        idx = pd.Index(n.astype(np.int64), name="renewals")
        return self._table(vals, shape, idx, "expected_lifetime", prob, return_draws)

    def project(
        self,
        table: pd.DataFrame,
        periods: int = 5,
        *,
        prob: float = 0.9,
        random_seed: int | np.random.Generator | None = None,
    ) -> pd.DataFrame:
        """Project each cohort of a survival table beyond its last observed period.

        A cohort with ``N_K`` customers alive at the start of its last observed period ``K``
        has, per draw, ``N_K S(K + j) / S(K)`` expected alive at ``K + j`` and a predictive
        count ``Binomial(N_K, S(K + j) / S(K))`` (customers are independent given the
        parameters; each one's ``theta`` is drawn from ``Beta(alpha, beta + K)``).

        Parameters
        ----------
        table : pandas.DataFrame
            A survival table (:func:`clvkit.survival_table`, :func:`clvkit.cohort_counts`).
        periods : int
            Periods to project.
        prob : float
            Interval probability.
        random_seed : int or numpy.random.Generator, optional
            Seed of the predictive draws.

        Returns
        -------
        pandas.DataFrame
            Indexed by ``(cohort, period)``: ``alive_now`` (``N_K``), ``expected`` (posterior
            mean of the expected count), ``lower`` / ``upper`` (its credible interval) and
            ``pred_lower`` / ``pred_upper`` (the predictive interval of the count).
        """
        from clvkit.models.sbg.likelihood import is_survival_table, stats_from_survival
        from clvkit.rng import check_random_seed

        if not isinstance(table, pd.DataFrame) or not is_survival_table(table):
            raise ClvkitError(
                "argument 'table' must be a survival table. Suggestion: build it with "
                "clvkit.survival_table or clvkit.cohort_counts."
            )
        stats_from_survival(table, "table")  # validates the rows
        if isinstance(periods, bool) or not isinstance(periods, (int, np.integer)) or periods < 1:
            raise ClvkitError(f"argument 'periods' is {periods!r}. Suggestion: an integer >= 1.")
        rng = np.random.default_rng(check_random_seed(random_seed))
        a, b, _ = self._ab()
        mat = table.to_numpy(dtype=np.float64, na_value=np.nan)
        last = (~np.isnan(mat)).sum(axis=1) - 1
        lo, hi = (1 - prob) / 2, (1 + prob) / 2
        rows = []
        for i, cohort in enumerate(table.index):
            K = int(last[i])
            alive = mat[i, K]
            j = np.arange(1, periods + 1, dtype=np.float64)
            ratio = np.exp(sbg_math.log_betaln_ratio(a, b + K, j[None, :]))  # (S, periods)
            expected = alive * ratio
            counts = rng.binomial(int(alive), ratio)
            for p in range(periods):
                rows.append(
                    (
                        cohort,
                        K + p + 1,
                        alive,
                        expected[:, p].mean(),
                        *np.quantile(expected[:, p], [lo, hi]),
                        *np.quantile(counts[:, p], [lo, hi], method="inverted_cdf"),
                    )
                )
        cols = ["cohort", "period", "alive_now", "expected", "lower", "upper"]
        out = pd.DataFrame(rows, columns=[*cols, "pred_lower", "pred_upper"])
        out = out.set_index(["cohort", "period"])
        out.attrs.update({"prob": prob, "time_unit": self.time_unit_})
        return out

    def improved_retention(self, points: float = 0.01) -> ShiftedBetaGeo:
        """This model with every draw's mean per-period retention raised by ``points``.

        Per draw, the mean churn probability ``mu = alpha / (alpha + beta)`` becomes ``mu -
        points`` at the same polarisation ``1 / (alpha + beta + 1)`` (so ``alpha + beta`` is
        kept): ``alpha' = (mu - points) (alpha + beta)``, ``beta' = (1 - mu + points) (alpha +
        beta)``. First-period retention ``beta / (alpha + beta)`` rises by exactly ``points``;
        later ones by a little less (their spread around the mean is kept). Valued with
        :func:`clvkit.customer_value` next to the model itself (same settings and seed), it
        gives the retention elasticity of equity: the relative change in equity per draw.

        Raises ``ClvkitError`` when a draw's mean churn is not above ``points``.
        """
        p = float(points)
        a = self.posterior_["alpha"]
        b = self.posterior_["beta"]
        total = a + b
        mu = a / total
        if not np.isfinite(p) or (mu <= p).any():
            bad = int((mu <= p).sum())
            raise ClvkitError(
                f"argument 'points' is {points!r}, but {bad} draws have a mean churn "
                f"probability at or below it. Suggestion: a smaller improvement."
            )
        post = {"alpha": (mu - p) * total, "beta": (1.0 - mu + p) * total}
        ds = self.posterior_[[]].assign(post)
        return type(self).from_posterior(ds, time_unit=self.time_unit_)
