"""Benchmark the sBG (subscriptions): pooled NUTS over cohorts, a peer, and a large base.

Three parts, each in a fresh process (interpreter start + imports + data + compile + work):

1. ``ShiftedBetaGeoPooled`` NUTS (4 chains x (1000 tune + 1000 draws)) on 24 monthly cohorts
   of 5,000 simulated subscribers (cohort c observed for 24 - c months); target < 3 s.
2. pymc-marketing's ``ShiftedBetaGeoModel`` (its default priors: per-cohort ``phi``,
   ``kappa``; NUTS with PyMC's sampler) on the same cohorts but the youngest (it requires
   ``T >= 2`` periods), stopped after ``--timeout``.
3. A contract table of ``--subscribers`` (default 1,000,000) monthly subscribers: contract
   table -> ``contract_summary`` -> ``survival_table``, and equity with 1,000 posterior draws
   (``customer_value``, expected), seconds and peak resident memory.

Usage: ``python benchmarks/bench_sbg.py [--timeout 600] [--subscribers 1000000]
[--skip-peer]``; writes ``benchmarks/results/sbg.md``. Run it alone on a shared machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
from pathlib import Path

from _fresh import fresh_run
from _machine import machine, versions

HERE = Path(__file__).resolve().parent
RESULT = HERE / "results" / "sbg.md"

_COHORTS = """
import numpy as np, pandas as pd
from clvkit import ShiftedBetaGeo
spec = ShiftedBetaGeo.spec
rng = np.random.default_rng(16)
parts = []
for c in range(24):
    m = 1 / (1 + np.exp(-(np.log(0.1 / 0.9) + 0.3 * rng.standard_normal())))
    k = np.exp(np.log(2.0) + 0.3 * rng.standard_normal())
    w = float(24 - c)
    p = {"alpha": np.array([[m * k]]), "beta": np.array([[(1 - m) * k]])}
    fut = spec.simulate(p, spec.new_customer_columns(5000), w, rng)
    n = np.zeros(5000, dtype=np.int64)
    for b in fut.batches:
        np.add.at(n, b.customer, b.count)
    death = np.full(5000, np.inf)
    death[fut.alive_customer] = fut.death
    ch = np.isfinite(death)
    parts.append(pd.DataFrame({"cohort": f"c{c:02d}", "renewals": n, "churned": ch,
                               "age": np.where(ch, n + 1.0, w), "T": w}))
table = pd.concat(parts, ignore_index=True)
table.index.name = "customer_id"
table.attrs["time_unit"] = "M"
"""

_POOLED = (
    "import time; t0 = time.perf_counter()\n"
    + _COHORTS
    + """
from clvkit import ShiftedBetaGeoPooled
t1 = time.perf_counter()
m = ShiftedBetaGeoPooled().fit(table, random_seed=1)
t2 = time.perf_counter()
out = {"total": t2 - t0, "fit": t2 - t1, **m.diagnostics()}
"""
)

_PEER = (
    "import time; t0 = time.perf_counter()\n"
    + _COHORTS
    + """
from pymc_marketing.clv import ShiftedBetaGeoModel
table = table[table["T"] >= 2]  # it requires T >= 2: the youngest (one-month) cohort is left out
data = pd.DataFrame({"customer_id": np.arange(len(table)), "cohort": table["cohort"].to_numpy(),
                     "recency": np.where(table["churned"], table["renewals"] + 1, table["T"]),
                     "T": table["T"].to_numpy()})
t1 = time.perf_counter()
m = ShiftedBetaGeoModel(data=data)
m.fit(random_seed=1, progressbar=False)
t2 = time.perf_counter()
out = {"total": t2 - t0, "fit": t2 - t1}
"""
)

_SCALE = """
import resource, time
import numpy as np, pandas as pd
import clvkit
from clvkit import ShiftedBetaGeo, SubscriptionFee
n = {n}
rng = np.random.default_rng(7)
start = np.datetime64("2021-01-01") + rng.integers(0, 1095, n).astype("timedelta64[D]")
life = np.minimum(rng.geometric(rng.beta(0.8, 6.0, n)), 600)
months = start.astype("datetime64[M]") + life.astype("timedelta64[M]")
end = months.astype("datetime64[D]") + (start - start.astype("datetime64[M]").astype(
    "datetime64[D]"))
