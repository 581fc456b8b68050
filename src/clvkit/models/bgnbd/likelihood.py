"""BG/NBD likelihood, once: compressed statistics, the numpy log-likelihood with gradient (MLE,
MAP, Laplace) and per customer (model comparison). The numba kernel (NUTS) and the PyMC graph
are tested equal to it.

log L = A(x) + log((alpha+T)^-(r+x) + 1[x>0] a/(b+x-1) (alpha+t_x)^-(r+x)), with
A(x) = lnG(r+x) - lnG(r) + r ln alpha + ln B(a, b+x) - ln B(a, b) (Fader, Hardie and Lee 2005,
eq. 6).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, gammaln

from clvkit.models.stats import RFMRows, by_frequency, distinct_rows

__all__ = [
    "BGStats",
    "bg_loglik",
    "bg_loglik_customers",
    "bg_loglik_grad",
    "bg_loglik_rows_grad",
    "compress_bg",
]


@dataclass(frozen=True)
class BGStats(RFMRows):
    """Compressed BG/NBD sufficient statistics.

    ``frequency``, ``recency``, ``T``, ``weight`` have one entry per distinct row;
    ``x_values`` / ``x_weight`` list the distinct frequencies and their total weights and
    ``x_index`` maps each row to its distinct frequency.
    """

    x_values: np.ndarray
    x_weight: np.ndarray
    x_index: np.ndarray


def compress_bg(
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
    weight: np.ndarray | None = None,
) -> BGStats:
    """Collapse customers with identical ``(frequency, recency, T)`` into weighted rows.

    Examples
    --------
    >>> s = compress_bg(np.array([0, 0, 2]), np.array([0.0, 0.0, 3.0]), np.array([5.0, 5.0, 6.0]))
    >>> s.n_rows, s.weight.tolist()
    (2, [2.0, 1.0])
    """
    x, tx, t, w = distinct_rows(frequency, recency, T, weight=weight)
    return BGStats(x, tx, t, w, *by_frequency(x, w))


# --------------------------------------------------------------------------------------------
# BG/NBD: log L = A(x) + log((α+T)^-(r+x) + 1[x>0] a/(b+x-1) (α+t_x)^-(r+x))
# --------------------------------------------------------------------------------------------


def _a_term(r, alpha, a, b, x):
    """A(x) = lnG(r+x) - lnG(r) + r ln alpha + ln B(a, b+x) - ln B(a, b), as gamma functions."""
    return (
        gammaln(r + x)
        - gammaln(r)
        + r * np.log(alpha)
        + gammaln(a + b)
        + gammaln(b + x)
        - gammaln(b)
        - gammaln(a + b + x)
    )


def _uv_terms(r, alpha, a, b, x, tx, T):
    """The two log terms of the history: ``u`` (alive at T) and ``v`` (died after the last
    purchase; -inf when x = 0), with ``r + x``, ``x > 0`` and ``b + x - 1`` (1 when x = 0)."""
    rx = r + x
    pos = x > 0
    u = -rx * np.log(alpha + T)
    bx1 = np.where(pos, b + x - 1.0, 1.0)
    v = np.where(pos, np.log(a) - np.log(bx1) - rx * np.log(alpha + tx), -np.inf)
    return rx, pos, u, v, bx1


def bg_loglik(r: float, alpha: float, a: float, b: float, s: BGStats) -> float:
    """Total weighted BG/NBD log-likelihood of the compressed data."""
    A = _a_term(r, alpha, a, b, s.x_values)
    _, _, u, v, _ = _uv_terms(r, alpha, a, b, s.frequency, s.recency, s.T)
    return float(s.x_weight @ A + s.weight @ np.logaddexp(u, v))


def bg_loglik_grad(theta: np.ndarray, s: BGStats) -> tuple[float, np.ndarray]:
    """Log-likelihood and its gradient in ``theta = log([r, alpha, a, b])``."""
    r, alpha, a, b = np.exp(theta)
    xv = s.x_values
    A = _a_term(r, alpha, a, b, xv)
    rx, pos, u, v, bx1 = _uv_terms(r, alpha, a, b, s.frequency, s.recency, s.T)
    lse = np.logaddexp(u, v)
    wu = np.exp(u - lse)
    wv = np.exp(v - lse)  # 0 where x == 0
    w = s.weight
    la_t, la_tx = np.log(alpha + s.T), np.log(alpha + s.recency)
    psi_ab, psi_abx = digamma(a + b), digamma(a + b + xv)
    g_r = s.x_weight @ (digamma(r + xv) - digamma(r) + np.log(alpha)) - w @ (wu * la_t + wv * la_tx)
    g_alpha = s.x_weight.sum() * r / alpha - w @ (
        wu * rx / (alpha + s.T) + wv * rx / (alpha + s.recency)
    )
    g_a = s.x_weight @ (psi_ab - psi_abx) + (w @ wv) / a
    g_b = s.x_weight @ (psi_ab + digamma(b + xv) - digamma(b) - psi_abx) - w @ (
        np.where(pos, wv / bx1, 0.0)
    )
    ll = float(s.x_weight @ A + w @ lse)
    grad = np.array([g_r * r, g_alpha * alpha, g_a * a, g_b * b])
    return ll, grad


def bg_loglik_rows_grad(
    theta: np.ndarray, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The BG/NBD log-likelihood of each row with that row's own parameters, and its gradient.

    The base likelihood (:func:`bg_loglik_grad`) with per-row parameters: row ``i`` is the
    history ``(frequency[i], recency[i], T[i])`` under ``theta[i] = log([r, alpha, a, b])``.
    With every row at one ``theta0``, ``weights @ ll`` and ``weights @ grad`` are
    :func:`bg_loglik_grad` of the same rows. The compiled twin for many rows is
    :func:`clvkit.models.bgnbd.rows.bg_rows_loglik_grad` (tested equal).

    Parameters
    ----------
    theta : numpy.ndarray
        ``(m, 4)`` unconstrained (log) parameters per row.
    frequency, recency, T : numpy.ndarray
        ``(m,)`` histories.

    Returns
    -------
    ll : numpy.ndarray
        ``(m,)`` log-likelihood of each row.
    grad : numpy.ndarray
        ``(m, 4)`` its gradient in the row's ``theta``.
    """
    theta = np.asarray(theta, dtype=np.float64)
    r, alpha, a, b = np.exp(theta).T
    x = np.asarray(frequency, dtype=np.float64)
    tx = np.asarray(recency, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    A = _a_term(r, alpha, a, b, x)
    rx, pos, u, v, bx1 = _uv_terms(r, alpha, a, b, x, tx, T)
    lse = np.logaddexp(u, v)
    wu = np.exp(u - lse)
    wv = np.exp(v - lse)  # 0 where x == 0
    la_t, la_tx = np.log(alpha + T), np.log(alpha + tx)
    psi_ab, psi_abx = digamma(a + b), digamma(a + b + x)
    grad = np.empty((x.size, 4))
    grad[:, 0] = r * (digamma(r + x) - digamma(r) + np.log(alpha) - (wu * la_t + wv * la_tx))
    grad[:, 1] = alpha * (r / alpha - (wu * rx / (alpha + T) + wv * rx / (alpha + tx)))
    grad[:, 2] = a * (psi_ab - psi_abx + wv / a)
    grad[:, 3] = b * (psi_ab + digamma(b + x) - digamma(b) - psi_abx - np.where(pos, wv / bx1, 0.0))
    return A + lse, grad


def bg_loglik_customers(
    r: np.ndarray,
    alpha: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    frequency: np.ndarray,
    recency: np.ndarray,
    T: np.ndarray,
) -> np.ndarray:
    """Per-customer BG/NBD log-likelihood, ``(S, n)`` for ``(S, 1)`` draws and ``(n,)``
    customers; summed with weights it is :func:`bg_loglik`.
    """
    x = np.asarray(frequency, dtype=np.float64)
    tx = np.asarray(recency, dtype=np.float64)
    T = np.asarray(T, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        _, _, u, v, _ = _uv_terms(r, alpha, a, b, x, tx, T)
    return _a_term(r, alpha, a, b, x) + np.logaddexp(u, v)
