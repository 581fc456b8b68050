"""The cost curve of the whole pipeline at 10k, 100k and 1M simulated customers.

For each size a log is simulated with ``clvkit.datasets.simulate`` (about 10 repeat purchases per
customer over 78 weeks; not timed) and written to Parquet. Each step then runs in a fresh
subprocess that reads its inputs, times one call and reports its peak resident memory
(``ru_maxrss``; after loading inputs and libraries in brackets):

- ``summary``: ``rfm_summary`` (weeks, day-resolution dates) and ``calibration_holdout``;
- ``bg-day``: BetaGeo NUTS (nutpie, 4 chains x 1000 draws after 1000 tuning steps) on the table
  as summarized (recency and T on the day grid);
- ``bg-grid``: the same after ``coarsen_rfm(rfm, GRID)`` (coarsening time included);
- ``gg``: GammaGamma NUTS, 4 x 1000;
- ``value``: ``customer_value(method="expected")`` on 1,000 draws (each 4th draw of the 4 x 1000
  posteriors) for every customer, 52 weeks in 4-week periods at 10% a year, and the equity
  interval;
- ``e2e`` (end to end, one process): log in memory -> summary -> BG fit -> GG fit -> CLV and
  equity with 1,000 draws; the target is under 5 minutes and 4 GB at 1M customers.

Fits on the day grid and on the coarse grid are compared by the shift of the posterior means
in posterior sds. A second table measures the binning effect on the BG/NBD maximum-likelihood
estimates directly: exact continuous times (``SimulatedLog.rfm(exact=True)``) against the same
table rounded to grids from one hour to two weeks, shifts in standard errors.
Run it under ``flock /tmp/clvkit-bench.lock`` on a shared machine.

Usage: ``python benchmarks/bench_scale.py [--sizes 10000 100000 1000000] [--grid 2D]
[--e2e-grids 2D day] [--e2e-sizes 1000000] [--skip STEP ...] [--binning-sizes 200000 1000000]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

from _machine import machine, versions

HERE = Path(__file__).resolve().parent
# ~10 repeat purchases per customer over 78 weeks (the same process as bench_rfm.py)
SIM = {"r": 2.0, "alpha": 8.0, "a": 1.0, "b": 12.0, "p": 6.0, "q": 4.0, "v": 15.0}
BG_NAMES, GG_NAMES = ("r", "alpha", "a", "b"), ("p", "q", "v")
CHAINS, DRAWS, TUNE, THIN = 4, 1000, 1000, 4  # 4 x 1000 NUTS draws, every 4th for the CLV
CALIBRATION_END = "2021-01-01"  # ~52 of the 78 weeks
TARGET_SECONDS, TARGET_GB = 300.0, 4.0
STEPS = ("summary", "bg-day", "bg-grid", "gg", "value", "e2e")


def _maxrss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # KiB on Linux


def _read_rfm(folder: Path):
    import pandas as pd

    rfm = pd.read_parquet(folder / "rfm.parquet")
    rfm.attrs = {"time_unit": "W"}
    return rfm


def _save_posterior(model, path: Path) -> dict:
    import numpy as np

    post = model.idata_.posterior
    np.savez(path, **{k: post[k].to_numpy() for k in post.data_vars})
    diag = model.diagnostics()
    return {
        "rows": int(model.stats_.n_rows),
        "rhat": float(diag["max_rhat"]),
        "ess_bulk": float(diag["min_ess_bulk"]),
        "divergences": int(diag["divergences"]),
        "mean": {k: float(post[k].mean()) for k in post.data_vars},
        "sd": {k: float(post[k].std()) for k in post.data_vars},
    }


def _load_posterior(path: Path):
    import numpy as np
    import xarray as xr

    with np.load(path) as data:
        arrays = {k: data[k][:, ::THIN] for k in data.files}
    c, d = next(iter(arrays.values())).shape
    return xr.Dataset(
        {k: (("chain", "draw"), v) for k, v in arrays.items()},
        coords={"chain": np.arange(c), "draw": np.arange(d)},
    )


def _value(bg_post, gg_post, rfm) -> dict:
    from clvkit import customer_value

    res = customer_value(bg_post, gg_post, rfm, horizon="52W", period="4W",
                         annual_discount_rate=0.1, method="expected", random_seed=0)  # fmt: skip
    interval = res.equity_interval(0.9)
    values = [float(v) for v in interval.to_numpy()]
    return {"draws": int(res.equity.size), "equity": values, "equity_index": list(interval.index)}


def child(step: str, folder: Path, grid: str, e2e_grid: str) -> None:
    """Runs in the subprocess: one timed step, JSON on stdout."""
    import pandas as pd

    warnings.simplefilter("ignore")
    out: dict = {"load_start": os.getloadavg()[0]}
    if step == "summary":
        from clvkit.data.summary import calibration_holdout, rfm_summary

        log = pd.read_parquet(folder / "log.parquet")
        meta = json.loads((folder / "meta.json").read_text())
        out["rss_before_gb"] = _maxrss_gb()
        t0 = time.perf_counter()
        rfm = rfm_summary(log, amount="amount", time_unit="W", observation_end=meta["end"])
        out["seconds"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        split = calibration_holdout(log, calibration_end=CALIBRATION_END,
                                    observation_end=meta["end"], amount="amount",
                                    time_unit="W")  # fmt: skip
        out["seconds_holdout"] = time.perf_counter() - t0
        out.update(purchases=len(log), customers=len(rfm), holdout_customers=len(split))
        pd.DataFrame(rfm).to_parquet(folder / "rfm.parquet")
    elif step in ("bg-day", "bg-grid", "gg"):
        from clvkit import BetaGeo, GammaGamma, coarsen_rfm

        rfm = _read_rfm(folder)
        out["rss_before_gb"] = _maxrss_gb()
        t0 = time.perf_counter()
        if step == "bg-grid":
            rfm = coarsen_rfm(rfm, grid)
        cls = GammaGamma if step == "gg" else BetaGeo
        model = cls().fit(rfm, chains=CHAINS, draws=DRAWS, tune=TUNE, random_seed=1,
                          progressbar=False)  # fmt: skip
        out["seconds"] = time.perf_counter() - t0
        out.update(_save_posterior(model, folder / f"{step}.npz"))
    elif step == "value":
        bg_post = _load_posterior(folder / ("bg-grid.npz" if (folder / "bg-grid.npz").exists()
                                            else "bg-day.npz"))  # fmt: skip
        gg_post = _load_posterior(folder / "gg.npz")
        rfm = _read_rfm(folder)
        out["rss_before_gb"] = _maxrss_gb()
        t0 = time.perf_counter()
        out.update(_value(bg_post, gg_post, rfm))
        out["seconds"] = time.perf_counter() - t0
    elif step == "e2e":
        from clvkit import BetaGeo, GammaGamma, coarsen_rfm, rfm_summary

        log = pd.read_parquet(folder / "log.parquet")
        meta = json.loads((folder / "meta.json").read_text())
        out["rss_before_gb"] = _maxrss_gb()
        laps = {}
        t0 = t_prev = time.perf_counter()

        def lap(name: str) -> None:
            nonlocal t_prev
            now = time.perf_counter()
            laps[name] = now - t_prev
            t_prev = now

        rfm = rfm_summary(log, amount="amount", time_unit="W", observation_end=meta["end"])
        lap("summary")
        fit_table = rfm if e2e_grid == "day" else coarsen_rfm(rfm, e2e_grid)
        bg = BetaGeo().fit(fit_table, chains=CHAINS, draws=DRAWS, tune=TUNE, random_seed=1,
                           progressbar=False)  # fmt: skip
        lap("bg_fit")
        gg = GammaGamma().fit(rfm, chains=CHAINS, draws=DRAWS, tune=TUNE, random_seed=1,
                              progressbar=False)  # fmt: skip
        lap("gg_fit")
        thin = {"draw": slice(None, None, THIN)}
        out.update(_value(bg.idata_.posterior.isel(thin), gg.idata_.posterior.isel(thin), rfm))
        lap("value")
        out["seconds"] = time.perf_counter() - t0
        out["laps"] = laps
        out["bg_rows"], out["gg_rows"] = int(bg.stats_.n_rows), int(gg.stats_.n_rows)
    else:
        raise SystemExit(f"unknown step {step!r}")
    out["rss_peak_gb"] = _maxrss_gb()
    out["load_end"] = os.getloadavg()[0]
    print(json.dumps(out))


def binning(n: int, seed: int, steps: list[str]) -> None:
    """Runs in a subprocess: MLE on exact continuous times vs coarsened grids, JSON on stdout.

    The exact table (``SimulatedLog.rfm(exact=True)``) has one row per customer. The standard
    error of each log parameter is the sd of the Laplace posterior (4 x 1000 draws).
    """
    import numpy as np

    from clvkit import BetaGeo, coarsen_rfm
    from clvkit.datasets import simulate

    warnings.simplefilter("ignore")
    bg_sim = {k: SIM[k] for k in BG_NAMES}
    rfm = simulate(n, **bg_sim, random_seed=seed).rfm(exact=True)
    t0 = time.perf_counter()
    base = BetaGeo().fit(rfm, method="mle")
    rows = [{"step": "exact", "rows": base.stats_.n_rows, "seconds": time.perf_counter() - t0}]
    lap = BetaGeo().fit(rfm, method="laplace", chains=4, draws=1000, random_seed=1)
    sd = {k: float(np.log(lap.idata_.posterior[k]).std()) for k in BG_NAMES}
    ref = {k: float(base.idata_.posterior[k].item()) for k in BG_NAMES}
    for step in steps:
        t0 = time.perf_counter()
        coarse = coarsen_rfm(rfm, step)
        model = BetaGeo().fit(coarse, method="mle")
        seconds = time.perf_counter() - t0
        post = model.idata_.posterior
        shift = {k: float(np.log(float(post[k].item()) / ref[k])) / sd[k] for k in BG_NAMES}
        rows.append({"step": step, "rows": model.stats_.n_rows, "seconds": seconds,
                     "shift": shift})  # fmt: skip
    print(json.dumps({"customers": n, "mle": ref, "sd_log": sd, "rows": rows,
                      "load": os.getloadavg()[0]}))  # fmt: skip


def _binning_lines(runs: list[dict]) -> list[str]:
    lines = [
        "\n### Binning: effect of `coarsen_rfm` on the BG/NBD estimates\n",
        "Exact continuous purchase times (`SimulatedLog.rfm(exact=True)`, one row per customer) "
        "against the same table rounded to a grid; maximum likelihood fits. Shift = change of the "
        "log-parameter MLE in units of its standard error (sd of the Laplace posterior). Seconds: "
        "coarsening plus the MLE fit.\n",
        "| customers | grid | BG rows | seconds | shift r | shift alpha | shift a | shift b |",
        "|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        if "error" in run:
            lines.append(f"| - | failed: {run['error']} | | | | | | |")
            continue
        for row in run["rows"]:
            shift = row.get("shift")
            cells = " | ".join(f"{shift[k]:+.3f}" for k in BG_NAMES) if shift else "0 | 0 | 0 | 0"
            lines.append(
                f"| {run['customers']:,} | {row['step']} | {row['rows']:,} | "
                f"{row['seconds']:.2f} | {cells} |"
            )
    if runs and "sd_log" in runs[-1]:
        sd = ", ".join(f"{k} {v:.4f}" for k, v in runs[-1]["sd_log"].items())
        lines.append(f"\nStandard errors of the log parameters at {runs[-1]['customers']:,}: {sd}.")
    return lines


def make_log(n: int, seed: int, folder: str) -> None:
    """Runs in a subprocess (a child's ru_maxrss starts from its parent's size at fork)."""
    from clvkit.datasets import simulate

    sim = simulate(n, **SIM, random_seed=seed)
    sim.transactions.to_parquet(Path(folder) / "log.parquet", index=False)
    meta = {"end": str(sim.observation_end.date()), "repeat": int(sim.truth["n_repeat"].sum())}
    (Path(folder) / "meta.json").write_text(json.dumps(meta))


def _run(step: str, folder: Path, grid: str, e2e_grid: str) -> dict:
    print(f"  {step} ...", file=sys.stderr, flush=True)
    cmd = [sys.executable, __file__, "--child", step, str(folder), "--grid", grid,
           "--e2e-grids", e2e_grid]  # fmt: skip
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        return {"error": " ".join((proc.stderr or "").strip().splitlines()[-1:])}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_seconds"] = wall
    print(f"  {step}: {out.get('seconds', 0):.1f} s, {out['rss_peak_gb']:.2f} GB",
          file=sys.stderr, flush=True)  # fmt: skip
    return out


def _shift(a: dict, b: dict) -> str:
    """Largest |posterior mean shift| between two fits, in the first fit's posterior sds."""
    if "mean" not in a or "mean" not in b:
        return "-"
    z = {k: (b["mean"][k] - a["mean"][k]) / a["sd"][k] for k in a["mean"]}
    name = max(z, key=lambda k: abs(z[k]))
    return f"{z[name]:+.2f} ({name})"


