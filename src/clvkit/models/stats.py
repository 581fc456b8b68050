"""Sufficient-statistic compression shared by the models' likelihoods.

Customers with identical rows contribute identical likelihood terms, so each distinct row is
evaluated once and weighted by its count; terms that depend on the frequency only are evaluated
once per distinct frequency.
"""

from __future__ import annotations

import hashlib

import numpy as np

__all__ = ["by_frequency", "fingerprint"]


def fingerprint(*arrays: np.ndarray) -> str:
    """A short hash of the arrays (dtype, shape and bytes)."""
    h = hashlib.sha256()
    for arr in arrays:
        a = np.ascontiguousarray(arr)
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def by_frequency(frequency: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, ...]:
    """Distinct frequencies, their total weights and each row's index into them."""
    x_values, x_index = np.unique(frequency, return_inverse=True)
    x_weight = np.bincount(x_index, weights=weight, minlength=x_values.size)
    return x_values, x_weight, x_index
