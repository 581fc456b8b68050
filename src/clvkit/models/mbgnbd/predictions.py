"""Prediction math of the MBG/NBD model (numpy in, numpy out).

Given alive at T, the posterior of an MBG/NBD customer is lambda ~ Gamma(r+x, alpha+T) and
p ~ Beta(a, b+x+1) (it survived x + 1 coin flips, one after each purchase, the first one
included), and its future is the BG/NBD process. A BG/NBD customer with parameters
(r, alpha, a, b+1) has, given alive, exactly this posterior: p ~ Beta(a, (b+1)+x). Its
P(alive at T) is 1 / (1 + a/((b+1)+x-1) ((alpha+T)/(alpha+t_x))^(r+x)) for x > 0, which is the
MBG/NBD one, and 1 for x = 0, where MBG/NBD has 1 / (1 + a/b ((alpha+T)/alpha)^r). So every
conditional prediction of MBG/NBD (P(alive at T+t), expected purchases, P(n purchases), the
expected discounted value) is BG/NBD's at b+1 times :func:`mbg_factor` (1 for x > 0, the
MBG/NBD P(alive at T) for x = 0), plus (1 - factor) on "no purchase" for P(n).
:mod:`clvkit.models.mbgnbd.spec` takes the BG/NBD primitives through the model registry (the
contract), so MBG/NBD inherits their numerics (Gauss-Beta quadrature, no hypergeometric
function; finite for frequency up to 1e4, T up to 1e5, parameters from 1e-4 to 1e4).
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit

__all__ = ["mbg_factor", "mbg_log_odds_dead", "mbg_probability_alive"]


def mbg_log_odds_dead(
    r: ArrayLike,
    alpha: ArrayLike,
    a: ArrayLike,
    b: ArrayLike,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
) -> np.ndarray:
    """log P(dead at T | history) - log P(alive at T | history):
    ``log a - log(b+x) + (r+x) log((alpha+T)/(alpha+t_x))`` with ``t_x = 0`` where ``x = 0``."""
    x = np.asarray(frequency, dtype=np.float64)
    tx = np.where(x > 0, np.asarray(recency, dtype=np.float64), 0.0)
    T = np.asarray(T, dtype=np.float64)
    return np.log(a) - np.log(b + x) + (r + x) * np.log1p((T - tx) / (alpha + tx))


def mbg_probability_alive(
    r: ArrayLike,
    alpha: ArrayLike,
    a: ArrayLike,
    b: ArrayLike,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
) -> np.ndarray:
    """P(alive at T | history) of an MBG/NBD customer, ``expit(-log odds of death)``:
    ``1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x))`` (Batislam et al. 2007), below 1 for
    ``x = 0`` too. Shapes broadcast (``(S, 1)`` draws, ``(n,)`` customers -> ``(S, n)``).

    Examples
    --------
    >>> round(float(mbg_probability_alive(0.5, 5.0, 1.0, 3.0, 0, 0.0, 0.0)), 4)  # b / (a + b)
    0.75
    >>> round(float(mbg_probability_alive(0.5, 5.0, 1.0, 3.0, 2, 10.0, 30.0)), 4)
    0.3755
    """
    return expit(-mbg_log_odds_dead(r, alpha, a, b, frequency, recency, T))


def mbg_factor(
    r: ArrayLike,
    alpha: ArrayLike,
    a: ArrayLike,
    b: ArrayLike,
    frequency: ArrayLike,
    T: ArrayLike,
) -> np.ndarray:
    """MBG/NBD prediction / BG/NBD(r, alpha, a, b+1) prediction: the MBG/NBD P(alive at T) of
    a customer without repeat purchases (``x = 0``), 1 otherwise; ``(S, n)``.

    Examples
    --------
    >>> import numpy as np
    >>> mbg_factor(0.5, 5.0, 1.0, 3.0, np.array([0.0, 2.0]), np.array([0.0, 30.0])).tolist()
    [0.75, 1.0]
    """
    x = np.asarray(frequency, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    zero = x == 0
    shape = np.broadcast_shapes(*(np.shape(v) for v in (r, alpha, a, b)), x.shape)
    out = np.ones(shape)
    if zero.any():
        T0, inv = np.unique(T[zero], return_inverse=True)  # x = 0 rows differ only in T
        pa0 = mbg_probability_alive(r, alpha, a, b, 0.0, 0.0, T0)
        out[..., zero] = np.broadcast_to(pa0, (*shape[:-1], T0.size))[..., inv.ravel()]
    return out
