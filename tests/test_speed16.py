"""Speed work of issue 16 (BG/BB and pooled sBG NUTS in a fresh process): the pooled kernel's
mixed centring, the centring rule, the NUTS start without scipy.optimize, the cohort weights,
the pooled diagnostics without ArviZ, lazy imports and cached kernels."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clvkit
from clvkit import BetaGeoBetaBinom, ShiftedBetaGeo, ShiftedBetaGeoPooled, cohort_counts
from clvkit.datasets import donations_summary
from clvkit.inference import sampling
from clvkit.models.sbg import pooled
from clvkit.models.sbg.likelihood import compress
from clvkit.models.sbg.pooled import (
    centring_flags,
    pooled_logp,
    pooled_logp_shaped,
    to_mixed,
    whitening,
)

SRC = str(Path(clvkit.__file__).resolve().parents[1])
SPEC = ShiftedBetaGeo.spec


def _cohorts(size: int, n_cohorts: int = 12, tau: float = 0.3, seed: int = 16) -> pd.DataFrame:
    """Monthly cohorts of ``size`` subscribers, cohort c observed for n_cohorts - c months,
    mean churn ~0.1 and concentration ~2 varying by ``tau`` (logit and log scales)."""
    rng = np.random.default_rng(seed)
    parts = []
    for c in range(n_cohorts):
        m = 1 / (1 + np.exp(-(np.log(0.1 / 0.9) + tau * rng.standard_normal())))
        k = np.exp(np.log(2.0) + tau * rng.standard_normal())
        w = float(n_cohorts - c)
        p = {"alpha": np.array([[m * k]]), "beta": np.array([[(1 - m) * k]])}
        fut = SPEC.simulate(p, SPEC.new_customer_columns(size), w, rng)
        n = np.zeros(size, dtype=np.int64)
        for b in fut.batches:
            np.add.at(n, b.customer, b.count)
        death = np.full(size, np.inf)
        death[fut.alive_customer] = fut.death
        ch = np.isfinite(death)
        parts.append(
            pd.DataFrame(
                {"cohort": f"c{c:02d}", "renewals": n, "churned": ch,
                 "age": np.where(ch, n + 1.0, w)}
            )
        )  # fmt: skip
    table = pd.concat(parts, ignore_index=True)
    table.index.name = "customer_id"
    table.attrs["time_unit"] = "M"
    return table


def _arrays(table: pd.DataFrame) -> tuple[int, int, list[np.ndarray]]:
    _, wc, wa = pooled._cohort_weights(table, "cohort")
    K, N1 = wc.shape
    return K, N1, [wc.ravel(), wa.ravel(), np.array([K, N1], dtype=np.int64)]


def test_mixed_centring_is_the_same_posterior():
    """With centring flags, the kernel at ``u = mu + tau z`` is the non-centred log posterior
    at ``z`` minus ``log tau`` per centred coordinate (the Jacobian of ``z -> u``), and its
    gradient is the finite-difference one."""
    K, N1, arrays = _arrays(_cohorts(300, n_cohorts=5))
    rng = np.random.default_rng(0)
    eta = rng.normal(size=4 + 2 * K) * 0.4
    flags = np.array([1, 0, 1, 1, 0, 0, 1, 0, 1, 1], dtype=bool)
    mixed = sampling.kernel_logp(pooled_logp, [*arrays[:2], pooled._dims(K, N1, flags)])
    plain = sampling.kernel_logp(pooled_logp, arrays)
    point = to_mixed(eta, flags)
    jac = eta[1] * flags[:K].sum() + eta[3] * flags[K:].sum()
    assert mixed(point)[0] == pytest.approx(plain(eta)[0] - jac, rel=1e-12)
    grad = mixed(point)[1]
    h = 1e-6
    for i in range(point.size):
        e = np.zeros(point.size)
        e[i] = h
        num = (mixed(point + e)[0] - mixed(point - e)[0]) / (2 * h)
        assert grad[i] == pytest.approx(num, rel=1e-5, abs=1e-5)
    # no flags: the plain kernel, bit for bit
    none = pooled._dims(K, N1, np.zeros(2 * K, dtype=bool))
    assert sampling.kernel_logp(pooled_logp, [*arrays[:2], none])(eta)[0] == plain(eta)[0]


def test_whitened_cohorts_are_the_same_posterior():
    """Whitened cohorts (mode 2): the kernel at ``v`` equals the centred one at ``u = s + L v``
    (the constant Jacobian left out), its gradient is the finite-difference one, and the
    shapes come from each cohort's likelihood curvature: ``L L^T`` inverts it."""
    K, N1, arrays = _arrays(_cohorts(2000, n_cohorts=4))
    x0 = np.zeros(4 + 2 * K)
    x0[0], x0[2] = pooled.PRIOR_MU_M[0], pooled.PRIOR_MU_K[0]
    start = sampling.start_point(sampling.kernel_logp(pooled_logp, arrays), x0)
    flags = np.ones(2 * K, dtype=bool)
    flags[K - 1] = False  # the youngest cohort's logit m non-centred: its k centred, not whitened
    modes, shape = whitening(arrays[0], arrays[1], K, N1, start, flags)
    assert modes.tolist() == [2, 2, 2, 0, 2, 2, 2, 1]
    sh = shape.reshape(K, 5)
    centred = sampling.kernel_logp(pooled_logp, [*arrays[:2], pooled._dims(K, N1, flags)])
    shaped = sampling.kernel_logp(
        pooled_logp_shaped, [*arrays[:2], pooled._dims(K, N1, modes), shape]
    )
    rng = np.random.default_rng(1)
    v = to_mixed(start, flags)
    v[4 : 4 + K - 1] = rng.normal(size=K - 1)
    v[4 + K : 4 + 2 * K - 1] = rng.normal(size=K - 1)
    u = v.copy()
    u[4 : 4 + K - 1] = sh[:-1, 0] + sh[:-1, 2] * v[4 : 4 + K - 1]
    u[4 + K : 4 + 2 * K - 1] = (
        sh[:-1, 1] + sh[:-1, 3] * v[4 : 4 + K - 1] + sh[:-1, 4] * v[4 + K : 4 + 2 * K - 1]
    )
    assert shaped(v)[0] == pytest.approx(centred(u)[0], rel=1e-12)
    grad = shaped(v)[1]
    h = 1e-6
    for i in range(v.size):
        e = np.zeros(v.size)
        e[i] = h
        num = (shaped(v + e)[0] - shaped(v - e)[0]) / (2 * h)
        assert grad[i] == pytest.approx(num, rel=1e-5, abs=1e-5)
    # L L^T is the inverse of the curvature of cohort 0's log-likelihood at its start
    point = to_mixed(start, np.ones(2 * K, dtype=bool))
    point[[1, 3]] = 20.0
    every = sampling.kernel_logp(pooled_logp, [*arrays[:2], pooled._dims(K, N1, flags | True)])
    info = np.empty((2, 2))
    for col, slot in enumerate((4, 4 + K)):
        e = np.zeros(point.size)
        e[slot] = 1e-4
        d = (every(point + e)[1] - every(point - e)[1]) / 2e-4
        info[:, col] = -d[[4, 4 + K]]
    chol = np.array([[sh[0, 2], 0.0], [sh[0, 3], sh[0, 4]]])
    np.testing.assert_allclose(chol @ chol.T @ info, np.eye(2), atol=1e-4)


