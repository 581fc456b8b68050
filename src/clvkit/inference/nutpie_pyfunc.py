"""nutpie's NUTS on a Python log-density (its public ``from_pyfunc``): for models whose log
posterior is numpy or numba code called from Python, e.g. the covariate models, whose
gradient runs the base model's per-row kernel (compiled, releasing the GIL) and a chain rule.

nutpie calls the function once per gradient from its own threads (holding the GIL for the
Python part), so the overhead is a few microseconds per gradient on top of the kernel.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import xarray as xr

from clvkit.errors import ClvkitError
from clvkit.inference import transforms as _transforms
from clvkit.inference.sampling import TARGET_ACCEPT, seed_int
from clvkit.utils.system import usable_cores

__all__ = ["sample_pyfunc"]

_STATS = {
    "lp": "lp",
    "diverging": "diverging",
    "depth": "tree_depth",
    "n_steps": "n_steps",
    "step_size": "step_size",
    "energy": "energy",
    "mean_tree_accept": "acceptance_rate",
}


def sample_pyfunc(
    logp: Callable[[np.ndarray], tuple[float, np.ndarray]],
    names: tuple[str, ...],
    supports: tuple[str, ...],
    start: np.ndarray,
    *,
    chains: int,
    draws: int,
    tune: int,
    random_seed: int | np.random.Generator | None,
    progressbar: bool,
    target_accept: float = TARGET_ACCEPT,
) -> tuple[xr.Dataset, xr.Dataset]:
    """NUTS (nutpie, low-rank modified mass matrix) on ``logp``: ``theta -> (value,
    gradient)`` on the unconstrained scale (log posterior with Jacobian). Returns
    ``(posterior, sample_stats)`` with one variable per entry of ``names`` on the parameter
    scale (``supports``), dims ``(chain, draw)``; chains start at ``start`` jittered by ±1."""
    import nutpie
    from nutpie.compiled_pyfunc import from_pyfunc

    dim = len(names)
    start = np.asarray(start, dtype=np.float64)
    shapes = [()] * dim

    def make_logp():
        def fn(x: np.ndarray) -> tuple[float, np.ndarray]:
            value, grad = logp(np.asarray(x, dtype=np.float64))
            if not np.isfinite(value) or not np.all(np.isfinite(grad)):
                return -np.inf, np.zeros(dim)
            return float(value), np.ascontiguousarray(grad, dtype=np.float64)

        return fn

    def make_expand(seed1: int, seed2: int, chain: int):
        def fn(x: np.ndarray) -> dict[str, np.ndarray]:
            nat = _transforms.to_natural(np.asarray(x, dtype=np.float64), supports)
            return {n: np.asarray(v) for n, v in zip(names, nat, strict=True)}

        return fn

    def initial_point(seed_: int) -> np.ndarray:
        rng = np.random.default_rng(seed_)
        return start + rng.uniform(-1.0, 1.0, size=dim)

    model = from_pyfunc(
        dim,
        make_logp,
        make_expand,
        [np.dtype("float64")] * dim,
        shapes,
        list(names),
        make_initial_point_fn=initial_point,
    )
    idata = nutpie.sample(
        model,
        draws=int(draws),
        tune=int(tune),
        chains=int(chains),
        cores=max(1, min(int(chains), usable_cores())),
        seed=seed_int(random_seed),
        progress_bar=progressbar,
        low_rank_modified_mass_matrix=True,
        save_warmup=False,
        target_accept=target_accept,
    )
    post = idata.posterior
    if post.sizes.get("draw") != draws or post.sizes.get("chain") != chains:
        raise ClvkitError(
            f"nutpie returned {dict(post.sizes)} draws, expected {chains} chains x {draws}."
        )
    coords = {"chain": np.arange(chains), "draw": np.arange(draws)}
    dims = ("chain", "draw")
    posterior = xr.Dataset(
        {n: (dims, post[n].to_numpy().astype(np.float64)) for n in names}, coords=coords
    )
    st = idata.sample_stats
    stats = {dst: (dims, st[src].to_numpy()) for src, dst in _STATS.items() if src in st}
    return posterior, xr.Dataset(stats, coords=coords)
