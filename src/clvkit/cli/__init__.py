"""The ``clvkit`` command line: demo, fit, value, score, backtest, compare, report, summarize
and retention.

Progress goes to stderr (``--quiet`` turns it off): a line per step and, while a fit or the
backtest runs and stderr is not a terminal, a "still running" line every few seconds. Results
go to stdout or files. ``clvkit COMMAND --help`` shows every option with its default; the
options are the API's (``docs/cli.md`` maps each to its keyword).

``PURCHASES`` (a CSV or Parquet file, or a glob) is read exactly as the Python API reads a path:
``fit``, ``score`` and ``summarize`` hand it to ``clvkit.rfm_summary``/``calibration_holdout``
(DuckDB, out of core), ``backtest`` to ``clvkit.evaluation.split_log``, ``report`` to
``clvkit.report.report_from_log`` (read once, summarized as of the observation end for the
valuation and split at the calibration end for the backtest); so the same file gives the same
table, or the same error, on the command line and in Python (``--tz`` as the API's ``tz=``).

Models come from the registry (``clvkit.models.registry``): ``--model`` names the purchase
model (default ``bgnbd``), ``--spend-model`` the spend model (default ``gamma_gamma``).
``clvkit fit --out models/shop`` writes ``models/shop.<name>.nc`` per model (e.g.
``shop.bgnbd.nc``, and with ``--amount`` ``shop.gamma_gamma.nc``, fitted first so bad spend
input stops the run before any purchase sampling) and ``models/shop.rfm.parquet``;
A model of discrete opportunities (``--model bgbb``) reads the log on a grid of
``--time-unit`` opportunities (calendar ``Y``, ``Q``, ``M`` or a fixed ``W``) in ``fit``,
``score``, ``backtest`` and ``report``: :func:`clvkit.data.log_table` builds the table the model
names (``ModelSpec.data``). ``clvkit value`` finds them by the prefix (files of earlier versions, ``shop.beta_geo.nc``,
still load) and ``clvkit score NEW_LOG --model-prefix models/shop`` values a new log with them,
in their time unit.

``clvkit report`` values the base as of ``--observation-end`` (models fitted on all purchases
to that date) and backtests the models with a separate fit on the calibration window; the page
and stdout open with the verdict (:mod:`clvkit.evaluation.verdict`). ``clvkit backtest``
prints the verdict on the backtest.

``clvkit compare PURCHASES --models bgnbd,pnbd --calibration-end DATE --observation-end DATE``
fits each named purchase model on the calibration window and prints one ranked table (PSIS-LOO,
stacking and pseudo-BMA weights, holdout log score, MAE, the holdout total with its interval,
per-customer coverage) and the words on which model the data favour
(:func:`clvkit.evaluation.compare_models.compare`); ``--out`` writes the table (.csv/.parquet).
``clvkit report --compare bgnbd,pnbd`` adds the section "Which model to trust" to the report.

``clvkit summarize PURCHASES --out rfm.parquet`` writes the RFM table of a log (with
``--calibration-end`` and ``--observation-end``: the calibration/holdout table), read from the
path or glob by DuckDB like ``clvkit.rfm_summary(path)``; ``--table opportunities`` writes the
discrete-opportunity table of BG/BB instead (``clvkit.opportunity_summary``). The index (customer id) is kept;
Parquet keeps every type exactly, CSV is text.

``clvkit retention CONTRACTS --period M --calibration-end DATE --observation-end DATE`` is the
contractual backtest (:func:`clvkit.retention_backtest`, ``docs/retention.md``): a contractual
model (``--model``, default ``sbg``) fitted on the contracts to the calibration end, the
subscribers active at each later period per cohort against the model's credible and predictive
bands; it prints the overall table and the verdict, ``--out`` writes the per-cohort table
(.csv/.parquet), ``--plot`` the cohort fans (.png/.pdf/.svg) and ``--report`` the report page
(.html), each atomically. With ``--fee COLUMN`` it also values the subscriber base (the model
fitted on all contracts to the observation end, :func:`clvkit.subscriber_value`): equity with
credible and predictive intervals, value by tenure and the retention elasticity, printed, in
the report page and per subscriber with ``--value-out``.

Outputs (see ``docs/reliability.md``):

- ``--out`` is checked before any work starts: a bad one fails in well under a second.
- File outputs (``value``, ``report``, ``summarize``, ``fit``, ``compare``) replace only the
  named file. The suffix must match the content (.csv/.parquet/.pq tables, .html/.htm report);
  an existing folder at the path, a file among its parent folders or an unwritable parent is
  refused.
- Folder outputs (``backtest``, ``demo``) hold a marker file ``.clvkit-output``. An existing
  ``--out`` is replaced only if it is empty or a clvkit output folder with nothing else in it;
  a file, a folder with other files, or the current folder (or a parent of it) is refused.
- Every output is written under a temporary name (``.NAME.clvkit-tmp-PID-XXXX``) and renamed, a
  folder swapped in atomically, so it is always the complete old output or the complete new
  one; temporaries are removed on errors and SIGTERM, and those of killed runs at the next run.

Exit codes: 0 success; 2 a user error (bad argument, missing file or column, bad date, a model
file that is corrupt or not clvkit's, an ``--out`` that breaks the rules above, a rate above 1,
an OS error while writing), one line on stderr; 130 Ctrl-C; 141 stdout closed early (``clvkit ... | head``),
quietly; 143 SIGTERM, one line on stderr, temporaries removed.
"""

