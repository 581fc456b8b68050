"""The backtest, its plots and the frequency check work for a purchase model they have never seen.

The spec of the example model (tests/example_model/spec.py: Poisson purchases at rate ``lam``
while alive, an exponential lifetime at rate ``mu``), not registered here: nothing in
``clvkit.evaluation`` or ``clvkit.plots`` knows it; it reaches them as a fitted object with
``spec`` and ``posterior_``.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import clvkit
from clvkit import plots
from example_model.spec import PoissonExponentialSpec

LAM, MU = 0.15, 0.02  # purchases per week while alive; death rate per week


class PoissonExp:
    """A 'fitted' model as the layers above models/ see it: a spec and posterior draws."""

    spec = PoissonExponentialSpec()

    def __init__(self, lam: np.ndarray, mu: np.ndarray) -> None:
        self.posterior_ = xr.Dataset(
            {"lam": (("chain", "draw"), lam[None, :]), "mu": (("chain", "draw"), mu[None, :])},
            attrs={"time_unit": "W"},
        )


def _toy_log(n: int, seed: int) -> pd.DataFrame:
    """Customers born uniformly over 12 weeks, purchases from the toy process, as a daily log."""
    rng = np.random.default_rng(seed)
    spec = PoissonExponentialSpec()
    births = np.floor(rng.random(n) * 84) / 7  # whole days, in weeks
    prm = {"lam": np.array([[LAM]]), "mu": np.array([[MU]])}
    fut = spec.simulate(prm, spec.new_customer_columns(n), 78.0 - births, rng)
    batches = list(fut.batches)
    owner = np.concatenate([b.customer[b.owner] for b in batches])
    times = np.concatenate([b.times for b in batches])
    cust = np.concatenate([np.arange(n), owner])
    weeks = np.concatenate([births, births[owner] + times])
    start = pd.Timestamp("2024-01-01")
    dates = start + pd.to_timedelta(np.floor(weeks * 7), unit="D")
    return pd.DataFrame({"customer_id": cust, "date": dates}).sort_values(["customer_id", "date"])


@pytest.fixture(scope="module")
def toy_result():
    log = _toy_log(1500, seed=1)
    model = PoissonExp(np.array([LAM]), np.array([MU]))
    res = clvkit.backtest(log, calibration_end="2024-09-29", observation_end="2025-06-29",
                          transactions_model=model, n_samples=200, random_seed=2)  # fmt: skip
    return model, res


def test_contract_primitives_of_the_toy_are_consistent():
    # the toy's closed forms agree with its own simulation (so the checks below test clvkit)
    spec = PoissonExponentialSpec()
    prm = {"lam": np.full((20000, 1), LAM), "mu": np.full((20000, 1), MU)}
    cols = {"frequency": np.array([3.0]), "recency": np.array([10.0]), "T": np.array([20.0])}
    fut = spec.simulate(prm, cols, 30.0, np.random.default_rng(0))
    counts = np.zeros(20000)
    for b in fut.batches:
        counts[b.draw] = b.count
    one = {k: v[:1] for k, v in prm.items()}
    pmf = spec.probability_of_purchases(one, cols, 30.0, np.arange(60))[0, 0]
    assert pmf.sum() == pytest.approx(1.0, abs=1e-9)
    mean = (np.arange(60) * pmf).sum()
    exp = spec.expected_purchases(one, cols, 30.0)[0, 0, 0]
    assert mean == pytest.approx(exp, rel=1e-9)
    assert abs(counts.mean() - exp) < 4 * counts.std() / np.sqrt(counts.size)


def test_backtest_of_an_unregistered_model(toy_result):
    model, res = toy_result
    spec = model.spec
    cust = res.customers
    # predicted = the spec's conditional expectation over each customer's holdout, exactly
    prm = {"lam": np.array([[LAM]]), "mu": np.array([[MU]])}
    cols = spec.customer_columns(res.rfm)
    d = float(res.rfm["duration_holdout"].iloc[0])
    exact = spec.expected_purchases(prm, cols, d)[0, :, 0]
    np.testing.assert_allclose(cust["predicted"], exact, rtol=1e-12)
    # at the truth the model predicts the holdout total (day merges lose ~1% of purchases)
    m = res.metrics.loc["purchases"]
    assert abs(m["aggregate_error_pct"]) < 8
    n = len(cust)
    for level in (50, 80, 90):
        se = np.sqrt(level / 100 * (1 - level / 100) / n)
        assert abs(m[f"coverage_{level}"] - level / 100) < 4 * se + 0.03
    # the frequency check: 8 bins - 1 - 2 parameters; expected counts sum to the customers
    ppc = res.frequency_ppc
    assert ppc.attrs["dof"] == 5
    assert ppc["expected"].sum() == pytest.approx(n, rel=1e-9)
    # retention has no closed form here: the simulated cohorts' mean, and it says so
    assert res.retention.attrs["retention"] == "simulated"
    assert res.tracking.attrs["model"] == "poisson_exp"
    last = res.tracking.iloc[-1]
    assert abs(last["predicted_cumulative"] / last["actual_cumulative"] - 1) < 0.08
    # (no heterogeneity: the band is narrow, so the day merges can put the actual outside it)
    assert last["lower_cumulative"] < last["predicted_cumulative"] < last["upper_cumulative"]
    ok = res.retention["n_eligible"] > 0
    rt = res.retention[ok]
    assert (rt["predicted"] <= rt["expected_alive"] + 1e-12).all()


def test_plots_of_an_unregistered_model(toy_result):
    model, res = toy_result
    for draw in (plots.plot_tracking, plots.plot_retention, plots.plot_frequency_ppc,
                 plots.plot_conditional_expectations, plots.plot_pit):  # fmt: skip
        ax = draw(res)
        assert ax.has_data()
        plt.close(ax.figure)
    ax = plots.plot_probability_alive_matrix(model, T=39.0, max_frequency=5, n_recency=4)
    grid = np.asarray(ax.get_images()[0].get_array())
    plt.close(ax.figure)
    prm = {"lam": np.array([[LAM]]), "mu": np.array([[MU]])}
    cols = {"frequency": np.array([2.0]), "recency": np.array([13.0]), "T": np.array([39.0])}
    assert grid[2, 1] == pytest.approx(
        model.spec.probability_alive(prm, cols, [0.0])[0, 0, 0], rel=1e-12
    )
