"""The shifted-beta-geometric (sBG) model's math (Fader and Hardie 2007, 2010), vectorised.

Each subscriber churns at the end of each period with probability ``theta ~ Beta(alpha,
beta)``, constant over its life; ``T`` (periods paid) is geometric given ``theta``. With the
convention of :mod:`clvkit.data.contracts` (a customer pays at the start of each period):

- ``P(T = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta)``, ``t = 1, 2, ...``;
- survival ``S(t) = P(T > t) = B(alpha, beta + t) / B(alpha, beta)``, ``S(0) = 1``;
- retention ``r_t = S(t) / S(t - 1) = (beta + t - 1) / (alpha + beta + t - 1)``, rising in
  ``t`` (the cohort keeps its loyal members; no customer changes);
- a customer churned after ``n`` renewals contributes ``ln P(T = n + 1)``, one active after
  ``n`` renewals ``ln S(n)``;
- given ``T > n``, ``theta ~ Beta(alpha, beta + n)`` (the posterior of one customer), so every
  conditional quantity is the unconditional one with ``beta + n`` for ``beta``.

Everything is in log space (``betaln``/``gammaln``), finite for ``n`` up to 1e6 and parameters
from 1e-4 to 1e4.
"""

from __future__ import annotations

import numpy as np
from scipy.special import betaln, digamma, gammaln, hyp2f1, polygamma

__all__ = [
    "derl",
    "derl_hyp2f1",
    "derl_series",
    "derl_sum",
    "expected_lifetime",
    "expected_renewals",
    "log_betaln_ratio",
    "log_p_churn",
    "log_survival",
    "loglik_grad",
    "loglik_terms",
    "retention_rate",
    "survival_curve",
]


def log_survival(alpha, beta, t):
    """``ln S(t) = ln B(alpha, beta + t) - ln B(alpha, beta)`` (broadcast)."""
    return betaln(alpha, beta + t) - betaln(alpha, beta)


def log_p_churn(alpha, beta, t):
    """``ln P(T = t)`` for ``t >= 1`` (broadcast)."""
    return betaln(alpha + 1.0, beta + t - 1.0) - betaln(alpha, beta)


def retention_rate(alpha, beta, t):
    """``r_t = S(t) / S(t - 1) = (beta + t - 1) / (alpha + beta + t - 1)``, ``t >= 1``."""
    return (beta + t - 1.0) / (alpha + beta + t - 1.0)


def loglik_terms(alpha, beta, renewals, churned):
    """Per-row log-likelihood: ``ln P(T = n + 1)`` if churned, ``ln S(n)`` if active."""
    return np.where(
        churned > 0,
        betaln(alpha + 1.0, beta + renewals) - betaln(alpha, beta),
        betaln(alpha, beta + renewals) - betaln(alpha, beta),
    )


def loglik_grad(
    theta: np.ndarray, renewals: np.ndarray, churned: np.ndarray, weight: np.ndarray
) -> tuple[float, np.ndarray]:
    """Weighted log-likelihood and its gradient in ``theta = (ln alpha, ln beta)``."""
    a, b = np.exp(theta)
    ll = loglik_terms(a, b, renewals, churned)
    da, db = loglik_dab(a, b, renewals, churned)
    return float(weight @ ll), np.array([a * (weight @ da), b * (weight @ db)])


def loglik_dab(alpha, beta, renewals, churned):
    """Per-row derivatives of :func:`loglik_terms` in ``alpha`` and ``beta`` (broadcast):
    those of ``ln B(alpha + c, beta + n) - ln B(alpha, beta)``, ``c = 1`` if churned."""
    c = churned > 0
    ps_ab = digamma(alpha + beta)
    s = digamma(alpha + beta + renewals + c)
    da = digamma(alpha + c) - s - digamma(alpha) + ps_ab
    db = digamma(beta + renewals) - s - digamma(beta) + ps_ab
    return da, db


def expected_renewals(alpha, beta, n, m):
    """``sum_{j=1}^{m} S(n + j) / S(n)``: expected renewals among the next ``m`` of a customer
    active after ``n`` renewals (broadcast; ``m >= 0`` integers as floats).

    Closed form from ``B(a - 1, b) - B(a - 1, b + 1) = B(a, b)``: ``(beta + n) / (alpha - 1)
    (1 - R)`` with ``ln R = ln G(b + m + 1) - ln G(b + 1) - ln G(alpha + b + m) + ln G(alpha +
    b)``, ``b = beta + n``; where ``|alpha - 1|`` (or ``|alpha - 1| sum_i 1 / (b + 1 + i)``)
    is below 1e-3 the closed form cancels, and ``ln R`` is summed as a series in ``alpha - 1``.
    """
    alpha, beta, n, m = np.broadcast_arrays(
        *(np.asarray(x, np.float64) for x in (alpha, beta, n, m))
    )
    b = beta + n
    eps = alpha - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        ln_r = gammaln(b + m + 1.0) - gammaln(b + 1.0) - gammaln(alpha + b + m) + gammaln(alpha + b)
        far = b * -np.expm1(ln_r) / eps
        # ln R = -sum_i log1p(eps / c_i), c_i = b + 1 + i: a series in eps / c_i <= 1e-3
        h = [digamma(b + m + 1.0) - digamma(b + 1.0)]  # sum c^-1, c^-2, c^-3, c^-4
        for j, f in ((1, 1.0), (2, -2.0), (3, 6.0)):
            h.append((polygamma(j, b + 1.0) - polygamma(j, b + m + 1.0)) / f)
        xe = -h[0] + eps * h[1] / 2.0 - eps**2 * h[2] / 3.0 + eps**3 * h[3] / 4.0  # ln R / eps
        x = eps * xe
        close = b * -(xe * (1.0 + x / 2.0 + x * x / 6.0 + x**3 / 24.0))
    near = (np.abs(eps) < 1e-3) | (np.abs(eps) * h[0] < 1e-3)
    out = np.where(near, close, far)
    return np.where(m > 0, out, 0.0)


