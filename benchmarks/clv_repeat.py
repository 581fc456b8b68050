"""Repeated ``customer_value`` calls on CDNOW with 4,000 draws, per purchase model: wall and CPU.

The call of ``bench_purchase.py``'s CLV section (``horizon="52W", period="4W",
annual_discount_rate=0.1``, expected method, Laplace posteriors of 4 x 1000 draws, a
Gamma-Gamma MLE): one warm call, then ``--repeats`` timed calls; prints the median wall time,
the median CPU time of the process (all threads) and the one-minute load average. On a shared
machine the wall time follows the other processes' load; the CPU time shows the work itself
(with ``n_jobs`` threads, the wall time on an idle machine is about CPU / cores plus the serial
parts). Also prints a digest of every result array, so two versions can be checked for the same
bits (``--seed`` fixes the pairing of draws).

Usage: ``python benchmarks/clv_repeat.py [--repeats 5] [--n-jobs N] [--models bgnbd,pnbd]``.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import time

import numpy as np

import clvkit
from clvkit import BetaGeo, GammaGamma, ModelMixture, ModifiedBetaGeo, ParetoNBD
from clvkit.datasets import cdnow_calibration_summary


def digest(v: clvkit.CustomerValue) -> str:
    """A digest of the equity draws, tier sums and counts, new-customer value and the table."""
    h = hashlib.sha1()
    for a in (v.equity, v.tier_equity, v.tier_count, v.new_customer, v.expected_equity):
        h.update(np.ascontiguousarray(a.values).tobytes())
    table = v.summary()
    for c in table.columns:
        col = table[c]
        h.update((col.cat.codes if hasattr(col, "cat") else col).to_numpy().tobytes())
    return h.hexdigest()[:12]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--n-jobs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--models", default="bgnbd,pnbd,mbgnbd,stacked")
    args = parser.parse_args()
    rfm = cdnow_calibration_summary()
    gg = GammaGamma().fit(rfm, random_seed=2, progressbar=False)
    fitted = {
        c.spec.name: c().fit(rfm, method="laplace", draws=1000, random_seed=1)
        for c in (BetaGeo, ParetoNBD, ModifiedBetaGeo)
    }
    fitted["stacked"] = ModelMixture.from_models(fitted, weights="stacking", random_seed=3)
    kw = dict(horizon="52W", period="4W", annual_discount_rate=0.1, method="expected")
    kw.update(n_jobs=args.n_jobs, random_seed=args.seed)
    print("| model | first call (s) | repeated, wall (s) | repeated, CPU (s) | load | digest |")
    print("|---|---:|---:|---:|---:|---|")
    for name in args.models.split(","):
        model = fitted[name]
        t = time.perf_counter()
        clvkit.customer_value(model, gg, rfm, **kw)
        first = time.perf_counter() - t
        wall, cpu = [], []
        for _ in range(args.repeats):
            t, c = time.perf_counter(), time.process_time()
            v = clvkit.customer_value(model, gg, rfm, **kw)
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - c)
        print(
            f"| {name} | {first:.2f} | {statistics.median(wall):.2f} | "
            f"{statistics.median(cpu):.2f} | {os.getloadavg()[0]:.1f} | {digest(v)} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
