"""What the covariates and segments of a covariate model do, in words a manager reads.

An effect is a multiplier of a process mean (:meth:`clvkit.models.contract.ModelSpec.
process_means`, e.g. BG/NBD's purchases per time unit while alive ``r / alpha``): the mean of a
customer with one covariate level (instead of the reference level) or one unit more of a
numeric covariate, divided by the mean of the baseline customer (reference levels, numeric
covariates at their mean, the median segment), per posterior draw. With segments, each
segment's multiplier is against the median segment (segment effect 0), and the spread between
segments is the factor of one standard deviation of the segments' log multipliers over the
population of segments.

The customer's parameters come from the covariate spec itself (``class_params``,
``log_shift``, ``baseline``), so the effects follow the model's links exactly: for BG/NBD and
Pareto/NBD the purchase multiplier is ``exp(coef_alpha)``, for Gamma-Gamma the spend
multiplier ``exp(coef_v)``; a dropout probability ``a / (a + b)`` with both ``a`` and ``b``
linked moves by ``a' / (a' + b') / (a / (a + b))``.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from clvkit.errors import ClvkitError, ClvkitWarning
from clvkit.models.contract import Params, n_draws
from clvkit.models.registry import flat_params
from clvkit.utils.checks import check_prob
from clvkit.utils.fmt import number, unit_name

__all__ = ["EFFECT_COLUMNS", "effect_draws", "effects", "effects_table"]

#: Columns of :func:`effects`: ``kind`` ("covariate", "segment" or "spread"), the coefficient
#: (a design name such as ``channel[shop]``, ``<segment column>[<level>]``, or ``<segment
#: column> (spread)``), the process, what the row compares, the multiplier's posterior mean and
#: central interval, P(multiplier > 1) and the sentence.
EFFECT_COLUMNS = ("kind", "coefficient", "process", "meaning", "multiplier", "lower", "upper",
                  "p_above_1", "sentence")  # fmt: skip

#: Gauss-Hermite nodes per segment link for the spread over the population of segments (exact
#: for a process with one link: the factor is ``exp(sd)``).
SPREAD_NODES = 16


def _covariate_spec(spec: Any) -> Any:
    if getattr(spec, "terms", None) is None or getattr(spec, "base", None) is None:
        raise ClvkitError(
            f"{getattr(spec, 'label', spec)!s} has no covariates, so it has no effects to show. "
            "Suggestion: fit clvkit.with_covariates(model, columns=[...]) first."
        )
    if not spec.base.process_texts:
        raise ClvkitError(
            f"{spec.base.label} declares no process means (ModelSpec.process_means). "
            "Suggestion: add process_means and process_texts to its spec."
        )
    return spec


def _processes(spec: Any) -> dict[str, list[str]]:
    """Process -> its linked parameters, in the base's link order."""
    out: dict[str, list[str]] = {}
    for p in spec.terms.links:
        out.setdefault(spec.base.covariate_links[p][0], []).append(p)
    return out


def _at_median_segment(spec: Any, params: Params) -> dict[str, np.ndarray]:
    """``params`` with the unseen segment's standardised draw at 0: code -1 is then the median
    segment."""
    out = dict(params)
    if spec.terms.segment is not None:
        for p in spec.terms.links:
            out[f"new_{p}"] = np.zeros((n_draws(params), 1))
    return out


def _means(spec: Any, params: Params, rows: np.ndarray) -> list[dict[str, np.ndarray]]:
    """The base's process means ``(S,)`` of each class of ``rows``."""
    return [spec.base.process_means(p) for p in spec.class_params(params, rows)]


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(num, dtype=np.float64) / np.asarray(den, dtype=np.float64)


