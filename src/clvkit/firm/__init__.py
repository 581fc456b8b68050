"""The firm's customer equity: equity over time (and its bridge) at a series of cut-offs.

- :mod:`clvkit.firm.history`: :func:`equity_history` and :class:`EquityHistory`.

Models are reached only through the contract and the registry (see docs/architecture.md).
"""

from __future__ import annotations

from clvkit.firm.history import EquityHistory, equity_history

__all__ = ["EquityHistory", "equity_history"]
