"""The shifted-beta-geometric (sBG) model of contractual retention (Fader and Hardie 2007)."""

from __future__ import annotations

from clvkit.models.sbg.model import ShiftedBetaGeo

__all__ = ["ShiftedBetaGeo"]
