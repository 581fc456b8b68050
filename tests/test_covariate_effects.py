"""Effects of covariate models (issue 17): process means, multipliers against closed forms,
the effects table and its sentences, the forest plot and the report section.

Models are built from posteriors (``from_posterior`` or the spec and draws directly), so no
fit is needed: every multiplier is checked per draw against the model's formulas by hand."""

from __future__ import annotations

import html
import json
import os
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import xarray as xr

import clvkit
from clvkit.data.covariates import covariate_design
from clvkit.errors import ClvkitError, ClvkitWarning
from clvkit.models import registry
from clvkit.models.contract import ModelSpec
from clvkit.models.covariates import (
    CovariatePurchaseModel,
    CovariatePurchaseSpec,
    CovariateSpendModel,
    CovariateTerms,
)
from clvkit.models.covariates.effects import EFFECT_COLUMNS, effect_draws, effects_table
from clvkit.plots import plot_effects
from clvkit.report import Report
from clvkit.report_covariates import covariate_section
from clvkit.utils.fmt import number

BG = {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4}
COV = pd.DataFrame(
    {"channel": ["web", "shop", "web", "ad", "web"], "amount": [10.0, 30, 20, 40, 25]},
    index=pd.Index([1, 2, 3, 4, 5], name="customer_id"),
)
ENC = covariate_design(COV, COV.index, reference={"channel": "web"}).encoding()
NAMES = ENC["names"]  # ['channel[ad]', 'channel[shop]', 'amount']
LEVELS = ("east", "north", "south")


def _posterior(base, base_params, links, coefs=None, *, encoding=ENC, segment=None,
               seg=None, sd=None, shape=(2, 200), seed=0, time_unit="W"):  # fmt: skip
    """A posterior Dataset of a covariate model, attrs as a fit writes them."""
    rng = np.random.default_rng(seed)
    names = encoding["names"] if encoding else []
    data, coords = {}, {}
    for k, v in base_params.items():
        data[k] = (("chain", "draw"), v * np.exp(0.05 * rng.standard_normal(shape)))
    for p in links:
        if names:
            g = np.asarray(coefs[p]) + 0.1 * rng.standard_normal((*shape, len(names)))
            data[f"coef_{p}"] = (("chain", "draw", f"coef_{p}_dim"), g)
            coords[f"coef_{p}_dim"] = list(names)
        if segment:
            data[f"sd_{p}"] = (("chain", "draw"), sd[p] * np.exp(0.1 * rng.standard_normal(shape)))
            eta = np.asarray(seg[p]) + 0.1 * rng.standard_normal((*shape, len(LEVELS)))
            data[f"seg_{p}"] = (("chain", "draw", f"seg_{p}_dim"), eta)
            coords[f"seg_{p}_dim"] = list(LEVELS)
            data[f"new_{p}"] = (("chain", "draw"), rng.standard_normal(shape))
    cov = {"base": base, "links": links, "encoding": encoding, "segment": segment,
           "levels": list(LEVELS) if segment else []}  # fmt: skip
    return xr.Dataset(data, coords=coords,
                      attrs={"covariates": json.dumps(cov), "time_unit": time_unit})  # fmt: skip


def _flat(post, spec):
    return registry.flat_params(spec, post)


BG_LINKS = {"alpha": -1, "a": 1, "b": 1}
BG_COEFS = {"alpha": [0.65, -0.2, 0.01], "a": [0.3, 0.0, 0.0], "b": [0.0, 0.1, -0.02]}


@pytest.fixture(scope="module")
def bg_model():
    return CovariatePurchaseModel.from_posterior(_posterior("BetaGeo", BG, BG_LINKS, BG_COEFS))


@pytest.fixture(scope="module")
def seg_model():
    post = _posterior("BetaGeo", BG, BG_LINKS, BG_COEFS, segment="region",
                      seg={"alpha": [0.5, -1.0, 0.3], "a": [0.0, 0.0, 0.0], "b": [1.0, 0, 0]},
                      sd={"alpha": 0.4, "a": 0.2, "b": 0.3})  # fmt: skip
    return CovariatePurchaseModel.from_posterior(post)


