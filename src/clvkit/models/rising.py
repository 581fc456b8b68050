"""Rising factorials for the per-row kernels (the covariate models' fitting kernels, one row per
customer): Gamma-function ratios with a whole-number offset, ``Γ(z+j) / Γ(z) = (z)_j``, as
products, and their digamma differences ``ψ(z+j) - ψ(z) = Σ_{k<j} 1/(z+k)`` by the product rule
(no division per factor), instead of ``lgamma``/``digamma`` calls that cost far more and lose
digits to cancellation for large ``z``. A kernel uses them up to ``j = XMAX`` while every
product stays within ``[1/BIG, BIG]``, else falls back to the gamma functions.

:func:`beta_geometric_rows` is the one per-row kernel of BG/NBD and MBG/NBD (their likelihoods
differ only in one more chance to drop out); their ``rows.py`` call it.
"""

from __future__ import annotations

import math

from clvkit.inference.sampling import nb_digamma
from clvkit.utils.numba_cache import njit

__all__ = ["BIG", "XMAX", "beta_geometric_rows", "rising_factorial"]

#: Offsets up to this use the products (above: lgamma and digamma).
XMAX = 64.0
#: Products must stay within [1/BIG, BIG], else the kernel falls back to the gamma functions.
BIG = 1e280


@njit(nogil=True, error_model="numpy")
def rising_factorial(z, j, out):  # pragma: no cover - compiled
    """``out[0] = (z)_j`` and ``out[1] = Σ_{k<j} 1/(z+k)`` (``ψ(z+j) - ψ(z)``); returns False
    if the product or its derivative leaves ``[1/BIG, BIG]``."""
    P = 1.0
    D = 0.0
    for k in range(int(j)):
        D = D * (z + k) + P
        P *= z + k
    out[0] = P
    out[1] = D / P
    return P < BIG and P > 1.0 / BIG and D < BIG


@njit(nogil=True, error_model="numpy")
def beta_geometric_rows(theta, x, tx, T, ll, grad, extra):  # pragma: no cover - compiled
    """The per-row likelihood of the NBD purchase process with beta-geometric dropout, shared
    by BG/NBD (``extra = 0``: a chance to drop out after each repeat purchase) and MBG/NBD
    (``extra = 1``: also one at the first purchase). Fills ``ll[i]`` and ``grad[i]`` (in
    ``theta[i] = log([r, alpha, a, b])``) for every row; no allocation.

    With ``d = x + extra - 1`` dropout chances before the last purchase (``b + d`` below), the
    gamma-function ratios ``Γ(r+x)/Γ(r) · Γ(b+x+extra)/Γ(b) · Γ(a+b)/Γ(a+b+x+extra)`` are
    rising factorials and their digamma differences sums of reciprocals, by the product rule
    (no division per purchase), up to ``x = XMAX``; beyond it, or when a product leaves
    ``[1/BIG, BIG]``, the gamma functions are used. A parameter equal to the previous row's is
    not exponentiated again (rows of one covariate class are adjacent, and unlinked parameters
    such as ``r`` are shared by all rows)."""
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
        if xi == 0.0 and extra == 0:  # BG/NBD: A(0) = r log alpha, L = A + log((alpha+T)^-r)
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
        ti = tx[i] if xi > 0.0 else 0.0
        ab = a + b
        rx = r + xi
        qT = al + Ti
        qs = al + ti
        lT = math.log(qT)
        if extra and ti == 0.0:
            lq = lT - t1  # qs = alpha when t_x = 0
        else:
            lq = math.log(qT / qs)
        bd = b + xi if extra else b + xi - 1.0
        # e^(v-u) = a (qT/qs)^(r+x) / (b+d): the two terms' ratio, without log(b+d)
        g = t2 + rx * lq
        if g < 700.0:
            R = math.exp(g) / bd
        else:
            R = math.inf
        if R <= 1.0:
            e = R
            wv = R / (1.0 + R)
            base = r * t1 - rx * lT  # r log alpha + u
            lb = 0.0
        else:
            lb = math.log(bd)
            e = math.exp(lb - g) if R == math.inf else 1.0 / R
            wv = 1.0 / (1.0 + e)
            base = r * t1 + g - rx * lT  # r log alpha + v + log(b+d)
        # A(x) - r log alpha = log[(r)_x (b)_(x+extra) / (a+b)_(x+extra)]; the first factor
        # of the extra chance is the loop's start
        Pr = 1.0
        Dr = 0.0
        if extra:
            Pb = b
            Pab = ab
            Db = 1.0
            Dab = 1.0
        else:
            Pb = 1.0
            Pab = 1.0
            Db = 0.0
            Dab = 0.0
        fast = xi <= XMAX
        if fast:
            for k in range(int(xi)):
                rk = r + k
                bk = b + k + extra
                abk = ab + k + extra
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
                math.lgamma(rx) - math.lgamma(r) + math.lgamma(b + xi + extra) - math.lgamma(b)
                + math.lgamma(ab) - math.lgamma(ab + xi + extra)
            )  # fmt: skip
            dr = nb_digamma(rx) - nb_digamma(r)
            db = nb_digamma(b + xi + extra) - nb_digamma(b)
            dab = nb_digamma(ab + xi + extra) - nb_digamma(ab)
            ll[i] = base + lA + math.log1p(e) - lb
        wu = 1.0 - wv
        grad[i, 0] = r * (dr + t1 - lT + wv * lq)
        grad[i, 1] = r - al * rx * (wu * qs + wv * qT) / (qT * qs)
        grad[i, 2] = wv - a * dab
        grad[i, 3] = b * (db - dab - wv / bd)
