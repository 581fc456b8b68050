"""Pareto/NBD numerics, once: the likelihood bracket as two positive integrals.

With ``m = r + x`` the individual likelihood integrated over ``λ ~ Gamma(r, α)`` and
``μ ~ Gamma(s, β)`` is (Schmittlein, Morrison and Colombo 1987; Fader, Hardie and Lee 2005)

    L = Γ(m) α^r β^s / Γ(r) · [(α+T)^-m (β+T)^-s + s ∫_{t_x}^T (α+τ)^-m (β+τ)^-(s+1) dτ].

With ``K(p, q; τ0) = ∫_{τ0}^∞ (α+τ)^-p (β+τ)^-q dτ`` and integration by parts,
``(α+T)^-m (β+T)^-s = m K(m+1, s; T) + s K(m, s+1; T)``, so the bracket is

    bracket = s K(m, s+1; t_x) + m K(m+1, s; T),

a sum of two positive terms (the published form subtracts two Gauss hypergeometric terms and
loses precision there). ``P(alive at T) = (α+T)^-m (β+T)^-s / bracket``.

Each ``K`` with ``A = α+τ0 <= B = β+τ0`` (else swap ``(p, A)`` with ``(q, B)``) is
``A^(1-p) B^-q / (p+q-1) · 2F1(1, q; p+q; ζ)``, ``ζ = 1 - A/B``: a series of positive terms
whose ratio is below ``ζ``, summed until the tail bound ``t_n ζ / (1 - ζ)`` is negligible.
For ``ζ > ZMAX`` (``A`` and ``B`` far apart) the series is slow; there ``K`` is the integral
over ``u = τ - τ0 in [0, U0]`` by composite Gauss-Legendre in ``y = log(1 + u / min(A, B))``
(a log-concave integrand; panels start at the scale of its steepest slope, double up to
``HMAX`` and are at most ``HSCALE`` local widths ``1 / sqrt(curvature)``) plus the series of
the tail ``u > U0 = max(A, B) - 2 min(A, B)``, where ``ζ = 1/2``. Concavity bounds the rest of
the integral once the integrand falls (``exp(g) / |g'|``), so the quadrature stops where that
bound is negligible: its cost is bounded for any parameters (large ``s`` and ``β``, which NUTS
visits in warm-up, used to take ~1 s per gradient). Derivatives of ``log K`` in ``(p, q, A,
B)`` come from the same sums (term by term for the series, under the integral for the
quadrature).

The likelihood, P(alive) and the per-customer log-likelihood evaluate many pairs at once with
:func:`k_table` (series coefficients tabulated once per frequency); :func:`log_k` is the
pair-by-pair route (and the fallback), tested equal.
"""

from __future__ import annotations

import math

import numpy as np

from clvkit.inference.sampling import nb_digamma
from clvkit.utils.numba_cache import njit

__all__ = [
    "HMAX",
    "HSCALE",
    "TOL",
    "ZMAX",
    "log_k",
    "pnbd_row",
]

#: Above this ``ζ`` the series gives way to quadrature (at most ~800 series terms below it).
ZMAX = 0.95
#: Series truncation: the bound on the neglected tail, relative to the sum (1 <= F).
TOL = 1e-14
#: Largest quadrature panel, in ``y = log(1 + u / min(A, B))``.
HMAX = 0.75
#: Panels are at most ``HSCALE`` local widths ``1 / sqrt(curvature)`` of the log integrand.
HSCALE = 1.0
#: Quadrature stops when the bound on the rest is below ``exp(LTOL_STOP)`` of the sum.
LTOL_STOP = math.log(TOL) - 2.0

_x, _w = np.polynomial.legendre.leggauss(12)
GL_X = 0.5 * (_x + 1.0)  # nodes and weights on [0, 1]
GL_W = 0.5 * _w
LOG_GL_W = np.log(GL_W)


