"""Contract checks every registered model must pass, in the spirit of scikit-learn's
``check_estimator``.

Spec-level checks take a :class:`~clvkit.models.contract.PurchaseSpec` or
:class:`~clvkit.models.contract.SpendSpec`, posterior draws ``params`` (``(S, 1)`` per scalar
parameter) and customer columns ``cols`` (from ``spec.customer_columns``); estimator-level
checks take the registered estimator class and a customer table it can fit. Each check asserts
numbers and says in its message which contract rule failed. Monte Carlo checks compare a mean
with its expectation within :data:`MC_SIGMAS` standard errors of that mean (estimated from
the same simulation), with fixed seeds so that a pass is reproducible.
"""

from __future__ import annotations

import contextlib
import copy
import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import clvkit
from clvkit.models import registry
from clvkit.models.contract import (
    Cashflow,
    EventBatch,
    Future,
    PurchaseSpec,
    SpendSpec,
    n_draws,
    n_rows,
    take,
    take_draws,
)

__all__ = [
    "MC_SIGMAS",
    "check_estimator_fit_save_load",
    "check_estimator_new_customer",
    "check_estimator_predictions",
    "check_estimator_seeded",
    "check_estimator_time_unit",
    "check_expected_value",
    "check_loglik_objective",
    "check_new_customer",
    "check_probability_of_purchases",
    "check_purchase_shapes",
    "check_purchase_spec",
    "check_simulate_mean",
    "check_simulate_reproducible",
    "check_spend_sample_mean",
    "check_spend_spec",
    "check_window_values",
    "collect_events",
    "jitter_draws",
    "registry_restored",
]

#: Monte Carlo tolerance: a simulated mean must lie within this many standard errors.
MC_SIGMAS = 4.0
#: Horizons (model time units) used by the checks, including 0.
GRID = np.array([0.0, 0.5, 1.0, 4.0, 13.0, 52.0])


@contextlib.contextmanager
def registry_restored() -> Iterator[None]:
    """Undo any registration made inside the block (tests register example models; the rest
    of the test session must see only the built-in ones)."""
    before = set(registry.names())  # loads the built-in models first
    try:
        yield
    finally:
        for name in set(registry.names()) - before:
            registry.unregister(name)


def jitter_draws(
    spec: Any, point: Mapping[str, float], S: int, rng: np.random.Generator, scale: float = 0.05
) -> dict[str, np.ndarray]:
    """``S`` draws around a point estimate, each in its parameter's support: log-normal for
    ``positive``, normal for ``real`` and logit-normal for ``unit`` parameters."""
    out = {}
    for n in spec.param_names:
        v = float(point[n])
        z = scale * rng.standard_normal((S, 1))
        support = spec.support(n)
        if support == "positive":
            out[n] = v * np.exp(z)
        elif support == "unit":
            out[n] = 1.0 / (1.0 + np.exp(-(np.log(v / (1.0 - v)) + z)))
        else:
            out[n] = v + z
    return out


