"""A forest plot of a covariate model's effects (``model.effects()``): each covariate's and
segment's multiplier of a process mean with its interval, on a log axis, grouped by process."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from clvkit.errors import ClvkitError
from clvkit.plots.common import axes

__all__ = ["multiplier_ticks", "plot_effects"]

#: Marker colour by kind of row.
KIND_COLOURS = {"covariate": "tab:blue", "segment": "tab:orange", "spread": "tab:grey"}
_NEEDED = ["kind", "coefficient", "process", "multiplier", "lower", "upper"]


def _effects_table(obj: Any, prob: float) -> pd.DataFrame:
    if isinstance(obj, pd.DataFrame):
        missing = [c for c in _NEEDED if c not in obj]
        if missing:
            raise ClvkitError(
                f"argument 'effects' lacks columns {missing}. Suggestion: pass a fitted "
                "covariate model or its model.effects() table."
            )
        return obj
    if callable(getattr(obj, "effects", None)):
        return obj.effects(prob)
    raise ClvkitError(
        f"argument 'effects' must be a covariate model or its effects table, got "
        f"{type(obj).__name__}. Suggestion: pass clvkit.with_covariates(...).fit(rfm) or its "
        ".effects()."
    )


def _label(row: pd.Series) -> str:
    if row["kind"] == "spread":
        return f"{row['coefficient'].removesuffix(' (spread)')}: 1 sd between segments"
    return str(row["coefficient"])


def multiplier_ticks(lo: float, hi: float) -> list[float]:
    """Tick values a reader can name on a log axis of multipliers from ``lo`` to ``hi``: the
    finest ladder (0.67, 0.75, 0.8, 0.9, 1, 1.1, 1.25, 1.5, 2, 3, ...) of which 3 to 10 values
    fall in the range, then coarser ones (1-1.5-2-3-5, 1-2-5, powers of 10): an effect of 1.6x
    gets ticks around it, not only at 1 and 2."""
    e0, e1 = int(np.floor(np.log10(lo))) - 1, int(np.ceil(np.log10(hi))) + 1
    decades = [10.0**e for e in range(e0, e1 + 1)]

    def ladder(steps: tuple[float, ...], extra: tuple[float, ...] = ()) -> list[float]:
        return sorted({round(m * d, 12) for d in decades for m in steps} | set(extra))

    ladders = [
        ladder((1.0, 1.1, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0), (0.67, 0.75, 0.9)),
        ladder((1.0, 1.5, 2.0, 3.0, 5.0), (0.67, 0.75)),
        ladder((1.0, 2.0, 5.0)),
        ladder((1.0,)),
    ]
    for values in ladders:
        ticks = [v for v in values if lo <= v <= hi]
        if 3 <= len(ticks) <= 10:
            return ticks
    return [v for v in ladders[-1] if lo <= v <= hi] or [1.0]


def plot_effects(effects: Any, ax: Any = None, *, prob: float = 0.9) -> Any:
    """Forest plot: each effect's multiplier of a process mean with its central interval, on a
    log axis with a line at 1 (no effect), one group of rows per process.

    Parameters
    ----------
    effects : covariate model or pandas.DataFrame
        A fitted :func:`clvkit.with_covariates` model or its ``effects()`` table.
    ax : matplotlib.axes.Axes, optional
    prob : float
        Interval probability when ``effects`` is a model.

    Returns
    -------
    matplotlib.axes.Axes
    """
    t = _effects_table(effects, prob)
    t = t[np.isfinite(t["multiplier"].to_numpy(dtype=float))]
    if t.empty:
        raise ClvkitError(
            "argument 'effects' has no effect with a finite multiplier to plot. Suggestion: "
            "check the model's fit (model.effects() says why)."
        )
    ax = axes(ax)
    processes = list(dict.fromkeys(t["process"]))
    y, ticks, labels, header = 0.0, [], [], []
    for proc in processes:
        rows = t[t["process"] == proc]
        header.append((y, proc))
        y -= 1.0
        for _, row in rows.iterrows():
            m, lo, hi = (float(row[c]) for c in ("multiplier", "lower", "upper"))
            colour = KIND_COLOURS.get(str(row["kind"]), "black")
            ax.errorbar(m, y, xerr=[[max(m - lo, 0.0)], [max(hi - m, 0.0)]], fmt="o",
                        color=colour, capsize=3, ms=5)  # fmt: skip
            ticks.append(y)
            labels.append(_label(row))
            y -= 1.0
        y -= 0.5
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", lw=1, ls="--")
    ax.set_yticks(ticks, labels, fontsize=8)
    for i, (y0, proc) in enumerate(header):
        if i:  # a line between processes
            ax.axhline(y0 + 0.5, color="lightgrey", lw=0.8)
        ax.text(0.01, y0, proc, transform=ax.get_yaxis_transform(), fontweight="bold",
                va="center", ha="left", fontsize=9)  # fmt: skip
    ax.set_ylim(y + 0.5, 0.8)
    lo = np.nanmin(t["lower"].to_numpy(dtype=float))
    hi = np.nanmax(t["upper"].to_numpy(dtype=float))
    lo, hi = min(lo, 1.0), max(hi, 1.0)
    pad = (hi / lo) ** 0.08 if hi > lo else 1.5
    ax.set_xlim(lo / pad, hi * pad)
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

    ax.xaxis.set_major_locator(FixedLocator(multiplier_ticks(lo / pad, hi * pad)))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax.xaxis.set_minor_locator(LogLocator(base=10, subs=tuple(np.arange(1.0, 10.0))))
    ax.xaxis.set_minor_formatter(NullFormatter())
    for kind, colour in KIND_COLOURS.items():
        if (t["kind"] == kind).any():
            ax.plot([], [], "o", color=colour, label=kind)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=3, fontsize=8, frameon=False)
    ax.set(xlabel="multiplier of the process mean (log scale; 1 = no effect)",
           title="Effects on each process (vs the baseline customer)")  # fmt: skip
    return ax
