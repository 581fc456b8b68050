"""Before/after on the same machine: bench_models' fresh-process cases, and the path and
in-memory summaries, run alternately on an older revision and on the working tree.

Not run by ``run_all.py`` (it needs ``--base``); its fragment ``results/ab.md`` is assembled
into RESULTS.md with the others. Timings on a shared 2-core machine drift from day to day (peers included), so a change is
judged against its base measured in the same run, one process after the other:
``python benchmarks/ab_compare.py --base add091f`` writes ``benchmarks/results/ab.md``. The base
revision is checked out with ``git worktree`` into a temporary folder and put first on
``PYTHONPATH``; both use this environment's packages.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _machine import machine

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

_SUMMARY = """
import time, json
import pandas as pd
from clvkit import rfm_summary
path = {path!r}
source = path if {route!r} == "path" else pd.read_parquet(path)
if {route!r} == "text dates":
    source = source.assign(date=source["date"].dt.strftime("%Y-%m-%d"))
t0 = time.perf_counter()
rfm_summary(source, amount="amount", time_unit="D")
print("@@" + json.dumps({{"call": time.perf_counter() - t0}}))
"""


def _child(src: str, tree: Path) -> float:
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=str(tree / "src"))
    proc = subprocess.run(
        [sys.executable, "-c", src], capture_output=True, text=True, env=env, check=True
    )
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@")][-1]
    out = json.loads(line[2:])
    return float(out.get("call", out.get("fit", 0.0) + out.get("import_load", 0.0)))


def _value_child(task: str, arg: str, tree: Path, draws: int = 1000) -> float:
    """One bench_value.py child of ``tree`` (its sources first on the path): the median of its
    repeated calls (CDNOW) or its one call (the 1M cases)."""
    env = dict(os.environ, PYTHONWARNINGS="ignore", PYTHONPATH=str(tree / "src"))
    script = tree / "benchmarks" / "bench_value.py"
    cmd = [sys.executable, str(script), "--child", task, arg, "--draws", str(draws)]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return float(statistics.median(out["repeats"])) if out.get("repeats") else out["seconds"]


def _value_cases(args: argparse.Namespace, base: Path, tmp: Path) -> list[str]:
    """customer_value cases: CDNOW 2,357 x 4,000 expected (median of a process's repeated
    calls), and ``--customers`` x 1,000 expected and simulate (one call per process)."""
    path = tmp / "rfm.parquet"
    bench = HERE / "bench_value.py"
    subprocess.run([sys.executable, str(bench), "--make", str(args.value_customers), str(path)],
                   check=True, env=dict(os.environ, PYTHONPATH=str(ROOT / "src")))  # fmt: skip
    n = f"{args.value_customers:,}"
    cases = [
        ("customer_value CDNOW 2,357 x 4,000 expected, repeated call", "cdnow-clvkit", "-",
         args.runs),
        (f"customer_value {n} x 1,000 expected", "big-expected", str(path), args.big_runs),
        (f"customer_value {n} x 1,000 simulate", "big-simulate", str(path), args.big_runs),
    ]  # fmt: skip
    if args.no_simulate:
        cases = cases[:-1]
    lines = []
    for name, task, arg, runs in cases:
        got: dict[str, list[float]] = {"base": [], "new": []}
        for _ in range(runs):
            got["base"].append(_value_child(task, arg, base))
            got["new"].append(_value_child(task, arg, ROOT))
        lines.append(_row(name, got))
        print(lines[-1], file=sys.stderr, flush=True)
    return lines


def _row(name: str, got: dict[str, list[float]]) -> str:
    b, n = (statistics.median(got[k]) for k in ("base", "new"))
    return (
        f"| {name} | {b:.2f} s ({', '.join(f'{x:.2f}' for x in got['base'])}) | "
        f"{n:.2f} s ({', '.join(f'{x:.2f}' for x in got['new'])}) | {n / b:.2f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="git revision to compare against")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--customers", type=int, default=300_000)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "ab.md")
    parser.add_argument("--value", action="store_true", help="also time customer_value")
    parser.add_argument("--value-only", action="store_true", help="only customer_value")
    parser.add_argument("--value-customers", type=int, default=1_000_000)
    parser.add_argument("--big-runs", type=int, default=1, help="runs of the 1M value cases")
    parser.add_argument("--no-simulate", action="store_true", help="skip the 1M simulate case")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    from bench_models import _LOAD, _TAIL, CASES

    import clvkit

    tmp = Path(tempfile.mkdtemp(prefix="clvkit-ab-"))
    base = tmp / "base"
    subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(base),
                    args.base], check=True)  # fmt: skip
    try:
        log = tmp / "log.parquet"
        sim = clvkit.datasets.simulate(args.customers, r=2.0, alpha=8.0, a=1.0, b=12.0, p=6.0,
                                       q=4.0, v=15.0, random_seed=1)  # fmt: skip
        sim.transactions.to_parquet(log, index=False)
        rows = len(sim.transactions)
        cases = {
            name: CASES[name].format(load=_LOAD) + _TAIL.format()
            for name in (
                "clvkit BetaGeo NUTS (nutpie, numba kernel; default)",
                "clvkit GammaGamma NUTS (nutpie, numba kernel; default)",
                "clvkit BetaGeo MLE (fresh process)",
            )
        }
        for route in ("path", "in memory", "text dates"):
            cases[f"rfm_summary, {route} ({rows:,} rows)"] = _SUMMARY.format(
                path=str(log), route=route
            )
        lines = [
            "# Before/after on the same machine (`benchmarks/ab_compare.py`)",
            "",
            f"Base `{args.base}` against the working tree, {time.strftime('%Y-%m-%d %H:%M')} "
            f"UTC; {machine()}; load average before {os.getloadavg()[0]:.2f}. Each case runs "
            f"{args.runs} times in fresh processes, base and new alternating; seconds are the "
            "child's import + data + call for the model cases (as bench_models' columns) and "
            "the call alone for the summaries; median (all runs).",
            "",
            "| case | base | new | new / base |",
            "|---|---:|---:|---:|",
        ]
        for name, src in {} if args.value_only else cases.items():
            got: dict[str, list[float]] = {"base": [], "new": []}
            for _ in range(args.runs):
                got["base"].append(_child(src, base))
                got["new"].append(_child(src, ROOT))
            lines.append(_row(name, got))
            print(lines[-1], file=sys.stderr, flush=True)
        if args.value or args.value_only:
            lines += _value_cases(args, base, tmp)
        lines.append(f"\nLoad average after: {os.getloadavg()[0]:.2f}.")
        args.output.write_text("\n".join(lines) + "\n")
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(base)],
                       check=False)  # fmt: skip
        shutil.rmtree(tmp, ignore_errors=True)
    print(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