def collect_events(future: Future, S: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Consume a :class:`Future`: events per (draw, customer), ``(S, n)``, and every event
    time with its unit's death time (checking each batch's layout on the way)."""
    counts = np.zeros((S, n), dtype=np.int64)
    over = []
    for batch in future.batches:
        assert isinstance(batch, EventBatch), f"batches yielded {type(batch).__name__}"
        k = np.asarray(batch.count)
        assert batch.draw.shape == batch.customer.shape == k.shape, "EventBatch arrays differ"
        assert (k >= 0).all(), "EventBatch.count has negative entries"
        assert batch.times.shape == (int(k.sum()),), (
            f"EventBatch.times has {batch.times.size} entries for count.sum() = {k.sum()}"
        )
        np.add.at(counts, (batch.draw, batch.customer), k)
        over.append(batch.times)
    times = np.concatenate(over) if over else np.zeros(0)
    return counts, times


# ---- purchase models ----------------------------------------------------------------------------


def check_purchase_shapes(spec: PurchaseSpec, params: dict, cols: dict) -> None:
    """Shapes ``(S, n, P)``, probabilities in [0, 1], expectations non-decreasing from 0 at
    ``t = 0``, P(alive) non-increasing, ``t = 0`` alone equal to ``t = 0`` in a grid."""
    S, n, P = n_draws(params), n_rows(cols), GRID.size
    alive = spec.probability_alive(params, cols, GRID)
    cum = spec.expected_purchases(params, cols, GRID)
    assert alive.shape == (S, n, P), f"probability_alive shape {alive.shape} != {(S, n, P)}"
    assert cum.shape == (S, n, P), f"expected_purchases shape {cum.shape} != {(S, n, P)}"
    assert np.isfinite(alive).all() and np.isfinite(cum).all(), "non-finite predictions"
    assert alive.min() >= 0.0 and alive.max() <= 1.0, (
        f"probability_alive outside [0, 1]: [{alive.min()}, {alive.max()}]"
    )
    assert np.abs(cum[..., 0]).max() <= 1e-12, (
        f"expected_purchases at t = 0 is {np.abs(cum[..., 0]).max()}, not 0"
    )
    assert np.diff(cum, axis=-1).min() >= -1e-12, "expected_purchases decreases in t"
    assert np.diff(alive, axis=-1).max() <= 1e-12, "probability_alive increases in t"
    now = spec.probability_alive(params, cols, np.array([0.0]))
    assert now.shape == (S, n, 1)
    np.testing.assert_allclose(alive[..., 0], now[..., 0], rtol=1e-12, atol=0)
    # the order of the grid does not matter
    rev = spec.expected_purchases(params, cols, GRID[::-1])
    np.testing.assert_allclose(rev[..., ::-1], cum, rtol=1e-12, atol=1e-15)
    ll = spec.loglik(params, cols)
    assert ll.shape == (S, n), f"loglik shape {ll.shape} != {(S, n)}"
    assert np.isfinite(ll).all() and ll.max() <= 1e-12, "loglik not finite or above 0"
    key = spec.value_key(cols)
    assert key.ndim == 2 and key.shape[0] == n and np.isfinite(key).all(), "bad value_key"
    keys = spec.order_keys(cols)
    assert all(np.shape(k) == (n,) for k in keys), "order_keys must be (n,) arrays"
    # customers with equal value keys get equal predictions
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    np.testing.assert_allclose(cum, cum[:, first[inverse.ravel()]], rtol=1e-12, atol=1e-15)


def check_probability_of_purchases(
    spec: PurchaseSpec, params: dict, cols: dict, t: float = 13.0, k_max: int = 400
) -> None:
    """P(n purchases in ``(T, T + t]`` | history) is ``(S, n, K)``, in [0, 1], sums to 1 over
    ``n = 0..k_max`` and its mean equals ``expected_purchases(t)``; at ``t = 0`` it is a point
    mass at 0."""
    S, n = n_draws(params), n_rows(cols)
    k = np.arange(k_max + 1, dtype=np.float64)
    pmf = spec.probability_of_purchases(params, cols, t, k)
    assert pmf.shape == (S, n, k.size), f"probability_of_purchases shape {pmf.shape}"
    assert np.isfinite(pmf).all() and pmf.min() >= 0 and pmf.max() <= 1 + 1e-12
    np.testing.assert_allclose(pmf.sum(axis=-1), 1.0, rtol=0, atol=1e-9)
    mean = pmf @ k
    expected = spec.expected_purchases(params, cols, np.array([t]))[..., 0]
    np.testing.assert_allclose(mean, expected, rtol=1e-7, atol=1e-12)
    # one window per customer equals the customers' own single-window calls
    windows = np.linspace(0.0, 2.0 * t, n)
    per = spec.probability_of_purchases(params, cols, windows, k[:20])
    for i in range(n):
        one = {c: np.asarray(v)[i : i + 1] for c, v in cols.items()}
        single = spec.probability_of_purchases(params, one, float(windows[i]), k[:20])
        np.testing.assert_allclose(per[:, i], single[:, 0], rtol=1e-12, atol=1e-300)
    zero = spec.probability_of_purchases(params, cols, 0.0, np.array([0.0, 1.0]))
    np.testing.assert_allclose(zero[..., 0], 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(zero[..., 1], 0.0, rtol=0, atol=1e-12)


def check_new_customer(spec: PurchaseSpec, params: dict, n: int = 3) -> dict:
    """A new customer (``new_customer_columns``) has valid columns, is alive at age 0, and
    all of them get identical predictions. Returns the columns."""
    cols = spec.new_customer_columns(n)
    assert set(cols) >= set(spec.columns), f"new_customer_columns lacks {spec.columns}"
    assert n_rows(cols) == n
    alive = spec.probability_alive(params, cols, GRID)
    # alive at age 0, unless the model lets a customer drop out at its first purchase
    # (MBG/NBD); either way its simulated new customers start alive with that probability
    if not getattr(spec, "drops_at_first_purchase", False):
        np.testing.assert_allclose(alive[..., 0], 1.0, rtol=0, atol=1e-12)
    start = spec.simulate(params, cols, 0.0, np.random.default_rng(0)).p_alive
    np.testing.assert_allclose(alive[..., 0], start, rtol=1e-12, atol=0)
    cum = spec.expected_purchases(params, cols, GRID)
    np.testing.assert_allclose(cum, np.broadcast_to(cum[:, :1], cum.shape), rtol=1e-14)
    return cols


def check_simulate_mean(
    spec: PurchaseSpec,
    params: dict,
    cols: dict,
    horizon: float = 13.0,
    reps: int = 20_000,
    seed: int = 20261130,
) -> dict[str, float]:
    """Simulated futures agree with the closed forms within :data:`MC_SIGMAS` standard errors.

    Each (draw, customer) unit is repeated ``reps`` times. Checked per unit: the share drawn
    alive at ``T`` against ``Future.p_alive`` (which must equal P(alive at T + 0)), the mean
    number of events in the horizon against ``expected_purchases``, the share alive at the
    horizon against ``probability_alive``; and every event time lies in ``(0, horizon]`` and
    before its unit's death. Returns the largest z-scores seen.
    """
    S, n = n_draws(params), n_rows(cols)
    big = take(cols, np.tile(np.arange(n), reps))  # customer j * reps copies, unit-major
    fut = spec.simulate(params, big, horizon, np.random.default_rng(seed), batch_size=50_000)
    assert isinstance(fut, Future)
    pa_now = spec.probability_alive(params, cols, np.array([0.0, horizon]))
    assert fut.p_alive.shape == (S, n * reps)
    np.testing.assert_allclose(fut.p_alive, np.tile(pa_now[..., 0], reps), rtol=1e-12)
    counts, times = collect_events(fut, S, n * reps)
    death = np.full((S, n * reps), -np.inf)  # dead at T
    death[fut.alive_draw, fut.alive_customer] = fut.death
    assert (times > 0).all() and (times <= horizon).all(), "event times outside (0, horizon]"
    assert (counts[death == -np.inf] == 0).all(), "events of units dead at T"
    # the share alive at T and at T + horizon
    alive0 = (death > -np.inf).reshape(S, reps, n)
    alive_h = (death == np.inf).reshape(S, reps, n)
    z = {}
    for name, sims, exact in (
        ("alive at T", alive0, pa_now[..., 0]),
        ("alive at T + horizon", alive_h, pa_now[..., 1]),
    ):
        mean = sims.mean(axis=1)
        se = np.sqrt(np.maximum(exact * (1 - exact), 1e-12) / reps)
        z[name] = float(np.max(np.abs(mean - exact) / se))
    expected = spec.expected_purchases(params, cols, np.array([horizon]))[..., 0]
    per_unit = counts.reshape(S, reps, n)
    se = per_unit.std(axis=1, ddof=1) / np.sqrt(reps)
    diff = np.abs(per_unit.mean(axis=1) - expected)
    z["purchases"] = float(np.max(diff / np.maximum(se, 1e-12)))
    for name, val in z.items():
        assert val <= MC_SIGMAS, (
            f"simulated {name} is {val:.2f} standard errors from its closed form "
            f"(bound {MC_SIGMAS}; {reps} futures per unit)"
        )
    # per-customer horizons: a horizon of 0 gives no events
    hs = np.where(np.arange(n) % 2 == 0, 0.0, horizon)
    f2 = spec.simulate(params, cols, hs, np.random.default_rng(seed))
    c2, _ = collect_events(f2, S, n)
    assert (c2[:, hs == 0] == 0).all(), "events inside a horizon of 0"
    return z


def check_simulate_reproducible(spec: PurchaseSpec, params: dict, cols: dict) -> None:
    """One seed gives one future; another seed another one."""
    S, n = n_draws(params), n_rows(cols)
    big = take(cols, np.tile(np.arange(n), 200))

    def run(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        fut = spec.simulate(params, big, 26.0, np.random.default_rng(seed))
        counts, times = collect_events(fut, S, n * 200)
        return counts, np.sort(times), fut.death.copy()

    a, b = run(7), run(7)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    c = run(8)
    assert not np.array_equal(a[1], c[1]), "simulate ignores its generator"


def check_expected_value(spec: PurchaseSpec, params: dict, cols: dict) -> None:
    """``spec.expected_value`` (a model's fast route, if any) equals the generic route of
    :meth:`PurchaseSpec.expected_value` to 1e-8 relative, and the generic route equals its
    definition on the cash-flow grid."""
    S, n = n_draws(params), n_rows(cols)
    times = np.array([4.0, 8.0, 13.0, 26.0, 39.0, 52.0])
    disc = 1.0 / 1.01 ** np.arange(1, times.size + 1)
    rev_w = disc - np.append(disc[1:], 0.0)  # sum_j w_j cum(t_j) = sum_j disc_j * increment_j
    cf = Cashflow(
        times=times,
        revenue_weights=rev_w,
        cost_weights=disc,
        horizon_index=times.size - 1,
        margin=0.3,
        cost_per_period=0.5,
    )
    spend = 20.0 + np.random.default_rng(3).gamma(2.0, 5.0, size=(S, n))
    clv, means = spec.expected_value(params, cols, spend, cf)
    gclv, gmeans = PurchaseSpec.expected_value(spec, params, cols, spend, cf)
    assert clv.shape == (S, n) and means.shape == (4, n)
    np.testing.assert_allclose(clv, gclv, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(means, gmeans, rtol=1e-8, atol=1e-12)
    cum = spec.expected_purchases(params, cols, times)
    alive = spec.probability_alive(params, cols, times)
    direct = 0.3 * spend * (cum @ rev_w) - 0.5 * (alive @ disc)
    np.testing.assert_allclose(gclv, direct, rtol=1e-10, atol=1e-10)
    # blocks of draws give the same answer as one pass
    sub = take_draws(params, slice(0, max(S // 2, 1)))
    part, _ = spec.expected_value(sub, cols, spend[: max(S // 2, 1)], cf)
    np.testing.assert_allclose(part, clv[: max(S // 2, 1)], rtol=1e-12)


def check_window_values(spec: PurchaseSpec, params: dict, cols: dict) -> None:
    """``spec.window_values`` (a model's fast route, if any) equals, per cash flow, the
    customers' ``expected_value`` weighted and summed (1e-10 relative), for revenue windows, a
    cost-only window and a mixed one; no cash flow gives an ``(S, 0)`` array."""
    S, n = n_draws(params), n_rows(cols)
    spend = 20.0 + np.random.default_rng(4).gamma(2.0, 5.0, size=(S, n))
    weight = np.random.default_rng(5).integers(1, 6, size=n).astype(float)
    cfs = [
        Cashflow(times=np.array([0.0, 4.0]), revenue_weights=np.array([-1.0, 1.0]) / 1.01,
                 cost_weights=np.zeros(2), horizon_index=1),
        Cashflow(times=np.array([4.0, 13.0]), revenue_weights=np.array([-1.0, 1.0]) / 1.03,
                 cost_weights=np.zeros(2), horizon_index=1, margin=0.4),
        Cashflow(times=np.array([13.0]), revenue_weights=np.zeros(1),
                 cost_weights=np.array([0.97]), horizon_index=0, cost_per_period=1.0),
        Cashflow(times=np.array([13.0, 52.0]), revenue_weights=np.array([-0.9, 0.9]),
                 cost_weights=np.array([0.9, 0.0]), horizon_index=1, margin=0.3,
                 cost_per_period=0.5),
    ]  # fmt: skip
    got = spec.window_values(params, cols, spend, weight, cfs)
    assert got.shape == (S, len(cfs))
    for k, cf in enumerate(cfs):
        want = spec.expected_value(params, cols, spend, cf)[0] @ weight
        np.testing.assert_allclose(got[:, k], want, rtol=1e-10, atol=1e-10)
    assert spec.window_values(params, cols, spend, weight, []).shape == (S, 0)


def check_loglik_objective(
    estimator_cls: type, params: dict, table: pd.DataFrame, fitted: Any = None
) -> float:
    """Per-customer ``spec.loglik`` summed equals the estimator's fit objective (its
    log-likelihood, no prior) at the same parameters, for each draw, and the public
    ``log_likelihood(table, params)`` (of ``fitted``, default an unfitted estimator) equals
    ``spec.loglik``."""
    spec = estimator_cls.spec
    est = estimator_cls()
    stats, _ = est._prepare(table)
    cols = spec.customer_columns(table)
    ll = spec.loglik(params, cols).sum(axis=1)
    names = spec.param_names
    assert all(spec.support(n) == "positive" for n in names), "objective on the log scale"
    for s in range(n_draws(params)):
        theta = np.log([float(params[n][s, 0]) for n in names])
        objective = est._loglik_grad(theta, stats)[0]
        np.testing.assert_allclose(ll[s], objective, rtol=1e-10)
    public = (est if fitted is None else fitted).log_likelihood(
        table, params={n: params[n][:, 0] for n in names}
    )
    assert public.dims == ("chain", "draw", "customer_id")
    np.testing.assert_allclose(public.sum("customer_id").values.ravel(), ll, rtol=1e-12)
    return float(ll[0])


def check_purchase_spec(spec: PurchaseSpec, params: dict, cols: dict) -> None:
    """Every fast spec-level purchase check (the Monte Carlo ones are separate)."""
    assert isinstance(spec, PurchaseSpec) and spec.kind == "purchase"
    check_purchase_shapes(spec, params, cols)
    check_probability_of_purchases(spec, params, cols)
    check_new_customer(spec, params)
    check_expected_value(spec, params, cols)
    check_window_values(spec, params, cols)
    check_simulate_reproducible(spec, params, cols)


# ---- spend models -------------------------------------------------------------------------------


def check_spend_spec(spec: SpendSpec, params: dict, cols: dict) -> None:
    """Shapes, finite positive expected spend, new customers, reproducible spend draws (that
    depend on the generator, unless the spend is deterministic and equals its mean)."""
    assert isinstance(spec, SpendSpec) and spec.kind == "spend"
    S, n = n_draws(params), n_rows(cols)
    mean = spec.expected_spend(params, cols)
    assert mean.shape == (S, n), f"expected_spend shape {mean.shape} != {(S, n)}"
    assert (mean > 0).all() and not np.isnan(mean).any(), "expected_spend not positive"
    ll = spec.loglik(params, cols)
    assert ll.shape == (S, n) and not np.isnan(ll).any(), "bad spend loglik"
    new = spec.new_customer_columns(2)
    nm = spec.expected_spend(params, new)
    assert nm.shape == (S, 2) and (nm > 0).all()
    np.testing.assert_allclose(nm[:, 0], nm[:, 1], rtol=1e-14)
    draw = np.repeat(np.arange(S), n)
    cust = np.tile(np.arange(n), S)
    count = np.full(S * n, 3)

    def run(seed: int) -> np.ndarray:
        return spec.sample_spend(params, cols, draw, cust, count, np.random.default_rng(seed))

    a = run(5)
    assert a.shape == (int(count.sum()),) and (a > 0).all() and np.isfinite(a).all()
    np.testing.assert_array_equal(a, run(5))
    if np.array_equal(a, run(6)):  # a deterministic spend (e.g. a fixed fee) is its mean
        np.testing.assert_allclose(
            a, np.repeat(mean[draw, cust], count), rtol=1e-14,
            err_msg="sample_spend ignores its generator but is not its expected spend",
        )  # fmt: skip


def check_spend_sample_mean(
    spec: SpendSpec, params: dict, cols: dict, reps: int = 20_000, seed: int = 11
) -> float:
    """The mean of simulated spend per unit equals ``expected_spend`` within
    :data:`MC_SIGMAS` standard errors (units with one event each, ``reps`` per (draw,
    customer), so each unit's latent spend level is drawn afresh). Returns the largest z."""
    S, n = n_draws(params), n_rows(cols)
    draw = np.repeat(np.arange(S), n * reps)
    cust = np.tile(np.arange(n), S * reps)
    vals = spec.sample_spend(
        params, cols, draw, cust, np.ones(draw.size, dtype=np.int64), np.random.default_rng(seed)
    ).reshape(S, reps, n)
    exact = spec.expected_spend(params, cols)
    se = vals.std(axis=1, ddof=1) / np.sqrt(reps)
    se = np.maximum(se, 1e-12 * np.abs(exact))  # a deterministic spend: equal to rounding
    z = float(np.max(np.abs(vals.mean(axis=1) - exact) / se))
    assert z <= MC_SIGMAS, f"simulated mean spend is {z:.2f} standard errors from expected_spend"
    return z


# ---- estimators ---------------------------------------------------------------------------------


def _frozen(table: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    return table.copy(deep=True), copy.deepcopy(dict(table.attrs))


def _unchanged(table: pd.DataFrame, before: tuple[pd.DataFrame, dict], what: str) -> None:
    pd.testing.assert_frame_equal(table, before[0], check_exact=True, obj=f"table after {what}")
    assert dict(table.attrs) == before[1], f"{what} changed the table's attrs"


def check_estimator_fit_save_load(
    estimator_cls: type, table: pd.DataFrame, path: str | os.PathLike, method: str = "map"
) -> Any:
    """Fit (point method) without touching the input; the fit is reproducible; ``save`` ->
    :func:`clvkit.load` gives the same class with an identical posterior. Returns the fit."""
    before = _frozen(table)
    model = estimator_cls().fit(table, method=method, random_seed=1)
    _unchanged(table, before, f"fit(method={method!r})")
    again = estimator_cls().fit(table, method=method, random_seed=1)
    xr.testing.assert_identical(model.posterior_, again.posterior_)
    post = model.posterior_
    assert tuple(post.sizes) == ("chain", "draw"), f"posterior dims {tuple(post.sizes)}"
    assert set(estimator_cls.spec.param_names) <= set(post.data_vars)
    model.save(path)
    loaded = clvkit.load(path)
    assert type(loaded) is estimator_cls
    xr.testing.assert_identical(loaded.posterior_, model.posterior_)
    assert loaded.time_unit_ == model.time_unit_ and loaded.method_ == model.method_
    return model


def check_estimator_seeded(estimator_cls: type, table: pd.DataFrame) -> None:
    """A seeded random fit (``method="laplace"``) is reproducible, and the seed matters."""
    before = _frozen(table)

    def fit(seed: int) -> xr.Dataset:
        kw = {"method": "laplace", "chains": 2, "draws": 50, "random_seed": seed}
        return estimator_cls().fit(table, **kw).posterior_

    a = fit(11)
    xr.testing.assert_identical(a, fit(11))
    b = fit(12)
    name = estimator_cls.spec.param_names[0]
    assert not np.array_equal(a[name].values, b[name].values), "laplace ignores random_seed"
    _unchanged(table, before, "fit(method='laplace')")


def check_estimator_predictions(model: Any, table: pd.DataFrame, t: float = 13.0) -> None:
    """The estimator's prediction methods return ``(chain, draw, customer_id)`` arrays equal to
    the spec on the same draws, without touching the input."""
    spec = model.spec
    before = _frozen(table)
    post = model.posterior_
    S = post.sizes["chain"] * post.sizes["draw"]
    params = {n: post[n].to_numpy().reshape(S, 1) for n in spec.param_names}
    cols = spec.customer_columns(table)
    if spec.kind == "purchase":
        calls: list[tuple[Callable[[], xr.DataArray], np.ndarray]] = [
            (
                lambda: model.probability_alive(table, return_draws=True),
                spec.probability_alive(params, cols, np.array([0.0]))[..., 0],
            ),
            (
                lambda: model.expected_purchases(table, t, return_draws=True),
                spec.expected_purchases(params, cols, np.array([t]))[..., 0],
            ),
        ]
    else:
        calls = [
            (
                lambda: model.expected_spend(table, return_draws=True),
                spec.expected_spend(params, cols),
            )
        ]
    for call, exact in calls:
        out = call()
        assert isinstance(out, xr.DataArray)
        assert out.dims == ("chain", "draw", "customer_id"), f"dims {out.dims}"
        assert list(out["customer_id"].to_numpy()) == list(table.index)
        np.testing.assert_allclose(out.to_numpy().reshape(S, -1), exact, rtol=1e-10)
    _unchanged(table, before, "predictions")


def check_estimator_new_customer(model: Any, t: float = 13.0) -> int:
    """The estimator's new-customer methods (where they exist) equal the spec on
    ``new_customer_columns``. Returns how many methods were compared."""
    spec = model.spec
    post = model.posterior_
    S = post.sizes["chain"] * post.sizes["draw"]
    params = {n: post[n].to_numpy().reshape(S, 1) for n in spec.param_names}
    new = spec.new_customer_columns(1)
    compared = 0
    if hasattr(model, "expected_purchases_new_customer"):
        out = model.expected_purchases_new_customer(t, return_draws=True).to_numpy().reshape(S)
        exact = spec.expected_purchases(params, new, np.array([t]))[:, 0, 0]
        np.testing.assert_allclose(out, exact, rtol=1e-10)
        compared += 1
    if hasattr(model, "expected_spend_new_customer"):
        out = model.expected_spend_new_customer().to_numpy().reshape(S)
        np.testing.assert_allclose(out, spec.expected_spend(params, new)[:, 0], rtol=1e-10)
        compared += 1
    return compared


def check_estimator_time_unit(
    purchase_model: Any, spend_model: Any, table: pd.DataFrame, kind: str
) -> None:
    """A table in another time unit than the fit is refused with ``ClvkitError`` (naming the
    unit) by the estimator's predictions and by :func:`clvkit.customer_value`."""
    other = table.copy()
    unit = purchase_model.time_unit_ if kind == "purchase" else "W"
    other.attrs["time_unit"] = "D" if unit != "D" else "W"
    model = purchase_model if kind == "purchase" else spend_model
    method = "probability_alive" if kind == "purchase" else "expected_spend"
    if hasattr(model, method):
        with pytest.raises(clvkit.ClvkitError, match="time"):
            getattr(model, method)(other)
    with pytest.raises(clvkit.ClvkitError, match="time"):
        clvkit.customer_value(
            purchase_model, spend_model, other, horizon=10.0, annual_discount_rate=0.1
        )
