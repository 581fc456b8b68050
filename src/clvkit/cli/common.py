"""Pipeline pieces shared by the commands: the API keywords of the options, the models named
by --model/--spend-model and their fits, covariates, valuation, tables written atomically and
the full report."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from clvkit.cli.console import Console
from clvkit.errors import ClvkitError


def log_columns(args: argparse.Namespace) -> dict[str, Any]:
    """The column names and ``tz`` of PURCHASES, as the data layer's keyword arguments."""
    return {
        "customer_id": args.customer_id,
        "date": args.date,
        "amount": args.amount,
        "tz": args.tz,
    }


def cleaning_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The cleaning options given on the command line (unset ones are left to the API)."""
    names = ("returns", "zero_amounts", "duplicates", "currency", "fx_rate", "reporting_currency")
    return {k: getattr(args, k) for k in names if getattr(args, k, None) is not None}


def summary_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The time unit, log columns and cleaning options as the data layer's keywords."""
    return {"time_unit": args.time_unit, **log_columns(args), **cleaning_kwargs(args)}


def fit_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The fit options (--method, --seed and, per method, chains/draws/tune) as fit keywords."""
    kw: dict[str, Any] = {"method": args.method, "random_seed": args.seed}
    if args.method == "nuts":
        kw |= {"chains": args.chains, "draws": args.draws, "tune": args.tune}
        kw["progressbar"] = not args.quiet
    elif args.method == "laplace":
        kw |= {"chains": args.chains, "draws": args.draws}
    return kw


def model_classes(args: argparse.Namespace) -> tuple[type, type]:
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


def fit_one(
    name: str, kind: str, rfm: Any, args: argparse.Namespace, con: Console, role: str
) -> Any:
    """Fit one registered model, with a heartbeat on stderr while it runs."""
    from clvkit.evaluation.run import fit_model
    from clvkit.utils.progress import heartbeat

    label = f"fitting {name} ({args.method}) on {len(rfm):,} customers{role}"
    con.step(label)
    cov = getattr(args, "cov", None)
    with heartbeat(label, not args.quiet, start=con.t0):
        if cov is not None:  # the covariates' wrapper on the links this model has
            return cov.fit(name, kind, rfm, fit_kwargs(args))
        return fit_model(name, kind, rfm, fit_kwargs(args), args.data)


def fit_models(rfm: Any, args: argparse.Namespace, con: Console, role: str = "") -> tuple:
    """The spend model first (its input checks run before any purchase sampling), then the
    purchase model; the spend model is ``None`` without an amount column."""
    model_classes(args)
    cov = getattr(args, "cov", None)
    if cov is not None:
        cov.check_links(args.model, args.spend_model if args.amount is not None else None)
    spend = None
    if args.amount is not None:
        spend = fit_one(args.spend_model, "spend", rfm, args, con, role)
    return fit_one(args.model, "purchase", rfm, args, con, role), spend


def join_covariates(rfm: Any, args: argparse.Namespace) -> Any:
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


def parse_tiers(text: str | None) -> dict[str, float] | None:
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


def value_kwargs(args: argparse.Namespace) -> dict[str, Any]:
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
    tiers = parse_tiers(args.tiers)
    if tiers is not None:
        kw["tiers"] = tiers
    if args.value_draws is not None:
        kw["draws"] = args.value_draws  # thinning of the posterior (customer_value's draws=)
    return kw


def value_customers(bg: Any, gg: Any, rfm: Any, args: argparse.Namespace, con: Console) -> Any:
    """Value the customers of ``rfm`` with the fitted models (:func:`clvkit.customer_value`);
    a covariate column the models read but the table lacks is a ClvkitError."""
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
        **value_kwargs(args),
    )  # fmt: skip


def print_by_group(value: Any, args: argparse.Namespace, con: Console) -> None:
    """With --by: print the value by group and write it to --by-out."""
    if getattr(args, "by", None) is None:
        return
    table = value.group_table(args.prob)
    if args.by_out:
        write_frame(table, Path(args.by_out))
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


def write_frame(frame: Any, path: Path) -> Path:
    """Write a table atomically: Parquet for .parquet/.pq, CSV for .csv (checked up front)."""
    from clvkit.utils.io import atomic_path

    with atomic_path(path) as tmp:
        if path.suffix.lower() in {".parquet", ".pq"}:
            frame.to_parquet(tmp)
        else:
            frame.to_csv(tmp)
    return path


def readable(frame: Any, by_row: bool = False) -> str:
    """A table as the report writes its cells (counts as integers, shares as percentages)."""
    from clvkit.report import formatted

    return formatted(frame, by_row, escape=False).to_string()


def full_report(source: Any, args: argparse.Namespace, con: Console, title: str) -> Any:
    """The valuation as of --observation-end, the backtest (its own fit on the calibration
    window) and the report: :func:`clvkit.report.report_from_log`."""
    from clvkit.report import report_from_log

    model_classes(args)
    return report_from_log(
        source,
        calibration_end=args.calibration_end,
        observation_end=args.observation_end,
        time_unit=args.time_unit,
        **log_columns(args),
        model=args.model,
        spend_model=args.spend_model,
        compare=compare_names(getattr(args, "compare", None), "--compare"),
        **_covariate_kwargs(args),
        fit_kwargs=fit_kwargs(args),
        value_kwargs=value_kwargs(args),
        cleaning=cleaning_kwargs(args),
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


def compare_names(text: str | None, flag: str) -> list[str] | None:
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
