"""Pareto/NBD on the model contract: the primitives every layer above ``models/`` uses."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from clvkit.models.contract import Cashflow, Columns, Future, Params, PMap, PurchaseSpec, serial_map
from clvkit.models.inputs import validate_rfm
from clvkit.models.pnbd.cashflow import expected_value as cashflow_value
from clvkit.models.pnbd.likelihood import pnbd_loglik_customers
from clvkit.models.pnbd.predictions import (
    expected_factor,
    log_alive,
    pnbd_probability_of_purchases,
)
from clvkit.models.pnbd.simulation import simulate

__all__ = ["ParetoNBDSpec"]


def _p(params: Params) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(params[n], dtype=np.float64) for n in ("r", "alpha", "s", "beta"))


def _c(cols: Columns) -> tuple[np.ndarray, ...]:
    x, tx, T = (np.asarray(cols[n], dtype=np.float64) for n in ("frequency", "recency", "T"))
    return x, np.where(x > 0, tx, 0.0), T  # no repeat purchase: the last is the first, at 0


class ParetoNBDSpec(PurchaseSpec):
    """Pareto/NBD (Schmittlein, Morrison and Colombo 1987): Poisson purchases at rate
    ``λ ~ Gamma(r, α)`` while alive; an exponential lifetime with rate ``μ ~ Gamma(s, β)``,
    so a customer may drop out at any time, not only after a purchase."""

    name: ClassVar[str] = "pnbd"
    model_name: ClassVar[str] = "ParetoNBD"
    label: ClassVar[str] = "Pareto/NBD"
    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "s", "beta")
    covariate_links: ClassVar[dict[str, tuple[str, int]]] = {
        "alpha": ("purchase", -1),
        "beta": ("dropout", -1),
    }
    process_texts: ClassVar[dict[str, tuple[str, str]]] = {
        "purchase": ("purchases per time unit while alive", "buy {x} as often"),
        "dropout": ("dropout rate per time unit", "drop out {x} as fast"),
    }
    columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")

    def customer_columns(self, table: pd.DataFrame, argument: str = "rfm") -> dict[str, np.ndarray]:
        data = validate_rfm(table, argument=argument)
        return {"frequency": data.frequency, "recency": data.recency, "T": data.T}

    def process_means(self, params: Params) -> dict[str, np.ndarray]:
        """Purchases per time unit while alive ``r / alpha`` and the dropout rate per time
        unit ``s / beta``, per draw."""
        r, alpha, s, beta = (
            np.asarray(params[n], dtype=np.float64).reshape(-1) for n in ("r", "alpha", "s", "beta")
        )
        return {"purchase": r / alpha, "dropout": s / beta}

    def value_key(self, cols: Columns) -> np.ndarray:
        return np.stack(_c(cols), axis=1)

    def order_keys(self, cols: Columns) -> list[np.ndarray]:
        return [np.asarray(cols["frequency"]), np.asarray(cols["T"])]

    def loglik(self, params: Params, cols: Columns) -> np.ndarray:
        return pnbd_loglik_customers(*_p(params), *_c(cols))

    def probability_alive(self, params: Params, cols: Columns, t: np.ndarray) -> np.ndarray:
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        r, alpha, s, beta = _p(params)
        x, tx, T = _c(cols)
        la = log_alive(r, alpha, s, beta, x, tx, T)  # (S, n)
        return np.exp(la[..., None] - s[..., None] * np.log1p(t / (beta + T)[..., None]))

    def expected_purchases(self, params: Params, cols: Columns, t: np.ndarray) -> np.ndarray:
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        r, alpha, s, beta = _p(params)
        x, tx, T = _c(cols)
        pa = np.exp(log_alive(r, alpha, s, beta, x, tx, T))
        rate = (r + x) / (alpha + T)
        return (pa * rate)[..., None] * expected_factor(s[..., None], (beta + T)[..., None], t)

    def probability_of_purchases(
        self, params: Params, cols: Columns, t: float | np.ndarray, k: np.ndarray
    ) -> np.ndarray:
        x, tx, T = _c(cols)
        t = np.broadcast_to(np.asarray(t, dtype=np.float64), x.shape)
        return pnbd_probability_of_purchases(*_p(params), x, tx, T, t, k)

    def simulate(
        self,
        params: Params,
        cols: Columns,
        horizon: float | np.ndarray,
        rng: np.random.Generator,
        batch_size: int = 2_000_000,
    ) -> Future:
        return simulate(*_p(params), *_c(cols), horizon, rng, batch_size)

    def expected_value(
        self,
        params: Params,
        cols: Columns,
        spend: np.ndarray,
        cashflow: Cashflow,
        pmap: PMap = serial_map,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The contract's expected discounted CLV, with the grid sums once per (draw, ``T``)
        (the same values as the generic route, see :mod:`clvkit.models.pnbd.cashflow`)."""
        return cashflow_value(params, cols, spend, cashflow, pmap)
