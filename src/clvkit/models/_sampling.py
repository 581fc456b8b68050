"""Sampler choice (nutpie or PyMC NUTS), MLE/MAP optimisation and convergence diagnostics."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import arviz as az
import numpy as np
from scipy.optimize import minimize

from clvkit.errors import ClvkitError, ConvergenceWarning

__all__ = [
    "RHAT_MAX",
    "check_convergence",
    "hessian_log_scale",
    "maximize",
    "sample_nuts",
    "seed_int",
]

#: Diagnostic thresholds (Vehtari et al. 2021): R-hat, ESS per chain (bulk and tail).
RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100

SAMPLERS = ("nutpie", "pymc")


def seed_int(random_seed: int | np.random.Generator | None) -> int:
    """An integer seed for samplers that need one, drawn from a Generator or fresh entropy."""
    if isinstance(random_seed, (int, np.integer)) and not isinstance(random_seed, bool):
        return int(random_seed)
    rng = (
        random_seed
        if isinstance(random_seed, np.random.Generator)
        else np.random.default_rng(random_seed)
    )
    return int(rng.integers(0, 2**31 - 1))


def sample_nuts(
    model: Any,
    names: tuple[str, ...],
    *,
    sampler: str,
    chains: int,
    draws: int,
    tune: int,
    random_seed: int | np.random.Generator | None,
    progressbar: bool,
) -> az.InferenceData:
    """Run NUTS on a PyMC model; return an InferenceData with ``posterior`` and ``sample_stats``.

    ``sampler="nutpie"`` compiles the model with numba and samples with nutpie;
    ``sampler="pymc"`` uses PyMC's own NUTS (C backend). Both adapt the step size and a
    diagonal mass matrix on the unconstrained (log) scale of the parameters.
    """
    seed = seed_int(random_seed)
    if sampler == "nutpie":
        import nutpie

        compiled = nutpie.compile_pymc_model(model, backend="numba")
        idata = nutpie.sample(
            compiled,
            draws=draws,
            tune=tune,
            chains=chains,
            cores=chains,
            seed=seed,
            save_warmup=False,
            progress_bar=progressbar,
        )
    elif sampler == "pymc":
        import pymc as pm

        with model:
            idata = pm.sample(
                draws=draws,
                tune=tune,
                chains=chains,
                cores=min(chains, 4),
                random_seed=seed,
                progressbar=progressbar,
                compute_convergence_checks=False,
                return_inferencedata=True,
            )
    else:
        raise ClvkitError(
            f"argument 'sampler' is {sampler!r}. Suggestion: use one of {list(SAMPLERS)}."
        )
    posterior = idata.posterior[list(names)]
    stats = idata.sample_stats
    keep = [v for v in stats.data_vars if set(stats[v].dims) <= {"chain", "draw"}]
    return az.InferenceData(posterior=posterior, sample_stats=stats[keep])


def maximize(
    fun_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    what: str,
) -> tuple[np.ndarray, float, int]:
    """Maximise a smooth objective over log-parameters with L-BFGS-B and analytic gradients.

    Returns the optimum (log scale), the objective there and the iteration count.
    """

    def neg(theta: np.ndarray) -> tuple[float, np.ndarray]:
        value, grad = fun_grad(theta)
        if not np.isfinite(value):
            return np.inf, np.zeros_like(theta)
        return -value, -grad

    bounds = [(-25.0, 25.0)] * len(x0)
    res = minimize(
        neg,
        x0,
        jac=True,
        method="L-BFGS-B",
        bounds=bounds,
        options={"maxiter": 2000, "ftol": 1e-14, "gtol": 1e-8},
    )
    value, grad = fun_grad(res.x)
    at_bound = np.any(np.abs(res.x) >= 25.0 - 1e-6)
    if not np.isfinite(value) or at_bound or np.max(np.abs(grad)) > 1e-2 * max(1.0, abs(value)):
        raise ClvkitError(
            f"{what} did not converge ({res.message}; log-parameters {np.round(res.x, 3)}). "
            "Suggestion: check the data (e.g. very few repeat customers), use method='map' "
            "with priors, or method='nuts'."
        )
    return res.x, float(value), int(res.nit)


def hessian_log_scale(
    fun_grad: Callable[[np.ndarray], tuple[float, np.ndarray]], theta: np.ndarray
) -> np.ndarray:
    """Central finite-difference Hessian of the objective from its analytic gradient."""
    k = theta.size
    H = np.empty((k, k))
    for i in range(k):
        h = 1e-5 * max(1.0, abs(theta[i]))
        e = np.zeros(k)
        e[i] = h
        H[:, i] = (fun_grad(theta + e)[1] - fun_grad(theta - e)[1]) / (2 * h)
    return 0.5 * (H + H.T)


def check_convergence(idata: az.InferenceData, names: tuple[str, ...]) -> dict[str, Any]:
    """R-hat, bulk/tail ESS and divergences of a NUTS posterior, with a pass/fail verdict.

    Thresholds: R-hat <= 1.01, bulk and tail ESS >= 100 per chain, no divergences.
    """
    post = idata.posterior[list(names)]
    n_chains = post.sizes["chain"]
    rhat = az.rhat(post)
    ess_bulk = az.ess(post, method="bulk")
    ess_tail = az.ess(post, method="tail")
    div = idata.sample_stats.get("diverging")
    n_div = int(div.sum()) if div is not None else 0
    out = {
        "max_rhat": float(max(rhat[n] for n in names)),
        "min_ess_bulk": float(min(ess_bulk[n] for n in names)),
        "min_ess_tail": float(min(ess_tail[n] for n in names)),
        "divergences": n_div,
        "chains": int(n_chains),
        "draws": int(post.sizes["draw"]),
    }
    ess_min = ESS_PER_CHAIN_MIN * n_chains
    problems = []
    if n_chains > 1 and not out["max_rhat"] <= RHAT_MAX:
        problems.append(f"max R-hat {out['max_rhat']:.3f} > {RHAT_MAX}")
    if not out["min_ess_bulk"] >= ess_min:
        problems.append(f"min bulk ESS {out['min_ess_bulk']:.0f} < {ess_min}")
    if not out["min_ess_tail"] >= ess_min:
        problems.append(f"min tail ESS {out['min_ess_tail']:.0f} < {ess_min}")
    if n_div:
        problems.append(f"{n_div} divergent transitions")
    out["ok"] = not problems
    out["problems"] = problems
    return out


def warn_convergence(diag: dict[str, Any], model_name: str) -> None:
    """Issue a :class:`ConvergenceWarning` listing failed diagnostics, if any."""
    if diag["ok"]:
        return
    warnings.warn(
        f"{model_name} NUTS fit failed convergence checks: {'; '.join(diag['problems'])}. "
        "Suggestion: increase tune and draws (e.g. tune=2000, draws=2000), use more chains, "
        "or pass stronger priors; inspect model.summary().",
        ConvergenceWarning,
        stacklevel=3,
    )
