"""Benchmark the purchase models (BG/NBD, Pareto/NBD, MBG/NBD) against their peers on CDNOW.

Three parts, all on this machine in one run:

1. Fits in fresh processes (interpreter start + imports + data + compile + fit), CDNOW 39-week
   calibration (2,357 customers), median of ``--runs``: clvkit NUTS (4 chains x (1000 tune +
   1000 draws)) and MLE of each model; pymc-marketing's ``ParetoNBDModel`` (its default, MAP;
   NUTS with the PyMC sampler and with nutpie, each stopped after ``--timeout`` seconds) and
   ``ModifiedBetaGeoModel`` (NUTS, PyMC sampler); lifetimes' ``ParetoNBDFitter`` and
   ``ModifiedBetaGeoFitter``.
2. ``customer_value(method="expected")`` with 4,000 draws on CDNOW for each model (NUTS
   posteriors, 52 weeks in 4-week periods at 10% a year): the first call and the median of
   five repeated calls, in one process; the same for the stacked mixture of the three models.
3. Pareto/NBD at scale: 1,000,000 simulated customers x 1,000 draws, ``expected`` and
   ``simulate``, each in a fresh process: seconds and peak resident memory (``ru_maxrss``).

Usage: ``python benchmarks/bench_purchase.py [--runs 3] [--timeout 420] [--skip-scale |
--only-scale]``; writes ``benchmarks/results/purchase.md`` (parts 1 and 2) and
``purchase_scale.md`` (part 3). Run it alone on a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from _fresh import fresh_run
from _machine import machine, versions

HERE = Path(__file__).resolve().parent
RESULT = HERE / "results" / "purchase.md"
SCALE_RESULT = HERE / "results" / "purchase_scale.md"
TARGET_NUTS, TARGET_CLV, TARGET_GB = 3.0, 1.0, 4.0

_LOAD = """
from clvkit.datasets import cdnow_calibration_summary
rfm = cdnow_calibration_summary()
"""
_PEER_DIAG = """
post = idata.posterior[{names}]
d = {{"max_rhat": float(az.rhat(post).to_array().max()),
     "min_ess_bulk": float(az.ess(post).to_array().min())}}
"""


def _clvkit_nuts(cls: str) -> str:
    return f"""
import time; t0 = time.perf_counter()
from clvkit import {cls}
{{load}}
t1 = time.perf_counter()
m = {cls}().fit(rfm, random_seed=1, progressbar=False)
d = m.diagnostics()
"""


def _clvkit_mle(cls: str) -> str:
    return f"""
import time; t0 = time.perf_counter()
from clvkit import {cls}
{{load}}
t1 = time.perf_counter()
m = {cls}().fit(rfm, method="mle")
d = {{{{}}}}
"""


def _pmm(cls: str, method: str, names: str, sampler: str | None = None) -> str:
    config = f"sampler_config={{{{'nuts_sampler': '{sampler}'}}}}" if sampler else ""
    fit = (
        f'idata = model.fit(method="{method}")'
        if method == "map"
        else f'idata = model.fit(method="{method}", chains=4, draws=1000, tune=1000, '
        "random_seed=1, progressbar=False)"
    )
    diag = "d = {}" if method == "map" else _PEER_DIAG.format(names=names)
    diag = diag.replace("{", "{{").replace("}", "}}")  # literal through the later .format
    return f"""
import time; t0 = time.perf_counter()
from pymc_marketing.clv import {cls}
import arviz as az
{{load}}
data = rfm.reset_index()[["customer_id", "frequency", "recency", "T"]]
t1 = time.perf_counter()
model = {cls}(data=data, {config})
{fit}
{diag}
"""


def _lifetimes(cls: str) -> str:
    return f"""
