"""``clvkit equity``, ``clvkit history`` and ``clvkit rolling``: the firm's customer equity
with future cohorts, equity at a series of cut-offs and the rolling-origin backtest."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

from clvkit.cli.common import fit_kwargs, fit_models, model_classes, summary_kwargs
from clvkit.cli.console import Console
from clvkit.errors import ClvkitError


def _dates_or_step(text: str, flag: str) -> str | list[str]:
    """``--cutoffs``/``--origins``: a step such as ``13W`` (kept as text) or comma-separated
    dates."""
    text = text.strip()
    if re.fullmatch(r"\d+(\.\d+)?\s*[A-Za-z]+", text):
        return text
    dates = [t.strip() for t in text.split(",") if t.strip()]
    if not dates:
        raise ClvkitError(
            f"argument '{flag}' is empty. Suggestion: a step such as 13W, or dates such as "
            "1997-06-30,1997-09-30."
        )
    return dates


def _plot_files(staging: Path, drawings: dict[str, Any]) -> None:
    """Each ``name -> draw(ax)`` as ``name.png`` in ``staging``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    for name, draw in drawings.items():
        fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
        draw(ax)
        fig.tight_layout()
        fig.savefig(staging / f"{name}.png")
        plt.close(fig)


def _plan_counts(text: str, args: argparse.Namespace) -> list[float]:
    """``--plan``: one count (every cash-flow period of the horizon) or one per period."""
    from clvkit.units import parse_time_unit
    from clvkit.value.settings import CashflowSettings

    try:
        counts = [float(c) for c in text.split(",") if c.strip()]
    except ValueError:
        counts = []
    if not counts:
        raise ClvkitError(
            f"argument '--plan' is {text!r}; it takes new customers per cash-flow period: one "
            "number (every period) or one per period. Suggestion: --plan 500 or "
            "--plan 400,450,500."
        )
    if len(counts) == 1:
        flow = CashflowSettings.build(
            None, horizon=args.horizon, period=args.period,
            annual_discount_rate=args.annual_discount_rate,
        )  # fmt: skip
        plan, _ = flow.plan(parse_time_unit(args.time_unit))
        counts = counts * int(plan.n_periods)
    return counts


