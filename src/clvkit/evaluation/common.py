"""Shared pieces of the evaluation layer: posterior draws through the model contract, checks,
predictive-sample indexing and the randomized PIT."""

from __future__ import annotations

from typing import Any

import numpy as np

from clvkit.errors import ClvkitError
from clvkit.models.contract import ModelSpec
from clvkit.models.registry import flat_params, resolve

__all__ = [
    "CELLS",
    "LEVELS",
    "draw_index",
    "model_draws",
    "randomized_pit",
    "same_length",
]

#: Central interval masses whose coverage :func:`clvkit.evaluation.predictive.holdout_metrics`
#: reports.
LEVELS = (0.5, 0.8, 0.9)
#: Elements per chunk of a (draws x customers [x periods]) array.
CELLS = 2_000_000


def model_draws(obj: Any, kind: str, argument: str) -> tuple[ModelSpec, dict[str, np.ndarray]]:
    """The spec of a fitted model, posterior or dict of parameters, and its ``(S, k)`` draws.

    Examples
    --------
    >>> spec, params = model_draws({"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4}, "purchase",
    ...                            "transactions_posterior")
    >>> spec.label, params["r"].shape
    ('BG/NBD', (1, 1))
    """
    spec, post = resolve(obj, kind, argument)
    return spec, flat_params(spec, post)


def draw_index(n_draws: int, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Posterior draw behind each predictive sample: a subset, or all draws cycled when fewer.

    Examples
    --------
    >>> draw_index(3, 7, np.random.default_rng(0)).size
    7
    """
    if n_draws >= n_samples:
        return np.sort(rng.choice(n_draws, size=n_samples, replace=False))
    return np.resize(rng.permutation(n_draws), n_samples)


def randomized_pit(samples: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``u = F(y-) + V (F(y) - F(y-))``, ``F`` the empirical predictive CDF over axis 0.

    Examples
    --------
    >>> float(randomized_pit(np.array([[0.0], [1.0]]), np.array([5.0]), np.random.default_rng(0))[0])
    1.0
    """
    below = (samples < y).mean(axis=0)
    at_or_below = (samples <= y).mean(axis=0)
    return below + rng.random(np.shape(y)) * (at_or_below - below)


def same_length(n: int, **arrays: np.ndarray) -> None:
    """Refuse arrays that are not 1-D with ``n`` entries (one per customer)."""
    for name, arr in arrays.items():
        if np.ndim(arr) != 1 or len(arr) != n:
            raise ClvkitError(
                f"argument {name!r} has shape {np.shape(arr)}, but there are {n} customers. "
                "Suggestion: pass aligned 1-D arrays, one entry per customer."
            )
