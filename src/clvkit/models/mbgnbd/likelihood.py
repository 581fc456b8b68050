"""MBG/NBD likelihood, once: compressed statistics, the numpy log-likelihood with gradient (MLE,
MAP, Laplace) and per customer (model comparison). The numba kernel (NUTS) and the PyMC graph
are tested equal to it (tests/test_mbgnbd.py).

Given the purchase rate lambda and the dropout probability p, a customer is alive after each
purchase, the first one (at age 0) included, with probability 1 - p. With x repeat purchases,
the last at t_x, and age T:

    L(lambda, p) = (1-p)^(x+1) lambda^x e^(-lambda T) + p (1-p)^x lambda^x e^(-lambda t_x)

(alive at T; or dropped right after the last purchase, for x = 0 right after the first one).
Averaging lambda ~ Gamma(r, alpha) and p ~ Beta(a, b), and using
B(a+1, b+x) / B(a, b+x+1) = a / (b+x):

    log L = A(x) + log((alpha+T)^-(r+x) + a/(b+x) (alpha+t_x)^-(r+x)),
    A(x)  = lnG(r+x) - lnG(r) + r ln alpha + ln B(a, b+x+1) - ln B(a, b)

(Batislam, Denizel and Filiztekin 2007, eq. 4). Unlike BG/NBD the second term is there for
x = 0 too (t_x = 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, gammaln

from clvkit.models.stats import RFMRows, by_frequency, distinct_rows

__all__ = [
    "MBGStats",
    "compress_mbg",
    "mbg_loglik",
    "mbg_loglik_customers",
    "mbg_loglik_grad",
    "mbg_loglik_rows_grad",
]


@dataclass(frozen=True)
class MBGStats(RFMRows):
    """Compressed MBG/NBD sufficient statistics.

    ``frequency``, ``recency`` (0 where the frequency is 0), ``T``, ``weight`` have one entry per
    distinct row; ``x_values`` / ``x_weight`` list the distinct frequencies and their total
    weights and ``x_index`` maps each row to its distinct frequency.
    """

    x_values: np.ndarray
    x_weight: np.ndarray
    x_index: np.ndarray


def compress_mbg(
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    weight: np.ndarray | None = None,
) -> MBGStats:
    """Collapse customers with identical ``(frequency, recency, T)`` into weighted rows.

    Examples
    --------
    >>> s = compress_mbg(np.array([0, 0, 2]), np.array([0.0, 0.0, 3.0]), np.array([5.0, 5.0, 6.0]))
    >>> s.n_rows, s.weight.tolist()
    (2, [2.0, 1.0])
    """
    x = np.asarray(frequency, dtype=np.float64)
    tx = np.where(x > 0, np.asarray(recency, np.float64), 0.0)
    x, tx, t, w = distinct_rows(x, tx, T, weight=weight)
    return MBGStats(x, tx, t, w, *by_frequency(x, w))


def _a_term(r, alpha, a, b, x):
    """A(x) = lnG(r+x) - lnG(r) + r ln alpha + ln B(a, b+x+1) - ln B(a, b)."""
    return (
        gammaln(r + x)
        - gammaln(r)
        + r * np.log(alpha)
        + gammaln(a + b)
        + gammaln(b + x + 1.0)
        - gammaln(b)
        - gammaln(a + b + x + 1.0)
    )


def _uv_terms(r, alpha, a, b, x, tx, T):
    """The two log terms of the history: ``u`` (alive at T) and ``v`` (dropped right after the
    last purchase), with ``r + x``."""
    rx = r + x
    u = -rx * np.log(alpha + T)
    v = np.log(a) - np.log(b + x) - rx * np.log(alpha + tx)
    return rx, u, v


def mbg_loglik(r: float, alpha: float, a: float, b: float, s: MBGStats) -> float:
    """Total weighted MBG/NBD log-likelihood of the compressed data."""
    A = _a_term(r, alpha, a, b, s.x_values)
    _, u, v = _uv_terms(r, alpha, a, b, s.frequency, s.recency, s.T)
    return float(s.x_weight @ A + s.weight @ np.logaddexp(u, v))


def mbg_loglik_grad(theta: np.ndarray, s: MBGStats) -> tuple[float, np.ndarray]:
    """Log-likelihood and its gradient in ``theta = log([r, alpha, a, b])``."""
    r, alpha, a, b = np.exp(theta)
    xv = s.x_values
    A = _a_term(r, alpha, a, b, xv)
    rx, u, v = _uv_terms(r, alpha, a, b, s.frequency, s.recency, s.T)
    lse = np.logaddexp(u, v)
    wu = np.exp(u - lse)
    wv = np.exp(v - lse)
    w = s.weight
    la_t, la_tx = np.log(alpha + s.T), np.log(alpha + s.recency)
    psi_ab, psi_abx = digamma(a + b), digamma(a + b + xv + 1.0)
    g_r = s.x_weight @ (digamma(r + xv) - digamma(r) + np.log(alpha)) - w @ (wu * la_t + wv * la_tx)
    g_alpha = s.x_weight.sum() * r / alpha - w @ (
        wu * rx / (alpha + s.T) + wv * rx / (alpha + s.recency)
    )
    g_a = s.x_weight @ (psi_ab - psi_abx) + (w @ wv) / a
    g_b = s.x_weight @ (psi_ab + digamma(b + xv + 1.0) - digamma(b) - psi_abx) - w @ (
        wv / (b + s.frequency)
    )
    ll = float(s.x_weight @ A + w @ lse)
    return ll, np.array([g_r * r, g_alpha * alpha, g_a * a, g_b * b])


def mbg_loglik_rows_grad(
    theta: np.ndarray, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The MBG/NBD log-likelihood of each row with that row's own parameters, and its gradient.

    The base likelihood (:func:`mbg_loglik_grad`) with per-row parameters: row ``i`` is the
    history ``(frequency[i], recency[i], T[i])`` (recency taken as 0 where the frequency is 0,
    as :func:`compress_mbg` does) under ``theta[i] = log([r, alpha, a, b])`` (``(m, 4)``).
    Returns ``ll`` ``(m,)`` and its gradient in the row's ``theta`` ``(m, 4)``; with every row
    at one ``theta0`` the weighted sums are :func:`mbg_loglik_grad` of the same rows. The
    compiled twin for many rows is :func:`clvkit.models.mbgnbd.rows.mbg_rows_loglik_grad`.
    """
    theta = np.asarray(theta, dtype=np.float64)
    r, alpha, a, b = np.exp(theta).T
    x = np.asarray(frequency, dtype=np.float64)
    tx = np.where(x > 0, np.asarray(recency, dtype=np.float64), 0.0)
    T = np.asarray(T, dtype=np.float64)
    A = _a_term(r, alpha, a, b, x)
    rx, u, v = _uv_terms(r, alpha, a, b, x, tx, T)
    lse = np.logaddexp(u, v)
    wu = np.exp(u - lse)
    wv = np.exp(v - lse)
    la_t, la_tx = np.log(alpha + T), np.log(alpha + tx)
    psi_ab, psi_abx = digamma(a + b), digamma(a + b + x + 1.0)
    grad = np.empty((x.size, 4))
    grad[:, 0] = r * (digamma(r + x) - digamma(r) + np.log(alpha) - (wu * la_t + wv * la_tx))
    grad[:, 1] = alpha * (r / alpha - (wu * rx / (alpha + T) + wv * rx / (alpha + tx)))
    grad[:, 2] = a * (psi_ab - psi_abx + wv / a)
    grad[:, 3] = b * (psi_ab + digamma(b + x + 1.0) - digamma(b) - psi_abx - wv / (b + x))
    return A + lse, grad


def mbg_loglik_customers(
    r: np.ndarray,
    alpha: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
) -> np.ndarray:
    """Per-customer MBG/NBD log-likelihood, ``(S, n)`` for ``(S, 1)`` draws and ``(n,)``
    customers; summed with weights it is :func:`mbg_loglik`.

    Examples
    --------
    >>> ll = mbg_loglik_customers(0.5, 5.0, 1.0, 3.0, np.array([0.0, 2.0]),
    ...                           np.array([0.0, 10.0]), np.array([30.0, 30.0]))
    >>> ll.round(4).tolist()
    [-0.6283, -8.0849]
    """
    x = np.asarray(frequency, dtype=np.float64)
    tx = np.where(x > 0, np.asarray(recency, dtype=np.float64), 0.0)
    T = np.asarray(T, dtype=np.float64)
    _, u, v = _uv_terms(r, alpha, a, b, x, tx, T)
    return _a_term(r, alpha, a, b, x) + np.logaddexp(u, v)
