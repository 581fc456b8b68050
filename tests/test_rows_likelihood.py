"""Per-row likelihoods (issue 17, the covariate models' fitting kernels): each model's
``_rows_loglik_grad`` is its base likelihood with per-row parameters.

Checked per model: with every row at one theta the weighted sum of the rows and of their
gradients is the base ``_loglik_grad`` of the same customers (1e-10 relative); with a different
theta per row each row is the base likelihood of that one customer; the gradient agrees with
central finite differences; extremes (frequency 1000, T = 1e4, tiny or huge parameters) match
the base (validated against mpmath elsewhere); the compiled and numpy row forms agree; the
columns are validated as for fitting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from clvkit.datasets import cdnow_calibration_summary, donations_summary
from clvkit.errors import ClvkitError
from clvkit.models import BetaGeo
from clvkit.models.bgbb.likelihood import ROWS_NMAX, bgbb_loglik_rows_grad, compress_bgbb
from clvkit.models.bgbb.model import BetaGeoBetaBinom
from clvkit.models.bgnbd.likelihood import bg_loglik_rows_grad, compress_bg
from clvkit.models.bgnbd.rows import bg_rows_loglik_grad
from clvkit.models.gamma_gamma.likelihood import compress_gg, gg_loglik_rows_grad
from clvkit.models.gamma_gamma.model import GammaGamma
from clvkit.models.gamma_gamma.rows import XTAB, gg_rows_loglik_grad
from clvkit.models.mbgnbd.likelihood import compress_mbg, mbg_loglik_rows_grad
from clvkit.models.mbgnbd.model import ModifiedBetaGeo
from clvkit.models.mbgnbd.rows import mbg_rows_loglik_grad
from clvkit.models.pnbd.likelihood import compress_pnbd, pnbd_loglik_rows_grad
from clvkit.models.pnbd.model import ParetoNBD
from clvkit.models.pnbd.rows import XT, pnbd_rows_loglik_grad
from clvkit.models.rising import XMAX
from clvkit.models.sbg.likelihood import compress as compress_sbg
from clvkit.models.sbg.likelihood import sbg_loglik_rows_grad
from clvkit.models.sbg.model import ShiftedBetaGeo
from clvkit.models.sbg.rows import sbg_rows_loglik_grad


@dataclass(frozen=True)
class Case:
    model: Any
    table: pd.DataFrame
    points: list[tuple[float, ...]]
    stats: Any  # (cols, index array) -> the base's compressed statistics of those rows
    #: points (indices) where the base's own gradient rounding is coarser than 1e-10: there
    #: the check is 1e-8, and the rows are checked against mpmath instead
    coarse: tuple[int, ...] = ()

    def grad_rtol(self, k: int) -> float:
        return 1e-8 if k in self.coarse else 1e-10


def _purchase_table(n: int = 400) -> pd.DataFrame:
    """CDNOW customers plus extremes: frequency 1000, T = 1e4, frequencies around XMAX."""
    cd = cdnow_calibration_summary()
    sub = cd.iloc[:n][["frequency", "recency", "T"]]
    extra = pd.DataFrame(
        {
            "frequency": [1000, 0, 1, int(XMAX), int(XMAX) + 1, 3, 1],
            "recency": [9000.0, 0.0, 1e4, 60.0, 61.0, 0.5, 1e-3],
            "T": [1e4, 1e4, 1e4, 70.0, 70.0, 0.5, 1e-3],
        },
        index=pd.Index([f"x{i}" for i in range(7)], name=sub.index.name),
    )
    table = pd.concat([sub, extra])
    table.attrs = dict(cd.attrs)
    return table


BG_POINTS = [
    (0.2426, 4.4137, 0.793, 2.4262),  # CDNOW MLE
    (2.0, 0.3, 5.0, 0.2),
    (1e-3, 1e3, 1e-3, 1e3),  # tiny a
    (50.0, 1e-2, 20.0, 1e-2),
    (1e-4, 1e-4, 1e4, 1e4),
]

PNBD_POINTS = [
    (0.5534, 10.5802, 0.6061, 11.6562),  # CDNOW MLE
    (2.0, 0.3, 5.0, 0.2),
    (1e-3, 1e3, 1e-3, 1e3),
    (50.0, 1e-2, 20.0, 1e-2),
    (1e-2, 1.0, 1e2, 1e4),  # alpha << beta: the quadrature
]

GG_POINTS = [
    (6.2488, 3.7446, 15.4477),  # CDNOW MLE
    (0.5, 1.2, 300.0),
    (1e-2, 1e2, 1e-3),
    (100.0, 0.05, 1e4),
]


def _spend_table(n: int = 400) -> pd.DataFrame:
    """CDNOW customers (those without repeat purchases are masked out) plus extremes:
    frequency 1000 and around XTAB, tiny and huge spend."""
    cd = cdnow_calibration_summary()
    sub = cd.iloc[:n]
    extra = pd.DataFrame(
        {
            "frequency": [1000, 1, XTAB - 1, XTAB, 2, 0],
            "recency": [9000.0, 5.0, 60.0, 61.0, 0.5, 0.0],
            "T": [1e4, 1e4, 70.0, 70.0, 0.5, 3.0],
            "monetary_value": [25.0, 1e-3, 40.0, 41.0, 1e6, 0.0],
        },
        index=pd.Index([f"x{i}" for i in range(6)], name=sub.index.name),
    )
    table = pd.concat([sub, extra])
    table.attrs = dict(cd.attrs)
    return table


def _gg_stats(cols, idx):
    return compress_gg(cols["frequency"][idx], cols["monetary_value"][idx])


BGBB_POINTS = [
    (1.204, 0.750, 0.657, 2.783),  # donations MLE
    (1e-4, 1e-4, 1e-4, 1e-4),
    (1e4, 1e4, 1e4, 1e4),
    (50.0, 0.02, 0.02, 50.0),
]


def _bgbb_table() -> pd.DataFrame:
    """Donations histories (every distinct one) plus extremes up to n = 1e4."""
    d = donations_summary().drop_duplicates()
    extra = pd.DataFrame(
        {
            "frequency": [3, 5000, 0, 10_000, 1, 2000, 30, 64, 0, 40],
            "recency": [10, 9990, 0, 10_000, 1, 3000, 50, 64, 0, 60],
            "n": [10_000] * 6 + [int(ROWS_NMAX)] * 3 + [int(ROWS_NMAX) + 1],
        },
        index=pd.Index([f"x{i}" for i in range(10)], name=d.index.name),
    )
    table = pd.concat([d, extra])
    table.attrs = dict(donations_summary().attrs)
    return table


SBG_POINTS = [(0.668, 3.806), (1e-3, 1e3), (50.0, 0.05), (1e3, 1e3)]


def _sbg_table() -> pd.DataFrame:
    """A contract summary: churned after 0..11 renewals, active ones, and 1000 renewals."""
    renewals = np.array([0, 0, 1, 2, 3, 5, 8, 11, 0, 4, 12, 1000, 1000], dtype=np.int64)
    churned = np.array([1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0], dtype=bool)
    table = pd.DataFrame(
        {"renewals": renewals, "churned": churned, "age": renewals + 0.5 * churned},
        index=pd.Index([f"c{i}" for i in range(renewals.size)], name="customer_id"),
    )
    table.attrs["time_unit"] = "M"
    return table


def _rfm_stats(compress):
    def stats(cols, idx):
        return compress(cols["frequency"][idx], cols["recency"][idx], cols["T"][idx])

    return stats


CASES = {
    # b = 1e3: the base's digamma differences psi(b+x) - psi(b) lose 4e-10 of the b-gradient,
    # the rows' sums of 1/(b+k) do not (test_bgnbd_rows_against_mpmath)
    "bgnbd": lambda: Case(
        BetaGeo(), _purchase_table(), BG_POINTS, _rfm_stats(compress_bg), coarse=(2,)
    ),
    "pnbd": lambda: Case(ParetoNBD(), _purchase_table(), PNBD_POINTS, _rfm_stats(compress_pnbd)),
    "mbgnbd": lambda: Case(
        ModifiedBetaGeo(), _purchase_table(), BG_POINTS, _rfm_stats(compress_mbg), coarse=(2,)
    ),
    "gamma_gamma": lambda: Case(GammaGamma(), _spend_table(), GG_POINTS, _gg_stats),
    "bgbb": lambda: Case(
        BetaGeoBetaBinom(),
        _bgbb_table(),
        BGBB_POINTS,
        lambda c, i: compress_bgbb(c["frequency"][i], c["recency"][i], c["n"][i]),
    ),
    "sbg": lambda: Case(
        ShiftedBetaGeo(),
        _sbg_table(),
        SBG_POINTS,
        lambda c, i: compress_sbg(c["renewals"][i], c["churned"][i]),
    ),
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request) -> Case:
    return CASES[request.param]()


def _rows(case: Case):
    cols, mask = case.model._row_columns(case.table)
    return {c: v[mask] for c, v in cols.items()}, mask


def _close(got, want, rtol=1e-10):
    got, want = np.asarray(got, float), np.asarray(want, float)
    scale = np.maximum(np.abs(want), 1.0)
    assert np.all(np.isfinite(got))
    np.testing.assert_array_less(np.abs(got - want) / scale, rtol)


def test_equal_rows_sum_to_the_base_likelihood(case):
    """All rows at one theta: sum of rows == base log-likelihood and gradient (1e-10)."""
    cols, _ = _rows(case)
    m = next(iter(cols.values())).size
    stats = case.stats(cols, np.arange(m))
    for k, point in enumerate(case.points):
        theta0 = np.log(point)
        ll, grad = case.model._rows_loglik_grad(np.tile(theta0, (m, 1)), cols)
        assert ll.shape == (m,) and grad.shape == (m, theta0.size)
        base_ll, base_grad = case.model._loglik_grad(theta0, stats)
        _close(ll.sum(), base_ll)
        _close(grad.sum(axis=0), base_grad, case.grad_rtol(k))


def test_each_row_is_the_base_likelihood_of_its_customer(case):
    """A different theta per row: row i == the base likelihood of customer i alone."""
    cols, _ = _rows(case)
    m = next(iter(cols.values())).size
    rng = np.random.default_rng(17)
    theta0 = np.log(case.points[0])
    theta = theta0 + rng.normal(0.0, 1.0, (m, theta0.size))
    ll, grad = case.model._rows_loglik_grad(theta, cols)
    for i in range(m):
        base_ll, base_grad = case.model._loglik_grad(theta[i], case.stats(cols, np.array([i])))
        _close(ll[i], base_ll)
        _close(grad[i], base_grad, case.grad_rtol(0))


def test_gradient_matches_finite_differences(case):
    cols, _ = _rows(case)
    m = next(iter(cols.values())).size
    rng = np.random.default_rng(3)
    for point in case.points:
        theta = np.log(point) + rng.normal(0.0, 0.5, (m, len(point)))
        _, grad = case.model._rows_loglik_grad(theta, cols)
        h = 1e-5
        for j in range(theta.shape[1]):
            up, down = theta.copy(), theta.copy()
            up[:, j] += h
            down[:, j] -= h
            fd = (
                case.model._rows_loglik_grad(up, cols)[0]
                - case.model._rows_loglik_grad(down, cols)[0]
            ) / (2 * h)
            np.testing.assert_allclose(grad[:, j], fd, rtol=1e-5, atol=1e-5)


def test_weighted_rows_of_compressed_data_equal_the_base(case):
    """The covariate composite's use: the distinct rows of all CDNOW customers, weighted."""
    if "T" in case.table.columns:  # all CDNOW customers
        table = pd.concat([case.table, cdnow_calibration_summary()[case.table.columns]])
        table.attrs = dict(case.table.attrs)
    else:  # every row three times
        table = pd.concat([case.table] * 3)
        table.attrs = dict(case.table.attrs)
    cols, _ = _rows(Case(case.model, table, case.points, case.stats))
    stats = case.stats(cols, np.arange(next(iter(cols.values())).size))
    rows = {c: getattr(stats, c) for c in cols}
    for k, point in enumerate(case.points):
        theta0 = np.log(point)
        ll, grad = case.model._rows_loglik_grad(np.tile(theta0, (stats.n_rows, 1)), rows)
        base_ll, base_grad = case.model._loglik_grad(theta0, stats)
        _close(stats.weight @ ll, base_ll)
        _close(stats.weight @ grad, base_grad, case.grad_rtol(k))


