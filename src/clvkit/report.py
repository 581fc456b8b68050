"""A single self-contained HTML report: data, models and diagnostics, value, backtest.

Plots are embedded as base64 PNG images and tables as HTML, so the file can be mailed or
archived on its own. Writing is atomic (temporary file, then rename).
"""

from __future__ import annotations

import base64
import html
import io
import os
import platform
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from clvkit.errors import ClvkitError
from clvkit.models.registry import spec_of
from clvkit.report_covariates import covariate_section
from clvkit.utils import fmt
from clvkit.utils.io import atomic_path

__all__ = [
    "Report",
    "ReportRun",
    "build_report",
    "cell",
    "chi_square_text",
    "formatted",
    "package_versions",
    "report_from_log",
]

_PACKAGES = ("clvkit", "pymc", "pytensor", "nutpie", "arviz", "numpy", "pandas", "xarray")

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;color:#1d2330;
background:#f6f7f9}
main{max-width:1100px;margin:0 auto;padding:24px 32px 64px}
h1{font-size:1.7em;margin:0 0 4px}h2{margin-top:40px;border-bottom:2px solid #d6dbe3;
padding-bottom:4px}h3{margin-top:24px}
.sub{color:#5b6474;margin:0 0 16px}
.cards{display:flex;flex-wrap:wrap;gap:12px;margin:16px 0}
.card{background:#fff;border:1px solid #dde2ea;border-radius:8px;padding:12px 16px;min-width:180px}
.card .v{font-size:1.35em;font-weight:600}.card .l{color:#5b6474;font-size:.85em}
table{border-collapse:collapse;background:#fff;font-size:.88em;margin:8px 0 16px}
th,td{border:1px solid #dde2ea;padding:4px 8px;text-align:right}
th{background:#eef1f5}td:first-child,th:first-child{text-align:left}
.fig{display:inline-block;background:#fff;border:1px solid #dde2ea;border-radius:8px;
padding:8px;margin:6px}.fig img{display:block;max-width:500px}
.warn{background:#fff4e5;border:1px solid #f0b35b;border-radius:6px;padding:8px 12px}
.ok{background:#eaf7ee;border:1px solid #7cc493;border-radius:6px;padding:8px 12px}
.note{color:#5b6474;font-size:.9em}
li.ok,li.warn,li.note{list-style:none;margin:4px 0}
.verdict{background:#fff;border:2px solid #1d2330;border-radius:8px;padding:8px 20px 12px}
.asof{background:#eef1f5;border-radius:6px;padding:8px 12px}
"""


def package_versions(packages: tuple[str, ...] = _PACKAGES) -> dict[str, str]:
    """Installed versions of the packages a result depends on.

    Examples
    --------
    >>> "numpy" in package_versions()
    True
    """
    out = {"python": platform.python_version()}
    for name in packages:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def _figure_png(draw: Callable[[Any], Any], figsize: tuple[float, float]) -> str:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=figsize, dpi=110)
    try:
        draw(ax)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png")
    finally:
        plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


#: Column-name patterns and how their cells read (first match wins).
_COUNT_COLUMNS = ("count", "n_customers", "n_eligible", "ess", "frequency", "divergences")
_SHARE_COLUMNS = ("share", "coverage", "p_alive", "top_share")
_MONEY_COLUMNS = ("clv", "spend", "equity", "revenue", "monetary", "cut")


def cell(column: Any, v: Any, digits: int = 4, escape: bool = True) -> str:
    """One table cell as people read it: counts as integers, shares as percentages, amounts
    (CLV, spend, equity, revenue) as money, other numbers with at most ``digits``
    significant digits and 4 decimals, missing values as "–".

    Examples
    --------
    >>> cell("count", 24.0), cell("ess_bulk", 6675.259), cell("coverage_90", 0.902843)
    ('24', '6,675', '90.3%')
    >>> cell("mae", 0.007859073182081972), cell("mean", float("nan")), cell("tier", "gold")
    ('0.0079', '–', 'gold')
    >>> cell("expected_clv", 6.73e-14), cell("past_spend", 6292.31)
    ('0.00', '6,292')
    """
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}"
    if isinstance(v, (float, np.floating)):
        name = str(column).lower()
        if any(k in name for k in _COUNT_COLUMNS):
            return fmt.count(v)
        if (name.startswith("p_") and name not in ("p_value",)) or any(
            k in name for k in _SHARE_COLUMNS
        ):
            return fmt.percent(v)
        if any(k in name for k in _MONEY_COLUMNS):
            return fmt.money(v)
        if not np.isfinite(v):
            return fmt.NA
        if abs(v) >= 1000 or float(v).is_integer():
            return fmt.count(v)
        return fmt.number(v, digits)
    if v is None or (isinstance(v, float) and v != v):
        return fmt.NA
    return html.escape(str(v)) if escape else str(v)


def setting_text(v: Any) -> str:
    """A setting as text: numbers as :func:`clvkit.utils.fmt.number` writes them, ``None`` as
    "not given".

    Examples
    --------
    >>> setting_text(4.285714285714286), setting_text(None), setting_text("52W")
    ('4.286', 'not given', '52W')
    """
    if v is None:
        return "not given"
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return fmt.number(v)
    if isinstance(v, Mapping):
        return ", ".join(f"{k}={setting_text(x)}" for k, x in v.items())
    return str(v)


def formatted(
    frame: pd.DataFrame | pd.Series, by_row: bool = False, escape: bool = True
) -> pd.DataFrame:
    """A table's cells as text (:func:`cell`), read by column name or, with ``by_row``, by row
    name (a transposed metrics table); ``escape``: HTML-escape text cells.

    Examples
    --------
    >>> m = pd.DataFrame({"purchases": [0.902843, 1882.0]}, index=["coverage_90", "total"])
    >>> formatted(m, by_row=True)["purchases"].tolist()
    ['90.3%', '1,882']
    """
    if isinstance(frame, pd.Series):
        frame = frame.to_frame()
    out = pd.DataFrame(index=frame.index)
    for j, c in enumerate(frame.columns):
        col = frame.iloc[:, j]
        out[c] = [
            cell(r if by_row else c, v, escape=escape)
            for r, v in zip(frame.index, col, strict=True)
        ]
    return out


def _table(frame: pd.DataFrame | pd.Series, index: bool = True, by_row: bool = False) -> str:
    return formatted(frame, by_row).to_html(index=index, border=0, escape=False)


@dataclass
class Report:
    """An HTML report assembled section by section.

    Examples
    --------
    >>> rep = Report("Demo")
    >>> rep.section("Data")
    >>> rep.cards({"Customers": "2,357"})
    >>> "<h2>Data</h2>" in rep.to_html()
    True
    """

    title: str
    subtitle: str = ""
    _parts: list[str] = field(default_factory=list)
    n_figures: int = 0
    verdict: Any = None

    def section(self, title: str, level: int = 2) -> None:
        """Start a section."""
        self._parts.append(f"<h{level}>{html.escape(title)}</h{level}>")

    def text(self, text: str, css: str | None = None) -> None:
        """A paragraph (``css`` may be ``"warn"``, ``"ok"`` or ``"note"``)."""
        cls = f' class="{css}"' if css else ""
        self._parts.append(f"<p{cls}>{html.escape(text)}</p>")

    def pre(self, text: str) -> None:
        """Preformatted text."""
        self._parts.append(f"<pre>{html.escape(text)}</pre>")

    def cards(self, values: Mapping[str, str]) -> None:
        """Headline figures as cards."""
        cells = "".join(
            f'<div class="card"><div class="v">{html.escape(v)}</div>'
            f'<div class="l">{html.escape(k)}</div></div>'
            for k, v in values.items()
        )
        self._parts.append(f'<div class="cards">{cells}</div>')

    def table(
        self,
        frame: pd.DataFrame | pd.Series,
        index: bool = True,
        note: str | None = None,
        by_row: bool = False,
    ) -> None:
        """A table (cells as :func:`cell` writes them, by column or by row name), with an
        optional note under it."""
        self._parts.append(_table(frame, index=index, by_row=by_row))
        if note:
            self.text(note, css="note")

    def items(self, lines: list[tuple[str, str]]) -> None:
        """A list of ``(text, css)`` items (css ``"ok"``, ``"warn"``, ``"note"`` or ``""``)."""
        cells = "".join(
            f'<li class="{css}">{html.escape(text)}</li>'
            if css
            else f"<li>{html.escape(text)}</li>"
            for text, css in lines
        )
        self._parts.append(f"<ul>{cells}</ul>")

    def figures(
        self,
        draws: Mapping[str, Callable[[Any], Any]],
        figsize: tuple[float, float] = (6.0, 4.0),
    ) -> None:
        """Render each ``draw(ax)`` with matplotlib and embed it as a PNG."""
        cells = []
        for caption, draw in draws.items():
            png = _figure_png(draw, figsize)
            self.n_figures += 1
            cells.append(
                f'<div class="fig"><img alt="{html.escape(caption)}" '
                f'src="data:image/png;base64,{png}"><div class="note">'
                f"{html.escape(caption)}</div></div>"
            )
        self._parts.append("<div>" + "".join(cells) + "</div>")

    def raw(self, markup: str) -> None:
        """Markup written by clvkit itself (never user text)."""
        self._parts.append(markup)

    def to_html(self) -> str:
        """The whole document."""
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
        head = (
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body><main>"
            f"<h1>{html.escape(self.title)}</h1><p class='sub'>{html.escape(self.subtitle)} "
            f"Generated {stamp} by clvkit.</p>"
        )
        return head + "\n".join(self._parts) + "</main></body></html>"

    def write(self, path: str | os.PathLike[str]) -> str:
        """Write the report atomically; returns the path."""
        with atomic_path(path) as tmp:
            tmp.write_text(self.to_html(), encoding="utf-8")
        return os.fspath(path)


def _model_section(rep: Report, kind: str, model: Any, prob: float, role: str) -> None:
    """A model's section, from its spec (label, parameters) and its estimator's summary."""
    spec = spec_of(model, kind, "transactions_model" if kind == "purchase" else "spend_model")
    rep.section(f"{spec.label} {kind} model ({role})", level=3)
    rep.text(f"Parameters: {', '.join(spec.param_names)}.", css="note")
    method = getattr(model, "method_", None)
    if hasattr(model, "summary"):
        table = model.summary(prob)
        empty = [c for c in table.columns if table[c].isna().all()]
        rep.table(
            table.drop(columns=empty),
            note=f"Not shown for this fit (no sampler): {', '.join(map(str, empty))}."
            if empty
            else None,
        )
    covariate_section(rep, model, prob)  # a covariate model: its effects (else nothing)
    n_fit = getattr(model, "n_customers_", None)
    if kind == "spend" and n_fit is not None:
        rep.text(
            f"Fitted on the {fmt.count(n_fit)} customers with repeat purchases (the spend of "
            "the others is predicted from the population).",
            css="note",
        )
    if method == "nuts":
        d = model.diagnostics()
        figures = (
            f"max R-hat {fmt.number(d['max_rhat'])}, min bulk ESS {fmt.count(d['min_ess_bulk'])}, "
            f"min tail ESS {fmt.count(d['min_ess_tail'])}, {fmt.count(d['divergences'])} "
            f"divergences ({fmt.count(d['chains'])} chains x {fmt.count(d['draws'])} draws)"
        )
        if d["ok"]:
            rep.text(f"Sampler diagnostics passed: {figures}.", css="ok")
        else:
            rep.text(
                f"Sampler diagnostics FAILED: {figures}. Suggestion: more tuning steps or "
                "stronger priors before trusting these numbers.",
                css="warn",
            )
    elif method == "laplace":
        rep.text(
            "Laplace approximation: draws from a normal approximation of the posterior on the "
            "log scale at its mode (close to NUTS for large customer bases; skewed parameters "
            "of small bases are better served by NUTS).",
            css="note",
        )
    elif method is not None:
        rep.text(
            f"Point fit (method={method!r}): the parameters are point estimates; the intervals "
            "above are asymptotic (from the curvature of the likelihood), not posterior.",
            css="note",
        )


def chi_square_text(ppc: pd.DataFrame) -> str | None:
    """The report's line on the calibration frequency check (``None`` without a chi-square).

    Examples
    --------
    >>> ppc = pd.DataFrame({"actual": [1.0]})
    >>> ppc.attrs.update(chi_square=4.25, dof=2, p_value=0.119)
    >>> chi_square_text(ppc)
    'Calibration frequency posterior predictive check: chi-square 4.2 (2 degrees of freedom, p = 0.119).'
    """
    chi2 = ppc.attrs.get("chi_square")
    if chi2 is None:
        return None
    text = f"Calibration frequency posterior predictive check: chi-square {chi2:.1f}"
    if "dof" in ppc.attrs and "p_value" in ppc.attrs:
        text += f" ({ppc.attrs['dof']} degrees of freedom, p = {ppc.attrs['p_value']:.3f})"
    return text + "."


def _as_of(rfm: pd.DataFrame, backtest: Any) -> tuple[str, list[tuple[str, str]]]:
    """The subtitle (what the value is as of) and the lines on who is counted where."""
    attrs = rfm.attrs
    obs_end = attrs.get("observation_end", "?")
    lines: list[tuple[str, str]] = []
    if attrs.get("calibration_end"):
        # a calibration table: its customers and purchases stop at the calibration end
        sub = (
            f"Values as of {attrs['calibration_end']} (the calibration end), not of "
            f"{obs_end}: purchases and customers after {attrs['calibration_end']} are not in "
            "this valuation."
        )
        lines.append((sub, "warn"))
    else:
        sub = (
            f"Values as of {obs_end}: models fitted on all purchases up to {obs_end}, "
            f"{fmt.count(len(rfm))} customers known on that date."
        )
    if backtest is not None:
        bt_attrs = getattr(backtest, "rfm", pd.DataFrame()).attrs
        cal, end = bt_attrs.get("calibration_end", "?"), bt_attrs.get("observation_end", "?")
        sub += (
            f" Backtest: a separate fit on the calibration window (purchases to {cal}), "
            f"compared with the holdout ({cal} to {end})."
        )
        n_bt = len(backtest.rfm) if len(getattr(backtest, "rfm", ())) else len(backtest.customers)
        late = bt_attrs.get("late_customers")  # a count (or the ids) from the summaries
        if late is not None and not isinstance(late, (int, float, np.integer, np.floating)):
            late = len(late)
        if late is None and not attrs.get("calibration_end"):
            late = len(rfm.index.difference(backtest.customers.index))
        text = f"Backtest calibration: {fmt.count(n_bt)} customers known on {cal}."
        if late:
            example = bt_attrs.get("late_customers_example")
            text += (
                f" {fmt.count(late)} customers first seen after {cal} are valued but not in the "
                "backtest (they had no calibration history)"
                + (f", e.g. customer {example}" if example is not None else "")
                + "."
            )
        lines.append((text, ""))
    for table, label in ((rfm, "valuation"), (getattr(backtest, "rfm", None), "backtest")):
        if table is None:
            continue
        cleaning = table.attrs.get("cleaning") or {}
        found = {k: v for k, v in cleaning.items() if k != "rows" and v}
        if found:
            parts = "; ".join(f"{k.replace('_', ' ')}: {fmt.count(v)}" for k, v in found.items())
            rows = cleaning.get("rows")
            head = f"{fmt.count(rows)} rows" if rows is not None else "rows"
            lines.append((f"The log ({label}), {head}; {parts}.", "note"))
        n_late_rows = table.attrs.get("n_rows_after_observation_end")
        if n_late_rows:
            lines.append(
                (
                    f"{fmt.count(n_late_rows)} rows dated after "
                    f"{table.attrs.get('observation_end')} are left out of the {label}.",
                    "note",
                )
            )
        if label == "valuation" and table.attrs.get("currency"):
            lines.append((f"Currency: {table.attrs['currency']}.", "note"))
    return sub, lines


def _verdict_section(rep: Report, v: Any, prob: float) -> None:
    from clvkit.evaluation.verdict import at_risk_sentence

    rep.section("Verdict")
    rep.raw('<div class="verdict">')
    rep.text(v.headline)
    rep.text(v.summary_sentence())
    css = {"passed": "ok", "failed": "warn", "n/a": "note"}
    rep.items([(c.line(), css[c.status]) for c in v.checks])
    if v.concentration:
        rep.text("Where the value is:")
        rep.items([(t, "") for t in v.concentration])
    if len(v.at_risk):
        rep.text(at_risk_sentence(v.at_risk))
        shown = v.at_risk.head(10)
        rep.table(
            shown, note="The 10 with the highest past spend." if len(v.at_risk) > 10 else None
        )
    if v.caveats:
        rep.text("Caveats:")
        rep.items([(t, "note") for t in v.caveats])
    if v.next_steps:
        rep.text("What to do next:")
        rep.items([(t, "") for t in v.next_steps])
    rep.raw("</div>")


#: Row names of the comparison table as the report shows them (``p_loo`` would read as a share).
_COMPARISON_ROWS = {"p_loo": "effective parameters (p_loo)", "se": "elpd_loo se"}


def _comparison_section(rep: Report, comparison: Any) -> None:
    """ "Which model to trust": the words, the ranked table (models as columns) and the figure."""
    from clvkit import plots

    table = comparison.table
    pct = f"{comparison.prob:.0%}"
    rep.section("Which model to trust")
    n_cust, n_dist = table.attrs.get("n_customers"), table.attrs.get("n_distinct")
    rep.text(
        f"The models are fitted on the same calibration window and compared on its "
        f"{fmt.count(n_cust)} customers ({fmt.count(n_dist)} distinct histories) by PSIS-LOO "
        "(leave-one-customer-out predictive accuracy), and on the holdout by the log "
        "predictive score of each customer's purchase count, the error and the interval of the "
        "total. A difference smaller than 2 standard errors is within noise.",
        css="note",
    )
    rep.raw('<div class="verdict">')
    rep.items([(w, "") for w in comparison.words])
    rep.raw("</div>")
    shown = table.rename(columns={**_COMPARISON_ROWS, "coverage": f"coverage_{pct}"})
    shown = shown.set_axis([str(i) for i in shown.index]).T
    rep.table(
        shown,
        by_row=True,
        note="elpd_diff and log_score_diff: to the best model, with the standard errors of the "
        "paired differences; n_high_k: customers whose Pareto k exceeds "
        f"{table.attrs.get('k_threshold', 0.7):.2f} (LOO unreliable for them); weights: "
        f"stacking and pseudo-BMA; total_*: the holdout total, predicted mean, {pct} "
        "predictive interval and actual; coverage: share of customers inside their own "
        f"{pct} intervals (randomized PIT).",
    )
    figs = {"elpd_loo difference to the best model (±2 se)": lambda ax: (
        plots.plot_elpd_differences(table, ax=ax))}  # fmt: skip
    if "total_actual" in table:
        figs["Holdout total: predicted interval and actual"] = lambda ax: plots.plot_holdout_totals(
            table, ax=ax
        )
    rep.figures(figs)


def build_report(
    rfm: pd.DataFrame,
    transactions_model: Any,
    spend_model: Any,
    value: Any,
    backtest: Any = None,
    *,
    settings: Mapping[str, Any] | None = None,
    title: str = "Customer lifetime value report",
    prob: float = 0.9,
    top_customers: int = 25,
    currency: str | None = None,
    comparison: Any = None,
) -> Report:
    """Assemble the full report: the verdict first, then value, models and the backtest.

    The valuation (``rfm``, the models, ``value``) should be of the base as of the observation
    end (:func:`clvkit.rfm_summary` with ``observation_end``); the backtest is a separate fit on
    the calibration window. :func:`report_from_log` runs both from a log. A calibration table
    passed as ``rfm`` is labelled as such (values as of the calibration end), never as current.

    Parameters
    ----------
    rfm : pandas.DataFrame
        The customer table the valuation models were fitted on.
    transactions_model, spend_model
        Fitted models of any registered purchase and spend model (see
        :mod:`clvkit.models.registry`).
    value : clvkit.value.CustomerValue
        Result of :func:`clvkit.customer_value` on ``rfm``.
    backtest : clvkit.evaluation.BacktestResult, optional
        Holdout comparison (its own fit on the calibration window); left out when ``None``.
    settings : mapping, optional
        The settings used, shown verbatim.
    title : str
    prob : float
        Interval mass shown throughout.
    top_customers : int
        Rows of the most valuable customers table.
    currency : str, optional
        Currency of the amounts (default ``rfm.attrs["currency"]``).
    comparison : clvkit.evaluation.Comparison, optional
        A model comparison (:func:`clvkit.compare`): adds the section "Which model to trust".

    Returns
    -------
    Report
    """
    from clvkit import plots
    from clvkit.evaluation.verdict import equity_figures, is_point_value, verdict

    currency = currency or rfm.attrs.get("currency")
    unit = rfm.attrs.get("time_unit", "W")
    pct = f"{prob:.0%}"
    subtitle, counted = _as_of(rfm, backtest)
    short = (
        f"Valued as of {rfm.attrs.get('calibration_end') or rfm.attrs.get('observation_end', '?')}"
    )
    if backtest is not None:
        short += f"; backtest calibrated to {backtest.rfm.attrs.get('calibration_end', '?')}"
    rep = Report(title, subtitle=short + ".")
    v = verdict(
        value, backtest, transactions_model=transactions_model, spend_model=spend_model,
        rfm=rfm, prob=prob, currency=currency,
    )  # fmt: skip
    rep.verdict = v
    s = value.settings
    point = is_point_value(value)
    horizon = fmt.horizon_text(s.get("horizon"), s.get("time_unit", unit))
    money_label = currency or "log currency"
    eq = equity_figures(value, prob)
    nc = value.new_customer_value(prob)
    kind = "predictive" if s.get("method") == "simulate" else "credible"
    cards = {
        f"Customers as of {v.as_of['valued_as_of'] or '?'}": fmt.count(len(rfm)),
        "Repeat customers": fmt.count((rfm["frequency"] > 0).sum()),
        f"Customer equity, next {horizon} ({money_label})": fmt.money(eq["mean"]),
    }
    if not (point and s.get("method") == "expected"):
        cards[f"Equity {pct} {kind} interval ({money_label})"] = (
            f"{fmt.money(eq['lower'])} – {fmt.money(eq['upper'])}"
        )
    cards[f"New customer CLV, next {horizon} ({money_label})"] = fmt.money(nc["clv_mean"])
    rep.cards(cards)
    rep.raw('<div class="asof">')
    rep.items([(subtitle, ""), *counted])
    rep.raw("</div>")
    _verdict_section(rep, v, prob)

    rep.section("Customer value")
    if point:
        how = (
            "The models are point fits: each customer's value is a point estimate (one set of "
            "parameters), so there is no parameter uncertainty to show."
            + (
                " method='simulate': intervals show the randomness of each customer's future."
                if s.get("method") == "simulate"
                else ""
            )
        )
    else:
        how = (
            "Every draw pairs one posterior draw of the purchase model with one of the spend "
            "model (paired at random; the posteriors are independent), so the equity interval "
            "carries the uncertainty of both. "
            + (
                "method='simulate': each draw also simulates every customer's future, so "
                "intervals are predictive (parameter uncertainty plus the randomness of "
                "behaviour)."
                if s.get("method") == "simulate"
                else "method='expected': intervals are credible intervals of expected value "
                "(parameter uncertainty only)."
            )
        )
    rep.text(how, css="note")
    shown = {
        "horizon": horizon,
        "cash-flow period": fmt.horizon_text(s.get("period"), s.get("time_unit", unit)),
        "discounting": s.get("discounting"),
        "rate per period": fmt.percent(s.get("rate_per_period"), 3),
        "margin": fmt.number(s.get("margin")),
        "cost per period": fmt.money(s.get("cost_per_period", 0.0), currency),
        "acquisition cost": fmt.money(s["acquisition_cost"], currency)
        if s.get("acquisition_cost") is not None
        else "not given",
        "method": s.get("method"),
        "draws": fmt.count(s.get("n_draws")),
    }
    rep.table(pd.Series(shown, name="valuation setting"))
    rep.section("Value tiers", level=3)
    tiers = value.tier_table(prob)
    if point:
        tiers = tiers.drop(columns=[c for c in ("share_lower", "share_upper") if c in tiers])
    rep.table(
        tiers,
        note="Tiers by expected CLV: top_share is the cumulative share of customers ranked by "
        "CLV; count the customers in the tier (the same as the tier column of the per-customer "
        "table); equity_share the tier's share of total equity.",
    )
    n_zero = int(tiers.attrs.get("zero_equity_draws", 0))
    if n_zero:
        rep.text(
            f"Total equity is 0 in {fmt.count(n_zero)} of {fmt.count(s.get('n_draws'))} "
            "draws (every customer's CLV is 0 in them): those draws have no tier shares and "
            "are left out of the shares and their intervals.",
            css="note",
        )
    summary = value.summary(prob)
    rep.section(f"The {top_customers} most valuable customers", level=3)
    cols = [c for c in summary.columns if not c.startswith("p_") or c == "p_alive"]
    if point:
        cols = [c for c in cols if c not in ("lower", "upper", "median")]
    order = "expected_clv" if "expected_clv" in summary else "mean"
    top = summary.sort_values(order, ascending=False).head(top_customers)[cols]
    # the CLV columns read as money
    top = top.rename(columns={c: f"clv_{c}" for c in ("mean", "median", "lower", "upper")})
    rep.table(top)
    figs: dict[str, Callable[[Any], Any]] = {
        "Distribution of expected CLV over customers": lambda ax: plots.plot_clv_distribution(
            summary[order].to_numpy(), ax=ax
        ),
    }
    if not point:
        figs = {
            "Total customer equity over draws": lambda ax: plots.plot_equity(
                value.equity, prob=prob, ax=ax
            ),
            **figs,
        }
    rep.figures(figs)

    rep.section("Models")
    rep.text(f"Valuation fits: on all purchases to {v.as_of['valued_as_of'] or '?'}.", css="note")
    _model_section(rep, "purchase", transactions_model, prob, "valuation fit")
    _model_section(rep, "spend", spend_model, prob, "valuation fit")
    spec = spec_of(transactions_model, "purchase", "transactions_model")
    if set(spec.columns) == {"frequency", "recency", "T"} and "T" in rfm:
        T_ref = round(float(np.median(rfm["T"])), 1)
        span = fmt.horizon_text(T_ref, unit)
        age = f"recency (age at last purchase, {fmt.unit_name(unit)}); observed for {span}"

        def matrix(draw: Callable[[Any], Any], title: str) -> Callable[[Any], Any]:
            def run(ax: Any) -> Any:
                draw(ax)  # the plot's own labels, in the report's words and units
                ax.set(title=title, xlabel=age)
                return ax

            return run

        rep.figures(
            {
                f"P(alive) by frequency and recency (customers observed for {span})": matrix(
                    lambda ax: plots.plot_probability_alive_matrix(
                        transactions_model, T=T_ref, ax=ax
                    ),
                    "Probability alive",
                ),
                f"Expected purchases in the next {span}": matrix(
                    lambda ax: plots.plot_expected_purchases_matrix(
                        transactions_model, t=T_ref, T=T_ref, ax=ax
                    ),
                    f"Expected purchases in the next {span}",
                ),
            }
        )

    if backtest is not None:
        cal = v.as_of["backtest_calibration_end"] or "?"
        end = v.as_of["backtest_observation_end"] or "?"
        rep.section(f"Predicted vs actual: backtest fitted to {cal}, holdout to {end}")
        rep.text(
            f"A separate fit on the calibration window (purchases to {cal}) predicts the "
            f"holdout ({cal} to {end}); its customers are those known on {cal}. It tests the "
            "model, not the valuation above.",
            css="note",
        )
        n_pc, n_coh = (
            backtest.metrics.attrs.get("n_samples"),
            backtest.metrics.attrs.get("n_cohorts"),
        )
        if n_pc and n_coh:
            rep.text(
                f"Predictive intervals from {fmt.count(n_pc)} simulated futures per customer; "
                f"tracking and retention bands from {fmt.count(n_coh)} simulated cohorts.",
                css="note",
            )
        rep.table(backtest.metrics.T, by_row=True)
        rep.section("Conditional expectations by calibration frequency", level=3)
        ce = backtest.conditional_expectations
        rep.table(ce, note="– : no customer in the group." if ce.isna().any().any() else None)
        chi2 = chi_square_text(backtest.frequency_ppc)
        if chi2 is not None:
            rep.text(chi2)
        for kind_, model in (
            ("purchase", backtest.transactions_model),
            ("spend", backtest.spend_model),
        ):
            if model is not None and hasattr(model, "method_"):
                _model_section(rep, kind_, model, prob, "backtest fit")
        rep.figures(
            {
                "Cumulative repeat purchases": lambda ax: plots.plot_tracking(backtest, ax=ax),
                "Repeat purchases per period": lambda ax: plots.plot_tracking(
                    backtest, cumulative=False, ax=ax
                ),
                "Retention": lambda ax: plots.plot_retention(backtest, ax=ax),
                "Calibration frequency PPC": lambda ax: plots.plot_frequency_ppc(backtest, ax=ax),
                "Holdout by calibration frequency": lambda ax: plots.plot_conditional_expectations(
                    backtest, ax=ax
                ),
                "PIT of holdout purchases": lambda ax: plots.plot_pit(backtest, ax=ax),
            }
        )

    if comparison is not None:
        _comparison_section(rep, comparison)

    rep.section("Settings and versions")
    if settings:
        rep.table(pd.Series({k: setting_text(v_) for k, v_ in settings.items()}, name="value"))
    rep.table(pd.Series({k: setting_text(v_) for k, v_ in s.items()}, name="value"))
    rep.table(pd.Series(package_versions(), name="version"))
    return rep


@dataclass
class ReportRun:
    """Everything :func:`report_from_log` computed.

    Attributes
    ----------
    report : Report
    verdict : clvkit.evaluation.verdict.Verdict
    rfm : pandas.DataFrame
        The valuation table: all purchases to the observation end.
    transactions_model, spend_model
        The valuation fits (on ``rfm``).
    value : clvkit.value.CustomerValue
    backtest : clvkit.evaluation.BacktestResult
        The backtest, with its own fits on the calibration window.
    comparison : clvkit.evaluation.Comparison or None
        The model comparison on the calibration window (with ``compare=``).
    """

    report: Report
    verdict: Any
    rfm: pd.DataFrame
    transactions_model: Any
    spend_model: Any
    value: Any
    backtest: Any
    comparison: Any = None


def _quiet_step(text: str) -> None:
    """The default ``step`` of :func:`report_from_log`: no output."""


def report_from_log(
    transactions: Any,
    *,
    calibration_end: Any,
    observation_end: Any,
    time_unit: str = "W",
    customer_id: Any = "customer_id",
    date: Any = "date",
    amount: Any = "amount",
    tz: str | None = None,
    model: str = "bgnbd",
    spend_model: str = "gamma_gamma",
    compare: Sequence[str] | None = None,
    fit_kwargs: Mapping[str, Any] | None = None,
    value_kwargs: Mapping[str, Any] | None = None,
    cleaning: Mapping[str, Any] | None = None,
    prob: float = 0.9,
    n_samples: int | None = None,
    random_seed: int | None = None,
    title: str = "Customer lifetime value report",
    settings: Mapping[str, Any] | None = None,
    step: Callable[[str], None] | None = None,
    show_progress: bool = False,
    clock_start: float | None = None,
    covariates: Any = None,
    covariate_columns: str | Sequence[str] | None = None,
    categorical: str | Sequence[str] = (),
    segment: str | None = None,
    links: str | Sequence[str] | None = None,
) -> ReportRun:
    """Value a customer base as of ``observation_end`` and backtest the models; one report.

    Two fits, clearly separate:

    - **valuation**: the models fitted on all purchases up to ``observation_end``
      (:func:`clvkit.rfm_summary` with ``observation_end``: every customer known then; for a
      model of discrete opportunities such as BG/BB, :func:`clvkit.opportunity_summary` on a
      grid of ``time_unit`` opportunities, see :func:`clvkit.data.log_table`), and
      :func:`clvkit.customer_value` on that table;
    - **backtest**: the same models fitted on the calibration window (to ``calibration_end``)
      and compared with the holdout (:func:`clvkit.evaluation.backtest_split`).

    The spend model is fitted before the purchase model in each, so bad spend input (zero
    amounts of repeat customers, say) stops the run before any purchase sampling.

    Parameters
    ----------
    transactions : pandas.DataFrame, str or os.PathLike
        The purchase log (a CSV/Parquet path or glob: read by DuckDB for each summary).
    calibration_end, observation_end : str or pandas.Timestamp
        The backtest's calibration end, and the valuation date (the end of the holdout).
    time_unit, customer_id, date, amount, tz
        As in :func:`clvkit.rfm_summary` (``time_unit``: the opportunity period for BG/BB).
    model, spend_model : str
        Registered model names; ``model`` reads a table built from a log (``"rfm"`` or
        ``"opportunities"``).
    compare : sequence of str, optional
        Registered purchase models to compare (at least two, e.g. ``("bgnbd", "pnbd")``):
        each is fitted on the calibration window (the backtest's fit is reused for ``model``)
        and :func:`clvkit.compare` adds the section "Which model to trust". Needs posterior
        draws (``method="nuts"`` or ``"laplace"``).
    fit_kwargs : mapping, optional
        Passed to every ``fit`` (``method``, ``draws``, ``random_seed``...).
    value_kwargs : mapping, optional
        Passed to :func:`clvkit.customer_value` (``horizon``, ``method``, ``margin``, ...).
    cleaning : mapping, optional
        Cleaning options of the summaries (``returns``, ``zero_amounts``, ``duplicates``,
        ``currency``, ``fx_rate``, ``reporting_currency``), passed to both summaries.
    prob : float
        Interval mass of the backtest and the report.
    n_samples : int, optional
        Predictive samples of the backtest (default: sized to the base, see
        :func:`clvkit.evaluation.run.sample_counts`).
    random_seed : int, optional
    title : str
    settings : mapping, optional
        Shown in the report's settings table.
    step : callable, optional
        Called with a line of text at the start of each step (the CLI prints it).
    show_progress : bool
        Progress lines on stderr during fits, the backtest and the valuation.
    clock_start : float, optional
        ``time.perf_counter()`` the progress lines' elapsed times count from (default: the
        start of each step).
    covariates, covariate_columns, categorical, segment, links
        Covariates of every fit (:class:`clvkit.value.covariate_inputs.CovariateInputs`): a
        table (DataFrame or CSV/Parquet file) with ``customer_id`` and the columns, joined to
        both customer tables by id; its columns (default: all but the id and ``segment``), the
        numeric ones to treat as categorical, the segment column and the processes linked
        (default: every link of both models; see :func:`clvkit.with_covariates`).

    Returns
    -------
    ReportRun

    Examples
    --------
    >>> from clvkit.datasets import cdnow_transactions
    >>> run = report_from_log(cdnow_transactions(), calibration_end="1997-09-30",
    ...                       observation_end="1998-06-30", fit_kwargs={"method": "mle"},
    ...                       value_kwargs={"horizon": "52W", "annual_discount_rate": 0.1}, n_samples=200, random_seed=0)
    >>> len(run.rfm), len(run.backtest.customers)  # CDNOW: everyone bought by March 1997
    (2357, 2357)
    >>> run.verdict.as_of["valued_as_of"], run.verdict.as_of["backtest_calibration_end"]
    ('1998-06-30', '1997-09-30')
    """
    from clvkit.data.log_tables import check_log_table, log_table
    from clvkit.evaluation.run import backtest_split, fit_model
    from clvkit.evaluation.split import split_log
    from clvkit.models.registry import get
    from clvkit.utils.progress import heartbeat
    from clvkit.value.covariate_inputs import CovariateInputs
    from clvkit.value.engine import customer_value

    if amount is None:
        raise ClvkitError(
            "argument 'amount' is None, but the report values customers, which needs spend. "
            "Suggestion: pass the amount column (amount='amount'), or run clvkit.backtest "
            "for the purchase model alone."
        )
    step = step or _quiet_step
    data = check_log_table(get(model, "purchase").spec.data, "model")
    get(spend_model, "spend")  # a wrong name fails before any work
    fit_kwargs = dict(fit_kwargs or {})
    if random_seed is not None:
        fit_kwargs.setdefault("random_seed", random_seed)
    compared = _compared_models(compare, fit_kwargs.get("method", "nuts"), data)
    cleaning = {k: v for k, v in (cleaning or {}).items() if v is not None}
    columns = {"customer_id": customer_id, "date": date, "amount": amount, "tz": tz}
    # Both summaries read the log itself (a path through DuckDB), so each applies the cleaning
    # options and records its counts and currency in attrs, exactly as the API's calls do.
    source = transactions
    # the split first: it checks the two dates before anything else is summarized
    step(f"summarizing the log: calibration to {calibration_end}, holdout to {observation_end}")
    split = split_log(
        source, calibration_end=calibration_end, observation_end=observation_end,
        time_unit=time_unit, data=data, **columns, **cleaning,
    )  # fmt: skip
    step(f"summarizing the log to {observation_end} (valuation)")
    rfm = log_table(
        source, data, observation_end=observation_end, time_unit=time_unit, **columns, **cleaning
    )
    method = fit_kwargs.get("method", "nuts")
    cov = CovariateInputs.build(
        covariates, covariate_columns, categorical, segment, links, customer_id,
        string_ids=rfm.index.dtype.kind not in "iuf",
    )  # fmt: skip
    if cov is not None:  # joined to both tables by id; every fit gets the covariates
        import dataclasses

        cov.check_links(model, spend_model)
        rfm, split = cov.join(rfm), dataclasses.replace(split, rfm=cov.join(split.rfm))

    def fit(name: str, kind: str, table: pd.DataFrame, role: str) -> Any:
        step(f"fitting {name} ({method}) on {len(table):,} customers: {role}")
        with heartbeat(f"fitting {name} ({method}, {role})", show_progress, start=clock_start):
            if cov is not None:
                return cov.fit(name, kind, table, fit_kwargs)
            return fit_model(name, kind, table, fit_kwargs, data)

    gg = fit(spend_model, "spend", rfm, "valuation")
    bg = fit(model, "purchase", rfm, "valuation")
    value_kwargs = dict(value_kwargs or {})
    step(f"valuing {len(rfm):,} customers as of {rfm.attrs.get('observation_end')}")
    value = customer_value(
        bg, gg, rfm, random_seed=random_seed, progressbar=show_progress, **value_kwargs
    )
    bt_gg = fit(spend_model, "spend", split.rfm, "backtest")
    bt_bg = fit(model, "purchase", split.rfm, "backtest")
    step(f"backtest: calibration to {calibration_end}, holdout to {observation_end}")
    with heartbeat("backtest", show_progress, start=clock_start):
        bt = backtest_split(
            split, transactions_model=bt_bg, spend_model=bt_gg, prob=prob,
            n_samples=n_samples, random_seed=random_seed,
        )  # fmt: skip
    comparison = None
    if compared:
        from clvkit.evaluation.compare_models import compare as run_comparison

        fits = {
            n: bt_bg if n == bt_bg.spec.name else fit(n, "purchase", split.rfm, "comparison")
            for n in compared
        }
        step(f"comparing {', '.join(compared)} on the calibration window and the holdout")
        with heartbeat("model comparison", show_progress, start=clock_start):
            comparison = run_comparison(
                fits, split.rfm, prob=prob, n_samples=n_samples, random_seed=random_seed
            )
    step("rendering the report")
    rep = build_report(
        rfm, bg, gg, value, bt, settings=settings, title=title, prob=prob, comparison=comparison
    )
    return ReportRun(rep, rep.verdict, rfm, bg, gg, value, bt, comparison)


def _compared_models(compare: Sequence[str] | None, method: str, data: str = "rfm") -> list[str]:
    """The registered short names of ``compare`` (checked before any work: models reading the
    ``data`` table), at least two, with a fit that gives posterior draws."""
    if compare is None:
        return []
    from clvkit.models.registry import get

    if isinstance(compare, str):
        compare = [c for c in compare.split(",") if c.strip()]
    wanted = list(dict.fromkeys(get(str(n).strip(), "purchase", data).spec.name for n in compare))
    if len(wanted) < 2:
        raise ClvkitError(
            f"argument 'compare' names {len(wanted)} purchase model; a comparison needs at "
            "least 2. Suggestion: compare=('bgnbd', 'pnbd')."
        )
    if method not in ("nuts", "laplace"):
        raise ClvkitError(
            f"argument 'compare' needs posterior draws (PSIS-LOO), but the fits use "
            f"method={method!r}, a point fit. Suggestion: fit_kwargs={{'method': 'laplace'}} "
            "or 'nuts'."
        )
    return wanted


def retention_report(
    result: Any, title: str = "Predicted vs actual retention", valuation: Any = None
) -> Report:
    """The report page of a contractual backtest (:func:`clvkit.retention_backtest`): the
    verdict, headline figures, the overall table, cohort fans and the retention-rate curve;
    with ``valuation`` (a :func:`clvkit.subscriber_value` or
    :func:`clvkit.evaluation.retention.subscriber_base_value` result) also the section "Value
    of the subscriber base": equity with credible and predictive intervals, the retention
    elasticity, value and DERL by tenure.

    Returns
    -------
    Report
        ``.write(path)`` writes it atomically (``.html``).
    """
    from clvkit.plots.retention import plot_retention_fan, plot_retention_rate_curve

    m, allp = result.metrics, result.periods.loc["all"]
    pct = f"{result.prob:.0%}"
    rep = Report(
        title,
        subtitle=f"Calibration to {result.calibration_end}, holdout to {result.observation_end} "
        f"({len(allp)} periods of {result.time_unit}).",
    )
    rep.text(result.verdict, css="ok" if 0.8 <= m["randomized_coverage"] <= 0.97 else "warn")
    rep.cards(
        {
            "Subscribers (spells)": f"{int(m['n_customers']):,}",
            "Active at the calibration end": f"{int(m['n_active']):,}",
            f"Cohort-periods inside the {pct} band": f"{int(m['covered_cells'])} of "
            f"{int(m['cells'])}",
            "Per-subscriber MAE (renewals)": f"{m['mae']:.2f}",
        }
    )
    rep.section("All cohorts, per period")
    cols = ["period_end", "active_start", "actual", "expected", "lower", "upper", "pred_lower",
            "pred_upper", "actual_rate", "predicted_rate"]  # fmt: skip
    rep.table(allp[cols], note=f"lower/upper: {pct} credible band of the expected count; "
              f"pred_lower/pred_upper: {pct} predictive band of the count.")  # fmt: skip
    rep.section("Cohorts")
    names = [c for c in dict.fromkeys(result.periods.index.get_level_values(0)) if c != "all"]
    rep.figures(
        {f"cohort {c}": (lambda ax, c=c: plot_retention_fan(result, c, ax=ax)) for c in names[-8:]}
        | {"all cohorts": lambda ax: plot_retention_fan(result, "all", ax=ax)},
        figsize=(4.6, 3.2),
    )
    rep.section("Retention rate by tenure")
    rep.figures({"retention rate by tenure": lambda ax: plot_retention_rate_curve(result, ax=ax)})
    if valuation is not None:
        _subscriber_value_section(rep, valuation)
    return rep


def _subscriber_value_section(rep: Report, val: Any) -> None:
    """The section "Value of the subscriber base" of :func:`retention_report`."""
    from clvkit.plots.subscriptions import plot_value_by_tenure

    s, st = val.summary(), val.settings
    pct = f"{st['prob']:.0%}"

    def span(row: str, fmt: str) -> str:
        return f"{fmt.format(s.loc[row, 'lower'])} to {fmt.format(s.loc[row, 'upper'])}"

    rep.section("Value of the subscriber base")
    rep.text(
        f"The model fitted on all contracts to {st.get('observation_end') or 'the observation end'}"
        f" values the {st['n_customers']:,} active subscribers (each one's fee times the margin "
        f"{st['margin']:g}, over {st['horizon']:g} periods of {st['time_unit']} at "
        f"{st['rate_per_period']:.4%} a period; a subscriber's value is margin x fee x "
        "DERL / (1 + d), DERL at its tenure).",
        css="note",
    )
    cards = {f"Equity (posterior mean; {pct} credible {span('equity', '{:,.0f}')})":
             f"{s.loc['equity', 'mean']:,.0f}"}  # fmt: skip
    if "equity_predictive" in s.index:
        cards[f"{pct} predictive interval of the realized value"] = span(
            "equity_predictive", "{:,.0f}"
        )
    if "elasticity" in s.index:
        pts = f"{st['points'] * 100:g} point"
        cards[
            f"Equity change for {pts} more retention ({pct}: {span('elasticity', '{:+.2%}')})"
        ] = f"{s.loc['elasticity', 'mean']:+.2%}"
        cards[f"The same in value ({pct}: {span('equity_gain', '{:+,.0f}')})"] = (
            f"{s.loc['equity_gain', 'mean']:+,.0f}"
        )
    rep.cards(cards)
    cols = [c for c in ("n_active", "fees", "derl", "derl_lower", "derl_upper",
                        "value_per_subscriber", "value", "value_lower", "value_upper", "share")
            if c in val.by_tenure.columns]  # fmt: skip
    rep.table(
        val.by_tenure[cols],
        note=f"By tenure (renewals paid): fee = the group's fee per period; derl = discounted "
        f"expected residual lifetime (periods) with its {pct} credible interval; value = the "
        f"group's value with its {pct} credible interval; share = of the mean equity.",
    )
    rep.figures({"value by tenure": lambda ax: plot_value_by_tenure(val, ax=ax)})
