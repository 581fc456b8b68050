"""MBG/NBD per-row log-likelihood and gradient, compiled: the fitting kernel of covariate models
with one row per customer.

Row ``i`` is the base likelihood (:func:`clvkit.models.mbgnbd.likelihood.mbg_loglik_grad`) of
the history ``(x, t_x, T)[i]`` under its own ``theta[i] = log([r, alpha, a, b])``; the numpy
form is :func:`clvkit.models.mbgnbd.likelihood.mbg_loglik_rows_grad` (tested equal). As in
:mod:`clvkit.models.bgnbd.rows`, the gamma-function ratios of ``A(x)`` are rising factorials
(``Γ(r+x)/Γ(r) · Γ(b+x+1)/Γ(b) · Γ(a+b)/Γ(a+b+x+1)``) and their digamma differences sums of
reciprocals, up to ``x = XMAX``.
"""

from __future__ import annotations

import math

import numpy as np

from clvkit.inference.sampling import nb_digamma
from clvkit.models.rising import BIG, XMAX
from clvkit.utils.numba_cache import njit

__all__ = ["mbg_rows_kernel", "mbg_rows_loglik_grad"]


@njit(nogil=True, error_model="numpy")
def mbg_rows_kernel(theta, x, tx, T, ll, grad):  # pragma: no cover - compiled
    """Fill ``ll[i]`` and ``grad[i]`` (in ``theta[i]``) for every row; no allocation. A
    parameter equal to the previous row's is not exponentiated again."""
    t0 = t1 = t2 = t3 = math.nan
    r = al = a = b = math.nan
    for i in range(x.size):
        if theta[i, 0] != t0:
            t0 = theta[i, 0]
            r = math.exp(t0)
        if theta[i, 1] != t1:
            t1 = theta[i, 1]
            al = math.exp(t1)
        if theta[i, 2] != t2:
            t2 = theta[i, 2]
            a = math.exp(t2)
        if theta[i, 3] != t3:
            t3 = theta[i, 3]
            b = math.exp(t3)
        xi = x[i]
        Ti = T[i]
        ti = tx[i] if xi > 0.0 else 0.0
        ab = a + b
        rx = r + xi
        qT = al + Ti
        qs = al + ti
        lT = math.log(qT)
        lq = lT - t1 if ti == 0.0 else math.log(qT / qs)  # qs = alpha when t_x = 0
        bx = b + xi
        # e^(v-u) = a (qT/qs)^(r+x) / (b+x): the two terms' ratio, without log(b+x)
        g = t2 + rx * lq
        R = math.exp(g) / bx if g < 700.0 else math.inf
        if R <= 1.0:
            e = R
            wv = R / (1.0 + R)
            base = r * t1 - rx * lT  # r log alpha + u
            lb = 0.0
        else:
            lb = math.log(bx)
            e = math.exp(lb - g) if R == math.inf else 1.0 / R
            wv = 1.0 / (1.0 + e)
            base = r * t1 + g - rx * lT  # r log alpha + v + log(b+x)
        # A(x) - r log alpha = log[(r)_x (b)_(x+1) / (a+b)_(x+1)]; the digamma differences
        # by the product rule, as in clvkit.models.bgnbd.rows (no division per k)
        Pr = 1.0
        Pb = b
        Pab = ab
        Dr = 0.0
        Db = 1.0
        Dab = 1.0
        fast = xi <= XMAX
        if fast:
            for k in range(int(xi)):
                rk = r + k
                bk = b + k + 1.0
                abk = ab + k + 1.0
                Dr = Dr * rk + Pr
                Db = Db * bk + Pb
                Dab = Dab * abk + Pab
                Pr *= rk
                Pb *= bk
                Pab *= abk
            fast = (
                Pr * Pb < BIG and Pr * Pb > 1.0 / BIG and Pab < BIG
                and Dr < BIG and Db < BIG and Dab < BIG
                and Pr > 1.0 / BIG and Pb > 1.0 / BIG
            )  # fmt: skip
        if fast:
            dr = Dr / Pr
            db = Db / Pb
            dab = Dab / Pab
            ll[i] = base + math.log(Pr * Pb * (1.0 + e) / Pab) - lb
        else:
            lA = (
                math.lgamma(rx) - math.lgamma(r) + math.lgamma(bx + 1.0) - math.lgamma(b)
                + math.lgamma(ab) - math.lgamma(ab + xi + 1.0)
            )  # fmt: skip
            dr = nb_digamma(rx) - nb_digamma(r)
            db = nb_digamma(bx + 1.0) - nb_digamma(b)
            dab = nb_digamma(ab + xi + 1.0) - nb_digamma(ab)
            ll[i] = base + lA + math.log1p(e) - lb
        wu = 1.0 - wv
        grad[i, 0] = r * (dr + t1 - lT + wv * lq)
        grad[i, 1] = r - al * rx * (wu * qs + wv * qT) / (qT * qs)
        grad[i, 2] = wv - a * dab
        grad[i, 3] = b * (db - dab - wv / bx)


def mbg_rows_loglik_grad(
    theta: np.ndarray, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Compiled :func:`clvkit.models.mbgnbd.likelihood.mbg_loglik_rows_grad`: the MBG/NBD
    log-likelihood ``(m,)`` of each row under its own ``theta`` ``(m, 4)`` (log parameters) and
    its gradient ``(m, 4)``."""
    theta = np.ascontiguousarray(theta, dtype=np.float64)
    x, tx, t = (np.ascontiguousarray(v, dtype=np.float64) for v in (frequency, recency, T))
    ll = np.empty(x.size)
    grad = np.empty((x.size, 4))
    mbg_rows_kernel(theta, x, tx, t, ll, grad)
    return ll, grad