import time; t0 = time.perf_counter()
from lifetimes import {cls}
{{load}}
x, tx, T = (rfm[c].to_numpy() for c in ("frequency", "recency", "T"))
t1 = time.perf_counter()
{cls}().fit(x, tx, T)
d = {{{{}}}}
"""


PNBD, MBG = '["r", "alpha", "s", "beta"]', '["r", "alpha", "a", "b"]'
CASES = {
    "clvkit ParetoNBD NUTS (nutpie, numba kernel; default)": _clvkit_nuts("ParetoNBD"),
    "clvkit ModifiedBetaGeo NUTS (nutpie, numba kernel; default)": _clvkit_nuts("ModifiedBetaGeo"),
    "clvkit BetaGeo NUTS (nutpie, numba kernel; default)": _clvkit_nuts("BetaGeo"),
    "clvkit ParetoNBD MLE": _clvkit_mle("ParetoNBD"),
    "clvkit ModifiedBetaGeo MLE": _clvkit_mle("ModifiedBetaGeo"),
    "lifetimes ParetoNBDFitter (MLE)": _lifetimes("ParetoNBDFitter"),
    "lifetimes ModifiedBetaGeoFitter (MLE)": _lifetimes("ModifiedBetaGeoFitter"),
    "pymc-marketing ParetoNBDModel (default: MAP)": _pmm("ParetoNBDModel", "map", PNBD),
    "pymc-marketing ModifiedBetaGeoModel NUTS (PyMC sampler)": _pmm(
        "ModifiedBetaGeoModel", "mcmc", MBG
    ),
    "pymc-marketing ParetoNBDModel NUTS (PyMC sampler)": _pmm("ParetoNBDModel", "mcmc", PNBD),
    "pymc-marketing ParetoNBDModel NUTS (nutpie)": _pmm(
        "ParetoNBDModel", "mcmc", PNBD, sampler="nutpie"
    ),
}
SLOW = ("pymc-marketing ParetoNBDModel NUTS",)  # one run each, with a timeout

_TAIL = """
t2 = time.perf_counter()
import json
print("@@" + json.dumps({{"import_load": t1 - t0, "fit": t2 - t1,
                          "max_rhat": d.get("max_rhat"), "min_ess_bulk": d.get("min_ess_bulk")}}))
"""


def run_case(code: str, timeout: float | None) -> dict:
    """Run one case in a fresh interpreter; return wall time and the child's own timings."""
    return fresh_run(code.format(load=_LOAD) + _TAIL.format(), timeout)


def fits(
    runs: int, timeout: float, clvkit_timeout: float | None, rows_from: str | None = None
) -> list[str]:
    rows = []
    if rows_from:  # the rows of an earlier run's log (a rerun of the later sections only)
        with open(rows_from) as fh:
            rows = [ln.rstrip("\n") for ln in fh if ln.startswith("| ")]
    for name, code in CASES.items() if not rows_from else ():
        slow = any(name.startswith(s) for s in SLOW)
        limit = timeout if slow else clvkit_timeout
        results = [run_case(code, limit) for _ in range(1 if slow else runs)]
        ok = [r for r in results if "error" not in r]
        if not ok:
            rows.append(f"| {name} | {results[0]['error']} | | | | |")
            print(rows[-1], flush=True)
            continue
        wall = statistics.median(r["wall"] for r in ok)
        fit = statistics.median(r["fit"] for r in ok)
        imp = statistics.median(r["import_load"] for r in ok)
        rhat, ess = ok[0].get("max_rhat"), ok[0].get("min_ess_bulk")
        diag = f"{rhat:.3f} / {ess:.0f}" if rhat is not None else "-"
        walls = ", ".join(f"{r['wall']:.1f}" for r in ok)
        rows.append(f"| {name} | **{wall:.2f} s** | {imp:.2f} s | {fit:.2f} s | {diag} | {walls} |")
        print(rows[-1], flush=True)
    return [
        "## Purchase-model fits on CDNOW (fresh process per run)",
        "",
        "Wall = interpreter start + imports + data + compile + fit. NUTS: 4 chains x (1000 tune "
        f"+ 1000 draws). Median of {runs} runs; pymc-marketing's Pareto/NBD NUTS runs once, "
        f"stopped after {timeout:.0f} s. Target for clvkit's Pareto/NBD and MBG/NBD NUTS: under "
        f"{TARGET_NUTS:g} s.",
        "",
        "| case | wall (median) | import + data | fit | max R-hat / min bulk ESS | all runs (s) |",
        "|---|---|---|---|---|---|",
        *rows,
    ]


