"""clvkit.compare: PSIS-LOO against ArviZ and the uncompressed route, holdout log scores
against the contract's P(X = k), the words, the CLI and the report section.

BG/NBD is compared with the example model of tests/example_model (Poisson purchases and an
exponential lifetime, both rates shared by all customers: no heterogeneity), registered only
while this module runs."""

from __future__ import annotations

from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd
import pytest

import clvkit
from clvkit.cli import main
from clvkit.datasets import cdnow_transactions
from clvkit.errors import ClvkitError
from clvkit.evaluation.compare_models import Comparison, compare
from clvkit.evaluation.compare_words import comparison_words
from clvkit.inference.loo import psis_loo, stacking_weights
from clvkit.models import registry
from contract import checks

CAL, END = "1997-09-30", "1998-06-30"
DRAWS = 250  # Laplace draws per chain (4 chains)


@pytest.fixture(scope="module")
def example() -> type:
    with checks.registry_restored():
        from example_model.model import PoissonExponential

        registry.register(PoissonExponential)
        yield PoissonExponential


@pytest.fixture(scope="module")
def rfm() -> pd.DataFrame:
    return clvkit.calibration_holdout(cdnow_transactions(), calibration_end=CAL,
                                      observation_end=END, amount="amount")  # fmt: skip


@pytest.fixture(scope="module")
def fits(example, rfm) -> dict:
    kw = {"method": "laplace", "draws": DRAWS, "random_seed": 1}
    return {"bgnbd": clvkit.BetaGeo().fit(rfm, **kw), "pe": example().fit(rfm, **kw)}


@pytest.fixture(scope="module")
def cmp(fits, rfm) -> Comparison:
    return compare(fits, rfm, n_samples=300, random_seed=0)


def test_loo_equals_arviz_and_the_uncompressed_route(cmp, fits, rfm):
    """Distinct rows with counts give what ArviZ's az.loo gives on the full (chain, draw,
    customer) matrix of model.log_likelihood, with the same reff."""
    assert cmp.table.attrs["n_customers"] == 2357
    assert cmp.table.attrs["n_distinct"] < 1100  # 2357 customers, ~1,016 distinct histories
    for name, model in fits.items():
        ll = model.log_likelihood(rfm).values  # (4, 250, 2357)
        got = cmp.loo[name]
        idata = az.from_dict(posterior={"x": ll[..., 0]}, log_likelihood={"y": ll})
        ref = az.loo(idata, pointwise=True, reff=got.reff)
        assert got.elpd == pytest.approx(float(ref["elpd_loo"]), rel=1e-10)
        assert got.se == pytest.approx(float(ref["se"]), rel=1e-9)
        assert got.p_loo == pytest.approx(float(ref["p_loo"]), rel=1e-8)
        np.testing.assert_allclose(cmp.pointwise[name], ref["loo_i"].values, rtol=1e-10)
        full = psis_loo(ll, reff=got.reff)
        assert got.elpd == pytest.approx(full.elpd, rel=1e-12)
        assert got.n_high_k() == full.n_high_k()
        assert got.pareto_k.max() == pytest.approx(full.pareto_k.max(), rel=1e-10)
        row = cmp.table.loc[name]
        assert row["elpd_loo"] == pytest.approx(float(ref["elpd_loo"]), rel=1e-10)
        assert row["p_loo"] == pytest.approx(float(ref["p_loo"]), rel=1e-8)


def test_loo_in_blocks_of_customers_is_the_same(cmp, fits, rfm, monkeypatch):
    """Large bases are smoothed in blocks of distinct customers (bounded memory): same numbers."""
    from clvkit.inference import loo as loo_module

    monkeypatch.setattr(loo_module, "LOO_VALUES", 100 * 1000)  # 100 distinct customers per block
    calib = rfm[["frequency", "recency", "T"]].copy()
    out = compare(fits, calib, random_seed=0)
    for name in fits:
        a, b = out.loo[name], cmp.loo[name]
        assert a.reff == b.reff
        assert a.elpd == pytest.approx(b.elpd, rel=1e-12)
        assert a.se == pytest.approx(b.se, rel=1e-10)
        assert a.p_loo == pytest.approx(b.p_loo, rel=1e-10)
        np.testing.assert_array_equal(a.pareto_k, b.pareto_k)


