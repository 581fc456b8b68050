"""Benchmark covariates and segments (issue 17): BG/NBD with covariates against pymc-marketing,
and a million customers in 20 segments.

Two parts, each case in a fresh process (interpreter start + imports + data + compile + work):

1. ``--customers`` (default 100,000) BG/NBD customers simulated here with known effects of
   3 categorical covariates (channel 5 levels x region 2 x device 2: 20 segments) and 2
   continuous ones (age, log first amount) on the purchase rate (``alpha``) and on dropout
   (``a``, ``b``): clvkit's ``with_covariates("bgnbd", ...)`` NUTS (4 chains x (1000 tune +
   1000 draws)) against pymc-marketing's ``BetaGeoModel`` with the same 8 design columns as
   ``purchase_covariate_cols`` and ``dropout_covariate_cols`` (same links: alpha exp(-g'z),
   a exp(g_a'z), b exp(g_b'z)), NUTS with the same chains, tune and draws (``--peer-sampler``:
   nutpie (default) or PyMC's; only the free parameters stored), stopped after
   ``--timeout``: wall time, fit time, ESS per second of fit and the coefficients side by side
   with the simulated truth. Target for clvkit: under 60 s.
2. ``--big`` (default 1,000,000) customers in 20 segments (the same simulation; the segment
   is the channel x region x device cell): a hierarchical-segment BG/NBD (``segment=``, NUTS
   4 chains x (1000 tune + 250 draws) = 1,000 draws) and a Gamma-Gamma, then CLV and equity by
   segment (``customer_value(..., by="segment")`` where available, else one
   ``customer_value`` per segment): seconds per step and peak resident memory
   (``ru_maxrss``).

Histories are in days (recency and T in weeks at 1/7 resolution), as a daily log gives, so the
compressed (class, history) rows are those of real data. Priors differ: both put Normal(0, 1)
on the coefficients; r, alpha, a, b have each package's defaults.

Usage: ``python benchmarks/bench_covariates.py [--customers 100000] [--big 1000000]
[--timeout 1800] [--peer-sampler nutpie|pymc] [--skip-peer] [--skip-big]``; writes
``benchmarks/results/covariates.md``. Run it alone on a quiet machine.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from _fresh import fresh_run
from _machine import machine, versions

HERE = Path(__file__).resolve().parent
RESULT = HERE / "results" / "covariates.md"
TARGET_NUTS = 60.0

#: The simulated truth: base parameters and, per linked parameter, the effect of each design
#: column (levels against the first, age per year from its mean, log amount per unit).
DESIGN = ["channel[b]", "channel[c]", "channel[d]", "channel[e]", "region[south]",
          "device[mobile]", "age", "log_amount"]  # fmt: skip
TRUTH = {
    "alpha": [0.3, -0.2, 0.5, 0.1, 0.2, -0.15, 0.01, 0.3],  # purchase: alpha_i = alpha e^-g'z
    "a": [0.2, 0.0, -0.3, 0.1, 0.0, 0.2, 0.0, -0.1],  # dropout: a_i = a e^g'z
    "b": [-0.1, 0.2, 0.1, 0.0, 0.15, 0.0, 0.005, 0.2],  # dropout: b_i = b e^g'z
}
BASE = {"r": 0.8, "alpha": 6.0, "a": 0.8, "b": 3.0}

_DATA = """
import numpy as np, pandas as pd
def simulate(n, seed):
    rng = np.random.default_rng(seed)
    channel = rng.choice(list("abcde"), n, p=[0.35, 0.25, 0.2, 0.12, 0.08])
    region = rng.choice(["north", "south"], n, p=[0.6, 0.4])
    device = rng.choice(["desktop", "mobile"], n, p=[0.55, 0.45])
    age = rng.normal(40.0, 12.0, n)
    log_amount = rng.normal(3.2, 0.7, n)
    z = np.column_stack([channel == "b", channel == "c", channel == "d", channel == "e",
                         region == "south", device == "mobile", age - age.mean(),
                         log_amount - log_amount.mean()]).astype(float)
    truth, base = @TRUTH@, @BASE@
    lam = rng.gamma(base["r"], 1.0 / (base["alpha"] * np.exp(-z @ truth["alpha"])))
    p = rng.beta(base["a"] * np.exp(z @ truth["a"]), base["b"] * np.exp(z @ truth["b"]))
    T = rng.integers(182, 547, n) / 7.0  # first purchases over a year, in days
    n_T = rng.poisson(lam * T)  # purchases the rate allows in (0, T]
    x = np.minimum(rng.geometric(p), n_T)  # dropout after each repeat purchase with prob p
    # the x-th of n_T uniform times: T * Beta(x, n_T - x + 1); whole days
    tx = np.where(x > 0, T * rng.beta(np.maximum(x, 1), np.maximum(n_T - x, 0) + 1), 0.0)
    tx = np.minimum(np.ceil(tx * 7.0) / 7.0, T)  # the day of the last purchase
    nu = rng.gamma(4.0, 1.0 / 15.0, n)  # Gamma-Gamma spend: p 6, q 4, v 15
    spend = np.where(x > 0, rng.gamma(6.0 * np.maximum(x, 1)) / (nu * np.maximum(x, 1)), 0.0)
    rfm = pd.DataFrame({"frequency": x.astype(float), "recency": tx, "T": T,
                        "monetary_value": spend, "channel": channel, "region": region,
                        "device": device, "age": age, "log_amount": log_amount},
                       index=pd.Index(np.arange(n), name="customer_id"))
    rfm["segment"] = rfm["channel"] + "-" + rfm["region"] + "-" + rfm["device"]
    rfm.attrs["time_unit"] = "W"
    return rfm
