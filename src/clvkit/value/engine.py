"""Monte Carlo customer value: discounted CLV per customer and total customer equity.

Every CLV draw combines one draw of the purchase model (BG/NBD) with one draw of the spend model
(Gamma-Gamma). The two posteriors are independent, so draws are paired by a random permutation
made from ``random_seed`` (the smaller posterior is recycled in shuffled blocks; a point fit pairs
with everything). Spend is never averaged over draws before it is combined.

Customers are processed in chunks: for a chunk we hold ``(draws x chunk)`` values and accumulate
per-draw equity (the sum over customers *within* a draw) and per-customer statistics, so memory
stays bounded unless ``keep_draws=True``.

Time: ``horizon`` is a number in the RFM table's time unit or a duration string (``"52W"``,
``"365D"``); ``period`` is a duration. An annual rate ``R`` becomes ``(1 + R) ** (period_days /
365.25) - 1`` per period (a year is 365.25 days).
"""

from __future__ import annotations

import itertools
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from clvkit.errors import ClvkitError, bad_rows_error
from clvkit.models.draws import BG_VARS, GG_VARS, flat_draws, posterior_dataset
from clvkit.models.gamma_gamma import predictions as gg_predict
from clvkit.rng import check_random_seed
from clvkit.units import TIME_UNIT_ATTR, format_time_unit, parse_time_unit
from clvkit.utils.exactsum import ExactSum
from clvkit.utils.system import usable_cores
from clvkit.value import kernels as vm

__all__ = ["DEFAULT_TIERS", "CustomerValue", "customer_value"]

#: Value tiers by rank within each draw: name -> cumulative top share (the last must be 1).
DEFAULT_TIERS: dict[str, float] = {"platinum": 0.01, "gold": 0.05, "iron": 0.20, "lead": 1.0}

_BG_VARS, _GG_VARS = BG_VARS, GG_VARS
_STORED_PROBS = (0.5, 0.8, 0.9, 0.95)
_QUANTILE_BLOCK = 128  # customers per quantile task (their draws sorted on one thread)
_DAYS_PER_YEAR = 365.25


