"""The BG/BB generative process, once: every simulated BG/BB purchase in clvkit comes from here
(``datasets.simulate``-style new customers, the backtest's predictive samples and
``customer_value(..., method="simulate")`` reach it through
:meth:`clvkit.models.bgbb.spec.BGBBSpec.simulate`).

Each (draw, customer) unit is alive at its opportunity ``n`` with P(alive | history); an alive
unit draws ``p ~ Beta(alpha + x, beta + n - x)`` and ``theta ~ Beta(gamma, delta + n)``, dies
before opportunity ``n + K`` with ``K ~ Geometric(theta)`` (so its death time after ``n`` is
``K``, ``inf`` beyond the horizon), and buys with probability ``p`` at each opportunity
``n + 1 .. n + min(K - 1, floor(H))`` (event times are those opportunity numbers).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from clvkit.models.bgbb.predictions import alive_now, opportunities
from clvkit.models.contract import EventBatch, Future, unit_batches

__all__ = ["simulate"]


def simulate(
    alpha: np.ndarray,
    beta: np.ndarray,
    gamma: np.ndarray,
    delta: np.ndarray,
    x: np.ndarray,
    tx: np.ndarray,
    n: np.ndarray,
    horizon: float | np.ndarray,
    rng: np.random.Generator,
    batch_size: int = 2_000_000,
) -> Future:
    """One future per (draw, customer) over opportunities ``n + 1 .. n + floor(horizon)``.

    Parameters ``(S, 1)``; customers ``(m,)``; ``horizon`` a number or ``(m,)``. Batches hold
    at most about ``batch_size`` opportunities of alive units (so at most that many events).
    ``Future.latent`` records ``p`` and ``theta`` per alive unit.
    """
    H = np.broadcast_to(opportunities(horizon), x.shape)
    pa = alive_now((alpha, beta, gamma, delta), x, tx, n)
    di, ci = np.nonzero(rng.random(pa.shape) < pa)  # units alive at n
    p = rng.beta(alpha[di, 0] + x[ci], beta[di, 0] + (n[ci] - x[ci]))
    theta = rng.beta(gamma[di, 0], delta[di, 0] + n[ci])
    K = rng.geometric(np.maximum(theta, 1e-300)).astype(np.float64)  # dies before n + K
    hb = H[ci]
    death = np.where(K <= hb, K, np.inf)
    alive_opps = np.minimum(K - 1.0, hb).astype(np.int64)  # opportunities it is alive at

    def batches() -> Iterator[EventBatch]:
        for sel in unit_batches(alive_opps, batch_size):
            J = alive_opps[sel]
            owner = np.repeat(np.arange(sel.size), J)
            first = np.repeat(np.cumsum(J) - J, J)
            opp = (np.arange(owner.size) - first + 1).astype(np.float64)  # 1..J per unit
            buy = rng.random(owner.size) < p[sel][owner]
            count = np.bincount(owner[buy], minlength=sel.size)
            yield EventBatch(draw=di[sel], customer=ci[sel], count=count, times=opp[buy])

    return Future(
        p_alive=pa,
        alive_draw=di,
        alive_customer=ci,
        death=death,
        batches=batches(),
        latent={"p": p, "theta": theta},
    )
