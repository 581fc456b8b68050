"""The fee side of a subscription: each renewal pays the subscriber's current fee.

Nothing is learned from data: an existing subscriber keeps the fee of its contract (the
``fee`` column of :func:`clvkit.contract_summary` with ``fee_col=``), and a new subscriber pays
the list fee ``list_fee`` (the one parameter, so the value layer can pair its draws with the
renewal model's like any spend model's). With :class:`~clvkit.models.sbg.ShiftedBetaGeo` and
:func:`clvkit.customer_value`, a subscriber's value is ``margin x fee x`` its discounted
expected renewals.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from clvkit.errors import ClvkitError, bad_rows_error
from clvkit.models.base import SpendModel
from clvkit.models.contract import Columns, Params, SpendSpec
from clvkit.models.persistence import register_saved
from clvkit.models.stats import WeightedRows

__all__ = ["FeeStats", "SubscriptionFee", "SubscriptionFeeSpec"]


@dataclass(frozen=True)
class FeeStats(WeightedRows):
    """The fee's training data: none (each subscriber's fee comes from the table); saved as
    an empty ``observed_data`` so a saved fee passes the same integrity check as a fit."""

    KEY: ClassVar[tuple[str, ...]] = ("weight",)

    weight: np.ndarray

    def dataset(self) -> xr.Dataset:
        return xr.Dataset({"weight": ("row", self.weight)})

    @classmethod
    def from_dataset(cls, ds: xr.Dataset) -> FeeStats:
        return cls(np.asarray(ds["weight"].to_numpy(), dtype=np.float64))


class SubscriptionFeeSpec(SpendSpec):
    """Spend per renewal: the subscriber's ``fee`` (new subscribers: ``list_fee``)."""

    name: ClassVar[str] = "subscription_fee"
    model_name: ClassVar[str] = "SubscriptionFee"
    label: ClassVar[str] = "Subscription fee"
    param_names: ClassVar[tuple[str, ...]] = ("list_fee",)
    columns: ClassVar[tuple[str, ...]] = ("fee",)
    data: ClassVar[str] = "contracts"

    def customer_columns(self, table: pd.DataFrame, argument: str = "rfm") -> dict[str, np.ndarray]:
        if not isinstance(table, pd.DataFrame) or "fee" not in table.columns:
            raise ClvkitError(
                f"argument {argument!r} has no column 'fee'. Suggestion: build it with "
                "clvkit.contract_summary(..., fee_col='your fee column')."
            )
        fee = pd.to_numeric(table["fee"], errors="coerce").to_numpy(np.float64).copy()
        bad = ~np.isfinite(fee) | (fee < 0)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise bad_rows_error(
                f"column 'fee' of argument {argument!r}",
                "is missing, not a number or negative",
                int(bad.sum()),
                {"customer_id": table.index[i], "fee": table["fee"].iloc[i]},
                "give every subscriber its fee (>= 0).",
                n_total=len(table),
            )
        return {"fee": fee}

    def new_customer_columns(self, n: int = 1) -> dict[str, np.ndarray]:
        return {"fee": np.full(n, np.nan)}  # a new subscriber pays the list fee

    def value_key(self, cols: Columns) -> np.ndarray:
        return np.nan_to_num(np.asarray(cols["fee"], np.float64), nan=-1.0)[:, None]

    def loglik(self, params: Params, cols: Columns) -> np.ndarray:
        S = np.asarray(params["list_fee"]).shape[0]
        return np.zeros((S, np.shape(cols["fee"])[0]))

    def expected_spend(self, params: Params, cols: Columns) -> np.ndarray:
        fee = np.asarray(cols["fee"], np.float64)
        lf = np.asarray(params["list_fee"], np.float64)  # (S, 1)
        return np.where(np.isnan(fee), lf, fee)

    def sample_spend(
        self,
        params: Params,
        cols: Columns,
        draw: np.ndarray,
        customer: np.ndarray,
        count: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        mean = self.expected_spend(params, {"fee": np.asarray(cols["fee"])[customer]})
        return np.repeat(mean[draw, np.arange(draw.size)], count)


class SubscriptionFee(SpendModel):
    """Fee per renewal (not fitted: build it with ``SubscriptionFee.from_params(list_fee=...)``).

    Examples
    --------
    >>> fee = SubscriptionFee.from_params(list_fee=20.0)
    >>> fee.expected_spend_new_customer().item()
    20.0
    """

    spec: ClassVar[SubscriptionFeeSpec] = SubscriptionFeeSpec()
    _default_priors: ClassVar[dict[str, dict[str, Any]]] = {
        "list_fee": {"dist": "LogNormal", "mu": 0.0, "sigma": 5.0}
    }

    def _prepare(self, table: pd.DataFrame) -> Any:
        raise ClvkitError(
            "SubscriptionFee is not fitted: it takes each subscriber's fee from the table. "
            "Suggestion: SubscriptionFee.from_params(list_fee=<fee of a new subscriber>)."
        )

    def _observed_data(self, stats: FeeStats) -> xr.Dataset:
        return stats.dataset()

    @staticmethod
    def _stats_from_observed(ds: xr.Dataset) -> FeeStats:
        return FeeStats.from_dataset(ds)

    def save(self, path: str | os.PathLike) -> None:
        """Write the fee (its ``list_fee`` draws, time unit) to NetCDF, atomically; read it back
        with :func:`clvkit.load`. Unlike a fitted model it needs no training data.

        Examples
        --------
        >>> import os, tempfile, clvkit
        >>> path = os.path.join(tempfile.mkdtemp(), "fee.nc")
        >>> SubscriptionFee.from_params(list_fee=20.0).save(path)
        >>> clvkit.load(path).expected_spend_new_customer().item()
        20.0
        """
        self._check_fitted()
        if self.stats_ is not None:
            return super().save(path)
        stats = FeeStats(np.zeros(0))
        groups = {"posterior": self.posterior_, "observed_data": stats.dataset()}
        attrs = dict(self.posterior_.attrs) | {"data_fingerprint": stats.fingerprint}
        clone = type(self)(**self.get_params())
        clone._set_fitted(groups, attrs, stats)
        return clone.save(path)


register_saved(SubscriptionFee.spec.model_name, SubscriptionFee)
