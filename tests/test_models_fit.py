"""Fitting (NUTS, MAP, MLE), InferenceData layout, diagnostics, predictions and save/load."""

from __future__ import annotations

import warnings

import arviz as az
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import clvkit
from clvkit.datasets import cdnow_calibration_summary
from clvkit.errors import ClvkitError, ConvergenceWarning, NotFittedError
from clvkit.models import BetaGeo, GammaGamma, load
from clvkit.models.gamma_gamma import predictions as gg_predict
from clvkit.models.gamma_gamma.model import SpendCorrelationWarning


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return cdnow_calibration_summary()


@pytest.fixture(scope="module")
def bg_mle(cdnow) -> BetaGeo:
    return BetaGeo().fit(cdnow, method="mle")


@pytest.fixture(scope="module")
def gg_mle(cdnow) -> GammaGamma:
    return GammaGamma().fit(cdnow, method="mle")


@pytest.fixture(scope="module")
def bg_nuts(cdnow) -> BetaGeo:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return BetaGeo().fit(cdnow, random_seed=20240501, progressbar=False)


@pytest.fixture(scope="module")
def gg_nuts(cdnow) -> GammaGamma:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return GammaGamma().fit(cdnow, random_seed=7, progressbar=False)


def _mle(model) -> dict[str, float]:
    return {n: model.idata_.posterior[n].item() for n in model.spec.param_names}


# ---- NUTS ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_bg_nuts_converges_and_agrees_with_mle(bg_nuts, bg_mle):
    diag = bg_nuts.diagnostics()
    assert diag["ok"], diag
    assert diag["max_rhat"] <= 1.01
    assert diag["min_ess_bulk"] >= 1000 and diag["min_ess_tail"] >= 400
    assert diag["divergences"] == 0
    post = bg_nuts.idata_.posterior
    assert dict(post.sizes) == {"chain": 4, "draw": 1000}
    for name, mle in _mle(bg_mle).items():
        draws = post[name].to_numpy()
        assert abs(draws.mean() - mle) <= draws.std(), name


@pytest.mark.slow
def test_gg_nuts_converges_and_agrees_with_mle(gg_nuts, gg_mle):
    diag = gg_nuts.diagnostics()
    assert diag["ok"] and diag["max_rhat"] <= 1.01 and diag["min_ess_bulk"] >= 1000, diag
    for name, mle in _mle(gg_mle).items():
        draws = gg_nuts.idata_.posterior[name].to_numpy()
        assert abs(draws.mean() - mle) <= draws.std(), name


@pytest.mark.slow
def test_idata_layout_and_attrs(bg_nuts, bg_mle, cdnow):
    idata = bg_nuts.idata_
    assert set(idata.groups()) == {"posterior", "sample_stats", "observed_data"}
    assert set(idata.posterior.data_vars) == {"r", "alpha", "a", "b"}
    assert idata.posterior["r"].dims == ("chain", "draw")
    assert "diverging" in idata.sample_stats
    obs = idata.observed_data
    assert set(obs.data_vars) == {"frequency", "recency", "T", "weight"}
    assert obs["weight"].sum() == len(cdnow)
    assert obs.sizes["row"] < len(cdnow)
    for attrs in (idata.attrs, idata.posterior.attrs):
        assert attrs["time_unit"] == "W"
        assert attrs["model"] == "BetaGeo"
        assert attrs["method"] == "nuts"
        assert attrs["clvkit_version"] == clvkit.__version__
        assert attrs["data_fingerprint"] == bg_mle.idata_.attrs["data_fingerprint"]
    assert bg_nuts.time_unit_ == "W" and bg_nuts.method_ == "nuts"


@pytest.mark.slow
def test_summary_matches_arviz(bg_nuts):
    summary = bg_nuts.summary(prob=0.9)
    assert list(summary.columns) == ["mean", "sd", "5%", "95%", "r_hat", "ess_bulk", "ess_tail"]
    ref = az.summary(bg_nuts.idata_, var_names=["r", "alpha", "a", "b"], round_to="none")
    np.testing.assert_allclose(summary["mean"], ref["mean"], rtol=1e-10)
    np.testing.assert_allclose(summary["r_hat"], ref["r_hat"], rtol=1e-10)
    np.testing.assert_allclose(summary["ess_bulk"], ref["ess_bulk"], rtol=1e-10)
    post = bg_nuts.idata_.posterior["a"].to_numpy().ravel()
    assert summary.loc["a", "95%"] == pytest.approx(np.quantile(post, 0.95))


