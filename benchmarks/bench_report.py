"""``clvkit report`` end to end on a simulated 100k-customer log: time, peak memory, progress.

The user's path of issue 14: one command reads the log, fits BG/NBD and Gamma-Gamma by NUTS on
all data to the observation end, values the base, refits on the calibration window for the
backtest, and renders the HTML report. Each run is a fresh ``clvkit`` process with stderr sent
to a file (not a terminal), as under a scheduler; we record its wall time, its peak resident
memory (``os.wait4``), the load average before it starts, and the longest silence between two
progress lines on stderr. No peer has an equivalent command (lifetimes, pymc-marketing and
CLVTools stop at the fitted model), so there is no ratio: the targets are the issue's (under
60 s, under 4 GB, a progress line every few seconds).

Usage: ``python benchmarks/bench_report.py [--customers 100000] [--runs 3]``
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import machine, versions

HERE = Path(__file__).resolve().parent
OUT = HERE / "results" / "report.md"
STAMP = re.compile(r"^\[\s*([0-9.]+)s\]")
# CDNOW-like behaviour (Fader, Hardie and Lee 2005 BG/NBD estimates; Gamma-Gamma of the BTYD
# walkthrough), 26 weeks of acquisition, two years observed.
PARAMS = dict(r=0.243, alpha=4.414, a=0.793, b=2.426, p=6.25, q=3.74, v=15.44)


def make_log(n: int, folder: Path) -> tuple[Path, str, str]:
    """A simulated purchase log as Parquet, and its calibration end and observation end."""
    import clvkit

    sim = clvkit.datasets.simulate(
        n, **PARAMS, acquisition_periods=26, observation_periods=104, random_seed=2026
    )
    path = folder / "log.parquet"
    sim.transactions.to_parquet(path)
    end = sim.observation_end
    cal = end - (end - sim.start) / 4  # the last quarter of the log is the holdout
    return path, cal.strftime("%Y-%m-%d"), end.strftime("%Y-%m-%d")


def run_once(log: Path, cal: str, end: str, folder: Path, seed: int) -> dict[str, float]:
    """One ``clvkit report`` process: wall seconds, peak RSS (GB), longest progress gap."""
    clvkit_bin = Path(sys.executable).with_name("clvkit")
    err = folder / f"stderr-{seed}.txt"
    cmd = [
        str(clvkit_bin), "report", str(log), "--calibration-end", cal, "--observation-end",
        end, "--method", "nuts", "--seed", str(seed), "--out", str(folder / "report.html"),
    ]  # fmt: skip
    load = os.getloadavg()[0]
    t0 = time.perf_counter()
    with open(err, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=fh)
        _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"clvkit report failed:\n{err.read_text()[-3000:]}")
    text = err.read_text()
    stamps = [float(m.group(1)) for ln in text.splitlines() if (m := STAMP.match(ln))]
    steps = [  # the command's own steps, without heartbeats and chunk counts
        ln
        for ln in text.splitlines()
        if STAMP.match(ln) and "still running" not in ln and "/" not in ln.split("] ", 1)[1]
    ]
    gaps = [b - a for a, b in zip([0.0, *stamps], [*stamps, wall], strict=True)]
    return {
        "wall": wall,
        "rss_gb": usage.ru_maxrss * 1024 / 1e9,
        "max_gap": max(gaps),
        "lines": len(stamps),
        "load": load,
        "steps": "\n".join(steps),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        log, cal, end = make_log(args.customers, folder)
        runs = []
        for i in range(args.runs):
            r = run_once(log, cal, end, folder, seed=i + 1)
            print(f"run {i + 1}: {r}", file=sys.stderr, flush=True)
            runs.append(r)
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0] if k != "steps"}
    mid = sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]
    rows = "\n".join(
        f"| {i + 1} | {r['load']:.2f} | {r['wall']:.1f} | {r['rss_gb']:.2f} | "
        f"{r['max_gap']:.1f} | {r['lines']} |"
        for i, r in enumerate(runs)
    )
    text = f"""## `clvkit report` end to end ({args.customers:,} simulated customers)

- Machine: {machine()}
- Versions: {versions(["clvkit", "numpy", "pandas", "pymc", "nutpie", "numba", "duckdb"])}
- Command: `clvkit report log.parquet --calibration-end {cal} --observation-end {end}
  --method nuts --seed N --out report.html` (NUTS fits on all data and on the calibration
  window, value, backtest, HTML), stderr to a file; a fresh process per run.
- Targets (issue 14): under 60 s, peak memory under 4 GB, a progress line every few seconds.
  No peer has an end-to-end report, so there is no ratio.

| run | load before | wall (s) | peak RSS (GB) | longest silence on stderr (s) | progress lines |
|---:|---:|---:|---:|---:|---:|
{rows}

Median: **{med["wall"]:.1f} s**, peak **{med["rss_gb"]:.2f} GB**, longest silence
{med["max_gap"]:.1f} s.

Steps of the median run (elapsed seconds when each step started; each runs until the
next one starts):

```
{mid["steps"]}
```
"""
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