def _spread(spec: Any, params: Params, process: str, links: list[str],
            base: np.ndarray) -> np.ndarray:  # fmt: skip
    """Per draw ``(S,)``: exp of the sd of the log multiplier of ``process``'s mean over the
    population of segments (a new segment: ``new_<p> ~ Normal(0, 1)`` per linked parameter,
    integrated by Gauss-Hermite)."""
    x, w = np.polynomial.hermite_e.hermegauss(SPREAD_NODES)
    w = w / w.sum()
    nodes = np.stack([g.ravel() for g in np.meshgrid(*([x] * len(links)), indexing="ij")], axis=1)
    weights = np.prod([g.ravel() for g in np.meshgrid(*([w] * len(links)), indexing="ij")], axis=0)
    row = np.zeros((1, len(spec.terms.names) + 1))
    row[0, -1] = -1.0  # the unseen segment: its effects are sd * new_<p>
    log_mult = np.empty((n_draws(params), nodes.shape[0]))
    at = dict(params)
    for g, node in enumerate(nodes):
        for p, value in zip(links, node, strict=True):
            at[f"new_{p}"] = np.full((n_draws(params), 1), value)
        (m,) = _means(spec, at, row)
        log_mult[:, g] = np.log(_ratio(m[process], base))
    mean = log_mult @ weights
    var = np.maximum((log_mult - mean[:, None]) ** 2 @ weights, 0.0)
    return np.exp(np.sqrt(var))


def effect_draws(spec: Any, params: Params) -> pd.DataFrame:
    """The multipliers of a covariate model per draw.

    Parameters
    ----------
    spec : CovariatePurchaseSpec or CovariateSpendSpec
        A fitted covariate model's spec (``model.spec``).
    params : dict of str to ndarray
        Its draws, ``(S, 1)`` per scalar and ``(S, k)`` per vector parameter
        (:func:`clvkit.models.registry.flat_params`).

    Returns
    -------
    pandas.DataFrame
        ``(S, m)``: one column per effect, columns a MultiIndex ``(kind, coefficient,
        process)`` (kinds as in :data:`EFFECT_COLUMNS`), rows the draws. A covariate's column
        is the process mean at that coefficient's unit vector over the baseline's; a segment's
        is the segment's mean over the median segment's; a spread is the factor of one sd.
    """
    spec = _covariate_spec(spec)
    terms = spec.terms
    params = _at_median_segment(spec, params)
    base = spec.base.process_means(spec.baseline(params))
    procs = _processes(spec)
    k = len(terms.names)
    has_seg = terms.segment is not None
    cols: dict[tuple[str, str, str], np.ndarray] = {}
    if k:
        rows = np.zeros((k, k + has_seg))
        rows[:, :k] = np.eye(k)
        if has_seg:
            rows[:, k] = -1.0  # the median segment (its draw set to 0 above)
        for name, m in zip(terms.names, _means(spec, params, rows), strict=True):
            for proc in procs:
                cols[("covariate", name, proc)] = _ratio(m[proc], base[proc])
    if has_seg:
        L = len(terms.levels)
        rows = np.zeros((L, k + 1))
        rows[:, k] = np.arange(L)
        for level, m in zip(terms.levels, _means(spec, params, rows), strict=True):
            for proc in procs:
                cols[("segment", f"{terms.segment}[{level}]", proc)] = _ratio(m[proc], base[proc])
        for proc, links in procs.items():
            cols[("spread", f"{terms.segment} (spread)", proc)] = _spread(
                spec, params, proc, links, base[proc]
            )
    frame = pd.DataFrame(
        {key: np.asarray(v, dtype=np.float64).reshape(-1) for key, v in cols.items()}
    )
    frame.columns = pd.MultiIndex.from_tuples(list(cols), names=["kind", "coefficient", "process"])
    frame.index.name = "draw"
    return frame


def _interval_text(
    mult: float, lo: float, hi: float, S: int, prob: float, times: str = "x"
) -> tuple[str, str]:
    """``("1.92x [1.78, 2.07]", "(90% interval)")``: the multiplier and its note."""
    if S == 1:
        return (f"{number(mult, 3)}{times}", "(a point estimate, no interval: fit with "
                "method='nuts' or 'laplace' for one)")  # fmt: skip
    pct = f"{100 * prob:g}%"
    note = (f"({pct} interval, not distinguishable from 1)" if lo <= 1 <= hi
            else f"({pct} interval)")  # fmt: skip
    return f"{number(mult, 3)}{times} [{number(lo, 3)}, {number(hi, 3)}]", note


