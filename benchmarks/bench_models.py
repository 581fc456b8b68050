"""Benchmark clvkit's BetaGeo / GammaGamma fits against pymc-marketing and lifetimes on CDNOW.

Every NUTS timing is a fresh Python process (import + compile + sample), 4 chains x (1000 tune +
1000 draws), median of ``--runs`` runs. MLE timings are in-process (fit call only, median of 20)
plus one fresh-process wall time. Also reports gradient evaluations per second of each
log-density implementation and the compression ratio of the sufficient statistics.

Usage::

    python benchmarks/bench_models.py            # writes benchmarks/results/models.md
    python benchmarks/bench_models.py --runs 1   # quicker

Needs the ``bench`` extra (pymc-marketing). Shares the machine: run it once, not in a loop.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from _fresh import fresh_run

HERE = Path(__file__).resolve().parent
RESULT = HERE / "results" / "models.md"
N_EVAL = 2000

_LOAD = """
from clvkit.datasets import cdnow_calibration_summary
rfm = cdnow_calibration_summary()
"""

CASES = {
    "clvkit BetaGeo NUTS (nutpie, numba kernel; default)": """
import time; t0 = time.perf_counter()
from clvkit.models import BetaGeo
{load}
t1 = time.perf_counter()
m = BetaGeo().fit(rfm, random_seed=1, progressbar=False, sampler="nutpie")
d = m.diagnostics()
""",
    "clvkit BetaGeo NUTS, then idata_ (imports ArviZ)": """
import time; t0 = time.perf_counter()
from clvkit.models import BetaGeo
{load}
t1 = time.perf_counter()
m = BetaGeo().fit(rfm, random_seed=1, progressbar=False, sampler="nutpie")
d = m.diagnostics()
idata = m.idata_
""",
    "clvkit BetaGeo NUTS (nutpie on PyMC graph, numba backend)": """
import time; t0 = time.perf_counter()
from clvkit.models import BetaGeo
{load}
t1 = time.perf_counter()
m = BetaGeo().fit(rfm, random_seed=1, progressbar=False, sampler="nutpie-pytensor")
d = m.diagnostics()
""",
    "clvkit BetaGeo NUTS (PyMC sampler)": """
import time; t0 = time.perf_counter()
from clvkit.models import BetaGeo
{load}
t1 = time.perf_counter()
m = BetaGeo().fit(rfm, random_seed=1, progressbar=False, sampler="pymc")
d = m.diagnostics()
""",
    "pymc-marketing BetaGeoModel (PyMC sampler, defaults)": """
import time; t0 = time.perf_counter()
from pymc_marketing.clv import BetaGeoModel
import arviz as az
{load}
data = rfm.reset_index()[["customer_id", "frequency", "recency", "T"]]
t1 = time.perf_counter()
model = BetaGeoModel(data=data)
idata = model.fit(chains=4, draws=1000, tune=1000, random_seed=1, progressbar=False)
post = idata.posterior[["r", "alpha", "a", "b"]]
d = {{"max_rhat": float(az.rhat(post).to_array().max()),
     "min_ess_bulk": float(az.ess(post).to_array().min())}}
""",
    "clvkit GammaGamma NUTS (nutpie, numba kernel; default)": """
import time; t0 = time.perf_counter()
from clvkit.models import GammaGamma
{load}
t1 = time.perf_counter()
m = GammaGamma().fit(rfm, random_seed=1, progressbar=False)
d = m.diagnostics()
""",
    "pymc-marketing GammaGammaModel (PyMC sampler, defaults)": """
import time; t0 = time.perf_counter()
from pymc_marketing.clv import GammaGammaModel
import arviz as az
{load}
rep = rfm[rfm["frequency"] > 0].reset_index()[["customer_id", "frequency", "monetary_value"]]
t1 = time.perf_counter()
model = GammaGammaModel(data=rep)
idata = model.fit(chains=4, draws=1000, tune=1000, random_seed=1, progressbar=False)
post = idata.posterior[["p", "q", "v"]]
d = {{"max_rhat": float(az.rhat(post).to_array().max()),
     "min_ess_bulk": float(az.ess(post).to_array().min())}}
""",
    "clvkit BetaGeo MLE (fresh process)": """
import time; t0 = time.perf_counter()
from clvkit.models import BetaGeo
{load}
t1 = time.perf_counter()
m = BetaGeo().fit(rfm, method="mle")
d = {{}}
""",
    "lifetimes BetaGeoFitter (fresh process)": """
