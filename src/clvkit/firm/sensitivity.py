"""How the firm's equity moves with each lever, and the unit economics of a new customer.

Every lever is applied to the SAME posterior draws as the baseline (draw ``s`` changed minus
draw ``s`` unchanged), so the interval of a change is the interval of the difference, not
of two separate valuations. Changes are in expected equity (credible): with
``method="simulate"`` the baseline is :attr:`FirmEquity.expected_total`.

The levers (default sizes; ``changes`` sets others):

- ``retention`` (+0.01): the one-period retention of a new customer (P(alive one cash-flow
  period after acquisition)) rises by 0.01 in every draw. The purchase model's dropout
  process (its ``covariate_links`` parameters of process ``"dropout"``) is scaled as a
  covariate would scale it, each linked parameter moved by a factor ``c`` or ``1 / c`` in the
  direction that lowers the mean dropout (:meth:`ModelSpec.process_means`), ``c`` solved per
  draw; existing customers are then revalued on their own histories with the changed
  parameters.
- ``frequency`` (+10%): the mean purchase rate while alive ``x 1.1`` (the linked parameters of
  process ``"purchase"`` scaled as by a covariate multiplier of 1.1), existing customers
  revalued on their histories.
- ``spend`` (+10%): the expected spend of every purchase ``x 1.1``: revenue ``x 1.1``.
- ``margin`` (+0.01): one margin point more on all revenue.
- ``acquisition_volume`` (+10%): every future cohort ``x 1.1``.
- ``cac`` (+10%): the acquisition cost ``x 1.1``.

``retention`` and ``frequency`` need a purchase model with ``covariate_links`` (BG/NBD,
MBG/NBD, Pareto/NBD); for others they are left out with a warning.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from clvkit.errors import ClvkitError, ClvkitWarning
from clvkit.firm.flows import existing_total, future_flows, new_customer_flows
from clvkit.models.contract import PurchaseSpec
from clvkit.utils.checks import check_prob
from clvkit.value.chunks import kernel_threads

__all__ = [
    "DEFAULT_CHANGES",
    "LEVER_TEXT",
    "retention_params",
    "scaled_process",
    "sensitivities",
    "unit_economics",
]

#: Default size of each lever.
DEFAULT_CHANGES: dict[str, float] = {
    "retention": 0.01,
    "frequency": 0.10,
    "spend": 0.10,
    "margin": 0.01,
    "acquisition_volume": 0.10,
    "cac": 0.10,
}
#: How each lever reads (``{x}`` its size).
LEVER_TEXT: dict[str, str] = {
    "retention": "one-period retention of a new customer +{x:.2f}",
    "frequency": "purchase rate while alive x{m:.2f}",
    "spend": "spend per purchase x{m:.2f}",
    "margin": "margin +{x:.2f}",
    "acquisition_volume": "new customers per period x{m:.2f}",
    "cac": "acquisition cost x{m:.2f}",
}


def scaled_process(
    spec: PurchaseSpec, params: Mapping[str, np.ndarray], process: str, factor: np.ndarray
) -> dict[str, np.ndarray]:
    """``params`` with the parameters linked to ``process`` (``spec.covariate_links``) scaled
    as a covariate multiplier ``factor`` (``(S, 1)`` or scalar) of the process would scale them:
    ``theta * factor ** sign``."""
    out = {k: np.array(v, copy=True) for k, v in params.items()}
    for name, (proc, sign) in spec.covariate_links.items():
        if proc == process:
            out[name] = out[name] * np.asarray(factor) ** sign
    return out


def retention_params(
    spec: PurchaseSpec, params: Mapping[str, np.ndarray], period: float, rise: float
) -> dict[str, np.ndarray] | None:
    """Parameters whose new-customer retention over ``period`` is ``rise`` higher per draw
    (see the module notes), or None when a draw cannot reach it."""
    links = {n: s for n, (p, s) in spec.covariate_links.items() if p == "dropout"}
    if not links:
        return None
    base_mean = spec.process_means(params)["dropout"]
    direction = {}
    for name in links:  # which way lowers the mean dropout: a 1% step of each parameter
        step = {k: np.array(v, copy=True) for k, v in params.items()}
        step[name] = step[name] * 1.01
        diff = np.mean(spec.process_means(step)["dropout"] - base_mean)
        direction[name] = -1.0 if diff > 0 else 1.0
    cols = spec.new_customer_columns(1)
    t = np.array([float(period)])

    def retention(log_c: np.ndarray) -> np.ndarray:
        moved = {k: np.array(v, copy=True) for k, v in params.items()}
        for name, d in direction.items():
            moved[name] = moved[name] * np.exp(d * log_c)[:, None]
        return spec.probability_alive(moved, cols, t)[:, 0, 0], moved

    S = next(iter(params.values())).shape[0]
    target = retention(np.zeros(S))[0] + rise
    lo, hi = np.zeros(S), np.full(S, 12.0)
    if np.any(retention(hi)[0] < target):
        return None
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        below = retention(mid)[0] < target
        lo = np.where(below, mid, lo)
        hi = np.where(below, hi, mid)
    return retention(hi)[1]


def _check_result(result: Any) -> None:
    """Refuse anything but a :class:`clvkit.firm.FirmEquity` (read by its attributes)."""
    # plain attributes only: hasattr on the flow_draws property would compute the flows
    if not all(hasattr(result, a) for a in ("job", "grid", "cols", "expected_counts")):
        raise ClvkitError(
            f"argument 'result' must be a FirmEquity, got {type(result).__name__}. Suggestion: "
            "clvkit.firm_equity(...).sensitivities()."
        )


def _equity_with(fe: Any, tp: Mapping[str, np.ndarray]) -> np.ndarray:
    """Expected equity per draw with purchase parameters ``tp`` (spend draws, counts and
    settings unchanged): existing customers on the whole horizon, plus the future cohorts."""
    job = fe.job
    with kernel_threads(fe.n_jobs) as pmap:
        existing = existing_total(
            job.purchase, job.spend, tp, job.spend_params, fe.cols, job.cashflow, pmap
        )
    frev, fcost, acq = future_flows(
        job.purchase, job.spend, tp, job.spend_params, fe.grid, fe.expected_counts,
        fe.settings["acquisition_cost"] or 0.0,
    )  # fmt: skip
    return existing + job.cashflow.margin * frev.sum(1) - fcost.sum(1) - acq.sum(1)


def sensitivities(
    result: Any, changes: Mapping[str, float] | None = None, prob: float = 0.9
) -> pd.DataFrame:
    """Change of the firm's expected equity for each lever, on the same draws (a tornado table).

    Parameters
    ----------
    result : FirmEquity
        From :func:`clvkit.firm.firm_equity`.
    changes : mapping, optional
        Lever -> size (see :data:`DEFAULT_CHANGES`: ``retention`` and ``margin`` in points,
        the others as relative changes); default every lever at its default size.
    prob : float
        Central interval of the change.

    Returns
    -------
    pandas.DataFrame
        One row per lever, sorted by absolute mean change: ``change`` (in words),
        ``equity_mean`` (after), ``delta_mean``, ``delta_lower``, ``delta_upper``,
        ``delta_pct`` (mean change over mean baseline equity, in percent), ``p_positive``
        (share of draws with a positive change). ``attrs["baseline"]``: the mean baseline.
    """
    _check_result(result)
    prob = check_prob(prob)
    sizes = dict(DEFAULT_CHANGES) if changes is None else dict(changes)
    unknown = sorted(set(sizes) - set(DEFAULT_CHANGES))
    if unknown:
        raise ClvkitError(
            f"argument 'changes' has unknown levers {unknown}. Suggestion: use "
            f"{sorted(DEFAULT_CHANGES)}."
        )
    for k, v in sizes.items():
        if not (isinstance(v, float | int) and np.isfinite(v)) or isinstance(v, bool):
            raise ClvkitError(f"argument 'changes' has a non-numeric size for {k!r}: {v!r}.")
    job = result.job
    m = job.cashflow.margin
    # whole-horizon totals per draw (one expected_value pass each, no per-period flows): the
    # revenue, and the costs only when there are any (the value is linear in both)
    with kernel_threads(result.n_jobs) as pmap:
        args = (job.purchase, job.spend, job.purchase_params, job.spend_params, result.cols)
        plain = dataclasses.replace(job.cashflow, margin=1.0, cost_per_period=0.0)
        existing_revenue = existing_total(*args, plain, pmap)
        existing = m * existing_revenue
        if job.cashflow.cost_per_period > 0:
            costs_only = dataclasses.replace(job.cashflow, margin=0.0)
            existing = existing + existing_total(*args, costs_only, pmap)
    frev, fcost, acq = future_flows(
        job.purchase, job.spend, job.purchase_params, job.spend_params, result.grid,
        result.expected_counts, result.settings["acquisition_cost"] or 0.0,
    )  # fmt: skip
    future = m * frev.sum(1) - fcost.sum(1) - acq.sum(1)
    revenue = existing_revenue + frev.sum(1)
    base = existing + future
    deltas: dict[str, np.ndarray] = {}
    spec = job.purchase
    links = getattr(spec, "covariate_links", {}) or {}
    for lever, x in sizes.items():
        if lever == "spend":
            deltas[lever] = x * m * revenue
        elif lever == "margin":
            deltas[lever] = x * revenue
        elif lever == "acquisition_volume":
            deltas[lever] = x * future
        elif lever == "cac":
            deltas[lever] = -x * acq.sum(1)
        else:
            process = "purchase" if lever == "frequency" else "dropout"
            if not any(p == process for p, _ in links.values()):
                warnings.warn(
                    f"lever {lever!r} is left out: {spec.label} declares no parameter of the "
                    f"{process} process (covariate_links). Suggestion: the other levers still "
                    "apply.",
                    ClvkitWarning,
                    stacklevel=2,
                )
                continue
            if lever == "frequency":
                tp = scaled_process(spec, job.purchase_params, "purchase", 1.0 + x)
            else:
                tp = retention_params(spec, job.purchase_params, job.plan.period, x)
                if tp is None:
                    warnings.warn(
                        f"lever 'retention' is left out: a one-period retention {x:+g} is not "
                        "reachable in every draw. Suggestion: a smaller change, e.g. "
                        "changes={'retention': 0.001}.",
                        ClvkitWarning,
                        stacklevel=2,
                    )
                    continue
            deltas[lever] = _equity_with(result, tp) - base
    q = [(1 - prob) / 2, (1 + prob) / 2]
    rows = {}
    for lever, d in deltas.items():
        lo, hi = np.quantile(d, q)
        x = sizes[lever]
        rows[lever] = {
            "change": LEVER_TEXT[lever].format(x=x, m=1 + x),
            "equity_mean": float((base + d).mean()),
            "delta_mean": float(d.mean()),
            "delta_lower": float(lo),
            "delta_upper": float(hi),
            "delta_pct": float(100 * d.mean() / base.mean()) if base.mean() else np.nan,
            "p_positive": float(np.mean(d > 0)),
        }
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "lever"
    if len(out):
        out = out.iloc[np.argsort(-out["delta_mean"].abs().to_numpy(), kind="stable")]
    out.attrs["baseline"] = float(base.mean())
    return out


def unit_economics(result: Any, prob: float = 0.9) -> pd.Series:
    """CLV, CLV:CAC and the payback period of a customer acquired today, per draw.

    The customer's value over the horizon (expected: margin on the acquisition purchase plus
    discounted repeat purchases, minus costs, as :attr:`CustomerValue.new_customer` with
    ``method="expected"``); payback is the first cash-flow period at whose end the cumulative
    discounted margin reaches the CAC (``inf`` in a draw where it never does within the
    horizon).

    Returns
    -------
    pandas.Series
        ``clv_mean/lower/upper``, ``clv_to_cac_mean/lower/upper``, ``payback_median``,
        ``payback_lower``, ``payback_upper`` (in cash-flow periods; ``inf`` beyond the
        horizon), ``payback_time_median`` (in time units: the period's end) and
        ``p_payback`` (share of draws paying back within the horizon).
    """
    _check_result(result)
    cac = result.settings.get("acquisition_cost")
    if not cac:
        raise ClvkitError(
            "CLV:CAC and payback need an acquisition cost, but firm_equity was called without "
            "one. Suggestion: firm_equity(..., acquisition_cost=60)."
        )
    prob = check_prob(prob)
    job, grid = result.job, result.grid
    spend0, R, C, _ = new_customer_flows(
        job.purchase, job.spend, job.purchase_params, job.spend_params, grid
    )
    idx = grid.cohort(1)
    m = job.cashflow.margin
    flow = m * spend0[:, None] * R[:, idx] - grid.plan.cost_per_period * C[:, idx]
    flow[:, 0] += m * spend0  # the acquisition purchase, undiscounted
    cum = np.cumsum(flow, axis=1)
    clv = cum[:, -1]
    reached = cum >= cac
    payback = np.where(reached.any(axis=1), reached.argmax(axis=1) + 1.0, np.inf)
    q = [(1 - prob) / 2, (1 + prob) / 2]
    lo, hi = np.quantile(clv, q)
    plo, phi = np.quantile(payback, q)
    med = float(np.median(payback))
    ends = grid.plan.ends
    return pd.Series(
        {
            "clv_mean": float(clv.mean()),
            "clv_lower": float(lo),
            "clv_upper": float(hi),
            "clv_to_cac_mean": float(clv.mean() / cac),
            "clv_to_cac_lower": float(lo / cac),
            "clv_to_cac_upper": float(hi / cac),
            "payback_median": med,
            "payback_lower": float(plo),
            "payback_upper": float(phi),
            "payback_time_median": float(ends[int(med) - 1]) if np.isfinite(med) else np.inf,
            "p_payback": float(np.mean(np.isfinite(payback))),
        },
        name="new_customer",
    )
