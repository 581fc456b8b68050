"""Vector parameters (``ModelSpec.param_sizes``) through every fitting method.

A toy spend model ``y_i ~ Normal(z_i' beta, 1)`` with a known design ``Z`` (a constant, a
channel indicator, a numeric column) has a vector parameter ``beta`` (support real, one
Normal prior for all elements) and closed forms: the MLE is least squares, the posterior under
``Normal(0, s0)`` is the Bayesian linear regression ``N(m, V)``, ``V = (Z'Z + I / s0^2)^-1``,
``m = V Z'y`` (so MAP = m and the Laplace approximation is exact). A mixed model adds a scalar
positive ``sigma`` after the vector (``y_i ~ Normal(z_i' beta, sigma)``). Both have a compiled
log posterior for nutpie's native NUTS and a PyMC graph (a vector RV with dims). The models are
not registered; ``clvkit.load`` finds them through ``persistence.SAVED``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numba
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from clvkit.errors import ClvkitError
from clvkit.inference.estimator import pymc_prior
from clvkit.inference.layout import Layout, param_dim
from clvkit.inference.nutpie_native import LOGP_SIG, NativeKernel, f64, i64, status
from clvkit.inference.sampling import nb_prior
from clvkit.models import persistence
from clvkit.models.base import SpendModel
from clvkit.models.contract import Columns, Params, SpendSpec
from clvkit.models.stats import fingerprint

K = 3
COORDS = ("const", "channel[B]", "x")
COLS = ("z0", "z1", "z2")
S0 = 2.0  # prior sd of every element of beta
BETA_PRIOR = {"dist": "Normal", "mu": 0.0, "sigma": S0}
SIGMA_PRIOR = {"dist": "Gamma", "alpha": 2.0, "beta": 1.0}
LOG_2PI = float(np.log(2 * np.pi))


class VecSpec(SpendSpec):
    name: ClassVar[str] = "vec_toy"
    model_name: ClassVar[str] = "VecToy"
    label: ClassVar[str] = "Vector toy"
    param_names: ClassVar[tuple[str, ...]] = ("beta",)
    param_support: ClassVar[dict[str, str]] = {"beta": "real"}
    param_sizes: ClassVar[dict[str, int]] = {"beta": K}
    param_coords: ClassVar[dict[str, tuple[str, ...]]] = {"beta": COORDS}
    columns: ClassVar[tuple[str, ...]] = ("y", *COLS)

    def customer_columns(self, table: pd.DataFrame, argument: str = "rfm") -> dict:
        return {c: table[c].to_numpy(dtype=np.float64) for c in self.columns}

    def value_key(self, cols: Columns) -> np.ndarray:
        return np.stack([cols[c] for c in self.columns], axis=1)

    def _sigma(self, params: Params) -> np.ndarray:
        return np.ones((len(params["beta"]), 1))

    def _mean(self, params: Params, cols: Columns) -> np.ndarray:
        z = np.stack([cols[c] for c in COLS], axis=1)  # (n, K)
        return params["beta"] @ z.T  # (S, n)

    def loglik(self, params: Params, cols: Columns) -> np.ndarray:
        s = self._sigma(params)
        r = (cols["y"] - self._mean(params, cols)) / s
        return -np.log(s) - 0.5 * LOG_2PI - 0.5 * r * r

    def expected_spend(self, params: Params, cols: Columns) -> np.ndarray:
        return self._mean(params, cols)

    def sample_spend(self, params, cols, draw, customer, count, rng) -> np.ndarray:
        mean = self._mean(params, cols)[draw, customer]
        sd = self._sigma(params)[draw, 0]
        return np.repeat(mean, count) + np.repeat(sd, count) * rng.standard_normal(count.sum())


class MixSpec(VecSpec):
    name: ClassVar[str] = "mix_toy"
    model_name: ClassVar[str] = "MixToy"
    label: ClassVar[str] = "Mixed toy"
    param_names: ClassVar[tuple[str, ...]] = ("beta", "sigma")

    def _sigma(self, params: Params) -> np.ndarray:
        return params["sigma"]


@dataclass(frozen=True)
class VecStats:
    y: np.ndarray
    z: np.ndarray  # (n, K)

    @property
    def n_customers(self) -> int:
        return int(self.y.size)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.y, self.z)


@numba.njit(error_model="numpy")
def toy_logp(eta, y, z, codes, pars, grad):  # pragma: no cover - compiled
    """Log posterior of beta (and log sigma when eta has K + 1 entries); z is (n, K) flat."""
    n = y.size
    k = z.size // n
    s = np.exp(eta[k]) if eta.size > k else 1.0
    ll = 0.0
    for j in range(eta.size):
        grad[j] = 0.0
    for i in range(n):
        mu = 0.0
        for j in range(k):
            mu += z[i * k + j] * eta[j]
        r = (y[i] - mu) / s
        ll += -np.log(s) - 0.5 * LOG_2PI - 0.5 * r * r
        for j in range(k):
            grad[j] += r / s * z[i * k + j]
        if eta.size > k:
            grad[k] += r * r - 1.0
    return ll + nb_prior(eta, codes, pars, grad)


@numba.cfunc(LOGP_SIG, error_model="numpy")
def toy_logp_c(dim, x_ptr, grad_ptr, logp_ptr, table_ptr):  # pragma: no cover - compiled
    table = numba.carray(table_ptr, (8,))
    eta = numba.carray(x_ptr, (dim,))
    grad = numba.carray(grad_ptr, (dim,))
    value = toy_logp(eta, f64(table, 0), f64(table, 1), i64(table, 2), f64(table, 3), grad)
    logp_ptr[0] = value
    return status(value, grad)


class VecToy(SpendModel):
    spec: ClassVar[VecSpec] = VecSpec()
    _default_priors: ClassVar[dict[str, dict[str, Any]]] = {"beta": BETA_PRIOR}

    def _prepare(self, rfm: pd.DataFrame) -> tuple[VecStats, str | None]:
        cols = self.spec.customer_columns(rfm)
        return VecStats(cols["y"], np.stack([cols[c] for c in COLS], axis=1)), None

    def _loglik_grad(self, theta: np.ndarray, s: VecStats) -> tuple[float, np.ndarray]:
        beta = theta[:K]
        sigma = np.exp(theta[K]) if theta.size > K else 1.0
        r = (s.y - s.z @ beta) / sigma
        ll = float(np.sum(-np.log(sigma) - 0.5 * LOG_2PI - 0.5 * r * r))
        grad = s.z.T @ r / sigma
        if theta.size > K:
            grad = np.append(grad, np.sum(r * r - 1.0))
        return ll, grad

    def _x0(self, s: VecStats) -> np.ndarray:
        return np.zeros(len(self._layout().keys))

    def _native_kernel(self, s: VecStats, codes: np.ndarray, pars: np.ndarray) -> NativeKernel:
        return NativeKernel(toy_logp, toy_logp_c, [s.y, s.z.ravel(), codes, pars])

    def _pymc_model(self, s: VecStats, priors: dict[str, dict[str, Any]]) -> Any:
        import pymc as pm

        with pm.Model(coords=self._layout().pymc_coords()) as model:
            beta = pymc_prior("beta", priors["beta"], dims=param_dim("beta"))
            sigma = pymc_prior("sigma", priors["sigma"]) if "sigma" in priors else 1.0
            pm.Normal("y", mu=pm.math.dot(s.z, beta), sigma=sigma, observed=s.y)
        return model

    def _observed_data(self, s: VecStats) -> xr.Dataset:
        return xr.Dataset({"y": ("row", s.y), "z": (("row", "column"), s.z)})

    @staticmethod
    def _stats_from_observed(ds: xr.Dataset) -> VecStats:
        return VecStats(ds["y"].to_numpy(), ds["z"].to_numpy())


class MixToy(VecToy):
    spec: ClassVar[MixSpec] = MixSpec()
    _default_priors: ClassVar[dict[str, dict[str, Any]]] = {
        "beta": BETA_PRIOR,
        "sigma": SIGMA_PRIOR,
    }

    def _x0(self, s: VecStats) -> np.ndarray:
        return np.zeros(K + 1)


def make_data(sigma: float, seed: int, n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    z = np.column_stack([np.ones(n), (rng.random(n) < 0.4).astype(float), rng.normal(size=n)])
    y = z @ np.array([0.5, -1.0, 0.8]) + sigma * rng.standard_normal(n)
    return pd.DataFrame({"y": y, "z0": z[:, 0], "z1": z[:, 1], "z2": z[:, 2]})


def design(data: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    return data[list(COLS)].to_numpy(), data["y"].to_numpy()


def exact_posterior(data: pd.DataFrame, s0: float = S0) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of beta | y for y ~ N(Z beta, 1), beta ~ N(0, s0^2 I)."""
    z, y = design(data)
    cov = np.linalg.inv(z.T @ z + np.eye(K) / s0**2)
    return cov @ z.T @ y, cov


