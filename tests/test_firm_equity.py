"""The firm's customer equity: existing base + future cohorts (issue 18)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import clvkit
from clvkit.errors import ClvkitError
from clvkit.evaluation.common import model_draws
from clvkit.evaluation.tracking import new_customer_alive, new_customer_expected
from clvkit.firm import AcquisitionModel, AcquisitionPlan, firm_equity

BG = {"r": 0.2426, "alpha": 4.4137, "a": 0.793, "b": 2.4262}
GG = {"p": 6.2488, "q": 3.7446, "v": 15.4477}
FLOW = {"horizon": "50W", "period": "4W", "annual_discount_rate": 0.1}


def _point(params):
    return xr.Dataset({k: (("chain", "draw"), [[v]]) for k, v in params.items()})


@pytest.fixture(scope="module")
def rfm():
    return clvkit.datasets.cdnow_calibration_summary()


@pytest.fixture(scope="module")
def fits(rfm):
    bg = clvkit.BetaGeo().fit(rfm, method="laplace", chains=1, draws=120, random_seed=1)
    gg = clvkit.GammaGamma().fit(rfm, method="laplace", chains=1, draws=80, random_seed=2)
    return bg, gg


@pytest.mark.parametrize("method", ["expected", "simulate"])
@pytest.mark.parametrize("acquisition", [None, "zeros"])
def test_zero_acquisition_is_customer_value_draw_for_draw(fits, rfm, method, acquisition):
    bg, gg = fits
    acq = AcquisitionPlan([0] * 13) if acquisition == "zeros" else None
    fe = firm_equity(bg, gg, rfm, acq, **FLOW, method=method, random_seed=7, cost_per_period=0.5)
    cv = clvkit.customer_value(bg, gg, rfm, **FLOW, method=method, random_seed=7,
                               cost_per_period=0.5)  # fmt: skip
    assert np.array_equal(fe.total.values, cv.equity.values)
    assert np.array_equal(fe.existing.values, cv.equity.values)
    assert float(np.abs(fe.future.values).max()) == 0.0
    assert fe.total.shape == (1, 120)


def _closed_form(counts, cac, margin, horizon, period, rate_year):
    """sum_k N_k disc(t_k) (V_new(H - t_k) - CAC), V_new from new_customer_expected and the
    spend model's expected spend, each cohort on its own period grid."""
    spec, tp = model_draws(BG, "purchase", "bg")
    sspec, sp = model_draws(GG, "spend", "gg")
    spend0 = sspec.expected_spend(sp, sspec.new_customer_columns(1))[0, 0]
    r = (1 + rate_year) ** (period * 7 / 365.25) - 1  # per period of `period` weeks
    total = 0.0
    for k, n in enumerate(counts, start=1):
        t_k = (k - 1) * period
        h = horizon - t_k
        ends = np.minimum(np.arange(1, int(np.ceil(h / period - 1e-9)) + 1) * period, h)
        F = new_customer_expected(spec, tp, np.concatenate([[0.0], ends]))[0]
        repeat = np.sum((1 + r) ** -(ends / period) * np.diff(F))
        v_new = margin * spend0 * (1 + repeat)
        total += n * (1 + r) ** -(k - 1) * (v_new - cac)
    return total


def test_future_part_closed_form(rfm):
    counts = [120, 80, 0, 50, 200, 10, 30, 0, 5, 60, 70, 90, 40]  # 13 periods of 4W in 50W
    fe = firm_equity(_point(BG), _point(GG), rfm, AcquisitionPlan(counts), **FLOW,
                     margin=0.3, acquisition_cost=25.0)  # fmt: skip
    want = _closed_form(counts, 25.0, 0.3, 50.0, 4.0, 0.1)
    assert fe.future.item() == pytest.approx(want, rel=1e-10)
    assert want == pytest.approx(-3655.6432, abs=1e-3)
    # plan counts land in their own periods (cv = 0: exactly)
    np.testing.assert_array_equal(fe.new_customers.values[0, 0], counts)


