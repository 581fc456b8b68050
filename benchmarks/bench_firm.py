"""Benchmark the firm's customer equity (issue 18): the equity history at 12 monthly cut-offs
of a 100k-customer log, and a full valuation (existing base + 5 years of future cohorts) of a
million customers.

No open-source peer values a firm's customer equity over time or with future cohorts, so these
are clvkit's own timings (the target: the history under 2 minutes with NUTS fits). Each case
runs in a fresh process (interpreter start + imports + data + compile + work), once (the cases
take minutes: medians of several runs would not fit a CI budget; the load average is
recorded instead).

1. ``--customers`` (default 100,000) BG/NBD + Gamma-Gamma customers simulated by
   :func:`clvkit.datasets.simulate` (acquired over 78 weeks, observed 104), the log's last 12
   months as cut-offs (every 30.44 days): :func:`clvkit.equity_history` with NUTS fits at every
   cut-off, NUTS refitting every 3rd cut-off, and Laplace at every cut-off; 52-week CLV at 10%.
2. ``--big`` (default 1,000,000) customers: the table simulated directly from the BG/NBD and
   Gamma-Gamma processes, both models fitted (Laplace, ``--draws`` draws), then
   :func:`clvkit.firm_equity` with an acquisition plan of ``--per-month`` new customers a
   month for 5 years (60 monthly cohorts, CV 20%), 5-year horizon, monthly cash flows:
   seconds and peak resident memory (``ru_maxrss``).

Usage: ``python benchmarks/bench_firm.py [--customers 100000] [--big 1000000] [--draws 1000]
[--skip-history] [--skip-big]``; writes ``benchmarks/results/firm.md``. Run it alone.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from _fresh import fresh_run
from _machine import machine, versions

HERE = Path(__file__).resolve().parent
RESULT = HERE / "results" / "firm.md"
TARGET_HISTORY = 120.0

_HISTORY = """
import json, resource, time; t0 = time.perf_counter()
import numpy as np, pandas as pd
import clvkit
sim = clvkit.datasets.simulate(@N@, r=0.25, alpha=4.4, a=0.8, b=2.4, p=6.25, q=3.74, v=15.44,
                               acquisition_periods=78, observation_periods=104,
                               time_unit="W", random_seed=18)
log = sim.transactions
end = pd.Timestamp(sim.observation_end)
cutoffs = [end - pd.Timedelta(days=round(30.44 * k)) for k in range(11, -1, -1)]
t1 = time.perf_counter()
h = clvkit.equity_history(log, cutoffs=cutoffs, horizon="52W", annual_discount_rate=0.1,
                          fit_kwargs=@FIT@, refit=@REFIT@, draws=@VDRAWS@, random_seed=1)
