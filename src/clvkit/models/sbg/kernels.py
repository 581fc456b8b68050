"""sBG's compiled log posterior (NUTS and Laplace) for nutpie
(:mod:`clvkit.inference.nutpie_native`): :func:`clvkit.models.sbg.math.loglik_grad` on the
compressed rows plus the log prior and Jacobian of :func:`clvkit.inference.sampling.nb_prior`."""

from __future__ import annotations

import math

import numba
import numpy as np

from clvkit.inference.nutpie_native import LOGP_SIG, NativeKernel, f64, i64, status
from clvkit.inference.sampling import nb_digamma, nb_prior
from clvkit.models.sbg.likelihood import SBGStats
from clvkit.utils.numba_cache import cfunc, njit

__all__ = ["sbg_logp", "sbg_logp_c", "sbg_native_kernel"]


@njit(nogil=True, error_model="numpy")
def sbg_logp(eta, n, ch, w, codes, pars, grad):  # pragma: no cover - compiled
    """sBG log posterior on the log scale; ``grad`` receives its gradient."""
    a = math.exp(eta[0])
    b = math.exp(eta[1])
    lb0 = math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b)
    ps_a, ps_b, ps_ab = nb_digamma(a), nb_digamma(b), nb_digamma(a + b)
    ll = 0.0
    ga = 0.0
    gb = 0.0
    for i in range(w.size):
        c = ch[i]
        bn = b + n[i]
        s = a + bn + c
        ll += w[i] * (math.lgamma(a + c) + math.lgamma(bn) - math.lgamma(s) - lb0)
        ps_s = nb_digamma(s)
        ga += w[i] * (nb_digamma(a + c) - ps_s - ps_a + ps_ab)
        gb += w[i] * (nb_digamma(bn) - ps_s - ps_b + ps_ab)
    grad[0] = ga * a
    grad[1] = gb * b
    return ll + nb_prior(eta, codes, pars, grad)


@cfunc(LOGP_SIG, error_model="numpy")
def sbg_logp_c(dim, x_ptr, grad_ptr, logp_ptr, table_ptr):  # pragma: no cover - compiled
    """nutpie's C callback around :func:`sbg_logp` (5 arrays in the address table)."""
    if dim != 2:
        return -1
    table = numba.carray(table_ptr, (10,))
    eta = numba.carray(x_ptr, (2,))
    grad = numba.carray(grad_ptr, (2,))
    value = sbg_logp(
        eta, f64(table, 0), f64(table, 1), f64(table, 2), i64(table, 3), f64(table, 4), grad
    )
    logp_ptr[0] = value
    return status(value, grad)


def sbg_native_kernel(stats: SBGStats, codes: np.ndarray, pars: np.ndarray) -> NativeKernel:
    """sBG's :class:`~clvkit.inference.nutpie_native.NativeKernel` for these rows and priors."""
    arrays = [stats.renewals, stats.churned, stats.weight, codes, pars]
    return NativeKernel(sbg_logp, sbg_logp_c, [np.ascontiguousarray(a) for a in arrays])