@pytest.fixture(scope="module")
def data():
    return make_data(1.0, 11)


@pytest.fixture(scope="module")
def mixed_data():
    return make_data(1.7, 12)


ROWS = [f"beta[{c}]" for c in COORDS]


# ---- the layout ------------------------------------------------------------------------------


def test_layout_of_a_mixed_spec_and_priors_per_element():
    lay = Layout.of(MixToy.spec)
    assert lay.keys == ("beta[0]", "beta[1]", "beta[2]", "sigma")
    assert lay.labels == (*ROWS, "sigma")
    assert lay.flat_supports == ("real", "real", "real", "positive")
    assert lay.slice("sigma") == slice(3, 4)
    assert MixToy.spec.param_size("beta") == 3 and MixToy.spec.param_size("sigma") == 1
    assert MixToy.spec.element_names("beta") == COORDS and MixToy.spec.element_names("sigma") == ()
    # the objective adds one Normal(0, S0) log density per element
    theta = np.array([0.3, -0.2, 1.1, np.log(1.5)])
    stats = VecStats(np.array([1.0, 2.0]), np.array([[1.0, 0.0, 0.5], [1.0, 1.0, -0.5]]))
    model = MixToy()
    priors = model._resolve_priors()
    lp, grad = model._objective(stats, priors)(theta)
    ll, gll = model._loglik_grad(theta, stats)
    b = theta[:3]
    s = 1.5
    expected = (
        ll
        + np.sum(-np.log(S0) - 0.5 * LOG_2PI - 0.5 * (b / S0) ** 2)
        + (2 * np.log(1.0) - 0.0 + (2 - 1) * np.log(s) - s)  # Gamma(2, 1) log density
    )
    assert lp == pytest.approx(expected, rel=1e-12)
    assert grad[:3] == pytest.approx(gll[:3] - b / S0**2, rel=1e-12)
    assert grad[3] == pytest.approx(gll[3] + (1 / s - 1.0) * s, rel=1e-12)