from __future__ import annotations

import argparse
import os
import re
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
        self.t0 = time.perf_counter()
        from clvkit.utils.progress import set_clock

        set_clock(self.t0)

    def step(self, text: str) -> None:
        if not self.quiet:
            print(f"[{time.perf_counter() - self.t0:7.1f}s] {text}", file=sys.stderr, flush=True)


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


def _cleaning(args: argparse.Namespace) -> dict[str, Any]:
    """The cleaning options given on the command line (unset ones are left to the API)."""
    names = ("returns", "zero_amounts", "duplicates", "currency", "fx_rate", "reporting_currency")
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def _summary_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {"time_unit": args.time_unit, **_log_columns(args), **_cleaning(args)}


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
    from clvkit.data.log_tables import LOG_TABLES
    from clvkit.models.registry import get

    purchase = get(args.model, "purchase", tuple(LOG_TABLES))  # a model of a purchase log
    spend = get(args.spend_model, "spend")
    args.data = purchase.spec.data
    args.model, args.spend_model = purchase.spec.name, spend.spec.name
    return purchase, spend


def _fit(name: str, kind: str, rfm: Any, args: argparse.Namespace, con: _Console, role: str) -> Any:
    """Fit one registered model, with a heartbeat on stderr while it runs."""
    from clvkit.evaluation.run import fit_model
    from clvkit.utils.progress import heartbeat

    label = f"fitting {name} ({args.method}) on {len(rfm):,} customers{role}"
    con.step(label)
    cov = getattr(args, "cov", None)
    with heartbeat(label, not args.quiet, start=con.t0):
        if cov is not None:  # the covariates' wrapper on the links this model has
            return cov.fit(name, kind, rfm, _fit_kwargs(args))
        return fit_model(name, kind, rfm, _fit_kwargs(args), args.data)


def _fit_models(rfm: Any, args: argparse.Namespace, con: _Console, role: str = "") -> tuple:
    """The spend model first (its input checks run before any purchase sampling), then the
    purchase model; the spend model is ``None`` without an amount column."""
    _model_classes(args)
    cov = getattr(args, "cov", None)
    if cov is not None:
        cov.check_links(args.model, args.spend_model if args.amount is not None else None)
    spend = None
    if args.amount is not None:
        spend = _fit(args.spend_model, "spend", rfm, args, con, role)
    return _fit(args.model, "purchase", rfm, args, con, role), spend


def _join_covariates(rfm: Any, args: argparse.Namespace) -> Any:
    """``rfm`` with the --covariates file's columns joined by customer id (as is without
    --covariates); the inputs are read once and kept as ``args.cov``."""
    if getattr(args, "covariates", None) is None:
        return rfm
    if getattr(args, "cov", None) is None:
        from clvkit.value.covariate_inputs import CovariateInputs

        args.cov = CovariateInputs.build(
            args.covariates,
            getattr(args, "covariate_columns", None),
            getattr(args, "categorical", None) or (),
            getattr(args, "segment", None),
            getattr(args, "links", None),
            customer_id=getattr(args, "customer_id", None) or "customer_id",
            string_ids=rfm.index.dtype.kind not in "iuf",
        )
    return args.cov.join(rfm)


def _tiers(text: str | None) -> dict[str, float] | None:
    """``--tiers "platinum=0.01,gold=0.05,iron=0.2,lead=1"`` as the API's ``tiers`` mapping."""
    if text is None:
        return None
    out: dict[str, float] = {}
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, share = part.partition("=")
        try:
            value = float(share)
        except ValueError:
            value = float("nan")
        if not sep or not name.strip() or not 0 < value <= 1:
            raise ClvkitError(
                f"argument '--tiers': {part!r} is not NAME=SHARE with SHARE in (0, 1]. "
                "Suggestion: --tiers platinum=0.01,gold=0.05,iron=0.2,lead=1 (cumulative top "
                "shares, the last 1)."
            )
        out[name.strip()] = value
    return out