def test_centring_follows_the_data_strength():
    """Cohorts of 5,000 pin their mean churn down (sd ~0.03 on the logit scale against a
    spread of 0.3): centred; cohorts of 100 do not (sd ~0.2): all non-centred, as before."""
    for size, expect in ((5000, "most"), (100, "none")):
        K, N1, arrays = _arrays(_cohorts(size))
        x0 = np.zeros(4 + 2 * K)
        x0[0], x0[2] = pooled.PRIOR_MU_M[0], pooled.PRIOR_MU_K[0]
        start = sampling.start_point(sampling.kernel_logp(pooled_logp, arrays), x0)
        flags = centring_flags(arrays[0], arrays[1], K, N1, start)
        if expect == "none":
            assert not flags.any(), flags
        else:
            assert flags[:K].sum() >= K - 1, flags  # logit m_c
            assert flags.sum() >= K, flags


def test_few_cohorts_are_not_centred_and_raise_no_warning():
    """Three cohorts or fewer leave the spread too uncertain to centre anything (the funnel);
    an unidentified coordinate (a one-period cohort's k) raises no numpy warning."""
    t = cohort_counts({"2023": [100, 70, 55, 46], "2024": [100, 66]}, "Y", size=500)
    _, wc, wa = pooled._cohort_weights(t, "cohort")
    K, N1 = wc.shape
    arrays = [wc.ravel(), wa.ravel(), np.array([K, N1], dtype=np.int64)]
    x0 = np.zeros(4 + 2 * K)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        start = sampling.start_point(sampling.kernel_logp(pooled_logp, arrays), x0)
        assert not centring_flags(arrays[0], arrays[1], K, N1, start).any()
        big = _cohorts(20000, n_cohorts=3)
        K, N1, arrays = _arrays(big)
        start = sampling.start_point(sampling.kernel_logp(pooled_logp, arrays), np.zeros(10))
        assert not centring_flags(arrays[0], arrays[1], K, N1, start).any()


