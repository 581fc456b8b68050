"""The firm's customer equity: today's customers and the customers it will acquire.

- :mod:`clvkit.firm.acquisition`: new customers per period (counted, modelled or planned);
- :mod:`clvkit.firm.equity`: :func:`firm_equity` (existing + future cohorts, per draw);
- :mod:`clvkit.firm.sensitivity`: how equity moves with each lever, CLV:CAC and payback.
"""

from __future__ import annotations

from clvkit.firm.acquisition import AcquisitionModel, AcquisitionPlan, acquisition_counts
from clvkit.firm.equity import FirmEquity, firm_equity

__all__ = ["AcquisitionModel", "AcquisitionPlan", "FirmEquity", "acquisition_counts", "firm_equity"]
