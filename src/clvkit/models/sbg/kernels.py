"""sBG's compiled log posterior (NUTS and Laplace) for nutpie
(:mod:`clvkit.inference.nutpie_native`): :func:`clvkit.models.sbg.math.loglik_grad` on the
compressed rows plus the log prior and Jacobian of :func:`clvkit.inference.sampling.nb_prior`."""

from __future__ import annotations

import math

import numba
import numpy as np

from clvkit.inference.nutpie_native import LOGP_SIG, NativeKernel, f64, i64, status
from clvkit.inference.sampling import nb_prior
from clvkit.models.sbg.likelihood import SBGStats
from clvkit.utils.numba_cache import cfunc, njit

__all__ = ["sbg_logp", "sbg_logp_c", "sbg_native_kernel"]


@njit(nogil=True, error_model="numpy")
def sbg_logp(eta, n, ch, w, codes, pars, grad):  # pragma: no cover - compiled
    """sBG log posterior on the log scale; ``grad`` receives its gradient.

    Rows must be sorted by ``n``. ``ln S(n) = sum_{i<n} -log1p(alpha / (beta + i))`` and
    ``ln P(T = n + 1) = ln S(n) + ln(alpha / (alpha + beta + n))`` are accumulated renewal by
    renewal: no difference of log-gamma values, which cancel to noise for parameters far in
    the tails (a NUTS chain exploring ``alpha, beta ~ 1e14`` would otherwise see a spurious
    flat log density there).
    """
    a = math.exp(eta[0])
    b = math.exp(eta[1])
    ll = 0.0
    ga = 0.0
    gb = 0.0
    lam = 0.0  # ln S(k)
    da = 0.0  # d ln S(k) / d alpha
    db = 0.0
    k = 0
    for i in range(w.size):
        ni = int(n[i])
        while k < ni:
            bi = b + k
            abi = a + bi
            lam -= math.log1p(a / bi)
            da -= 1.0 / abi
            db += 1.0 / bi - 1.0 / abi
            k += 1
        if ch[i] > 0.0:
            s = a + b + ni
            ll += w[i] * (lam + math.log(a / s))
            ga += w[i] * (da + 1.0 / a - 1.0 / s)
            gb += w[i] * (db - 1.0 / s)
        else:
            ll += w[i] * lam
            ga += w[i] * da
            gb += w[i] * db
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
    order = np.argsort(stats.renewals, kind="stable")  # the kernel walks the renewals upwards
    arrays = [stats.renewals[order], stats.churned[order], stats.weight[order], codes, pars]
    return NativeKernel(sbg_logp, sbg_logp_c, [np.ascontiguousarray(a) for a in arrays])
