"""The covariate composite (``clvkit.with_covariates``): fitting, saving, given draws, errors.

Data: two acquisition channels simulated from BG/NBD with purchase-rate scales ``alpha`` 6 (web)
and 3 (shop), so shop customers buy ``6 / 3 = 2`` times as often: the purchase coefficient is
``log 2 = 0.693``; the dropout process is the same in both (coefficients 0).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clvkit
from clvkit.errors import ClvkitError
from clvkit.models.covariates import CovariatePurchaseModel

LOG2 = float(np.log(2.0))


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    parts = []
    for channel, alpha, seed in (("web", 6.0, 1), ("shop", 3.0, 2)):
        sim = clvkit.datasets.simulate(
            3000, r=0.5, alpha=alpha, a=0.8, b=2.5, random_seed=seed, time_unit="W"
        )
        rfm = sim.rfm().copy()
        rfm.index = pd.Index([f"{channel}{i}" for i in rfm.index], name="customer_id")
        rfm["channel"] = channel
        rfm["amount"] = np.log1p(np.arange(len(rfm)) % 7)  # a numeric column without effect
        parts.append(rfm)
    out = pd.concat(parts)
    out.attrs = dict(parts[0].attrs)
    return out


@pytest.fixture(scope="module")
def fitted(table) -> CovariatePurchaseModel:
    model = clvkit.with_covariates("bgnbd", ["channel"], reference={"channel": "web"})
    return model.fit(table, method="mle")


def test_mle_recovers_the_channel_effect_on_purchases(fitted):
    s = fitted.summary()
    row = s.loc["coef_alpha[channel[shop]]"]
    assert abs(row["mean"] - LOG2) < 3 * row["sd"]  # 0.652 +- 0.045 on this seed
    assert row["sd"] < 0.06
    for name in ("coef_a[channel[shop]]", "coef_b[channel[shop]]"):
        assert abs(s.loc[name, "mean"]) < 3 * s.loc[name, "sd"]
    assert s.loc["r", "mean"] == pytest.approx(0.5, abs=0.04)
    assert s.loc["alpha", "mean"] == pytest.approx(6.0, rel=0.1)  # the reference level: web


def test_the_table_is_not_modified_and_order_does_not_matter(table, fitted):
    before = table.copy()
    shuffled = table.sample(frac=1.0, random_state=3)
    shuffled.attrs = dict(table.attrs)
    again = clvkit.with_covariates("bgnbd", ["channel"], reference={"channel": "web"})
    again.fit(shuffled, method="mle")
    pd.testing.assert_frame_equal(table, before)
    a = fitted.summary()["mean"].to_numpy()
    b = again.summary()["mean"].to_numpy()
    np.testing.assert_allclose(a, b, rtol=1e-6)


def test_predictions_follow_each_customers_class(table, fitted):
    """A shop customer's prediction is BG/NBD's at alpha_shop = alpha * exp(-g)."""
    post = fitted.posterior_
    r, alpha, a, b = (float(post[n].values.ravel()[0]) for n in ("r", "alpha", "a", "b"))
    g = {n: float(post[f"coef_{n}"].values.ravel()[0]) for n in ("alpha", "a", "b")}
    some = table.iloc[[0, 1, -2, -1]]
    got = fitted.expected_purchases(some, t=10)["mean"].to_numpy()
    base = clvkit.BetaGeo.from_params(r=r, alpha=alpha, a=a, b=b, time_unit="W")
    shop = clvkit.BetaGeo.from_params(
        r=r, alpha=alpha * np.exp(-g["alpha"]), a=a * np.exp(g["a"]), b=b * np.exp(g["b"]),
        time_unit="W",
    )  # fmt: skip
    want = np.concatenate(
        [
            base.expected_purchases(some.iloc[:2], t=10)["mean"].to_numpy(),
            shop.expected_purchases(some.iloc[2:], t=10)["mean"].to_numpy(),
        ]
    )
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # a new customer is the baseline: reference level, numeric covariates at their mean
    new = fitted.expected_purchases_new_customer(26)["mean"]
    assert new == pytest.approx(float(base.expected_purchases_new_customer(26)["mean"]), rel=1e-12)


def test_save_and_load_keep_the_encoding(tmp_path, table, fitted):
    path = tmp_path / "cov.nc"
    fitted.save(path)
    loaded = clvkit.load(path)
    assert isinstance(loaded, CovariatePurchaseModel)
    assert loaded.spec.terms.names == ("channel[shop]",)
    assert loaded.spec.terms.design.reference == {"channel": "web"}
    some = table.iloc[[0, -1]]
    pd.testing.assert_frame_equal(
        loaded.probability_alive(some), fitted.probability_alive(some), rtol=0, atol=0
    )
    given = CovariatePurchaseModel.from_posterior(fitted.posterior_)
    assert given.method_ == "given"
    pd.testing.assert_frame_equal(given.expected_purchases(some, t=5),
                                  fitted.expected_purchases(some, t=5))  # fmt: skip


def test_value_runs_on_covariate_models_with_both_methods(table, fitted):
    some = pd.concat([table.iloc[:50], table.iloc[-50:]])
    some = some.assign(monetary_value=30.0)
    some.attrs = dict(table.attrs)
    gg = clvkit.GammaGamma.from_params(p=6.25, q=3.74, v=15.4)
    exp = clvkit.customer_value(fitted, gg, some, annual_discount_rate=0.1, horizon=52)
    sim = clvkit.customer_value(
        fitted, gg, some, annual_discount_rate=0.1, horizon=52, method="simulate", random_seed=1
    )
    a = exp.summary()["expected_clv"]
    b = sim.summary()["expected_clv"]
    np.testing.assert_allclose(a, b, rtol=1e-12)  # the same expected values rank both
    # the shop customers buy about twice as often: higher expected value on average
    assert a.iloc[50:].mean() > 1.5 * a.iloc[:50].mean()
    # simulated equity agrees with the expected one within Monte Carlo error
    e, s = float(exp.equity.mean()), float(sim.equity.mean())
    assert abs(s - e) < 0.05 * e


def test_errors_name_the_column_and_the_fix(table):
    with pytest.raises(ClvkitError, match=r"lacks the covariate column\(s\) \['region'\]"):
        clvkit.with_covariates("bgnbd", ["region"]).fit(table, method="mle")
    with pytest.raises(ClvkitError, match="neither a process"):
        clvkit.with_covariates("bgnbd", ["channel"], links=["spend"])
    with pytest.raises(ClvkitError, match="needs covariate columns or a segment"):
        clvkit.with_covariates("bgnbd")
    with pytest.raises(ClvkitError, match="method='mle' cannot fit segments"):
        clvkit.with_covariates("bgnbd", segment="channel").fit(table, method="mle")
    with pytest.raises(ClvkitError, match="both a covariate and the segment"):
        clvkit.with_covariates("bgnbd", ["channel"], segment="channel")
    gaps = table.copy()
    gaps.iloc[3, gaps.columns.get_loc("channel")] = None
    with pytest.raises(ClvkitError, match=r"column 'channel'.*1 "):
        clvkit.with_covariates("bgnbd", ["channel"]).fit(gaps, method="mle")
    one = table[table["channel"] == "web"].copy()
    one.attrs = dict(table.attrs)
    with pytest.raises(ClvkitError, match="takes one value"):
        clvkit.with_covariates("bgnbd", ["channel"]).fit(one, method="mle")


def test_an_unseen_level_in_predictions_is_an_error(table, fitted):
    odd = table.iloc[:3].copy()
    odd["channel"] = ["web", "phone", "shop"]
    with pytest.raises(ClvkitError, match="not seen when the model was fitted"):
        fitted.probability_alive(odd)


def test_from_params_is_refused_with_a_way_out():
    with pytest.raises(ClvkitError, match="from_posterior"):
        CovariatePurchaseModel.from_params(r=1.0)
