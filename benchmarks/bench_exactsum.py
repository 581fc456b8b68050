"""Cost of the exact per-draw sums (``clvkit.utils.exactsum``) in ``clvkit.customer_value``.

1. Per chunk: the tier reduction of one default chunk (1,000 draws x 2,000 customers of real
   CLV values: CDNOW's expected CLV per draw, its first 2,000 customers) with the float code it replaced (the
   commit before 421b528: three masked sums over the chunk, differences of cumulative sums) and
   with ``ExactSum.add_tiered`` (one pass: tier, count, exact sum). Scaled to the 500 chunks of
   1 M customers x 1,000 draws.
2. End to end on CDNOW (2,357 customers x 4,000 draws, expected): ``customer_value`` before
   (the previous ``value.py``, loaded from git) and now, same data, draws and seed; medians
   of 5.

Appends a section to ``benchmarks/results/dask.md`` (``--output``).
Usage: ``flock /tmp/clvkit-bench.lock python benchmarks/bench_exactsum.py``
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
BEFORE = "5a73a0f"  # value.py before the exact sums


def _old_chunk_tiers(clv: np.ndarray, cuts: np.ndarray, n_t: int):
    """The float tier reduction of value.py at BEFORE (copied verbatim, as a function)."""
    total = clv.sum(axis=1)
    S, m = clv.shape
    t_eq, t_n, t_p = np.empty((S, n_t)), np.empty((S, n_t)), np.empty((m, n_t))
    prev_eq, prev_n, prev_p = 0.0, 0, 0.0
    for j in range(n_t):
        if j < n_t - 1:
            above = clv > cuts[:, j : j + 1]
            eq, cnt, p = (
                np.where(above, clv, 0.0).sum(axis=1),
                above.sum(axis=1),
                above.mean(axis=0),
            )
        else:
            eq, cnt, p = total, m, 1.0
        t_eq[:, j], t_n[:, j], t_p[:, j] = eq - prev_eq, cnt - prev_n, p - prev_p
        prev_eq, prev_n, prev_p = eq, cnt, p
    return total, t_eq, t_n, t_p


def _old_value_module():
    src = subprocess.run(
        ["git", "show", f"{BEFORE}:src/clvkit/value.py"], capture_output=True, text=True,
        check=True, cwd=HERE.parent,
    ).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "value_before.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location("clvkit_value_before", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look the module up
    spec.loader.exec_module(mod)
    return mod


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--output", type=Path, default=HERE / "results" / "dask.md")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    sys.path.insert(0, str(HERE))
    from bench_value import _cdnow, _posteriors

    from clvkit.utils.exactsum import ExactSum
    from clvkit.value import engine as value

    load = [os.getloadavg()[0]]
    rfm = _cdnow()
    bg, gg = _posteriors(4, 1000, seed=1)
    kw = {"horizon": 12 * 4.345, "period": "4.345W", "discount_rate_per_period": 0.01,
          "random_seed": 0}  # fmt: skip

    # 1. one default chunk of real values
    bg1 = bg.isel(chain=[0])
    gg1 = gg.isel(chain=[0])
    res = value.customer_value(bg1, gg1, rfm, keep_draws=True, **kw)
    clv = np.ascontiguousarray(res.clv.values[0][:, :2000])  # (1000 draws, 2000 customers)
    cuts = value._tier_cuts(res.clv.values[0], list(value.DEFAULT_TIERS.values()))
    n_t = len(value.DEFAULT_TIERS)
    ExactSum(clv.shape[0], n_t).add_tiered(clv, cuts)  # compile / load the numba cache

    def best(fn, reps=15):
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    t_old = best(lambda: _old_chunk_tiers(clv, cuts, n_t))
    t_new = best(lambda: ExactSum(clv.shape[0], n_t).add_tiered(clv, cuts))
    acc = ExactSum(clv.shape[0], n_t)
    t_merge = best(lambda: acc.merge(ExactSum(clv.shape[0], n_t)))
    load.append(os.getloadavg()[0])

    # 2. CDNOW end to end, before and now
    old = _old_value_module()
    e2e = {}
    for name, fn in (("before (float sums)", old.customer_value),
                     ("now (exact sums)", value.customer_value)):  # fmt: skip
        fn(bg, gg, rfm, **kw)  # warm
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            r = fn(bg, gg, rfm, **kw)
            times.append(time.perf_counter() - t0)
        e2e[name] = (statistics.median(times), r.equity.values.ravel())
    load.append(os.getloadavg()[0])
    (_, eq_old), (_, eq_new) = e2e.values()

    chunks = 1_000_000 // 2000
    lines = [
        "",
        "## Cost of the exact per-draw sums",
        "",
        "`benchmarks/bench_exactsum.py`. Load average (1 min) at start / middle / end: "
        + " / ".join(f"{x:.1f}" for x in load),
        "",
        "| tier reduction of one chunk, 1,000 draws x 2,000 customers (CDNOW values) | ms |",
        "|---|---:|",
        f"| float sums, three masked passes (before) | {t_old * 1e3:.1f} |",
        f"| `ExactSum.add_tiered`, one pass, exact | {t_new * 1e3:.1f} |",
        f"| merging a chunk's accumulator (2.1 MB) into the total | {t_merge * 1e3:.2f} |",
        "",
        f"- 1 M customers x 1,000 draws = {chunks} such chunks: float {t_old * chunks:.1f} s, "
        f"exact {(t_new + t_merge) * chunks:.1f} s of thread time, i.e. "
        f"{(t_new + t_merge - t_old) * chunks:+.1f} s against the 42 s of the expected case "
        "(`results/value.md`), spread over the `n_jobs` threads.",
        "",
        "| `customer_value` on CDNOW, 2,357 customers x 4,000 draws, expected (median of 5) | s |",
        "|---|---:|",
        *(f"| {k} | {t:.3f} |" for k, (t, _) in e2e.items()),
        "",
        "- Largest relative difference of the equity draws, before vs now: "
        f"{float(np.max(np.abs(eq_new - eq_old) / np.abs(eq_old))):.1e} (the float sums' "
        "rounding; the per-customer values are identical).",
        "",
    ]
    with args.output.open("a") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
