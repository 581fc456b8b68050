"""Counterfactual scoring: the customers' value as they are and as if some covariates changed.

Both valuations use the same job: the same paired posterior draws and, with
``method="simulate"``, the same random stream per chunk (chunks are the as-is canonical
order's slices, so every customer sits in the same chunk in both). Customers whose covariates
do not change keep their as-is draws (a difference of exactly 0); the others are valued again.
The difference is taken per draw and customer before any summary, so its interval comes from
the joint draws (not the difference of two intervals). Per-draw totals are exact sums (any
chunking, the same bits).
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import xarray as xr

from clvkit.errors import ClvkitError, bad_rows_error
from clvkit.utils.checks import check_prob
from clvkit.utils.exactsum import ExactSum
from clvkit.value.accumulate import (
    QUANTILE_BLOCK,
    GroupCodes,
    column_quantiles,
    group_codes,
    grouped_sum,
    plain,
)
from clvkit.value.chunks import chunk_streams, kernel_threads, ordered_map, progress
from clvkit.value.engine import check_n_jobs
from clvkit.value.job import RunOptions, ValueJob, prepare_job
from clvkit.value.result import STORED_PROBS
from clvkit.value.settings import CashflowSettings

__all__ = ["CounterfactualValue", "counterfactual_value", "covariate_columns"]

_PARTS = ("as_is", "changed", "difference")


def covariate_columns(spec: Any) -> tuple[str, ...]:
    """The raw covariate and segment columns a model spec reads (empty for a model without
    covariates)."""
    terms = getattr(spec, "terms", None)
    if terms is None:
        return ()
    design = terms.design
    cols = () if design is None else tuple(design.columns)
    return (*cols, *(() if terms.segment is None else (terms.segment,)))


@dataclass
class CounterfactualValue:
    """Result of :func:`counterfactual_value`.

    Attributes
    ----------
    equity, changed_equity, difference : xarray.DataArray
        Total customer equity per draw as is, as if changed, and their difference (changed
        minus as is, summed exactly per draw), dims ``(chain, draw)``.
    group_equity : xarray.DataArray or None
        With ``by``: per group, dims ``(chain, draw, group, part)``, ``part`` in
        ``("as_is", "changed", "difference")``.
    settings : dict
        The resolved settings of the valuation and ``changes`` (the changed columns).
    """

    equity: xr.DataArray
    changed_equity: xr.DataArray
    difference: xr.DataArray
    settings: dict[str, Any]
    _customers: pd.DataFrame
    _quantiles: dict[float, np.ndarray]
    group_equity: xr.DataArray | None = None
    _group_sizes: pd.Series | None = None
    _clv: xr.DataArray | None = field(default=None, repr=False)

    @property
    def clv(self) -> xr.DataArray:
        """CLV draws ``(chain, draw, customer_id, part)`` (``keep_draws=True`` only)."""
        if self._clv is None:
            raise ClvkitError(
                "argument 'keep_draws' was False, so the draws were not kept. Suggestion: "
                "counterfactual_value(..., keep_draws=True) (24 bytes per draw and customer)."
            )
        return self._clv

    def summary(self, prob: float = 0.9) -> pd.DataFrame:
        """Per customer: ``value`` (mean CLV as is), ``value_changed`` (as if changed),
        ``difference`` (mean of the per-draw differences), its central ``prob`` interval
        ``difference_lower``/``difference_upper`` from the joint draws, ``p_gain`` (share of
        draws where the change adds value) and ``changed`` (whether the customer's covariate
        values change). ``prob`` must be one of ``settings["probs"]``."""
        prob = check_prob(prob)
        if prob not in self._quantiles:
            raise ClvkitError(
                f"argument 'prob' is {prob}, but intervals were stored for "
                f"{tuple(sorted(self._quantiles))} only. Suggestion: pass it to "
                f"counterfactual_value(..., probs=(..., {prob}))."
            )
        out = self._customers.copy()
        lo, hi = self._quantiles[prob]
        out.insert(3, "difference_lower", lo)
        out.insert(4, "difference_upper", hi)
        return out

    def total(self, prob: float = 0.9) -> pd.DataFrame:
        """Total equity as is, as if changed, and the difference: mean, median and central
        ``prob`` interval over draws (the difference's from its own per-draw values), and the
        share of draws where the difference is positive."""
        prob = check_prob(prob)
        q = [(1 - prob) / 2, (1 + prob) / 2]
        rows = {}
        for name, arr in zip(
            _PARTS, (self.equity, self.changed_equity, self.difference), strict=True
        ):
            v = arr.values.ravel()
            lo, hi = np.quantile(v, q)
            rows[name] = {"mean": v.mean(), "median": float(np.median(v)), "lower": lo,
                          "upper": hi, "p_positive": float(np.mean(v > 0))}  # fmt: skip
        return pd.DataFrame(rows).T

    def group_table(self, prob: float = 0.9) -> pd.DataFrame:
        """Per group (``by``): customers, equity as is and as if changed (means), the difference
        (mean and central ``prob`` interval from the joint draws) and ``p_gain``."""
        if self.group_equity is None or self._group_sizes is None:
            raise ClvkitError(
                "no groups: the value was computed without 'by'. Suggestion: "
                "counterfactual_value(..., by='segment')."
            )
        prob = check_prob(prob)
        q = [(1 - prob) / 2, (1 + prob) / 2]
        g = self.group_equity
        flat = g.values.reshape(-1, g.sizes["group"], len(_PARTS))
        diff = flat[..., 2]
        out = pd.DataFrame(index=self._group_sizes.index.copy())
        out["customers"] = self._group_sizes.to_numpy()
        out["equity"] = flat[..., 0].mean(axis=0)
        out["equity_changed"] = flat[..., 1].mean(axis=0)
        out["difference"] = diff.mean(axis=0)
        out["difference_lower"], out["difference_upper"] = np.quantile(diff, q, axis=0)
        out["p_gain"] = (diff > 0).mean(axis=0)
        return out


def counterfactual_value(
    purchase_model: Any,
    spend_model: Any,
    rfm: pd.DataFrame,
    changes: Mapping[Hashable, Any] | pd.DataFrame,
    settings: CashflowSettings | None = None,
    *,
    method: Literal["expected", "simulate"] = "expected",
    chunk_size: int | None = None,
    n_jobs: int | None = None,
    random_seed: int | np.random.Generator | None = None,
    keep_draws: bool = False,
    progressbar: bool = False,
    draws: int | None = None,
    probs: tuple[float, ...] = STORED_PROBS,
    by: Hashable | pd.Series | None = None,
    **cashflow: Any,
) -> CounterfactualValue:
    """Value the customers as they are and as if some covariates were different.

    Parameters
    ----------
    purchase_model, spend_model
        As in :func:`clvkit.customer_value`; at least one reads covariates
        (:func:`clvkit.with_covariates`), whose columns are the ones that may change.
    rfm : pandas.DataFrame
        The customer table with the covariate (and segment) columns; not modified.
    changes : mapping or pandas.DataFrame
        Column -> new value: a scalar (every customer) or a Series indexed by customer id (only
        those customers). Or a DataFrame indexed by customer id whose columns replace those of
        ``rfm`` for the customers it lists. Only covariate and segment columns of the models may
        change; a categorical level not seen in the fit is an error (its effect was never
        estimated); a segment not seen in the fit is valued from the population of segments.
    settings, method, chunk_size, n_jobs, random_seed, progressbar, draws, probs, by, cashflow
        As in :func:`clvkit.customer_value` (``probs``: the stored intervals of the per-customer
        difference; ``by``: also totals by group, :meth:`CounterfactualValue.group_table`).
    keep_draws : bool
        Keep the ``(chain, draw, customer_id, part)`` draws as ``result.clv``.

    Returns
    -------
    CounterfactualValue

    Notes
    -----
    The same posterior draws (and pairing) value both tables, so the difference's interval is
    that of the per-draw differences. Customers whose covariate values do not change keep their
    as-is draws (difference exactly 0, also with ``method="simulate"``); the changed customers
    of a chunk are simulated again from the chunk's own random stream (the as-is run's seed).
    """
    flow = CashflowSettings.build(settings, **cashflow)
    options = RunOptions(method, None, None, chunk_size, random_seed, draws, probs)
    n_jobs = check_n_jobs(n_jobs)
    if not isinstance(rfm, pd.DataFrame):
        raise ClvkitError(
            f"argument 'rfm' must be a pandas DataFrame, got {type(rfm).__name__}. "
            "Suggestion: build it with clvkit.rfm_summary and join the covariates by id."
        )
    holder = pd.DataFrame(index=rfm.index[:0])
    holder.attrs = dict(rfm.attrs)
    with kernel_threads(n_jobs) as pmap:
        job = prepare_job(purchase_model, spend_model, holder, flow, options, pmap)
        allowed = tuple(
            dict.fromkeys([*covariate_columns(job.purchase), *covariate_columns(job.spend)])
        )
        moved, changed = changed_table(rfm, changes, allowed)
        as_is = job.customer_table(rfm)
        try:
            other = job.customer_table(moved, "changes")
        except ClvkitError as exc:  # e.g. a level not seen in the fit: say it is the change's
            raise ClvkitError(f"argument 'changes': {exc}") from exc
        groups = None if by is None else group_codes(rfm, by)
        out = _run(job, as_is, other, changed, pmap, n_jobs, keep_draws, progressbar, groups)
    out.settings["changes"] = sorted(map(str, _changed_columns(changes)))
    return out


def _changed_columns(changes: Any) -> list[Hashable]:
    return list(changes.columns) if isinstance(changes, pd.DataFrame) else list(dict(changes))


def changed_table(
    rfm: pd.DataFrame, changes: Any, allowed: tuple[str, ...]
) -> tuple[pd.DataFrame, np.ndarray]:
    """A copy of ``rfm`` with ``changes`` applied (see :func:`counterfactual_value`) and a
    boolean per customer: whether any of its changed values differs."""
    if isinstance(changes, pd.DataFrame):
        frame = changes
        if frame.index.has_duplicates:
            dup = frame.index[frame.index.duplicated()]
            raise bad_rows_error(
                "index of argument 'changes'", "is duplicated", len(dup), plain(dup[0]),
                "one row per customer id",
            )  # fmt: skip
        items = {c: frame[c] for c in frame.columns}
    elif isinstance(changes, Mapping):
        items = dict(changes)
    else:
        raise ClvkitError(
            f"argument 'changes' must be a dict column -> value or a DataFrame indexed by "
            f"customer id, got {type(changes).__name__}. Suggestion: changes={{'channel': 'web'}}."
        )
    if not items:
        raise ClvkitError(
            "argument 'changes' is empty. Suggestion: changes={'channel': 'web'} (a covariate "
            "column and its new value)."
        )
    unknown = [c for c in items if c not in rfm.columns]
    if unknown:
        raise ClvkitError(
            f"argument 'changes' names column(s) {unknown} that 'rfm' does not have; it has "
            f"{list(rfm.columns)}. Suggestion: change covariate columns: {list(allowed)}."
        )
    fixed = [c for c in items if c not in allowed]
    if fixed:
        raise ClvkitError(
            f"argument 'changes' names column(s) {fixed}, which are not covariate or segment "
            f"columns of the models (those are {list(allowed)}). Suggestion: change only "
            "covariates; fit the models with clvkit.with_covariates to value other columns."
        )
    moved = rfm.copy(deep=False)
    differs = np.zeros(len(rfm), dtype=bool)
    for col, value in items.items():
        old = rfm[col]
        new = old.astype(object).copy()
        if isinstance(value, pd.Series):
            extra = ~value.index.isin(rfm.index)
            if extra.any():
                raise bad_rows_error(
                    f"changes of column {col!r}", "name a customer not in 'rfm'",
                    int(extra.sum()), {"customer_id": plain(value.index[np.flatnonzero(extra)[0]])},
                    "index the changes by the ids of 'rfm'", len(value),
                )  # fmt: skip
            new.loc[value.index] = value.astype(object).to_numpy()
        elif np.ndim(value) == 0:
            new[:] = value
        else:
            raise ClvkitError(
                f"argument 'changes' gives column {col!r} a {type(value).__name__}. Suggestion: "
                "a single value, or a pandas Series indexed by customer id."
            )
        new = new.infer_objects()
        differs |= ~(new.astype(object) == old.astype(object)).to_numpy(dtype=bool)
        moved[col] = new
    moved.attrs = dict(rfm.attrs)
    return moved, differs


def _run(
    job: ValueJob,
    as_is: pd.DataFrame,
    other: pd.DataFrame,
    changed: np.ndarray,
    pmap: Any,
    n_jobs: int,
    keep_draws: bool,
    progressbar: bool,
    groups: GroupCodes | None,
) -> CounterfactualValue:
    """Both valuations chunk by chunk (the as-is canonical order for both)."""
    n, S, chunk = len(as_is), job.S, job.chunk
    runs = [job.runner({c: t[c].to_numpy() for c in t.columns}, pmap) for t in (as_is, other)]
    order = job.canonical_order(as_is)
    stream = chunk_streams(job.sim_rng)
    probs = job.probs
    levels = sorted({lv for p in probs for lv in ((1 - p) / 2, (1 + p) / 2)})
    sums = ExactSum(S, len(_PARTS))
    n_g = 0 if groups is None else len(groups.levels)
    group_sums = ExactSum(S, n_g * len(_PARTS)) if groups is not None else None
    stats = {k: np.empty(n) for k in ("value", "value_changed", "difference", "p_gain")}
    quant = {p: np.empty((2, n)) for p in probs}
    kept = np.empty((S, n, len(_PARTS))) if keep_draws else None

    def one(lo: int):
        idx = order[lo : lo + chunk]
        a = runs[0].chunk(idx, stream(lo // chunk))[0]
        moved = changed[idx]  # only these are valued again; the others keep their draws
        b = a.copy()
        if moved.any():
            b[:, moved] = runs[1].chunk(idx[moved], stream(lo // chunk))[0]
        d = b - a
        m = idx.size
        part = ExactSum(S, len(_PARTS))
        stacked = np.concatenate([a, b, d], axis=1)
        part.add_grouped(stacked, np.repeat(np.arange(len(_PARTS)), m), None, pmap)
        gpart = None
        if groups is not None:
            codes = np.concatenate([groups.codes[idx] + j * n_g for j in range(len(_PARTS))])
            gpart = grouped_sum(stacked, codes, n_g * len(_PARTS), None, pmap)
        qs = np.concatenate(
            pmap(
                lambda c: column_quantiles(d[:, c : c + QUANTILE_BLOCK], levels),
                range(0, m, QUANTILE_BLOCK),
            ),
            axis=1,
        ) if m else np.zeros((len(levels), 0))  # fmt: skip
        means = (a.mean(axis=0), b.mean(axis=0), d.mean(axis=0), (d > 0).mean(axis=0))
        return (
            idx,
            part,
            gpart,
            means,
            dict(zip(levels, qs, strict=True)),
            (np.stack([a, b, d], axis=2) if keep_draws else None),
        )

    starts = range(0, n, chunk)
    label = "counterfactual value"
    for idx, part, gpart, means, qs, draws in progress(
        ordered_map(one, starts, n_jobs), len(starts), progressbar, label
    ):
        sums.merge(part)
        if gpart is not None:
            group_sums.merge(gpart)
        for k, v in zip(stats, means, strict=True):
            stats[k][idx] = v
        for p in probs:
            quant[p][0, idx], quant[p][1, idx] = qs[(1 - p) / 2], qs[(1 + p) / 2]
        if kept is not None:
            kept[:, idx] = draws

    coords = job.coords
    shape = (coords["chain"].size, coords["draw"].size)
    totals = sums.result()

    def per_draw(j: int, name: str) -> xr.DataArray:
        return xr.DataArray(
            totals[:, j].reshape(shape), coords=coords, dims=("chain", "draw"), name=name
        )

    ids = as_is.index.copy()
    customers = pd.DataFrame({**stats, "changed": changed}, index=ids)
    group_equity = sizes = None
    if groups is not None:
        g = group_sums.result().reshape(*shape, len(_PARTS), n_g).transpose(0, 1, 3, 2)
        group_equity = xr.DataArray(
            g, dims=("chain", "draw", "group", "part"), name="group_equity",
            coords={**coords, "group": np.asarray(groups.levels, dtype=object), "part": list(_PARTS)},
        )  # fmt: skip
        sizes = pd.Series(
            np.bincount(groups.codes, minlength=n_g),
            index=pd.Index(groups.levels, name=groups.name),
        )
    clv = None
    if kept is not None:
        cid = xr.DataArray(ids.to_numpy(), dims="customer_id")
        clv = xr.DataArray(
            kept.reshape(*shape, n, len(_PARTS)), dims=("chain", "draw", "customer_id", "part"),
            coords={**coords, "customer_id": cid, "part": list(_PARTS)}, name="clv",
        )  # fmt: skip
    settings = {**job.settings, "n_customers": n, "n_changed": int(changed.sum())}
    settings["probs"] = list(probs)
    return CounterfactualValue(
        per_draw(0, "equity"), per_draw(1, "changed_equity"), per_draw(2, "difference"),
        settings, customers, {p: quant[p] for p in probs}, group_equity, sizes, clv,
    )  # fmt: skip
