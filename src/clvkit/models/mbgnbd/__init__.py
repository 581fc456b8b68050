"""The MBG/NBD purchase model (Batislam, Denizel and Filiztekin 2007)."""

from __future__ import annotations

from clvkit.models.mbgnbd.model import ModifiedBetaGeo

__all__ = ["ModifiedBetaGeo"]