def test_short_run_warns_convergence(cdnow):
    with pytest.warns(ConvergenceWarning, match="ESS"):
        GammaGamma().fit(cdnow, chains=2, draws=30, tune=10, random_seed=1, progressbar=False)


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["pymc"])  # "nutpie-pytensor" runs in the benchmark
def test_pytensor_graph_samplers_agree(cdnow, gg_mle, gg_nuts, sampler):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GammaGamma().fit(
            cdnow, sampler=sampler, chains=2, draws=300, tune=300, random_seed=3, progressbar=False
        )
    assert model.idata_.attrs["sampler"] == sampler
    assert model.diagnostics()["max_rhat"] < 1.05
    for name, mle in _mle(gg_mle).items():
        draws = model.idata_.posterior[name].to_numpy()
        assert abs(draws.mean() - mle) <= draws.std(), name
        # same posterior as the default numba-kernel sampler: sds agree within 25%
        ref_sd = gg_nuts.idata_.posterior[name].std().item()
        assert draws.std() == pytest.approx(ref_sd, rel=0.25), name


# ---- predictions -------------------------------------------------------------------------------
def test_bg_predictions_match_lifetimes(bg_mle, cdnow):
    from lifetimes import BetaGeoFitter

    p = _mle(bg_mle)
    bgf = BetaGeoFitter()
    bgf.params_ = pd.Series(p)
    x, tx, T = (cdnow[c].to_numpy() for c in ("frequency", "recency", "T"))
    ep = bg_mle.expected_purchases(cdnow, 10.0, return_draws=True)
    assert ep.dims == ("chain", "draw", "customer_id") and ep.shape == (1, 1, len(cdnow))
    assert (ep["customer_id"].to_numpy() == cdnow.index.to_numpy()).all()
    ref = bgf.conditional_expected_number_of_purchases_up_to_time(10.0, x, tx, T)
    np.testing.assert_allclose(ep.to_numpy()[0, 0], ref, rtol=1e-6)
    pa = bg_mle.probability_alive(cdnow, return_draws=True)
    np.testing.assert_allclose(
        pa.to_numpy()[0, 0], bgf.conditional_probability_alive(x, tx, T), rtol=1e-8
    )
    new = bg_mle.expected_purchases_new_customer(39.0, return_draws=True)
    assert new.dims == ("chain", "draw")
    assert new.item() == pytest.approx(bgf.expected_number_of_purchases_up_to_time(39.0), rel=1e-6)
    pn = bg_mle.probability_of_purchases(39.0, 2, return_draws=True)
    assert pn.item() == pytest.approx(bgf.probability_of_n_purchases_up_to_time(39.0, 2), rel=1e-6)
    alive_at = bg_mle.probability_alive_at(cdnow, 0.0, return_draws=True)
    np.testing.assert_allclose(alive_at.to_numpy(), pa.to_numpy(), rtol=1e-10)


def test_gg_predictions_match_lifetimes(gg_mle, cdnow):
    from lifetimes import GammaGammaFitter

    p = _mle(gg_mle)
    ggf = GammaGammaFitter()
    ggf.params_ = pd.Series(p)
    es = gg_mle.expected_spend(cdnow, return_draws=True)
    ref = ggf.conditional_expected_average_profit(
        cdnow["frequency"].to_numpy(), cdnow["monetary_value"].to_numpy()
    )
    np.testing.assert_allclose(es.to_numpy()[0, 0], ref, rtol=1e-10)
    new = gg_mle.expected_spend_new_customer()
    assert new.item() == pytest.approx(p["p"] * p["v"] / (p["q"] - 1), rel=1e-12)
    direct = gg_predict.gg_expected_spend(
        p["p"], p["q"], p["v"], cdnow["frequency"].to_numpy(), cdnow["monetary_value"].to_numpy()
    )
    np.testing.assert_allclose(es.to_numpy()[0, 0], np.ravel(direct), rtol=1e-12)


@pytest.mark.slow
def test_posterior_predictive_mean_matches_expectation(bg_nuts, cdnow):
    sub = cdnow.iloc[:400]
    sims = bg_nuts.posterior_predictive(sub, 39.0, random_seed=5, return_draws=True)
    assert sims.dims == ("chain", "draw", "customer_id") and sims.shape == (4, 1000, 400)
    assert np.issubdtype(sims.dtype, np.integer) and (sims >= 0).all()
    expected = bg_nuts.expected_purchases(sub, 39.0, return_draws=True)
    # totals over the 400 customers, averaged over 4000 draws: MC error is ~0.5% here
    sim_total = sims.sum("customer_id").mean().item()
    exp_total = expected.sum("customer_id").mean().item()
    assert sim_total == pytest.approx(exp_total, rel=0.03)
    again = bg_nuts.posterior_predictive(sub, 39.0, random_seed=5, return_draws=True)
    assert np.array_equal(again.to_numpy(), sims.to_numpy())