# ---- process means --------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["bgnbd", "mbgnbd", "pnbd", "gamma_gamma", "sbg", "bgbb"])
def test_process_means_closed_forms(name):
    spec = registry.get(name).spec
    rng = np.random.default_rng(1)
    params = {p: rng.uniform(0.5, 3.0, (7, 1)) for p in spec.param_names}
    means = spec.process_means(params)
    processes = {proc for proc, _ in spec.covariate_links.values()}
    assert set(means) == processes == set(spec.process_texts)
    v = {p: params[p][:, 0] for p in spec.param_names}

    def beta_mean(x, y):
        return v[x] / (v[x] + v[y])

    expected = {
        "bgnbd": lambda: {"purchase": v["r"] / v["alpha"], "dropout": beta_mean("a", "b")},
        "mbgnbd": lambda: {"purchase": v["r"] / v["alpha"], "dropout": beta_mean("a", "b")},
        "pnbd": lambda: {"purchase": v["r"] / v["alpha"], "dropout": v["s"] / v["beta"]},
        "gamma_gamma": lambda: {"spend": v["p"] * v["v"] / (v["q"] - 1)},
        "sbg": lambda: {"churn": beta_mean("alpha", "beta")},
        "bgbb": lambda: {"purchase": beta_mean("alpha", "beta"),
                         "dropout": beta_mean("gamma", "delta")},
    }[name]()  # fmt: skip
    if name == "gamma_gamma":
        expected["spend"][v["q"] <= 1] = np.inf
    for proc, m in means.items():
        assert m.shape == (7,)
        np.testing.assert_allclose(m, expected[proc], rtol=1e-14)


def test_gamma_gamma_mean_is_inf_without_a_mean():
    spec = registry.get("gamma_gamma").spec
    params = {"p": np.array([[6.0], [6.0], [6.0]]), "q": np.array([[3.0], [1.0], [0.5]]),
              "v": np.array([[15.0], [15.0], [15.0]])}  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        spend = spec.process_means(params)["spend"]
    assert spend.tolist() == [45.0, np.inf, np.inf]


def test_a_model_without_links_has_no_process_means():
    params = {"r": np.ones((2, 1))}
    assert ModelSpec.process_means(registry.get("bgnbd").spec, params) == {}  # the default
    assert ModelSpec.process_texts == {}


# ---- multipliers against the closed forms, per draw ---------------------------------------
def test_bgnbd_purchase_multiplier_is_exp_coef_alpha_per_draw(bg_model):
    spec = bg_model.spec
    params = _flat(bg_model.posterior_, spec)
    draws = effect_draws(spec, params)
    for j, name in enumerate(NAMES):
        np.testing.assert_allclose(draws[("covariate", name, "purchase")],
                                   np.exp(params["coef_alpha"][:, j]), rtol=1e-13)  # fmt: skip
    assert draws.shape == (400, 2 * len(NAMES))


def test_bgnbd_dropout_multiplier_against_a_and_b_by_hand(bg_model):
    spec = bg_model.spec
    params = _flat(bg_model.posterior_, spec)
    draws = effect_draws(spec, params)
    a, b = params["a"][:, 0], params["b"][:, 0]
    for j, name in enumerate(NAMES):
        a1 = a * np.exp(params["coef_a"][:, j])
        b1 = b * np.exp(params["coef_b"][:, j])
        np.testing.assert_allclose(draws[("covariate", name, "dropout")],
                                   (a1 / (a1 + b1)) / (a / (a + b)), rtol=1e-13)  # fmt: skip


