"""The value of a subscriber base: equity of the active subscribers, by tenure, and the
retention elasticity, through the Monte Carlo layer (:func:`clvkit.customer_value`).

A contractual purchase model (a "purchase" is a renewal payment, e.g. the sBG) and a fee per
renewal (:class:`clvkit.SubscriptionFee`) value each active subscriber of a contract summary
(:func:`clvkit.contract_summary` with ``fee_col=``). The cash-flow period is the billing period
and the horizon a whole number of periods, so a subscriber's renewal ``k`` (due within its
``k``-th period after the valuation date) is discounted ``(1 + d)^-k``: its value is ``margin x
fee x`` a per-draw factor ``V_n`` of its renewals ``n`` alone, ``margin x fee x DERL(d | n) /
(1 + d)`` for the sBG over an unlimited horizon (Fader and Hardie 2010). So per draw

- equity = ``sum_n (fees of the subscribers with n renewals) x V_n`` (credible: expected per
  draw), equal draw by draw to :func:`clvkit.customer_value`'s equity of the whole table;
- its predictive interval: one simulated future of every subscriber per draw
  (``customer_value(..., method="simulate")``);
- the retention elasticity: the same sums with the model whose retention is one point higher
  (``model.improved_retention(points)``), on the same draws, so the interval of the change is
  the posterior's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from clvkit.errors import ClvkitError
from clvkit.models.registry import spec_of
from clvkit.units import duration_in_units
from clvkit.utils.checks import check_prob
from clvkit.value.engine import customer_value

__all__ = ["SubscriberValue", "horizon_periods", "subscriber_value"]

_CONTRACT_COLS = ("renewals", "churned", "age", "fee")


@dataclass
class SubscriberValue:
    """The value of a subscriber base; see :func:`subscriber_value`.

    Attributes
    ----------
    equity : xarray.DataArray
        Expected equity of the active subscribers per draw, dims ``(chain, draw)``: its spread
        is parameter (credible) uncertainty.
    predictive_equity : xarray.DataArray or None
        Realized discounted revenue (times the margin) of the base under one simulated future
        per draw: its spread adds the subscribers' own randomness (predictive). ``None`` with
        ``predictive=False``.
    improved_equity : xarray.DataArray or None
        Expected equity per draw with ``points`` more retention (same draws); ``None`` for a
        model without ``improved_retention``.
    customers : pandas.DataFrame
        Per active subscriber (index as the summary's): ``cohort`` (if given), ``renewals``,
        ``fee``, ``value`` (posterior mean), ``lower`` / ``upper`` (credible interval at
        ``prob``).
    by_tenure : pandas.DataFrame
        Indexed by ``renewals`` ``n`` (the active subscribers' tenures): ``n_active``, ``fees``
        (their total fee per period), ``derl`` / ``derl_lower`` / ``derl_upper`` (the model's
        DERL at the per-period rate, if it has ``derl``), ``value_per_subscriber`` (mean),
        ``value`` / ``value_lower`` / ``value_upper`` (the group's value) and ``share`` (of
        the mean equity).
    settings : dict
        The :func:`clvkit.customer_value` settings (``rate_per_period``, ``horizon``, ...),
        ``prob`` and ``points``.
    model : object
        The purchase model valued.
    """

    equity: xr.DataArray
    predictive_equity: xr.DataArray | None
    improved_equity: xr.DataArray | None
    customers: pd.DataFrame
    by_tenure: pd.DataFrame
    settings: dict[str, Any] = field(default_factory=dict)
    model: Any = None

    @property
    def elasticity(self) -> xr.DataArray | None:
        """Relative equity change per draw for ``points`` more retention
        (``improved_equity / equity - 1``); ``None`` without an improved model."""
        if self.improved_equity is None:
            return None
        return self.improved_equity / self.equity - 1.0

    def summary(self, prob: float | None = None) -> pd.DataFrame:
        """Headline figures with ``mean``, ``lower``, ``upper`` (central ``prob`` interval,
        default the one of the run): ``equity`` (credible), ``equity_predictive``,
        ``equity_gain`` (absolute change for ``points`` more retention) and ``elasticity``
        (relative change); rows that were not computed are left out."""
        prob = check_prob(self.settings["prob"] if prob is None else prob)
        q = [(1 - prob) / 2, (1 + prob) / 2]
        rows = {"equity": self.equity, "equity_predictive": self.predictive_equity}
        if self.improved_equity is not None:
            rows["equity_gain"] = self.improved_equity - self.equity
            rows["elasticity"] = self.elasticity
        out = {}
        for name, arr in rows.items():
            if arr is not None:
                v = np.asarray(arr, dtype=np.float64).ravel()
                out[name] = (v.mean(), *np.quantile(v, q))
        frame = pd.DataFrame.from_dict(out, orient="index", columns=["mean", "lower", "upper"])
        frame.attrs["prob"] = prob
        return frame


def horizon_periods(horizon: Any, unit: str, argument: str = "horizon") -> int:
    """``horizon`` (billing periods, or a duration such as ``"10Y"``) as a whole number of
    periods of ``unit``, rounded up; at least 1, else a ClvkitError naming ``argument``.

    Examples
    --------
    >>> horizon_periods("10Y", "M"), horizon_periods(2.5, "M"), horizon_periods("26W", "4W")
    (120, 3, 7)
    """
    h = duration_in_units(horizon, unit, argument)
    n = math.ceil(h - 1e-9)
    if n < 1:
        raise ClvkitError(
            f"argument {argument!r} is {horizon!r}, less than one billing period ({unit}). "
            "Suggestion: a longer horizon, e.g. '10Y'."
        )
    return n


def _active_table(summary: Any) -> tuple[pd.DataFrame, str]:
    if not isinstance(summary, pd.DataFrame):
        raise ClvkitError(
            f"argument 'summary' must be a pandas DataFrame, got {type(summary).__name__}. "
            "Suggestion: clvkit.contract_summary(contracts, period, fee_col='fee')."
        )
    missing = [c for c in _CONTRACT_COLS if c not in summary.columns]
    if missing:
        hint = "pass fee_col= (the fee column of the contracts)" if missing == ["fee"] else ""
        raise ClvkitError(
            f"argument 'summary' lacks columns {missing}. Suggestion: build it with "
            f"clvkit.contract_summary(contracts, period, ...){'; ' + hint if hint else ''}."
        )
    unit = summary.attrs.get("time_unit")
    if not unit:
        raise ClvkitError(
            "argument 'summary' has no attrs['time_unit'] (the billing period). Suggestion: "
            "build it with clvkit.contract_summary."
        )
    churned = summary["churned"].to_numpy(dtype=bool, na_value=True)
    active = summary.loc[~churned]
    if active.empty:
        raise ClvkitError(
            f"argument 'summary' has no active subscriber (all {len(summary)} churned), so the "
            "base is worth nothing. Suggestion: check observation_end."
        )
    return active, str(unit)


def subscriber_value(
    model: Any,
    summary: pd.DataFrame,
    *,
    fee: Any = None,
    horizon: Any = "10Y",
    annual_discount_rate: float | None = None,
    discount_rate_per_period: float | None = None,
    margin: float = 1.0,
    points: float = 0.01,
    prob: float = 0.9,
    draws: int | None = None,
    predictive: bool = True,
    predictive_draws: int | None = None,
    random_seed: int | np.random.Generator | None = None,
    progressbar: bool = False,
) -> SubscriberValue:
    """The value of the active subscribers of a contract summary, with intervals.

    Parameters
    ----------
    model : fitted contractual purchase model
        E.g. a :class:`clvkit.ShiftedBetaGeo` fitted to ``summary`` (or its posterior), in the
        summary's billing period.
    summary : pandas.DataFrame
        :func:`clvkit.contract_summary` with a ``fee`` column (``fee_col=``); churned
        subscribers are worth nothing and left out.
    fee : spend model, optional
        The fee side; default :class:`clvkit.SubscriptionFee` (each subscriber pays its own
        ``fee``; the list fee of a new subscriber plays no part here).
    horizon : float or str
        Billing periods, or a duration (``"10Y"``), rounded up to whole periods; default
        ``"10Y"``. A long horizon approaches the unlimited one of DERL.
    annual_discount_rate, discount_rate_per_period : float
        Exactly one: the discount rate a year or per billing period.
    margin : float
        Share of the fee kept, in (0, 1].
    points : float
        Retention improvement of the elasticity (0.01: one point); models without
        ``improved_retention`` get none.
    prob : float
        Interval probability.
    draws : int, optional
        Posterior draws used (evenly spaced), as :func:`clvkit.customer_value`; default all.
    predictive : bool
        Also simulate one future of the base per draw (the predictive interval of equity).
    predictive_draws : int, optional
        Posterior draws (evenly spaced) of the simulation, one future each; default ``draws``.
        Its cost grows with draws x active subscribers x renewals in the horizon (about 9 s
        for 200 draws of 35,000 subscribers over 120 months), unlike the expected values.
    random_seed : int or numpy.random.Generator, optional
        Seed of the simulated futures.
    progressbar : bool
        Progress of the simulation on stderr.

    Returns
    -------
    SubscriberValue

    Examples
    --------
    >>> import pandas as pd, clvkit
    >>> t = pd.DataFrame({"renewals": [0, 4, 2], "churned": [False, False, True],
    ...                   "age": [0.5, 4.0, 3.0], "fee": [10.0, 20.0, 10.0]})
    >>> t.attrs["time_unit"] = "M"
    >>> m = clvkit.ShiftedBetaGeo.from_params(alpha=1.0, beta=3.0, time_unit="M")
    >>> v = subscriber_value(m, t, annual_discount_rate=0.1, predictive=False)
    >>> v.by_tenure[["n_active", "fees"]].to_dict("index")
    {0: {'n_active': 1, 'fees': 10.0}, 4: {'n_active': 1, 'fees': 20.0}}
    >>> bool(v.elasticity.min() > 0)
    True
    """
    prob = check_prob(prob)
    active, unit = _active_table(summary)
    n_periods = horizon_periods(horizon, unit)
    spec_of(model, "purchase", "model").customer_columns(summary, "summary")  # every row valid
    if fee is None:
        from clvkit.models import SubscriptionFee

        fee = SubscriptionFee.from_params(list_fee=1.0, time_unit=unit)
    spec_of(fee, "spend", "fee").customer_columns(active, "summary")  # fees >= 0, none missing
    kw: dict[str, Any] = {"horizon": float(n_periods), "period": 1.0, "margin": margin}
    if annual_discount_rate is not None:
        kw["annual_discount_rate"] = annual_discount_rate
    if discount_rate_per_period is not None:
        kw["discount_rate_per_period"] = discount_rate_per_period
    # one subscriber per tenure at unit fee: V_n per draw (value per unit of fee)
    renewals = active["renewals"].to_numpy(dtype=np.float64)
    tenures, first, inverse = np.unique(renewals, return_index=True, return_inverse=True)
    unit_rows = active.iloc[first].copy()
    unit_rows["fee"] = 1.0
    unit_rows.index = pd.Index(tenures.astype(np.int64), name="renewals")
    unit_rows.attrs = dict(summary.attrs)

    def per_unit(m: Any) -> tuple[np.ndarray, Any]:
        res = customer_value(m, fee, unit_rows, draws=draws, keep_draws=True, **kw)
        clv = res.clv.transpose("chain", "draw", "customer_id")
        return clv.to_numpy(), res

    V, base = per_unit(model)  # (chains, draws, tenures)
    fees = active["fee"].to_numpy(dtype=np.float64)
    fee_by_n = np.bincount(inverse, weights=fees, minlength=tenures.size)
    coords = {"chain": base.equity["chain"].to_numpy(), "draw": base.equity["draw"].to_numpy()}

    def equity_of(values: np.ndarray) -> xr.DataArray:
        return xr.DataArray(values @ fee_by_n, dims=("chain", "draw"), coords=coords)

    equity = equity_of(V)
    improved = None
    if hasattr(model, "improved_retention"):
        improved = equity_of(per_unit(model.improved_retention(points))[0])
    pred = None
    if predictive:
        sim = customer_value(
            model, fee, active, method="simulate", draws=predictive_draws or draws,
            random_seed=random_seed,
            progressbar=progressbar, **kw,
        )  # fmt: skip
        pred = sim.equity
    lo, hi = (1 - prob) / 2, (1 + prob) / 2
    flat = V.reshape(-1, tenures.size)
    v_mean, v_lo, v_hi = flat.mean(axis=0), *np.quantile(flat, [lo, hi], axis=0)
    customers = pd.DataFrame(index=active.index.copy())
    if "cohort" in active.columns:
        customers["cohort"] = active["cohort"].to_numpy()
    customers["renewals"] = renewals.astype(np.int64)
    customers["fee"] = fees
    customers["value"] = fees * v_mean[inverse]
    customers["lower"] = fees * v_lo[inverse]
    customers["upper"] = fees * v_hi[inverse]
    group = flat * fee_by_n
    tenure = pd.DataFrame(
        {
            "n_active": np.bincount(inverse, minlength=tenures.size),
            "fees": fee_by_n,
            "value_per_subscriber": group.mean(axis=0) / np.bincount(inverse),
            "value": group.mean(axis=0),
            "value_lower": np.quantile(group, lo, axis=0),
            "value_upper": np.quantile(group, hi, axis=0),
        },
        index=pd.Index(tenures.astype(np.int64), name="renewals"),
    )
    tenure["share"] = tenure["value"] / float(equity.mean())
    rate = float(base.settings["rate_per_period"])
    if hasattr(model, "derl") and rate > 0:
        d = model.derl(rate, tenures.astype(np.int64), prob=prob)
        tenure.insert(2, "derl", d["mean"].to_numpy())
        tenure.insert(3, "derl_lower", d["lower"].to_numpy())
        tenure.insert(4, "derl_upper", d["upper"].to_numpy())
    settings = dict(base.settings) | {
        "prob": prob,
        "points": float(points),
        "n_customers": len(active),
        "n_churned": int(len(summary) - len(active)),
        "predictive": bool(predictive),
        "n_predictive_draws": int(pred.size) if pred is not None else 0,
    }
    return SubscriberValue(equity, pred, improved, customers, tenure, settings, model)
