"""The shifted-beta-geometric (sBG) model of contractual retention (Fader and Hardie 2007): the
renewal model, its pooled (hierarchical) version over cohorts and the subscription fee.

``ShiftedBetaGeoPooled`` is imported on first use: its compiled NUTS kernel loads numba's
machinery (~0.3 s), which ``ShiftedBetaGeo`` and ``SubscriptionFee`` (registered here on
import) do not need.
"""

from __future__ import annotations

import importlib
from typing import Any

from clvkit.models.sbg.fee import SubscriptionFee
from clvkit.models.sbg.model import ShiftedBetaGeo

__all__ = ["ShiftedBetaGeo", "ShiftedBetaGeoPooled", "SubscriptionFee"]


def __getattr__(name: str) -> Any:
    if name == "ShiftedBetaGeoPooled":
        return importlib.import_module("clvkit.models.sbg.pooled").ShiftedBetaGeoPooled
    raise AttributeError(f"module 'clvkit.models.sbg' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
