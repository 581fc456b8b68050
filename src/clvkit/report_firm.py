"""The report page of the firm's customer equity over time: the equity history with its
bridges, and the rolling-origin backtest that says how far to trust each horizon. Sentences
first (what happened, how sure it is), then the figures and tables."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvkit.errors import ClvkitError
from clvkit.report import Report
from clvkit.units import parse_time_unit
from clvkit.utils.checks import check_prob

__all__ = [
    "equity_sentences",
    "firm_report",
    "history_sentences",
    "horizon_words",
    "rolling_sentences",
]

#: Per-customer interval coverage within this distance of the nominal level reads as calibrated.
COVERAGE_SLACK = 0.05


def _money(v: float) -> str:
    return f"{v:,.0f}"


def _span(row: pd.Series) -> str:
    return f"{_money(row['mean'])} [{_money(row['lower'])}, {_money(row['upper'])}]"


def horizon_words(horizon: float, time_unit: str) -> str:
    """A horizon in words: whole years as years (``"5 years"`` for ``260.89 W``), else the
    number in the model's unit to 4 significant digits (``"52 W"``)."""
    text = f"{horizon:.4g} {time_unit}".strip()
    try:
        years = float(horizon * parse_time_unit(time_unit) / pd.Timedelta(days=365.25))
    except (ClvkitError, ValueError, TypeError):
        return text
    whole = round(years)
    if whole >= 1 and abs(years - whole) < 1e-3 * whole:
        return f"{whole} year{'s' if whole > 1 else ''} ({text})"
    return text


def equity_sentences(equity: Any, prob: float = 0.9) -> list[tuple[str, str]]:
    """What a firm valuation (:func:`clvkit.firm_equity`) says, in sentences with a css class
    each: the total and its split between today's and future customers with intervals, the
    acquisition assumption, a new customer's CLV:CAC and payback, and the largest lever."""
    s = equity.settings
    t = equity.summary(prob)
    pct = f"{prob:.0%}"
    kind = "predictive" if s.get("method") == "simulate" else "credible"
    n = len(equity.customer_value.summary(prob))
    horizon = horizon_words(float(s["horizon"]), str(s.get("time_unit", "")))
    out: list[tuple[str, str]] = []
    future = t.loc["future"]
    text = (
        f"Customer equity of the firm over {horizon}: {_span(t.loc['total'])} ({pct} {kind} "
        f"interval): today's {n:,} customers {_span(t.loc['existing'])}"
    )
    if future["mean"] == 0 and future["upper"] == 0:
        out.append((text + "; no future customers are counted.", "ok"))
    else:
        share = (
            f" ({t.loc['future_share', 'mean']:.0%} of the total)"
            if "future_share" in t.index
            else ""
        )
        out.append((text + f", future customers net of acquisition {_span(future)}{share}.", "ok"))
    acq = s.get("acquisition")
    if acq:
        out.append((str(acq), "warn" if "stopped" in str(acq) else "note"))
    if s.get("acquisition_note"):
        out.append((str(s["acquisition_note"]), "warn"))
    if s.get("acquisition_cost"):
        u = equity.unit_economics(prob)
        cac = float(s["acquisition_cost"])
        pays = np.isfinite(u["payback_median"])
        text = (
            f"A customer acquired today is worth {_money(u['clv_mean'])} "
            f"[{_money(u['clv_lower'])}, {_money(u['clv_upper'])}]: CLV:CAC "
            f"{u['clv_to_cac_mean']:.2f} [{u['clv_to_cac_lower']:.2f}, "
            f"{u['clv_to_cac_upper']:.2f}] at a CAC of {cac:,.2f}"
        )
        if pays:
            text += (
                f"; it pays the CAC back in period {u['payback_median']:.0f} "
                f"[{u['payback_lower']:g}, {u['payback_upper']:g}]"
            )
        text += f" ({u['p_payback']:.0%} of draws pay back within the horizon)."
        out.append((text, "ok" if u["clv_to_cac_lower"] >= 1 else "warn"))
    tornado = equity.sensitivities(prob=prob)
    if len(tornado):
        top = tornado.iloc[0]
        out.append(
            (
                f"The largest lever: {top['change']} moves equity by {_money(top['delta_mean'])} "
                f"[{_money(top['delta_lower'])}, {_money(top['delta_upper'])}] "
                f"({top['delta_pct']:+.1f}%), on the same draws.",
                "",
            )
        )
    return out


