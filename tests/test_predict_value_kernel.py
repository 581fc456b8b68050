"""The compiled expected-CLV kernels (clvkit.models.bgnbd.quadrature) against the numpy route of
clvkit.models.bgnbd.predictions, scipy's Gauss rules and mpmath, including the extreme grid."""

from __future__ import annotations

import mpmath as mp
import numpy as np
import pytest

from clvkit.models.bgnbd import predictions as predict
from clvkit.models.bgnbd import quadrature as q
from clvkit.models.bgnbd.cashflow import expected_value
from clvkit.models.bgnbd.gauss import beta_gauss_rule
from clvkit.models.contract import DRAW_BLOCK
from clvkit.models.gamma_gamma import predictions as gg_predict
from clvkit.value import DiscountPlan


def _rule(a: float, b: float, n: int, warm_from: tuple[float, float] | None = None):
    nodes, wts, wp, diag, off = (np.empty(128) for _ in range(5))
    work = np.empty((6, 128))
    if warm_from is not None:
        q._beta_rule(*warm_from, n, (nodes, wts, wp), (diag, off, work), False)
    q._beta_rule(a, b, n, (nodes, wts, wp), (diag, off, work), warm_from is not None)
    return nodes[:n].copy(), wts[:n].copy(), wp[:n].copy()


