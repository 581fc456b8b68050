"""Sensitivities of the firm's equity, CLV:CAC and payback (issue 18)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import clvkit
from clvkit.errors import ClvkitError
from clvkit.evaluation.common import model_draws
from clvkit.evaluation.tracking import new_customer_alive, new_customer_expected
from clvkit.firm import AcquisitionPlan, firm_equity
from clvkit.firm.sensitivity import retention_params, sensitivities

BG = {"r": 0.2426, "alpha": 4.4137, "a": 0.793, "b": 2.4262}
GG = {"p": 6.2488, "q": 3.7446, "v": 15.4477}
COUNTS = [120, 80, 0, 50, 200, 10, 30, 0, 5, 60, 70, 90, 40]
KW = {"horizon": "50W", "period": "4W", "annual_discount_rate": 0.1}
R4 = 1.1 ** (28 / 365.25) - 1  # rate per 4-week period


def _point(params):
    return xr.Dataset({k: (("chain", "draw"), [[v]]) for k, v in params.items()})


@pytest.fixture(scope="module")
def rfm():
    return clvkit.datasets.cdnow_calibration_summary()


def _fe(rfm, bg=BG, counts=COUNTS, margin=0.3, cac=25.0):
    return firm_equity(_point(bg), _point(GG), rfm, AcquisitionPlan(counts), **KW,
                       margin=margin, acquisition_cost=cac)  # fmt: skip


@pytest.fixture(scope="module")
def base(rfm):
    fe = _fe(rfm)
    return fe, fe.sensitivities()


def test_table_sorted_by_absolute_effect(base):
    fe, table = base
    assert list(table.columns) == ["change", "equity_mean", "delta_mean", "delta_lower",
                                   "delta_upper", "delta_pct", "p_positive"]  # fmt: skip
    assert set(table.index) == {"retention", "frequency", "spend", "margin",
                                "acquisition_volume", "cac"}  # fmt: skip
    assert (np.diff(table["delta_mean"].abs().to_numpy()) <= 0).all()
    assert table.attrs["baseline"] == pytest.approx(fe.total.item(), rel=1e-10)
    # point posterior: no spread of a change
    assert (table["delta_lower"] == table["delta_upper"]).all()


def test_spend_lever_is_revenue_times_1_1(base):
    fe, table = base
    acquisition = 25.0 * sum(n * (1 + R4) ** -k for k, n in enumerate(COUNTS))
    # no cost per period: revenue parts = equity + acquisition spend
    want = 0.1 * (fe.total.item() + acquisition)
    assert table.loc["spend", "delta_mean"] == pytest.approx(want, rel=1e-10)
    assert want == pytest.approx(3554.6818, abs=1e-3)


def test_margin_lever_recomputed(rfm, base):
    fe, table = base
    again = _fe(rfm, margin=0.31)
    assert table.loc["margin", "delta_mean"] == pytest.approx(
        again.total.item() - fe.total.item(), rel=1e-9
    )


def test_cac_lever_closed_form(rfm, base):
    fe, table = base
    want = -0.1 * 25.0 * sum(n * (1 + R4) ** -k for k, n in enumerate(COUNTS))
    assert table.loc["cac", "delta_mean"] == pytest.approx(want, rel=1e-12)
    again = _fe(rfm, cac=27.5)
    assert again.total.item() - fe.total.item() == pytest.approx(want, rel=1e-9)


def test_acquisition_volume_lever_recomputed(rfm, base):
    fe, table = base
    again = _fe(rfm, counts=[1.1 * n for n in COUNTS])
    assert table.loc["acquisition_volume", "delta_mean"] == pytest.approx(
        again.total.item() - fe.total.item(), rel=1e-9
    )
    assert table.loc["acquisition_volume", "delta_mean"] == pytest.approx(
        0.1 * fe.future.item(), rel=1e-12
    )


def test_frequency_lever_is_alpha_over_1_1(rfm, base):
    """BG/NBD's purchase link is alpha (sign -1): the mean rate r / alpha x 1.1."""
    fe, table = base
    again = _fe(rfm, bg={**BG, "alpha": BG["alpha"] / 1.1})
    assert table.loc["frequency", "delta_mean"] == pytest.approx(
        again.total.item() - fe.total.item(), rel=1e-8
    )
    assert table.loc["frequency", "delta_mean"] > 0


def test_retention_lever_raises_retention_by_one_point(rfm, base):
    fe, table = base
    spec, tp = model_draws(BG, "purchase", "bg")
    moved = retention_params(spec, tp, 4.0, 0.01)
    before = new_customer_alive(spec, tp, np.array([4.0]))[0, 0]
    after = new_customer_alive(spec, moved, np.array([4.0]))[0, 0]
    assert after - before == pytest.approx(0.01, abs=1e-9)
    # BG/NBD: a down and b up by the same factor (both lower the mean dropout a / (a + b))
    c = BG["a"] / moved["a"][0, 0]
    assert moved["b"][0, 0] == pytest.approx(BG["b"] * c, rel=1e-12)
    assert moved["r"][0, 0] == BG["r"] and moved["alpha"][0, 0] == BG["alpha"]
    again = _fe(rfm, bg={k: float(v[0, 0]) for k, v in moved.items()})
    assert table.loc["retention", "delta_mean"] == pytest.approx(
        again.total.item() - fe.total.item(), rel=1e-8
    )