def test_bad_sizes_and_coords_are_refused():
    class Bad(VecSpec):
        param_coords: ClassVar[dict[str, tuple[str, ...]]] = {"beta": ("a", "b")}

    with pytest.raises(ClvkitError, match=r"param_coords\['beta'\] has 2 names.*length 3"):
        Layout.of(Bad())

    class Bad2(VecSpec):
        param_sizes: ClassVar[dict[str, int]] = {"beta": 0}

    with pytest.raises(ClvkitError, match=r"param_sizes\['beta'\] is 0.*positive integer"):
        Layout.of(Bad2())


# ---- point fits -----------------------------------------------------------------------------


def test_mle_is_least_squares_with_its_standard_errors(data):
    z, y = design(data)
    ls = np.linalg.solve(z.T @ z, z.T @ y)
    m = VecToy().fit(data, method="mle")
    post = m.posterior_
    assert post["beta"].dims == ("chain", "draw", "beta_dim")
    assert list(post["beta_dim"].values) == list(COORDS)
    np.testing.assert_allclose(post["beta"].values[0, 0], ls, atol=1e-6)
    s = m.summary()
    assert list(s.index) == ROWS
    np.testing.assert_allclose(s["mean"], ls, atol=1e-6)
    # observed information Z'Z (identity transform): sd = sqrt(diag((Z'Z)^-1))
    np.testing.assert_allclose(s["sd"], np.sqrt(np.diag(np.linalg.inv(z.T @ z))), rtol=1e-5)
    np.testing.assert_allclose(s["95%"] - s["mean"], 1.6448536269514722 * s["sd"], rtol=1e-9)
    d, shape = m._draws()
    assert d["beta"].shape == (1, K) and shape == (1, 1)
    assert m.log_likelihood_ == pytest.approx(float(m.log_likelihood(data).sum()), rel=1e-12)
    resid = y - z @ ls
    assert m.log_likelihood_ == pytest.approx(
        -0.5 * len(y) * LOG_2PI - 0.5 * resid @ resid, rel=1e-10
    )


