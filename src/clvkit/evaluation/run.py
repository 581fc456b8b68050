"""The backtest entry point: split a log, fit (or take) the models, compare with the holdout.

:func:`backtest` works for any registered purchase and spend model (see
:mod:`clvkit.models.registry`); the comparisons themselves are in
:mod:`clvkit.evaluation.predictive`, :mod:`clvkit.evaluation.ppc` and
:mod:`clvkit.evaluation.tracking`. Plots of a :class:`BacktestResult` are in
:mod:`clvkit.plots` (e.g. ``plots.plot_tracking(result.tracking)``).
"""

from __future__ import annotations

import os
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from clvkit.data.log_tables import check_log_table
from clvkit.errors import ClvkitError
from clvkit.evaluation.ppc import frequency_ppc
from clvkit.evaluation.predictive import (
    conditional_expectations,
    holdout_metrics,
    holdout_predictive,
)
from clvkit.evaluation.split import HoldoutSplit, split_log
from clvkit.evaluation.tracking import cohort_tracking
from clvkit.models.contract import DATA_TABLES
from clvkit.models.registry import get, spec_of
from clvkit.rng import make_rng
from clvkit.units import format_time_unit
from clvkit.utils.checks import check_prob

__all__ = ["BacktestResult", "backtest", "backtest_split", "fit_model"]

DEFAULT_MODELS = {"purchase": "bgnbd", "spend": "gamma_gamma"}


@dataclass
class BacktestResult:
    """Predicted vs actual on a holdout period; see :func:`backtest`.

    Attributes
    ----------
    customers : pandas.DataFrame
        Per customer (indexed by customer id): calibration summary, actual and predicted holdout
        purchases with the ``prob`` interval and randomized PIT (and revenue when modelled).
    conditional_expectations : pandas.DataFrame
        Mean actual vs predicted holdout purchases by calibration frequency.
    metrics : pandas.DataFrame
        MAE, RMSE, aggregate error, correlation and 50/80/90% coverage.
    frequency_ppc : pandas.DataFrame
        Calibration repeat-purchase histogram, actual vs expected with interval; chi-square in
        ``attrs["chi_square"]`` (with ``dof`` and ``p_value``).
    tracking, retention : pandas.DataFrame
        Per period, see :func:`clvkit.evaluation.tracking.cohort_tracking`.
    calibration_end : float
        Calibration end in time units from the cohort origin.
    time_unit : str
    origin : pandas.Timestamp
        Cohort origin (the earliest first purchase); period ``k`` starts ``k`` units after it.
    rfm : pandas.DataFrame
        The calibration summary with holdout columns (``clvkit.data.calibration_holdout``).
    transactions_model, spend_model
        The fitted models (or posteriors) used.

    Examples
    --------
    Plots take the result's tables (see :mod:`clvkit.plots`):

    >>> from clvkit.datasets import cdnow_transactions
    >>> post = {"r": 0.2426, "alpha": 4.4137, "a": 0.793, "b": 2.4262}  # CDNOW MLE (FHL 2005)
    >>> res = backtest(cdnow_transactions(), calibration_end="1997-09-30",
    ...                observation_end="1998-06-30", transactions_model=post,
    ...                n_samples=200, random_seed=0)
    >>> res.conditional_expectations["n_customers"].tolist()
    [1411, 439, 214, 100, 62, 38, 29, 64]
    >>> from clvkit import plots
    >>> type(plots.plot_tracking(res)).__name__
    'Axes'
    """

    customers: pd.DataFrame
    conditional_expectations: pd.DataFrame
    metrics: pd.DataFrame
    frequency_ppc: pd.DataFrame
    tracking: pd.DataFrame
    retention: pd.DataFrame
    calibration_end: float
    time_unit: str
    origin: pd.Timestamp
    rfm: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)
    transactions_model: Any = field(default=None, repr=False)
    spend_model: Any = field(default=None, repr=False)


#: Simulated (sample x customer) futures the backtest spends on the per-customer predictive
#: distributions and on the cohort bands when ``n_samples`` is not given: the work stays
#: bounded on large bases (samples = budget // customers, within the bounds below).
HOLDOUT_BUDGET = 40_000_000
COHORT_BUDGET = 20_000_000
HOLDOUT_SAMPLES = (250, 2000)
COHORT_SAMPLES = (200, 1000)


