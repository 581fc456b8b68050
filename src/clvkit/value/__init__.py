"""Monte Carlo layer: joint posterior draws -> discounted CLV per customer and customer equity."""

from __future__ import annotations

from clvkit.value.engine import DEFAULT_TIERS, CustomerValue, customer_value

__all__ = ["DEFAULT_TIERS", "CustomerValue", "customer_value"]