t2 = time.perf_counter()
t = h.table()
b = h.bridge()
print("@@" + json.dumps({
    "total": t2 - t0, "history": t2 - t1, "customers": [int(c) for c in t["customers"]],
    "equity": [float(e) for e in t["equity"]], "lower": [float(e) for e in t["equity_lower"]],
    "upper": [float(e) for e in t["equity_upper"]], "refits": int(t["refit"].sum()),
    "new": float(b["new"].sum()), "lost": float(b["lost"].sum()),
    "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9}))
"""

_BIG = """
import json, resource, time; t0 = time.perf_counter()
import numpy as np, pandas as pd
import clvkit
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
rng = np.random.default_rng(5)
n = @N@
lam = rng.gamma(0.25, 1 / 4.4, n)
p = rng.beta(0.8, 2.4, n)
T = rng.integers(1, 79 * 7, n) / 7.0
n_T = rng.poisson(lam * T)
x = np.minimum(rng.geometric(p) - 1, n_T)
tx = np.where(x > 0, T * rng.beta(np.maximum(x, 1), np.maximum(n_T - x, 0) + 1), 0.0)
tx = np.minimum(np.ceil(tx * 7) / 7, T)
nu = rng.gamma(3.7, 1 / 15.4, n)
m = np.where(x > 0, rng.gamma(6.25 * np.maximum(x, 1)) / (nu * np.maximum(x, 1)), 0.0)
rfm = pd.DataFrame({"frequency": x, "recency": tx, "T": T, "monetary_value": m},
                   index=pd.Index(np.arange(n), name="customer_id"))
rfm.attrs["time_unit"] = "W"
t1 = time.perf_counter()
bg = clvkit.BetaGeo().fit(rfm, method="laplace", draws=@DRAWS@, chains=1, random_seed=1)
gg = clvkit.GammaGamma().fit(rfm, method="laplace", draws=@DRAWS@, chains=1, random_seed=2)
t2 = time.perf_counter()
plan = clvkit.AcquisitionPlan([@PER_MONTH@] * 60, cv=0.2, random_seed=3)
f = clvkit.firm_equity(bg, gg, rfm, plan, horizon="5Y", period="1M", annual_discount_rate=0.1,
                       acquisition_cost=40.0, random_seed=4)
t3 = time.perf_counter()
s = f.summary()
sens = f.sensitivities()
t4 = time.perf_counter()
cash = f.cashflows()
t5 = time.perf_counter()
print("@@" + json.dumps({"simulate": t1 - t0, "fit": t2 - t1, "value": t3 - t2,
                         "sensitivities": t4 - t3, "cashflows": t5 - t4, "periods": len(cash),
                         "peak_gb": peak(), "summary": s.to_dict()}, default=float))
"""


def _code(template: str, **subs: object) -> str:
    out = template
    for key, val in subs.items():
        out = out.replace(f"@{key.upper()}@", str(val))
    return out


def part_history(args: argparse.Namespace) -> list[str]:
    nuts = {"method": "nuts", "chains": 2, "draws": 500, "tune": 500, "progressbar": False}
    laplace = {"method": "laplace", "chains": 1, "draws": 1000}
    cases = [
        ("NUTS (2 x 500 + 500 tune) at every cut-off", nuts, '"every"', 1000),
        ("NUTS (2 x 500 + 500 tune), refit every 3rd cut-off", nuts, 3, 1000),
        ("Laplace (1,000 draws) at every cut-off", laplace, '"every"', 1000),
    ]
    load = os.getloadavg()[0]
    rows, first = [], None
    for name, fit, refit, vdraws in cases:
        res = fresh_run(_code(_HISTORY, n=args.customers, fit=repr(fit), refit=refit,
                              vdraws=vdraws), args.timeout)  # fmt: skip
        print(name, {k: v for k, v in res.items() if k not in ("equity", "lower", "upper")},
              flush=True)  # fmt: skip
        if "error" in res:
            rows.append(f"| {name} | {res['error']} | | | |")
            continue
        first = first or res
        met = "yes" if res["total"] < TARGET_HISTORY else "no"
        rows.append(
            f"| {name} | **{res['total']:.1f} s** ({res['history']:.1f} s history) | "
            f"{res['refits']} | {res['peak_gb']:.2f} GB | {met} |"
        )
    lines = [
        f"## Equity history: 12 monthly cut-offs, {args.customers:,} customers",
        "",
        "`clvkit.datasets.simulate` (BG/NBD + Gamma-Gamma, acquired over 78 weeks, observed "
        "104, so the first cut-offs gain new customers); cut-offs every 30.44 days over the last 11 months; at each: the customer table, "
        "the fits (or the latest fit), `customer_value` over 52 weeks at 10% a year with 1,000 "
        f"draws, and the bridge. Fresh process each; total = interpreter start to the "
        f"history. Load average (1 min) at the start: {load:.1f}.",
        "",
        f"| fits | total | refits | peak memory | under {TARGET_HISTORY:.0f} s |",
        "|---|---:|---:|---:|---|",
        *rows,
    ]
    if first is not None:
        lines += ["", "Equity per cut-off (first case; mean [90% interval]):", "",
                  "| cut-off | customers | equity |", "|---:|---:|---|"]  # fmt: skip
        for i, (c, e, lo, hi) in enumerate(
            zip(first["customers"], first["equity"], first["lower"], first["upper"], strict=True)
        ):
            lines.append(f"| {i + 1} | {c:,} | {e:,.0f} [{lo:,.0f}, {hi:,.0f}] |")
    return lines


def part_big(args: argparse.Namespace) -> list[str]:
    load = os.getloadavg()[0]
    res = fresh_run(_code(_BIG, n=args.big, draws=args.draws, per_month=args.per_month),
                    args.timeout)  # fmt: skip
    print("big:", res, flush=True)
    head = [
        "",
        f"## Firm equity of {args.big:,} customers: existing + 5 years of future cohorts",
        "",
        f"BG/NBD + Gamma-Gamma histories simulated directly (CDNOW-like parameters, ages up to "
        f"78 weeks); both models fitted by Laplace ({args.draws:,} draws); "
        f"`firm_equity` with `AcquisitionPlan([{args.per_month:,}] * 60, cv=0.2)` (monthly "
        "cohorts for 5 years), horizon 5 years, monthly cash flows, 10% a year, CAC 40. "
        f"Load average (1 min) at the start: {load:.1f}.",
        "",
    ]
    if "error" in res:
        return [*head, f"Failed: {res['error']} (after {res.get('wall', 0):.0f} s)."]
    s = res["summary"]
    lines = [
        *head,
        "| step | seconds |",
        "|---|---:|",
        f"| simulate {args.big:,} customers | {res['simulate']:.1f} |",
        f"| fit BG/NBD + Gamma-Gamma (Laplace) | {res['fit']:.1f} |",
        f"| firm_equity (existing + 60 cohorts, {args.draws:,} draws) | **{res['value']:.1f}** |",
        f"| sensitivities (tornado: 6 levers, same draws) | {res['sensitivities']:.1f} |",
        f"| cash-flow table ({res['periods']} periods, `cashflows()`) | {res['cashflows']:.1f} |",
        f"| wall (fresh process) | {res['wall']:.1f} |",
        "",
        f"Peak resident memory: {res['peak_gb']:.2f} GB.",
        "",
        "| part | " + " | ".join(str(c) for c in next(iter(s.values()))) + " |",
        "|---|" + "---:|" * len(next(iter(s.values()))),
    ]
    for col, vals in s.items():
        cells = (f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}" for v in vals.values())
        lines.append(f"| {col} | " + " | ".join(cells) + " |")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--big", type=int, default=1_000_000)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--per-month", type=int, default=20_000)
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--skip-history", action="store_true")
    ap.add_argument("--skip-big", action="store_true")
    args = ap.parse_args()
    sections: list[str] = []
    if not args.skip_history:
        sections += part_history(args)
    if not args.skip_big:
        sections += part_big(args)
    load1, load5, _ = os.getloadavg()
    text = [
        "# The firm's customer equity: history over cut-offs, and future cohorts",
        "",
        f"- Machine: {machine()}",
        "- Versions: " + versions(["clvkit", "numpy", "numba", "nutpie", "pymc"]),
        "",
        *sections,
        "",
        f"Load average at the end: {load1:.1f} (1 min) / {load5:.1f} (5 min) (2 cores: a load "
        "above 2 inflates the timings).",
        "",
    ]
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULT.with_suffix(".md.tmp")
    tmp.write_text("\n".join(text))
    tmp.replace(RESULT)
    print("\n".join(text))
    print(json.dumps({"wrote": str(RESULT)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
