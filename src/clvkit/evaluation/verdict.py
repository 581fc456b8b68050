"""The verdict on a fitted pipeline: what the customer base is worth and whether to trust it.

:func:`verdict` reads a value result (:func:`clvkit.customer_value`), a backtest
(:func:`clvkit.backtest`) and the fitted models, and returns a :class:`Verdict`: structured
findings (each check passed, failed or not applicable, with its numbers and what it means for
the user) and the same in plain words (:meth:`Verdict.to_text`). The HTML report opens with it
and the command line prints it after ``report`` and ``backtest``.

Checks (``alpha`` is the significance level of the statistical tests, default 0.01):

- **total holdout purchases** (and revenue): the actual total against the central ``prob``
  predictive interval of the total (``P(total >= actual)`` from the predictive draws);
- **per-customer interval coverage**: the share of customers whose holdout purchases fall in
  their central ``prob`` interval (randomized PIT), against ``prob``; it fails when it is off
  by more than ``max(0.02, 3 binomial standard errors)``;
- **calibration frequency check**: the chi-square of the calibration repeat-purchase histogram
  (fails when ``p < alpha``);
- **PIT uniformity**: a chi-square test of the 10-bin randomized PIT histogram against the
  uniform (fails when ``p < alpha``);
- **tracking per period**: the number of periods whose actual repeat purchases fall outside
  the per-period predictive band, against the ``1 - prob`` share expected by chance (binomial
  test, fails when ``p < alpha``); the worst periods are named with their dates;
- **sampler diagnostics** of every NUTS fit (R-hat, effective sample sizes, divergences).

A check that cannot be run is ``"n/a"`` with the reason; it is never shown as passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from clvkit.units import parse_time_unit, to_units
from clvkit.utils.checks import check_prob
from clvkit.utils.fmt import count, horizon_text, money, number, percent

__all__ = ["Check", "Verdict", "verdict"]

PASSED, FAILED, NA = "passed", "failed", "n/a"
#: Top share of customers by expected CLV or by past spend that counts as "valuable".
VALUABLE_SHARE = 0.05
#: P(alive) below which a valuable customer is "at risk".
AT_RISK_P_ALIVE = 0.5


@dataclass
class Check:
    """One check of the verdict.

    Attributes
    ----------
    key : str
        Short identifier (``"aggregate_purchases"``, ``"coverage"``, ``"calibration"``,
        ``"pit"``, ``"tracking"``, ``"sampler"``...).
    title : str
        What was checked, in words.
    status : {"passed", "failed", "n/a"}
    detail : str
        The numbers behind the status (or, for ``"n/a"``, the reason).
    meaning : str
        What a failure means for the user (empty when passed).
    values : dict
        The numbers, for programs.
    action : str
        What to do about a failure (a next step; empty when passed).
    """

    key: str
    title: str
    status: str
    detail: str
    meaning: str = ""
    values: dict[str, Any] = field(default_factory=dict)
    action: str = ""

    @property
    def passed(self) -> bool:
        """Whether the check ran and passed."""
        return self.status == PASSED

    def line(self) -> str:
        """The check in one line of plain words."""
        head = {PASSED: "PASSED", FAILED: "FAILED", NA: "n/a"}[self.status]
        text = f"[{head}] {self.title}: {self.detail}"
        return f"{text} -> {self.meaning}" if self.meaning else text


@dataclass
class Verdict:
    """Findings on a pipeline; see :func:`verdict`.

    Attributes
    ----------
    headline : str
        Equity with its interval (or "point estimate"), currency, horizon and as-of date.
    as_of : dict
        ``valued_as_of`` (the valuation table's observation end), ``backtest_calibration_end``
        and ``backtest_observation_end`` (ISO dates or ``None``).
    equity : dict
        ``mean``, ``lower``, ``upper``, ``prob``, ``point`` (a point fit: no interval),
        ``currency``, ``horizon`` (text), ``method``.
    checks : list of Check
    concentration : list of str
        Where value is concentrated (tier shares), one sentence per tier.
    at_risk : pandas.DataFrame
        Valuable customers (top ``VALUABLE_SHARE`` by expected CLV or past spend) with
        ``P(alive) < AT_RISK_P_ALIVE``, by past spend, highest first.
    caveats : list of str
        Properties of the model or the settings the user must know.
    next_steps : list of str
    """

    headline: str
    as_of: dict[str, Any]
    equity: dict[str, Any]
    checks: list[Check]
    concentration: list[str]
    at_risk: pd.DataFrame
    caveats: list[str]
    next_steps: list[str]

    @property
    def failed(self) -> list[Check]:
        """The checks that ran and failed."""
        return [c for c in self.checks if c.status == FAILED]

    @property
    def supported(self) -> bool | None:
        """Whether the backtest supports the model: ``None`` when no check ran."""
        ran = [c for c in self.checks if c.status != NA]
        return None if not ran else not any(c.status == FAILED for c in ran)

    def summary_sentence(self) -> str:
        """One sentence on the backtest's checks."""
        ran = [c for c in self.checks if c.status != NA]
        if not ran:
            return "No backtest checks were run."
        bad = self.failed
        if not bad:
            return f"The backtest supports the model: all {len(ran)} checks passed."
        names = "; ".join(c.title for c in bad)
        return (
            f"The backtest does not fully support the model: {len(bad)} of {len(ran)} checks "
            f"failed ({names})."
        )

    def to_text(self) -> str:
        """The verdict in plain words (what the command line prints).

        Examples
        --------
        >>> v = Verdict("Customer equity: 100 USD.", {}, {}, [], [], pd.DataFrame(), [], [])
        >>> print(v.to_text())
        Verdict
        Customer equity: 100 USD.
        No backtest checks were run.
        """
        lines = ["Verdict", self.headline, self.summary_sentence()]
        lines += [f"  {c.line()}" for c in self.checks]
        if self.concentration:
            lines.append("Where the value is:")
            lines += [f"  {s}" for s in self.concentration]
        if len(self.at_risk):
            lines.append(at_risk_sentence(self.at_risk))
        if self.caveats:
            lines.append("Caveats:")
            lines += [f"  {s}" for s in self.caveats]
        if self.next_steps:
            lines.append("What to do next:")
            lines += [f"  - {s}" for s in self.next_steps]
        return "\n".join(lines)


def p_text(p: float) -> str:
    """A p-value as text: ``"p = 0.19"``, ``"p < 0.001"``.

    Examples
    --------
    >>> p_text(0.18537), p_text(1e-9)
    ('p = 0.19', 'p < 0.001')
    """
    return f"p = {number(p, 2)}" if p >= 0.001 else "p < 0.001"


def prob_text(p: float) -> str:
    """A probability as text: ``"= 0.031"``, ``"< 0.001"``, ``"> 0.999"``.

    Examples
    --------
    >>> prob_text(0.0312), prob_text(0.0), prob_text(1.0)
    ('= 0.0312', '< 0.001', '> 0.999')
    """
    if p < 0.001:
        return "< 0.001"
    if p > 0.999:
        return "> 0.999"
    return f"= {number(p, 3)}"


def at_risk_sentence(at_risk: pd.DataFrame) -> str:
    """The sentence introducing the at-risk table."""
    n = at_risk.attrs.get("n_at_risk", len(at_risk))
    share = percent(VALUABLE_SHARE, 0)
    return (
        f"{count(n)} valuable customers are at risk: in the top {share} by expected CLV or by "
        f"past spend, with P(alive) below {percent(AT_RISK_P_ALIVE, 0)}."
    )


# ---------------------------------------------------------------------------------------------
# the checks
# ---------------------------------------------------------------------------------------------
def _aggregate_check(metrics: pd.DataFrame, row: str, prob: float, currency: str | None) -> Check:
    key, what = f"aggregate_{row}", f"Total holdout {row}"
    if row not in metrics.index:
        return Check(key, what, NA, f"no {row} in the backtest")
    m = metrics.loc[row]
    fmt = (lambda v: money(v, currency)) if row == "revenue" else count
    actual, pred = m["total_actual"], m["total_predicted"]
    err = m.get("aggregate_error_pct", np.nan)
    base = f"actual {fmt(actual)}, predicted {fmt(pred)} ({number(err, 3)}%)"
    p_ge = m.get("p_total_at_least_actual", np.nan)
    if not np.isfinite(p_ge):
        return Check(key, what, NA, base + "; the total's predictive interval was not computed")
    lo, hi = m["total_lower"], m["total_upper"]
    detail = (
        f"{base}; {percent(prob, 0)} predictive interval of the total {fmt(lo)} – {fmt(hi)}, "
        f"P(total >= actual) {prob_text(p_ge)}"
    )
    values = {"actual": actual, "predicted": pred, "lower": lo, "upper": hi, "p_ge": p_ge}
    if p_ge < (1 - prob) / 2:
        meaning = (
            f"forecasts of total {row} are too low: the actual total is above the predictive "
            "interval; plan with the upper bound, and expect the customer equity to be "
            "understated too"
        )
        action = (
            f"Plan {row} with the upper bound of the forecast (the model under-predicted the "
            f"holdout by {number(-err, 3)}%); look for what changed after the calibration end "
            "(campaigns, seasonality, new products)."
        )
        return Check(key, what, FAILED, detail, meaning, values, action)
    if p_ge > (1 + prob) / 2:
        meaning = (
            f"forecasts of total {row} are too high: the actual total is below the predictive "
            "interval; plan with the lower bound, and expect the customer equity to be "
            "overstated too"
        )
        action = (
            f"Plan {row} with the lower bound of the forecast (the model over-predicted the "
            f"holdout by {number(err, 3)}%)."
        )
        return Check(key, what, FAILED, detail, meaning, values, action)
    return Check(key, what, PASSED, detail, values=values)


def _coverage_check(metrics: pd.DataFrame, n: int, prob: float) -> Check:
    what = "Per-customer interval coverage"
    level = round(100 * prob)
    col = f"coverage_{level}"
    if "purchases" not in metrics.index or col not in metrics.columns:
        return Check("coverage", what, NA, f"no {level}% coverage in the backtest metrics")
    cov = float(metrics.loc["purchases", col])
    tol = max(0.02, 3 * np.sqrt(prob * (1 - prob) / max(n, 1)))
    detail = (
        f"{percent(cov)} of customers' holdout purchases fall in their {level}% interval "
        f"(nominal {level}%, tolerance ±{percent(tol)})"
    )
    values = {"coverage": cov, "nominal": prob, "tolerance": tol}
    if cov < prob - tol:
        meaning = (
            "per-customer intervals are too narrow: individual forecasts are more uncertain "
            "than stated; do not target single customers on their interval bounds"
        )
        action = "Judge single customers by their ranking, not by their interval bounds."
        return Check("coverage", what, FAILED, detail, meaning, values, action)
    if cov > prob + tol:
        meaning = "per-customer intervals are wider than needed: they overstate the uncertainty"
        action = "Read per-customer intervals as conservative."
        return Check("coverage", what, FAILED, detail, meaning, values, action)
    return Check("coverage", what, PASSED, detail, values=values)


def _calibration_check(ppc: pd.DataFrame, alpha: float) -> Check:
    what = "Calibration frequency check"
    chi2, p = ppc.attrs.get("chi_square"), ppc.attrs.get("p_value")
    if chi2 is None or p is None or not np.isfinite(p):
        return Check("calibration", what, NA, "no chi-square (too few customers per group)")
    detail = (
        f"chi-square {number(chi2)} ({ppc.attrs.get('dof', '?')} degrees of freedom), {p_text(p)}"
    )
    values = {"chi_square": chi2, "dof": ppc.attrs.get("dof"), "p_value": p}
    if p < alpha:
        meaning = (
            "the model does not reproduce how many repeat purchases customers made in the "
            "calibration period; forecasts for some purchase-frequency groups are biased (see "
            "the conditional expectations table)"
        )
        action = (
            "Compare actual and predicted holdout purchases by frequency group (conditional "
            "expectations) before acting on a group; consider segmenting the base."
        )
        return Check("calibration", what, FAILED, detail, meaning, values, action)
    return Check("calibration", what, PASSED, detail, values=values)


def _pit_check(pit: np.ndarray, alpha: float, bins: int = 10) -> Check:
    from scipy import stats

    what = "PIT uniformity"
    pit = np.asarray(pit, float)
    pit = pit[np.isfinite(pit)]
    if pit.size < 5 * bins:
        return Check("pit", what, NA, f"only {count(pit.size)} customers (need {5 * bins})")
    hist = np.histogram(pit, bins=bins, range=(0.0, 1.0))[0]
    expected = pit.size / bins
    chi2 = float(((hist - expected) ** 2 / expected).sum())
    p = float(stats.chi2.sf(chi2, bins - 1))
    low, high = hist[:2].sum() / pit.size, hist[-2:].sum() / pit.size
    detail = (
        f"chi-square {number(chi2)} over {bins} bins, {p_text(p)}; lowest 20% of PIT values hold "
        f"{percent(low)}, highest 20% hold {percent(high)}"
    )
    values = {"chi_square": chi2, "p_value": p, "histogram": hist.tolist()}
    if p >= alpha:
        return Check("pit", what, PASSED, detail, values=values)
    if high > 0.2 and low > 0.2:
        meaning = "both tails are too heavy: per-customer intervals are too narrow"
    elif high > low:
        meaning = "actual purchases tend to be above their forecasts: forecasts are too low"
    else:
        meaning = "actual purchases tend to be below their forecasts: forecasts are too high"
    action = "Check the PIT histogram in the backtest to see which customers are mis-forecast."
    return Check("pit", what, FAILED, detail, meaning + " for many customers", values, action)


def _tracking_check(bt: Any, prob: float, alpha: float) -> Check:
    from scipy import stats

    what = "Tracking per period"
    tr = getattr(bt, "tracking", None)
    if tr is None or not len(tr) or not {"actual", "lower", "upper"} <= set(tr.columns):
        return Check("tracking", what, NA, "no tracking table")
    band = tr.attrs.get("prob", prob)
    above = (tr["actual"] > tr["upper"]).to_numpy()
    below = (tr["actual"] < tr["lower"]).to_numpy()
    out = above | below
    K, n_out = len(tr), int(out.sum())
    p = float(stats.binom.sf(n_out - 1, K, 1 - band)) if n_out else 1.0
    detail = (
        f"{count(n_out)} of {count(K)} periods outside the {percent(band, 0)} per-period band "
        f"({number(K * (1 - band), 2)} expected by chance, {p_text(p)})"
    )
    values: dict[str, Any] = {"n_outside": n_out, "n_periods": K, "p_value": p}
    if p >= alpha:
        return Check("tracking", what, PASSED, detail, values=values)
    width = (tr["upper"] - tr["lower"]).clip(lower=1.0)
    excess = np.where(above, tr["actual"] - tr["upper"], tr["lower"] - tr["actual"]) / width
    worst = np.argsort(-np.where(out, excess, -np.inf))[: min(3, n_out)]
    step = parse_time_unit(bt.time_unit)
    cal = getattr(bt, "calibration_end", np.inf)
    named = []
    for k in worst:
        start = (pd.Timestamp(bt.origin) + k * step).date().isoformat()
        side = "holdout" if k >= cal else "calibration"
        named.append(
            f"period starting {start} ({side}): actual {count(tr['actual'].iloc[k])}, band "
            f"{count(tr['lower'].iloc[k])} – {count(tr['upper'].iloc[k])}"
        )
    values["worst_periods"] = named
    meaning = (
        f"more purchases than the model allows in {count(above.sum())} periods and fewer in "
        f"{count(below.sum())} (seasonal spikes, campaigns or acquisition waves the model does "
        "not know about); the largest: "
        + "; ".join(named)
        + ". Per-period forecasts are not reliable around such periods; totals over many "
        "periods are"
    )
    action = (
        "Do not plan single periods (weeks, months) from the model around seasonal peaks; "
        "plan totals over the horizon."
    )
    return Check("tracking", what, FAILED, detail, meaning, values, action)


def _sampler_checks(role: str, models: tuple[Any, ...]) -> list[Check]:
    out = []
    for model in models:
        if model is None or getattr(model, "method_", None) != "nuts":
            continue
        label = getattr(getattr(model, "spec", None), "label", type(model).__name__)
        d = model.diagnostics()
        detail = (
            f"max R-hat {number(d['max_rhat'], 4)}, min bulk ESS {count(d['min_ess_bulk'])}, "
            f"min tail ESS {count(d['min_ess_tail'])}, {count(d['divergences'])} divergences "
            f"({count(d['chains'])} chains x {count(d['draws'])} draws)"
        )
        what = f"Sampler diagnostics ({label}, {role})"
        if d["ok"]:
            out.append(Check("sampler", what, PASSED, detail, values=dict(d)))
        else:
            meaning = (
                "the posterior draws may not represent the posterior: do not trust these intervals"
            )
            action = "Refit with more tuning steps (--tune, tune=) or more draws."
            out.append(Check("sampler", what, FAILED, detail, meaning, dict(d), action))
    return out


# ---------------------------------------------------------------------------------------------
# value findings
# ---------------------------------------------------------------------------------------------
def is_point_value(value: Any) -> bool:
    """Whether a value result comes from point fits (one draw: no parameter uncertainty)."""
    return int(value.settings.get("n_draws", 2)) <= 1


def equity_figures(value: Any, prob: float) -> dict[str, Any]:
    """Equity mean and central interval, preferring the expected equity where there is one."""
    eq = value.equity_interval(prob)
    mean = getattr(value, "expected_equity", None)
    mean = float(np.mean(np.asarray(mean))) if mean is not None else float(eq["mean"])
    return {"mean": mean, "lower": float(eq["lower"]), "upper": float(eq["upper"])}


def _concentration(value: Any, prob: float, n: int) -> list[str]:
    try:
        tiers = value.tier_table(prob)
    except Exception:  # pragma: no cover - a value result without tiers
        return []
    out, prev = [], 0.0
    point = is_point_value(value)
    for name, row in tiers.iterrows():
        share = row["equity_share"]
        if not np.isfinite(share):
            text = "share of equity n/a (equity is 0 in every draw)"
        elif point or not np.isfinite(row["share_lower"]):
            text = f"{percent(share)} of the equity"
        else:
            text = (
                f"{percent(share)} of the equity ({percent(prob, 0)} interval "
                f"{percent(row['share_lower'])} – {percent(row['share_upper'])})"
            )
        band = (
            f"top {percent(row['top_share'], 0)}"
            if prev == 0
            else f"next {percent(row['top_share'] - prev, 0)}"
        )
        if row["top_share"] >= 1 and prev > 0:
            band = f"remaining {percent(1 - prev, 0)}"
        out.append(f"{name}: the {band} of customers ({count(row['count'])}) hold {text}.")
        prev = float(row["top_share"])
    return out


def _at_risk(summary: pd.DataFrame, rfm: pd.DataFrame | None) -> pd.DataFrame:
    clv_col = "expected_clv" if "expected_clv" in summary else "mean"
    table = pd.DataFrame(index=summary.index)
    table["expected_clv"] = summary[clv_col]
    table["p_alive"] = summary["p_alive"]
    if rfm is not None and {"frequency", "monetary_value"} <= set(rfm.columns):
        aligned = rfm.reindex(summary.index)
        table["past_spend"] = aligned["frequency"] * aligned["monetary_value"]
        table["frequency"] = aligned["frequency"]
    n = len(table)
    k = max(1, int(np.ceil(VALUABLE_SHARE * n)))
    valuable = table["expected_clv"].rank(ascending=False, method="first") <= k
    if "past_spend" in table:
        valuable |= table["past_spend"].rank(ascending=False, method="first") <= k
    risky = table[valuable & (table["p_alive"] < AT_RISK_P_ALIVE)]
    order = "past_spend" if "past_spend" in risky else "expected_clv"
    risky = risky.sort_values(order, ascending=False)
    risky.attrs["n_at_risk"] = len(risky)
    return risky


def _caveats(value: Any, summary: pd.DataFrame, rfm: pd.DataFrame | None) -> list[str]:
    out = []
    if rfm is not None and "frequency" in rfm and "p_alive" in summary:
        aligned = rfm.reindex(summary.index)
        one_time = (aligned["frequency"] == 0).to_numpy()
        n_one = int(one_time.sum())
        if n_one and bool((summary["p_alive"].to_numpy()[one_time] >= 0.9995).all()):
            unit = rfm.attrs.get("time_unit") or value.settings.get("time_unit", "W")
            year = float(to_units(pd.Timedelta(days=365.25), parse_time_unit(unit)))
            silent = int((aligned["T"].to_numpy()[one_time] >= year).sum()) if "T" in rfm else 0
            out.append(
                f"The purchase model gives P(alive) = 1 to all {count(n_one)} customers "
                f"without a repeat purchase ({count(silent)} of them silent for more than a "
                "year). This is a property of the model (in it a customer can drop out only "
                "after a repeat purchase), not evidence that they are active: rank them by "
                "expected purchases or expected CLV, not by P(alive)."
            )
    s = value.settings
    if float(s.get("margin", 1.0)) == 1.0 and not s.get("cost_per_period"):
        out.append(
            "Margin is 1 and there is no cost per period: the values are revenue, not profit. "
            "Give the margin (--margin, margin=) to value profit."
        )
    if is_point_value(value):
        out.append(
            "The models are point fits (MLE or MAP): the figures are point estimates without "
            "parameter uncertainty. Fit with NUTS for credible intervals."
            if s.get("method") == "expected"
            else "The models are point fits: intervals show only the randomness of customer "
            "behaviour, not the uncertainty of the parameters. Fit with NUTS for both."
        )
    return out


def verdict(
    value: Any = None,
    backtest: Any = None,
    *,
    transactions_model: Any = None,
    spend_model: Any = None,
    rfm: pd.DataFrame | None = None,
    prob: float = 0.9,
    alpha: float = 0.01,
    currency: str | None = None,
) -> Verdict:
    """The verdict on a pipeline: equity, the backtest's checks, concentration, risks, caveats.

    Parameters
    ----------
    value : clvkit.value.CustomerValue, optional
        The valuation (of the base as of the observation end).
    backtest : clvkit.evaluation.BacktestResult, optional
        The holdout backtest (a separate fit on the calibration window); its models' sampler
        diagnostics are checked too.
    transactions_model, spend_model : optional
        The fitted models of the valuation (sampler diagnostics of NUTS fits).
    rfm : pandas.DataFrame, optional
        The valuation's customer table (past spend, customers without repeat purchases).
    prob : float
        Interval mass throughout.
    alpha : float
        Significance level of the statistical checks.
    currency : str, optional
        Currency of the amounts (default: ``rfm.attrs["currency"]`` when there is one).

    Returns
    -------
    Verdict

    Examples
    --------
    >>> import clvkit
    >>> from clvkit.datasets import cdnow_transactions
    >>> post = {"r": 0.2426, "alpha": 4.4137, "a": 0.793, "b": 2.4262}
    >>> bt = clvkit.backtest(cdnow_transactions(), calibration_end="1997-09-30",
    ...                      observation_end="1998-06-30", transactions_model=post,
    ...                      n_samples=300, random_seed=0)
    >>> v = verdict(backtest=bt)
    >>> v.checks[0].status, v.checks[0].meaning.split(":")[0]
    ('failed', 'forecasts of total purchases are too low')
    """
    check_prob(prob)
    if currency is None and rfm is not None:
        currency = rfm.attrs.get("currency")
    checks: list[Check] = []
    as_of: dict[str, Any] = {
        "valued_as_of": rfm.attrs.get("observation_end") if rfm is not None else None,
        "backtest_calibration_end": None,
        "backtest_observation_end": None,
    }
    if backtest is not None:
        attrs = getattr(backtest, "rfm", pd.DataFrame()).attrs
        as_of["backtest_calibration_end"] = attrs.get("calibration_end")
        as_of["backtest_observation_end"] = attrs.get("observation_end")
        m = backtest.metrics
        checks.append(_aggregate_check(m, "purchases", prob, currency))
        if "revenue" in m.index:
            checks.append(_aggregate_check(m, "revenue", prob, currency))
        checks.append(_coverage_check(m, len(backtest.customers), prob))
        checks.append(_calibration_check(backtest.frequency_ppc, alpha))
        checks.append(_pit_check(backtest.customers["pit"].to_numpy(), alpha))
        checks.append(_tracking_check(backtest, prob, alpha))
        checks += _sampler_checks(
            "backtest fit", (backtest.transactions_model, backtest.spend_model)
        )
    checks += _sampler_checks("valuation fit", (transactions_model, spend_model))

    equity: dict[str, Any] = {"prob": prob, "currency": currency}
    concentration: list[str] = []
    at_risk = pd.DataFrame()
    caveats: list[str] = []
    if value is not None:
        s = value.settings
        figures = equity_figures(value, prob)
        point = is_point_value(value) and s.get("method") == "expected"
        horizon = horizon_text(s.get("horizon"), s.get("time_unit", "W"))
        equity |= figures | {"point": point, "horizon": horizon, "method": s.get("method")}
        when = f" as of {as_of['valued_as_of']}" if as_of["valued_as_of"] else ""
        amount = money(figures["mean"], currency)
        if point:
            headline = (
                f"Customer equity{when} over the next {horizon}: {amount} (point estimate "
                f"from point fits; no interval)."
            )
        else:
            kind = "predictive" if s.get("method") == "simulate" else "credible"
            headline = (
                f"Customer equity{when} over the next {horizon}: {amount} ({percent(prob, 0)} "
                f"{kind} interval {money(figures['lower'], currency)} – "
                f"{money(figures['upper'], currency)})."
            )
        if not currency:
            headline += " Amounts are in the log's currency (none was given)."
        summary = value.summary(prob if prob in (0.5, 0.8, 0.9, 0.95) else 0.9)
        concentration = _concentration(value, prob, len(summary))
        at_risk = _at_risk(summary, rfm)
        caveats = _caveats(value, summary, rfm)
    else:
        headline = "No valuation was run."

    steps = list(dict.fromkeys(c.action for c in checks if c.status == FAILED and c.action))
    if len(at_risk):
        steps.append(
            f"Contact the {count(len(at_risk))} valuable customers at risk (listed by past "
            "spend) before they are lost: a win-back offer costs less than a new customer."
        )
    if backtest is None and value is not None:
        steps.append("Run a backtest (clvkit report or clvkit backtest) before relying on it.")
    if not any(c.status == FAILED for c in checks) and value is not None:
        steps.append("Use the tier table to plan retention spend by tier; refit monthly.")
    return Verdict(headline, as_of, equity, checks, concentration, at_risk, caveats, steps)