def test_same_draws_interval_of_the_difference(rfm):
    bg = clvkit.BetaGeo().fit(rfm, method="laplace", chains=1, draws=100, random_seed=1)
    gg = clvkit.GammaGamma().fit(rfm, method="laplace", chains=1, draws=100, random_seed=2)
    fe = firm_equity(bg, gg, rfm, AcquisitionPlan([50] * 13), **KW, margin=0.3,
                     acquisition_cost=25.0, random_seed=1)  # fmt: skip
    t = fe.sensitivities(changes={"frequency": 0.1, "cac": 0.1})
    assert sorted(t.index) == ["cac", "frequency"]
    assert (np.diff(t["delta_mean"].abs().to_numpy()) <= 0).all()
    f = fe.flow_draws
    np.testing.assert_allclose(
        np.quantile(-0.1 * f.acquisition.sum(1), [0.05, 0.95]),
        t.loc["cac", ["delta_lower", "delta_upper"]].to_numpy().astype(float), rtol=1e-12,
    )  # fmt: skip
    assert t.loc["frequency", "p_positive"] == 1.0
    # the spread of the change is far smaller than that of the equity itself
    width = t.loc["frequency", "delta_upper"] - t.loc["frequency", "delta_lower"]
    s = fe.summary()
    assert width < 0.5 * (s.loc["total", "upper"] - s.loc["total", "lower"])


def test_unit_economics_against_customer_value(rfm):
    fe = _fe(rfm, margin=1.0, cac=60.0)
    ue = fe.unit_economics()
    cv = clvkit.customer_value(_point(BG), _point(GG), rfm, **KW, margin=1.0)
    assert ue["clv_mean"] == pytest.approx(cv.new_customer.item(), rel=1e-10)
    assert ue["clv_to_cac_mean"] == pytest.approx(cv.new_customer.item() / 60.0, rel=1e-10)
    # payback: first period whose cumulative discounted margin reaches the CAC
    spec, tp = model_draws(BG, "purchase", "bg")
    sspec, sp = model_draws(GG, "spend", "gg")
    spend0 = sspec.expected_spend(sp, sspec.new_customer_columns(1))[0, 0]
    ends = np.minimum(np.arange(1, 14) * 4.0, 50.0)
    F = new_customer_expected(spec, tp, np.concatenate([[0.0], ends]))[0]
    cum = 1.0 * spend0 * (1 + np.cumsum((1 + R4) ** -(ends / 4) * np.diff(F)))
    want = int(np.argmax(cum >= 60.0)) + 1
    assert ue["payback_median"] == want
    assert ue["payback_time_median"] == ends[want - 1]
    assert ue["p_payback"] == 1.0
    assert (want, round(ue["clv_mean"], 4)) == (5, 82.6922)


def test_errors(rfm, base):
    fe, _ = base
    with pytest.raises(ClvkitError, match="'changes'"):
        fe.sensitivities(changes={"churn": 0.1})
    with pytest.raises(ClvkitError, match="'result'"):
        sensitivities(pd.DataFrame())
    no_cac = firm_equity(_point(BG), _point(GG), rfm, None, **KW)
    with pytest.raises(ClvkitError, match="acquisition_cost"):
        no_cac.unit_economics()


def test_a_model_without_links_example_model(rfm):
    """The example model of tests/example_model (Poisson purchases, exponential lifetime, no
    covariate_links) through the generic routes: the flows add up to the equity, the future
    part has its closed form (constant rates: E[purchases by age t] = lam / mu (1 - e^{-mu t})),
    and the two model levers are left out with a warning."""
    from clvkit.models import registry
    from contract import checks

    with checks.registry_restored():
        from example_model.model import PoissonExponential

        registry.register(PoissonExponential)
        lam, mu = 0.3, 0.05
        post = _point({"lam": lam, "mu": mu})
        post.attrs.update(model="PoissonExponential", time_unit="W")
        counts = [100.0] * 13
        fe = firm_equity(post, _point(GG), rfm, AcquisitionPlan(counts), **KW,
                         acquisition_cost=25.0)  # fmt: skip
        f = fe.flow_draws
        total = f.existing_total() + f.future_total()
        assert total[0] == pytest.approx(fe.total.item(), rel=1e-10)
        sspec, sp = model_draws(GG, "spend", "gg")
        spend0 = sspec.expected_spend(sp, sspec.new_customer_columns(1))[0, 0]
        want = 0.0
        for k in range(1, 14):
            h = 50.0 - (k - 1) * 4
            ends = np.minimum(np.arange(1, int(np.ceil(h / 4)) + 1) * 4.0, h)
            F = lam / mu * -np.expm1(-mu * np.concatenate([[0.0], ends]))
            v = spend0 * (1 + np.sum((1 + R4) ** -(ends / 4) * np.diff(F)))
            want += 100 * (1 + R4) ** -(k - 1) * (v - 25.0)
        assert fe.future.item() == pytest.approx(want, rel=1e-10)
        with pytest.warns(clvkit.ClvkitWarning, match="left out"):
            table = fe.sensitivities()
        assert set(table.index) == {"spend", "margin", "acquisition_volume", "cac"}
