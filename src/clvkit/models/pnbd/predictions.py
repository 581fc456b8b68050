"""Pareto/NBD predictions given a history, on ``(S, 1)`` draws and ``(n,)`` customers.

Given alive at ``T`` the future is a new customer's with ``(r + x, α + T, s, β + T)``
(the posterior of ``λ`` is ``Gamma(r + x, α + T)``, of ``μ`` is ``Gamma(s, β + T)``,
independent). With ``B = β + T`` and ``L = log(1 + t / B)``:

- ``P(alive at T + t) = P(alive at T) (B / (B + t))^s = P(alive at T) e^{-s L}``;
- ``E[purchases in (T, T + t]] = P(alive at T) (r + x) / (α + T) · B (1 - e^{-(s-1) L}) /
  (s - 1)``, written ``B L g((s - 1) L)`` with ``g(z) = -expm1(-z) / z`` (``g(0) = 1``), so
  ``s`` near 1 is stable;
- ``P(k purchases) = (1 - PA) [k = 0] + PA P_new(k)``, ``P_new(k) = (B/(B+t))^s NB_k(t) +
  ∫_0^t s B^s (B+u)^(-s-1) NB_k(u) du`` with ``NB_k(u)`` the Gamma-Poisson pmf at exposure
  ``u`` (``NB(r + x, (α + T) / (α + T + u))``): composite Gauss-Legendre over ``[0, u0]`` and
  then panels of at most :data:`PANEL` in ``log u`` up to ``t`` (8-point rules; 1e-11 against
  mpmath).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln

from clvkit.models.pnbd.likelihood import pair_arrays
from clvkit.models.pnbd.numerics import k_table
from clvkit.utils.numba_cache import njit

__all__ = [
    "PANEL",
    "expected_factor",
    "log_alive",
    "pnbd_probability_of_purchases",
    "probability_new",
]

#: Largest panel of the P(k) quadrature in ``log u`` (smaller for concentrated pmfs).
PANEL = 1.0
_x, _w = np.polynomial.legendre.leggauss(8)
GL_X = 0.5 * (_x + 1.0)  # the P(k) quadrature's 8-point Gauss-Legendre rule on [0, 1]
GL_W = 0.5 * _w
#: Panels are at most ``PANEL_SCALE / sqrt(1 + m k / (m + k))`` wide (the pmf's width in log u).
PANEL_SCALE = 2.0


@njit(nogil=True, error_model="numpy")
def _log_alive(
    r, alpha, s, beta, xv, q1x, u1, q1t, q2x, u2, q2t, i1, i2, out
):  # pragma: no cover - compiled
    """log P(alive at T) per (draw, row), the bracket's terms once per pair by
    :func:`clvkit.models.pnbd.numerics.k_table`; exactly 0 for an empty history at age 0."""
    n1 = q1x.size
    n2 = q2x.size
    d1 = np.empty((n1, 4))
    d2 = np.empty((n2, 4))
    l1 = np.empty(n1)
    l2 = np.empty(n2)
    lc = np.empty(xv.size)
    lA1 = np.empty(u1.size)
    lB1 = np.empty(u1.size)
    lA2 = np.empty(u2.size)
    lB2 = np.empty(u2.size)
    for i in range(out.shape[0]):
        ri = r[i]
        ai = alpha[i]
        si = s[i]
        bi = beta[i]
        for k in range(xv.size):
            lc[k] = math.log(ri + xv[k] + si)
        for k in range(u1.size):
            lA1[k] = math.log(ai + u1[k])
            lB1[k] = math.log(bi + u1[k])
        for k in range(u2.size):
            lA2[k] = math.log(ai + u2[k])
            lB2[k] = math.log(bi + u2[k])
        k_table(ri, ai, si, bi, False, xv, lc, q1x, u1, q1t, lA1, lB1, l1, d1, False)
        k_table(ri, ai, si, bi, True, xv, lc, q2x, u2, q2t, lA2, lB2, l2, d2, False)
        ls = math.log(si)
        for j in range(out.shape[1]):
            b = i2[j]
            kt = q2t[b]
            if u2[kt] <= 0.0:
                out[i, j] = 0.0
                continue
            m = ri + xv[q2x[b]]
            u1_ = ls + l1[i1[j]]
            u2_ = math.log(m) + l2[b]
            big = max(u1_, u2_)
            lb = big + math.log(math.exp(u1_ - big) + math.exp(u2_ - big))
            out[i, j] = min(-m * lA2[kt] - si * lB2[kt] - lb, 0.0)


def _flat(arrays) -> list[np.ndarray]:
    return [np.ascontiguousarray(np.asarray(v, dtype=np.float64).reshape(-1)) for v in arrays]


def log_alive(
    r: np.ndarray,
    alpha: np.ndarray,
    s: np.ndarray,
    beta: np.ndarray,
    x: np.ndarray,
    tx: np.ndarray,
    T: np.ndarray,
) -> np.ndarray:
    """log P(alive at T | history), ``(S, n)`` for ``(S, 1)`` draws; equal rows once."""
    par = _flat((r, alpha, s, beta))
    x = np.asarray(x, dtype=np.float64)
    tx = np.where(x > 0, np.asarray(tx, dtype=np.float64), 0.0)
    rows = np.column_stack([x, tx, np.asarray(T, dtype=np.float64)])
    if rows.shape[0] == 0:
        return np.empty((par[0].size, 0))
    uniq, inv = np.unique(rows, axis=0, return_inverse=True)
    out = np.empty((par[0].size, uniq.shape[0]))
    _log_alive(*par, *pair_arrays(uniq[:, 0], uniq[:, 1], uniq[:, 2]), out)
    return out[:, inv.ravel()]


def expected_factor(s: np.ndarray, B: np.ndarray, t: np.ndarray) -> np.ndarray:
    """``∫_0^t (B / (B + u))^s du = B L g((s - 1) L)``, ``L = log1p(t / B)``, broadcast."""
    L = np.log1p(t / B)
    z = (s - 1.0) * L
    with np.errstate(invalid="ignore", divide="ignore"):
        g = np.where(z == 0.0, 1.0, -np.expm1(-z) / np.where(z == 0.0, 1.0, z))
    return B * L * g


@njit(nogil=True, error_model="numpy")
def probability_new(m, a, s, b, t, k, ck, out):  # pragma: no cover - compiled
    """``P_new(k)`` of a fresh Pareto/NBD ``(m, a, s, b)`` in a window ``t`` for counts ``k``
    (``ck = lnΓ(m+k) - lnΓ(m) - lnΓ(k+1)``); written into ``out`` (``k.size``)."""
    K = k.size
    la = math.log(a)
    ls = math.log(s)
    kmax = 0.0
    for j in range(K):
        kmax = max(kmax, k[j])
    if t <= 0.0:
        for j in range(K):
            out[j] = 1.0 if k[j] == 0.0 else 0.0
        return
    # alive at the end of the window
    lat = -s * math.log1p(t / b)
    lpi = la - math.log(a + t)
    l1pi = math.log(t) - math.log(a + t)
    for j in range(K):
        out[j] = math.exp(lat + ck[j] + m * lpi + (k[j] * l1pi if k[j] > 0.0 else 0.0))
    # died at u in (0, t): first [0, u0] in u, then panels in log u
    u0 = min(t, 0.1 * b / (s + 1.0), 0.1 * a / (m + 1.0))
    conc = m * kmax / (m + kmax) if kmax > 0.0 else 0.0
    hmax = min(PANEL, PANEL_SCALE / math.sqrt(1.0 + conc))
    span = math.log(t / u0)
    npan = math.ceil(span / hmax) if span > 0.0 else 0
    h = span / npan if npan > 0 else 0.0
    lu0 = math.log(u0)
    lb = math.log(b)
    lhw = np.empty(GL_X.size)  # log(h w_i) of the log-u panels
    for i in range(GL_X.size):
        lhw[i] = math.log(h * GL_W[i]) if npan > 0 else 0.0
    for p in range(npan + 1):
        for i in range(GL_X.size):
            if p == 0:
                u = u0 * GL_X[i]
                lu = math.log(u)
                lw = math.log(u0 * GL_W[i])
            else:
                lu = lu0 + h * (p - 1 + GL_X[i])
                u = math.exp(lu)
                lw = lhw[i] + lu
            l1b = math.log1p(u / b)
            lau = math.log(a + u)
            # death density s b^s (b+u)^(-s-1) times the weight, times NB_0's (a/(a+u))^m
            base = lw + ls - (s + 1.0) * l1b - lb + m * (la - lau)
            l1pu = lu - lau
            for j in range(K):
                if k[j] > 0.0:
                    out[j] += math.exp(base + ck[j] + k[j] * l1pu)
                else:
                    out[j] += math.exp(base + ck[j])


@njit(nogil=True, error_model="numpy")
def _pmf(r, alpha, s, beta, x, T, t, pa, k, lgk, out):  # pragma: no cover - compiled
    K = k.size
    ck = np.empty(K)
    row = np.empty(K)
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            m = r[i] + x[j]
            lgm = math.lgamma(m)
            for q in range(K):
                ck[q] = math.lgamma(m + k[q]) - lgm - lgk[q]
            probability_new(m, alpha[i] + T[j], s[i], beta[i] + T[j], t[j], k, ck, row)
            p = pa[i, j]
            for q in range(K):
                v = p * row[q]
                if k[q] == 0.0:
                    v += 1.0 - p
                out[i, j, q] = min(max(v, 0.0), 1.0)


def pnbd_probability_of_purchases(
    r: np.ndarray,
    alpha: np.ndarray,
    s: np.ndarray,
    beta: np.ndarray,
    x: np.ndarray,
    tx: np.ndarray,
    T: np.ndarray,
    t: np.ndarray,
    k: np.ndarray,
) -> np.ndarray:
    """P(k purchases in ``(T, T + t]`` | history), ``(S, n, K)``; ``t`` ``(n,)``. Rows equal in
    ``(x, t_x, T, t)`` are computed once."""
    par = _flat((r, alpha, s, beta))
    rows = np.column_stack([np.asarray(v, dtype=np.float64) for v in (x, tx, T, t)])
    kk = np.ascontiguousarray(np.atleast_1d(np.asarray(k, dtype=np.float64)))
    S = par[0].size
    if rows.shape[0] == 0:
        return np.empty((S, 0, kk.size))
    uniq, inv = np.unique(rows, axis=0, return_inverse=True)
    cols = [np.ascontiguousarray(uniq[:, c]) for c in range(4)]
    pa = np.exp(log_alive(*par, cols[0], cols[1], cols[2]).reshape(S, -1))
    out = np.empty((S, uniq.shape[0], kk.size))
    _pmf(*par, cols[0], cols[2], cols[3], np.ascontiguousarray(pa), kk, gammaln(kk + 1.0), out)
    return out[:, inv.ravel()]