_CLV = """
import json, statistics, time
import numpy as np
import clvkit
from clvkit import BetaGeo, GammaGamma, ModelMixture, ParetoNBD, ModifiedBetaGeo
from clvkit.datasets import cdnow_calibration_summary
rfm = cdnow_calibration_summary()
gg = GammaGamma().fit(rfm, random_seed=2, progressbar=False)
fitted = {c.spec.name: c().fit(rfm, method="laplace", draws=1000, random_seed=1)
          for c in (BetaGeo, ParetoNBD, ModifiedBetaGeo)}
fitted["stacked"] = ModelMixture.from_models(
    {k: fitted[k] for k in ("bgnbd", "pnbd", "mbgnbd")}, weights="stacking", random_seed=3)
out = {}
for name, m in fitted.items():
    kw = dict(horizon="52W", period="4W", annual_discount_rate=0.1, method="expected")
    t = time.perf_counter(); v = clvkit.customer_value(m, gg, rfm, **kw)
    first = time.perf_counter() - t
    times = []
    for _ in range(5):
        t = time.perf_counter(); v = clvkit.customer_value(m, gg, rfm, **kw)
        times.append(time.perf_counter() - t)
    e = v.equity_interval(0.9)
    out[name] = {"first": first, "repeat": statistics.median(times),
                 "draws": int(v.settings["n_draws"]), "equity": float(e["mean"]),
                 "lo": float(e["lower"]), "hi": float(e["upper"])}
print("@@" + json.dumps(out))
"""


def clv_section() -> list[str]:
    proc = subprocess.run(
        [sys.executable, "-c", _CLV], capture_output=True, text=True, check=False,
        env=dict(os.environ, PYTHONWARNINGS="ignore"),
    )  # fmt: skip
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@")]
    head = [
        "",
        "## Customer value with 4,000 draws on CDNOW (expected method)",
        "",
        "`customer_value(model, GammaGamma, rfm, horizon='52W', period='4W', "
        "annual_discount_rate=0.1)` on each model's Laplace posterior (4 x 1000 draws; the cost "
        "does not depend on how the draws were made); one "
        f"process, the first call and the median of five repeated calls. Target: under "
        f"{TARGET_CLV:g} s for a repeated call.",
        "",
        "| model | draws | first call | repeated call | vs target | equity (90% credible) |",
        "|---|---:|---:|---:|---|---|",
    ]
    if proc.returncode != 0 or not lines:
        return [*head, f"| failed: {' '.join(proc.stderr.strip().splitlines()[-1:])} |"]
    rows = []
    for name, r in json.loads(lines[-1][2:]).items():
        met = "met" if r["repeat"] < TARGET_CLV else "NOT met"
        rows.append(
            f"| {name} | {r['draws']:,} | {r['first']:.2f} s | {r['repeat']:.2f} s | {met} | "
            f"{r['equity']:,.0f} [{r['lo']:,.0f}, {r['hi']:,.0f}] |"
        )
    return [*head, *rows]


_SCALE = """
import json, resource, time
import numpy as np
import clvkit
from clvkit import GammaGamma, ParetoNBD
from clvkit.datasets import simulate
rfm = simulate(@N@, r=2.0, alpha=8.0, a=1.0, b=12.0, p=6.0, q=4.0, v=15.0,
               random_seed=5).rfm()
rng = np.random.default_rng(0)
def jitter(point, n):  # 1,000 draws around a point, 5% on the log scale
    return {k: v * np.exp(rng.normal(0.0, 0.05, n)) for k, v in point.items()}
pn = ParetoNBD.from_params(time_unit="W", **jitter(
    {"r": 2.0, "alpha": 8.0, "s": 0.6, "beta": 60.0}, 1000))
gg = GammaGamma.from_params(**jitter({"p": 6.0, "q": 4.0, "v": 15.0}, 1000))
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
t = time.perf_counter()
v = clvkit.customer_value(pn, gg, rfm, horizon="52W", period="4W", annual_discount_rate=0.1,
                          method="@METHOD@", random_seed=1)
sec = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
e = v.equity_interval(0.9)
print("@@" + json.dumps({"seconds": sec, "peak": peak, "before": before,
                         "equity": float(e["mean"]), "lo": float(e["lower"]),
                         "hi": float(e["upper"])}))
"""