COMPILED = {
    "bgnbd": (BetaGeo, bg_loglik_rows_grad, bg_rows_loglik_grad),
    "mbgnbd": (ModifiedBetaGeo, mbg_loglik_rows_grad, mbg_rows_loglik_grad),
}


@pytest.mark.parametrize("name", list(COMPILED))
def test_compiled_rows_equal_the_numpy_rows(name):
    cls, numpy_rows, compiled_rows = COMPILED[name]
    table = _purchase_table(2357)
    cols, _ = cls()._row_columns(table)
    x, tx, T = cols["frequency"], cols["recency"], cols["T"]
    rng = np.random.default_rng(5)
    for k, point in enumerate(BG_POINTS):
        theta = np.log(point) + rng.normal(0.0, 1.0, (x.size, 4))
        ll_np, g_np = numpy_rows(theta, x, tx, T)
        ll_nb, g_nb = compiled_rows(theta, x, tx, T)
        # a + b near 1e4..1e5 (points 2, 4): the numpy form's gammaln differences lose digits
        # (the compiled products do not: test_rows_against_mpmath)
        rtol = 1e-8 if k in (2, 4) else 1e-10
        _close(ll_nb, ll_np, rtol)
        _close(g_nb, g_np, rtol)
    # a shared r with per-row alpha, a, b (the covariate layout) and rows in any order
    theta = np.tile(np.log(BG_POINTS[0]), (x.size, 1))
    theta[:, 1:] += rng.normal(0.0, 0.3, (x.size, 3))
    order = rng.permutation(x.size)
    ll, g = compiled_rows(theta[order], x[order], tx[order], T[order])
    ll_np, g_np = numpy_rows(theta, x, tx, T)
    _close(ll, ll_np[order])
    _close(g, g_np[order])