def test_gamma_gamma_spend_multiplier_is_exp_coef_v():
    post = _posterior("GammaGamma", {"p": 6.25, "q": 3.74, "v": 15.4}, {"v": 1},
                      {"v": [0.4, -0.3, 0.02]})  # fmt: skip
    model = CovariateSpendModel.from_posterior(post)
    params = _flat(post, model.spec)
    draws = effect_draws(model.spec, params)
    for j, name in enumerate(NAMES):
        np.testing.assert_allclose(draws[("covariate", name, "spend")],
                                   np.exp(params["coef_v"][:, j]), rtol=1e-13)  # fmt: skip
    t = model.effects(0.8)
    assert t["process"].tolist() == ["spend"] * 3
    row = t.iloc[0]
    m = np.exp(params["coef_v"][:, 0])
    assert row["multiplier"] == pytest.approx(m.mean(), rel=1e-12)
    assert (row["lower"], row["upper"]) == pytest.approx(tuple(np.quantile(m, [0.1, 0.9])))
    assert "spend " in row["sentence"] and "as much per purchase (80% interval)." in row["sentence"]


def test_gamma_gamma_draws_without_a_mean_are_left_out_with_a_warning():
    post = _posterior("GammaGamma", {"p": 6.25, "q": 3.74, "v": 15.4}, {"v": 1},
                      {"v": [0.4, -0.3, 0.02]})  # fmt: skip
    q = post["q"].values.copy()
    q[0, :10] = 0.9  # 10 of 400 draws: no mean spend
    post["q"] = (("chain", "draw"), q)
    model = CovariateSpendModel.from_posterior(post)
    params = _flat(post, model.spec)
    with pytest.warns(ClvkitWarning, match=r"not finite in 10 of 400 draws"):
        t = model.effects()
    finite = np.exp(params["coef_v"][10:, 0])  # chain 0's first 10 draws are out
    assert t.iloc[0]["multiplier"] == pytest.approx(finite.mean(), rel=1e-12)


def test_pareto_nbd_dropout_multiplier_is_exp_coef_beta():
    post = _posterior("ParetoNBD", {"r": 0.55, "alpha": 10.6, "s": 0.61, "beta": 11.7},
                      {"alpha": -1, "beta": -1}, {"alpha": [0.3, 0, 0], "beta": [-0.5, 0.2, 0]})  # fmt: skip
    model = CovariatePurchaseModel.from_posterior(post)
    params = _flat(post, model.spec)
    draws = effect_draws(model.spec, params)
    for j, name in enumerate(NAMES):
        np.testing.assert_allclose(draws[("covariate", name, "dropout")],
                                   np.exp(params["coef_beta"][:, j]), rtol=1e-13)  # fmt: skip
        np.testing.assert_allclose(draws[("covariate", name, "purchase")],
                                   np.exp(params["coef_alpha"][:, j]), rtol=1e-13)  # fmt: skip


@pytest.mark.parametrize(
    ("name", "links"),
    [("sbg", {"alpha": ("churn", 1), "beta": ("churn", 1)}),
     ("bgbb", {"alpha": ("purchase", 1), "beta": ("purchase", 1), "gamma": ("dropout", 1),
               "delta": ("dropout", 1)}),
     ("mbgnbd", {"a": ("dropout", 1), "b": ("dropout", 1)})],
)  # fmt: skip
def test_beta_mean_processes_against_the_formula(name, links):
    base = registry.get(name).spec
    terms = CovariateTerms({p: s for p, (_, s) in links.items()}, ENC)
    spec = CovariatePurchaseSpec(base, terms)
    rng = np.random.default_rng(4)
    S, k = 50, len(NAMES)
    params = {p: rng.uniform(0.3, 3.0, (S, 1)) for p in base.param_names}
    for p in links:
        params[f"coef_{p}"] = rng.normal(0, 0.5, (S, k))
    draws = effect_draws(spec, params)
    pairs = {"churn": ("alpha", "beta"), "purchase": ("alpha", "beta"),
             "dropout": ("gamma", "delta") if name == "bgbb" else ("a", "b")}  # fmt: skip
    for (_, coef, proc), got in draws.items():
        j = NAMES.index(coef)
        x, y = pairs[proc]
        x0, y0 = params[x][:, 0], params[y][:, 0]
        x1, y1 = x0 * np.exp(params[f"coef_{x}"][:, j]), y0 * np.exp(params[f"coef_{y}"][:, j])
        np.testing.assert_allclose(got, (x1 / (x1 + y1)) / (x0 / (x0 + y0)), rtol=1e-13)
    assert {p for _, _, p in draws.columns} == {proc for proc, _ in links.values()}