"""

_COLUMNS = ["channel", "region", "device", "age", "log_amount"]
_REFERENCE = {"channel": "a", "region": "north", "device": "desktop"}

_CLVKIT = (
    """
import json, time; t0 = time.perf_counter()
import numpy as np
import clvkit
"""
    + _DATA
    + """
rfm = simulate(@N@, 17)
t1 = time.perf_counter()
m = clvkit.with_covariates("bgnbd", @COLUMNS@, reference=@REFERENCE@)
m.fit(rfm, chains=@CHAINS@, tune=@TUNE@, draws=@DRAWS@, random_seed=1, progressbar=False)
t2 = time.perf_counter()
d = m.diagnostics()
post = m.posterior_
coef = {}
for p in ("alpha", "a", "b"):
    v = post[f"coef_{p}"].values.reshape(-1, post[f"coef_{p}"].shape[-1])
    coef[p] = [[float(v[:, j].mean()), float(np.quantile(v[:, j], 0.05)),
                float(np.quantile(v[:, j], 0.95))] for j in range(v.shape[1])]
names = list(m.spec.terms.names)
print("@@" + json.dumps({"total": t2 - t0, "fit": t2 - t1, "max_rhat": d["max_rhat"],
                         "min_ess_bulk": d["min_ess_bulk"], "divergences": d["divergences"],
                         "coef": coef, "names": names}))
"""
)

_PEER = (
    """
import json, time; t0 = time.perf_counter()
import numpy as np, pandas as pd
import arviz as az
from pymc_marketing.clv import BetaGeoModel
"""
    + _DATA
    + """
rfm = simulate(@N@, 17)
cols = ["channel_b", "channel_c", "channel_d", "channel_e", "region_south", "device_mobile",
        "age_c", "log_amount_c"]
data = pd.DataFrame({"customer_id": rfm.index.to_numpy(), "frequency": rfm["frequency"],
                     "recency": rfm["recency"], "T": rfm["T"]}).reset_index(drop=True)
for lv in "bcde":
    data[f"channel_{lv}"] = (rfm["channel"].to_numpy() == lv).astype(float)
