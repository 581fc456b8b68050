"""The result of a customer-value computation: :class:`CustomerValue`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from clvkit.errors import ClvkitError

__all__ = ["STORED_PROBS", "CustomerValue", "check_prob"]

#: Central interval probabilities whose per-customer bounds are kept without the draws.
STORED_PROBS = (0.5, 0.8, 0.9, 0.95)


def check_prob(prob: float) -> float:
    """``prob`` as a float in (0, 1), else a ClvkitError naming the argument."""
    if not (isinstance(prob, int | float) and 0 < prob < 1):
        raise ClvkitError(
            f"argument 'prob' must be in (0, 1), got {prob!r}. Suggestion: 0.9 for a 90% interval."
        )
    return float(prob)


@dataclass
class CustomerValue:
    """Result of :func:`customer_value`.

    Attributes
    ----------
    equity : xarray.DataArray
        Total customer equity per draw, dims ``(chain, draw)``.
    tier_equity, tier_count : xarray.DataArray
        Per-draw equity and customer count of each value tier, dims ``(chain, draw, tier)``.
    new_customer : xarray.DataArray
        Expected CLV of a newly acquired customer per draw, dims ``(chain, draw)``: the margin on
        its acquisition purchase (time 0, undiscounted, prior mean spend) plus its discounted
        repeat purchases over the horizon, minus costs.
    settings : dict
        The resolved settings (units, rates, method, ...).

    Examples
    --------
    With MLE fits (a single draw) on CDNOW, over the next 52 weeks at 10% a year:

    >>> import clvkit
    >>> rfm = clvkit.datasets.cdnow_calibration_summary()
    >>> bg = clvkit.BetaGeo().fit(rfm, method="mle")
    >>> gg = clvkit.GammaGamma().fit(rfm, method="mle")
    >>> res = clvkit.customer_value(bg, gg, rfm, horizon="52W", annual_discount_rate=0.1,
    ...                             method="expected")
    >>> res.equity.dims, res.settings["n_customers"], res.settings["n_draws"]
    (('chain', 'draw'), 2357, 1)
    >>> round(res.equity.item())  # total customer equity, dollars
    72224
    """

    equity: xr.DataArray
    tier_equity: xr.DataArray
    tier_count: xr.DataArray
    new_customer: xr.DataArray
    settings: dict[str, Any]
    _customers: pd.DataFrame
    _quantiles: dict[float, np.ndarray]
    _clv: xr.DataArray | None = None
    _purchases: xr.DataArray | None = None
    _tiers: dict[str, float] = field(default_factory=dict)

    @property
    def clv(self) -> xr.DataArray:
        """Discounted CLV per draw and customer, dims ``(chain, draw, customer_id)``.

        Kept only with ``customer_value(..., keep_draws=True)``.

        Examples
        --------
        >>> import clvkit
        >>> rfm = clvkit.datasets.cdnow_calibration_summary()
        >>> bg = clvkit.BetaGeo().fit(rfm, method="mle")
        >>> gg = clvkit.GammaGamma().fit(rfm, method="mle")
        >>> res = clvkit.customer_value(bg, gg, rfm, horizon="52W", annual_discount_rate=0.1,
        ...                             method="expected", keep_draws=True)
        >>> res.clv.dims, res.clv.shape
        (('chain', 'draw', 'customer_id'), (1, 1, 2357))
        >>> round(res.clv.sel(customer_id=1).item(), 2)
        36.64
        """
        if self._clv is None:
            raise ClvkitError(
                "argument 'keep_draws' was False, so the (draw x customer) CLV array was not kept. "
                "Suggestion: call customer_value(..., keep_draws=True) (memory: 8 bytes per "
                "draw and customer)."
            )
        return self._clv

    @property
    def purchases(self) -> xr.DataArray:
        """Simulated purchase counts in the horizon (``method='simulate'``, ``keep_draws=True``).

        Examples
        --------
        >>> import clvkit
        >>> rfm = clvkit.datasets.cdnow_calibration_summary()
        >>> bg = clvkit.BetaGeo().fit(rfm, method="mle")
        >>> gg = clvkit.GammaGamma().fit(rfm, method="mle")
        >>> res = clvkit.customer_value(bg, gg, rfm, horizon="52W", annual_discount_rate=0.1,
        ...                             method="simulate", keep_draws=True, random_seed=0)
        >>> res.purchases.dims, res.purchases.shape, res.purchases.dtype.kind
        (('chain', 'draw', 'customer_id'), (1, 1, 2357), 'i')
        """
        if self._purchases is None:
            raise ClvkitError(
                "simulated purchase counts are kept only with method='simulate' and "
                "keep_draws=True. Suggestion: pass both."
            )
        return self._purchases

    def _interval(self, values: np.ndarray, prob: float) -> tuple[float, float]:
        lo, hi = np.quantile(values, [(1 - prob) / 2, (1 + prob) / 2])
        return float(lo), float(hi)

    def summary(self, prob: float = 0.9) -> pd.DataFrame:
        """Per-customer table: CLV mean, median and central interval, P(alive), expected
        purchases and spend over the horizon, most probable value tier and each tier's probability.

        ``prob`` must be one of 0.5, 0.8, 0.9, 0.95 unless the draws were kept. With
        ``method="simulate"`` the expected purchases are the mean of the simulated counts.
        The tier is the most probable one (ties go to the higher tier).

        Examples
        --------
        >>> import clvkit
        >>> rfm = clvkit.datasets.cdnow_calibration_summary()
        >>> bg = clvkit.BetaGeo().fit(rfm, method="mle")
        >>> gg = clvkit.GammaGamma().fit(rfm, method="mle")
        >>> res = clvkit.customer_value(bg, gg, rfm, horizon="52W", annual_discount_rate=0.1,
        ...                             method="expected")
        >>> cols = ["mean", "lower", "upper", "p_alive", "expected_purchases", "tier"]
        >>> res.summary().loc[[1, 3], cols].round(2)  # doctest: +NORMALIZE_WHITESPACE
                      mean  lower  upper  p_alive  expected_purchases  tier
        customer_id
        1            36.64  36.64  36.64     0.73                1.56  iron
        3             8.43   8.43   8.43     1.00                0.25  lead
        """
        prob = check_prob(prob)
        out = self._customers.copy()
        if prob in self._quantiles:
            lo, hi = self._quantiles[prob]
        elif self._clv is not None:
            q = self._clv.quantile([(1 - prob) / 2, (1 + prob) / 2], dim=("chain", "draw"))
            lo, hi = q.values
        else:
            raise ClvkitError(
                f"argument 'prob' is {prob}; without kept draws only {STORED_PROBS} are "
                "available. Suggestion: use one of those or keep_draws=True."
            )
        out.insert(2, "lower", lo)
        out.insert(3, "upper", hi)
        return out

    def equity_interval(self, prob: float = 0.9) -> pd.Series:
        """Mean, median and central ``prob`` interval of total customer equity over draws.

        Examples
        --------
        A point fit has one draw, so the interval collapses to the estimate:

        >>> import clvkit
        >>> rfm = clvkit.datasets.cdnow_calibration_summary()
        >>> bg = clvkit.BetaGeo().fit(rfm, method="mle")
        >>> gg = clvkit.GammaGamma().fit(rfm, method="mle")
        >>> res = clvkit.customer_value(bg, gg, rfm, horizon="52W", annual_discount_rate=0.1,
        ...                             method="expected")
        >>> res.equity_interval(0.9).round().to_dict()
        {'mean': 72224.0, 'median': 72224.0, 'lower': 72224.0, 'upper': 72224.0}
        """
        prob = check_prob(prob)
        e = self.equity.values.ravel()
        lo, hi = self._interval(e, prob)
        return pd.Series(
            {"mean": e.mean(), "median": float(np.median(e)), "lower": lo, "upper": hi},
            name="equity",
        )

    def tier_table(self, prob: float = 0.9) -> pd.DataFrame:
        """Each tier's cut, customer count and share of equity (mean and interval over draws).

        A tier's share in a draw is its equity over the draw's total equity. A draw whose total
        equity is exactly 0 (every customer's CLV is 0 in it, e.g. every customer dead, or
        gains and costs cancelling) has no shares (0/0): it is left out of ``equity_share``,
        ``share_lower`` and ``share_upper``, and ``attrs["zero_equity_draws"]`` counts such
        draws. When every draw has zero equity the shares are NaN (the report says "n/a").

        Examples
        --------
        The top 1% of CDNOW customers hold about 18% of next year's equity:

        >>> import clvkit
        >>> rfm = clvkit.datasets.cdnow_calibration_summary()
        >>> bg = clvkit.BetaGeo().fit(rfm, method="mle")
        >>> gg = clvkit.GammaGamma().fit(rfm, method="mle")
        >>> res = clvkit.customer_value(bg, gg, rfm, horizon="52W", annual_discount_rate=0.1,
        ...                             method="expected")
        >>> res.tier_table()[["top_share", "count", "equity_share"]].round(3)
        ... # doctest: +NORMALIZE_WHITESPACE
                  top_share   count  equity_share
        tier
        platinum       0.01    24.0         0.179
        gold           0.05    94.0         0.242
        iron           0.20   354.0         0.292
        lead           1.00  1885.0         0.287
        """
        prob = check_prob(prob)
        eq = self.equity.values.ravel()
        has = np.isfinite(eq) & (eq != 0)  # draws with a defined share
        rows = []
        for j, name in enumerate(self.tier_equity.coords["tier"].values):
            te = self.tier_equity.values[..., j].ravel()
            if has.any():
                share = te[has] / eq[has]
                mean = float(np.mean(share))
                lo, hi = self._interval(share, prob)
            else:
                mean = lo = hi = np.nan
            rows.append(
                {
                    "tier": name,
                    "top_share": self._tiers[name],
                    "count": float(self.tier_count.values[..., j].mean()),
                    "equity": float(te.mean()),
                    "equity_share": mean,
                    "share_lower": lo,
                    "share_upper": hi,
                }
            )
        table = pd.DataFrame(rows).set_index("tier")
        table.attrs["zero_equity_draws"] = int(eq.size - has.sum())
        return table

    def new_customer_value(self, prob: float = 0.9) -> pd.Series:
        """Expected CLV of a newly acquired customer (mean, interval), and CLV - CAC and
        CLV:CAC when ``acquisition_cost`` was given.

        Examples
        --------
        >>> import clvkit
        >>> rfm = clvkit.datasets.cdnow_calibration_summary()
        >>> bg = clvkit.BetaGeo().fit(rfm, method="mle")
        >>> gg = clvkit.GammaGamma().fit(rfm, method="mle")
        >>> res = clvkit.customer_value(bg, gg, rfm, horizon="52W", annual_discount_rate=0.1,
        ...                             method="expected", acquisition_cost=60)
        >>> nc = res.new_customer_value()
        >>> nc[["clv_mean", "clv_minus_cac_mean", "clv_to_cac_mean"]].round(2).to_dict()
        {'clv_mean': 83.83, 'clv_minus_cac_mean': 23.83, 'clv_to_cac_mean': 1.4}
        """
        prob = check_prob(prob)
        v = self.new_customer.values.ravel()
        lo, hi = self._interval(v, prob)
        out = {"clv_mean": v.mean(), "clv_lower": lo, "clv_upper": hi}
        cac = self.settings.get("acquisition_cost")
        if cac is not None:
            lo2, hi2 = self._interval(v - cac, prob)
            out |= {"clv_minus_cac_mean": (v - cac).mean(), "clv_minus_cac_lower": lo2}
            out |= {"clv_minus_cac_upper": hi2, "clv_to_cac_mean": (v / cac).mean()}
            out |= {"clv_to_cac_lower": lo / cac, "clv_to_cac_upper": hi / cac}
            out["prob_clv_above_cac"] = float(np.mean(v > cac))
        return pd.Series(out, name="new_customer")

    def report(self, prob: float = 0.9) -> str:
        """A short plain-text report.

        Examples
        --------
        >>> import clvkit
        >>> rfm = clvkit.datasets.cdnow_calibration_summary()
        >>> bg = clvkit.BetaGeo().fit(rfm, method="mle")
        >>> gg = clvkit.GammaGamma().fit(rfm, method="mle")
        >>> res = clvkit.customer_value(bg, gg, rfm, horizon="52W", annual_discount_rate=0.1,
        ...                             method="expected")
        >>> print(res.report())  # doctest: +ELLIPSIS
        Customer value (expected, discrete discounting), 2,357 customers x 1 draws
        ...
        Customer equity: mean 72,224.31; 90% interval [72,224.31, 72,224.31]
        ...
        New customer: CLV 83.83 [83.83, 83.83]
        """
        s = self.settings
        e = self.equity_interval(prob)
        pct = f"{prob:.0%}"
        lines = [
            f"Customer value ({s['method']}, {s['discounting']} discounting), "
            f"{s['n_customers']:,} customers x {s['n_draws']:,} draws",
            f"Horizon {s['horizon']:g} x {s['time_unit']} in periods of {s['period']:g} "
            f"(rate {s['rate_per_period']:.4%} per period), margin {s['margin']:g}, "
            f"cost per period {s['cost_per_period']:g}",
            f"Customer equity: mean {e['mean']:,.2f}; {pct} interval "
            f"[{e['lower']:,.2f}, {e['upper']:,.2f}]",
        ]
        tiers = self.tier_table(prob)
        for name, row in tiers.iterrows():
            share = (
                f"{row['equity_share']:.1%} of equity [{row['share_lower']:.1%}, "
                f"{row['share_upper']:.1%}]"
                if np.isfinite(row["equity_share"])
                else "share of equity n/a"
            )
            lines.append(
                f"  {name:<9} top {row['top_share']:>6.1%}: {row['count']:>10,.0f} customers, "
                + share
            )
        n_zero = tiers.attrs["zero_equity_draws"]
        if n_zero:
            lines.append(
                f"  (equity is 0 in {n_zero:,} of {s['n_draws']:,} draws: those draws have no "
                "tier shares and are left out of them)"
            )
        nc = self.new_customer_value(prob)
        line = (
            f"New customer: CLV {nc['clv_mean']:,.2f} [{nc['clv_lower']:,.2f}, "
            f"{nc['clv_upper']:,.2f}]"
        )
        if "clv_to_cac_mean" in nc:
            line += f"; CLV:CAC {nc['clv_to_cac_mean']:.2f}, P(CLV > CAC) {nc['prob_clv_above_cac']:.0%}"
        lines.append(line)
        return "\n".join(lines)