# ---- segments ------------------------------------------------------------------------------
def test_segments_against_the_median_segment(seg_model):
    spec = seg_model.spec
    params = _flat(seg_model.posterior_, spec)
    draws = effect_draws(spec, params)
    # covariates are still exp(coef): both customers are of the median segment
    for j, name in enumerate(NAMES):
        np.testing.assert_allclose(draws[("covariate", name, "purchase")],
                                   np.exp(params["coef_alpha"][:, j]), rtol=1e-13)  # fmt: skip
    k = len(NAMES)
    for s, level in enumerate(LEVELS):
        row = np.zeros((1, k + 1))
        row[0, k] = s
        shift = spec.log_shift(params, row)  # the spec's log multipliers of the segment
        np.testing.assert_allclose(draws[("segment", f"region[{level}]", "purchase")],
                                   np.exp(-shift["alpha"][:, 0]), rtol=1e-13)  # fmt: skip
        a, b = params["a"][:, 0], params["b"][:, 0]
        a1, b1 = a * np.exp(shift["a"][:, 0]), b * np.exp(shift["b"][:, 0])
        np.testing.assert_allclose(draws[("segment", f"region[{level}]", "dropout")],
                                   (a1 / (a1 + b1)) / (a / (a + b)), rtol=1e-13)  # fmt: skip


def test_spread_between_segments(seg_model):
    spec = seg_model.spec
    params = _flat(seg_model.posterior_, spec)
    draws = effect_draws(spec, params)
    # one link (alpha): the log multiplier is sd_alpha * N(0, 1), its sd is sd_alpha exactly
    np.testing.assert_allclose(draws[("spread", "region (spread)", "purchase")],
                               np.exp(params["sd_alpha"][:, 0]), rtol=1e-10)  # fmt: skip
    # two links (a, b): against Monte Carlo over 400,000 new segments, for a few draws
    got = draws[("spread", "region (spread)", "dropout")].to_numpy()
    rng = np.random.default_rng(7)
    for i in (0, 123, 399):
        a, b = params["a"][i, 0], params["b"][i, 0]
        ea, eb = rng.standard_normal((2, 400_000))
        a1, b1 = a * np.exp(params["sd_a"][i, 0] * ea), b * np.exp(params["sd_b"][i, 0] * eb)
        sd = np.std(np.log((a1 / (a1 + b1)) / (a / (a + b))))
        assert got[i] == pytest.approx(np.exp(sd), rel=2e-3)
    assert (got > 1).all()


# ---- the table and its sentences ------------------------------------------------------------
def test_effects_table_numbers_and_sentences(bg_model):
    t = bg_model.effects(0.9)
    assert list(t.columns) == list(EFFECT_COLUMNS)
    assert t["kind"].unique().tolist() == ["covariate"]
    assert t["process"].tolist() == ["purchase", "dropout"] * 3
    params = _flat(bg_model.posterior_, bg_model.spec)
    m = np.exp(params["coef_alpha"][:, 1])  # channel[shop]: ~0.82x
    row = t[(t["coefficient"] == "channel[shop]") & (t["process"] == "purchase")].iloc[0]
    lo, hi = np.quantile(m, [0.05, 0.95])
    assert row["multiplier"] == pytest.approx(m.mean(), rel=1e-12)
    assert (row["lower"], row["upper"]) == pytest.approx((lo, hi), rel=1e-12)
    assert row["p_above_1"] == pytest.approx((params["coef_alpha"][:, 1] > 0).mean())
    assert row["meaning"] == "channel 'shop' instead of 'web': purchases per week while alive"
    assert row["sentence"] == (
        f"Customers from channel 'shop' instead of 'web' buy {number(m.mean(), 3)}x "
        f"[{number(lo, 3)}, {number(hi, 3)}] as often (90% interval)."
    )
    assert hi < 1 and 0.75 < m.mean() < 0.9
    # an interval across 1 says so; a numeric covariate reads "with one unit more"
    row = t[(t["coefficient"] == "amount") & (t["process"] == "dropout")].iloc[0]
    assert row["lower"] < 1 < row["upper"]
    assert row["sentence"].startswith("Customers with one unit more of amount (mean 25) are ")
    assert row["sentence"].endswith(
        "as likely to drop out after a purchase (90% interval, not distinguishable from 1)."
    )