def test_start_point_matches_the_scipy_maximum():
    """The NUTS start (numpy BFGS) reaches the BG/BB posterior mode that scipy's BFGS finds,
    and it never raises: a start outside the feasible box comes back unchanged."""
    model = BetaGeoBetaBinom()
    stats, _ = model._prepare(donations_summary())
    objective = model._objective(stats, model._resolve_priors())
    x0 = model._x0(stats)
    best = sampling.maximize(objective, x0, "MAP")[0]
    start = sampling.start_point(objective, x0)
    np.testing.assert_allclose(start, best, atol=1e-5)
    assert np.exp(start).round(3).tolist() == np.exp(best).round(3).tolist()
    far = np.full(4, 30.0)
    np.testing.assert_array_equal(sampling.start_point(objective, far), far)


def test_cohort_weights_of_summary_and_survival_table():
    """One bincount gives the per-cohort weights the compressed rows gave."""
    table = _cohorts(400, n_cohorts=4)
    labels, wc, wa = pooled._cohort_weights(table, "cohort")
    assert labels == ["c00", "c01", "c02", "c03"] and wc.shape == (4, int(table.renewals.max()) + 1)
    for k, c in enumerate(labels):
        sub = table[table["cohort"] == c]
        rows = compress(sub["renewals"].to_numpy(), sub["churned"].to_numpy())
        churned = rows.churned > 0
        ref_c, ref_a = np.zeros(wc.shape[1]), np.zeros(wc.shape[1])
        np.add.at(ref_c, rows.renewals[churned].astype(int), rows.weight[churned])
        np.add.at(ref_a, rows.renewals[~churned].astype(int), rows.weight[~churned])
        np.testing.assert_array_equal(wc[k], ref_c)
        np.testing.assert_array_equal(wa[k], ref_a)
    t = cohort_counts({"2023": [100, 70, 55, 46], "2024": [100, 66]}, "Y", size=500)
    labels, wc, wa = pooled._cohort_weights(t, "cohort")
    assert labels == ["2023", "2024"]
    assert wc.tolist() == [[150.0, 75.0, 45.0, 0.0], [170.0, 0.0, 0.0, 0.0]]
    assert wa.tolist() == [[0.0, 0.0, 0.0, 230.0], [0.0, 330.0, 0.0, 0.0]]


