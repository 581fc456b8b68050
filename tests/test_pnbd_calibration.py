"""Pareto/NBD calibration against known truth, on data from its own generative process
(``ParetoNBDSpec.simulate`` for new customers, the one every simulated Pareto/NBD purchase in
clvkit comes from), split into a calibration window and a holdout.

- Parameters: 100 data sets of 2,000 customers (acquired uniformly over 12 weeks, calibration
  until week 39, recorded to 0.01 week); the 90% interval of each parameter is the Laplace
  approximation at the MLE (``method="laplace"``: normal on the log scale). Measured coverage
  over the 100 data sets: see ``test_parameter_intervals_cover_truth``.
- Holdout purchases: 20 data sets of 1,000 customers at the true parameters; the randomized PIT
  of each customer's holdout count under P(n purchases in the holdout | history)
  (``probability_of_purchases``) lies in (0.05, 0.95) for 85-95% of customers.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvkit import ParetoNBD
from clvkit.data.summary import coarsen_rfm
from clvkit.models.pnbd.spec import ParetoNBDSpec

TRUE = {"r": 0.55, "alpha": 10.6, "s": 0.6, "beta": 11.7}  # CDNOW-like (weeks)
SPEC = ParetoNBDSpec()


def simulate_split(n: int, seed: int, holdout: float = 39.0) -> pd.DataFrame:
    """Calibration summary (x, t_x, T) and holdout counts of ``n`` new customers acquired
    uniformly over 12 weeks, calibration until week 39, then ``holdout`` weeks."""
    rng = np.random.default_rng(seed)
    T = 39.0 - rng.uniform(0.0, 12.0, n)
    params = {k: np.array([[v]]) for k, v in TRUE.items()}
    fut = SPEC.simulate(params, SPEC.new_customer_columns(n), T + holdout, rng)
    x = np.zeros(n)
    tx = np.zeros(n)
    hold = np.zeros(n, dtype=np.int64)
    for batch in fut.batches:
        cust = np.repeat(batch.customer, batch.count)
        cal = batch.times <= T[cust]
        np.add.at(x, cust[cal], 1.0)
        np.maximum.at(tx, cust[cal], batch.times[cal])
        np.add.at(hold, cust[~cal], 1)
    rfm = pd.DataFrame({"frequency": x.astype(np.int64), "recency": tx, "T": T})
    rfm.index.name = "customer_id"
    rfm.attrs["time_unit"] = "W"
    rfm = coarsen_rfm(rfm, 0.01)
    rfm["frequency_holdout"] = hold
    return rfm


@pytest.mark.slow
def test_parameter_intervals_cover_truth():
    reps = 100
    hits = {k: 0 for k in TRUE}
    for seed in range(reps):
        rfm = simulate_split(2000, 5000 + seed)[["frequency", "recency", "T"]]
        rfm.attrs["time_unit"] = "W"
        lap = ParetoNBD().fit(rfm, method="laplace", chains=1, draws=4000, random_seed=seed)
        post = lap.posterior_
        for k, v in TRUE.items():
            lo, hi = np.quantile(post[k].values, [0.05, 0.95])
            hits[k] += lo <= v <= hi
    rates = {k: h / reps for k, h in hits.items()}
    pooled = sum(hits.values()) / (4 * reps)
    assert 0.85 <= pooled <= 0.95, rates
    for k, rate in rates.items():  # each parameter: 100 data sets, binomial sd 0.03
        assert 0.8 <= rate <= 0.98, (k, rates)


@pytest.mark.slow
def test_holdout_randomized_pit_coverage():
    rng = np.random.default_rng(0)
    params = {k: np.array([[v]]) for k, v in TRUE.items()}
    pits = []
    for seed in range(20):
        rfm = simulate_split(1000, 9000 + seed)
        cols = SPEC.customer_columns(rfm)
        obs = rfm["frequency_holdout"].to_numpy()
        k = np.arange(obs.max() + 1, dtype=np.float64)
        pmf = SPEC.probability_of_purchases(params, cols, 39.0, k)[0]  # (n, K)
        cdf = np.cumsum(pmf, axis=1)
        idx = np.arange(obs.size)
        below = np.where(obs > 0, cdf[idx, np.maximum(obs - 1, 0)], 0.0)
        at = pmf[idx, obs]
        pits.append(below + rng.random(obs.size) * at)
    u = np.concatenate(pits)
    inside = np.mean((u > 0.05) & (u < 0.95))
    assert 0.85 <= inside <= 0.95, inside
    # deciles of the PIT: each within 1.5 points of 10% (20,000 customers: sd 0.2 points)
    share = np.histogram(u, bins=10, range=(0, 1))[0] / u.size
    assert np.all(np.abs(share - 0.1) < 0.015), share