def test_segment_sentences(seg_model):
    t = seg_model.effects(0.5)
    assert t["kind"].tolist() == ["covariate"] * 6 + ["segment"] * 6 + ["spread"] * 2
    north = t[(t["coefficient"] == "region[north]") & (t["process"] == "purchase")].iloc[0]
    assert north["sentence"].startswith("Customers in region 'north' buy 0.")
    assert north["sentence"].endswith("as often as those of the median segment (50% interval).")
    spread = t[t["kind"] == "spread"].iloc[0]
    assert spread["sentence"].startswith(
        "Segments of 'region' differ in purchases per week while alive by a factor of 1."
    )
    assert spread["sentence"].endswith("for one standard deviation (50% interval).")


def test_a_point_fit_says_it_has_no_interval():
    model = CovariatePurchaseModel.from_posterior(
        _posterior("BetaGeo", BG, BG_LINKS, BG_COEFS, shape=(1, 1))
    )
    t = model.effects()
    assert (t["lower"] == t["upper"]).all()
    assert t["sentence"].str.contains("a point estimate, no interval").all()


def test_errors():
    bg = clvkit.BetaGeo.from_params(**BG)
    spec = CovariatePurchaseModel.spec_for(_posterior("BetaGeo", BG, BG_LINKS, BG_COEFS).attrs)
    with pytest.raises(ClvkitError, match=r"has no covariates.*Suggestion"):
        effects_table(bg.spec, registry.flat_params(bg.spec, bg.posterior_))
    with pytest.raises(ClvkitError, match=r"argument 'prob' must be in \(0, 1\), got 1.5"):
        effects_table(spec, {}, prob=1.5)
    with pytest.raises(ClvkitError, match="fit"):
        clvkit.with_covariates("bgnbd", ["channel"]).effects()