def _cell(r: dict, key: str = "seconds") -> str:
    if not r:
        return "-"
    if "error" in r:
        return "failed"
    return f"{r[key]:.1f} s / {r['rss_peak_gb']:.2f} GB"


def report(results: dict, grid: str, load: tuple[float, float]) -> list[str]:
    sizes = sorted(results)
    lines = [
        "## Scale: the cost curve (`benchmarks/bench_scale.py`)\n",
        "Simulated bases (`clvkit.datasets.simulate`, ~10 repeat purchases per customer over 78 "
        "weeks, weekly unit, day-resolution dates). Each step is one call in a fresh subprocess: "
        "wall seconds / peak RSS (`ru_maxrss`, inputs and libraries included). NUTS: nutpie, "
        f"{CHAINS} chains x {DRAWS} draws after {TUNE} tuning steps; CLV: "
        f'`customer_value(method="expected")` on {CHAINS * DRAWS // THIN:,} draws (every '
        f"{THIN}th), 52 weeks in 4-week periods, for every customer, plus the equity interval. "
        f"Coarse grid: `coarsen_rfm(rfm, {grid!r})`.\n",
        f"- Machine: {machine()}",
        f"- Versions: {versions(['clvkit', 'numpy', 'pandas', 'nutpie', 'numba'])}",
        f"- Load average (1 min) at start / end: {load[0]:.1f} / {load[1]:.1f} (shared machine: "
        "a load above 2 on 2 cores inflates the timings)\n",
        "| customers | purchases | BG rows day grid / coarse | GG rows | summary | holdout split "
        f"| BG NUTS day grid | BG NUTS {grid} grid | GG NUTS | CLV + equity (1,000 draws) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in sizes:
        r = results[n]
        s = r.get("summary", {})
        bd, bg, gg, va = (r.get(k, {}) for k in ("bg-day", "bg-grid", "gg", "value"))
        purchases = f"{s['purchases']:,}" if "purchases" in s else "-"
        holdout = f"{s['seconds_holdout']:.1f} s" if "seconds_holdout" in s else "-"
        rows_bg = f"{bd.get('rows', '-'):,} / {bg.get('rows', '-'):,}" if "rows" in bd and (
            "rows" in bg) else "-"  # fmt: skip
        lines.append(
            f"| {n:,} | {purchases} | {rows_bg} | {gg.get('rows', 0):,} | {_cell(s)} | "
            f"{holdout} | {_cell(bd)} | {_cell(bg)} | {_cell(gg)} | {_cell(va)} |"
        )
    lines.append("")
    # growth from the smallest to the largest size: exponent k in time ~ customers^k
    if len(sizes) >= 2:
        lo, hi = sizes[-2], sizes[-1]
        parts = []
        for key, label in (("summary", "summary"), ("bg-day", "BG day grid"),
                           ("bg-grid", f"BG {grid} grid"), ("gg", "GG"), ("value", "CLV")):  # fmt: skip
            a, b = results[lo].get(key, {}), results[hi].get(key, {})
            if "seconds" in a and "seconds" in b and a["seconds"] > 0:
                k = math.log(b["seconds"] / a["seconds"]) / math.log(hi / lo)
                parts.append(f"{label} {k:.2f}")
        lines.append(
            f"- Growth exponent k in time ~ customers^k from {lo:,} to {hi:,}: "
            + ", ".join(parts)
            + " (1 = linear, 0 = flat)."
        )
    for n in sizes:
        r = results[n]
        bd, bg, gg = r.get("bg-day", {}), r.get("bg-grid", {}), r.get("gg", {})
        diag = []
        for label, f in (("BG day", bd), (f"BG {grid}", bg), ("GG", gg)):
            if "rhat" in f:
                diag.append(f"{label} R-hat {f['rhat']:.3f}, min bulk ESS {f['ess_bulk']:.0f}, "
                            f"{f['divergences']} divergences")  # fmt: skip
        if diag:
            lines.append(f"- {n:,}: " + "; ".join(diag) + ".")
        if "mean" in bd and "mean" in bg:
            lines.append(
                f"- {n:,}: {grid} grid vs day grid, largest BG posterior-mean shift "
                f"{_shift(bd, bg)} posterior sds."
            )
    e2e_runs = [(size, k) for size in sizes for k in results[size] if k.startswith("e2e ")]
    for n, key in e2e_runs:
        e, e2e_grid = results[n][key], key.removeprefix("e2e ")
        if "seconds" in e:
            laps = ", ".join(f"{k} {v:.1f} s" for k, v in e["laps"].items())
            verdict = (
                f"under {TARGET_SECONDS / 60:.0f} minutes "
                f"{'met' if e['seconds'] < TARGET_SECONDS else 'NOT met'}, under "
                f"{TARGET_GB:.0f} GB {'met' if e['rss_peak_gb'] < TARGET_GB else 'NOT met'}"
            )
            lines.append(
                f"- **End to end, {n:,} customers** (one process: summary, BG NUTS on the "
                f"{e2e_grid} grid ({e['bg_rows']:,} rows), GG NUTS ({e['gg_rows']:,} rows), CLV "
                f"and equity on {e['draws']:,} draws): **{e['seconds']:.0f} s, "
                f"{e['rss_peak_gb']:.2f} GB peak** ({laps}; log in memory "
                f"{e['rss_before_gb']:.2f} GB): {verdict}. Equity interval "
                f"{dict(zip(e['equity_index'], [round(v) for v in e['equity']], strict=True))}."
            )
        elif "error" in e:
            lines.append(f"- End to end, {n:,} customers, {e2e_grid} grid: failed ({e['error']}).")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000])
    parser.add_argument("--grid", default="2D", help="coarse grid for the bg-grid step")
    parser.add_argument(
        "--e2e-grids",
        nargs="+",
        default=["2D"],
        help="BG grid of each end-to-end run: 'day' or a grid such as '2D'",
    )
    parser.add_argument(
        "--e2e-sizes",
        type=int,
        nargs="*",
        default=None,
        help="sizes with end-to-end runs (default: all)",
    )
    parser.add_argument("--skip", nargs="*", default=[], choices=STEPS)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "scale.md")
    parser.add_argument("--json", type=Path, default=None, help="also write raw results here")
    parser.add_argument("--binning-sizes", type=int, nargs="*", default=[200_000, 1_000_000])
    parser.add_argument("--binning-steps", nargs="*", default=["1h", "6h", "1D", "2D", "3.5D",
                                                                "1W", "2W"])  # fmt: skip
    parser.add_argument("--binning", nargs=1, metavar="N", help=argparse.SUPPRESS)
    parser.add_argument("--child", nargs=2, metavar=("STEP", "DIR"), help=argparse.SUPPRESS)
    parser.add_argument("--make", nargs=3, metavar=("N", "SEED", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.make:
        make_log(int(args.make[0]), int(args.make[1]), args.make[2])
        return 0
    if args.child:
        child(args.child[0], Path(args.child[1]), args.grid, args.e2e_grids[0])
        return 0
    if args.binning:
        binning(int(args.binning[0]), args.seed, args.binning_steps)
        return 0
    load_start = os.getloadavg()[0]
    binning_runs = []
    for n in args.binning_sizes:
        print(f"binning at {n:,} customers", file=sys.stderr, flush=True)
        proc = subprocess.run([sys.executable, __file__, "--binning", str(n), "--seed",
                               str(args.seed), "--binning-steps", *args.binning_steps],
                              capture_output=True, text=True)  # fmt: skip
        if proc.returncode:
            binning_runs.append({"error": " ".join(proc.stderr.strip().splitlines()[-1:])})
        else:
            binning_runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    results: dict[int, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            print(f"{n:,} customers", file=sys.stderr, flush=True)
            folder = Path(tmp) / str(n)
            folder.mkdir()
            subprocess.run([sys.executable, __file__, "--make", str(n), str(args.seed),
                            str(folder)], check=True)  # fmt: skip
            results[n] = {}
            for step in STEPS:
                if step in args.skip or (step == "value" and "gg" in args.skip):
                    continue
                if step != "e2e":
                    results[n][step] = _run(step, folder, args.grid, args.grid)
                    continue
                if args.e2e_sizes is not None and n not in args.e2e_sizes:
                    continue
                for g in args.e2e_grids:
                    results[n][f"e2e {g}"] = _run(step, folder, args.grid, g)
    lines = report(results, args.grid, (load_start, os.getloadavg()[0]))
    lines += _binning_lines(binning_runs)
    if args.json:
        args.json.write_text(json.dumps({"steps": results, "binning": binning_runs}, indent=1))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
