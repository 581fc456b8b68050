"""The example model (tests/example_model): its closed forms against numerical integration and
simulation, its fit, and the layers above ``models/`` (CLV, equity, backtest) working on it
with no edit outside its own files."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats

import clvkit
from clvkit.datasets import cdnow_calibration_summary, cdnow_transactions
from clvkit.models import registry
from contract import checks

LAM, MU = 0.3, 0.05
#: histories (x, t_x, T): none, recent, lapsed, long lapsed, heavy
HIST = np.array([[0, 0.0, 10.0], [3, 9.5, 10.0], [3, 2.0, 10.0], [1, 1.0, 40.0], [12, 30.0, 31.0]])


@pytest.fixture(scope="module")
def example() -> type:
    with checks.registry_restored():
        from example_model.model import PoissonExponential

        registry.register(PoissonExponential)
        yield PoissonExponential


@pytest.fixture(scope="module")
def spec(example):
    return example.spec


def _params(lam: float = LAM, mu: float = MU) -> dict[str, np.ndarray]:
    return {"lam": np.array([[lam]]), "mu": np.array([[mu]])}


def _cols(hist: np.ndarray = HIST) -> dict[str, np.ndarray]:
    return {"frequency": hist[:, 0], "recency": hist[:, 1], "T": hist[:, 2]}


def _alive_term(x: float, T: float) -> float:
    return LAM**x * math.exp(-LAM * T) * math.exp(-MU * T)  # x purchases, alive at T


def _dead_term(x: float, tx: float, T: float) -> float:
    """x purchases and death at tau in (t_x, T), integrated numerically."""
    f = lambda tau: LAM**x * math.exp(-LAM * tau) * MU * math.exp(-MU * tau)  # noqa: E731
    return integrate.quad(f, tx, T, epsabs=0, epsrel=1e-13)[0]


def test_loglik_and_probability_alive_match_integration(spec):
    ll = spec.loglik(_params(), _cols())[0]
    pa = spec.probability_alive(_params(), _cols(), np.array([0.0, 5.0]))[0]
    for i, (x, tx, T) in enumerate(HIST):
        alive, dead = _alive_term(x, T), _dead_term(x, tx, T)
        assert ll[i] == pytest.approx(math.log(alive + dead), rel=1e-12)
        assert pa[i, 0] == pytest.approx(alive / (alive + dead), rel=1e-12)
        assert pa[i, 1] == pytest.approx(alive / (alive + dead) * math.exp(-5 * MU), rel=1e-12)
    # a customer who bought at T is alive; a new customer too
    assert pa[1, 0] > 0.97 and spec.probability_alive(_params(), _cols(HIST[:1] * 0), [0.0])[
        0, 0, 0
    ] == pytest.approx(1.0, abs=1e-15)


def test_purchases_match_integration(spec):
    t = 7.0
    pa = spec.probability_alive(_params(), _cols(), np.array([0.0]))[0, :, 0]
    k = np.arange(8.0)
    pmf = spec.probability_of_purchases(_params(), _cols(), t, k)[0]
    cum = spec.expected_purchases(_params(), _cols(), np.array([t]))[0, :, 0]
    for n in range(8):
        # alive at T: dies at u in (0, t) after n purchases, or survives t with n purchases
        died = integrate.quad(
            lambda u, n=n: MU * math.exp(-MU * u) * stats.poisson.pmf(n, LAM * u),
            0,
            t,
            epsabs=0,
            epsrel=1e-12,
        )[0]
        given_alive = died + math.exp(-MU * t) * stats.poisson.pmf(n, LAM * t)
        want = pa * given_alive + (1 - pa) * (n == 0)
        np.testing.assert_allclose(pmf[:, n], want, rtol=1e-10)
    rate = integrate.quad(lambda u: LAM * math.exp(-MU * u), 0, t, epsrel=1e-13)[0]
    np.testing.assert_allclose(cum, pa * rate, rtol=1e-12)


def test_pmf_tail_and_long_histories_match_mpmath(spec):
    """Far in the tail (n up to 150 purchases, probabilities down to 1e-60) and for long lapsed
    histories, the log-space forms agree with 40-digit integration by mpmath."""
    import mpmath as mp

    mp.mp.dps = 40
    lam, mu, t = 2.0, 0.05, 30.0
    hist = np.array([[40.0, 20.0, 21.0], [5.0, 1.0, 400.0]])
    k = np.array([0.0, 1.0, 60.0, 150.0])
    pmf = spec.probability_of_purchases(_params(lam, mu), _cols(hist), t, k)[0]
    pa = spec.probability_alive(_params(lam, mu), _cols(hist), np.array([0.0]))[0, :, 0]
    ll = spec.loglik(_params(lam, mu), _cols(hist))[0]
    L, M = mp.mpf(lam), mp.mpf(mu)
    for i, (x, tx, T) in enumerate(hist):
        alive = L**x * mp.exp(-(L + M) * T)
        dead = mp.quad(lambda u, x=x: L**x * mp.exp(-L * u) * M * mp.exp(-M * u), [tx, T])
        assert ll[i] == pytest.approx(float(mp.log(alive + dead)), rel=1e-13)
        p_alive = alive / (alive + dead)
        assert pa[i] == pytest.approx(float(p_alive), rel=1e-12, abs=1e-300)
        for j, n in enumerate(k):
            pois = lambda u, n=n: mp.exp(-L * u) * (L * u) ** n / mp.factorial(n)  # noqa: E731
            died = mp.quad(lambda u, pois=pois: M * mp.exp(-M * u) * pois(u), [0, t / 2, t])
            given = died + mp.exp(-M * t) * pois(t)
            want = p_alive * given + (1 - p_alive) * (n == 0)
            assert pmf[i, j] == pytest.approx(float(want), rel=1e-10, abs=1e-300)
    assert pmf[0, 3] < 1e-22 and pa[1] < 1e-10  # the tail and the long-lapsed are tiny


def test_loglik_gradient_matches_finite_differences():
    from example_model.spec import loglik_grad

    x, tx, T = HIST.T
    w = np.array([3.0, 1.0, 2.0, 5.0, 1.0])
    theta = np.log([LAM, MU])
    value, grad = loglik_grad(theta, x, tx, T, w)
    ll = lambda th: loglik_grad(th, x, tx, T, w)[0]  # noqa: E731
    h = 1e-6
    num = [(ll(theta + h * e) - ll(theta - h * e)) / (2 * h) for e in np.eye(2)]
    np.testing.assert_allclose(grad, num, rtol=1e-7)
    from example_model.spec import loglik_terms

    assert value == pytest.approx(float(w @ loglik_terms(LAM, MU, x, tx, T)), rel=1e-14)


def test_simulated_histories_calibrate_and_fit_recovers_parameters(spec, example):
    """New customers simulated with the model's own generative process over their observation
    windows: P(alive | history) is calibrated (sum of the probabilities vs the number alive,
    within 4 standard deviations) and the MLE recovers (lam, mu) within 4 standard errors."""
    n = 20_000
    rng = np.random.default_rng(2026)
    T = rng.uniform(20.0, 52.0, n)
    fut = spec.simulate(_params(), spec.new_customer_columns(n), T, rng)
    x = np.zeros(n)
    tx = np.zeros(n)
    for b in fut.batches:
        owner = b.owner
        np.add.at(x, b.customer, b.count)
        np.maximum.at(tx, b.customer[owner], b.times)
    alive = np.zeros(n, dtype=bool)
    alive[fut.alive_customer[fut.death == np.inf]] = True
    rfm = pd.DataFrame({"frequency": x, "recency": tx, "T": T})
    rfm.attrs["time_unit"] = "W"
    p = spec.probability_alive(_params(), spec.customer_columns(rfm), np.array([0.0]))[0, :, 0]
    sd = math.sqrt(float(np.sum(p * (1 - p))))
    assert abs(p.sum() - alive.sum()) <= 4 * sd, (p.sum(), alive.sum(), sd)
    fit = example().fit(rfm, method="mle")
    summ = fit.summary()
    for name, true in (("lam", LAM), ("mu", MU)):
        assert abs(summ.loc[name, "mean"] - true) <= 4 * summ.loc[name, "sd"], summ
    assert fit.n_customers_ == n and fit.time_unit_ == "W"


def test_fit_on_cdnow(example):
    """MLE and MAP on CDNOW: the objective is the summed per-customer loglik, the MAP is the
    MLE pulled slightly by the LogNormal(0, 5) priors; bad input is refused."""
    rfm = cdnow_calibration_summary()
    mle = example().fit(rfm, method="mle")
    lam, mu = float(mle.posterior_["lam"].item()), float(mle.posterior_["mu"].item())
    assert lam == pytest.approx(0.0749, abs=5e-4) and mu == pytest.approx(0.0600, abs=5e-4)
    cols = example.spec.customer_columns(rfm)
    total = example.spec.loglik(_params(lam, mu), cols).sum()
    assert mle.log_likelihood_ == pytest.approx(total, rel=1e-12)
    # the MLE is a maximum: moving either rate by 1% lowers the loglik
    for dl, dm in ((1.01, 1), (0.99, 1), (1, 1.01), (1, 0.99)):
        assert example.spec.loglik(_params(lam * dl, mu * dm), cols).sum() < total
    lap = example().fit(rfm, method="laplace", chains=2, draws=500, random_seed=3)
    assert dict(lap.posterior_.sizes) == {"chain": 2, "draw": 500}
    sd = mle.summary()["sd"]
    assert abs(float(lap.posterior_["lam"].mean()) - lam) <= 0.5 * sd["lam"]
    assert float(lap.posterior_["mu"].std()) == pytest.approx(sd["mu"], rel=0.15)
    with pytest.raises(clvkit.ClvkitError, match="Suggestion"):
        example().fit(rfm, method="nuts")
    no_unit = rfm.copy()
    no_unit.attrs = {}
    with pytest.raises(clvkit.ClvkitError, match="time_unit"):
        example().fit(no_unit, method="mle")
    bad = rfm.copy()
    bad.iloc[0, bad.columns.get_loc("recency")] = 1e6
    with pytest.raises(clvkit.ClvkitError, match="Suggestion"):
        example().fit(bad, method="mle")


GG_POINT = {"p": 6.25, "q": 3.74, "v": 15.44}


def test_customer_value_expected(example):
    """Undiscounted expected CLV is expected spend times expected purchases, customer by
    customer; equity is its sum; a new customer gets its first purchase plus its repeats."""
    rfm = cdnow_calibration_summary()
    model = example().fit(rfm, method="mle")
    before = rfm.copy(deep=True)
    res = clvkit.customer_value(
        model,
        GG_POINT,
        rfm,
        horizon=52.0,
        period="7D",
        discount_rate_per_period=0.0,
        method="expected",
    )
    params = {n: model.posterior_[n].to_numpy().reshape(1, 1) for n in ("lam", "mu")}
    cols = example.spec.customer_columns(rfm)
    purchases = example.spec.expected_purchases(params, cols, np.array([52.0]))[0, :, 0]
    gg = registry.get("gamma_gamma").spec
    gparams = {k: np.array([[v]]) for k, v in GG_POINT.items()}
    spend = gg.expected_spend(gparams, gg.customer_columns(rfm))[0]
    assert res.equity.item() == pytest.approx(float(spend @ purchases), rel=1e-9)
    pd.testing.assert_frame_equal(rfm, before)
    assert rfm.attrs == before.attrs
    new = example.spec.expected_purchases(params, example.spec.new_customer_columns(1), [52.0])
    prior_spend = GG_POINT["p"] * GG_POINT["v"] / (GG_POINT["q"] - 1)
    assert res.new_customer.item() == pytest.approx(prior_spend * (1 + new.item()), rel=1e-9)


def test_customer_value_simulate_matches_expected(example):
    """Equity simulated over 200 identical draws (independent futures) agrees with the
    expected equity within 4 standard errors; one seed gives one answer."""
    rfm = cdnow_calibration_summary()
    model = example().fit(rfm, method="mle")
    S = 200
    post = {n: np.full(S, float(model.posterior_[n].item())) for n in ("lam", "mu")}
    spend = {k: np.full(S, v) for k, v in GG_POINT.items()}
    kw = dict(horizon=52.0, period="7D", discount_rate_per_period=0.0)
    exp = clvkit.customer_value(post, spend, rfm, method="expected", **kw).equity.values.ravel()
    sim = clvkit.customer_value(post, spend, rfm, method="simulate", random_seed=5, **kw)
    e = sim.equity.values.ravel()
    assert e.size == S and np.ptp(exp) == pytest.approx(0.0, abs=1e-6)
    se = e.std(ddof=1) / math.sqrt(S)
    assert abs(e.mean() - exp[0]) <= 4 * se, (e.mean(), exp[0], se)
    again = clvkit.customer_value(post, spend, rfm, method="simulate", random_seed=5, **kw)
    np.testing.assert_array_equal(again.equity.values, sim.equity.values)


def test_backtest(example):
    """The backtest predicts each customer's holdout purchases with the example model's
    expected_purchases over the 39-week holdout, with predictive intervals around them."""
    rfm = cdnow_calibration_summary()
    model = example().fit(rfm, method="mle")
    res = clvkit.backtest(
        cdnow_transactions(),
        calibration_end="1997-09-30",
        observation_end="1998-06-30",
        transactions_model=model,
        n_samples=200,
        random_seed=0,
    )
    assert res.conditional_expectations["n_customers"].tolist() == [
        1411,
        439,
        214,
        100,
        62,
        38,
        29,
        64,
    ]
    params = {n: model.posterior_[n].to_numpy().reshape(1, 1) for n in ("lam", "mu")}
    cal = res.customers
    split = res.rfm.loc[cal.index]  # the backtest's own calibration table (unrounded)
    assert (split["duration_holdout"] == 39.0).all()
    cols = example.spec.customer_columns(split)
    want = example.spec.expected_purchases(params, cols, np.array([39.0]))[0, :, 0]
    np.testing.assert_allclose(cal["predicted"].to_numpy(), want, rtol=1e-10)
    assert (0 <= cal["lower"]).all() and (cal["lower"] <= cal["upper"]).all()
    assert cal["pit"].between(0, 1).all()
    mae = float(np.mean(np.abs(cal["actual"] - cal["predicted"])))
    assert res.metrics.loc["purchases", "mae"] == pytest.approx(mae, rel=1e-12)


@pytest.fixture(scope="module")
def fixed_fee() -> type:
    with checks.registry_restored():
        from example_model.fixed_fee import FixedFee

        yield FixedFee


def test_fixed_fee_spend_model_values_customers(fixed_fee):
    """A spend model with a constant fee per purchase (no spend column, nothing to learn)
    plugs into customer_value unchanged: with no discounting, equity is fee x expected
    purchases in the horizon, a new customer is worth fee x (1 + E[X(H)]), and the simulated
    equity agrees within 4 standard errors."""
    rfm = cdnow_calibration_summary().drop(columns="monetary_value")
    fee = 12.5
    spend = fixed_fee.from_params(fee=fee)
    bg_point = {"r": 0.2426, "alpha": 4.4137, "a": 0.793, "b": 2.4262}
    bg = registry.get("bgnbd").from_params(**bg_point, time_unit="W")
    kw = dict(horizon=52.0, period="7D", discount_rate_per_period=0.0)
    res = clvkit.customer_value(bg, spend, rfm, method="expected", **kw)
    purchases = bg.expected_purchases(rfm, t=52.0, return_draws=True).values.ravel()
    assert res.equity.item() == pytest.approx(fee * purchases.sum(), rel=1e-9)
    new = bg.expected_purchases_new_customer(52.0, return_draws=True).item()
    assert res.new_customer.item() == pytest.approx(fee * (1 + new), rel=1e-12)
    S = 200
    post = {n: np.full(S, v) for n, v in bg_point.items()}
    sim = clvkit.customer_value(post, {"fee": np.full(S, fee)}, rfm, method="simulate",
                                random_seed=3, **kw)  # fmt: skip
    e = sim.equity.values.ravel()
    se = e.std(ddof=1) / math.sqrt(S)
    assert abs(e.mean() - res.equity.item()) <= 4 * se, (e.mean(), res.equity.item(), se)
    assert set(np.unique(e / fee - np.round(e / fee))) <= {0.0}  # every purchase pays the fee


def test_fixed_fee_passes_the_spend_contract_checks(fixed_fee):
    """The spec-level spend checks of the contract suite (shapes, new customers, seeds,
    simulated mean spend); the estimator-level ones need a fit, which a given fee has not."""
    rfm = cdnow_calibration_summary().iloc[[0, 1, 2, 3, 10, 20, 57, 100]]
    spec = fixed_fee.spec
    params = checks.jitter_draws(spec, {"fee": 12.5}, 4, np.random.default_rng(0))
    cols = spec.customer_columns(rfm)
    checks.check_spend_spec(spec, params, cols)
    checks.check_spend_sample_mean(spec, params, spec.customer_columns(rfm[rfm["frequency"] > 0]))
