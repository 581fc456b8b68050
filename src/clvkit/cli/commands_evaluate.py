"""``clvkit backtest``, ``clvkit compare``, ``clvkit report`` and ``clvkit retention``:
predicted against actual on a holdout, models ranked, the report page and the contractual
backtest."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from clvkit.cli.common import (
    compare_names,
    fit_kwargs,
    fit_models,
    fit_one,
    full_report,
    join_covariates,
    model_classes,
    readable,
    summary_kwargs,
    write_frame,
)
from clvkit.cli.console import Console
from clvkit.errors import ClvkitError


def _split(source: Any, args: argparse.Namespace, con: Console) -> Any:
    """The log read and summarized once, split at --calibration-end."""
    from clvkit.evaluation.split import split_log

    con.step(f"reading and summarizing {args.purchases}: calibration and holdout")
    return split_log(
        source,
        calibration_end=args.calibration_end,
        observation_end=args.observation_end,
        data=args.data,
        **summary_kwargs(args),
    )


def cmd_backtest(args: argparse.Namespace) -> int:
    """``clvkit backtest``: fit on the calibration window, predicted vs actual on the
    holdout; tables and plots to the --out folder, the verdict printed."""
    from clvkit.utils.io import prepare_output_dir, staged_output_dir
    from clvkit.utils.progress import heartbeat

    out = prepare_output_dir(args.out)
    model_classes(args)  # an unknown model name fails before any work
    con = Console(args.quiet)
    split = _split(args.purchases, args, con)
    if getattr(args, "covariates", None) is not None:
        import dataclasses

        split = dataclasses.replace(split, rfm=join_covariates(split.rfm, args))
    purchase, spend = fit_models(split.rfm, args, con)
    from clvkit.evaluation.run import backtest_split
    from clvkit.evaluation.verdict import verdict

    con.step(f"backtest: calibration to {args.calibration_end}, holdout to {args.observation_end}")
    with heartbeat("backtest", not args.quiet, start=con.t0):
        bt = backtest_split(
            split, transactions_model=purchase, spend_model=spend, prob=args.prob,
            random_seed=args.seed,
        )  # fmt: skip
    with staged_output_dir(out, command="backtest") as staging:
        bt.customers.to_csv(staging / "customers.csv")
        bt.metrics.to_csv(staging / "metrics.csv")
        bt.conditional_expectations.to_csv(staging / "conditional_expectations.csv")
        bt.tracking.to_csv(staging / "tracking.csv")
        bt.retention.to_csv(staging / "retention.csv")
        bt.frequency_ppc.to_csv(staging / "frequency_ppc.csv")
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from clvkit import plots

        for name, draw in {
            "tracking_cumulative": lambda ax: plots.plot_tracking(bt, ax=ax),
            "tracking_incremental": lambda ax: plots.plot_tracking(bt, cumulative=False, ax=ax),
            "retention": lambda ax: plots.plot_retention(bt, ax=ax),
            "frequency_ppc": lambda ax: plots.plot_frequency_ppc(bt, ax=ax),
            "conditional_expectations": lambda ax: plots.plot_conditional_expectations(bt, ax=ax),
            "pit": lambda ax: plots.plot_pit(bt, ax=ax),
        }.items():
            fig, ax = plt.subplots(figsize=(7, 4.5), dpi=110)
            draw(ax)
            fig.tight_layout()
            fig.savefig(staging / f"{name}.png")
            plt.close(fig)
    print(readable(bt.metrics.T, by_row=True))
    print()
    print(verdict(backtest=bt, prob=args.prob).to_text())
    print(f"\nTables and plots: {out.resolve()}")
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    """Predicted vs actual retention of subscribers (:func:`clvkit.retention_backtest`)."""
    from clvkit.utils.io import TABLE_SUFFIXES, atomic_path, prepare_output_file
    from clvkit.utils.progress import heartbeat

    out = prepare_output_file(args.out, suffixes=TABLE_SUFFIXES) if args.out else None
    plot = prepare_output_file(args.plot, suffixes=(".png", ".pdf", ".svg"), option="--plot") \
        if args.plot else None  # fmt: skip
    page = prepare_output_file(args.report, suffixes=(".html", ".htm"), option="--report") \
        if args.report else None  # fmt: skip
    if args.value_out and not args.fee:
        raise ClvkitError(
            "argument '--value-out' needs --fee (the contracts' fee column): without fees there "
            "is no subscriber value. Suggestion: add --fee COLUMN, or leave --value-out out."
        )
    value_out = prepare_output_file(args.value_out, suffixes=TABLE_SUFFIXES, option="--value-out") \
        if args.value_out else None  # fmt: skip
    if args.fee:
        from clvkit.value.subscriptions import horizon_periods

        horizon_periods(args.horizon, args.period, "--horizon")  # a bad horizon fails at once
        if args.predictive_draws is not None and args.predictive_draws < 1:
            raise ClvkitError(
                f"argument '--predictive-draws' is {args.predictive_draws}, below 1. "
                "Suggestion: 200 draws, or leave it out."
            )
    from clvkit.models.registry import get

    get(args.model, "purchase", "contracts")  # a wrong model name fails before any work
    con = Console(args.quiet)
    from clvkit.data.contract_split import contract_calibration_holdout
    from clvkit.evaluation.retention import retention_backtest_split

    con.step(f"reading {args.contracts}: contracts to {args.calibration_end} and the holdout")
    table = contract_calibration_holdout(
        args.contracts, args.period, args.calibration_end, args.observation_end,
        customer_id_col=args.customer_id, start_col=args.start, end_col=args.end, tz=args.tz,
        fee_col=args.fee or None,
    )  # fmt: skip
    kw = fit_kwargs(args)
    con.step(f"fitting {args.model} ({args.method}) on {len(table):,} subscribers; backtest")
    with heartbeat("retention backtest", not args.quiet, start=con.t0):
        res = retention_backtest_split(
            table, model=args.model, method=kw.pop("method"), prob=args.prob,
            n_samples=args.samples, random_seed=kw.pop("random_seed"), fit_kwargs=kw,
        )  # fmt: skip
    val = None
    if args.fee:
        from clvkit.evaluation.retention import subscriber_base_value

        con.step(
            f"value of the subscriber base: {args.model} ({args.method}) on all contracts to "
            f"the observation end, horizon {args.horizon}, margin {args.margin:g}, annual "
            f"discount rate {args.annual_discount_rate:g}"
        )
        with heartbeat("subscriber value", not args.quiet, start=con.t0):
            val = subscriber_base_value(
                args.contracts, args.period, args.observation_end, fee_col=args.fee,
                model=args.model, method=args.method, fit_kwargs=kw, horizon=args.horizon,
                annual_discount_rate=args.annual_discount_rate, margin=args.margin,
                prob=args.prob, draws=args.value_draws, predictive_draws=args.predictive_draws,
                random_seed=args.seed,
                progressbar=not args.quiet, customer_id_col=args.customer_id,
                start_col=args.start, end_col=args.end, tz=args.tz,
            )  # fmt: skip
        if value_out is not None:
            write_frame(val.customers, value_out)
    if out is not None:
        write_frame(res.periods, out)
    if plot is not None:
        import matplotlib

        matplotlib.use("Agg")
        from clvkit.plots.retention import plot_retention_cohorts

        grid = plot_retention_cohorts(res)
        with atomic_path(plot) as tmp:
            grid.ravel()[0].figure.savefig(tmp, format=plot.suffix.lstrip(".").lower(), dpi=110)
    if page is not None:
        from clvkit.report import retention_report

        retention_report(res, valuation=val).write(page)
    shown = res.periods.loc["all"][["period_end", "active_start", "actual", "expected",
                                    "pred_lower", "pred_upper", "actual_rate",
                                    "predicted_rate"]]  # fmt: skip
    print(shown.to_string(float_format=lambda v: f"{v:,.3f}"))
    print()
    print(res.verdict)
    if val is not None:
        print()
        print(_value_lines(val))
    outputs = (("table", out), ("plot", plot), ("report", page), ("value", value_out))
    for name, path in outputs:
        if path is not None:
            print(f"{name}: {path}")
    return 0


def _value_lines(val: Any) -> str:
    """A short text of the subscriber base's value (:func:`clvkit.subscriber_value`)."""
    s, st = val.summary(), val.settings
    pct = f"{st['prob']:.0%}"

    def rng(row: str, fmt: str) -> str:
        return f"{fmt.format(s.loc[row, 'lower'])} to {fmt.format(s.loc[row, 'upper'])}"

    lines = [
        f"Value of the subscriber base ({st['n_customers']:,} active subscribers at "
        f"{st.get('observation_end', 'the observation end')}, horizon {st['horizon']:g} "
        f"periods of {st['time_unit']}, margin {st['margin']:g}, "
        f"{st['rate_per_period']:.4%} discount per period):",
        f"  equity {s.loc['equity', 'mean']:,.0f} ({pct} credible {rng('equity', '{:,.0f}')}",
    ]
    if "equity_predictive" in s.index:
        lines[-1] += f"; predictive {rng('equity_predictive', '{:,.0f}')})"
    else:
        lines[-1] += ")"
    if "elasticity" in s.index:
        lines.append(
            f"  one point more retention: {s.loc['elasticity', 'mean']:+.2%} equity "
            f"({rng('elasticity', '{:+.2%}')}), {s.loc['equity_gain', 'mean']:+,.0f}"
        )
    t = val.by_tenure
    cols = [c for c in ("n_active", "fees", "derl", "value_per_subscriber", "value", "share")
            if c in t.columns]  # fmt: skip
    lines.append(t[cols].to_string(float_format=lambda v: f"{v:,.3f}"))
    return "\n".join(lines)


