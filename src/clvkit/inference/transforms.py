"""Parameter transforms: each parameter is fitted on an unconstrained scale chosen by its support.

``positive`` parameters are sampled and optimised on the log scale, ``real`` ones as they are
(e.g. regression coefficients) and ``unit`` ones (in (0, 1)) on the logit scale (see
:data:`clvkit.models.contract.SUPPORTS`). MLE, MAP, Laplace, NUTS, the point-fit standard errors
and the summary all go through these functions, so a model only declares the supports.

Examples
--------
>>> import numpy as np
>>> theta = to_unconstrained(np.array([2.0, -1.5, 0.25]), ("positive", "real", "unit"))
>>> np.round(theta, 4).tolist()
[0.6931, -1.5, -1.0986]
>>> np.round(to_natural(theta, ("positive", "real", "unit")), 12).tolist()
[2.0, -1.5, 0.25]
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy.special import expit, logit

__all__ = ["CODES", "codes", "dnatural", "log_jacobian", "to_natural", "to_unconstrained"]

#: Transform code of each support, as the compiled kernels read it.
CODES = {"positive": 0, "real": 1, "unit": 2}


def codes(supports: Sequence[str]) -> np.ndarray:
    """The transform codes (int64) of ``supports``."""
    return np.array([CODES[s] for s in supports], dtype=np.int64)


def to_natural(theta: np.ndarray, supports: Sequence[str]) -> np.ndarray:
    """Parameters from their unconstrained values (last axis: one entry per parameter)."""
    theta = np.asarray(theta, dtype=np.float64)
    out = np.empty_like(theta)
    for i, s in enumerate(supports):
        t = theta[..., i]
        out[..., i] = np.exp(t) if s == "positive" else (t if s == "real" else expit(t))
    return out


def to_unconstrained(values: np.ndarray, supports: Sequence[str]) -> np.ndarray:
    """Unconstrained values of parameters (the inverse of :func:`to_natural`)."""
    values = np.asarray(values, dtype=np.float64)
    out = np.empty_like(values)
    for i, s in enumerate(supports):
        v = values[..., i]
        out[..., i] = np.log(v) if s == "positive" else (v if s == "real" else logit(v))
    return out


def dnatural(theta: float, support: str) -> tuple[float, float]:
    """One parameter's value at unconstrained ``theta`` and its derivative in ``theta``."""
    if support == "positive":
        x = math.exp(theta)
        return x, x
    if support == "real":
        return float(theta), 1.0
    x = float(expit(theta))
    return x, x * (1.0 - x)


def log_jacobian(theta: float, support: str) -> tuple[float, float]:
    """``log |d value / d theta|`` at ``theta`` and its derivative in ``theta``."""
    if support == "positive":
        return float(theta), 1.0
    if support == "real":
        return 0.0, 0.0
    x = float(expit(theta))
    return math.log(x) + math.log1p(-x), 1.0 - 2.0 * x
