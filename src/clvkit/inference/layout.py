"""Where each parameter sits in the flat unconstrained vector: scalar and vector parameters.

A spec's parameters (``param_names``) are scalars unless ``param_sizes`` gives them a length
(see :class:`clvkit.models.contract.ModelSpec`): a vector parameter of length ``k`` (e.g.
covariate coefficients ``coef_alpha``) takes ``k`` consecutive entries of the flat vector that
the optimisers, Laplace and NUTS work on, in ``param_names`` order. In a posterior ``Dataset``
a vector parameter is one variable with dims ``(chain, draw, <name>_dim)`` and coordinates
``param_coords[name]``; its draws are ``(S, k)`` arrays.

Examples
--------
>>> lay = Layout(("s", "beta"), ("positive", "real"), (1, 2), (False, True), (None, ("x", "y")))
>>> lay.dim, lay.keys, lay.labels
(3, ('s', 'beta[0]', 'beta[1]'), ('s', 'beta[x]', 'beta[y]'))
>>> lay.flat_supports, lay.slice("beta")
(('positive', 'real', 'real'), slice(1, 3, None))
>>> ds = lay.dataset(np.arange(6.0).reshape(1, 2, 3) + 1)
>>> ds["beta"].dims, ds["beta"].values.tolist()
(('chain', 'draw', 'beta_dim'), [[[2.0, 3.0], [5.0, 6.0]]])
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import xarray as xr

from clvkit.errors import ClvkitError

__all__ = ["Layout", "param_dim"]


def param_dim(name: str) -> str:
    """The dimension name of vector parameter ``name`` in a posterior: ``"<name>_dim"``."""
    return f"{name}_dim"


@dataclass(frozen=True)
class Layout:
    """Parameter names, supports, lengths and element names, in the flat vector's order.

    ``vector[i]`` says whether parameter ``i`` is a vector (declared in the spec's
    ``param_sizes``, even of length 1); ``coords[i]`` names its elements (``None`` for a
    scalar).
    """

    names: tuple[str, ...]
    supports: tuple[str, ...]
    sizes: tuple[int, ...]
    vector: tuple[bool, ...]
    coords: tuple[tuple[str, ...] | None, ...]

    @classmethod
    def of(cls, spec: Any) -> Layout:
        """The layout of a :class:`clvkit.models.contract.ModelSpec`."""
        names = tuple(spec.param_names)
        declared = dict(getattr(spec, "param_sizes", {}) or {})
        given = dict(getattr(spec, "param_coords", {}) or {})
        sizes, vector, coords = [], [], []
        for n in names:
            if n not in declared:
                sizes.append(1)
                vector.append(False)
                coords.append(None)
                continue
            k = declared[n]
            if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
                raise ClvkitError(
                    f"{type(spec).__name__}.param_sizes[{n!r}] is {k!r}. Suggestion: a "
                    "positive integer (the vector's length)."
                )
            c = tuple(str(x) for x in given.get(n, range(int(k))))
            if len(c) != k or len(set(c)) != k:
                raise ClvkitError(
                    f"{type(spec).__name__}.param_coords[{n!r}] has {len(c)} names "
                    f"({len(set(c))} distinct) for a vector of length {k}. Suggestion: one "
                    "distinct name per element."
                )
            sizes.append(int(k))
            vector.append(True)
            coords.append(c)
        supports = tuple(spec.support(n) for n in names)
        return cls(names, supports, tuple(sizes), tuple(vector), tuple(coords))

    @property
    def has_vectors(self) -> bool:
        """Whether any parameter is a vector."""
        return any(self.vector)

    @property
    def dim(self) -> int:
        """Length of the flat vector."""
        return int(sum(self.sizes))

    @property
    def offsets(self) -> tuple[int, ...]:
        """Start of each parameter in the flat vector."""
        return tuple(int(x) for x in np.cumsum((0, *self.sizes[:-1])))

    def slice(self, name: str) -> slice:
        """The entries of parameter ``name`` in the flat vector."""
        i = self.names.index(name)
        start = self.offsets[i]
        return slice(start, start + self.sizes[i])

    @property
    def owners(self) -> tuple[str, ...]:
        """The parameter of each flat entry."""
        return tuple(n for n, k in zip(self.names, self.sizes, strict=True) for _ in range(k))

    @property
    def flat_supports(self) -> tuple[str, ...]:
        """The support of each flat entry."""
        return tuple(s for s, k in zip(self.supports, self.sizes, strict=True) for _ in range(k))

    @property
    def keys(self) -> tuple[str, ...]:
        """Internal names of the flat entries (the samplers' variables): a scalar's name, or
        ``"<name>[<i>]"`` for element ``i`` of a vector."""
        out: list[str] = []
        for n, k, v in zip(self.names, self.sizes, self.vector, strict=True):
            out += [f"{n}[{i}]" for i in range(k)] if v else [n]
        return tuple(out)

    @property
    def labels(self) -> tuple[str, ...]:
        """Readable names of the flat entries (summary rows, messages): a scalar's name, or
        ``"<name>[<element name>]"``, e.g. ``"coef_alpha[channel[B]]"``."""
        out: list[str] = []
        for n, c in zip(self.names, self.coords, strict=True):
            out += [f"{n}[{x}]" for x in c] if c is not None else [n]
        return tuple(out)

    def pymc_coords(self) -> dict[str, list[str]]:
        """Coordinates of the vector parameters for ``pymc.Model(coords=...)`` (use
        ``dims=param_dim(name)`` on each vector random variable)."""
        return {
            param_dim(n): list(c)
            for n, c in zip(self.names, self.coords, strict=True)
            if c is not None
        }

    # ---- posterior datasets -------------------------------------------------------------------
    def dataset(self, values: np.ndarray, coords: Mapping[str, Any] | None = None) -> xr.Dataset:
        """A posterior ``Dataset`` from flat natural-scale values ``(chain, draw, dim)``."""
        values = np.asarray(values, dtype=np.float64)
        c, d = values.shape[:2]
        base = dict(coords) if coords is not None else {"chain": np.arange(c), "draw": np.arange(d)}
        data = {}
        for n, k, v, s, cs in zip(
            self.names, self.sizes, self.vector, self.offsets, self.coords, strict=True
        ):
            if v:
                data[n] = (("chain", "draw", param_dim(n)), values[:, :, s : s + k])
                base[param_dim(n)] = list(cs)
            else:
                data[n] = (("chain", "draw"), values[:, :, s])
        return xr.Dataset(data, coords=base)

    def pack(self, flat: xr.Dataset) -> xr.Dataset:
        """A posterior of the flat entries (variables :attr:`keys`, dims ``(chain, draw)``, as
        the samplers return them) with each vector parameter as one variable. Without vector
        parameters ``flat`` itself."""
        if not self.has_vectors:
            return flat
        values = np.stack([flat[k].transpose("chain", "draw").values for k in self.keys], axis=-1)
        coords = {"chain": flat["chain"].values, "draw": flat["draw"].values}
        out = self.dataset(values, coords)
        out.attrs.update(flat.attrs)
        return out

    def normalize(self, post: xr.Dataset, argument: str = "posterior") -> xr.Dataset:
        """``post`` with each vector parameter's dims ``(chain, draw, <name>_dim)`` and its
        element names as coordinates (``ClvkitError`` when its length is not the spec's).
        Without vector parameters ``post`` itself."""
        if not self.has_vectors:
            return post
        fixed = {}
        for n, k, v, cs in zip(self.names, self.sizes, self.vector, self.coords, strict=True):
            if not v:
                continue
            da = post[n]
            extra = [x for x in da.dims if x not in ("chain", "draw")]
            if len(extra) != 1 or da.sizes[extra[0]] != k:
                raise ClvkitError(
                    f"argument {argument!r}: vector parameter {n!r} has dims {da.dims} and "
                    f"shape {da.shape}, expected (chain, draw, {param_dim(n)}) with {k} "
                    f"elements. Suggestion: pass {k} values per draw."
                )
            da = da.transpose("chain", "draw", extra[0]).drop_vars(extra[0], errors="ignore")
            if extra[0] != param_dim(n):
                da = da.rename({extra[0]: param_dim(n)})
            fixed[n] = da.assign_coords({param_dim(n): list(cs)})
        data = {x: fixed.get(x, post[x]) for x in post.data_vars}
        return xr.Dataset(data, attrs=dict(post.attrs))

    def flat(self, post: xr.Dataset) -> np.ndarray:
        """Flat natural-scale values ``(chain, draw, dim)`` of a posterior."""
        parts = []
        for n, v in zip(self.names, self.vector, strict=True):
            x = post[n].transpose("chain", "draw", ...).to_numpy().astype(np.float64)
            parts.append(x.reshape(x.shape[0], x.shape[1], -1) if v else x[:, :, None])
        return np.concatenate(parts, axis=-1)

    def draws(self, values: Mapping[str, Any], argument: str = "params") -> xr.Dataset:
        """A one-chain posterior from given values: per scalar parameter a number or a 1-D
        array of draws; per vector parameter ``k`` numbers (one draw) or an ``(S, k)`` array
        (``ClvkitError`` for any other shape). Names not in ``values`` are left out."""
        data = {}
        coords: dict[str, Any] = {}
        for n, k, v, cs in zip(self.names, self.sizes, self.vector, self.coords, strict=True):
            if n not in values:
                continue  # left to the caller's check of missing parameters
            try:
                x = np.asarray(values[n], dtype=np.float64)
            except (TypeError, ValueError):
                x = np.asarray(np.nan)
            if not v:
                if x.ndim > 1:
                    raise ClvkitError(
                        f"argument {n!r} has shape {x.shape}. Suggestion: a number or a 1-D "
                        "array of draws."
                    )
                data[n] = (("chain", "draw"), np.atleast_1d(x)[None, :])
                continue
            shape = x.shape
            if x.ndim == 1:
                x = x[None, :]
            if x.ndim != 2 or x.shape[1] != k:
                raise ClvkitError(
                    f"argument {n!r} has shape {shape}, but {n!r} is a vector of {k} "
                    f"elements ({list(cs)}). Suggestion: {k} numbers, or an (S, {k}) array of "
                    "S draws."
                )
            data[n] = (("chain", "draw", param_dim(n)), x[None, :, :])
            coords[param_dim(n)] = list(cs)
        counts = {n: v[1].shape[1] for n, v in data.items()}
        if len(set(counts.values())) > 1:
            raise ClvkitError(
                f"argument {argument!r} has different numbers of draws per parameter "
                f"{counts}. Suggestion: give every parameter the same number of draws S (a "
                "vector parameter as an (S, k) array)."
            )
        return xr.Dataset(data, coords=coords)
