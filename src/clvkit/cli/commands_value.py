"""``clvkit value`` and ``clvkit score``: the customers valued with saved models, those of the
fit (``value``) or of a new log (``score``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from clvkit.cli.common import (
    join_covariates,
    print_by_group,
    summary_kwargs,
    value_customers,
    write_frame,
)
from clvkit.cli.console import Console
from clvkit.cli.model_files import load_fitted, load_models, model_base
from clvkit.errors import ClvkitError


def cmd_value(args: argparse.Namespace) -> int:
    """``clvkit value``: value the customers of the fit with the models saved under a prefix."""
    from clvkit.utils.io import TABLE_SUFFIXES, prepare_output_file

    if args.out:
        prepare_output_file(args.out, suffixes=TABLE_SUFFIXES)
    if args.by_out:
        prepare_output_file(args.by_out, suffixes=TABLE_SUFFIXES)
    con = Console(args.quiet)
    con.step(f"loading {args.prefix}")
    purchase, spend, rfm = load_models(args.prefix, args)
    rfm = join_covariates(rfm, args)
    value = value_customers(purchase, spend, rfm, args, con)
    if args.out:
        write_frame(value.summary(args.prob), Path(args.out))
        con.step(f"per-customer CLV written to {args.out}")
    print(value.report(args.prob))
    print_by_group(value, args, con)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    """Summarize a new log and value it with saved models (in the models' time unit, on the
    table their purchase model reads)."""
    from clvkit.data.log_tables import check_log_table, log_table
    from clvkit.units import format_time_unit
    from clvkit.utils.io import TABLE_SUFFIXES, prepare_output_file

    if args.out:
        prepare_output_file(args.out, suffixes=TABLE_SUFFIXES)
    if args.by_out:
        prepare_output_file(args.by_out, suffixes=TABLE_SUFFIXES)
    con = Console(args.quiet)
    con.step(f"loading the models {args.model_prefix}")
    purchase, spend = load_fitted(model_base(args.model_prefix), args)
    fitted_unit = getattr(purchase, "time_unit_", None) or "W"
    if args.time_unit is not None and format_time_unit(args.time_unit) != format_time_unit(
        fitted_unit
    ):
        raise ClvkitError(
            f"argument '--time-unit' is {args.time_unit!r}, but the models under "
            f"{args.model_prefix!r} were fitted in {fitted_unit!r}. Suggestion: leave "
            f"--time-unit out (the models' unit is used) or refit in {args.time_unit!r}."
        )
    args.time_unit = fitted_unit
    con.step(f"summarizing {args.purchases} per customer (time unit {fitted_unit})")
    data = check_log_table(purchase.spec.data, "--model-prefix")
    rfm = log_table(
        args.purchases, data, observation_end=args.observation_end, **summary_kwargs(args)
    )
    rfm = join_covariates(rfm, args)
    value = value_customers(purchase, spend, rfm, args, con)
    if args.out:
        write_frame(value.summary(args.prob), Path(args.out))
        con.step(f"per-customer CLV written to {args.out}")
    print(f"{len(rfm):,} customers of {args.purchases} as of {rfm.attrs.get('observation_end')}")
    print(value.report(args.prob))
    print_by_group(value, args, con)
    return 0