# ----------------------------------------------------------------------------------------------
# result
# ----------------------------------------------------------------------------------------------
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
        prob = _check_prob(prob)
        out = self._customers.copy()
        if prob in self._quantiles:
            lo, hi = self._quantiles[prob]
        elif self._clv is not None:
            q = self._clv.quantile([(1 - prob) / 2, (1 + prob) / 2], dim=("chain", "draw"))
            lo, hi = q.values
        else:
            raise ClvkitError(
                f"argument 'prob' is {prob}; without kept draws only {_STORED_PROBS} are "
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
        prob = _check_prob(prob)
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
        prob = _check_prob(prob)
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
        prob = _check_prob(prob)
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


# ----------------------------------------------------------------------------------------------
# input checks
# ----------------------------------------------------------------------------------------------
def _check_prob(prob: float) -> float:
    if not (isinstance(prob, int | float) and 0 < prob < 1):
        raise ClvkitError(f"argument 'prob' must be in (0, 1), got {prob!r}.")
    return float(prob)


def _flat(post: xr.Dataset, names: Sequence[str]) -> list[np.ndarray]:
    return list(flat_draws(post, names).values())


def _repeat_histogram(obj: Any) -> pd.Series | None:
    """Customers per frequency > 0 in the data a model was fitted on (its ``observed_data``
    holds compressed rows with a ``weight``), or None when the model does not record it."""
    stats = getattr(obj, "stats_", None)  # a fitted clvkit model: no need to build its idata_
    if stats is not None:
        x, w = np.asarray(stats.frequency), np.asarray(stats.weight)
    else:
        obs = getattr(obj, "observed_data", None) if hasattr(obj, "groups") else None
        if obs is None or not {"frequency", "weight"} <= set(obs.data_vars):
            return None
        x = obs["frequency"].to_numpy()
        w = obs["weight"].to_numpy()
    keep = x > 0
    return pd.Series(w[keep]).groupby(x[keep]).sum()


def _check_rfm(rfm: Any) -> pd.DataFrame:
    if not isinstance(rfm, pd.DataFrame):
        raise ClvkitError(
            f"argument 'rfm' must be a pandas DataFrame, got {type(rfm).__name__}. "
            "Suggestion: build it with clvkit.rfm_summary."
        )
    cols = ["frequency", "recency", "T", "monetary_value"]
    missing = [c for c in cols if c not in rfm.columns]
    if missing:
        hint = (
            "pass the amount column to rfm_summary so it has 'monetary_value'"
            if missing == ["monetary_value"]
            else "build it with clvkit.rfm_summary"
        )
        raise ClvkitError(
            f"argument 'rfm' lacks column(s) {missing}; it has {list(rfm.columns)}. "
            f"Suggestion: {hint}."
        )
    if rfm.index.has_duplicates:
        dup = rfm.index[rfm.index.duplicated()]
        raise bad_rows_error(
            "index 'customer_id' of 'rfm'",
            "is duplicated",
            len(dup),
            dup[0],
            "one row per customer",
        )
    n = len(rfm)
    if n == 0:
        raise ClvkitError("argument 'rfm' has no rows. Suggestion: pass at least one customer.")
    arr = {}
    for c in cols:
        try:
            arr[c] = rfm[c].to_numpy(dtype=float)
        except (TypeError, ValueError) as exc:
            raise ClvkitError(
                f"column {c!r} of 'rfm' is not numeric. Suggestion: convert it to numbers."
            ) from exc
    checks = [
        ("frequency", ~np.isfinite(arr["frequency"]) | (arr["frequency"] < 0)
         | (arr["frequency"] != np.round(arr["frequency"])), "is not a whole number >= 0"),
        ("T", ~np.isfinite(arr["T"]) | (arr["T"] < 0), "is not a finite number >= 0"),
        ("recency", ~np.isfinite(arr["recency"]) | (arr["recency"] < 0)
         | (arr["recency"] > arr["T"]), "is not within [0, T]"),
        ("monetary_value", ~np.isfinite(arr["monetary_value"]) | (arr["monetary_value"] < 0)
         | ((arr["frequency"] > 0) & (arr["monetary_value"] <= 0)),
         "is not positive for a repeat customer (or is negative or missing)"),
    ]  # fmt: skip
    for c, bad, problem in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            row = {"customer_id": rfm.index[i], **{k: float(arr[k][i]) for k in cols}}
            raise bad_rows_error(
                f"column {c!r} of 'rfm'", problem, int(bad.sum()), row,
                "drop or fix these rows (clvkit.rfm_summary builds a valid table)", n,
            )  # fmt: skip
    return pd.DataFrame(arr, index=rfm.index)  # a private copy; the caller's frame is untouched


def _nonneg(name: str, value: Any, positive: bool = False) -> float:
    try:
        f = float(value)
    except (TypeError, ValueError):
        raise ClvkitError(f"argument {name!r} must be a number, got {value!r}.") from None
    if not np.isfinite(f) or f < 0 or (positive and f == 0):
        kind = "positive" if positive else "non-negative"
        raise ClvkitError(
            f"argument {name!r} must be a finite {kind} number, got {value!r}. "
            f"Suggestion: pass a {kind} value."
        )
    return f


def _duration_in_units(value: Any, unit: pd.Timedelta, name: str) -> float:
    if isinstance(value, str | pd.Timedelta):
        return float(parse_time_unit(value, argument=name) / unit)
    return _nonneg(name, value, positive=True)


# ----------------------------------------------------------------------------------------------
# main entry
# ----------------------------------------------------------------------------------------------
def customer_value(
    transactions_model: Any,
    spend_model: Any,
    rfm: pd.DataFrame,
    *,
    horizon: float | str,
    period: str | pd.Timedelta = "30D",
    annual_discount_rate: float | None = None,
    discount_rate_per_period: float | None = None,
    margin: float = 1.0,
    method: Literal["expected", "simulate"] = "expected",
    discounting: Literal["discrete", "continuous"] = "discrete",
    cost_per_period: float = 0.0,
    acquisition_cost: float | None = None,
    tiers: Mapping[str, float] | None = None,
    tier_sample_size: int | None = None,
    chunk_size: int | None = None,
    n_jobs: int | None = None,
    random_seed: int | np.random.Generator | None = None,
    keep_draws: bool = False,
    progressbar: bool = False,
) -> CustomerValue:
    """Discounted CLV per customer and total customer equity, with intervals.

    Parameters
    ----------
    transactions_model, spend_model
        Fitted ``BetaGeo`` / ``GammaGamma`` models, their ``InferenceData``, or posterior
        ``xarray.Dataset`` s with variables ``r, alpha, a, b`` / ``p, q, v`` over ``(chain, draw)``.
    rfm : pandas.DataFrame
        Indexed by customer, with ``frequency``, ``recency``, ``T``, ``monetary_value``;
        ``rfm.attrs["time_unit"]`` must agree with the models' time unit.
    horizon : float or str
        Number of RFM time units, or a duration such as ``"52W"`` or ``"365D"``.
    period : str or pandas.Timedelta
        Cash-flow period (a fixed duration). The last period is cut at the horizon.
    annual_discount_rate, discount_rate_per_period : float
        Exactly one: an annual rate (year = 365.25 days) or a rate per ``period``.
    margin : float
        Share of revenue kept, in (0, 1].
    method : {"expected", "simulate"}
        ``"expected"``: per draw, the expected discounted CLV given the history (intervals
        show parameter uncertainty). ``"simulate"``: per draw, one simulated future of each
        customer (predictive intervals).
    discounting : {"discrete", "continuous"}
        End-of-period ``(1 + R) ** -(k Delta)`` (Delta in years), or ``exp(-ln(1 + R) s)``
        at each purchase time ``s`` (years).
    cost_per_period : float
        Cost per customer for each period that finds the customer alive at its start
        (continuous: a flow of ``cost_per_period`` per period while alive).
    acquisition_cost : float, optional
        Cost of acquiring a customer (CAC), compared with a new customer's CLV.
    tiers : mapping, optional
        Tier name -> cumulative top share by CLV rank within each draw, last share 1.
        Default :data:`DEFAULT_TIERS`. Ties at a cut go to the lower tier.
    tier_sample_size : int, optional
        Per-draw tier cuts are exact when there are at most this many customers; otherwise they
        are the empirical cuts of a random sample of this many customers (a first pass, so tier
        shares are then approximate). Default ``max(10_000, 5e7 // draws)``.
    chunk_size : int, optional
        Customers per chunk (default: about 8 million values per chunk for the expected
        method, whose chunks share Gauss rules and identical customers and split their work
        over ``n_jobs`` threads; 1.5 million for ``"simulate"``, whose chunks also hold up to
        2 million simulated purchases at a time).
    n_jobs : int, optional
        Number of threads processing chunks at once, and within a chunk of the expected
        method, blocks of 256 draws (the compiled kernels and numpy's heavy parts release the
        GIL). Default: the number of usable cores, ``len(os.sched_getaffinity(0))``. Results
        do not depend on it: each chunk draws from its own random stream, keyed by the chunk's
        position, the draw blocks are fixed, and per-draw sums are exact
        (:mod:`clvkit.utils.exactsum`), so the order chunks finish in does not matter. At most
        ``n_jobs + 1`` chunks are held at once.
    random_seed : int or numpy.random.Generator, optional
        Seeds the draw pairing and the simulation. With ``method="simulate"`` the simulated
        values depend on ``chunk_size`` (it decides which customers share a random stream), not
        on ``n_jobs`` nor on the row order of ``rfm``.
    keep_draws : bool
        Keep the full ``(chain, draw, customer_id)`` CLV array as ``result.clv``.
    progressbar : bool
        Show progress over chunks on stderr.

    Returns
    -------
    CustomerValue

    Notes
    -----
    - Pairing: CLV draw ``s`` uses purchase draw ``s`` and spend draw ``perm[s]`` (a random
      permutation from ``random_seed``; the smaller posterior is recycled in shuffled blocks).
    - Memory: a chunk holds ``draws x chunk_size`` values (``n_jobs + 1`` chunks at a time);
      the tier-cut pass holds ``draws x min(n, tier_sample_size)``; the full array only with
      ``keep_draws=True``.
    - ``method="expected"`` needs the expected purchases per distinct ``(frequency, T)`` pair
      and time point only; customers are visited sorted by that pair, then by customer id, and
      chunks are slices of that order (so results do not depend on the row order of ``rfm``,
      and :func:`clvkit.distributed.customer_value` rebuilds the same chunks on Dask).
    - Equity, tier equity and tier counts are exact per-draw sums, rounded once (to nearest):
      the same bits for any ``n_jobs`` or partitioning.
    - The new-customer value is the margin on the acquisition purchase (time 0, undiscounted)
      plus the discounted repeat purchases of a customer with ``x = 0, T = 0``, minus costs.

    Examples
    --------
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> bg = xr.Dataset({k: (("chain", "draw"), [[v]]) for k, v in
    ...     dict(r=0.2426, alpha=4.4137, a=0.793, b=2.4262).items()})
    >>> gg = xr.Dataset({k: (("chain", "draw"), [[v]]) for k, v in
    ...     dict(p=6.2488, q=3.7446, v=15.4477).items()})
    >>> rfm = pd.DataFrame({"frequency": [2, 0], "recency": [30.43, 0.0], "T": [38.86, 38.86],
    ...     "monetary_value": [22.35, 0.0]}, index=pd.Index([1, 2], name="customer_id"))
    >>> rfm.attrs["time_unit"] = "W"
    >>> res = customer_value(bg, gg, rfm, horizon="52W", period="4W",
    ...     annual_discount_rate=0.1)
    >>> res.summary()["mean"].round(2).tolist()
    [36.65, 8.43]
    >>> round(float(res.equity.mean()), 2)
    45.08
    """
    data = _check_rfm(rfm)
    if n_jobs is None:
        n_jobs = usable_cores()
    elif isinstance(n_jobs, bool) or not (isinstance(n_jobs, int | np.integer) and n_jobs >= 1):
        raise ClvkitError(
            f"argument 'n_jobs' must be a positive integer, got {n_jobs!r}. Suggestion: leave it "
            "None to use every usable core."
        )
    n_jobs = int(n_jobs)
    with _kernel_threads(n_jobs) as pmap:
        return _customer_value(
            data, transactions_model, spend_model, rfm, pmap, horizon=horizon, period=period,
            annual_discount_rate=annual_discount_rate,
            discount_rate_per_period=discount_rate_per_period, margin=margin, method=method,
            discounting=discounting, cost_per_period=cost_per_period,
            acquisition_cost=acquisition_cost, tiers=tiers, tier_sample_size=tier_sample_size,
            chunk_size=chunk_size, n_jobs=n_jobs, random_seed=random_seed,
            keep_draws=keep_draws, progressbar=progressbar,
        )  # fmt: skip


@contextmanager
def _kernel_threads(n_jobs: int) -> Iterator[vm.PMap]:
    """A ``map`` over ``n_jobs`` threads for the blocks of draws inside a chunk (kernels release
    the GIL). Chunks also run on ``n_jobs`` threads; the blocks keep both cores busy when one
    chunk holds most of the work (the expected method's high frequencies share the last one)."""
    if n_jobs == 1:
        yield vm.serial_map
        return
    pool = ThreadPoolExecutor(max_workers=n_jobs, thread_name_prefix="clvkit-draws")
    try:
        yield lambda fn, items: list(pool.map(fn, items))
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _customer_value(
    data: pd.DataFrame,
    transactions_model: Any,
    spend_model: Any,
    rfm: pd.DataFrame,
    pmap: vm.PMap,
    *,
    n_jobs: int,
    keep_draws: bool,
    progressbar: bool,
    **settings: Any,
) -> CustomerValue:
    method = settings["method"]
    job = _prepare(transactions_model, spend_model, rfm, pmap=pmap, **settings)
    n, S, chunk = len(data), job.S, job.chunk

    cols = {c: data[c].to_numpy() for c in data.columns}
    run = job.runner(cols, pmap)
    order = _canonical_order(data)
    acc = _Accumulator(n, S, job.tiers, keep_draws, method == "simulate", pmap)
    starts = range(0, n, chunk)
    sim_stream = _chunk_streams(job.sim_rng)

    exact = n <= job.sample_size
    first = np.empty((S, n)) if exact else None  # every value, for exact tier cuts

    def value_chunk(lo: int, cuts: np.ndarray | None = None):
        # runs in a worker thread: reads shared inputs, writes its own columns of `first`
        idx = order[lo : lo + chunk]
        clv, means, counts, inverse = run.distinct(idx, sim_stream(lo // chunk))
        stats = acc.chunk_stats(clv, means, inverse)
        if first is not None:
            out = first[:, lo : lo + idx.size]

            def fill(r: int) -> None:  # a block of draws of this chunk's columns
                rows = slice(r, r + vm.DRAW_BLOCK)
                if inverse is None:
                    out[rows] = clv[rows]
                else:
                    np.take(clv[rows], inverse, axis=1, out=out[rows])

            pmap(fill, range(0, S, vm.DRAW_BLOCK))
            clv = out
        elif inverse is not None:
            clv = clv[:, inverse]
        parts = None if cuts is None else acc.chunk_tiers(clv, cuts)
        return idx, clv, counts, stats, parts

    # pass 1: per-draw tier cuts, from all customers or from a random sample of them
    if exact:
        results = _ordered_map(value_chunk, starts, n_jobs)
        for idx, clv, counts, stats, _ in _progress(
            results, len(starts), progressbar, "customer value"
        ):
            acc.add_stats(idx, stats, clv, counts)
        cuts = _tier_cuts(first, list(job.tiers.values()), pmap)
    else:
        sample = order[job.sample_positions(n)]
        cuts = job.sample_cuts(run, sample, n_jobs, progressbar)

    # pass 2: accumulate equity, tier sums and per-customer statistics (exact sums: any order)
    if exact:

        def tier_chunk(lo: int):
            return acc.chunk_tiers(first[:, lo : lo + chunk], cuts)

        for lo, parts in zip(starts, _ordered_map(tier_chunk, starts, n_jobs), strict=True):
            acc.add_tiers(order[lo : lo + chunk], parts)
    else:

        def full_chunk(lo: int):
            return value_chunk(lo, cuts)

        results = _ordered_map(full_chunk, starts, n_jobs)
        for idx, clv, counts, stats, parts in _progress(
            results, len(starts), progressbar, "customer value"
        ):
            acc.add_stats(idx, stats, clv, counts)
            acc.add_tiers(idx, parts)
            del clv, counts, stats, parts  # hold at most n_jobs + 1 chunks

    settings = {**job.settings, "n_customers": n, "tier_cuts_exact": exact}
    return acc.result(data.index, job.coords, job.new, settings, job.tiers)


@dataclass
class _Job:
    """Resolved settings and paired draws of one value computation, shared by
    :func:`customer_value` and :mod:`clvkit.distributed` (so both compute the same chunks)."""

    method: str
    plan: vm.DiscountPlan
    margin: float
    bg: list[np.ndarray]
    gg: list[np.ndarray]
    coords: dict[str, np.ndarray]
    tiers: dict[str, float]
    chunk: int
    sample_size: int
    sample_rng: np.random.Generator
    sim_rng: np.random.Generator
    new: np.ndarray  # (S,) expected CLV of a new customer
    settings: dict[str, Any]

    @property
    def S(self) -> int:
        return self.bg[0].shape[0]

    def runner(self, cols: Mapping[str, np.ndarray], pmap: vm.PMap = vm.serial_map) -> _Runner:
        return _Runner(self.method, self.plan, self.margin, self.bg, self.gg, cols, pmap)

    def sample_positions(self, n: int) -> np.ndarray:
        """Sorted positions, in the canonical customer order, of the tier-cut sample."""
        return np.sort(self.sample_rng.choice(n, self.sample_size, replace=False))

    def sample_cuts(
        self, run: _Runner, sample: np.ndarray, n_jobs: int, progressbar: bool = False
    ) -> np.ndarray:
        """Tier cuts from the values of the sample customers ``sample`` (rows of ``run``'s
        columns, in canonical order), in chunks with their own streams."""
        stream = _chunk_streams(self.sample_rng)
        chunk, size = self.chunk, sample.size
        starts = range(0, size, chunk)

        def sample_chunk(lo: int) -> np.ndarray:
            return run.chunk(sample[lo : lo + chunk], stream(lo // chunk))[0]

        results = _ordered_map(sample_chunk, starts, n_jobs)
        first = np.empty((self.S, size))
        for lo, clv in zip(
            starts, _progress(results, len(starts), progressbar, "tier cuts"), strict=True
        ):
            first[:, lo : lo + clv.shape[1]] = clv
        return _tier_cuts(first, list(self.tiers.values()))


def _prepare(
    transactions_model: Any,
    spend_model: Any,
    rfm: pd.DataFrame,
    *,
    horizon: float | str,
    period: str | pd.Timedelta,
    annual_discount_rate: float | None,
    discount_rate_per_period: float | None,
    margin: float,
    method: str,
    discounting: str,
    cost_per_period: float,
    acquisition_cost: float | None,
    tiers: Mapping[str, float] | None,
    tier_sample_size: int | None,
    chunk_size: int | None,
    random_seed: int | np.random.Generator | None,
    pmap: vm.PMap = vm.serial_map,
) -> _Job:
    """Check the arguments (``rfm`` only for its ``attrs``), pair the draws, split the seed."""
    random_seed = check_random_seed(random_seed)
    t_post = posterior_dataset(transactions_model, _BG_VARS, "transactions_model")
    s_post = posterior_dataset(spend_model, _GG_VARS, "spend_model")
    unit = _resolve_unit(rfm, t_post, s_post)
    _check_fitted_customers(transactions_model, spend_model)

    H = _duration_in_units(horizon, unit, "horizon")
    delta = _duration_in_units(period, unit, "period")
    if (annual_discount_rate is None) == (discount_rate_per_period is None):
        raise ClvkitError(
            "give exactly one of 'annual_discount_rate' and 'discount_rate_per_period'. "
            "Suggestion: annual_discount_rate=0.1 for 10% a year."
        )
    if annual_discount_rate is not None:
        R = _nonneg("annual_discount_rate", annual_discount_rate)
        period_years = delta * (unit / pd.Timedelta(days=_DAYS_PER_YEAR))
        rate = float(np.expm1(period_years * np.log1p(R)))
    else:
        rate = _nonneg("discount_rate_per_period", discount_rate_per_period)
    margin = _nonneg("margin", margin)
    if not 0 < margin <= 1:
        raise ClvkitError(
            f"argument 'margin' must be in (0, 1], got {margin!r}. Suggestion: 0.3 keeps 30% "
            "of revenue."
        )
    cost = _nonneg("cost_per_period", cost_per_period)
    cac = None if acquisition_cost is None else _nonneg("acquisition_cost", acquisition_cost, True)
    if method not in ("expected", "simulate"):
        raise ClvkitError(f"argument 'method' must be 'expected' or 'simulate', got {method!r}.")
    if discounting not in ("discrete", "continuous"):
        raise ClvkitError(
            f"argument 'discounting' must be 'discrete' or 'continuous', got {discounting!r}."
        )
    tiers = _check_tiers(DEFAULT_TIERS if tiers is None else tiers)
    if tier_sample_size is not None and not (
        isinstance(tier_sample_size, int | np.integer) and tier_sample_size >= 100
    ):
        raise ClvkitError(
            f"argument 'tier_sample_size' must be an integer >= 100, got {tier_sample_size!r}."
        )

    plan = vm.DiscountPlan(H, delta, rate, discounting == "continuous", cost)
    rng = np.random.default_rng(random_seed)  # checked above
    pair_rng, sample_rng, sim_rng = rng.spawn(3)
    bg, gg, coords = _pair_draws(t_post, s_post, pair_rng)
    S = bg[0].shape[0]
    if method == "expected":
        spend0 = gg_predict.gg_expected_spend_new_customer(*gg)
        if not np.all(np.isfinite(spend0)):
            bad = ~np.isfinite(spend0).ravel()
            raise bad_rows_error(
                "argument 'spend_model' variable 'q'", "is <= 1 (the expected spend of a "
                "customer with no repeat purchases is infinite)", int(bad.sum()),
                float(gg[1].ravel()[bad][0]), "use method='simulate'", S,
            )  # fmt: skip
    # expected: chunks share Gauss rules and identical customers, and run blocks on threads
    per_chunk = 8_000_000 if method == "expected" else 1_500_000
    chunk = max(1, per_chunk // S) if chunk_size is None else chunk_size
    if isinstance(chunk, bool) or not (isinstance(chunk, int | np.integer) and chunk >= 1):
        raise ClvkitError(f"argument 'chunk_size' must be a positive integer, got {chunk_size!r}.")
    # memory of the first pass: 8 bytes x draws x sample size (400 MB by default)
    sample_size = tier_sample_size or max(10_000, 50_000_000 // S)

    # a new customer: the acquisition purchase (at time 0, undiscounted) plus its repeat purchases
    z1 = np.zeros(1)
    repeat = vm.expected_chunk(bg, gg, z1, z1, z1, z1, plan, margin, pmap)[0][:, 0]
    new = margin * gg_predict.gg_expected_spend_new_customer(*gg)[:, 0] + repeat
    settings = {
        "method": method, "discounting": discounting, "time_unit": format_time_unit(unit),
        "horizon": H, "period": delta, "n_periods": plan.n_periods, "rate_per_period": rate,
        "annual_discount_rate": annual_discount_rate, "margin": margin,
        "cost_per_period": cost, "acquisition_cost": cac, "n_draws": S,
        "pairing": "random permutation of spend draws",
    }  # fmt: skip
    return _Job(
        method, plan, margin, bg, gg, coords, tiers, int(chunk), int(sample_size), sample_rng,
        sim_rng, new, settings,
    )  # fmt: skip


def _canonical_order(data: pd.DataFrame) -> np.ndarray:
    """Row positions sorted by (frequency, T, customer id): the order customers are visited in
    (the expected method's costly part depends on (frequency, T) only and is computed once per
    distinct pair in a chunk). Chunks are slices of this order, so they do not depend on the
    table's row order, and :mod:`clvkit.distributed` can rebuild them from any partitioning.
    Unorderable ids (mixed types) tie-break by row position."""
    x, T = data["frequency"].to_numpy(), data["T"].to_numpy()
    index = data.index
    if index.is_monotonic_increasing:
        return np.lexsort((T, x))  # stable: ties keep the (sorted) row order
    try:
        by_id = index.argsort(kind="stable")
    except TypeError:
        return np.lexsort((T, x))
    rank = np.empty(len(index), dtype=np.int64)
    rank[by_id] = np.arange(len(index))
    return np.lexsort((rank, T, x))


def _resolve_unit(rfm: pd.DataFrame, *posts: xr.Dataset) -> pd.Timedelta:
    found = {}
    if rfm.attrs.get(TIME_UNIT_ATTR):
        found["rfm.attrs['time_unit']"] = rfm.attrs[TIME_UNIT_ATTR]
    for name, post in zip(("transactions_model", "spend_model"), posts, strict=True):
        if post.attrs.get(TIME_UNIT_ATTR):
            found[f"{name} time_unit"] = post.attrs[TIME_UNIT_ATTR]
    if not found:
        raise ClvkitError(
            "no time unit: neither rfm.attrs['time_unit'] nor the models' attrs carry one. "
            "Suggestion: set rfm.attrs['time_unit'] = 'W' (or the unit of recency and T)."
        )
    parsed = {k: parse_time_unit(v, argument=k) for k, v in found.items()}
    first = next(iter(parsed.values()))
    if any(v != first for v in parsed.values()):
        shown = {k: format_time_unit(v) for k, v in parsed.items()}
        raise ClvkitError(
            f"time units disagree: {shown}. Suggestion: rebuild the RFM table in the unit the "
            "models were fitted in."
        )
    return first


def _check_fitted_customers(t_model: Any, s_model: Any) -> None:
    """Both models must come from the same customers: the spend model (fitted on the repeat
    customers) must have as many customers at each frequency as the transactions model."""
    t_hist, s_hist = _repeat_histogram(t_model), _repeat_histogram(s_model)
    if t_hist is None or s_hist is None:
        return
    both = pd.concat([t_hist, s_hist], axis=1, keys=["transactions", "spend"]).fillna(0)
    bad = both[~np.isclose(both["transactions"], both["spend"])]
    if len(bad):
        f = bad.index[0]
        raise bad_rows_error(
            "argument 'spend_model'", "was fitted on other customers than 'transactions_model': "
            "their numbers of repeat customers differ", len(bad),
            f"frequency {f:g}: {bad.loc[f, 'transactions']:,.0f} customers in the transactions "
            f"model, {bad.loc[f, 'spend']:,.0f} in the spend model",
            "fit both models on the same RFM table", len(both),
        )  # fmt: skip


def _check_tiers(tiers: Mapping[str, float]) -> dict[str, float]:
    out = {str(k): float(v) for k, v in dict(tiers).items()}
    shares = list(out.values())
    if (
        not out
        or shares[-1] != 1.0
        or any(not 0 < s <= 1 for s in shares)
        or any(b <= a for a, b in itertools.pairwise(shares))
    ):
        raise ClvkitError(
            f"argument 'tiers' must map names to increasing cumulative top shares in (0, 1] "
            f"ending at 1, got {tiers!r}. Suggestion: {DEFAULT_TIERS}."
        )
    return out


def _pair_draws(t_post: xr.Dataset, s_post: xr.Dataset, rng: np.random.Generator):
    """Pair purchase and spend draws by a random permutation; returns (S, 1) arrays and coords."""
    bg = _flat(t_post, _BG_VARS)
    gg = _flat(s_post, _GG_VARS)
    St, Ss = bg[0].size, gg[0].size
    S = max(St, Ss)

    def index(k: int) -> np.ndarray:  # S indices into k draws: shuffled blocks of a permutation
        if k == S:
            return rng.permutation(k) if k > 1 else np.zeros(1, dtype=np.int64)
        reps = -(-S // k)
        return rng.permutation(np.concatenate([rng.permutation(k) for _ in range(reps)])[:S])

    ti = np.arange(S) if St == S else index(St)
    si = index(Ss)
    src = t_post if St == S else s_post
    coords = {"chain": src["chain"].values, "draw": src["draw"].values}
    return [v[ti][:, None] for v in bg], [v[si][:, None] for v in gg], coords


class _Runner:
    def __init__(self, method, plan, margin, bg, gg, cols, pmap=vm.serial_map):
        self.method, self.plan, self.margin, self.bg, self.gg = method, plan, margin, bg, gg
        self.pmap = pmap
        self.x, self.tx, self.T, self.m = (
            cols["frequency"], cols["recency"], cols["T"], cols["monetary_value"]
        )  # fmt: skip

    def chunk(self, idx: np.ndarray, rng: np.random.Generator):
        """``(clv, means, counts)`` for customers ``idx``: CLV ``(S, len(idx))``; the means over
        draws of P(alive), purchases, spend and CLV ``(4, len(idx))``; simulated purchase
        counts ``(S, len(idx))`` (``None`` for the expected method)."""
        clv, means, counts, inverse = self.distinct(idx, rng)
        if inverse is None:
            return clv, means, counts
        return clv[:, inverse], means[:, inverse], counts

    def distinct(self, idx: np.ndarray, rng: np.random.Generator):
        """:meth:`chunk` for the distinct customers only, and ``inverse`` mapping ``idx`` to
        them (``None``: every customer is computed).

        The expected method's values depend on ``(x, t_x, T, m)`` only, and for ``x = 0`` on
        ``T`` only (alive for sure, mean spend from the population), so customers sharing these
        get the same bits whether computed once or not: one-time buyers of the same age (most
        customers of a typical log) are computed, and their quantiles sorted, once per chunk.
        """
        x, tx, T, m = self.x[idx], self.tx[idx], self.T[idx], self.m[idx]
        counts = inverse = None
        if self.method == "expected":
            rep = x > 0
            key = np.stack([x, np.where(rep, tx, 0.0), T, np.where(rep, m, 0.0)], axis=1)
            _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
            inverse = inverse.ravel()
            if first.size == x.size:
                inverse = None
            else:
                idx, x, tx, T, m = idx[first], x[first], tx[first], T[first], m[first]
            clv, means, _ = vm.expected_chunk(
                self.bg, self.gg, x, tx, T, m, self.plan, self.margin, self.pmap
            )
        else:
            rev, cost_units, counts, pa = vm.simulate_future(
                self.bg, self.gg, x, tx, T, m, self.plan, rng
            )
            clv = self.margin * rev - self.plan.cost_per_period * cost_units
            spend = gg_predict.gg_expected_spend(*self.gg, x, m)
            means = np.stack(
                [pa.mean(axis=0), counts.mean(axis=0), spend.mean(axis=0), clv.mean(axis=0)]
            )
        # a non-finite draw makes its customer's mean non-finite: scan the draws only then
        bad = None if np.isfinite(means[3]).all() else ~np.isfinite(clv)
        if bad is not None and bad.any():
            d, c = np.argwhere(bad)[0]
            raise bad_rows_error(
                "customer value", "is not finite (numerical failure)", int(bad.any(axis=0).sum()),
                {"row": int(idx[c]), "draw": int(d), "x": float(x[c]), "recency": float(tx[c]),
                 "T": float(T[c])},
                "report this with the row shown", len(self.x),
            )  # fmt: skip
        return clv, means, counts, inverse


def _chunk_streams(rng: np.random.Generator) -> Callable[[int], np.random.Generator]:
    """Chunk ``i`` -> a Generator seeded by child ``i`` of ``rng``'s seed sequence (the ``i``-th
    child :meth:`numpy.random.SeedSequence.spawn` would give), whatever order chunks run in."""
    ss = rng.bit_generator.seed_seq
    kind = type(rng.bit_generator)

    def stream(i: int) -> np.random.Generator:
        child = np.random.SeedSequence(
            ss.entropy, spawn_key=(*ss.spawn_key, i), pool_size=ss.pool_size
        )
        return np.random.Generator(kind(child))

    return stream


def _ordered_map(fn: Callable[[int], Any], items: Iterable[int], n_jobs: int) -> Iterator[Any]:
    """``fn`` over ``items`` on ``n_jobs`` threads, results in order.

    At most ``n_jobs`` calls run while the caller holds the last result, so at most
    ``n_jobs + 1`` results are alive at once.
    """
    if n_jobs == 1:
        yield from map(fn, items)
        return
    pool = ThreadPoolExecutor(max_workers=n_jobs, thread_name_prefix="clvkit-value")
    pending: deque = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) > n_jobs:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _progress(it: Iterable, total: int, show: bool, label: str):
    if not show:
        yield from it
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(file=sys.stderr), transient=True) as bar:
        task = bar.add_task(label, total=total)
        for item in it:
            yield item
            bar.advance(task)


def _tier_cuts(
    values: np.ndarray, shares: list[float], pmap: vm.PMap = vm.serial_map
) -> np.ndarray:
    """Per-draw cuts ``(S, n_tiers - 1)``: a value above cut j is in tier j or higher.

    Cut j is the (k_j + 1)-th largest value, k_j = ceil(share_j n), so at most k_j customers
    are above it (ties at a cut fall to the lower tier). Blocks of draws go through ``pmap``.
    """
    S, n = values.shape
    ks = [int(np.ceil(share * n - 1e-9)) for share in shares[:-1]]
    kth = sorted({n - k - 1 for k in ks if k < n})
    cuts = np.full((S, len(ks)), -np.inf)
    cols = [j for j, k in enumerate(ks) if k < n]

    def block(lo: int) -> None:
        part = np.partition(values[lo : lo + vm.DRAW_BLOCK], kth, axis=1)  # one copy, all cuts
        for j in cols:
            cuts[lo : lo + vm.DRAW_BLOCK, j] = part[:, n - ks[j] - 1]

    if kth:
        pmap(block, range(0, S, vm.DRAW_BLOCK))
    return cuts


def _column_quantiles(values: np.ndarray, levels: list[float]) -> np.ndarray:
    """Quantiles over axis 0 (numpy's default linear method) from one sort: ``(levels, n)``."""
    srt = np.ascontiguousarray(values.T)  # each customer's draws contiguous: a fast row sort
    srt.sort(axis=1)
    h = (srt.shape[1] - 1) * np.asarray(levels)
    lo = np.floor(h).astype(np.int64)
    hi = np.minimum(lo + 1, srt.shape[1] - 1)
    return (srt[:, lo] + (h - lo)[None, :] * (srt[:, hi] - srt[:, lo])).T


class _Accumulator:
    def __init__(self, n, S, tiers, keep, simulate, pmap=vm.serial_map):
        self.pmap = pmap  # a map over threads for blocks of one chunk
        self.n_t = len(tiers)
        self.S = S
        self.sums = ExactSum(S, self.n_t)  # per-draw equity of each tier, exact (any order)
        self.stats = {k: np.empty(n) for k in ("mean", "median", "p_alive", "purchases", "spend")}
        self.tier_p = np.empty((n, self.n_t))
        self.q = {p: np.empty((2, n)) for p in _STORED_PROBS if p != 0.5}
        self.q[0.5] = np.empty((2, n))
        self.clv = np.empty((S, n)) if keep else None
        self.cnt = np.empty((S, n), dtype=np.int64) if keep and simulate else None

    def chunk_tiers(self, clv, cuts):
        """A chunk's exact per-draw tier sums and counts (an :class:`ExactSum`) and its
        customers' tier probabilities ``(chunk, tiers)``. Pure (thread-safe).

        A value above cut j (the cuts decrease) and no earlier cut is in tier j; ties at a cut
        fall to the lower tier. The sums are exact integers until rounded in :meth:`result`,
        so adding chunks in any order (or on any Dask partition) gives the same bits.
        """
        part = ExactSum(self.S, self.n_t)
        hits = part.add_tiered(clv, cuts, self.pmap, vm.DRAW_BLOCK)
        return part, hits / clv.shape[0]

    def add_tiers(self, idx, parts):
        """Add a chunk's :meth:`chunk_tiers` (exact: any order gives the same sums)."""
        part, t_p = parts
        self.sums.merge(part)
        self.tier_p[idx] = t_p

    def chunk_stats(self, clv, means, inverse=None):
        """Per-customer summaries over draws of one chunk (pure, thread-safe); ``means`` are
        the chunk's mean P(alive), purchases, spend and CLV (:meth:`_Runner.distinct`), and
        ``inverse`` maps customers to the columns of ``clv`` and ``means`` (``None``: one each)."""
        levels = sorted({0.5} | {lv for p in self.q for lv in ((1 - p) / 2, (1 + p) / 2)})
        qs = np.concatenate(
            self.pmap(
                lambda lo: _column_quantiles(clv[:, lo : lo + _QUANTILE_BLOCK], levels),
                range(0, clv.shape[1], _QUANTILE_BLOCK),
            ),
            axis=1,
        )
        if inverse is not None:
            means, qs = means[:, inverse], qs[:, inverse]
        qs = dict(zip(levels, qs, strict=True))
        return {
            "mean": means[3], "p_alive": means[0], "purchases": means[1],
            "spend": means[2], "median": qs[0.5],
            **{p: (qs[(1 - p) / 2], qs[(1 + p) / 2]) for p in self.q},
        }  # fmt: skip

    def add_stats(self, idx, stats, clv, purchases):
        """Store a chunk's :meth:`chunk_stats` (and the kept draws)."""
        for k in ("mean", "median", "p_alive", "purchases", "spend"):
            self.stats[k][idx] = stats[k]
        for p, arr in self.q.items():
            arr[0, idx], arr[1, idx] = stats[p]
        if self.clv is not None:
            self.clv[:, idx] = clv
        if self.cnt is not None:
            self.cnt[:, idx] = purchases

    def result(self, ids, coords, new, settings, tiers):
        names = list(tiers)
        shape = (coords["chain"].size, coords["draw"].size)
        dims = ("chain", "draw")
        st = self.stats
        top = self.tier_p.argmax(axis=1)
        table = pd.DataFrame(
            {
                "mean": st["mean"], "median": st["median"], "p_alive": st["p_alive"],
                "expected_purchases": st["purchases"], "expected_spend": st["spend"],
                "tier": pd.Categorical.from_codes(top, categories=names, ordered=True),
                **{f"p_{t}": self.tier_p[:, j] for j, t in enumerate(names)},
            },
            index=ids.copy(),
        )  # fmt: skip
        tcoords = {**coords, "tier": names}

        def per_draw(a):
            return xr.DataArray(a.reshape(shape), coords=coords, dims=dims)

        def per_tier(a):
            return xr.DataArray(a.reshape((*shape, -1)), coords=tcoords, dims=(*dims, "tier"))

        def full(a, name):
            if a is None:
                return None
            cid = xr.DataArray(ids.to_numpy(), dims="customer_id")
            return xr.DataArray(
                a.reshape((*shape, -1)), dims=(*dims, "customer_id"), name=name,
                coords={**coords, "customer_id": cid},
            )  # fmt: skip

        return CustomerValue(
            equity=per_draw(self.sums.total()).rename("equity"),
            tier_equity=per_tier(self.sums.result()).rename("tier_equity"),
            tier_count=per_tier(self.sums.counts.astype(float)).rename("tier_count"),
            new_customer=per_draw(new).rename("new_customer_clv"),
            settings=settings,
            _customers=table,
            _quantiles={p: tuple(q) for p, q in self.q.items()},
            _clv=full(self.clv, "clv"),
            _purchases=full(self.cnt, "purchases"),
            _tiers=dict(tiers),
        )
