"""BG/NBD per-row log-likelihood and gradient, compiled: the fitting kernel of covariate models
with one row per customer (100,000 rows and more).

Row ``i`` is the base likelihood (:func:`clvkit.models.bgnbd.likelihood.bg_loglik_grad`) of the
history ``(x, t_x, T)[i]`` under its own ``theta[i] = log([r, alpha, a, b])``; the numpy form is
:func:`clvkit.models.bgnbd.likelihood.bg_loglik_rows_grad` (tested equal). Per row:

- ``x = 0``: ``log L = r log(alpha / (alpha + T))``, one log and no special function;
- ``x > 0``: the gamma-function ratios of ``A(x)`` are rising factorials,
  ``Γ(r+x)/Γ(r) · Γ(b+x)/Γ(b) · Γ(a+b)/Γ(a+b+x) = Π_k (r+k)(b+k)/(a+b+k)`` (``x`` is a whole
  number), and their digamma differences the sums of ``1/(r+k)`` etc., which the product rule
  gives without a division per purchase (``(r)_x' / (r)_x``); the log of the bracket is folded
  into the same log, so a row costs four logs and exps and no ``lgamma``/``digamma`` up to
  ``x = XMAX`` (beyond it, or if a product leaves ``[1/BIG, BIG]``, the gamma functions are
  used).

Parameters equal to the previous row's are not exponentiated again (``r`` is shared by all
rows when covariates act on ``alpha``, ``a`` and ``b``). Measured at 100,000 CDNOW-like rows
(60% without repeat purchases), one core: about 4-6 ms per call, the numpy form 40-50 ms.
"""

from __future__ import annotations

import math

import numpy as np

from clvkit.inference.sampling import nb_digamma
from clvkit.models.rising import BIG, XMAX
from clvkit.utils.numba_cache import njit

__all__ = ["bg_rows_kernel", "bg_rows_loglik_grad"]


@njit(nogil=True, error_model="numpy")
def bg_rows_kernel(theta, x, tx, T, ll, grad):  # pragma: no cover - compiled
    """Fill ``ll[i]`` and ``grad[i]`` (in ``theta[i]``) for every row; no allocation.

    A parameter equal to the previous row's is not exponentiated again (rows of one covariate
    class are adjacent, and unlinked parameters such as ``r`` are shared by all rows)."""
    t0 = t1 = t2 = t3 = math.nan
    r = al = a = b = math.nan
    for i in range(x.size):
        if theta[i, 0] != t0:
            t0 = theta[i, 0]
            r = math.exp(t0)
        if theta[i, 1] != t1:
            t1 = theta[i, 1]
            al = math.exp(t1)
        xi = x[i]
        Ti = T[i]
        if xi == 0.0:  # A(0) = r log alpha, L = A + log((alpha+T)^-r)
            q = al + Ti
            lr = math.log(al / q)
            ll[i] = r * lr
            grad[i, 0] = r * lr
            grad[i, 1] = r * Ti / q
            grad[i, 2] = 0.0
            grad[i, 3] = 0.0
            continue
        if theta[i, 2] != t2:
            t2 = theta[i, 2]
            a = math.exp(t2)
        if theta[i, 3] != t3:
            t3 = theta[i, 3]
            b = math.exp(t3)
        ab = a + b
        rx = r + xi
        qT = al + Ti
        qs = al + tx[i]
        lT = math.log(qT)
        lq = math.log(qT / qs)
        bx1 = b + xi - 1.0
        # e^(v-u) = a (qT/qs)^(r+x) / (b+x-1): the two terms' ratio, without log(b+x-1)
        g = t2 + rx * lq
        if g < 700.0:
            R = math.exp(g) / bx1
        else:
            R = math.inf
        if R <= 1.0:
            e = R
            wv = R / (1.0 + R)
            base = r * t1 - rx * lT  # r log alpha + u
            lb = 0.0
        else:
            lb = math.log(bx1)
            e = math.exp(lb - g) if R == math.inf else 1.0 / R
            wv = 1.0 / (1.0 + e)
            base = r * t1 + g - rx * lT  # r log alpha + v + log(b+x-1)
        # A(x) - r log alpha = log[(r)_x (b)_x / (a+b)_x]; the digamma differences
        # sum_k 1/(r+k) = (r)_x' / (r)_x by the product rule (no division per k)
        Pr = 1.0
        Pb = 1.0
        Pab = 1.0
        Dr = 0.0
        Db = 0.0
        Dab = 0.0
        fast = xi <= XMAX
        if fast:
            for k in range(int(xi)):
                rk = r + k
                bk = b + k
                abk = ab + k
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
                math.lgamma(rx) - math.lgamma(r) + math.lgamma(b + xi) - math.lgamma(b)
                + math.lgamma(ab) - math.lgamma(ab + xi)
            )  # fmt: skip
            dr = nb_digamma(rx) - nb_digamma(r)
            db = nb_digamma(b + xi) - nb_digamma(b)
            dab = nb_digamma(ab + xi) - nb_digamma(ab)
            ll[i] = base + lA + math.log1p(e) - lb
        wu = 1.0 - wv
        grad[i, 0] = r * (dr + t1 - lT + wv * lq)
        grad[i, 1] = r - al * rx * (wu * qs + wv * qT) / (qT * qs)
        grad[i, 2] = wv - a * dab
        grad[i, 3] = b * (db - dab - wv / bx1)


def bg_rows_loglik_grad(
    theta: np.ndarray, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Compiled :func:`clvkit.models.bgnbd.likelihood.bg_loglik_rows_grad`: the BG/NBD
    log-likelihood ``(m,)`` of each row under its own ``theta`` ``(m, 4)`` (log parameters) and
    its gradient ``(m, 4)``."""
    theta = np.ascontiguousarray(theta, dtype=np.float64)
    x, tx, t = (np.ascontiguousarray(v, dtype=np.float64) for v in (frequency, recency, T))
    ll = np.empty(x.size)
    grad = np.empty((x.size, 4))
    bg_rows_kernel(theta, x, tx, t, ll, grad)
    return ll, grad