def test_differences_are_paired_and_weights_match_the_full_matrix(cmp):
    t = cmp.table
    assert t.index.tolist() == ["bgnbd", "pe"] and t["rank"].tolist() == [1, 2]
    d = (cmp.pointwise["bgnbd"] - cmp.pointwise["pe"]).to_numpy()
    assert t.loc["pe", "elpd_diff"] == pytest.approx(d.sum(), rel=1e-10)
    assert t.loc["pe", "diff_se"] == pytest.approx(np.sqrt(d.size * d.var()), rel=1e-10)
    assert t.loc["bgnbd", "elpd_diff"] == 0 and t.loc["bgnbd", "diff_se"] == 0
    # CDNOW: BG/NBD is far ahead of the homogeneous model (hundreds of elpd, > 5 se)
    assert t.loc["pe", "elpd_diff"] > 5 * t.loc["pe", "diff_se"] > 100
    w = stacking_weights(cmp.pointwise[["bgnbd", "pe"]].to_numpy())
    np.testing.assert_allclose(t["weight_stacking"], w, atol=1e-6)
    assert t["weight_pseudo_bma"].sum() == pytest.approx(1.0)
    assert t.loc["bgnbd", "weight_pseudo_bma"] > 0.99


def test_holdout_log_score_equals_the_contracts_probability(cmp, fits, rfm):
    """log mean_s P_s(X = x_holdout) from model.probability_of_purchases, customer by customer."""
    ids = [1, 3, 18, 100, 1006, rfm["frequency_holdout"].idxmax()]
    for name, model in fits.items():
        for i in ids:
            one = rfm.loc[[i]]
            p = model.probability_of_purchases(
                float(one["duration_holdout"].iloc[0]), int(one["frequency_holdout"].iloc[0]),
                one, return_draws=True,
            )  # fmt: skip
            assert cmp.log_scores.loc[i, name] == pytest.approx(np.log(p.values.mean()), rel=1e-10)
        assert cmp.table.loc[name, "log_score"] == pytest.approx(cmp.log_scores[name].sum())
    d = (cmp.log_scores["bgnbd"] - cmp.log_scores["pe"]).to_numpy()
    assert cmp.table.loc["pe", "log_score_diff"] == pytest.approx(d.sum(), rel=1e-10)
    assert cmp.table.loc["pe", "log_score_diff_se"] == pytest.approx(
        np.sqrt(d.size * d.var()), rel=1e-10
    )


def test_holdout_error_and_total(cmp, fits, rfm):
    """MAE and the predicted total from the posterior mean of expected purchases over each
    customer's holdout (39 weeks on CDNOW); the actual total is 1,882."""
    y = rfm["frequency_holdout"].to_numpy()
    assert set(rfm["duration_holdout"].round(6)) == {39.0}
    for name, model in fits.items():
        e = model.expected_purchases(rfm, t=39)["mean"].to_numpy()
        row = cmp.table.loc[name]
        assert row["mae"] == pytest.approx(np.abs(e - y).mean(), rel=1e-9)
        assert row["total_predicted"] == pytest.approx(e.sum(), rel=1e-9)
        assert row["total_actual"] == 1882
        assert row["total_lower"] <= row["total_upper"]
        assert 0 <= row["coverage"] <= 1
    # BG/NBD under-forecasts the CDNOW holdout (~1,660 of 1,882; issue 15), the homogeneous
    # model by far more; each total's interval misses the actual
    assert 1600 < cmp.table.loc["bgnbd", "total_predicted"] < 1720
    assert cmp.table.loc["pe", "total_predicted"] < 600
    assert cmp.table.loc["bgnbd", "p_total_at_least_actual"] < 0.05
    assert 0.85 < cmp.table.loc["bgnbd", "coverage"] < 0.93
    assert any("wrong in aggregate" in w and w.startswith("BG/NBD") for w in cmp.words)
    assert cmp.words[0].startswith("The data favour BG/NBD over Poisson/Exponential by")


def test_summary_prints_table_and_words(cmp):
    text = cmp.summary()
    assert "elpd_loo" in text and "coverage_90" in text and "Poisson/Exponential" in text
    assert text.rstrip().endswith(cmp.words[-1])


def _table(diff: float, se: float, **extra) -> pd.DataFrame:
    t = pd.DataFrame(
        {"label": ["Model A", "Model B"], "rank": [1, 2], "elpd_loo": [-1000.0, -1000.0 - diff],
         "se": [30.0, 31.0], "elpd_diff": [0.0, diff], "diff_se": [0.0, se],
         "p_loo": [3.0, 4.0], "n_high_k": [0, 0], "weight_stacking": [0.6, 0.4],
         "weight_pseudo_bma": [0.7, 0.3], **extra},
        index=["a", "b"],
    )  # fmt: skip
    t.attrs.update(prob=0.9, k_threshold=0.7)
    return t


