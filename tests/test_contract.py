"""Every registered model passes the contract checks (tests/contract/checks.py), and so does
the example model of tests/example_model (registered only for the duration of this module)."""

from __future__ import annotations

import functools

import numpy as np
import pandas as pd
import pytest

import clvkit.datasets
from clvkit.datasets import cdnow_calibration_summary
from clvkit.models import registry
from contract import checks, tables

EXAMPLE = "poisson_exp"
PURCHASE = [c.spec.name for c in registry.models("purchase") if c.spec.name != EXAMPLE]
PURCHASE.append(EXAMPLE)
SPEND = registry.names("spend")
S = 4  # posterior draws per check

_FITS: dict[str, object] = {}


@pytest.fixture(scope="module")
def example() -> type:
    with checks.registry_restored():
        from example_model.model import PoissonExponential

        registry.register(PoissonExponential)
        yield PoissonExponential


#: Customer tables other than CDNOW's continuous-time RFM, by ``ModelSpec.data``: a loader and
#: the rows of eight customers with different histories (sBG: active and churned subscribers).
OWN_TABLES = {
    "opportunities": (
        lambda: clvkit.datasets.donations_summary(),
        [0, 1, 3464, 4961, 6310, 7445, 8838, 9901],
    ),
    "contracts": (tables.contract_table, [0, 1, 2, 3, 10, 20, 57, 100]),
}


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    return cdnow_calibration_summary()


def _model_data(request: pytest.FixtureRequest) -> str:
    """The ``ModelSpec.data`` of the test's model (``"rfm"`` for the example and non-model
    tests)."""
    name = getattr(request.node, "callspec", None) and request.node.callspec.params.get("name")
    return "rfm" if name in (None, EXAMPLE) else registry.get(name).spec.data


@pytest.fixture
def rfm(request: pytest.FixtureRequest, cdnow: pd.DataFrame) -> pd.DataFrame:
    """CDNOW, or the model's own kind of table (:data:`OWN_TABLES`)."""
    data = _model_data(request)
    return _own_table(data) if data in OWN_TABLES else cdnow


@functools.cache
def _own_table(data: str) -> pd.DataFrame:
    return OWN_TABLES[data][0]()


@pytest.fixture
def few(request: pytest.FixtureRequest, rfm: pd.DataFrame) -> pd.DataFrame:
    """Eight customers with different histories (two without repeat purchases)."""
    data = _model_data(request)
    return rfm.iloc[
        OWN_TABLES[data][1] if data in OWN_TABLES else [0, 1, 2, 3, 10, 20, 57, 100]
    ].copy()


def _cls(name: str, example: type) -> type:
    return example if name == EXAMPLE else registry.get(name)


def _fit(cls: type, rfm: pd.DataFrame):
    if cls.spec.name not in _FITS:
        _FITS[cls.spec.name] = cls().fit(rfm, method="map", random_seed=0)
    return _FITS[cls.spec.name]


def _params(model, seed: int = 0) -> dict[str, np.ndarray]:
    point = {n: float(model.posterior_[n].mean()) for n in model.spec.param_names}
    return checks.jitter_draws(model.spec, point, S, np.random.default_rng(seed))


@pytest.mark.parametrize("name", PURCHASE)
def test_purchase_spec(name, example, rfm, few):
    model = _fit(_cls(name, example), rfm)
    spec = model.spec
    checks.check_purchase_spec(spec, _params(model), spec.customer_columns(few))


@pytest.mark.parametrize("name", PURCHASE)
def test_purchase_simulated_mean(name, example, rfm, few):
    model = _fit(_cls(name, example), rfm)
    spec = model.spec
    z = checks.check_simulate_mean(spec, _params(model), spec.customer_columns(few))
    assert set(z) == {"alive at T", "alive at T + horizon", "purchases"}


@pytest.mark.parametrize("name", PURCHASE)
def test_purchase_loglik_is_fit_objective(name, example, rfm):
    cls = _cls(name, example)
    model = _fit(cls, rfm)
    total = checks.check_loglik_objective(cls, _params(model), rfm, fitted=model)
    assert np.isfinite(total) and total < 0


