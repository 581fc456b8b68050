"""MCMC convergence diagnostics in numpy: rank-normalized split R-hat, bulk and tail ESS.

The definitions of Vehtari, Gelman, Simpson, Carpenter and Bürkner (2021), "Rank-normalization,
folding, and localization: an improved R-hat for assessing convergence of MCMC", Bayesian
Analysis 16(2), as ArviZ implements them (``az.rhat``, ``az.ess(method="bulk"|"tail")``); the
tests check agreement with ArviZ. Written here so a fit does not import ArviZ (about 2.5 s).
Each function takes draws of shape ``(chain, draw)``.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

__all__ = ["ess_bulk", "ess_mean", "ess_tail", "rhat"]


def _split_chains(x: np.ndarray) -> np.ndarray:
    """Each chain cut into its first and second half (the middle draw dropped if odd)."""
    half = x.shape[1] // 2
    return np.concatenate([x[:, :half], x[:, x.shape[1] - half :]], axis=0)


def _z_scale(x: np.ndarray) -> np.ndarray:
    """Normal scores of the pooled ranks (average ranks for ties), Blom's offset 3/8."""
    flat = x.ravel()
    order = np.argsort(flat, kind="mergesort")
    ranks = np.empty(flat.size)
    sorted_vals = flat[order]
    # average rank of each run of ties
    edges = np.flatnonzero(np.diff(sorted_vals) != 0) + 1
    starts = np.concatenate([[0], edges])
    ends = np.concatenate([edges, [flat.size]])
    avg = (starts + ends + 1) / 2.0  # ranks are 1-based: mean of start+1 .. end
    ranks[order] = np.repeat(avg, ends - starts)
    return ndtri((ranks - 0.375) / (flat.size + 0.25)).reshape(x.shape)


def _rhat_basic(x: np.ndarray) -> float:
    n = x.shape[1]
    chain_var = x.var(axis=1, ddof=1)
    between = n * x.mean(axis=1).var(ddof=1)
    within = chain_var.mean()
    return float(np.sqrt((between / within + n - 1) / n))


def rhat(x: np.ndarray) -> float:
    """Rank-normalized split R-hat: the larger of the bulk and the folded (tail) R-hat."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] < 2 or x.shape[1] < 4:
        return float("nan")
    split = _split_chains(x)
    bulk = _rhat_basic(_z_scale(split))
    tail = _rhat_basic(_z_scale(np.abs(split - np.median(split))))
    return max(bulk, tail)


def _autocov(x: np.ndarray) -> np.ndarray:
    """Autocovariance of each chain along the draws (FFT, biased normalisation)."""
    n = x.shape[1]
    m = 1 << int(2 * n - 1).bit_length()  # power of two >= 2n: no circular wrap-around
    centred = x - x.mean(axis=1, keepdims=True)
    f = np.fft.rfft(centred, n=m, axis=1)
    return np.fft.irfft(f * np.conj(f), n=m, axis=1)[:, :n] / n


def _ess(x: np.ndarray) -> float:
    """Effective sample size of ``(chain, draw)`` draws: Geyer's initial monotone sequence of
    the multi-chain autocorrelation estimate."""
    n_chain, n_draw = x.shape
    if np.ptp(x) < np.finfo(np.float64).resolution:  # constant: as many as draws (ArviZ)
        return float(x.size)
    acov = _autocov(x)
    mean_var = acov[:, 0].mean() * n_draw / (n_draw - 1.0)
    var_plus = mean_var * (n_draw - 1.0) / n_draw
    if n_chain > 1:
        var_plus += x.mean(axis=1).var(ddof=1)
    rho = np.zeros(n_draw)
    rho[0] = 1.0
    even = 1.0
    odd = 1.0 - (mean_var - acov[:, 1].mean()) / var_plus
    rho[1] = odd
    t = 1
    while t < n_draw - 3 and even + odd > 0.0:
        even = 1.0 - (mean_var - acov[:, t + 1].mean()) / var_plus
        odd = 1.0 - (mean_var - acov[:, t + 2].mean()) / var_plus
        if even + odd >= 0.0:
            rho[t + 1] = even
            rho[t + 2] = odd
        t += 2
    max_t = t - 2
    if even > 0.0:  # antithetic chains: keep the last positive even lag
        rho[max_t + 1] = even
    t = 1
    while t <= max_t - 2:  # make the paired sums monotone
        if rho[t + 1] + rho[t + 2] > rho[t - 1] + rho[t]:
            rho[t + 1] = (rho[t - 1] + rho[t]) / 2.0
            rho[t + 2] = rho[t + 1]
        t += 2
    total = n_chain * n_draw
    tau = -1.0 + 2.0 * rho[: max_t + 1].sum() + rho[max_t + 1 : max_t + 2].sum()
    tau = max(tau, 1.0 / np.log10(total))
    return float(total / tau)


def _quantile7(x: np.ndarray, prob: float) -> float:
    """Type-7 quantile written as ``scipy.stats.mstats.mquantiles(alphap=1, betap=1)`` (ArviZ's
    choice) computes it, so the indicator ``x <= q`` matches ArviZ's at interpolation ties."""
    s = np.sort(x, axis=None)
    n = s.size
    aleph = n * prob + (1.0 - prob)
    k = int(np.floor(np.clip(aleph, 1, n - 1)))
    gamma = float(np.clip(aleph - k, 0.0, 1.0))
    return float((1.0 - gamma) * s[k - 1] + gamma * s[k])


def ess_bulk(x: np.ndarray) -> float:
    """Bulk effective sample size: ESS of the rank-normalized split chains."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[1] < 4:
        return float("nan")
    return _ess(_z_scale(_split_chains(x)))


def ess_tail(x: np.ndarray) -> float:
    """Tail effective sample size: the smaller ESS of the 5% and 95% quantile indicators."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[1] < 4:
        return float("nan")
    lo, hi = _quantile7(x, 0.05), _quantile7(x, 0.95)
    return min(
        _ess(_split_chains((x <= lo).astype(np.float64))),
        _ess(_split_chains((x <= hi).astype(np.float64))),
    )


def ess_mean(x: np.ndarray) -> float:
    """ESS of the mean of the draws (split chains, no rank normalization; ArviZ's "mean")."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[1] < 4:
        return float("nan")
    return _ess(_split_chains(x))
