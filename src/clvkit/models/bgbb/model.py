"""The BG/BB purchase model for discrete opportunities (Fader, Hardie and Shang 2010), on
compressed statistics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from clvkit.errors import ClvkitError
from clvkit.models.base import PurchaseModel
from clvkit.models.bgbb.likelihood import (
    BGBBStats,
    bgbb_loglik_grad,
    bgbb_loglik_rows_grad,
    compress_bgbb,
)
from clvkit.models.bgbb.spec import BGBBSpec, validate_opportunities
from clvkit.models.registry import register
from clvkit.units import format_time_unit

__all__ = ["BetaGeoBetaBinom"]

_SHAPE = {"dist": "LogNormal", "mu": 0.0, "sigma": 2.0}
_ROWS = ("frequency", "recency", "n", "weight")


@register
class BetaGeoBetaBinom(PurchaseModel):
    """BG/BB model of purchases at discrete opportunities (annual donations, yearly events,
    weekly classes), fitted with NUTS, Laplace, MAP or MLE.

    At each opportunity after the first an alive customer buys with probability
    ``p ~ Beta(alpha, beta)``; before each opportunity it dies with probability
    ``theta ~ Beta(gamma, delta)`` (Fader, Hardie and Shang 2010). Time is counted in
    opportunities: the table's ``attrs["time_unit"]`` is the opportunity period, and horizons
    ``t`` are whole opportunities after the customer's last observed one ``n`` (a fractional
    ``t`` counts its whole opportunities only).

    Parameters
    ----------
    priors : dict, optional
        Per-parameter overrides of the priors (families as for :class:`clvkit.BetaGeo`).
        Defaults: ``alpha, beta, gamma, delta ~ LogNormal(0, 2)``. ``method="mle"`` ignores
        priors.

    Attributes
    ----------
    posterior_ : xarray.Dataset
        ``alpha``, ``beta``, ``gamma``, ``delta`` over ``chain``, ``draw``.
    time_unit_ : str
    method_ : str
    stats_ : BGBBStats or None
    n_customers_ : int

    Notes
    -----
    Fits on a table with ``frequency``, ``recency`` and ``n`` (whole numbers of opportunities,
    as built by :func:`clvkit.opportunity_summary` or :func:`clvkit.datasets.donations_summary`)
    and ``attrs["time_unit"]``; at least one customer must have a purchase after the first
    opportunity.

    Examples
    --------
    >>> from clvkit.datasets import donations_summary
    >>> model = BetaGeoBetaBinom().fit(donations_summary(), method="mle")
    >>> model.summary()["mean"].round(3).tolist()
    [1.204, 0.75, 0.657, 2.783]
    """

    spec: ClassVar[BGBBSpec] = BGBBSpec()
    _default_priors: ClassVar[dict[str, dict[str, Any]]] = {
        "alpha": _SHAPE,
        "beta": _SHAPE,
        "gamma": _SHAPE,
        "delta": _SHAPE,
    }

    # ---- hooks ------------------------------------------------------------------------------
    @staticmethod
    def _training_data(rfm: pd.DataFrame) -> tuple[dict[str, np.ndarray], str]:
        """The validated columns and the time unit (errors as for fitting)."""
        cols = validate_opportunities(rfm)
        unit = rfm.attrs.get("time_unit")
        if unit is None:
            raise ClvkitError(
                "argument 'rfm' has no attrs['time_unit'] (the opportunity period), so horizons "
                "would be ambiguous. Suggestion: build it with clvkit.opportunity_summary(...) "
                "or set rfm.attrs['time_unit'] = 'Y' (or 'Q', 'M', 'W', ...)."
            )
        if not (cols["frequency"] > 0).any():
            raise ClvkitError(
                f"column 'frequency' of 'rfm' is 0 for all {len(rfm):,} customers: nobody "
                "bought after the first opportunity, so the data cannot tell a low purchase "
                "probability from early death. Suggestion: observe more opportunities."
            )
        return cols, format_time_unit(unit)

    def _prepare(self, rfm: pd.DataFrame) -> tuple[BGBBStats, str | None]:
        cols, unit = self._training_data(rfm)
        return compress_bgbb(cols["frequency"], cols["recency"], cols["n"]), unit

    def _loglik_grad(self, theta: np.ndarray, stats: BGBBStats) -> tuple[float, np.ndarray]:
        return bgbb_loglik_grad(theta, stats)

    def _row_columns(self, table: pd.DataFrame) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """The columns of the per-row likelihood (validated as for fitting) and which
        customers enter it (all)."""
        cols, _ = self._training_data(table)
        out = {c: cols[c] for c in ("frequency", "recency", "n")}
        return out, np.ones(out["n"].size, dtype=bool)

    def _rows_loglik_grad(
        self, theta: np.ndarray, cols: Mapping[str, np.ndarray]
    ) -> tuple[np.ndarray, np.ndarray]:
        """The base likelihood with per-row parameters: each row's log-likelihood ``(m,)`` and
        its gradient ``(m, 4)`` in that row's ``theta = log([alpha, beta, gamma, delta])``
        (:func:`clvkit.models.bgbb.likelihood.bgbb_loglik_rows_grad`)."""
        return bgbb_loglik_rows_grad(theta, cols["frequency"], cols["recency"], cols["n"])

    def _unbounded_meaning(self, up: list[str], down: list[str], values: dict[str, float]) -> str:
        parts = []
        if {"alpha", "beta"} <= set(up):
            p = values["alpha"] / (values["alpha"] + values["beta"])
            parts.append(
                "the purchase probabilities show no variation between customers: "
                f"Beta(alpha, beta) shrinks to one value, {p:.4g}"
            )
        if {"gamma", "delta"} <= set(up):
            q = values["gamma"] / (values["gamma"] + values["delta"])
            parts.append(
                "the death probabilities show no variation between customers: "
                f"Beta(gamma, delta) shrinks to one value, {q:.4g}"
            )
        elif "gamma" in down or ("delta" in up and "gamma" not in up):
            parts.append("the data show no sign of death: the death probability runs to 0")
        return "; ".join(parts) or "these parameters are not identified by the data"

    def _x0(self, stats: BGBBStats) -> np.ndarray:
        # alpha/(alpha+beta) = the share of opportunities with a purchase; gamma = delta... = 1
        share = float(stats.weight @ stats.frequency / max(stats.weight @ stats.n, 1e-12))
        share = min(max(share, 1e-3), 1 - 1e-3)
        return np.log([share / (1 - share), 1.0, 1.0, 1.0])

    def _native_kernel(self, stats: BGBBStats, codes: np.ndarray, pars: np.ndarray) -> Any:
        from clvkit.models.bgbb.kernels import bgbb_native_kernel  # numba: compiled on first use

        return bgbb_native_kernel(stats, codes, pars)

    def _observed_data(self, stats: BGBBStats) -> xr.Dataset:
        return xr.Dataset({k: ("row", getattr(stats, k)) for k in _ROWS})

    @staticmethod
    def _stats_from_observed(ds: xr.Dataset) -> BGBBStats:
        return compress_bgbb(*(ds[k].to_numpy() for k in _ROWS[:3]), weight=ds["weight"].to_numpy())
