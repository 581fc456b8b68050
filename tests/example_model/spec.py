"""The Poisson/exponential purchase model on the model contract: its math, once.

A customer is born at its first purchase (time 0), buys at the times of a Poisson process with
rate ``lam`` while alive and dies at ``tau ~ Exponential(mu)``, unobserved. Both rates are
population parameters shared by all customers. With ``x`` repeat purchases, the last at
``t_x``, observed over ``(0, T]``, and ``s = lam + mu``, ``d = T - t_x``:

- likelihood: ``L = lam^x e^{-s t_x} (mu + lam e^{-s d}) / s`` (alive at ``T``:
  ``lam^x e^{-s T}``; dead at ``tau`` in ``(t_x, T)``: ``lam^x mu / s (e^{-s t_x} - e^{-s T})``);
- ``P(alive at T | history) = 1 / (1 + mu / s (e^{s d} - 1))``; by memorylessness
  ``P(alive at T + t | history) = P(alive at T | history) e^{-mu t}``;
- ``E[purchases in (T, T + t] | history] = P(alive at T | history) lam / mu (1 - e^{-mu t})``;
- given alive at ``T``, ``P(n purchases in (T, T + t]) = mu / s (lam / s)^n
  P(Gamma(n + 1, s) <= t) + e^{-mu t} Poisson(n; lam t)`` (dead at ``u < t`` after ``n``
  purchases, or alive at ``T + t``); if dead at ``T``, 0 purchases.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import numpy as np
import pandas as pd
from scipy.special import expit, gammainc, gammaln, xlogy

from clvkit.models.contract import Columns, EventBatch, Future, Params, PurchaseSpec
from clvkit.models.inputs import validate_rfm

__all__ = ["PoissonExponentialSpec", "loglik_grad", "probability_alive_now"]


def rates(params: Params) -> tuple[np.ndarray, np.ndarray]:
    """``lam`` and ``mu`` as float64 ``(S, 1)`` arrays."""
    return (
        np.asarray(params["lam"], dtype=np.float64),
        np.asarray(params["mu"], dtype=np.float64),
    )


def rfm_columns(cols: Columns) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``frequency``, ``recency``, ``T`` as float64 ``(n,)`` arrays."""
    return tuple(np.asarray(cols[c], dtype=np.float64) for c in ("frequency", "recency", "T"))


def loglik_terms(lam, mu, x, tx, T) -> np.ndarray:
    """``log L`` per (draw, customer), broadcast; see the module docstring."""
    s = lam + mu
    return x * np.log(lam) - s * tx - np.log(s) + np.log(mu + lam * np.exp(-s * (T - tx)))


def loglik_grad(
    theta: np.ndarray, x: np.ndarray, tx: np.ndarray, T: np.ndarray, w: np.ndarray
) -> tuple[float, np.ndarray]:
    """Weighted log-likelihood and its gradient in ``theta = (log lam, log mu)``."""
    lam, mu = np.exp(theta)
    s = lam + mu
    d = T - tx
    e = np.exp(-s * d)
    den = mu + lam * e
    ll = x * np.log(lam) - s * tx - np.log(s) + np.log(den)
    dlam = x / lam - tx - 1.0 / s + e * (1.0 - lam * d) / den
    dmu = -tx - 1.0 / s + (1.0 - lam * d * e) / den
    return float(w @ ll), np.array([lam * (w @ dlam), mu * (w @ dmu)])


def probability_alive_now(lam, mu, x, tx, T) -> np.ndarray:
    """P(alive at ``T`` | history), broadcast over draws ``(S, 1)`` and customers ``(n,)``."""
    del x  # x only enters through t_x (an empty history has t_x = 0)
    s = lam + mu
    z = s * (T - tx)
    # 1 / (1 + e^a) with a = log(mu / s (e^z - 1)) = log(mu / s) + z + log(1 - e^-z): no
    # overflow for long lapses (a -> inf), exactly 1 at z = 0 (a = -inf)
    with np.errstate(divide="ignore"):
        a = np.log(mu / s) + z + np.log(-np.expm1(-z))
    return expit(-a)


