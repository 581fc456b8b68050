"""Model averaging: ModelMixture is a purchase model on the contract whose every primitive is
its components' own on their draws (issue 15, point 3).

Components here: BG/NBD, BG/NBD fitted with other priors, and the example model of
tests/example_model (PoissonExponential, registered only while this module runs). The contract
checks of tests/contract/checks.py are called directly on the mixture (the registry-driven
parametrization of tests/test_contract.py fits each model by name with method="map", which a
mixture of LOO-weighted components cannot be).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import clvkit
from clvkit import BetaGeo, ClvkitError, GammaGamma, ModelMixture
from clvkit.datasets import cdnow_calibration_summary, simulate
from clvkit.inference.loo import pseudo_bma_weights, psis_loo, stacking_weights
from clvkit.models import registry
from clvkit.models.mixture.model import largest_remainder
from contract import checks

GRID = checks.GRID
TIGHT_R = {"r": {"dist": "LogNormal", "mu": 0.0, "sigma": 0.1}}  # r near 1: a worse BG/NBD


@pytest.fixture(scope="module")
def example() -> type:
    with checks.registry_restored():
        from example_model.model import PoissonExponential

        registry.register(PoissonExponential)
        yield PoissonExponential


@pytest.fixture(scope="module")
def rfm() -> pd.DataFrame:
    return cdnow_calibration_summary()


@pytest.fixture(scope="module")
def few(rfm: pd.DataFrame) -> pd.DataFrame:
    return rfm.iloc[[0, 1, 2, 3, 10, 20, 57, 100]].copy()


@pytest.fixture(scope="module")
def bg(rfm):
    return BetaGeo().fit(rfm, method="laplace", chains=2, draws=200, random_seed=0)


@pytest.fixture(scope="module")
def bg_tight(rfm):
    return BetaGeo(priors=TIGHT_R).fit(rfm, method="laplace", chains=2, draws=200, random_seed=1)


@pytest.fixture(scope="module")
def pe(example, rfm):
    return example().fit(rfm, method="laplace", chains=2, draws=200, random_seed=2)


@pytest.fixture(scope="module")
def gg(rfm):
    return GammaGamma().fit(rfm, method="map")


def _flat(model) -> dict[str, np.ndarray]:
    return model._draws()[0]


def _component_params(mix, label: str, rows=slice(None)) -> dict[str, np.ndarray]:
    d = _flat(mix)
    spec = mix.spec.components[label]
    return {p: d[f"{label}__{p}"][rows] for p in spec.param_names}


# ---- one component: exactly the component ----------------------------------------------------


def test_one_component_weights_1_0_is_the_component(bg, pe, rfm, few, gg):
    mix = ModelMixture.from_models({"bg": bg, "pe": pe}, weights={"bg": 1.0, "pe": 0.0})
    assert mix.weights_.to_dict() == {"bg": 1.0, "pe": 0.0}
    post = mix.posterior_
    assert dict(post.sizes) == {"chain": 1, "draw": 400}
    assert (post["component"].values == 0).all()
    # the same draws, in the same order
    for p in ("r", "alpha", "a", "b"):
        np.testing.assert_array_equal(
            post[f"bg__{p}"].values.ravel(), bg.posterior_[p].values.ravel()
        )
    # the inactive component's columns are real draws of it
    pe_draws = set(pe.posterior_["lam"].values.ravel())
    assert set(post["pe__lam"].values.ravel()) <= pe_draws
    m, b = _flat(mix), _flat(bg)
    cols = bg.spec.customer_columns(few)
    k = np.arange(6.0)
    pairs = [
        (mix.spec.probability_alive(m, cols, GRID), bg.spec.probability_alive(b, cols, GRID)),
        (mix.spec.expected_purchases(m, cols, GRID), bg.spec.expected_purchases(b, cols, GRID)),
        (
            mix.spec.probability_of_purchases(m, cols, 13.0, k),
            bg.spec.probability_of_purchases(b, cols, 13.0, k),
        ),
        (mix.spec.loglik(m, cols), bg.spec.loglik(b, cols)),
    ]
    for got, want in pairs:
        np.testing.assert_array_equal(got, want)
    pd.testing.assert_frame_equal(mix.probability_alive(rfm), bg.probability_alive(rfm))
    pd.testing.assert_frame_equal(mix.expected_purchases(rfm, 39), bg.expected_purchases(rfm, 39))
    pd.testing.assert_frame_equal(
        mix.probability_of_purchases(39, 2, rfm.iloc[:50]),
        bg.probability_of_purchases(39, 2, rfm.iloc[:50]),
    )
    np.testing.assert_array_equal(
        mix.log_likelihood(few).values.reshape(400, -1),
        bg.log_likelihood(few).values.reshape(400, -1),
    )
    kw = {"horizon": 52.0, "annual_discount_rate": 0.1, "random_seed": 5}
    for method in ("expected", "simulate"):
        a = clvkit.customer_value(mix, gg, rfm, method=method, **kw)
        c = clvkit.customer_value(bg, gg, rfm, method=method, **kw)
        np.testing.assert_array_equal(a.equity.values.ravel(), c.equity.values.ravel())
        pd.testing.assert_frame_equal(a.summary(), c.summary())


def test_single_component_stacking_is_the_component(bg, few):
    mix = ModelMixture.from_models({"bg": bg}, weights="stacking")
    assert mix.weights_.to_dict() == {"bg": 1.0}
    np.testing.assert_array_equal(
        mix.posterior_["bg__r"].values.ravel(), bg.posterior_["r"].values.ravel()
    )
    cols = bg.spec.customer_columns(few)
    cf = _cashflow()
    spend = np.full((400, len(few)), 30.0)
    got = mix.spec.expected_value(_flat(mix), cols, spend, cf)
    want = bg.spec.expected_value(_flat(bg), cols, spend, cf)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])


def _cashflow():
    from clvkit.models.contract import Cashflow

    times = np.array([13.0, 26.0, 39.0, 52.0])
    disc = 1.0 / 1.02 ** np.arange(1, 5)
    return Cashflow(
        times, disc - np.append(disc[1:], 0.0), disc, 3, margin=0.3, cost_per_period=0.2
    )


# ---- two components: weighted mixtures of the components' draws --------------------------------


def test_two_components_mix_the_draws(bg, pe, rfm, few):
    mix = ModelMixture.from_models(
        {"bg": bg, "pe": pe}, weights={"bg": 0.3, "pe": 0.7}, random_seed=4
    )
    act = mix.posterior_["component"].values.ravel().astype(int)
    # components by weight, largest first: 0.7 and 0.3 of 400 draws
    assert list(mix.weights_.index) == ["pe", "bg"] == list(mix.spec.components)
    assert np.bincount(act).tolist() == [280, 120]
    m = _flat(mix)
    cols = mix.spec.customer_columns(few)
    t = np.array([13.0, 39.0])
    got = mix.spec.expected_purchases(m, cols, t)
    alive = mix.spec.probability_alive(m, cols, t)
    for k, (label, model) in enumerate((("pe", pe), ("bg", bg))):
        rows = act == k
        sub = _component_params(mix, label, rows)
        np.testing.assert_array_equal(got[rows], model.spec.expected_purchases(sub, cols, t))
        np.testing.assert_array_equal(alive[rows], model.spec.probability_alive(sub, cols, t))
    # BG/NBD has a closed-form window probability, the example model not: then None
    start, end = np.array([0.0, 5.0]), np.array([5.0, 20.0])
    assert mix.spec.probability_purchase_in_window(m, start, end) is None
    # the mixture's posterior mean is the weighted mean of the components' (on their draws)
    e_pe = pe.spec.expected_purchases(_component_params(mix, "pe", act == 0), cols, t).mean(0)
    e_bg = bg.spec.expected_purchases(_component_params(mix, "bg", act == 1), cols, t).mean(0)
    np.testing.assert_allclose(got.mean(0), 0.3 * e_bg + 0.7 * e_pe, rtol=1e-12)
    # and close to the weighted mean of the components' full posteriors
    full = (
        0.3 * bg.expected_purchases(few, 39)["mean"] + 0.7 * pe.expected_purchases(few, 39)["mean"]
    )
    np.testing.assert_allclose(mix.expected_purchases(few, 39)["mean"], full, rtol=0.01)
    # customer 1 of CDNOW (x=2): BG/NBD and the example model disagree; the mixture between
    e1 = mix.expected_purchases(rfm.loc[[1]], 39)["mean"].item()
    b1 = bg.expected_purchases(rfm.loc[[1]], 39)["mean"].item()
    p1 = pe.expected_purchases(rfm.loc[[1]], 39)["mean"].item()
    assert min(b1, p1) < e1 < max(b1, p1)
    assert abs(e1 - (0.3 * b1 + 0.7 * p1)) < 0.01 * abs(b1 - p1) + 1e-3


def test_mixture_passes_the_contract_checks(bg, pe, few, gg):
    mix = ModelMixture.from_models({"bg": bg, "pe": pe}, weights="equal", random_seed=1)
    # four draws: two of each component, interleaved
    act = mix.posterior_["component"].values.ravel()
    rows = np.concatenate([np.flatnonzero(act == 0)[:2], np.flatnonzero(act == 1)[:2]])[
        [0, 2, 1, 3]
    ]
    params = {k: v[rows] for k, v in _flat(mix).items()}
    cols = mix.spec.customer_columns(few)
    checks.check_purchase_spec(mix.spec, params, cols)
    z = checks.check_simulate_mean(mix.spec, params, cols)
    assert max(z.values()) <= checks.MC_SIGMAS
    checks.check_estimator_predictions(mix, few)
    assert checks.check_estimator_new_customer(mix) == 1
    checks.check_estimator_time_unit(mix, gg, few, "purchase")


def test_simulate_merges_futures_and_seeds_reproduce(bg, pe, few):
    mix = ModelMixture.from_models({"bg": bg, "pe": pe}, weights="equal", random_seed=1)
    m = _flat(mix)
    act = mix.posterior_["component"].values.ravel().astype(int)
    cols = mix.spec.customer_columns(few)

    def run(seed):
        fut = mix.spec.simulate(m, cols, 26.0, np.random.default_rng(seed))
        counts, times = checks.collect_events(fut, 400, len(few))
        return fut, counts, times

    f1, c1, t1 = run(3)
    f2, c2, t2 = run(3)
    np.testing.assert_array_equal(c1, c2)
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(f1.death, f2.death)
    # alive units map to mixture draws; latent draws (BG/NBD's lam, p) NaN for the example's
    assert f1.alive_draw.size == f1.death.size == f1.alive_customer.size
    bg_units = act[f1.alive_draw] == 0
    assert np.isfinite(f1.latent["lam"][bg_units]).all()
    assert np.isnan(f1.latent["lam"][~bg_units]).all()
    np.testing.assert_array_equal(
        f1.p_alive[act == 1],
        pe.spec.probability_alive(_component_params(mix, "pe", act == 1), cols, np.zeros(1))[
            ..., 0
        ],
    )
    # dead at T (not among the alive units) means no events; deaths complete after the batches
    alive = np.zeros((400, len(few)), dtype=bool)
    alive[f1.alive_draw, f1.alive_customer] = True
    assert (c1[~alive] == 0).all()
    assert not np.isnan(f1.death).any()
    _, c3, _ = run(4)
    assert not np.array_equal(c1, c3)


# ---- value, backtest ---------------------------------------------------------------------------


def test_customer_value_of_a_mixture(bg, bg_tight, rfm, gg):
    mix = ModelMixture.from_models(
        {"bg": bg, "tight": bg_tight}, weights={"bg": 0.5, "tight": 0.5}, random_seed=2
    )
    act = mix.posterior_["component"].values.ravel().astype(int)
    kw = {"horizon": 52.0, "annual_discount_rate": 0.1, "random_seed": 0}
    cv = clvkit.customer_value(mix, gg, rfm, **kw)
    # one spend draw (MAP), so purchase draw j is valued with that spend: equity draw j of the
    # mixture is the equity of its active component's model at that draw
    for k, label in enumerate(("bg", "tight")):
        sub = _component_params(mix, label, act == k)
        one = BetaGeo.from_params(time_unit="W", **{p: v[:, 0] for p, v in sub.items()})
        part = clvkit.customer_value(one, gg, rfm, **kw)
        np.testing.assert_allclose(
            cv.equity.values.ravel()[act == k], part.equity.values.ravel(), rtol=1e-12
        )
    sim = clvkit.customer_value(mix, gg, rfm, method="simulate", **kw)
    again = clvkit.customer_value(mix, gg, rfm, method="simulate", **kw)
    np.testing.assert_array_equal(sim.equity.values, again.equity.values)
    # simulated and expected equity agree on average (simulation noise only)
    e, s = cv.equity.values.ravel(), sim.equity.values.ravel()
    assert abs(s.mean() - e.mean()) < 4 * s.std() / np.sqrt(s.size) + 0.002 * e.mean()
    # the mixture's equity lies between the components' (their own full posteriors)
    each = [clvkit.customer_value(m, gg, rfm, **kw).equity.values.mean() for m in (bg, bg_tight)]
    assert min(each) < e.mean() < max(each)
    np.testing.assert_allclose(e.mean(), np.mean(each), rtol=0.01)


@pytest.mark.slow
def test_backtest_with_a_fitted_mixture(bg, bg_tight):
    from clvkit.datasets import cdnow_transactions

    mix = ModelMixture.from_models({"bg": bg, "tight": bg_tight}, weights="equal", random_seed=0)
    kw = {
        "calibration_end": "1997-09-30",
        "observation_end": "1998-06-30",
        "n_samples": 200,
        "random_seed": 0,
    }
    res = clvkit.backtest(cdnow_transactions(), transactions_model=mix, **kw)
    assert int(res.customers["actual"].sum()) == 1882
    # the predictions are the mixture's draws: half BG/NBD's, half the tight BG/NBD's
    (d,) = np.unique(res.rfm["duration_holdout"])
    cols = mix.spec.customer_columns(res.rfm)
    act = mix.posterior_["component"].values.ravel().astype(int)
    each = [
        spec.expected_purchases(_component_params(mix, label, act == k), cols, np.array([d]))
        for k, (label, spec) in enumerate(mix.spec.components.items())
    ]
    want = 0.5 * each[0][..., 0].mean(0) + 0.5 * each[1][..., 0].mean(0)
    np.testing.assert_allclose(res.customers["predicted"].to_numpy(), want, rtol=1e-10)
    totals = [e[..., 0].mean(0).sum() for e in each]
    got = res.customers["predicted"].sum()
    assert min(totals) < got < max(totals) and np.isclose(got, np.mean(totals), rtol=1e-10)
    # the total's predictive interval is reported for the mixture as for any model
    row = res.metrics.loc["purchases"]
    assert row["total_lower"] < got < row["total_upper"]
    # 1,882 lies in the upper tail: measured 0.105 of 200 draws of the total (MC sd 0.02)
    assert abs(row["p_total_at_least_actual"] - 0.105) <= 0.03


# ---- weights -----------------------------------------------------------------------------------


def test_stacking_favours_the_true_model(example):
    """On BG/NBD data, stacking BG/NBD with the example model puts most weight on BG/NBD."""
    sim = simulate(2000, r=0.25, alpha=4.0, a=0.8, b=2.4, random_seed=7)
    data = sim.rfm()
    fit = {"method": "laplace", "chains": 2, "draws": 250, "random_seed": 0}
    mix = ModelMixture(components={"bgnbd": "bgnbd", "pe": example()}, weights="stacking")
    mix.fit(data, **fit)
    w = mix.weights_
    assert w["bgnbd"] > 0.999, w.to_dict()  # measured: 0.999997
    assert mix.loo_["bgnbd"].elpd > mix.loo_["pe"].elpd + 1000  # measured: -14,688 vs -15,809
    # the weights are stacking of the components' pointwise LOO on distinct customers
    pointwise = np.stack([mix.loo_[k].pointwise for k in ("bgnbd", "pe")], axis=1)
    np.testing.assert_allclose(w.to_numpy(), stacking_weights(pointwise, mix.loo_["bgnbd"].counts))
    assert mix.loo_["bgnbd"].n_observations == 2000
    # deduplicated LOO equals LOO on every customer (the same relative efficiency)
    ll = mix.components_["bgnbd"].log_likelihood(data).values
    full = psis_loo(ll, reff=mix.loo_["bgnbd"].reff)
    np.testing.assert_allclose(full.elpd, mix.loo_["bgnbd"].elpd, rtol=1e-10)
    # a seeded fit reproduces
    again = ModelMixture(components={"bgnbd": "bgnbd", "pe": example()}).fit(data, **fit)
    xr.testing.assert_identical(again.posterior_, mix.posterior_)


def test_pseudo_bma_and_given_weights(bg, bg_tight):
    mix = ModelMixture.from_models(
        {"bg": bg, "tight": bg_tight}, weights="pseudo-bma", random_seed=3
    )
    pointwise = np.stack([mix.loo_[k].pointwise for k in ("bg", "tight")], axis=1)
    want = pseudo_bma_weights(
        pointwise, mix.loo_["bg"].counts, random_seed=np.random.default_rng(3)
    )
    np.testing.assert_allclose(mix.weights_.to_numpy(), want, rtol=1e-12)
    assert mix.weights_["bg"] > mix.weights_["tight"]
    given = ModelMixture.from_models({"bg": bg, "tight": bg_tight}, weights={"bg": 3, "tight": 1})
    assert given.weights_.to_dict() == {"bg": 0.75, "tight": 0.25}
    assert given.loo_ is None
    assert np.bincount(given.posterior_["component"].values.ravel().astype(int)).tolist() == [
        300,
        100,
    ]
    assert largest_remainder(np.array([1.0, 1.0, 1.0]), 400).tolist() == [134, 133, 133]
    # more draws than a component has: its share is drawn with replacement, all real draws
    big = ModelMixture.from_models(
        {"bg": bg, "tight": bg_tight}, weights={"bg": 3, "tight": 1}, n_draws=1000
    )
    act = big.posterior_["component"].values.ravel()
    assert np.bincount(act.astype(int)).tolist() == [750, 250]
    r = big.posterior_["bg__r"].values.ravel()[act == 0]
    assert set(r) <= set(bg.posterior_["r"].values.ravel()) and len(set(r)) <= 400


def test_refusals(bg, pe, rfm):
    point = BetaGeo().fit(rfm, method="map")
    with pytest.raises(ClvkitError, match="point fits") as err:
        ModelMixture.from_models({"bg": bg, "map": point}, weights="stacking")
    assert "Suggestion" in str(err.value)
    with pytest.raises(ClvkitError, match="method='nuts' or 'laplace'"):
        ModelMixture(components=("bgnbd",), weights="stacking").fit(rfm, method="map")
    other = BetaGeo().fit(rfm.iloc[:1500], method="laplace", chains=1, draws=100, random_seed=0)
    with pytest.raises(ClvkitError, match="different customers"):
        ModelMixture.from_models({"bg": bg, "other": other}, weights="equal")
    with pytest.raises(ClvkitError, match="weights"):
        ModelMixture.from_models({"bg": bg, "pe": pe}, weights={"bg": -1.0})
    with pytest.raises(ClvkitError, match="weights"):
        ModelMixture.from_models({"bg": bg, "pe": pe}, weights={"nope": 1.0})
    with pytest.raises(ClvkitError, match="component name"):
        ModelMixture.from_models({"b__g": bg}, weights="equal")
    with pytest.raises(ClvkitError, match="unknown"):
        ModelMixture(components=("no_such_model",))
    with pytest.raises(ClvkitError, match="from_models"):
        ModelMixture.from_params(r=1.0)


# ---- registry and persistence ----------------------------------------------------------------


def test_registry_and_save_load(bg, pe, rfm, few, gg, tmp_path):
    mix = ModelMixture.from_models({"bg": bg, "pe": pe}, weights="stacking", random_seed=0)
    assert "mixture" not in registry.names() and registry.get("mixture") is ModelMixture
    # a posterior alone resolves to the mixture's spec through its attrs
    spec, post = registry.resolve(mix.posterior_, "purchase", "transactions_model")
    assert spec.param_names == mix.spec.param_names
    flat = registry.flat_params(spec, post)
    np.testing.assert_array_equal(flat["component"], _flat(mix)["component"])
    again = ModelMixture.from_posterior(mix.posterior_)
    pd.testing.assert_frame_equal(again.probability_alive(few), mix.probability_alive(few))
    path = tmp_path / "mix.nc"
    mix.save(path)
    loaded = clvkit.load(path)
    assert type(loaded) is ModelMixture
    xr.testing.assert_identical(loaded.posterior_, mix.posterior_)
    pd.testing.assert_series_equal(loaded.weights_, mix.weights_)
    assert loaded.time_unit_ == "W" and loaded.n_customers_ == len(rfm)
    pd.testing.assert_frame_equal(
        loaded.expected_purchases(rfm, 39), mix.expected_purchases(rfm, 39)
    )
    kw = {"horizon": 52.0, "annual_discount_rate": 0.1, "random_seed": 0}
    np.testing.assert_array_equal(
        clvkit.customer_value(loaded, gg, rfm, **kw).equity.values,
        clvkit.customer_value(mix, gg, rfm, **kw).equity.values,
    )
    assert set(loaded.components_) == {"bg", "pe"}
    assert loaded.components_["bg"].n_customers_ == len(rfm)
    loaded.save(tmp_path / "again.nc")  # the loaded mixture saves again
    xr.testing.assert_identical(clvkit.load(tmp_path / "again.nc").posterior_, mix.posterior_)


@pytest.mark.slow
def test_dask_route_equals_in_memory(bg, bg_tight, rfm, gg):
    """clvkit.distributed.customer_value takes a mixture and gives the in-memory bits."""
    distributed = pytest.importorskip("dask.distributed")
    dd = pytest.importorskip("dask.dataframe")
    from clvkit import distributed as cd

    mix = ModelMixture.from_models({"bg": bg, "tight": bg_tight}, weights="equal", random_seed=0)
    kw = {"horizon": "52W", "annual_discount_rate": 0.1, "random_seed": 5, "chunk_size": 400}
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    )
    try:
        with distributed.Client(cluster):
            for method in ("expected", "simulate"):
                mem = clvkit.customer_value(mix, gg, rfm, method=method, **kw)
                frame = dd.from_pandas(rfm.sample(frac=1.0, random_state=1), npartitions=3)
                dist = cd.customer_value(mix, gg, frame, method=method, **kw)
                for name in ("equity", "expected_equity", "tier_equity", "new_customer"):
                    got, want = getattr(dist, name).values, getattr(mem, name).values
                    np.testing.assert_array_equal(got, want, err_msg=name)
                pd.testing.assert_frame_equal(
                    dist.summary().compute().sort_index(), mem.summary().sort_index(),
                    check_exact=True,
                )  # fmt: skip
    finally:
        cluster.close()


def test_blocked_loo_equals_one_call(bg, rfm, monkeypatch):
    """LOO over blocks of distinct customers (bounded memory) equals psis_loo on all of them."""
    from clvkit.inference import loo as loo_module
    from clvkit.models.mixture import model as mixture_model

    cols = bg.spec.customer_columns(rfm)
    table = np.stack([cols[c] for c in ("frequency", "recency", "T")], axis=1)
    rows, counts = np.unique(table, axis=0, return_counts=True)
    dist = {
        c: np.ascontiguousarray(rows[:, i]) for i, c in enumerate(("frequency", "recency", "T"))
    }
    params, shape = bg._draws()
    one = psis_loo(bg.spec.loglik(params, dist).reshape(*shape, -1), counts.astype(float))
    monkeypatch.setattr(loo_module, "LOO_VALUES", 400 * 97)  # blocks of 97 rows
    got = mixture_model.blocked_loo(bg.spec, params, shape, dist, counts.astype(float))
    assert rows.shape[0] > 900 and got.n_observations == len(rfm) == one.n_observations
    np.testing.assert_allclose(got.pointwise, one.pointwise, rtol=1e-12)
    np.testing.assert_array_equal(got.pareto_k, one.pareto_k)
    for name in ("elpd", "se", "p_loo", "reff"):
        np.testing.assert_allclose(getattr(got, name), getattr(one, name), rtol=1e-10)


def test_report_and_plots_take_a_mixture(bg, bg_tight, rfm, gg, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from clvkit.plots.matrices import plot_probability_alive_matrix
    from clvkit.report import build_report

    mix = ModelMixture.from_models({"bg": bg, "tight": bg_tight}, weights="stacking")
    assert mix.spec.label == "Mixture (bg: BG/NBD, tight: BG/NBD)"
    value = clvkit.customer_value(mix, gg, rfm, horizon=52.0, annual_discount_rate=0.1)
    html = build_report(rfm, mix, gg, value).to_html()
    assert "Mixture (bg: BG/NBD, tight: BG/NBD) purchase model" in html
    assert "bg__r" in html and "tight__alpha" in html  # the components' parameters
    ax = plot_probability_alive_matrix(mix)  # the largest T from the training statistics
    assert ax.get_images() or ax.collections
    summary = mix.summary()
    assert summary.loc["bg__r", "weight"] == mix.weights_["bg"]
    np.testing.assert_allclose(summary.loc["bg__r", "mean"], bg.summary().loc["r", "mean"])


# ---- every registered purchase model as a component ------------------------------------------

PURCHASE = [n for n in registry.names("purchase", "rfm") if n != "poisson_exp"]


@pytest.mark.parametrize("name", PURCHASE)
def test_each_registered_model_alone_is_itself(name, bg, rfm, few, gg):
    """A mixture whose draws all belong to one registered model equals that model exactly:
    primitives (its fast expected_value too) and customer value, expected and simulated."""
    model = registry.get(name)().fit(rfm, method="laplace", chains=2, draws=100, random_seed=3)
    mix = ModelMixture.from_models({name: model, "other": bg}, weights={name: 1.0, "other": 0.0})
    m, d = _flat(mix), _flat(model)
    cols = mix.spec.customer_columns(few)
    for fn in ("probability_alive", "expected_purchases"):
        got = getattr(mix.spec, fn)(m, cols, GRID)
        np.testing.assert_array_equal(got, getattr(model.spec, fn)(d, cols, GRID))
    np.testing.assert_array_equal(mix.spec.loglik(m, cols), model.spec.loglik(d, cols))
    k = np.arange(5.0)
    np.testing.assert_array_equal(
        mix.spec.probability_of_purchases(m, cols, 26.0, k),
        model.spec.probability_of_purchases(d, cols, 26.0, k),
    )
    spend = np.full((200, len(few)), 25.0)
    for a, b in zip(
        mix.spec.expected_value(m, cols, spend, _cashflow()),
        model.spec.expected_value(d, cols, spend, _cashflow()),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)
    kw = {"horizon": 26.0, "annual_discount_rate": 0.1, "random_seed": 1}
    for method in ("expected", "simulate"):
        a = clvkit.customer_value(mix, gg, rfm, method=method, **kw).equity.values.ravel()
        b = clvkit.customer_value(model, gg, rfm, method=method, **kw).equity.values.ravel()
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
@pytest.mark.skipif(
    not {"pnbd", "mbgnbd"} <= set(PURCHASE), reason="needs Pareto/NBD and MBG/NBD registered"
)
def test_default_mixture_of_the_three_models(rfm, gg):
    """ModelMixture() fits BG/NBD, Pareto/NBD and MBG/NBD and stacks them on CDNOW."""
    mix = ModelMixture().fit(rfm, method="laplace", chains=2, draws=250, random_seed=0)
    assert set(mix.weights_.index) == {"bgnbd", "pnbd", "mbgnbd"}
    np.testing.assert_allclose(mix.weights_.sum(), 1.0)
    assert mix.weights_.iloc[0] == mix.weights_.max()
    elpd = {k: v.elpd for k, v in mix.loo_.items()}
    assert all(-9_650 < v < -9_550 for v in elpd.values()), elpd  # three close fits of CDNOW
    value = clvkit.customer_value(mix, gg, rfm, horizon=52.0, annual_discount_rate=0.1)
    each = [
        clvkit.customer_value(m, gg, rfm, horizon=52.0, annual_discount_rate=0.1).equity.values
        for m in mix.components_.values()
    ]
    lo, hi = min(e.mean() for e in each), max(e.mean() for e in each)
    assert lo <= value.equity.values.mean() <= hi
