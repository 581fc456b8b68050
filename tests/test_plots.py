"""Every plot renders a non-trivial PNG on CDNOW; matrices are computed on a bounded grid."""

from __future__ import annotations

import importlib.util
import os
import tracemalloc

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr

import clvkit
from clvkit import plots
from clvkit.datasets import cdnow_transactions
from clvkit.errors import ClvkitError
from clvkit.models.bgnbd import predictions as predict

MLE = {"r": 0.2426, "alpha": 4.4137, "a": 0.7930, "b": 2.4262}
GG = {"p": 6.25, "q": 3.74, "v": 15.44}
# a small "posterior" around the MLE so that bands have width
_RNG = np.random.default_rng(0)
POST = xr.Dataset(
    {
        k: (("chain", "draw"), v * np.exp(0.05 * _RNG.standard_normal((2, 50))))
        for k, v in MLE.items()
    }
)


@pytest.fixture(scope="module")
def result():
    return clvkit.backtest(
        cdnow_transactions(),
        calibration_end="1997-09-30",
        observation_end="1998-06-30",
        amount="amount",
        transactions_model=POST,
        spend_model=GG,
        n_samples=300,
        random_seed=3,
    )


def _check_png(path: str) -> None:
    assert os.path.getsize(path) > 15_000
    img = plt.imread(path)
    assert img.shape[0] > 300 and img.shape[1] > 400
    assert img[..., :3].std() > 0.05  # not a blank canvas


def _render(draw, tmp_path, name):
    fig, ax = plt.subplots(figsize=(8, 5))
    out = draw(ax)
    assert out is ax
    path = os.path.join(tmp_path, f"{name}.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    _check_png(path)


@pytest.mark.parametrize(
    "name",
    [
        "tracking_cumulative",
        "tracking_incremental",
        "retention",
        "frequency_ppc",
        "conditional_expectations",
        "pit",
        "pit_revenue",
    ],
)
def test_backtest_plots_render(result, tmp_path, name):
    draw = {
        "tracking_cumulative": lambda ax: plots.plot_tracking(result, ax=ax),
        "tracking_incremental": lambda ax: plots.plot_tracking(result, cumulative=False, ax=ax),
        "retention": lambda ax: plots.plot_retention(result, ax=ax),
        "frequency_ppc": lambda ax: plots.plot_frequency_ppc(result, ax=ax),
        "conditional_expectations": lambda ax: plots.plot_conditional_expectations(result, ax=ax),
        "pit": lambda ax: plots.plot_pit(result, ax=ax),
        "pit_revenue": lambda ax: plots.plot_pit(result, revenue=True, ax=ax),
    }[name]
    _render(draw, tmp_path, name)


def test_tracking_plot_draws_the_data(result):
    ax = plots.plot_tracking(result.tracking)
    actual = next(ln for ln in ax.lines if ln.get_label() == "actual")
    np.testing.assert_array_equal(actual.get_ydata(), result.tracking["actual_cumulative"])
    plt.close(ax.figure)


def test_matrices_match_predict_and_render(tmp_path):
    ax = plots.plot_probability_alive_matrix(POST, T=39.0, max_frequency=20, n_recency=50)
    grid = np.asarray(ax.get_images()[0].get_array())
    # cell (x = 5, recency = T / 49 * 10) against the posterior mean of predict's P(alive)
    draws = [POST[k].values.reshape(-1, 1) for k in MLE]
    ref = predict.bg_probability_alive(*draws, 5, 39.0 / 49 * 10, 39.0).mean()
    assert grid[5, 10] == pytest.approx(ref, rel=1e-10)
    assert (grid[0] == 1).all()  # no repeat purchase: alive for sure
    plt.close(ax.figure)
    _render(lambda ax: plots.plot_probability_alive_matrix(POST, T=39.0, ax=ax), tmp_path, "pa")
    _render(
        lambda ax: plots.plot_expected_purchases_matrix(POST, t=39.0, T=39.0, ax=ax),
        tmp_path,
        "ep",
    )


@pytest.mark.slow
def test_matrix_memory_does_not_grow_with_draws():
    # 20,000 draws x 5,100 grid cells: unchunked, one float64 (draws x cells) array is 0.8 GB
    big = xr.Dataset({k: (("chain", "draw"), np.full((4, 5_000), v)) for k, v in MLE.items()})
    tracemalloc.start()
    ax = plots.plot_probability_alive_matrix(big, T=52.0, max_frequency=50)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    plt.close(ax.figure)
    assert peak < 200e6


def test_alive_history_and_value_plots_render(tmp_path):
    _render(
        lambda ax: plots.plot_probability_alive_history(
            POST, np.array([3.0, 4.5, 20.0, 21.0, 52.0]), end=78.0, ax=ax
        ),
        tmp_path,
        "history",
    )
    rng = np.random.default_rng(1)
    clv = xr.DataArray(
        rng.gamma(0.4, 60.0, size=(2, 100, 2357)), dims=("chain", "draw", "customer_id")
    )
    _render(lambda ax: plots.plot_clv_distribution(clv, ax=ax), tmp_path, "clv")
    _render(lambda ax: plots.plot_equity(clv.sum("customer_id"), ax=ax), tmp_path, "equity")


def test_plot_errors_name_the_argument(result):
    with pytest.raises(ClvkitError, match="'tracking'"):
        plots.plot_tracking(result.retention)
    with pytest.raises(ClvkitError, match="purchase_times"):
        plots.plot_probability_alive_history(MLE, np.array([-1.0, 2.0]), end=10.0)
    with pytest.raises(ClvkitError, match="'equity'"):
        plots.plot_equity(np.array([1.0, np.nan]))


@pytest.mark.slow
def test_gallery_renders_every_plot(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "gallery", os.path.join(os.path.dirname(__file__), "..", "notebooks", "gallery.py")
    )
    gallery = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gallery)
    paths = gallery.main(str(tmp_path))
    assert len(paths) == 12
    for p in paths:
        _check_png(p)


