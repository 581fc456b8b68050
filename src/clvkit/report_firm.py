"""The report page of the firm's customer equity over time: the equity history with its
bridges, and the rolling-origin backtest that says how far to trust each horizon. Sentences
first (what happened, how sure it is), then the figures and tables."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvkit.errors import ClvkitError
from clvkit.report import Report

__all__ = ["firm_report", "history_sentences", "rolling_sentences"]

#: Per-customer interval coverage within this distance of the nominal level reads as calibrated.
COVERAGE_SLACK = 0.05


def _money(v: float) -> str:
    return f"{v:,.0f}"


def history_sentences(history: Any, prob: float = 0.9) -> list[tuple[str, str]]:
    """What the equity history says, in sentences with a css class each (``"ok"``,
    ``"warn"``, ``""``): the change over the history with intervals, the largest parts of the
    bridges, the cut-offs valued by an earlier fit and how wide the intervals are."""
    t = history.table(prob)
    pct = f"{prob:.0%}"
    first, last = t.iloc[0], t.iloc[-1]
    c0, c1 = t.index[0].date(), t.index[-1].date()
    out: list[tuple[str, str]] = []
    lines = (
        f"Customer equity on {c1} is {_money(last['equity'])} [{_money(last['equity_lower'])}, "
        f"{_money(last['equity_upper'])}] ({pct} interval) for {int(last['customers']):,} "
        "customers"
    )
    if len(t) > 1:
        e = history.equity.values
        change = (e[-1] - e[0]).ravel()
        lo, hi = np.quantile(change, [(1 - prob) / 2, (1 + prob) / 2])
        rel = float(change.mean()) / max(abs(float(first["equity"])), 1e-12)
        sure = lo > 0 or hi < 0
        lines += (
            f"; {'up' if change.mean() > 0 else 'down'} {abs(rel):.0%} from {c0} "
            f"(change {_money(change.mean())} [{_money(lo)}, {_money(hi)}]"
            + ("" if sure else ": the interval includes no change")
            + ")."
        )
        out.append((lines, "ok" if sure else "warn"))
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
                    f"{_money(-b.loc[worst, 'lost'])} [{_money(-b.loc[worst, 'lost_upper'])}, "
                    f"{_money(-b.loc[worst, 'lost_lower'])}] with "
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
    prob: float = 0.9,
    title: str = "Customer equity over time",
) -> Report:
    """The report page of the equity history (:func:`clvkit.equity_history`) and the
    rolling-origin backtest (:func:`clvkit.rolling_backtest`); either may be left out.

    Returns
    -------
    Report
        ``.write(path)`` writes it atomically (``.html``).
    """
    if history is None and rolling is None:
        raise ClvkitError(
            "firm_report needs an equity history or a rolling backtest. Suggestion: "
            "firm_report(history=clvkit.equity_history(...))."
        )
    if not 0 < prob < 1:
        raise ClvkitError(f"argument 'prob' must be in (0, 1), got {prob!r}. Suggestion: 0.9.")
    from clvkit.plots.firm import plot_equity_bridge, plot_equity_history, plot_error_by_horizon

    rep = Report(title, subtitle="")
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
