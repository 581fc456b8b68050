"""MBG/NBD on the model contract: the primitives every layer above ``models/`` uses.

The conditional predictions are BG/NBD's at ``b + 1`` times a per-customer factor (see
:mod:`clvkit.models.mbgnbd.predictions`); the BG/NBD primitives come from the model registry,
i.e. through the contract, not from the BG/NBD folder.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from clvkit.models import registry
from clvkit.models.contract import Cashflow, Columns, Future, Params, PMap, PurchaseSpec, serial_map
from clvkit.models.inputs import validate_rfm
from clvkit.models.mbgnbd.likelihood import mbg_loglik_customers
from clvkit.models.mbgnbd.predictions import mbg_factor, mbg_probability_alive
from clvkit.models.mbgnbd.simulation import simulate

__all__ = ["MBGNBDSpec", "betageo_spec"]


def _p(params: Params) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(params[n], dtype=np.float64) for n in ("r", "alpha", "a", "b"))


def _c(cols: Columns) -> tuple[np.ndarray, ...]:
    x = np.asarray(cols["frequency"], dtype=np.float64)
    tx = np.where(x > 0, np.asarray(cols["recency"], dtype=np.float64), 0.0)
    return x, tx, np.asarray(cols["T"], dtype=np.float64)


def betageo_spec() -> PurchaseSpec:
    """The BG/NBD spec, from the registry."""
    return registry.get("bgnbd").spec


def _shifted(params: Params) -> dict[str, np.ndarray]:
    """The BG/NBD parameters whose predictions given alive are MBG/NBD's: ``b + 1``."""
    r, alpha, a, b = _p(params)
    return {"r": r, "alpha": alpha, "a": a, "b": b + 1.0}


