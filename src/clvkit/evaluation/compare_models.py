"""Which purchase model to trust: one ranked table over fitted models on the same customers.

:func:`compare` takes fitted purchase models (any registered ones: everything goes through the
model contract and the registry) and a calibration table, and returns a :class:`Comparison`:

- **PSIS-LOO** of the calibration data per customer (:func:`clvkit.inference.loo.psis_loo`):
  ``elpd_loo``, its ``se``, the difference to the best model and its standard error (paired,
  from the pointwise values: ``sqrt(n var(d_i))``), ``p_loo`` and the customers whose Pareto k
  exceeds :func:`clvkit.inference.loo.k_threshold`. Customers with equal rows have equal
  log-likelihood draws, so each distinct row is computed and smoothed once, with its count;
- **weights**: stacking and pseudo-BMA (Bayesian bootstrap) from the pointwise elpd;
- with a holdout (``frequency_holdout`` and ``duration_holdout`` columns, as
  :func:`clvkit.calibration_holdout` writes them): the **log predictive score** of each
  customer's holdout count, ``log mean_s P_s(X = x_holdout | history)`` over the customer's own
  holdout window (the contract's ``probability_of_purchases``), its difference to the best with
  a paired standard error, and, from :func:`clvkit.evaluation.predictive.holdout_predictive` and
  :func:`~clvkit.evaluation.predictive.holdout_metrics` (the backtest's own computation): MAE,
  the holdout total (predicted mean, central predictive interval, actual, P(total >= actual))
  and the per-customer randomized-PIT interval coverage;
- **words** (:func:`clvkit.evaluation.compare_words.comparison_words`): which model the data
  favour and by how many standard errors, when a difference is within noise, and the
  aggregate calibration next to the per-customer one.

:func:`compare_log` splits a log (:func:`clvkit.evaluation.split.split_log`), fits the named
models on the calibration window and compares them.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from clvkit.errors import ClvkitError, ClvkitWarning, bad_rows_error
from clvkit.evaluation.common import CELLS
from clvkit.evaluation.compare_words import comparison_words, readable
from clvkit.evaluation.predictive import holdout_metrics, holdout_predictive
from clvkit.evaluation.run import check_unit, fit_model, sample_counts
from clvkit.evaluation.split import split_log
from clvkit.inference.loo import (
    Loo,
    pseudo_bma_weights,
    psis_loo_blocks,
    stacking_weights,
)
from clvkit.models.registry import flat_params, get, names, resolve
from clvkit.rng import make_rng
from clvkit.utils.checks import check_prob

__all__ = ["Comparison", "compare", "compare_log"]

HOLDOUT_COLUMNS = ("frequency_holdout", "duration_holdout")


@dataclass
class Comparison:
    """Models compared on the same customers; see :func:`compare`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per model (indexed by the names given), ranked by ``elpd_loo`` (best first):
        ``label``, ``rank``, ``elpd_loo``, ``se``, ``elpd_diff``, ``diff_se``, ``p_loo``,
        ``n_high_k``, ``weight_stacking``, ``weight_pseudo_bma``; with a holdout also
        ``log_score``, ``log_score_diff``, ``log_score_diff_se``, ``mae``,
        ``total_predicted``, ``total_lower``, ``total_upper``, ``total_actual``,
        ``p_total_at_least_actual`` and ``coverage`` (per-customer randomized-PIT coverage of
        the central ``prob`` intervals). ``attrs``: ``prob``, ``k_threshold``,
        ``n_customers``, ``n_distinct`` and, with a holdout, ``n_samples``.
    loo : dict
        :class:`clvkit.inference.loo.Loo` per model (on the distinct customer rows).
    pointwise : pandas.DataFrame
        Per customer (indexed as the table given) and model: the LOO ``elpd_i``.
    log_scores : pandas.DataFrame or None
        Per customer and model: the holdout log predictive score (``None`` without holdout).
    words : list of str
        The comparison in sentences
        (:func:`~clvkit.evaluation.compare_words.comparison_words`).
    prob : float
    """

    table: pd.DataFrame
    loo: dict[str, Loo] = field(repr=False)
    pointwise: pd.DataFrame = field(repr=False)
    log_scores: pd.DataFrame | None = field(repr=False)
    words: list[str]
    prob: float

    def summary(self) -> str:
        """The table (numbers as people read them) and the words, as printable text.

        Examples
        --------
        >>> t = pd.DataFrame({"label": ["A", "B"], "rank": [1, 2], "elpd_loo": [-100.0, -103.0],
        ...                   "se": [10.0, 10.0], "elpd_diff": [0.0, 3.0],
        ...                   "diff_se": [0.0, 2.5], "p_loo": [2.0, 3.0], "n_high_k": [0, 0],
        ...                   "weight_stacking": [0.7, 0.3], "weight_pseudo_bma": [0.8, 0.2]},
        ...                  index=["a", "b"])
        >>> c = Comparison(t, {}, pd.DataFrame(), None, comparison_words(t), 0.9)
        >>> print(c.summary().splitlines()[-2])
        - The data do not separate A and B: |Δelpd| = 3.0 < 2 se (2 x 2.5 = 5.0).
        >>> print(c.summary().splitlines()[-1])
        - Stacking weights: A 0.70, B 0.30; pseudo-BMA weights: A 0.80, B 0.20.
        """
        shown = readable(self.table)
        return shown.to_string() + "\n\n" + "\n".join(f"- {w}" for w in self.words)


# ---------------------------------------------------------------------------------------------
# the computation
# ---------------------------------------------------------------------------------------------
def _labels(specs: Mapping[str, Any], names: Sequence[str]) -> list[str]:
    """Each model's label for the words and plots: the spec's label, with the name given to the
    model added where two models share a label (two fits of one model read apart)."""
    labels = [str(specs[k].label) for k in names]
    return [
        f"{lb} ({k})" if labels.count(lb) > 1 else lb for lb, k in zip(labels, names, strict=True)
    ]


def _models(models: Any) -> dict[str, Any]:
    """``{name: model}`` from a mapping, or from a sequence (named by each spec's ``name``)."""
    if isinstance(models, Mapping):
        out = {str(k): v for k, v in models.items()}
    elif isinstance(models, Sequence) and not isinstance(models, str):
        out = {}
        for i, m in enumerate(models):
            spec, _ = resolve(m, "purchase", f"models[{i}]")
            if spec.name in out:
                raise ClvkitError(
                    f"argument 'models' holds two {spec.label} models. Suggestion: pass a dict "
                    "{name: model} to compare fits of one model."
                )
            out[spec.name] = m
    else:
        raise ClvkitError(
            f"argument 'models' must be a dict of fitted purchase models (or a list of them), "
            f"got {type(models).__name__}. Suggestion: compare({{'bgnbd': fit1, 'other': "
            "fit2}, rfm)."
        )
    if len(out) < 2:
        raise ClvkitError(
            f"argument 'models' holds {len(out)} model; a comparison needs at least 2. "
            f"Suggestion: fit another registered purchase model ({names('purchase', 'rfm')})."
        )
    return out


def _paired(pointwise: np.ndarray, counts: np.ndarray, best: int) -> tuple[np.ndarray, np.ndarray]:
    """Differences of the totals to model ``best`` and their paired standard errors, over the
    ``counts``-weighted rows of ``pointwise`` ``(m, K)`` (ArviZ's ``sqrt(n var(d_i))``)."""
    d = pointwise[:, [best]] - pointwise  # (m, K)
    n = counts.sum()
    diff = counts @ d
    var = counts @ (d - diff / n) ** 2 / n
    return diff, np.sqrt(n * var)


def _log_scores(spec: Any, params: dict, cols: dict, dur: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``log mean_s P_s(X = y_i | history)`` over each row's window ``dur_i``, one
    ``probability_of_purchases`` call per distinct count, in blocks of draws and rows."""
    S = next(iter(params.values())).shape[0]
    out = np.empty(y.size)
    for k in np.unique(y):
        rows = np.flatnonzero(y == k)
        step = max(1, CELLS // S)
        for lo in range(0, rows.size, step):
            r = rows[lo : lo + step]
            sub = {c: v[r] for c, v in cols.items()}
            total = np.zeros(r.size)
            d_step = max(1, CELLS // r.size)
            for dlo in range(0, S, d_step):
                p = {n: v[dlo : dlo + d_step] for n, v in params.items()}
                total += spec.probability_of_purchases(p, sub, dur[r], np.array([k]))[..., 0].sum(
                    axis=0
                )
            with np.errstate(divide="ignore"):
                out[r] = np.log(total / S)
    return out


def compare(
    models: Mapping[str, Any] | Sequence[Any],
    rfm: pd.DataFrame,
    *,
    prob: float = 0.9,
    n_samples: int | None = None,
    random_seed: int | np.random.Generator | None = 0,
) -> Comparison:
    """Rank fitted purchase models on the same customers: PSIS-LOO, weights and the holdout.

    Parameters
    ----------
    models : dict or list
        ``{name: fitted purchase model}`` (or posterior ``Dataset`` / ``InferenceData``; any
        registered model, each with posterior draws: NUTS or Laplace), or a list of fitted
        models named by their spec's ``name``. At least two.
    rfm : pandas.DataFrame
        The calibration table the models were fitted on. With ``frequency_holdout`` and
        ``duration_holdout`` (a :func:`clvkit.calibration_holdout` table) the holdout is
        scored too.
    prob : float
        Mass of the total's predictive interval and of the per-customer coverage.
    n_samples : int, optional
        Predictive samples per customer for the holdout intervals, the PIT and the total
        (default sized to the base, as the backtest: :func:`clvkit.evaluation.run.sample_counts`).
    random_seed : int or numpy.random.Generator, optional
        Seeds the pseudo-BMA bootstrap and the predictive samples.

    Returns
    -------
    Comparison

    Examples
    --------
    >>> import clvkit
    >>> from clvkit.datasets import cdnow_transactions
    >>> rfm = clvkit.calibration_holdout(cdnow_transactions(), calibration_end="1997-09-30",
    ...                                  observation_end="1998-06-30")
    >>> a = clvkit.BetaGeo().fit(rfm, method="laplace", draws=100, random_seed=1)
    >>> b = clvkit.BetaGeo(priors={"r": {"dist": "LogNormal", "mu": 3.0, "sigma": 0.01}}).fit(
    ...     rfm, method="laplace", draws=100, random_seed=1)  # a prior far from the data
    >>> cmp = compare({"default": a, "forced": b}, rfm, n_samples=100)
    >>> cmp.table.index.tolist(), bool(cmp.table.loc["forced", "elpd_diff"] > 100)
    (['default', 'forced'], True)
    """
    check_prob(prob)
    fitted = _models(models)
    if not isinstance(rfm, pd.DataFrame):
        raise ClvkitError(
            f"argument 'rfm' must be a pandas DataFrame, got {type(rfm).__name__}. Suggestion: "
            "pass the calibration table the models were fitted on."
        )
    rng = make_rng(random_seed)
    specs, draws, columns, chains = _resolved(fitted, rfm)
    n = len(rfm)
    model_names = list(fitted)
    # LOO on the distinct calibration rows: every column any model reads, computed once
    calib = [np.asarray(v, dtype=np.float64) for c in columns.values() for v in c.values()]
    first, inverse, counts = _distinct(np.stack(calib, axis=1))
    loos = {
        k: _loo(specs[k], draws[k], {c: v[first] for c, v in columns[k].items()}, counts, chains[k])
        for k in model_names
    }
    pw = np.stack([loos[k].pointwise for k in model_names], axis=1)
    elpd = np.array([loos[k].elpd for k in model_names])
    diff, diff_se = _paired(pw, counts, int(np.argmax(elpd)))
    table = pd.DataFrame(
        {
            "label": _labels(specs, model_names),
            "elpd_loo": elpd,
            "se": [loos[k].se for k in model_names],
            "elpd_diff": diff,
            "diff_se": diff_se,
            "p_loo": [loos[k].p_loo for k in model_names],
            "n_high_k": [loos[k].n_high_k() for k in model_names],
            "weight_stacking": stacking_weights(pw, counts),
            "weight_pseudo_bma": pseudo_bma_weights(pw, counts, random_seed=rng),
        },
        index=pd.Index(model_names, name="model"),
    )
    table.attrs.update(
        prob=prob,
        k_threshold=min(loos[k].threshold for k in model_names),
        n_customers=n,
        n_distinct=int(first.size),
    )
    log_scores = None
    if all(c in rfm for c in HOLDOUT_COLUMNS):
        y = _holdout_counts(rfm)
        dur = rfm["duration_holdout"].to_numpy(np.float64)
        # the holdout log score once per distinct (history, holdout count, holdout length)
        h_first, h_inverse, h_counts = _distinct(np.stack([*calib, y, dur], axis=1))
        ls = np.empty((h_first.size, len(model_names)))
        for j, k in enumerate(model_names):
            cols = {c: v[h_first] for c, v in columns[k].items()}
            ls[:, j] = _log_scores(specs[k], draws[k], cols, dur[h_first], y[h_first])
        _add_log_scores(table, ls, h_counts)
        log_scores = pd.DataFrame(ls[h_inverse], index=rfm.index.copy(), columns=model_names)
        per, _ = sample_counts(n, n_samples)
        for k in model_names:
            _add_holdout_metrics(table, k, fitted[k], rfm, y, dur, prob, per, rng)
        table.attrs["n_samples"] = per
    table = table.sort_values("elpd_loo", ascending=False, kind="stable")
    table.insert(1, "rank", np.arange(1, len(table) + 1))
    return Comparison(
        table=table,
        loo=loos,
        pointwise=pd.DataFrame(pw[inverse], index=rfm.index.copy(), columns=model_names),
        log_scores=log_scores,
        words=comparison_words(table),
        prob=prob,
    )


def _resolved(fitted: dict[str, Any], rfm: pd.DataFrame) -> tuple[dict, dict, dict, dict]:
    """Per model: its spec, ``(S, k)`` draws, validated columns of ``rfm`` and chain count;
    a point fit or a model fitted in another time unit is refused."""
    unit = rfm.attrs.get("time_unit")
    specs, draws, columns, chains = {}, {}, {}, {}
    for name, m in fitted.items():
        spec, post = resolve(m, "purchase", f"models[{name!r}]")
        if unit:
            check_unit(m, str(unit), f"models[{name!r}]")
        specs[name], draws[name] = spec, flat_params(spec, post)
        if next(iter(draws[name].values())).shape[0] < 2:
            raise ClvkitError(
                f"argument 'models': {name!r} ({spec.label}) is a point fit (one draw), but "
                "PSIS-LOO needs posterior draws. Suggestion: fit it with method='nuts' (or "
                "'laplace' for large bases)."
            )
        columns[name] = spec.customer_columns(rfm, "rfm")
        chains[name] = int(post.sizes["chain"])
    return specs, draws, columns, chains


def _distinct(key: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """First row, row -> distinct row map and count of each distinct row of ``key`` ``(n, c)``."""
    _, first, inverse = np.unique(key, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.ravel()
    return first, inverse, np.bincount(inverse, minlength=first.size).astype(np.float64)


def _add_log_scores(table: pd.DataFrame, ls: np.ndarray, counts: np.ndarray) -> None:
    """``log_score`` (summed over customers), its difference to the best and the paired se;
    a model that gives probability 0 to an observed count scores -inf, with a warning."""
    bad = ~np.isfinite(ls)
    for j, name in enumerate(table.index):
        if bad[:, j].any():
            warnings.warn(
                f"{table.loc[name, 'label']} ({name}) gives probability 0 to the holdout count "
                f"of {int(counts[bad[:, j]].sum()):,} customers: its log score is -inf.",
                ClvkitWarning,
                stacklevel=3,
            )
    total = counts @ np.where(bad, 0.0, ls) - np.where(bad.any(axis=0), np.inf, 0.0)
    with np.errstate(invalid="ignore"):
        diff, se = _paired(ls, counts, int(np.argmax(total)))
    table["log_score"] = total
    table["log_score_diff"] = diff
    table["log_score_diff_se"] = se


def _add_holdout_metrics(
    table: pd.DataFrame,
    name: str,
    model: Any,
    rfm: pd.DataFrame,
    y: np.ndarray,
    dur: np.ndarray,
    prob: float,
    n_samples: int,
    rng: np.random.Generator,
) -> None:
    """MAE, the holdout total with its interval and the per-customer coverage of one model:
    the backtest's :func:`holdout_predictive` and :func:`holdout_metrics`."""
    pred = holdout_predictive(
        model, rfm, dur, actual=y, prob=prob, n_samples=n_samples, random_seed=rng
    )
    met = holdout_metrics(pred, levels=(prob,)).loc["purchases"]
    for k in ("mae", "total_predicted", "total_lower", "total_upper", "total_actual",
              "p_total_at_least_actual"):  # fmt: skip
        table.loc[name, k] = met[k]
    table.loc[name, "coverage"] = met[f"coverage_{round(100 * prob)}"]


def _holdout_counts(rfm: pd.DataFrame) -> np.ndarray:
    """The holdout counts, with the holdout lengths checked (counts >= 0, lengths > 0)."""
    y = rfm["frequency_holdout"].to_numpy(np.float64)
    bad = ~(np.isfinite(y) & (y >= 0) & (y == np.round(y)))
    dur = rfm["duration_holdout"].to_numpy(np.float64)
    bad_d = ~(np.isfinite(dur) & (dur > 0))
    for col, b, what in (
        ("frequency_holdout", bad, "is not a count"),
        ("duration_holdout", bad_d, "is not a positive duration"),
    ):
        if b.any():
            vals = rfm[col].to_numpy()
            raise bad_rows_error(
                f"column {col!r} of 'rfm'",
                what,
                int(b.sum()),
                vals[b][0],
                "build the table with clvkit.calibration_holdout",
                n_total=len(rfm),
            )
    return y.astype(np.int64)


def _loo(spec: Any, params: dict, cols: dict, counts: np.ndarray, n_chains: int) -> Loo:
    """PSIS-LOO of the distinct rows ``cols`` (with ``counts``) in bounded memory."""
    return psis_loo_blocks(
        lambda idx: _loglik(spec, params, {c: v[idx] for c, v in cols.items()}), counts, n_chains
    )


def _loglik(spec: Any, params: dict, cols: dict) -> np.ndarray:
    """``spec.loglik`` ``(S, m)`` over blocks of rows (bounded memory)."""
    S = next(iter(params.values())).shape[0]
    m = len(next(iter(cols.values())))
    out = np.empty((S, m))
    step = max(1, CELLS // S)
    for lo in range(0, m, step):
        out[:, lo : lo + step] = spec.loglik(
            params, {c: v[lo : lo + step] for c, v in cols.items()}
        )
    return out


# ---------------------------------------------------------------------------------------------
# from a log
# ---------------------------------------------------------------------------------------------
def compare_log(
    transactions: pd.DataFrame | str | os.PathLike,
    models: Sequence[str] | None = None,
    *,
    calibration_end: str | pd.Timestamp,
    observation_end: str | pd.Timestamp,
    time_unit: str = "W",
    customer_id: Hashable = "customer_id",
    date: Hashable = "date",
    tz: str | None = None,
    fit_kwargs: Mapping[str, Any] | None = None,
    prob: float = 0.9,
    n_samples: int | None = None,
    random_seed: int | None = 0,
) -> Comparison:
    """Split a log at ``calibration_end``, fit the named purchase models on the calibration
    window and :func:`compare` them, with the holdout to ``observation_end``.

    Parameters
    ----------
    transactions : pandas.DataFrame, str or os.PathLike
        Purchase log (a CSV/Parquet path or glob is read by DuckDB), as in
        :func:`clvkit.backtest`.
    models : sequence of str, optional
        Registered purchase model names (default: every registered purchase model).
    calibration_end, observation_end : str or pandas.Timestamp
        Last day of the calibration and of the holdout window.
    time_unit, customer_id, date, tz
        As in :func:`clvkit.rfm_summary`.
    fit_kwargs : mapping, optional
        Passed to every ``fit`` (default ``method="nuts"``; LOO needs posterior draws, so
        ``"nuts"`` or ``"laplace"``).
    prob, n_samples, random_seed
        As in :func:`compare` (the seed also seeds the fits).

    Returns
    -------
    Comparison
    """
    check_prob(prob)
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    # unknown names are refused before any work; saved names become short ones
    wanted = [
        get(n, "purchase", "rfm").spec.name
        for n in (names("purchase", "rfm") if models is None else models)
    ]
    split = split_log(
        transactions,
        calibration_end=calibration_end,
        observation_end=observation_end,
        time_unit=time_unit,
        customer_id=customer_id,
        date=date,
        tz=tz,
    )
    kw = dict(fit_kwargs or {})
    if random_seed is not None:
        kw.setdefault("random_seed", random_seed)
    fitted = {n: fit_model(n, "purchase", split.rfm, kw) for n in dict.fromkeys(wanted)}
    return compare(fitted, split.rfm, prob=prob, n_samples=n_samples, random_seed=random_seed)