def _value_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The valuation options as :func:`clvkit.customer_value` keywords (unset ones left out)."""
    kw: dict[str, Any] = {
        "horizon": args.horizon,
        "period": args.period,
        "annual_discount_rate": args.annual_discount_rate,
        "margin": args.margin,
        "discounting": args.discounting,
        "cost_per_period": args.cost_per_period,
        "method": args.value_method,
    }
    if args.acquisition_cost is not None:
        kw["acquisition_cost"] = args.acquisition_cost
    tiers = _tiers(args.tiers)
    if tiers is not None:
        kw["tiers"] = tiers
    if args.value_draws is not None:
        kw["draws"] = args.value_draws  # thinning of the posterior (customer_value's draws=)
    return kw


def _value(bg: Any, gg: Any, rfm: Any, args: argparse.Namespace, con: _Console) -> Any:
    from clvkit.value.counterfactual import covariate_columns
    from clvkit.value.engine import customer_value

    needed = [c for m in (bg, gg) for c in covariate_columns(getattr(m, "spec", None))]
    missing = [c for c in dict.fromkeys(needed) if c not in rfm.columns]
    if missing:
        raise ClvkitError(
            f"the models read covariate column(s) {missing}, which the customer table lacks. "
            "Suggestion: pass --covariates FILE (the customer id and those columns)."
        )

    con.step(
        f"customer value ({args.value_method}) of {len(rfm):,} customers, horizon "
        f"{args.horizon}, annual discount rate {args.annual_discount_rate:g}"
    )
    by = getattr(args, "by", None)
    return customer_value(
        bg, gg, rfm, random_seed=args.seed, progressbar=not args.quiet, by=by,
        **_value_kwargs(args),
    )  # fmt: skip


def _by_group(value: Any, args: argparse.Namespace, con: _Console) -> None:
    """With --by: print the value by group and write it to --by-out."""
    if getattr(args, "by", None) is None:
        return
    table = value.group_table(args.prob)
    if args.by_out:
        _write_frame(table, Path(args.by_out))
        con.step(f"value by {args.by} written to {args.by_out}")
    print(f"\nValue by {args.by} ({table.attrs['kind']} intervals, {args.prob:.0%}):")
    shown = table.copy()
    for c in shown.columns:  # shares as percentages, money with two decimals
        if c == "customers":
            continue
        fmt = "{:.1%}" if "share" in c else "{:,.2f}"
        shown[c] = [fmt.format(v) for v in shown[c]]
    print(shown.to_string())


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


def _readable(frame: Any, by_row: bool = False) -> str:
    """A table as the report writes its cells (counts as integers, shares as percentages)."""
    from clvkit.report import formatted

    return formatted(frame, by_row, escape=False).to_string()


def _split(source: Any, args: argparse.Namespace, con: _Console) -> Any:
    """The log read and summarized once, split at --calibration-end."""
    from clvkit.evaluation.split import split_log

    con.step(f"reading and summarizing {args.purchases}: calibration and holdout")
    return split_log(
        source,
        calibration_end=args.calibration_end,
        observation_end=args.observation_end,
        data=args.data,
        **_summary_kwargs(args),
    )


def _full_report(source: Any, args: argparse.Namespace, con: _Console, title: str) -> Any:
    """The valuation as of --observation-end, the backtest (its own fit on the calibration
    window) and the report: :func:`clvkit.report.report_from_log`."""
    from clvkit.report import report_from_log

    _model_classes(args)
    return report_from_log(
        source,
        calibration_end=args.calibration_end,
        observation_end=args.observation_end,
        time_unit=args.time_unit,
        **_log_columns(args),
        model=args.model,
        spend_model=args.spend_model,
        compare=_compare_names(getattr(args, "compare", None), "--compare"),
        **_covariate_kwargs(args),
        fit_kwargs=_fit_kwargs(args),
        value_kwargs=_value_kwargs(args),
        cleaning=_cleaning(args),
        prob=args.prob,
        random_seed=args.seed,
        title=title,
        settings=_settings(args),
        step=con.step,
        show_progress=not args.quiet,
        clock_start=con.t0,
    )


def _covariate_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The covariate options as :func:`clvkit.report.report_from_log` keywords."""
    if getattr(args, "covariates", None) is None:
        return {}
    return {
        "covariates": args.covariates,
        "covariate_columns": args.covariate_columns,
        "categorical": args.categorical or (),
        "segment": args.segment,
        "links": args.links,
    }


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
    run = _full_report(log, args, con, "clvkit demo: CDNOW sample")
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


def _cmd_fit(args: argparse.Namespace) -> int:
    from clvkit.data.log_tables import log_table
    from clvkit.utils.io import atomic_path, prepare_output_file

    prefix = Path(args.out)
    rfm_path = prepare_output_file(prefix.with_name(prefix.name + RFM_SUFFIX))
    _model_classes(args)  # an unknown model name fails before any work
    paths = {"transactions": prefix.with_name(prefix.name + model_suffix(args.model))}
    if args.amount is not None:
        paths["spend"] = prefix.with_name(prefix.name + model_suffix(args.spend_model))
    paths["rfm"] = rfm_path
    for p in paths.values():
        prepare_output_file(p)
    con = _Console(args.quiet)
    con.step(f"summarizing {args.purchases} per customer")
    rfm = log_table(
        args.purchases, args.data, observation_end=args.observation_end, **_summary_kwargs(args)
    )
    rfm = _join_covariates(rfm, args)  # saved with the table: 'clvkit value' reads them
    purchase, spend = _fit_models(rfm, args, con)
    fitted = [m for m in (purchase, spend) if m is not None]
    # Summaries first: if one fails, no model file has been written yet.
    tables = [(m.spec.label, _readable(m.summary(args.prob))) for m in fitted]
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


def _model_files(base: str, kind: str, name: str | None) -> str:
    """The saved model file of ``kind`` under the prefix ``base`` (``name``: --model or
    --spend-model; ``None``: the one registered model whose file exists)."""
    from clvkit.data.log_tables import LOG_TABLES
    from clvkit.models.registry import get, names

    tables = tuple(LOG_TABLES) if kind == "purchase" else None  # models of a purchase log
    candidates = [name] if name is not None else names(kind, tables)
    found = []
    for n in candidates:
        get(n, kind, tables)  # an unknown name is refused with the registered ones
        for suffix in (model_suffix(n), LEGACY_MODEL_SUFFIXES.get(n)):
            if suffix and os.path.isfile(base + suffix):
                found.append(base + suffix)
                break
    flag = "--model" if kind == "purchase" else "--spend-model"
    if not found:
        wanted = " or ".join(repr(base + model_suffix(n)) for n in candidates)
        hint = (
            "fit the spend model too: 'clvkit fit LOG --amount COLUMN --out PREFIX'"
            if kind == "spend"
            else "pass the --out prefix used with 'clvkit fit' (e.g. models/shop)"
        )
        raise ClvkitError(f"model file {wanted} does not exist. Suggestion: {hint}.")
    if len(found) > 1:
        raise ClvkitError(
            f"the prefix {base!r} has several {kind} model files ({found}). Suggestion: pick "
            f"one with {flag} NAME."
        )
    return found[0]


