"""Pure prediction math of the Gamma-Gamma spend model (Fader and Hardie 2013).

Shapes as in :mod:`clvkit.models.bgnbd.predictions`: parameters scalars or ``(S, 1)`` draws,
customers ``(N,)``, results ``(S, N)``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from clvkit.errors import ClvkitError
from clvkit.models.arrays import (
    broadcast_shape,
    nonneg,
    positive_param,
)
from clvkit.utils.numba_cache import njit

__all__ = ["gg_expected_spend", "gg_expected_spend_new_customer", "gg_sample_nu"]


def _gg_inputs(p, q, v, frequency, monetary_value):
    p, q, v = (positive_param(val, nm) for val, nm in zip((p, q, v), ("p", "q", "v"), strict=True))
    x = nonneg(frequency, "frequency", "frequency counts repeat purchases, so it is >= 0")
    m = nonneg(monetary_value, "monetary_value", "monetary_value is a mean spend, so >= 0")
    return p, q, v, x, m


def gg_expected_spend(
    p: ArrayLike, q: ArrayLike, v: ArrayLike, frequency: ArrayLike, monetary_value: ArrayLike
) -> np.ndarray:
    """Conditional expected spend per purchase (Fader and Hardie 2013, eq. 5).

    ``p (v + x zbar) / (p x + q - 1)``; the prior mean ``p v / (q - 1)`` when x = 0. The mean is
    infinite when ``p x + q <= 1`` and is returned as ``inf`` there.

    Parameters
    ----------
    p, q, v : array_like
        Gamma-Gamma parameters, scalars or ``(S, 1)`` draws.
    frequency, monetary_value : array_like
        Repeat purchases x and their mean spend zbar, shape ``(N,)``.

    Returns
    -------
    numpy.ndarray
        Shape ``(S, N)``.

    Examples
    --------
    >>> round(float(gg_expected_spend(6.2488, 3.7446, 15.4477, 2, 22.35)), 2)
    24.66
    """
    p, q, v, x, m = _gg_inputs(p, q, v, frequency, monetary_value)
    shape = broadcast_shape(p, q, v, x, m)
    if len(shape) == 2 and x.shape == m.shape == shape[1:] and p.shape == q.shape == v.shape:
        if p.shape == (shape[0], 1):  # draws x customers, the value layer's hot path: compiled
            out = np.empty(shape)
            _expected_spend_kernel(p[:, 0], q[:, 0], v[:, 0], x, m, out)
            return out
    den = p * x + q - 1.0
    num = p * (v + x * m)
    with np.errstate(divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.inf)


@njit(nogil=True, error_model="numpy")
def _expected_spend_kernel(p, q, v, x, m, out):
    """:func:`gg_expected_spend` of draws ``(S,)`` and customers ``(N,)`` into ``out`` (S, N),
    with the same operations in the same order (so the same bits) as the numpy route."""
    for s in range(p.size):
        ps, qs, vs = p[s], q[s], v[s]
        for i in range(x.size):
            den = ps * x[i] + qs - 1.0
            out[s, i] = ps * (vs + x[i] * m[i]) / den if den > 0 else np.inf


def gg_expected_spend_new_customer(p: ArrayLike, q: ArrayLike, v: ArrayLike) -> np.ndarray:
    """Expected spend per purchase of a new customer, ``p v / (q - 1)`` (``inf`` if q <= 1).

    Examples
    --------
    >>> round(float(gg_expected_spend_new_customer(6.2488, 3.7446, 15.4477)), 2)
    35.17
    """
    return gg_expected_spend(p, q, v, 0.0, 0.0)


def gg_sample_nu(
    p: ArrayLike,
    q: ArrayLike,
    v: ArrayLike,
    frequency: ArrayLike,
    monetary_value: ArrayLike,
    rng: np.random.Generator,
) -> np.ndarray:
    """Draw each customer's spend rate nu ~ Gamma(p x + q, rate v + x zbar).

    Given nu, a purchase's expected spend is ``p / nu``; averaging over nu gives
    :func:`gg_expected_spend`.

    Parameters
    ----------
    p, q, v : array_like
        Scalars or ``(S, 1)`` draws.
    frequency, monetary_value : array_like
        Shape ``(N,)``.
    rng : numpy.random.Generator

    Returns
    -------
    numpy.ndarray
        Shape ``(S, N)``.

    Examples
    --------
    >>> import numpy as np
    >>> nu = gg_sample_nu(6.2488, 3.7446, 15.4477, np.array([2, 0]), np.array([22.35, 0.0]),
    ...                   np.random.default_rng(0))
    >>> nu.shape
    (2,)
    """
    if not isinstance(rng, np.random.Generator):
        raise ClvkitError(
            "argument 'rng' must be a numpy.random.Generator. "
            "Suggestion: pass np.random.default_rng(seed)."
        )
    p, q, v, x, m = _gg_inputs(p, q, v, frequency, monetary_value)
    shape = broadcast_shape(p, q, v, x, m)
    return rng.gamma(np.broadcast_to(p * x + q, shape), 1.0 / np.broadcast_to(v + x * m, shape))
