"""``clvkit demo``, ``clvkit fit`` and ``clvkit summarize``: the pipeline on the CDNOW
sample, fitted models saved under a prefix, and the RFM table of a log."""

from __future__ import annotations

import argparse
from pathlib import Path

from clvkit.cli.common import (
    fit_models,
    full_report,
    join_covariates,
    model_classes,
    readable,
    summary_kwargs,
    write_frame,
)
from clvkit.cli.console import Console
from clvkit.cli.model_files import RFM_SUFFIX, model_suffix
from clvkit.errors import ClvkitError


def cmd_demo(args: argparse.Namespace) -> int:
    """``clvkit demo``: the full report on the CDNOW sample, written to the --out folder."""
    from clvkit.datasets import cdnow_transactions
    from clvkit.utils.io import prepare_output_dir, staged_output_dir

    out = prepare_output_dir(args.out)
    model_classes(args)  # an unknown model name fails before any work
    con = Console(args.quiet)
    con.step("loading the CDNOW sample (2,357 customers, Jan 1997 - Jun 1998)")
    log = cdnow_transactions(sample=True)
    args.purchases = "CDNOW sample"
    args.customer_id, args.date, args.amount, args.tz = "customer_id", "date", "amount", None
    args.calibration_end, args.observation_end = "1997-09-30", "1998-06-30"
    run = full_report(log, args, con, "clvkit demo: CDNOW sample")
    with staged_output_dir(out, command="demo") as staging:
        run.report.write(staging / "report.html")
        run.value.summary(args.prob).to_csv(staging / "customer_value.csv")
        run.backtest.metrics.to_csv(staging / "backtest_metrics.csv")
        run.backtest.conditional_expectations.to_csv(staging / "conditional_expectations.csv")
    print(run.verdict.to_text())
    print()
    print(run.value.report(args.prob))
    print(f"\nReport: {(out / 'report.html').resolve()}")
    return 0


def cmd_fit(args: argparse.Namespace) -> int:
    """``clvkit fit``: fit the models on a log and save them and the RFM table under --out."""
    from clvkit.data.log_tables import log_table
    from clvkit.utils.io import atomic_path, prepare_output_file

    prefix = Path(args.out)
    rfm_path = prepare_output_file(prefix.with_name(prefix.name + RFM_SUFFIX))
    model_classes(args)  # an unknown model name fails before any work
    paths = {"transactions": prefix.with_name(prefix.name + model_suffix(args.model))}
    if args.amount is not None:
        paths["spend"] = prefix.with_name(prefix.name + model_suffix(args.spend_model))
    paths["rfm"] = rfm_path
    for p in paths.values():
        prepare_output_file(p)
    con = Console(args.quiet)
    con.step(f"summarizing {args.purchases} per customer")
    rfm = log_table(
        args.purchases, args.data, observation_end=args.observation_end, **summary_kwargs(args)
    )
    rfm = join_covariates(rfm, args)  # saved with the table: 'clvkit value' reads them
    purchase, spend = fit_models(rfm, args, con)
    fitted = [m for m in (purchase, spend) if m is not None]
    # Summaries first: if one fails, no model file has been written yet.
    tables = [(m.spec.label, readable(m.summary(args.prob))) for m in fitted]
    prefix.parent.mkdir(parents=True, exist_ok=True)
    purchase.save(paths["transactions"])
    if spend is not None:
        spend.save(paths["spend"])
    with atomic_path(paths["rfm"]) as tmp:
        rfm.to_parquet(tmp)
    for p in paths.values():
        print(p)
    if spend is None:
        print("\nNo --amount: the purchase model only (give --amount COLUMN to fit spend too).")
    for name, table in tables:
        print(f"\n{name}\n{table}")
    return 0


def cmd_summarize(args: argparse.Namespace) -> int:
    """``clvkit summarize``: the RFM (or calibration/holdout) table of a log, to --out."""
    from clvkit.data.log_tables import log_table
    from clvkit.utils.io import TABLE_SUFFIXES, prepare_output_file

    out = prepare_output_file(args.out, suffixes=TABLE_SUFFIXES)
    con = Console(args.quiet)
    if args.calibration_end is not None and args.observation_end is None:
        raise ClvkitError(
            "argument '--calibration-end' needs '--observation-end' (the last day of the "
            "holdout). Suggestion: add --observation-end DATE."
        )
    split = ": calibration and holdout" if args.calibration_end is not None else ""
    con.step(f"summarizing {args.purchases}{split}")
    table = log_table(
        args.purchases,
        args.table,
        observation_end=args.observation_end,
        calibration_end=args.calibration_end,
        **summary_kwargs(args),
    )
    write_frame(table, out)
    print(f"{len(table):,} customers written to {args.out}")
    return 0