data["region_south"] = (rfm["region"].to_numpy() == "south").astype(float)
data["device_mobile"] = (rfm["device"].to_numpy() == "mobile").astype(float)
data["age_c"] = (rfm["age"] - rfm["age"].mean()).to_numpy()
data["log_amount_c"] = (rfm["log_amount"] - rfm["log_amount"].mean()).to_numpy()
t1 = time.perf_counter()
model = BetaGeoModel(data=data, model_config={"purchase_covariate_cols": cols,
                                              "dropout_covariate_cols": cols})
model.build_model()
free = [v.name for v in model.model.free_RVs]
idata = model.fit(chains=@CHAINS@, tune=@TUNE@, draws=@DRAWS@, random_seed=1,
                  progressbar=False, nuts_sampler="@SAMPLER@", var_names=free)
t2 = time.perf_counter()
post = idata.posterior[free]
coef = {}
for p, var in (("alpha", "purchase_coefficient_alpha"), ("a", "dropout_coefficient_a"),
               ("b", "dropout_coefficient_b")):
    v = post[var].values.reshape(-1, post[var].shape[-1])
    coef[p] = [[float(v[:, j].mean()), float(np.quantile(v[:, j], 0.05)),
                float(np.quantile(v[:, j], 0.95))] for j in range(v.shape[1])]
div = int(idata.sample_stats["diverging"].sum()) if "diverging" in idata.sample_stats else -1
print("@@" + json.dumps({"total": t2 - t0, "fit": t2 - t1,
                         "max_rhat": float(az.rhat(post).to_array().max()),
                         "min_ess_bulk": float(az.ess(post).to_array().min()),
                         "divergences": div, "coef": coef}))
"""
)

_BIG = (
    """
import inspect, json, resource, time
import numpy as np
import clvkit
def peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9
"""
    + _DATA
    + """
t0 = time.perf_counter()
rfm = simulate(@N@, 23)
t1 = time.perf_counter()
m = clvkit.with_covariates("bgnbd", segment="segment")
m.fit(rfm, chains=@CHAINS@, tune=@TUNE@, draws=@DRAWS@ // @CHAINS@, random_seed=1,
      progressbar=False)
t2 = time.perf_counter()
gg = clvkit.GammaGamma().fit(rfm, chains=@CHAINS@, tune=@TUNE@, draws=@DRAWS@ // @CHAINS@,
                             random_seed=2, progressbar=False)
t3 = time.perf_counter()
peak_fit = peak()
kw = {"horizon": "52W", "annual_discount_rate": 0.1}
if "by" in inspect.signature(clvkit.customer_value).parameters:
    route = "customer_value(by='segment')"
    v = clvkit.customer_value(m, gg, rfm, by="segment", **kw)
    table = v.group_table()
    groups = {str(k): [float(x) for x in row] for k, row in
              table.select_dtypes("number").iterrows()}
    columns = list(table.select_dtypes("number").columns)
    total = v.equity_interval(0.9)
    total = [float(total["mean"]), float(total["lower"]), float(total["upper"])]
else:
    route = "one customer_value per segment"
    groups, columns, draws = {}, ["customers", "equity", "lower", "upper"], []
    for seg, idx in rfm.groupby("segment").groups.items():
        sub = rfm.loc[idx]
        sub.attrs = dict(rfm.attrs)
        v = clvkit.customer_value(m, gg, sub, **kw)
        e = v.equity_interval(0.9)
        groups[str(seg)] = [len(sub), float(e["mean"]), float(e["lower"]), float(e["upper"])]
    total = None
t4 = time.perf_counter()
d = m.diagnostics()
print("@@" + json.dumps({"simulate": t1 - t0, "fit": t2 - t1, "fit_spend": t3 - t2,
                         "value": t4 - t3, "peak_fit_gb": peak_fit, "peak_gb": peak(),
                         "route": route, "groups": groups, "columns": columns, "total": total,
                         "max_rhat": d["max_rhat"], "min_ess_bulk": d["min_ess_bulk"],
                         "divergences": d["divergences"]}))