# ---- plot and report ------------------------------------------------------------------------
def test_plot_effects_renders_one_row_per_effect(seg_model, tmp_path):
    table = seg_model.effects()
    fig, ax = plt.subplots(figsize=(8, 7))
    assert plot_effects(seg_model, ax=ax) is ax
    assert ax.get_xscale() == "log"
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == len(table) == 14
    assert labels[:3] == ["channel[ad]", "channel[shop]", "amount"]
    assert "region: 1 sd between segments" in labels
    markers = [ln for ln in ax.lines if ln.get_marker() == "o" and len(ln.get_xdata()) == 1]
    got = sorted(float(ln.get_xdata()[0]) for ln in markers)
    np.testing.assert_allclose(got, sorted(table["multiplier"]), rtol=1e-12)
    path = os.path.join(tmp_path, "effects.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    img = plt.imread(path)
    assert os.path.getsize(path) > 15_000 and img[..., :3].std() > 0.05
    ax2 = plot_effects(table)  # the table itself, on a new figure
    assert len(ax2.get_yticklabels()) == 14
    plt.close(ax2.figure)
    with pytest.raises(ClvkitError, match=r"lacks columns \['lower', 'upper'\]"):
        plot_effects(table.drop(columns=["lower", "upper"]))
    with pytest.raises(ClvkitError, match="covariate model or its effects table"):
        plot_effects(clvkit.BetaGeo.from_params(**BG))


def test_plot_effects_ticks_can_be_read_between_1_and_2():
    """A 1.6x effect on a 0.75 - 1.8 axis gets named ticks around it (a log locator gave only
    0.8, 0.9 and 1); wide ranges fall back to coarser ladders, never more than 10 ticks."""
    from clvkit.plots.effects import multiplier_ticks

    assert multiplier_ticks(0.71, 1.9) == [0.75, 0.8, 0.9, 1.0, 1.1, 1.25, 1.5]
    assert multiplier_ticks(0.5, 3.0) == [0.5, 0.67, 0.75, 1.0, 1.5, 2.0, 3.0]
    assert multiplier_ticks(0.08, 12.0) == [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0]
    assert multiplier_ticks(1e-3, 1e3) == [1e-3, 1e-2, 0.1, 1.0, 10.0, 100.0, 1000.0]
    table = pd.DataFrame({"kind": ["covariate"], "coefficient": ["first basket"],
                          "process": ["purchase"], "multiplier": [1.6], "lower": [1.42],
                          "upper": [1.79]})  # fmt: skip
    ax = plot_effects(table)
    shown = [float(v) for v in ax.get_xticks() if ax.get_xlim()[0] <= v <= ax.get_xlim()[1]]
    assert [v for v in shown if 1.0 < v < 2.0] == [1.1, 1.25, 1.5]
    plt.close(ax.figure)


def test_report_section_has_the_sentences_first(seg_model):
    rep = Report("Covariates")
    assert covariate_section(rep, seg_model, 0.9) is True
    page = rep.to_html()
    table = seg_model.effects(0.9)
    for s in table["sentence"]:
        assert html.escape(s) in page
    first = html.escape(table["sentence"].iloc[0])
    assert page.index(first) < page.index("<table")  # sentences before the table
    assert page.index("<table") < page.index("<img")  # then the forest plot
    assert "<h3>Spread between segments</h3>" in page
    assert "channel &#x27;web&#x27;, amount at its mean (25), the median region segment" in page
    assert rep.n_figures == 1
    plain = Report("plain")
    assert covariate_section(plain, clvkit.BetaGeo.from_params(**BG)) is False
    assert plain._parts == []


# ---- end to end: a fit on simulated data ----------------------------------------------------
def _two_channels(n: int) -> pd.DataFrame:
    """BG/NBD customers of two channels; 'shop' buys twice as often (alpha 3 vs 6), both
    drop out alike."""
    parts = []
    for ch, alpha, seed in (("web", 6.0, 1), ("shop", 3.0, 2)):
        sim = clvkit.datasets.simulate(n, r=0.5, alpha=alpha, a=0.8, b=2.5, random_seed=seed,
                                       time_unit="W")  # fmt: skip
        rfm = sim.rfm().copy()
        rfm.index = pd.Index([f"{ch}{i}" for i in rfm.index], name="customer_id")
        rfm["channel"] = ch
        parts.append(rfm)
    out = pd.concat(parts)
    out.attrs = dict(parts[0].attrs)
    return out


def test_fitted_effects_recover_a_doubled_purchase_rate():
    rfm = _two_channels(3000)
    model = clvkit.with_covariates("bgnbd", ["channel"], reference={"channel": "web"})
    model.fit(rfm, method="laplace", random_seed=1)
    t = model.effects(0.9).set_index("process")
    purchase, dropout = t.loc["purchase"], t.loc["dropout"]
    assert purchase["lower"] < 2.0 < purchase["upper"]  # the truth: 2x
    assert purchase["lower"] > 1.5 and purchase["p_above_1"] == 1.0
    assert dropout["lower"] < 1.0 < dropout["upper"]  # the truth: no effect
    assert purchase["sentence"].startswith("Customers from channel 'shop' instead of 'web' buy ")
    assert dropout["sentence"].endswith("(90% interval, not distinguishable from 1).")
    assert purchase["meaning"].endswith("purchases per week while alive")


def test_segments_without_covariates():
    post = _posterior("BetaGeo", BG, {"alpha": -1}, encoding=None, segment="region",
                      seg={"alpha": [0.5, -1.0, 0.3]}, sd={"alpha": 0.4})  # fmt: skip
    model = CovariatePurchaseModel.from_posterior(post)
    t = model.effects()
    assert t["coefficient"].tolist() == [*(f"region[{v}]" for v in LEVELS), "region (spread)"]
    assert (t["process"] == "purchase").all()
    params = _flat(post, model.spec)
    spread = np.exp(params["sd_alpha"][:, 0])
    assert t.iloc[-1]["multiplier"] == pytest.approx(spread.mean(), rel=1e-10)
