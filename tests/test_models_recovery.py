"""Parameter recovery: NUTS posteriors and MLEs on simulated data cover the true parameters.

The data come from ``clvkit.datasets.simulate`` summarized in exact continuous time
(``SimulatedLog.rfm(exact=True)``: every purchase counted, no same-day merging) and recorded to
0.01 week as in the CDNOW summary (``clvkit.data.coarsen_rfm``, so that rows compress; at 50,000
customers this moves the MLE by < 0.01 sd). The day-resolution summary of the same log
(``sim.rfm()``) merges same-day purchases and shifts alpha by several sds (z = 4.6 at seed
2000; tests/test_datasets.py), so it is not used to test the model's correctness.

Calibration (this generator, 50,000 customers, 0.01-week grid): over seeds 2000-2029 the
asymptotic 90% MLE intervals (Laplace sd of the log parameter) covered the truth in
26/26/28/28 (r, alpha, a, b) and 29/27/28 (p, q, v) of 30 data sets (mean z between -0.26
and 0.14, standard error 0.18: no bias), and 20 of the 30 data sets pass all seven checks at
once. The seed below is the first of that range, and it passes; the test fixes it rather than
claiming every seed passes.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from clvkit.data.summary import coarsen_rfm
from clvkit.datasets import simulate
from clvkit.errors import ConvergenceWarning
from clvkit.models import BetaGeo, GammaGamma

TRUE_BG = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
TRUE_GG = {"p": 6.0, "q": 4.0, "v": 15.0}


def simulate_rfm(n: int, seed: int) -> pd.DataFrame:
    """Exact (x, t_x, T, z̄) of the BG/NBD and Gamma-Gamma processes, in weeks, to 0.01 week.

    Acquired uniformly over 12 weeks and observed until week 78 (``simulate``'s defaults).
    """
    sim = simulate(n, **TRUE_BG, **TRUE_GG, random_seed=seed)
    return coarsen_rfm(sim.rfm(exact=True), 0.01)


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    return simulate_rfm(50_000, 2000)


@pytest.mark.slow
@pytest.mark.parametrize(("cls", "truth"), [(BetaGeo, TRUE_BG), (GammaGamma, TRUE_GG)])
def test_posterior_intervals_cover_truth(simulated, cls, truth):
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = cls().fit(simulated, random_seed=11, progressbar=False)
    summary = model.summary(prob=0.9)
    mle = cls().fit(simulated, method="mle").idata_.posterior
    for name, value in truth.items():
        lo, hi = summary.loc[name, "5%"], summary.loc[name, "95%"]
        assert lo <= value <= hi, (name, value, lo, hi)
        # the posterior concentrates: 50,000 customers pin each parameter to within ~15%
        assert (hi - lo) / value < 0.3, (name, lo, hi)
        assert lo <= mle[name].item() <= hi, name


def _mle_z(rfm: pd.DataFrame) -> dict[str, float]:
    """(log MLE - log truth) / sd of the log parameter (Laplace), for all seven parameters."""
    z = {}
    for cls, truth in ((BetaGeo, TRUE_BG), (GammaGamma, TRUE_GG)):
        mle = cls().fit(rfm, method="mle").idata_.posterior
        lap = cls().fit(rfm, method="laplace", chains=2, draws=1000, random_seed=1)
        for name, value in truth.items():
            sd = float(np.log(lap.idata_.posterior[name]).std())
            z[name] = (np.log(mle[name].item()) - np.log(value)) / sd
    return z


def test_mle_recovers_truth_within_two_standard_errors(simulated):
    z = _mle_z(simulated)
    assert all(abs(v) < 2 for v in z.values()), z


def test_mle_has_no_bias_over_seeds():
    # The mean of 6 independent z-scores has sd 1/sqrt(6) = 0.41; 3 of those (1.22) would be
    # crossed by chance with probability 0.3% per parameter, and a bias of 2 standard errors
    # (the day-grid summary's alpha is at 4.6) would be caught nearly always.
    zs = [_mle_z(simulate_rfm(50_000, seed)) for seed in range(2100, 2106)]
    mean = {k: float(np.mean([z[k] for z in zs])) for k in zs[0]}
    assert all(abs(v) < 3 / np.sqrt(len(zs)) for v in mean.values()), mean
