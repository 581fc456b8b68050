"""MBG/NBD calibration on data simulated from the model with known parameters (slow).

Each replication draws 1,000 new customers from the model's one generative process
(``spec.simulate`` on empty histories), observed for a calibration window of 26 to 52 weeks
(uniform per customer) and a 39-week holdout, fits ``method="laplace"`` on the calibration
table and checks that the 90% posterior intervals cover the true (r, alpha, a, b), and that
each customer's holdout purchase count falls inside the central 90% of its posterior predictive
distribution (randomized PIT of the count, the pmf averaged over 100 posterior draws).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clvkit

Model = clvkit.ModifiedBetaGeo
SPEC = Model.spec
TRUTH = {"r": 0.5, "alpha": 6.0, "a": 0.9, "b": 1.6}
N_CUSTOMERS = 1000
HOLDOUT = 39.0


def simulate_split(seed: int) -> tuple[pd.DataFrame, np.ndarray]:
    """Calibration table (x, t_x, T) and holdout counts of new customers simulated over
    ``T + HOLDOUT`` by the model's generative process."""
    rng = np.random.default_rng(seed)
    T = rng.uniform(26.0, 52.0, N_CUSTOMERS)
    params = {n: np.array([[v]]) for n, v in TRUTH.items()}
    fut = SPEC.simulate(params, SPEC.new_customer_columns(N_CUSTOMERS), T + HOLDOUT, rng)
    x = np.zeros(N_CUSTOMERS)
    tx = np.zeros(N_CUSTOMERS)
    hold = np.zeros(N_CUSTOMERS, dtype=np.int64)
    for batch in fut.batches:
        cust = np.repeat(batch.customer, batch.count)
        cal = batch.times <= T[cust]
        np.add.at(x, cust[cal], 1.0)
        np.maximum.at(tx, cust[cal], batch.times[cal])
        np.add.at(hold, cust[~cal], 1)
    rfm = pd.DataFrame({"frequency": x, "recency": tx, "T": T})
    rfm.attrs["time_unit"] = "W"
    return rfm, hold


def randomized_pit(model, rfm: pd.DataFrame, hold: np.ndarray, rng, draws: int = 100):
    post = model.posterior_
    S = post.sizes["chain"] * post.sizes["draw"]
    pick = rng.choice(S, size=draws, replace=False)
    params = {n: post[n].to_numpy().reshape(S, 1)[pick] for n in SPEC.param_names}
    k = np.arange(hold.max() + 1, dtype=np.float64)
    pmf = SPEC.probability_of_purchases(params, SPEC.customer_columns(rfm), HOLDOUT, k)
    pmf = pmf.mean(axis=0)  # (n, K): the posterior predictive of each customer
    below = np.cumsum(pmf, axis=1) - pmf  # P(N < k)
    idx = np.arange(hold.size)
    return below[idx, hold] + rng.random(hold.size) * pmf[idx, hold]


@pytest.mark.slow
def test_parameter_intervals_and_holdout_pit_are_calibrated():
    """60 replications: the 240 90% parameter intervals cover the truth at 85-95% (each
    parameter at 80% at least), and the 10,000 holdout PITs of the first 10 replications fall in
    (0.05, 0.95) at 85-95%, each PIT decile within 1.5 points of 10%."""
    reps, pit_reps = 60, 10
    covered = {n: 0 for n in TRUTH}
    pits = []
    rng = np.random.default_rng(0)
    for seed in range(reps):
        rfm, hold = simulate_split(5000 + seed)
        fit = Model().fit(rfm, method="laplace", chains=1, draws=2000, random_seed=seed)
        for n, v in TRUTH.items():
            lo, hi = np.quantile(fit.posterior_[n].to_numpy(), [0.05, 0.95])
            covered[n] += lo <= v <= hi
        if seed < pit_reps:
            pits.append(randomized_pit(fit, rfm, hold, rng))
    rates = {n: c / reps for n, c in covered.items()}
    pooled = sum(covered.values()) / (reps * len(TRUTH))
    assert 0.85 <= pooled <= 0.95, rates
    assert min(rates.values()) >= 0.8, rates
    u = np.concatenate(pits)
    inside = float(np.mean((u > 0.05) & (u < 0.95)))
    assert 0.85 <= inside <= 0.95, inside
    share = np.histogram(u, bins=10, range=(0, 1))[0] / u.size
    assert np.all(np.abs(share - 0.1) < 0.015), share
