"""Compiled kernels for BG/NBD's expected discounted CLV (:mod:`clvkit.models.bgnbd.cashflow`).

For a customer alive at T with x repeat purchases (k = r + x, c = alpha + T, gamma = 1/c,
p ~ Beta(a, b + x)) the expected method needs, per posterior draw,

    R = sum_j w_j F(t_j gamma),   F(z) = E_p[(1 - (1 + p z)^-k) / p]   (discounted purchases)
    C = sum_j c_j G(s_j gamma),   G(z) = E_p[(1 + p z)^-k]             (discounted alive periods)

and F(H gamma) (purchases in the horizon). F and G are averages over p, taken with a Gauss rule
for the exact Beta(a, b + x) weight (Golub-Welsch, as in :mod:`clvkit.models.bgnbd.gauss`), one rule per
(draw, distinct x) with its own node count (:func:`clvkit.models.bgnbd.gauss.n_nodes_for`'s criterion).

Customers sharing x differ only in gamma. ``G = 2F1(k, a; a + b + x; -z)`` and ``F' = k 2F1(k + 1,
...)`` solve the hypergeometric equation, so around a centre z0 = t_j gamma0 their Taylor
coefficients follow a three-term recurrence from the value and slope at z0 (one Gauss average each,
sharing one power per node). Summed over the horizons with their weights, R and C become one
polynomial in (gamma - gamma0) per (draw, x, range of T): a handful of transcendental calls per
horizon and range instead of per horizon and customer. Truncation is checked term by term (to
rounding); the recurrence's other solution is singular at z = 0, so rounding errors grow like
(1 - theta)^-(a + b + x - 1) with theta the relative half-width of the gamma range, and ranges are
cut so this stays below ~1e3. Single customers and ranges where the series does not converge
are evaluated node by node (``-expm1(-k log1p(p z)) / p``), which is the route of
:mod:`clvkit.models.bgnbd.predictions`.

All kernels are compiled with ``nogil=True`` (customer chunks run on threads) and
cached on disk (:mod:`clvkit.utils.numba_cache`); results do not depend on threading.
"""

from __future__ import annotations

import math

import numpy as np

from clvkit.models.bgnbd.gauss import bulk_log_range, node_count
from clvkit.utils.numba_cache import njit

__all__ = ["alive_values", "assemble", "draw_order", "pair_sums"]

_TINY = np.finfo(np.float64).tiny
_EPS = np.finfo(np.float64).eps
_N_MIN, _N_MAX, _TOL = 6, 128, 1e-10  # as clvkit.models.bgnbd.gauss.n_nodes_for
_M_MAX = 60  # Taylor terms before a range falls back to node-by-node evaluation
_LOG_AMP = math.log(30.0)  # bound on the error growth of the recurrence
_TOL_SERIES = 1e-12  # quadrature tolerance of groups that may take the series route
_SMALL_GROUP = 2  # ranges with fewer customers go node by node

_jit = njit(nogil=True, error_model="numpy")


