"""The default NUTS path: nutpie's sampler on clvkit's numba kernels through a C callback, and
convergence diagnostics computed without ArviZ.

References: Vehtari, Gelman, Simpson, Carpenter and Bürkner (2021), "Rank-normalization,
folding, and localization: an improved R-hat for assessing convergence of MCMC", Bayesian
Analysis 16(2), 667-718; ArviZ's ``rhat``/``ess`` implement it and serve as the reference.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import arviz as az
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clvkit.inference import diagnostics as _diagnostics
from clvkit.inference import sampling as _sampling
from clvkit.inference.nutpie_native import sample_native


def _ar1(rng: np.random.Generator, chains: int, draws: int, phi: float) -> np.ndarray:
    x = np.zeros((chains, draws))
    eps = rng.standard_normal((chains, draws))
    for t in range(1, draws):
        x[:, t] = phi * x[:, t - 1] + eps[:, t]
    return x + rng.normal(0.0, 0.3, size=(chains, 1))  # chains with shifted means


@pytest.mark.parametrize("seed", range(12))
def test_diagnostics_match_arviz(seed):
    rng = np.random.default_rng(seed)
    chains = int(rng.integers(1, 5))
    draws = int(rng.integers(8, 1200))
    x = _ar1(rng, chains, draws, float(rng.uniform(-0.5, 0.97)))
    if seed % 3 == 0:
        x = np.round(x, 1)  # ties: average ranks
    if seed % 4 == 0:
        x = np.exp(x)  # skewed
    ref_rhat = float(az.rhat(x)) if chains > 1 else np.nan
    if chains > 1:
        assert _diagnostics.rhat(x) == pytest.approx(ref_rhat, rel=1e-10)
    else:
        assert np.isnan(_diagnostics.rhat(x))
    assert _diagnostics.ess_bulk(x) == pytest.approx(float(az.ess(x, method="bulk")), rel=1e-10)
    assert _diagnostics.ess_tail(x) == pytest.approx(float(az.ess(x, method="tail")), rel=1e-10)


def test_diagnostics_closed_forms():
    rng = np.random.default_rng(7)
    iid = rng.standard_normal((4, 2000))
    # independent draws: ESS ~ number of draws, R-hat ~ 1
    assert 6500 < _diagnostics.ess_bulk(iid) < 9500
    assert _diagnostics.rhat(iid) < 1.005
    # AR(1) with phi: ESS / N -> (1 - phi) / (1 + phi) = 1/9 for phi = 0.8
    ar = _ar1(rng, 4, 5000, 0.8)
    ar -= ar.mean(axis=1, keepdims=True)  # same means: only autocorrelation matters
    assert _diagnostics.ess_bulk(ar) / ar.size == pytest.approx(1 / 9, rel=0.2)
    # chains stuck at different places: R-hat far above 1.01
    stuck = iid + np.arange(4)[:, None] * 3.0
    assert _diagnostics.rhat(stuck) > 2.0
    # a constant has as many effective draws as draws (ArviZ's convention)
    assert _diagnostics.ess_bulk(np.ones((2, 50))) == 100


@settings(max_examples=25, deadline=None)
@given(
    st.integers(2, 4),
    st.integers(8, 300),
    st.floats(-5, 5),
    st.floats(0.1, 10),
    st.integers(0, 2**32 - 1),
)
def test_diagnostics_are_rank_based(chains, draws, shift, scale, seed):
    """Bulk ESS depends on ranks only (any increasing transform keeps it); R-hat also folds
    around the median, so it is kept by positive scaling (by powers of two here, which are
    exact in floating point: the two draws equidistant from an even-count median stay tied)."""
    x = np.random.default_rng(seed).standard_normal((chains, draws))
    assert _diagnostics.ess_bulk(np.exp(scale * x + shift)) == pytest.approx(
        _diagnostics.ess_bulk(x), rel=1e-12
    )
    y = x * 2.0 ** round(np.log2(scale))
    assert _diagnostics.rhat(y) == pytest.approx(_diagnostics.rhat(x), rel=1e-12)


def test_native_sampler_on_a_known_posterior():
    """The C callback gives nutpie the same density as the Python kernel: with a flat-ish
    prior and Gamma-Gamma's likelihood, the posterior mean lands within 1 sd of the MLE."""
    from clvkit import GammaGamma
    from clvkit.datasets import cdnow_calibration_summary
    from clvkit.inference.estimator import resolve_priors

    model = GammaGamma()
    cdnow = cdnow_calibration_summary()
    rfm = cdnow[cdnow["frequency"] > 0]
    stats, _ = model._prepare(rfm)
    priors = resolve_priors(model._default_priors, None)
    names = model.spec.param_names
    supports = model._supports()
    kern = model._native_kernel(stats, *_sampling.prior_arrays(names, priors, supports))
    logp = _sampling.kernel_logp(kern.logp, kern.arrays)
    start = _sampling.maximize(logp, np.log([6.0, 3.7, 15.0]), "test")[0]
    post, stat = sample_native(
        kern, names, supports, start, chains=2, draws=500, tune=500, random_seed=3,
        low_rank=True, progressbar=False,
    )  # fmt: skip
    assert post["p"].dims == ("chain", "draw") and post["p"].shape == (2, 500)
    assert stat["lp"].shape == (2, 500) and not bool(stat["diverging"].any())
    # each draw's stored log density is the kernel's value at that draw
    theta = np.log([post[n].values[1, 17] for n in names])
    assert stat["lp"].values[1, 17] == pytest.approx(logp(theta)[0], rel=1e-12)
    mle = {"p": 6.2488, "q": 3.7446, "v": 15.4477}  # FHL gamma-gamma note, CDNOW
    for n in names:
        draws = post[n].values
        assert abs(draws.mean() - mle[n]) < draws.std()


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_fit_does_not_import_arviz_until_idata_is_used():
    proc = _run(
        """
        import sys
        import clvkit
        rfm = clvkit.datasets.cdnow_calibration_summary()
        m = clvkit.BetaGeo().fit(rfm, chains=2, draws=200, tune=200, random_seed=1,
                                 progressbar=True)
        assert m.diagnostics()["chains"] == 2
        m.summary()
        m.expected_purchases(rfm.head(3), t=10, return_draws=True)
        assert "arviz" not in sys.modules, "a fit imported arviz"
        assert "nutpie" not in sys.modules, "a fit imported nutpie's Python package"
        idata = m.idata_
        assert "arviz" in sys.modules
        assert set(idata.groups()) == {"posterior", "sample_stats", "observed_data"}
        assert idata.attrs["method"] == "nuts" and idata.posterior.sizes["draw"] == 200
        import nutpie  # the package reuses the extension module clvkit loaded
        from clvkit.inference.nutpie_native import nutpie_lib
        assert nutpie._lib is nutpie_lib()
        print("ok")
        """
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith("ok")


def test_native_sampler_after_nutpie_was_imported():
    proc = _run(
        """
        import nutpie
        import clvkit
        from clvkit.inference.nutpie_native import nutpie_lib
        assert nutpie_lib() is nutpie._lib
        rfm = clvkit.datasets.cdnow_calibration_summary()
        m = clvkit.GammaGamma().fit(rfm[rfm.frequency > 0], chains=2, draws=200, tune=200,
                                    random_seed=2, progressbar=False)
        print(round(float(m.posterior_["p"].mean()), 1))
        """
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 4.0 < float(proc.stdout.strip()) < 9.0


@pytest.mark.parametrize("route", ["native", "pyfunc"])
def test_target_accept_sets_the_step_size(route):
    """``target_accept`` reaches nutpie on both routes: the adapted step size is smaller and
    the mean acceptance higher at 0.95 than at 0.6 (step size and acceptance are the sampler's
    own statistics), and the posterior records it."""
    import warnings

    import clvkit
    from clvkit.datasets import cdnow_calibration_summary

    rfm = cdnow_calibration_summary()
    if route == "pyfunc":  # the covariate models sample through nutpie's from_pyfunc
        rfm = rfm.assign(big=(rfm["T"] > rfm["T"].median()).map({True: "y", False: "n"}))
    stats = {}
    for ta in (0.6, 0.95):
        model = clvkit.BetaGeo() if route == "native" else clvkit.with_covariates(
            "bgnbd", ["big"], reference={"big": "n"})  # fmt: skip
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(rfm, chains=2, draws=300, tune=300, random_seed=5, progressbar=False,
                      target_accept=ta)  # fmt: skip
        assert model.posterior_.attrs["target_accept"] == ta
        s = model.idata_.sample_stats
        stats[ta] = (float(s["step_size"].mean()), float(s["acceptance_rate"].mean()))
    assert stats[0.95][0] < 0.75 * stats[0.6][0], stats
    assert stats[0.95][1] > stats[0.6][1], stats


def test_target_accept_defaults_and_bad_values():
    """Defaults: 0.8, and 0.9 for segment fits with a segment not centred; a value outside
    (0, 1) is refused naming the argument; the convergence warning suggests a higher one for
    divergences."""
    import clvkit
    from clvkit.datasets import cdnow_calibration_summary
    from clvkit.errors import ClvkitError, ConvergenceWarning
    from clvkit.models.covariates import model as cov_model

    assert clvkit.BetaGeo()._target_accept() == 0.8
    assert clvkit.with_covariates("bgnbd", ["channel"])._target_accept() == 0.8
    seg = clvkit.with_covariates("bgnbd", segment="region")
    c, n = cov_model.CENTRED, cov_model.NONCENTRED
    seg._seg_state = {"alpha": np.array([c, c, n])}  # as chosen at a NUTS start
    assert seg._target_accept() == 0.9
    seg._seg_state = {"alpha": np.array([c, c, c])}  # every segment pinned down: clean geometry
    assert seg._target_accept() == 0.8
    seg._seg_state = None
    rfm = cdnow_calibration_summary()
    for bad in (0.0, 1.0, 1.5, -0.2, float("nan"), True, "0.9"):
        with pytest.raises(ClvkitError, match="argument 'target_accept'"):
            clvkit.BetaGeo().fit(rfm, target_accept=bad, progressbar=False)
    diag = {"ok": False, "problems": ["3 divergent transitions"], "divergences": 3}
    with pytest.warns(
        ConvergenceWarning, match=r"raise target_accept \(this fit: 0.8; e\.g\. 0.9\)"
    ):
        _sampling.warn_convergence(diag, "BG/NBD", 0.8)
    diag = {"ok": False, "problems": ["max R-hat 1.05 > 1.01"], "divergences": 0}
    with pytest.warns(ConvergenceWarning) as rec:
        _sampling.warn_convergence(diag, "BG/NBD", 0.8)
    assert "target_accept" not in str(rec[0].message)
