"""Example data: the CDNOW purchase logs and a simulator of the purchase models' processes
(BG/NBD by default, any registered purchase model) with Gamma-Gamma spend.

The CDNOW files ship with the ``lifetimes`` package; they are read from its install directory
(no network). The simulator draws a purchase log from the generative process the models assume,
so parameter recovery can be tested against known truth.
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from clvkit.errors import ClvkitError
from clvkit.units import format_time_unit, parse_date, parse_time_unit

__all__ = [
    "SimulatedLog",
    "cdnow_calibration_summary",
    "cdnow_transactions",
    "donations_summary",
    "simulate",
]


def _lifetimes_datasets_dir() -> str:
    # find_spec locates the package without importing it (lifetimes' import is slow and noisy)
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise ClvkitError(
            "the CDNOW data ship with the 'lifetimes' package, which is not installed. "
            "Suggestion: pip install lifetimes"
        )
    return os.path.join(next(iter(spec.submodule_search_locations)), "datasets")


def cdnow_transactions(sample: bool = True) -> pd.DataFrame:
    """The CDNOW purchase log (music CDs bought from 1997-01-01 to 1998-06-30).

    Parameters
    ----------
    sample : bool
        ``True`` (default): the 1/10 sample of 2,357 customers (6,919 rows) used by Fader,
        Hardie and Lee (2005), with ``customer_id`` 1..2357 matching the rows of
        :func:`cdnow_calibration_summary`. ``False``: the full log of 23,570 customers
        (69,659 rows).

    Returns
    -------
    pandas.DataFrame
        Columns ``customer_id`` (int64), ``date`` (datetime64, day resolution) and ``amount``
        (float64, dollars), one row per purchase record (a customer may have several records on
        one day).

    Examples
    --------
    >>> log = cdnow_transactions()
    >>> log.shape, log["customer_id"].nunique()
    ((6919, 3), 2357)
    >>> log.iloc[0].to_dict()
    {'customer_id': 1, 'date': Timestamp('1997-01-01 00:00:00'), 'amount': 29.33}
    """
    folder = _lifetimes_datasets_dir()
    if sample:
        # columns: master id, sample id (1..2357), yyyymmdd, number of CDs, dollars
        raw = pd.read_csv(
            os.path.join(folder, "CDNOW_sample.txt"),
            sep=r"\s+",
            header=None,
            usecols=[1, 2, 4],
            names=["master_id", "customer_id", "date", "cds", "amount"],
            dtype={"customer_id": "int64", "date": "str", "amount": "float64"},
        )
    else:
        raw = pd.read_csv(
            os.path.join(folder, "CDNOW_master.txt"),
            sep=r"\s+",
            header=0,
            names=["customer_id", "date", "cds", "amount"],
            usecols=["customer_id", "date", "amount"],
            dtype={"customer_id": "int64", "date": "str", "amount": "float64"},
        )
    out = pd.DataFrame(
        {
            "customer_id": raw["customer_id"].to_numpy(dtype=np.int64),
            "date": pd.to_datetime(raw["date"], format="%Y%m%d").to_numpy(dtype="datetime64[ns]"),
            "amount": raw["amount"].to_numpy(dtype=np.float64),
        }
    )
    return out


def cdnow_calibration_summary() -> pd.DataFrame:
    """The published 39-week calibration summary of the CDNOW sample.

    Fader, Hardie and Lee (2005), as shipped by ``lifetimes``
    (``cdnow_customers_summary_with_transactions.csv``): calibration period 1997-01-01 to
    1997-09-30, times in weeks rounded to 0.01, spend rounded to cents.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` (1..2357) with ``frequency`` (int64), ``recency``, ``T``
        and ``monetary_value`` (float64); ``attrs`` hold ``time_unit="W"`` and
        ``observation_end="1997-09-30"``.

    Examples
    --------
    >>> rfm = cdnow_calibration_summary()
    >>> len(rfm), int(rfm["frequency"].sum()), rfm.attrs["time_unit"]
    (2357, 2457, 'W')
    """
    raw = pd.read_csv(
        os.path.join(_lifetimes_datasets_dir(), "cdnow_customers_summary_with_transactions.csv")
    )
    out = pd.DataFrame(
        {
            "frequency": raw["x"].to_numpy(dtype=np.int64),
            "recency": raw["t_x"].to_numpy(dtype=np.float64),
            "T": raw["T"].to_numpy(dtype=np.float64),
            "monetary_value": raw["zbar"].to_numpy(dtype=np.float64),
        },
        index=pd.Index(raw["ID"].to_numpy(dtype=np.int64), name="customer_id"),
    )
    out.attrs = {"time_unit": "W", "observation_end": "1997-09-30"}
    return out


def donations_summary() -> pd.DataFrame:
    """The 1995 donations cohort of Fader, Hardie and Shang (2010), one row per donor.

    11,104 first-time supporters of a nonprofit in 1995 and whether they donated in each of
    the six years 1996-2001 (the BG/BB example; ``donations.csv`` as shipped by ``lifetimes``,
    22 distinct histories with counts, expanded here to one row per donor so the table is a
    customer table like any other; the fit compresses it back to 22 rows).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` (1..11104, in the file's row order) with ``frequency``
        (years with a donation after 1995), ``recency`` (the last such year, 1..6; 0 if none)
        and ``n`` (6), all int64; ``attrs``: ``time_unit="Y"`` (one opportunity a year),
        ``observation_end="2001-12-31"``, ``kind="discrete"``.

    Examples
    --------
    >>> d = donations_summary()
    >>> len(d), int(d["frequency"].sum()), d.attrs["time_unit"]
    (11104, 24615, 'Y')
    """
    raw = pd.read_csv(os.path.join(_lifetimes_datasets_dir(), "donations.csv"))
    count = raw["weights"].to_numpy(dtype=np.int64)
    out = pd.DataFrame(
        {
            "frequency": np.repeat(raw["frequency"].to_numpy(dtype=np.int64), count),
            "recency": np.repeat(raw["recency"].to_numpy(dtype=np.int64), count),
            "n": np.repeat(raw["periods"].to_numpy(dtype=np.int64), count),
        },
        index=pd.Index(np.arange(1, int(count.sum()) + 1, dtype=np.int64), name="customer_id"),
    )
    out.attrs = {"time_unit": "Y", "observation_end": "2001-12-31", "kind": "discrete"}
    return out


@dataclass(frozen=True)
class SimulatedLog:
    """A purchase log drawn by :func:`simulate`, with the latent truth behind it.

    Attributes
    ----------
    transactions : pandas.DataFrame
        ``customer_id``, ``date`` (datetime64: the day, or with ``resolution="exact"`` the
        exact timestamp to the nanosecond) and, when spend parameters were given, ``amount``;
        one row per purchase, sorted by customer then time.
    truth : pandas.DataFrame
        Indexed by ``customer_id``: the model's latent draws (BG/NBD and MBG/NBD: ``lam``,
        purchase rate per time unit, and ``p``, dropout probability after each repeat purchase;
        Pareto/NBD: ``lam`` and ``mu``, the dropout rate; NaN where the process did not draw
        one, e.g. an MBG/NBD customer lost at its first purchase; BG/NBD's ``p`` is then drawn
        from its prior), ``first_purchase`` (date, or timestamp when exact),
        ``first_purchase_time`` and ``death_time`` (continuous, in time units since ``start``;
        ``death_time`` is ``inf`` for customers alive at the observation end), ``alive``,
        ``n_repeat`` (simulated repeat purchases, before same-day merging) and ``nu`` (spend
        rate, when spend parameters were given).
    params : dict
        The population parameters used (the purchase model's, then ``p, q, v``).
    model : str
        Registry name of the purchase model simulated (e.g. ``"bgnbd"``).
    time_unit : str
        Canonical time unit (see :func:`clvkit.units.format_time_unit`).
    start, observation_end : pandas.Timestamp
        First day of the acquisition window and last day observed (inclusive).
    acquisition_periods, observation_periods : float
        Lengths of the acquisition window and of the whole observation, in time units.
    purchase_times : numpy.ndarray
        The exact (continuous) time of each row of :attr:`transactions`, in time units since
        ``start``; :meth:`rfm` with ``exact=True`` summarizes these instead of the dates.
    resolution : str
        ``"day"`` or ``"exact"``: the resolution of the ``date`` column (see :func:`simulate`),
        and the default summary of :meth:`rfm`.

    Examples
    --------
    >>> sim = simulate(200, r=0.25, alpha=4.0, a=0.8, b=2.4, random_seed=0)
    >>> sim.params, sim.time_unit
    ({'r': 0.25, 'alpha': 4.0, 'a': 0.8, 'b': 2.4}, 'W')
    >>> len(sim.truth), bool(len(sim.transactions) == 200 + sim.truth["n_repeat"].sum())
    (200, True)
    >>> str(sim.start.date()), str(sim.observation_end.date()), sim.observation_periods
    ('2020-01-01', '2021-06-29', 78.0)
    """

    transactions: pd.DataFrame
    truth: pd.DataFrame
    params: dict[str, Any] = field(default_factory=dict)
    time_unit: str = "W"
    start: pd.Timestamp = field(default_factory=lambda: pd.Timestamp("2020-01-01"))
    observation_end: pd.Timestamp = field(default_factory=lambda: pd.Timestamp("2020-01-01"))
    acquisition_periods: float = 0.0
    observation_periods: float = 0.0
    purchase_times: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    resolution: str = "day"
    model: str = "bgnbd"

    def rfm(self, calibration_end: Any = None, *, exact: bool | None = None) -> pd.DataFrame:
        """The RFM table of the log, observed up to :attr:`observation_end` in its time unit.

        Use this rather than ``rfm_summary(sim.transactions)``, whose default observation end
        is the last purchase, not the end of the simulated window.

        Parameters
        ----------
        calibration_end : date-like, optional
            If given, :func:`clvkit.data.calibration_holdout` with this calibration end.
        exact : bool, optional
            Default: ``True`` for a log simulated with ``resolution="exact"``, else ``False``.
            ``False``: summarize the log with :func:`clvkit.data.rfm_summary`, as a user's log
            would be (at day resolution, whatever the timestamps),
            so same-day purchases merge into one purchase day (about 1.5% of repeat purchases
            at 0.2 a week, enough to bias the BG/NBD ``alpha`` by several posterior sds at
            50,000 customers). ``True``: the exact continuous-time summary of the simulated
            process, every purchase counted, times from :attr:`purchase_times`: ``T`` runs to
            ``observation_periods``, and a ``calibration_end`` day ends at that day's
            midnight. This is the table the models' likelihood describes; use it to test
            parameter recovery.

        Returns
        -------
        pandas.DataFrame
            Columns and ``attrs`` as in :func:`clvkit.data.rfm_summary` (or
            :func:`clvkit.data.calibration_holdout`), plus ``attrs["exact_times"]`` when exact.

        Examples
        --------
        >>> sim = simulate(500, r=0.5, alpha=2.0, a=1.0, b=3.0, random_seed=0)
        >>> rfm = sim.rfm()
        >>> len(rfm), rfm.attrs["observation_end"] == str(sim.observation_end.date())
        (500, True)
        >>> exact = sim.rfm(exact=True)
        >>> bool((exact["frequency"] == sim.truth["n_repeat"]).all())
        True
        >>> bool(((exact["T"] - rfm["T"]) * 7).between(0, 1).all())  # T on the day grid
        True
        """
        from clvkit.data.summary import summarize_log  # same layer, lazy import

        if exact is None:
            exact = self.resolution == "exact"
        if not isinstance(exact, (bool, np.bool_)):
            raise ClvkitError(
                f"argument 'exact' must be True or False, got {exact!r}. "
                "Suggestion: pass exact=True for the continuous-time summary."
            )
        if exact:
            return self._exact_rfm(calibration_end)
        amount = "amount" if "amount" in self.transactions else None
        # the simulated window is the true observation period: a quiet end is no data gap
        return summarize_log(
            self.transactions,
            customer_id="customer_id",
            date="date",
            amount=amount,
            time_unit=self.time_unit,
            observation_end=self.observation_end,
            calibration_end=calibration_end,
            holdout=calibration_end is not None,
            warn=False,
        )

    def _exact_rfm(self, calibration_end: Any) -> pd.DataFrame:
        """Continuous-time RFM (and holdout) table from :attr:`purchase_times`."""
        log = self.transactions
        times = np.asarray(self.purchase_times, dtype=np.float64)
        if times.shape != (len(log),):
            raise ClvkitError(
                f"this SimulatedLog has {times.size} purchase times for {len(log)} rows, so "
                "its exact summary is unknown. Suggestion: draw it with "
                "clvkit.datasets.simulate, which records them."
            )
        unit_days = parse_time_unit(self.time_unit) / pd.Timedelta(days=1)
        obs = self.observation_periods
        cut = obs
        if calibration_end is not None:
            cal_day = parse_date(calibration_end, "calibration_end").normalize()
            # the calibration period includes the whole calibration_end day
            cut = ((cal_day - self.start) / pd.Timedelta(days=1) + 1.0) / unit_days
            if not 0 < cut < obs:
                raise ClvkitError(
                    f"argument 'calibration_end' ({cal_day.date()}) is not inside the "
                    f"simulated window {self.start.date()} .. {self.observation_end.date()}. "
                    "Suggestion: pass a day in that window, before its last day."
                )
        ids = log["customer_id"].to_numpy(dtype=np.int64)
        n = len(self.truth)
        per = np.bincount(ids, minlength=n)  # rows sorted by customer, then time
        first_pos = np.concatenate(([0], np.cumsum(per)[:-1]))
        t0 = times[first_pos]
        acquired = t0 <= cut
        in_cal = times <= cut
        n_cal = np.bincount(ids, weights=in_cal, minlength=n).astype(np.int64)
        freq = np.maximum(n_cal - 1, 0)
        last = times[first_pos + np.maximum(n_cal - 1, 0)]
        columns: dict[str, Any] = {
            "frequency": freq,
            "recency": np.where(freq > 0, last - t0, 0.0),
            "T": cut - t0,
        }
        if "amount" in log:
            amount = log["amount"].to_numpy(dtype=np.float64)
            spent_cal = np.bincount(ids, weights=np.where(in_cal, amount, 0.0), minlength=n)
            repeat = spent_cal - amount[first_pos]
            columns["monetary_value"] = np.divide(
                repeat, freq, out=np.zeros(n), where=freq > 0
            ).clip(0.0)
        attrs: dict[str, Any] = {
            "time_unit": self.time_unit,
            "observation_end": str(self.observation_end.date()),
            "n_rows_after_observation_end": 0,
            "exact_times": True,
        }
        if calibration_end is not None:
            freq_h = per - n_cal
            columns["frequency_holdout"] = freq_h.astype(np.int64)
            if "amount" in log:
                spent = np.bincount(ids, weights=amount, minlength=n)
                columns["monetary_value_holdout"] = np.divide(
                    spent - spent_cal, freq_h, out=np.zeros(n), where=freq_h > 0
                ).clip(0.0)
            columns["duration_holdout"] = np.full(n, obs - cut)
            attrs["calibration_end"] = str(cal_day.date())
            late = np.flatnonzero(~acquired)  # first purchase after the calibration end
            attrs["late_customers"] = int(late.size)
            attrs["late_customers_example"] = int(late[0]) if late.size else None
        out = pd.DataFrame(columns, index=self.truth.index.copy())[acquired]
        out.attrs = attrs
        return out


def _sort_runs(values: np.ndarray, counts: np.ndarray) -> None:  # pragma: no cover - compiled
    """Sort ``values`` in place within consecutive runs of lengths ``counts``."""
    start = 0
    for i in range(counts.size):
        c = counts[i]
        if c > 1:
            values[start : start + c].sort()
        start += c


_COMPILED: dict[str, Any] = {}


def _sort_runs_compiled() -> Any:
    """:func:`_sort_runs` compiled (on first use, so importing this module needs no numba)."""
    if "sort_runs" not in _COMPILED:
        from clvkit.utils.numba_cache import njit

        _COMPILED["sort_runs"] = njit(nogil=True)(_sort_runs)
    return _COMPILED["sort_runs"]


#: The purchase model :func:`simulate` draws from by default (its keyword form).
DEFAULT_MODEL = "bgnbd"


def _positive(name: str, value: Any) -> float:
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    if not (math.isfinite(x) and x > 0):
        raise ClvkitError(
            f"argument {name!r} must be a positive finite number, got {value!r}. "
            f"Suggestion: pass e.g. {name}=1.0."
        )
    return x


def _purchase_model(
    model: Any, params: Any, keywords: dict[str, Any], time_unit: str | None
) -> tuple[Any, dict[str, float], str | None]:
    """The purchase spec, its parameters (floats, validated) and the model's time unit (if it
    records one) from :func:`simulate`'s ``model``, ``params`` and BG/NBD-style keywords."""
    from clvkit.models import registry  # the models layer, only through its registry

    given = {k: x for k, x in keywords.items() if x is not None}
    unit = None
    if isinstance(model, str):
        spec = registry.get(model, "purchase").spec
    elif isinstance(model, dict):
        model = dict(model)
        name = model.pop("model", None)
        if params is not None:
            raise ClvkitError(
                "arguments 'model' (a dict of parameters) and 'params' were both given. "
                "Suggestion: pass the parameters once, e.g. model='pnbd', params={...}."
            )
        params = model
        if name is not None:
            spec = registry.get(str(name), "purchase").spec
        else:
            spec = registry.spec_of({**params, **given}, "purchase", "model")
    else:  # a fitted model, InferenceData or posterior: the posterior mean of each parameter
        if params is not None or given:
            raise ClvkitError(
                "argument 'model' is a fitted model (or posterior), whose parameters are used; "
                "'params' or parameter keywords were given too. Suggestion: pass one of them."
            )
        spec, post = registry.resolve(model, "purchase", "model")
        unit = post.attrs.get("time_unit") or None
        params = {}
        for k in spec.param_names:
            if post[k].ndim != 2:
                raise ClvkitError(
                    f"argument 'model': parameter {k!r} is not a scalar (dims {post[k].dims}). "
                    "Suggestion: simulate from a model without covariates."
                )
            params[k] = float(post[k].mean())
    params = {**dict(params or {}), **given}
    names = list(spec.param_names)
    extra = sorted(set(params) - set(names))
    missing = [k for k in names if k not in params]
    if extra or missing:
        raise ClvkitError(
            f"the {spec.label} parameters are {names}; "
            + (f"missing {missing}" if missing else "")
            + ("; " if missing and extra else "")
            + (f"unknown {extra}" if extra else "")
            + f". Suggestion: pass params={{{', '.join(f'{k!r}: ...' for k in names)}}}."
        )
    out = {}
    for k in names:
        support = spec.support(k)
        if support == "positive":
            out[k] = _positive(k, params[k])
            continue
        try:
            x = float(params[k])
        except (TypeError, ValueError):
            x = math.nan
        if not math.isfinite(x) or (support == "unit" and not 0 < x < 1):
            raise ClvkitError(
                f"argument {k!r} must be a finite {support} number, got {params[k]!r}. "
                f"Suggestion: check {spec.label}'s parameter {k!r}."
            )
        out[k] = x
    if time_unit is not None and unit is not None:
        if parse_time_unit(time_unit) != parse_time_unit(unit):
            raise ClvkitError(
                f"argument 'time_unit' is {time_unit!r}, but the model was fitted in {unit!r}. "
                f"Suggestion: leave time_unit unset (or pass {unit!r})."
            )
    return spec, out, unit


