"""Pareto/NBD likelihood, once: compressed statistics, the log-likelihood with its gradient on
them (MLE, MAP, Laplace and, plus the prior, the NUTS kernel of :mod:`.kernels`) and per
customer (model comparison). The math is :mod:`clvkit.models.pnbd.numerics`.

The bracket's first term ``s K(m, s+1; t_x)`` depends on ``(x, t_x)`` only and the second
``m K(m+1, s; T)`` on ``(x, T)`` only, so each is computed once per distinct pair (CDNOW: 1,016
distinct rows, 586 ``(x, t_x)`` and 464 ``(x, T)`` pairs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from clvkit.inference.sampling import nb_digamma
from clvkit.models.pnbd.numerics import k_table, pnbd_row
from clvkit.models.stats import RFMRows, by_frequency, distinct_rows
from clvkit.utils.numba_cache import njit

__all__ = [
    "PNBStats",
    "compress_pnbd",
    "pair_arrays",
    "pnbd_kernel_arrays",
    "pnbd_loglik_customers",
    "pnbd_loglik_grad",
    "pnbd_loglik_pairs",
    "pnbd_loglik_rows_grad",
    "pnbd_rows_kernel",
]


@dataclass(frozen=True)
class PNBStats(RFMRows):
    """Compressed Pareto/NBD statistics: distinct ``(frequency, recency, T)`` rows and their
    weights (``x_values`` / ``x_weight``: distinct frequencies and their total weights)."""

    x_values: np.ndarray
    x_weight: np.ndarray
    kernel_arrays: tuple[np.ndarray, ...] = field(default=(), repr=False, compare=False)


def compress_pnbd(
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    weight: np.ndarray | None = None,
) -> PNBStats:
    """Collapse customers with identical ``(frequency, recency, T)`` into weighted rows.

    Examples
    --------
    >>> s = compress_pnbd(np.array([0, 0, 2]), np.array([0.0, 0.0, 3.0]), np.array([5.0, 5.0, 6.0]))
    >>> s.n_rows, s.weight.tolist()
    (2, [2.0, 1.0])
    """
    cols = distinct_rows(frequency, recency, T, weight=weight)
    x_values, x_weight, _ = by_frequency(cols[0], cols[3])
    return PNBStats(*cols, x_values, x_weight, _pairs(*cols, x_values, x_weight))


def _index(values: np.ndarray, table: np.ndarray) -> np.ndarray:
    return np.searchsorted(table, values).astype(np.int64)


def pair_arrays(x: np.ndarray, tx: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, ...]:
    """Tables of distinct values for :func:`clvkit.models.pnbd.numerics.k_table`, from
    customer rows: ``(xv, q1x, u1, q1t, q2x, u2, q2t, i1, i2)``: the distinct frequencies; the
    distinct ``(x, t_x)`` pairs sorted by ``x`` as indices into ``xv`` and into the distinct
    recencies ``u1``; the same for ``(x, T)`` with the distinct ages ``u2``; each row's pair
    indices."""
    x, tx, T = (np.asarray(v, dtype=np.float64) for v in (x, tx, T))
    xv = np.unique(x)
    p1, i1 = np.unique(np.column_stack([x, tx]), axis=0, return_inverse=True)
    p2, i2 = np.unique(np.column_stack([x, T]), axis=0, return_inverse=True)
    u1 = np.unique(p1[:, 1])
    u2 = np.unique(p2[:, 1])
    out = (
        xv,
        _index(p1[:, 0], xv),
        u1,
        _index(p1[:, 1], u1),
        _index(p2[:, 0], xv),
        u2,
        _index(p2[:, 1], u2),
        i1.ravel().astype(np.int64),
        i2.ravel().astype(np.int64),
    )
    return tuple(np.ascontiguousarray(a) for a in out)


def _pairs(x, tx, T, w, x_values, x_weight) -> tuple[np.ndarray, ...]:
    xv, *rest = pair_arrays(x, tx, T)
    assert np.array_equal(xv, x_values)
    return (x_values, np.ascontiguousarray(x_weight), *rest, np.ascontiguousarray(w))


def pnbd_kernel_arrays(stats: PNBStats) -> list[np.ndarray]:
    """The data arguments of :func:`pnbd_loglik_pairs`: distinct frequencies and weights, the
    distinct ``(x, t_x)`` and ``(x, T)`` pairs, each row's pair indices and weight."""
    return list(stats.kernel_arrays)


