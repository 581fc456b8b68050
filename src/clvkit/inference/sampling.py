"""Sampler choice (nutpie or PyMC NUTS), MLE/MAP optimisation, the Laplace approximation and
convergence diagnostics.

Samplers return ``(posterior, sample_stats)`` as ``xarray.Dataset`` s with dims
``(chain, draw)``; the model wraps them in an ArviZ ``InferenceData`` on first use, so a fit
on the default sampler never imports ArviZ (about 2.5 s at import).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import xarray as xr

from clvkit.errors import ClvkitError, ConvergenceWarning
from clvkit.inference import diagnostics as _diagnostics
from clvkit.inference import transforms as _transforms
from clvkit.rng import check_random_seed, make_rng
from clvkit.utils.checks import check_prob
from clvkit.utils.numba_cache import njit

__all__ = [
    "PRIOR_CODES",
    "RHAT_MAX",
    "TARGET_ACCEPT",
    "NotConvergedError",
    "check_convergence",
    "check_target_accept",
    "hessian_log_scale",
    "kernel_logp",
    "laplace_posterior",
    "maximize",
    "nb_digamma",
    "nb_prior",
    "prior_arrays",
    "sample_nuts",
    "seed_int",
    "start_point",
    "unbounded_direction",
    "warn_convergence",
]

#: Diagnostic thresholds (Vehtari et al. 2021): R-hat, ESS per chain (bulk and tail).
RHAT_MAX = 1.01
ESS_PER_CHAIN_MIN = 100

#: ``"nutpie"``: nutpie on the model's numba kernel (default, fastest: nothing to compile in
#: a warm process; for models that have one); ``"nutpie-pytensor"``: nutpie on the PyMC
#: graph compiled to numba; ``"pymc"``: PyMC's own NUTS on the same graph.
SAMPLERS = ("nutpie", "nutpie-pytensor", "pymc")
#: NUTS's default target acceptance rate (nutpie's and PyMC's own default).
TARGET_ACCEPT = 0.8


def check_target_accept(target_accept: Any) -> float:
    """``target_accept`` as a float in (0, 1), else a ClvkitError naming it."""
    return check_prob(
        target_accept, "target_accept", "0.8 (the default), or e.g. 0.95 if NUTS diverges."
    )


def seed_int(random_seed: int | np.random.Generator | np.random.SeedSequence | None) -> int:
    """An integer seed for samplers that need one: the seed itself when it is an integer below
    2**63, else drawn from a Generator (or one made from the seed or fresh entropy)."""
    random_seed = check_random_seed(random_seed)
    if isinstance(random_seed, int) and random_seed < 2**63:
        return random_seed
    return int(make_rng(random_seed).integers(0, 2**31 - 1))


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
    target_accept: float = TARGET_ACCEPT,
) -> tuple[xr.Dataset, xr.Dataset]:
    """Run NUTS on a PyMC model; return its ``posterior`` and ``sample_stats``.

    ``sampler="nutpie-pytensor"`` compiles the model with numba and samples with nutpie;
    ``sampler="pymc"`` uses PyMC's own NUTS (C backend). Both adapt the step size and a mass
    matrix (nutpie: low-rank modified; PyMC: diagonal) on the unconstrained (log) scale.
    """
    seed = seed_int(random_seed)
    if sampler == "nutpie-pytensor":
        import nutpie

        compiled = nutpie.compile_pymc_model(model, backend="numba")
        idata = _nutpie_sample(
            compiled, draws, tune, chains, seed, True, progressbar, target_accept
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
                target_accept=target_accept,
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
    return posterior, stats[keep]


class NotConvergedError(ClvkitError):
    """:func:`maximize` found no optimum; ``theta`` is where it stopped (log scale)."""

    def __init__(self, message: str, theta: np.ndarray) -> None:
        super().__init__(message)
        self.theta = theta


def maximize(
    fun_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    what: str,
) -> tuple[np.ndarray, float, int]:
    """Maximise a smooth objective over log-parameters with BFGS and analytic gradients.

    Log-parameters beyond ±25 (parameters outside ~1e-11..1e11) count as infeasible. BFGS
    beats L-BFGS-B here: with 3-4 parameters the latter's per-iteration overhead dominates.
    Returns the optimum (log scale), the objective there and the iteration count; raises
    :class:`NotConvergedError` (a ``ClvkitError``) when the gradient does not vanish.
    """

    def neg(theta: np.ndarray) -> tuple[float, np.ndarray]:
        if np.any(np.abs(theta) > 25.0):
            return np.inf, np.zeros_like(theta)
        value, grad = fun_grad(theta)
        if not (np.isfinite(value) and np.all(np.isfinite(grad))):
            return np.inf, np.zeros_like(theta)
        return -value, -grad

    from scipy.optimize import minimize  # here: ~0.2 s to import, which NUTS does not need

    res = minimize(neg, x0, jac=True, method="BFGS", options={"maxiter": 2000, "gtol": 1e-6})
    value, grad = fun_grad(res.x)
    if not np.isfinite(value) or np.max(np.abs(grad)) > 1e-3 * max(1.0, abs(value)):
        raise NotConvergedError(
            f"{what} did not converge ({res.message}; log-parameters {np.round(res.x, 3)}). "
            "Suggestion: check the data (e.g. very few repeat customers), use method='map' "
            "with priors, or method='nuts'.",
            res.x,
        )
    return res.x, float(value), int(res.nit)


def start_point(
    fun_grad: Callable[[np.ndarray], tuple[float, np.ndarray]],
    x0: np.ndarray,
    max_iter: int = 1000,
    gtol: float = 1e-6,
) -> np.ndarray:
    """A start for NUTS at the maximum of ``fun_grad`` (a log posterior and its gradient on
    the unconstrained scale), by BFGS with a backtracking line search in numpy.

    The same method as :func:`maximize` (log-parameters beyond ±25 and non-finite values are
    infeasible; it stops when the largest gradient component is below ``gtol``) without
    importing ``scipy.optimize`` (~0.2 s of a fresh process). It also stops when a step gains
    less than rounding. It never raises: where it stalls it returns the best point found
    (``x0`` if none is better), which the sampler's warm-up corrects.

    Examples
    --------
    >>> f = lambda t: (-float((t - 1.0) @ (t - 1.0)), -2.0 * (t - 1.0))
    >>> start_point(f, np.zeros(3)).round(6).tolist()
    [1.0, 1.0, 1.0]
    """

    def value(theta: np.ndarray) -> tuple[float, np.ndarray]:
        if np.any(np.abs(theta) > 25.0):
            return -np.inf, np.zeros_like(theta)
        with np.errstate(all="ignore"):
            v, g = fun_grad(theta)
        g = np.asarray(g, dtype=np.float64)
        if not (np.isfinite(v) and np.all(np.isfinite(g))):
            return -np.inf, np.zeros_like(theta)
        return float(v), g

    x = np.array(x0, dtype=np.float64)
    f, g = value(x)
    if not np.isfinite(f):
        return x
    eye = np.eye(x.size)
    h = eye.copy()  # inverse Hessian of -f
    first = True
    for _ in range(max_iter):
        if np.max(np.abs(g)) <= gtol:
            break
        d = h @ g
        slope = float(g @ d)
        if not slope > 0:  # not an ascent direction: restart from steepest ascent
            h, d, slope = eye.copy(), g.copy(), float(g @ g)
        # a first trial step of at most 5 in every coordinate (a factor e^5 in a parameter)
        step = min(1.0, 5.0 / max(float(np.max(np.abs(d))), 1e-300))
        for _ in range(40):
            x_new = x + step * d
            f_new, g_new = value(x_new)
            if f_new >= f + 1e-4 * step * slope:
                break
            step *= 0.5
        else:
            break  # no progress along d
        if f_new - f <= 1e-13 * max(1.0, abs(f)):
            if f_new > f:
                x, g = x_new, g_new
            break  # at the maximum to rounding (as scipy's "precision loss")
        s_, y_ = x_new - x, g - g_new
        sy = float(s_ @ y_)
        if sy > 1e-12:
            if first:  # scale the first inverse Hessian (Nocedal and Wright, eq. 6.20)
                h = eye * (sy / float(y_ @ y_))
                first = False
            rho = 1.0 / sy
            a = eye - rho * np.outer(s_, y_)
            h = a @ h @ a.T + rho * np.outer(s_, s_)
        x, f, g = x_new, f_new, g_new
    return x


#: :func:`unbounded_direction`: parameters moved by a factor ``FLAT_FACTOR`` along a direction
#: that changes the objective by less than ``FLAT_DROP`` are not bounded by the data.
FLAT_FACTOR = 1000.0
FLAT_DROP = 0.01
SURE_DROP = 100.0


def unbounded_direction(
    fun_grad: Callable[[np.ndarray], tuple[float, np.ndarray]], theta: np.ndarray
) -> np.ndarray | None:
    """A direction (unit vector on the log scale) in which the objective has no maximum, or None.

    A maximum of a likelihood on the boundary of the parameter space (some parameters running to
    0 or infinity, alone or together along a ray such as ``r, alpha -> inf`` with ``r / alpha``
    fixed) shows as a direction in which moving every parameter by a factor of
    :data:`FLAT_FACTOR` from ``theta`` changes the objective by less than :data:`FLAT_DROP`
    (or raises it): the data cannot tell those values apart, so the optimiser's stopping point
    is arbitrary. An interior maximum with a finite standard error loses far more (a log-scale
    standard error ``s`` loses about ``(ln 1000 / s)^2 / 2``, so only ``s > 49`` passes).
    Tried: each parameter alone, each pair together and opposed, and the eigenvectors of the
    Hessian, in both senses; directions along which the Hessian predicts a drop of more than
    :data:`SURE_DROP` are not evaluated (on large data, all but the flat ones). Returns the
    direction that gains most.

    Examples
    --------
    >>> f = lambda t: (-float(t[0] ** 2), np.array([-2 * t[0], 0.0]))  # flat in t[1]
    >>> np.abs(unbounded_direction(f, np.zeros(2))).round(3).tolist()
    [0.0, 1.0]
    >>> g = lambda t: (-float(t @ t), -2 * t)
    >>> unbounded_direction(g, np.zeros(2)) is None
    True
    """
    theta = np.asarray(theta, dtype=np.float64)
    k = theta.size
    eye = np.eye(k)
    dirs = [eye[i] for i in range(k)]
    for i in range(k):
        for j in range(i + 1, k):
            dirs += [(eye[i] + eye[j]) / math.sqrt(2), (eye[i] - eye[j]) / math.sqrt(2)]
    step = math.log(FLAT_FACTOR)
    with np.errstate(all="ignore"):
        f0 = fun_grad(theta)[0]
        H = hessian_log_scale(fun_grad, theta)
        finite = bool(np.all(np.isfinite(H)))
        if finite:
            dirs += list(np.linalg.eigh(H)[1].T)
        best, best_gain = None, -FLAT_DROP
        for d in dirs:
            if finite and -0.5 * step**2 * float(d @ H @ d) > SURE_DROP:
                continue  # strongly curved: bounded
            for sign in (1.0, -1.0):
                gain = fun_grad(theta + sign * step * d)[0] - f0
                if np.isfinite(gain) and gain > best_gain:
                    best, best_gain = sign * d, gain
    if not np.isfinite(f0):
        return None
    return best


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


def check_convergence(
    posterior: xr.Dataset, sample_stats: xr.Dataset | None, names: tuple[str, ...]
) -> dict[str, Any]:
    """R-hat, bulk/tail ESS and divergences of a NUTS posterior, with a pass/fail verdict.

    Thresholds: R-hat <= 1.01, bulk and tail ESS >= 100 per chain, no divergences. Each
    element of a vector parameter (dims ``(chain, draw, <name>_dim)``) counts on its own.
    """
    n_chains = posterior.sizes["chain"]
    draws = {}
    for n in names:
        v = posterior[n].transpose("chain", "draw", ...).to_numpy()
        if v.ndim == 2:
            draws[n] = v
        else:
            v = v.reshape(v.shape[0], v.shape[1], -1)
            for j in range(v.shape[2]):
                draws[(n, j)] = np.ascontiguousarray(v[:, :, j])
    div = sample_stats.get("diverging") if sample_stats is not None else None
    n_div = int(div.sum()) if div is not None else 0
    out = {
        "max_rhat": max(_diagnostics.rhat(v) for v in draws.values()),
        "min_ess_bulk": min(_diagnostics.ess_bulk(v) for v in draws.values()),
        "min_ess_tail": min(_diagnostics.ess_tail(v) for v in draws.values()),
        "divergences": n_div,
        "chains": int(n_chains),
        "draws": int(posterior.sizes["draw"]),
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


def warn_convergence(
    diag: dict[str, Any], model_name: str, target_accept: float = TARGET_ACCEPT
) -> None:
    """Issue a :class:`ConvergenceWarning` listing failed diagnostics, if any (with
    divergences, the first suggestion is a higher ``target_accept``)."""
    if diag["ok"]:
        return
    step = ""
    if diag.get("divergences"):
        higher = min(0.99, round(target_accept + (1.0 - target_accept) / 2.0, 2))
        step = f"raise target_accept (this fit: {target_accept:g}; e.g. {higher:g}), "
    warnings.warn(
        f"{model_name} NUTS fit failed convergence checks: {'; '.join(diag['problems'])}. "
        f"Suggestion: {step}increase tune and draws (e.g. tune=2000, draws=2000), use more "
        "chains, or pass stronger priors; inspect model.summary().",
        ConvergenceWarning,
        stacklevel=3,
    )


# --------------------------------------------------------------------------------------------
# Shared pieces of the models' hand-written numba kernels (each in its model's folder, e.g.
# clvkit/models/bgnbd/kernels.py): log posterior and gradient on the unconstrained scale
# (log-likelihood on the compressed statistics + log prior + log Jacobian). Compiled once per
# machine (numba's on-disk cache), so a fresh process pays no pytensor/numba graph compilation.
# --------------------------------------------------------------------------------------------

#: Prior family codes of the numba kernels (order matters, see :func:`nb_prior`).
PRIOR_CODES = {
    "LogNormal": 0,
    "Gamma": 1,
    "HalfNormal": 2,
    "Exponential": 3,
    "HalfCauchy": 4,
    "Normal": 5,
    "Beta": 6,
}
_LOG_2PI = math.log(2.0 * math.pi)


@njit(nogil=True, error_model="numpy")
def nb_digamma(x: float) -> float:  # pragma: no cover - compiled
    """Digamma for x > 0: upward recurrence to x >= 10, then the asymptotic series (error < 1e-13)."""
    res = 0.0
    while x < 10.0:
        res -= 1.0 / x
        x += 1.0
    f = 1.0 / (x * x)
    tail = f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f / 132.0))))
    return res + math.log(x) - 0.5 / x - tail


@njit(nogil=True, error_model="numpy")
def nb_prior(eta, codes, pars, grad):  # pragma: no cover - compiled
    """Add log prior + log Jacobian at unconstrained ``eta`` to ``grad``; return their value.

    ``codes[i] = family + 8 * transform`` (families :data:`PRIOR_CODES`, transforms
    :data:`clvkit.inference.transforms.CODES`: 0 log, 1 identity, 2 logit); ``pars`` holds two
    family parameters per parameter, flat (see :func:`prior_arrays`).
    """
    lp = 0.0
    for i in range(eta.size):
        e = eta[i]
        c = codes[i] % 8
        tr = codes[i] // 8
        if tr == 0:  # theta = exp(eta)
            t = math.exp(e)
            lt = e
            dt = t
            ljac = e
            dljac = 1.0
        elif tr == 1:  # theta = eta
            t = e
            lt = math.log(t) if t > 0.0 else -math.inf
            dt = 1.0
            ljac = 0.0
            dljac = 0.0
        else:  # theta = expit(eta)
            t = 1.0 / (1.0 + math.exp(-e))
            lt = math.log(t)
            dt = t * (1.0 - t)
            ljac = lt + math.log1p(-t)
            dljac = 1.0 - 2.0 * t
        p1 = pars[2 * i]
        p2 = pars[2 * i + 1]
        if c == 0:  # LogNormal(mu, sigma)
            z = (lt - p1) / p2
            val = -lt - math.log(p2) - 0.5 * _LOG_2PI - 0.5 * z * z
            d = (-1.0 - z / p2) / t
        elif c == 1:  # Gamma(alpha, beta)
            val = p1 * math.log(p2) - math.lgamma(p1) + (p1 - 1.0) * lt - p2 * t
            d = (p1 - 1.0) / t - p2
        elif c == 2:  # HalfNormal(sigma)
            val = 0.5 * math.log(2.0 / math.pi) - math.log(p1) - 0.5 * (t / p1) ** 2
            d = -t / (p1 * p1)
        elif c == 3:  # Exponential(lam)
            val = math.log(p1) - p1 * t
            d = -p1
        elif c == 4:  # HalfCauchy(beta)
            val = math.log(2.0 / math.pi) - math.log(p1) - math.log1p((t / p1) ** 2)
            d = -2.0 * t / (p1 * p1 + t * t)
        elif c == 5:  # Normal(mu, sigma)
            z = (t - p1) / p2
            val = -math.log(p2) - 0.5 * _LOG_2PI - 0.5 * z * z
            d = -z / p2
        else:  # Beta(alpha, beta)
            val = (
                (p1 - 1.0) * lt
                + (p2 - 1.0) * math.log1p(-t)
                - math.lgamma(p1)
                - math.lgamma(p2)
                + math.lgamma(p1 + p2)
            )
            d = (p1 - 1.0) / t - (p2 - 1.0) / (1.0 - t)
        lp += val + ljac
        grad[i] += d * dt + dljac
    return lp


def prior_arrays(
    names: tuple[str, ...],
    priors: dict[str, dict[str, Any]],
    supports: tuple[str, ...],
    sizes: tuple[int, ...] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Encode validated priors as the ``(codes, pars)`` arrays of :func:`nb_prior`: one entry
    per entry of the flat unconstrained vector (``sizes[i]`` for a vector parameter, whose
    elements share its prior and support; default 1 each).

    Examples
    --------
    >>> normal = {"dist": "Normal", "mu": 0.0, "sigma": 2.0}
    >>> gamma = {"dist": "Gamma", "alpha": 2.0, "beta": 1.0}
    >>> codes, pars = prior_arrays(("s", "b"), {"s": gamma, "b": normal}, ("positive", "real"),
    ...                            (1, 2))
    >>> codes.tolist(), pars.tolist()
    ([1, 13, 13], [2.0, 1.0, 0.0, 2.0, 0.0, 2.0])
    """
    sizes = tuple(sizes) if sizes is not None else (1,) * len(names)
    dim = int(sum(sizes))
    codes = np.empty(dim, dtype=np.int64)
    pars = np.ones(2 * dim)
    i = 0
    for n, support, k in zip(names, supports, sizes, strict=True):
        spec = priors[n]
        vals = [v for key, v in spec.items() if key != "dist"]
        for _ in range(k):
            codes[i] = PRIOR_CODES[spec["dist"]] + 8 * _transforms.CODES[support]
            pars[2 * i : 2 * i + len(vals)] = vals
            i += 1
    return codes, pars