def cmd_equity(args: argparse.Namespace) -> int:
    """The firm's customer equity: today's customers and future cohorts
    (:func:`clvkit.firm_equity`), with sensitivities and unit economics."""
    from clvkit.utils.io import prepare_output_dir, staged_output_dir
    from clvkit.utils.progress import heartbeat

    out = prepare_output_dir(args.out)
    model_classes(args)
    con = Console(args.quiet)
    plan_counts = None if args.plan is None else _plan_counts(args.plan, args)
    from clvkit.data.summary import rfm_summary

    con.step(f"summarizing {args.purchases}")
    rfm = rfm_summary(args.purchases, **summary_kwargs(args))
    purchase, spend = fit_models(rfm, args, con)
    from clvkit.firm import AcquisitionModel, AcquisitionPlan, acquisition_counts, firm_equity

    if plan_counts is not None:
        acquisition = AcquisitionPlan(plan_counts, cv=args.plan_cv, random_seed=args.seed)
    elif args.acquisition == "model":
        period = args.acquisition_period or args.time_unit
        counts = acquisition_counts(
            args.purchases, customer_id=args.customer_id, date=args.date, period=period
        )
        con.step(f"fitting the acquisition model on {len(counts)} periods of {period}")
        acquisition = AcquisitionModel(seasonality=args.seasonality).fit(
            counts, random_seed=args.seed, progressbar=False
        )
    else:
        acquisition = None
    con.step("valuing today's customers and the future cohorts")
    with heartbeat("firm equity", not args.quiet, start=con.t0):
        fe = firm_equity(
            purchase, spend, rfm, acquisition, horizon=args.horizon, period=args.period,
            annual_discount_rate=args.annual_discount_rate, discounting=args.discounting,
            margin=args.margin, acquisition_cost=args.acquisition_cost or 0.0,
            cost_per_period=args.cost_per_period, method=args.value_method,
            draws=args.value_draws, random_seed=args.seed, progressbar=not args.quiet,
        )  # fmt: skip
    from clvkit import plots
    from clvkit.report_firm import equity_sentences, firm_report

    with staged_output_dir(out, command="equity") as staging:
        fe.summary(args.prob).to_csv(staging / "summary.csv")
        fe.sensitivities(prob=args.prob).to_csv(staging / "sensitivities.csv")
        drawings = {"sensitivities": lambda ax: plots.plot_sensitivities(fe, ax, prob=args.prob)}
        if args.cashflows:
            con.step("cash flows per period")
            fe.cashflows(args.prob).to_csv(staging / "cashflows.csv")
            drawings["cashflows"] = lambda ax: plots.plot_cashflows(fe, ax, prob=args.prob)
        _plot_files(staging, drawings)
        firm_report(equity=fe, cashflows=args.cashflows, prob=args.prob).write(
            staging / "report.html"
        )
    for text, _ in equity_sentences(fe, args.prob):
        print(text)
    print(f"\nTables and plots: {out.resolve()}")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    """Customer equity at a series of cut-offs and the bridges (:func:`clvkit.equity_history`)."""
    from clvkit.utils.io import prepare_output_dir, staged_output_dir

    out = prepare_output_dir(args.out)
    model_classes(args)
    con = Console(args.quiet)
    from clvkit.firm import equity_history

    con.step(f"equity history: cut-offs {args.cutoffs}, refit {args.refit}")
    refit = args.refit if args.refit == "every" else _whole(args.refit, "--refit")
    hist = equity_history(
        args.purchases, cutoffs=_dates_or_step(args.cutoffs, "--cutoffs"),
        customer_id=args.customer_id, date=args.date, amount=args.amount,
        time_unit=args.time_unit, tz=args.tz, transactions_model=args.model,
        spend_model=args.spend_model, fit_kwargs=fit_kwargs(args), horizon=args.horizon,
        period=args.period, annual_discount_rate=args.annual_discount_rate, margin=args.margin,
        cost_per_period=args.cost_per_period, discounting=args.discounting,
        draws=args.value_draws, refit=refit, lost_threshold=args.lost_threshold,
        random_seed=args.seed, progressbar=not args.quiet,
    )  # fmt: skip
    from clvkit import plots

    with staged_output_dir(out, command="history") as staging:
        hist.table(args.prob).to_csv(staging / "history.csv")
        drawings = {
            "equity_history": lambda ax: plots.plot_equity_history(hist, ax, prob=args.prob)
        }
        if len(hist.cutoffs) > 1:
            hist.bridge(args.prob).to_csv(staging / "bridge.csv")
            drawings["bridge"] = lambda ax: plots.plot_equity_bridge(hist, ax=ax, prob=args.prob)
        _plot_files(staging, drawings)
        from clvkit.report_firm import firm_report

        firm_report(hist, prob=args.prob).write(staging / "report.html")
    print(hist.report(args.prob))
    print(f"\nTables and plots: {out.resolve()}")
    return 0


def cmd_rolling(args: argparse.Namespace) -> int:
    """Forecast error from many origins, by horizon (:func:`clvkit.rolling_backtest`)."""
    from clvkit.utils.io import prepare_output_dir, staged_output_dir

    out = prepare_output_dir(args.out)
    model_classes(args)
    con = Console(args.quiet)
    from clvkit.evaluation.rolling import rolling_backtest

    horizons = [h.strip() for h in args.horizons.split(",") if h.strip()]
    con.step(f"rolling backtest: origins {args.origins}, horizons {', '.join(horizons)}")
    roll = rolling_backtest(
        args.purchases, origins=_dates_or_step(args.origins, "--origins"),
        horizons=[float(h) if re.fullmatch(r"\d+(\.\d+)?", h) else h for h in horizons],
        customer_id=args.customer_id, date=args.date, amount=args.amount,
        time_unit=args.time_unit, tz=args.tz, transactions_model=args.model,
        fit_kwargs=fit_kwargs(args), prob=args.prob, n_samples=args.samples,
        random_seed=args.seed, progressbar=not args.quiet,
    )  # fmt: skip
    from clvkit import plots

    with staged_output_dir(out, command="rolling") as staging:
        roll.table().to_csv(staging / "rolling.csv")
        roll.by_horizon().to_csv(staging / "by_horizon.csv")
        _plot_files(staging, {"error_by_horizon": lambda ax: plots.plot_error_by_horizon(roll, ax)})
        from clvkit.report_firm import firm_report

        firm_report(rolling=roll, prob=args.prob, title="Rolling-origin backtest").write(
            staging / "report.html"
        )
    print(roll.report())
    print(f"\nTables and plots: {out.resolve()}")
    return 0


def _whole(text: str, flag: str) -> int:
    """A positive whole number given as text, else a ClvkitError naming ``flag``."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ClvkitError(
            f"argument '{flag}' is {text!r}; it must be 'every' or a positive whole number. "
            "Suggestion: every, or 3 (refit at every third cut-off)."
        )
    return value
