"""sBG per-row log-likelihood and gradient, compiled: the fitting kernel of covariate models
with one row per subscriber.

Row ``i`` is the base likelihood (:func:`clvkit.models.sbg.likelihood.sbg_loglik_grad`) of
``(renewals, churned)[i]`` under its own ``theta[i] = log([alpha, beta])``; the numpy form is
:func:`clvkit.models.sbg.likelihood.sbg_loglik_rows_grad` (tested equal). With ``n`` renewals
and ``c = 1`` if churned, the Beta-function ratio is a ratio of rising factorials,
``B(a+c, b+n) / B(a, b) = a^c (b)_n / (a+b)_(n+c)``, and the digamma differences of its gradient
sums of reciprocals (by the product rule), up to ``n = XMAX``; beyond, lgamma and digamma.
"""

from __future__ import annotations

import math

import numpy as np

from clvkit.inference.sampling import nb_digamma
from clvkit.models.rising import BIG, XMAX
from clvkit.utils.numba_cache import njit

__all__ = ["sbg_rows_kernel", "sbg_rows_loglik_grad"]


@njit(nogil=True, error_model="numpy")
def sbg_rows_kernel(theta, renewals, churned, ll, grad):  # pragma: no cover - compiled
    """Fill ``ll[i]`` and ``grad[i]`` (in ``theta[i]``) for every row; no allocation."""
    t0 = t1 = math.nan
    a = b = math.nan
    for i in range(renewals.size):
        if theta[i, 0] != t0:
            t0 = theta[i, 0]
            a = math.exp(t0)
        if theta[i, 1] != t1:
            t1 = theta[i, 1]
            b = math.exp(t1)
        n = renewals[i]
        c = 1.0 if churned[i] > 0.0 else 0.0
        ab = a + b
        fast = n <= XMAX
        if fast:
            Pb = 1.0
            Pab = 1.0
            Db = 0.0
            Dab = 0.0
            for k in range(int(n)):
                bk = b + k
                abk = ab + k
                Db = Db * bk + Pb
                Dab = Dab * abk + Pab
                Pb *= bk
                Pab *= abk
            if c > 0.0:
                abk = ab + n
                Dab = Dab * abk + Pab
                Pab *= abk
            fast = Pb < BIG and Pb > 1.0 / BIG and Pab < BIG and Db < BIG and Dab < BIG
        if fast:
            db = Db / Pb
            dab = Dab / Pab
            ll[i] = c * t0 + math.log(Pb / Pab)
        else:
            ll[i] = (
                c * t0 + math.lgamma(b + n) - math.lgamma(b)
                + math.lgamma(ab) - math.lgamma(ab + n + c)
            )  # fmt: skip
            db = nb_digamma(b + n) - nb_digamma(b)
            dab = nb_digamma(ab + n + c) - nb_digamma(ab)
        grad[i, 0] = c - a * dab
        grad[i, 1] = b * (db - dab)


def sbg_rows_loglik_grad(
    theta: np.ndarray, renewals: np.ndarray, churned: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Compiled :func:`clvkit.models.sbg.likelihood.sbg_loglik_rows_grad`: the sBG
    log-likelihood ``(m,)`` of each row under its own ``theta`` ``(m, 2)`` (log parameters) and
    its gradient ``(m, 2)``."""
    theta = np.ascontiguousarray(theta, dtype=np.float64)
    n, c = (np.ascontiguousarray(v, dtype=np.float64) for v in (renewals, churned))
    ll = np.empty(n.size)
    grad = np.empty((n.size, 2))
    sbg_rows_kernel(theta, n, c, ll, grad)
    return ll, grad