@njit(nogil=True, error_model="numpy")
def _series(p, q, c1, A, B, lA, lB, lc1, d, grad):  # pragma: no cover - compiled
    """log K for ``A <= B`` by the positive series; ``d`` gets d log K / d(p, q, A, B)."""
    z = (B - A) / B
    c = c1 + 1.0
    t = 1.0
    F = 1.0
    Fp = 0.0
    Fq = 0.0
    Fz = 0.0
    hp = 0.0
    hq = 0.0
    om = 1.0 - z
    n = 0
    if grad:
        tol = TOL * om * om
        while n < 100000:
            ic = 1.0 / (c + n)
            iq = 1.0 / (q + n)
            ratio = (q + n) * ic
            Fz += (n + 1.0) * t * ratio  # d/dζ of the next term, without dividing by ζ
            hp -= ic
            hq += p * ic * iq
            t *= ratio * z
            n += 1
            F += t
            Fp += t * hp
            Fq += t * hq
            if t * (n + 2.0) * (1.0 + hq - hp) <= tol:
                break
    else:
        tol = TOL * om
        while n < 100000:
            t *= (q + n) / (c + n) * z
            n += 1
            F += t
            if t <= tol:
                break
    lF = math.log1p(F - 1.0)
    if grad:
        d[0] = -lA - 1.0 / c1 + Fp / F
        d[1] = -lB - 1.0 / c1 + Fq / F
        dz = Fz / F
        d[2] = (1.0 - p) / A - dz / B
        d[3] = -q / B + dz * A / (B * B)
    return (1.0 - p) * lA - q * lB - lc1 + lF


@njit(nogil=True, error_model="numpy")
def _series_any(p, q, c1, A, B, lA, lB, lc1, d, grad):  # pragma: no cover - compiled
    """log K by the series, on whichever side makes every term positive."""
    if A <= B:
        return _series(p, q, c1, A, B, lA, lB, lc1, d, grad)
    v = _series(q, p, c1, B, A, lB, lA, lc1, d, grad)
    if grad:
        d[0], d[1] = d[1], d[0]
        d[2], d[3] = d[3], d[2]
    return v


@njit(nogil=True, error_model="numpy")
def _quadrature(p, q, c1, A, B, lc1, d, grad):  # pragma: no cover - compiled
    """log K by Gauss-Legendre over ``[0, U0]`` plus the series of the tail (see module)."""
    small_a = A <= B
    if small_a:
        a0, L, P, Q = A, B, p, q
    else:
        a0, L, P, Q = B, A, q, p
    U0 = L - 2.0 * a0  # the tail's ζ is 1/2
    Y = math.log1p(U0 / a0)
    la0 = math.log(a0)
    h = min(HMAX, 1.0 / max(1.0, p + q))
    lo = 0.0
    M = -np.inf
    S0 = 0.0
    SlA = 0.0
    SlB = 0.0
    SiA = 0.0
    SiB = 0.0
    done = False
    while lo < Y:
        # the log integrand's curvature in y, Q (a0+u)(L-a0)/(L+u)^2, grows on [0, Y]: panels
        # are at most HSCALE local widths at their left end
        u = a0 * math.expm1(lo)
        kap = Q * (a0 + u) * (L - a0) / ((L + u) * (L + u))
        w = min(h, Y - lo)
        if kap * w * w > HSCALE * HSCALE:
            w = HSCALE / math.sqrt(kap)
        lw = math.log(w) + la0
        for i in range(GL_X.size):
            y = lo + w * GL_X[i]
            ey = math.exp(y)
            u = a0 * (ey - 1.0)
            # the smaller scale plus u is a0 e^y: its log is free
            if small_a:
                ApU = a0 * ey
                BpU = L + u
                lApU = la0 + y
                lBpU = math.log(BpU)
            else:
                ApU = L + u
                BpU = a0 * ey
                lApU = math.log(ApU)
                lBpU = la0 + y
            lf = lw + LOG_GL_W[i] + y - p * lApU - q * lBpU  # du = a0 e^y dy
            if lf > M:
                sc = math.exp(M - lf)
                S0 *= sc
                SlA *= sc
                SlB *= sc
                SiA *= sc
                SiB *= sc
                M = lf
            f = math.exp(lf - M)
            S0 += f
            if grad:
                SlA += f * lApU
                SlB += f * lBpU
                SiA += f / ApU
                SiB += f / BpU
        lo += w
        h = min(2.0 * w, HMAX)
        # the log integrand g(y) is concave: once it falls, the rest (tail included) is at
        # most exp(g) / |g'|; stop when that is negligible
        u = a0 * math.expm1(lo)
        slope = 1.0 - P - Q * (a0 + u) / (L + u)
        if slope < 0.0:
            g_end = la0 + lo - p * math.log(A + u) - q * math.log(B + u)
            if g_end - math.log(-slope) + (lo + 2.0) < LTOL_STOP + M + math.log(S0):
                done = True
                break
    l_head = M + math.log(S0)
    if done:
        lk = l_head
        if grad:
            d[0] = -SlA / S0
            d[1] = -SlB / S0
            d[2] = -p * SiA / S0
            d[3] = -q * SiB / S0
        return lk
    At = A + U0
    Bt = B + U0
    dt = np.zeros(4)
    l_tail = _series_any(p, q, c1, At, Bt, math.log(At), math.log(Bt), lc1, dt, grad)
    big = max(l_head, l_tail)
    lk = big + math.log(math.exp(l_head - big) + math.exp(l_tail - big))
    if grad:
        wh = math.exp(l_head - lk)
        wt = math.exp(l_tail - lk)
        d[0] = wh * (-SlA / S0) + wt * dt[0]
        d[1] = wh * (-SlB / S0) + wt * dt[1]
        d[2] = wh * (-p * SiA / S0) + wt * dt[2]
        d[3] = wh * (-q * SiB / S0) + wt * dt[3]
    return lk


