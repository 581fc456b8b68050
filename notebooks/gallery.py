"""Render every clvkit plot on the CDNOW sample into a folder.

Usage: ``python notebooks/gallery.py [OUT_DIR] [--nuts]``. By default the BG/NBD and Gamma-Gamma
models are the published maximum-likelihood estimates (fast; the CLV and equity spread is then
process noise only, from ``clvkit.value.customer_value(method="simulate")`` repeated on the point
estimate); ``--nuts`` fits both models with NUTS on the calibration window (a few minutes).
"""

from __future__ import annotations

import os
import sys

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import xarray as xr

import clvkit
from clvkit import plots
from clvkit.datasets import cdnow_transactions

# Maximum-likelihood BG/NBD (Fader, Hardie and Lee 2005) and Gamma-Gamma (Fader and Hardie 2013)
# estimates for the CDNOW sample, 39-week calibration.
MLE_BG = {"r": 0.2426, "alpha": 4.4137, "a": 0.7930, "b": 2.4262}
MLE_GG = {"p": 6.25, "q": 3.74, "v": 15.44}


def main(out: str = "gallery", nuts: bool = False) -> list[str]:
    """Write one PNG per plot into ``out`` and return their paths."""
    os.makedirs(out, exist_ok=True)
    log = cdnow_transactions()
    kwargs = {}
    if not nuts:
        kwargs = {"transactions_model": MLE_BG, "spend_model": MLE_GG}
    res = clvkit.backtest(
        log,
        calibration_end="1997-09-30",
        observation_end="1998-06-30",
        amount="amount",
        fit_kwargs={"method": "nuts", "progressbar": False} if nuts else None,
        random_seed=1,
        **kwargs,
    )
    bg = res.transactions_model
    cust = res.customers
    # a frequent buyer for the P(alive) history: repeat purchase ages from the log
    cid = cust.index[cust["frequency"] == 10][0]
    mine = log[log["customer_id"] == cid].drop_duplicates("date")
    ages = ((mine["date"] - mine["date"].min()).dt.days / 7.0).to_numpy()[1:]
    # 52-week CLV and equity from the value layer, valued at the calibration end
    t_post, s_post = bg, res.spend_model
    if not nuts:  # repeat the point estimate: 200 simulated futures per customer
        t_post, s_post = (
            xr.Dataset({k: (("chain", "draw"), np.full((1, 200), val)) for k, val in d.items()})
            for d in (MLE_BG, MLE_GG)
        )
    value = clvkit.customer_value(
        t_post, s_post, res.rfm, horizon="52W", period="4W", annual_discount_rate=0.1,
        method="simulate", keep_draws=True, random_seed=2,
    )  # fmt: skip
    figures = {
        "tracking_cumulative": lambda ax: plots.plot_tracking(res, cumulative=True, ax=ax),
        "tracking_incremental": lambda ax: plots.plot_tracking(res, cumulative=False, ax=ax),
        "retention": lambda ax: plots.plot_retention(res, ax=ax),
        "frequency_ppc": lambda ax: plots.plot_frequency_ppc(res, ax=ax),
        "conditional_expectations": lambda ax: plots.plot_conditional_expectations(res, ax=ax),
        "pit_purchases": lambda ax: plots.plot_pit(res, ax=ax),
        "pit_revenue": lambda ax: plots.plot_pit(res, revenue=True, ax=ax),
        "probability_alive_matrix": lambda ax: plots.plot_probability_alive_matrix(
            bg, T=39.0, ax=ax
        ),
        "expected_purchases_matrix": lambda ax: plots.plot_expected_purchases_matrix(
            bg, t=39.0, T=39.0, ax=ax
        ),
        "probability_alive_history": lambda ax: plots.plot_probability_alive_history(
            bg, ages[ages <= 78], end=78.0, ax=ax
        ),
        "clv_distribution": lambda ax: plots.plot_clv_distribution(value.clv, ax=ax),
        "equity": lambda ax: plots.plot_equity(value.equity, ax=ax),
    }
    paths = []
    for name, draw in figures.items():
        fig, ax = plt.subplots(figsize=(8, 5))
        draw(ax)
        fig.tight_layout()
        path = os.path.join(out, f"{name}.png")
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    for p in main(args[0] if args else "gallery", nuts="--nuts" in sys.argv):
        print(p)