@njit(nogil=True, error_model="numpy")
def pnbd_loglik_pairs(
    r, alpha, s, beta, xv, xw, q1x, u1, q1t, q2x, u2, q2t, i1, i2, w, g
):  # pragma: no cover - compiled
    """Weighted Pareto/NBD log-likelihood of the compressed rows (arrays of
    :func:`pnbd_kernel_arrays`); ``g`` (4,) receives its gradient in ``(r, alpha, s, beta)``
    on the natural scale. Logs are taken once per distinct frequency and time."""
    la = math.log(alpha)
    lb = math.log(beta)
    ls = math.log(s)
    lg_r = math.lgamma(r)
    ps_r = nb_digamma(r)
    ll = 0.0
    g_r = 0.0
    g_a = 0.0
    g_s = 0.0
    g_b = 0.0
    W = 0.0
    nx = xv.size
    lm = np.empty(nx)  # log(r + x)
    lc = np.empty(nx)  # log(r + x + s)
    for k in range(nx):  # lnΓ(r+x) - lnΓ(r), once per distinct frequency
        m = r + xv[k]
        ll += xw[k] * (math.lgamma(m) - lg_r)
        g_r += xw[k] * (nb_digamma(m) - ps_r)
        W += xw[k]
        lm[k] = math.log(m)
        lc[k] = math.log(m + s)
    ll += W * (r * la + s * lb)
    g_r += W * la
    g_a += W * r / alpha
    g_s += W * lb
    g_b += W * s / beta
    n1 = q1x.size
    n2 = q2x.size
    lA1 = np.empty(u1.size)
    lB1 = np.empty(u1.size)
    for j in range(u1.size):
        lA1[j] = math.log(alpha + u1[j])
        lB1[j] = math.log(beta + u1[j])
    lA2 = np.empty(u2.size)
    lB2 = np.empty(u2.size)
    for j in range(u2.size):
        lA2[j] = math.log(alpha + u2[j])
        lB2[j] = math.log(beta + u2[j])
    l1 = np.empty(n1)
    d1 = np.empty((n1, 4))
    k_table(r, alpha, s, beta, False, xv, lc, q1x, u1, q1t, lA1, lB1, l1, d1, True)
    l2 = np.empty(n2)
    d2 = np.empty((n2, 4))
    k_table(r, alpha, s, beta, True, xv, lc, q2x, u2, q2t, lA2, lB2, l2, d2, True)
    mi2 = np.empty(n2)
    for j in range(n1):  # s K(m, s+1; t_x), once per (x, t_x)
        l1[j] += ls
    for j in range(n2):  # m K(m+1, s; T), once per (x, T)
        l2[j] += lm[q2x[j]]
        mi2[j] = 1.0 / (r + xv[q2x[j]])
    inv_s = 1.0 / s
    for i in range(w.size):
        a = i1[i]
        b = i2[i]
        u1_ = l1[a]
        u2_ = l2[b]
        if u1_ > u2_:
            e = math.exp(u2_ - u1_)
            lse = u1_ + math.log1p(e)
            w2 = e / (1.0 + e)
        else:
            e = math.exp(u1_ - u2_)
            lse = u2_ + math.log1p(e)
            w2 = 1.0 / (1.0 + e)
        w1 = 1.0 - w2
        wi = w[i]
        ll += wi * lse
        g_r += wi * (w1 * d1[a, 0] + w2 * (mi2[b] + d2[b, 0]))
        g_a += wi * (w1 * d1[a, 2] + w2 * d2[b, 2])
        g_s += wi * (w1 * (inv_s + d1[a, 1]) + w2 * d2[b, 1])
        g_b += wi * (w1 * d1[a, 3] + w2 * d2[b, 3])
    g[0] = g_r
    g[1] = g_a
    g[2] = g_s
    g[3] = g_b
    return ll


def pnbd_loglik_grad(theta: np.ndarray, stats: PNBStats) -> tuple[float, np.ndarray]:
    """Log-likelihood and its gradient in ``theta = log([r, alpha, s, beta])``."""
    r, alpha, s, beta = np.exp(np.asarray(theta, dtype=np.float64))
    g = np.empty(4)
    ll = pnbd_loglik_pairs(r, alpha, s, beta, *stats.kernel_arrays, g)
    return float(ll), g * np.array([r, alpha, s, beta])


@njit(nogil=True, error_model="numpy")
def pnbd_rows_kernel(theta, x, tx, T, ll, grad):  # pragma: no cover - compiled
    """Fill ``ll[i]`` and ``grad[i]`` (in ``theta[i] = log([r, alpha, s, beta])``) for every
    row by :func:`clvkit.models.pnbd.numerics.pnbd_row`; no per-row allocation."""
    g = np.empty(4)
    d1 = np.empty(4)
    d2 = np.empty(4)
    for i in range(x.size):
        r = math.exp(theta[i, 0])
        alpha = math.exp(theta[i, 1])
        s = math.exp(theta[i, 2])
        beta = math.exp(theta[i, 3])
        ll[i] = pnbd_row(r, alpha, s, beta, x[i], tx[i], T[i], g, d1, d2, True)
        grad[i, 0] = g[0] * r
        grad[i, 1] = g[1] * alpha
        grad[i, 2] = g[2] * s
        grad[i, 3] = g[3] * beta