def expected_lifetime(alpha, beta, n=0.0):
    """Expected remaining periods paid, the current one included, of a customer active after
    ``n`` renewals: ``sum_{k>=0} S(n + k) / S(n) = (alpha + beta + n - 1) / (alpha - 1)``
    (``inf`` for ``alpha <= 1``: the mean lifetime does not exist)."""
    alpha, beta, n = np.broadcast_arrays(*(np.asarray(x, np.float64) for x in (alpha, beta, n)))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(alpha > 1.0, (alpha + beta + n - 1.0) / (alpha - 1.0), np.inf)


def derl(alpha, beta, n, d):
    """Discounted expected residual lifetime (Fader and Hardie 2010, eq. 6) of a customer who
    has made ``n`` renewals, valued at the end of its current period, just before the decision
    on renewal ``n + 1``: ``sum_{k>=1} S(n + k) / S(n) (1 + d)^-(k - 1)`` =
    ``(beta + n) / (alpha + beta + n) 2F1(1, beta + n + 1; alpha + beta + n + 1; 1 / (1 + d))``.

    (FH 2010 write it for a customer with ``n - 1`` renewals; theirs at ``n`` is this at
    ``n - 1``.) Times the fee and a margin it is the customer's expected residual value.

    scipy's ``hyp2f1`` gives it to ~1e-12 except where it returns NaN or loses digits: for
    ``beta + n > 500`` or ``alpha`` within 1e-3 of an integer (``c - a - b`` an integer) the
    series is summed instead (:func:`derl_series`).
    """
    alpha, beta, n, d = np.broadcast_arrays(
        *(np.asarray(x, np.float64) for x in (alpha, beta, n, d))
    )
    b = beta + n
    with np.errstate(all="ignore"):
        out = np.asarray(derl_hyp2f1(alpha, beta, n, d), dtype=np.float64)
    slow = ~np.isfinite(out) | (b > 500.0) | (np.abs(alpha - np.round(alpha)) < 1e-3)
    if slow.any():
        out = out.copy()
        out[slow] = derl_series(alpha[slow], b[slow], d[slow])
    return out


def derl_series(alpha, b, d, block: int = 256) -> np.ndarray:
    """The series of :func:`derl` (``b = beta + n``; 1-D arrays), summed ``block`` terms at a
    time (each term is the previous one times ``z (b + k) / (alpha + b + k)``, ``z = 1 / (1 +
    d)``) until the tail, below ``term z / (1 - z)``, is under 1e-16 of the sum (about 40 / d
    terms)."""
    a, b, z = (np.asarray(x, np.float64).ravel() for x in (alpha, b, 1.0 / (1.0 + d)))
    total = np.zeros(a.size)
    term = b / (a + b)  # S(n + 1) / S(n)
    todo = np.arange(a.size)
    k = 1.0
    steps = np.arange(block, dtype=np.float64)
    while todo.size:
        at, bt, zt = a[todo][:, None], b[todo][:, None], z[todo][:, None]
        ratio = zt * (bt + k + steps) / (at + bt + k + steps)  # term k+j+1 / term k+j
        terms = term[todo][:, None] * np.concatenate(
            [np.ones((todo.size, 1)), np.cumprod(ratio[:, :-1], axis=1)], axis=1
        )
        total[todo] += terms.sum(axis=1)
        nxt = terms[:, -1] * ratio[:, -1]
        term[todo] = nxt
        k += block
        done = nxt * zt[:, 0] / (1.0 - zt[:, 0]) < 1e-16 * total[todo]
        todo = todo[~done]
    return total


def derl_hyp2f1(alpha, beta, n, d):
    """:func:`derl` through scipy's ``hyp2f1`` (where it is accurate; see :func:`derl`)."""
    b = np.asarray(beta, np.float64) + n
    return b / (alpha + b) * hyp2f1(1.0, b + 1.0, alpha + b + 1.0, 1.0 / (1.0 + np.asarray(d)))


def derl_sum(alpha, beta, n, d, tol: float = 1e-16, max_terms: int = 10_000_000) -> float:
    """:func:`derl` for scalars by direct summation of the discounted survival ratios (a test
    of the closed form; stops when the remaining terms are below ``tol`` relative)."""
    alpha, beta, n, d = float(alpha), float(beta), float(n), float(d)
    z = 1.0 / (1.0 + d)
    term = (beta + n) / (alpha + beta + n)  # S(n + 1) / S(n)
    total = 0.0
    k = 1
    while k < max_terms:
        total += term
        # the tail is below term * z / (1 - z) (retention < 1)
        if term * z / (1.0 - z) < tol * total:
            break
        term *= z * (beta + n + k) / (alpha + beta + n + k)
        k += 1
    return total


def survival_curve(alpha, beta, t):
    """``S(t)`` (broadcast)."""
    return np.exp(log_survival(alpha, beta, t))


def log_betaln_ratio(alpha, b, k):
    """``ln [B(alpha, b + k) / B(alpha, b)]`` (broadcast): ``ln S(n + k) / S(n)`` with ``b =
    beta + n``."""
    return gammaln(b + k) - gammaln(b) - gammaln(alpha + b + k) + gammaln(alpha + b)