def test_map_is_the_bayesian_regression_mean_with_one_prior_for_all_elements(data):
    mean, _ = exact_posterior(data)
    m = VecToy().fit(data, method="map")
    np.testing.assert_allclose(m.posterior_["beta"].values[0, 0], mean, atol=1e-6)
    tight = {"beta": {"dist": "Normal", "mu": 0.0, "sigma": 0.1}}
    m2 = VecToy(priors=tight).fit(data, method="map")
    np.testing.assert_allclose(m2.posterior_["beta"].values[0, 0], exact_posterior(data, 0.1)[0],
                               atol=1e-6)  # fmt: skip
    with pytest.raises(ClvkitError, match=r"'priors\['beta'\]' is a Gamma prior.*real"):
        VecToy(priors={"beta": SIGMA_PRIOR}).fit(data, method="map")


# ---- posterior draws ------------------------------------------------------------------------


def _check_exact(m: VecToy, data: pd.DataFrame, n_sd: float = 4.5) -> None:
    mean, cov = exact_posterior(data)
    sd = np.sqrt(np.diag(cov))
    s = m.summary()
    assert list(s.index) == ROWS
    n = m.posterior_.sizes["chain"] * m.posterior_.sizes["draw"]
    # Monte Carlo error: NUTS by its bulk ESS; Laplace draws are independent
    eff = s["ess_bulk"].to_numpy() if m.method_ == "nuts" else np.full(K, n)
    assert np.all(np.abs(s["mean"] - mean) < n_sd * sd / np.sqrt(eff))
    # sd of a sample sd ~ sd / sqrt(2 n_eff)
    assert np.all(np.abs(s["sd"] / sd - 1) < n_sd / np.sqrt(2 * eff))
    draws = m._draws()[0]["beta"]
    corr = np.corrcoef(draws.T)
    exact_corr = cov / np.outer(sd, sd)
    np.testing.assert_allclose(corr, exact_corr, atol=0.08)


def test_laplace_is_exact_for_the_linear_model(data):
    m = VecToy().fit(data, method="laplace", chains=2, draws=3000, random_seed=4)
    assert m.posterior_["beta"].dims == ("chain", "draw", "beta_dim")
    _check_exact(m, data)


@pytest.mark.slow
def test_nuts_native_matches_the_exact_posterior(data):
    m = VecToy().fit(data, chains=2, draws=1000, tune=500, random_seed=7, progressbar=False)
    post = m.posterior_
    assert post["beta"].dims == ("chain", "draw", "beta_dim")
    assert post["beta"].shape == (2, 1000, K)
    assert list(post["beta_dim"].values) == list(COORDS)
    diag = m.diagnostics()
    assert diag["ok"], diag
    _check_exact(m, data)
    s = m.summary()
    assert s["r_hat"].max() < 1.01 and s["ess_bulk"].min() > 400


class PyfuncToy(VecToy):
    """The toy without its compiled kernel: NUTS samples the numpy log posterior through
    nutpie's public ``from_pyfunc`` (``numpy_nuts``), as the covariate models do."""

    numpy_nuts: ClassVar[bool] = True

    def _native_kernel(self, s: VecStats, codes: np.ndarray, pars: np.ndarray) -> None:
        return None

    def _pymc_model(self, s: VecStats, priors: dict[str, dict[str, Any]]) -> None:
        return None


@pytest.mark.slow
def test_nuts_on_the_numpy_log_posterior_matches_the_exact_posterior(data):
    m = PyfuncToy().fit(data, chains=2, draws=1000, tune=500, random_seed=9, progressbar=False)
    post = m.posterior_
    assert post["beta"].dims == ("chain", "draw", "beta_dim")
    assert list(post["beta_dim"].values) == list(COORDS)
    assert m.posterior_.attrs["sampler"] == "nutpie"
    assert m.diagnostics()["ok"]
    _check_exact(m, data)
    again = PyfuncToy().fit(data, chains=2, draws=1000, tune=500, random_seed=9, progressbar=False)
    np.testing.assert_array_equal(again.posterior_["beta"].values, post["beta"].values)


