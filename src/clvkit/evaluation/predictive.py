"""Per-customer holdout predictions: predictive intervals, PIT, conditional expectations, metrics.

Everything goes through the model contract (:mod:`clvkit.models.contract`), so it works for
any registered purchase and spend model:

- the prediction is the posterior mean of :meth:`PurchaseSpec.expected_purchases` over the
  holdout window, over all draws;
- intervals and PIT values come from the conditional posterior predictive: for each of
  ``n_samples`` posterior draws (resampled when there are fewer draws) each customer's future
  is simulated with :meth:`PurchaseSpec.simulate` (latent state from its conditional posterior
  given the history, then the generative process over the customer's holdout length);
- holdout revenue is the sum of the simulated purchases' spends, drawn with
  :meth:`SpendSpec.sample_spend` (for Gamma-Gamma, ``X`` purchases of ``Gamma(p, nu)`` spend
  sum to ``Gamma(p X, nu)``);
- coverage of a discrete count uses the randomized PIT ``u = F(y-) + V (F(y) - F(y-))`` with
  ``V ~ Uniform(0, 1)``, so the mass points do not inflate it; a central ``c`` interval covers
  when ``|u - 1/2| <= c / 2``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvkit.errors import ClvkitError
from clvkit.evaluation.common import (
    CELLS,
    LEVELS,
    draw_index,
    model_draws,
    randomized_pit,
    same_length,
)
from clvkit.models.contract import n_draws, take, take_draws
from clvkit.rng import make_rng
from clvkit.utils.checks import check_prob

__all__ = ["conditional_expectations", "holdout_metrics", "holdout_predictive"]


def holdout_predictive(
    transactions_posterior: Any,
    customers: pd.DataFrame,
    duration: np.ndarray | float,
    *,
    actual: np.ndarray,
    spend_posterior: Any = None,
    actual_revenue: np.ndarray | None = None,
    prob: float = 0.9,
    n_samples: int = 2000,
    random_seed: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Per-customer predicted holdout purchases (and revenue) with intervals and PIT values.

    Parameters
    ----------
    transactions_posterior : fitted purchase model, InferenceData, posterior Dataset or dict
        Draws of any registered purchase model (looked up in :mod:`clvkit.models.registry`).
    customers : pandas.DataFrame
        Calibration table with the columns the purchase model reads (``frequency``,
        ``recency``, ``T`` for BG/NBD) and, with ``spend_posterior``, those of the spend model
        (``monetary_value`` for Gamma-Gamma).
    duration : numpy.ndarray or float
        Holdout length of each customer in time units.
    actual : numpy.ndarray
        Observed holdout purchases.
    spend_posterior : optional
        Draws of a registered spend model; with ``actual_revenue`` adds the revenue columns.
    actual_revenue : numpy.ndarray, optional
        Observed holdout revenue.
    prob : float
        Mass of the reported central predictive interval.
    n_samples : int
        Predictive samples per customer (posterior draws subsampled or cycled).
    random_seed : int or numpy.random.Generator, optional

    Returns
    -------
    pandas.DataFrame
        ``frequency`` (when ``customers`` has it), ``actual``, ``predicted`` (posterior mean of
        the conditional expectation, over all draws), ``lower``, ``upper``, ``pit``
        (randomized), and with spend ``actual_revenue``, ``predicted_revenue``,
        ``revenue_lower``, ``revenue_upper``, ``revenue_pit``.

    Examples
    --------
    >>> post = {"r": 0.2426, "alpha": 4.4137, "a": 0.793, "b": 2.4262}
    >>> cust = pd.DataFrame({"frequency": [0, 5], "recency": [0.0, 30.0], "T": [38.0, 38.0]})
    >>> tab = holdout_predictive(post, cust, 39.0, actual=np.array([0, 4]), random_seed=1)
    >>> tab["predicted"].round(3).tolist()
    [0.198, 2.827]
    """
    check_prob(prob)
    rng = make_rng(random_seed)
    spec, params = model_draws(transactions_posterior, "purchase", "transactions_posterior")
    if not isinstance(customers, pd.DataFrame):
        raise ClvkitError(
            f"argument 'customers' must be a pandas DataFrame, got {type(customers).__name__}. "
            f"Suggestion: pass the calibration table with columns {list(spec.columns)}."
        )
    cols = spec.customer_columns(customers, "customers")
    n = len(customers)
    y = np.asarray(actual, dtype=np.float64)
    same_length(n, actual=y)
    dur = np.asarray(duration, dtype=np.float64)
    if dur.ndim:
        same_length(n, duration=dur)
    dur = np.broadcast_to(dur, (n,))
    with_spend = spend_posterior is not None
    if with_spend:
        if actual_revenue is None:
            raise ClvkitError(
                "argument 'actual_revenue' is needed with 'spend_posterior'. Suggestion: pass "
                "the observed holdout revenue or drop spend_posterior."
            )
        sspec, sparams = model_draws(spend_posterior, "spend", "spend_posterior")
        scols = sspec.customer_columns(customers, "customers")
        y_rev = np.asarray(actual_revenue, dtype=np.float64)
        same_length(n, actual_revenue=y_rev)
    S = n_draws(params)
    idx = draw_index(S, n_samples, rng)
    sim_params = take_draws(params, idx)
    M = idx.size
    lo_q, hi_q = (1 - prob) / 2, (1 + prob) / 2
    names = ["predicted", "lower", "upper", "pit"]
    if with_spend:
        gidx = draw_index(n_draws(sparams), n_samples, rng)  # independent pairing
        sim_sparams = take_draws(sparams, gidx)
        names += ["predicted_revenue", "revenue_lower", "revenue_upper", "revenue_pit"]
    out_cols = {k: np.zeros(n) for k in names}
    totals = np.zeros((2, M))  # predictive draws of the holdout totals (purchases, revenue)
    # posterior mean of the conditional expectation: all customers per block of draws, once
    # per distinct value_key row (customers with equal rows have equal predictions)
    for d in np.unique(dur):  # one holdout length in the usual split
        m = np.flatnonzero(dur == d)
        key = np.asarray(spec.value_key(take(cols, m)), dtype=np.float64).reshape(m.size, -1)
        _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
        sub_cols = take(cols, m[first])
        total = np.zeros(first.size)
        d_step = max(1, CELLS // max(first.size, 1))
        for lo in range(0, S, d_step):
            sub = {k: v[lo : lo + d_step] for k, v in params.items()}
            ep = spec.expected_purchases(sub, sub_cols, np.array([d]))[..., 0]
            total += ep.sum(axis=0)
        out_cols["predicted"][m] += total[inverse.ravel()]
    out_cols["predicted"] /= S
    step = max(1, CELLS // max(S, M))
    for lo in range(0, n, step):
        sl = np.arange(lo, min(n, lo + step))
        sub_cols = take(cols, sl)
        counts = np.zeros((M, sl.size))
        rev = np.zeros((M, sl.size)) if with_spend else None
        if with_spend:
            sub_scols = take(scols, sl)
        future = spec.simulate(sim_params, sub_cols, dur[sl], rng)
        for batch in future.batches:
            counts[batch.draw, batch.customer] = batch.count
            if with_spend:
                spend = sspec.sample_spend(
                    sim_sparams, sub_scols, batch.draw, batch.customer, batch.count, rng
                )
                units = np.bincount(batch.owner, weights=spend, minlength=batch.count.size)
                rev[batch.draw, batch.customer] = units
        qs = np.quantile(counts, [lo_q, hi_q], axis=0, method="inverted_cdf")
        out_cols["lower"][sl], out_cols["upper"][sl] = qs
        out_cols["pit"][sl] = randomized_pit(counts, y[sl], rng)
        totals[0] += counts.sum(axis=1)
        if with_spend:
            mean_spend = sspec.expected_spend(sparams, sub_scols).mean(axis=0)
            # spend and purchase counts are independent given the history
            out_cols["predicted_revenue"][sl] = out_cols["predicted"][sl] * mean_spend
            rq = np.quantile(rev, [lo_q, hi_q], axis=0)
            totals[1] += rev.sum(axis=1)
            out_cols["revenue_lower"][sl], out_cols["revenue_upper"][sl] = rq
            out_cols["revenue_pit"][sl] = randomized_pit(rev, y_rev[sl], rng)
    out = pd.DataFrame(index=customers.index.copy())
    if "frequency" in customers:
        out["frequency"] = customers["frequency"].to_numpy().astype(np.int64)
    out["actual"] = y
    for k in ("predicted", "lower", "upper", "pit"):
        out[k] = out_cols[k]
    if with_spend:
        out["actual_revenue"] = y_rev
        for k in ("predicted_revenue", "revenue_lower", "revenue_upper", "revenue_pit"):
            out[k] = out_cols[k]
    out.attrs["prob"] = prob
    out.attrs["model"] = spec.name
    out.attrs["total_draws"] = totals if with_spend else totals[:1]
    return out


def conditional_expectations(
    frequency: np.ndarray, actual: np.ndarray, predicted: np.ndarray, max_frequency: int = 7
) -> pd.DataFrame:
    """Mean actual and predicted holdout purchases by calibration frequency (0..max, max+).

    Parameters
    ----------
    frequency : numpy.ndarray
        Calibration repeat purchases per customer.
    actual, predicted : numpy.ndarray
        Holdout purchases and their predicted means.
    max_frequency : int
        Last group, which pools ``frequency >= max_frequency``.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``"0", ..., "7+"`` with ``n_customers``, ``actual``, ``predicted``.

    Examples
    --------
    >>> conditional_expectations(np.array([0, 0, 9]), np.array([1, 0, 5]),
    ...                          np.array([0.5, 0.5, 6.0]), max_frequency=2)  # doctest: +NORMALIZE_WHITESPACE
                           n_customers  actual  predicted
    calibration_frequency
    0                                2     0.5        0.5
    1                                0     NaN        NaN
    2+                               1     5.0        6.0
    """
    if max_frequency < 1:
        raise ClvkitError(
            f"argument 'max_frequency' must be >= 1, got {max_frequency}. Suggestion: use 7."
        )
    g = np.minimum(np.asarray(frequency, dtype=np.int64), max_frequency)
    k = max_frequency + 1
    counts = np.bincount(g, minlength=k)
    with np.errstate(invalid="ignore", divide="ignore"):
        act = np.bincount(g, weights=np.asarray(actual, float), minlength=k) / counts
        pred = np.bincount(g, weights=np.asarray(predicted, float), minlength=k) / counts
    labels = [str(i) for i in range(max_frequency)] + [f"{max_frequency}+"]
    return pd.DataFrame(
        {"n_customers": counts, "actual": act, "predicted": pred},
        index=pd.Index(labels, name="calibration_frequency"),
    )


def holdout_metrics(table: pd.DataFrame, levels: tuple[float, ...] = LEVELS) -> pd.DataFrame:
    """Error, correlation and interval coverage of a :func:`holdout_predictive` table.

    Returns
    -------
    pandas.DataFrame
        Rows ``purchases`` (and ``revenue``), columns ``mae``, ``rmse``, ``total_actual``,
        ``total_predicted``, ``aggregate_error_pct`` (predicted minus actual, in % of actual),
        ``correlation`` (Pearson) and ``coverage_50``, ... (share of randomized PITs inside the
        central interval); for a :func:`holdout_predictive` table (its ``attrs["total_draws"]``)
        also the total's central predictive interval ``total_lower``, ``total_upper`` and
        ``p_total_at_least_actual`` (share of predictive draws of the total >= the actual).

    Examples
    --------
    >>> tab = pd.DataFrame({"actual": [0.0, 2.0], "predicted": [0.5, 1.5], "pit": [0.5, 0.99]})
    >>> holdout_metrics(tab, levels=(0.5,)).loc["purchases", ["mae", "coverage_50"]].tolist()
    [0.5, 0.5]
    """
    rows = {}
    pairs = [("purchases", "actual", "predicted", "pit")]
    if "revenue_pit" in table:
        pairs.append(("revenue", "actual_revenue", "predicted_revenue", "revenue_pit"))
    for name, a_col, p_col, pit_col in pairs:
        y = table[a_col].to_numpy(float)
        f = table[p_col].to_numpy(float)
        u = table[pit_col].to_numpy(float)
        err = f - y
        row = {
            "mae": float(np.abs(err).mean()),
            "rmse": float(np.sqrt((err**2).mean())),
            "total_actual": float(y.sum()),
            "total_predicted": float(f.sum()),
            "aggregate_error_pct": float(100 * (f.sum() - y.sum()) / y.sum())
            if y.sum()
            else np.nan,
            "correlation": float(np.corrcoef(f, y)[0, 1]) if y.std() and f.std() else np.nan,
        }
        for lev in levels:
            row[f"coverage_{round(100 * lev)}"] = float((np.abs(u - 0.5) <= lev / 2).mean())
        total = table.attrs.get("total_draws")
        if total is not None and len(total) > len(rows):  # the total's predictive draws
            prob = table.attrs.get("prob", 0.9)
            t = np.asarray(total[len(rows)])
            lo_t, hi_t = np.quantile(t, [(1 - prob) / 2, (1 + prob) / 2])
            row["total_lower"], row["total_upper"] = float(lo_t), float(hi_t)
            row["p_total_at_least_actual"] = float(np.mean(t >= y.sum()))
        rows[name] = row
    return pd.DataFrame.from_dict(rows, orient="index")
