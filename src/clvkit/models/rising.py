"""Rising factorials for the per-row kernels (the covariate models' fitting kernels, one row per
customer): Gamma-function ratios with a whole-number offset, ``Γ(z+j) / Γ(z) = (z)_j``, as
products, and their digamma differences ``ψ(z+j) - ψ(z) = Σ_{k<j} 1/(z+k)`` by the product rule
(no division per factor), instead of ``lgamma``/``digamma`` calls that cost far more and lose
digits to cancellation for large ``z``. A kernel uses them up to ``j = XMAX`` while every
product stays within ``[1/BIG, BIG]``, else falls back to the gamma functions.
"""

from __future__ import annotations

from clvkit.utils.numba_cache import njit

__all__ = ["BIG", "XMAX", "rising_factorial"]

#: Offsets up to this use the products (above: lgamma and digamma).
XMAX = 64.0
#: Products must stay within [1/BIG, BIG], else the kernel falls back to the gamma functions.
BIG = 1e280


@njit(nogil=True, error_model="numpy")
def rising_factorial(z, j, out):  # pragma: no cover - compiled
    """``out[0] = (z)_j`` and ``out[1] = Σ_{k<j} 1/(z+k)`` (``ψ(z+j) - ψ(z)``); returns False
    if the product or its derivative leaves ``[1/BIG, BIG]``."""
    P = 1.0
    D = 0.0
    for k in range(int(j)):
        D = D * (z + k) + P
        P *= z + k
    out[0] = P
    out[1] = D / P
    return P < BIG and P > 1.0 / BIG and D < BIG
