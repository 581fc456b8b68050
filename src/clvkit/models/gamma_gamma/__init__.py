"""The Gamma-Gamma spend model (Fader and Hardie 2013)."""

from __future__ import annotations

from clvkit.models.gamma_gamma.model import GammaGamma

__all__ = ["GammaGamma"]
