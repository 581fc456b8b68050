"""Pareto/NBD per-row log-likelihood and gradient, compiled with tabulated series: the fitting
kernel of covariate models with one row per customer.

Row ``i`` is the base likelihood (:func:`clvkit.models.pnbd.likelihood.pnbd_loglik_grad`) of the
history ``(x, t_x, T)[i]`` under its own ``theta[i] = log([r, alpha, s, beta])``; the direct
form (every row by :func:`clvkit.models.pnbd.numerics.pnbd_row`) is
:func:`clvkit.models.pnbd.likelihood.pnbd_loglik_rows_grad` (tested equal).

Covariates act on ``alpha`` and ``beta``; ``r`` and ``s`` are usually shared by all rows. The
series coefficients of the bracket's two integrals, ``(Q)_n / (C)_n`` and their derivatives
(:func:`clvkit.models.pnbd.numerics.k_table`), depend on ``(x, r, s)`` and on which of ``A, B``
is smaller, not on ``alpha`` and ``beta``, so while ``r`` and ``s`` stay the same from row to
row they are tabulated once per frequency below ``XT`` (``NT`` terms) and each row is a Horner
sum in its own ``ζ`` without a division per term; a row whose series needs more terms, or
whose ``ζ > ZMAX``, uses :func:`clvkit.models.pnbd.numerics.log_k` (series or quadrature).
"""

from __future__ import annotations

import math

import numpy as np

from clvkit.inference.sampling import nb_digamma
from clvkit.models.pnbd.numerics import TOL, ZMAX, log_k
from clvkit.utils.numba_cache import njit

__all__ = ["NT", "XT", "pnbd_rows_loglik_grad", "pnbd_rows_tab_kernel"]

#: Frequencies below this get coefficient tables (per call, while r and s do not change).
XT = 256
#: Terms per table (a row needing more uses log_k).
NT = 96


@njit(nogil=True, error_model="numpy")
def _coefficients(P, Q, c1, tab):  # pragma: no cover - compiled
    """``tab[0..4, n]``: ``a_n = (Q)_n / (C)_n`` (``C = c1 + 1``), ``a_n`` times the
    derivative sums in ``P`` and ``Q``, the ``ζ``-derivative coefficients and the tail bounds
    (as :func:`clvkit.models.pnbd.numerics.k_table` tabulates them)."""
    C = c1 + 1.0
    a = 1.0
    hp = 0.0
    hq = 0.0
    for n in range(NT):
        ic = 1.0 / (C + n)
        ratio = (Q + n) * ic
        tab[0, n] = a
        tab[1, n] = a * hp
        tab[2, n] = a * hq
        tab[3, n] = (n + 1.0) * a * ratio
        tab[4, n] = a * (n + 2.0) * (1.0 + hq - hp)
        hp -= ic
        hq += P * ic / (Q + n)
        a *= ratio


@njit(nogil=True, error_model="numpy")
def _log_k_tab(p, q, c1, lc1, A, B, lA, lB, gap, tabs, slot, d):  # pragma: no cover
    """``log K(p, q)`` at ``(A, B)`` (``gap = |B - A|``) from the table of ``slot`` (side
    ``A <= B``) or ``slot + 1`` (``A > B``); ``d`` gets d log K / d(p, q, A, B). Returns NaN
    when the table is too short for this ``ζ``."""
    swap = A > B
    if swap:
        P, Q, S, L, lS, lL = q, p, B, A, lB, lA
        tab = tabs[slot + 1]
    else:
        P, Q, S, L, lS, lL = p, q, A, B, lA, lB
        tab = tabs[slot]
    z = gap / L
    tol = TOL * (1.0 - z) * (1.0 - z)
    F = 1.0
    FP = 0.0
    FQ = 0.0
    FZ = tab[3, 0]
    zn = 1.0
    done = False
    for i in range(1, NT):
        zn *= z
        F += tab[0, i] * zn
        FP += tab[1, i] * zn
        FQ += tab[2, i] * zn
        FZ += tab[3, i] * zn
        if tab[4, i] * zn <= tol:
            done = True
            break
    if not done:
        return math.nan
    iF = 1.0 / F
    dz = FZ * iF
    dP = -lS - 1.0 / c1 + FP * iF
    dQ = -lL - 1.0 / c1 + FQ * iF
    dS = (1.0 - P) / S - dz / L
    dL = -Q / L + dz * S / (L * L)
    if swap:
        d[0], d[1], d[2], d[3] = dQ, dP, dL, dS
    else:
        d[0], d[1], d[2], d[3] = dP, dQ, dS, dL
    return (1.0 - P) * lS - Q * lL - lc1 + math.log(F)