@pytest.mark.parametrize("name", PURCHASE + SPEND)
def test_log_likelihood_at_params_without_fit(name, example, rfm):
    """``log_likelihood(rfm, params=...)`` works on an unfitted estimator, as documented."""
    cls = _cls(name, example)
    checks.check_loglik_objective(cls, _params(_fit(cls, rfm)), rfm)


@pytest.mark.parametrize("name", SPEND)
def test_spend_spec(name, rfm, few):
    model = _fit(registry.get(name), rfm)
    spec = model.spec
    checks.check_spend_spec(spec, _params(model), spec.customer_columns(few))


@pytest.mark.parametrize("name", SPEND)
def test_spend_simulated_mean(name, rfm, few):
    model = _fit(registry.get(name), rfm)
    spec = model.spec
    repeat = few[few["frequency"] > 0]
    checks.check_spend_sample_mean(spec, _params(model), spec.customer_columns(repeat))


@pytest.mark.parametrize("name", SPEND)
def test_spend_loglik_is_fit_objective(name, rfm):
    cls = registry.get(name)
    model = _fit(cls, rfm)
    checks.check_loglik_objective(cls, _params(model), rfm, fitted=model)


@pytest.mark.parametrize("name", PURCHASE + SPEND)
def test_estimator_fit_save_load(name, example, rfm, tmp_path):
    checks.check_estimator_fit_save_load(_cls(name, example), rfm, tmp_path / "model.nc")


@pytest.mark.parametrize("name", PURCHASE + SPEND)
def test_estimator_seeded(name, example, rfm):
    checks.check_estimator_seeded(_cls(name, example), rfm)


@pytest.mark.parametrize("name", PURCHASE + SPEND)
def test_estimator_predictions(name, example, rfm, few):
    model = _fit(_cls(name, example), rfm)
    checks.check_estimator_predictions(model, few)
    assert checks.check_estimator_new_customer(model) == 1


@pytest.mark.parametrize("name", PURCHASE + SPEND)
def test_estimator_time_unit_refused(name, example, rfm, few, cdnow):
    cls = _cls(name, example)
    kind = cls.spec.kind
    purchase = _fit(cls if kind == "purchase" else registry.get("bgnbd"), rfm)
    spend = _fit(cls if kind == "spend" else registry.get("gamma_gamma"), cdnow)
    checks.check_estimator_time_unit(purchase, spend, few, kind)


def test_registry_filters_models_by_the_table_they_read():
    """``ModelSpec.data`` names the customer table; the CLI, compare and the backtest ask the
    registry for ``"rfm"`` models only, and a model of another table is refused by name."""
    from clvkit.errors import ClvkitError
    from clvkit.models import registry

    rfm_names = registry.names("purchase", "rfm")
    assert {"bgnbd", "pnbd", "mbgnbd"} <= set(rfm_names)
    for cls in registry.models("purchase"):
        assert (cls.spec.name in rfm_names) == (cls.spec.data == "rfm")
    with pytest.raises(
        ClvkitError, match=r"reads clvkit\.rfm_summary.*not clvkit\.contract_summary"
    ):
        registry.get("bgnbd", "purchase", "contracts")


def test_resolution_by_names_takes_the_most_specific_model():
    """sBG's (alpha, beta) are a part of Pareto/NBD's (r, alpha, s, beta): a dict of Pareto/NBD
    parameters resolves to Pareto/NBD, and sBG's own to sBG."""
    one = np.ones(3)
    assert (
        registry.spec_of({"r": one, "alpha": one, "s": one, "beta": one}, "purchase", "m").name
        == "pnbd"
    )
    assert registry.spec_of({"alpha": one, "beta": one}, "purchase", "m").name == "sbg"


