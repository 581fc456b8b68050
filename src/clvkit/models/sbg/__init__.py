"""The shifted-beta-geometric (sBG) model of contractual retention (Fader and Hardie 2007): the
renewal model, its pooled (hierarchical) version over cohorts and the subscription fee."""

from __future__ import annotations

from clvkit.models.sbg.fee import SubscriptionFee
from clvkit.models.sbg.model import ShiftedBetaGeo
from clvkit.models.sbg.pooled import ShiftedBetaGeoPooled

__all__ = ["ShiftedBetaGeo", "ShiftedBetaGeoPooled", "SubscriptionFee"]
