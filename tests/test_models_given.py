"""Models from given parameters or draws, the public log-likelihood, P(n purchases | history)
and loading through the registry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import gammaln

from clvkit.datasets import cdnow_calibration_summary
from clvkit.errors import ClvkitError
from clvkit.models import BetaGeo, GammaGamma, load

BG_MLE = {"r": 0.2426, "alpha": 4.4137, "a": 0.7930, "b": 2.4262}
GG_MLE = {"p": 6.2488, "q": 3.7446, "v": 15.4477}


@pytest.fixture(scope="module")
def cdnow():
    return cdnow_calibration_summary()


@pytest.fixture(scope="module")
def fitted(cdnow):
    return BetaGeo().fit(cdnow, method="mle"), GammaGamma().fit(cdnow, method="mle")


def test_from_params_predicts_as_the_fitted_model(cdnow, fitted):
    bg, gg = fitted
    vals = {n: float(bg.posterior_[n].item()) for n in bg.spec.param_names}
    given = BetaGeo.from_params(**vals, time_unit="W")
    assert given.method_ == "given" and given.time_unit_ == "W"
    assert given.n_customers_ is None and given.stats_ is None
    sub = cdnow.iloc[:50]
    for name, args in [
        ("probability_alive", (sub,)),
        ("probability_alive_at", (sub, 10.0)),
        ("expected_purchases", (sub, 39.0)),
    ]:
        kw = {"return_draws": True}
        a, b = getattr(given, name)(*args, **kw), getattr(bg, name)(*args, **kw)
        assert a.dims == b.dims
        np.testing.assert_array_equal(a.values, b.values)
        # the default summary too
        pd.testing.assert_frame_equal(getattr(given, name)(*args), getattr(bg, name)(*args))
    assert (
        given.expected_purchases_new_customer(39, return_draws=True).item()
        == bg.expected_purchases_new_customer(39, return_draws=True).item()
    )
    gvals = {n: float(gg.posterior_[n].item()) for n in gg.spec.param_names}
    g2 = GammaGamma.from_params(**gvals)
    np.testing.assert_array_equal(
        g2.expected_spend(sub, return_draws=True).values,
        gg.expected_spend(sub, return_draws=True).values,
    )
    # the CDNOW reference numbers from the published parameters (FHL 2005; FH 2013)
    ref = BetaGeo.from_params(**BG_MLE, time_unit="W")
    assert round(ref.expected_purchases(cdnow.loc[[1]], 39, return_draws=True).item(), 3) == 1.226
    assert round(GammaGamma.from_params(**GG_MLE).expected_spend_new_customer().item(), 2) == 35.17


def test_from_params_draws_and_from_posterior(fitted):
    bg, _ = fitted
    draws = BetaGeo.from_params(r=[0.2, 0.3], alpha=[4.0, 5.0], a=[0.8, 0.9], b=[2.0, 3.0])
    assert dict(draws.posterior_.sizes) == {"chain": 1, "draw": 2}
    e = draws.expected_purchases_new_customer(10, return_draws=True)
    assert e.dims == ("chain", "draw") and e.shape == (1, 2)
    one = BetaGeo.from_params(r=0.3, alpha=5.0, a=0.9, b=3.0).expected_purchases_new_customer(
        10, return_draws=True
    )
    # one node count per call, from all draws: equal to quadrature accuracy
    assert e.values[0, 1] == pytest.approx(one.item(), rel=1e-10)
    again = BetaGeo.from_posterior(bg.idata_)
    assert again.time_unit_ == "W" and again.method_ == "given"
    assert again.posterior_["r"].item() == bg.posterior_["r"].item()
    assert BetaGeo.from_posterior(bg.posterior_).posterior_["b"].item() == bg.posterior_["b"].item()
    s = draws.summary()
    assert list(s.index) == ["r", "alpha", "a", "b"]
    assert s.loc["r", "mean"] == pytest.approx(0.25) and np.isnan(s.loc["r", "r_hat"])


def test_from_params_refusals(fitted, tmp_path):
    bg, gg = fitted
    with pytest.raises(ClvkitError, match=r"lacks \['b'\].*Suggestion"):
        BetaGeo.from_params(r=1.0, alpha=1.0, a=1.0)
    with pytest.raises(ClvkitError, match=r"unknown parameters \['c'\]"):
        BetaGeo.from_params(r=1.0, alpha=1.0, a=1.0, b=1.0, c=2.0)
    with pytest.raises(ClvkitError, match=r"'r'.*Suggestion"):
        BetaGeo.from_params(r=-1.0, alpha=1.0, a=1.0, b=1.0)
    with pytest.raises(ClvkitError, match=r"shape \(1, 2\)"):
        BetaGeo.from_params(r=[[1.0, 2.0]], alpha=1.0, a=1.0, b=1.0)
    with pytest.raises(ClvkitError, match=r"spend model \(Gamma-Gamma\), but a purchase"):
        BetaGeo.from_posterior(gg.posterior_)
    with pytest.raises(ClvkitError, match="'D' but the posterior is in 'W'"):
        BetaGeo.from_posterior(bg.posterior_, time_unit="D")
    given = BetaGeo.from_params(**BG_MLE, time_unit="W")
    with pytest.raises(ClvkitError, match=r"save needs the training data.*Suggestion"):
        given.save(tmp_path / "m.nc")
    assert not (tmp_path / "m.nc").exists()
    with pytest.raises(ClvkitError, match="log_likelihood_ needs the training data"):
        given.log_likelihood_  # noqa: B018
    with pytest.raises(ClvkitError, match="NUTS fit"):
        given.diagnostics()
    rfm = pd.DataFrame({"frequency": [1], "recency": [2.0], "T": [20.0]})
    rfm.attrs["time_unit"] = "D"
    with pytest.raises(ClvkitError, match="time unit 'D'"):
        given.probability_alive(rfm, return_draws=True)


def test_log_likelihood_per_customer(cdnow, fitted):
    bg, gg = fitted
    ll = bg.log_likelihood(cdnow)
    assert ll.dims == ("chain", "draw", "customer_id") and ll.shape == (1, 1, len(cdnow))
    assert float(ll.sum()) == pytest.approx(bg.log_likelihood_, rel=1e-12)
    assert float(ll.sum()) == pytest.approx(-9582.43, abs=0.005)  # FHL 2005
    gl = gg.log_likelihood(cdnow)
    assert float(gl.sum()) == pytest.approx(gg.log_likelihood_, rel=1e-12)
    assert float(gl.sum()) == pytest.approx(-4055.92, abs=0.005)  # FH 2013, mean spend
    assert (gl.sel(customer_id=cdnow.index[cdnow["frequency"] == 0]) == 0).all()
    # at given parameters, without fitting; by hand for a customer with x = 0: the NBD zero
    # class times P(alive), (alpha / (alpha + T))^r
    x0 = cdnow[cdnow["frequency"] == 0].iloc[[0]]
    at = BetaGeo().log_likelihood(x0, params=BG_MLE)
    T = float(x0["T"].iloc[0])
    r, alpha = BG_MLE["r"], BG_MLE["alpha"]
    assert at.item() == pytest.approx(r * np.log(alpha / (alpha + T)), rel=1e-13)
    # x > 0: FHL 2005 eq. 6, written out
    c = cdnow.loc[[1]]
    x, tx, T = 2.0, float(c["recency"].iloc[0]), float(c["T"].iloc[0])
    a, b = BG_MLE["a"], BG_MLE["b"]
    lB = gammaln(a + b) + gammaln(b + x) - gammaln(b) - gammaln(a + b + x)
    A = gammaln(r + x) - gammaln(r) + r * np.log(alpha) + lB
    ref = A + np.log((alpha + T) ** -(r + x) + a / (b + x - 1) * (alpha + tx) ** -(r + x))
    assert BetaGeo().log_likelihood(c, params=BG_MLE).item() == pytest.approx(ref, rel=1e-12)
    draws = bg.log_likelihood(c, params={k: [v, v] for k, v in BG_MLE.items()})
    assert draws.shape == (1, 2, 1) and draws.values[0, 1, 0] == pytest.approx(ref, rel=1e-12)
    with pytest.raises(ClvkitError, match="params"):
        bg.log_likelihood(c, params=[1, 2, 3, 4])


def test_probability_of_purchases_given_history(cdnow):
    model = BetaGeo.from_params(**BG_MLE, time_unit="W")
    sub = cdnow.loc[[1, 2, 3, 7, 10]]
    probs = np.stack(
        [
            model.probability_of_purchases(39, n, sub, return_draws=True).values[0, 0]
            for n in range(60)
        ]
    )
    assert probs.shape == (60, 5)
    np.testing.assert_allclose(probs.sum(axis=0), 1.0, atol=1e-10)
    # the mean of the pmf is the expected purchases
    mean = (np.arange(60)[:, None] * probs).sum(axis=0)
    np.testing.assert_allclose(
        mean, model.expected_purchases(sub, 39, return_draws=True).values[0, 0], rtol=1e-6
    )
    # a new customer is an empty history
    empty = pd.DataFrame({"frequency": [0], "recency": [0.0], "T": [0.0]})
    for n in (0, 1, 3):
        assert model.probability_of_purchases(
            39, n, empty, return_draws=True
        ).item() == pytest.approx(
            model.probability_of_purchases(39, n, return_draws=True).item(), rel=1e-14
        )
    # Monte Carlo: the simulated counts (the generative process) have this pmf
    S = 40_000
    mc = BetaGeo.from_params(**{k: np.full(S, v) for k, v in BG_MLE.items()}, time_unit="W")
    counts = mc.posterior_predictive(sub, 39, random_seed=11, return_draws=True).values[0]  # (S, 5)
    for n in (0, 1, 2):
        emp = (counts == n).mean(axis=0)
        se = np.sqrt(probs[n] * (1 - probs[n]) / S)
        assert np.all(np.abs(emp - probs[n]) < 5 * se), (n, emp, probs[n])
    with pytest.raises(ClvkitError, match=r"'n'.*Suggestion"):
        model.probability_of_purchases(39, -1, sub, return_draws=True)


def test_load_goes_through_the_registry(fitted, tmp_path):
    import arviz as az

    bg, _ = fitted
    path = tmp_path / "bg.nc"
    bg.save(path)
    loaded = load(path)
    assert type(loaded) is BetaGeo
    idata = az.from_netcdf(path, engine="h5netcdf")
    idata.load() if hasattr(idata, "load") else None
    idata.attrs["model"] = "NoSuchModel"
    other = tmp_path / "other.nc"
    idata.to_netcdf(other, engine="h5netcdf")
    with pytest.raises(ClvkitError, match=r"'NoSuchModel' that is not registered.*Suggestion"):
        load(other)


def test_given_models_value_customers_as_the_fitted_ones(cdnow, fitted):
    import clvkit

    bg, gg = fitted
    vals = {n: float(bg.posterior_[n].item()) for n in bg.spec.param_names}
    gvals = {n: float(gg.posterior_[n].item()) for n in gg.spec.param_names}
    sub = cdnow.iloc[:300]
    kw = dict(horizon=52, annual_discount_rate=0.1, n_jobs=1)
    ours = clvkit.customer_value(
        BetaGeo.from_params(**vals, time_unit="W"), GammaGamma.from_params(**gvals), sub, **kw
    )
    ref = clvkit.customer_value(bg, gg, sub, **kw)
    assert float(ours.equity.item()) == float(ref.equity.item()) > 0