def test_words_within_noise_and_decisive():
    within = comparison_words(_table(3.0, 2.5))
    assert within == [
        "The data do not separate Model A and Model B: |Δelpd| = 3.0 < 2 se (2 x 2.5 = 5.0).",
        "Stacking weights: Model A 0.60, Model B 0.40; pseudo-BMA weights: Model A 0.70, "
        "Model B 0.30.",
    ]
    edge = comparison_words(_table(4.9, 2.5))[0]
    assert edge.startswith("The data do not separate")
    decisive = comparison_words(_table(30.0, 6.0))
    assert decisive[0] == (
        "The data favour Model A over Model B by 30.0 in elpd (5.0 standard errors of the "
        "difference)."
    )
    assert comparison_words(_table(5.1, 2.5))[0].startswith("The data favour Model A")
    # three models, every difference within noise (CDNOW: MBG/NBD, BG/NBD, Pareto/NBD)
    three = pd.concat([_table(0.1, 4.0), _table(13.1, 6.7).iloc[[1]].rename(index={"b": "c"})])
    three.loc["c", "label"] = "Model C"
    three.attrs.update(prob=0.9, k_threshold=0.7)
    words = comparison_words(three)
    assert words[1] == (
        "The data do not separate Model A and Model C: |Δelpd| = 13.1 < 2 se (2 x 6.7 = 13.4)."
    )
    assert words[2] == "No model stands out: every difference in elpd to Model A is within 2 " \
        "standard errors."  # fmt: skip
    three.loc["c", "diff_se"] = 6.5
    assert not any(w.startswith("No model stands out") for w in comparison_words(three))


def test_words_high_k_holdout_ranking_and_aggregate_coverage():
    t = _table(
        30.0, 6.0, log_score=[-500.0, -490.0], log_score_diff=[10.0, 0.0],
        log_score_diff_se=[8.0, 0.0], mae=[0.7, 0.6], total_predicted=[1657.0, 1880.0],
        total_lower=[1490.0, 1700.0], total_upper=[1824.0, 2060.0], total_actual=[1882.0] * 2,
        p_total_at_least_actual=[0.012, 0.49], coverage=[0.897, 0.9],
    )  # fmt: skip
    t.loc["a", "n_high_k"] = 12
    words = comparison_words(t)
    assert (
        "Model A: 12 customers have Pareto k above 0.70, so its LOO estimate is unreliable for "
        "them (treat its elpd with care)." in words
    )
    assert "On the holdout the ranking differs: Model B has the best log predictive score " \
        "(-490.0)." in words  # fmt: skip
    assert (
        "The data do not separate Model B and Model A: |Δholdout log score| = 10.0 < 2 se "
        "(2 x 8.0 = 16.0)." in words
    )
    assert words[-2] == (
        "Model A: per-customer 90% intervals cover 89.7% of customers, but the actual holdout "
        "total 1,882 against a predicted 1,657 [90% interval 1,490 – 1,824], P(total ≥ "
        "actual) = 0.012: the total falls above its 90% interval, so the model is wrong in "
        "aggregate."
    )
    assert words[-1].endswith("P(total ≥ actual) = 0.490: calibrated in aggregate too.")


def test_refusals(fits, rfm, example):
    with pytest.raises(ClvkitError, match="at least 2"):
        compare({"bgnbd": fits["bgnbd"]}, rfm)
    point = clvkit.BetaGeo().fit(rfm, method="mle")
    with pytest.raises(ClvkitError, match=r"'point' \(BG/NBD\) is a point fit.*Suggestion"):
        compare({"bgnbd": fits["bgnbd"], "point": point}, rfm)
    bad = rfm.copy()
    bad.loc[bad.index[:3], "frequency_holdout"] = -1
    with pytest.raises(ClvkitError, match=r"frequency_holdout.*3 of 2,357"):
        compare(fits, bad)
    # a list is named by the specs
    out = compare([fits["bgnbd"], fits["pe"]], rfm[["frequency", "recency", "T"]].copy())
    assert out.table.index.tolist() == ["bgnbd", "poisson_exp"] and out.log_scores is None
    assert "log_score" not in out.table and len(out.words) == 2


def test_no_holdout_is_the_same_loo(cmp, fits, rfm):
    calib = rfm[["frequency", "recency", "T"]].copy()
    calib.attrs = dict(rfm.attrs)
    out = compare(fits, calib, random_seed=0)
    cols = ["elpd_loo", "se", "elpd_diff", "diff_se", "p_loo", "weight_stacking"]
    pd.testing.assert_frame_equal(out.table[cols], cmp.table[cols], rtol=1e-12)


