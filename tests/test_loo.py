"""PSIS-LOO and model weights (clvkit.inference.loo) against ArviZ, which implements the
published algorithms (Vehtari, Gelman and Gabry 2017; Vehtari et al. 2024; Yao et al. 2018)."""

from __future__ import annotations

import arviz as az
import numpy as np
import pytest

from clvkit.errors import ClvkitError
from clvkit.inference.diagnostics import ess_mean
from clvkit.inference.loo import (
    k_threshold,
    pseudo_bma_weights,
    psis_log_weights,
    psis_loo,
    stacking_weights,
)


def _loglik(rng, chains=4, draws=500, n=60, heavy=()):
    """Normal-model log-likelihood draws; observations in ``heavy`` are outliers (high k)."""
    mu = rng.normal(0.0, 0.2, (chains, draws, 1))
    y = rng.normal(size=n)
    y[list(heavy)] = 6.0
    return -0.5 * (y - mu) ** 2 - 0.5 * np.log(2 * np.pi)


def test_psis_weights_equal_arviz():
    rng = np.random.default_rng(1)
    ll = _loglik(rng, heavy=(3, 7)).reshape(2000, -1)
    for reff in (1.0, 0.7):
        lw, k = psis_log_weights(-ll.T, reff)
        lw_az, k_az = az.psislw(-ll.T, reff=reff)
        np.testing.assert_allclose(k, k_az, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(lw, lw_az, rtol=1e-10, atol=1e-10)
    assert k[3] > k[0]  # the outliers have the heavier tails


def test_psis_ties_at_the_cut_follow_arviz():
    """Rows with tied draws at the cut take ArviZ's per-row route and still agree. Which of
    several equal raw weights gets which smoothed value is arbitrary (ArviZ sorts with an
    unstable sort), so each row's weights are compared as a sorted set."""
    rng = np.random.default_rng(2)
    ll = np.round(rng.normal(size=(3, 400)), 1)  # many ties
    lw, k = psis_log_weights(-ll, 1.0)
    lw_az, k_az = az.psislw(-ll, reff=1.0)
    np.testing.assert_allclose(k, k_az, rtol=1e-10)
    np.testing.assert_allclose(np.sort(lw, axis=1), np.sort(lw_az, axis=1), rtol=1e-10)


def test_loo_equals_arviz_loo():
    rng = np.random.default_rng(3)
    ll = _loglik(rng, heavy=(5,))
    idata = az.from_dict(posterior={"mu": ll[..., 0]}, log_likelihood={"y": ll})
    ref = az.loo(idata, pointwise=True)
    reff = float(az.ess(idata, method="mean")["mu"]) / 2000  # ArviZ 0.x: the parameters' ESS
    got = psis_loo(ll, reff=reff)
    assert got.elpd == pytest.approx(float(ref["elpd_loo"]), rel=1e-10)
    assert got.se == pytest.approx(float(ref["se"]), rel=1e-10)
    assert got.p_loo == pytest.approx(float(ref["p_loo"]), rel=1e-10)
    np.testing.assert_allclose(got.pointwise, ref["loo_i"].values, rtol=1e-10)
    np.testing.assert_allclose(got.pareto_k, ref["pareto_k"].values, rtol=1e-10)


def test_counts_equal_repeated_columns():
    """A distinct observation with count c is the same as c equal columns."""
    rng = np.random.default_rng(4)
    ll = _loglik(rng, n=10).reshape(2000, -1)
    counts = np.array([1, 3, 1, 2, 1, 1, 5, 1, 1, 2])
    full = psis_loo(np.repeat(ll, counts, axis=1), n_chains=4)
    comp = psis_loo(ll, counts=counts, n_chains=4)
    assert comp.elpd == pytest.approx(full.elpd, rel=1e-12)
    assert comp.se == pytest.approx(full.se, rel=1e-10)
    assert comp.p_loo == pytest.approx(full.p_loo, rel=1e-10)
    assert comp.n_observations == 18
    assert comp.reff == pytest.approx(full.reff, rel=1e-12)


def test_ess_mean_equals_arviz():
    x = np.random.default_rng(5).normal(size=(4, 300)).cumsum(axis=1) * 0.05
    assert ess_mean(x) == pytest.approx(float(az.ess(x, method="mean")), rel=1e-10)


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
def test_stacking_weights_equal_arviz():
    rng = np.random.default_rng(6)
    y = rng.normal(0.3, 1.0, 200)
    lls = {}
    for name, (m, s) in {"right": (0.3, 1.0), "shifted": (0.0, 1.0), "wide": (0.3, 2.0)}.items():
        mu = rng.normal(m, 0.05, (4, 250, 1))
        lls[name] = -0.5 * ((y - mu) / s) ** 2 - np.log(s) - 0.5 * np.log(2 * np.pi)
    data = {
        k: az.from_dict(posterior={"mu": v[..., 0]}, log_likelihood={"y": v})
        for k, v in lls.items()
    }
    ref = az.compare(data, method="stacking")  # pandas warns inside ArviZ

    pointwise = np.column_stack([psis_loo(v).pointwise for v in lls.values()])
    w = stacking_weights(pointwise)
    np.testing.assert_allclose(w, ref.loc[list(lls), "weight"].to_numpy(), atol=2e-4)
    assert w.sum() == pytest.approx(1.0) and w[0] > 0.5


def test_pseudo_bma():
    pointwise = np.column_stack([np.full(50, -1.0), np.full(50, -1.02)])
    plain = pseudo_bma_weights(pointwise, bootstrap=False)
    # exp(50 * 0.02) = e: weights e/(1+e) and 1/(1+e)
    np.testing.assert_allclose(plain, [np.e / (1 + np.e), 1 / (1 + np.e)], rtol=1e-12)
    rng = np.random.default_rng(7)
    noisy = np.column_stack([rng.normal(-1, 0.5, 300), rng.normal(-1, 0.5, 300)])
    bb = pseudo_bma_weights(noisy, n_boot=400, random_seed=1)
    assert bb.sum() == pytest.approx(1.0)
    assert 0.05 < bb[0] < 0.95  # shrunk: no model is certain when the difference is noise
    counts = np.array([2.0, 1.0])
    rep = pseudo_bma_weights(noisy[[0, 0, 1]], bootstrap=False)
    assert pseudo_bma_weights(noisy[:2], counts, bootstrap=False) == pytest.approx(rep)


def test_errors_and_threshold():
    with pytest.raises(ClvkitError, match="point fit"):
        psis_loo(np.zeros((1, 5)))
    with pytest.raises(ClvkitError, match="non-finite"):
        psis_loo(np.full((10, 3), -np.inf))
    assert k_threshold(4000) == 0.7
    assert k_threshold(20) == pytest.approx(1 - 1 / np.log10(20))
