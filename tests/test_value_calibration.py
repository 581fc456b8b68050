"""Calibration of clvkit.value.engine's predictive intervals against known truth.

Data come from the generative process (clvkit.datasets.simulate) split by
clvkit.data.calibration_holdout; the posterior is the true parameters as a point mass (repeated
over draws so that method="simulate" yields predictive draws). Discount rate 0 and margin 1 make
customer equity the total holdout revenue.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from clvkit import datasets
from clvkit.data import summary as data
from clvkit.value.engine import customer_value

TRUE = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.4, "p": 6.0, "q": 4.0, "v": 15.0}
N_CUSTOMERS = 1000
DRAWS = 300


def point_posterior(names, draws=DRAWS):
    return xr.Dataset({k: (("chain", "draw"), np.full((1, draws), TRUE[k])) for k in names})


def replicate(seed: int):
    sim = datasets.simulate(
        N_CUSTOMERS, **TRUE, acquisition_periods=12, observation_periods=78, random_seed=seed
    )
    cal_end = sim.start + pd.Timedelta(weeks=39) - pd.Timedelta(days=1)
    rfm = data.calibration_holdout(
        sim.transactions, calibration_end=cal_end, observation_end=sim.observation_end,
        amount="amount", time_unit="W",
    )  # fmt: skip
    res = customer_value(
        point_posterior(["r", "alpha", "a", "b"]), point_posterior(["p", "q", "v"]), rfm,
        horizon=float(rfm["duration_holdout"].iloc[0]), period="7D", annual_discount_rate=0.0,
        method="simulate", keep_draws=True, random_seed=seed,
    )  # fmt: skip
    revenue = float((rfm["frequency_holdout"] * rfm["monetary_value_holdout"]).sum())
    return rfm, res, revenue


@pytest.mark.slow
def test_predictive_intervals_are_calibrated():
    reps = 150
    covered = 0
    pits = []
    rng = np.random.default_rng(0)
    for seed in range(reps):
        rfm, res, revenue = replicate(1000 + seed)
        lo, hi = res.equity_interval(0.9)[["lower", "upper"]]
        covered += lo <= revenue <= hi
        if seed < 20:  # randomized PIT of each customer's holdout purchase count
            sims = res.purchases.values.reshape(DRAWS, -1)
            obs = rfm["frequency_holdout"].to_numpy()
            below = (sims < obs).mean(axis=0)
            at = (sims == obs).mean(axis=0)
            pits.append(below + rng.random(obs.size) * at)
    rate = covered / reps
    # 90% intervals over 150 independent replications: binomial sd 0.0245; allow 3 sd
    assert abs(rate - 0.9) < 3 * np.sqrt(0.09 / reps), rate
    u = np.concatenate(pits)
    inside = np.mean((u > 0.05) & (u < 0.95))
    assert 0.85 <= inside <= 0.95, inside
    # deciles of the PIT: each 10% within 1.5 points (~20,000 customers: binomial sd 0.2 points)
    share = np.histogram(u, bins=10, range=(0, 1))[0] / u.size
    assert np.all(np.abs(share - 0.1) < 0.015), share