def _model_base(prefix: str) -> str:
    """The prefix without a model or RFM file suffix (a file name given as the prefix)."""
    from clvkit.models.registry import names

    base = prefix.removesuffix(RFM_SUFFIX)
    for n in names():
        for suffix in (model_suffix(n), LEGACY_MODEL_SUFFIXES.get(n)):
            if suffix:
                base = base.removesuffix(suffix)
    return base


def _load_fitted(base: str, args: argparse.Namespace) -> tuple[Any, Any]:
    from clvkit.models.persistence import load
    from clvkit.models.registry import spec_of

    paths = {
        "transactions": _model_files(base, "purchase", args.model),
        "spend": _model_files(base, "spend", args.spend_model),
    }
    purchase, spend = load(paths["transactions"]), load(paths["spend"])
    spec_of(purchase, "purchase", paths["transactions"])  # the wrong kind of model: refused
    spec_of(spend, "spend", paths["spend"])
    return purchase, spend


def _load_models(prefix: str, args: argparse.Namespace) -> tuple[Any, Any, Any]:
    import pandas as pd

    base = _model_base(prefix)
    rfm_path = base + RFM_SUFFIX
    _model_files(base, "purchase", args.model)
    _model_files(base, "spend", args.spend_model)
    if not os.path.isfile(rfm_path):
        raise ClvkitError(
            f"file {rfm_path!r} does not exist. Suggestion: pass the --out prefix used with "
            "'clvkit fit' (e.g. models/shop)."
        )
    purchase, spend = _load_fitted(base, args)
    try:
        rfm = pd.read_parquet(rfm_path)
    except Exception as exc:
        raise ClvkitError(f"could not read {rfm_path!r}: {exc}".splitlines()[0]) from exc
    return purchase, spend, rfm


def _cmd_value(args: argparse.Namespace) -> int:
    from clvkit.utils.io import TABLE_SUFFIXES, prepare_output_file

    if args.out:
        prepare_output_file(args.out, suffixes=TABLE_SUFFIXES)
    if args.by_out:
        prepare_output_file(args.by_out, suffixes=TABLE_SUFFIXES)
    con = _Console(args.quiet)
    con.step(f"loading {args.prefix}")
    purchase, spend, rfm = _load_models(args.prefix, args)
    rfm = _join_covariates(rfm, args)
    value = _value(purchase, spend, rfm, args, con)
    if args.out:
        _write_frame(value.summary(args.prob), Path(args.out))
        con.step(f"per-customer CLV written to {args.out}")
    print(value.report(args.prob))
    _by_group(value, args, con)
    return 0


def _cmd_score(args: argparse.Namespace) -> int:
    """Summarize a new log and value it with saved models (in the models' time unit, on the
    table their purchase model reads)."""
    from clvkit.data.log_tables import check_log_table, log_table
    from clvkit.units import format_time_unit
    from clvkit.utils.io import TABLE_SUFFIXES, prepare_output_file

    if args.out:
        prepare_output_file(args.out, suffixes=TABLE_SUFFIXES)
    if args.by_out:
        prepare_output_file(args.by_out, suffixes=TABLE_SUFFIXES)
    con = _Console(args.quiet)
    con.step(f"loading the models {args.model_prefix}")
    purchase, spend = _load_fitted(_model_base(args.model_prefix), args)
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
        args.purchases, data, observation_end=args.observation_end, **_summary_kwargs(args)
    )
    rfm = _join_covariates(rfm, args)
    value = _value(purchase, spend, rfm, args, con)
    if args.out:
        _write_frame(value.summary(args.prob), Path(args.out))
        con.step(f"per-customer CLV written to {args.out}")
    print(f"{len(rfm):,} customers of {args.purchases} as of {rfm.attrs.get('observation_end')}")
    print(value.report(args.prob))
    _by_group(value, args, con)
    return 0


def _cmd_backtest(args: argparse.Namespace) -> int:
    from clvkit.utils.io import prepare_output_dir, staged_output_dir
    from clvkit.utils.progress import heartbeat

    out = prepare_output_dir(args.out)
    _model_classes(args)  # an unknown model name fails before any work
    con = _Console(args.quiet)
    split = _split(args.purchases, args, con)
    if getattr(args, "covariates", None) is not None:
        import dataclasses

        split = dataclasses.replace(split, rfm=_join_covariates(split.rfm, args))
    purchase, spend = _fit_models(split.rfm, args, con)
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
    print(_readable(bt.metrics.T, by_row=True))
    print()
    print(verdict(backtest=bt, prob=args.prob).to_text())
    print(f"\nTables and plots: {out.resolve()}")
    return 0


