"""Gamma-Gamma likelihood, once: compressed statistics, the numpy log-likelihood with gradient
and per customer. The numba kernel (NUTS) and the PyMC graph are tested equal to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy.special import digamma, gammaln

from clvkit.models.stats import WeightedRows, by_frequency, distinct_rows

__all__ = [
    "GGStats",
    "compress_gg",
    "gg_loglik",
    "gg_loglik_customers",
    "gg_loglik_grad",
    "gg_loglik_rows_grad",
]


@dataclass(frozen=True)
class GGStats(WeightedRows):
    """Compressed Gamma-Gamma sufficient statistics (repeat customers only)."""

    KEY: ClassVar[tuple[str, ...]] = ("frequency", "monetary_value", "weight")

    frequency: np.ndarray
    monetary_value: np.ndarray
    weight: np.ndarray
    x_values: np.ndarray
    x_weight: np.ndarray
    x_index: np.ndarray


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
    x, m, w = distinct_rows(frequency, monetary_value, weight=weight)
    return GGStats(x, m, w, *by_frequency(x, w))


# --------------------------------------------------------------------------------------------
# Gamma-Gamma, density of the mean spend z̄ (x z̄ ~ Gamma(p x, ν), ν ~ Gamma(q, γ)):
# log f = lnΓ(px+q) - lnΓ(px) - lnΓ(q) + q ln γ + ln x + (px-1) ln(x z̄) - (px+q) ln(γ + x z̄)
# --------------------------------------------------------------------------------------------


def _c_term(p, q, v, x):
    """The terms of a customer with ``x`` repeat purchases that do not involve the spend."""
    return gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * np.log(v) + np.log(x)


def _row_term(p, q, v, x, log_xm, log_vxm):
    """The spend terms: ``(p x - 1) ln(x z) - (p x + q) ln(v + x z)``."""
    return (p * x - 1.0) * log_xm - (p * x + q) * log_vxm


def gg_loglik(p: float, q: float, v: float, s: GGStats) -> float:
    """Total weighted Gamma-Gamma log-likelihood (density of the mean spend)."""
    xm = s.frequency * s.monetary_value
    row = _row_term(p, q, v, s.frequency, np.log(xm), np.log(v + xm))
    return float(s.x_weight @ _c_term(p, q, v, s.x_values) + s.weight @ row)


def gg_loglik_grad(theta: np.ndarray, s: GGStats) -> tuple[float, np.ndarray]:
    """Log-likelihood and its gradient in ``theta = log([p, q, v])``."""
    p, q, v = np.exp(theta)
    xv = s.x_values
    C = _c_term(p, q, v, xv)
    x, m, w = s.frequency, s.monetary_value, s.weight
    xm = x * m
    log_xm, log_vxm = np.log(xm), np.log(v + xm)
    row = _row_term(p, q, v, x, log_xm, log_vxm)
    psi_pq = digamma(p * xv + q)
    g_p = s.x_weight @ (xv * (psi_pq - digamma(p * xv))) + w @ (x * (log_xm - log_vxm))
    g_q = s.x_weight @ (psi_pq - digamma(q) + np.log(v)) - w @ log_vxm
    g_v = s.x_weight.sum() * q / v - w @ ((p * x + q) / (v + xm))
    ll = float(s.x_weight @ C + w @ row)
    return ll, np.array([g_p * p, g_q * q, g_v * v])


def gg_loglik_rows_grad(
    theta: np.ndarray, frequency: np.ndarray, monetary_value: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The Gamma-Gamma log-likelihood of each repeat customer with its own parameters, and its
    gradient: the base likelihood (:func:`gg_loglik_grad`) with per-row parameters.

    Row ``i`` is ``(frequency[i] > 0, monetary_value[i])`` under ``theta[i] = log([p, q, v])``
    (``(m, 3)``); returns ``ll`` ``(m,)`` and its gradient in the row's ``theta`` ``(m, 3)``.
    With every row at one ``theta0`` the weighted sums are :func:`gg_loglik_grad` of the same
    rows. The compiled twin for many rows is
    :func:`clvkit.models.gamma_gamma.rows.gg_rows_loglik_grad`.
    """
    theta = np.asarray(theta, dtype=np.float64)
    p, q, v = np.exp(theta).T
    x = np.asarray(frequency, dtype=np.float64)
    xm = x * np.asarray(monetary_value, dtype=np.float64)
    log_xm, log_vxm = np.log(xm), np.log(v + xm)
    ll = _c_term(p, q, v, x) + _row_term(p, q, v, x, log_xm, log_vxm)
    psi_pq = digamma(p * x + q)
    grad = np.empty((x.size, 3))
    grad[:, 0] = p * (x * (psi_pq - digamma(p * x)) + x * (log_xm - log_vxm))
    grad[:, 1] = q * (psi_pq - digamma(q) + np.log(v) - log_vxm)
    grad[:, 2] = v * (q / v - (p * x + q) / (v + xm))
    return ll, grad


def gg_loglik_customers(
    p: np.ndarray, q: np.ndarray, v: np.ndarray, frequency: np.ndarray, monetary_value: np.ndarray
) -> np.ndarray:
    """Per-customer Gamma-Gamma log-likelihood (density of the mean spend), ``(S, n)``; 0 for
    customers without a repeat purchase (they carry no spend information). Summed with weights
    over repeat customers it is :func:`gg_loglik`."""
    x = np.asarray(frequency, dtype=np.float64)
    m = np.asarray(monetary_value, dtype=np.float64)
    pos = x > 0
    xs = np.where(pos, x, 1.0)
    xm = xs * np.where(pos, m, 1.0)
    ll = _c_term(p, q, v, xs) + _row_term(p, q, v, xs, np.log(xm), np.log(v + xm))
    return np.where(pos, ll, 0.0)
