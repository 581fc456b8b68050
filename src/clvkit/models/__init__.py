"""Probabilistic models: one folder per model (spec, likelihood, kernels, estimator).

Public names, imported lazily (a model's estimator pulls in its numerics only on first use):
``BetaGeo``, ``GammaGamma``, ``SubscriptionFee``, ``load`` (a saved model) and ``register`` (a class decorator that
adds a new model to :mod:`clvkit.models.registry`).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BetaGeo": "clvkit.models.bgnbd.model",
    "GammaGamma": "clvkit.models.gamma_gamma.model",
    "load": "clvkit.models.persistence",
    "register": "clvkit.models.registry",
    "SubscriptionFee": "clvkit.models.sbg.fee",  # the fee side of subscriber value
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'clvkit.models' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
