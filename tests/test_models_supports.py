"""Parameter supports other than positive, and a model without NUTS capabilities.

A toy spend model with a real parameter ``mu`` (spend ~ Normal(mu, 1)) and one in (0, 1),
``pi`` (a purchase is a success with probability pi), with closed-form MLE, MAP and posterior,
checks the transforms (identity, logit), the Normal and Beta priors, the point standard errors,
the Laplace draws and the refusal of NUTS for a model with neither a compiled kernel nor a PyMC
graph. It is not registered (the registry holds the shipped models).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from scipy.special import expit

from clvkit.errors import ClvkitError
from clvkit.models.base import SpendModel
from clvkit.models.contract import Columns, Params, SpendSpec
from clvkit.models.stats import fingerprint

MU_PRIOR = {"dist": "Normal", "mu": 0.0, "sigma": 2.0}
PI_PRIOR = {"dist": "Beta", "alpha": 3.0, "beta": 2.0}


class ToySpec(SpendSpec):
    name: ClassVar[str] = "toy"
    model_name: ClassVar[str] = "Toy"
    label: ClassVar[str] = "Toy"
    param_names: ClassVar[tuple[str, ...]] = ("mu", "pi")
    param_support: ClassVar[dict[str, str]] = {"mu": "real", "pi": "unit"}
    columns: ClassVar[tuple[str, ...]] = ("y", "k")

    def customer_columns(self, table: pd.DataFrame, argument: str = "rfm") -> dict:
        return {c: table[c].to_numpy(dtype=np.float64) for c in self.columns}

    def new_customer_columns(self, n: int = 1) -> dict:
        return {c: np.zeros(n) for c in self.columns}

    def value_key(self, cols: Columns) -> np.ndarray:
        return np.stack([cols["y"], cols["k"]], axis=1)

    def loglik(self, params: Params, cols: Columns) -> np.ndarray:
        mu, pi = params["mu"], params["pi"]
        y, k = cols["y"], cols["k"]
        return (
            -0.5 * (y - mu) ** 2
            - 0.5 * np.log(2 * np.pi)
            + k * np.log(pi)
            + (1 - k) * np.log1p(-pi)
        )

    def expected_spend(self, params: Params, cols: Columns) -> np.ndarray:
        return np.broadcast_to(params["mu"], (len(params["mu"]), len(cols["y"]))).copy()

    def sample_spend(self, params, cols, draw, customer, count, rng) -> np.ndarray:
        return params["mu"][np.repeat(draw, count), 0] + rng.standard_normal(int(count.sum()))


@dataclass(frozen=True)
class ToyStats:
    y: np.ndarray
    k: np.ndarray

    @property
    def n_customers(self) -> int:
        return int(self.y.size)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.y, self.k)


class Toy(SpendModel):
    spec: ClassVar[ToySpec] = ToySpec()
    _default_priors: ClassVar[dict[str, dict[str, Any]]] = {"mu": MU_PRIOR, "pi": PI_PRIOR}

    def _prepare(self, rfm: pd.DataFrame) -> tuple[ToyStats, str | None]:
        cols = self.spec.customer_columns(rfm)
        return ToyStats(cols["y"], cols["k"]), None

    def _loglik_grad(self, theta: np.ndarray, s: ToyStats) -> tuple[float, np.ndarray]:
        mu, pi = theta[0], expit(theta[1])
        n, K = s.y.size, s.k.sum()
        ll = self.spec.loglik(
            {"mu": np.array([[mu]]), "pi": np.array([[pi]])}, {"y": s.y, "k": s.k}
        ).sum()
        return float(ll), np.array([np.sum(s.y - mu), K * (1 - pi) - (n - K) * pi])

    def _x0(self, s: ToyStats) -> np.ndarray:
        return np.zeros(2)

    def _observed_data(self, s: ToyStats) -> xr.Dataset:
        return xr.Dataset({"y": ("row", s.y), "k": ("row", s.k)})

    @staticmethod
    def _stats_from_observed(ds: xr.Dataset) -> ToyStats:
        return ToyStats(ds["y"].to_numpy(), ds["k"].to_numpy())


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    n = 400
    return pd.DataFrame({"y": rng.normal(-1.3, 1.0, n), "k": (rng.random(n) < 0.3).astype(float)})


def test_mle_and_standard_errors_on_identity_and_logit_scales(data):
    n, ybar, phat = len(data), data["y"].mean(), data["k"].mean()
    m = Toy().fit(data, method="mle")
    s = m.summary(prob=0.9)
    assert s.loc["mu", "mean"] == pytest.approx(ybar, abs=1e-7)
    assert s.loc["pi", "mean"] == pytest.approx(phat, abs=1e-7)
    # observed information: mu sd = 1/sqrt(n); pi by the delta method from the logit scale
    assert s.loc["mu", "sd"] == pytest.approx(1 / np.sqrt(n), rel=1e-5)
    assert s.loc["pi", "sd"] == pytest.approx(np.sqrt(phat * (1 - phat) / n), rel=1e-5)
    # intervals: symmetric for the real parameter, from the logit scale for pi (inside (0, 1))
    z = 1.6448536269514722
    assert s.loc["mu", "5%"] == pytest.approx(ybar - z / np.sqrt(n), rel=1e-5)
    lo = expit(np.log(phat / (1 - phat)) - z / np.sqrt(n * phat * (1 - phat)))
    assert s.loc["pi", "5%"] == pytest.approx(lo, rel=1e-5)
    assert m.posterior_["mu"].item() < 0  # a negative value where the support allows it
    assert m.log_likelihood_ == pytest.approx(float(m.log_likelihood(data).sum()), rel=1e-12)


def test_map_with_normal_and_beta_priors_is_the_closed_form(data):
    n, K = len(data), data["k"].sum()
    m = Toy().fit(data, method="map")
    # Normal(0, 2) prior, unit variance: mode sum(y) / (n + 1/4); Beta(3, 2): (K+2)/(n+3)
    assert m.posterior_["mu"].item() == pytest.approx(data["y"].sum() / (n + 0.25), abs=1e-7)
    assert m.posterior_["pi"].item() == pytest.approx((K + 2) / (n + 3), abs=1e-7)
    other = Toy(priors={"pi": {"dist": "Beta", "alpha": 1.0, "beta": 1.0}}).fit(data, method="map")
    assert other.posterior_["pi"].item() == pytest.approx(K / n, abs=1e-7)


def test_laplace_from_the_numpy_objective(data):
    n, K = len(data), data["k"].sum()
    m = Toy().fit(data, method="laplace", chains=2, draws=4000, random_seed=3)
    mu = m.posterior_["mu"].values.ravel()
    pi = m.posterior_["pi"].values.ravel()
    assert ((pi > 0) & (pi < 1)).all()
    # mu's posterior is normal, so Laplace is exact: mean sum(y)/(n + 1/4), sd 1/sqrt(n + 1/4)
    prec = n + 0.25
    assert abs(mu.mean() - data["y"].sum() / prec) < 5 * np.sqrt(1 / prec / mu.size)
    assert mu.std() == pytest.approx(1 / np.sqrt(prec), rel=0.05)
    # pi | data ~ Beta(K + 3, n - K + 2); the logit-scale normal approximation is close to it
    a, b = K + 3, n - K + 2
    assert pi.mean() == pytest.approx(a / (a + b), abs=2e-3)
    assert pi.std() == pytest.approx(np.sqrt(a * b / ((a + b) ** 2 * (a + b + 1))), rel=0.06)


def test_nuts_refused_without_a_kernel_or_graph(data):
    for sampler in ("nutpie", "pymc", "nutpie-pytensor"):
        with pytest.raises(ClvkitError, match=r"no NUTS sampler.*Suggestion.*method='laplace'"):
            Toy().fit(data, sampler=sampler, chains=1, draws=10, tune=10)


def test_priors_must_suit_the_support(data):
    with pytest.raises(ClvkitError, match=r"'priors\['mu'\]' is a LogNormal prior.*real.*Normal"):
        Toy(priors={"mu": {"dist": "LogNormal", "mu": 0.0, "sigma": 1.0}}).fit(data, method="map")
    with pytest.raises(ClvkitError, match=r"'priors\['pi'\]' is a Normal prior.*\['Beta'\]"):
        Toy(priors={"pi": {"dist": "Normal", "mu": 0.0, "sigma": 1.0}}).fit(data, method="map")
    with pytest.raises(ClvkitError, match=r"'priors\['mu'\]'.*sigma=-1.0"):
        Toy(priors={"mu": {"dist": "Normal", "mu": 0.0, "sigma": -1.0}}).fit(data, method="map")
    from clvkit import BetaGeo

    with pytest.raises(ClvkitError, match=r"is a Normal prior, for real parameters"):
        BetaGeo(priors={"r": {"dist": "Normal", "mu": 0.0, "sigma": 1.0}}).fit(
            pd.DataFrame({"frequency": [1], "recency": [1.0], "T": [2.0]}), method="map"
        )


def test_from_params_checks_supports_and_predicts():
    toy = Toy.from_params(mu=-2.5, pi=0.25)
    assert toy.expected_spend_new_customer().item() == -2.5
    with pytest.raises(ClvkitError, match=r"'pi'.*not a finite unit number"):
        Toy.from_params(mu=1.0, pi=1.5)
    with pytest.raises(ClvkitError, match=r"'mu'.*is not finite"):
        Toy.from_params(mu=np.inf, pi=0.5)
