"""BG/NBD's compiled log posterior (NUTS and Laplace): the numba kernel, its data arguments and
its C callback for nutpie (:mod:`clvkit.inference.nutpie_native`).

The kernel computes :func:`clvkit.models.bgnbd.likelihood.bg_loglik` (tested equal in
tests/test_models_math_once.py) on the compressed statistics plus the log prior and log Jacobian
of :func:`clvkit.inference.sampling.nb_prior`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from clvkit.inference.nutpie_native import LOGP_SIG, NativeKernel, f64, i64, status
from clvkit.inference.sampling import nb_digamma, nb_prior
from clvkit.models.bgnbd.likelihood import BGStats
from clvkit.utils.numba_cache import cfunc, njit

__all__ = ["bg_kernel_arrays", "bg_logp", "bg_logp_c", "bg_native_kernel"]


@njit(nogil=True, error_model="numpy")
def bg_logp(
    eta, xv, xw, T0, w0, x1, w1, ut, it, us, is_, ux, ix, codes, pars, grad
):  # pragma: no cover - compiled
    """BG/NBD log posterior on the log scale (:func:`clvkit.models.bgnbd.likelihood.bg_loglik`
    plus prior and Jacobian); ``grad`` receives its gradient.

    Rows with x > 0 index tables of distinct T (``ut``/``it``), t_x (``us``/``is_``) and x
    (``ux``/``ix``), so logs and reciprocals are computed once per distinct value.
    """
    r = math.exp(eta[0])
    alpha = math.exp(eta[1])
    a = math.exp(eta[2])
    b = math.exp(eta[3])
    la = math.log(alpha)
    lg_r, lg_b, lg_ab = math.lgamma(r), math.lgamma(b), math.lgamma(a + b)
    ps_r, ps_b, ps_ab = nb_digamma(r), nb_digamma(b), nb_digamma(a + b)
    ll = 0.0
    g_r = 0.0
    g_al = 0.0
    g_a = 0.0
    g_b = 0.0
    for k in range(xv.size):  # A(x), once per distinct frequency
        x = xv[k]
        w = xw[k]
        ll += w * (
            math.lgamma(r + x)
            - lg_r
            + r * la
            + lg_ab
            + math.lgamma(b + x)
            - lg_b
            - math.lgamma(a + b + x)
        )
        ps_abx = nb_digamma(a + b + x)
        g_r += w * (nb_digamma(r + x) - ps_r + la)
        g_al += w * r / alpha
        g_a += w * (ps_ab - ps_abx)
        g_b += w * (ps_ab + nb_digamma(b + x) - ps_b - ps_abx)
    for i in range(T0.size):  # frequency 0: -r log(α + T)
        lt = math.log(alpha + T0[i])
        ll -= w0[i] * r * lt
        g_r -= w0[i] * lt
        g_al -= w0[i] * r / (alpha + T0[i])
    log_T = np.empty(ut.size)
    inv_T = np.empty(ut.size)
    for j in range(ut.size):
        log_T[j] = math.log(alpha + ut[j])
        inv_T[j] = 1.0 / (alpha + ut[j])
    log_s = np.empty(us.size)
    inv_s = np.empty(us.size)
    for j in range(us.size):
        log_s[j] = math.log(alpha + us[j])
        inv_s[j] = 1.0 / (alpha + us[j])
    lna = math.log(a)
    log_odds = np.empty(ux.size)  # log(a / (b + x - 1))
    inv_bx = np.empty(ux.size)
    for j in range(ux.size):
        log_odds[j] = lna - math.log(b + ux[j] - 1.0)
        inv_bx[j] = 1.0 / (b + ux[j] - 1.0)
    for i in range(x1.size):  # log((α+T)^-(r+x) + a/(b+x-1) (α+t_x)^-(r+x))
        w = w1[i]
        rx = r + x1[i]
        l_big = log_T[it[i]]
        l_small = log_s[is_[i]]
        u = -rx * l_big
        d = log_odds[ix[i]] + rx * (l_big - l_small)  # v - u
        if d > 0.0:
            e = math.exp(-d)
            s = u + d + math.log1p(e)
            wv = 1.0 / (1.0 + e)
        else:
            e = math.exp(d)
            s = u + math.log1p(e)
            wv = e / (1.0 + e)
        wu = 1.0 - wv
        ll += w * s
        g_r -= w * (wu * l_big + wv * l_small)
        g_al -= w * rx * (wu * inv_T[it[i]] + wv * inv_s[is_[i]])
        g_a += w * wv / a
        g_b -= w * wv * inv_bx[ix[i]]
    grad[0] = g_r * r
    grad[1] = g_al * alpha
    grad[2] = g_a * a
    grad[3] = g_b * b
    return ll + nb_prior(eta, codes, pars, grad)


def bg_kernel_arrays(stats: BGStats) -> list[np.ndarray]:
    """The data arguments of :func:`bg_logp` (before the prior arrays) from compressed stats."""
    zero = stats.frequency == 0
    x1 = stats.frequency[~zero]
    ut, it = np.unique(stats.T[~zero], return_inverse=True)
    us, is_ = np.unique(stats.recency[~zero], return_inverse=True)
    ux, ix = np.unique(x1, return_inverse=True)
    args = [
        stats.x_values,
        stats.x_weight,
        stats.T[zero],
        stats.weight[zero],
        x1,
        stats.weight[~zero],
        ut,
        it.ravel().astype(np.int64),
        us,
        is_.ravel().astype(np.int64),
        ux,
        ix.ravel().astype(np.int64),
    ]
    return [np.ascontiguousarray(a) for a in args]


@cfunc(LOGP_SIG, error_model="numpy")
def bg_logp_c(dim, x_ptr, grad_ptr, logp_ptr, table_ptr):  # pragma: no cover - compiled
    """nutpie's C callback around :func:`bg_logp` (14 arrays in the address table)."""
    if dim != 4:
        return -1
    table = numba.carray(table_ptr, (28,))
    eta = numba.carray(x_ptr, (4,))
    grad = numba.carray(grad_ptr, (4,))
    value = bg_logp(
        eta, f64(table, 0), f64(table, 1), f64(table, 2), f64(table, 3), f64(table, 4),
        f64(table, 5), f64(table, 6), i64(table, 7), f64(table, 8), i64(table, 9),
        f64(table, 10), i64(table, 11), i64(table, 12), f64(table, 13), grad,
    )  # fmt: skip
    logp_ptr[0] = value
    return status(value, grad)


def bg_native_kernel(stats: BGStats, codes: np.ndarray, pars: np.ndarray) -> NativeKernel:
    """BG/NBD's :class:`~clvkit.inference.nutpie_native.NativeKernel` for these statistics and
    encoded priors."""
    return NativeKernel(bg_logp, bg_logp_c, [*bg_kernel_arrays(stats), codes, pars])
