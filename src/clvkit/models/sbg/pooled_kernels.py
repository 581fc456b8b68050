"""The pooled sBG's compiled log posterior (:func:`pooled_logp`, :func:`pooled_logp_shaped`)
and its hyperpriors, apart from :mod:`clvkit.models.sbg.pooled` so that the C callback for
nutpie (:mod:`clvkit.models.sbg.pooled_native`) can use them without an import cycle; the
model is described in :mod:`clvkit.models.sbg.pooled`."""

from __future__ import annotations

import math

import numpy as np

from clvkit.utils.numba_cache import njit

__all__ = ["PRIOR_MU_K", "PRIOR_MU_M", "pooled_logp", "pooled_logp_shaped"]

#: (mean, sd) of the Normal priors of mu_m and mu_k; tau_m, tau_k ~ HalfNormal(1).
PRIOR_MU_M = (-1.0, 1.5)
PRIOR_MU_K = (1.0, 1.5)


@njit(nogil=True, error_model="numpy")
def pooled_logp(eta, w_churn, w_active, dims, grad):  # pragma: no cover - compiled
    """Log posterior of the pooled sBG at ``eta = (mu_m, log tau_m, mu_k, log tau_k, z_m[K],
    z_k[K])``; ``grad`` receives its gradient.

    ``w_churn[c * N1 + n]`` / ``w_active[c * N1 + n]`` are the customers of cohort ``c``
    churned / active after ``n`` renewals (``dims = (K, N1)``). Per cohort ``S(n) =
    prod_{i<n} (beta + i) / (alpha + beta + i)`` and the derivatives of its log are accumulated
    renewal by renewal, up to the cohort's last renewal with customers (no special functions,
    and no differences of log-gamma values, which cancel for large parameters).

    ``dims`` may add ``2 K`` modes (``dims[2 + c]`` for ``logit m_c``, ``dims[2 + K + c]`` for
    ``log k_c``): 0 non-centred (``eta`` holds ``z = (u - mu) / tau``), 1 centred (``eta``
    holds ``u = logit m_c`` or ``log k_c`` itself, with its prior ``Normal(mu, tau)``), 2 (both
    of a cohort) centred and whitened, see :func:`pooled_logp_shaped`. The density is the same
    up to a constant (the Jacobian ``tau`` of ``z -> u`` included); only the geometry the
    sampler sees changes (:func:`clvkit.models.sbg.pooled.centring_flags`).
    """
    return pooled_logp_shaped(eta, w_churn, w_active, dims, np.zeros(0), grad)