def kernel_logp(
    kernel: Callable[..., float], arrays: list[np.ndarray]
) -> Callable[[np.ndarray], tuple[float, np.ndarray]]:
    """A ``theta -> (log posterior, gradient)`` function on the unconstrained scale from a
    compiled kernel ``kernel(eta, *arrays, grad)`` (``arrays``: data, then prior codes and
    parameters from :func:`prior_arrays`)."""

    def logp(theta: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.asarray(theta, dtype=np.float64)
        grad = np.empty(theta.size)
        value = kernel(theta, *arrays, grad)
        return float(value), grad

    return logp


def _nutpie_sample(
    compiled: Any,
    draws: int,
    tune: int,
    chains: int,
    seed: int | None,
    low_rank: bool,
    progressbar: bool,
    target_accept: float = TARGET_ACCEPT,
) -> Any:
    """nutpie's NUTS on a compiled PyMC model: one core per chain, no warm-up draws kept."""
    import nutpie

    return nutpie.sample(
        compiled,
        draws=draws,
        tune=tune,
        chains=chains,
        cores=chains,
        seed=seed,
        save_warmup=False,
        low_rank_modified_mass_matrix=low_rank,
        progress_bar=progressbar,
        target_accept=target_accept,
    )


def laplace_posterior(
    logp: Callable[[np.ndarray], tuple[float, np.ndarray]],
    names: tuple[str, ...],
    start: np.ndarray,
    *,
    chains: int,
    draws: int,
    random_seed: int | np.random.Generator | None,
    what: str,
    supports: tuple[str, ...] | None = None,
) -> tuple[xr.Dataset, xr.Dataset]:
    """Laplace approximation of a posterior on the unconstrained scale, as draws.

    ``logp`` is the log posterior of the unconstrained parameters ``η`` (``log θ`` for a
    positive parameter, the default; ``θ`` for a real one, ``logit θ`` for one in (0, 1):
    ``supports``), i.e. log-likelihood + log prior + log Jacobian, the density NUTS samples.
    Its mode ``m`` is found with :func:`maximize`, ``H`` is its Hessian there
    (:func:`hessian_log_scale`: central differences of the analytic gradient), and
    ``chains * draws`` independent draws ``η ~ Normal(m, (-H)^{-1})`` are mapped back
    (exponentiated for positive parameters). The approximation is good when the posterior of ``η`` is close to normal, i.e. for large
    bases (Bernstein-von Mises); skewed, weakly identified parameters on small data are better
    served by NUTS.

    Returns ``posterior`` with dims ``(chain, draw)`` and ``sample_stats`` holding ``lp``, the Gaussian log density (up to a constant) of each draw.

    Raises
    ------
    ClvkitError
        If the mode is not found or ``-H`` is not positive definite (a flat or saddle-shaped
        posterior, where a normal approximation is meaningless).

    Examples
    --------
    >>> logp = lambda x: (-0.5 * float(x @ x), -x)  # standard normal on the log scale
    >>> post, _ = laplace_posterior(logp, ("u", "v"), np.ones(2), chains=2, draws=500,
    ...                             random_seed=1, what="demo")
    >>> dict(post.sizes)
    {'chain': 2, 'draw': 500}
    >>> bool(abs(float(np.log(post["u"]).std()) - 1.0) < 0.1)
    True
    """
    mode = maximize(logp, np.asarray(start, dtype=np.float64), f"{what} Laplace mode")[0]
    precision = -hessian_log_scale(logp, mode)
    try:
        chol = np.linalg.cholesky(precision)
    except np.linalg.LinAlgError:
        chol = None
    if chol is None or not np.all(np.isfinite(chol)):
        eig = np.linalg.eigvalsh(precision) if np.all(np.isfinite(precision)) else [np.nan]
        raise ClvkitError(
            f"{what} Laplace approximation failed: the Hessian of the log posterior at its mode "
            f"(log-parameters {np.round(mode, 3)}) is not negative definite (eigenvalues of "
            f"its negative: {np.round(eig, 6)}), so the posterior is not approximately normal. "
            "Suggestion: use method='nuts', or pass stronger priors."
        )
    k = len(names)
    rng = make_rng(random_seed)
    z = rng.standard_normal((chains * draws, k))
    # precision = L L^T, so η = m + L^{-T} z has covariance (L L^T)^{-1}
    eta = mode + np.linalg.solve(chol.T, z.T).T
    coords = {"chain": np.arange(chains), "draw": np.arange(draws)}
    values = _transforms.to_natural(eta, supports or ("positive",) * k).reshape(chains, draws, k)
    posterior = xr.Dataset(
        {n: (("chain", "draw"), values[:, :, i]) for i, n in enumerate(names)}, coords=coords
    )
    lp = -0.5 * np.einsum("ij,ij->i", z, z).reshape(chains, draws)
    sample_stats = xr.Dataset({"lp": (("chain", "draw"), lp)}, coords=coords)
    return posterior, sample_stats
