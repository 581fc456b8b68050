"""The Pareto/NBD generative process, once: every simulated Pareto/NBD purchase comes from here.

Each (draw, customer) unit is alive at ``T`` with P(alive at T | history); given alive, its
purchase rate is ``λ ~ Gamma(r + x, α + T)`` and its dropout rate ``μ ~ Gamma(s, β + T)``
(independent), its remaining life ``Exponential(μ)`` and its purchases a Poisson process of
rate ``λ`` until death or the horizon (``Poisson(λ min(life, H))`` events, uniform on
``(0, min(life, H))``). For an empty history at age 0 this is a new customer from its first
purchase. ``datasets.simulate``, the backtest and ``customer_value(..., method="simulate")``
use it through :meth:`clvkit.models.pnbd.spec.ParetoNBDSpec.simulate`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from clvkit.errors import ClvkitError
from clvkit.models.contract import EventBatch, Future, unit_batches
from clvkit.models.pnbd.predictions import log_alive

__all__ = ["UNIT_EVENTS_MAX", "simulate"]

#: Most events one (draw, customer) unit may have in the horizon (held in memory together).
UNIT_EVENTS_MAX = 20_000_000


def simulate(
    r: np.ndarray,
    alpha: np.ndarray,
    s: np.ndarray,
    beta: np.ndarray,
    x: np.ndarray,
    tx: np.ndarray,
    T: np.ndarray,
    horizon: float | np.ndarray,
    rng: np.random.Generator,
    batch_size: int = 2_000_000,
) -> Future:
    """One future per (draw, customer) over ``(T, T + horizon]``; parameters ``(S, 1)``,
    customers ``(n,)``, ``horizon`` a number or ``(n,)``. Batches hold about ``batch_size``
    events (more when one unit alone has more); ``Future.latent`` has ``lam`` and ``mu`` per
    alive unit."""
    H = np.broadcast_to(np.asarray(horizon, dtype=np.float64), x.shape)
    pa = np.exp(log_alive(r, alpha, s, beta, x, tx, T))
    di, ci = np.nonzero(rng.random(pa.shape) < pa)  # units alive at T
    lam = rng.gamma(r[di, 0] + x[ci]) / (alpha[di, 0] + T[ci])
    mu = rng.gamma(s[di, 0]) / (beta[di, 0] + T[ci])
    with np.errstate(divide="ignore"):
        life = rng.standard_exponential(di.size) / mu  # inf where mu underflows to 0
    hb = H[ci]
    death = np.where(life < hb, life, np.inf)
    span = np.minimum(life, hb)
    count = rng.poisson(lam * span)

    def batches() -> Iterator[EventBatch]:
        for units in unit_batches(count, batch_size):
            nb = count[units]
            if nb.max() > UNIT_EVENTS_MAX:
                i = int(np.argmax(nb))
                raise ClvkitError(
                    f"a simulated customer (index {int(ci[units][i])}) makes {int(nb[i]):,} "
                    f"purchases in the horizon ({float(hb[units][i]):g} time units): more than "
                    f"the {UNIT_EVENTS_MAX:,} events one customer may have. Suggestion: use a "
                    "shorter horizon, or the expected values (method='expected')."
                )
            owner = np.repeat(np.arange(units.size), nb)
            times = rng.random(owner.size) * span[units][owner]  # given N, uniform times
            yield EventBatch(draw=di[units], customer=ci[units], count=nb, times=times)

    return Future(
        p_alive=pa,
        alive_draw=di,
        alive_customer=ci,
        death=death,
        batches=batches(),
        latent={"lam": lam, "mu": mu},
    )