def test_plots(cmp):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from clvkit import plots

    axs = plots.plot_comparison(cmp)
    assert len(axs) == 2
    ax = axs[0]
    # the best model on top
    assert [t.get_text() for t in ax.get_yticklabels()] == ["BG/NBD", "Poisson/Exponential"]
    assert ax.get_yticks().tolist() == [1, 0]
    assert axs[1].lines[-1].get_xdata()[0] == 1882  # the actual total
    # on its own figure the right panel's model labels clear the left panel
    fig = axs[0].figure
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    left_edge = min(t.get_window_extent(renderer).x0 for t in axs[1].get_yticklabels())
    assert left_edge > axs[0].get_window_extent(renderer).x1
    plt.close("all")
    with pytest.raises(ClvkitError, match="lacks columns"):
        plots.plot_holdout_totals(cmp.table[["label"]])


@pytest.fixture(scope="module")
def cdnow_csv(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cmp") / "cdnow.csv"
    cdnow_transactions().to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_cli_compare(cdnow_csv, tmp_path, capsys, example):
    out_csv = tmp_path / "table.csv"
    code = main(["compare", str(cdnow_csv), "--models", "bgnbd,poisson_exp",
                 "--calibration-end", CAL, "--observation-end", END, "--method", "laplace",
                 "--draws", str(DRAWS), "--seed", "1", "--out", str(out_csv), "--quiet"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 0, err
    assert err == ""
    assert "elpd_loo" in out and "The data favour BG/NBD over Poisson/Exponential" in out
    table = pd.read_csv(out_csv, index_col=0)
    assert table.index.tolist() == ["bgnbd", "poisson_exp"]
    assert table.loc["bgnbd", "total_actual"] == 1882


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--models", "bgnbd,nosuch"], "unknown purchase model 'nosuch'"),
        (["--models", "bgnbd"], "needs at least 2"),
        (["--models", "bgnbd,poisson_exp", "--out", "t.txt"], "suffix"),
    ],
)
def test_cli_compare_bad_input(cdnow_csv, capsys, example, argv, message):
    code = main(["compare", str(cdnow_csv), "--calibration-end", CAL, "--observation-end", END,
                 *argv, "--quiet"])  # fmt: skip
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("clvkit: error:") and message in err


def test_report_section_renders(cmp, fits, rfm):
    from clvkit.report import build_report

    calib = rfm[["frequency", "recency", "T", "monetary_value"]].copy()
    calib.attrs = dict(rfm.attrs)
    gg = clvkit.GammaGamma().fit(calib, method="mle")
    bg = clvkit.BetaGeo().fit(calib, method="mle")
    value = clvkit.customer_value(
        bg, gg, calib, horizon="52W", annual_discount_rate=0.1, method="expected"
    )
    plain = build_report(calib, bg, gg, value)
    rep = build_report(calib, bg, gg, value, comparison=cmp)
    html = rep.to_html()
    assert "<h2>Which model to trust</h2>" in html
    assert rep.n_figures == plain.n_figures + 2
    assert "The data favour BG/NBD over Poisson/Exponential by" in html
    assert "effective parameters (p_loo)" in html and "coverage_90%" in html
    assert html.index("Which model to trust") < html.index("Settings and versions")


def test_report_from_log_refuses_bad_compare_before_work(example):
    log = cdnow_transactions()
    from clvkit.report import report_from_log

    kw = {"calibration_end": CAL, "observation_end": END}
    with pytest.raises(ClvkitError, match=r"needs posterior draws.*method='mle'"):
        report_from_log(log, compare=["bgnbd", "poisson_exp"], fit_kwargs={"method": "mle"},
                        **kw)  # fmt: skip
    with pytest.raises(ClvkitError, match="names 1 purchase model"):
        report_from_log(log, compare=["bgnbd", "BetaGeo"], **kw)
    with pytest.raises(ClvkitError, match="unknown purchase model 'nope'"):
        report_from_log(log, compare=["bgnbd", "nope"], **kw)


@pytest.mark.slow
def test_ranks_the_true_model_first_on_simulated_data(example):
    """Five logs of 500 customers simulated from BG/NBD (r 0.25, alpha 4, a 0.8, b 2.5; 52
    weeks of calibration, 26 of holdout): compare ranks BG/NBD above the example model by LOO
    in all five (and by the holdout log score in at least four; measured: five of five)."""
    from clvkit.datasets import simulate

    kw = {"method": "laplace", "draws": DRAWS}
    by_loo = by_holdout = 0
    for rep in range(5):
        sim = simulate(500, r=0.25, alpha=4.0, a=0.8, b=2.5, acquisition_periods=12,
                       observation_periods=78, resolution="exact", random_seed=100 + rep)  # fmt: skip
        rfm = sim.rfm(calibration_end=sim.start + pd.Timedelta(weeks=52))
        fits = {n: c().fit(rfm, random_seed=rep, **kw)
                for n, c in (("bgnbd", clvkit.BetaGeo), ("pe", example))}  # fmt: skip
        t = compare(fits, rfm, n_samples=200, random_seed=rep).table
        by_loo += t.index[0] == "bgnbd"
        by_holdout += t["log_score"].idxmax() == "bgnbd"
    assert by_loo == 5
    assert by_holdout >= 4


def test_cli_report_compare_bad_input(cdnow_csv, tmp_path, capsys, example):
    out = tmp_path / "r.html"
    for extra, message in (
        (["--compare", "bgnbd"], "needs at least 2"),
        (["--compare", "bgnbd,poisson_exp", "--method", "mle"], "needs posterior draws"),
    ):
        code = main(["report", str(cdnow_csv), "--calibration-end", CAL, "--observation-end",
                     END, "--out", str(out), *extra, "--quiet"])  # fmt: skip
        _, err = capsys.readouterr()
        assert code == 2 and err.count("\n") == 1 and message in err
        assert not out.exists()


@pytest.mark.slow
def test_report_from_log_with_compare(example):
    from clvkit.report import report_from_log

    run = report_from_log(
        cdnow_transactions(), calibration_end=CAL, observation_end=END,
        compare=["bgnbd", "poisson_exp"],
        fit_kwargs={"method": "laplace", "draws": DRAWS},
        value_kwargs={"horizon": "52W", "annual_discount_rate": 0.1},
        n_samples=200, random_seed=0,
    )  # fmt: skip
    assert run.comparison.table.index.tolist() == ["bgnbd", "poisson_exp"]
    # the backtest's BG/NBD fit is the comparison's
    assert run.comparison.loo["bgnbd"].pointwise.size == run.comparison.table.attrs["n_distinct"]
    ll = run.backtest.transactions_model.log_likelihood(run.backtest.rfm).values
    assert run.comparison.loo["bgnbd"].elpd == pytest.approx(
        psis_loo(ll, reff=run.comparison.loo["bgnbd"].reff).elpd, rel=1e-12
    )
    html = run.report.to_html()
    assert "<h2>Which model to trust</h2>" in html and "wrong in aggregate" in html


@pytest.mark.slow
def test_compare_log_same_table_from_a_frame_and_a_file(cdnow_csv, example):
    """One input, one answer: the log as a DataFrame and as a CSV file (DuckDB) give the same
    comparison; an unknown model is refused before any work."""
    from clvkit.evaluation import compare_log

    kw = {"models": ["bgnbd", "PoissonExponential"], "calibration_end": CAL,
          "observation_end": END, "fit_kwargs": {"method": "laplace", "draws": 100},
          "n_samples": 100, "random_seed": 3}  # fmt: skip
    a = compare_log(cdnow_transactions(), **kw)
    b = compare_log(str(cdnow_csv), **kw)
    assert a.table.index.tolist() == ["bgnbd", "poisson_exp"]
    pd.testing.assert_frame_equal(a.table, b.table)
    assert a.words == b.words
    for log in (cdnow_transactions(), str(cdnow_csv)):
        with pytest.raises(ClvkitError, match="unknown purchase model 'nosuch'"):
            compare_log(log, **{**kw, "models": ["bgnbd", "nosuch"]})


def test_the_callers_table_is_not_modified(cmp, rfm):
    """The fixture's table went through compare (and the holdout simulations) unchanged."""
    fresh = clvkit.calibration_holdout(cdnow_transactions(), calibration_end=CAL,
                                       observation_end=END, amount="amount")  # fmt: skip
    pd.testing.assert_frame_equal(rfm, fresh)
    assert rfm.attrs == fresh.attrs


def test_two_fits_of_one_model_are_named_apart(fits, rfm):
    """Two BG/NBD fits (a dict names them) read apart in the table's labels and the words;
    models of different kinds keep their own labels."""
    other = clvkit.BetaGeo().fit(rfm, method="laplace", draws=DRAWS, random_seed=2)
    c = compare({"first": fits["bgnbd"], "second": other}, rfm, random_seed=0)
    assert sorted(c.table["label"]) == ["BG/NBD (first)", "BG/NBD (second)"]
    assert any("BG/NBD (first)" in w and "BG/NBD (second)" in w for w in c.words)
    mixed = compare(fits, rfm, random_seed=0)
    assert "BG/NBD" in set(mixed.table["label"])