def effects_table(
    spec: Any, params: Params, prob: float = 0.9, time_unit: str | None = None
) -> pd.DataFrame:
    """The effects of a covariate model with intervals and sentences (see :func:`effects`)
    from its spec and draws."""
    prob = check_prob(prob)
    spec = _covariate_spec(spec)
    draws = effect_draws(spec, params)
    S = len(draws)
    terms = spec.terms
    design = terms.design
    described = design.describe() if design is not None else None
    categorical = set(design.levels) if design is not None else set()
    texts = dict(spec.base.process_texts)
    if time_unit:
        per = f"per {unit_name(time_unit, plural=False)}"
        texts = {k: (m.replace("per time unit", per), ph) for k, (m, ph) in texts.items()}
    out = []
    for (kind, coef, proc), col in draws.items():
        v = col.to_numpy()
        ok = np.isfinite(v)
        meaning, phrase = texts[proc]
        if not ok.all():
            warnings.warn(
                f"the {proc} multiplier of {coef} is not finite in {int((~ok).sum()):,} of "
                f"{S:,} draws (the process mean, {meaning}, does not exist there); its summary "
                f"uses the other {int(ok.sum()):,} draws. Suggestion: check the fit of "
                f"{spec.base.label} (e.g. its priors).",
                ClvkitWarning,
                stacklevel=3,
            )
        v = v[ok]
        if v.size:
            mult, p_above = float(v.mean()), float((v > 1).mean())
            lo, hi = (float(x) for x in np.quantile(v, [(1 - prob) / 2, (1 + prob) / 2]))
            x, note = _interval_text(mult, lo, hi, S, prob, "" if kind == "spread" else "x")
        else:
            mult = lo = hi = p_above = np.nan
            x, note = "", ""
        if kind == "covariate":
            what = described.loc[coef, "meaning"]
            column = described.loc[coef, "column"]
            who = f"Customers {'from' if column in categorical else 'with'} {what}"
            sentence = f"{who} {phrase.format(x=x)} {note}."
            row_meaning = f"{what}: {meaning}"
        elif kind == "segment":
            level = coef[len(terms.segment) + 1 : -1]
            what = f"{terms.segment} {level!r}"
            sentence = (f"Customers in {what} {phrase.format(x=x)} as those of the median "
                        f"segment {note}.")  # fmt: skip
            row_meaning = f"{what} instead of the median segment: {meaning}"
        else:
            note = note.replace(", not distinguishable from 1", "")
            sentence = (f"Segments of {terms.segment!r} differ in {meaning} by a factor of {x} "
                        f"for one standard deviation {note}.")  # fmt: skip
            row_meaning = f"spread between segments (1 sd): {meaning}"
        if not v.size:
            sentence = (f"The {proc} multiplier of {coef} cannot be measured: the process mean "
                        f"({meaning}) does not exist in any draw.")  # fmt: skip
        out.append((kind, coef, proc, row_meaning, mult, lo, hi, p_above, sentence))
    return pd.DataFrame(out, columns=list(EFFECT_COLUMNS))


def effects(model: Any, prob: float = 0.9) -> pd.DataFrame:
    """What each covariate (and segment) of a fitted covariate model does to each process.

    Parameters
    ----------
    model : CovariatePurchaseModel or CovariateSpendModel
        A fitted covariate model (:func:`clvkit.with_covariates`).
    prob : float
        Probability of the central intervals, in (0, 1).

    Returns
    -------
    pandas.DataFrame
        One row per (coefficient, process), then per (segment, process) and the spread between
        segments per process, with the columns of :data:`EFFECT_COLUMNS`: ``multiplier`` is
        the posterior mean of the process mean's multiplier (vs the baseline customer:
        reference levels, numeric covariates at their mean, the median segment), ``lower``
        and ``upper`` its central ``prob`` interval, ``p_above_1`` P(multiplier > 1), and
        ``sentence`` says it in words, e.g. "Customers from channel 'shop' instead of 'web'
        buy 1.92x [1.78, 2.07] as often (90% interval)."
    """
    prob = check_prob(prob)
    spec = _covariate_spec(getattr(model, "spec", None))
    params = flat_params(spec, model.posterior_)
    return effects_table(spec, params, prob, getattr(model, "time_unit_", None))
