"""BG/BB conditional predictions (Fader, Hardie and Shang 2010), vectorised over draws ``(S, 1)``
and customers ``(n,)``.

Time is counted in opportunities after the customer's last observed one ``n``: "alive at
``n + t``" means alive at opportunity ``n + floor(t)`` (``t = 0``: alive now, at ``n``), and
the purchases in ``(n, n + t]`` are those at opportunities ``n + 1 .. n + floor(t)``.

Given alive at ``n``, the posterior of the two latent probabilities is
``p ~ Beta(alpha + x, beta + n - x)`` and ``theta ~ Beta(gamma, delta + n)``, independent, so with
``a = delta + n``:

- ``P(alive at n + k | history) = P(alive at n) B(gamma, a + k) / B(gamma, a)`` (FHS eq. 11
  for ``k = 1``);
- ``E[purchases at n+1..n+k | history] = P(alive at n) (alpha+x)/(alpha+beta+n)
  sum_{j=1}^{k} B(gamma, a+j)/B(gamma, a)``, and the sum is
  ``a/(gamma-1) [1 - Gamma(a+k+1) Gamma(a+gamma) / (Gamma(a+1) Gamma(a+gamma+k))]`` (FHS eq. 13),
  evaluated as ``a l exprel(-(gamma-1) l)`` with ``l = sum_{j=1}^{k} log1p(y_j)/y_j / (a+j)``,
  ``y_j = (gamma-1)/(a+j)``: no cancellation near ``gamma = 1`` (where it is
  ``a (psi(a+k+1) - psi(a+1))``) or for large ``a``.
- the number of purchases in ``k`` opportunities given alive is a mixture over the alive
  opportunities ``J = min(K - 1, k)`` (``K`` the opportunity of death, geometric in ``theta``)
  of beta-binomials ``BB(J; alpha + x, beta + n - x)``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, exprel, gammaln, psi

from clvkit.models.bgbb.likelihood import bgbb_terms

__all__ = [
    "DIRECT_MAX",
    "alive_now",
    "bgbb_expected_purchases",
    "bgbb_probability_alive",
    "bgbb_probability_of_purchases",
    "opportunities",
    "survival_sum",
]

#: Windows up to this many opportunities are summed term by term (exact); longer ones use the
#: Gamma-function closed form.
DIRECT_MAX = 2000


def opportunities(t: np.ndarray) -> np.ndarray:
    """Whole opportunities in windows ``t`` (``floor``, forgiving rounding just below an
    integer, e.g. a duration converted to units)."""
    return np.floor(np.asarray(t, dtype=np.float64) + 1e-9)


def alive_now(params: tuple[np.ndarray, ...], x, tx, n) -> np.ndarray:
    """P(alive at opportunity ``n`` | history), ``(S, m)``."""
    log_a, log_l = bgbb_terms(*params, x, tx, n)
    return np.exp(log_a - log_l)


def _log1p_ratio(y: np.ndarray) -> np.ndarray:
    """``log1p(y) / y``, 1 at ``y = 0``."""
    small = np.abs(y) < 1e-8
    safe = np.where(small, 1.0, y)
    return np.where(small, 1.0 - 0.5 * y, np.log1p(safe) / safe)


def survival_sum(gamma: np.ndarray, a: np.ndarray, k: np.ndarray) -> np.ndarray:
    """``sum_{j=1}^{k} B(gamma, a + j) / B(gamma, a)``, broadcast over ``gamma``, ``a`` and
    the whole numbers ``k`` (last axis of the result: one per ``k``)."""
    gamma = np.asarray(gamma, dtype=np.float64)[..., None]
    a = np.asarray(a, dtype=np.float64)[..., None]
    k = np.asarray(k, dtype=np.float64)
    g = gamma - 1.0
    shape = np.broadcast_shapes(gamma.shape, a.shape, k.shape)
    out = np.zeros(shape)
    kmax = int(k.max()) if k.size else 0
    if kmax == 0:
        return out
    if kmax <= DIRECT_MAX:
        ell = np.zeros(np.broadcast_shapes(gamma.shape, a.shape))
        for j in range(1, kmax + 1):
            aj = a + j
            ell = ell + _log1p_ratio(g / aj) / aj
            hit = k == j
            if hit.any():
                val = a * ell * exprel(-g * ell)
                out = np.where(hit, val, out)
        return out
    # long windows: the closed form
    L = gammaln(a + k + 1.0) - gammaln(a + 1.0) - gammaln(a + gamma + k) + gammaln(a + gamma)
    near = np.abs(g) < 1e-6
    gs = np.where(near, 1.0, g)
    far = -a * np.expm1(L) / gs
    one = a * (psi(a + k + 1.0) - psi(a + 1.0))
    return np.where(k == 0, 0.0, np.where(near, one, far))


def _split(params) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(v, dtype=np.float64) for v in params)


def bgbb_probability_alive(params, x, tx, n, t) -> np.ndarray:
    """P(alive at opportunity ``n + floor(t)`` | history), ``(S, m, P)``."""
    al, be, ga, de = _split(params)
    k = opportunities(np.atleast_1d(t))
    pa = alive_now((al, be, ga, de), x, tx, n)
    a = (de + n)[..., None]
    g = ga[..., None]
    return pa[..., None] * np.exp(betaln(g, a + k) - betaln(g, a))


def bgbb_expected_purchases(params, x, tx, n, t) -> np.ndarray:
    """E[purchases at opportunities ``n + 1 .. n + floor(t)`` | history], ``(S, m, P)``."""
    al, be, ga, de = _split(params)
    k = opportunities(np.atleast_1d(t))
    pa = alive_now((al, be, ga, de), x, tx, n)
    mean_p = (al + x) / (al + be + n)
    return (pa * mean_p)[..., None] * survival_sum(ga, de + n, k)


def bgbb_probability_of_purchases(params, x, tx, n, t, k) -> np.ndarray:
    """P(exactly ``k`` purchases at opportunities ``n + 1 .. n + floor(t)`` | history),
    ``(S, m, K)``; ``t`` one window or one per customer ``(m,)``."""
    al, be, ga, de = _split(params)
    k = np.atleast_1d(np.asarray(k, dtype=np.float64))
    m = np.broadcast_to(opportunities(t), x.shape)[:, None]  # (m, 1) windows
    pa = alive_now((al, be, ga, de), x, tx, n)[..., None]  # (S, m, 1)
    a1 = (al + x)[..., None]  # posterior of p given alive: Beta(a1, b1)
    b1 = (be + (n - x))[..., None]
    a = (de + n)[..., None]  # theta given alive: Beta(gamma, a)
    g = ga[..., None]
    jmax = int(m.max()) if m.size else 0
    shape = np.broadcast_shapes(pa.shape, k.shape)
    given = np.zeros(shape)
    surv = np.ones(np.broadcast_shapes(a.shape, g.shape))  # E[(1-theta)^j | alive], j = 0
    lb0 = betaln(a1, b1)
    for j in range(jmax + 1):
        # P(J = j): dies before opportunity n + j + 1 (j < window), or survives the window
        pj = np.where(j < m, surv * g / (a + g + j), np.where(j == m, surv, 0.0))
        ok = k <= j
        kk = np.where(ok, k, 0.0)
        log_bb = (
            gammaln(j + 1.0) - gammaln(kk + 1.0) - gammaln(j - kk + 1.0)
            + betaln(a1 + kk, b1 + j - kk) - lb0
        )  # fmt: skip
        given = given + pj * np.where(ok, np.exp(log_bb), 0.0)
        surv = surv * (a + j) / (a + g + j)
    return pa * given + (1.0 - pa) * (k == 0)
