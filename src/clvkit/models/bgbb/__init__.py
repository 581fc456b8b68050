"""The BG/BB purchase model for discrete opportunities (Fader, Hardie and Shang 2010)."""

from __future__ import annotations

from clvkit.models.bgbb.model import BetaGeoBetaBinom

__all__ = ["BetaGeoBetaBinom"]
