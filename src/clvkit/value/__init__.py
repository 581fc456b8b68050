"""Monte Carlo layer: joint posterior draws -> discounted CLV per customer and customer equity.

Model-free: the purchase and spend models are used only through
:mod:`clvkit.models.contract`. Modules: :mod:`~clvkit.value.settings` (cash-flow settings),
:mod:`~clvkit.value.discount` (discount plans), :mod:`~clvkit.value.job` (models, paired draws,
chunk runner), :mod:`~clvkit.value.chunks` (streams, threads), :mod:`~clvkit.value.accumulate`
(tiers, exact sums, summaries), :mod:`~clvkit.value.result` (:class:`CustomerValue`) and
:mod:`~clvkit.value.engine` (:func:`customer_value`) and
:mod:`~clvkit.value.counterfactual` (:func:`counterfactual_value`).
"""

from __future__ import annotations

from clvkit.utils.checks import check_prob
from clvkit.value.accumulate import (
    DEFAULT_TIERS,
    Accumulator,
    GroupCodes,
    group_codes,
    group_levels,
    range_counts,
    tier_membership,
)
from clvkit.value.chunks import chunk_streams
from clvkit.value.counterfactual import CounterfactualValue, counterfactual_value
from clvkit.value.discount import DiscountPlan
from clvkit.value.engine import KEEP_VALUES, check_n_jobs, customer_value
from clvkit.value.job import ChunkRunner, RunOptions, ValueJob, prepare_job
from clvkit.value.result import STORED_PROBS, CustomerValue, check_probs, prob_label
from clvkit.value.settings import CashflowSettings

__all__ = [
    "DEFAULT_TIERS",
    "KEEP_VALUES",
    "STORED_PROBS",
    "Accumulator",
    "CashflowSettings",
    "ChunkRunner",
    "CounterfactualValue",
    "CustomerValue",
    "DiscountPlan",
    "GroupCodes",
    "RunOptions",
    "ValueJob",
    "check_n_jobs",
    "check_prob",
    "check_probs",
    "chunk_streams",
    "counterfactual_value",
    "customer_value",
    "group_codes",
    "group_levels",
    "prepare_job",
    "prob_label",
    "range_counts",
    "tier_membership",
]