@njit(nogil=True, error_model="numpy")
def pooled_logp_shaped(eta, w_churn, w_active, dims, shape, grad):  # pragma: no cover
    """:func:`pooled_logp` with whitened cohorts: where both modes of cohort ``c`` are 2,
    ``eta`` holds ``v`` with ``(logit m_c, log k_c) = s + L v``, ``shape[5 c : 5 c + 5] = (s_m,
    s_k, L_11, L_21, L_22)`` (``L`` lower triangular; its constant Jacobian is left out). With
    ``L L^T`` the covariance of the cohort's likelihood, ``v`` is about uncorrelated with unit
    scale, where ``logit m_c`` and ``log k_c`` are strongly correlated (-0.85 on 24 cohorts of
    5,000), which a diagonal mass matrix cannot undo."""
    K = dims[0]
    N1 = dims[1]
    flagged = dims.size >= 2 + 2 * K
    mu_m = eta[0]
    tau_m = math.exp(eta[1])
    mu_k = eta[2]
    tau_k = math.exp(eta[3])
    ll = 0.0
    for j in range(eta.size):
        grad[j] = 0.0
    for c in range(K):
        zm = eta[4 + c]
        zk = eta[4 + K + c]
        cm = dims[2 + c] if flagged else 0
        ck = dims[2 + K + c] if flagged else 0
        white = cm == 2 and ck == 2
        j = 5 * c
        if white:
            um = shape[j] + shape[j + 2] * zm
            uk = shape[j + 1] + shape[j + 3] * zm + shape[j + 4] * zk
        else:
            um = zm if cm != 0 else mu_m + tau_m * zm
            uk = zk if ck != 0 else mu_k + tau_k * zk
        m = 1.0 / (1.0 + math.exp(-um))
        kc = math.exp(uk)
        a = m * kc
        b = (1.0 - m) * kc
        # S(n) = prod_{i<n} (b + i) / (k + i) = p exp(off), kept as a running product (one
        # log per renewal with customers; rescaled before it underflows), and the derivatives
        # of ln S(n): da = -sum_{i<n} 1 / (k + i), db = sum_{i<n} 1 / (b + i) - 1 / (k + i)
        p = 1.0
        off = 0.0
        da = 0.0
        db = 0.0
        ga = 0.0
        gb = 0.0
        inv_a = 1.0 / a
        log_a = math.log(a)
        base = c * N1
        end = N1  # past the cohort's last renewal with customers, nothing is added
        while end > 0 and w_churn[base + end - 1] == 0.0 and w_active[base + end - 1] == 0.0:
            end -= 1
        for n in range(end):
            wc = w_churn[base + n]
            wa = w_active[base + n]
            inv_s = 1.0 / (kc + n)
            if wc != 0.0:  # churned at renewal n: ln S(n) + ln(a / (k + n))
                ll += wc * (off + log_a + math.log(p * inv_s))
                ga += wc * (da + inv_a - inv_s)
                gb += wc * (db - inv_s)
            if wa != 0.0:  # active after n renewals: ln S(n)
                ll += wa * (off + math.log(p))
                ga += wa * da
                gb += wa * db
            bi = b + n
            p *= bi * inv_s
            da -= inv_s
            db += 1.0 / bi - inv_s
            if p < 1e-200:
                off += math.log(p)
                p = 1.0
        g_m = (ga - gb) * m * (1.0 - m) * kc  # d ll / d logit m_c
        g_k = ga * a + gb * b  # d ll / d log k_c
        if cm != 0:  # prior Normal(mu_m, tau_m) of u = logit m_c
            r = (um - mu_m) / tau_m
            ll -= 0.5 * r * r + eta[1]
            grad[0] += r / tau_m
            grad[1] += r * r - 1.0
            g_m -= r / tau_m
            grad[4 + c] = g_m
        else:
            ll -= 0.5 * zm * zm
            grad[0] += g_m
            grad[1] += g_m * tau_m * zm
            grad[4 + c] = g_m * tau_m - zm
        if ck != 0:
            r = (uk - mu_k) / tau_k
            ll -= 0.5 * r * r + eta[3]
            grad[2] += r / tau_k
            grad[3] += r * r - 1.0
            g_k -= r / tau_k
            grad[4 + K + c] = g_k
        else:
            ll -= 0.5 * zk * zk
            grad[2] += g_k
            grad[3] += g_k * tau_k * zk
            grad[4 + K + c] = g_k * tau_k - zk
        if white:  # through u = s + L v
            grad[4 + c] = shape[j + 2] * g_m + shape[j + 3] * g_k
            grad[4 + K + c] = shape[j + 4] * g_k
    # hyperpriors (log tau with its Jacobian: HalfNormal(1) density times tau)
    d0 = (mu_m - PRIOR_MU_M[0]) / PRIOR_MU_M[1]
    d2 = (mu_k - PRIOR_MU_K[0]) / PRIOR_MU_K[1]
    ll += -0.5 * d0 * d0 - 0.5 * d2 * d2
    grad[0] -= d0 / PRIOR_MU_M[1]
    grad[2] -= d2 / PRIOR_MU_K[1]
    ll += -0.5 * tau_m * tau_m + eta[1] - 0.5 * tau_k * tau_k + eta[3]
    grad[1] += 1.0 - tau_m * tau_m
    grad[3] += 1.0 - tau_k * tau_k
    return ll