def simulate(
    n_customers: int,
    *,
    model: Any = DEFAULT_MODEL,
    params: dict[str, float] | None = None,
    r: float | None = None,
    alpha: float | None = None,
    a: float | None = None,
    b: float | None = None,
    p: float | None = None,
    q: float | None = None,
    v: float | None = None,
    start: str | pd.Timestamp = "2020-01-01",
    acquisition_periods: float = 12.0,
    observation_periods: float = 78.0,
    time_unit: str | None = None,
    random_seed: int | np.random.Generator | None = None,
    resolution: str = "day",
) -> SimulatedLog:
    """Draw a purchase log from a purchase model's generative process (+ Gamma-Gamma spend).

    Each customer makes a first purchase at a time uniform over the acquisition window
    ``[start, start + acquisition_periods)``. Its repeat purchases come from the purchase
    model's one generative process (the registered spec's ``simulate``, the one
    ``customer_value(..., method="simulate")`` and the backtest use) for a new customer (an
    empty history at age 0), over its own horizon from its first purchase to ``start +
    observation_periods``. With BG/NBD (the default): while alive, repeat purchases arrive as
    a Poisson process with rate ``lam ~ Gamma(shape r, rate alpha)`` per time unit; right after
    each repeat purchase the customer dies with probability ``p ~ Beta(a, b)``. Pareto/NBD
    (``model="pnbd"``, parameters ``r, alpha, s, beta``): a lifetime ``Exponential(mu)``,
    ``mu ~ Gamma(s, beta)``. MBG/NBD (``model="mbgnbd"``, ``r, alpha, a, b``): BG/NBD whose
    customers may also drop out at the first purchase. With spend parameters, every purchase
    (the first included) costs ``z ~ Gamma(shape p, rate nu)`` with ``nu ~ Gamma(shape q,
    rate v)`` per customer.

    Purchase times are continuous. With ``resolution="day"`` (default) the log keeps dates at
    day resolution, as most purchase logs do; with ``resolution="exact"`` the ``date`` column
    holds the exact timestamps (time of day to the nanosecond). Either way
    :func:`clvkit.data.rfm_summary` works at day resolution (purchase days: the time of day is
    dropped and two purchases on one day merge into one, amounts summed), which biases the
    BG/NBD ``alpha`` and the spend parameters away from the simulator's truth at ten thousand
    customers and more. The exact times are kept in :attr:`SimulatedLog.purchase_times`, and
    ``SimulatedLog.rfm(exact=True)`` (the default of :meth:`SimulatedLog.rfm` for an exact
    log) summarizes them without merging: the continuous recency and ``T`` the models'
    likelihood describes. To check that a fit recovers the truth::

        sim = simulate(10_000, r=0.25, alpha=4.0, a=0.8, b=2.5, p=6.0, q=4.0, v=15.0,
                       resolution="exact", random_seed=1)
        rfm = sim.rfm()  # continuous times, every purchase counted

    The observed window ends on day ``start + observation_periods`` (exclusive), so
    :attr:`SimulatedLog.observation_end` is the last day observed; summarize with
    :meth:`SimulatedLog.rfm`, which passes it on.
    Fully vectorized: cost is linear in the number of purchases (a million customers with ten
    million purchases take a few seconds).

    Parameters
    ----------
    n_customers : int
        Number of customers (ids ``0 .. n_customers - 1``).
    model : str, dict or fitted model
        The purchase model: a registry name (``"bgnbd"``, the default, ``"pnbd"``,
        ``"mbgnbd"``; see :func:`clvkit.models.registry.names`) with its parameters in
        ``params`` (or as keywords), a dict of parameters (with a ``"model"`` key naming the
        model, else the model is found by the parameter names), or a fitted purchase model
        (or its ``InferenceData`` / posterior), simulated at its posterior mean (the point
        estimate of an MLE or MAP fit) and in its time unit.
    params : dict, optional
        Parameter name -> value of ``model`` (e.g. ``{"r": 0.55, "alpha": 10.6, "s": 0.61,
        "beta": 11.7}`` for Pareto/NBD).
    r, alpha, a, b : float, optional
        The BG/NBD (or MBG/NBD) parameters as keywords: ``r, alpha`` Gamma shape and rate of
        the purchase rate (in purchases per ``time_unit``), ``a, b`` Beta parameters of the
        dropout probability. Keywords and ``params`` may be mixed; a keyword the model does
        not have is an error.
    p, q, v : float, optional
        Gamma-Gamma spend parameters; all three or none (no ``amount`` column then).
    start : str or pandas.Timestamp
        First day of the acquisition window.
    acquisition_periods : float
        Length of the acquisition window, in time units.
    observation_periods : float
        Length from ``start`` to the end of observation, in time units
        (at least ``acquisition_periods``).
    time_unit : str, optional
        Time unit of the rates and lengths, e.g. ``"W"`` or ``"D"``. Default: the fitted
        model's time unit, else ``"W"``.
    random_seed : int or numpy.random.Generator, optional
        Seed or generator; the only source of randomness.
    resolution : {"day", "exact"}
        Resolution of the ``date`` column: the day (default), or the exact simulated time
        (then :meth:`SimulatedLog.rfm` summarizes the exact times by default). The draws are
        the same for one seed either way.

    Returns
    -------
    SimulatedLog

    Examples
    --------
    >>> sim = simulate(1000, r=0.25, alpha=4.0, a=0.8, b=2.4, p=6.0, q=4.0, v=15.0,
    ...                random_seed=1)
    >>> list(sim.transactions.columns)
    ['customer_id', 'date', 'amount']
    >>> sim.truth["first_purchase"].max() < pd.Timestamp("2020-03-25")  # 12 weeks
    True
    >>> str(sim.observation_end.date()), sim.time_unit
    ('2021-06-29', 'W')

    Another purchase model, by its registry name and parameters:

    >>> pn = simulate(500, model="pnbd", params={"r": 0.55, "alpha": 10.6, "s": 0.6,
    ...                                          "beta": 11.7}, random_seed=2)
    >>> pn.model, list(pn.truth.columns[:3])
    ('pnbd', ['lam', 'mu', 'first_purchase'])
    """
    if isinstance(n_customers, bool) or not isinstance(n_customers, (int, np.integer)):
        raise ClvkitError(
            f"argument 'n_customers' must be an integer, got {n_customers!r}. "
            "Suggestion: pass e.g. n_customers=1000."
        )
    n = int(n_customers)
    if n < 1:
        raise ClvkitError(
            f"argument 'n_customers' must be at least 1, got {n}. "
            "Suggestion: pass e.g. n_customers=1000."
        )
    spec, purchase, fitted_unit = _purchase_model(
        model, params, {"r": r, "alpha": alpha, "a": a, "b": b}, time_unit
    )
    spend = [x is not None for x in (p, q, v)]
    if any(spend) and not all(spend):
        raise ClvkitError(
            "arguments 'p', 'q', 'v' (Gamma-Gamma spend) must be given together; got "
            f"p={p!r}, q={q!r}, v={v!r}. Suggestion: pass all three, or none for a log "
            "without amounts."
        )
    with_spend = all(spend)
    if with_spend:
        p, q, v = (_positive(k, x) for k, x in (("p", p), ("q", q), ("v", v)))
    acq = _positive("acquisition_periods", acquisition_periods)
    obs = _positive("observation_periods", observation_periods)
    if obs < acq:
        raise ClvkitError(
            f"argument 'observation_periods' ({obs}) is shorter than 'acquisition_periods' "
            f"({acq}). Suggestion: observation_periods counts from start, so it must be at "
            "least the acquisition window."
        )
    if resolution not in ("day", "exact"):
        raise ClvkitError(
            f"argument 'resolution' must be 'day' or 'exact', got {resolution!r}. Suggestion: "
            "resolution='exact' for timestamps with the time of day."
        )
    unit = format_time_unit(time_unit or fitted_unit or "W")
    unit_days = parse_time_unit(unit) / pd.Timedelta(days=1)
    start_ts = parse_date(start, "start")
    start_ts = start_ts.normalize()
    from clvkit.rng import make_rng

    rng = make_rng(random_seed)

    # First purchases uniform over the acquisition window; then each customer's future from its
    # first purchase through the model's one generative process (an empty history at age 0,
    # over a horizon of its own), read back as repeat purchases, death times and latent draws.
    t0 = rng.uniform(0.0, acq, size=n)  # first purchase, units since start
    window = obs - t0
    draws = {k: np.array([[val]]) for k, val in purchase.items()}
    future = spec.simulate(draws, spec.new_customer_columns(n), window, rng)
    n_repeat = np.zeros(n, dtype=np.int64)
    owners, offsets = [], []
    for batch in future.batches:
        n_repeat[batch.customer] = batch.count
        owners.append(np.repeat(batch.customer, batch.count))
        offsets.append(batch.times)
    # the units alive at the first purchase (every customer, unless the model may drop one out
    # right then: MBG/NBD), in customer order; the others die at their first purchase
    cust = future.alive_customer
    tau = np.zeros(n)
    tau[cust] = future.death
    latent = {}
    for key, val in future.latent.items():  # e.g. lam and p (BG/NBD), lam and mu (Pareto/NBD)
        latent[key] = np.full(n, np.nan)
        latent[key][cust] = val
    if spec.name == DEFAULT_MODEL and "p" in latent:
        # BG/NBD's p only matters after a purchase, so the process draws it only then; it is
        # independent of everything else for the others: draw it from its prior for the truth
        missing = np.isnan(latent["p"])
        latent["p"][missing] = rng.beta(purchase["a"], purchase["b"], size=int(missing.sum()))
    alive = ~np.isfinite(tau)
    death_time = np.where(alive, np.inf, t0 + tau)
    owner = np.concatenate(owners) if owners else np.empty(0, dtype=np.int64)
    offset = np.concatenate(offsets) if offsets else np.empty(0)
    # each customer's purchases in time order
    if owner.size and np.any(np.diff(owner) < 0):  # not grouped by customer: sort the pairs
        pairs = np.sort(owner + 1j * offset)  # by real, then imaginary part: exact
        owner, offset = pairs.real.astype(np.int64), pairs.imag
    else:  # grouped in customer order (as BG/NBD's batches are): sort within each customer
        offset = offset.copy()
        _sort_runs_compiled()(offset, n_repeat)
    total = int(n_repeat.sum())
    repeat_time = t0[owner] + offset

    # All purchases, customer by customer in time order: the first one, then the repeats.
    per = n_repeat + 1
    first_pos = np.concatenate(([0], np.cumsum(per)[:-1]))
    is_first = np.zeros(n + total, dtype=bool)
    is_first[first_pos] = True
    times = np.empty(n + total)
    times[first_pos] = t0
    times[~is_first] = repeat_time
    ids = np.repeat(np.arange(n, dtype=np.int64), per)
    last_day = math.ceil(obs * unit_days) - 1
    days = np.minimum(np.floor(times * unit_days).astype(np.int64), last_day)
    origin = np.datetime64(start_ts.date(), "D")
    if resolution == "exact":  # the simulated instant, to the nanosecond
        unit_ns = parse_time_unit(unit).value
        stamps = origin.astype("datetime64[ns]") + np.round(times * unit_ns).astype(
            "timedelta64[ns]"
        )
    else:
        stamps = (origin + days).astype("datetime64[ns]")
    columns: dict[str, Any] = {"customer_id": ids, "date": stamps}
    truth: dict[str, Any] = {
        **latent,
        "first_purchase": stamps[first_pos],
        "first_purchase_time": t0,
        "death_time": death_time,
        "alive": alive,
        "n_repeat": n_repeat,
    }
    params: dict[str, Any] = dict(purchase)
    if with_spend:
        nu = rng.gamma(q, 1.0 / v, size=n)
        columns["amount"] = rng.standard_gamma(p, size=n + total) / nu[ids]
        truth["nu"] = nu
        params.update(p=p, q=q, v=v)
    return SimulatedLog(
        transactions=pd.DataFrame(columns),
        truth=pd.DataFrame(truth, index=pd.Index(np.arange(n, dtype=np.int64), name="customer_id")),
        params=params,
        time_unit=unit,
        start=start_ts,
        observation_end=start_ts + pd.Timedelta(days=last_day),
        acquisition_periods=acq,
        observation_periods=obs,
        purchase_times=times,
        resolution=resolution,
        model=spec.name,
    )
