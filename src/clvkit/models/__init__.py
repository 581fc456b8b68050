"""Probabilistic models: one model per module (spec, likelihood, fit)."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "BetaGeo": "clvkit.models.bgnbd.model",
    "GammaGamma": "clvkit.models.gamma_gamma.model",
    "load": "clvkit.models.persistence",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'clvkit.models' has no attribute {name!r}")
