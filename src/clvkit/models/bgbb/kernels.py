"""BG/BB's compiled log posterior (NUTS and Laplace): the numba kernel, its data arguments and
its C callback for nutpie (:mod:`clvkit.inference.nutpie_native`).

The kernel is :func:`clvkit.models.bgbb.likelihood.loglik_grad_nb` (the one BG/BB likelihood)
plus the log prior and log Jacobian of :func:`clvkit.inference.sampling.nb_prior`.
"""

from __future__ import annotations

import numba
import numpy as np

from clvkit.inference.nutpie_native import LOGP_SIG, NativeKernel, f64, i64, status
from clvkit.inference.sampling import nb_prior
from clvkit.models.bgbb.likelihood import BGBBStats, loglik_grad_nb
from clvkit.utils.numba_cache import cfunc, njit

__all__ = ["bgbb_kernel_arrays", "bgbb_logp", "bgbb_logp_c", "bgbb_native_kernel"]


@njit(nogil=True, error_model="numpy")
def bgbb_logp(eta, x, tx, n, w, codes, pars, grad):  # pragma: no cover - compiled
    """BG/BB log posterior on the log scale; ``grad`` receives its gradient."""
    ll = loglik_grad_nb(eta, x, tx, n, w, grad)
    return ll + nb_prior(eta, codes, pars, grad)


def bgbb_kernel_arrays(stats: BGBBStats) -> list[np.ndarray]:
    """The data arguments of :func:`bgbb_logp` (before the prior arrays)."""
    x = np.asarray(stats.frequency, dtype=np.float64)
    tx = np.where(x > 0, stats.recency, 0.0)
    return [np.ascontiguousarray(a, dtype=np.float64) for a in (x, tx, stats.n, stats.weight)]


@cfunc(LOGP_SIG, error_model="numpy")
def bgbb_logp_c(dim, x_ptr, grad_ptr, logp_ptr, table_ptr):  # pragma: no cover - compiled
    """nutpie's C callback around :func:`bgbb_logp` (6 arrays in the address table)."""
    if dim != 4:
        return -1
    table = numba.carray(table_ptr, (12,))
    eta = numba.carray(x_ptr, (4,))
    grad = numba.carray(grad_ptr, (4,))
    value = bgbb_logp(
        eta, f64(table, 0), f64(table, 1), f64(table, 2), f64(table, 3), i64(table, 4),
        f64(table, 5), grad,
    )  # fmt: skip
    logp_ptr[0] = value
    return status(value, grad)


def bgbb_native_kernel(stats: BGBBStats, codes: np.ndarray, pars: np.ndarray) -> NativeKernel:
    """BG/BB's :class:`~clvkit.inference.nutpie_native.NativeKernel` for these statistics and
    encoded priors."""
    return NativeKernel(bgbb_logp, bgbb_logp_c, [*bgbb_kernel_arrays(stats), codes, pars])
