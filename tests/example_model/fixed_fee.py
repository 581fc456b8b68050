"""A fixed-fee spend model: every purchase (or renewal) pays the same ``fee``.

The smallest spend model the contract allows, as subscriptions need it: nothing to learn from
the data (``loglik`` is 0), no spend column read, every event worth ``fee``. Used by
``tests/test_example_model.py`` to show that the value layer takes any spend model unchanged.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from clvkit.models.base import SpendModel
from clvkit.models.contract import Columns, Params, SpendSpec
from clvkit.models.inputs import validate_rfm
from clvkit.models.registry import register

__all__ = ["FixedFee", "FixedFeeSpec"]


class FixedFeeSpec(SpendSpec):
    """Spend per event is the constant ``fee``."""

    name: ClassVar[str] = "fixed_fee"
    model_name: ClassVar[str] = "FixedFee"
    label: ClassVar[str] = "Fixed fee"
    param_names: ClassVar[tuple[str, ...]] = ("fee",)
    columns: ClassVar[tuple[str, ...]] = ("frequency",)

    def customer_columns(self, table: pd.DataFrame, argument: str = "rfm") -> dict[str, np.ndarray]:
        data = validate_rfm(table, need_recency=False, argument=argument)
        return {"frequency": data.frequency}

    def new_customer_columns(self, n: int = 1) -> dict[str, np.ndarray]:
        return {"frequency": np.zeros(n)}

    def value_key(self, cols: Columns) -> np.ndarray:
        return np.zeros((np.shape(cols["frequency"])[0], 1))

    def loglik(self, params: Params, cols: Columns) -> np.ndarray:
        fee = np.asarray(params["fee"], dtype=np.float64)
        return np.zeros((fee.shape[0], np.shape(cols["frequency"])[0]))

    def expected_spend(self, params: Params, cols: Columns) -> np.ndarray:
        fee = np.asarray(params["fee"], dtype=np.float64)
        return np.broadcast_to(fee, (fee.shape[0], np.shape(cols["frequency"])[0])).copy()

    def sample_spend(
        self,
        params: Params,
        cols: Columns,
        draw: np.ndarray,
        customer: np.ndarray,
        count: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        fee = np.asarray(params["fee"], dtype=np.float64)[:, 0]
        return np.repeat(fee[draw], count)


@register
class FixedFee(SpendModel):
    """A spend model with a given fee (build it with ``FixedFee.from_params(fee=...)``)."""

    spec: ClassVar[FixedFeeSpec] = FixedFeeSpec()
    _default_priors: ClassVar[dict] = {"fee": {"dist": "LogNormal", "mu": 0.0, "sigma": 5.0}}
