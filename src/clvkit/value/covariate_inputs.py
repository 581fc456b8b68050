"""Covariate inputs of a run from files (the CLI and :func:`clvkit.report.report_from_log`):
a covariate table joined to a customer table by id, and the models wrapped with covariates.

The covariate and segment columns live in the customer table every model reads (see
:func:`clvkit.with_covariates`), so a run joins them once, by customer id, to each table it
builds (the valuation's and the backtest's calibration table). A customer without a row is an
error naming it; so is a missing column.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clvkit.data.checks import id_kind
from clvkit.data.covariates import read_covariates
from clvkit.errors import ClvkitError, bad_rows_error
from clvkit.models.registry import get

__all__ = ["CovariateInputs", "split_names"]

#: Registered names of the covariate wrappers, by model kind.
WRAPPERS = {"purchase": "PurchaseWithCovariates", "spend": "SpendWithCovariates"}


def split_names(value: str | Sequence[str] | None, argument: str) -> tuple[str, ...] | None:
    """``"a,b"`` or ``["a", "b"]`` as a tuple of names (``None`` stays ``None``)."""
    if value is None:
        return None
    items = value.split(",") if isinstance(value, str) else list(value)
    out = tuple(str(v).strip() for v in items if str(v).strip())
    if not out:
        raise ClvkitError(
            f"argument {argument!r} names no column. Suggestion: e.g. {argument}=channel,region."
        )
    return out


@dataclass(frozen=True)
class CovariateInputs:
    """Covariates of a run: the table, its columns, the segment column and the links.

    Build with :meth:`build` (``None`` when no covariates are asked for). ``links`` are
    processes or parameters (``"purchase"``, ``"dropout"``, ``"spend"``): each model gets the
    ones it has (default: every link of both models); a model with none of them stays plain.
    """

    table: pd.DataFrame
    columns: tuple[str, ...]
    categorical: tuple[str, ...] = ()
    segment: str | None = None
    links: tuple[str, ...] | None = None
    source: str = "covariates"

    @classmethod
    def build(
        cls,
        covariates: pd.DataFrame | str | os.PathLike | None = None,
        covariate_columns: str | Sequence[str] | None = None,
        categorical: str | Sequence[str] = (),
        segment: str | None = None,
        links: str | Sequence[str] | None = None,
        customer_id: Hashable = "customer_id",
        string_ids: bool = False,
    ) -> CovariateInputs | None:
        """The inputs, checked (``None`` without ``covariates``). ``covariates``: a DataFrame
        indexed by customer id (or with a ``customer_id`` column) or a CSV/Parquet file;
        ``covariate_columns`` default to every column but the id and the segment;
        ``string_ids``: read a CSV's ids as text (when the customer table's ids are text, so
        ``"007"`` keeps its zeros)."""
        names = split_names(covariate_columns, "covariate_columns")
        cats = split_names(categorical, "categorical") or () if categorical else ()
        link_names = split_names(links, "links")
        if covariates is None:
            given = [
                n for n, v in (("covariate_columns", names), ("categorical", cats),
                               ("segment", segment), ("links", link_names)) if v
            ]  # fmt: skip
            if given:
                raise ClvkitError(
                    f"argument(s) {given} need a covariate table, but 'covariates' is None. "
                    "Suggestion: pass covariates=FILE (CSV/Parquet with customer_id and the "
                    "columns)."
                )
            return None
        source = str(covariates) if isinstance(covariates, (str, os.PathLike)) else "covariates"
        if string_ids and isinstance(covariates, (str, os.PathLike)):
            path = Path(covariates)
            if path.suffix.lower() == ".csv" and path.is_file():
                covariates = pd.read_csv(path, dtype={customer_id: str})
        table = read_covariates(covariates, customer_id)
        available = [c for c in table.columns]
        if segment is not None and segment not in available:
            raise ClvkitError(
                f"argument 'segment' (--segment) is {segment!r}, not a column of {source!r} (it has "
                f"{available}). Suggestion: name a column of the covariate table."
            )
        if names is None:
            names = tuple(str(c) for c in available if c != segment)
        unknown = [c for c in (*names, *cats) if c not in available]
        if unknown:
            raise ClvkitError(
                f"argument 'covariate_columns' or 'categorical' (--covariate-columns, "
                f"--categorical) names {unknown}, not columns of "
                f"{source!r} (it has {available}). Suggestion: name columns of the covariate "
                "table."
            )
        if not names and segment is None:
            raise ClvkitError(
                f"{source!r} has no covariate column besides the id. Suggestion: add columns, "
                "or leave the covariates out."
            )
        return cls(table, names, tuple(cats), segment, link_names, source)

    @property
    def needed(self) -> list[str]:
        """The columns joined to a customer table: the covariates and the segment."""
        return list(dict.fromkeys([*self.columns, *([self.segment] if self.segment else [])]))

    def join(self, rfm: pd.DataFrame) -> pd.DataFrame:
        """``rfm`` with the covariate (and segment) columns joined by customer id; attrs kept,
        ``rfm`` not modified. A customer of ``rfm`` without a row is an error naming one."""
        table = self.table
        present = rfm.index.isin(table.index)
        if not present.all():
            first = rfm.index[~present][0]
            kinds = {id_kind(first)} | {id_kind(v) for v in table.index[:1]}
            hint = (
                f"the ids are of different kinds ({sorted(kinds)}): write them alike in both files"
                if len(kinds) > 1
                else "add their rows (use an explicit level such as 'unknown' for a gap)"
            )
            raise bad_rows_error(
                "customers of the customer table", f"have no row in {self.source!r}",
                int((~present).sum()),
                {"customer_id": first.item() if isinstance(first, np.generic) else first}, hint,
                n_total=len(rfm),
            )  # fmt: skip
        clash = [c for c in self.needed if c in rfm.columns]
        base = rfm.drop(columns=clash) if clash else rfm
        out = base.join(table[self.needed], how="left")
        out.attrs = dict(rfm.attrs)
        return out

    def _links_for(self, name: str, kind: str) -> tuple[str, ...] | None:
        """The links of ``self.links`` that the registered model ``name`` has (``None``: all)."""
        table = dict(getattr(get(name, kind).spec, "covariate_links", {}) or {})
        if self.links is None:
            return tuple(table) if table else ()
        return tuple(x for x in self.links if any(x in (p, proc) for p, (proc, _) in table.items()))

    def check_links(self, purchase: str, spend: str | None) -> None:
        """Every link names a process or parameter of one of the models."""
        if self.links is None:
            return
        found = set(self._links_for(purchase, "purchase"))
        if spend is not None:
            found |= set(self._links_for(spend, "spend"))
        unknown = [x for x in self.links if x not in found]
        if unknown:
            raise ClvkitError(
                f"argument 'links' (--links) names {unknown}, not a process or parameter of the models "
                f"({purchase!r}{', ' + repr(spend) if spend else ''}). Suggestion: e.g. "
                "links=purchase,dropout (spend for the spend model)."
            )

    def model(self, name: str, kind: str) -> Any:
        """An unfitted estimator: the registered model ``name`` with these covariates on the
        links it has, or plain when it has none of them."""
        links = self._links_for(name, kind)
        if not links:
            return get(name, kind)()
        return get(WRAPPERS[kind], kind)(
            name, list(self.columns) or None, categorical=list(self.categorical),
            links=list(links), segment=self.segment,
        )  # fmt: skip

    def fit(self, name: str, kind: str, rfm: pd.DataFrame, fit_kwargs: dict[str, Any]) -> Any:
        """Fit :meth:`model` on ``rfm`` (joined: see :meth:`join`)."""
        table = self.join(rfm) if not set(self.needed) <= set(rfm.columns) else rfm
        return self.model(name, kind).fit(table, **fit_kwargs)
