"""A weighted mixture of purchase models on the model contract.

Each posterior draw of the mixture holds a full draw of every component (the parameters
``"<component>__<param>"``, so every value is a real draw, finite and inside its support) and
the index of the component active in that draw (``"component"``, 0-based, in the order the
components are given). Every primitive splits the draws by active component, calls that
component's own primitive on its draws (one vectorised call per component, so fast paths such
as BG/NBD's compiled ``expected_value`` are kept) and scatters the results back in draw order.
A mixture whose draws all belong to one component gives exactly that component's numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import ClassVar

import numpy as np
import pandas as pd

from clvkit.errors import ClvkitError
from clvkit.models.contract import (
    Cashflow,
    Columns,
    Future,
    Params,
    PMap,
    PurchaseSpec,
    merge_futures,
    n_draws,
    scatter_parts,
    serial_map,
)

__all__ = ["COMPONENT", "SEP", "MixtureSpec", "component_param"]

#: Name of the parameter holding each draw's active component.
COMPONENT = "component"
#: Separator of component label and parameter name in the mixture's parameters.
SEP = "__"


def component_param(label: str, param: str) -> str:
    """The mixture's name of component ``label``'s parameter ``param``: ``"label__param"``."""
    return f"{label}{SEP}{param}"


def check_labels(labels: list[str]) -> None:
    """Component labels are non-empty strings without ``"__"``, unique, not ``"component"``."""
    for lab in labels:
        if not isinstance(lab, str) or not lab or SEP in lab or lab == COMPONENT:
            raise ClvkitError(
                f"argument 'components' has the component name {lab!r}. Suggestion: name "
                f"components with non-empty strings without {SEP!r}, other than {COMPONENT!r} "
                "(e.g. 'bgnbd', 'pnbd')."
            )
    if len(set(labels)) != len(labels):
        raise ClvkitError(
            f"argument 'components' repeats a name: {labels}. Suggestion: give each component "
            "its own name (a dict name -> model)."
        )


class MixtureSpec(PurchaseSpec):
    """A mixture of purchase specs: draw ``j`` follows component ``component[j]``.

    Parameters
    ----------
    components : Mapping[str, PurchaseSpec]
        Component label -> purchase spec (labels name the parameters ``"label__param"``).
    """

    name: ClassVar[str] = "mixture"
    model_name: ClassVar[str] = "ModelMixture"

    def __init__(self, components: Mapping[str, PurchaseSpec]) -> None:
        labels = list(components)
        check_labels(labels)
        for lab, spec in components.items():
            if not isinstance(spec, PurchaseSpec):
                raise ClvkitError(
                    f"component {lab!r} is {spec!r}, not a purchase model. Suggestion: mix "
                    "purchase models only (value them with a spend model separately)."
                )
        self.components: dict[str, PurchaseSpec] = dict(components)
        inner = ", ".join(f"{lab}: {s.label}" for lab, s in self.components.items())
        self.label = f"Mixture ({inner})" if inner else "Mixture"
        names = [
            component_param(lab, p) for lab, s in self.components.items() for p in s.param_names
        ]
        self.param_names = (*names, COMPONENT)
        self.param_support = {
            component_param(lab, p): s.support(p)
            for lab, s in self.components.items()
            for p in s.param_names
        } | {COMPONENT: "real"}
        cols: list[str] = []
        for s in self.components.values():
            cols += [c for c in s.columns if c not in cols]
        self.columns = tuple(cols)
        self.uses_time = True

    def __repr__(self) -> str:
        return f"<MixtureSpec of {list(self.components)}>"

    # ---- splitting draws by component ---------------------------------------------------------
    def active(self, params: Params) -> np.ndarray:
        """Each draw's active component ``(S,)`` as int (``ClvkitError`` if not one of them)."""
        raw = np.asarray(params[COMPONENT], dtype=np.float64).reshape(-1)
        k = len(self.components)
        ok = np.isfinite(raw) & (raw == np.round(raw)) & (raw >= 0) & (raw < k)
        if not ok.all():
            raise ClvkitError(
                f"parameter {COMPONENT!r} of the mixture has {int((~ok).sum())} of {raw.size} "
                f"draws that are not a component index 0..{k - 1} (e.g. {raw[~ok][0]!r}). "
                "Suggestion: pass the posterior of a fitted ModelMixture."
            )
        return raw.astype(np.int64)

    def parts(self, params: Params) -> Iterator[tuple[np.ndarray | None, PurchaseSpec, dict]]:
        """``(idx, spec, params)`` per component with active draws: the draws' rows ``idx``
        (``None`` when the component holds every draw, whose arrays are then passed as they
        are), the component's spec and its parameters on those draws."""
        act = self.active(params)
        for k, (lab, spec) in enumerate(self.components.items()):
            idx = np.flatnonzero(act == k)
            if idx.size == 0:
                continue
            full = idx.size == act.size
            sub = {
                p: (np.asarray(params[component_param(lab, p)]) if full else
                    np.asarray(params[component_param(lab, p)])[idx])
                for p in spec.param_names
            }  # fmt: skip
            yield (None if full else idx), spec, sub

    def scatter(self, params: Params, fn: Callable[[PurchaseSpec, dict], np.ndarray]) -> np.ndarray:
        """``fn(spec, sub_params)`` for each component, its rows put back in draw order."""
        parts = ((idx, fn(spec, sub)) for idx, spec, sub in self.parts(params))
        return scatter_parts(parts, n_draws(params), axis=0)

    # ---- the contract ---------------------------------------------------------------------------
    def customer_columns(self, table: pd.DataFrame, argument: str = "rfm") -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for spec in self.components.values():
            for c, v in spec.customer_columns(table, argument=argument).items():
                out.setdefault(c, v)
        return out

    def new_customer_columns(self, n: int = 1) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for spec in self.components.values():
            for c, v in spec.new_customer_columns(n).items():
                out.setdefault(c, v)
        return out

    def value_key(self, cols: Columns) -> np.ndarray:
        keys = [np.asarray(s.value_key(cols), dtype=np.float64) for s in self.components.values()]
        return np.concatenate(keys, axis=1)

    def order_keys(self, cols: Columns) -> list[np.ndarray]:
        """The first component's (``ModelMixture`` puts the largest weight first)."""
        return next(iter(self.components.values())).order_keys(cols)

    def loglik(self, params: Params, cols: Columns) -> np.ndarray:
        return self.scatter(params, lambda s, p: s.loglik(p, cols))

    def probability_alive(self, params: Params, cols: Columns, t: np.ndarray) -> np.ndarray:
        return self.scatter(params, lambda s, p: s.probability_alive(p, cols, t))

    def expected_purchases(self, params: Params, cols: Columns, t: np.ndarray) -> np.ndarray:
        return self.scatter(params, lambda s, p: s.expected_purchases(p, cols, t))

    def probability_of_purchases(
        self, params: Params, cols: Columns, t: float | np.ndarray, k: np.ndarray
    ) -> np.ndarray:
        return self.scatter(params, lambda s, p: s.probability_of_purchases(p, cols, t, k))

    def probability_purchase_in_window(
        self, params: Params, start: np.ndarray, end: np.ndarray
    ) -> np.ndarray | None:
        """Each component's closed form on its draws; ``None`` unless every component with
        active draws has one."""
        results = []
        for idx, spec, sub in self.parts(params):
            res = spec.probability_purchase_in_window(sub, start, end)
            if res is None:
                return None
            if idx is None:
                return np.asarray(res)
            results.append((idx, np.asarray(res)))
        out = np.empty((n_draws(params), *results[0][1].shape[1:]))
        for idx, res in results:
            out[idx] = res
        return out

    def expected_value(
        self,
        params: Params,
        cols: Columns,
        spend: np.ndarray,
        cashflow: Cashflow,
        pmap: PMap = serial_map,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each component's own ``expected_value`` (its fast path, if any) on its draws; the
        means over draws are the components' means weighted by their numbers of draws."""
        S = n_draws(params)
        clv = None
        means = 0.0
        for idx, spec, sub in self.parts(params):
            if idx is None:
                return spec.expected_value(sub, cols, spend, cashflow, pmap)
            c, m = spec.expected_value(sub, cols, spend[idx], cashflow, pmap)
            if clv is None:
                clv = np.empty((S, c.shape[1]))
            clv[idx] = c
            means = means + m * (idx.size / S)
        return clv, means

    def simulate(
        self,
        params: Params,
        cols: Columns,
        horizon: float | np.ndarray,
        rng: np.random.Generator,
        batch_size: int = 2_000_000,
    ) -> Future:
        """Each component simulates its draws from the one generator (in component order);
        the futures are merged: ``p_alive`` rows in draw order, the alive units, deaths and
        latent draws one component after the other, draw indices mapped to the mixture's
        draws, and the components' batches chained."""
        parts = []
        for idx, spec, sub in self.parts(params):
            fut = spec.simulate(sub, cols, horizon, rng, batch_size)
            if idx is None:
                return fut
            parts.append((idx, fut))
        n = parts[0][1].p_alive.shape[1]
        return merge_futures(parts, n_draws(params), n, "draw")

    # ---- building a mixture's draws -------------------------------------------------------------
    def params_from(
        self, component_draws: Mapping[str, Params], active: np.ndarray
    ) -> dict[str, np.ndarray]:
        """The mixture's parameters from each component's draws (``(S, ...)`` each, rows
        aligned with the mixture's draws) and the active component index per draw."""
        out = {}
        for lab, spec in self.components.items():
            for p in spec.param_names:
                out[component_param(lab, p)] = np.asarray(component_draws[lab][p], np.float64)
        out[COMPONENT] = np.asarray(active, dtype=np.float64).reshape(-1, 1)
        return out
