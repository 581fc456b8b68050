"""The argument parser of the ``clvkit`` command: one sub-command per command module's
``cmd_*`` function."""

from __future__ import annotations

import argparse

from clvkit.cli.commands_evaluate import cmd_backtest, cmd_compare, cmd_report, cmd_retention
from clvkit.cli.commands_firm import cmd_equity, cmd_history, cmd_rolling
from clvkit.cli.commands_fit import cmd_demo, cmd_fit, cmd_summarize
from clvkit.cli.commands_value import cmd_score, cmd_value
from clvkit.cli.options import (
    add_by,
    add_cashflow,
    add_cleaning,
    add_columns,
    add_covariates,
    add_fit,
    add_margin,
    add_models,
    add_prob,
    add_rate,
    add_seed,
    add_split,
    add_value,
    add_value_draws,
    default_help,
    parse_seed,
)


def _version() -> str:
    from clvkit import __version__

    return f"clvkit {__version__}"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the docs and tests).

    Examples
    --------
    >>> args = build_parser().parse_args(["value", "models/shop", "--horizon", "26W"])
    >>> args.horizon, args.annual_discount_rate, args.value_method
    ('26W', 0.1, 'expected')
    """
    parser = argparse.ArgumentParser(
        prog="clvkit",
        description="Bayesian customer lifetime value (default models: BG/NBD + Gamma-Gamma).",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="the whole pipeline on the CDNOW sample, with a report")
    p.add_argument("--out", default="demo-output", help=default_help("output folder"))
    add_fit(p, seed=False)
    p.add_argument("--seed", type=parse_seed, default=2026, help=default_help("random seed"))
    add_value(p)
    p.set_defaults(func=cmd_demo, time_unit="W")

    p = sub.add_parser(
        "fit", help="fit the purchase model (and, with --amount, the spend model) under models/"
    )
    add_columns(p, amount=None)
    p.add_argument(
        "--observation-end", default=None, help="last day observed (default: the last date)"
    )
    p.add_argument(
        "--out",
        default="models/model",
        help=default_help("output prefix, e.g. models/shop"),
    )
    add_fit(p)
    add_covariates(p)
    add_prob(p)
    p.set_defaults(func=cmd_fit)

    p = sub.add_parser("value", help="per-customer CLV and customer equity from a fitted model")
    p.add_argument("prefix", help="the prefix given to 'clvkit fit --out' (e.g. models/shop)")
    add_models(p, defaults=False)
    p.add_argument(
        "--out", default=None, help="CSV or Parquet file (.csv, .parquet, .pq) for the table"
    )
    add_seed(p)
    add_value(p)
    add_covariates(p, fitting=False)
    add_by(p)
    p.set_defaults(func=cmd_value)

    p = sub.add_parser(
        "score",
        help="value the customers of a new log with saved models (clvkit fit --out PREFIX)",
    )
    p.add_argument("purchases", help="the new CSV or Parquet purchase log (a glob is allowed)")
    p.add_argument(
        "--model-prefix",
        required=True,
        metavar="PREFIX",
        help="the prefix given to 'clvkit fit --out' (e.g. models/shop)",
    )
    p.add_argument("--customer-id", default="customer_id", help=default_help("id column"))
    p.add_argument("--date", default="date", help=default_help("purchase date column"))
    p.add_argument("--amount", default="amount", help=default_help("purchase amount column"))
    p.add_argument(
        "--time-unit",
        default=None,
        help="time unit; must be the models' (default: the unit the models were fitted in)",
    )
    p.add_argument("--tz", default=None, help="zone of zoned timestamps (default UTC)")
    add_cleaning(p)
    p.add_argument(
        "--observation-end", default=None, help="the date the base is valued at (default: last)"
    )
    add_models(p, defaults=False)
    p.add_argument(
        "--out", default=None, help="CSV or Parquet file (.csv, .parquet, .pq) for the table"
    )
    add_seed(p)
    add_value(p)
    add_covariates(p, fitting=False)
    add_by(p)
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("backtest", help="predicted vs actual on a holdout window, and a verdict")
    add_columns(p, amount=None)
    add_split(p)
    p.add_argument(
        "--out",
        default="backtest-output",
        help=default_help("folder for tables and plots"),
    )
    add_fit(p)
    add_covariates(p)
    add_prob(p)
    p.set_defaults(func=cmd_backtest)

    p = sub.add_parser(
        "compare",
        help="which purchase model to trust: fit several on the calibration window, rank them "
        "by PSIS-LOO and on the holdout",
    )
    add_columns(p, amount=None)
    add_split(p)
    p.add_argument(
        "--models",
        default=None,
        metavar="NAME,NAME,...",
        help="registered purchase models to compare, e.g. bgnbd,pnbd,mbgnbd (default: every "
        "registered purchase model)",
    )
    p.add_argument(
        "--method",
        choices=["nuts", "laplace"],
        default="nuts",
        help=default_help(
            "nuts: full posterior; laplace: normal approximation (large bases); LOO needs "
            "posterior draws, so no point fits"
        ),
    )
    p.add_argument("--chains", type=int, default=4, help=default_help("NUTS/Laplace chains"))
    p.add_argument("--draws", type=int, default=1000, help=default_help("draws per chain"))
    p.add_argument("--tune", type=int, default=1000, help=default_help("NUTS tuning steps"))
    add_seed(p)
    add_prob(p)
    p.add_argument(
        "--out", default=None, help="CSV or Parquet file (.csv, .parquet, .pq) for the table"
    )
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser(
        "report",
        help="value the base as of --observation-end, backtest on the calibration window, "
        "verdict; one self-contained HTML report",
    )
    add_columns(p, amount="amount")
    add_split(p)
    p.add_argument("--out", default="report.html", help=default_help("HTML file (.html, .htm)"))
    add_fit(p)
    p.add_argument(
        "--compare",
        default=None,
        metavar="NAME,NAME,...",
        help="add the section 'Which model to trust': these registered purchase models fitted "
        "on the calibration window and compared (needs --method nuts or laplace) (default: none)",
    )
    add_value(p)
    add_covariates(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser(
        "equity",
        help="customer equity of the firm: today's customers and future cohorts (an "
        "acquisition model of the log's first purchases, or a plan), with sensitivities",
    )
    add_columns(p, amount="amount")
    g = p.add_argument_group("future customers")
    g.add_argument(
        "--acquisition",
        choices=["model", "none"],
        default="model",
        help=default_help(
            "model: fit a count model (trend, optional seasonality) to the new customers per "
            "period of the log; none: today's customers only"
        ),
    )
    g.add_argument(
        "--acquisition-period",
        default=None,
        help="period of the acquisition counts (default: --time-unit)",
    )
    g.add_argument(
        "--seasonality",
        type=int,
        default=None,
        metavar="PERIODS",
        help="season length in acquisition periods, e.g. 52 for weeks (default: none)",
    )
    g.add_argument(
        "--plan",
        default=None,
        metavar="N[,N...]",
        help="planned new customers per cash-flow period instead of the model: one number "
        "(every period of the horizon) or one per period",
    )
    g.add_argument(
        "--plan-cv",
        type=float,
        default=0.0,
        help=default_help("uncertainty of the plan: sd of one multiplier of the whole plan"),
    )
    p.add_argument(
        "--cashflows",
        action="store_true",
        help="also the cash flows per period (a table and a fan chart; one pass of today's "
        "customers per period: slow for large bases)",
    )
    p.add_argument(
        "--out", default="equity-output", help=default_help("folder for tables and plots")
    )
    add_fit(p)
    add_value(p)
    p.set_defaults(func=cmd_equity)

    p = sub.add_parser(
        "history",
        help="customer equity at a series of cut-off dates (refitting the models), with the "
        "bridge from each to the next: new customers, lost customers, revaluation",
    )
    add_columns(p, amount="amount", cleaning=False)
    p.add_argument(
        "--cutoffs",
        default="13W",
        help=default_help("a step after the first purchase day (13W, 1M) or comma-separated dates"),
    )
    p.add_argument(
        "--refit",
        default="every",
        help=default_help("fit at every cut-off, or at every K-th (the others use the latest fit)"),
    )
    p.add_argument(
        "--lost-threshold",
        type=float,
        default=0.5,
        help=default_help(
            "a customer without purchases between two cut-offs is lost when its P(alive) falls "
            "below this"
        ),
    )
    p.add_argument(
        "--out", default="history-output", help=default_help("folder for tables and plots")
    )
    add_fit(p)
    g = add_cashflow(p)
    add_value_draws(g)
    add_prob(p)
    p.set_defaults(func=cmd_history)

    p = sub.add_parser(
        "rolling",
        help="rolling-origin backtest: forecast error and interval coverage from many origins, "
        "by horizon",
    )
    add_columns(p, amount=None, cleaning=False)
    p.add_argument(
        "--origins",
        default="13W",
        help=default_help("a step after the first purchase day (13W, 1M) or comma-separated dates"),
    )
    p.add_argument(
        "--horizons",
        default="13,26,39",
        help=default_help("comma-separated horizons, in time units or durations (13, 26W)"),
    )
    p.add_argument(
        "--samples",
        type=int,
        default=None,
        metavar="N",
        help="simulated futures per customer for the predictive intervals (default: the API's)",
    )
    p.add_argument(
        "--out", default="rolling-output", help=default_help("folder for tables and plots")
    )
    add_fit(p)
    add_prob(p)
    p.set_defaults(func=cmd_rolling)

    p = sub.add_parser("summarize", help="the RFM (or calibration/holdout) table of a log")
    add_columns(p, amount=None)
    p.add_argument(
        "--observation-end", default=None, help="last day observed (default: the last date)"
    )
    p.add_argument(
        "--calibration-end",
        default=None,
        help="last day of calibration: write the calibration/holdout table "
        "(needs --observation-end)",
    )
    p.add_argument(
        "--table",
        choices=["rfm", "opportunities"],
        default="rfm",
        help=default_help(
            "rfm: recency, frequency, T in time units (clvkit.rfm_summary); opportunities: "
            "purchases on a grid of --time-unit occasions for BG/BB (clvkit.opportunity_summary)"
        ),
    )
    p.add_argument("--out", required=True, help="CSV or Parquet file (.csv, .parquet, .pq)")
    p.set_defaults(func=cmd_summarize)

    p = sub.add_parser(
        "retention",
        help="predicted vs actual retention of subscribers: fit a contractual model (sBG) on "
        "the contracts to --calibration-end, compare each later period per cohort",
    )
    p.add_argument("contracts", help="CSV or Parquet table of contracts (a glob is allowed)")
    p.add_argument("--customer-id", default="customer_id", help=default_help("customer id column"))
    p.add_argument("--start", default="start", help=default_help("contract start column"))
    p.add_argument("--end", default="end", help=default_help("contract end column (empty: active)"))
    p.add_argument("--tz", default="UTC", help=default_help("zone of zoned timestamps"))
    p.add_argument(
        "--period", default="M", help=default_help("billing period: M, Q, Y, 2M, or 4W, 30D")
    )
    p.add_argument("--calibration-end", required=True, help="last day of calibration")
    p.add_argument(
        "--observation-end", default=None, help="last day of the holdout (default: last date)"
    )
    p.add_argument(
        "--model",
        default="sbg",
        metavar="NAME",
        help=default_help("contractual purchase model registered in clvkit.models.registry"),
    )
    p.add_argument(
        "--method",
        choices=["nuts", "laplace", "map", "mle"],
        default="nuts",
        help=default_help("nuts: full posterior; laplace: normal approximation; map/mle: point"),
    )
    p.add_argument("--chains", type=int, default=4, help=default_help("NUTS/Laplace chains"))
    p.add_argument("--draws", type=int, default=1000, help=default_help("draws per chain"))
    p.add_argument("--tune", type=int, default=1000, help=default_help("NUTS tuning steps"))
    add_seed(p)
    p.add_argument(
        "--samples",
        type=int,
        default=1000,
        help=default_help("predictive samples (simulated futures)"),
    )
    add_prob(p)
    p.add_argument("--out", default=None, help="CSV or Parquet file for the per-period table")
    p.add_argument("--plot", default=None, help="PNG, PDF or SVG file: the cohort fans")
    p.add_argument("--report", default=None, help="HTML file (.html, .htm): the report page")
    g = p.add_argument_group(
        "value of the subscriber base (with --fee: the model fitted on all contracts to the "
        "observation end values the active subscribers)"
    )
    g.add_argument("--fee", default=None, metavar="COLUMN", help="fee column of the contracts")
    g.add_argument(
        "--horizon",
        default="10Y",
        help=default_help("valuation horizon: billing periods or a duration (10Y, 120M)"),
    )
    add_rate(g)
    add_margin(g, "the fee")
    g.add_argument(
        "--value-draws",
        type=int,
        default=None,
        help="posterior draws valued, evenly spaced (default: all, at most 1000)",
    )
    g.add_argument(
        "--predictive-draws",
        type=int,
        default=None,
        help="draws of the simulated futures (predictive interval; default: all, at most 200)",
    )
    g.add_argument(
        "--value-out", default=None, help="CSV or Parquet file: value per active subscriber"
    )
    p.set_defaults(func=cmd_retention)

    for action in sub.choices.values():
        action.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return parser
