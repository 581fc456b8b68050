"""The BG/NBD purchase model (Fader, Hardie and Lee 2005)."""

from __future__ import annotations

from clvkit.models.bgnbd.model import BetaGeo

__all__ = ["BetaGeo"]