@njit(nogil=True, error_model="numpy")
def log_k(p, q, c1, A, B, lA, lB, lc1, d, grad):  # pragma: no cover - compiled
    """``log K = log ∫_0^∞ (A+u)^-p (B+u)^-q du`` for ``c1 = p + q - 1 > 0`` (passed exactly,
    it may be tiny) and ``lA, lB, lc1`` the logs of ``A, B, c1`` (callers share them between
    calls); with ``grad``, ``d`` receives d log K / d(p, q, A, B)."""
    z = abs(B - A) / max(A, B)
    if z <= ZMAX:
        return _series_any(p, q, c1, A, B, lA, lB, lc1, d, grad)
    return _quadrature(p, q, c1, A, B, lc1, d, grad)


@njit(nogil=True, error_model="numpy")
def _bracket(r, alpha, s, beta, x, tx, T, d1, d2, grad):  # pragma: no cover - compiled
    """``log bracket`` and the weights of its two terms (``d1``, ``d2`` get their gradients)."""
    m = r + x
    c1 = m + s
    lc1 = math.log(c1)
    A1, B1, A2, B2 = alpha + tx, beta + tx, alpha + T, beta + T
    u1 = math.log(s) + log_k(m, s + 1.0, c1, A1, B1, math.log(A1), math.log(B1), lc1, d1, grad)
    u2 = math.log(m) + log_k(m + 1.0, s, c1, A2, B2, math.log(A2), math.log(B2), lc1, d2, grad)
    big = max(u1, u2)
    e1 = math.exp(u1 - big)
    e2 = math.exp(u2 - big)
    tot = e1 + e2
    return big + math.log(tot), e1 / tot, e2 / tot


@njit(nogil=True, error_model="numpy")
def pnbd_row(r, alpha, s, beta, x, tx, T, g, d1, d2, grad):  # pragma: no cover - compiled
    """One customer's log-likelihood; with ``grad``, ``g`` receives its gradient in
    ``(r, alpha, s, beta)`` (natural scale). ``d1``, ``d2``: work arrays of 4."""
    lb, w1, w2 = _bracket(r, alpha, s, beta, x, tx, T, d1, d2, grad)
    m = r + x
    ll = math.lgamma(m) - math.lgamma(r) + r * math.log(alpha) + s * math.log(beta) + lb
    if grad:
        g[0] = nb_digamma(m) - nb_digamma(r) + math.log(alpha) + w1 * d1[0]
        g[0] += w2 * (1.0 / m + d2[0])
        g[1] = r / alpha + w1 * d1[2] + w2 * d2[2]
        g[2] = math.log(beta) + w1 * (1.0 / s + d1[1]) + w2 * d2[1]
        g[3] = s / beta + w1 * d1[3] + w2 * d2[3]
    return ll


#: Most series coefficients :func:`k_table` tabulates per frequency (beyond: :func:`log_k`).
NMAX = 2000