def cmd_compare(args: argparse.Namespace) -> int:
    """``clvkit compare``: fit several purchase models on the calibration window and rank them."""
    from clvkit.utils.io import TABLE_SUFFIXES, prepare_output_file
    from clvkit.utils.progress import heartbeat

    if args.out:
        prepare_output_file(args.out, suffixes=TABLE_SUFFIXES)
    if args.models is None:
        from clvkit.models.registry import names

        args.models = ",".join(names("purchase", "rfm"))
    wanted = compare_names(args.models, "--models")  # unknown names fail before any work
    args.data = "rfm"  # the models compared read the continuous-time RFM table
    con = Console(args.quiet)
    split = _split(args.purchases, args, con)
    fitted = {n: fit_one(n, "purchase", split.rfm, args, con, "") for n in wanted}
    from clvkit.evaluation.compare_models import compare

    con.step(f"comparing {', '.join(wanted)}: PSIS-LOO, weights and the holdout")
    with heartbeat("comparison", not args.quiet, start=con.t0):
        result = compare(fitted, split.rfm, prob=args.prob, random_seed=args.seed)
    if args.out:
        write_frame(result.table, Path(args.out))
        con.step(f"comparison table written to {args.out}")
    print(result.summary())
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """``clvkit report``: the valuation, the backtest and the verdict as one HTML page."""
    from clvkit.utils.io import HTML_SUFFIXES, prepare_output_file

    prepare_output_file(args.out, suffixes=HTML_SUFFIXES)
    con = Console(args.quiet)
    model_classes(args)  # an unknown model name fails before any work
    compare_names(args.compare, "--compare")
    run = full_report(args.purchases, args, con, f"Customer lifetime value: {args.purchases}")
    path = run.report.write(args.out)
    print(run.verdict.to_text())
    print()
    print(run.value.report(args.prob))
    if run.comparison is not None:
        print("\nWhich model to trust:\n" + "\n".join(f"- {w}" for w in run.comparison.words))
    print(f"\nReport: {Path(path).resolve()}")
    return 0
