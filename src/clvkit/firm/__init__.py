"""The firm's customer equity: today's customers, the customers it will acquire, and equity
over time.

- :mod:`clvkit.firm.acquisition`: new customers per period (counted, modelled or planned);
- :mod:`clvkit.firm.equity`: :func:`firm_equity` (existing + future cohorts, per draw), with
  the per-period flows of :mod:`clvkit.firm.flows`;
- :mod:`clvkit.firm.sensitivity`: how equity moves with each lever, CLV:CAC and payback;
- :mod:`clvkit.firm.history`: :func:`equity_history` and :class:`EquityHistory`.

Models are reached only through the contract and the registry (see docs/architecture.md).
"""

from __future__ import annotations

from clvkit.firm.acquisition import AcquisitionModel, AcquisitionPlan, acquisition_counts
from clvkit.firm.equity import FirmEquity, firm_equity
from clvkit.firm.history import EquityHistory, equity_history

__all__ = [
    "AcquisitionModel",
    "AcquisitionPlan",
    "EquityHistory",
    "FirmEquity",
    "acquisition_counts",
    "equity_history",
    "firm_equity",
]