@njit(nogil=True, error_model="numpy")
def k_table(
    r, alpha, s, beta, second, xv, lc, qx, ut, qt, lAu, lBu, out_l, out_d, grad
):  # pragma: no cover - compiled
    """``log K`` for many ``(x, τ0)`` pairs sorted by ``x``: the bracket's first terms
    ``K(m, s+1; τ0)`` (``second`` False) or second terms ``K(m+1, s; τ0)`` (True).

    The series coefficients ``(q)_n / (c)_n`` (and their derivatives in ``p`` and ``q``) depend
    on ``x`` and ``s`` only, and the side of the series (``α <= β`` or not) on no pair, so they
    are tabulated once per frequency for the largest ``ζ`` of its pairs and each pair is a
    Horner evaluation in its own ``ζ`` (no division per term); pairs with ``ζ > ZMAX`` use
    :func:`log_k`. Pair ``j`` has frequency ``xv[qx[j]]`` (``lc``: ``log(r + x + s)``) and
    time ``ut[qt[j]]`` (``lAu``, ``lBu``: ``log(α + t)``, ``log(β + t)``); ``out_l[j]`` gets
    ``log K``, ``out_d[j]`` its gradient in ``(p, q, A, B)`` with ``grad``.
    """
    n = qx.size
    swap = alpha > beta
    big = max(alpha, beta)
    gap = abs(beta - alpha)
    cF = np.empty(NMAX)
    cP = np.empty(NMAX)
    cQ = np.empty(NMAX)
    cZ = np.empty(NMAX)
    cB = np.empty(NMAX)
    j = 0
    while j < n:
        kx = qx[j]
        end = j
        zmax = 0.0
        while end < n and qx[end] == kx:
            z = gap / (big + ut[qt[end]])
            if z <= ZMAX and z > zmax:
                zmax = z
            end += 1
        m = r + xv[kx]
        c1 = m + s
        if second:
            p = m + 1.0
            q = s
        else:
            p = m
            q = s + 1.0
        P, Q = (q, p) if swap else (p, q)  # exponents on the smaller and the larger of A, B
        C = c1 + 1.0
        # tabulate a_n = (Q)_n / (C)_n and friends until the tail bound at zmax is negligible
        om = 1.0 - zmax
        tol = TOL * om * om
        a = 1.0
        hp = 0.0
        hq = 0.0
        N = 0
        zn = 1.0
        while N < NMAX:
            ic = 1.0 / (C + N)
            ratio = (Q + N) * ic
            cF[N] = a
            cP[N] = a * hp
            cQ[N] = a * hq
            cZ[N] = (N + 1.0) * a * ratio
            cB[N] = a * (N + 2.0) * (1.0 + hq - hp)  # bounds the tail after term N
            N += 1
            hp -= ic
            hq += P * ic / (Q + N - 1.0)
            a *= ratio
            zn *= zmax
            if a * zn * (N + 2.0) * (1.0 + hq - hp) <= tol:
                break
        ok = N < NMAX
        for jj in range(j, end):
            A = alpha + ut[qt[jj]]
            B = beta + ut[qt[jj]]
            z = gap / (big + ut[qt[jj]])
            if z > ZMAX or not ok:
                out_l[jj] = log_k(p, q, c1, A, B, lAu[qt[jj]], lBu[qt[jj]], lc[kx], out_d[jj], grad)
                continue
            # forward sums, stopped by this pair's own tail bound
            tol_j = TOL * (1.0 - z) * (1.0 - z)
            F = 1.0
            FP = 0.0
            FQ = 0.0
            FZ = cZ[0]
            zn = 1.0
            for i in range(1, N):
                zn *= z
                F += cF[i] * zn
                if grad:
                    FP += cP[i] * zn
                    FQ += cQ[i] * zn
                    FZ += cZ[i] * zn
                if cB[i] * zn <= tol_j:
                    break
            if swap:  # series side: (P, Q) on (B, A)
                lS = lBu[qt[jj]]
                lL = lAu[qt[jj]]
                S = B
                L = A
            else:
                lS = lAu[qt[jj]]
                lL = lBu[qt[jj]]
                S = A
                L = B
            out_l[jj] = (1.0 - P) * lS - Q * lL - lc[kx] + math.log(F)
            if grad:
                iF = 1.0 / F
                dz = FZ * iF
                dP = -lS - 1.0 / c1 + FP * iF
                dQ = -lL - 1.0 / c1 + FQ * iF
                dS = (1.0 - P) / S - dz / L
                dL = -Q / L + dz * S / (L * L)
                if swap:
                    out_d[jj, 0] = dQ
                    out_d[jj, 1] = dP
                    out_d[jj, 2] = dL
                    out_d[jj, 3] = dS
                else:
                    out_d[jj, 0] = dP
                    out_d[jj, 1] = dQ
                    out_d[jj, 2] = dS
                    out_d[jj, 3] = dL
        j = end
