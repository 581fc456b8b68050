"""Customer covariates -> a design matrix aligned with a customer table.

A covariate table has one row per customer (ids in its index or in a ``customer_id`` column)
and numeric or categorical columns (acquisition channel, region, first-basket amount). Numeric
columns enter as they are, centred on their mean over the customers (so a model's baseline
parameters describe a customer at the mean); a categorical column becomes one indicator per
level except a stated reference level (default: its most frequent level). Every customer of the
customer table must have a row, and no value may be missing: a gap is an error, never a silent
fill. The encoding is kept (:class:`Covariates`), so new customers and counterfactuals
(:meth:`Covariates.encode`) are encoded exactly the same way.
"""

from __future__ import annotations

import os
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from clvkit.data.checks import id_kind
from clvkit.errors import ClvkitError, bad_rows_error

__all__ = ["Covariates", "covariate_design", "read_covariates"]

_HINT = "one row per customer with a value in every covariate column"


def read_covariates(
    covariates: pd.DataFrame | str | os.PathLike, customer_id: Hashable = "customer_id"
) -> pd.DataFrame:
    """A covariate table indexed by customer id: a DataFrame (ids in ``customer_id`` or in its
    index; not modified) or a CSV or Parquet file. Duplicate ids are an error."""
    if isinstance(covariates, (str, os.PathLike)):
        path = Path(covariates)
        if not path.is_file():
            raise ClvkitError(
                f"covariate file {str(path)!r} does not exist. Suggestion: pass the path of a "
                "CSV or Parquet file with a customer_id column."
            )
        suffix = path.suffix.lower()
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        elif suffix == ".csv":
            frame = pd.read_csv(path)
        else:
            raise ClvkitError(
                f"covariate file {str(path)!r} is not .csv, .parquet or .pq. Suggestion: save "
                "the covariates as CSV or Parquet."
            )
    elif isinstance(covariates, pd.DataFrame):
        frame = covariates
    else:
        raise ClvkitError(
            f"argument 'covariates' must be a DataFrame or a CSV/Parquet path, got "
            f"{type(covariates).__name__}. Suggestion: pass a DataFrame indexed by customer id."
        )
    if customer_id in frame.columns:
        frame = frame.set_index(customer_id)
    else:
        frame = frame.copy()
    frame.index.name = customer_id
    dup = frame.index.duplicated(keep="first")
    if dup.any():
        first = frame.index[dup][0]
        raise bad_rows_error(
            f"customer ids ({customer_id!r}) of 'covariates'", "appear more than once",
            int(dup.sum()), {str(customer_id): first}, "keep one row of covariates per customer",
            n_total=len(frame),
        )  # fmt: skip
    return frame


def _is_categorical(s: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)