def draw_order(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Order in which :func:`alive_values` visits the draws: a snake over 32 cells of log a,
    by b within a cell, so consecutive Beta(a, b + x) rules are close and Newton from the
    previous one converges in a few steps. The order changes no result beyond rounding."""
    la = np.log(a)
    cell = np.floor((la - la.min()) / (np.ptp(la) + 1e-300) * 31.999)
    return np.lexsort((np.where(cell % 2 == 0, b, -b), cell)).astype(np.int64)


_n_nodes = _jit(node_count)  # clvkit.models.bgnbd.gauss's rule, compiled
_bulk = _jit(bulk_log_range)


@_jit
def _jacobi(a, b, n, diag, off):
    """Recurrence coefficients of Beta(a, b), as :func:`clvkit.models.bgnbd.gauss._jacobi_matrix`."""
    s = a + b - 2.0
    diag[0] = a / (a + b)
    for m in range(1, n):
        tms = 2.0 * m + s
        diag[m] = (2.0 * m * (m + s + 1.0) + s * a) / (tms * (tms + 2.0))
    for m in range(1, n):
        tks = 2.0 * m + s
        ratio = 1.0 if m == 1 else (m + s) / (tks - 1.0)
        off[m - 1] = math.sqrt(
            m * (m + b - 1.0) * (m + a - 1.0) * ratio / (tks * tks * (tks + 1.0))
        )


@_jit
def _ql_nodes(diag, off, n, d, e):
    """Eigenvalues of the symmetric tridiagonal matrix (implicit QL, Wilkinson shifts) into d."""
    for i in range(n):
        d[i] = diag[i]
        e[i] = off[i] if i < n - 1 else 0.0
    for lo in range(n):
        for _ in range(100):
            m = lo
            while m < n - 1:
                dd = abs(d[m]) + abs(d[m + 1])
                if abs(e[m]) <= _EPS * dd:
                    break
                m += 1
            if m == lo:
                break
            g = (d[lo + 1] - d[lo]) / (2.0 * e[lo])
            rr = math.sqrt(g * g + 1.0) if abs(g) < 1e150 else abs(g)
            g = d[m] - d[lo] + e[lo] / (g + math.copysign(rr, g))
            sn, cs, p = 1.0, 1.0, 0.0
            i = m - 1
            underflow = False
            while i >= lo:
                f = sn * e[i]
                bb = cs * e[i]
                rr = math.sqrt(f * f + g * g)  # entries are at most 1: no overflow
                e[i + 1] = rr
                if rr == 0.0:
                    d[i + 1] -= p
                    e[m] = 0.0
                    underflow = True
                    break
                sn = f / rr
                cs = g / rr
                g = d[i + 1] - p
                rr = (d[i] - g) * sn + 2.0 * cs * bb
                p = sn * rr
                d[i + 1] = g + p
                g = cs * rr - bb
                i -= 1
            if underflow:
                continue
            d[lo] -= p
            e[lo] = g
            e[m] = 0.0
    for i in range(1, n):  # insertion sort (QL leaves them nearly sorted)
        v = d[i]
        j = i - 1
        while j >= 0 and d[j] > v:
            d[j + 1] = d[j]
            j -= 1
        d[j + 1] = v
    for i in range(n):  # eigenvalues carry an absolute error ~ eps; keep them inside (0, 1]
        d[i] = min(max(d[i], _TINY), 1.0)


@_jit
def _newton_nodes(diag, off, n, x, work):
    """Polish guesses ``x[:n]`` into the zeros of the degree-n orthogonal polynomial.

    Newton on the three-term recurrence (orthonormal scaling), all nodes at once. Returns True
    only if every step fell below 1e-12 relative (so, by quadratic convergence, the nodes are
    at rounding level), the nodes lie in (0, 1) and are strictly increasing: then they are n
    distinct zeros, i.e. exactly the Gauss nodes.
    """
    inv_off = work[0]
    p0, p1, d0, d1, st = work[1], work[2], work[3], work[4], work[5]
    for m in range(n - 1):
        inv_off[m] = 1.0 / off[m]
    for _ in range(10):
        for i in range(n):
            p0[i], p1[i], d0[i], d1[i] = 0.0, 1.0, 0.0, 0.0
        for m in range(1, n + 1):
            e_prev = off[m - 2] if m >= 2 else 0.0
            dm = diag[m - 1]
            sc = inv_off[m - 1] if m < n else 1.0  # the last one only up to a constant
            for i in range(n):
                t = x[i] - dm
                p2 = (t * p1[i] - e_prev * p0[i]) * sc
                d2 = (p1[i] + t * d1[i] - e_prev * d0[i]) * sc
                p0[i], p1[i], d0[i], d1[i] = p1[i], p2, d1[i], d2
        done = True
        for i in range(n):
            st[i] = p1[i] / d1[i]
            x[i] -= st[i]
            if not abs(st[i]) <= 1e-12 * abs(x[i]):  # also catches nan
                done = False
        if done:
            for i in range(n):
                if not (0.0 < x[i] < 1.0) or (i > 0 and x[i] - x[i - 1] <= 1e-10 * x[i]):
                    return False
            return True
    return False


@_jit
def _weights(diag, off, n, nodes, weights, wp):
    """Gauss weights 1 / sum_m P_m(x)^2 (normalized to sum 1) and weights / nodes."""
    # four nodes at a time: independent recurrences interleaved (each is a chain of divisions)
    for i0 in range(0, n, 4):
        x0, x1 = nodes[i0], nodes[min(i0 + 1, n - 1)]
        x2, x3 = nodes[min(i0 + 2, n - 1)], nodes[min(i0 + 3, n - 1)]
        a0, a1, a2, a3 = 0.0, 0.0, 0.0, 0.0
        c0, c1, c2, c3 = 1.0, 1.0, 1.0, 1.0
        t0, t1, t2, t3 = 1.0, 1.0, 1.0, 1.0
        for m in range(1, n):
            e = off[m - 2] if m >= 2 else 0.0
            d = diag[m - 1]
            o = off[m - 1]
            a0, c0 = c0, ((x0 - d) * c0 - e * a0) / o
            a1, c1 = c1, ((x1 - d) * c1 - e * a1) / o
            a2, c2 = c2, ((x2 - d) * c2 - e * a2) / o
            a3, c3 = c3, ((x3 - d) * c3 - e * a3) / o
            t0 += c0 * c0
            t1 += c1 * c1
            t2 += c2 * c2
            t3 += c3 * c3
        weights[i0] = 1.0 / t0
        if i0 + 1 < n:
            weights[i0 + 1] = 1.0 / t1
        if i0 + 2 < n:
            weights[i0 + 2] = 1.0 / t2
        if i0 + 3 < n:
            weights[i0 + 3] = 1.0 / t3
    total = 0.0
    for i in range(n):
        total += weights[i]
    for i in range(n):
        weights[i] /= total
        wp[i] = weights[i] / nodes[i]


@_jit
def _beta_rule(a, b, n, rule, scratch, warm):
    """n-point Gauss rule for Beta(a, b) (Golub-Welsch, as :func:`beta_gauss_rule`) into
    ``rule`` = (nodes, weights, weights / nodes); ``scratch`` = (diag, off, work).

    With ``warm`` the incoming ``nodes[:n]`` (the rule of a nearby Beta) are polished by
    Newton; if that is not certain to have found every node, implicit QL decides.
    """
    nodes, weights, wp = rule
    diag, off, work = scratch
    _jacobi(a, b, n, diag, off)
    if not (warm and n >= 2 and _newton_nodes(diag, off, n, nodes, work)):
        _ql_nodes(diag, off, n, nodes, work[0])
    _weights(diag, off, n, nodes, weights, wp)


@_jit
def _direct(k, gam, rule, n, grid, i_h):
    """(R, F(H gamma), C) for one customer, node by node; ``rule`` = (nodes, weights,
    weights / nodes), ``grid`` = (times, w_rev, w_cost)."""
    nodes, wts, wp = rule
    times, w_rev, w_cost = grid
    rev, fh, cost = 0.0, 0.0, 0.0
    for j in range(times.size):
        z = times[j] * gam
        if z == 0.0:  # F = 0, G = 1
            cost += w_cost[j]
            continue
        need_g = w_cost[j] != 0.0
        if w_rev[j] == 0.0 and not need_g and j != i_h:  # adds +0.0 (f, g >= 0): skip it
            continue
        f, g = 0.0, 0.0
        for i in range(n):
            lg = -k * math.log1p(nodes[i] * z)
            if lg > -0.5:
                em = math.expm1(lg)
                q = em + 1.0
            else:
                q = math.exp(lg)
                em = q - 1.0
            f -= wp[i] * em
            if need_g:
                g += wts[i] * q
        rev += w_rev[j] * f
        cost += w_cost[j] * g
        if j == i_h:
            fh = f
    return rev, fh, cost


_RECIP = 1.0 / ((np.arange(_M_MAX) + 1.0) * (np.arange(_M_MAX) + 2.0))


@_jit
def _series(y0, y1, hyp, z0, theta, out, m_max):
    """Scaled Taylor coefficients c_m = y^(m)(z0) eta^m / m! of y = 2F1(al, be; gc; -z),
    ``hyp`` = (al, be, gc).

    ``y0, y1``: value and scaled slope; eta = theta z0. Writes ``out[:m]``, returns the
    number of terms m after which two consecutive terms are below eps |y0| / 4 (so
    |y(z0 + eta u) - sum_m c_m u^m| ~ eps |y0| on |u| <= 1), or -1 if ``m_max`` is not enough.
    """
    al, be, gc = hyp
    out[0] = y0
    out[1] = y1
    q2 = theta * theta * z0 / (1.0 + z0)
    q1 = theta / (1.0 + z0)
    a1 = 1.0 + 2.0 * z0
    a0 = gc + (al + be + 1.0) * z0
    tol = 0.25 * _EPS * abs(y0)
    for m in range(m_max - 2):
        am = a1 * m + a0
        out[m + 2] = (
            -((m + al) * (m + be) * q2 * out[m] + (m + 1.0) * am * q1 * out[m + 1]) * _RECIP[m]
        )
        if m >= 1 and abs(out[m + 2]) + abs(out[m + 1]) <= tol:
            return m + 3
        if not math.isfinite(out[m + 2]):
            return -1
    return -1


@_jit
def _range_poly(beta, gam0, theta, rule, n, grid, i_h, work):
    """Polynomials in u = (gamma - gamma0) / (theta gamma0) of R, F(H gamma) and C over a range.

    ``beta`` = (k, a, b + x); ``rule`` and ``grid`` as :func:`_direct`; ``work`` = (poly,
    buf): ``poly`` (3, m_max) receives the coefficients. Returns the number of terms, or -1
    when a series does not converge (the caller then goes node by node).
    """
    k, a, bx = beta
    nodes, wts, wp = rule
    times, w_rev, w_cost = grid
    poly, buf = work
    m_max = poly.shape[1]
    for row in range(3):
        for m in range(m_max):
            poly[row, m] = 0.0
    m_used = 1
    for j in range(times.size):
        z0 = times[j] * gam0
        if z0 == 0.0:
            poly[2, 0] += w_cost[j]
            continue
        need_f = w_rev[j] != 0.0 or j == i_h
        need_g = w_cost[j] != 0.0
        if not (need_f or need_g):  # a horizon without weight adds nothing
            continue
        f0, g0, g1, h0, h1 = 0.0, 0.0, 0.0, 0.0, 0.0
        for i in range(n):
            pz = nodes[i] * z0
            lg = -k * math.log1p(pz)
            if lg > -0.5:
                em = math.expm1(lg)
                q = em + 1.0  # (1 + p z0)^-k
            else:
                q = math.exp(lg)
                em = q - 1.0
            inv = 1.0 / (1.0 + pz)
            w = wts[i]
            wq = w * q
            f0 -= wp[i] * em  # F(z0)
            if need_g:
                g0 += wq  # G(z0)
                g1 += wq * nodes[i] * inv  # -G'(z0) / k
            h0 += wq * inv  # E[(1 + p z0)^-(k+1)] = F'(z0) / k
            h1 += wq * nodes[i] * inv * inv  # -d/dz of it / (k + 1)
        eta = theta * z0
        if need_f:
            # F' / k = 2F1(k + 1, a; a + b'; -z): F(z0 + eta u) = f0 + sum_m k eta c_m u^(m+1)/(m+1)
            hyp = (k + 1.0, a, a + bx)
            m = _series(h0, -(k + 1.0) * h1 * eta, hyp, z0, theta, buf, m_max - 1)
            if m < 0:
                return -1
            m_used = max(m_used, m + 1)
            for row in range(2):
                wj = w_rev[j] if row == 0 else (1.0 if j == i_h else 0.0)
                if wj != 0.0:
                    poly[row, 0] += wj * f0
                    for mm in range(m):
                        poly[row, mm + 1] += wj * k * eta * buf[mm] / (mm + 1.0)
        if need_g:
            m = _series(g0, -k * g1 * eta, (k, a, a + bx), z0, theta, buf, m_max)
            if m < 0:
                return -1
            m_used = max(m_used, m)
            for mm in range(m):
                poly[2, mm] += w_cost[j] * buf[mm]
    return m_used


@_jit
def alive_values(params, order, groups, grid, i_h, out):
    """Per draw and distinct (x, T): R, F(H gamma) and C for a customer alive at T.

    ``params`` = (r, alpha, a, b): (S,) draws, visited in ``order`` (see :func:`draw_order`);
    ``groups`` = (ux, gstart, pair_T): (G,) distinct x, (G + 1,) pair offsets (pairs sorted by
    x, then T) and (U,) the pairs' T; ``grid`` = (times, w_rev, w_cost): horizons and their
    revenue and cost weights; i_h : index of H in ``times``. Fills ``out`` = (rev, fh, cost), of
    shape (len(order), U): row j for draw ``order[j]``.
    """
    r, alpha, a, b = params
    ux, gstart, pair_T = groups
    times, _, w_cost = grid
    rev, fh, cost = out
    G = ux.size
    # per group, the rule of the previous draw: Newton's starting point for this draw's rule
    nodes = np.empty((G, _N_MAX))
    n_prev = np.zeros(G, dtype=np.int64)
    wts = np.empty(_N_MAX)
    wp = np.empty(_N_MAX)
    diag = np.empty(_N_MAX)
    off = np.empty(_N_MAX)
    work = np.empty((6, _N_MAX))
    poly = np.empty((3, _M_MAX))
    buf = np.empty(_M_MAX)
    t_max = 0.0
    has_cost = False
    for j in range(times.size):
        t_max = max(t_max, times[j])
        has_cost = has_cost or w_cost[j] != 0.0
    for j in range(order.size):
        s = order[j]
        for g in range(G):
            lo, hi = gstart[g], gstart[g + 1]
            x = ux[g]
            k = r[s] + x
            bx = b[s] + x
            # node count from the worst customer of the group (smallest T: largest z)
            z_max = t_max / (alpha[s] + pair_T[lo])
            mean_p = a[s] / (a[s] + bx)
            sd_p = math.sqrt(mean_p * (1.0 - mean_p) / (a[s] + bx + 1.0))
            sd_p /= math.sqrt(min(a[s], 1.0))
            # the series amplifies errors of its starting values (up to exp(_LOG_AMP)), so
            # groups of several customers get a tighter quadrature tolerance
            tol = _TOL if hi - lo < _SMALL_GROUP else _TOL_SERIES
            n = _n_nodes(z_max, _bulk(k, z_max, mean_p, sd_p), tol, _N_MIN, _N_MAX)
            if n <= n_prev[g] <= n + 1:  # keep the previous size (one node to spare) so that
                n = n_prev[g]  # Newton can polish its rule instead of a cold QL start
            nd = nodes[g]
            rule = (nd, wts, wp)
            _beta_rule(a[s], bx, n, rule, (diag, off, work), n_prev[g] == n)
            n_prev[g] = n
            # split the group's T range so the recurrence stays stable
            amp = max(a[s] + bx - 1.0, 0.0)
            # amp * -log1p(-theta) <= _LOG_AMP, as a bound on theta
            th_max = -math.expm1(-_LOG_AMP / amp) if amp > 0.0 else 2.0
            u = lo
            while u < hi:
                v = u + 1  # range [u, v): gamma from 1/(alpha+T_u) down to 1/(alpha+T_{v-1})
                g_hi = 1.0 / (alpha[s] + pair_T[u])
                while v < hi:
                    g_lo = 1.0 / (alpha[s] + pair_T[v])
                    th = (g_hi - g_lo) / (g_hi + g_lo)
                    if th > th_max:
                        break
                    v += 1
                ok = False
                if v - u >= _SMALL_GROUP:
                    g_lo = 1.0 / (alpha[s] + pair_T[v - 1])
                    gam0 = 0.5 * (g_hi + g_lo)
                    theta = (g_hi - g_lo) / (g_hi + g_lo)
                    m = _range_poly((k, a[s], bx), gam0, theta, rule, n, grid, i_h, (poly, buf))
                    if m > 0:
                        ok = True
                        half = theta * gam0
                        for p in range(u, v):
                            uu = (1.0 / (alpha[s] + pair_T[p]) - gam0) / half
                            r0, r1, r2 = 0.0, 0.0, 0.0
                            for mm in range(m - 1, -1, -1):
                                r0 = r0 * uu + poly[0, mm]
                                r1 = r1 * uu + poly[1, mm]
                            if has_cost:
                                for mm in range(m - 1, -1, -1):
                                    r2 = r2 * uu + poly[2, mm]
                            rev[j, p], fh[j, p], cost[j, p] = r0, r1, r2
                if not ok:
                    for p in range(u, v):
                        gam = 1.0 / (alpha[s] + pair_T[p])
                        rev[j, p], fh[j, p], cost[j, p] = _direct(k, gam, rule, n, grid, i_h)
                u = v


@_jit
def _log_tables(alpha_s, a_s, b_s, tables, logs):
    """Per draw: ``logs`` = (log(a) - log(b + x - 1) per distinct x (x > 0), log(alpha + T)
    per distinct T, log(alpha + t_x) per distinct t_x) over ``tables`` = (ux, uT, utx)."""
    ux, uT, utx = tables
    log_ab, log_T, log_tx = logs
    for g in range(ux.size):
        log_ab[g] = math.log(a_s) - math.log(b_s + max(ux[g], 1.0) - 1.0)
    for u in range(uT.size):
        log_T[u] = math.log(alpha_s + uT[u])
    for u in range(utx.size):
        log_tx[u] = math.log(alpha_s + utx[u])


@_jit
def _p_alive(r_s, xi, log_ab_g, log_T_i, log_tx_i):
    """P(alive) of one customer from the per-draw tables of :func:`_log_tables`."""
    if xi > 0.0:
        return 1.0 / (1.0 + math.exp(log_ab_g + (r_s + xi) * (log_T_i - log_tx_i)))
    return 1.0


@_jit
def assemble(params, visit, cust, tables, vals, spend, money, out):
    """Per draw ``s`` in ``visit`` and customer: CLV into ``clv[s]``, and the sums over those
    draws of P(alive), expected purchases, expected spend and CLV into ``sums`` (4, n) (added
    to; a non-finite CLV makes its customer's sum non-finite).

    ``params`` = (r, alpha, a, b) draws; ``cust`` = (x, group, pair, iT, itx): each customer's
    x, its index in ``ux`` and its (x, T) pair in the columns of ``vals`` = (rev, fh, cost)
    (whose row j holds draw ``visit[j]``, :func:`alive_values` of the same ``visit``), and its
    indices into the distinct T and t_x of ``tables`` = (ux, uT, utx); ``spend`` (S, n): the
    spend model's expected spend per purchase; ``money`` = (margin, cost_per_period);
    ``out`` = (clv, sums, p_alive, purchases), the last two per-draw copies (shape (S, n)) or
    empty (shape (0, 0)) to keep only the sums. P(alive) = expit(-log odds of death) as
    :func:`clvkit.models.bgnbd.predictions.bg_probability_alive`, with log((alpha+T)/(alpha+t_x))
    = log(alpha+T) - log(alpha+t_x) from per-draw tables over the distinct T and t_x: an
    absolute error of a few eps * |log(alpha+T)| * (r+x) in the log odds.
    """
    r, alpha, a, b = params
    x, group, pair, iT, itx = cust
    ux, uT, utx = tables
    rev, fh, cost = vals
    margin, cost_per_period = money
    clv, sums, p_alive, purchases = out
    N = clv.shape[1]
    full = p_alive.shape[0] > 0
    logs = (np.empty(ux.size), np.empty(uT.size), np.empty(utx.size))
    log_ab, log_T, log_tx = logs
    for j in range(visit.size):
        s = visit[j]
        _log_tables(alpha[s], a[s], b[s], tables, logs)
        for i in range(N):
            pa = _p_alive(r[s], x[i], log_ab[group[i]], log_T[iT[i]], log_tx[itx[i]])
            e_s = spend[s, i]
            u = pair[i]
            val = margin * e_s * rev[j, u]
            if cost_per_period > 0.0:
                val -= cost_per_period * cost[j, u]
            clv[s, i] = pa * val
            sums[0, i] += pa
            sums[1, i] += pa * fh[j, u]
            sums[2, i] += e_s
            sums[3, i] += clv[s, i]
            if full:
                p_alive[s, i] = pa
                purchases[s, i] = pa * fh[j, u]


@_jit
def pair_sums(params, visit, cust, tables, spend, weight, out):
    """Per draw ``visit[j]`` and (x, T) pair ``u``: ``out[0, j, u]`` = sum over its customers of
    weight * P(alive) * spend and ``out[1, j, u]`` = sum of weight * P(alive) (added to), with
    the arguments and the P(alive) of :func:`assemble`. A customer's expected value is its
    P(alive) times its pair's values given alive, so these sums turn the pair values of
    :func:`alive_values` into the customers' summed values without a pass per customer."""
    r, alpha, a, b = params
    x, group, pair, iT, itx = cust
    ux, uT, utx = tables
    logs = (np.empty(ux.size), np.empty(uT.size), np.empty(utx.size))
    log_ab, log_T, log_tx = logs
    for j in range(visit.size):
        s = visit[j]
        _log_tables(alpha[s], a[s], b[s], tables, logs)
        for i in range(x.size):
            pa = weight[i] * _p_alive(r[s], x[i], log_ab[group[i]], log_T[iT[i]], log_tx[itx[i]])
            out[0, j, pair[i]] += pa * spend[s, i]
            out[1, j, pair[i]] += pa
