"""Rolling-origin backtest: forecast accuracy from many origins, by horizon.

At each origin the purchase model is fitted on the log up to the origin (the customers acquired
by then) and predicts each customer's purchases in ``(origin, origin + h]`` for every horizon
``h``; the prediction is compared with what the log shows. Only fully observed windows are
used: an ``(origin, h)`` pair whose window ends after the log's end is skipped and said so.

Per customer the prediction is the posterior mean of the expected purchases, and the interval
and PIT come from the conditional posterior predictive, exactly as in
:func:`clvkit.evaluation.backtest` (:func:`clvkit.evaluation.holdout_predictive`): so one origin
and one horizon give the single-split backtest's numbers.

The log helpers here (:class:`CutLog`, :func:`read_cut_log`, :func:`check_cutoffs`) are shared
with :func:`clvkit.firm.equity_history`: one reading of the log, one customer table per cut-off.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from clvkit.data.summary import read_purchases, rfm_summary
from clvkit.errors import ClvkitError, bad_rows_error
from clvkit.evaluation.predictive import holdout_metrics, holdout_predictive
from clvkit.evaluation.run import fit_model, sample_counts
from clvkit.models.registry import get
from clvkit.rng import check_random_seed
from clvkit.units import duration_in_units, format_time_unit, parse_date, parse_time_unit
from clvkit.utils.checks import check_prob
from clvkit.utils.progress import progress

__all__ = [
    "CutLog",
    "RollingBacktest",
    "check_cutoffs",
    "check_fit_model",
    "read_cut_log",
    "rolling_backtest",
]


# ----------------------------------------------------------------------------------------------
# the log, read once and cut at dates
# ----------------------------------------------------------------------------------------------
@dataclass
class CutLog:
    """A purchase log read once (:func:`clvkit.read_purchases`), to be cut at dates.

    Attributes
    ----------
    log : pandas.DataFrame
        The validated, cleaned log (columns ``customer_id``, ``date`` and ``amount`` under
        their names).
    day : numpy.ndarray
        Each row's purchase day (``datetime64[D]``).
    first_purchase : pandas.Series
        Each customer's first purchase day, indexed by customer id (sorted).
    start, end : pandas.Timestamp
        The first purchase day of the log and the last day observed (``observation_end``, by
        default the last purchase day).
    unit : pandas.Timedelta
    time_unit : str
    """

    log: pd.DataFrame = field(repr=False)
    day: np.ndarray = field(repr=False)
    first_purchase: pd.Series = field(repr=False)
    start: pd.Timestamp
    end: pd.Timestamp
    unit: pd.Timedelta
    time_unit: str
    customer_id: Hashable = "customer_id"
    date: Hashable = "date"
    amount: Hashable | None = None

    def table(self, cutoff: pd.Timestamp) -> pd.DataFrame:
        """The customer table (:func:`clvkit.rfm_summary`) of the log up to ``cutoff``
        (inclusive): the customers acquired by then, observed to the cut-off."""
        part = self.log[self.day <= np.datetime64(cutoff.date(), "D")]
        return rfm_summary(
            part, customer_id=self.customer_id, date=self.date, amount=self.amount,
            time_unit=self.unit, observation_end=cutoff,
        )  # fmt: skip

    def purchase_days(self, customers: pd.Index, after: pd.Timestamp, until: pd.Timestamp):
        """Distinct purchase days of each of ``customers`` in ``(after, until]`` (int64)."""
        lo = np.datetime64(after.date(), "D")
        hi = np.datetime64(until.date(), "D")
        keep = (self.day > lo) & (self.day <= hi)
        pairs = pd.DataFrame(
            {"c": self.log[self.customer_id].to_numpy()[keep], "d": self.day[keep]}
        ).drop_duplicates()
        counts = pairs["c"].value_counts()
        return counts.reindex(customers, fill_value=0).to_numpy(dtype=np.int64)

    def customers_by(self, cutoff: pd.Timestamp) -> int:
        """Number of customers whose first purchase is on or before ``cutoff``."""
        return int((self.first_purchase <= cutoff).sum())


def read_cut_log(
    transactions: pd.DataFrame | str | os.PathLike,
    *,
    customer_id: Hashable = "customer_id",
    date: Hashable = "date",
    amount: Hashable | None = None,
    time_unit: str | pd.Timedelta = "W",
    observation_end: Any = None,
    tz: str | None = None,
) -> CutLog:
    """Read a log once (a DataFrame, or a CSV/Parquet path or glob through DuckDB: the same
    rows) for cutting at dates; ``observation_end`` defaults to the last purchase day.

    Examples
    --------
    >>> from clvkit.datasets import cdnow_transactions
    >>> cut = read_cut_log(cdnow_transactions(), amount="amount")
    >>> str(cut.start.date()), str(cut.end.date()), cut.customers_by(pd.Timestamp("1997-01-31"))
    ('1997-01-01', '1998-06-30', 781)
    """
    unit = parse_time_unit(time_unit)
    log = read_purchases(transactions, customer_id=customer_id, date=date, amount=amount, tz=tz)
    if not len(log):
        raise ClvkitError("argument 'transactions' has no purchase. Suggestion: pass a log.")
    day = log[date].to_numpy().astype("datetime64[D]")
    first = pd.DataFrame({"c": log[customer_id].to_numpy(), "d": day}).groupby("c")["d"].min()
    start = pd.Timestamp(day.min())
    last = pd.Timestamp(day.max())
    if observation_end is None:
        end = last
    else:
        end = parse_date(observation_end, "observation_end").normalize()
        if end < last:
            n = int((day > np.datetime64(end.date(), "D")).sum())
            raise bad_rows_error(
                "argument 'observation_end'", f"({end.date()}) is before purchases of the log",
                n, str(last.date()), "pass the last day observed (default: the last purchase)",
                len(log),
            )  # fmt: skip
    return CutLog(
        log, day, pd.Series(pd.to_datetime(first.to_numpy()), index=first.index), start, end,
        unit, format_time_unit(unit), customer_id, date, amount,
    )  # fmt: skip


def check_cutoffs(value: Any, cut: CutLog, argument: str = "cutoffs") -> pd.DatetimeIndex:
    """Cut-off dates: a sequence of dates, or a step (``"13W"``: every 13 weeks after the first
    purchase day, up to the log's end; a fixed duration, so ``"M"`` is 30.44 days). Each must be after the first purchase day and on or
    before the log's end, in increasing order without duplicates; else a ClvkitError naming
    ``argument``, the number of bad dates and one. Times of day are dropped (whole days).

    Examples
    --------
    >>> from clvkit.datasets import cdnow_transactions
    >>> cut = read_cut_log(cdnow_transactions())
    >>> [str(d.date()) for d in check_cutoffs("26W", cut)]
    ['1997-07-02', '1997-12-31']
    """
    if isinstance(value, str | pd.Timedelta):
        try:
            step = parse_time_unit(value, argument)
        except ClvkitError:
            step = None
        if step is not None:
            if step < pd.Timedelta(days=1):
                raise ClvkitError(
                    f"argument {argument!r} is the step {value!r}, under a day. Suggestion: a "
                    "step of whole days or more, such as '13W' or '30D'."
                )
            k = np.arange(1, int((cut.end - cut.start) / step) + 1)
            dates = pd.DatetimeIndex([(cut.start + i * step).normalize() for i in k])
            if not len(dates):
                raise ClvkitError(
                    f"argument {argument!r} is the step {value!r}, longer than the log "
                    f"({cut.start.date()} to {cut.end.date()}). Suggestion: a shorter step."
                )
            return dates
        value = [value]
    if isinstance(value, pd.Timestamp) or not isinstance(
        value, Sequence | pd.Index | pd.Series | np.ndarray
    ):
        value = [value]
    if len(value) == 0:
        raise ClvkitError(
            f"argument {argument!r} is empty. Suggestion: pass dates, e.g. ['1997-04-01', "
            "'1997-07-01'], or a step such as '13W'."
        )
    dates = pd.DatetimeIndex([parse_date(v, argument).normalize() for v in value])
    n = len(dates)
    checks = [
        (
            dates <= cut.start,
            f"on or before the log's first purchase day ({cut.start.date()}: no customer has a "
            "history yet)",
            f"cut-offs after {cut.start.date()}",
        ),
        (
            dates > cut.end,
            f"after the log's end ({cut.end.date()})",
            f"dates on or before {cut.end.date()} (or pass observation_end)",
        ),
    ]
    order = np.zeros(n, dtype=bool)
    order[1:] = dates[1:] < dates[:-1]
    checks.append((order, "out of increasing order (before the date ahead of it)", "sort them"))
    dup = dates.duplicated()
    checks.append((dup, "duplicated", "give each date once"))
    for bad, problem, suggestion in checks:
        if bad.any():
            example = str(dates[np.flatnonzero(bad)[0]].date())
            raise ClvkitError(
                f"argument {argument!r}: {int(bad.sum())} of {n} date(s) {problem}; for "
                f"example {example}. Suggestion: {suggestion}."
            )
    return dates


def check_fit_model(name: Any, kind: str, argument: str) -> str:
    """A registry name of a model that reads the rfm_summary table, checked."""
    if not isinstance(name, str):
        raise ClvkitError(
            f"argument {argument!r} must be the registry name of a model to fit at each date "
            f"(e.g. 'bgnbd'), got {type(name).__name__}. Suggestion: pass the name; a model "
            "fitted once would use data after the earlier dates."
        )
    spec = get(name, kind).spec
    if kind == "purchase" and spec.data != "rfm":
        raise ClvkitError(
            f"argument {argument!r} is {name!r}, a model of the {spec.data!r} table; this "
            "reads rfm_summary tables. Suggestion: a continuous-time model such as 'bgnbd'."
        )
    return name


def window_end(origin: pd.Timestamp, horizon: float, unit: pd.Timedelta) -> pd.Timestamp:
    """The last day of the window of ``horizon`` units after ``origin`` (whole days)."""
    return (origin + horizon * unit).floor("D")


# ----------------------------------------------------------------------------------------------
# the rolling-origin backtest
# ----------------------------------------------------------------------------------------------
@dataclass
class RollingBacktest:
    """Predicted vs actual purchases from many origins; see :func:`rolling_backtest`.

    Attributes
    ----------
    rows : pandas.DataFrame
        One row per (origin, horizon) evaluated (see :meth:`table`).
    skipped : pandas.DataFrame
        The (origin, horizon) pairs whose window passes the log's end: ``origin``,
        ``horizon``, ``window_end``, ``reason``.
    notes : list of str
        What was skipped, in words.
    predictions : dict
        ``(origin, horizon)`` -> the per-customer table of
        :func:`clvkit.evaluation.holdout_predictive` (``actual``, ``predicted``, ``lower``,
        ``upper``, ``pit``).
    fits : dict
        Origin -> the purchase model fitted on the log up to it.
    settings : dict
    """

    rows: pd.DataFrame
    skipped: pd.DataFrame
    notes: list[str]
    predictions: dict[tuple[pd.Timestamp, float], pd.DataFrame] = field(repr=False)
    fits: dict[pd.Timestamp, Any] = field(repr=False)
    settings: dict[str, Any] = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """Per origin and horizon: ``window_end``, ``customers``, ``total_actual``,
        ``total_predicted``, ``aggregate_error`` (predicted minus actual purchases),
        ``aggregate_error_pct`` (of actual), ``mae`` and ``rmse`` (per customer),
        ``coverage`` (share of customers whose randomized PIT is inside the central ``prob``
        band: calibrated, about ``prob`` when the model is right), ``interval_coverage`` (share
        whose actual count is inside ``[lower, upper]``: at least about ``prob`` for discrete
        counts, see :func:`rolling_backtest`), ``total_lower``, ``total_upper`` (the
        aggregate's central predictive interval), ``total_covered``,
        ``p_total_at_least_actual`` and ``n_samples`` (predictive samples per customer)."""
        return self.rows.copy()

    def by_horizon(self) -> pd.DataFrame:
        """Averages over origins, per horizon: how the error grows with the horizon.

        Columns: ``origins`` (evaluated), ``mae``, ``rmse``, ``aggregate_error_pct`` (mean),
        ``abs_aggregate_error_pct`` (mean of absolute values), ``coverage``,
        ``interval_coverage``, ``total_covered`` (share of origins whose aggregate actual lies
        in the aggregate interval)."""
        rows = self.rows.reset_index()
        rows["abs_aggregate_error_pct"] = rows["aggregate_error_pct"].abs()
        g = rows.groupby("horizon")
        out = pd.DataFrame({"origins": g.size()})
        for c in ("mae", "rmse", "aggregate_error_pct", "abs_aggregate_error_pct", "coverage",
                  "interval_coverage"):  # fmt: skip
            out[c] = g[c].mean()
        out["total_covered"] = g["total_covered"].mean()
        return out

    def report(self) -> str:
        """A short plain-text summary: error by horizon and what was skipped."""
        s = self.settings
        lines = [
            f"Rolling-origin backtest ({s['transactions_model']}, {s['n_origins']} origins, "
            f"horizons {', '.join(f'{h:g}' for h in s['horizons'])} x {s['time_unit']}, "
            f"{s['prob']:.0%} intervals)"
        ]
        for h, r in self.by_horizon().iterrows():
            lines.append(
                f"  h = {h:g}: {r['origins']:.0f} origins, MAE {r['mae']:.3f}, aggregate error "
                f"{r['aggregate_error_pct']:+.1f}% (mean |.| {r['abs_aggregate_error_pct']:.1f}"
                f"%), coverage {r['coverage']:.1%}, aggregate covered "
                f"{r['total_covered']:.0%}"
            )
        lines.extend(self.notes)
        return "\n".join(lines)


def rolling_backtest(
    transactions: pd.DataFrame | str | os.PathLike,
    *,
    origins: Any,
    horizons: Sequence[float | str] | float | str,
    customer_id: Hashable = "customer_id",
    date: Hashable = "date",
    amount: Hashable | None = None,
    time_unit: str = "W",
    transactions_model: str = "bgnbd",
    fit_kwargs: dict[str, Any] | None = None,
    prob: float = 0.9,
    n_samples: int | None = None,
    observation_end: Any = None,
    tz: str | None = None,
    random_seed: int | np.random.Generator | None = None,
    progressbar: bool = False,
) -> RollingBacktest:
    """Backtest the purchase model from many origins and horizons.

    At each origin ``o`` the model is fitted on the log up to ``o`` (its customers: those
    acquired by ``o``) and predicts each customer's purchase days in ``(o, o + h]`` for each
    horizon ``h``; these are compared with the log. A window must be fully observed: a pair
    whose window ends after the log's end is skipped, listed in ``skipped`` and said in
    ``notes`` (an origin with no such window is not fitted).

    Parameters
    ----------
    transactions : pandas.DataFrame, str or os.PathLike
        Purchase log (a CSV or Parquet path or glob is read through DuckDB: same rows).
    origins : sequence of dates or str
        Origin dates (after the first purchase day, on or before the log's end, increasing),
        or a step such as ``"13W"`` (every 13 weeks after the first purchase day).
    horizons : sequence of float or str
        Window lengths: numbers of ``time_unit`` or durations (``"13W"``).
    customer_id, date, amount : str
        Column names. ``amount`` only takes part in reading and cleaning the log (as in
        :func:`clvkit.rfm_summary`); revenue is not backtested here.
    time_unit : str
        Model time unit.
    transactions_model : str
        Registry name of the purchase model fitted at each origin (a model of the
        :func:`clvkit.rfm_summary` table).
    fit_kwargs : dict, optional
        Passed to ``fit`` (e.g. ``method="map"``); each origin's fit gets its own seed unless
        ``random_seed`` is given in it; ``progressbar`` defaults to False.
    prob : float
        Mass of the central intervals.
    n_samples : int, optional
        Predictive samples per customer (default: sized to the base, as in
        :func:`clvkit.evaluation.backtest`).
    observation_end : date, optional
        The log's end (default its last purchase day).
    tz : str, optional
        Zone of zoned timestamps, as in :func:`clvkit.rfm_summary`.
    random_seed : int or numpy.random.Generator, optional
    progressbar : bool
        Progress over origins on stderr.

    Returns
    -------
    RollingBacktest

    Notes
    -----
    - Per customer, ``predicted`` is the posterior mean of the expected purchases; ``lower``
      and ``upper`` are the ``(1 - prob) / 2`` and ``(1 + prob) / 2`` quantiles of
      ``n_samples`` simulated futures (the conditional posterior predictive) by the inverted
      CDF: the smallest count whose predictive CDF reaches the level. A discrete interval so
      made holds at least ``prob`` of the mass, often more (a customer with P(0) = 0.97 has
      ``[0, 0]``), so ``interval_coverage`` is conservative; ``coverage`` uses the randomized
      PIT ``u = F(y-) + V (F(y) - F(y-))`` and counts ``|u - 1/2| <= prob / 2``, which is
      about ``prob`` for a calibrated model.
    - The aggregate interval is the central ``prob`` interval of the sum over customers of the
      simulated futures (the customers share each posterior draw).
    - The exact predictive pmf (``probability_of_purchases``) would avoid the simulation but
      costs about 0.6 microseconds per draw, customer and count (28 s for 500 draws of the
      2,357 CDNOW customers and counts 0..39 at one horizon, against 0.3 s to simulate).

    Examples
    --------
    >>> from clvkit.datasets import cdnow_transactions
    >>> bt = rolling_backtest(cdnow_transactions(), origins=["1997-07-02", "1997-10-01"],
    ...                       horizons=[13, 26], fit_kwargs={"method": "map"},
    ...                       n_samples=200, random_seed=0)
    >>> bt.table()[["customers", "total_actual"]]  # doctest: +NORMALIZE_WHITESPACE
                           customers  total_actual
    origin     horizon
    1997-07-02 13.0          2357         709.0
               26.0          2357        1435.0
    1997-10-01 13.0          2357         726.0
               26.0          2357        1386.0
    """
    check_prob(prob)
    random_seed = check_random_seed(random_seed)
    transactions_model = check_fit_model(transactions_model, "purchase", "transactions_model")
    cut = read_cut_log(
        transactions, customer_id=customer_id, date=date, amount=amount, time_unit=time_unit,
        observation_end=observation_end, tz=tz,
    )  # fmt: skip
    dates = check_cutoffs(origins, cut, "origins")
    hs = _horizons(horizons, cut.unit)
    rng = np.random.default_rng(random_seed)
    fit_seeds = rng.integers(0, 2**63, size=len(dates))
    streams = rng.spawn(len(dates))
    base_kwargs = dict(fit_kwargs or {})
    base_kwargs.setdefault("progressbar", False)

    rows, skipped, notes = [], [], []
    predictions: dict[tuple[pd.Timestamp, float], pd.DataFrame] = {}
    fits: dict[pd.Timestamp, Any] = {}
    for i in progress(range(len(dates)), len(dates), progressbar, "rolling backtest"):
        o = dates[i]
        ends = [window_end(o, h, cut.unit) for h in hs]
        valid = [j for j, e in enumerate(ends) if e <= cut.end]
        for j, e in enumerate(ends):
            if j not in valid:
                skipped.append(
                    {"origin": o, "horizon": hs[j], "window_end": e, "reason": "past the log's end"}
                )
        if len(valid) < len(hs):
            late = ", ".join(f"{hs[j]:g}" for j in range(len(hs)) if j not in valid)
            notes.append(
                f"Origin {o.date()}: horizon(s) {late} x {cut.time_unit} skipped: the window "
                f"would end after the log's end ({cut.end.date()})."
                + ("" if valid else " No window left: this origin was not fitted.")
            )
        if not valid:
            continue
        rfm = cut.table(o)
        kwargs = dict(base_kwargs)
        kwargs.setdefault("random_seed", int(fit_seeds[i]))
        model = fit_model(transactions_model, "purchase", rfm, kwargs)
        fits[o] = model
        per, _ = sample_counts(len(rfm), n_samples)
        for j, pair_rng in zip(valid, streams[i].spawn(len(valid)), strict=True):
            e, h = ends[j], hs[j]
            duration = float((e - o) / cut.unit)
            actual = cut.purchase_days(rfm.index, o, e)
            pred = holdout_predictive(
                model, rfm, duration, actual=actual, prob=prob, n_samples=per,
                random_seed=pair_rng,
            )  # fmt: skip
            predictions[(o, h)] = pred
            rows.append({**_row(o, h, e, pred, prob), "n_samples": per})
    if not rows:
        raise ClvkitError(
            "argument 'horizons': no (origin, horizon) window ends on or before the log's end "
            f"({cut.end.date()}). Suggestion: earlier origins or shorter horizons."
        )
    table = pd.DataFrame(rows).set_index(["origin", "horizon"])
    skip = pd.DataFrame(skipped, columns=["origin", "horizon", "window_end", "reason"])
    settings = {
        "transactions_model": transactions_model, "time_unit": cut.time_unit,
        "horizons": hs, "n_origins": len(fits), "prob": prob,
        "n_samples": n_samples,
        "log_end": cut.end, "fit_kwargs": base_kwargs,
    }  # fmt: skip
    return RollingBacktest(table, skip, notes, predictions, fits, settings)


def _horizons(horizons: Any, unit: pd.Timedelta) -> list[float]:
    """Horizons as positive floats in units, increasing and distinct."""
    values = [horizons] if isinstance(horizons, str | int | float | pd.Timedelta) else horizons
    out = [duration_in_units(h, unit, "horizons") for h in values]
    if not out or min(out) <= 0:
        raise ClvkitError(
            f"argument 'horizons' is {horizons!r}: give positive window lengths. Suggestion: "
            "horizons=[13, 26, 39] (time units) or ['13W', '26W']."
        )
    if len(set(out)) < len(out):
        raise ClvkitError(
            f"argument 'horizons' is {horizons!r}, with duplicates. Suggestion: give each once."
        )
    return sorted(out)


def _row(o: pd.Timestamp, h: float, end: pd.Timestamp, pred: pd.DataFrame, prob: float) -> dict:
    """One row of :meth:`RollingBacktest.table` from a :func:`holdout_predictive` table."""
    m = holdout_metrics(pred, levels=(prob,)).loc["purchases"]
    y = pred["actual"].to_numpy()
    inside = (pred["lower"].to_numpy() <= y) & (y <= pred["upper"].to_numpy())
    return {
        "origin": o, "horizon": h, "window_end": end, "customers": len(pred),
        "total_actual": m["total_actual"], "total_predicted": m["total_predicted"],
        "aggregate_error": m["total_predicted"] - m["total_actual"],
        "aggregate_error_pct": m["aggregate_error_pct"], "mae": m["mae"], "rmse": m["rmse"],
        "coverage": m[f"coverage_{round(100 * prob)}"],
        "interval_coverage": float(inside.mean()),
        "total_lower": m["total_lower"], "total_upper": m["total_upper"],
        "total_covered": bool(m["total_lower"] <= m["total_actual"] <= m["total_upper"]),
        "p_total_at_least_actual": m["p_total_at_least_actual"],
    }  # fmt: skip
