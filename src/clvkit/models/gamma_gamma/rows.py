"""Gamma-Gamma per-row log-likelihood and gradient, compiled: the fitting kernel of covariate
models with one row per repeat customer.

Row ``i`` is the base likelihood (:func:`clvkit.models.gamma_gamma.likelihood.gg_loglik_grad`)
of ``(x, z̄)[i]`` under its own ``theta[i] = log([p, q, v])``; the numpy form is
:func:`clvkit.models.gamma_gamma.likelihood.gg_loglik_rows_grad` (tested equal). The gamma and
digamma terms depend on ``(p, q, x)`` only: while ``p`` and ``q`` stay the same from row to row
(covariates act on ``v``) they are computed once per frequency below ``XTAB``.
"""

from __future__ import annotations

import math

import numpy as np

from clvkit.inference.sampling import nb_digamma
from clvkit.utils.numba_cache import njit

__all__ = ["XTAB", "gg_rows_kernel", "gg_rows_loglik_grad"]

#: Frequencies below this have their (p, q, x) terms tabulated while p and q do not change.
XTAB = 1024


@njit(nogil=True, error_model="numpy")
def gg_rows_kernel(theta, x, mv, ll, grad):  # pragma: no cover - compiled
    """Fill ``ll[i]`` and ``grad[i]`` (in ``theta[i]``) for every row (frequency > 0)."""
    stamp = np.zeros(XTAB, dtype=np.int64)  # table entry k is valid when stamp[k] == gen
    tc = np.empty(XTAB)
    tp = np.empty(XTAB)
    tq = np.empty(XTAB)
    gen = 0
    t0 = t1 = t2 = math.nan
    p = q = v = lg_q = ps_q = math.nan
    for i in range(x.size):
        if theta[i, 0] != t0 or theta[i, 1] != t1:
            t0 = theta[i, 0]
            t1 = theta[i, 1]
            p = math.exp(t0)
            q = math.exp(t1)
            lg_q = math.lgamma(q)
            ps_q = nb_digamma(q)
            gen += 1
        if theta[i, 2] != t2:
            t2 = theta[i, 2]
            v = math.exp(t2)
        xi = x[i]
        px = p * xi
        k = int(xi)
        if k < XTAB and stamp[k] == gen:
            c = tc[k]
            dp = tp[k]
            dq = tq[k]
        else:
            ps_pq = nb_digamma(px + q)
            c = math.lgamma(px + q) - math.lgamma(px) - lg_q + math.log(xi)
            dp = xi * (ps_pq - nb_digamma(px))
            dq = ps_pq - ps_q
            if k < XTAB:
                stamp[k] = gen
                tc[k] = c
                tp[k] = dp
                tq[k] = dq
        xm = xi * mv[i]
        lxm = math.log(xm)
        lvxm = math.log(v + xm)
        ll[i] = c + q * t2 + (px - 1.0) * lxm - (px + q) * lvxm
        grad[i, 0] = p * (dp + xi * (lxm - lvxm))
        grad[i, 1] = q * (dq + t2 - lvxm)
        grad[i, 2] = q - v * (px + q) / (v + xm)


def gg_rows_loglik_grad(
    theta: np.ndarray, frequency: np.ndarray, monetary_value: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Compiled :func:`clvkit.models.gamma_gamma.likelihood.gg_loglik_rows_grad`: the
    Gamma-Gamma log-likelihood ``(m,)`` of each repeat customer under its own ``theta``
    ``(m, 3)`` (log parameters) and its gradient ``(m, 3)``."""
    theta = np.ascontiguousarray(theta, dtype=np.float64)
    x, m = (np.ascontiguousarray(v, dtype=np.float64) for v in (frequency, monetary_value))
    ll = np.empty(x.size)
    grad = np.empty((x.size, 3))
    gg_rows_kernel(theta, x, m, ll, grad)
    return ll, grad