# ---- covariate specs (clvkit.with_covariates): the same spec-level checks ----------------------
#: Base models whose covariate specs run the spec-level checks (Gamma-Gamma: the spend ones).
COVARIATE_BASES = ["bgnbd", "pnbd"]


@functools.cache
def _covariate_table() -> pd.DataFrame:
    """CDNOW with a categorical ``channel`` (3 levels) and a numeric ``x``, and a ``region``
    segment column."""
    t = cdnow_calibration_summary()
    rng = np.random.default_rng(17)
    out = t.assign(
        channel=rng.choice(["web", "shop", "ad"], len(t)),
        x=rng.normal(0.0, 1.0, len(t)),
        region=rng.choice(["north", "south"], len(t)),
    )
    out.attrs = dict(t.attrs)
    return out


def _covariate_spec(name: str, segment: bool):
    from clvkit.data.covariates import covariate_design
    from clvkit.models.covariates import CovariatePurchaseSpec, CovariateSpendSpec, CovariateTerms

    base = registry.get(name).spec
    table = _covariate_table()
    enc = covariate_design(table, table, columns=["channel", "x"]).encoding()
    links = {p: int(s) for p, (_, s) in base.covariate_links.items()}
    levels = ("north", "south") if segment else ()
    terms = CovariateTerms(links, enc, "region" if segment else None, levels)
    kind = CovariateSpendSpec if base.kind == "spend" else CovariatePurchaseSpec
    return kind(base, terms)


def _covariate_params(spec, rfm: pd.DataFrame, seed: int = 0) -> dict[str, np.ndarray]:
    """Draws around the base's MAP fit, coefficients ~ N(0, 0.3), segment effects ~ N(0, 1)
    with spread 0.4."""
    base = _fit(registry.get(spec.base.name), rfm)
    point = {n: float(base.posterior_[n].mean()) for n in spec.base.param_names}
    rng = np.random.default_rng(seed)
    out = checks.jitter_draws(spec.base, point, S, rng)
    for n in spec.terms.param_names():
        size = spec.param_sizes.get(n, 1)
        out[n] = (np.full((S, 1), 0.4) if n.startswith("sd_")
                  else rng.normal(0.0, 0.3 if n.startswith("coef_") else 1.0, (S, size)))  # fmt: skip
    return out


@pytest.mark.parametrize("segment", [False, True], ids=["covariates", "segments"])
@pytest.mark.parametrize("name", COVARIATE_BASES)
def test_covariate_purchase_spec(name, segment, cdnow):
    """A covariate spec (categorical + numeric covariates, optionally two segments) passes the
    fast purchase checks on eight customers of three channels (and an unseen segment for the
    new customers)."""
    spec = _covariate_spec(name, segment)
    few = _covariate_table().iloc[[0, 1, 2, 3, 10, 20, 57, 100]]
    cols = spec.customer_columns(few)
    assert spec.classes(cols)[0].shape[0] == 8  # the numeric covariate: a class each
    checks.check_purchase_spec(spec, _covariate_params(spec, cdnow), cols)


@pytest.mark.parametrize("name", COVARIATE_BASES)
def test_covariate_purchase_simulated_mean(name, cdnow):
    spec = _covariate_spec(name, True)
    few = _covariate_table().iloc[[0, 1, 2, 3, 10, 20, 57, 100]]
    z = checks.check_simulate_mean(spec, _covariate_params(spec, cdnow), spec.customer_columns(few))
    assert set(z) == {"alive at T", "alive at T + horizon", "purchases"}


@pytest.mark.parametrize("segment", [False, True], ids=["covariates", "segments"])
def test_covariate_spend_spec(segment, cdnow):
    spec = _covariate_spec("gamma_gamma", segment)
    few = _covariate_table().iloc[[0, 1, 2, 3, 10, 20, 57, 100]]
    repeat = few[few["frequency"] > 0]
    params = _covariate_params(spec, cdnow)
    checks.check_spend_spec(spec, params, spec.customer_columns(few))
    checks.check_spend_sample_mean(spec, params, spec.customer_columns(repeat))
