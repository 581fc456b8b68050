"""BG/NBD on the model contract: the primitives every layer above ``models/`` uses."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import pandas as pd

from clvkit.models.bgnbd import predictions
from clvkit.models.bgnbd.cashflow import expected_value as cashflow_value
from clvkit.models.bgnbd.cashflow import window_values as cashflow_windows
from clvkit.models.bgnbd.likelihood import bg_loglik_customers
from clvkit.models.bgnbd.simulation import simulate
from clvkit.models.contract import Cashflow, Columns, Future, Params, PMap, PurchaseSpec, serial_map
from clvkit.models.inputs import validate_rfm

__all__ = ["BGNBDSpec"]


def _p(params: Params) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(params[n], dtype=np.float64) for n in ("r", "alpha", "a", "b"))


def _c(cols: Columns) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(cols[n], dtype=np.float64) for n in ("frequency", "recency", "T"))


class BGNBDSpec(PurchaseSpec):
    """BG/NBD (Fader, Hardie and Lee 2005): Poisson purchases at rate ``lam ~ Gamma(r, alpha)``
    while alive; dropout after each repeat purchase with probability ``p ~ Beta(a, b)``."""

    name: ClassVar[str] = "bgnbd"
    model_name: ClassVar[str] = "BetaGeo"
    label: ClassVar[str] = "BG/NBD"
    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    covariate_links: ClassVar[dict[str, tuple[str, int]]] = {
        "alpha": ("purchase", -1),
        "a": ("dropout", 1),
        "b": ("dropout", 1),
    }
    process_texts: ClassVar[dict[str, tuple[str, str]]] = {
        "purchase": ("purchases per time unit while alive", "buy {x} as often"),
        "dropout": (
            "P(drop out after a repeat purchase)",
            "are {x} as likely to drop out after a purchase",
        ),
    }
    columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")

    def customer_columns(self, table: pd.DataFrame, argument: str = "rfm") -> dict[str, np.ndarray]:
        data = validate_rfm(table, argument=argument)
        return {"frequency": data.frequency, "recency": data.recency, "T": data.T}

    def process_means(self, params: Params) -> dict[str, np.ndarray]:
        """Purchases per time unit while alive ``r / alpha`` and P(drop out after a repeat
        purchase) ``a / (a + b)``, per draw."""
        r, alpha, a, b = (np.asarray(v).reshape(-1) for v in _p(params))
        return {"purchase": r / alpha, "dropout": a / (a + b)}

    def value_key(self, cols: Columns) -> np.ndarray:
        x, tx, T = _c(cols)
        return np.stack([x, np.where(x > 0, tx, 0.0), T], axis=1)

    def order_keys(self, cols: Columns) -> list[np.ndarray]:
        return [np.asarray(cols["frequency"]), np.asarray(cols["T"])]

    def loglik(self, params: Params, cols: Columns) -> np.ndarray:
        return bg_loglik_customers(*_p(params), *_c(cols))

    def probability_alive(self, params: Params, cols: Columns, t: np.ndarray) -> np.ndarray:
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        p = _p(params)
        x, tx, T = _c(cols)
        out = predictions.bg_probability_alive_at(*p, x, tx, T, t)
        now = t == 0
        if now.any():  # exactly the closed form at t = 0
            out[..., now] = predictions.bg_probability_alive(*p, x, tx, T)[..., None]
        return out

    def expected_purchases(self, params: Params, cols: Columns, t: np.ndarray) -> np.ndarray:
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        return predictions.bg_expected_purchases(*_p(params), *_c(cols), t)

    def probability_of_purchases(
        self, params: Params, cols: Columns, t: float | np.ndarray, k: np.ndarray
    ) -> np.ndarray:
        # Given alive at T the future is a new customer's with (r + x, alpha + T, a, b + x).
        r, alpha, a, b = (v[..., None] for v in _p(params))
        x, tx, T = _c(cols)
        k = np.atleast_1d(np.asarray(k, dtype=np.float64))
        pa = predictions.bg_probability_alive(*_p(params), x, tx, T)[..., None]
        # one shared x or T (new customers, one cohort) keeps the special functions of the
        # draws x counts at (S, 1, K) instead of (S, n, K)
        xc = x[:1, None] if x.size and (x == x[0]).all() else x[:, None]
        Tc = T[:1, None] if T.size and (T == T[0]).all() else T[:, None]
        t = np.asarray(t, dtype=np.float64)
        tc = t[:, None] if t.ndim == 1 else t  # one window per customer
        pmf = predictions.bg_probability_of_purchases(r + xc, alpha + Tc, a, b + xc, tc, k)
        return pa * pmf + (1.0 - pa) * (k == 0)

    def simulate(
        self,
        params: Params,
        cols: Columns,
        horizon: float | np.ndarray,
        rng: np.random.Generator,
        batch_size: int = 2_000_000,
    ) -> Future:
        return simulate(*_p(params), *_c(cols), horizon, rng, batch_size)

    def probability_purchase_in_window(
        self, params: Params, start: np.ndarray, end: np.ndarray
    ) -> np.ndarray:
        """The contract's optional window probability, in closed form: P(at least
        one purchase in ``(start, end]``) of a new customer, ``(S, *shape)``."""
        r, alpha, a, b = (v.reshape(-1, *([1] * np.ndim(start))) for v in _p(params))
        return predictions.bg_probability_purchase_in_window(r, alpha, a, b, start, end)

    def expected_value(
        self,
        params: Params,
        cols: Columns,
        spend: np.ndarray,
        cashflow: Cashflow,
        pmap: PMap = serial_map,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The contract's expected discounted CLV by compiled quadrature kernels (the same
        values as the generic route, see :mod:`clvkit.models.bgnbd.cashflow`)."""
        clv, means, _ = cashflow_value(params, cols, spend, cashflow, pmap)
        return clv, means

    def window_values(
        self,
        params: Params,
        cols: Columns,
        spend: np.ndarray,
        weight: np.ndarray,
        cashflows: Sequence[Cashflow],
        pmap: PMap = serial_map,
    ) -> np.ndarray:
        """The contract's per-cash-flow sums over customers by the compiled kernels, without a
        pass over the customers per cash flow (see :func:`clvkit.models.bgnbd.cashflow.window_values`)."""
        return cashflow_windows(params, cols, spend, weight, cashflows, pmap)
