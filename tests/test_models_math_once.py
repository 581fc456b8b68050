"""Each model's math once: its likelihood's numpy, numba and PyMC forms and its per-customer
form are one function, tested equal at several parameter points, extremes included; the two
Gauss-Beta rules (numpy Golub-Welsch and the compiled one of the value kernels) agree."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from clvkit.datasets import cdnow_calibration_summary
from clvkit.inference import sampling
from clvkit.inference.estimator import resolve_priors
from clvkit.models import BetaGeo, GammaGamma
from clvkit.models.bgnbd import quadrature
from clvkit.models.bgnbd.gauss import beta_gauss_rule
from clvkit.models.bgnbd.likelihood import bg_loglik, bg_loglik_grad
from clvkit.models.bgnbd.model import bg_pymc
from clvkit.models.gamma_gamma.likelihood import gg_loglik, gg_loglik_grad
from clvkit.models.gamma_gamma.model import gg_pymc

BG_POINTS = [
    (0.2426, 4.4137, 0.793, 2.4262),  # CDNOW MLE
    (2.0, 0.3, 5.0, 0.2),
    (1e-3, 1e3, 1e-3, 1e3),
    (50.0, 1e-2, 20.0, 1e-2),
    (1e-4, 1e-4, 1e4, 1e4),
]
GG_POINTS = [
    (6.2488, 3.7446, 15.4477),  # CDNOW MLE
    (0.5, 1.2, 300.0),
    (1e-2, 1e2, 1e-3),
    (100.0, 0.05, 1e4),
]


@pytest.fixture(scope="module")
def cdnow():
    return cdnow_calibration_summary()


def _cases(cdnow):
    rep = cdnow[cdnow["frequency"] > 0]
    return [
        (BetaGeo, cdnow, BG_POINTS, bg_loglik, bg_loglik_grad, bg_pymc),
        (GammaGamma, rep, GG_POINTS, gg_loglik, gg_loglik_grad, gg_pymc),
    ]


@pytest.mark.parametrize("which", [0, 1], ids=["BetaGeo", "GammaGamma"])
def test_numpy_numba_pymc_and_per_customer_logliks_are_one_function(cdnow, which):
    cls, rfm, points, loglik, loglik_grad, pymc_graph = _cases(cdnow)[which]
    model = cls()
    stats, _ = model._prepare(rfm)
    names = cls.spec.param_names
    supports = cls()._supports()
    priors = resolve_priors(cls._default_priors, None)
    codes, pars = sampling.prior_arrays(names, priors, supports)
    kern = model._native_kernel(stats, codes, pars)
    numba_logp = sampling.kernel_logp(kern.logp, kern.arrays)
    pm_model = pymc_graph(stats, priors)
    potential = pm_model.compile_fn(
        pm_model.potentials[0], inputs=pm_model.free_RVs, point_fn=False
    )
    cols = cls.spec.customer_columns(rfm)
    for given in points:
        theta = np.log(given)
        point = tuple(np.exp(theta))  # the values the unconstrained forms see, to the last bit
        ref = loglik(*point, stats)
        assert np.isfinite(ref), point
        # numpy with gradient
        value, grad = loglik_grad(theta, stats)
        assert value == pytest.approx(ref, rel=1e-12, abs=1e-9)
        # numba: the kernel is loglik + log prior + log Jacobian (nb_prior, shared)
        k_value, k_grad = numba_logp(theta)
        p_grad = np.zeros(len(names))
        p_value = sampling.nb_prior(theta, codes, pars, p_grad)
        assert k_value - p_value == pytest.approx(ref, rel=1e-11, abs=1e-8), point
        # gradients: the kernel's own digamma (series, ~1e-13 abs), summed over customers
        np.testing.assert_allclose(k_grad - p_grad, grad, rtol=1e-7, atol=1e-6 * abs(ref))
        # PyMC graph (the Potential is the log-likelihood)
        assert float(potential(*point)) == pytest.approx(ref, rel=1e-10, abs=1e-8), point
        # per customer, uncompressed: spec.loglik summed over customers
        per = cls.spec.loglik({n: np.array([[v]]) for n, v in zip(names, point, strict=True)}, cols)
        assert per.shape == (1, len(rfm))
        assert float(per.sum()) == pytest.approx(ref, rel=1e-11, abs=1e-8), point


def test_numpy_prior_and_jacobian_equal_the_compiled_ones():
    # every family, on its support's transform: nb_prior == the estimator's numpy objective
    names = ("p0", "p1", "p2", "p3", "p4", "p5", "p6")
    supports = ("positive",) * 5 + ("real", "unit")
    priors = resolve_priors(
        {
            "p0": {"dist": "LogNormal", "mu": 0.3, "sigma": 1.7},
            "p1": {"dist": "Gamma", "alpha": 2.5, "beta": 0.7},
            "p2": {"dist": "HalfNormal", "sigma": 3.0},
            "p3": {"dist": "Exponential", "lam": 0.4},
            "p4": {"dist": "HalfCauchy", "beta": 2.0},
            "p5": {"dist": "Normal", "mu": -1.0, "sigma": 2.5},
            "p6": {"dist": "Beta", "alpha": 2.0, "beta": 5.0},
        },
        None,
        dict(zip(names, supports, strict=True)),
    )
    codes, pars = sampling.prior_arrays(names, priors, supports)
    from scipy import stats as st

    from clvkit.inference import transforms

    dists = [
        st.lognorm(s=1.7, scale=np.exp(0.3)),
        st.gamma(2.5, scale=1 / 0.7),
        st.halfnorm(scale=3.0),
        st.expon(scale=1 / 0.4),
        st.halfcauchy(scale=2.0),
        st.norm(-1.0, 2.5),
        st.beta(2.0, 5.0),
    ]
    for eta in (np.linspace(-2.0, 1.5, 7), np.linspace(0.8, -3.0, 7)):
        grad = np.zeros(7)
        value = sampling.nb_prior(eta, codes, pars, grad)
        x = transforms.to_natural(eta, supports)
        ref = 0.0
        for i, d in enumerate(dists):
            lj = transforms.log_jacobian(eta[i], supports[i])[0]
            ref += d.logpdf(x[i]) + lj
        assert value == pytest.approx(ref, rel=1e-12)
        # gradient against central differences of the value
        h = 1e-6
        for i in range(7):
            e = np.zeros(7)
            e[i] = h
            up = sampling.nb_prior(eta + e, codes, pars, np.zeros(7))
            down = sampling.nb_prior(eta - e, codes, pars, np.zeros(7))
            assert grad[i] == pytest.approx((up - down) / (2 * h), rel=1e-6, abs=1e-7)


def test_gauss_beta_rules_agree():
    """models/bgnbd/gauss.py (numpy, LAPACK eigenvalues) and the compiled rule of the value
    kernels (implicit QL) give the same nodes and weights."""
    n_max = 128
    wts, wp = np.empty(n_max), np.empty(n_max)
    diag, off = np.empty(n_max), np.empty(n_max)
    work = np.empty((6, n_max))
    packed = len(inspect.signature(quadrature._beta_rule.py_func).parameters) == 6
    worst_nodes = worst_weights = 0.0
    for a in (1e-4, 0.05, 0.79, 1.0, 3.0, 50.0):
        for b in (0.1, 1.0, 2.43, 30.0, 1e4):
            for n in (6, 12, 31, 64, 128):
                ref_nodes, ref_wts = beta_gauss_rule(np.array(a), np.array(b), n)
                nodes = np.empty(n_max)
                if packed:  # (a, b, n, rule, scratch, warm)
                    quadrature._beta_rule(a, b, n, (nodes, wts, wp), (diag, off, work), False)
                else:  # (a, b, n, nodes, weights, wp, diag, off, work, warm)
                    quadrature._beta_rule(a, b, n, nodes, wts, wp, diag, off, work, False)
                got = np.sort(nodes[:n])
                order = np.argsort(ref_nodes)
                rn, rw = ref_nodes[order], ref_wts[order]
                np.testing.assert_allclose(got, rn, rtol=1e-9, atol=1e-13, err_msg=f"{a},{b},{n}")
                gw = wts[:n][np.argsort(nodes[:n])]
                big = rw > 1e-12  # relative accuracy of the far-tail weights is not defined
                np.testing.assert_allclose(gw[big], rw[big], rtol=1e-7, err_msg=f"{a},{b},{n}")
                np.testing.assert_allclose(gw.sum(), 1.0, rtol=1e-13)
                worst_nodes = max(worst_nodes, float(np.max(np.abs(got - rn))))
                worst_weights = max(worst_weights, float(np.max(np.abs(gw - rw))))
    # measured: nodes 1.4e-15, weights 7.5e-12 (absolute) at worst over this grid
    assert worst_nodes < 1e-14 and worst_weights < 2e-11, (worst_nodes, worst_weights)