import time; t0 = time.perf_counter()
from lifetimes import BetaGeoFitter
{load}
x, tx, T = (rfm[c].to_numpy() for c in ("frequency", "recency", "T"))
t1 = time.perf_counter()
BetaGeoFitter().fit(x, tx, T)
d = {{}}
""",
}

_TAIL = """
t2 = time.perf_counter()
import json
print("@@" + json.dumps({{"import_load": t1 - t0, "fit": t2 - t1,
                          "max_rhat": d.get("max_rhat"), "min_ess_bulk": d.get("min_ess_bulk")}}))
"""


def run_case(code: str) -> dict:
    """Run one case in a fresh interpreter; return wall time and the child's own timings."""
    return fresh_run(code.format(load=_LOAD) + _TAIL.format())


def in_process() -> list[str]:
    """MLE fit times (median of 20), gradient evaluations per second, compression ratios."""
    import numpy as np
    import pymc as pm
    import pytensor.tensor as pt
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    from clvkit.datasets import cdnow_calibration_summary
    from clvkit.inference import sampling as _sampling
    from clvkit.inference.estimator import resolve_priors
    from clvkit.models import BetaGeo, GammaGamma
    from clvkit.models.bgnbd.likelihood import bg_loglik_grad, compress_bg
    from clvkit.models.bgnbd.model import _bg_pymc
    from clvkit.models.gamma_gamma.likelihood import compress_gg, gg_loglik_grad
    from clvkit.models.gamma_gamma.model import _gg_pymc

    rfm = cdnow_calibration_summary()
    x, tx, T = (rfm[c].to_numpy() for c in ("frequency", "recency", "T"))
    rep = rfm[rfm["frequency"] > 0]
    xr_, m = rep["frequency"].to_numpy(), rep["monetary_value"].to_numpy()

    def med(fn, n=20):
        times = []
        for _ in range(n):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        return statistics.median(times)

    lines = ["", "## MLE fit time (in process, median of 20, fit call only)", ""]
    lines += ['| model | clvkit `method="mle"` | lifetimes | ratio |', "|---|---|---|---|"]
    t_bg = med(lambda: BetaGeo().fit(rfm, method="mle"))
    t_lt = med(lambda: BetaGeoFitter().fit(x, tx, T))
    lines.append(f"| BG/NBD | {t_bg * 1e3:.1f} ms | {t_lt * 1e3:.1f} ms | {t_lt / t_bg:.1f}x |")
    t_gg = med(lambda: GammaGamma().fit(rfm, method="mle"))
    t_lg = med(lambda: GammaGammaFitter().fit(xr_, m))
    lines.append(
        f"| Gamma-Gamma | {t_gg * 1e3:.1f} ms | {t_lg * 1e3:.1f} ms | {t_lg / t_gg:.1f}x |"
    )

    s_bg, s_gg = compress_bg(x, tx, T), compress_gg(xr_, m)
    lines += ["", "## Compression of the sufficient statistics (CDNOW)", ""]
    lines += ["| model | customers | rows | distinct x | ratio |", "|---|---|---|---|---|"]
    for name, s in (("BG/NBD", s_bg), ("Gamma-Gamma", s_gg)):
        ratio = s.n_customers / s.n_rows
        lines.append(
            f"| {name} | {s.n_customers} | {s.n_rows} | {s.x_values.size} | {ratio:.2f}x |"
        )

    lines += ["", "## Log-density + gradient evaluations per second (CDNOW, one thread)", ""]
    lines += ["| implementation | BG/NBD | Gamma-Gamma |", "|---|---|---|"]
    th_bg, th_gg = np.log([0.24, 4.4, 0.8, 2.4]), np.log([6.2, 3.7, 15.0])
    rates = {}
    k_bg = _sampling.kernel_logp(
        "BetaGeo", s_bg, resolve_priors(BetaGeo._default_priors, None), BetaGeo._param_names
    )
    k_gg = _sampling.kernel_logp(
        "GammaGamma",
        s_gg,
        resolve_priors(GammaGamma._default_priors, None),
        GammaGamma._param_names,
    )
    rates["numba kernel (clvkit default)"] = (k_bg, th_bg, k_gg, th_gg)
    rates["numpy (MLE path)"] = (
        lambda t: bg_loglik_grad(t, s_bg),
        th_bg,
        lambda t: gg_loglik_grad(t, s_gg),
        th_gg,
    )
    for label, mode in (("PyMC graph, C backend", "FAST_RUN"), ("PyMC graph, numba", "NUMBA")):
        fns = []
        for build, s, cls in ((_bg_pymc, s_bg, BetaGeo), (_gg_pymc, s_gg, GammaGamma)):
            model = build(pm, pt, s, resolve_priors(cls._default_priors, None))
            f = model.logp_dlogp_function(ravel_inputs=True, mode=mode)
            f.set_extra_values({})
            fns.append(f)
        rates[label] = (fns[0], th_bg, fns[1], th_gg)
    for label, (f_bg, t_bg_, f_gg, t_gg_) in rates.items():
        f_bg(t_bg_)
        f_gg(t_gg_)
        r_bg = N_EVAL / (med(lambda f=f_bg, t=t_bg_: [f(t) for _ in range(N_EVAL)], 3))
        r_gg = N_EVAL / (med(lambda f=f_gg, t=t_gg_: [f(t) for _ in range(N_EVAL)], 3))
        lines.append(f"| {label} | {r_bg:,.0f}/s | {r_gg:,.0f}/s |")
    return lines