def history_sentences(history: Any, prob: float = 0.9) -> list[tuple[str, str]]:
    """What the equity history says, in sentences with a css class each (``"ok"``,
    ``"warn"``, ``""``): the change over the history with intervals, the largest parts of the
    bridges, the cut-offs valued by an earlier fit and how wide the intervals are."""
    t = history.table(prob)
    pct = f"{prob:.0%}"
    first, last = t.iloc[0], t.iloc[-1]
    c0, c1 = t.index[0].date(), t.index[-1].date()
    out: list[tuple[str, str]] = []
    # one draw per cut-off (MAP fits): no interval to state, and say so
    point = history.equity.sizes["chain"] * history.equity.sizes["draw"] == 1

    def span(mean: float, lo: float, hi: float) -> str:
        return _money(mean) if point else f"{_money(mean)} [{_money(lo)}, {_money(hi)}]"

    lines = (
        f"Customer equity on {c1} is {span(last['equity'], last['equity_lower'], last['equity_upper'])}"
        + (
            " (point fits: no interval; NUTS or Laplace fits give one)"
            if point
            else f" ({pct} interval)"
        )
        + f" for {int(last['customers']):,} customers"
    )
    if len(t) > 1:
        e = history.equity.values
        change = (e[-1] - e[0]).ravel()
        lo, hi = np.quantile(change, [(1 - prob) / 2, (1 + prob) / 2])
        rel = float(change.mean()) / max(abs(float(first["equity"])), 1e-12)
        sure = lo > 0 or hi < 0
        lines += (
            f"; {'up' if change.mean() > 0 else 'down'} {abs(rel):.0%} from {c0} "
            f"(change {span(change.mean(), lo, hi)}"
            + ("" if sure or point else ": the interval includes no change")
            + ")."
        )
        out.append((lines, "" if point else "ok" if sure else "warn"))
        b = history.bridge(prob)
        totals = {k: float(b[k].sum()) for k in ("new", "lost", "revaluation")}
        out.append(
            (
                f"Over the {len(b)} step(s): new customers added {_money(totals['new'])} "
                f"({int(b['new_customers'].sum()):,} customers), customers who became inactive "
                f"took {_money(-totals['lost'])} ({int(b['lost_customers'].sum()):,} "
                f"customers), and the revaluation of the rest was {_money(totals['revaluation'])}.",
                "",
            )
        )
        worst = b["lost"].idxmin()
        if b.loc[worst, "lost"] < 0:
            out.append(
                (
                    f"The largest loss to inactive customers was in the step to {worst.date()}: "
                    f"{span(-b.loc[worst, 'lost'], -b.loc[worst, 'lost_upper'], -b.loc[worst, 'lost_lower'])} with "
                    f"{int(b.loc[worst, 'lost_customers']):,} customers.",
                    "",
                )
            )
    else:
        out.append((lines + ".", "ok"))
    width = (t["equity_upper"] - t["equity_lower"]) / t["equity"].abs().clip(lower=1e-12)
    widest = width.idxmax()
    if width.max() > 0.3:
        why = (
            " (the earliest cut-off: the models saw the least data)" if widest == t.index[0] else ""
        )
        out.append(
            (
                f"Equity on {widest.date()} is uncertain: its {pct} interval spans "
                f"{width.max():.0%} of the mean{why}.",
                "warn",
            )
        )
    reused = [str(c.date()) for c, r in t.iterrows() if not r["refit"]]
    if reused:
        out.append(
            (
                f"Valued with an earlier fit (refit every {history.settings['refit']}): "
                f"{', '.join(reused)}; their revaluation does not include a model update.",
                "note",
            )
        )
    return out


def rolling_sentences(rolling: Any) -> list[tuple[str, str]]:
    """What a rolling-origin backtest says about trusting each horizon, in sentences."""
    by = rolling.by_horizon()
    prob = float(rolling.settings["prob"])
    unit = rolling.settings.get("time_unit", "")
    out: list[tuple[str, str]] = []
    if by.empty:
        return [("No (origin, horizon) window was inside the log.", "warn")]
    cov = by["coverage"]
    calibrated = bool((cov - prob).abs().max() <= COVERAGE_SLACK)
    h = [f"{x:g}" for x in by.index]
    out.append(
        (
            f"Per-customer {prob:.0%} intervals cover {', '.join(f'{c:.0%}' for c in cov)} of "
            f"customers at horizons {', '.join(h)} {unit}: "
            + ("calibrated." if calibrated else "not calibrated at every horizon."),
            "ok" if calibrated else "warn",
        )
    )
    out.append(
        (
            f"The mean absolute error per customer grows from {by['mae'].iloc[0]:.2f} to "
            f"{by['mae'].iloc[-1]:.2f} purchases from the shortest to the longest horizon.",
            "",
        )
    )
    miss = by["abs_aggregate_error_pct"]
    covered = by["total_covered"]
    bad = bool((covered < prob - 0.25).any())
    method = str((rolling.settings.get("fit_kwargs") or {}).get("method", "nuts"))
    point = method in ("map", "mle")
    why = (
        f" (a point fit, {method}: it holds each customer's luck but no parameter uncertainty)"
        if point
        else " (it holds parameter uncertainty and each customer's luck, not a model that is "
        "wrong in the same direction for every customer)"
    )
    out.append(
        (
            f"Totals over all customers miss by {miss.mean():.1f}% on average (absolute); the "
            f"{prob:.0%} interval of the total covered the actual in "
            f"{', '.join(f'{c:.0%}' for c in covered)} of origins by horizon"
            + (f": the total's interval is too narrow{why}. Read totals with a margin." if bad
               else "."),
            "warn" if bad else "ok",
        )
    )  # fmt: skip
    for note in getattr(rolling, "notes", []) or []:
        out.append((note, "note"))
    return out


