"""The ``clvkit`` command line: demo, fit, value, backtest, report and summarize.

Progress goes to stderr (``--quiet`` turns it off), results to stdout or files.

``PURCHASES`` (a CSV or Parquet file, or a glob) is read exactly as the Python API reads a path:
``fit`` and ``summarize`` hand it to ``clvkit.rfm_summary``/``calibration_holdout`` (DuckDB,
out of core), ``backtest`` and ``report`` to ``clvkit.evaluation.split_log``, which reads it
once with ``clvkit.read_purchases`` and summarizes it once; so the same file gives the same
table, or the same error, on the command line and in Python (``--tz`` as the API's ``tz=``).

Models come from the registry (``clvkit.models.registry``): ``--model`` names the purchase
model (default ``bgnbd``), ``--spend-model`` the spend model (default ``gamma_gamma``).
``clvkit fit --out models/shop`` writes ``models/shop.<name>.nc`` per model (e.g.
``shop.bgnbd.nc``, ``shop.gamma_gamma.nc``) and ``models/shop.rfm.parquet``; ``clvkit value``
finds them by the prefix (files of earlier versions, ``shop.beta_geo.nc``, still load).

``clvkit summarize PURCHASES --out rfm.parquet`` writes the RFM table of a log (with
``--calibration-end`` and ``--observation-end``: the calibration/holdout table), read from the
path or glob by DuckDB like ``clvkit.rfm_summary(path)``. The index (customer id) is kept;
Parquet keeps every type exactly, CSV is text.

Outputs (see ``docs/reliability.md``):

- ``--out`` is checked before any work starts: a bad one fails in well under a second.
- File outputs (``value``, ``report``, ``summarize``, ``fit``) replace only the named file. The
  suffix must match the content (.csv/.parquet/.pq tables, .html/.htm report); an existing
  folder at the path, a file among its parent folders or an unwritable parent is refused.
- Folder outputs (``backtest``, ``demo``) hold a marker file ``.clvkit-output``. An existing
  ``--out`` is replaced only if it is empty or a clvkit output folder with nothing else in it;
  a file, a folder with other files, or the current folder (or a parent of it) is refused.
- Every output is written under a temporary name (``.NAME.clvkit-tmp-PID-XXXX``) and renamed, a
  folder swapped in atomically, so it is always the complete old output or the complete new
  one; temporaries are removed on errors and SIGTERM, and those of killed runs at the next run.

Exit codes: 0 success; 2 a user error (bad argument, missing file or column, bad date, a model
file that is corrupt or not clvkit's, an ``--out`` that breaks the rules above, an OS error
while writing), one line on stderr; 130 Ctrl-C; 141 stdout closed early (``clvkit ... | head``),
quietly; 143 SIGTERM, one line on stderr, temporaries removed.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from clvkit.errors import ClvkitError

EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a program killed by SIGPIPE
EXIT_SIGTERM = 143  # 128 + SIGTERM
#: Suffix of the RFM table that ``clvkit fit`` writes next to the model files.
RFM_SUFFIX = ".rfm.parquet"
#: Model file names of earlier clvkit versions, still read by ``clvkit value``.
LEGACY_MODEL_SUFFIXES = {"bgnbd": ".beta_geo.nc"}
DEFAULT_MODELS = {"purchase": "bgnbd", "spend": "gamma_gamma"}


def model_suffix(name: str) -> str:
    """The file suffix of a registered model's saved file: ``.<spec.name>.nc``.

    Examples
    --------
    >>> model_suffix("bgnbd"), model_suffix("gamma_gamma")
    ('.bgnbd.nc', '.gamma_gamma.nc')
    """
    return f".{name}.nc"


class _Console:
    """Progress lines on stderr, silenced by ``--quiet``."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self._t0 = time.perf_counter()

    def step(self, text: str) -> None:
        if not self.quiet:
            print(f"[{time.perf_counter() - self._t0:6.1f}s] {text}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# shared pipeline pieces
# ---------------------------------------------------------------------------------------------
def _log_columns(args: argparse.Namespace) -> dict[str, Any]:
    """The column names and ``tz`` of PURCHASES, as the data layer's keyword arguments."""
    return {
        "customer_id": args.customer_id,
        "date": args.date,
        "amount": args.amount,
        "tz": args.tz,
    }


def _fit_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kw: dict[str, Any] = {"method": args.method, "random_seed": args.seed}
    if args.method == "nuts":
        kw |= {"chains": args.chains, "draws": args.draws, "tune": args.tune}
        kw["progressbar"] = not args.quiet
    elif args.method == "laplace":
        kw |= {"chains": args.chains, "draws": args.draws}
    return kw


def _model_classes(args: argparse.Namespace) -> tuple[type, type]:
    """The registered purchase and spend estimator classes named by --model/--spend-model
    (short or saved names; the args are set to the short names). An unknown name is a
    ClvkitError listing the registered ones. Called after the output checks: importing the
    registry loads the models, which takes seconds."""
    from clvkit.models.registry import get

    purchase, spend = get(args.model, "purchase"), get(args.spend_model, "spend")
    args.model, args.spend_model = purchase.spec.name, spend.spec.name
    return purchase, spend


def _fit_models(rfm: Any, args: argparse.Namespace, con: _Console) -> tuple[Any, Any]:
    purchase, spend = _model_classes(args)
    kw = _fit_kwargs(args)
    con.step(f"fitting {purchase.spec.label} ({args.method}) on {len(rfm):,} customers")
    fitted = purchase().fit(rfm, **kw)
    con.step(f"fitting {spend.spec.label} spend model")
    return fitted, spend().fit(rfm, **kw)


def _value(bg: Any, gg: Any, rfm: Any, args: argparse.Namespace, con: _Console) -> Any:
    from clvkit.value.engine import customer_value

    con.step(
        f"Monte Carlo CLV ({args.value_method}), horizon {args.horizon}, "
        f"annual discount rate {args.annual_discount_rate:g}"
    )
    return customer_value(
        bg,
        gg,
        rfm,
        horizon=args.horizon,
        period=args.period,
        annual_discount_rate=args.annual_discount_rate,
        margin=args.margin,
        method=args.value_method,
        random_seed=args.seed,
        progressbar=not args.quiet,
    )


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    skip = {"func", "quiet", "command"}
    return {k: v for k, v in sorted(vars(args).items()) if k not in skip and v is not None}


def _write_frame(frame: Any, path: Path) -> Path:
    """Write a table atomically: Parquet for .parquet/.pq, CSV for .csv (checked up front)."""
    from clvkit.utils.io import atomic_path

    with atomic_path(path) as tmp:
        if path.suffix.lower() in {".parquet", ".pq"}:
            frame.to_parquet(tmp)
        else:
            frame.to_csv(tmp)
    return path


def _split(source: Any, args: argparse.Namespace, con: _Console) -> Any:
    """The log read and summarized once, split at --calibration-end."""
    from clvkit.evaluation.split import split_log

    con.step(f"reading and summarizing {args.purchases}: calibration and holdout")
    return split_log(
        source,
        calibration_end=args.calibration_end,
        observation_end=args.observation_end,
        time_unit=args.time_unit,
        **_log_columns(args),
    )


def _backtest(split: Any, args: argparse.Namespace, con: _Console, models: tuple) -> Any:
    from clvkit.evaluation.run import backtest_split

    con.step(f"backtest: calibration to {args.calibration_end}, holdout to {args.observation_end}")
    purchase, spend = models
    return backtest_split(
        split, transactions_model=purchase, spend_model=spend, random_seed=args.seed
    )


def _full_report(source: Any, args: argparse.Namespace, con: _Console, title: str) -> tuple:
    """One read and summary of the log, both fits, CLV on the calibration base, backtest,
    report."""
    from clvkit.report import build_report

    split = _split(source, args, con)
    calib = split.rfm[["frequency", "recency", "T", "monetary_value"]].copy()
    calib.attrs = dict(split.rfm.attrs)
    purchase, spend = _fit_models(calib, args, con)
    value = _value(purchase, spend, calib, args, con)
    bt = _backtest(split, args, con, (purchase, spend))
    con.step("rendering the report")
    rep = build_report(calib, purchase, spend, value, bt, settings=_settings(args), title=title)
    return rep, value, bt


# ---------------------------------------------------------------------------------------------
# commands
# ---------------------------------------------------------------------------------------------
def _cmd_demo(args: argparse.Namespace) -> int:
    from clvkit.datasets import cdnow_transactions
    from clvkit.utils.io import prepare_output_dir, staged_output_dir

    out = prepare_output_dir(args.out)
    _model_classes(args)  # an unknown model name fails before any work
    con = _Console(args.quiet)
    con.step("loading the CDNOW sample (2,357 customers, Jan 1997 - Jun 1998)")
    log = cdnow_transactions(sample=True)
    args.purchases = "CDNOW sample"
    args.customer_id, args.date, args.amount, args.tz = "customer_id", "date", "amount", None
    args.calibration_end, args.observation_end = "1997-09-30", "1998-06-30"
    rep, value, bt = _full_report(log, args, con, "clvkit demo: CDNOW sample")
    with staged_output_dir(out, command="demo") as staging:
        rep.write(staging / "report.html")
        value.summary().to_csv(staging / "customer_value.csv")
        bt.metrics.to_csv(staging / "backtest_metrics.csv")
        bt.conditional_expectations.to_csv(staging / "conditional_expectations.csv")
    print(value.report())
    print(f"\nReport: {(out / 'report.html').resolve()}")
    return 0


def _cmd_fit(args: argparse.Namespace) -> int:
    from clvkit.data.summary import rfm_summary
    from clvkit.utils.io import atomic_path, prepare_output_file

    prefix = Path(args.out)
    rfm_path = prepare_output_file(prefix.with_name(prefix.name + RFM_SUFFIX))
    _model_classes(args)  # an unknown model name fails before any work
    paths = {
        "transactions": prefix.with_name(prefix.name + model_suffix(args.model)),
        "spend": prefix.with_name(prefix.name + model_suffix(args.spend_model)),
        "rfm": rfm_path,
    }
    for p in paths.values():
        prepare_output_file(p)
    con = _Console(args.quiet)
    con.step(f"summarizing {args.purchases} per customer")
    rfm = rfm_summary(
        args.purchases,
        time_unit=args.time_unit,
        observation_end=args.observation_end,
        **_log_columns(args),
    )
    purchase, spend = _fit_models(rfm, args, con)
    # Summaries first: if one fails, no model file has been written yet.
    tables = [(m.spec.label, m.summary().round(4).to_string()) for m in (purchase, spend)]
    prefix.parent.mkdir(parents=True, exist_ok=True)
    purchase.save(paths["transactions"])
    spend.save(paths["spend"])
    with atomic_path(paths["rfm"]) as tmp:
        rfm.to_parquet(tmp)
    for p in paths.values():
        print(p)
    for name, table in tables:
        print(f"\n{name}\n{table}")
    return 0


def _model_files(base: str, kind: str, name: str | None) -> str:
    """The saved model file of ``kind`` under the prefix ``base`` (``name``: --model or
    --spend-model; ``None``: the one registered model whose file exists)."""
    from clvkit.models.registry import get, names

    candidates = [name] if name is not None else names(kind)
    found = []
    for n in candidates:
        get(n, kind)  # an unknown name is refused with the registered ones
        for suffix in (model_suffix(n), LEGACY_MODEL_SUFFIXES.get(n)):
            if suffix and os.path.isfile(base + suffix):
                found.append(base + suffix)
                break
    flag = "--model" if kind == "purchase" else "--spend-model"
    if not found:
        wanted = " or ".join(repr(base + model_suffix(n)) for n in candidates)
        raise ClvkitError(
            f"model file {wanted} does not exist. Suggestion: pass the --out prefix used with "
            "'clvkit fit' (e.g. models/shop)."
        )
    if len(found) > 1:
        raise ClvkitError(
            f"the prefix {base!r} has several {kind} model files ({found}). Suggestion: pick "
            f"one with {flag} NAME."
        )
    return found[0]


def _load_models(prefix: str, args: argparse.Namespace) -> tuple[Any, Any, Any]:
    import pandas as pd

    from clvkit.models.persistence import load
    from clvkit.models.registry import names, spec_of

    base = prefix.removesuffix(RFM_SUFFIX)
    for n in names():
        for suffix in (model_suffix(n), LEGACY_MODEL_SUFFIXES.get(n)):
            if suffix:
                base = base.removesuffix(suffix)
    paths = {
        "transactions": _model_files(base, "purchase", args.model),
        "spend": _model_files(base, "spend", args.spend_model),
        "rfm": base + RFM_SUFFIX,
    }
    if not os.path.isfile(paths["rfm"]):
        raise ClvkitError(
            f"file {paths['rfm']!r} does not exist. Suggestion: pass the --out prefix used with "
            "'clvkit fit' (e.g. models/shop)."
        )
    purchase, spend = load(paths["transactions"]), load(paths["spend"])
    spec_of(purchase, "purchase", paths["transactions"])  # the wrong kind of model: refused
    spec_of(spend, "spend", paths["spend"])
    try:
        rfm = pd.read_parquet(paths["rfm"])
    except Exception as exc:
        raise ClvkitError(f"could not read {paths['rfm']!r}: {exc}".splitlines()[0]) from exc
    return purchase, spend, rfm


def _cmd_value(args: argparse.Namespace) -> int:
    from clvkit.utils.io import TABLE_SUFFIXES, prepare_output_file

    if args.out:
        prepare_output_file(args.out, suffixes=TABLE_SUFFIXES)
    con = _Console(args.quiet)
    con.step(f"loading {args.prefix}")
    purchase, spend, rfm = _load_models(args.prefix, args)
    value = _value(purchase, spend, rfm, args, con)
    if args.out:
        _write_frame(value.summary(), Path(args.out))
        con.step(f"per-customer CLV written to {args.out}")
    print(value.report())
    return 0


def _cmd_backtest(args: argparse.Namespace) -> int:
    from clvkit.utils.io import prepare_output_dir, staged_output_dir

    out = prepare_output_dir(args.out)
    _model_classes(args)  # an unknown model name fails before any work
    con = _Console(args.quiet)
    split = _split(args.purchases, args, con)
    models = [args.model, args.spend_model if args.amount is not None else None]
    fitted = []
    for kind, name in zip(("purchase", "spend"), models, strict=True):
        if name is not None:
            from clvkit.evaluation.run import fit_model

            con.step(f"fitting {name} ({args.method}) on {len(split.rfm):,} customers")
            fitted.append(fit_model(name, kind, split.rfm, _fit_kwargs(args)))
        else:
            fitted.append(None)
    bt = _backtest(split, args, con, tuple(fitted))
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
    print(bt.metrics.round(4).to_string())
    print(f"\nTables and plots: {out.resolve()}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from clvkit.utils.io import HTML_SUFFIXES, prepare_output_file

    prepare_output_file(args.out, suffixes=HTML_SUFFIXES)
    con = _Console(args.quiet)
    _model_classes(args)  # an unknown model name fails before any work
    rep, value, _ = _full_report(
        args.purchases, args, con, f"Customer lifetime value: {args.purchases}"
    )
    path = rep.write(args.out)
    print(value.report())
    print(f"\nReport: {Path(path).resolve()}")
    return 0


def _cmd_summarize(args: argparse.Namespace) -> int:
    from clvkit.data.summary import calibration_holdout, rfm_summary
    from clvkit.utils.io import TABLE_SUFFIXES, prepare_output_file

    out = prepare_output_file(args.out, suffixes=TABLE_SUFFIXES)
    con = _Console(args.quiet)
    columns = _log_columns(args)
    if args.calibration_end is not None:
        if args.observation_end is None:
            raise ClvkitError(
                "argument '--calibration-end' needs '--observation-end' (the last day of the "
                "holdout). Suggestion: add --observation-end DATE."
            )
        con.step(f"summarizing {args.purchases}: calibration and holdout")
        table = calibration_holdout(
            args.purchases,
            calibration_end=args.calibration_end,
            observation_end=args.observation_end,
            time_unit=args.time_unit,
            **columns,
        )
    else:
        con.step(f"summarizing {args.purchases}")
        table = rfm_summary(
            args.purchases,
            observation_end=args.observation_end,
            time_unit=args.time_unit,
            **columns,
        )
    _write_frame(table, out)
    print(f"{len(table):,} customers written to {args.out}")
    return 0


# ---------------------------------------------------------------------------------------------
# parser
# ---------------------------------------------------------------------------------------------
def _add_columns(p: argparse.ArgumentParser, amount_required: bool) -> None:
    p.add_argument("purchases", help="CSV or Parquet purchase log (a glob is allowed)")
    p.add_argument("--customer-id", default="customer_id", help="customer id column")
    p.add_argument("--date", default="date", help="purchase date column")
    p.add_argument(
        "--amount",
        default="amount" if amount_required else None,
        help="purchase amount column"
        + (" (required for spend and value)" if amount_required else ""),
    )
    p.add_argument("--time-unit", default="W", help="time unit of the model (D, W, 30D, ...)")
    p.add_argument(
        "--tz",
        default=None,
        help="zone that zoned timestamps are converted to before they are cut to days "
        "(IANA name; default UTC); naive timestamps are read as written",
    )


MAX_SEED = 2**32 - 1


def _seed(text: str) -> int:
    """argparse type of --seed: a whole number from 0 to MAX_SEED."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 0 to {MAX_SEED}")
    return value


def _add_models(p: argparse.ArgumentParser, defaults: bool = True) -> None:
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
            help=f"{kind} model registered in clvkit.models.registry (default: {default})",
        )


def _add_fit(p: argparse.ArgumentParser) -> None:
    _add_models(p)
    p.add_argument(
        "--method",
        choices=["nuts", "laplace", "map", "mle"],
        default="nuts",
        help="nuts: full posterior; laplace: normal approximation (large bases); map/mle: points",
    )
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--seed", type=_seed, default=None, help="random seed (reproducible runs)")


def _add_value(p: argparse.ArgumentParser) -> None:
    p.add_argument("--horizon", default="52W", help="CLV horizon: a duration (52W, 365D)")
    p.add_argument("--period", default="30D", help="cash-flow period for discounting")
    p.add_argument("--annual-discount-rate", type=float, default=0.1)
    p.add_argument("--margin", type=float, default=1.0, help="share of revenue kept, in (0, 1]")
    p.add_argument(
        "--value-method",
        choices=["expected", "simulate"],
        default="simulate",
        help="simulate: predictive intervals; expected: credible intervals of expected value",
    )


def _add_split(p: argparse.ArgumentParser) -> None:
    p.add_argument("--calibration-end", required=True, help="last day of calibration (YYYY-MM-DD)")
    p.add_argument("--observation-end", required=True, help="last day of the holdout")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the docs and tests).

    Examples
    --------
    >>> args = build_parser().parse_args(["value", "models/shop", "--horizon", "26W"])
    >>> args.horizon, args.annual_discount_rate, args.value_method
    ('26W', 0.1, 'simulate')
    """
    parser = argparse.ArgumentParser(
        prog="clvkit",
        description="Bayesian customer lifetime value (default models: BG/NBD + Gamma-Gamma).",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="the whole pipeline on the CDNOW sample, with a report")
    p.add_argument("--out", default="demo-output", help="output folder")
    _add_fit(p)
    _add_value(p)
    p.set_defaults(func=_cmd_demo, time_unit="W", seed=2026)

    p = sub.add_parser("fit", help="fit both models and write them under models/")
    _add_columns(p, amount_required=True)
    p.add_argument("--observation-end", default=None, help="last day observed (default: last)")
    p.add_argument("--out", default="models/model", help="output prefix, e.g. models/shop")
    _add_fit(p)
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser("value", help="per-customer CLV and customer equity from a fitted model")
    p.add_argument("prefix", help="the prefix given to 'clvkit fit --out' (e.g. models/shop)")
    _add_models(p, defaults=False)
    p.add_argument(
        "--out", default=None, help="CSV or Parquet file (.csv, .parquet, .pq) for the table"
    )
    p.add_argument("--seed", type=_seed, default=None, help="random seed (reproducible runs)")
    _add_value(p)
    p.set_defaults(func=_cmd_value)

    p = sub.add_parser("backtest", help="predicted vs actual on a holdout window")
    _add_columns(p, amount_required=False)
    _add_split(p)
    p.add_argument("--out", default="backtest-output", help="folder for tables and plots")
    _add_fit(p)
    p.set_defaults(func=_cmd_backtest)

    p = sub.add_parser("report", help="fit, value and backtest; one self-contained HTML report")
    _add_columns(p, amount_required=True)
    _add_split(p)
    p.add_argument("--out", default="report.html", help="HTML file (.html or .htm)")
    _add_fit(p)
    _add_value(p)
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("summarize", help="the RFM (or calibration/holdout) table of a log")
    _add_columns(p, amount_required=False)
    p.add_argument("--observation-end", default=None, help="last day observed (default: last)")
    p.add_argument(
        "--calibration-end",
        default=None,
        help="last day of calibration: write the calibration/holdout table "
        "(needs --observation-end)",
    )
    p.add_argument("--out", required=True, help="CSV or Parquet file (.csv, .parquet, .pq)")
    p.set_defaults(func=_cmd_summarize)

    for action in sub.choices.values():
        action.add_argument("--quiet", action="store_true", help="no progress on stderr")
    return parser


def _version() -> str:
    from clvkit import __version__

    return f"clvkit {__version__}"


def _show_warning(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
    print(f"clvkit: warning: {category.__name__}: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``clvkit`` console script; returns the exit code.

    Examples
    --------
    >>> main(["value", "no/such/model", "--quiet"])  # one line on stderr, exit code 2
    2
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    # The CLI samples with nutpie's numba backend and never needs PyTensor's C BLAS; say so
    # before PyTensor is imported, so users are not shown its BLAS-linking warning.
    flags = os.environ.get("PYTENSOR_FLAGS", "")
    if "blas__ldflags" not in flags:
        os.environ["PYTENSOR_FLAGS"] = ",".join(f for f in (flags, "blas__ldflags=") if f)
    from clvkit.utils.io import Terminated, sigterm_as_exception

    # SIGTERM becomes Terminated (a BaseException) while main runs, so `finally` blocks remove
    # temporary files and staging folders; the previous handler is restored on return.
    with sigterm_as_exception():
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                code = int(args.func(args))
                sys.stdout.flush()  # a closed pipe shows up here, inside the handlers below
                return code
        except Terminated:
            print("clvkit: terminated (SIGTERM); temporary files removed", file=sys.stderr)
            return EXIT_SIGTERM
        except BrokenPipeError:
            # stdout was closed early (`clvkit ... | head`). Python's documented recipe: point
            # stdout at devnull so the final flush at exit cannot fail again; exit quietly.
            _silence_stdout()
            return EXIT_BROKEN_PIPE
        except ClvkitError as exc:
            print(f"clvkit: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except OSError as exc:  # a full disk, a permission or a path problem while writing
            print(f"clvkit: error: {exc}".splitlines()[0], file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:
            print("clvkit: interrupted", file=sys.stderr)
            return 130


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (tests)
        pass


if __name__ == "__main__":
    raise SystemExit(main())