def test_pooled_diagnostics_are_arviz_numbers():
    pytest.importorskip("arviz")
    import arviz as az

    t = cohort_counts({"2022": [100, 70, 55, 46], "2023": [100, 66, 50], "2024": [100, 72]}, "Y")
    fit = ShiftedBetaGeoPooled().fit(t, chains=2, draws=300, tune=300, random_seed=4)
    d = fit.diagnostics()
    rhat, ess = az.rhat(fit.posterior_), az.ess(fit.posterior_)
    assert d["max_rhat"] == pytest.approx(max(float(rhat[v].max()) for v in rhat.data_vars))
    assert d["min_ess_bulk"] == pytest.approx(min(float(ess[v].min()) for v in ess.data_vars))


def _fresh(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": SRC, **(env or {})},
        check=True,
    )


def test_lazy_names_and_what_a_nuts_fit_imports():
    """Every public name resolves; ``import clvkit`` imports none of the numerics; a BG/BB
    NUTS fit with its diagnostics and a pooled sBG fit with its diagnostics import neither
    ArviZ nor scipy.optimize (nor PyMC); ShiftedBetaGeo alone does not load numba's compiler
    machinery (nutpie's native route, the pooled kernel's C callback)."""
    out = _fresh(
        """
        import json, sys
        import clvkit
        bare = sorted(m for m in ("numpy", "pandas", "numba", "xarray", "scipy")
                      if m in sys.modules)
        from clvkit import ShiftedBetaGeo
        sbg_alone = "clvkit.inference.nutpie_native" in sys.modules
        from clvkit import BetaGeoBetaBinom, cohort_counts
        from clvkit.datasets import donations_summary
        m = BetaGeoBetaBinom().fit(donations_summary(), draws=100, tune=100, random_seed=1,
                                   progressbar=False)
        m.diagnostics()
        t = cohort_counts({"2023": [100, 70, 55, 46], "2024": [100, 66]}, "Y", size=500)
        p = clvkit.ShiftedBetaGeoPooled().fit(t, chains=2, draws=100, tune=100,
                                              random_seed=1)
        p.diagnostics()
        heavy = sorted(m for m in ("arviz", "scipy.optimize", "pymc", "pytensor")
                       if m in sys.modules)
        names = [n for n in clvkit.__all__ if getattr(clvkit, n, None) is None]
        print(json.dumps([bare, names, sbg_alone, heavy]))
        """
    )
    bare, names, sbg_alone, heavy = json.loads(out.stdout.strip().splitlines()[-1])
    assert bare == [] and names == [] and sbg_alone is False and heavy == []


def test_kernels_load_from_the_cache_in_a_second_process():
    """A user's second run compiles nothing: every kernel of the BG/BB and pooled sBG NUTS
    fits is loaded from numba's cache."""
    code = """
        from clvkit import BetaGeoBetaBinom, ShiftedBetaGeoPooled, cohort_counts
        from clvkit.datasets import donations_summary
        BetaGeoBetaBinom().fit(donations_summary(), draws=50, tune=50, random_seed=1,
                               progressbar=False)
        t = cohort_counts({"2023": [100, 70, 55, 46], "2024": [100, 66]}, "Y", size=500)
        ShiftedBetaGeoPooled().fit(t, chains=1, draws=50, tune=50, random_seed=1)
        """
    _fresh(code)  # compiles whatever is not cached yet
    run = _fresh(code, {"NUMBA_DEBUG_CACHE": "1"})
    err = run.stdout + run.stderr
    loaded = [ln for ln in err.splitlines() if "[cache] data loaded" in ln]
    assert not [ln for ln in err.splitlines() if "[cache] data saved" in ln]
    for kernel in ("bgbb_logp_c", "pooled_logp_c", "_expand_c"):
        assert any(kernel in ln for ln in loaded), kernel
