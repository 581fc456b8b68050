"""The words of a model comparison: which model the data favour, by how much, when the
difference is within noise, and the aggregate calibration next to the per-customer one.

Everything here reads a :attr:`clvkit.evaluation.compare_models.Comparison.table` (one row per
model, ranked best first), so the sentences can be checked on constructed tables.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvkit.utils import fmt

__all__ = ["NOISE_SE", "comparison_words", "readable"]

#: A difference smaller than this many standard errors is within noise.
NOISE_SE = 2.0


def _separation(best: str, other: str, diff: float, se: float, what: str) -> str:
    if not np.isfinite(diff):
        return f"{other} gives probability 0 to some holdout counts: {best} is better on the {what}"
    if diff < NOISE_SE * se:
        return (
            f"The data do not separate {best} and {other}: |Δ{what}| = {diff:.1f} < "
            f"{NOISE_SE:g} se ({NOISE_SE:g} x {se:.1f} = {NOISE_SE * se:.1f})"
        )
    return (
        f"The data favour {best} over {other} by {diff:.1f} in {what} "
        f"({diff / se:.1f} standard errors of the difference)"
        if se > 0
        else f"The data favour {best} over {other} by {diff:.1f} in {what}"
    )


def comparison_words(table: pd.DataFrame) -> list[str]:
    """The comparison in sentences, from a :attr:`Comparison.table` (ranked, best first).

    A difference of ``elpd`` (or holdout log score) smaller than :data:`NOISE_SE` standard
    errors of the paired difference is "within noise"; the aggregate calibration (where the
    actual holdout total falls in its predictive distribution) is stated next to the
    per-customer coverage, and a total outside its interval is called a miss in aggregate.

    Examples
    --------
    >>> t = pd.DataFrame({"label": ["A", "B"], "elpd_loo": [-100.0, -130.0],
    ...                   "elpd_diff": [0.0, 30.0], "diff_se": [0.0, 6.0], "n_high_k": [0, 0],
    ...                   "weight_stacking": [0.95, 0.05]}, index=["a", "b"])
    >>> comparison_words(t)
    ['The data favour A over B by 30.0 in elpd (5.0 standard errors of the difference).', 'Stacking weights: A 0.95, B 0.05.']
    """
    words: list[str] = []
    labels = _display_names(table)
    names_ = list(table.index)
    best = labels[names_[0]]
    within = 0
    for name in names_[1:]:
        row = table.loc[name]
        diff, se = float(row["elpd_diff"]), float(row["diff_se"])
        within += bool(diff < NOISE_SE * se)
        words.append(_separation(best, labels[name], diff, se, "elpd") + ".")
    if len(names_) > 2 and within == len(names_) - 1:
        words.append(
            f"No model stands out: every difference in elpd to {best} is within "
            f"{NOISE_SE:g} standard errors."
        )
    weights = [
        f"{what} weights: " + ", ".join(f"{labels[k]} {float(w):.2f}" for k, w in table[c].items())
        for c, what in (("weight_stacking", "Stacking"), ("weight_pseudo_bma", "pseudo-BMA"))
        if c in table
    ]
    if weights:
        words.append("; ".join(weights) + ".")
    thr = table.attrs.get("k_threshold")
    for name in names_:
        k = int(table.loc[name, "n_high_k"])
        if k:
            words.append(
                f"{labels[name]}: {k:,} customers have Pareto k above "
                + (f"{thr:.2f}" if thr is not None else "the threshold")
                + ", so its LOO estimate is unreliable for them (treat its elpd with care)."
            )
    if "log_score" in table:
        ranked = table.sort_values("log_score", ascending=False, kind="stable")
        top = ranked.index[0]
        if top != names_[0]:
            words.append(
                f"On the holdout the ranking differs: {labels[top]} has the best log "
                f"predictive score ({float(ranked.loc[top, 'log_score']):,.1f})."
            )
        for name in ranked.index[1:]:
            row = ranked.loc[name]
            words.append(
                _separation(
                    labels[top],
                    labels[name],
                    float(row["log_score_diff"]),
                    float(row["log_score_diff_se"]),
                    "holdout log score",
                )
                + "."
            )
    if "coverage" in table and "total_actual" in table:
        prob = table.attrs.get("prob", 0.9)
        pct = f"{prob:.0%}"
        for name in names_:
            row = table.loc[name]
            lo, hi, act = row["total_lower"], row["total_upper"], row["total_actual"]
            p_ge = float(row["p_total_at_least_actual"])
            head = (
                f"{labels[name]}: per-customer {pct} intervals cover "
                f"{fmt.percent(row['coverage'])} of customers"
            )
            where = (
                f"the actual holdout total {fmt.count(act)} against a predicted "
                f"{fmt.count(row['total_predicted'])} [{pct} interval {fmt.count(lo)} – "
                f"{fmt.count(hi)}], P(total ≥ actual) = {p_ge:.3f}"
            )
            if lo <= act <= hi:
                words.append(f"{head}, and {where}: calibrated in aggregate too.")
            else:
                side = "above" if act > hi else "below"
                words.append(
                    f"{head}, but {where}: the total falls {side} its {pct} interval, so the "
                    "model is wrong in aggregate."
                )
    return words


def _display_names(table: pd.DataFrame) -> dict[Any, str]:
    """The label of each row, with its name added where two rows share a label."""
    labels = table["label"].astype(str) if "label" in table else table.index.astype(str)
    dup = labels.duplicated(keep=False)
    return {
        k: (f"{lab} ({k})" if d else lab)
        for k, lab, d in zip(table.index, labels, dup, strict=True)
    }


def readable(table: pd.DataFrame) -> pd.DataFrame:
    """The comparison table as text, one column per model (rows are the measures)."""
    out = {}
    for name, row in table.iterrows():
        col = {}
        for k, v in row.items():
            if k in ("label",):
                col[k] = str(v)
            elif k in ("rank", "n_high_k"):
                col[k] = fmt.count(v)
            elif k in ("coverage", "p_total_at_least_actual"):
                col[k] = fmt.percent(v)
            elif k.startswith("total_"):
                col[k] = fmt.count(v) if abs(float(v)) >= 100 else fmt.number(v)
            elif k.startswith("weight_"):
                col[k] = f"{float(v):.3f}"
            else:
                col[k] = f"{float(v):,.1f}" if abs(float(v)) >= 100 else fmt.number(v)
        out[str(name)] = col
    shown = pd.DataFrame(out)
    if "coverage" in shown.index:
        shown = shown.rename(index={"coverage": f"coverage_{round(100 * table.attrs['prob'])}"})
    return shown
