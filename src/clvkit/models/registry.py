"""The model registry: which purchase and spend models exist, by name.

The CLI (``--model``), :func:`clvkit.load` and every layer that receives posterior draws
without their model (an ``InferenceData``, a posterior ``Dataset`` or a dict) look models up
here instead of keeping their own tables. Built-in models are imported on first use; a new
model registers itself with :func:`register` (a class decorator) in its own module.

Examples
--------
>>> from clvkit.models import registry
>>> "bgnbd" in registry.names("purchase")
True
>>> registry.get("BetaGeo").spec.label
'BG/NBD'
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np
import xarray as xr

from clvkit.errors import ClvkitError, bad_rows_error
from clvkit.inference.layout import Layout
from clvkit.models.contract import DATA_TABLES, SUPPORTS, ModelSpec

__all__ = ["flat_params", "get", "models", "names", "register", "resolve", "spec_of", "unregister"]

#: Modules of the built-in models (each registers its estimator class on import).
BUILTIN = (
    "clvkit.models.bgnbd",
    "clvkit.models.gamma_gamma",
    "clvkit.models.mbgnbd",
    "clvkit.models.pnbd",
    "clvkit.models.bgbb",
    "clvkit.models.sbg",
)

_MODELS: dict[str, type] = {}
_loaded = False
#: Built-in models made of other models (``composite``), imported after :data:`BUILTIN`.
BUILTIN_COMPOSITE = ("clvkit.models.mixture", "clvkit.models.covariates")


def register(cls: type) -> type:
    """Register an estimator class whose ``spec`` is a :class:`~clvkit.models.contract.ModelSpec`.

    Use as a class decorator. The spec's ``name`` (short, for the CLI) and ``model_name`` (in
    saved files) must be new; registering the same class again is a no-op.
    """
    spec = getattr(cls, "spec", None)
    if not isinstance(spec, ModelSpec):
        raise ClvkitError(
            f"cannot register {cls.__name__}: its 'spec' is {spec!r}. Suggestion: set a class "
            "attribute spec = YourSpec(), a PurchaseSpec or SpendSpec subclass instance."
        )
    if spec.kind not in ("purchase", "spend"):
        raise ClvkitError(f"cannot register {cls.__name__}: spec.kind is {spec.kind!r}.")
    bad = {n: s for n, s in spec.param_support.items() if s not in SUPPORTS}
    if bad:
        raise ClvkitError(
            f"cannot register {cls.__name__}: unknown parameter supports {bad}. "
            f"Suggestion: use one of {list(SUPPORTS)}."
        )
    for key in (spec.name, spec.model_name):
        old = _MODELS.get(key)
        if old is not None and old is not cls:
            raise ClvkitError(
                f"cannot register {cls.__name__}: the name {key!r} is taken by "
                f"{old.__name__}. Suggestion: give the spec another name."
            )
    _MODELS[spec.name] = cls
    _MODELS[spec.model_name] = cls
    return cls


def unregister(name: str) -> None:
    """Remove the model registered as ``name`` (short or saved name); built-in models are
    loaded first, so they stay registered unless named. Unknown names raise ``ClvkitError``."""
    cls = get(name)
    for key in (cls.spec.name, cls.spec.model_name):
        _MODELS.pop(key, None)


def _load_builtin() -> None:
    global _loaded
    if not _loaded:
        _loaded = True
        for module in (*BUILTIN, *BUILTIN_COMPOSITE):
            importlib.import_module(module)


Tables = str | tuple[str, ...] | None


def _reads(cls: type, data: Tables) -> bool:
    """Whether ``cls`` reads the ``data`` table (one of them, for a tuple; any, for None)."""
    return data is None or cls.spec.data in ((data,) if isinstance(data, str) else data)


def _tables_text(data: str | tuple[str, ...]) -> str:
    tables = (data,) if isinstance(data, str) else data
    return " or ".join(str(DATA_TABLES.get(d, d)) for d in tables)


def models(kind: str | None = None, data: Tables = None) -> list[type]:
    """Registered estimator classes (of one ``kind``: ``"purchase"`` or ``"spend"``; reading
    the ``data`` table or one of a tuple of them, see
    :data:`clvkit.models.contract.DATA_TABLES`); models built from other models
    (``composite``, e.g. a mixture) are found by :func:`get` only."""
    _load_builtin()
    seen: dict[str, type] = {}
    for cls in _MODELS.values():
        if (kind is None or cls.spec.kind == kind) and not getattr(cls, "composite", False):
            if _reads(cls, data):
                seen[cls.spec.name] = cls
    return list(seen.values())


def names(kind: str | None = None, data: Tables = None) -> list[str]:
    """Short names of the registered models (of one ``kind``, reading the ``data`` table or
    one of a tuple of them)."""
    return [cls.spec.name for cls in models(kind, data)]


def get(name: str, kind: str | None = None, data: Tables = None) -> type:
    """The estimator class registered as ``name`` (short name or saved ``model_name``); with
    ``data``, one that reads that customer table (or one of a tuple of them)."""
    _load_builtin()
    cls = _MODELS.get(name)
    if cls is None or (kind is not None and cls.spec.kind != kind):
        raise ClvkitError(
            f"unknown {kind or ''} model {name!r}. Suggestion: use one of "
            f"{names(kind, data)} (or register the model first)."
        )
    if not getattr(cls, "composite", False) and not _reads(cls, data):
        raise ClvkitError(
            f"model {name!r} ({cls.spec.label}) reads {_tables_text(cls.spec.data)}, not "
            f"{_tables_text(data)}. Suggestion: use one of {names(kind, data)} here."
        )
    return cls


def spec_of(obj: Any, kind: str, argument: str) -> ModelSpec:
    """The spec behind ``obj``: a fitted estimator, an ``InferenceData`` or posterior
    ``Dataset`` (by its ``model`` attribute, else by its variable names), or a dict of
    parameters (by its keys)."""
    spec = getattr(obj, "spec", None)
    if isinstance(spec, ModelSpec):
        found = spec
    else:
        attrs = dict(getattr(obj, "attrs", {}) or {})
        post = getattr(obj, "posterior", None)
        if post is not None and not isinstance(obj, xr.Dataset):
            attrs = {**attrs, **dict(getattr(post, "attrs", {}) or {})}
        name = attrs.get("model")
        if name:  # a model whose spec depends on its settings rebuilds it from the attrs
            cls = get(str(name))
            found = cls.spec_for(attrs) if hasattr(cls, "spec_for") else cls.spec
        else:
            if isinstance(obj, dict):
                keys = set(obj)
            elif isinstance(obj, xr.Dataset):
                keys = set(map(str, obj.data_vars))
            elif isinstance(post, xr.Dataset):
                keys = set(map(str, post.data_vars))
            else:
                raise ClvkitError(
                    f"argument {argument!r} must be a fitted model, an InferenceData, a "
                    f"posterior xarray.Dataset or a dict of parameters, got "
                    f"{type(obj).__name__}. Suggestion: fit the model first and pass it."
                )
            # a model whose parameter names another one owns (MBG/NBD: BG/NBD's) opts out
            hits = [
                c.spec
                for c in models(kind)
                if set(c.spec.param_names) <= keys and getattr(c.spec, "by_param_names", True)
            ]
            # the most specific: sBG's (alpha, beta) are a part of Pareto/NBD's names
            hits = [
                h for h in hits if not any(set(h.param_names) < set(o.param_names) for o in hits)
            ]
            if len(hits) != 1:
                wanted = {c.spec.name: list(c.spec.param_names) for c in models(kind)}
                raise ClvkitError(
                    f"argument {argument!r} has variables {sorted(keys)}, which "
                    f"{'match no' if not hits else 'match more than one'} {kind} model "
                    f"({wanted}). Suggestion: pass the fitted model itself, or a posterior "
                    "whose attrs['model'] names it."
                )
            found = hits[0]
    if found.kind != kind:
        raise ClvkitError(
            f"argument {argument!r} is a {found.kind} model ({found.label}), but a {kind} model "
            "is needed here. Suggestion: check the order of the arguments."
        )
    return found


def resolve(obj: Any, kind: str, argument: str) -> tuple[ModelSpec, xr.Dataset]:
    """The spec of ``obj`` and its validated posterior ``Dataset`` (dims ``chain, draw``
    first; each value finite and inside its parameter's support).

    Examples
    --------
    >>> spec, post = resolve({"p": 6.25, "q": 3.74, "v": 15.4}, "spend", "spend_model")
    >>> spec.name, dict(post.sizes)
    ('gamma_gamma', {'chain': 1, 'draw': 1})
    """
    spec = spec_of(obj, kind, argument)
    post = obj
    if hasattr(post, "posterior_"):  # a fitted clvkit model: no need to build its idata_
        post = post.posterior_
    elif hasattr(post, "idata_"):
        post = post.idata_
    if hasattr(post, "posterior") and not isinstance(post, xr.Dataset):
        attrs = dict(getattr(post, "attrs", {}) or {})
        post = post.posterior
        post = post.assign_attrs({**attrs, **post.attrs})
    if isinstance(post, dict):  # numbers or 1-D draws; k numbers or (S, k) for a vector
        post = Layout.of(spec).draws(post, argument)
    if not isinstance(post, xr.Dataset):  # pragma: no cover - spec_of refused it already
        raise ClvkitError(f"argument {argument!r} holds no posterior draws.")
    names = spec.param_names
    missing = [n for n in names if n not in post]
    if missing:
        raise ClvkitError(
            f"argument {argument!r} lacks posterior variables {missing}; it has "
            f"{sorted(map(str, post.data_vars))}. Suggestion: pass the posterior of the right "
            f"model ({spec.label} needs {list(names)})."
        )
    for n in names:
        if tuple(post[n].dims[:2]) != ("chain", "draw"):
            raise ClvkitError(
                f"argument {argument!r}: variable {n!r} has dims {post[n].dims}, expected "
                "('chain', 'draw', ...). Suggestion: pass a posterior with chain and draw dims."
            )
        vals = post[n].values
        support = spec.support(n)
        ok = np.isfinite(vals)
        if support == "positive":
            ok &= vals > 0
        elif support == "unit":
            ok &= (vals > 0) & (vals < 1)
        if not ok.all():
            bad = ~ok
            raise bad_rows_error(
                f"posterior variable {n!r} of {argument!r}",
                "is not finite" if support == "real" else f"is not a finite {support} number",
                int(bad.sum()),
                float(vals[bad][0]),
                f"check the fit; {spec.label}'s {n!r} is {support}",
                n_total=vals.size,
            )
    return spec, post


def flat_params(spec: ModelSpec, post: xr.Dataset) -> dict[str, np.ndarray]:
    """The draws of ``spec``'s parameters in (chain, draw) order: ``(S, 1)`` for a scalar
    parameter, ``(S, k)`` for a vector one (its extra dims flattened)."""
    out = {}
    for n in spec.param_names:
        da = post[n].transpose("chain", "draw", ...)
        v = da.values.astype(np.float64)
        S = v.shape[0] * v.shape[1]
        out[n] = v.reshape(S, -1) if v.ndim > 2 else v.reshape(S, 1)
    return out