def pnbd_loglik_rows_grad(
    theta: np.ndarray, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The Pareto/NBD log-likelihood of each row with that row's own parameters, and its
    gradient: the base likelihood (:func:`pnbd_loglik_grad`) with per-row parameters.

    Row ``i`` is the history ``(frequency[i], recency[i], T[i])`` under ``theta[i] =
    log([r, alpha, s, beta])`` (``(m, 4)``); returns ``ll`` ``(m,)`` and its gradient in the
    row's ``theta`` ``(m, 4)``. With every row at one ``theta0`` the weighted sums are
    :func:`pnbd_loglik_grad` of the same rows. Compiled (each row's bracket by the series or
    quadrature of :mod:`clvkit.models.pnbd.numerics`, chosen per row).
    """
    theta = np.ascontiguousarray(theta, dtype=np.float64)
    x, tx, t = (np.ascontiguousarray(v, dtype=np.float64) for v in (frequency, recency, T))
    ll = np.empty(x.size)
    grad = np.empty((x.size, 4))
    pnbd_rows_kernel(theta, x, tx, t, ll, grad)
    return ll, grad


@njit(nogil=True, error_model="numpy")
def _customers(
    r, alpha, s, beta, xv, q1x, u1, q1t, q2x, u2, q2t, i1, i2, out
):  # pragma: no cover - compiled
    """Per (draw, row) log-likelihood, each bracket term once per pair (:func:`k_table`)."""
    n1 = q1x.size
    n2 = q2x.size
    d1 = np.empty((n1, 4))
    d2 = np.empty((n2, 4))
    l1 = np.empty(n1)
    l2 = np.empty(n2)
    lc = np.empty(xv.size)
    lm = np.empty(xv.size)
    lg = np.empty(xv.size)
    lA1 = np.empty(u1.size)
    lB1 = np.empty(u1.size)
    lA2 = np.empty(u2.size)
    lB2 = np.empty(u2.size)
    for i in range(out.shape[0]):
        ri = r[i]
        ai = alpha[i]
        si = s[i]
        bi = beta[i]
        lg_r = math.lgamma(ri)
        for k in range(xv.size):
            lc[k] = math.log(ri + xv[k] + si)
            lm[k] = math.log(ri + xv[k])
            lg[k] = math.lgamma(ri + xv[k]) - lg_r
        for k in range(u1.size):
            lA1[k] = math.log(ai + u1[k])
            lB1[k] = math.log(bi + u1[k])
        for k in range(u2.size):
            lA2[k] = math.log(ai + u2[k])
            lB2[k] = math.log(bi + u2[k])
        k_table(ri, ai, si, bi, False, xv, lc, q1x, u1, q1t, lA1, lB1, l1, d1, False)
        k_table(ri, ai, si, bi, True, xv, lc, q2x, u2, q2t, lA2, lB2, l2, d2, False)
        base = ri * math.log(ai) + si * math.log(bi)
        ls = math.log(si)
        for j in range(out.shape[1]):
            b = i2[j]
            kx = q2x[b]
            v1 = ls + l1[i1[j]]
            v2 = lm[kx] + l2[b]
            big = max(v1, v2)
            lse = big + math.log(math.exp(v1 - big) + math.exp(v2 - big))
            out[i, j] = lg[kx] + base + lse


def pnbd_loglik_customers(
    r: np.ndarray,
    alpha: np.ndarray,
    s: np.ndarray,
    beta: np.ndarray,
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
) -> np.ndarray:
    """Per-customer log-likelihood, ``(S, n)`` for ``(S, 1)`` draws and ``(n,)`` customers;
    summed with weights it is :func:`pnbd_loglik_pairs`."""
    par = [
        np.ascontiguousarray(np.asarray(v, dtype=np.float64).reshape(-1))
        for v in (r, alpha, s, beta)
    ]
    rows = np.column_stack([np.asarray(v, dtype=np.float64) for v in (frequency, recency, T)])
    uniq, inv = np.unique(rows, axis=0, return_inverse=True)  # equal rows computed once
    out = np.empty((par[0].size, uniq.shape[0]))
    _customers(*par, *pair_arrays(uniq[:, 0], uniq[:, 1], uniq[:, 2]), out)
    return out[:, inv.ravel()]