contracts = pd.DataFrame({{"customer_id": np.arange(n), "start": start,
                          "end": np.where(end <= np.datetime64("2023-12-31"), end,
                                          np.datetime64("NaT")),
                          "fee": rng.choice([9.0, 19.0, 29.0], n)}})
t0 = time.perf_counter()
summary = clvkit.contract_summary(contracts, "M", "2023-12-31", fee_col="fee")
table = clvkit.survival_table(summary)
t1 = time.perf_counter()
draws = np.random.default_rng(1)
model = ShiftedBetaGeo.from_params(alpha=0.8 * np.exp(0.02 * draws.standard_normal(1000)),
                                   beta=6.0 * np.exp(0.02 * draws.standard_normal(1000)),
                                   time_unit="M")
fee = SubscriptionFee.from_params(list_fee=19.0)
v = clvkit.customer_value(model, fee, summary, horizon="5Y", period="M",
                          annual_discount_rate=0.1)
t2 = time.perf_counter()
out = {{"summary_and_table": t1 - t0, "equity": t2 - t1,
        "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "equity_mean": float(v.equity.mean()), "cohorts": len(table)}}
"""


def run(code: str, timeout: float) -> dict:
    """Run ``code`` (which sets ``out``) in a fresh interpreter; its ``out`` or the failure."""
    return fresh_run(code + "\nimport json; print('@@' + json.dumps(out))\n", timeout)


def _cell(res: dict) -> str:
    return ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in res.items())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3, help="fresh processes for clvkit's fit")
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--subscribers", type=int, default=1_000_000)
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--skip-scale", action="store_true")
    args = ap.parse_args()
    runs = [run(_POOLED, args.timeout) for _ in range(args.runs)]
    ok = [r for r in runs if "error" not in r]
    rows = []
    if ok:
        med = {k: statistics.median(r[k] for r in ok) for k in ("total", "fit", "wall")}
        all_runs = ", ".join(f"{r['total']:.2f}" for r in ok)
        rows.append(
            f"| clvkit `ShiftedBetaGeoPooled` NUTS | **{med['total']:.2f} s** (fit "
            f"{med['fit']:.2f} s; median of {len(ok)}: "
            f"{all_runs}; wall with interpreter start, diagnostics and exit "
            f"{med['wall']:.2f} s) | max R-hat "
            f"{ok[0]['max_rhat']:.3f}, min bulk ESS {ok[0]['min_ess_bulk']:.0f}, divergences "
            f"{ok[0]['divergences']} |"
        )
    else:
        rows.append(f"| clvkit `ShiftedBetaGeoPooled` NUTS | {runs[0]['error']} | |")
    if not args.skip_peer:
        res = run(_PEER, args.timeout)
        cell = (
            res["error"] if "error" in res else f"**{res['total']:.2f} s** (fit {res['fit']:.2f} s)"
        )
        rows.append(f"| pymc-marketing `ShiftedBetaGeoModel` NUTS (once, alone) | {cell} | |")
    if not args.skip_scale:
        res = run(_SCALE.format(n=args.subscribers), args.timeout)
        cell = (
            res["error"]
            if "error" in res
            else (
                f"summary + survival table {res['summary_and_table']:.1f} s; equity "
                f"{res['equity']:.1f} s; peak {res['peak_gb']:.2f} GB"
            )
        )
        rows.append(f"| {args.subscribers:,} subscribers, 1,000 draws | {cell} | {_cell(res)} |")
    load1, load5, _ = os.getloadavg()
    lines = [
        "# sBG: pooled cohorts, the peer, and a million subscribers",
        "",
        f"- Machine: {machine()}",
        "- Versions: " + versions(["clvkit", "numpy", "numba", "nutpie", "pymc", "pymc-marketing"]),
        "",
        "24 monthly cohorts of 5,000 simulated subscribers (cohort c observed for 24 - c months); "
        "NUTS 4 chains x (1000 tune + 1000 draws); wall = interpreter start + imports + data + "
        "compile + fit, fresh process per run. pymc-marketing gets the cohorts it accepts "
        "(T >= 2: all but the youngest). Target for clvkit: under 3 s.",
        "",
        "| case | time | details |",
        "|---|---|---|",
        *rows,
        "",
        f"Load average at the end: {load1:.1f} (1 min) / {load5:.1f} (5 min) (2 cores).",
    ]
    RESULT.parent.mkdir(exist_ok=True)
    tmp = RESULT.with_suffix(".md.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(RESULT)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