class MBGNBDSpec(PurchaseSpec):
    """MBG/NBD (Batislam, Denizel and Filiztekin 2007): Poisson purchases at rate
    ``lam ~ Gamma(r, alpha)`` while alive; dropout after each purchase, the first one included,
    with probability ``p ~ Beta(a, b)``. So a customer without repeat purchases may be dead,
    and a new customer is alive at age 0 with probability ``b / (a + b)``."""

    name: ClassVar[str] = "mbgnbd"
    model_name: ClassVar[str] = "ModifiedBetaGeo"
    label: ClassVar[str] = "MBG/NBD"
    param_names: ClassVar[tuple[str, ...]] = ("r", "alpha", "a", "b")
    covariate_links: ClassVar[dict[str, tuple[str, int]]] = {
        "alpha": ("purchase", -1),
        "a": ("dropout", 1),
        "b": ("dropout", 1),
    }
    process_texts: ClassVar[dict[str, tuple[str, str]]] = {
        "purchase": ("purchases per time unit while alive", "buy {x} as often"),
        "dropout": (
            "P(drop out at a purchase, the first one included)",
            "are {x} as likely to drop out at a purchase",
        ),
    }
    columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")
    #: A customer may drop out at its first purchase: P(alive at age 0) of a new one is < 1.
    drops_at_first_purchase: ClassVar[bool] = True
    #: Its parameter names are BG/NBD's: a bare dict of r, alpha, a, b means BG/NBD, so an
    #: MBG/NBD posterior is recognised by its ``attrs["model"]`` (or the fitted model) only.
    by_param_names: ClassVar[bool] = False

    def customer_columns(self, table: pd.DataFrame, argument: str = "rfm") -> dict[str, np.ndarray]:
        data = validate_rfm(table, argument=argument)
        return {"frequency": data.frequency, "recency": data.recency, "T": data.T}

    def new_customer_columns(self, n: int = 1) -> dict[str, np.ndarray]:
        return {c: np.zeros(n) for c in self.columns}

    def process_means(self, params: Params) -> dict[str, np.ndarray]:
        """Purchases per time unit while alive ``r / alpha`` and P(drop out at a purchase, the
        first one included) ``a / (a + b)``, per draw."""
        r, alpha, a, b = (np.asarray(v).reshape(-1) for v in _p(params))
        return {"purchase": r / alpha, "dropout": a / (a + b)}

    def value_key(self, cols: Columns) -> np.ndarray:
        return np.stack(_c(cols), axis=1)

    def order_keys(self, cols: Columns) -> list[np.ndarray]:
        return [np.asarray(cols["frequency"]), np.asarray(cols["T"])]

    def loglik(self, params: Params, cols: Columns) -> np.ndarray:
        return mbg_loglik_customers(*_p(params), *_c(cols))

    def _factor(self, params: Params, cols: Columns) -> np.ndarray:
        x, _, T = _c(cols)
        return mbg_factor(*_p(params), x, T)

    def probability_alive(self, params: Params, cols: Columns, t: np.ndarray) -> np.ndarray:
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        out = betageo_spec().probability_alive(_shifted(params), cols, t)
        out *= self._factor(params, cols)[..., None]
        now = t == 0
        if now.any():  # exactly the closed form at t = 0
            out[..., now] = mbg_probability_alive(*_p(params), *_c(cols))[..., None]
        return out

    def expected_purchases(self, params: Params, cols: Columns, t: np.ndarray) -> np.ndarray:
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        out = betageo_spec().expected_purchases(_shifted(params), cols, t)
        out *= self._factor(params, cols)[..., None]
        return out

    def probability_of_purchases(
        self, params: Params, cols: Columns, t: float | np.ndarray, k: np.ndarray
    ) -> np.ndarray:
        # BG/NBD at b + 1 is MBG/NBD for x > 0; for x = 0 it is MBG/NBD given alive at T.
        k = np.atleast_1d(np.asarray(k, dtype=np.float64))
        pmf = betageo_spec().probability_of_purchases(_shifted(params), cols, t, k)
        f = self._factor(params, cols)[..., None]
        return f * pmf + (1.0 - f) * (k == 0)

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
    ) -> np.ndarray | None:
        """P(at least one repeat purchase at ages in ``(start, end]``) of a new customer: alive
        after its first purchase with probability ``b / (a + b)``, then a BG/NBD customer with
        ``b + 1``; ``(S, *shape)``."""
        out = betageo_spec().probability_purchase_in_window(_shifted(params), start, end)
        if out is None:  # pragma: no cover - BG/NBD has the closed form
            return None
        _, _, a, b = (v.reshape(-1, *([1] * np.ndim(start))) for v in _p(params))
        return out * (b / (a + b))

    def expected_value(
        self,
        params: Params,
        cols: Columns,
        spend: np.ndarray,
        cashflow: Cashflow,
        pmap: PMap = serial_map,
    ) -> tuple[np.ndarray, np.ndarray]:
        """The contract's expected discounted CLV through BG/NBD's fast route at ``b + 1`` (its
        compiled quadrature kernels): the value is linear in P(alive at T), so customers without
        repeat purchases are scaled by their MBG/NBD P(alive). Equal to the generic route
        (tested)."""
        spend = np.asarray(spend, dtype=np.float64)
        shifted = _shifted(params)
        bg = betageo_spec()
        clv, means = bg.expected_value(shifted, cols, spend, cashflow, pmap)
        x, _, T = _c(cols)
        zero = np.flatnonzero(x == 0)
        if not zero.size:
            return clv, means
        T0, inv = np.unique(T[zero], return_inverse=True)  # x = 0 customers differ only in T
        inv = inv.ravel()
        f0 = mbg_probability_alive(*_p(params), 0.0, 0.0, T0)  # (S, U0)
        clv[:, zero] *= f0[:, inv]
        # the means over draws of P(alive) and of P(alive) x purchases in the horizon: the
        # latter from BG/NBD's route once more, for the distinct T only, with the horizon's
        # purchases as the revenue and P(alive) as the spend
        horizon = Cashflow(
            times=cashflow.times,
            revenue_weights=(np.arange(np.size(cashflow.times)) == cashflow.horizon_index) * 1.0,
            cost_weights=np.zeros(np.size(cashflow.times)),
            horizon_index=cashflow.horizon_index,
        )
        new = {"frequency": np.zeros(T0.size), "recency": np.zeros(T0.size), "T": T0}
        _, hmeans = bg.expected_value(shifted, new, np.ascontiguousarray(f0), horizon, pmap)
        means = means.copy()
        means[0, zero] = f0.mean(axis=0)[inv]
        means[1, zero] = hmeans[3, inv]
        means[3, zero] = clv[:, zero].mean(axis=0)
        return clv, means
