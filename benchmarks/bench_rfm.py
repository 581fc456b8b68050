"""Benchmark ``clvkit.rfm_summary`` on a simulated log of a million customers.

Each timing runs in a fresh subprocess that reads the log from Parquet, calls the summary once
and reports the wall time and its peak resident memory (``ru_maxrss``). The fragment written to
``benchmarks/results/rfm.md`` gives medians over runs. lifetimes'
``summary_data_from_transaction_data`` is timed on a smaller log for a ratio.

Usage: ``python benchmarks/bench_rfm.py [--customers 1000000] [--runs 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from _machine import machine, versions

HERE = Path(__file__).resolve().parent
TARGET_SECONDS, TARGET_GB = 10.0, 3.0
# ~11 purchases per customer over 78 weeks (BG/NBD + Gamma-Gamma)
SIM = dict(r=2.0, alpha=8.0, a=1.0, b=12.0, p=6.0, q=4.0, v=15.0)


def _maxrss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # KiB on Linux


def child(task: str, path: str) -> None:
    """Runs in the subprocess: read the log, summarize it once, print JSON."""
    import pandas as pd

    log = pd.read_parquet(path)
    if task == "clvkit":
        from clvkit.data.summary import rfm_summary

        def run():
            return rfm_summary(log, amount="amount", time_unit="D")
    else:
        from lifetimes.utils import summary_data_from_transaction_data

        def run():
            return summary_data_from_transaction_data(
                log,
                "customer_id",
                "date",
                monetary_value_col="amount",
                observation_period_end=log["date"].max(),
                freq="D",
            )

    before = _maxrss_gb()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        out = run()
        seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rss_log_gb": before,
                "rss_peak_gb": _maxrss_gb(),
                "rows": len(log),
                "customers": len(out),
                "repeat_days": int(out["frequency"].sum()),
            }
        )
    )


def _measure(task: str, path: Path, runs: int) -> dict[str, float]:
    results = []
    for _ in range(runs):
        proc = subprocess.run(
            [sys.executable, __file__, "--child", task, str(path)],
            check=True,
            capture_output=True,
            text=True,
        )
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    times = [r["seconds"] for r in results]
    out = dict(results[0])
    out.update(
        seconds=statistics.median(times),
        min=min(times),
        max=max(times),
        rss_peak_gb=max(r["rss_peak_gb"] for r in results),
        rss_log_gb=max(r["rss_log_gb"] for r in results),
    )
    if len({r["repeat_days"] for r in results}) != 1:
        raise RuntimeError(f"{task}: runs disagree on the result")
    return out


def make_logs(n: int, seed: int, folder: str) -> None:
    """Runs in a subprocess, so the driver stays small: a child's ru_maxrss starts from its
    parent's resident size at fork."""
    from clvkit.datasets import simulate

    log = simulate(n, **SIM, random_seed=seed).transactions
    log.to_parquet(Path(folder) / f"log_{n}_by_customer.parquet", index=False)
    log = log.sort_values("date", kind="stable")
    log.to_parquet(Path(folder) / f"log_{n}_by_date.parquet", index=False)


def _simulate(n: int, seed: int, folder: Path) -> tuple[Path, Path]:
    subprocess.run([sys.executable, __file__, "--make", str(n), str(seed), str(folder)], check=True)
    return folder / f"log_{n}_by_customer.parquet", folder / f"log_{n}_by_date.parquet"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--peer-customers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "rfm.md")
    parser.add_argument("--child", nargs=2, metavar=("TASK", "PATH"), help=argparse.SUPPRESS)
    parser.add_argument("--make", nargs=3, metavar=("N", "SEED", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make:
        make_logs(int(args.make[0]), int(args.make[1]), args.make[2])
        return 0
    if args.child:
        child(*args.child)
        return 0

    load_start = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        big_customer, big_date = _simulate(args.customers, 1, folder)
        _, small_date = _simulate(args.peer_customers, 2, folder)
        for label, task, path in [
            ("clvkit, sorted by customer", "clvkit", big_customer),
            ("clvkit, sorted by date", "clvkit", big_date),
            ("clvkit, sorted by date", "clvkit", small_date),
            ("lifetimes, sorted by date", "lifetimes", small_date),
        ]:
            print(f"timing {label} on {path.name}", file=sys.stderr, flush=True)
            try:
                res = _measure(task, path, args.runs)
            except subprocess.CalledProcessError as exc:
                res = {"error": (exc.stderr or "").strip().splitlines()[-1:]}
            rows.append((label, res))

    big = [r for label, r in rows[:2]]
    ok_time = all(r.get("seconds", 1e9) < TARGET_SECONDS for r in big)
    ok_mem = all(r.get("rss_peak_gb", 1e9) < TARGET_GB for r in big)
    lines = [
        "## RFM summary (`clvkit.rfm_summary`)\n",
        f"Simulated BG/NBD + Gamma-Gamma logs (`clvkit.datasets.simulate`, {SIM}, 78 weeks); "
        "`rfm_summary(log, amount='amount', time_unit='D')` against lifetimes' "
        "`summary_data_from_transaction_data(..., freq='D', monetary_value_col='amount')`. "
        f"Each run is a fresh subprocess; median (min-max) of {args.runs} runs. Peak memory is "
        "the child's `ru_maxrss`, which includes the log itself (memory after reading the log "
        "in brackets).\n",
        f"- Machine: {machine()}",
        f"- Versions: {versions(['clvkit', 'numpy', 'pandas', 'pyarrow', 'lifetimes'])}",
        f"- Load average (1 min) at start / end: {load_start:.1f} / {os.getloadavg()[0]:.1f} "
        "(shared machine: a load above 2 on 2 cores inflates the timings)\n",
        "| case | rows | customers | seconds | peak RSS GB (log only) |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, r in rows:
        if "error" in r:
            lines.append(f"| {label} | - | - | failed: {' '.join(r['error'])} | - |")
            continue
        lines.append(
            f"| {label} | {r['rows']:,} | {r['customers']:,} | "
            f"{r['seconds']:.2f} ({r['min']:.2f}-{r['max']:.2f}) | "
            f"{r['rss_peak_gb']:.2f} ({r['rss_log_gb']:.2f}) |"
        )
    small, peer = rows[2][1], rows[3][1]
    lines.append("")
    if "error" in peer:
        lines.append("- lifetimes failed under this pandas version (see table).")
    else:
        if peer["repeat_days"] != small["repeat_days"]:
            lines.append("- WARNING: clvkit and lifetimes disagree on the repeat purchase days.")
        lines.append(
            f"- lifetimes / clvkit time ratio on {peer['rows']:,} rows: "
            f"{peer['seconds'] / small['seconds']:.1f}x (same total repeat purchase days: "
            f"{peer['repeat_days'] == small['repeat_days']})."
        )
    lines.append(
        f"- Targets for {args.customers:,} customers: under {TARGET_SECONDS:g} s "
        f"({'met' if ok_time else 'NOT met'}) and under {TARGET_GB:g} GB peak "
        f"({'met' if ok_mem else 'NOT met'})."
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = args.output.with_suffix(".md.tmp")
    tmp_out.write_text("\n".join(lines) + "\n")
    os.replace(tmp_out, args.output)
    print(args.output.read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
