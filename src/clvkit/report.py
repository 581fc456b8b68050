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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from typing import Any

import numpy as np
import pandas as pd

from clvkit.models.registry import spec_of
from clvkit.utils.io import atomic_path

__all__ = ["Report", "build_report", "chi_square_text", "package_versions"]

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


def _table(frame: pd.DataFrame | pd.Series, digits: int = 3, index: bool = True) -> str:
    if isinstance(frame, pd.Series):
        frame = frame.to_frame()

    def fmt(v: Any) -> str:
        if isinstance(v, (float, np.floating)):
            if not np.isfinite(v):
                return "–"
            return f"{v:,.{digits}f}" if abs(v) < 1e6 else f"{v:,.0f}"
        return html.escape(str(v))

    return frame.to_html(
        index=index, border=0, formatters={c: fmt for c in frame.columns}, escape=False
    )


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

    def table(self, frame: pd.DataFrame | pd.Series, digits: int = 3, index: bool = True) -> None:
        """A table."""
        self._parts.append(_table(frame, digits=digits, index=index))

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


def _fmt_money(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:,.2f}"


def _model_section(rep: Report, kind: str, model: Any, prob: float) -> None:
    """A model's section, from its spec (label, parameters) and its estimator's summary."""
    spec = spec_of(model, kind, "transactions_model" if kind == "purchase" else "spend_model")
    rep.section(f"{spec.label} {kind} model", level=3)
    rep.text(f"Parameters: {', '.join(spec.param_names)}.", css="note")
    method = getattr(model, "method_", None)
    if hasattr(model, "summary"):
        rep.table(model.summary(prob))
    if method == "nuts":
        d = model.diagnostics()
        figures = (
            f"max R-hat {d['max_rhat']:.3f}, min bulk ESS {d['min_ess_bulk']:.0f}, "
            f"min tail ESS {d['min_ess_tail']:.0f}, {d['divergences']} divergences "
            f"({d['chains']} chains x {d['draws']} draws)"
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
            f"Point fit (method={method!r}): intervals are asymptotic, not posterior.",
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
) -> Report:
    """Assemble the full report from a fitted pipeline.

    Parameters
    ----------
    rfm : pandas.DataFrame
        The calibration RFM table the models were fitted on.
    transactions_model, spend_model
        Fitted models of any registered purchase and spend model (see
        :mod:`clvkit.models.registry`).
    value : clvkit.value.CustomerValue
        Result of :func:`clvkit.customer_value`.
    backtest : clvkit.evaluation.BacktestResult, optional
        Holdout comparison; its section is left out when ``None``.
    settings : mapping, optional
        The settings used, shown verbatim.
    title : str
    prob : float
        Interval mass shown throughout.
    top_customers : int
        Rows of the most valuable customers table.

    Returns
    -------
    Report
    """
    from clvkit import plots

    unit = rfm.attrs.get("time_unit", "?")
    pct = f"{prob:.0%}"
    rep = Report(
        title,
        subtitle=f"Time unit: {unit}; observation end {rfm.attrs.get('observation_end', '?')}.",
    )
    eq = value.equity_interval(prob)
    nc = value.new_customer_value(prob)
    rep.cards(
        {
            "Customers": f"{len(rfm):,}",
            "Repeat customers": f"{int((rfm['frequency'] > 0).sum()):,}",
            f"Customer equity (mean, {value.settings['method']})": _fmt_money(eq["mean"]),
            f"Equity {pct} interval": f"{_fmt_money(eq['lower'])} – {_fmt_money(eq['upper'])}",
            "New customer CLV": f"{_fmt_money(nc['clv_mean'])}",
        }
    )

    rep.section("Customer value")
    rep.text(
        "Every draw pairs one posterior draw of the purchase model with one of the spend model "
        "(paired at random; the posteriors are independent), so the equity interval carries "
        "the uncertainty of both. "
        + (
            "method='simulate': each draw also simulates every customer's future, so intervals "
            "are predictive (parameter uncertainty plus the randomness of behaviour)."
            if value.settings["method"] == "simulate"
            else "method='expected': intervals are credible intervals of expected value "
            "(parameter uncertainty only)."
        ),
        css="note",
    )
    rep.pre(value.report(prob))
    rep.section("Value tiers", level=3)
    rep.table(value.tier_table(prob))
    summary = value.summary(prob)
    rep.section(f"The {top_customers} most valuable customers", level=3)
    cols = [c for c in summary.columns if not c.startswith("p_") or c == "p_alive"]
    top = summary.sort_values("mean", ascending=False).head(top_customers)[cols]
    rep.table(top, digits=2)
    figs: dict[str, Callable[[Any], Any]] = {
        "Total customer equity over posterior draws": lambda ax: plots.plot_equity(
            value.equity, prob=prob, ax=ax
        ),
        "Distribution of expected CLV over customers": lambda ax: plots.plot_clv_distribution(
            summary["mean"].to_numpy(), ax=ax
        ),
    }
    rep.figures(figs)

    rep.section("Models")
    _model_section(rep, "purchase", transactions_model, prob)
    _model_section(rep, "spend", spend_model, prob)
    spec = spec_of(transactions_model, "purchase", "transactions_model")
    if set(spec.columns) == {"frequency", "recency", "T"} and "T" in rfm:
        T_ref = float(np.median(rfm["T"]))
        rep.figures(
            {
                f"P(alive) by frequency and recency (T = {T_ref:.0f} {unit})": lambda ax: (
                    plots.plot_probability_alive_matrix(transactions_model, T=T_ref, ax=ax)
                ),
                f"Expected purchases in the next {T_ref:.0f} {unit}": lambda ax: (
                    plots.plot_expected_purchases_matrix(
                        transactions_model, t=T_ref, T=T_ref, ax=ax
                    )
                ),
            }
        )

    if backtest is not None:
        rep.section("Predicted vs actual (holdout backtest)")
        rep.table(backtest.metrics)
        rep.section("Conditional expectations by calibration frequency", level=3)
        rep.table(backtest.conditional_expectations)
        chi2 = chi_square_text(backtest.frequency_ppc)
        if chi2 is not None:
            rep.text(chi2)
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

    rep.section("Settings and versions")
    if settings:
        rep.table(pd.Series({k: str(v) for k, v in settings.items()}, name="value"))
    rep.table(pd.Series(value.settings, name="value").astype(str))
    rep.table(pd.Series(package_versions(), name="version"))
    return rep
