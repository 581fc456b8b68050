"""The report's section on a covariate model: what each covariate and segment does, in
sentences first, then the table, the forest plot and the spread between segments.

:func:`covariate_section` writes on a :class:`clvkit.report.Report` (any object with its
``section``, ``text``, ``items``, ``table`` and ``figures`` methods); a model without
covariates adds nothing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvkit.utils import fmt

__all__ = ["TABLE_COLUMNS", "covariate_section"]

#: Columns of the effects table shown (the sentences are listed above it).
TABLE_COLUMNS = ("coefficient", "process", "meaning", "multiplier", "lower", "upper", "p_above_1")


def _baseline_text(spec: Any) -> str:
    """Who the baseline customer is: reference levels, numeric means, the median segment."""
    terms = spec.terms
    parts = []
    design = terms.design
    if design is not None:
        parts += [f"{c} {lv!r}" for c, lv in design.reference.items()]
        parts += [f"{c} at its mean ({fmt.number(m)})" for c, m in design.centre.items()]
    if terms.segment is not None:
        parts.append(f"the median {terms.segment} segment")
    return ", ".join(parts)


def _distinct(row: pd.Series) -> bool:
    return bool(np.isfinite(row["lower"]) and (row["lower"] > 1 or row["upper"] < 1))


def covariate_section(rep: Any, model: Any, prob: float = 0.9) -> bool:
    """Add the section on a covariate model's effects to a report.

    Parameters
    ----------
    rep : clvkit.report.Report
        The report to write on.
    model : fitted model
        A :func:`clvkit.with_covariates` model (anything else adds nothing).
    prob : float
        Probability of the intervals, in (0, 1).

    Returns
    -------
    bool
        Whether a section was added (``False`` for a model without covariates).
    """
    from clvkit.plots import plot_effects

    spec = getattr(model, "spec", None)
    if getattr(spec, "terms", None) is None or not callable(getattr(model, "effects", None)):
        return False
    table = model.effects(prob)
    pct = f"{100 * prob:g}%"
    rep.section(f"What the covariates do ({spec.base.label} {spec.base.kind} model)")
    rep.text(
        f"Each line compares customers with a covariate level or value to the baseline "
        f"customer ({_baseline_text(spec)}): their process mean as a multiple of the "
        f"baseline's, with a {pct} interval from the posterior. An interval that contains 1 "
        "does not tell the customers apart.",
        css="note",
    )
    effects = table[table["kind"] != "spread"]
    spread = table[table["kind"] == "spread"]
    rep.items([(s, "" if _distinct(r) else "note") for s, (_, r) in
               zip(effects["sentence"], effects.iterrows(), strict=True)])  # fmt: skip
    rep.table(
        effects.loc[:, list(TABLE_COLUMNS)],
        index=False,
        note=f"multiplier: posterior mean; lower, upper: central {pct} interval; p_above_1: "
        "the posterior probability that the multiplier is above 1.",
    )
    rows = len(table)
    rep.figures(
        {f"Effects on each process ({pct} intervals, log scale)":
         lambda ax: plot_effects(table, ax=ax)},
        figsize=(7.0, 1.6 + 0.32 * rows + 0.5 * table["process"].nunique()),
    )  # fmt: skip
    if not spread.empty:
        rep.section("Spread between segments", level=3)
        rep.items([(s, "") for s in spread["sentence"]])
        rep.text(
            f"A new {spec.terms.segment} segment (not in the fit) is valued from this spread: "
            "its effect is drawn from the population of segments.",
            css="note",
        )
    return True
