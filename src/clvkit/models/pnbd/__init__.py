"""The Pareto/NBD purchase model (Schmittlein, Morrison and Colombo 1987)."""

from __future__ import annotations

from clvkit.models.pnbd.model import ParetoNBD

__all__ = ["ParetoNBD"]