def test_time_unit_checks(bg_mle, cdnow):
    days = cdnow.copy()
    days.attrs["time_unit"] = "D"
    with pytest.raises(ClvkitError, match="time unit 'D'"):
        bg_mle.expected_purchases(days, 7.0, return_draws=True)
    unitless = cdnow.copy()
    unitless.attrs = {}
    assert bg_mle.probability_alive(unitless, return_draws=True).shape == (1, 1, len(cdnow))
    with pytest.raises(ClvkitError, match="time_unit"):
        BetaGeo().fit(unitless, method="mle")
    assert GammaGamma().fit(unitless, method="mle").time_unit_ is None


def test_not_fitted_errors():
    for model, call in [
        (BetaGeo(), lambda m: m.expected_purchases_new_customer(1.0, return_draws=True)),
        (BetaGeo(), lambda m: m.summary()),
        (GammaGamma(), lambda m: m.expected_spend_new_customer()),
        (GammaGamma(), lambda m: m.save("x.nc")),
    ]:
        with pytest.raises(NotFittedError, match="Suggestion"):
            call(model)


def test_gg_uses_repeat_customers_and_warns_on_correlation(cdnow):
    model = GammaGamma().fit(cdnow, method="mle")
    assert model.n_customers_ == int((cdnow["frequency"] > 0).sum())
    rng = np.random.default_rng(0)
    x = rng.integers(1, 20, size=300)
    df = pd.DataFrame({"frequency": x, "monetary_value": 10.0 * x + rng.gamma(2.0, 5.0, 300)})
    # method="map": this misspecified spend (10 x frequency) has no MLE (q, v -> infinity),
    # which fit now refuses (test_models_boundary.py); the warning comes first either way
    with pytest.warns(SpendCorrelationWarning, match=r"corr\(frequency, monetary_value\) = 0\.9"):
        GammaGamma().fit(df, method="map")


# ---- persistence -------------------------------------------------------------------------------
@pytest.mark.slow
def test_save_load_round_trip_nuts(bg_nuts, cdnow, tmp_path):
    path = tmp_path / "bg.nc"
    bg_nuts.save(path)
    loaded = clvkit.load(path)
    assert isinstance(loaded, BetaGeo) and loaded.time_unit_ == "W" and loaded.method_ == "nuts"
    for name in ("probability_alive",):
        a = getattr(bg_nuts, name)(cdnow).to_numpy()
        b = getattr(loaded, name)(cdnow).to_numpy()
        assert np.array_equal(a, b)
    a = bg_nuts.expected_purchases(cdnow, 12.0, return_draws=True).to_numpy()
    assert np.array_equal(a, loaded.expected_purchases(cdnow, 12.0, return_draws=True).to_numpy())
    pd.testing.assert_frame_equal(bg_nuts.summary(), loaded.summary())
    assert [p.name for p in tmp_path.iterdir()] == ["bg.nc"]  # no temp file left


def test_save_load_round_trip_point_fit_with_priors(cdnow, tmp_path):
    priors = {"q": {"dist": "Gamma", "alpha": 4.0, "beta": 1.0}}
    model = GammaGamma(priors=priors).fit(cdnow, method="map")
    path = tmp_path / "gg.nc"
    model.save(str(path))
    loaded = load(path)
    assert isinstance(loaded, GammaGamma)
    assert loaded.priors == {"q": {"dist": "Gamma", "alpha": 4.0, "beta": 1.0}}
    assert loaded.method_ == "map" and loaded.time_unit_ == "W"
    a = model.expected_spend(cdnow, return_draws=True).to_numpy()
    assert np.array_equal(a, loaded.expected_spend(cdnow, return_draws=True).to_numpy())
    assert loaded.log_likelihood_ == model.log_likelihood_
    pd.testing.assert_frame_equal(model.summary(), loaded.summary())
    model.save(path)  # overwrite in place
    assert load(path).idata_.attrs["data_fingerprint"] == model.idata_.attrs["data_fingerprint"]