def test_row_columns_validate_as_fitting_does(case):
    bad = case.table.copy()
    col = "renewals" if "renewals" in bad.columns else "frequency"
    bad.iloc[3, bad.columns.get_loc(col)] = -1
    with pytest.raises(ClvkitError) as fit_err:
        case.model._prepare(bad)
    with pytest.raises(ClvkitError) as row_err:
        case.model._row_columns(bad)
    assert str(row_err.value) == str(fit_err.value)
    cols, mask = case.model._row_columns(case.table)
    assert mask.dtype == bool and mask.shape == (len(case.table),)
    assert all(v.dtype == np.float64 and v.shape == mask.shape for v in cols.values())


def _mp_grad(f, params):
    """Log-likelihood and its gradient in log parameters, in mpmath."""
    import mpmath as mp

    value = f(*params)
    grad = []
    for j in range(len(params)):

        def g(e, j=j):
            return f(*[p * mp.exp(e) if k == j else p for k, p in enumerate(params)])

        grad.append(float(mp.diff(g, 0)))
    return float(value), np.array(grad)


def _mp_bg(modified: bool):
    import mpmath as mp

    def f(r, al, a, b, xi, ti, Ti):
        x1 = xi + 1 if modified else xi  # MBG/NBD: B(a, b+x+1)
        A = (
            mp.loggamma(r + xi) - mp.loggamma(r) + r * mp.log(al)
            + mp.log(mp.beta(a, b + x1)) - mp.log(mp.beta(a, b))
        )  # fmt: skip
        s = (al + Ti) ** -(r + xi)
        if xi > 0 or modified:
            s += a / (b + x1 - 1) * (al + ti) ** -(r + xi)
        return A + mp.log(s)

    return f