def test_matrix_plots_refuse_a_model_without_rfm_columns():
    # a purchase model whose customer columns are not frequency, recency, T (e.g. BG/BB's
    # opportunities) cannot be drawn on a frequency x recency grid: a clear error, no crash
    from clvkit.models.registry import get

    bg_spec = type(get("bgnbd").spec)

    class OpportunitySpec(bg_spec):
        columns = ("frequency", "recency", "n_opportunities")
        label = "BG/BB-like"

    class Fitted:
        spec = OpportunitySpec()
        posterior_ = POST

    with pytest.raises(ClvkitError, match=r"BG/BB-like.*n_opportunities.*Suggestion"):
        plots.plot_probability_alive_matrix(Fitted(), T=39.0)
    with pytest.raises(ClvkitError, match=r"frequency, recency and T.*Suggestion"):
        plots.plot_probability_alive_history(Fitted(), np.array([1.0]), end=5.0)


def test_expected_purchases_matrix_is_the_contract_expectation():
    from clvkit.models.registry import get

    ax = plots.plot_expected_purchases_matrix(MLE, t=52.0, T=39.0, max_frequency=10, n_recency=5)
    grid = np.asarray(ax.get_images()[0].get_array())
    plt.close(ax.figure)
    prm = {k: np.array([[v]]) for k, v in MLE.items()}
    cols = {
        "frequency": np.array([4.0]),
        "recency": np.array([39.0 * 2 / 4]),
        "T": np.array([39.0]),
    }
    ref = get("bgnbd").spec.expected_purchases(prm, cols, np.array([52.0]))[0, 0, 0]
    assert grid[4, 2] == pytest.approx(ref, rel=1e-12)
    # the same cell from the BG/NBD prediction function itself
    ref_bg = predict.bg_expected_purchases(*MLE.values(), 4.0, 19.5, 39.0, 52.0)
    assert grid[4, 2] == pytest.approx(float(np.ravel(ref_bg)[0]), rel=1e-10)


