"""The covariate models' compiled steps around a base model's per-row kernel.

A gradient of a covariate model is three compiled calls: :func:`row_params` (every row's base
log-parameters: the linear predictor of its class, plus its segment's log multiplier, on each
linked parameter), the base model's per-row kernel (``_rows_loglik_grad``), and
:func:`class_gradients` (the weighted sums of the rows' values and gradients, chained to the
base parameters, the coefficients and the segment effects). Plain loops, no BLAS (OpenBLAS's
threads spin against nutpie's sampler threads on a busy machine: a 100,000 x 8 product took 27
ms instead of 0.3 ms) and no GIL (nutpie calls the log posterior from several chains, and the
numpy glue these replace held the GIL for 9 of the 21 ms of a gradient at 100,000 customers;
now the two steps take about 3.5 ms). Reassociation is allowed (sums may vectorise), NaN and
infinity keep their IEEE meaning.
"""

from __future__ import annotations

import numpy as np

from clvkit.utils.numba_cache import njit

__all__ = ["class_gradients", "row_params"]


@njit(nogil=True, fastmath={"reassoc", "contract"})
def row_params(base, z, coef, link_col, sign, seg, seg_u, row_class, one_each):  # pragma: no cover
    """Each row's log-parameters ``(m, P)``: ``base[p]`` plus, on linked column
    ``link_col[q]``, ``sign[q] * (z[c] @ coef[q] + seg_u[q, seg[c]])`` for the row's class
    ``c = row_class[i]`` (``seg`` empty: no segments). ``one_each``: row ``i`` is class ``i``."""
    C, k = z.shape
    L = link_col.size
    P = base.size
    shift = np.empty((C, L))
    for c in range(C):
        for q in range(L):
            s = 0.0
            for j in range(k):
                s += z[c, j] * coef[q, j]
            if seg.size:
                s = s + seg_u[q, seg[c]]
            shift[c, q] = sign[q] * s
    m = row_class.size
    U = np.empty((m, P))
    for i in range(m):
        c = i if one_each else row_class[i]
        for p in range(P):
            U[i, p] = base[p]
        for q in range(L):
            U[i, link_col[q]] = base[link_col[q]] + shift[c, q]
    return U


@njit(nogil=True, fastmath={"reassoc", "contract"})
def class_gradients(
    ll, g, w, row_class, n_class, z, link_col, sign, seg, n_seg
):  # pragma: no cover
    """The weighted log-likelihood ``sum_i w_i ll_i`` and its gradient: in the base
    log-parameters ``(P,)``, the coefficients ``(L, k)`` and the segment log multipliers
    ``(L, n_seg)``, from the rows' gradients ``g`` ``(m, P)`` in their own log-parameters."""
    m, P = g.shape
    C, k = z.shape
    L = link_col.size
    value = 0.0
    gU = np.zeros((n_class, P))
    for i in range(m):
        wi = w[i]
        value += wi * ll[i]
        c = row_class[i]
        for p in range(P):
            gU[c, p] += wi * g[i, p]
    g_base = np.zeros(P)
    g_coef = np.zeros((L, k))
    g_seg = np.zeros((L, n_seg))
    for c in range(C):
        for p in range(P):
            g_base[p] += gU[c, p]
        for q in range(L):
            gp = sign[q] * gU[c, link_col[q]]
            for j in range(k):
                g_coef[q, j] += z[c, j] * gp
            if seg.size:
                g_seg[q, seg[c]] += gp
    return value, g_base, g_coef, g_seg