@pytest.mark.parametrize("name", list(COMPILED))
def test_rows_against_mpmath(name):
    """Extreme rows and parameters (frequency 1000, T = 1e4, a = 1e-3, b = 1e3, a + b = 2e4)
    against 30-digit mpmath: value and gradient to 1e-10 relative."""
    import mpmath as mp

    cls, _, compiled_rows = COMPILED[name]
    f = _mp_bg(name == "mbgnbd")
    table = _purchase_table(30)
    cols, _ = cls()._row_columns(table)
    x, tx, T = cols["frequency"], cols["recency"], cols["T"]
    for point in BG_POINTS[2:]:
        theta = np.tile(np.log(point), (x.size, 1))
        ll, grad = compiled_rows(theta, x, tx, T)
        with mp.workdps(30):
            for i in range(x.size):
                row = (int(x[i]), mp.mpf(tx[i]), mp.mpf(T[i]))
                want_ll, want_g = _mp_grad(
                    lambda *p, row=row: f(*p, *row), [mp.mpf(p) for p in point]
                )
                _close(ll[i], want_ll)
                _close(grad[i], want_g)


def test_gamma_gamma_rows():
    """Compiled == numpy rows (tabulated terms reused across rows with one p and q, and
    recomputed when they change); the mask keeps repeat customers; mpmath at extremes."""
    import mpmath as mp

    model = GammaGamma()
    table = _spend_table(2357)
    cols, mask = model._row_columns(table)
    assert mask.sum() == (table["frequency"] > 0).sum() and not mask[-1]
    x, mv = cols["frequency"][mask], cols["monetary_value"][mask]
    rng = np.random.default_rng(9)
    for point in GG_POINTS:
        theta = np.tile(np.log(point), (x.size, 1))
        theta[:, 2] += rng.normal(0.0, 1.0, x.size)  # covariates on v: p, q shared
        theta[x.size // 2 :, :2] += 0.5  # p and q change half way
        _close(gg_rows_loglik_grad(theta, x, mv)[0], gg_loglik_rows_grad(theta, x, mv)[0])
        _close(gg_rows_loglik_grad(theta, x, mv)[1], gg_loglik_rows_grad(theta, x, mv)[1])
        theta = np.log(point) + rng.normal(0.0, 1.0, (x.size, 3))
        _close(gg_rows_loglik_grad(theta, x, mv)[0], gg_loglik_rows_grad(theta, x, mv)[0])
        _close(gg_rows_loglik_grad(theta, x, mv)[1], gg_loglik_rows_grad(theta, x, mv)[1])

    def f(p, q, v, xi, z):
        px = p * xi
        return (
            mp.loggamma(px + q) - mp.loggamma(px) - mp.loggamma(q) + q * mp.log(v) + mp.log(xi)
            + (px - 1) * mp.log(xi * z) - (px + q) * mp.log(v + xi * z)
        )  # fmt: skip

    ext = np.flatnonzero(np.asarray(table.index.astype(str).str.startswith("x"))[mask])
    for point in GG_POINTS:
        theta = np.tile(np.log(point), (x.size, 1))
        ll, grad = gg_rows_loglik_grad(theta, x, mv)
        with mp.workdps(30):
            for i in ext:
                row = (mp.mpf(x[i]), mp.mpf(mv[i]))
                want_ll, want_g = _mp_grad(
                    lambda *p, row=row: f(*p, *row), [mp.mpf(p) for p in point]
                )
                _close(ll[i], want_ll)
                _close(grad[i], want_g)


def test_sbg_rows_need_a_customer_table():
    table = pd.DataFrame([[100.0, 60.0, 40.0], [80.0, 50.0, np.nan]], columns=[0, 1, 2])
    table.attrs["time_unit"] = "M"
    ShiftedBetaGeo()._prepare(table)  # fits on cohorts
    with pytest.raises(ClvkitError, match="no row per customer"):
        ShiftedBetaGeo()._row_columns(table)


def test_pnbd_tabulated_rows_equal_the_direct_rows():
    """The tabulated series (per frequency while r and s are shared) == every row by
    numerics.pnbd_row: shared r, s with per-row alpha, beta; r and s changing between rows
    (tables rebuilt); every parameter per row; frequencies beyond the tables (XT) and zeta >
    ZMAX (quadrature)."""
    table = _purchase_table(2357)
    extra = pd.DataFrame(
        {"frequency": [XT - 1, XT, 3 * XT], "recency": [50.0, 50.0, 60.0], "T": [60.0] * 3},
        index=pd.Index(["y0", "y1", "y2"], name=table.index.name),
    )
    table = pd.concat([table, extra])
    table.attrs = dict(_purchase_table(1).attrs)
    cols, _ = ParetoNBD()._row_columns(table)
    x, tx, T = cols["frequency"], cols["recency"], cols["T"]
    rng = np.random.default_rng(11)
    for point in PNBD_POINTS:
        shared = np.tile(np.log(point), (x.size, 1))
        shared[:, [1, 3]] += rng.normal(0.0, 0.7, (x.size, 2))
        changing = shared.copy()
        changing[::7, [0, 2]] += 0.3  # r and s change every few rows
        free = np.log(point) + rng.normal(0.0, 1.0, (x.size, 4))
        for theta in (shared, changing, free):
            ll_tab, g_tab = pnbd_rows_loglik_grad(theta, x, tx, T)
            ll_dir, g_dir = pnbd_loglik_rows_grad(theta, x, tx, T)
            _close(ll_tab, ll_dir)
            _close(g_tab, g_dir)


def test_sbg_compiled_rows_equal_the_numpy_rows():
    """Renewals 0..200 (the products up to XMAX = 64, lgamma beyond), churned or not, at
    every point and with per-row parameters."""
    n = np.repeat(np.arange(201.0), 2)
    c = np.tile([0.0, 1.0], 201)
    rng = np.random.default_rng(13)
    for point in SBG_POINTS:
        for spread in (0.0, 1.0):
            theta = np.log(point) + spread * rng.normal(0.0, 1.0, (n.size, 2))
            ll_nb, g_nb = sbg_rows_loglik_grad(theta, n, c)
            ll_np, g_np = sbg_loglik_rows_grad(theta, n, c)
            _close(ll_nb, ll_np)
            _close(g_nb, g_np)


def test_rows_take_any_layout_and_no_rows(case):
    """theta as a strided view (Fortran order, a column slice) gives the same rows; zero rows
    give empty results of the right shapes."""
    cols, _ = _rows(case)
    m = next(iter(cols.values())).size
    P = len(case.points[0])
    rng = np.random.default_rng(21)
    wide = np.repeat(np.log(case.points[0]), 2) + rng.normal(0.0, 0.5, (m, 2 * P))
    view = wide[:, ::2]
    ll, grad = case.model._rows_loglik_grad(np.ascontiguousarray(view), cols)
    ll_v, grad_v = case.model._rows_loglik_grad(view, cols)
    ll_f, grad_f = case.model._rows_loglik_grad(np.asfortranarray(view), cols)
    np.testing.assert_array_equal(ll_v, ll)
    np.testing.assert_array_equal(grad_v, grad)
    np.testing.assert_array_equal(ll_f, ll)
    np.testing.assert_array_equal(grad_f, grad)
    empty = {c: v[:0] for c, v in cols.items()}
    ll0, g0 = case.model._rows_loglik_grad(np.zeros((0, P)), empty)
    assert ll0.shape == (0,) and g0.shape == (0, P)


def test_bgbb_product_rows_equal_the_direct_rows():
    """The rising-factorial rows (n <= ROWS_NMAX) == the base's row function, at every point,
    with shared and per-row parameters (rows beyond ROWS_NMAX take the base's route)."""
    cols, _ = BetaGeoBetaBinom()._row_columns(_bgbb_table())
    x, tx, n = cols["frequency"], cols["recency"], cols["n"]
    assert (n <= ROWS_NMAX).sum() > 20 and (n > ROWS_NMAX).sum() >= 5
    rng = np.random.default_rng(23)
    for k, point in enumerate(BGBB_POINTS):
        # parameters near 1e4..1e5 (point 2): the direct lgamma/digamma differences lose
        # digits (1e-10); elsewhere the two agree to 1e-13
        rtol = 1e-8 if k == 2 else 1e-10
        for spread in (0.0, 1.0):
            theta = np.log(point) + spread * rng.normal(0.0, 1.0, (x.size, 4))
            ll, g = bgbb_loglik_rows_grad(theta, x, tx, n)
            ll_d, g_d = bgbb_loglik_rows_grad(theta, x, tx, n, direct=True)
            _close(ll, ll_d, rtol)
            _close(g, g_d, rtol)