def _cmd_retention(args: argparse.Namespace) -> int:
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
    con = _Console(args.quiet)
    from clvkit.data.contract_split import contract_calibration_holdout
    from clvkit.evaluation.retention import retention_backtest_split

    con.step(f"reading {args.contracts}: contracts to {args.calibration_end} and the holdout")
    table = contract_calibration_holdout(
        args.contracts, args.period, args.calibration_end, args.observation_end,
        customer_id_col=args.customer_id, start_col=args.start, end_col=args.end, tz=args.tz,
        fee_col=args.fee or None,
    )  # fmt: skip
    kw = _fit_kwargs(args)
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
            _write_frame(val.customers, value_out)
    if out is not None:
        _write_frame(res.periods, out)
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


def _compare_names(text: str | None, flag: str) -> list[str] | None:
    """``--models``/``--compare`` as registered short names (unknown ones refused, listing the
    registered names; duplicates dropped); ``None`` stays ``None``. At least two."""
    if text is None:
        return None
    from clvkit.models.registry import get

    wanted = [get(n.strip(), "purchase", "rfm").spec.name for n in text.split(",") if n.strip()]
    wanted = list(dict.fromkeys(wanted))
    if len(wanted) < 2:
        raise ClvkitError(
            f"argument '{flag}' names {len(wanted)} purchase model ({','.join(wanted) or 'none'}); "
            "a comparison needs at least 2. Suggestion: e.g. bgnbd,pnbd,mbgnbd."
        )
    return wanted


def _cmd_compare(args: argparse.Namespace) -> int:
    from clvkit.utils.io import TABLE_SUFFIXES, prepare_output_file
    from clvkit.utils.progress import heartbeat

    if args.out:
        prepare_output_file(args.out, suffixes=TABLE_SUFFIXES)
    if args.models is None:
        from clvkit.models.registry import names

        args.models = ",".join(names("purchase", "rfm"))
    wanted = _compare_names(args.models, "--models")  # unknown names fail before any work
    args.data = "rfm"  # the models compared read the continuous-time RFM table
    con = _Console(args.quiet)
    split = _split(args.purchases, args, con)
    fitted = {n: _fit(n, "purchase", split.rfm, args, con, "") for n in wanted}
    from clvkit.evaluation.compare_models import compare

    con.step(f"comparing {', '.join(wanted)}: PSIS-LOO, weights and the holdout")
    with heartbeat("comparison", not args.quiet, start=con.t0):
        result = compare(fitted, split.rfm, prob=args.prob, random_seed=args.seed)
    if args.out:
        _write_frame(result.table, Path(args.out))
        con.step(f"comparison table written to {args.out}")
    print(result.summary())
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from clvkit.utils.io import HTML_SUFFIXES, prepare_output_file

    prepare_output_file(args.out, suffixes=HTML_SUFFIXES)
    con = _Console(args.quiet)
    _model_classes(args)  # an unknown model name fails before any work
    _compare_names(args.compare, "--compare")
    run = _full_report(args.purchases, args, con, f"Customer lifetime value: {args.purchases}")
    path = run.report.write(args.out)
    print(run.verdict.to_text())
    print()
    print(run.value.report(args.prob))
    if run.comparison is not None:
        print("\nWhich model to trust:\n" + "\n".join(f"- {w}" for w in run.comparison.words))
    print(f"\nReport: {Path(path).resolve()}")
    return 0


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


def _cmd_equity(args: argparse.Namespace) -> int:
    """The firm's customer equity: today's customers and future cohorts
    (:func:`clvkit.firm_equity`), with sensitivities and unit economics."""
    from clvkit.utils.io import prepare_output_dir, staged_output_dir
    from clvkit.utils.progress import heartbeat

    out = prepare_output_dir(args.out)
    _model_classes(args)
    con = _Console(args.quiet)
    plan_counts = None if args.plan is None else _plan_counts(args.plan, args)
    from clvkit.data.summary import rfm_summary

    con.step(f"summarizing {args.purchases}")
    rfm = rfm_summary(args.purchases, **_summary_kwargs(args))
    purchase, spend = _fit_models(rfm, args, con)
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