def test_closed_form_with_costs(rfm):
    """A cost per period alive: the cohort of period k pays it in each of its periods whose
    start finds it alive (P(alive) of a new customer at ages 0, 4, 8, ...)."""
    counts = [100.0] * 13
    fe = firm_equity(_point(BG), _point(GG), rfm, AcquisitionPlan(counts), **FLOW,
                     cost_per_period=2.0)  # fmt: skip
    spec, tp = model_draws(BG, "purchase", "bg")
    r = 1.1 ** (28 / 365.25) - 1
    cost = 0.0
    for k in range(1, 14):
        h = 50.0 - (k - 1) * 4
        starts = np.arange(0, h, 4.0)
        ends = np.minimum(starts + 4, h)
        G = new_customer_alive(spec, tp, starts)[0]
        cost += 100 * (1 + r) ** -(k - 1) * 2.0 * np.sum((1 + r) ** -(ends / 4) * G)
    want = _closed_form(counts, 0.0, 1.0, 50.0, 4.0, 0.1) - cost
    assert fe.future.item() == pytest.approx(want, rel=1e-10)


@pytest.mark.parametrize("discounting", ["discrete", "continuous"])
def test_cashflows_add_up_to_equity(fits, rfm, discounting):
    bg, gg = fits
    fe = firm_equity(bg, gg, rfm, AcquisitionPlan([40] * 13, cv=0.3, random_seed=1), **FLOW,
                     discounting=discounting, margin=0.4, cost_per_period=0.3,
                     acquisition_cost=12.0, random_seed=3)  # fmt: skip
    f = fe.flows()
    net = (f.attrs["margin"] * (f.existing_revenue + f.future_revenue) - f.existing_cost
           - f.future_cost - f.acquisition).sum("period")  # fmt: skip
    # discrete: the same weights as customer_value (1e-10); continuous: per-period Gauss rules
    # against customer_value's one rule over the horizon
    rtol = 1e-10 if discounting == "discrete" else 1e-6
    np.testing.assert_allclose(net.values, fe.total.values, rtol=rtol)
    table = fe.cashflows(0.9)
    assert list(table.index) == list(range(1, 14))
    assert table["net_mean"].sum() == pytest.approx(float(fe.total.mean()), rel=rtol)
    assert table["end"].iloc[-1] == 50.0 and table["start"].iloc[-1] == 48.0
    assert (table["acquisition_spend_lower"] <= table["acquisition_spend_upper"]).all()
    s = fe.summary(0.9)
    assert s.loc["total", "mean"] == pytest.approx(
        s.loc["existing", "mean"] + s.loc["future", "mean"], rel=1e-12
    )


def test_acquisition_model_periods_map_to_cashflow_periods(fits, rfm):
    """A weekly acquisition model in 4-week cash-flow periods: 4 weeks per period, the 50th
    week (midpoint 49.5 < 50) in the last, cut period of 2 weeks."""
    bg, gg = fits
    weekly = pd.Series(np.full(30, 10))
    model = AcquisitionModel(trend=None).fit(weekly, method="map", period="W")
    mu = float(model.forecast(1).values.ravel()[0])
    fe = firm_equity(bg, gg, rfm, model, **FLOW, random_seed=1)
    per = fe.new_customers.values[0, 0]
    np.testing.assert_allclose(per[:-1], 4 * mu, rtol=1e-12)
    np.testing.assert_allclose(per[-1], 2 * mu, rtol=1e-12)


def test_bad_acquisition_refused(fits, rfm):
    bg, gg = fits
    with pytest.raises(ClvkitError, match="'acquisition'"):
        firm_equity(bg, gg, rfm, [10, 20], **FLOW)
    model = AcquisitionModel(trend=None).fit([10] * 20, method="map")
    with pytest.raises(ClvkitError, match="period"):
        firm_equity(bg, gg, rfm, model, **FLOW)
    with pytest.raises(ClvkitError, match="'horizon'"):
        firm_equity(bg, gg, rfm, None, horizon=-1, period="4W", annual_discount_rate=0.1)


def _simulated_firm(r: int, n: int = 3000, draws: int = 200):
    """A firm acquiring at a constant rate over 104 weeks (BG/NBD + Gamma-Gamma truth): the
    first 52 weeks are observed, the next 52 are the future. Returns the realized revenue of
    the future weeks (existing and new customers) and the 90% predictive interval of
    ``firm_equity(method="simulate")`` at a zero discount rate (so equity is revenue)."""
    sim = clvkit.datasets.simulate(
        n, r=0.25, alpha=4.0, a=0.8, b=2.5, p=6.0, q=4.0, v=15.0, acquisition_periods=104,
        observation_periods=104, time_unit="W", random_seed=r,
    )  # fmt: skip
    log = sim.transactions
    end = sim.start + pd.Timedelta(weeks=52) - pd.Timedelta(days=1)
    hist = log[log["date"] <= end]
    actual = log.loc[log["date"] > end, "amount"].sum()
    rfm = clvkit.rfm_summary(hist, amount="amount", observation_end=end, time_unit="W")
    bg = clvkit.BetaGeo().fit(rfm, method="laplace", chains=1, draws=draws, random_seed=r)
    gg = clvkit.GammaGamma().fit(rfm, method="laplace", chains=1, draws=draws, random_seed=r)
    counts = clvkit.firm.acquisition_counts(hist, period="W", start=sim.start, end=end)
    am = AcquisitionModel(trend="linear").fit(
        counts, method="laplace", chains=1, draws=draws, random_seed=r
    )
    fe = firm_equity(bg, gg, rfm, am, horizon="52W", period="W", annual_discount_rate=0.0,
                     method="simulate", random_seed=r)  # fmt: skip
    v = fe.total.values.ravel()
    lo, hi = np.quantile(v, [0.05, 0.95])
    return actual, lo, hi, v.mean()


