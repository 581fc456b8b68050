"""Sufficient-statistic compression shared by the models' likelihoods.

Customers with identical rows contribute identical likelihood terms, so each distinct row is
evaluated once and weighted by its count; terms that depend on the frequency only are evaluated
once per distinct frequency.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import xarray as xr

from clvkit.utils.rows import unique_rows

__all__ = [
    "RFMRows",
    "WeightedRows",
    "by_frequency",
    "distinct_rows",
    "fingerprint",
    "rfm_rows",
    "rfm_rows_dataset",
]

RFM_ROWS = ("frequency", "recency", "T", "weight")


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


def distinct_rows(*columns: np.ndarray, weight: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
    """Distinct rows of the float64 columns, sorted, and the total weight of each.

    Returns one contiguous array per column (the distinct rows) and their weights last.

    Examples
    --------
    >>> x, t, w = distinct_rows(np.array([1, 0, 1]), np.array([2.0, 0.0, 2.0]))
    >>> x.tolist(), t.tolist(), w.tolist()
    ([0.0, 1.0], [0.0, 2.0], [1.0, 2.0])
    """
    rows = np.column_stack([np.asarray(c, dtype=np.float64) for c in columns])
    w_in = np.ones(rows.shape[0]) if weight is None else np.asarray(weight, np.float64)
    first, inv, _ = unique_rows(rows)
    w = np.bincount(inv, weights=w_in, minlength=first.size)
    return (*(np.ascontiguousarray(rows[first, k]) for k in range(rows.shape[1])), w)


def rfm_rows_dataset(stats: object) -> xr.Dataset:
    """The ``frequency, recency, T, weight`` rows of compressed statistics, as saved with a
    model (``observed_data``)."""
    return xr.Dataset({n: ("row", getattr(stats, n)) for n in RFM_ROWS})


def rfm_rows(ds: xr.Dataset) -> tuple[np.ndarray, ...]:
    """The ``frequency, recency, T, weight`` arrays of a saved ``observed_data``."""
    return tuple(ds[n].to_numpy() for n in RFM_ROWS)


@dataclass(frozen=True)
class WeightedRows:
    """Compressed statistics: distinct rows of the ``KEY`` columns (``weight`` last: customer
    counts). The base of every model's statistics: their sizes and fingerprint, once."""

    #: The fields that make the rows, in fingerprint order, ``weight`` last.
    KEY: ClassVar[tuple[str, ...]] = ()

    @property
    def n_customers(self) -> int:
        return round(float(self.weight.sum()))  # type: ignore[attr-defined]

    @property
    def n_rows(self) -> int:
        return int(self.weight.size)  # type: ignore[attr-defined]

    @property
    def fingerprint(self) -> str:
        return fingerprint(*(getattr(self, k) for k in self.KEY))


@dataclass(frozen=True)
class RFMRows(WeightedRows):
    """Distinct ``(frequency, recency, T)`` rows with their ``weight`` (customer counts); the
    base of the purchase models' compressed statistics."""

    KEY: ClassVar[tuple[str, ...]] = RFM_ROWS

    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    weight: np.ndarray
