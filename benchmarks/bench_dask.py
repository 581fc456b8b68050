"""Benchmark the Dask path (``clvkit.distributed``) on a LocalCluster of this machine.

Steps, each timed on the client (wall time), with every worker's RSS sampled every 0.25 s
(``client.run`` + psutil; the workers are processes, so each RSS is one worker's):

1. generate: ``clvkit.datasets.simulate`` in blocks of customers (ids offset per block), each
   block written as one Parquet file in a temporary folder on local disk; the driver holds one
   block at a time. Not part of the Dask timing.
2. summary: ``clvkit.distributed.rfm_summary`` of ``dask.dataframe.read_parquet(folder)``,
   persisted on the workers (date pass, shuffle of the log by customer, per-partition summary).
3. value: ``clvkit.distributed.customer_value`` (``--method``, default expected) with 1,000 draws
   (pair histogram, two shuffles of the RFM table, tier cuts from a 50,000-customer sample,
   scoring, exact per-draw equity merged in a tree; per-customer rows persisted).

Posterior draws: independent lognormals around the simulation's true parameters (log-scale
sd as in ``bench_value.py``), so no fit is needed; timings do not depend on their values.

Usage: ``flock /tmp/clvkit-bench.lock python benchmarks/bench_dask.py --customers 10000000``
(``--block`` customers per Parquet file, ``--workers``, ``--output``).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import threading
import time
import warnings
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIM = {"r": 2.0, "alpha": 8.0, "a": 1.0, "b": 12.0, "p": 6.0, "q": 4.0, "v": 15.0}
LOG_SD = {"r": 0.05, "alpha": 0.09, "a": 0.2, "b": 0.25, "p": 0.1, "q": 0.08, "v": 0.2}


def _posteriors(draws: int, seed: int):
    import numpy as np
    import xarray as xr

    rng = np.random.default_rng(seed)

    def post(names):
        return xr.Dataset(
            {
                k: (("chain", "draw"), SIM[k] * np.exp(LOG_SD[k] * rng.standard_normal((1, draws))))
                for k in names
            },
            coords={"chain": [0], "draw": np.arange(draws)},
        )

    return post(["r", "alpha", "a", "b"]), post(["p", "q", "v"])


def _rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


class _Sampler:
    """Polls every worker's RSS; keeps the peak per worker, per step."""

    def __init__(self, client) -> None:
        self.client = client
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                for w, rss in self.client.run(_rss).items():
                    self.peak[w] = max(self.peak.get(w, 0), rss)
            except Exception:  # a worker restarting: keep sampling
                pass
            self._stop.wait(0.25)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _generate(n: int, block: int, folder: Path) -> tuple[int, str]:
    import numpy as np

    from clvkit.datasets import simulate

    rows = 0
    end = None
    for b, lo in enumerate(range(0, n, block)):
        size = min(block, n - lo)
        sim = simulate(size, **SIM, random_seed=1000 + b)
        log = sim.transactions
        log["customer_id"] = log["customer_id"].to_numpy(dtype=np.int64) + lo
        log.to_parquet(folder / f"part-{b:05d}.parquet", index=False)
        rows += len(log)
        end = str(sim.observation_end.date())
        del sim, log
    return rows, end


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--customers", type=int, default=10_000_000)
    parser.add_argument("--block", type=int, default=500_000)
    parser.add_argument("--draws", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--memory-limit", default="10GB")
    parser.add_argument("--method", choices=["expected", "simulate"], default="expected")
    parser.add_argument("--output", type=Path, default=HERE / "results" / "dask.md")
    parser.add_argument("--append", action="store_true", help="add to --output, as a section")
    parser.add_argument("--compare", action="store_true", help="also run the in-memory route")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    import dask
    import dask.dataframe as dd
    import numpy as np
    from dask.distributed import Client, LocalCluster, wait

    from clvkit import distributed as cd

    load = [os.getloadavg()[0]]
    base = Path(os.environ.get("CLVKIT_BENCH_TMP", tempfile.gettempdir()))
    folder = Path(tempfile.mkdtemp(prefix="clvkit-dask-", dir=base))
    steps: list[tuple[str, float, dict[str, int]]] = []
    try:
        t0 = time.perf_counter()
        rows, end = _generate(args.customers, args.block, folder)
        gen_s = time.perf_counter() - t0
        disk = sum(f.stat().st_size for f in folder.iterdir())
        load.append(os.getloadavg()[0])
        bg, gg = _posteriors(args.draws, seed=2)
        with (
            dask.config.set({"distributed.worker.daemon": False}),
            LocalCluster(
                n_workers=args.workers, threads_per_worker=1, processes=True,
                memory_limit=args.memory_limit, dashboard_address=None,
                local_directory=str(folder / "dask-scratch"),
            ) as cluster,
            Client(cluster) as client,
        ):  # fmt: skip
            client.run(lambda: __import__("clvkit.distributed"))  # warm imports, numba cache
            base_rss = client.run(_rss)
            log = dd.read_parquet(str(folder / "part-*.parquet"))
            nparts = log.npartitions

            with _Sampler(client) as s:
                t0 = time.perf_counter()
                rfm = cd.rfm_summary(log, amount="amount", observation_end=end).persist()
                wait(rfm)
                steps.append(("summary (date pass, shuffle by customer, per-partition rfm)",
                              time.perf_counter() - t0, dict(s.peak)))  # fmt: skip
            load.append(os.getloadavg()[0])
            with _Sampler(client) as s:
                t0 = time.perf_counter()
                res = cd.customer_value(
                    bg, gg, rfm, horizon="52W", period="30D", annual_discount_rate=0.1,
                    method=args.method, random_seed=4,
                )  # fmt: skip
                wait(res.customers)
                steps.append((f"value, {args.method}, {args.draws:,} draws (pair pass, 2 shuffles, "
                              "tier cuts, scoring, equity tree)",
                              time.perf_counter() - t0, dict(s.peak)))  # fmt: skip
            load.append(os.getloadavg()[0])
            n_customers = res.settings["n_customers"]
            eq = res.equity_interval()
            head = res.summary().head(3)
            compare = []
            if args.compare:  # the in-memory route on the same files: time and identity
                import pandas as pd

                import clvkit

                dist_rfm = rfm.compute().sort_index()
                dist_summary = res.summary().compute().sort_index()
                client.run(lambda: __import__("gc").collect())
                t0 = time.perf_counter()
                mem_rfm = clvkit.rfm_summary(
                    str(folder / "part-*.parquet"), amount="amount", observation_end=end
                )
                t_rfm = time.perf_counter() - t0
                t0 = time.perf_counter()
                mem = clvkit.customer_value(
                    bg, gg, mem_rfm, horizon="52W", period="30D", annual_discount_rate=0.1,
                    method=args.method, random_seed=4,
                )  # fmt: skip
                t_val = time.perf_counter() - t0
                same_rfm = dist_rfm.equals(mem_rfm) and dist_rfm.attrs == mem_rfm.attrs
                same_eq = all(
                    np.array_equal(getattr(mem, k).values, getattr(res, k).values)
                    for k in ("equity", "tier_equity", "tier_count", "new_customer")
                )
                try:
                    pd.testing.assert_frame_equal(dist_summary, mem.summary(), check_exact=True)
                    same_summary = True
                except AssertionError:
                    same_summary = False
                compare = [
                    f"- In memory on the same files, same process as the client (DuckDB "
                    f"`clvkit.rfm_summary(path)` {t_rfm:.1f} s, `clvkit.customer_value` "
                    f"n_jobs=2 {t_val:.1f} s); identical to the Dask results: RFM table "
                    f"{same_rfm}, equity/tier sums/tier counts/new-customer draws {same_eq}, "
                    f"per-customer summary {same_summary} "
                    f"(tier cuts {'exact' if res.settings['tier_cuts_exact'] else 'sampled'})",
                ]
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    gb = 1e9
    total = sum(t for _, t, _ in steps)
    title = "## Dask path (`clvkit.distributed`)"
    if args.append:
        title = f"## Dask path, {args.customers:,} customers, method={args.method}"
    lines = [
        title,
        "",
        f"{args.customers:,} simulated customers (`clvkit.datasets.simulate`, {SIM}, default "
        "12-week acquisition and 78-week observation), generated in blocks of "
        f"{args.block:,} customers, each written as one Parquet file on local disk (the driver "
        "never holds the whole log; the folder is deleted afterwards). A `LocalCluster` of "
        f"{args.workers} worker processes x 1 thread (memory limit {args.memory_limit} each) "
        "on this machine. Peak memory per worker: the largest RSS of each worker process, "
        "sampled every 0.25 s with `client.run` + psutil during the step.",
        "",
        f"- Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        f"- Versions: clvkit {metadata.version('clvkit')}, dask {metadata.version('dask')}, "
        f"distributed {metadata.version('distributed')}, numpy {np.__version__}, "
        f"pandas {metadata.version('pandas')}",
        "- Load average (1 min) at start / after generation / after summary / after value: "
        + " / ".join(f"{x:.1f}" for x in load)
        + " (shared machine: a load above 2 on 2 cores inflates the timings)",
        f"- Log: {rows:,} purchase rows in {nparts} Parquet files ({disk / gb:.2f} GB on disk); "
        f"generation {gen_s:.0f} s (not part of the Dask timing)",
        f"- Customers in the RFM table: {n_customers:,}; draws: {args.draws:,}",
        "- Worker RSS after start-up and imports: "
        + ", ".join(f"{v / gb:.2f} GB" for v in base_rss.values()),
        "",
        "| step | seconds | peak RSS per worker (GB) |",
        "|---|---:|---|",
    ]
    for name, sec, peak in steps:
        lines.append(
            f"| {name} | {sec:.1f} | " + ", ".join(f"{v / gb:.2f}" for v in peak.values()) + " |"
        )
    lines += [
        f"| total (summary + value) | {total:.1f} | |",
        "",
        f"- Per customer: summary {steps[0][1] / n_customers * 1e6:.1f} us, value "
        f"{steps[1][1] / n_customers * 1e6:.1f} us ({args.draws:,} draws)",
        f"- Equity: mean {eq['mean']:,.0f}, 90% interval [{eq['lower']:,.0f}, {eq['upper']:,.0f}]",
        *compare,
        "",
        "First rows of `res.summary()` (a persisted Dask DataFrame):",
        "",
        "```",
        head.round(3).to_string(),
        "```",
        "",
    ]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    if args.append:
        with args.output.open("a") as f:
            f.write("\n" + "\n".join(lines))
    else:
        args.output.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
