"""The result of a customer-value computation: :class:`CustomerValue`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from clvkit.errors import ClvkitError
from clvkit.utils.checks import check_prob

__all__ = ["STORED_PROBS", "CustomerValue", "check_probs", "prob_label"]

#: Default central interval probabilities whose per-customer bounds are kept without the draws.
STORED_PROBS = (0.5, 0.8, 0.9, 0.95)


def prob_label(prob: float) -> str:
    """A probability as a percent label for column names: 0.9 -> ``"90"``, 0.975 -> ``"97.5"``."""
    return f"{prob * 100:.10g}"


def check_probs(probs: Any, argument: str = "probs") -> tuple[float, ...]:
    """``probs`` as a sorted tuple of distinct floats in (0, 1) (a ClvkitError otherwise)."""
    try:
        values = [float(p) for p in np.atleast_1d(np.asarray(probs, dtype=object))]
    except (TypeError, ValueError):
        values = []
    if not values or any(not (0 < p < 1) or isinstance(p, bool) for p in values):
        raise ClvkitError(
            f"argument {argument!r} must be one or more interval probabilities in (0, 1), got "
            f"{probs!r}. Suggestion: {argument}=(0.5, 0.8, 0.9, 0.95)."
        )
    return tuple(sorted(set(values)))


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
        CLV of a newly acquired customer per draw, dims ``(chain, draw)``: the margin on its
        acquisition purchase (time 0, undiscounted) plus its discounted repeat purchases over
        the horizon, minus costs. Expected per draw with ``method="expected"`` (prior mean
        spend); one simulated future per draw with ``method="simulate"`` (predictive).
    settings : dict
        The resolved settings (units, rates, method, ``n_draws`` used, ``probs``, ...).
    expected_equity : xarray.DataArray
        Expected customer equity per draw (the sum of the customers' expected CLV), dims
        ``(chain, draw)``: its spread is parameter (credible) uncertainty. With
        ``method="expected"`` it is ``equity``; with ``"simulate"``, ``equity`` is predictive
        (one simulated future per draw).
    group_equity, group_expected_equity : xarray.DataArray or None
        With ``customer_value(..., by=...)``: each group's equity per draw (of the method) and
        expected equity per draw, dims ``(chain, draw, group)``; summed over groups they are
        ``equity`` and ``expected_equity`` (exact per-draw sums). See :meth:`group_table`.

    Tiers are fixed: customers are ranked by their posterior-mean expected CLV (column
    ``expected_clv`` of :meth:`summary`) and tier k holds the top share ``tiers[k]`` of them
    (ties in the canonical customer order, which for identical customers is the id order).
    ``tier_equity`` is each tier's equity per draw by that membership (credible with
    ``"expected"``, predictive with ``"simulate"``) and ``tier_count`` its (constant) count.

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
    expected_equity: xr.DataArray | None = None
    _tier_cuts: np.ndarray | None = None
    group_equity: xr.DataArray | None = None
    group_expected_equity: xr.DataArray | None = None
    _group_counts: pd.DataFrame | None = None

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
        """Per-customer table: CLV mean, median and central ``prob`` interval of the method,
        ``expected_clv`` (the posterior-mean expected CLV, which ranks the tiers), P(alive),
        expected purchases and spend over the horizon, the tier and each tier's membership
        probability ``p_<tier>``.

        ``prob`` must be one of ``settings["probs"]`` (``customer_value(..., probs=...)``,
        default 0.5, 0.8, 0.9, 0.95) unless the draws were kept. With ``method="simulate"`` the
        expected purchases are the mean of the simulated counts. ``p_<tier>`` is the share of
        draws whose CLV (of the method) falls in the tier's range of expected CLV (between the
        tier's cut and the cut of the tier above, :meth:`tier_table`), so a customer near a cut
        has probability in both tiers.

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
            stored = tuple(sorted(self._quantiles))
            raise ClvkitError(
                f"argument 'prob' is {prob}, but per-customer intervals were stored for "
                f"{stored} only. Suggestion: pass it to customer_value(..., probs=(..., {prob})) "
                "(or keep_draws=True)."
            )
        out.insert(2, "lower", lo)
        out.insert(3, "upper", hi)
        return out

    def equity_interval(self, prob: float = 0.9, kind: str | None = None) -> pd.Series:
        """Mean, median and central ``prob`` interval of total customer equity over draws.

        ``kind="credible"``: of the expected equity (parameter uncertainty);
        ``"predictive"``: of the simulated equity (also the randomness of the customers'
        futures; ``method="simulate"`` only). Default: the method's own (credible for
        ``"expected"``, predictive for ``"simulate"``).

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
        kind = self._kind(kind)
        arr = self.equity if kind == "predictive" or self.expected_equity is None else (
            self.expected_equity
        )  # fmt: skip
        e = arr.values.ravel()
        lo, hi = self._interval(e, prob)
        return pd.Series(
            {"mean": e.mean(), "median": float(np.median(e)), "lower": lo, "upper": hi},
            name="equity",
        )

    def tier_table(self, prob: float = 0.9) -> pd.DataFrame:
        """Each tier's top share, cut, customer count and share of equity (mean and interval
        over draws).

        Tiers are fixed by expected CLV (see :class:`CustomerValue`): ``count`` is the number
        of members (an integer, the counts of ``summary()["tier"]``), ``cut`` the lowest
        expected CLV among them. A tier's share in a draw is its members' equity over the
        draw's total equity (credible with ``method="expected"``, predictive with
        ``"simulate"``). A draw whose total
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
        platinum       0.01     24         0.179
        gold           0.05     94         0.242
        iron           0.20    354         0.292
        lead           1.00   1885         0.287
        """
        prob = check_prob(prob)
        eq = self.equity.values.ravel()
        has = np.isfinite(eq) & (eq != 0)  # draws with a defined share
        rows = []
        names = self.tier_equity.coords["tier"].values
        cuts = self._tier_cuts if self._tier_cuts is not None else [np.nan] * len(names)
        for j, name in enumerate(names):
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
                    "cut": float(cuts[j]),
                    "count": int(self.tier_count.values[..., j].ravel()[0]),
                    "equity": float(te.mean()),
                    "equity_share": mean,
                    "share_lower": lo,
                    "share_upper": hi,
                }
            )
        table = pd.DataFrame(rows).set_index("tier")
        table.attrs["zero_equity_draws"] = int(eq.size - has.sum())
        return table

    def _kind(self, kind: str | None) -> str:
        """``kind`` checked against the method (default: the method's own)."""
        method = self.settings.get("method", "expected")
        if kind is None:
            kind = "predictive" if method == "simulate" else "credible"
        if kind not in ("credible", "predictive"):
            raise ClvkitError(
                f"argument 'kind' must be 'credible' or 'predictive', got {kind!r}. "
                "Suggestion: kind='credible' for parameter uncertainty."
            )
        if kind == "predictive" and method != "simulate":
            raise ClvkitError(
                "argument 'kind' is 'predictive', but the value was computed with method="
                f"{method!r} (expected values only). Suggestion: customer_value(..., "
                "method='simulate') for predictive intervals, or kind='credible'."
            )
        return kind

    def group_table(self, prob: float = 0.9, kind: str | None = None) -> pd.DataFrame:
        """Value by group (``customer_value(..., by=...)``): one row per group.

        Columns: ``customers``; ``clv_mean``, ``clv_lower``, ``clv_upper`` (the group's equity
        per customer: mean and central ``prob`` interval over draws); ``equity``,
        ``equity_lower``, ``equity_upper``; ``equity_share``, ``share_lower``, ``share_upper``
        (the group's share of the total equity per draw; draws with zero total equity are left
        out, as in :meth:`tier_table`); ``share_<tier>``: the share of the group's customers
        in each value tier (tiers fixed by expected CLV, so exact counts).

        ``kind``: ``"credible"`` uses the expected equity (parameter uncertainty),
        ``"predictive"`` the simulated equity (``method="simulate"`` only); default the
        method's own, as in :meth:`equity_interval`. The draws are ``group_equity`` (or
        ``group_expected_equity``), dims ``(chain, draw, group)``.

        Examples
        --------
        >>> import clvkit
        >>> rfm = clvkit.datasets.cdnow_calibration_summary()
        >>> bg = clvkit.BetaGeo().fit(rfm, method="mle")
        >>> gg = clvkit.GammaGamma().fit(rfm, method="mle")
        >>> buyer = (rfm["frequency"] > 0).rename("repeat_buyer")
        >>> res = clvkit.customer_value(bg, gg, rfm, horizon="52W", annual_discount_rate=0.1,
        ...                             by=buyer)
        >>> res.group_table()[["customers", "clv_mean", "equity_share"]].round(2)
        ... # doctest: +NORMALIZE_WHITESPACE
                      customers  clv_mean  equity_share
        repeat_buyer
        False              1411      9.71          0.19
        True                946     61.87          0.81
        """
        if self.group_equity is None or self._group_counts is None:
            raise ClvkitError(
                "no groups: the value was computed without 'by'. Suggestion: "
                "customer_value(..., by='segment') (a column of rfm or a Series by customer id)."
            )
        prob = check_prob(prob)
        kind = self._kind(kind)
        groups = self.group_equity if kind == "predictive" else self.group_expected_equity
        total = self.equity if kind == "predictive" else self.expected_equity
        ge = groups.values.reshape(-1, groups.sizes["group"])  # (draws, groups)
        eq = total.values.ravel()
        has = np.isfinite(eq) & (eq != 0)
        counts = self._group_counts
        n = counts["customers"].to_numpy()
        q = [(1 - prob) / 2, (1 + prob) / 2]
        per = ge / np.maximum(n, 1)[None, :]
        out = pd.DataFrame(index=counts.index.copy())
        out["customers"] = n
        out["clv_mean"] = per.mean(axis=0)
        out["clv_lower"], out["clv_upper"] = np.quantile(per, q, axis=0)
        out["equity"] = ge.mean(axis=0)
        out["equity_lower"], out["equity_upper"] = np.quantile(ge, q, axis=0)
        if has.any():
            share = ge[has] / eq[has, None]
            out["equity_share"] = share.mean(axis=0)
            out["share_lower"], out["share_upper"] = np.quantile(share, q, axis=0)
        else:
            out["equity_share"] = out["share_lower"] = out["share_upper"] = np.nan
        for t in counts.columns[1:]:
            out[f"share_{t}"] = counts[t].to_numpy() / np.maximum(n, 1)
        out.attrs["kind"] = kind
        out.attrs["zero_equity_draws"] = int(eq.size - has.sum())
        return out

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
            f"Horizon {s['horizon']:.4g} x {s['time_unit']} in periods of {s['period']:.4g} "
            f"(rate {s['rate_per_period']:.4%} per period), margin {s['margin']:g}"
            + (" (margin 1 = revenue, not profit)" if s["margin"] == 1 else "")
            + f", cost per period {s['cost_per_period']:g}",
            f"Customer equity: mean {e['mean']:,.2f}; {pct} interval "
            f"[{e['lower']:,.2f}, {e['upper']:,.2f}]"
            + (" (predictive)" if s["method"] == "simulate" else ""),
        ]
        if s["method"] == "simulate" and self.expected_equity is not None:
            c = self.equity_interval(prob, kind="credible")
            lines.append(
                f"Expected equity: mean {c['mean']:,.2f}; {pct} credible interval "
                f"[{c['lower']:,.2f}, {c['upper']:,.2f}]"
            )
        lines.append("Tiers by expected CLV (fixed members; share of equity per draw):")
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
