"""MBG/NBD's compiled log posterior (NUTS and Laplace): the numba kernel, its data arguments and
its C callback for nutpie (:mod:`clvkit.inference.nutpie_native`).

The kernel computes :func:`clvkit.models.mbgnbd.likelihood.mbg_loglik` (tested equal in
tests/test_mbgnbd.py) on the compressed statistics plus the log prior and log Jacobian of
:func:`clvkit.inference.sampling.nb_prior`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from clvkit.inference.nutpie_native import LOGP_SIG, NativeKernel, f64, i64, status
from clvkit.inference.sampling import nb_digamma, nb_prior
from clvkit.models.mbgnbd.likelihood import MBGStats
from clvkit.utils.numba_cache import cfunc, njit

__all__ = ["mbg_kernel_arrays", "mbg_logp", "mbg_logp_c", "mbg_native_kernel"]


@njit(nogil=True, error_model="numpy")
def mbg_logp(eta, xv, xw, w, ut, it, us, is_, ix, codes, pars, grad):  # pragma: no cover
    """MBG/NBD log posterior on the log scale (:func:`clvkit.models.mbgnbd.likelihood.mbg_loglik`
    plus prior and Jacobian); ``grad`` receives its gradient.

    Rows index tables of distinct T (``ut``/``it``), t_x (``us``/``is_``) and x (``xv``/``ix``),
    so logs and reciprocals are computed once per distinct value.
    """
    r = math.exp(eta[0])
    alpha = math.exp(eta[1])
    a = math.exp(eta[2])
    b = math.exp(eta[3])
    la = math.log(alpha)
    lg_r, lg_b, lg_ab = math.lgamma(r), math.lgamma(b), math.lgamma(a + b)
    ps_r, ps_b, ps_ab = nb_digamma(r), nb_digamma(b), nb_digamma(a + b)
    lna = math.log(a)
    ll = 0.0
    g_r = 0.0
    g_al = 0.0
    g_a = 0.0
    g_b = 0.0
    log_odds = np.empty(xv.size)  # log(a / (b + x))
    inv_bx = np.empty(xv.size)
    for k in range(xv.size):  # A(x), once per distinct frequency
        x = xv[k]
        wk = xw[k]
        ll += wk * (
            math.lgamma(r + x)
            - lg_r
            + r * la
            + lg_ab
            + math.lgamma(b + x + 1.0)
            - lg_b
            - math.lgamma(a + b + x + 1.0)
        )
        ps_abx = nb_digamma(a + b + x + 1.0)
        g_r += wk * (nb_digamma(r + x) - ps_r + la)
        g_al += wk * r / alpha
        g_a += wk * (ps_ab - ps_abx)
        g_b += wk * (ps_ab + nb_digamma(b + x + 1.0) - ps_b - ps_abx)
        log_odds[k] = lna - math.log(b + x)
        inv_bx[k] = 1.0 / (b + x)
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
    for i in range(w.size):  # log((α+T)^-(r+x) + a/(b+x) (α+t_x)^-(r+x))
        wi = w[i]
        k = ix[i]
        rx = r + xv[k]
        l_big = log_T[it[i]]
        l_small = log_s[is_[i]]
        u = -rx * l_big
        d = log_odds[k] + rx * (l_big - l_small)  # v - u
        if d > 0.0:
            e = math.exp(-d)
            s = u + d + math.log1p(e)
            wv = 1.0 / (1.0 + e)
        else:
            e = math.exp(d)
            s = u + math.log1p(e)
            wv = e / (1.0 + e)
        wu = 1.0 - wv
        ll += wi * s
        g_r -= wi * (wu * l_big + wv * l_small)
        g_al -= wi * rx * (wu * inv_T[it[i]] + wv * inv_s[is_[i]])
        g_a += wi * wv / a
        g_b -= wi * wv * inv_bx[k]
    grad[0] = g_r * r
    grad[1] = g_al * alpha
    grad[2] = g_a * a
    grad[3] = g_b * b
    return ll + nb_prior(eta, codes, pars, grad)


def mbg_kernel_arrays(stats: MBGStats) -> list[np.ndarray]:
    """The data arguments of :func:`mbg_logp` (before the prior arrays) from compressed stats."""
    ut, it = np.unique(stats.T, return_inverse=True)
    us, is_ = np.unique(stats.recency, return_inverse=True)
    args = [
        stats.x_values,
        stats.x_weight,
        stats.weight,
        ut,
        it.ravel().astype(np.int64),
        us,
        is_.ravel().astype(np.int64),
        np.asarray(stats.x_index).ravel().astype(np.int64),
    ]
    return [np.ascontiguousarray(a) for a in args]


@cfunc(LOGP_SIG, error_model="numpy")
def mbg_logp_c(dim, x_ptr, grad_ptr, logp_ptr, table_ptr):  # pragma: no cover - compiled
    """nutpie's C callback around :func:`mbg_logp` (10 arrays in the address table)."""
    if dim != 4:
        return -1
    table = numba.carray(table_ptr, (20,))
    eta = numba.carray(x_ptr, (4,))
    grad = numba.carray(grad_ptr, (4,))
    value = mbg_logp(
        eta, f64(table, 0), f64(table, 1), f64(table, 2), f64(table, 3), i64(table, 4),
        f64(table, 5), i64(table, 6), i64(table, 7), i64(table, 8), f64(table, 9), grad,
    )  # fmt: skip
    logp_ptr[0] = value
    return status(value, grad)


def mbg_native_kernel(stats: MBGStats, codes: np.ndarray, pars: np.ndarray) -> NativeKernel:
    """MBG/NBD's :class:`~clvkit.inference.nutpie_native.NativeKernel` for these statistics
    and encoded priors."""
    return NativeKernel(mbg_logp, mbg_logp_c, [*mbg_kernel_arrays(stats), codes, pars])
