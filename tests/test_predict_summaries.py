"""Issue 14 item 4 (API part): predictions return per-customer summaries by default, computed
over chunks of customers; ``return_draws=True`` gives the draws; ``t`` takes durations."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import clvkit
from clvkit import BetaGeo, GammaGamma
from clvkit.errors import ClvkitError
from clvkit.models import base

BG = {"r": 0.2426, "alpha": 4.4137, "a": 0.793, "b": 2.4262}
GG = {"p": 6.2488, "q": 3.7446, "v": 15.4477}


def _draws(params: dict, S: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    return {k: v * np.exp(0.1 * rng.standard_normal(S)) for k, v in params.items()}


@pytest.fixture(scope="module")
def cdnow():
    return clvkit.datasets.cdnow_calibration_summary()


@pytest.fixture(scope="module")
def models():
    return (BetaGeo.from_params(time_unit="W", **_draws(BG, 300, 1)),
            GammaGamma.from_params(**_draws(GG, 300, 2)))  # fmt: skip


def _expect(draws: xr.DataArray, prob: float) -> pd.DataFrame:
    v = draws.values.reshape(-1, draws.sizes["customer_id"])
    q = np.quantile(v, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    return pd.DataFrame(
        {"mean": v.mean(0), "sd": v.std(0), "lower": q[0], "upper": q[1]},
        index=pd.Index(draws["customer_id"].values, name="customer_id"),
    )


@pytest.mark.parametrize("chunk_values", [None, 1_000])
@pytest.mark.parametrize("prob", [0.9, 0.5])
def test_summaries_equal_the_summary_of_the_draws(cdnow, models, monkeypatch, chunk_values, prob):
    """Chunked (3-customer chunks at 300 draws with 1,000 values) or not, the summary is the
    mean, sd and central interval of the draws, for every per-customer prediction."""
    if chunk_values:
        monkeypatch.setattr(base, "PREDICT_VALUES", chunk_values)
    bg, gg = models
    calls = {
        "probability_alive": (bg, (cdnow,)),
        "probability_alive_at": (bg, (cdnow, 10.0)),
        "expected_purchases": (bg, (cdnow, 39.0)),
        "probability_of_purchases": (bg, (39.0, 1, cdnow)),
        "expected_spend": (gg, (cdnow,)),
    }
    for name, (model, args) in calls.items():
        summary = getattr(model, name)(*args, prob=prob)
        draws = getattr(model, name)(*args, return_draws=True)
        assert isinstance(draws, xr.DataArray) and draws.shape == (1, 300, len(cdnow)), name
        assert list(summary.columns) == ["mean", "sd", "lower", "upper"], name
        assert summary.attrs["prob"] == prob and summary.attrs["n_draws"] == 300
        pd.testing.assert_frame_equal(summary, _expect(draws, prob), rtol=1e-12, atol=1e-14)
    # the known CDNOW value at the point estimate (FHL 2005): customer 1 expects 1.226
    point = BetaGeo.from_params(time_unit="W", **BG)
    e = point.expected_purchases(cdnow.loc[[1]], 39)
    assert round(float(e.loc[1, "mean"]), 3) == 1.226
    assert e.loc[1, "sd"] == 0 and e.loc[1, "lower"] == e.loc[1, "upper"] == e.loc[1, "mean"]


def test_new_customer_predictions_are_series(models):
    bg, _ = models
    s = bg.expected_purchases_new_customer(39)
    d = bg.expected_purchases_new_customer(39, return_draws=True)
    assert isinstance(s, pd.Series) and list(s.index) == ["mean", "sd", "lower", "upper"]
    v = d.values.ravel()
    assert s["mean"] == pytest.approx(v.mean(), rel=1e-12)
    assert s["upper"] == pytest.approx(np.quantile(v, 0.95), rel=1e-12)
    p = bg.probability_of_purchases(39, 0)
    assert p["mean"] == pytest.approx(
        bg.probability_of_purchases(39, 0, return_draws=True).values.mean(), rel=1e-12
    )
    point = BetaGeo.from_params(time_unit="W", **BG)  # FHL 2005: E[X(31.857)] = 1.0405
    assert round(float(point.expected_purchases_new_customer(31.857)["mean"]), 4) == 1.0405


def test_posterior_predictive_summary_is_the_draws_summary(cdnow, models, monkeypatch):
    """Mean, interval (counts: inverted CDF) and P(0) of the simulated counts, the same seed
    giving the same simulation in both forms, chunk after chunk."""
    monkeypatch.setattr(base, "PREDICT_VALUES", 300 * 500)  # 5 chunks of 500 customers
    bg, _ = models
    sub = cdnow.iloc[:2357]
    s = bg.posterior_predictive(sub, 39, random_seed=4)
    d = bg.posterior_predictive(sub, 39, random_seed=4, return_draws=True)
    assert d.dtype == np.int64 and d.shape == (1, 300, 2357)
    v = d.values.reshape(300, -1)
    q = np.quantile(v, [0.05, 0.95], axis=0, method="inverted_cdf")
    np.testing.assert_allclose(s["mean"], v.mean(0), rtol=1e-12)
    np.testing.assert_array_equal(s["lower"], q[0])
    np.testing.assert_array_equal(s["upper"], q[1])
    np.testing.assert_array_equal(s["p_zero"], (v == 0).mean(0))
    assert list(s.columns) == ["mean", "sd", "lower", "upper", "p_zero"]
    # the simulated mean agrees with the expected purchases (4 standard errors, in total)
    e = bg.expected_purchases(sub, 39)["mean"].sum()
    se = np.sqrt((s["sd"] ** 2).sum() / 300)
    assert abs(s["mean"].sum() - e) < 4 * se


def test_t_takes_durations_in_the_model_unit(cdnow, models):
    """Issue 14 item 5: expected_purchases(rfm, t="26W") was refused."""
    bg, _ = models
    sub = cdnow.iloc[:20]
    weeks = bg.expected_purchases(sub, 26)
    pd.testing.assert_frame_equal(bg.expected_purchases(sub, "26W"), weeks)
    pd.testing.assert_frame_equal(bg.expected_purchases(sub, "182D"), weeks)
    pd.testing.assert_frame_equal(
        bg.probability_alive_at(sub, "14D"), bg.probability_alive_at(sub, 2)
    )
    assert bg.expected_purchases_new_customer("2W")["mean"] == pytest.approx(
        bg.expected_purchases_new_customer(2)["mean"], rel=1e-14
    )
    with pytest.raises(ClvkitError, match="'t'"):
        bg.expected_purchases(sub, "soon")
    with pytest.raises(ClvkitError, match="'t'"):
        bg.expected_purchases(sub, -1)
    with pytest.raises(ClvkitError, match="'prob'"):
        bg.expected_purchases(sub, 26, prob=1.5)


def test_summary_memory_is_bounded_by_the_chunk(models, monkeypatch):
    """The summary never holds the (draws x customers) array: memory follows the chunk
    (``PREDICT_VALUES``), not the number of customers. 20,000 customers x 300 draws."""
    bg, _ = models
    rng = np.random.default_rng(0)
    n = 20_000
    x = rng.integers(0, 10, n)
    T = rng.uniform(20, 40, n)
    rfm = pd.DataFrame({"frequency": x, "recency": np.where(x > 0, T * rng.random(n), 0.0), "T": T},
                       index=pd.Index(np.arange(n), name="customer_id"))  # fmt: skip
    rfm.attrs["time_unit"] = "W"

    def peak(values: int, **kw) -> int:
        monkeypatch.setattr(base, "PREDICT_VALUES", values)
        tracemalloc.start()
        out = bg.expected_purchases(rfm, 26, **kw)
        got = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert len(out["customer_id"] if kw else out) == n
        return got

    whole = peak(10**9)  # one chunk of every customer
    chunked = peak(30_000)  # 100 customers a chunk
    assert chunked < whole / 10, (chunked, whole)
    assert peak(300_000, return_draws=True) >= 8 * 300 * n  # the draws themselves
