"""Gamma-Gamma's compiled log posterior (NUTS and Laplace): the numba kernel, its data arguments and
its C callback for nutpie (:mod:`clvkit.inference.nutpie_native`).

The kernel computes :func:`clvkit.models.gamma_gamma.likelihood.gg_loglik` (tested equal in
tests/test_models_math_once.py) on the compressed statistics plus the log prior and log Jacobian
of :func:`clvkit.inference.sampling.nb_prior`.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from clvkit.inference.nutpie_native import LOGP_SIG, NativeKernel, f64, i64, status
from clvkit.inference.sampling import nb_digamma, nb_prior
from clvkit.models.gamma_gamma.likelihood import GGStats
from clvkit.utils.numba_cache import cfunc, njit

__all__ = ["gg_kernel_arrays", "gg_logp", "gg_logp_c", "gg_native_kernel"]


@njit(nogil=True, error_model="numpy")
def gg_logp(eta, xv, xw, x, log_xm, xm, w, codes, pars, grad):  # pragma: no cover
    """Gamma-Gamma log posterior (density of the mean spend) on the log scale."""
    p = math.exp(eta[0])
    q = math.exp(eta[1])
    v = math.exp(eta[2])
    lv = math.log(v)
    lg_q, ps_q = math.lgamma(q), nb_digamma(q)
    ll = 0.0
    g_p = 0.0
    g_q = 0.0
    g_v = 0.0
    for k in range(xv.size):
        px = p * xv[k]
        ps_pxq = nb_digamma(px + q)
        ll += xw[k] * (math.lgamma(px + q) - math.lgamma(px) - lg_q + q * lv + math.log(xv[k]))
        g_p += xw[k] * xv[k] * (ps_pxq - nb_digamma(px))
        g_q += xw[k] * (ps_pxq - ps_q + lv)
        g_v += xw[k] * q / v
    for i in range(x.size):
        px = p * x[i]
        lvx = math.log(v + xm[i])
        ll += w[i] * ((px - 1.0) * log_xm[i] - (px + q) * lvx)
        g_p += w[i] * x[i] * (log_xm[i] - lvx)
        g_q -= w[i] * lvx
        g_v -= w[i] * (px + q) / (v + xm[i])
    grad[0] = g_p * p
    grad[1] = g_q * q
    grad[2] = g_v * v
    return ll + nb_prior(eta, codes, pars, grad)


def gg_kernel_arrays(stats: GGStats) -> list[np.ndarray]:
    """The data arguments of :func:`gg_logp` (before the prior arrays) from compressed stats."""
    xm = stats.frequency * stats.monetary_value
    args = [stats.x_values, stats.x_weight, stats.frequency, np.log(xm), xm, stats.weight]
    return [np.ascontiguousarray(a) for a in args]


@cfunc(LOGP_SIG, error_model="numpy")
def gg_logp_c(dim, x_ptr, grad_ptr, logp_ptr, table_ptr):  # pragma: no cover - compiled
    """nutpie's C callback around :func:`gg_logp` (8 arrays in the address table)."""
    if dim != 3:
        return -1
    table = numba.carray(table_ptr, (16,))
    eta = numba.carray(x_ptr, (3,))
    grad = numba.carray(grad_ptr, (3,))
    value = gg_logp(
        eta, f64(table, 0), f64(table, 1), f64(table, 2), f64(table, 3), f64(table, 4),
        f64(table, 5), i64(table, 6), f64(table, 7), grad,
    )  # fmt: skip
    logp_ptr[0] = value
    return status(value, grad)


def gg_native_kernel(stats: GGStats, codes: np.ndarray, pars: np.ndarray) -> NativeKernel:
    """Gamma-Gamma's :class:`~clvkit.inference.nutpie_native.NativeKernel` for these
    statistics and encoded priors."""
    return NativeKernel(gg_logp, gg_logp_c, [*gg_kernel_arrays(stats), codes, pars])
