"""The BG/NBD generative process, once: every simulated purchase in clvkit comes from here.

:func:`simulate` draws each (draw, customer) unit's latent state from its conditional
posterior given the history (``alive``, ``lam``, ``p``; for an empty history that is the
prior, so it also simulates new customers from their first purchase) and then its purchases
over a horizon. ``datasets.simulate``, the backtest's cohorts and ``customer_value(...,
method="simulate")`` all use it through :meth:`clvkit.models.bgnbd.spec.BGNBDSpec.simulate`.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from clvkit.errors import ClvkitError
from clvkit.models.bgnbd.predictions import bg_probability_alive
from clvkit.models.contract import EventBatch, Future, unit_batches

__all__ = ["UNIT_EVENTS_MAX", "simulate"]

#: Most events one (draw, customer) unit may have in the horizon (their times are held in
#: memory together): beyond it :func:`simulate` raises ``ClvkitError`` instead of running out.
UNIT_EVENTS_MAX = 20_000_000


def simulate(
    r: np.ndarray,
    alpha: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    x: np.ndarray,
    tx: np.ndarray,
    T: np.ndarray,
    horizon: float | np.ndarray,
    rng: np.random.Generator,
    batch_size: int = 2_000_000,
) -> Future:
    """One future per (draw, customer) over ``(T, T + horizon]``, exactly and without loops.

    Parameters ``(S, 1)``; customers ``(n,)``; ``horizon`` a number or ``(n,)``.

    An alive customer would make ``K0 ~ Poisson(lam H)`` purchases in the horizon ``H`` if
    immortal; the purchase after which it drops out is the ``M``-th, ``M ~ Geometric(p)``. So
    ``N = min(K0, M)`` purchases fall in the horizon. If ``M > K0`` their times are ``K0`` iid
    uniforms on ``(0, H)``; else the customer dies at ``tau = H * Beta(M, K0 - M + 1)`` (the
    M-th order statistic of ``K0`` uniforms) and the other ``M - 1`` times are iid uniform on
    ``(0, tau)``. ``lam`` is drawn only where alive and ``p`` only where a purchase falls in
    the horizon (``Future.latent`` records both per alive unit, ``p`` NaN where not drawn).
    Batches hold about ``batch_size`` purchases (more when one unit alone has more); a unit
    with more than :data:`UNIT_EVENTS_MAX` raises ``ClvkitError`` as its batch is made. For an
    empty history (``x = t_x = T = 0``) every unit is alive and this is the process of a new
    customer from its first purchase.
    """
    shape = np.broadcast_shapes(r.shape, x.shape)
    H = np.broadcast_to(np.asarray(horizon, dtype=np.float64), x.shape)
    pa = bg_probability_alive(r, alpha, a, b, x, tx, T)
    di, ci = np.nonzero(rng.random(shape) < pa)  # alive units: draw index, customer index
    lam = rng.gamma(r[di, 0] + x[ci]) / (alpha[di, 0] + T[ci])  # Gamma(r + x, alpha + T)
    k0 = rng.poisson(lam * H[ci])  # purchases in the horizon if the customer never died
    tau = np.full(di.shape, np.inf)  # death time; alive customers who buy nothing live on
    p_unit = np.full(di.shape, np.nan)  # dropout probability, where drawn

    def batches() -> Iterator[EventBatch]:
        for units in unit_batches(k0, batch_size):
            kb = k0[units]
            d_b, c_b = di[units], ci[units]
            hb = H[c_b]
            pdrop = rng.beta(a[d_b, 0], b[d_b, 0] + x[c_b])  # Beta(a, b + x) given alive
            p_unit[units] = pdrop
            mb = rng.geometric(np.maximum(pdrop, 1e-300))  # the purchase after which it drops
            died = mb <= kb
            nb = np.minimum(kb, mb)
            if nb.max() > UNIT_EVENTS_MAX:
                i = int(np.argmax(nb))
                raise ClvkitError(
                    f"a simulated customer (index {int(c_b[i])}) makes {int(nb[i]):,} purchases "
                    f"in the horizon ({float(hb[i]):g} time units): more than the "
                    f"{UNIT_EVENTS_MAX:,} events one customer may have, as its purchase rate "
                    "times the horizon is too large to simulate event by event. Suggestion: "
                    "use a shorter horizon, or the expected values (method='expected')."
                )
            tau_b = np.full(units.shape, np.inf)
            if np.any(died):
                tau_b[died] = hb[died] * rng.beta(mb[died], kb[died] - mb[died] + 1)
            tau[units] = tau_b
            owner = np.repeat(np.arange(units.size), nb)
            upper = np.where(died, tau_b, hb)
            times = rng.random(owner.size) * upper[owner]
            last = np.cumsum(nb) - 1
            times[last[died]] = tau_b[died]
            yield EventBatch(draw=d_b, customer=c_b, count=nb, times=times)

    return Future(
        p_alive=pa,
        alive_draw=di,
        alive_customer=ci,
        death=tau,
        batches=batches(),
        latent={"lam": lam, "p": p_unit},
    )
