"""Sufficient-statistic compression and the numpy log-likelihoods of both models.

Customers with identical ``(frequency, recency, T)`` (BG/NBD) or identical
``(frequency, monetary_value)`` (Gamma-Gamma) contribute identical likelihood terms, so each
distinct row is evaluated once and weighted by its count. Terms that depend on the frequency only
(the BG/NBD ``A(x)``, the Gamma-Gamma normalising constants) are evaluated once per distinct
frequency. The numpy versions here (value and gradient on the log-parameter scale) drive the
fast MLE/MAP optimisation; the pytensor versions in the model modules drive NUTS.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np
from scipy.special import digamma, gammaln

__all__ = [
    "BGStats",
    "GGStats",
    "bg_loglik",
    "bg_loglik_grad",
    "compress_bg",
    "compress_gg",
    "gg_loglik",
    "gg_loglik_grad",
]


def _fingerprint(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for arr in arrays:
        a = np.ascontiguousarray(arr)
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class BGStats:
    """Compressed BG/NBD sufficient statistics.

    ``frequency``, ``recency``, ``T``, ``weight`` have one entry per distinct row;
    ``x_values`` / ``x_weight`` list the distinct frequencies and their total weights and
    ``x_index`` maps each row to its distinct frequency.
    """

    frequency: np.ndarray
    recency: np.ndarray
    T: np.ndarray
    weight: np.ndarray
    x_values: np.ndarray
    x_weight: np.ndarray
    x_index: np.ndarray

    @property
    def n_customers(self) -> int:
        return int(self.weight.sum())

    @property
    def n_rows(self) -> int:
        return int(self.weight.size)

    @property
    def fingerprint(self) -> str:
        return _fingerprint(self.frequency, self.recency, self.T, self.weight)


@dataclass(frozen=True)
class GGStats:
    """Compressed Gamma-Gamma sufficient statistics (repeat customers only)."""

    frequency: np.ndarray
    monetary_value: np.ndarray
    weight: np.ndarray
    x_values: np.ndarray
    x_weight: np.ndarray
    x_index: np.ndarray

    @property
    def n_customers(self) -> int:
        return int(self.weight.sum())

    @property
    def n_rows(self) -> int:
        return int(self.weight.size)

    @property
    def fingerprint(self) -> str:
        return _fingerprint(self.frequency, self.monetary_value, self.weight)


def _by_x(frequency: np.ndarray, weight: np.ndarray) -> tuple[np.ndarray, ...]:
    x_values, x_index = np.unique(frequency, return_inverse=True)
    x_weight = np.bincount(x_index, weights=weight, minlength=x_values.size)
    return x_values, x_weight, x_index


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
    x = np.asarray(frequency, dtype=np.float64)
    rows = np.column_stack([x, np.asarray(recency, np.float64), np.asarray(T, np.float64)])
    w_in = np.ones(x.size) if weight is None else np.asarray(weight, np.float64)
    uniq, inv = np.unique(rows, axis=0, return_inverse=True)
    w = np.bincount(inv.ravel(), weights=w_in, minlength=uniq.shape[0])
    x_values, x_weight, x_index = _by_x(uniq[:, 0], w)
    return BGStats(uniq[:, 0], uniq[:, 1], uniq[:, 2], w, x_values, x_weight, x_index)


def compress_gg(
    frequency: np.ndarray,
    monetary_value: np.ndarray,
    weight: np.ndarray | None = None,
) -> GGStats:
    """Collapse repeat customers with identical ``(frequency, monetary_value)``.

    Rows must already be restricted to ``frequency > 0``.

    Examples
    --------
    >>> s = compress_gg(np.array([1, 1, 3]), np.array([10.0, 10.0, 7.5]))
    >>> s.n_rows, s.n_customers
    (2, 3)
    """
    x = np.asarray(frequency, dtype=np.float64)
    rows = np.column_stack([x, np.asarray(monetary_value, np.float64)])
    w_in = np.ones(x.size) if weight is None else np.asarray(weight, np.float64)
    uniq, inv = np.unique(rows, axis=0, return_inverse=True)
    w = np.bincount(inv.ravel(), weights=w_in, minlength=uniq.shape[0])
    x_values, x_weight, x_index = _by_x(uniq[:, 0], w)
    return GGStats(uniq[:, 0], uniq[:, 1], w, x_values, x_weight, x_index)


# --------------------------------------------------------------------------------------------
# BG/NBD: log L = A(x) + log((α+T)^-(r+x) + 1[x>0] a/(b+x-1) (α+t_x)^-(r+x))
# --------------------------------------------------------------------------------------------


def _bg_parts(r: float, alpha: float, a: float, b: float, s: BGStats):
    x = s.frequency
    rx = r + x
    pos = x > 0
    u = -rx * np.log(alpha + s.T)
    bx1 = np.where(pos, b + x - 1.0, 1.0)
    v = np.where(pos, np.log(a) - np.log(bx1) - rx * np.log(alpha + s.recency), -np.inf)
    return x, rx, pos, u, v, bx1


def bg_loglik(r: float, alpha: float, a: float, b: float, s: BGStats) -> float:
    """Total weighted BG/NBD log-likelihood of the compressed data."""
    xv = s.x_values
    A = (
        gammaln(r + xv)
        - gammaln(r)
        + r * np.log(alpha)
        + gammaln(a + b)
        + gammaln(b + xv)
        - gammaln(b)
        - gammaln(a + b + xv)
    )
    _, _, _, u, v, _ = _bg_parts(r, alpha, a, b, s)
    return float(s.x_weight @ A + s.weight @ np.logaddexp(u, v))


def bg_loglik_grad(theta: np.ndarray, s: BGStats) -> tuple[float, np.ndarray]:
    """Log-likelihood and its gradient in ``theta = log([r, alpha, a, b])``."""
    r, alpha, a, b = np.exp(theta)
    xv = s.x_values
    A = (
        gammaln(r + xv)
        - gammaln(r)
        + r * np.log(alpha)
        + gammaln(a + b)
        + gammaln(b + xv)
        - gammaln(b)
        - gammaln(a + b + xv)
    )
    _, rx, pos, u, v, bx1 = _bg_parts(r, alpha, a, b, s)
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


# --------------------------------------------------------------------------------------------
# Gamma-Gamma, density of the mean spend z̄ (x z̄ ~ Gamma(p x, ν), ν ~ Gamma(q, γ)):
# log f = lnΓ(px+q) - lnΓ(px) - lnΓ(q) + q ln γ + ln x + (px-1) ln(x z̄) - (px+q) ln(γ + x z̄)
# --------------------------------------------------------------------------------------------


def gg_loglik(p: float, q: float, v: float, s: GGStats) -> float:
    """Total weighted Gamma-Gamma log-likelihood (density of the mean spend)."""
    xv = s.x_values
    C = gammaln(p * xv + q) - gammaln(p * xv) - gammaln(q) + q * np.log(v) + np.log(xv)
    x, m = s.frequency, s.monetary_value
    xm = x * m
    row = (p * x - 1.0) * np.log(xm) - (p * x + q) * np.log(v + xm)
    return float(s.x_weight @ C + s.weight @ row)


def gg_loglik_grad(theta: np.ndarray, s: GGStats) -> tuple[float, np.ndarray]:
    """Log-likelihood and its gradient in ``theta = log([p, q, v])``."""
    p, q, v = np.exp(theta)
    xv = s.x_values
    C = gammaln(p * xv + q) - gammaln(p * xv) - gammaln(q) + q * np.log(v) + np.log(xv)
    x, m, w = s.frequency, s.monetary_value, s.weight
    xm = x * m
    log_xm, log_vxm = np.log(xm), np.log(v + xm)
    row = (p * x - 1.0) * log_xm - (p * x + q) * log_vxm
    psi_pq = digamma(p * xv + q)
    g_p = s.x_weight @ (xv * (psi_pq - digamma(p * xv))) + w @ (x * (log_xm - log_vxm))
    g_q = s.x_weight @ (psi_pq - digamma(q) + np.log(v)) - w @ log_vxm
    g_v = s.x_weight.sum() * q / v - w @ ((p * x + q) / (v + xm))
    ll = float(s.x_weight @ C + w @ row)
    return ll, np.array([g_p * p, g_q * q, g_v * v])
