"""Customer equity over time: the base re-valued at a series of cut-off dates, and the bridge
from one cut-off to the next.

At each cut-off ``c`` the log up to ``c`` gives the customer table of the customers acquired by
then (:func:`clvkit.rfm_summary` with ``observation_end=c``); the purchase and spend models are
fitted on it (or a fit of an earlier cut-off is reused, see ``refit``) and
:func:`clvkit.customer_value` values it. The bridge splits each change of equity, draw by draw,
into the value of new customers, the value lost with customers who became inactive and the
revaluation of everyone else; the three add up to the change.
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from clvkit.errors import ClvkitError
from clvkit.evaluation.rolling import check_cutoffs, check_fit_model, read_cut_log
from clvkit.evaluation.run import fit_model
from clvkit.rng import check_random_seed
from clvkit.utils.checks import check_prob
from clvkit.utils.progress import progress
from clvkit.value.engine import customer_value
from clvkit.value.result import CustomerValue
from clvkit.value.settings import CashflowSettings

__all__ = ["LOST_THRESHOLD", "EquityHistory", "equity_history"]

#: Default threshold of the lost rule: a customer with no purchase between two cut-offs is lost
#: when its posterior-mean P(alive) falls below it (see :func:`equity_history`).
LOST_THRESHOLD = 0.5


@dataclass
class EquityHistory:
    """Customer equity at a series of cut-offs, and the bridges between them; see
    :func:`equity_history`.

    Attributes
    ----------
    cutoffs : pandas.DatetimeIndex
    equity : xarray.DataArray
        Equity draws, dims ``(cutoff, chain, draw)`` (expected equity: credible intervals).
        Draw ``s`` of every cut-off uses the same seed, so with a reused fit it is the same
        posterior draw (and spend pairing); across refits draws are paired by index.
    fit_cutoff : pandas.DatetimeIndex
        Per cut-off, the cut-off whose customer table the fit that valued it was fitted on
        (itself when refit, else the latest earlier refit: never later data).
    fits : dict
        Fit cut-off -> ``(transactions_model, spend_model)`` fitted on its table.
    roles : list of pandas.DataFrame
        Per cut-off, per customer: ``since_previous`` (``"start"`` at the first cut-off, then
        ``"new"``, ``"lost"`` or ``"rest"``), ``to_next`` (``"lost"``, ``"stay"``, ``"-"``
        at the last cut-off) and ``p_alive`` (posterior-mean P(alive) at the cut-off over the
        valuation's draws, the input of the lost rule).
    values : list of CustomerValue
        The valuation of each cut-off (:func:`clvkit.customer_value`, ``by=`` new or not).
    parts : xarray.Dataset
        The bridge per draw (see :meth:`bridge_draws`).
    settings : dict
        The cash-flow settings, models, ``refit``, ``lost_threshold``, ``draws``,
        ``value_seed`` (the seed of every valuation) and the fit keywords.
    """

    cutoffs: pd.DatetimeIndex
    equity: xr.DataArray = field(repr=False)
    fit_cutoff: pd.DatetimeIndex = field(repr=False)
    fits: dict[pd.Timestamp, tuple[Any, Any]] = field(repr=False)
    roles: list[pd.DataFrame] = field(repr=False)
    values: list[CustomerValue] = field(repr=False)
    parts: xr.Dataset = field(repr=False)
    settings: dict[str, Any] = field(default_factory=dict)

    def _interval(self, x: np.ndarray, prob: float) -> tuple[float, float]:
        lo, hi = np.quantile(x, [(1 - prob) / 2, (1 + prob) / 2])
        return float(lo), float(hi)

    def table(self, prob: float = 0.9) -> pd.DataFrame:
        """One row per cut-off: ``customers`` (acquired by the cut-off), ``new_customers``,
        ``lost_customers`` (since the previous cut-off; at the first, every customer is new), ``equity`` (mean over draws),
        ``equity_median``, ``equity_lower``, ``equity_upper`` (central ``prob`` interval),
        ``equity_per_customer``, ``fit_cutoff`` (the data the valuing fit saw) and ``refit``
        (whether the models were fitted at this cut-off)."""
        check_prob(prob)
        rows = []
        for i, c in enumerate(self.cutoffs):
            e = self.equity.values[i].ravel()
            lo, hi = self._interval(e, prob)
            since = self.roles[i]["since_previous"]
            rows.append(
                {
                    "cutoff": c, "customers": len(since),
                    "new_customers": int((since == "new").sum()) if i else len(since),
                    "lost_customers": int((since == "lost").sum()),
                    "equity": float(e.mean()), "equity_median": float(np.median(e)),
                    "equity_lower": lo, "equity_upper": hi,
                    "equity_per_customer": float(e.mean()) / max(len(since), 1),
                    "fit_cutoff": self.fit_cutoff[i], "refit": bool(self.fit_cutoff[i] == c),
                }
            )  # fmt: skip
        out = pd.DataFrame(rows).set_index("cutoff")
        out.attrs["prob"] = prob
        return out

    def bridge_draws(self) -> xr.Dataset:
        """The bridge per draw, dims ``(step, chain, draw)``, ``step`` the later cut-off of
        each pair: ``start`` and ``end`` (equity at the two cut-offs), ``new`` (value at the
        later cut-off of the customers first seen after the earlier one), ``lost`` (value
        change of the customers lost in between: their value at the later cut-off minus at
        the earlier) and ``revaluation`` (value change of every other customer of the earlier
        cut-off). ``start + new + lost + revaluation = end`` in every draw (to float
        rounding: each part is made of exact per-draw sums, rounded once)."""
        if len(self.cutoffs) < 2:
            raise ClvkitError(
                "argument 'cutoffs' has one date: a bridge needs two. Suggestion: pass at least "
                "two cut-offs."
            )
        return self.parts.copy()

    def bridge(self, prob: float = 0.9) -> pd.DataFrame:
        """The bridge from each cut-off to the next, one row per step (indexed by the later
        cut-off): ``from``; ``start``, ``end`` (mean equity); ``new``, ``lost``,
        ``revaluation`` and ``change`` (``end - start``), each as a mean with a central
        ``prob`` interval over draws (``*_lower``, ``*_upper``: computed on the per-draw
        differences); the customers in each part (``new_customers``, ``lost_customers``,
        ``other_customers``) and ``refit`` (the later cut-off was valued by a new fit, so the
        revaluation includes the update of the models). The means add up:
        ``start + new + lost + revaluation = end``."""
        check_prob(prob)
        d = self.bridge_draws()
        rows = []
        for j, c in enumerate(self.cutoffs[1:]):
            since = self.roles[j + 1]["since_previous"]
            row: dict[str, Any] = {"cutoff": c, "from": self.cutoffs[j]}
            row["start"] = float(d["start"].values[j].mean())
            for k in ("new", "lost", "revaluation", "change"):
                x = (d["end"] - d["start"]).values[j] if k == "change" else d[k].values[j]
                row[k] = float(x.mean())
                row[f"{k}_lower"], row[f"{k}_upper"] = self._interval(x.ravel(), prob)
            row["end"] = float(d["end"].values[j].mean())
            row["new_customers"] = int((since == "new").sum())
            row["lost_customers"] = int((since == "lost").sum())
            row["other_customers"] = int((since == "rest").sum())
            row["refit"] = bool(self.fit_cutoff[j + 1] != self.fit_cutoff[j])
            rows.append(row)
        out = pd.DataFrame(rows).set_index("cutoff")
        out.attrs["prob"] = prob
        return out

    def report(self, prob: float = 0.9) -> str:
        """A short plain-text history: equity per cut-off and the bridges."""
        s = self.settings
        t = self.table(prob)
        pct = f"{prob:.0%}"
        lines = [
            f"Customer equity over time ({s['transactions_model']} + {s['spend_model']}, "
            f"horizon {s['horizon']:g} {s['time_unit']}, {len(t)} cut-offs, refit "
            f"{s['refit']}; {pct} intervals)"
        ]
        for c, r in t.iterrows():
            fit = "refit" if r["refit"] else f"fit of {r['fit_cutoff'].date()}"
            lines.append(
                f"  {c.date()}: {r['customers']:,} customers, equity {r['equity']:,.0f} "
                f"[{r['equity_lower']:,.0f}, {r['equity_upper']:,.0f}] ({fit})"
            )
        if len(t) > 1:
            lines.append("Bridge (mean; new customers, lost customers, revaluation of the rest):")
            for c, r in self.bridge(prob).iterrows():
                lines.append(
                    f"  {r['from'].date()} -> {c.date()}: {r['start']:,.0f} + new "
                    f"{r['new']:,.0f} ({r['new_customers']:,}) + lost {r['lost']:,.0f} "
                    f"({r['lost_customers']:,}) + revaluation {r['revaluation']:,.0f} = "
                    f"{r['end']:,.0f}"
                )
        return "\n".join(lines)


def equity_history(
    transactions: pd.DataFrame | str | os.PathLike,
    *,
    cutoffs: Any,
    horizon: float | str,
    customer_id: Hashable = "customer_id",
    date: Hashable = "date",
    amount: Hashable = "amount",
    time_unit: str = "W",
    transactions_model: str = "bgnbd",
    spend_model: str = "gamma_gamma",
    fit_kwargs: dict[str, Any] | None = None,
    period: float | str = "30D",
    annual_discount_rate: float | None = None,
    discount_rate_per_period: float | None = None,
    margin: float = 1.0,
    cost_per_period: float = 0.0,
    discounting: Literal["discrete", "continuous"] = "discrete",
    draws: int | None = None,
    refit: Literal["every"] | int = "every",
    lost_threshold: float = LOST_THRESHOLD,
    observation_end: Any = None,
    tz: str | None = None,
    random_seed: int | np.random.Generator | None = None,
    progressbar: bool = False,
) -> EquityHistory:
    """Customer equity of the base at each cut-off date, with intervals, and the bridges.

    At each cut-off ``c``: the customer table of the log up to ``c`` (the customers acquired by
    ``c``, observed to ``c``), the models fitted on it (or reused, see ``refit``) and
    :func:`clvkit.customer_value` (expected method: credible intervals) over ``horizon`` from
    ``c``.

    Parameters
    ----------
    transactions : pandas.DataFrame, str or os.PathLike
        Purchase log with an amount column (a CSV or Parquet path or glob is read through
        DuckDB: the same rows).
    cutoffs : sequence of dates or str
        Cut-off dates (after the first purchase day, on or before the log's end, increasing),
        or a step such as ``"13W"`` (every 13 weeks after the first purchase day).
    horizon : float or str
        Valuation horizon from each cut-off (time units or a duration, ``"52W"``).
    customer_id, date, amount : str
        Column names.
    time_unit : str
        Model time unit.
    transactions_model, spend_model : str
        Registry names of the models fitted at the cut-offs.
    fit_kwargs : dict, optional
        Passed to both ``fit`` calls (e.g. ``method="map"``, or ``draws``/``tune``/``chains``
        for NUTS); each refit gets its own seed unless ``random_seed`` is given in it;
        ``progressbar`` defaults to False.
    period, annual_discount_rate, discount_rate_per_period, margin, cost_per_period, discounting
        Cash-flow settings, as in :func:`clvkit.customer_value` (one discount rate needed).
    draws : int, optional
        Posterior draws used per valuation (evenly spaced); needed when fits have different
        numbers of draws.
    refit : "every" or int
        ``"every"``: fit at every cut-off. ``k``: fit at the 1st, (k+1)-th, (2k+1)-th ...
        cut-off and value the others with the latest earlier fit; valid, as that fit uses no
        data after its own cut-off (only older data than a refit would). ``table()`` says which
        fit valued each cut-off.
    lost_threshold : float
        The lost rule's threshold (see Notes), in (0, 1).
    observation_end : date, optional
        The log's end (default its last purchase day); cut-offs after it are refused.
    tz : str, optional
        Zone of zoned timestamps, as in :func:`clvkit.rfm_summary`.
    random_seed : int or numpy.random.Generator, optional
        Seeds the fits and the valuations (one seed, ``settings["value_seed"]``, for every
        valuation).
    progressbar : bool
        Progress over the cut-offs (fits, then valuations) on stderr.

    Returns
    -------
    EquityHistory

    Notes
    -----
    The bridge from cut-off ``c1`` to ``c2``, per draw ``s`` (draw ``s`` at ``c1`` and at
    ``c2`` are paired by index; with a reused fit and the one valuation seed they are the same
    posterior draw):

    - ``new``: the value at ``c2`` of the customers first seen after ``c1``;
    - ``lost``: for the customers of ``c1`` who became inactive by ``c2``, their value at
      ``c2`` minus their value at ``c1`` (negative as a rule). A customer became inactive
      when it made no purchase in ``(c1, c2]``, its posterior-mean P(alive at ``c2`` |
      history to ``c2``) under the fit valuing ``c2`` is below ``lost_threshold``, and its
      posterior-mean P(alive at ``c1`` | history to ``c1``) under the fit valuing ``c1`` was
      not (means over the valuation's draws). A customer already below the threshold at
      ``c1`` is not lost again: its further decline is revaluation.
      Under BG/NBD a customer without a repeat purchase is alive for sure (dropout happens
      only after a repeat purchase), so one-time buyers are never lost: their value fades
      into the revaluation;
    - ``revaluation``: the value change ``c1 -> c2`` of every other customer of ``c1`` (new
      purchases, time passing, and the model update when ``c2`` is refit).

    ``equity(c1) + new + lost + revaluation = equity(c2)`` in every draw, to float rounding
    (each part is an exact per-draw sum over its customers, rounded once).

    Examples
    --------
    >>> from clvkit.datasets import cdnow_transactions
    >>> h = equity_history(cdnow_transactions(), cutoffs=["1997-04-02", "1997-07-02"],
    ...                    horizon="52W", annual_discount_rate=0.1,
    ...                    fit_kwargs={"method": "map"}, random_seed=0)
    >>> h.table()[["customers", "new_customers", "refit"]]  # doctest: +NORMALIZE_WHITESPACE
                customers  new_customers  refit
    cutoff
    1997-04-02       2357           2357   True
    1997-07-02       2357              0   True
    """
    flow = CashflowSettings.build(
        None, horizon=horizon, period=period, annual_discount_rate=annual_discount_rate,
        discount_rate_per_period=discount_rate_per_period, margin=margin,
        cost_per_period=cost_per_period, discounting=discounting,
    )  # fmt: skip
    every = _check_refit(refit)
    threshold = float(lost_threshold) if isinstance(lost_threshold, int | float) else np.nan
    if not 0 < threshold < 1:
        raise ClvkitError(
            f"argument 'lost_threshold' must be in (0, 1), got {lost_threshold!r}. "
            "Suggestion: 0.5 (lost when more likely inactive than active)."
        )
    random_seed = check_random_seed(random_seed)
    tm = check_fit_model(transactions_model, "purchase", "transactions_model")
    sm = check_fit_model(spend_model, "spend", "spend_model")
    if amount is None:
        raise ClvkitError(
            "argument 'amount' is None, but equity needs spend. Suggestion: name the log's "
            "amount column (amount='amount')."
        )
    cut = read_cut_log(
        transactions, customer_id=customer_id, date=date, amount=amount, time_unit=time_unit,
        observation_end=observation_end, tz=tz,
    )  # fmt: skip
    dates = check_cutoffs(cutoffs, cut, "cutoffs")
    n = len(dates)
    rng = np.random.default_rng(random_seed)
    value_seed = int(rng.integers(0, 2**63))
    fit_seeds = rng.integers(0, 2**63, size=n)
    base_kwargs = dict(fit_kwargs or {})
    base_kwargs.setdefault("progressbar", False)

    # 1. the customer table of each cut-off, and the fits (every `every`-th cut-off)
    tables: list[pd.DataFrame] = []
    fits: dict[pd.Timestamp, tuple[Any, Any]] = {}
    fit_of: list[pd.Timestamp] = []
    for i in progress(range(n), n, progressbar, "equity history: tables and fits"):
        c = dates[i]
        rfm = cut.table(c)
        tables.append(rfm)
        if i % every == 0:
            kwargs = dict(base_kwargs)
            kwargs.setdefault("random_seed", int(fit_seeds[i]))
            fits[c] = (fit_model(tm, "purchase", rfm, kwargs), fit_model(sm, "spend", rfm, kwargs))
        fit_of.append(c if i % every == 0 else fit_of[-1])

    # 2. the valuations, by new or not (exact per-draw sums of each group); their per-customer
    # P(alive) (mean over the valuation's draws) feeds the lost rule
    values: list[CustomerValue] = []
    since: list[np.ndarray] = []
    p_now: list[np.ndarray] = []
    for i in progress(range(n), n, progressbar, "equity history: valuations"):
        rfm = tables[i]
        role = np.full(len(rfm), "start", dtype=object)
        if i:
            role[:] = np.where(rfm.index.isin(tables[i - 1].index), "old", "new")
        since.append(role)
        by = pd.Series(role, index=rfm.index, name="since_previous")
        v = customer_value(*fits[fit_of[i]], rfm, flow, draws=draws, random_seed=value_seed, by=by)
        values.append(v)
        p_now.append(v.summary()["p_alive"].reindex(rfm.index).to_numpy())
    shapes = {v.equity.shape for v in values}
    if len(shapes) > 1:
        raise ClvkitError(
            f"the valuations have different numbers of draws {sorted(shapes)}. Suggestion: "
            "pass draws= (at most the smallest posterior) so every cut-off uses as many."
        )

    # 3. the bridges: who was lost between two cut-offs, and the value of those customers at
    # both, from a valuation of them alone with the same fit and seed (their CLV draws are
    # those of the whole base to about 1e-10: the expected method's quadrature follows the
    # chunk); start, end and new come from the whole valuations, so the parts add up
    def group(v: CustomerValue, label: str) -> np.ndarray:
        ge = v.group_equity
        labels = [str(g) for g in ge.coords["group"].values]
        return ge.values[..., labels.index(label)] if label in labels else np.zeros(ge.shape[:2])

    lost_next: list[np.ndarray] = []
    for i in range(n - 1):
        before, after = tables[i], tables[i + 1]
        bought = cut.purchase_days(before.index, dates[i], dates[i + 1]) > 0
        p_after = p_now[i + 1][after.index.get_indexer(before.index)]
        lost_next.append(~bought & (p_after < threshold) & (p_now[i] >= threshold))

    # the lost customers of cut-off i: those lost since i - 1 (P(alive) now below the
    # threshold) and those to be lost by i + 1 (now at or above it), two disjoint groups
    # valued together: one small valuation per cut-off
    zero = np.zeros(values[0].equity.shape)
    lost_since, lost_until = [zero] * n, [zero] * n
    for i in range(n):
        since_ids = tables[i - 1].index[lost_next[i - 1]] if i else tables[i].index[:0]
        until_ids = tables[i].index[lost_next[i]] if i < n - 1 else tables[i].index[:0]
        ids = since_ids.append(until_ids)
        if not len(ids):
            continue
        which = pd.Series(["since"] * len(since_ids) + ["until"] * len(until_ids), index=ids)
        v = customer_value(
            *fits[fit_of[i]], tables[i].loc[ids], flow, draws=draws, random_seed=value_seed,
            by=which.rename("lost"),
        )  # fmt: skip
        lost_since[i], lost_until[i] = group(v, "since"), group(v, "until")

    parts: dict[str, list[np.ndarray]] = {
        k: [] for k in ("start", "new", "lost", "revaluation", "end")
    }
    for i in range(n - 1):
        lost_before, lost_after = lost_until[i], lost_since[i + 1]
        start, end = values[i].equity.values, values[i + 1].equity.values
        old = group(values[i + 1], "old")
        parts["start"].append(start)
        parts["end"].append(end)
        parts["new"].append(group(values[i + 1], "new"))
        parts["lost"].append(lost_after - lost_before)
        parts["revaluation"].append((old - lost_after) - (start - lost_before))
    roles = []
    for i in range(n):
        rfm = tables[i]
        role = since[i].copy()
        if i:
            pos = rfm.index.get_indexer(tables[i - 1].index)
            role[pos] = np.where(lost_next[i - 1], "lost", "rest")
        to_next = np.full(len(rfm), "-", dtype=object)
        if i < n - 1:
            to_next[:] = np.where(lost_next[i], "lost", "stay")
        roles.append(
            pd.DataFrame(
                {"since_previous": role, "to_next": to_next, "p_alive": p_now[i]},
                index=rfm.index.copy(),
            )
        )
    first = values[0].equity
    equity = xr.DataArray(
        np.stack([v.equity.values for v in values]),
        dims=("cutoff", "chain", "draw"),
        coords={
            "cutoff": dates,
            "chain": first.coords["chain"].values,
            "draw": first.coords["draw"].values,
        },
        name="equity",
    )
    s0 = values[0].settings
    settings = {
        "transactions_model": tm, "spend_model": sm, "time_unit": cut.time_unit,
        "horizon": s0["horizon"], "period": s0["period"],
        "rate_per_period": s0["rate_per_period"], "margin": s0["margin"],
        "cost_per_period": s0["cost_per_period"], "discounting": s0["discounting"],
        "n_draws": s0["n_draws"], "draws": draws, "refit": refit,
        "lost_threshold": threshold, "value_seed": value_seed, "fit_kwargs": base_kwargs,
        "log_end": cut.end, "method": "expected",
        "pairing": "draw s of every cut-off by index; one valuation seed",
    }  # fmt: skip
    coords = {"step": dates[1:], "chain": equity.coords["chain"].values,
              "draw": equity.coords["draw"].values}  # fmt: skip
    shape = (n - 1, *first.shape)
    bridge = xr.Dataset(
        {k: (("step", "chain", "draw"), np.stack(v) if v else np.zeros(shape))
         for k, v in parts.items()},
        coords=coords, attrs={"from": list(dates[:-1])},
    )  # fmt: skip
    return EquityHistory(
        dates, equity, pd.DatetimeIndex(fit_of), fits, roles, values, bridge, settings
    )


def _check_refit(refit: Any) -> int:
    """``refit`` as a positive step (``"every"``: 1)."""
    if refit == "every":
        return 1
    if isinstance(refit, bool) or not (isinstance(refit, int | np.integer) and refit >= 1):
        raise ClvkitError(
            f"argument 'refit' must be 'every' or a positive integer k (refit every k-th "
            f"cut-off), got {refit!r}. Suggestion: refit='every', or refit=3."
        )
    return int(refit)