# ----------------------------------------------------------------------------------------------
# issue 14 papercuts
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cdnow_fits():
    rfm = clvkit.datasets.cdnow_calibration_summary()
    return rfm, clvkit.BetaGeo().fit(rfm, method="mle"), clvkit.GammaGamma().fit(rfm, method="mle")


def test_value_plots_take_a_customer_value(cdnow_fits):
    """plots.plot_clv_distribution(value) raised TypeError."""
    rfm, bg, gg = cdnow_fits
    value = clvkit.customer_value(bg, gg, rfm, horizon="52W", annual_discount_rate=0.1)
    ax = plots.plot_clv_distribution(value)
    assert ax.get_title() == "CLV distribution over 2,357 customers"
    mean = value.summary()["expected_clv"].mean()
    assert f"mean {mean:,.2f}" in [t.get_text() for t in ax.get_legend().get_texts()]
    heights = sum(p.get_height() for p in ax.patches)
    assert heights == 2357
    ax = plots.plot_equity(value)
    assert ax.get_title() == "Customer equity (1 draws)"
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "mean 72,224" in labels  # CDNOW, 52 weeks at 10%: the reference equity
    plt.close("all")


def test_alive_matrix_defaults_t_to_the_fitted_data(cdnow_fits):
    """plot_probability_alive_matrix(bg) needed T=."""
    rfm, bg, _ = cdnow_fits
    assert plots.matrices.fitted_max_T(bg) == rfm["T"].max() == 38.86
    assert plots.matrices.fitted_max_T(bg.idata_) == 38.86
    a = plots.plot_probability_alive_matrix(bg).get_images()[0].get_array()
    b = plots.plot_probability_alive_matrix(bg, T=38.86).get_images()[0].get_array()
    np.testing.assert_array_equal(a, b)
    with pytest.raises(ClvkitError, match=r"'T' is missing.*Suggestion: pass T="):
        plots.plot_probability_alive_matrix(MLE)
    given = clvkit.BetaGeo.from_params(time_unit="W", **MLE)
    with pytest.raises(ClvkitError, match=r"'T' is missing.*BetaGeo"):
        plots.plot_probability_alive_matrix(given)
    plt.close("all")


def test_plot_value_by_group_draws_the_group_table():
    """One row per group with the group table's CLV per customer and interval, labelled with
    the group's customers and its share of equity; a value without groups is refused."""
    rfm = clvkit.datasets.cdnow_calibration_summary()
    bg = clvkit.BetaGeo().fit(rfm, method="laplace", draws=200, random_seed=1)
    gg = clvkit.GammaGamma().fit(rfm, method="laplace", draws=200, random_seed=2)
    buyer = (rfm["frequency"] > 0).rename("repeat_buyer")
    res = clvkit.customer_value(bg, gg, rfm, horizon="52W", annual_discount_rate=0.1, by=buyer,
                                random_seed=3)  # fmt: skip
    t = res.group_table(0.8).sort_values("clv_mean")
    ax = plots.plot_value_by_group(res, prob=0.8)
    line = next(ln for ln in ax.lines if ln.get_marker() == "o")
    np.testing.assert_allclose(line.get_xdata(), t["clv_mean"], rtol=1e-12)
    labels = [lb.get_text() for lb in ax.get_yticklabels()]
    assert labels == [
        f"{g}\n{int(r['customers']):,} customers, {r['equity_share']:.0%} "
        f"[{r['share_lower']:.0%}, {r['share_upper']:.0%}] of equity"
        for g, r in t.iterrows()
    ]
    assert labels[-1].startswith(
        "True\n946 customers"
    )  # repeat buyers: the higher CLV, drawn on top
    assert ax.get_title() == "Value by repeat_buyer"
    plt.close(ax.figure)
    plain = clvkit.customer_value(bg, gg, rfm, horizon="52W", annual_discount_rate=0.1)
    with pytest.raises(ClvkitError, match="no groups"):
        plots.plot_value_by_group(plain)
    with pytest.raises(ClvkitError, match="must be a CustomerValue"):
        plots.plot_value_by_group(t)
