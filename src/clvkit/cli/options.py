"""The options the commands share (argument builders of the parser, --seed's type) and the
checks of values argparse cannot express (:func:`check_args`)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from clvkit.cli.common import parse_tiers
from clvkit.errors import ClvkitError

DEFAULT_MODELS = {"purchase": "bgnbd", "spend": "gamma_gamma"}


def check_args(args: argparse.Namespace) -> None:
    """Refuse rates above 1 (``--annual-discount-rate 10`` meant as 10%), a margin outside
    (0, 1], an interval level outside (0, 1) and negative costs, with one ClvkitError.

    Examples
    --------
    >>> from clvkit.cli import build_parser
    >>> args = build_parser().parse_args(["value", "m/shop", "--annual-discount-rate", "10"])
    >>> check_args(args)
    Traceback (most recent call last):
    ...
    clvkit.errors.ClvkitError: argument '--annual-discount-rate' is 10, a rate above 1 (1000% a year). Suggestion: give rates as fractions: 0.1 for 10% a year.
    """
    rate = getattr(args, "annual_discount_rate", None)
    if rate is not None and not 0 <= rate <= 1:
        raise ClvkitError(
            f"argument '--annual-discount-rate' is {rate:g}, "
            + (f"a rate above 1 ({rate:.0%} a year)" if rate > 1 else "negative")
            + ". Suggestion: give rates as fractions: 0.1 for 10% a year."
        )
    margin = getattr(args, "margin", None)
    if margin is not None and not 0 < margin <= 1:
        raise ClvkitError(
            f"argument '--margin' is {margin:g}; it is the share of revenue kept, in (0, 1]. "
            "Suggestion: 0.3 for a 30% margin."
        )
    prob = getattr(args, "prob", None)
    if prob is not None and not 0 < prob < 1:
        raise ClvkitError(
            f"argument '--prob' is {prob:g}; it is an interval level in (0, 1). Suggestion: 0.9 "
            "for 90% intervals."
        )
    for name in ("cost_per_period", "acquisition_cost"):
        v = getattr(args, name, None)
        if v is not None and v < 0:
            flag = "--" + name.replace("_", "-")
            raise ClvkitError(f"argument '{flag}' is {v:g}, below 0. Suggestion: 0 or more.")
    draws = getattr(args, "value_draws", None)
    if draws is not None and draws < 1:
        raise ClvkitError(
            f"argument '--value-draws' is {draws}, below 1. Suggestion: 500 posterior draws."
        )
    parse_tiers(getattr(args, "tiers", None))
    covariates = getattr(args, "covariates", None)
    if covariates is not None and not os.path.isfile(covariates):
        raise ClvkitError(
            f"argument '--covariates': file {covariates!r} does not exist. Suggestion: a CSV or "
            "Parquet file with the customer id column and the covariate columns."
        )
    if covariates is None:
        given = [
            "--" + k.replace("_", "-")
            for k in ("covariate_columns", "categorical", "segment", "links")
            if getattr(args, k, None) is not None
        ]
        if given:
            raise ClvkitError(
                f"argument(s) {', '.join(given)} need --covariates FILE. Suggestion: pass the "
                "covariate file (customer id and the columns)."
            )
    if getattr(args, "by_out", None) is not None and getattr(args, "by", None) is None:
        raise ClvkitError(
            "argument '--by-out' needs --by COL (the column to group by). Suggestion: add --by."
        )


def default_help(text: str) -> str:
    """A help text ending in the argument's default (argparse fills ``%(default)s`` from the
    ``default=`` it is given, so the two cannot disagree)."""
    return f"{text} (default: %(default)s)"


def add_columns(p: argparse.ArgumentParser, amount: str | None, cleaning: bool = True) -> None:
    """The log's columns. ``amount``: the default amount column (``None``: no spend unless
    --amount is given). ``cleaning``: also the cleaning options (commands whose API takes
    them)."""
    p.add_argument("purchases", help="CSV or Parquet purchase log (a glob is allowed)")
    p.add_argument("--customer-id", default="customer_id", help=default_help("customer id column"))
    p.add_argument("--date", default="date", help=default_help("purchase date column"))
    p.add_argument(
        "--amount",
        default=amount,
        help=default_help("purchase amount column (needed for spend and value)")
        if amount
        else "purchase amount column; without it only the purchase model is fitted (default: none)",
    )
    p.add_argument(
        "--time-unit",
        default="W",
        help=default_help(
            "time unit of the model: D, W, M (a mean calendar month), Q, Y or multiples such "
            "as 30D, 2W; for BG/BB the opportunity: calendar Y, Q, M or a fixed W, 14D"
        ),
    )
    p.add_argument(
        "--tz",
        default=None,
        help="zone that zoned timestamps are converted to before they are cut to days "
        "(IANA name; default UTC); naive timestamps are read as written",
    )
    if cleaning:
        add_cleaning(p)


def add_cleaning(p: argparse.ArgumentParser) -> None:
    """Cleaning of messy logs (the API's keywords of rfm_summary / calibration_holdout)."""
    g = p.add_argument_group("cleaning (as rfm_summary's keywords)")
    g.add_argument(
        "--returns",
        choices=["error", "drop", "net"],
        default=None,
        help="rows with negative amounts: error (refuse), drop, or net against the customer's "
        "purchases (default: error)",
    )
    g.add_argument(
        "--zero-amounts",
        choices=["keep", "drop"],
        default=None,
        help="rows with amount 0 (default: keep; the spend model refuses repeat customers "
        "whose mean spend is 0)",
    )
    g.add_argument(
        "--duplicates",
        choices=["keep", "drop"],
        default=None,
        help="exact duplicate rows (default: keep)",
    )
    g.add_argument(
        "--currency",
        default=None,
        metavar="COLUMN",
        help="currency column; one currency per run, mixing refused unless --fx-rate is given "
        "(default: none)",
    )
    g.add_argument(
        "--fx-rate",
        default=None,
        metavar="COLUMN",
        help="column of rates converting each amount to the reporting currency (default: none)",
    )
    g.add_argument(
        "--reporting-currency",
        default=None,
        metavar="CODE",
        help="currency the amounts are converted to with --fx-rate (default: none)",
    )


MAX_SEED = 2**32 - 1


def parse_seed(text: str) -> int:
    """argparse type of --seed: a whole number from 0 to MAX_SEED."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 0 to {MAX_SEED}")
    return value


def add_models(p: argparse.ArgumentParser, defaults: bool = True) -> None:
    """--model and --spend-model: names in the model registry (``clvkit.models.registry``),
    checked when the command runs (listing the registered names), not here: building the
    parser stays fast. Without ``defaults`` (``clvkit value``) the model whose file exists is
    used."""
    for flag, kind in (("--model", "purchase"), ("--spend-model", "spend")):
        value = DEFAULT_MODELS[kind] if defaults else None
        default = value or "the one whose file exists"
        p.add_argument(
            flag,
            default=value,
            metavar="NAME",
            help=f"{kind} model registered in clvkit.models.registry (default: {default})"
            + (
                "; bgbb (BG/BB) reads the log on a grid of --time-unit opportunities"
                if kind == "purchase"
                else ""
            ),
        )


def add_seed(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--seed",
        type=parse_seed,
        default=None,
        help="random seed, for reproducible runs (default: none, a fresh seed)",
    )


def add_fit(p: argparse.ArgumentParser, seed: bool = True) -> None:
    add_models(p)
    p.add_argument(
        "--method",
        choices=["nuts", "laplace", "map", "mle"],
        default="nuts",
        help=default_help(
            "nuts: full posterior; laplace: normal approximation (large bases); map/mle: "
            "point estimates"
        ),
    )
    p.add_argument("--chains", type=int, default=4, help=default_help("NUTS/Laplace chains"))
    p.add_argument("--draws", type=int, default=1000, help=default_help("draws per chain"))
    p.add_argument("--tune", type=int, default=1000, help=default_help("NUTS tuning steps"))
    if seed:
        add_seed(p)


def add_prob(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--prob",
        type=float,
        default=0.9,
        help=default_help("interval level of every interval shown, in (0, 1)"),
    )


def add_rate(g: Any) -> None:
    """--annual-discount-rate, the same for every valuation (checked by check_args)."""
    g.add_argument(
        "--annual-discount-rate",
        type=float,
        default=0.1,
        help=default_help("annual discount rate as a fraction (0.1 = 10%%); above 1 refused"),
    )


def add_margin(g: Any, of: str) -> None:
    """--margin: the share of ``of`` (revenue, the fee) kept (checked by check_args)."""
    g.add_argument(
        "--margin",
        type=float,
        default=1.0,
        help=default_help(f"share of {of} kept, in (0, 1]; 1 values revenue, not profit"),
    )


def add_value(p: argparse.ArgumentParser) -> None:
    g = add_cashflow(p)
    g.add_argument(
        "--acquisition-cost",
        type=float,
        default=None,
        help="cost of acquiring a customer: adds CLV - CAC and CLV:CAC of a new customer "
        "(default: none)",
    )
    g.add_argument(
        "--tiers",
        default=None,
        metavar="NAME=SHARE,...",
        help="value tiers as cumulative top shares by expected CLV, the last 1, e.g. "
        "platinum=0.01,gold=0.05,iron=0.2,lead=1 (default: those four)",
    )
    g.add_argument(
        "--value-method",
        choices=["expected", "simulate"],
        default="expected",
        help=default_help(
            "expected: each customer's expected CLV per posterior draw (credible intervals; "
            "what a manager can target, the API's default too); simulate: one simulated future "
            "per draw (predictive intervals, which include the luck of each customer)"
        ),
    )
    add_value_draws(g)
    add_prob(p)


def add_value_draws(g: Any) -> None:
    g.add_argument(
        "--value-draws",
        type=int,
        default=None,
        metavar="N",
        help="use N posterior draws for the valuation (thinned evenly; faster, less memory) "
        "(default: all draws)",
    )


def add_cashflow(p: argparse.ArgumentParser) -> Any:
    """Horizon, period, discounting, margin and cost: the cash-flow settings every valuation
    takes (:class:`clvkit.value.settings.CashflowSettings`); returns the argument group."""
    g = p.add_argument_group("valuation (as customer_value's keywords)")
    g.add_argument(
        "--horizon",
        default="52W",
        help=default_help("CLV horizon: a duration (52W, 365D, 12M, 1Y)"),
    )
    g.add_argument(
        "--period",
        default="30D",
        help=default_help("cash-flow period for discounting (30D, 1M, ...)"),
    )
    add_rate(g)
    g.add_argument(
        "--discounting",
        choices=["discrete", "continuous"],
        default="discrete",
        help=default_help("discrete: per cash-flow period; continuous: a continuous rate"),
    )
    add_margin(g, "revenue")
    g.add_argument(
        "--cost-per-period",
        type=float,
        default=0.0,
        help=default_help("cost of serving an alive customer per cash-flow period"),
    )
    return g


def add_covariates(p: argparse.ArgumentParser, fitting: bool = True) -> None:
    """--covariates and, on commands that fit models, the design options (the models'
    ``with_covariates`` arguments)."""
    g = p.add_argument_group("covariates and segments (clvkit.with_covariates)")
    g.add_argument(
        "--covariates",
        default=None,
        metavar="FILE",
        help="CSV or Parquet file with the customer id column (--customer-id) and covariate "
        "columns, joined to the customer table by id; every customer needs a row"
        + ("" if fitting else " (columns the saved models read)")
        + " (default: none)",
    )
    if not fitting:
        return
    g.add_argument(
        "--covariate-columns",
        default=None,
        metavar="A,B",
        help="covariate columns of --covariates (default: all but the id and --segment)",
    )
    g.add_argument(
        "--categorical",
        default=None,
        metavar="C,D",
        help="numeric columns to treat as categorical (text columns always are) (default: none)",
    )
    g.add_argument(
        "--segment",
        default=None,
        metavar="COL",
        help="column of --covariates with segments: partially pooled effects (default: none)",
    )
    g.add_argument(
        "--links",
        default=None,
        metavar="PROCESS,...",
        help="processes the covariates act on: purchase, dropout (purchase model), spend "
        "(spend model) (default: all of both models)",
    )


def add_by(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("value by group")
    g.add_argument(
        "--by",
        default=None,
        metavar="COL",
        help="also value by group: a column of the customer table or of --covariates, e.g. a "
        "segment; prints customers, CLV and equity with intervals, share of equity and tiers "
        "per group (default: none)",
    )
    g.add_argument(
        "--by-out",
        default=None,
        metavar="FILE",
        help="CSV or Parquet file (.csv, .parquet, .pq) for the by-group table (needs --by)",
    )


def add_split(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--calibration-end",
        required=True,
        help="last day of the backtest's calibration window (YYYY-MM-DD)",
    )
    p.add_argument(
        "--observation-end",
        required=True,
        help="last day of the holdout, and the date the base is valued at",
    )