def firm_report(
    history: Any = None,
    rolling: Any = None,
    *,
    equity: Any = None,
    cashflows: bool = True,
    prob: float = 0.9,
    title: str = "Customer equity of the firm",
) -> Report:
    """The report page of the firm's customer equity: a valuation with future customers
    (:func:`clvkit.firm_equity`), the equity history (:func:`clvkit.equity_history`) and the
    rolling-origin backtest (:func:`clvkit.rolling_backtest`); any of them may be left out.
    ``cashflows=False`` leaves out the valuation's per-period cash flows (one pass of the
    existing customers per period: slow for large bases).

    Returns
    -------
    Report
        ``.write(path)`` writes it atomically (``.html``).
    """
    if history is None and rolling is None and equity is None:
        raise ClvkitError(
            "firm_report needs a firm valuation, an equity history or a rolling backtest. "
            "Suggestion: firm_report(history=clvkit.equity_history(...))."
        )
    check_prob(prob)
    from clvkit.plots.firm import (
        plot_cashflows,
        plot_equity_bridge,
        plot_equity_history,
        plot_error_by_horizon,
        plot_sensitivities,
    )

    rep = Report(title, subtitle="")
    if equity is not None:
        rep.section("Value of the firm's customers: today's and future")
        rep.items(equity_sentences(equity, prob))
        rep.table(equity.summary(prob), note=f"lower/upper: {prob:.0%} interval over draws.")
        draws = {"what moves equity": lambda ax: plot_sensitivities(equity, ax, prob=prob)}
        if cashflows:
            draws["cash flow per period"] = lambda ax: plot_cashflows(equity, ax, prob=prob)
        rep.figures(draws)
        cols = ["change", "delta_mean", "delta_lower", "delta_upper", "delta_pct", "p_positive"]
        rep.table(equity.sensitivities(prob=prob)[cols], index=False,
                  note="Each lever recomputed on the same posterior draws.")  # fmt: skip
        if cashflows:
            c = equity.cashflows(prob)
            keep = ["start", "end", "new_customers", "existing_margin_mean",
                    "future_margin_mean", "acquisition_spend_mean", "net_mean", "net_lower",
                    "net_upper"]  # fmt: skip
            rep.table(c[keep], note="Discounted expected flows per cash-flow period.")
    if history is not None:
        s = history.settings
        t = history.table(prob)
        rep.subtitle = (
            f"{s['transactions_model']} + {s['spend_model']}, {len(t)} cut-offs from "
            f"{t.index[0].date()} to {t.index[-1].date()}, horizon {s['horizon']:g} "
            f"{s['time_unit']} at each."
        )
        rep.section("Customer equity at each cut-off")
        rep.items(history_sentences(history, prob))
        last = t.iloc[-1]
        rep.cards(
            {
                f"Equity on {t.index[-1].date()}": _money(last["equity"]),
                f"{prob:.0%} interval": f"{_money(last['equity_lower'])} to "
                f"{_money(last['equity_upper'])}",
                "Customers": f"{int(last['customers']):,}",
                "Cut-offs (refit)": f"{len(t)} ({int(t['refit'].sum())})",
            }
        )
        draws = {"equity over time": lambda ax: plot_equity_history(history, ax, prob=prob)}
        if len(t) > 1:
            draws["bridge, last step"] = lambda ax: plot_equity_bridge(history, ax=ax, prob=prob)
        rep.figures(draws)
        cols = ["customers", "new_customers", "lost_customers", "equity", "equity_lower",
                "equity_upper", "equity_per_customer", "fit_cutoff", "refit"]  # fmt: skip
        rep.table(t[cols], note=f"equity_lower/upper: {prob:.0%} credible interval.")
        if len(t) > 1:
            rep.section("Bridge from each cut-off to the next", level=3)
            b = history.bridge(prob)
            cols = ["from", "start", "new", "lost", "revaluation", "end", "new_customers",
                    "lost_customers", "refit"]  # fmt: skip
            rep.table(
                b[cols],
                note="start + new + lost + revaluation = end, in every posterior draw. Lost: "
                "no purchase between the cut-offs and P(alive) fell below "
                f"{s['lost_threshold']:g}.",
            )
    if rolling is not None:
        rep.section("How far to trust each horizon: rolling-origin backtest")
        rep.items(rolling_sentences(rolling))
        rep.figures({"error by horizon": lambda ax: plot_error_by_horizon(rolling, ax)})
        by = rolling.by_horizon()
        rep.table(pd.DataFrame(by), note="coverage: randomized PIT inside the central band.")
    return rep