@pytest.mark.parametrize("a", [1e-4, 0.05, 0.79, 1.0, 7.0, 1e4])
@pytest.mark.parametrize("b", [1e-4, 0.3, 2.43, 50.0, 1e4])
@pytest.mark.parametrize("n", [6, 10, 33, 128])
@pytest.mark.parametrize("warm", [False, True])
def test_beta_rule_matches_golub_welsch(a, b, n, warm) -> None:
    """Implicit QL (cold) and Newton from a nearby rule (warm) give the LAPACK-based rule."""
    ref_nodes, ref_w = beta_gauss_rule(np.array(a), np.array(b), n)
    nodes, w, wp = _rule(a, b, n, (a * 1.1, b * 0.9) if warm else None)
    # nodes: absolute error ~ eps of the eigen-solvers; weights relative where they matter
    np.testing.assert_allclose(nodes, ref_nodes, rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(w, ref_w, rtol=1e-8, atol=1e-14)
    assert np.all(np.diff(nodes) > 0) and abs(w.sum() - 1.0) < 1e-14
    np.testing.assert_allclose(wp, w / nodes, rtol=1e-15)
    # moments: E[p] = a / (a + b), E[p^2] = a (a + 1) / ((a + b)(a + b + 1))
    m1 = a / (a + b)
    np.testing.assert_allclose((w * nodes).sum(), m1, rtol=1e-10)
    np.testing.assert_allclose((w * nodes**2).sum(), m1 * (a + 1) / (a + b + 1), rtol=1e-9)


def _plan(continuous: bool, cost: float):
    return DiscountPlan(52.14, 4.345, 0.01, continuous, cost)


def _grid(plan):
    cf = plan.cashflow(1.0)
    return cf.times, cf.revenue_weights, cf.cost_weights, cf.horizon_index


def _spend(gg, x, m):
    return gg_predict.gg_expected_spend(*gg, x, m)


def _numpy_route(bg, x, T, plan):
    """R, F(H), C per (draw, customer) alive at T with predict's public functions."""
    x, T = np.asarray(x, float), np.asarray(T, float)
    pa = predict.bg_probability_alive(*bg, x, T, T)[..., None]
    t_rev, w_rev = plan.revenue_weights()
    F = predict.bg_expected_purchases(*bg, x, T, T, t_rev) / pa
    R = F @ w_rev
    C = np.zeros_like(R)
    if plan.cost_per_period > 0:
        s_cost, c_cost = plan.cost_weights()
        C = (predict.bg_probability_alive_at(*bg, x, T, T, s_cost) / pa) @ c_cost
    return R, F[..., -1], C


def _kernel_route(bg, x, T, plan):
    x, T = np.asarray(x, float), np.asarray(T, float)
    order = np.lexsort((T, x))
    xs, Ts = x[order], T[order]
    assert np.all((np.diff(xs) > 0) | ((np.diff(xs) == 0) & (np.diff(Ts) > 0))), "distinct"
    gnew = np.r_[True, xs[1:] != xs[:-1]]
    gstart = np.append(np.flatnonzero(gnew), xs.size).astype(np.int64)
    times, w_rev, w_cost, i_h = _grid(plan)
    S = bg[0].shape[0]
    out = [np.empty((S, x.size)) for _ in range(3)]
    flat = [np.ascontiguousarray(v[:, 0]) for v in bg]
    visit = q.draw_order(flat[2], flat[3])  # row j of the outputs is draw visit[j]
    q.alive_values(
        tuple(flat[:4]), visit, (xs[gstart[:-1]], gstart, Ts), (times, w_rev, w_cost), i_h,
        tuple(out),
    )  # fmt: skip
    inv = np.empty_like(order)
    inv[order] = np.arange(order.size)
    by_draw = np.empty_like(visit)
    by_draw[visit] = np.arange(S)
    return [o[by_draw][:, inv] for o in out]


def _draws(S: int, seed: int, **scale):
    rng = np.random.default_rng(seed)
    base = {"r": 0.2426, "alpha": 4.4137, "a": 0.793, "b": 2.4262}
    return [
        (base[k] * scale.get(k, 1.0) * np.exp(0.3 * rng.standard_normal(S)))[:, None]
        for k in ("r", "alpha", "a", "b")
    ]


@pytest.mark.parametrize("continuous", [False, True])
@pytest.mark.parametrize("cost", [0.0, 2.5])
def test_kernel_matches_numpy_route_on_cdnow_like_groups(continuous, cost) -> None:
    """Many T per x (the Taylor route) and single customers (node by node) agree with predict."""
    rng = np.random.default_rng(1)
    x = np.concatenate([np.zeros(60), np.full(40, 3.0), np.full(25, 20.0), [1, 7, 50, 200]])
    T = np.concatenate([np.sort(rng.choice(np.arange(190, 280) / 7, s, replace=False))
                        for s in (60, 40, 25)] + [np.array([30.0, 33.0, 38.0, 39.0])])  # fmt: skip
    bg = _draws(64, 2)
    plan = _plan(continuous, cost)
    got = _kernel_route(bg, x, T, plan)
    ref = _numpy_route(bg, x, T, plan)
    for g, r_ in zip(got, ref, strict=True):
        np.testing.assert_allclose(g, r_, rtol=2e-9, atol=0)


@pytest.mark.parametrize(
    "scale",
    [
        {"r": 1e-3}, {"r": 100.0}, {"alpha": 1e-3}, {"alpha": 1e3}, {"a": 1e-3}, {"a": 1e3},
        {"b": 1e-3}, {"b": 1e3},
    ],
)  # fmt: skip
def test_kernel_matches_numpy_route_at_extremes(scale) -> None:
    """Frequencies up to 1e4, ages up to 1e5, parameters far from CDNOW (wide T ranges)."""
    x = np.repeat([0.0, 5.0, 1e3, 1e4], 6)
    T = np.tile([0.0, 0.5, 10.0, 39.0, 1e3, 1e5], 4)
    bg = _draws(16, 3, **scale)
    plan = _plan(False, 1.0)
    got = _kernel_route(bg, x, T, plan)
    ref = _numpy_route(bg, x, T, plan)
    for g, r_ in zip(got, ref, strict=True):
        assert np.all(np.isfinite(g))
        np.testing.assert_allclose(g, r_, rtol=1e-7, atol=1e-300)


def test_taylor_route_matches_node_by_node() -> None:
    """The series over a T range reproduces the node-by-node values to rounding level."""
    plan = _plan(False, 3.0)
    times, w_rev, w_cost, i_h = _grid(plan)
    poly, buf = np.empty((3, q._M_MAX)), np.empty(q._M_MAX)
    checked = 0
    for k, a, bx, alpha in [(0.24, 0.79, 2.43, 4.4), (3.2, 0.79, 5.4, 4.4), (20.2, 0.5, 22.4, 1.0),
                            (0.5, 0.05, 0.3, 30.0), (1e3, 2.0, 1e3, 10.0)]:  # fmt: skip
        T = np.linspace(20.0, 40.0, 9)
        gam = 1.0 / (alpha + T)
        # the kernel cuts T ranges where rounding errors of the recurrence could grow > 1e3
        while (a + bx - 1) * -np.log1p(-(gam[0] - gam[-1]) / (gam[0] + gam[-1])) > q._LOG_AMP:
            T, gam = T[:-1], gam[:-1]
        if gam.size < 2:  # one customer: node by node
            assert a + bx > 100
            continue
        n = 24
        nodes, w, wp = _rule(a, bx, n)
        gam0, theta = 0.5 * (gam[0] + gam[-1]), (gam[0] - gam[-1]) / (gam[0] + gam[-1])
        grid = (times, w_rev, w_cost)
        m = q._range_poly((k, a, bx), gam0, theta, (nodes, w, wp), n, grid, i_h, (poly, buf))
        if m < 0:  # the caller goes node by node; must not happen for moderate cases
            raise AssertionError((k, a, bx))
        u = (gam - gam0) / (theta * gam0)
        series = [np.polyval(poly[row, :m][::-1], u) for row in range(3)]
        for i, gi in enumerate(gam):
            direct = q._direct(k, gi, (nodes, w, wp), n, grid, i_h)
            for row in range(3):
                assert series[row][i] == pytest.approx(direct[row], rel=1e-12)
        checked += 1
    assert checked >= 4


@pytest.mark.parametrize("x, T, params", [
    (0, 30.0, (0.2426, 4.4137, 0.793, 2.4262)),
    (4, 35.0, (0.2426, 4.4137, 0.793, 2.4262)),
    (12, 38.0, (2.0, 10.0, 0.3, 8.0)),
])  # fmt: skip
def test_discounted_purchases_match_mpmath(x, T, params) -> None:
    """R = sum_j w_j E_p[(1 - (1 + p t_j / c)^-k) / p] by mpmath quadrature."""
    r, alpha, a, b = params
    plan = _plan(False, 0.0)
    t_rev, w_rev = plan.revenue_weights()
    mp.mp.dps = 30
    k, c = r + x, alpha + T
    dens = lambda p: p ** (a - 1) * (1 - p) ** (b + x - 1) / mp.beta(a, b + x)  # noqa: E731
    ref = sum(
        float(w) * mp.quad(lambda p, t=float(t): dens(p) * (1 - (1 + p * t / c) ** -k) / p, [0, 1])
        for t, w in zip(t_rev, w_rev, strict=True)
    )
    # two customers with the same x so that the series route is exercised as well
    bg = [np.array([[v]]) for v in params]
    got = _kernel_route(bg, [x, x, x], [T, T + 0.5, T - 0.5], plan)[0][0, 0]
    assert got == pytest.approx(ref, rel=1e-9)


@pytest.mark.parametrize("cost", [0.0, 1.5])
def test_expected_chunk_matches_predict_functions(cost) -> None:
    """CLV, P(alive), purchases and spend per (draw, customer) against clvkit.models.bgnbd.predictions."""
    rng = np.random.default_rng(5)
    n = 400
    x = rng.choice([0, 0, 0, 1, 2, 3, 7, 15, 60], n).astype(float)
    T = rng.choice(np.arange(100, 280) / 7, n)
    tx = np.where(x > 0, T * rng.uniform(0, 1, n), 0.0)
    m = np.where(x > 0, rng.gamma(3.0, 10.0, n), 0.0)
    bg = _draws(32, 6)
    gg = [
        np.full((32, 1), v) * np.exp(0.1 * rng.standard_normal((32, 1))) for v in (6.2, 3.7, 15.4)
    ]
    plan = _plan(False, cost)
    params = dict(zip(("r", "alpha", "a", "b"), bg, strict=True))
    cols = {"frequency": x, "recency": tx, "T": T}
    spend = _spend(gg, x, m)
    clv, means, (pa, purchases) = expected_value(
        params, cols, spend, plan.cashflow(0.3), per_draw=True
    )
    ref_pa = predict.bg_probability_alive(*bg, x, tx, T)
    ref_spend = gg_predict.gg_expected_spend(*gg, x, m)
    R, FH, C = _numpy_route(bg, x, T, plan)
    np.testing.assert_allclose(pa, ref_pa, rtol=1e-12)
    np.testing.assert_allclose(spend, ref_spend, rtol=1e-14)
    np.testing.assert_allclose(purchases, ref_pa * FH, rtol=2e-9)
    np.testing.assert_allclose(
        clv, ref_pa * (0.3 * ref_spend * R - cost * C), rtol=2e-9, atol=1e-12
    )
    # the per-customer means over draws of the per-draw values (block sums of 256 draws)
    for got, per in zip(means, (pa, purchases, spend, clv), strict=True):
        np.testing.assert_allclose(got, per.mean(axis=0), rtol=1e-14)


def test_expected_chunk_blocks_do_not_depend_on_the_pool() -> None:
    """Draw blocks are fixed (DRAW_BLOCK), so a thread pool gives the serial bits."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(8)
    n, S = 300, 3 * DRAW_BLOCK + 17
    x = rng.choice([0, 0, 1, 2, 5, 30], n).astype(float)
    T = rng.choice(np.arange(100, 280) / 7, n)
    tx = np.where(x > 0, T * rng.uniform(0, 1, n), 0.0)
    m = np.where(x > 0, rng.gamma(3.0, 10.0, n), 0.0)
    bg = _draws(S, 9)
    gg = [np.full((S, 1), v) for v in (6.2, 3.7, 15.4)]
    plan = _plan(False, 1.0)
    params = dict(zip(("r", "alpha", "a", "b"), bg, strict=True))
    cols = {"frequency": x, "recency": tx, "T": T}
    args = (params, cols, _spend(gg, x, m), plan.cashflow(0.5))
    serial = expected_value(*args)
    with ThreadPoolExecutor(3) as pool:
        threaded = expected_value(*args, lambda f, it: list(pool.map(f, it)))
    np.testing.assert_array_equal(serial[0], threaded[0])
    np.testing.assert_array_equal(serial[1], threaded[1])


def _cdnow_like(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.choice([0, 0, 0, 1, 2, 3, 7, 15, 60], n).astype(float)
    T = rng.choice(np.arange(100, 280) / 7, n)
    tx = np.where(x > 0, np.round(T * rng.uniform(0, 1, n), 2), 0.0)
    m = np.where(x > 0, rng.gamma(3.0, 10.0, n), 0.0)
    return x, tx, T, m


@pytest.mark.parametrize("continuous, cost", [(False, 0.0), (False, 1.5), (True, 0.7)])
def test_fast_path_equals_the_contract_generic_route(continuous, cost) -> None:
    """BGNBDSpec.expected_value (compiled quadrature) against the contract's generic route
    (expected purchases and P(alive) on the cash-flow grid), per draw and customer."""
    from clvkit.models.bgnbd.spec import BGNBDSpec
    from clvkit.models.contract import PurchaseSpec

    x, tx, T, m = _cdnow_like(300, 4)
    bg = _draws(40, 7)
    gg = [np.full((40, 1), v) for v in (6.2, 3.7, 15.4)]
    params = dict(zip(("r", "alpha", "a", "b"), bg, strict=True))
    cols = {"frequency": x, "recency": tx, "T": T}
    spend = _spend(gg, x, m)
    cf = _plan(continuous, cost).cashflow(0.4)
    spec = BGNBDSpec()
    clv, means = spec.expected_value(params, cols, spend, cf)
    g_clv, g_means = PurchaseSpec.expected_value(spec, params, cols, spend, cf)
    np.testing.assert_allclose(clv, g_clv, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(means, g_means, rtol=1e-9, atol=1e-12)
    assert np.abs(clv).max() > 10.0  # real values, not all zero


def test_customer_value_of_a_model_without_the_fast_path_agrees() -> None:
    """A BG/NBD spec that keeps the contract's generic expected value gives customer_value's
    equity, tiers and per-customer means within 1e-9 of the compiled route."""
    import types

    import xarray as xr

    import clvkit
    from clvkit.models.bgnbd.spec import BGNBDSpec
    from clvkit.models.contract import PurchaseSpec

    class GenericBGNBD(BGNBDSpec):
        expected_value = PurchaseSpec.expected_value

    rng = np.random.default_rng(2)
    base = {"r": 0.2426, "alpha": 4.4137, "a": 0.793, "b": 2.4262}
    post = xr.Dataset(
        {k: (("chain", "draw"), v * np.exp(0.1 * rng.standard_normal((2, 50))))
         for k, v in base.items()}, attrs={"time_unit": "W"},
    )  # fmt: skip
    gg = {"p": 6.2488, "q": 3.7446, "v": 15.4477}
    rfm = clvkit.datasets.cdnow_calibration_summary()
    kw = dict(horizon="52W", period="4W", annual_discount_rate=0.1, cost_per_period=0.5,
              margin=0.3, random_seed=1)  # fmt: skip
    fast = clvkit.customer_value(post, gg, rfm, **kw)
    slow_model = types.SimpleNamespace(spec=GenericBGNBD(), posterior_=post)
    slow = clvkit.customer_value(slow_model, gg, rfm, **kw)
    np.testing.assert_allclose(slow.equity.values, fast.equity.values, rtol=1e-9)
    np.testing.assert_allclose(slow.new_customer.values, fast.new_customer.values, rtol=1e-9)
    a, b = slow.summary(), fast.summary()
    for col in ("mean", "median", "p_alive", "expected_purchases", "expected_spend"):
        np.testing.assert_allclose(a[col], b[col], rtol=1e-9, atol=1e-9)
    assert 9_000 < fast.equity.values.mean() < 12_500  # 30% margin, 0.5 a period in costs


@pytest.mark.parametrize("scale", [{}, {"r": 1e-3}, {"alpha": 1e3}, {"a": 1e-3}, {"b": 1e3}])
def test_window_values_match_the_generic_route_at_extremes(scale) -> None:
    """BGNBDSpec.window_values (customers summed per (x, T) pair, then the pair values per
    window) against the contract's generic route per window (closed-form expected purchases
    and P(alive), weighted and summed), for monthly windows of revenue and of costs, with
    frequencies up to 1e4 and ages up to 1e5."""
    from clvkit.models.bgnbd.spec import BGNBDSpec
    from clvkit.models.contract import Cashflow, PurchaseSpec

    x = np.repeat([0.0, 1.0, 5.0, 1e3, 1e4], 6)
    T = np.tile([0.5, 10.0, 39.0, 39.0, 1e3, 1e5], 5)
    tx = np.where(x > 0, np.round(0.7 * T, 2), 0.0)
    S = 12
    params = dict(zip(("r", "alpha", "a", "b"), _draws(S, 9, **scale), strict=True))
    cols = {"frequency": x, "recency": tx, "T": T}
    spend = 10.0 + np.random.default_rng(2).gamma(2.0, 5.0, size=(S, x.size))
    weight = np.random.default_rng(3).integers(1, 50, size=x.size).astype(float)
    flows = []
    for k in range(1, 13):
        a, b = 4.345 * (k - 1), 4.345 * k
        f = 1.01**-k
        flows.append(
            Cashflow(
                times=np.array([a, b]),
                revenue_weights=np.array([-f, f]),
                cost_weights=np.zeros(2),
                horizon_index=1,
                margin=0.3,
            )
        )
        flows.append(Cashflow(times=np.array([a]), revenue_weights=np.zeros(1),
                              cost_weights=np.array([f]), horizon_index=0, cost_per_period=2.0))  # fmt: skip
    spec = BGNBDSpec()
    got = spec.window_values(params, cols, spend, weight, flows)
    want = np.stack(
        [PurchaseSpec.expected_value(spec, params, cols, spend, cf)[0] @ weight for cf in flows],
        axis=1,
    )
    assert np.all(np.isfinite(got)) and np.abs(got).max() > 1.0
    np.testing.assert_allclose(got, want, rtol=1e-7, atol=1e-9)
