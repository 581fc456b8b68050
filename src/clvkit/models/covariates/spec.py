"""Static covariates and hierarchical segments on any model of the contract that declares
``covariate_links``.

Customer ``i`` has its own base parameters: each linked positive parameter ``theta`` becomes
``theta_i = theta * exp(sign * (g_theta' z_i + u_theta[s_i]))`` with ``z_i`` the
customer's encoded covariates (:class:`clvkit.data.Covariates`), ``g_theta`` the coefficients
(``coef_<theta>``), ``s_i`` its segment and ``u_theta[s]`` segment ``s``'s log multiplier
(``seg_<theta>``, ``~ Normal(0, sd_<theta>^2)``, the spread ``sd_<theta>`` learned; how the
sampler parametrises it is the estimator's matter, the posterior holds ``u_theta`` itself). A
segment not seen in the fit is valued from the population of segments: its log multiplier is
``sd_<theta> * new_<theta>`` with ``new_<theta> ~ Normal(0, 1)`` drawn with the posterior (a
parameter the data do not inform), shared by all its customers in a draw. The
links and signs are the model's (``ModelSpec.covariate_links``), as in Fader and Hardie's note
on time-invariant covariates: e.g. BG/NBD's purchase-rate scale ``alpha_i = alpha exp(-g'z_i)``,
so a positive coefficient means more purchases.

Every primitive is evaluated by covariate class: the customers with one design row and one
segment share their parameters, ``(S, 1)`` per class, and the base model's own primitive (with
its fast paths: compiled kernels, compressed statistics, deduplication) runs once per class.
With every coefficient and segment effect at 0 each primitive is the base model's.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from clvkit.data.covariates import Covariates
from clvkit.errors import ClvkitError, bad_rows_error
from clvkit.models.contract import (
    Cashflow,
    Columns,
    Future,
    ModelSpec,
    Params,
    PMap,
    PurchaseSpec,
    SpendSpec,
    merge_futures,
    n_draws,
    n_rows,
    scatter_parts,
    serial_map,
)
from clvkit.utils.rows import unique_rows

__all__ = [
    "SEGMENT",
    "CovariatePurchaseSpec",
    "CovariateSpendSpec",
    "CovariateTerms",
    "covariate_column",
]

#: Column of the customer columns holding each customer's segment code (-1: not seen in the fit).
SEGMENT = "segment:code"


def covariate_column(name: str) -> str:
    """The customer-columns key of design column ``name``."""
    return f"covariate:{name}"


@dataclass(frozen=True)
class CovariateTerms:
    """What a covariate model adds to its base: the encoding, the links and the segments.

    ``links``: linked base parameter -> sign (from the base's ``covariate_links``, restricted
    to the processes asked for). ``encoding``: :meth:`clvkit.data.Covariates.encoding` (``None``
    without covariates). ``segment``: the segment column and ``levels`` its levels in the fit
    (``None`` without segments).
    """

    links: dict[str, int]
    encoding: dict[str, Any] | None = None
    segment: str | None = None
    levels: tuple[Any, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """The coefficient names (the design's columns)."""
        return tuple(self.encoding["names"]) if self.encoding else ()

    @property
    def design(self) -> Covariates | None:
        return None if self.encoding is None else Covariates.from_encoding(self.encoding)

    def param_names(self) -> tuple[str, ...]:
        out: list[str] = []
        if self.names:
            out += [f"coef_{p}" for p in self.links]
        if self.segment is not None:
            out += [f"{x}_{p}" for x in ("sd", "seg", "new") for p in self.links]
        return tuple(out)

    def to_json(self) -> dict[str, Any]:
        return {
            "links": dict(self.links),
            "encoding": self.encoding,
            "segment": self.segment,
            "levels": [v.item() if isinstance(v, np.generic) else v for v in self.levels],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CovariateTerms:
        return cls(
            {str(k): int(v) for k, v in dict(d["links"]).items()},
            d.get("encoding"),
            d.get("segment"),
            tuple(d.get("levels") or ()),
        )


class _Covariate:
    """The shared part of the purchase and spend covariate specs."""

    base: ModelSpec
    terms: CovariateTerms

    def _setup(self, base: ModelSpec, terms: CovariateTerms) -> None:
        links = dict(getattr(base, "covariate_links", {}) or {})
        unknown = [p for p in terms.links if p not in links]
        if unknown:
            raise ClvkitError(
                f"{base.label} has no covariate link for {unknown}. Suggestion: link one of "
                f"{list(links)}."
            )
        self.base = base
        self.terms = terms
        self.name = f"{base.name}+covariates"
        self.label = f"{base.label} with covariates"
        extra = terms.param_names()
        self.param_names = (*base.param_names, *extra)
        k, n_seg = len(terms.names), len(terms.levels)
        self.param_support = dict(base.param_support)
        self.param_sizes = dict(base.param_sizes)
        self.param_coords = dict(base.param_coords)
        for p in terms.links:
            if terms.names:
                self.param_support[f"coef_{p}"] = "real"
                self.param_sizes[f"coef_{p}"] = k
                self.param_coords[f"coef_{p}"] = terms.names
            if terms.segment is not None:
                self.param_support[f"sd_{p}"] = "positive"
                self.param_support[f"seg_{p}"] = "real"
                self.param_sizes[f"seg_{p}"] = n_seg
                self.param_coords[f"seg_{p}"] = tuple(str(v) for v in terms.levels)
                self.param_support[f"new_{p}"] = "real"
        cov = tuple(covariate_column(n) for n in terms.names)
        seg = (SEGMENT,) if terms.segment is not None else ()
        self.columns = (*base.columns, *cov, *seg)
        self.uses_time = base.uses_time
        self.data = base.data

    @classmethod
    def template(cls) -> Any:
        """The class-level spec of an estimator class (no base model: instances have their
        own spec, built in ``__init__`` and from a fit's attributes)."""
        spec = object.__new__(cls)
        kind = cls.kind
        spec.name = f"{kind}+covariates"
        spec.label = f"{kind} model with covariates"
        spec.param_names = ()
        spec.columns = ()
        return spec

    def __repr__(self) -> str:
        base = getattr(self, "base", None)
        links = list(self.terms.links) if base is not None else []
        return f"<{type(self).__name__} of {getattr(base, 'name', None)!r}: {links}>"

    # ---- customer columns -----------------------------------------------------------------------
    def customer_columns(self, table: pd.DataFrame, argument: str = "rfm") -> dict[str, np.ndarray]:
        """The base's columns plus the encoded covariates and the segment code of each customer
        (a level not in the fit is -1: valued from the population of segments)."""
        out = dict(self.base.customer_columns(table, argument=argument))
        design = self.terms.design
        if design is not None:
            z = design.encode(table, table)
            for j, n in enumerate(self.terms.names):
                out[covariate_column(n)] = np.ascontiguousarray(z[:, j])
        if self.terms.segment is not None:
            out[SEGMENT] = segment_codes(table, self.terms.segment, self.terms.levels, argument)
        return out

    def new_customer_columns(self, n: int = 1) -> dict[str, np.ndarray]:
        """A new customer at the baseline: reference levels, numeric covariates at their mean,
        and (with segments) an unseen segment."""
        out = dict(self.base.new_customer_columns(n))
        for c in self.columns[len(self.base.columns) :]:
            out[c] = np.full(n, -1.0) if c == SEGMENT else np.zeros(n)
        return out

    def value_key(self, cols: Columns) -> np.ndarray:
        own = np.asarray(self.base.value_key(cols), dtype=np.float64).reshape(n_rows(cols), -1)
        return np.concatenate([own, self.class_key(cols)], axis=1)

    def loglik(self, params: Params, cols: Columns) -> np.ndarray:
        return self.by_class(params, cols, lambda s, p, c: s.loglik(p, c))

    # ---- classes ----------------------------------------------------------------------------
    def class_key(self, cols: Columns) -> np.ndarray:
        """``(n, k [+ 1])``: each customer's design row (and segment code)."""
        n = n_rows(cols)
        keys = [
            np.asarray(cols[c], dtype=np.float64) for c in self.columns[len(self.base.columns) :]
        ]
        return np.stack(keys, axis=1) if keys else np.zeros((n, 0))

    def classes(self, cols: Columns) -> tuple[np.ndarray, np.ndarray]:
        """Distinct class rows ``(C, k [+ 1])`` and each customer's class ``(n,)``."""
        key = self.class_key(cols)
        if key.shape[1] == 0:
            return np.zeros((1, 0)), np.zeros(n_rows(cols), dtype=np.int64)
        first, inverse, _ = unique_rows(key)
        return key[first], inverse

    def log_shift(self, params: Params, rows: np.ndarray) -> dict[str, np.ndarray]:
        """Linked parameter -> ``(S, C)`` log multipliers of the classes ``rows``: ``sign *
        (coef_<p> . z + seg_<p>[s])`` (``seg_<p>``: the segments' log multipliers; an unseen
        segment ``sd_<p> * new_<p>``)."""
        k = len(self.terms.names)
        z, seg = rows[:, :k], rows[:, k] if self.terms.segment is not None else None
        out = {}
        for p, sign in self.terms.links.items():
            shift = np.zeros((n_draws(params), rows.shape[0]))
            if k:
                shift += np.asarray(params[f"coef_{p}"], dtype=np.float64) @ z.T
            if seg is not None:  # an unseen segment (-1): the draw of a new segment
                u = np.asarray(params[f"seg_{p}"], dtype=np.float64)
                sd = np.asarray(params[f"sd_{p}"], dtype=np.float64).reshape(-1, 1)
                new = sd * np.asarray(params[f"new_{p}"], dtype=np.float64).reshape(-1, 1)
                u = np.concatenate([u, new], axis=1)  # index -1: the new segment
                shift += u[:, seg.astype(np.int64)]
            out[p] = sign * shift
        return out

    def class_params(self, params: Params, rows: np.ndarray) -> Iterator[dict[str, np.ndarray]]:
        """The base parameters ``(S, 1)`` of each class of ``rows``, in order."""
        shift = self.log_shift(params, rows)
        base = {p: np.asarray(params[p], dtype=np.float64) for p in self.base.param_names}
        for c in range(rows.shape[0]):
            out = dict(base)
            for p, s in shift.items():
                out[p] = base[p] * np.exp(s[:, c : c + 1])
            yield out

    def parts(
        self, params: Params, cols: Columns
    ) -> Iterator[tuple[np.ndarray | None, dict, dict]]:
        """``(idx, base_params, base_cols)`` per class: its customers (``None``: all of
        them), its parameters and its customers' base columns."""
        rows, inverse = self.classes(cols)
        base_cols = {c: np.asarray(cols[c]) for c in self.base.columns}
        if rows.shape[0] == 0:  # no customers
            yield None, self.baseline(params), base_cols
            return
        if rows.shape[0] == 1:
            yield None, next(self.class_params(params, rows)), base_cols
            return
        order = np.argsort(inverse, kind="stable")
        bounds = np.searchsorted(inverse[order], np.arange(rows.shape[0] + 1))
        for c, p in enumerate(self.class_params(params, rows)):
            idx = order[bounds[c] : bounds[c + 1]]
            yield idx, p, {k: v[idx] for k, v in base_cols.items()}

    def by_class(
        self, params: Params, cols: Columns, fn: Callable[[Any, dict, dict], np.ndarray]
    ) -> np.ndarray:
        """``fn(base_spec, class_params, class_cols)`` -> ``(S, n_c, ...)`` per class, put
        back in customer order ``(S, n, ...)``."""
        parts = ((idx, fn(self.base, p, c)) for idx, p, c in self.parts(params, cols))
        return scatter_parts(parts, n_rows(cols), axis=1)

    def baseline(self, params: Params) -> dict[str, np.ndarray]:
        """The base parameters at the baseline (covariates 0, the population's median
        segment)."""
        return {p: np.asarray(params[p], dtype=np.float64) for p in self.base.param_names}


def segment_codes(
    table: pd.DataFrame, column: str, levels: Sequence[Any], argument: str = "rfm"
) -> np.ndarray:
    """Each customer's index in ``levels`` as float64 (-1 for a level not among them)."""
    if column not in table.columns:
        raise ClvkitError(
            f"argument {argument!r} has no segment column {column!r}; it has "
            f"{list(table.columns)}. Suggestion: join the segments to the table by customer id."
        )
    values = table[column]
    bad = values.isna().to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise bad_rows_error(
            f"column {column!r} of {argument!r}", "has no segment", int(bad.sum()),
            {"customer_id": table.index[i]}, "give every customer a segment (e.g. 'other')",
            n_total=len(table),
        )  # fmt: skip
    if not len(levels):
        return np.full(len(values), -1.0)
    index = pd.Index(list(levels), dtype=object)
    return index.get_indexer(values.astype(object)).astype(np.float64)


class CovariatePurchaseSpec(_Covariate, PurchaseSpec):
    """A purchase model with covariates and segments; see the module docstring.

    Parameters
    ----------
    base : PurchaseSpec
        The model whose parameters the covariates scale (its ``covariate_links``).
    terms : CovariateTerms
    """

    model_name = "PurchaseWithCovariates"

    def __init__(self, base: PurchaseSpec, terms: CovariateTerms) -> None:
        self._setup(base, terms)
        self.whole_periods = base.whole_periods

    def order_keys(self, cols: Columns) -> list[np.ndarray]:
        """Customers of one class together, then the base's order within it."""
        key = self.class_key(cols)
        return [*(key[:, j] for j in range(key.shape[1])), *self.base.order_keys(cols)]

    def probability_alive(self, params: Params, cols: Columns, t: np.ndarray) -> np.ndarray:
        return self.by_class(params, cols, lambda s, p, c: s.probability_alive(p, c, t))

    def expected_purchases(self, params: Params, cols: Columns, t: np.ndarray) -> np.ndarray:
        return self.by_class(params, cols, lambda s, p, c: s.expected_purchases(p, c, t))

    def probability_of_purchases(
        self, params: Params, cols: Columns, t: float | np.ndarray, k: np.ndarray
    ) -> np.ndarray:
        t_arr = np.asarray(t, dtype=np.float64)
        if t_arr.ndim == 1:  # one window per customer: split with the customers
            parts = (
                (idx, self.base.probability_of_purchases(p, c, t_arr if idx is None else
                                                         t_arr[idx], k))
                for idx, p, c in self.parts(params, cols)
            )  # fmt: skip
            return scatter_parts(parts, n_rows(cols), axis=1)
        return self.by_class(params, cols, lambda s, p, c: s.probability_of_purchases(p, c, t, k))

    def probability_purchase_in_window(
        self, params: Params, start: np.ndarray, end: np.ndarray
    ) -> np.ndarray | None:
        """A new customer at the baseline (see :meth:`new_customer_columns`)."""
        if self.terms.segment is not None:
            return None  # an unseen segment: the population of segments, by simulation
        return self.base.probability_purchase_in_window(self.baseline(params), start, end)

    def expected_value(
        self,
        params: Params,
        cols: Columns,
        spend: np.ndarray,
        cashflow: Cashflow,
        pmap: PMap = serial_map,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each class through the base's own ``expected_value`` (its fast path)."""
        parts = [
            (idx, self.base.expected_value(p, c, spend if idx is None else spend[:, idx],
                                           cashflow, pmap))
            for idx, p, c in self.parts(params, cols)
        ]  # fmt: skip
        n = n_rows(cols)
        clv = scatter_parts(((idx, v) for idx, (v, _) in parts), n, axis=1)
        means = scatter_parts(((idx, m) for idx, (_, m) in parts), n, axis=1)
        return clv, means

    def simulate(
        self,
        params: Params,
        cols: Columns,
        horizon: float | np.ndarray,
        rng: np.random.Generator,
        batch_size: int = 2_000_000,
    ) -> Future:
        """Each class simulated by the base from the one generator (in class order); the
        futures are merged: customers mapped back, batches chained."""
        h = np.asarray(horizon, dtype=np.float64)
        parts = []
        for idx, p, c in self.parts(params, cols):
            hc = h if (h.ndim == 0 or idx is None) else h[idx]
            fut = self.base.simulate(p, c, hc, rng, batch_size)
            if idx is None:
                return fut
            parts.append((idx, fut))
        return merge_futures(parts, n_draws(params), n_rows(cols), "customer")


class CovariateSpendSpec(_Covariate, SpendSpec):
    """A spend model with covariates and segments; see the module docstring."""

    model_name = "SpendWithCovariates"

    def __init__(self, base: SpendSpec, terms: CovariateTerms) -> None:
        self._setup(base, terms)

    def expected_spend(self, params: Params, cols: Columns) -> np.ndarray:
        return self.by_class(params, cols, lambda s, p, c: s.expected_spend(p, c))

    def sample_spend(
        self,
        params: Params,
        cols: Columns,
        draw: np.ndarray,
        customer: np.ndarray,
        count: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """Each class's units by the base (classes in order, one generator); values back in
        unit order."""
        rows, inverse = self.classes(cols)
        customer = np.asarray(customer, dtype=np.int64)
        count = np.asarray(count, dtype=np.int64)
        if rows.shape[0] == 1:
            p = next(self.class_params(params, rows))
            return self.base.sample_spend(p, cols, draw, customer, count, rng)
        start = np.concatenate([[0], np.cumsum(count)])
        out = np.empty(int(start[-1]))
        unit_class = inverse[customer]
        for c, p in enumerate(self.class_params(params, rows)):
            units = np.flatnonzero(unit_class == c)
            if units.size == 0:
                continue
            vals = self.base.sample_spend(
                p, cols, np.asarray(draw)[units], customer[units], count[units], rng
            )
            within = np.arange(int(count[units].sum())) - np.repeat(
                np.cumsum(count[units]) - count[units], count[units]
            )
            out[np.repeat(start[units], count[units]) + within] = vals
        return out
