"""``datasets.simulate(model=...)``: Pareto/NBD and MBG/NBD logs through each model's own
generative process (``spec.simulate`` for new customers), in every accepted form."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvkit import ModifiedBetaGeo, ParetoNBD
from clvkit.datasets import simulate
from clvkit.errors import ClvkitError

CASES = {
    "pnbd": (ParetoNBD, {"r": 0.55, "alpha": 10.6, "s": 0.6, "beta": 11.7}),  # CDNOW-like
    "mbgnbd": (ModifiedBetaGeo, {"r": 0.5, "alpha": 6.0, "a": 0.9, "b": 3.0}),
}


def _new_customer_mean(cls, truth, sim) -> float:
    """E[repeat purchases] of a new customer over its observed window (obs - t0, t0 uniform
    over the acquisition window), averaged by the midpoint rule over the window lengths."""
    model = cls.from_params(time_unit="W", **truth)
    lo = sim.observation_periods - sim.acquisition_periods
    ts = lo + (np.arange(60) + 0.5) / 60 * sim.acquisition_periods
    return float(np.mean([model.expected_purchases_new_customer(t)["mean"] for t in ts]))


@pytest.mark.parametrize("name", list(CASES))
def test_mean_frequency_is_the_models_new_customer_expectation(name):
    cls, truth = CASES[name]
    sim = simulate(8000, model=name, params=truth, resolution="exact", random_seed=21)
    freq = sim.rfm()["frequency"]
    expected = _new_customer_mean(cls, truth, sim)
    z = (freq.mean() - expected) / (freq.std() / np.sqrt(len(freq)))
    assert abs(z) < 3, (name, float(freq.mean()), expected, float(z))
    assert sim.model == name and sim.params == truth
    assert (freq == sim.truth["n_repeat"]).all()  # exact summary: every purchase counted


def test_latent_truth_of_each_model():
    pn = simulate(20_000, model="pnbd", params=CASES["pnbd"][1], random_seed=3).truth
    assert list(pn.columns[:2]) == ["lam", "mu"]
    assert pn["lam"].notna().all() and pn["mu"].notna().all()  # every new customer is alive
    # lam ~ Gamma(r, alpha), mu ~ Gamma(s, beta): prior means r / alpha, s / beta
    for col, (shape, rate) in {"lam": (0.55, 10.6), "mu": (0.6, 11.7)}.items():
        se = np.sqrt(shape) / rate / np.sqrt(len(pn))
        assert abs(pn[col].mean() - shape / rate) < 4 * se, col
    # a death before the end of observation, at first purchase + Exponential(mu) life
    dead = ~pn["alive"]
    life = pn["death_time"] - pn["first_purchase_time"]
    assert (life[dead] > 0).all() and np.isinf(pn["death_time"][~dead]).all()
    mb = simulate(20_000, model="mbgnbd", params=CASES["mbgnbd"][1], random_seed=4).truth
    # an MBG/NBD customer drops out at the first purchase with probability a / (a + b)
    lost = mb["lam"].isna()
    share = 0.9 / 3.9
    assert abs(lost.mean() - share) < 4 * np.sqrt(share * (1 - share) / len(mb))
    assert (mb["death_time"][lost] == mb["first_purchase_time"][lost]).all()
    assert not mb["alive"][lost].any() and (mb["n_repeat"][lost] == 0).all()


def test_model_forms_give_one_log():
    truth = CASES["pnbd"][1]
    gg = {"p": 6.0, "q": 4.0, "v": 15.0, "random_seed": 8}
    base = simulate(300, model="pnbd", params=truth, **gg)
    fitted = ParetoNBD.from_params(time_unit="W", **truth)
    same = [
        simulate(300, model={"model": "pnbd", **truth}, **gg),
        simulate(300, model=dict(truth), **gg),  # found by its parameter names
        simulate(300, model=fitted, **gg),
        simulate(300, model="pnbd", params={"s": 0.6, "beta": 11.7}, r=0.55, alpha=10.6, **gg),
    ]
    for other in same:
        pd.testing.assert_frame_equal(other.transactions, base.transactions)
        pd.testing.assert_frame_equal(other.truth, base.truth)
        assert other.model == "pnbd"
    # the keyword form is BG/NBD; MBG/NBD shares its parameter names, so it is named
    bg = simulate(300, r=0.5, alpha=6.0, a=0.9, b=3.0, random_seed=8)
    mb = simulate(300, model="mbgnbd", r=0.5, alpha=6.0, a=0.9, b=3.0, random_seed=8)
    assert bg.model == "bgnbd" and mb.model == "mbgnbd"
    assert mb.truth["lam"].isna().any() and bg.truth["lam"].notna().all()
    # a fitted model's time unit is the default; another one is refused
    daily = ParetoNBD.from_params(time_unit="D", **truth)
    assert simulate(50, model=daily, random_seed=1, observation_periods=100).time_unit == "D"
    with pytest.raises(ClvkitError, match="fitted in"):
        simulate(50, model=daily, time_unit="W")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(model="pnbd", r=1.0, alpha=1.0, a=1.0, b=1.0), r"missing \['s', 'beta'\]"),
        (dict(model="pnbd", params={"r": 1, "alpha": 1, "s": -1, "beta": 1}), "'s'"),
        (dict(model="nope", r=1.0), "unknown purchase model 'nope'"),
        (dict(model="gamma_gamma", params={"p": 1, "q": 2, "v": 3}), "unknown purchase"),
        (dict(model={"model": "pnbd"}, params={"r": 1.0}), "'params' were both given"),
        (dict(model=ParetoNBD.from_params(r=1, alpha=1, s=1, beta=1), r=1.0), "fitted model"),
        (dict(r=1.0, alpha=1.0, a=1.0), r"missing \['b'\]"),
    ],
)
def test_simulate_model_errors(kwargs, match):
    with pytest.raises(ClvkitError, match=match):
        simulate(10, **kwargs)


@pytest.mark.parametrize("name", list(CASES))
def test_mle_on_a_simulated_log_recovers_the_parameters(name):
    # 20,000 customers, exact times: the MLE of each parameter within 3 standard errors of the
    # truth (sd of the log parameter from the Laplace fit). Measured |z| at most 0.96 (pnbd,
    # seed 1) and 1.30 (mbgnbd, seed 1).
    cls, truth = CASES[name]
    rfm = simulate(20_000, model=name, params=truth, resolution="exact", random_seed=1).rfm()
    mle = cls().fit(rfm, method="mle").posterior_
    lap = cls().fit(rfm, method="laplace", chains=1, draws=2000, random_seed=1).posterior_
    z = {
        k: (np.log(mle[k].item()) - np.log(v)) / float(np.log(lap[k]).std())
        for k, v in truth.items()
    }
    assert all(abs(v) < 3 for v in z.values()), z
