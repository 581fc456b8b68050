"""The pooled sBG's C callback for nutpie (:mod:`clvkit.inference.nutpie_native`), in its own
module: defining a ``numba.cfunc`` loads numba's compiler machinery (~0.3 s in a fresh
process), which importing :mod:`clvkit.models.sbg` (``ShiftedBetaGeo`` alone) should not
pay; :meth:`clvkit.models.sbg.pooled.ShiftedBetaGeoPooled.fit` imports it."""

from __future__ import annotations

import numba

from clvkit.inference.nutpie_native import LOGP_SIG, f64, i64, status
from clvkit.models.sbg.pooled_kernels import pooled_logp_shaped
from clvkit.utils.numba_cache import cfunc

__all__ = ["pooled_logp_c"]


@cfunc(LOGP_SIG, error_model="numpy")
def pooled_logp_c(dim, x_ptr, grad_ptr, logp_ptr, table_ptr):  # pragma: no cover - compiled
    """nutpie's C callback around :func:`pooled_logp_shaped` (4 arrays in the address
    table)."""
    table = numba.carray(table_ptr, (8,))
    eta = numba.carray(x_ptr, (dim,))
    grad = numba.carray(grad_ptr, (dim,))
    value = pooled_logp_shaped(
        eta, f64(table, 0), f64(table, 1), i64(table, 2), f64(table, 3), grad
    )
    logp_ptr[0] = value
    return status(value, grad)