@njit(nogil=True, error_model="numpy")
def pnbd_rows_tab_kernel(theta, x, tx, T, ll, grad):  # pragma: no cover - compiled
    """Fill ``ll[i]`` and ``grad[i]`` (in ``theta[i]``) for every row; tables and work arrays
    are allocated once per call."""
    tabs = np.empty((XT * 4, 5, NT))  # (x, first/second term, side)
    tstamp = np.zeros(XT * 4, dtype=np.int64)
    xs = np.empty((XT, 4))  # lnG(m) - lnG(r), psi(m) - psi(r), log m, log(m + s)
    xstamp = np.zeros(XT, dtype=np.int64)
    d1 = np.empty(4)
    d2 = np.empty(4)
    gen = 0
    t0 = t1 = t2 = t3 = math.nan
    r = al = s = be = ls = lg_r = ps_r = math.nan
    for i in range(x.size):
        if theta[i, 0] != t0 or theta[i, 2] != t2:
            t0 = theta[i, 0]
            t2 = theta[i, 2]
            r = math.exp(t0)
            s = math.exp(t2)
            ls = math.log(s)
            lg_r = math.lgamma(r)
            ps_r = nb_digamma(r)
            gen += 1
        if theta[i, 1] != t1:
            t1 = theta[i, 1]
            al = math.exp(t1)
        if theta[i, 3] != t3:
            t3 = theta[i, 3]
            be = math.exp(t3)
        la = t1  # log alpha
        lb = t3
        xi = x[i]
        k = int(xi)
        m = r + xi
        c1 = m + s
        if k < XT and xstamp[k] == gen:
            lgd = xs[k, 0]
            psd = xs[k, 1]
            lm = xs[k, 2]
            lc1 = xs[k, 3]
        else:
            lgd = math.lgamma(m) - lg_r
            psd = nb_digamma(m) - ps_r
            lm = math.log(m)
            lc1 = math.log(c1)
            if k < XT:
                xstamp[k] = gen
                xs[k, 0] = lgd
                xs[k, 1] = psd
                xs[k, 2] = lm
                xs[k, 3] = lc1
        ti = tx[i]
        Ti = T[i]
        A1 = al + ti
        B1 = be + ti
        A2 = al + Ti
        B2 = be + Ti
        if ti == 0.0:
            lA1 = la
            lB1 = lb
        else:
            lA1 = math.log(A1)
            lB1 = math.log(B1)
        lA2 = math.log(A2)
        lB2 = math.log(B2)
        gap = abs(be - al)
        big = max(al, be)
        l1 = math.nan
        l2 = math.nan
        if k < XT:
            slot = 4 * k
            if tstamp[slot] != gen:  # first term K(m, s+1), both sides
                _coefficients(m, s + 1.0, c1, tabs[slot])
                _coefficients(s + 1.0, m, c1, tabs[slot + 1])
                tstamp[slot] = gen
            if tstamp[slot + 2] != gen:  # second term K(m+1, s), both sides
                _coefficients(m + 1.0, s, c1, tabs[slot + 2])
                _coefficients(s, m + 1.0, c1, tabs[slot + 3])
                tstamp[slot + 2] = gen
            if gap / (big + ti) <= ZMAX:
                l1 = _log_k_tab(m, s + 1.0, c1, lc1, A1, B1, lA1, lB1, gap, tabs, slot, d1)
            if gap / (big + Ti) <= ZMAX:
                l2 = _log_k_tab(m + 1.0, s, c1, lc1, A2, B2, lA2, lB2, gap, tabs, slot + 2, d2)
        if math.isnan(l1):
            l1 = log_k(m, s + 1.0, c1, A1, B1, lA1, lB1, lc1, d1, True)
        if math.isnan(l2):
            l2 = log_k(m + 1.0, s, c1, A2, B2, lA2, lB2, lc1, d2, True)
        u1 = ls + l1
        u2 = lm + l2
        top = max(u1, u2)
        e1 = math.exp(u1 - top)
        e2 = math.exp(u2 - top)
        tot = e1 + e2
        w1 = e1 / tot
        w2 = e2 / tot
        ll[i] = lgd + r * la + s * lb + top + math.log(tot)
        grad[i, 0] = r * (psd + la + w1 * d1[0] + w2 * (1.0 / m + d2[0]))
        grad[i, 1] = al * (r / al + w1 * d1[2] + w2 * d2[2])
        grad[i, 2] = s * (lb + w1 * (1.0 / s + d1[1]) + w2 * d2[1])
        grad[i, 3] = be * (s / be + w1 * d1[3] + w2 * d2[3])


def pnbd_rows_loglik_grad(
    theta: np.ndarray, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Compiled, tabulated :func:`clvkit.models.pnbd.likelihood.pnbd_loglik_rows_grad`: the
    Pareto/NBD log-likelihood ``(m,)`` of each row under its own ``theta`` ``(m, 4)`` (log
    parameters) and its gradient ``(m, 4)``."""
    theta = np.ascontiguousarray(theta, dtype=np.float64)
    x, tx, t = (np.ascontiguousarray(v, dtype=np.float64) for v in (frequency, recency, T))
    ll = np.empty(x.size)
    grad = np.empty((x.size, 4))
    pnbd_rows_tab_kernel(theta, x, tx, t, ll, grad)
    return ll, grad