def _cmd_history(args: argparse.Namespace) -> int:
    """Customer equity at a series of cut-offs and the bridges (:func:`clvkit.equity_history`)."""
    from clvkit.utils.io import prepare_output_dir, staged_output_dir

    out = prepare_output_dir(args.out)
    _model_classes(args)
    con = _Console(args.quiet)
    from clvkit.firm import equity_history

    con.step(f"equity history: cut-offs {args.cutoffs}, refit {args.refit}")
    refit = args.refit if args.refit == "every" else _whole(args.refit, "--refit")
    hist = equity_history(
        args.purchases, cutoffs=_dates_or_step(args.cutoffs, "--cutoffs"),
        customer_id=args.customer_id, date=args.date, amount=args.amount,
        time_unit=args.time_unit, tz=args.tz, transactions_model=args.model,
        spend_model=args.spend_model, fit_kwargs=_fit_kwargs(args), horizon=args.horizon,
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


def _cmd_rolling(args: argparse.Namespace) -> int:
    """Forecast error from many origins, by horizon (:func:`clvkit.rolling_backtest`)."""
    from clvkit.utils.io import prepare_output_dir, staged_output_dir

    out = prepare_output_dir(args.out)
    _model_classes(args)
    con = _Console(args.quiet)
    from clvkit.evaluation.rolling import rolling_backtest

    horizons = [h.strip() for h in args.horizons.split(",") if h.strip()]
    con.step(f"rolling backtest: origins {args.origins}, horizons {', '.join(horizons)}")
    roll = rolling_backtest(
        args.purchases, origins=_dates_or_step(args.origins, "--origins"),
        horizons=[float(h) if re.fullmatch(r"\d+(\.\d+)?", h) else h for h in horizons],
        customer_id=args.customer_id, date=args.date, amount=args.amount,
        time_unit=args.time_unit, tz=args.tz, transactions_model=args.model,
        fit_kwargs=_fit_kwargs(args), prob=args.prob, n_samples=args.samples,
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


def _cmd_summarize(args: argparse.Namespace) -> int:
    from clvkit.data.log_tables import log_table
    from clvkit.utils.io import TABLE_SUFFIXES, prepare_output_file

    out = prepare_output_file(args.out, suffixes=TABLE_SUFFIXES)
    con = _Console(args.quiet)
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
        **_summary_kwargs(args),
    )
    _write_frame(table, out)
    print(f"{len(table):,} customers written to {args.out}")
    return 0


# ---------------------------------------------------------------------------------------------
# checks of values argparse cannot express
# ---------------------------------------------------------------------------------------------
def check_args(args: argparse.Namespace) -> None:
    """Refuse rates above 1 (``--annual-discount-rate 10`` meant as 10%), a margin outside
    (0, 1], an interval level outside (0, 1) and negative costs, with one ClvkitError.

    Examples
    --------
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
    _tiers(getattr(args, "tiers", None))
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


# ---------------------------------------------------------------------------------------------
# parser
# ---------------------------------------------------------------------------------------------
def _default(text: str) -> str:
    """A help text ending in the argument's default (argparse fills ``%(default)s`` from the
    ``default=`` it is given, so the two cannot disagree)."""
    return f"{text} (default: %(default)s)"


def _add_columns(p: argparse.ArgumentParser, amount: str | None, cleaning: bool = True) -> None:
    """The log's columns. ``amount``: the default amount column (``None``: no spend unless
    --amount is given). ``cleaning``: also the cleaning options (commands whose API takes
    them)."""
    p.add_argument("purchases", help="CSV or Parquet purchase log (a glob is allowed)")
    p.add_argument("--customer-id", default="customer_id", help=_default("customer id column"))
    p.add_argument("--date", default="date", help=_default("purchase date column"))
    p.add_argument(
        "--amount",
        default=amount,
        help=_default("purchase amount column (needed for spend and value)")
        if amount
        else "purchase amount column; without it only the purchase model is fitted (default: none)",
    )
    p.add_argument(
        "--time-unit",
        default="W",
        help=_default(
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
        _add_cleaning(p)


def _add_cleaning(p: argparse.ArgumentParser) -> None:
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
            help=f"{kind} model registered in clvkit.models.registry (default: {default})"
            + (
                "; bgbb (BG/BB) reads the log on a grid of --time-unit opportunities"
                if kind == "purchase"
                else ""
            ),
        )


def _add_seed(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--seed",
        type=_seed,
        default=None,
        help="random seed, for reproducible runs (default: none, a fresh seed)",
    )


def _add_fit(p: argparse.ArgumentParser, seed: bool = True) -> None:
    _add_models(p)
    p.add_argument(
        "--method",
        choices=["nuts", "laplace", "map", "mle"],
        default="nuts",
        help=_default(
            "nuts: full posterior; laplace: normal approximation (large bases); map/mle: "
            "point estimates"
        ),
    )
    p.add_argument("--chains", type=int, default=4, help=_default("NUTS/Laplace chains"))
    p.add_argument("--draws", type=int, default=1000, help=_default("draws per chain"))
    p.add_argument("--tune", type=int, default=1000, help=_default("NUTS tuning steps"))
    if seed:
        _add_seed(p)


def _add_prob(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--prob",
        type=float,
        default=0.9,
        help=_default("interval level of every interval shown, in (0, 1)"),
    )


def _add_rate(g: Any) -> None:
    """--annual-discount-rate, the same for every valuation (checked by check_args)."""
    g.add_argument(
        "--annual-discount-rate",
        type=float,
        default=0.1,
        help=_default("annual discount rate as a fraction (0.1 = 10%%); above 1 refused"),
    )


def _add_margin(g: Any, of: str) -> None:
    """--margin: the share of ``of`` (revenue, the fee) kept (checked by check_args)."""
    g.add_argument(
        "--margin",
        type=float,
        default=1.0,
        help=_default(f"share of {of} kept, in (0, 1]; 1 values revenue, not profit"),
    )


def _add_value(p: argparse.ArgumentParser) -> None:
    g = _add_cashflow(p)
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
        help=_default(
            "expected: each customer's expected CLV per posterior draw (credible intervals; "
            "what a manager can target, the API's default too); simulate: one simulated future "
            "per draw (predictive intervals, which include the luck of each customer)"
        ),
    )
    _add_value_draws(g)
    _add_prob(p)


def _add_value_draws(g: Any) -> None:
    g.add_argument(
        "--value-draws",
        type=int,
        default=None,
        metavar="N",
        help="use N posterior draws for the valuation (thinned evenly; faster, less memory) "
        "(default: all draws)",
    )


def _add_cashflow(p: argparse.ArgumentParser) -> Any:
    """Horizon, period, discounting, margin and cost: the cash-flow settings every valuation
    takes (:class:`clvkit.value.settings.CashflowSettings`); returns the argument group."""
    g = p.add_argument_group("valuation (as customer_value's keywords)")
    g.add_argument(
        "--horizon",
        default="52W",
        help=_default("CLV horizon: a duration (52W, 365D, 12M, 1Y)"),
    )
    g.add_argument(
        "--period",
        default="30D",
        help=_default("cash-flow period for discounting (30D, 1M, ...)"),
    )
    _add_rate(g)
    g.add_argument(
        "--discounting",
        choices=["discrete", "continuous"],
        default="discrete",
        help=_default("discrete: per cash-flow period; continuous: a continuous rate"),
    )
    _add_margin(g, "revenue")
    g.add_argument(
        "--cost-per-period",
        type=float,
        default=0.0,
        help=_default("cost of serving an alive customer per cash-flow period"),
    )
    return g


def _add_covariates(p: argparse.ArgumentParser, fitting: bool = True) -> None:
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


def _add_by(p: argparse.ArgumentParser) -> None:
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


def _add_split(p: argparse.ArgumentParser) -> None:
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
    p.add_argument("--out", default="demo-output", help=_default("output folder"))
    _add_fit(p, seed=False)
    p.add_argument("--seed", type=_seed, default=2026, help=_default("random seed"))
    _add_value(p)
    p.set_defaults(func=_cmd_demo, time_unit="W")

    p = sub.add_parser(
        "fit", help="fit the purchase model (and, with --amount, the spend model) under models/"
    )
    _add_columns(p, amount=None)
    p.add_argument(
        "--observation-end", default=None, help="last day observed (default: the last date)"
    )
    p.add_argument(
        "--out",
        default="models/model",
        help=_default("output prefix, e.g. models/shop"),
    )
    _add_fit(p)
    _add_covariates(p)
    _add_prob(p)
    p.set_defaults(func=_cmd_fit)

    p = sub.add_parser("value", help="per-customer CLV and customer equity from a fitted model")
    p.add_argument("prefix", help="the prefix given to 'clvkit fit --out' (e.g. models/shop)")
    _add_models(p, defaults=False)
    p.add_argument(
        "--out", default=None, help="CSV or Parquet file (.csv, .parquet, .pq) for the table"
    )
    _add_seed(p)
    _add_value(p)
    _add_covariates(p, fitting=False)
    _add_by(p)
    p.set_defaults(func=_cmd_value)

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
    p.add_argument("--customer-id", default="customer_id", help=_default("id column"))
    p.add_argument("--date", default="date", help=_default("purchase date column"))
    p.add_argument("--amount", default="amount", help=_default("purchase amount column"))
    p.add_argument(
        "--time-unit",
        default=None,
        help="time unit; must be the models' (default: the unit the models were fitted in)",
    )
    p.add_argument("--tz", default=None, help="zone of zoned timestamps (default UTC)")
    _add_cleaning(p)
    p.add_argument(
        "--observation-end", default=None, help="the date the base is valued at (default: last)"
    )
    _add_models(p, defaults=False)
    p.add_argument(
        "--out", default=None, help="CSV or Parquet file (.csv, .parquet, .pq) for the table"
    )
    _add_seed(p)
    _add_value(p)
    _add_covariates(p, fitting=False)
    _add_by(p)
    p.set_defaults(func=_cmd_score)

    p = sub.add_parser("backtest", help="predicted vs actual on a holdout window, and a verdict")
    _add_columns(p, amount=None)
    _add_split(p)
    p.add_argument(
        "--out",
        default="backtest-output",
        help=_default("folder for tables and plots"),
    )
    _add_fit(p)
    _add_covariates(p)
    _add_prob(p)
    p.set_defaults(func=_cmd_backtest)

    p = sub.add_parser(
        "compare",
        help="which purchase model to trust: fit several on the calibration window, rank them "
        "by PSIS-LOO and on the holdout",
    )
    _add_columns(p, amount=None)
    _add_split(p)
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
        help=_default(
            "nuts: full posterior; laplace: normal approximation (large bases); LOO needs "
            "posterior draws, so no point fits"
        ),
    )
    p.add_argument("--chains", type=int, default=4, help=_default("NUTS/Laplace chains"))
    p.add_argument("--draws", type=int, default=1000, help=_default("draws per chain"))
    p.add_argument("--tune", type=int, default=1000, help=_default("NUTS tuning steps"))
    _add_seed(p)
    _add_prob(p)
    p.add_argument(
        "--out", default=None, help="CSV or Parquet file (.csv, .parquet, .pq) for the table"
    )
    p.set_defaults(func=_cmd_compare)

    p = sub.add_parser(
        "report",
        help="value the base as of --observation-end, backtest on the calibration window, "
        "verdict; one self-contained HTML report",
    )
    _add_columns(p, amount="amount")
    _add_split(p)
    p.add_argument("--out", default="report.html", help=_default("HTML file (.html, .htm)"))
    _add_fit(p)
    p.add_argument(
        "--compare",
        default=None,
        metavar="NAME,NAME,...",
        help="add the section 'Which model to trust': these registered purchase models fitted "
        "on the calibration window and compared (needs --method nuts or laplace) (default: none)",
    )
    _add_value(p)
    _add_covariates(p)
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser(
        "equity",
        help="customer equity of the firm: today's customers and future cohorts (an "
        "acquisition model of the log's first purchases, or a plan), with sensitivities",
    )
    _add_columns(p, amount="amount")
    g = p.add_argument_group("future customers")
    g.add_argument(
        "--acquisition",
        choices=["model", "none"],
        default="model",
        help=_default(
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
        help=_default("uncertainty of the plan: sd of one multiplier of the whole plan"),
    )
    p.add_argument(
        "--cashflows",
        action="store_true",
        help="also the cash flows per period (a table and a fan chart; one pass of today's "
        "customers per period: slow for large bases)",
    )
    p.add_argument("--out", default="equity-output", help=_default("folder for tables and plots"))
    _add_fit(p)
    _add_value(p)
    p.set_defaults(func=_cmd_equity)

    p = sub.add_parser(
        "history",
        help="customer equity at a series of cut-off dates (refitting the models), with the "
        "bridge from each to the next: new customers, lost customers, revaluation",
    )
    _add_columns(p, amount="amount", cleaning=False)
    p.add_argument(
        "--cutoffs",
        default="13W",
        help=_default("a step after the first purchase day (13W, 1M) or comma-separated dates"),
    )
    p.add_argument(
        "--refit",
        default="every",
        help=_default("fit at every cut-off, or at every K-th (the others use the latest fit)"),
    )
    p.add_argument(
        "--lost-threshold",
        type=float,
        default=0.5,
        help=_default(
            "a customer without purchases between two cut-offs is lost when its P(alive) falls "
            "below this"
        ),
    )
    p.add_argument("--out", default="history-output", help=_default("folder for tables and plots"))
    _add_fit(p)
    g = _add_cashflow(p)
    _add_value_draws(g)
    _add_prob(p)
    p.set_defaults(func=_cmd_history)

    p = sub.add_parser(
        "rolling",
        help="rolling-origin backtest: forecast error and interval coverage from many origins, "
        "by horizon",
    )
    _add_columns(p, amount=None, cleaning=False)
    p.add_argument(
        "--origins",
        default="13W",
        help=_default("a step after the first purchase day (13W, 1M) or comma-separated dates"),
    )
    p.add_argument(
        "--horizons",
        default="13,26,39",
        help=_default("comma-separated horizons, in time units or durations (13, 26W)"),
    )
    p.add_argument(
        "--samples",
        type=int,
        default=None,
        metavar="N",
        help="simulated futures per customer for the predictive intervals (default: the API's)",
    )
    p.add_argument("--out", default="rolling-output", help=_default("folder for tables and plots"))
    _add_fit(p)
    _add_prob(p)
    p.set_defaults(func=_cmd_rolling)

    p = sub.add_parser("summarize", help="the RFM (or calibration/holdout) table of a log")
    _add_columns(p, amount=None)
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
        help=_default(
            "rfm: recency, frequency, T in time units (clvkit.rfm_summary); opportunities: "
            "purchases on a grid of --time-unit occasions for BG/BB (clvkit.opportunity_summary)"
        ),
    )
    p.add_argument("--out", required=True, help="CSV or Parquet file (.csv, .parquet, .pq)")
    p.set_defaults(func=_cmd_summarize)

    p = sub.add_parser(
        "retention",
        help="predicted vs actual retention of subscribers: fit a contractual model (sBG) on "
        "the contracts to --calibration-end, compare each later period per cohort",
    )
    p.add_argument("contracts", help="CSV or Parquet table of contracts (a glob is allowed)")
    p.add_argument("--customer-id", default="customer_id", help=_default("customer id column"))
    p.add_argument("--start", default="start", help=_default("contract start column"))
    p.add_argument("--end", default="end", help=_default("contract end column (empty: active)"))
    p.add_argument("--tz", default="UTC", help=_default("zone of zoned timestamps"))
    p.add_argument(
        "--period", default="M", help=_default("billing period: M, Q, Y, 2M, or 4W, 30D")
    )
    p.add_argument("--calibration-end", required=True, help="last day of calibration")
    p.add_argument(
        "--observation-end", default=None, help="last day of the holdout (default: last date)"
    )
    p.add_argument(
        "--model",
        default="sbg",
        metavar="NAME",
        help=_default("contractual purchase model registered in clvkit.models.registry"),
    )
    p.add_argument(
        "--method",
        choices=["nuts", "laplace", "map", "mle"],
        default="nuts",
        help=_default("nuts: full posterior; laplace: normal approximation; map/mle: point"),
    )
    p.add_argument("--chains", type=int, default=4, help=_default("NUTS/Laplace chains"))
    p.add_argument("--draws", type=int, default=1000, help=_default("draws per chain"))
    p.add_argument("--tune", type=int, default=1000, help=_default("NUTS tuning steps"))
    _add_seed(p)
    p.add_argument(
        "--samples", type=int, default=1000, help=_default("predictive samples (simulated futures)")
    )
    _add_prob(p)
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
        help=_default("valuation horizon: billing periods or a duration (10Y, 120M)"),
    )
    _add_rate(g)
    _add_margin(g, "the fee")
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
    p.set_defaults(func=_cmd_retention)

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
    from clvkit.utils.io import Terminated, sigterm_as_exception, terminated

    # SIGTERM becomes Terminated (a BaseException) while main runs, so `finally` blocks remove
    # temporary files and staging folders; the previous handler is restored on return.
    with sigterm_as_exception():
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                check_args(args)
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
        except Exception:
            if terminated():  # a library (DuckDB: "Query interrupted") caught our Terminated
                print("clvkit: terminated (SIGTERM); temporary files removed", file=sys.stderr)
                return EXIT_SIGTERM
            raise


def _silence_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (tests)
        pass


if __name__ == "__main__":
    raise SystemExit(main())