@pytest.mark.slow
def test_predictive_revenue_coverage_on_a_simulated_firm():
    """The 90% predictive interval of the next 52 weeks' revenue (existing + future customers)
    covers the realized revenue in 92 of 100 simulated firms (about 80 s; Laplace fits of the
    purchase, spend and acquisition models, 200 draws); mean prediction / actual 0.998."""
    hits, ratio = [], []
    for r in range(100):
        actual, lo, hi, mean = _simulated_firm(r)
        hits.append(lo <= actual <= hi)
        ratio.append(mean / actual)
    coverage = float(np.mean(hits))
    assert 0.85 <= coverage <= 0.95
    assert coverage == pytest.approx(0.92, abs=1e-12)
    assert np.mean(ratio) == pytest.approx(1.0, abs=0.01)


@pytest.mark.parametrize("cells", [None, 600])
@pytest.mark.parametrize("discounting", ["discrete", "continuous"])
def test_simulated_future_is_unbiased(fits, rfm, monkeypatch, cells, discounting):
    """Whole planned counts: the simulated future of each draw (new customers' purchases cut
    at their remaining horizon, discounted at firm time, costs while alive) averages to the
    expected future within 4 Monte Carlo standard errors, in one block or in blocks of 5
    customers (600 pairs / 120 draws)."""
    if cells is not None:
        monkeypatch.setattr("clvkit.firm.flows.SIM_CELLS", cells)
    bg, gg = fits
    fe = firm_equity(bg, gg, rfm, AcquisitionPlan([30] * 13), **FLOW, discounting=discounting,
                     method="simulate", cost_per_period=0.5, acquisition_cost=5.0,
                     random_seed=11)  # fmt: skip
    diff = (fe.future - fe.expected_future).values.ravel()
    z = diff.mean() / (diff.std(ddof=1) / np.sqrt(diff.size))
    assert abs(z) < 4, z
    assert fe.future.std() > 0
    np.testing.assert_array_equal(fe.new_customers.values[0, 0], [30.0] * 13)


def test_stopped_acquisition_adds_nothing_and_inputs_unchanged(fits, rfm):
    """CDNOW's acquisition stopped after week 12: its model forecasts zero, so the firm's
    equity is the existing base's, draw for draw; the caller's table is not modified."""
    counts = clvkit.firm.acquisition_counts(clvkit.datasets.cdnow_transactions(), period="W")
    model = AcquisitionModel().fit(counts, method="map")
    bg, gg = fits
    before = rfm.copy(deep=True)
    fe = firm_equity(bg, gg, rfm, model, **FLOW, random_seed=5)
    cv = clvkit.customer_value(bg, gg, rfm, **FLOW, random_seed=5)
    assert np.array_equal(fe.total.values, cv.equity.values)
    assert float(np.abs(fe.new_customers.values).max()) == 0.0
    assert fe.settings["acquisition"].startswith("No customer was acquired in the last 66 of 78")
    pd.testing.assert_frame_equal(rfm, before)
    assert rfm.attrs == before.attrs


def test_weekly_plan_in_four_week_periods(fits, rfm):
    bg, gg = fits
    weekly = np.arange(1.0, 51.0)  # 50 weeks planned, one count per week
    fe = firm_equity(bg, gg, rfm, AcquisitionPlan(weekly, period="W"), **FLOW, random_seed=1)
    per = fe.new_customers.values[0, 0]
    want = [weekly[4 * k : 4 * k + 4].sum() for k in range(13)]  # the last period: weeks 49-50
    np.testing.assert_array_equal(per, want)
    assert per.sum() == weekly.sum() == 1275.0