def _ratios(measured: dict[str, tuple[float, float | None]]) -> list[str]:
    """Peer / clvkit ratios of wall time and of wall time per effective sample, with targets."""
    pairs = [
        ("BetaGeo", "clvkit BetaGeo NUTS (nutpie, numba kernel; default)",
         "pymc-marketing BetaGeoModel (PyMC sampler, defaults)", 5.0),
        ("GammaGamma", "clvkit GammaGamma NUTS (nutpie, numba kernel; default)",
         "pymc-marketing GammaGammaModel (PyMC sampler, defaults)", 2.0),
        ("BetaGeo MLE", "clvkit BetaGeo MLE (fresh process)",
         "lifetimes BetaGeoFitter (fresh process)", None),
    ]  # fmt: skip
    out = ["", "### Ratios (same run)", "", "| model | peer / clvkit wall | per effective sample | "
           "clvkit wall vs target |", "|---|---|---|---|"]  # fmt: skip
    for label, ours, peer, target in pairs:
        if ours not in measured or peer not in measured:
            continue
        (w0, e0), (w1, e1) = measured[ours], measured[peer]
        per_ess = f"{(w1 / e1) / (w0 / e0):.1f}x" if e0 and e1 else "-"
        verdict = "-" if target is None else (
            f"{w0:.2f} s vs < {target:g} s: {'met' if w0 < target else 'NOT met'}"
        )  # fmt: skip
        out.append(f"| {label} | {w1 / w0:.1f}x | {per_ess} | {verdict} |")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--only", default="", help="substring filter on case names (prints, does not write)"
    )
    args = parser.parse_args()
    load_before = os.getloadavg()
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    rows = []
    measured: dict[str, tuple[float, float | None]] = {}
    for name, code in CASES.items():
        if args.only and args.only not in name:
            continue
        runs = [run_case(code) for _ in range(args.runs)]
        ok = [r for r in runs if "error" not in r]
        if not ok:
            rows.append(f"| {name} | failed: {runs[0]['error']} | | | | |")
            print(name, "FAILED", runs[0]["error"], flush=True)
            continue
        wall = statistics.median(r["wall"] for r in ok)
        fit = statistics.median(r["fit"] for r in ok)
        imp = statistics.median(r["import_load"] for r in ok)
        rhat = ok[0].get("max_rhat")
        ess = ok[0].get("min_ess_bulk")
        diag = f"{rhat:.3f} / {ess:.0f}" if rhat is not None else "-"
        all_walls = ", ".join(f"{r['wall']:.1f}" for r in ok)
        rows.append(
            f"| {name} | **{wall:.2f} s** | {imp:.2f} s | {fit:.2f} s | {diag} | {all_walls} |"
        )
        measured[name] = (wall, ess)
        print(rows[-1], flush=True)
    extra = _ratios(measured) + (in_process() if not args.only else [])
    load_after = os.getloadavg()
    with open("/proc/cpuinfo") as fh:
        cpus = sum(1 for ln in fh if ln.startswith("processor"))
    text = [
        "# Model fitting benchmark (CDNOW 39-week calibration, 2,357 customers)",
        "",
        f"Run {started} with `benchmarks/bench_models.py --runs {args.runs}` on {cpus} CPUs "
        "shared with other work. Load average (1, 5, 15 min) before: "
        f"{load_before[0]:.2f}, {load_before[1]:.2f}, {load_before[2]:.2f}; after: "
        f"{load_after[0]:.2f}, {load_after[1]:.2f}, {load_after[2]:.2f}.",
        "",
        "Fresh process per run: wall = interpreter start + imports + data + compile + 4 chains x "
        "(1000 tune + 1000 draws). Median of the runs; diagnostics from the first run.",
        "",
        "| case | wall (median) | import + data | fit | max R-hat / min bulk ESS | all runs (s) |",
        "|---|---|---|---|---|---|",
        *rows,
        *extra,
        "",
    ]
    if args.only:  # partial runs do not overwrite the recorded results
        print("\n".join(text))
        return
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULT.with_suffix(".md.tmp")
    tmp.write_text("\n".join(text))
    tmp.replace(RESULT)
    print(f"wrote {RESULT}")


if __name__ == "__main__":
    main()