"""
)


def _code(template: str, **subs: object) -> str:
    out = template.replace("@TRUTH@", repr(TRUTH)).replace("@BASE@", repr(BASE))
    for key, val in subs.items():
        out = out.replace(f"@{key.upper()}@", str(val))
    return out


def _interval(c: list[float]) -> str:
    return f"{c[0]:.3f} [{c[1]:.3f}, {c[2]:.3f}]"


def part_a(args: argparse.Namespace) -> list[str]:
    kw = {"n": args.customers, "chains": args.chains, "tune": args.tune, "draws": args.draws}
    ours = fresh_run(_code(_CLVKIT, columns=repr(_COLUMNS), reference=repr(_REFERENCE), **kw),
                     args.timeout)  # fmt: skip
    print("clvkit:", {k: v for k, v in ours.items() if k != "coef"}, flush=True)
    peer = {"error": "skipped (--skip-peer)"}
    if not args.skip_peer:
        peer = fresh_run(_code(_PEER, sampler=args.peer_sampler, **kw),
                         args.peer_timeout or args.timeout)  # fmt: skip
        print("pymc-marketing:", {k: v for k, v in peer.items() if k != "coef"}, flush=True)
    head = [
        f"## BG/NBD with 3 categorical + 2 continuous covariates: {args.customers:,} customers",
        "",
        f"Simulated here (seed 17): channel (5 levels), region (2), device (2) = 20 segments, "
        "age and log first amount; known effects on the purchase rate and both dropout "
        f"parameters (8 design columns each). NUTS {args.chains} chains x ({args.tune} tune + "
        f"{args.draws} draws) for both; pymc-marketing `BetaGeoModel` with "
        f"`purchase_covariate_cols` = `dropout_covariate_cols` = the same 8 columns, sampler "
        f"{args.peer_sampler}, only its free parameters stored. Fresh process each; fit = the "
        f"sampling call. Target for clvkit: under {TARGET_NUTS:g} s.",
        "",
        "| package | total | fit | min bulk ESS | ESS / s of fit | max R-hat | divergences |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    rows = []
    for name, res in (("clvkit `with_covariates('bgnbd')`", ours),
                      (f"pymc-marketing `BetaGeoModel` ({args.peer_sampler})", peer)):  # fmt: skip
        if "error" in res:
            rows.append(f"| {name} | {res['error']} (after {res.get('wall', 0):.0f} s) | | | | | |")
            continue
        rows.append(
            f"| {name} | {res['total']:.1f} s | **{res['fit']:.1f} s** | "
            f"{res['min_ess_bulk']:.0f} | {res['min_ess_bulk'] / res['fit']:.1f} | "
            f"{res['max_rhat']:.3f} | {res['divergences']} |"
        )
    if "error" not in ours:
        met = "met" if ours["total"] < TARGET_NUTS else "NOT met"
        rows.append(f"\nclvkit's total against the {TARGET_NUTS:g} s target: {met}.")
    coef = [
        "",
        "Coefficients (posterior mean [90% interval]) against the simulated truth:",
        "",
        "| parameter | column | truth | clvkit | pymc-marketing |",
        "|---|---|---:|---|---|",
    ]
    for p in ("alpha", "a", "b"):
        for j, col in enumerate(DESIGN):
            a = _interval(ours["coef"][p][j]) if "coef" in ours else ""
            b = _interval(peer["coef"][p][j]) if "coef" in peer else ""
            coef.append(f"| coef_{p} | {col} | {TRUTH[p][j]:g} | {a} | {b} |")
    if "names" in ours:
        assert ours["names"] == DESIGN, ours["names"]
    return [*head, *rows, *coef]


def part_b(args: argparse.Namespace) -> list[str]:
    chains = args.big_chains
    tune = args.big_tune if args.big_tune is not None else args.tune
    load = os.getloadavg()[0]
    res = fresh_run(_code(_BIG, n=args.big, chains=chains, tune=tune, draws=args.big_draws),
                    args.timeout)  # fmt: skip
    print("big:", {k: v for k, v in res.items() if k != "groups"}, flush=True)
    head = [
        "",
        f"## {args.big:,} customers in 20 segments: fit, CLV and equity by segment",
        "",
        "The same simulation (seed 23); the segment is the channel x region x device cell. "
        f"BG/NBD with hierarchical segments (`with_covariates('bgnbd', segment='segment')`, "
        f"NUTS {chains} chains x ({tune} tune + {args.big_draws // chains} draws) = "
        f"{args.big_draws:,} draws) and Gamma-Gamma (NUTS, same draws); 52-week CLV at 10% a "
        f"year; peak is `ru_maxrss` of the process. Load average (1 min) at the start: "
        f"{load:.1f}.",
        "",
    ]
    if "error" in res:
        return [*head, f"Failed: {res['error']} (after {res.get('wall', 0):.0f} s)."]
    lines = [
        *head,
        "| step | seconds |",
        "|---|---:|",
        f"| simulate {args.big:,} customers | {res['simulate']:.1f} |",
        f"| fit BG/NBD with segments (NUTS) | {res['fit']:.1f} |",
        f"| fit Gamma-Gamma (NUTS) | {res['fit_spend']:.1f} |",
        f"| CLV + equity by segment ({res['route']}) | {res['value']:.1f} |",
        f"| wall (fresh process) | {res['wall']:.1f} |",
        "",
        f"Peak resident memory: {res['peak_gb']:.2f} GB ({res['peak_fit_gb']:.2f} GB after the "
        f"fits). Segment fit: max R-hat {res['max_rhat']:.3f}, min bulk ESS "
        f"{res['min_ess_bulk']:.0f}, divergences {res['divergences']}.",
        "",
        "| segment | " + " | ".join(res["columns"]) + " |",
        "|---|" + "---:|" * len(res["columns"]),
    ]
    for seg, vals in res["groups"].items():
        cells = (f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}" for v in vals)
        lines.append(f"| {seg} | " + " | ".join(cells) + " |")
    return lines


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--customers", type=int, default=100_000)
    ap.add_argument("--big", type=int, default=1_000_000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--big-draws", type=int, default=1000, help="posterior draws in part 2")
    ap.add_argument("--big-chains", type=int, default=4, help="chains in part 2")
    ap.add_argument("--big-tune", type=int, default=None, help="tuning in part 2 (--tune)")
    ap.add_argument("--peer-timeout", type=float, default=None, help="(--timeout)")
    ap.add_argument("--skip-a", action="store_true", help="part 2 only (keeps nothing of 1)")
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--peer-sampler", choices=["nutpie", "pymc"], default="nutpie")
    ap.add_argument("--skip-peer", action="store_true")
    ap.add_argument("--skip-big", action="store_true")
    args = ap.parse_args()
    load = os.getloadavg()[0]
    sections = [] if args.skip_a else part_a(args)
    if not args.skip_big:
        sections += part_b(args)
    load1, load5, _ = os.getloadavg()
    text = [
        "# Covariates and segments: BG/NBD against pymc-marketing, and a million customers",
        "",
        f"- Machine: {machine()}",
        "- Versions: " + versions(["clvkit", "numpy", "numba", "nutpie", "pymc", "pymc-marketing"]),
        f"- Load average (1 min) at the start: {load:.1f}",
        "",
        *sections,
        "",
        f"Load average at the end: {load1:.1f} (1 min) / {load5:.1f} (5 min) (2 cores: a load "
        "above 2 inflates the timings).",
        "",
    ]
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULT.with_suffix(".md.tmp")
    tmp.write_text("\n".join(text))
    tmp.replace(RESULT)
    print("\n".join(text))
    print(json.dumps({"wrote": str(RESULT)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