def test_nuts_without_kernel_or_graph_is_refused_unless_numpy_nuts(data):
    class Bare(PyfuncToy):
        numpy_nuts: ClassVar[bool] = False

    with pytest.raises(ClvkitError, match="has no NUTS sampler here"):
        Bare().fit(data, chains=1, draws=10, tune=10, progressbar=False)


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["nutpie-pytensor", "pymc"])
def test_nuts_through_pymc_matches_the_exact_posterior(data, sampler):
    m = VecToy().fit(
        data, chains=2, draws=1000, tune=500, random_seed=8, progressbar=False, sampler=sampler
    )
    assert m.posterior_["beta"].dims == ("chain", "draw", "beta_dim")
    assert list(m.posterior_["beta_dim"].values) == list(COORDS)
    assert m.diagnostics()["ok"]
    _check_exact(m, data)


# ---- given parameters, save and load -------------------------------------------------------------


def test_from_params_a_list_per_vector(data):
    m = VecToy.from_params(beta=[1.0, -2.0, 0.5])
    assert m.posterior_["beta"].dims == ("chain", "draw", "beta_dim")
    assert list(m.posterior_["beta_dim"].values) == list(COORDS)
    z, _ = design(data.iloc[:5])
    spend = m.expected_spend(data.iloc[:5])["mean"].to_numpy()
    np.testing.assert_allclose(spend, z @ np.array([1.0, -2.0, 0.5]), rtol=1e-12)
    s = m.summary()
    assert list(s.index) == ROWS and s.loc["beta[channel[B]]", "mean"] == -2.0
    draws = np.array([[1.0, -2.0, 0.5], [0.0, 1.0, 2.0]])
    m2 = VecToy.from_params(beta=draws)
    assert m2._draws()[0]["beta"].tolist() == draws.tolist()
    ll = m2.log_likelihood(data.iloc[:2])
    assert ll.dims == ("chain", "draw", "customer_id") and ll.shape == (1, 2, 2)
    with pytest.raises(ClvkitError, match=r"'beta' has shape \(2,\).*vector of 3 elements"):
        VecToy.from_params(beta=[1.0, 2.0])
    with pytest.raises(ClvkitError, match=r"'sigma'.*not a finite positive number"):
        MixToy.from_params(beta=[1.0, 2.0, 3.0], sigma=-1.0)
    with pytest.raises(ClvkitError, match=r"different numbers of draws.*'beta': 2.*'sigma': 1"):
        MixToy.from_params(beta=draws, sigma=1.0)
    with pytest.raises(ClvkitError, match=r"'beta'.*is not finite"):
        VecToy.from_params(beta=[1.0, np.nan, 3.0])
    # from a posterior whose vector dim has another name: relabelled with the spec's coords
    ds = xr.Dataset({"beta": (("chain", "draw", "k"), draws[None])})
    m3 = VecToy.from_posterior(ds)
    assert m3.posterior_["beta"].dims == ("chain", "draw", "beta_dim")
    assert list(m3.posterior_["beta_dim"].values) == list(COORDS)
    assert VecToy.from_posterior(m).posterior_["beta"].values.tolist() == [[[1.0, -2.0, 0.5]]]
    with pytest.raises(ClvkitError, match=r"vector parameter 'beta'.*expected.*3 elements"):
        VecToy.from_posterior(xr.Dataset({"beta": (("chain", "draw", "k"), np.zeros((1, 1, 2)))}))


def test_save_load_round_trip(data, tmp_path, monkeypatch):
    monkeypatch.setitem(persistence.SAVED, "MixToy", MixToy)
    for method in ("mle", "laplace"):
        m = MixToy().fit(data, method=method, chains=1, draws=50, random_seed=1)
        path = tmp_path / f"mix_{method}.nc"
        m.save(path)
        back = persistence.load(path)
        assert type(back) is MixToy and back.method_ == method
        xr.testing.assert_identical(back.posterior_["beta"], m.posterior_["beta"])
        pd.testing.assert_frame_equal(back.summary(), m.summary())
        assert back.log_likelihood_ == m.log_likelihood_


# ---- a mixed model (scalar positive + vector real) through every method ---------------------------


