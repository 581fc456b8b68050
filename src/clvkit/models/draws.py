"""Posterior draws from whatever the caller holds: a fitted model, an InferenceData, a posterior
``xarray.Dataset`` or a dict of values. Shared by ``value``, ``backtest`` and ``plots``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import xarray as xr

from clvkit.errors import ClvkitError, bad_rows_error

__all__ = ["BG_VARS", "GG_VARS", "flat_draws", "posterior_dataset"]

BG_VARS = ("r", "alpha", "a", "b")
GG_VARS = ("p", "q", "v")


def posterior_dataset(obj: Any, names: Sequence[str], argument: str) -> xr.Dataset:
    """The validated posterior of ``names`` as a Dataset with dims ``(chain, draw)``.

    ``obj`` is a fitted model (``idata_``), an ``InferenceData``, a posterior ``Dataset``, or a
    dict of scalars / 1-d arrays (one chain). The InferenceData's attrs (time unit, ...) are
    carried over. Every value must be a positive finite number.

    Examples
    --------
    >>> post = posterior_dataset({"p": 6.25, "q": 3.74, "v": 15.4}, GG_VARS, "spend_model")
    >>> dict(post.sizes)
    {'chain': 1, 'draw': 1}
    """
    post = obj
    if hasattr(post, "posterior_"):  # a fitted clvkit model: no need to build its idata_
        post = post.posterior_
    elif hasattr(post, "idata_"):
        post = post.idata_
    if hasattr(post, "posterior") and not isinstance(post, xr.Dataset):
        attrs = dict(getattr(post, "attrs", {}) or {})
        post = post.posterior
        post = post.assign_attrs({**attrs, **post.attrs})
    if isinstance(post, dict):
        post = xr.Dataset(
            {
                k: (("chain", "draw"), np.atleast_1d(np.asarray(v, dtype=np.float64))[None, :])
                for k, v in post.items()
            }
        )
    if not isinstance(post, xr.Dataset):
        raise ClvkitError(
            f"argument {argument!r} must be a fitted model, an InferenceData or a posterior "
            f"xarray.Dataset, got {type(obj).__name__}. Suggestion: fit the model first and "
            "pass it (or model.idata_.posterior)."
        )
    missing = [n for n in names if n not in post]
    if missing:
        raise ClvkitError(
            f"argument {argument!r} lacks posterior variables {missing}; it has "
            f"{sorted(map(str, post.data_vars))}. Suggestion: pass the posterior of the right "
            f"model (it needs {list(names)})."
        )
    for n in names:
        if set(post[n].dims) != {"chain", "draw"}:
            raise ClvkitError(
                f"argument {argument!r}: variable {n!r} has dims {post[n].dims}, expected "
                "('chain', 'draw'). Suggestion: pass the posterior of population parameters."
            )
        vals = post[n].values
        bad = ~(np.isfinite(vals) & (vals > 0))
        if bad.any():
            raise bad_rows_error(
                f"posterior variable {n!r} of {argument!r}",
                "is not a positive finite number",
                int(bad.sum()),
                float(vals[bad][0]),
                "check the fit; every BG/NBD and Gamma-Gamma parameter is positive",
                n_total=vals.size,
            )
    return post


def flat_draws(post: xr.Dataset, names: Sequence[str]) -> dict[str, np.ndarray]:
    """Each variable's draws flattened in (chain, draw) order to a 1-d float array.

    Examples
    --------
    >>> post = posterior_dataset({"p": [6.0, 7.0], "q": [3.0, 4.0], "v": [15.0, 16.0]},
    ...                          GG_VARS, "spend_model")
    >>> flat_draws(post, GG_VARS)["q"].tolist()
    [3.0, 4.0]
    """
    return {
        n: post[n].transpose("chain", "draw").values.reshape(-1).astype(np.float64) for n in names
    }
