"""Parameter recovery: NUTS posteriors on simulated data cover the true parameters.

The data come from an exact continuous-time draw of the BG/NBD + Gamma-Gamma process
(below). ``clvkit.datasets.simulate`` + ``rfm_summary`` keep dates at day resolution and merge
same-day purchases, which at 50,000 customers shifts the BG/NBD estimates by several posterior
sds (1.5% of repeat purchases merge; alpha comes out ~4.36 for a true 4.0), so it is not used
to test the model's correctness here.

Calibration: over seeds 2000-2029, the asymptotic 90% MLE intervals covered the truth in
83/93/90/90% (r, alpha, a, b) and 77/80/77% (p, q, v) of the data sets, so a single data set
passes all seven checks only ~50-70% of the time. The seed below is the first of that range;
the test fixes it rather than claiming every seed passes.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from clvkit.errors import ConvergenceWarning
from clvkit.models import BetaGeo, GammaGamma

TRUE_BG = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
TRUE_GG = {"p": 6.0, "q": 4.0, "v": 15.0}


def simulate_rfm(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """Exact draw of (x, t_x, T, z̄) from the BG/NBD and Gamma-Gamma processes, in weeks."""
    lam = rng.gamma(TRUE_BG["r"], 1.0 / TRUE_BG["alpha"], n)
    drop = rng.beta(TRUE_BG["a"], TRUE_BG["b"], n)
    T = 78.0 - rng.uniform(0.0, 12.0, n)  # acquired over 12 weeks, observed until week 78
    n_arrivals = rng.poisson(lam * T)  # Poisson arrivals in (0, T] if never dying
    n_before_death = rng.geometric(drop)  # each repeat purchase is the last with prob. p
    x = np.minimum(n_arrivals, n_before_death)
    # given n arrivals in (0, T], the x-th arrival time is T times a Beta(x, n - x + 1)
    xs = np.maximum(x, 1)
    t_x = np.where(x > 0, T * rng.beta(xs, np.maximum(n_arrivals - xs + 1, 1)), 0.0)
    # times recorded to 0.01 week as in the CDNOW summary (so that rows compress)
    T = np.round(T, 2)
    t_x = np.where(x > 0, np.clip(np.round(t_x, 2), 0.01, T), 0.0)
    nu = rng.gamma(TRUE_GG["q"], 1.0 / TRUE_GG["v"], n)
    zbar = np.where(x > 0, rng.gamma(TRUE_GG["p"] * xs, 1.0 / nu) / xs, 0.0)
    rfm = pd.DataFrame(
        {"frequency": x, "recency": t_x, "T": T, "monetary_value": zbar},
        index=pd.RangeIndex(n, name="customer_id"),
    )
    rfm.attrs["time_unit"] = "W"
    return rfm


@pytest.fixture(scope="module")
def simulated() -> pd.DataFrame:
    return simulate_rfm(50_000, np.random.default_rng(2000))


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
