"""Predicted vs actual retention: the contractual backtest.

A contractual purchase model (a "purchase" is a renewal payment; default the sBG, ``"sbg"``)
is fitted (or taken) on the contract summary at the calibration end
(:func:`clvkit.data.contract_split.contract_calibration_holdout`) and compared, period by
period after the calibration end, with what its subscribers did next. Everything goes through
the model contract and the registry:

- holdout period ``k`` ends ``k`` periods after the calibration end (calendar periods on the
  calendar, like renewals); a subscriber is **active at period k** when it has paid every
  renewal due by then (``m_k`` of them, on its own renewal grid);
- expected active count, per draw: ``sum_i P(alive at T + t_ik)`` from
  :meth:`PurchaseSpec.probability_alive` (``t_ik``: the periods from the calibration end to
  the end of period ``k`` on customer ``i``'s grid) -> its posterior mean and credible band;
- predictive band: futures drawn with :meth:`PurchaseSpec.simulate` (one per predictive
  sample and customer, over the whole holdout); a simulated customer is active at ``k`` when
  it paid at least ``m_k`` renewals; counted per sample;
- per customer: holdout renewals vs :meth:`PurchaseSpec.expected_purchases` over the holdout
  (MAE) and the randomized PIT of the simulated counts (coverage of the central interval);
- the retention-rate curve by tenure: a new subscriber's ``P(alive)`` at each renewal, against
  the rate observed among the calibration subscribers (censoring at the observation end).
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from clvkit.data.contract_split import contract_calibration_holdout, period_ends, renewals_due
from clvkit.errors import ClvkitError
from clvkit.evaluation.common import (
    CELLS,
    draw_index,
    model_draws,
    randomized_pit,
)
from clvkit.evaluation.run import check_unit
from clvkit.models.contract import n_draws, take, take_draws
from clvkit.models.registry import get, spec_of
from clvkit.rng import make_rng
from clvkit.utils.checks import check_prob

if TYPE_CHECKING:
    from clvkit.value.subscriptions import SubscriberValue

__all__ = [
    "RetentionBacktest",
    "retention_backtest",
    "retention_backtest_split",
    "subscriber_base_value",
]

ALL = "all"
# t is compared with renewal times on a day grid (at least 1/366 period apart): a tiny step
# past each period's end keeps a renewal due exactly then from being lost to rounding
_GUARD = 1e-9
#: Default cap on the posterior draws of :func:`subscriber_base_value` (its simulated futures
#: cost draws x active subscribers).
VALUE_DRAWS = 1000
#: ... and on the draws of its simulated futures (each draw: one future of every subscriber).
PREDICTIVE_DRAWS = 200
_HOLDOUT = ("renewals_holdout", "churned_holdout", "duration_holdout")


@dataclass
class RetentionBacktest:
    """Predicted vs actual retention; see :func:`retention_backtest`.

    Attributes
    ----------
    periods : pandas.DataFrame
        Indexed by ``(cohort, period)`` (cohorts sorted, then ``"all"``; periods ``1..K``):
        ``period_end`` (date), ``n_customers`` (the cohort's calibration subscribers),
        ``active_start`` (active at the calibration end), ``actual`` (active at the period's
        end), ``expected`` / ``lower`` / ``upper`` (posterior mean and credible band of the
        expected count), ``pred_lower`` / ``pred_upper`` (predictive band of the count),
        ``covered`` (actual inside the predictive band, ends included), ``pit`` (randomized
        PIT of the actual count under the predictive samples), ``actual_rate`` /
        ``predicted_rate`` / ``rate_lower`` / ``rate_upper`` (retention in the period: active
        at its end over active at its start; predicted per draw from the expected counts).
    customers : pandas.DataFrame
        Per subscriber active at the calibration end: ``cohort``, ``renewals``, ``actual``
        (holdout renewals), ``predicted`` (posterior mean of the expected renewals), ``lower``
        / ``upper`` (predictive interval) and ``pit`` (randomized).
    tenure : pandas.DataFrame
        Indexed by tenure ``t = 1..``: ``at_risk`` and ``actual_rate`` (share of subscribers
        who paid renewal ``t - 1`` and were observed through ``t`` that paid ``t``, at the
        observation end; ``at_risk_calibration``, ``calibration_rate`` at the calibration
        end) and the model's retention rate of a new subscriber ``predicted_rate``, ``lower``,
        ``upper`` (credible band).
    metrics : pandas.Series
        ``cells``, ``covered_cells``, ``coverage`` (predictive band, cohort x period cells;
        a band of counts holds at least its mass, more for small counts),
        ``randomized_coverage`` (share of cells with ``|pit - 1/2| <= prob / 2``: the
        coverage without that discreteness, ``prob`` for a calibrated model),
        ``credible_coverage``, ``mae`` and ``pit_coverage`` (per customer), ``rate_bias``
        (mean predicted minus actual overall retention rate, in points), ``n_customers``,
        ``n_active``.
    verdict : str
        The result in words.
    table : pandas.DataFrame
        The calibration/holdout table it was computed on.
    model
        The fitted model (or posterior) used.
    prob : float
    time_unit, calibration_end, observation_end : str
    """

    periods: pd.DataFrame
    customers: pd.DataFrame
    tenure: pd.DataFrame
    metrics: pd.Series
    verdict: str
    table: pd.DataFrame = field(repr=False)
    model: Any = field(repr=False)
    prob: float = 0.9
    time_unit: str = ""
    calibration_end: str = ""
    observation_end: str = ""


def _contract_model(model: Any, table: pd.DataFrame, fit_kwargs: dict[str, Any]) -> Any:
    """The registered purchase model ``model`` fitted on ``table``, or ``model`` itself when it
    is already fitted (or a posterior), checked for the table's period."""
    if isinstance(model, str):
        cls = get(model, "purchase", "contracts")  # a contractual model, else a ClvkitError
        fit_table = table[list(cls.spec.columns)].copy()
        fit_table.attrs = dict(table.attrs)
        return cls().fit(fit_table, **fit_kwargs)
    spec = spec_of(model, "purchase", "model")
    if spec.data != "contracts":
        raise ClvkitError(
            f"argument 'model' is a {spec.label} model, which reads {spec.data!r} tables, not "
            "contracts. Suggestion: a contractual model such as 'sbg'."
        )
    check_unit(model, table.attrs["time_unit"], "model")
    return model


def _check_table(table: Any) -> None:
    if not isinstance(table, pd.DataFrame):
        raise ClvkitError(
            f"argument 'table' must be a pandas DataFrame, got {type(table).__name__}. "
            "Suggestion: build it with clvkit.contract_calibration_holdout(...)."
        )
    missing = [c for c in ("cohort", "start", "renewals", "churned", "age", *_HOLDOUT)
               if c not in table.columns]  # fmt: skip
    attrs = [
        a for a in ("calibration_end", "observation_end", "time_unit") if not table.attrs.get(a)
    ]
    if missing or attrs:
        raise ClvkitError(
            f"argument 'table' lacks columns {missing} / attrs {attrs}. Suggestion: build it "
            "with clvkit.contract_calibration_holdout(contracts, period, calibration_end, "
            "observation_end)."
        )


def _group_rows(t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distinct rows of ``t`` (n, K) and each row's group."""
    uniq, inverse = np.unique(t, axis=0, return_inverse=True)
    return uniq, inverse.ravel()


def _expected_counts(spec, params, cols, t, codes, n_cohorts):
    """Per draw, cohort and period: ``sum_i P(alive at T + t_ik)`` -> (S, C, K); customers
    with equal ``t`` rows and equal ``value_key`` are computed once."""
    S, K = n_draws(params), t.shape[1]
    out = np.zeros((S, n_cohorts, K))
    tv, group = _group_rows(t)
    for g in range(tv.shape[0]):
        m = np.flatnonzero(group == g)
        key = np.asarray(spec.value_key(take(cols, m)), dtype=np.float64).reshape(m.size, -1)
        _, first, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
        weight = np.zeros((first.size, n_cohorts))
        np.add.at(weight, (inv.ravel(), codes[m]), 1.0)
        sub = take(cols, m[first])
        step = max(1, CELLS // max(first.size * K, 1))
        for lo in range(0, S, step):
            p = spec.probability_alive(take_draws(params, slice(lo, lo + step)), sub, tv[g])
            out[lo : lo + step] += np.einsum("suk,uc->sck", p, weight)
    return out


def _expected_renewals(spec, params, cols, dur):
    """Posterior mean of each customer's expected purchases over its own ``dur``."""
    out = np.zeros(dur.size)
    S = n_draws(params)
    for d in np.unique(dur):
        m = np.flatnonzero(dur == d)
        key = np.asarray(spec.value_key(take(cols, m)), dtype=np.float64).reshape(m.size, -1)
        _, first, inv = np.unique(key, axis=0, return_index=True, return_inverse=True)
        sub = take(cols, m[first])
        tot = np.zeros(first.size)
        step = max(1, CELLS // max(first.size, 1))
        for lo in range(0, S, step):
            sp = take_draws(params, slice(lo, lo + step))
            tot += spec.expected_purchases(sp, sub, np.array([d]))[..., 0].sum(axis=0)
        out[m] = tot[inv.ravel()] / S
    return out


def _rates(counts: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Retention per period from counts (..., K) and the count at the start (...,)."""
    prev = np.concatenate([start[..., None], counts[..., :-1]], axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(prev > 0, counts / np.where(prev > 0, prev, 1.0), np.nan)


def _tenure(spec, params, table: pd.DataFrame, prob: float) -> pd.DataFrame:
    """Retention rate by tenure: observed (calibration subscribers, at the observation end and
    at the calibration end) and predicted for a new subscriber (a credible band)."""
    n_obs = (table["renewals"] + table["renewals_holdout"]).to_numpy(np.int64)
    ch_obs = table["churned_holdout"].to_numpy(bool)
    n_cal = table["renewals"].to_numpy(np.int64)
    ch_cal = table["churned"].to_numpy(bool)
    top = int(n_obs.max()) + 1
    t = np.arange(1, top + 1)

    def observed(n, ch):
        # paid renewal t: n >= t; at risk: paid t - 1, less the active ones with n == t - 1
        reached = np.cumsum(np.bincount(n, minlength=top + 1)[::-1])[::-1]  # #(n >= j)
        censored = np.bincount(n[~ch], minlength=top + 1)
        at_risk = reached[t - 1] - censored[t - 1]
        paid = np.append(reached, 0)[t]
        with np.errstate(invalid="ignore", divide="ignore"):
            return at_risk, np.where(at_risk > 0, paid / np.maximum(at_risk, 1), np.nan)

    risk, rate = observed(n_obs, ch_obs)
    risk_c, rate_c = observed(n_cal, ch_cal)
    # a new subscriber pays renewal k at k periods: alive just after it is S(k)
    new = spec.new_customer_columns(1)
    surv = spec.probability_alive(params, new, np.arange(0, top + 1) + 0.5)[:, 0, :]
    with np.errstate(invalid="ignore", divide="ignore"):
        r = surv[:, 1:] / surv[:, :-1]
    lo, hi = (1 - prob) / 2, (1 + prob) / 2
    out = pd.DataFrame(
        {
            "at_risk": risk.astype(np.int64),
            "actual_rate": rate,
            "at_risk_calibration": risk_c.astype(np.int64),
            "calibration_rate": rate_c,
            "predicted_rate": r.mean(axis=0),
            "lower": np.quantile(r, lo, axis=0),
            "upper": np.quantile(r, hi, axis=0),
        },
        index=pd.Index(t, name="tenure"),
    )
    out.attrs["prob"] = prob
    return out


def _verdict(periods: pd.DataFrame, metrics: pd.Series, prob: float, unit: str) -> str:
    pct = f"{prob:.0%}"
    cells, hit = int(metrics["cells"]), int(metrics["covered_cells"])
    allp = periods.loc[ALL]
    K = int(allp.index.max())
    last = allp.loc[K]
    gap = (allp["predicted_rate"] - allp["actual_rate"]) * 100
    worst = int(gap.abs().idxmax())
    bias = float(metrics["rate_bias"])
    word = "over" if bias > 0 else "under"
    parts = [
        f"The model's {pct} predictive band covers the actual active count in {hit} of {cells} "
        f"cohort-periods ({hit / cells:.0%}; {metrics['randomized_coverage']:.0%} with the "
        f"band's ends randomized, where a calibrated model gives {pct}).",
        f"After {K} periods ({unit}) {int(last['actual']):,} of the {int(last['active_start']):,} "
        f"subscribers active at the calibration end are still active; predicted "
        f"{last['expected']:,.0f} ({pct} predictive {last['pred_lower']:,.0f} to "
        f"{last['pred_upper']:,.0f}).",
        f"Retention per period is {word}-predicted by {abs(bias):.1f} points on average "
        f"(largest gap {gap.loc[worst]:+.1f} points in period {worst}).",
        f"Per subscriber, holdout renewals are predicted with a mean absolute error of "
        f"{metrics['mae']:.2f}; {metrics['pit_coverage']:.0%} fall inside their {pct} "
        "predictive interval.",
    ]
    return " ".join(parts)


def retention_backtest_split(
    table: pd.DataFrame,
    *,
    model: Any = "sbg",
    method: str = "nuts",
    prob: float = 0.9,
    n_samples: int = 1000,
    random_seed: int | np.random.Generator | None = None,
    fit_kwargs: dict[str, Any] | None = None,
) -> RetentionBacktest:
    """The retention backtest on a table of :func:`clvkit.contract_calibration_holdout`.

    Parameters as in :func:`retention_backtest`.
    """
    check_prob(prob)
    _check_table(table)
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 2:
        raise ClvkitError(
            f"argument 'n_samples' is {n_samples!r}. Suggestion: an integer >= 2, e.g. 1000."
        )
    rng = make_rng(random_seed)
    unit = table.attrs["time_unit"]
    cal_end, obs_end = table.attrs["calibration_end"], table.attrs["observation_end"]
    ends = period_ends(cal_end, obs_end, unit)
    if not ends:
        raise ClvkitError(
            f"argument 'observation_end' is {obs_end}, less than one period ({unit}) after "
            f"calibration_end {cal_end}. Suggestion: a later observation end."
        )
    K = len(ends)
    fit_kw = {"method": method, "random_seed": int(rng.integers(2**31 - 1)), **(fit_kwargs or {})}
    if fit_kw["method"] == "nuts":
        fit_kw.setdefault("progressbar", False)
    model = _contract_model(model, table, fit_kw)
    spec, params = model_draws(model, "purchase", "model")

    active = ~table["churned"].to_numpy(bool)
    act = table.loc[active]
    if act.empty:
        raise ClvkitError(
            f"argument 'table' has no subscriber active at calibration_end {cal_end}. "
            "Suggestion: a later calibration end."
        )
    cols = spec.customer_columns(act, "table")
    codes, cohorts = pd.factorize(act["cohort"], sort=True)
    C = cohorts.size
    n_all = table.groupby("cohort", sort=True).size().reindex(cohorts).to_numpy()
    due, age = renewals_due(act["start"].to_numpy(), unit, ends)
    n = act["renewals"].to_numpy(np.int64)
    m = due - n[:, None]  # renewals due in the holdout by each period's end
    t = age - act["age"].to_numpy()[:, None] + _GUARD
    y = act["renewals_holdout"].to_numpy(np.int64)
    alive = y[:, None] >= m  # (n, K)
    actual = np.zeros((C, K))
    np.add.at(actual, codes, alive.astype(float))
    start = np.bincount(codes, minlength=C).astype(float)

    # expected counts per draw (credible band)
    E = _expected_counts(spec, params, cols, t, codes, C)  # (S, C, K)
    # predictive: simulated futures over the holdout, counted per sample
    S = n_draws(params)
    idx = draw_index(S, n_samples, rng)
    sim = take_draws(params, idx)
    M = idx.size
    dur = act["duration_holdout"].to_numpy(np.float64) + _GUARD
    P = np.zeros((M, C, K))
    lo_q, hi_q = (1 - prob) / 2, (1 + prob) / 2
    pit = np.zeros(len(act))
    lower, upper = np.zeros(len(act)), np.zeros(len(act))
    step = max(1, CELLS // (M * K))
    for lo in range(0, len(act), step):
        sl = np.arange(lo, min(len(act), lo + step))
        counts = np.zeros((M, sl.size))
        future = spec.simulate(sim, take(cols, sl), dur[sl], rng)
        for batch in future.batches:
            counts[batch.draw, batch.customer] = batch.count
        pit[sl] = randomized_pit(counts, y[sl].astype(float), rng)
        lower[sl], upper[sl] = np.quantile(counts, [lo_q, hi_q], axis=0, method="inverted_cdf")
        on = counts[:, :, None] >= m[sl][None, :, :]  # (M, n, K)
        flat = (np.arange(M)[:, None] * C + codes[sl][None, :]).ravel()
        for k in range(K):
            P[:, :, k] += np.bincount(flat, weights=on[:, :, k].ravel(), minlength=M * C).reshape(
                M, C
            )
    predicted = _expected_renewals(spec, params, cols, dur)

    # tables: cohorts, then all
    def block(a_c, e_c, p_c, s_c):  # actual (K,), expected (S, K), predictive (M, K), start
        e_rate = _rates(e_c, np.full(e_c.shape[0], s_c))
        pred_q = np.quantile(p_c, [lo_q, hi_q], axis=0, method="inverted_cdf")
        return {
            "actual": a_c,
            "expected": e_c.mean(axis=0),
            "lower": np.quantile(e_c, lo_q, axis=0),
            "upper": np.quantile(e_c, hi_q, axis=0),
            "pred_lower": pred_q[0],
            "pred_upper": pred_q[1],
            "pit": randomized_pit(p_c, a_c, rng),
            "actual_rate": _rates(a_c, np.array(s_c)),
            "predicted_rate": np.nanmean(e_rate, axis=0) if s_c > 0 else np.full(K, np.nan),
            "rate_lower": np.quantile(e_rate, lo_q, axis=0),
            "rate_upper": np.quantile(e_rate, hi_q, axis=0),
        }

    frames = []
    labels = [*map(str, cohorts), ALL]
    sizes = [*n_all, len(table)]
    for i, label in enumerate(labels):
        if label == ALL:
            b = block(actual.sum(0), E.sum(1), P.sum(1), start.sum())
            s0 = start.sum()
        else:
            b = block(actual[i], E[:, i], P[:, i], start[i])
            s0 = start[i]
        f = pd.DataFrame(b)
        f.insert(0, "active_start", int(s0))
        f.insert(0, "n_customers", int(sizes[i]))
        f.insert(0, "period_end", [d.date().isoformat() for d in ends])
        f.insert(0, "period", np.arange(1, K + 1))
        f.insert(0, "cohort", label)
        f["covered"] = (f["pred_lower"] <= f["actual"]) & (f["actual"] <= f["pred_upper"])
        frames.append(f)
    periods = pd.concat(frames, ignore_index=True)
    periods = periods[
        ["cohort", "period", "period_end", "n_customers", "active_start", "actual", "expected",
         "lower", "upper", "pred_lower", "pred_upper", "covered", "pit", "actual_rate",
         "predicted_rate", "rate_lower", "rate_upper"]
    ].set_index(["cohort", "period"])  # fmt: skip
    for c in ("actual", "pred_lower", "pred_upper"):
        periods[c] = periods[c].astype(np.int64)
    cells = periods.drop(index=ALL, level="cohort")
    in_cred = (cells["lower"] <= cells["actual"]) & (cells["actual"] <= cells["upper"])
    in_rand = np.abs(cells["pit"] - 0.5) <= prob / 2
    allp = periods.loc[ALL]
    customers = pd.DataFrame(
        {
            "cohort": act["cohort"].to_numpy(),
            "renewals": n,
            "actual": y,
            "predicted": predicted,
            "lower": lower.astype(np.int64),
            "upper": upper.astype(np.int64),
            "pit": pit,
        },
        index=act.index.copy(),
    )
    metrics = pd.Series(
        {
            "cells": len(cells),
            "covered_cells": int(cells["covered"].sum()),
            "coverage": float(cells["covered"].mean()),
            "randomized_coverage": float(in_rand.mean()),
            "credible_coverage": float(in_cred.mean()),
            "mae": float(np.abs(predicted - y).mean()),
            "pit_coverage": float((np.abs(pit - 0.5) <= prob / 2).mean()),
            "rate_bias": float((allp["predicted_rate"] - allp["actual_rate"]).mean() * 100),
            "n_customers": len(table),
            "n_active": len(act),
        },
        dtype=object,
    )
    tenure = _tenure(spec, params, table, prob)
    periods.attrs.update({"prob": prob, "time_unit": unit})
    return RetentionBacktest(
        periods=periods,
        customers=customers,
        tenure=tenure,
        metrics=metrics,
        verdict=_verdict(periods, metrics, prob, unit),
        table=table,
        model=model,
        prob=prob,
        time_unit=unit,
        calibration_end=cal_end,
        observation_end=obs_end,
    )


def retention_backtest(
    contracts: pd.DataFrame | str | os.PathLike,
    period: str = "M",
    calibration_end: Any = None,
    observation_end: Any = None,
    *,
    model: Any = "sbg",
    method: str = "nuts",
    prob: float = 0.9,
    n_samples: int = 1000,
    random_seed: int | np.random.Generator | None = None,
    fit_kwargs: dict[str, Any] | None = None,
    customer_id_col: Hashable = "customer_id",
    start_col: Hashable = "start",
    end_col: Hashable = "end",
    tz: str | None = "UTC",
) -> RetentionBacktest:
    """Predicted vs actual retention: fit on the contracts to ``calibration_end``, compare the
    periods after it, per cohort and overall.

    Parameters
    ----------
    contracts : pandas.DataFrame or path
        Contracts as for :func:`clvkit.contract_summary` (a frame, or CSV/Parquet files read
        with DuckDB: the same result).
    period : str
        Billing period (``"M"``, ``"Q"``, ``"Y"``, multiples, or ``"4W"``, ``"30D"``...).
    calibration_end, observation_end : date
        Last day of calibration and of the holdout (default: the latest date in the table).
    model : str or fitted model
        A registered contractual purchase model by name (fitted here on the calibration
        summary; default ``"sbg"``), or a fitted model / posterior in the same period.
    method : {"nuts", "laplace", "map", "mle"}
        Fit method when ``model`` is a name.
    prob : float
        Mass of every band (credible and predictive).
    n_samples : int
        Predictive samples (posterior draws subsampled or cycled), one simulated future each.
    random_seed : int or numpy.random.Generator, optional
        Seeds the fit and the predictive samples.
    fit_kwargs : dict, optional
        More arguments of the model's ``fit`` (``chains``, ``draws``, ``tune``...).
    customer_id_col, start_col, end_col, tz
        As :func:`clvkit.contract_summary`.

    Returns
    -------
    RetentionBacktest
        Tables ``periods`` (per cohort and overall, per holdout period), ``customers``,
        ``tenure``, ``metrics`` and the ``verdict`` in words.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> life = rng.geometric(rng.beta(1.0, 3.0, 400))  # periods paid
    >>> start = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 360, 400), "D")
    >>> end = [s + pd.DateOffset(months=int(k)) for s, k in zip(start, life)]
    >>> c = pd.DataFrame({"customer_id": range(400), "start": start,
    ...                   "end": [e if e <= pd.Timestamp("2024-12-31") else None for e in end]})
    >>> res = retention_backtest(c, "M", "2024-06-30", "2024-12-31", method="map",
    ...                          random_seed=0, n_samples=200)
    >>> res.periods.loc["all"].shape[0], res.metrics["cells"] > 0
    (6, True)
    """
    table = contract_calibration_holdout(
        contracts, period, calibration_end, observation_end, customer_id_col=customer_id_col,
        start_col=start_col, end_col=end_col, tz=tz,
    )  # fmt: skip
    return retention_backtest_split(
        table, model=model, method=method, prob=prob, n_samples=n_samples,
        random_seed=random_seed, fit_kwargs=fit_kwargs,
    )  # fmt: skip


def subscriber_base_value(
    contracts: pd.DataFrame | str | os.PathLike,
    period: str = "M",
    observation_end: Any = None,
    *,
    fee_col: Hashable = "fee",
    model: Any = "sbg",
    method: str = "nuts",
    fit_kwargs: dict[str, Any] | None = None,
    horizon: Any = "10Y",
    annual_discount_rate: float = 0.1,
    margin: float = 1.0,
    points: float = 0.01,
    prob: float = 0.9,
    draws: int | None = None,
    predictive: bool = True,
    predictive_draws: int | None = None,
    random_seed: int | np.random.Generator | None = None,
    progressbar: bool = False,
    customer_id_col: Hashable = "customer_id",
    start_col: Hashable = "start",
    end_col: Hashable = "end",
    tz: str | None = "UTC",
) -> SubscriberValue:
    """The value of the subscriber base at ``observation_end``: the model fitted on ALL the
    contracts to that date, then :func:`clvkit.subscriber_value` (equity of the active
    subscribers with credible and predictive intervals, value and DERL by tenure, retention
    elasticity).

    Parameters
    ----------
    contracts, period, observation_end, customer_id_col, start_col, end_col, tz
        As :func:`clvkit.contract_summary`.
    fee_col : str
        The contracts' fee column (each subscriber pays its last contract's fee).
    model, method, fit_kwargs
        As :func:`retention_backtest` (a name is fitted here with ``random_seed``; a fitted
        model must be in the same period).
    horizon, annual_discount_rate, margin, points, prob, predictive
        As :func:`clvkit.subscriber_value`.
    draws : int, optional
        Posterior draws valued, evenly spaced; default every draw up to :data:`VALUE_DRAWS`.
    predictive_draws : int, optional
        Draws of the simulated futures (the predictive interval); default every draw up to
        :data:`PREDICTIVE_DRAWS` (their cost grows with draws x active subscribers).
    random_seed : int or numpy.random.Generator, optional
        Seeds the fit and the simulated futures.
    progressbar : bool
        Progress of the simulation on stderr.

    Returns
    -------
    SubscriberValue
        With ``settings["observation_end"]`` and the fitted ``model``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> life = rng.geometric(rng.beta(1.0, 3.0, 400))
    >>> start = pd.Timestamp("2023-01-01") + pd.to_timedelta(rng.integers(0, 360, 400), "D")
    >>> end = [s + pd.DateOffset(months=int(k)) for s, k in zip(start, life)]
    >>> c = pd.DataFrame({"customer_id": range(400), "start": start, "fee": 10.0,
    ...                   "end": [e if e <= pd.Timestamp("2024-12-31") else None for e in end]})
    >>> v = subscriber_base_value(c, "M", "2024-12-31", method="map", random_seed=0)
    >>> s = v.summary()
    >>> list(s.index), bool(s.loc["elasticity", "lower"] > 0)
    (['equity', 'equity_predictive', 'equity_gain', 'elasticity'], True)
    """
    from clvkit.data.contracts import contract_summary
    from clvkit.value.subscriptions import subscriber_value

    summary = contract_summary(
        contracts, period, observation_end, customer_id_col=customer_id_col,
        start_col=start_col, end_col=end_col, fee_col=fee_col, tz=tz,
    )  # fmt: skip
    kw = dict(fit_kwargs or {}) | {"method": method, "random_seed": random_seed}
    fitted = _contract_model(model, summary, kw)
    available = n_draws(model_draws(fitted, "purchase", "model")[1])
    if draws is None:
        draws = min(VALUE_DRAWS, available)
    if predictive_draws is None:
        predictive_draws = min(PREDICTIVE_DRAWS, available)
    out = subscriber_value(
        fitted, summary, horizon=horizon, annual_discount_rate=annual_discount_rate,
        margin=margin, points=points, prob=prob, draws=draws, predictive=predictive,
        predictive_draws=predictive_draws, random_seed=random_seed, progressbar=progressbar,
    )  # fmt: skip
    out.settings["observation_end"] = str(summary.attrs.get("observation_end", ""))
    out.model = fitted
    return out