@dataclass(frozen=True)
class Covariates:
    """An encoded covariate design; see :func:`covariate_design`.

    Attributes
    ----------
    matrix : numpy.ndarray
        ``(n, k)`` float64: one row per customer of ``index``, one column per coefficient.
    names : tuple of str
        The coefficient names: a numeric column by its name, a categorical level as
        ``"column[level]"``.
    index : pandas.Index
        The customer ids, in the customer table's order.
    centre : dict
        Numeric column -> the mean subtracted.
    levels : dict
        Categorical column -> its levels, the reference first (no column for it).
    """

    matrix: np.ndarray = field(repr=False)
    names: tuple[str, ...]
    index: pd.Index = field(repr=False)
    centre: dict[str, float]
    levels: dict[str, tuple[Any, ...]]

    @property
    def reference(self) -> dict[str, Any]:
        """Categorical column -> its reference level."""
        return {c: lv[0] for c, lv in self.levels.items()}

    def describe(self) -> pd.DataFrame:
        """One row per coefficient: its column, what a unit of it means, and the baseline.

        Examples
        --------
        >>> cov = pd.DataFrame({"channel": ["a", "b", "a"], "x": [1.0, 2.0, 6.0]},
        ...                    index=pd.Index([1, 2, 3], name="customer_id"))
        >>> covariate_design(cov, cov.index).describe()["meaning"].tolist()
        ["channel 'b' instead of 'a'", 'one unit more of x (mean 3)']
        """
        rows = []
        for column, lv in self.levels.items():
            for level in lv[1:]:
                meaning = f"{column} {level!r} instead of {lv[0]!r}"
                rows.append((f"{column}[{level}]", column, meaning))
        for column, mean in self.centre.items():
            rows.append((column, column, f"one unit more of {column} (mean {mean:.4g})"))
        order = {n: i for i, n in enumerate(self.names)}
        rows.sort(key=lambda r: order[r[0]])
        return pd.DataFrame(rows, columns=["coefficient", "column", "meaning"]).set_index(
            "coefficient"
        )

    @property
    def columns(self) -> tuple[str, ...]:
        """The covariate columns, categorical ones first (as in :attr:`names`' blocks)."""
        return (*self.levels, *self.centre)

    def encoding(self) -> dict[str, Any]:
        """The encoding without the data (names, centres, levels), JSON-serialisable: what a
        fitted model stores to encode other customers the same way (:meth:`from_encoding`)."""
        return {
            "names": list(self.names),
            "centre": {k: float(v) for k, v in self.centre.items()},
            "levels": {k: [_plain(v) for v in lv] for k, lv in self.levels.items()},
            "id_name": None if self.index.name is None else str(self.index.name),
        }

    @classmethod
    def from_encoding(cls, encoding: Mapping[str, Any]) -> Covariates:
        """A design with no customers and the given :meth:`encoding`, for :meth:`encode`."""
        names = tuple(str(n) for n in encoding["names"])
        return cls(
            np.zeros((0, len(names))),
            names,
            pd.Index([], name=encoding.get("id_name")),
            {str(k): float(v) for k, v in dict(encoding["centre"]).items()},
            {str(k): tuple(v) for k, v in dict(encoding["levels"]).items()},
        )

    def encode(
        self, covariates: pd.DataFrame | str | os.PathLike, customers: pd.DataFrame | pd.Index
    ) -> np.ndarray:
        """The ``(m, k)`` design of other customers (new ones, or counterfactual covariates)
        with this encoding: the same centres, levels and reference levels. A level not seen
        here is an error (its effect was never estimated)."""
        table = read_covariates(covariates, self.index.name or "customer_id")
        index = _customer_index(customers)
        frame = _aligned(table, index, list(self.levels) + list(self.centre))
        out = np.zeros((len(index), len(self.names)))
        pos = {n: i for i, n in enumerate(self.names)}
        for column, lv in self.levels.items():
            values = frame[column].astype(object).to_numpy()
            unseen = ~pd.Series(values).isin(lv).to_numpy()
            if unseen.any():
                i = int(np.flatnonzero(unseen)[0])
                raise bad_rows_error(
                    f"column {column!r} of 'covariates'",
                    f"holds a level not seen when the model was fitted (levels: {list(lv)})",
                    int(unseen.sum()), {"customer_id": index[i], column: values[i]},
                    "map it to a known level, or fit on data that has it",
                    n_total=len(index),
                )  # fmt: skip
            for level in lv[1:]:
                out[:, pos[f"{column}[{level}]"]] = values == level
        for column, mean in self.centre.items():
            out[:, pos[column]] = frame[column].to_numpy(dtype=np.float64) - mean
        return out


def _plain(value: Any) -> Any:
    """A level as a JSON value (numpy scalars to Python ones)."""
    return value.item() if isinstance(value, np.generic) else value


def _customer_index(customers: pd.DataFrame | pd.Index) -> pd.Index:
    if isinstance(customers, pd.DataFrame):
        return customers.index
    if isinstance(customers, pd.Index):
        return customers
    raise ClvkitError(
        f"argument 'customers' must be the customer table (a DataFrame indexed by customer id) "
        f"or its index, got {type(customers).__name__}. Suggestion: pass the rfm table."
    )


def _aligned(table: pd.DataFrame, index: pd.Index, columns: Sequence[Hashable]) -> pd.DataFrame:
    """The rows of ``table`` for the customers of ``index``, every one present and complete."""
    missing_cols = [c for c in columns if c not in table.columns]
    if missing_cols:
        raise ClvkitError(
            f"argument 'covariates' lacks column(s) {missing_cols}; it has "
            f"{list(table.columns)}. Suggestion: pass a table with {_HINT}."
        )
    present = index.isin(table.index)
    if not present.all():
        kinds = {id_kind(v) for v in index[:1]} | {id_kind(v) for v in table.index[:1]}
        hint = (
            f"the ids are of different kinds ({sorted(kinds)}): convert one side, e.g. "
            "covariates.index = covariates.index.astype(str)"
            if len(kinds) > 1
            else "add their rows (a missing value is never filled in silently; use an explicit "
            "level such as 'unknown' if that is what it means)"
        )
        raise bad_rows_error(
            "customers of the customer table", "have no row in 'covariates'",
            int((~present).sum()), {"customer_id": index[~present][0]}, hint,
            n_total=len(index),
        )  # fmt: skip
    frame = table.loc[index, list(columns)]
    for c in columns:
        s = frame[c]
        bad = s.isna().to_numpy().copy()
        if not _is_categorical(s):
            bad |= ~np.isfinite(s.to_numpy(dtype=np.float64, na_value=np.nan))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise bad_rows_error(
                f"column {c!r} of 'covariates'", "is missing or not finite", int(bad.sum()),
                {"customer_id": index[i], str(c): s.iloc[i]}, f"give {_HINT}",
                n_total=len(index),
            )  # fmt: skip
    return frame


