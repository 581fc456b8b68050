"""Benchmark ``clvkit.rfm_summary`` on a Parquet log: path route (DuckDB) vs pandas + in memory
vs Dask's local (threaded) scheduler through ``clvkit.distributed.rfm_summary``.

A log of a million simulated customers (~10 M rows) is written to Parquet once. Each timing
runs in a fresh subprocess and reports wall time and peak resident memory (``ru_maxrss``):

- ``path``: ``rfm_summary("log.parquet", ...)``, summarized out of core by DuckDB;
- ``pandas``: ``pd.read_parquet`` then ``rfm_summary(frame, ...)`` (the time includes the read,
  so both routes go from the file to the RFM table).

Each child also prints a hash of its result, so the run checks the two routes agree exactly.
The fragment written to ``benchmarks/results/outofcore.md`` gives medians over runs.

Usage: ``python benchmarks/bench_outofcore.py [--customers 1000000] [--runs 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
# ~11 purchases per customer over 78 weeks (BG/NBD + Gamma-Gamma), as in bench_rfm.py
SIM = dict(r=2.0, alpha=8.0, a=1.0, b=12.0, p=6.0, q=4.0, v=15.0)


def _maxrss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # KiB on Linux


def _rss_gb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e9


def child(task: str, path: str) -> None:
    """Runs in the subprocess: summarize the log once by one route, print JSON.

    ``ru_maxrss`` is a high-water mark that the imports may already have set, so a thread
    also samples the current RSS every 2 ms during the call; ``rss_call_gb`` is its peak
    above the RSS just before the call.
    """
    import threading

    import pandas as pd

    from clvkit.data.summary import rfm_summary

    base = _maxrss_gb()
    before = _rss_gb()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], _rss_gb())
            time.sleep(0.002)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        if task == "path":
            out = rfm_summary(path, amount="amount", time_unit="D")
        elif task == "dask":  # Dask's local threaded scheduler, no cluster
            import dask.dataframe as dd

            from clvkit import distributed

            log = dd.read_parquet(path)
            out = distributed.rfm_summary(log, amount="amount", time_unit="D").compute()
            out = out.sort_index()
        else:
            out = rfm_summary(pd.read_parquet(path), amount="amount", time_unit="D")
        seconds = time.perf_counter() - t0
    done.set()
    sampler.join()
    digest = int(pd.util.hash_pandas_object(out).sum() % (2**61))
    print(
        json.dumps(
            {
                "seconds": seconds,
                "rss_start_gb": base,
                "rss_peak_gb": _maxrss_gb(),
                "rss_before_gb": before,
                "rss_call_gb": max(peak[0], _rss_gb()) - before,
                "customers": len(out),
                "repeat_days": int(out["frequency"].sum()),
                "hash": digest,
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
    hashes = {r["hash"] for r in results}
    assert len(hashes) == 1, f"{task}: results differ between runs"
    return {
        "seconds": statistics.median(r["seconds"] for r in results),
        "rss_start_gb": statistics.median(r["rss_start_gb"] for r in results),
        "rss_peak_gb": statistics.median(r["rss_peak_gb"] for r in results),
        "rss_before_gb": statistics.median(r["rss_before_gb"] for r in results),
        "rss_call_gb": statistics.median(r["rss_call_gb"] for r in results),
        "customers": results[0]["customers"],
        "repeat_days": results[0]["repeat_days"],
        "hash": results[0]["hash"],
        "all_seconds": [round(r["seconds"], 2) for r in results],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs=2, metavar=("TASK", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    import clvkit

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "log.parquet"
        t0 = time.perf_counter()
        sim = clvkit.datasets.simulate(args.customers, **SIM, random_seed=1)
        sim.transactions.to_parquet(path, index=False)
        rows = len(sim.transactions)
        del sim
        print(f"log: {rows:,} rows written in {time.perf_counter() - t0:.1f} s", flush=True)
        size_mb = path.stat().st_size / 1e6
        res = {task: _measure(task, path, args.runs) for task in ("path", "pandas", "dask")}
    for task, r in res.items():
        print(task, r, flush=True)
    same = res["path"]["hash"] == res["pandas"]["hash"] == res["dask"]["hash"]
    load = os.getloadavg()[0]
    p, m, d = res["path"], res["pandas"], res["dask"]
    lines = [
        "## Out-of-core RFM summary (DuckDB path route vs Dask's local scheduler vs pandas)",
        "",
        f"`rfm_summary` with `amount`, `time_unit='D'` on a Parquet log of {args.customers:,} "
        f"simulated customers ({rows:,} rows, {size_mb:.0f} MB). Each run is a fresh "
        f"subprocess; medians of {args.runs}. Time is from the file to the RFM table (the "
        "pandas route includes `pd.read_parquet`). Memory: the peak of the process's RSS "
        "during the call above its RSS just before (sampled every 2 ms; "
        f"~{p['rss_before_gb']:.2f} GB before), and `ru_maxrss`, which the child inherits "
        "from this driver process (it held the simulated log) across fork/exec, so it starts "
        f"at ~{p['rss_start_gb']:.2f} GB and hides most of the call's own memory.",
        "",
        "| route | seconds (median) | runs | RSS added by the call (GB) | ru_maxrss (GB) |",
        "| --- | ---: | --- | ---: | ---: |",
        f"| path: `rfm_summary('log.parquet', ...)` (DuckDB) | {p['seconds']:.2f} | "
        f"{p['all_seconds']} | {p['rss_call_gb']:.2f} | {p['rss_peak_gb']:.2f} |",
        f"| pandas: `rfm_summary(pd.read_parquet(...), ...)` | {m['seconds']:.2f} | "
        f"{m['all_seconds']} | {m['rss_call_gb']:.2f} | {m['rss_peak_gb']:.2f} |",
        "| Dask, local threads: `distributed.rfm_summary(dd.read_parquet(...), ...)` | "
        f"{d['seconds']:.2f} | {d['all_seconds']} | {d['rss_call_gb']:.2f} | "
        f"{d['rss_peak_gb']:.2f} |",
        "",
        f"Identical results, all three routes (hash of the table): {'yes' if same else 'NO'}; "
        f"{p['customers']:,} customers, {p['repeat_days']:,} repeat purchase days.",
        "Why the path route is slower and barely leaner at this size: DuckDB's group-by of "
        "~11 M rows into ~10 M (customer, day) groups takes ~1.4 s on 2 cores, and to give "
        "results identical to the in-memory path bit for bit (numpy sums segments pairwise, "
        "floating-point addition is not associative) the purchase days come back as numpy "
        "arrays (~24 bytes a day) and the per-customer sums run in numpy. The log itself never "
        "enters pandas and DuckDB spills its hash tables to disk, but memory still grows with "
        "the number of purchase days; per-customer sums in SQL (with numpy's pairwise order "
        "redone only for customers with 8+ repeat days) would make it grow with customers only.",
        "",
        "Why DuckDB for files on one machine (measured above: Dask's local scheduler "
        f"{d['seconds']:.1f} s and {d['rss_call_gb']:.1f} GB, DuckDB {p['seconds']:.1f} s and "
        f"{p['rss_call_gb']:.1f} GB): Dask runs the same in-memory "
        "code per partition after a shuffle by customer, which on one machine costs a full "
        "pass and a repartition of the log in pandas; DuckDB reads only the three columns, "
        "aggregates per (customer, day) in a spilling hash table and needs no scheduler, "
        "workers or partition tuning. Dask stays the engine for clusters "
        "(`clvkit.distributed`, docs/scale.md).",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, 1-min load {load:.1f} at the "
        f"end; duckdb {metadata.version('duckdb')}, pandas {metadata.version('pandas')}, "
        f"pyarrow {metadata.version('pyarrow')}.",
        "",
    ]
    out = HERE / "results" / "outofcore.md"
    tmp_out = out.with_suffix(".md.tmp")
    tmp_out.write_text("\n".join(lines))
    tmp_out.replace(out)
    print(out.read_text())
    if not same:
        raise SystemExit("the two routes disagree")


if __name__ == "__main__":
    main()