def test_load_rejects_foreign_corrupt_and_incompatible_files(gg_mle, tmp_path):
    with pytest.raises(ClvkitError, match="not a file"):
        load(tmp_path / "missing.nc")
    junk = tmp_path / "junk.nc"
    junk.write_bytes(b"this is not netcdf" * 10)
    with pytest.raises(ClvkitError, match="could not be read"):
        load(junk)
    foreign = tmp_path / "foreign.nc"
    az.from_dict(posterior={"mu": np.zeros((1, 5))}).to_netcdf(str(foreign))
    with pytest.raises(ClvkitError, match="not a clvkit model"):
        load(foreign)
    good = tmp_path / "good.nc"
    gg_mle.save(good)
    idata = az.from_netcdf(str(good))
    idata = idata.copy()
    idata.attrs["clvkit_format_version"] = 99
    old = tmp_path / "old.nc"
    idata.to_netcdf(str(old))
    with pytest.raises(ClvkitError, match="version 99"):
        load(old)
    truncated = tmp_path / "truncated.nc"
    truncated.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(ClvkitError):
        load(truncated)


# ---- bad input ---------------------------------------------------------------------------------
def _frame(**cols) -> pd.DataFrame:
    base = {"frequency": [0, 2, 1], "recency": [0.0, 5.0, 2.0], "T": [8.0, 9.0, 10.0]}
    base.update(cols)
    df = pd.DataFrame(base, index=pd.Index([11, 12, 13], name="customer_id"))
    df.attrs["time_unit"] = "W"
    return df


@pytest.mark.parametrize(
    ("cols", "match"),
    [
        ({"frequency": [0, -2, 1]}, r"'frequency'.*negative.*1 of 3 row.*customer_id': 12"),
        ({"frequency": [0, 2.5, 1]}, r"'frequency'.*whole number"),
        ({"recency": [0.0, 9.5, 2.0]}, r"'recency'.*exceeds T.*1 of 3 row"),
        ({"recency": [0.0, 0.0, 2.0]}, r"'recency'.*is 0 for customers with frequency > 0"),
        ({"recency": [1.0, 5.0, 2.0]}, r"'recency'.*not 0 for customers with frequency 0"),
        ({"T": [8.0, np.nan, 10.0]}, r"'T'.*missing, non-numeric or infinite"),
        ({"recency": [0.0, 5.0, -2.0]}, r"'recency'.*negative"),
    ],
)
def test_bad_rfm_raises(cols, match):
    df = _frame(**cols)
    before = df.copy()
    with pytest.raises(ClvkitError, match=match) as info:
        BetaGeo().fit(df, method="mle")
    assert "Suggestion:" in str(info.value)
    pd.testing.assert_frame_equal(df, before)


def test_bad_monetary_and_missing_columns():
    df = _frame(monetary_value=[0.0, 0.0, 4.0])
    with pytest.raises(ClvkitError, match=r"'monetary_value'.*<= 0.*customer_id': 12"):
        GammaGamma().fit(df, method="mle")
    with pytest.raises(ClvkitError, match=r"lacks column\(s\) \['monetary_value'\]"):
        GammaGamma().fit(_frame(), method="mle")
    with pytest.raises(ClvkitError, match=r"lacks column\(s\) \['recency'\]"):
        BetaGeo().fit(_frame().drop(columns="recency"), method="mle")
    with pytest.raises(ClvkitError, match="must be a pandas DataFrame"):
        BetaGeo().fit(np.zeros((3, 3)), method="mle")


def test_bad_arguments(bg_mle, cdnow):
    df = _frame()
    with pytest.raises(ClvkitError, match="'method'"):
        BetaGeo().fit(df, method="vi")
    with pytest.raises(ClvkitError, match="'sampler'"):
        BetaGeo().fit(df, sampler="stan")
    with pytest.raises(ClvkitError, match="'chains'"):
        BetaGeo().fit(df, chains=0)
    with pytest.raises(ClvkitError, match="unknown parameter 'p'"):
        BetaGeo(priors={"p": {"dist": "Gamma", "alpha": 1, "beta": 1}}).fit(df, method="map")
    with pytest.raises(ClvkitError, match="sigma"):
        BetaGeo(priors={"r": {"dist": "LogNormal", "mu": 0, "sigma": -1}}).fit(df, method="map")
    with pytest.raises(ClvkitError, match="'t'"):
        bg_mle.expected_purchases(cdnow, -1.0, return_draws=True)
    with pytest.raises(ClvkitError, match="'n'"):
        bg_mle.probability_of_purchases(5.0, 1.5, return_draws=True)
    with pytest.raises(ClvkitError, match="'prob'"):
        bg_mle.summary(prob=1.5)
    with pytest.raises(ClvkitError, match="NUTS fit"):
        bg_mle.diagnostics()


def test_point_fit_is_one_chain_one_draw(bg_mle):
    post = bg_mle.idata_.posterior
    assert dict(post.sizes) == {"chain": 1, "draw": 1}
    assert isinstance(
        bg_mle.probability_alive(cdnow_calibration_summary(), return_draws=True), xr.DataArray
    )