class PoissonExponentialSpec(PurchaseSpec):
    """Poisson purchases at rate ``lam`` while alive, lifetime ``Exponential(mu)``."""

    name: ClassVar[str] = "poisson_exp"
    model_name: ClassVar[str] = "PoissonExponential"
    label: ClassVar[str] = "Poisson/Exponential"
    param_names: ClassVar[tuple[str, ...]] = ("lam", "mu")
    columns: ClassVar[tuple[str, ...]] = ("frequency", "recency", "T")

    def customer_columns(self, table: pd.DataFrame, argument: str = "rfm") -> dict[str, np.ndarray]:
        data = validate_rfm(table, argument=argument)
        return {"frequency": data.frequency, "recency": data.recency, "T": data.T}

    def new_customer_columns(self, n: int = 1) -> dict[str, np.ndarray]:
        return {c: np.zeros(n) for c in self.columns}

    def value_key(self, cols: Columns) -> np.ndarray:
        # predictions depend on the history only through T - t_x
        _, tx, T = rfm_columns(cols)
        return (T - tx)[:, None]

    def loglik(self, params: Params, cols: Columns) -> np.ndarray:
        return loglik_terms(*rates(params), *rfm_columns(cols))

    def probability_alive(self, params: Params, cols: Columns, t: np.ndarray) -> np.ndarray:
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        lam, mu = rates(params)
        pa = probability_alive_now(lam, mu, *rfm_columns(cols))
        return pa[..., None] * np.exp(-mu[..., None] * t)

    def expected_purchases(self, params: Params, cols: Columns, t: np.ndarray) -> np.ndarray:
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        lam, mu = rates(params)
        pa = probability_alive_now(lam, mu, *rfm_columns(cols))
        return pa[..., None] * (lam / mu)[..., None] * -np.expm1(-mu[..., None] * t)

    def probability_of_purchases(
        self, params: Params, cols: Columns, t: float | np.ndarray, k: np.ndarray
    ) -> np.ndarray:
        k = np.atleast_1d(np.asarray(k, dtype=np.float64))
        lam, mu = rates(params)
        pa = probability_alive_now(lam, mu, *rfm_columns(cols))[..., None]  # (S, n, 1)
        lam, mu = lam[..., None], mu[..., None]  # (S, 1, 1)
        t = np.asarray(t, dtype=np.float64)
        t = t[:, None] if t.ndim == 1 else t  # one window per customer: (n, 1)
        s = lam + mu
        dead_in = np.exp(np.log(mu / s) + k * np.log(lam / s)) * gammainc(k + 1.0, s * t)
        alive = np.exp(-mu * t + xlogy(k, lam * t) - lam * t - gammaln(k + 1.0))  # 0^0 = 1
        given_alive = dead_in + alive  # (S, 1 or n, K)
        return pa * given_alive + (1.0 - pa) * (k == 0)

    def simulate(
        self,
        params: Params,
        cols: Columns,
        horizon: float | np.ndarray,
        rng: np.random.Generator,
        batch_size: int = 2_000_000,
    ) -> Future:
        lam, mu = rates(params)
        x, tx, T = rfm_columns(cols)
        H = np.broadcast_to(np.asarray(horizon, dtype=np.float64), x.shape)
        pa = probability_alive_now(lam, mu, x, tx, T)
        di, ci = np.nonzero(rng.random(pa.shape) < pa)  # units alive at T
        life = rng.exponential(1.0 / mu[di, 0])  # remaining lifetime (memoryless)
        hb = H[ci]
        death = np.where(life < hb, life, np.inf)
        count = rng.poisson(lam[di, 0] * np.minimum(life, hb))

        def batches() -> Iterator[EventBatch]:
            buy = np.nonzero(count > 0)[0]
            bounds = np.cumsum(count[buy])
            start = 0
            while start < buy.size:
                done = bounds[start - 1] if start else 0
                end = max(start + 1, int(np.searchsorted(bounds, done + batch_size, "right")))
                units = buy[start:end]
                start = end
                nb = count[units]
                upper = np.minimum(life[units], hb[units])
                owner = np.repeat(np.arange(units.size), nb)
                times = rng.random(owner.size) * upper[owner]  # given N, times are uniform
                yield EventBatch(draw=di[units], customer=ci[units], count=nb, times=times)

        return Future(p_alive=pa, alive_draw=di, alive_customer=ci, death=death, batches=batches())