def scale_section(n: int) -> list[str]:
    head = [
        "",
        f"## Pareto/NBD customer value at scale: {n:,} customers x 1,000 draws",
        "",
        f"A BG/NBD-simulated base of {n:,} customers (`datasets.simulate`, 78 weeks; its "
        "summary is not timed) valued with a Pareto/NBD posterior of 1,000 draws (`from_params`, "
        "5% log-normal jitter around r 2, alpha 8, s 0.6, beta 60) and a Gamma-Gamma one; 52 "
        "weeks in 4-week periods at 10% a year, all cores. Fresh process per method; peak is "
        f"`ru_maxrss` (after loading the data in brackets). Target: under {TARGET_GB:g} GB.",
        "",
        "| method | seconds | peak RSS GB (before the call) | vs target | equity (90% interval) |",
        "|---|---:|---:|---|---|",
    ]
    rows = []
    for method in ("expected", "simulate"):
        proc = subprocess.run(
            [sys.executable, "-c", _SCALE.replace("@METHOD@", method).replace("@N@", str(n))], capture_output=True,
            text=True, check=False, env=dict(os.environ, PYTHONWARNINGS="ignore"),
        )  # fmt: skip
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@")]
        if proc.returncode != 0 or not lines:
            rows.append(f"| {method} | failed: {' '.join(proc.stderr.splitlines()[-1:])} | | | |")
            continue
        r = json.loads(lines[-1][2:])
        met = "met" if r["peak"] < TARGET_GB else "NOT met"
        rows.append(
            f"| {method} | {r['seconds']:.1f} | {r['peak']:.2f} ({r['before']:.2f}) | {met} | "
            f"{r['equity']:,.0f} [{r['lo']:,.0f}, {r['hi']:,.0f}] |"
        )
        print(rows[-1], flush=True)
    return [*head, *rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=420.0)
    parser.add_argument("--skip-scale", action="store_true")
    parser.add_argument(
        "--only-scale", action="store_true", help="run part 3 only (it writes its own file)"
    )
    parser.add_argument("--scale-n", type=int, default=1_000_000)
    parser.add_argument("--fit-rows-from", help="reuse the fit rows printed by an earlier run")
    parser.add_argument(
        "--clvkit-timeout", type=float, default=None, help="stop clvkit's fits after this"
    )
    args = parser.parse_args()
    if not args.only_scale:
        _write(RESULT, [*fits(args.runs, args.timeout, args.clvkit_timeout, args.fit_rows_from),
                        *clv_section()], "Pareto/NBD, MBG/NBD and BG/NBD against their peers")  # fmt: skip
    if args.only_scale or not args.skip_scale:
        _write(SCALE_RESULT, scale_section(args.scale_n), "Pareto/NBD at scale")
    return 0


def _write(path: Path, sections: list[str], title: str) -> None:
    """``sections`` under the machine, versions and load, written atomically to ``path``."""
    load1, load5, _ = os.getloadavg()
    text = [
        f"# Purchase models: {title}",
        "",
        f"- Machine: {machine()}",
        "- Versions: "
        + versions(["clvkit", "numpy", "pymc", "nutpie", "numba", "lifetimes", "pymc-marketing"]),
        "",
        *sections,
        "",
        f"Load average at the end: {load1:.1f} (1 min) / {load5:.1f} (5 min) (2 cores: a load "
        "above 2 inflates the timings).",
        "",
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text("\n".join(text))
    tmp.replace(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    raise SystemExit(main())