def covariate_design(
    covariates: pd.DataFrame | str | os.PathLike,
    customers: pd.DataFrame | pd.Index,
    *,
    columns: Sequence[Hashable] | None = None,
    categorical: Sequence[Hashable] = (),
    reference: Mapping[Hashable, Any] | None = None,
    customer_id: Hashable = "customer_id",
) -> Covariates:
    """Encode a covariate table for the customers of a customer table.

    Parameters
    ----------
    covariates : pandas.DataFrame, str or os.PathLike
        One row per customer: ids in the index or in a ``customer_id`` column; or a CSV or
        Parquet file. Not modified. Rows of other customers are ignored.
    customers : pandas.DataFrame or pandas.Index
        The customer table (e.g. :func:`clvkit.rfm_summary`) or its index: the rows of the
        design, in this order.
    columns : sequence, optional
        The covariate columns (default: all).
    categorical : sequence
        Numeric columns to treat as categorical (codes); text, boolean and category columns
        always are.
    reference : mapping, optional
        Categorical column -> reference level (default: the most frequent level among the
        customers; ties go to the first in sorted order).
    customer_id : str
        The id column, if the ids are not the index.

    Returns
    -------
    Covariates

    Raises
    ------
    ClvkitError
        A customer without a row, a missing value, duplicate ids, an unknown column or
        reference level, a constant column or collinear columns (their effects could not be
        told apart), each naming the column, the count of bad rows and one.

    Examples
    --------
    >>> cov = pd.DataFrame({"customer_id": [1, 2, 3, 4], "channel": ["web", "shop", "web", "ad"],
    ...                     "first_amount": [10.0, 30.0, 20.0, 40.0]})
    >>> d = covariate_design(cov, pd.Index([4, 3, 1], name="customer_id"))
    >>> d.names, d.reference
    (('channel[ad]', 'first_amount'), {'channel': 'web'})
    >>> d.matrix.round(3).tolist()  # first_amount centred on its mean over these customers
    [[1.0, 16.667], [0.0, -3.333], [0.0, -13.333]]
    """
    table = read_covariates(covariates, customer_id)
    index = _customer_index(customers)
    if len(index) == 0:
        raise ClvkitError("argument 'customers' has no rows. Suggestion: pass the rfm table.")
    use = list(table.columns) if columns is None else list(columns)
    if not use:
        raise ClvkitError(
            "argument 'covariates' has no covariate columns. Suggestion: add columns, or fit "
            "the model without covariates."
        )
    unknown = [c for c in categorical if c not in use]
    if unknown:
        raise ClvkitError(
            f"argument 'categorical' names {unknown}, not among the covariate columns {use}. "
            "Suggestion: name columns of the covariate table."
        )
    frame = _aligned(table, index, use)
    reference = dict(reference or {})
    blocks: list[np.ndarray] = []
    names: list[str] = []
    centre: dict[str, float] = {}
    levels: dict[str, tuple[Any, ...]] = {}
    for c in use:
        s = frame[c]
        if c in categorical or _is_categorical(s):
            values = s.astype(object).to_numpy()
            uniq, counts = np.unique(values.astype(str), return_counts=True)
            by_text = {str(v): v for v in values}
            found = [by_text[u] for u in uniq]
            if len(found) < 2:
                raise _constant_error(c, found[0], len(index))
            if c in reference:
                ref = reference.pop(c)
                if ref not in found:
                    raise ClvkitError(
                        f"argument 'reference' gives {ref!r} for column {c!r}, which has the "
                        f"levels {found}. Suggestion: pick one of them."
                    )
            else:
                ref = found[int(np.argmax(counts))]
            lv = (ref, *[v for v in found if v != ref])
            levels[str(c)] = lv
            for level in lv[1:]:
                blocks.append((values == level).astype(np.float64))
                names.append(f"{c}[{level}]")
        else:
            x = s.to_numpy(dtype=np.float64)
            if np.ptp(x) == 0:
                raise _constant_error(c, float(x[0]), len(index))
            mean = float(x.mean())
            centre[str(c)] = mean
            blocks.append(x - mean)
            names.append(str(c))
    if reference:
        raise ClvkitError(
            f"argument 'reference' names {list(reference)}, not categorical covariate columns "
            f"({list(levels)}). Suggestion: give reference levels of categorical columns only."
        )
    matrix = np.column_stack(blocks)
    _check_rank(matrix, names)
    return Covariates(matrix, tuple(names), index.copy(), centre, levels)


def _constant_error(column: Hashable, value: Any, n: int) -> ClvkitError:
    return ClvkitError(
        f"column {column!r} of 'covariates' takes one value ({value!r}) for all {n:,} "
        "customers, so its effect cannot be estimated. Suggestion: leave it out."
    )


def _check_rank(matrix: np.ndarray, names: list[str]) -> None:
    """Collinear columns (with the intercept) have effects the data cannot tell apart."""
    full = np.column_stack([np.ones(len(matrix)), matrix])
    rank = 1
    for j in range(matrix.shape[1]):
        r = np.linalg.matrix_rank(full[:, : j + 2])
        if r <= rank:
            raise ClvkitError(
                f"covariate {names[j]!r} is a linear combination of the intercept and "
                f"{names[:j]} over these customers, so their effects cannot be told apart. "
                "Suggestion: leave one of them out."
            )
        rank = r
