"""Pareto/NBD's compiled log posterior (NUTS and Laplace): the numba kernel and its C callback
for nutpie (:mod:`clvkit.inference.nutpie_native`).

The kernel is :func:`clvkit.models.pnbd.likelihood.pnbd_loglik_pairs` (the same function the
numpy objective calls) plus the log prior and log Jacobian of
:func:`clvkit.inference.sampling.nb_prior`, on ``eta = log([r, alpha, s, beta])``.
"""

from __future__ import annotations

import math

import numba
import numpy as np

from clvkit.inference.nutpie_native import LOGP_SIG, NativeKernel, f64, i64, status
from clvkit.inference.sampling import nb_prior
from clvkit.models.pnbd.likelihood import PNBStats, pnbd_kernel_arrays, pnbd_loglik_pairs
from clvkit.utils.numba_cache import cfunc, njit

__all__ = ["pnbd_logp", "pnbd_logp_c", "pnbd_native_kernel"]


@njit(nogil=True, error_model="numpy")
def pnbd_logp(
    eta, xv, xw, q1x, u1, q1t, q2x, u2, q2t, i1, i2, w, codes, pars, grad
):  # pragma: no cover - compiled
    """Pareto/NBD log posterior on the log scale; ``grad`` receives its gradient."""
    r = math.exp(eta[0])
    alpha = math.exp(eta[1])
    s = math.exp(eta[2])
    beta = math.exp(eta[3])
    ll = pnbd_loglik_pairs(r, alpha, s, beta, xv, xw, q1x, u1, q1t, q2x, u2, q2t, i1, i2, w, grad)
    grad[0] *= r
    grad[1] *= alpha
    grad[2] *= s
    grad[3] *= beta
    return ll + nb_prior(eta, codes, pars, grad)


@cfunc(LOGP_SIG, error_model="numpy")
def pnbd_logp_c(dim, x_ptr, grad_ptr, logp_ptr, table_ptr):  # pragma: no cover - compiled
    """nutpie's C callback around :func:`pnbd_logp` (13 arrays in the address table)."""
    if dim != 4:
        return -1
    table = numba.carray(table_ptr, (26,))
    eta = numba.carray(x_ptr, (4,))
    grad = numba.carray(grad_ptr, (4,))
    value = pnbd_logp(
        eta, f64(table, 0), f64(table, 1), i64(table, 2), f64(table, 3), i64(table, 4),
        i64(table, 5), f64(table, 6), i64(table, 7), i64(table, 8), i64(table, 9),
        f64(table, 10), i64(table, 11), f64(table, 12), grad,
    )  # fmt: skip
    logp_ptr[0] = value
    return status(value, grad)


def pnbd_native_kernel(stats: PNBStats, codes: np.ndarray, pars: np.ndarray) -> NativeKernel:
    """Pareto/NBD's :class:`~clvkit.inference.nutpie_native.NativeKernel` for these statistics
    and encoded priors."""
    return NativeKernel(pnbd_logp, pnbd_logp_c, [*pnbd_kernel_arrays(stats), codes, pars])