def test_mixed_model_point_fits(mixed_data):
    z, y = design(mixed_data)
    n = len(y)
    ls = np.linalg.solve(z.T @ z, z.T @ y)
    rss = float(np.sum((y - z @ ls) ** 2))
    m = MixToy().fit(mixed_data, method="mle")
    np.testing.assert_allclose(m.posterior_["beta"].values[0, 0], ls, atol=1e-6)
    assert m.posterior_["sigma"].item() == pytest.approx(np.sqrt(rss / n), abs=1e-6)
    s = m.summary()
    assert list(s.index) == [*ROWS, "sigma"]
    # observed information: beta block Z'Z / sigma^2, sigma: 2 n / sigma^2 (block diagonal)
    sig = np.sqrt(rss / n)
    np.testing.assert_allclose(
        s["sd"].to_numpy()[:K], sig * np.sqrt(np.diag(np.linalg.inv(z.T @ z))), rtol=1e-5
    )
    assert s.loc["sigma", "sd"] == pytest.approx(sig / np.sqrt(2 * n), rel=1e-5)
    # MAP: beta is the ridge solution at sigma_MAP; sigma solves its stationarity equation
    mp = MixToy().fit(mixed_data, method="map")
    b, sm = mp.posterior_["beta"].values[0, 0], mp.posterior_["sigma"].item()
    ridge = np.linalg.solve(z.T @ z + np.eye(K) * sm**2 / S0**2, z.T @ y)
    np.testing.assert_allclose(b, ridge, atol=1e-6)
    r2 = float(np.sum((y - z @ b) ** 2))
    # d/ds [-n log s - r2 / (2 s^2) + (2 - 1) log s - s] = 0 (Gamma(2, 1) prior)
    assert -n / sm + r2 / sm**3 + 1 / sm - 1 == pytest.approx(0.0, abs=1e-4)


@pytest.mark.slow
def test_mixed_model_laplace_and_nuts_agree(mixed_data):
    z, y = design(mixed_data)
    n = len(y)
    ls = np.linalg.solve(z.T @ z, z.T @ y)
    sig = np.sqrt(np.sum((y - z @ ls) ** 2) / n)
    ref_sd = sig * np.sqrt(np.diag(np.linalg.inv(z.T @ z)))
    fits = {
        "laplace": MixToy().fit(mixed_data, method="laplace", chains=2, draws=2000, random_seed=3),
        "nutpie": MixToy().fit(mixed_data, chains=2, draws=1000, tune=500, random_seed=5,
                               progressbar=False),
        "pymc": MixToy().fit(mixed_data, chains=2, draws=1000, tune=500, random_seed=6,
                             progressbar=False, sampler="nutpie-pytensor"),
    }  # fmt: skip
    for method, m in fits.items():
        s = m.summary()
        assert list(s.index) == [*ROWS, "sigma"], method
        assert m.posterior_["beta"].dims == ("chain", "draw", "beta_dim"), method
        # beta: near least squares (prior sd 2 shrinks by < 1%), sd sigma sqrt(diag((Z'Z)^-1))
        assert np.all(np.abs(s["mean"].to_numpy()[:K] - ls) < 0.25 * ref_sd), method
        np.testing.assert_allclose(s["sd"].to_numpy()[:K], ref_sd, rtol=0.1, err_msg=method)
        assert s.loc["sigma", "mean"] == pytest.approx(sig, rel=0.02), method
        assert s.loc["sigma", "sd"] == pytest.approx(sig / np.sqrt(2 * n), rel=0.12), method
        if method != "laplace":
            assert m.diagnostics()["ok"], method
        ll = m.log_likelihood(mixed_data.iloc[:3])
        assert ll.shape == (2, m.posterior_.sizes["draw"], 3)


def test_registry_resolves_a_dict_with_vector_values():
    """A dict of parameters reaching the layers above models/ (registry.resolve): k numbers
    (one draw) or an (S, k) array for a vector parameter, with its element names."""
    from clvkit.models import registry
    from contract import checks

    with checks.registry_restored():
        registry.register(VecToy)
        spec, post = registry.resolve({"beta": [0.5, -1.0, 2.0]}, "spend", "spend_model")
        assert spec.name == "vec_toy"
        assert post["beta"].dims == ("chain", "draw", "beta_dim")
        assert list(post["beta_dim"].values) == list(COORDS)
        np.testing.assert_array_equal(registry.flat_params(spec, post)["beta"], [[0.5, -1.0, 2.0]])
        draws = np.arange(12.0).reshape(4, 3)
        _, post = registry.resolve({"beta": draws}, "spend", "spend_model")
        np.testing.assert_array_equal(registry.flat_params(spec, post)["beta"], draws)
        with pytest.raises(ClvkitError, match=r"'beta' has shape \(2,\).*vector of 3"):
            registry.resolve({"beta": [1.0, 2.0]}, "spend", "spend_model")
