"""BG/BB likelihood, once (Fader, Hardie and Shang 2010): compressed statistics, the log-likelihood
with its analytic gradient (MLE, MAP, Laplace and, with the prior, the NUTS kernel) and per
customer (model comparison, P(alive)).

Opportunities are numbered from the first purchase (opportunity 0). A customer alive at an
opportunity buys there with probability ``p ~ Beta(alpha, beta)``; before each later opportunity
it dies with probability ``theta ~ Beta(gamma, delta)``. With ``x`` purchases in opportunities
``1..n``, the last at ``t_x`` (0 when ``x = 0``):

    L = B(a+x, b+n-x)/B(a,b) B(g, d+n)/B(g,d)                              (alive at n)
      + sum_{i=0}^{n-t_x-1} B(a+x, b+t_x-x+i)/B(a,b) B(g+1, d+t_x+i)/B(g,d)  (died before t_x+i+1)

(``a, b, g, d`` = alpha, beta, gamma, delta; FHS 2010, eq. 5). The terms of the sum fall
monotonically, ``T_{i+1} / T_i = (b+t_x-x+i)/(a+b+t_x+i) (d+t_x+i)/(g+d+1+t_x+i) < 1``, so the
sum is accumulated relative to its first term in log space (no overflow or underflow for ``n``
up to 1e4 and parameters from 1e-4 to 1e4); digamma values of the gradient follow the same
recursion (``psi(z+1) = psi(z) + 1/z``). Every Gamma and digamma argument is one of eight
parameter combinations plus a whole number, so when the largest ``n`` is small next to the
number of rows (the donations data: n = 6, 22 rows) they come from tables built once per call by
the same recurrences; else each is computed directly (tested equal). Written in numba, called
by the numpy objective, the per-customer log-likelihood and the nutpie kernel alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from clvkit.inference.sampling import nb_digamma
from clvkit.models.rising import XMAX, rising_factorial
from clvkit.models.stats import WeightedRows, distinct_rows
from clvkit.utils.numba_cache import njit

__all__ = [
    "BGBBStats",
    "bgbb_loglik",
    "bgbb_loglik_customers",
    "bgbb_loglik_grad",
    "bgbb_loglik_rows_grad",
    "bgbb_terms",
    "compress_bgbb",
    "loglik_grad_nb",
]


@dataclass(frozen=True)
class BGBBStats(WeightedRows):
    """Distinct ``(frequency, recency, n)`` rows and their ``weight`` (customer counts)."""

    KEY: ClassVar[tuple[str, ...]] = ("frequency", "recency", "n", "weight")

    frequency: np.ndarray
    recency: np.ndarray
    n: np.ndarray
    weight: np.ndarray


def compress_bgbb(
    frequency: np.ndarray, recency: np.ndarray, n: np.ndarray, weight: np.ndarray | None = None
) -> BGBBStats:
    """Collapse customers with identical ``(frequency, recency, n)`` into weighted rows.

    Examples
    --------
    >>> s = compress_bgbb(np.array([0, 0, 2]), np.array([0, 0, 3]), np.array([6, 6, 6]))
    >>> s.n_rows, s.weight.tolist()
    (2, [2.0, 1.0])
    """
    x, tx, n_, w = distinct_rows(frequency, recency, n, weight=weight)
    return BGBBStats(x, tx, n_, w)


#: Bases of the Gamma and digamma arguments: every argument is one of these plus a whole number.
_AL, _BE, _AB, _GA, _DE, _GD, _GA1, _GD1 = range(8)


@njit(nogil=True, error_model="numpy")
def _tables(al, be, ga, de, size, want_grad):  # pragma: no cover - compiled
    """Bases (see ``_AL`` ...) and tables of ``lnG(base + j)`` and ``psi(base + j)`` for
    ``j < size`` by the recurrences ``lnG(z+1) = lnG(z) + ln z``, ``psi(z+1) = psi(z) + 1/z``
    (``size = 0``: no tables, every value computed directly)."""
    z0 = np.empty(8)
    z0[_AL], z0[_BE], z0[_AB], z0[_GA] = al, be, al + be, ga
    z0[_DE], z0[_GD], z0[_GA1], z0[_GD1] = de, ga + de, ga + 1.0, ga + de + 1.0
    lg = np.empty((8, size))
    ps = np.empty((8, size if want_grad else 0))
    for b in range(8):
        if size == 0:
            break
        z = z0[b]
        v = math.lgamma(z)
        d = nb_digamma(z) if want_grad else 0.0
        for j in range(size):
            lg[b, j] = v
            v += math.log(z + j)
            if want_grad:
                ps[b, j] = d
                d += 1.0 / (z + j)
    return z0, lg, ps


@njit(nogil=True, error_model="numpy")
def _lgam(z0, lg, b, j):  # pragma: no cover - compiled
    """``lnG(z0[b] + j)``, from the table when it holds it."""
    k = int(j)
    if k < lg.shape[1]:
        return lg[b, k]
    return math.lgamma(z0[b] + j)


@njit(nogil=True, error_model="numpy")
def _psi(z0, ps, b, j):  # pragma: no cover - compiled
    """``psi(z0[b] + j)``, from the table when it holds it."""
    k = int(j)
    if k < ps.shape[1]:
        return ps[b, k]
    return nb_digamma(z0[b] + j)


@njit(nogil=True, error_model="numpy")
def _row(x, tx, n, z0, lg, ps, want_grad, g):  # pragma: no cover - compiled
    """``(log A, log L)`` of one history (bases and tables from :func:`_tables`); with
    ``want_grad`` adds ``d log L / d(al, be, ga, de)`` into ``g`` (natural scale)."""
    al, be, ga, de = z0[_AL], z0[_BE], z0[_GA], z0[_DE]
    lab = _lgam(z0, lg, _AL, 0.0) + _lgam(z0, lg, _BE, 0.0) - _lgam(z0, lg, _AB, 0.0)
    lgd = _lgam(z0, lg, _GA, 0.0) + _lgam(z0, lg, _DE, 0.0) - _lgam(z0, lg, _GD, 0.0)
    lg_ax = _lgam(z0, lg, _AL, x)
    # ln B(a+x, b+n-x) - ln B(a, b) + ln B(g, d+n) - ln B(g, d)
    log_a = (
        lg_ax + _lgam(z0, lg, _BE, n - x) - _lgam(z0, lg, _AB, n) - lab
        + _lgam(z0, lg, _GA, 0.0) + _lgam(z0, lg, _DE, n) - _lgam(z0, lg, _GD, n) - lgd
    )  # fmt: skip
    m = int(n - tx)
    # sum_i exp(c_i), c_0 = 0, c_{i+1} = c_i + log ratio_i (<= 0); and the weighted digammas
    tot = 0.0
    s_ab = 0.0  # sum_i e^{c_i} psi(a+b+tx+i)
    s_b = 0.0  # ... psi(b+tx-x+i)
    s_gd1 = 0.0  # ... psi(g+d+1+tx+i)
    s_d = 0.0  # ... psi(d+tx+i)
    log_l = log_a
    log_t0 = 0.0
    if m > 0:
        # ln B(a+x, b+tx-x) - ln B(a, b) + ln B(g+1, d+tx) - ln B(g, d)
        log_t0 = (
            lg_ax + _lgam(z0, lg, _BE, tx - x) - _lgam(z0, lg, _AB, tx) - lab
            + _lgam(z0, lg, _GA1, 0.0) + _lgam(z0, lg, _DE, tx) - _lgam(z0, lg, _GD1, tx) - lgd
        )  # fmt: skip
        c = 0.0
        p_ab = p_b = p_gd1 = p_d = 0.0
        if want_grad:
            p_ab = _psi(z0, ps, _AB, tx)
            p_b = _psi(z0, ps, _BE, tx - x)
            p_gd1 = _psi(z0, ps, _GD1, tx)
            p_d = _psi(z0, ps, _DE, tx)
        for i in range(m):
            e = math.exp(c)
            tot += e
            z_ab = al + be + tx + i
            z_b = be + (tx - x + i)
            z_gd1 = ga + de + 1.0 + tx + i
            z_d = de + tx + i
            if want_grad:
                s_ab += e * p_ab
                s_b += e * p_b
                s_gd1 += e * p_gd1
                s_d += e * p_d
                p_ab += 1.0 / z_ab
                p_b += 1.0 / z_b
                p_gd1 += 1.0 / z_gd1
                p_d += 1.0 / z_d
            c += math.log((z_b * z_d) / (z_ab * z_gd1))
            if c < -800.0:  # every later term is smaller still: exp underflows
                break
        log_b = log_t0 + math.log(tot)
        if log_a > log_b:
            log_l = log_a + math.log1p(math.exp(log_b - log_a))
        else:
            log_l = log_b + math.log1p(math.exp(log_a - log_b))
    if want_grad:
        ps_ab, ps_gd = _psi(z0, ps, _AB, 0.0), _psi(z0, ps, _GD, 0.0)
        ps_a, ps_b, ps_d = _psi(z0, ps, _AL, 0.0), _psi(z0, ps, _BE, 0.0), _psi(z0, ps, _DE, 0.0)
        wa = math.exp(log_a - log_l)
        wb = math.exp(log_t0 - log_l) if m > 0 else 0.0  # weight of e^{c_i}
        ps_abn = _psi(z0, ps, _AB, n)
        ps_gdn = _psi(z0, ps, _GD, n)
        common_a = _psi(z0, ps, _AL, x) - ps_a + ps_ab
        g[0] += wa * (common_a - ps_abn) + wb * (tot * common_a - s_ab)
        g[1] += wa * (_psi(z0, ps, _BE, n - x) - ps_abn - ps_b + ps_ab) + wb * (
            s_b - s_ab + tot * (ps_ab - ps_b)
        )
        g[2] += wa * (ps_gd - ps_gdn) + wb * (tot * (1.0 / ga + ps_gd) - s_gd1)
        g[3] += wa * (_psi(z0, ps, _DE, n) - ps_gdn - ps_d + ps_gd) + wb * (
            s_d - s_gd1 + tot * (ps_gd - ps_d)
        )
    return log_a, log_l


@njit(nogil=True, error_model="numpy")
def _table_size(n, rows):  # pragma: no cover - compiled
    """Tables pay when they are short next to the work they save (about 20 Gamma-function
    values per row); else every value is computed directly."""
    top = 0.0
    for v in n:
        top = max(top, v)
    size = int(top) + 1
    return size if size <= 4 * rows + 16 else 0


@njit(nogil=True, error_model="numpy")
def _loglik_grad(eta, x, tx, n, w, grad, size):  # pragma: no cover - compiled
    al = math.exp(eta[0])
    be = math.exp(eta[1])
    ga = math.exp(eta[2])
    de = math.exp(eta[3])
    z0, lg, ps = _tables(al, be, ga, de, size, True)
    g = np.zeros(4)
    gi = np.zeros(4)
    ll = 0.0
    for r in range(w.size):
        gi[:] = 0.0
        _, lv = _row(x[r], tx[r], n[r], z0, lg, ps, True, gi)
        ll += w[r] * lv
        for j in range(4):
            g[j] += w[r] * gi[j]
    grad[0] = g[0] * al
    grad[1] = g[1] * be
    grad[2] = g[2] * ga
    grad[3] = g[3] * de
    return ll


@njit(nogil=True, error_model="numpy")
def loglik_grad_nb(eta, x, tx, n, w, grad):  # pragma: no cover - compiled
    """Weighted BG/BB log-likelihood at ``eta = log(alpha, beta, gamma, delta)``; ``grad``
    receives its gradient in ``eta``."""
    return _loglik_grad(eta, x, tx, n, w, grad, _table_size(n, w.size))


#: Histories with ``n`` up to this use rising-factorial products in the per-row kernel.
ROWS_NMAX = XMAX


@njit(nogil=True, error_model="numpy")
def _row_products(al, be, ga, de, x, tx, n, g, w):  # pragma: no cover - compiled
    """:func:`_row`'s log-likelihood and gradient (into ``g``, natural scale) with the Gamma
    and digamma differences as rising factorials and sums of reciprocals
    (:func:`clvkit.models.rising.rising_factorial`; whole ``x, t_x, n``); NaN when a product
    leaves its range (the caller then uses :func:`_row`). ``w``: work array of 2."""
    ab = al + be
    gd = ga + de
    ok = rising_factorial(al, x, w)
    Pa, Sa = w[0], w[1]
    ok &= rising_factorial(be, n - x, w)
    Pb, Sb = w[0], w[1]
    ok &= rising_factorial(ab, n, w)
    Pab, Sab = w[0], w[1]
    ok &= rising_factorial(de, n, w)
    Pd, Sd = w[0], w[1]
    ok &= rising_factorial(gd, n, w)
    Pgd, Sgd = w[0], w[1]
    if not ok:
        return math.nan
    # ln B(a+x, b+n-x) - ln B(a, b) + ln B(g, d+n) - ln B(g, d)
    log_a = math.log(Pa * Pb / Pab) + math.log(Pd / Pgd)
    m = int(n - tx)
    log_l = log_a
    log_t0 = 0.0
    tot = 0.0
    s_ab = 0.0  # sum_i e_i (psi(a+b+tx+i) - psi(a+b)), e_i = T_i / T_0
    s_b = 0.0  # ... psi(b+tx-x+i) - psi(b)
    s_gd1 = 0.0  # ... psi(g+d+1+tx+i) - psi(g+d)
    s_d = 0.0  # ... psi(d+tx+i) - psi(d)
    if m > 0:
        ok = rising_factorial(be, tx - x, w)
        Pb0, sb = w[0], w[1]
        ok &= rising_factorial(ab, tx, w)
        Pab0, sab = w[0], w[1]
        ok &= rising_factorial(de, tx, w)
        Pd0, sd = w[0], w[1]
        ok &= rising_factorial(gd, tx + 1.0, w)
        Pgd0, sgd = w[0], w[1]
        if not ok:
            return math.nan
        # ln B(a+x, b+tx-x) - ln B(a, b) + ln B(g+1, d+tx) - ln B(g, d)
        log_t0 = math.log(Pa * Pb0 / Pab0) + math.log(ga * Pd0 / Pgd0)
        e = 1.0
        for i in range(m):
            tot += e
            s_ab += e * sab
            s_b += e * sb
            s_gd1 += e * sgd
            s_d += e * sd
            z_ab = ab + tx + i
            z_b = be + (tx - x + i)
            z_gd1 = gd + 1.0 + tx + i
            z_d = de + tx + i
            sab += 1.0 / z_ab
            sb += 1.0 / z_b
            sgd += 1.0 / z_gd1
            sd += 1.0 / z_d
            e *= (z_b * z_d) / (z_ab * z_gd1)
            if e < 1e-300:  # every later term is smaller still
                break
        log_b = log_t0 + math.log(tot)
        if log_a > log_b:
            log_l = log_a + math.log1p(math.exp(log_b - log_a))
        else:
            log_l = log_b + math.log1p(math.exp(log_a - log_b))
    wa = math.exp(log_a - log_l)
    wb = math.exp(log_t0 - log_l) if m > 0 else 0.0
    g[0] = wa * (Sa - Sab) + wb * (tot * Sa - s_ab)
    g[1] = wa * (Sb - Sab) + wb * (s_b - s_ab)
    g[2] = -wa * Sgd + wb * (tot / ga - s_gd1)
    g[3] = wa * (Sd - Sgd) + wb * (s_d - s_gd1)
    return log_l


@njit(nogil=True, error_model="numpy")
def _rows_loglik_grad(theta, x, tx, n, ll, grad, direct):  # pragma: no cover - compiled
    """Per-row log-likelihood and gradient in each row's ``theta``: rising-factorial products
    for ``n <= ROWS_NMAX`` (:func:`_row_products`), else (or with ``direct``, or when a product
    leaves its range) :func:`_row` with every Gamma and digamma value computed directly; no
    per-row allocation."""
    z0 = np.empty(8)
    lg = np.empty((8, 0))
    ps = np.empty((8, 0))
    gi = np.empty(4)
    par = np.empty(4)
    w = np.empty(2)
    for i in range(x.size):
        for j in range(4):
            par[j] = math.exp(theta[i, j])
        al, be, ga, de = par[0], par[1], par[2], par[3]
        v = math.nan
        if not direct and n[i] <= ROWS_NMAX:
            v = _row_products(al, be, ga, de, x[i], tx[i], n[i], gi, w)
        if math.isnan(v):
            z0[_AL], z0[_BE], z0[_AB], z0[_GA] = al, be, al + be, ga
            z0[_DE], z0[_GD], z0[_GA1], z0[_GD1] = de, ga + de, ga + 1.0, ga + de + 1.0
            gi[:] = 0.0
            _, v = _row(x[i], tx[i], n[i], z0, lg, ps, True, gi)
        ll[i] = v
        for j in range(4):
            grad[i, j] = gi[j] * par[j]


def bgbb_loglik_rows_grad(
    theta: np.ndarray,
    frequency: np.ndarray,
    recency: np.ndarray,
    n: np.ndarray,
    direct: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """The BG/BB log-likelihood of each row with that row's own parameters, and its gradient:
    the base likelihood (:func:`bgbb_loglik_grad`) with per-row parameters.

    Row ``i`` is the history ``(frequency[i], recency[i], n[i])`` under ``theta[i] =
    log([alpha, beta, gamma, delta])`` (``(m, 4)``); returns ``ll`` ``(m,)`` and its gradient in
    the row's ``theta`` ``(m, 4)``. With every row at one ``theta0`` the weighted sums are
    :func:`bgbb_loglik_grad` of the same rows. Compiled: for ``n <= ROWS_NMAX`` the Gamma and
    digamma differences are rising factorials and sums of reciprocals (``direct=True``: every
    row by the base's own row function, a check).
    """
    theta = np.ascontiguousarray(theta, dtype=np.float64)
    x, tx, n_ = _histories(frequency, recency, n)
    ll = np.empty(x.size)
    grad = np.empty((x.size, 4))
    _rows_loglik_grad(theta, x, tx, n_, ll, grad, direct)
    return ll, grad


@njit(nogil=True, error_model="numpy")
def _terms(al, be, ga, de, x, tx, n, log_a, log_l, tables):  # pragma: no cover - compiled
    g = np.zeros(4)
    size = _table_size(n, x.size) if tables else 0
    for s in range(al.size):
        z0, lg, ps = _tables(al[s], be[s], ga[s], de[s], size, False)
        for i in range(x.size):
            log_a[s, i], log_l[s, i] = _row(x[i], tx[i], n[i], z0, lg, ps, False, g)


def _histories(x, tx, n) -> tuple[np.ndarray, ...]:
    x = np.ascontiguousarray(x, dtype=np.float64)
    tx = np.ascontiguousarray(np.where(x > 0, np.asarray(tx, dtype=np.float64), 0.0))
    return x, tx, np.ascontiguousarray(n, dtype=np.float64)


def bgbb_terms(
    alpha: np.ndarray,
    beta: np.ndarray,
    gamma: np.ndarray,
    delta: np.ndarray,
    frequency: np.ndarray,
    recency: np.ndarray,
    n: np.ndarray,
    tables: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """``(log A, log L)``, each ``(S, m)``, for draws ``(S, 1)`` (or scalars) and histories
    ``(m,)``: ``A`` is the likelihood of the history and alive at opportunity ``n``, so
    ``P(alive at n | history) = exp(log A - log L)``. ``tables=False`` computes every Gamma
    function directly (a check of the tables)."""
    p = [np.ascontiguousarray(np.ravel(np.asarray(v, dtype=np.float64))) for v in
         (alpha, beta, gamma, delta)]  # fmt: skip
    S = max(v.size for v in p)
    p = [np.ascontiguousarray(np.broadcast_to(v, (S,))) for v in p]
    x, tx, n_ = _histories(frequency, recency, n)
    log_a = np.empty((S, x.size))
    log_l = np.empty((S, x.size))
    _terms(*p, x, tx, n_, log_a, log_l, tables)
    return log_a, log_l


def bgbb_loglik_customers(
    alpha: np.ndarray,
    beta: np.ndarray,
    gamma: np.ndarray,
    delta: np.ndarray,
    frequency: np.ndarray,
    recency: np.ndarray,
    n: np.ndarray,
) -> np.ndarray:
    """Per-customer BG/BB log-likelihood, ``(S, m)``; summed with weights it is
    :func:`bgbb_loglik`.

    Examples
    --------
    >>> ll = bgbb_loglik_customers(1.204, 0.750, 0.657, 2.783, np.array([0.0, 6.0]),
    ...                            np.array([0.0, 6.0]), np.array([6.0, 6.0]))
    >>> ll.round(4).tolist()
    [[-1.1673, -2.1822]]
    """
    return bgbb_terms(alpha, beta, gamma, delta, frequency, recency, n)[1]


def bgbb_loglik_grad(
    theta: np.ndarray, s: BGBBStats, tables: bool = True
) -> tuple[float, np.ndarray]:
    """Weighted log-likelihood and its gradient in ``theta = log([alpha, beta, gamma, delta])``
    (``tables=False``: every Gamma and digamma value computed directly, a check of the
    tables)."""
    grad = np.zeros(4)
    x, tx, n = _histories(s.frequency, s.recency, s.n)
    eta = np.ascontiguousarray(theta, dtype=np.float64)
    w = np.ascontiguousarray(s.weight, dtype=np.float64)
    if tables:
        ll = loglik_grad_nb(eta, x, tx, n, w, grad)
    else:
        ll = _loglik_grad(eta, x, tx, n, w, grad, 0)
    return float(ll), grad


def bgbb_loglik(alpha: float, beta: float, gamma: float, delta: float, s: BGBBStats) -> float:
    """Total weighted BG/BB log-likelihood of the compressed data."""
    return bgbb_loglik_grad(np.log([alpha, beta, gamma, delta]), s)[0]