def sample_counts(n_customers: int, n_samples: int | None) -> tuple[int, int]:
    """Predictive samples per customer and simulated cohorts of a backtest of ``n_customers``.

    ``n_samples`` given: that many per customer and ``min(n_samples, 1000)`` cohorts. ``None``:
    as many as the budgets allow, 2,000 and 1,000 up to 20,000 customers, then fewer (never
    below 250 and 200: the 5% and 95% quantiles of a 90% band still rest on 10 samples).

    Examples
    --------
    >>> sample_counts(2_357, None), sample_counts(100_000, None), sample_counts(10**7, None)
    ((2000, 1000), (400, 200), (250, 200))
    >>> sample_counts(100_000, 500)
    (500, 500)
    """
    if n_samples is not None:
        if (
            isinstance(n_samples, bool)
            or not isinstance(n_samples, int | np.integer)
            or n_samples < 1
        ):
            raise ClvkitError(
                f"argument 'n_samples' must be a positive integer or None, got {n_samples!r}. "
                "Suggestion: None sizes it to the base."
            )
        return int(n_samples), int(min(n_samples, COHORT_SAMPLES[1]))
    n = max(int(n_customers), 1)
    per = int(np.clip(HOLDOUT_BUDGET // n, *HOLDOUT_SAMPLES))
    cohorts = int(np.clip(COHORT_BUDGET // n, *COHORT_SAMPLES))
    return per, cohorts


def check_unit(obj: Any, unit: str, argument: str) -> None:
    """A fitted model or posterior that records a time unit must use the backtest's unit."""
    if obj is None or isinstance(obj, dict):
        return
    for holder in (obj, getattr(obj, "posterior_", None), getattr(obj, "posterior", None)):
        recorded = getattr(holder, "attrs", {}).get("time_unit") if holder is not None else None
        if recorded:
            if format_time_unit(recorded) != unit:
                raise ClvkitError(
                    f"argument {argument!r} was fitted with time unit {recorded!r}, but the "
                    f"backtest uses {unit!r}. Suggestion: pass time_unit={recorded!r} or refit."
                )
            return


def fit_model(
    name: str, kind: str, rfm: pd.DataFrame, fit_kwargs: dict[str, Any], data: str = "rfm"
) -> Any:
    """Fit the registered ``kind`` model ``name`` on the columns of ``rfm`` it reads (a purchase
    model must read the ``data`` table, see :data:`clvkit.models.contract.DATA_TABLES`; spend
    models read the frequency and spend columns of any of them).

    Examples
    --------
    >>> rfm = pd.DataFrame({"frequency": [0, 2, 5], "recency": [0.0, 8.0, 30.0],
    ...                     "T": [30.0, 35.0, 38.0]})
    >>> rfm.attrs["time_unit"] = "W"
    >>> fit_model("bgnbd", "purchase", rfm, {"method": "map"}).method_
    'map'
    """
    cls = get(name, kind, data if kind == "purchase" else None)
    table = rfm[list(cls.spec.columns)].copy()
    table.attrs = dict(rfm.attrs)
    return cls().fit(table, **fit_kwargs)


def backtest_split(
    split: HoldoutSplit,
    *,
    transactions_model: Any,
    spend_model: Any = None,
    prob: float = 0.9,
    max_frequency: int = 7,
    retention_window: int = 1,
    n_samples: int | None = None,
    random_seed: int | np.random.Generator | None = None,
) -> BacktestResult:
    """Compare fitted models (or posteriors) with the holdout of a :func:`split_log` split.

    Spend is backtested when ``spend_model`` is given and the log has an amount column.
    Parameters as in :func:`backtest`.
    """
    check_prob(prob)
    for name, obj in (("transactions_model", transactions_model), ("spend_model", spend_model)):
        check_unit(obj, split.time_unit, name)
    rng = make_rng(random_seed)
    rfm = split.rfm
    table = DATA_TABLES[spec_of(transactions_model, "purchase", "transactions_model").data]
    per_customer, n_cohorts = sample_counts(len(rfm), n_samples)
    with_spend = spend_model is not None and split.amount is not None
    predicted = holdout_predictive(
        transactions_model,
        rfm,
        rfm[table.holdout].to_numpy(),
        actual=rfm["frequency_holdout"].to_numpy(),
        spend_posterior=spend_model if with_spend else None,
        actual_revenue=(rfm["frequency_holdout"] * rfm["monetary_value_holdout"]).to_numpy()
        if with_spend
        else None,
        prob=prob,
        n_samples=per_customer,
        random_seed=rng,
    )
    keep = [c for c in ("recency", table.age) if c in rfm]
    customers = pd.concat([rfm[keep], predicted], axis=1)
    ce = conditional_expectations(
        rfm["frequency"].to_numpy(), predicted["actual"], predicted["predicted"], max_frequency
    )
    ppc = frequency_ppc(
        transactions_model,
        rfm["frequency"].to_numpy(),
        rfm[table.age].to_numpy(),
        max_frequency=max_frequency,
        prob=prob,
        n_samples=min(per_customer, COHORT_SAMPLES[1]),
        random_seed=rng,
    )
    coh = cohort_tracking(
        transactions_model,
        split.birth,
        split.repeat_customer,
        split.repeat_time,
        horizon=split.horizon,
        window=retention_window,
        prob=prob,
        n_samples=n_cohorts,
        random_seed=rng,
    )
    metrics = holdout_metrics(predicted)
    metrics.attrs |= {"n_samples": per_customer, "n_cohorts": n_cohorts}
    return BacktestResult(
        customers=customers,
        conditional_expectations=ce,
        metrics=metrics,
        frequency_ppc=ppc,
        tracking=coh.tracking,
        retention=coh.retention,
        calibration_end=split.calibration_end,
        time_unit=split.time_unit,
        origin=split.origin,
        rfm=rfm,
        transactions_model=transactions_model,
        spend_model=spend_model,
    )


def backtest(
    transactions: pd.DataFrame | str | os.PathLike,
    *,
    calibration_end: str | pd.Timestamp,
    observation_end: str | pd.Timestamp,
    time_unit: str = "W",
    customer_id: Hashable = "customer_id",
    date: Hashable = "date",
    amount: Hashable | None = None,
    transactions_model: Any = None,
    spend_model: Any = None,
    fit_kwargs: dict[str, Any] | None = None,
    prob: float = 0.9,
    max_frequency: int = 7,
    retention_window: int = 1,
    n_samples: int | None = None,
    random_seed: int | None = None,
    tz: str | None = None,
) -> BacktestResult:
    """Fit on a calibration window and compare predictions with the holdout window.

    Parameters
    ----------
    transactions : pandas.DataFrame, str or os.PathLike
        Purchase log; same-day purchases of a customer merge (amounts summed). A CSV or Parquet
        path or glob is read with :func:`clvkit.data.read_purchases` (the file route).
    calibration_end, observation_end : str or pandas.Timestamp
        Last day of the calibration and of the holdout window (inclusive).
    time_unit : str
        Period length and model time unit (``"W"``, ``"D"``, ``"30D"``...); for a model of
        discrete opportunities (BG/BB, ``ModelSpec.data == "opportunities"``), the opportunity
        period (``"Y"``, ``"Q"``, ``"M"``, ``"W"``...): the log is then summarized with
        :func:`clvkit.opportunity_summary` and times count opportunities.
    customer_id, date, amount : str
        Column names; with ``amount`` the spend model is backtested too.
    transactions_model, spend_model : optional
        Fitted models of any registered kind (or their posterior ``Dataset`` /
        ``InferenceData``, or a dict of parameters) calibrated on this window, or the registry
        name of the model to fit here (``None``: ``"bgnbd"`` and, with ``amount``,
        ``"gamma_gamma"``).
    fit_kwargs : dict, optional
        Passed to ``fit`` (e.g. ``method="map"``, ``draws=500``).
    prob : float
        Mass of the reported intervals and bands.
    max_frequency : int
        Last pooled group of the conditional-expectation and histogram tables.
    retention_window : int
        Periods in the rolling retention window.
    n_samples : int, optional
        Predictive samples per customer (and, up to 1,000, simulated cohorts for the bands).
        Default: sized to the base by :func:`sample_counts` (2,000 per customer and 1,000
        cohorts up to 20,000 customers; 400 and 200 at 100,000), so a large base costs a
        bounded amount of simulation. The numbers used are in ``metrics.attrs``
        (``n_samples``, ``n_cohorts``).
    random_seed : int, optional
    tz : str, optional
        Zone that zoned timestamps are converted to before they are cut to days (IANA name;
        default UTC); naive timestamps are wall-clock times, as in :func:`clvkit.rfm_summary`.

    Returns
    -------
    BacktestResult

    Examples
    --------
    >>> from clvkit.datasets import cdnow_transactions
    >>> post = {"r": 0.2426, "alpha": 4.4137, "a": 0.793, "b": 2.4262}
    >>> res = backtest(cdnow_transactions(), calibration_end="1997-09-30",
    ...                observation_end="1998-06-30", transactions_model=post,
    ...                n_samples=200, random_seed=0)
    >>> int(res.customers["actual"].sum())
    1882
    """
    check_prob(prob)
    models = {"purchase": transactions_model, "spend": spend_model}
    if models["purchase"] is None:
        models["purchase"] = DEFAULT_MODELS["purchase"]
    if models["spend"] is None and amount is not None:
        models["spend"] = DEFAULT_MODELS["spend"]
    specs = {
        kind: get(obj, kind).spec
        if isinstance(obj, str)
        else spec_of(obj, kind, "transactions_model" if kind == "purchase" else "spend_model")
        for kind, obj in models.items()
        if obj is not None
    }  # names and objects checked before the log is read
    spec = specs["purchase"]
    split = split_log(
        transactions, calibration_end=calibration_end, observation_end=observation_end,
        time_unit=time_unit, customer_id=customer_id, date=date, amount=amount, tz=tz,
        data=check_log_table(spec.data, "transactions_model"),
    )  # fmt: skip
    fit_kwargs = dict(fit_kwargs or {})
    if random_seed is not None:
        fit_kwargs.setdefault("random_seed", random_seed)
    for kind, obj in models.items():
        if isinstance(obj, str):
            models[kind] = fit_model(obj, kind, split.rfm, fit_kwargs, spec.data)
    return backtest_split(
        split,
        transactions_model=models["purchase"],
        spend_model=models["spend"],
        prob=prob,
        max_frequency=max_frequency,
        retention_window=retention_window,
        n_samples=n_samples,
        random_seed=random_seed,
    )
