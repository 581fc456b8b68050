"""The files ``clvkit fit`` writes under a prefix: model file names, finding the fitted models
of a prefix and loading them with their RFM table (``clvkit value`` and ``clvkit score``)."""

from __future__ import annotations

import argparse
import os
from typing import Any

from clvkit.errors import ClvkitError

#: Suffix of the RFM table that ``clvkit fit`` writes next to the model files.
RFM_SUFFIX = ".rfm.parquet"
#: Model file names of earlier clvkit versions, still read by ``clvkit value``.
LEGACY_MODEL_SUFFIXES = {"bgnbd": ".beta_geo.nc"}


def model_suffix(name: str) -> str:
    """The file suffix of a registered model's saved file: ``.<spec.name>.nc``.

    Examples
    --------
    >>> model_suffix("bgnbd"), model_suffix("gamma_gamma")
    ('.bgnbd.nc', '.gamma_gamma.nc')
    """
    return f".{name}.nc"


def _model_files(base: str, kind: str, name: str | None) -> str:
    """The saved model file of ``kind`` under the prefix ``base`` (``name``: --model or
    --spend-model; ``None``: the one registered model whose file exists)."""
    from clvkit.data.log_tables import LOG_TABLES
    from clvkit.models.registry import get, names

    tables = tuple(LOG_TABLES) if kind == "purchase" else None  # models of a purchase log
    candidates = [name] if name is not None else names(kind, tables)
    found = []
    for n in candidates:
        get(n, kind, tables)  # an unknown name is refused with the registered ones
        for suffix in (model_suffix(n), LEGACY_MODEL_SUFFIXES.get(n)):
            if suffix and os.path.isfile(base + suffix):
                found.append(base + suffix)
                break
    flag = "--model" if kind == "purchase" else "--spend-model"
    if not found:
        wanted = " or ".join(repr(base + model_suffix(n)) for n in candidates)
        hint = (
            "fit the spend model too: 'clvkit fit LOG --amount COLUMN --out PREFIX'"
            if kind == "spend"
            else "pass the --out prefix used with 'clvkit fit' (e.g. models/shop)"
        )
        raise ClvkitError(f"model file {wanted} does not exist. Suggestion: {hint}.")
    if len(found) > 1:
        raise ClvkitError(
            f"the prefix {base!r} has several {kind} model files ({found}). Suggestion: pick "
            f"one with {flag} NAME."
        )
    return found[0]


def model_base(prefix: str) -> str:
    """The prefix without a model or RFM file suffix (a file name given as the prefix)."""
    from clvkit.models.registry import names

    base = prefix.removesuffix(RFM_SUFFIX)
    for n in names():
        for suffix in (model_suffix(n), LEGACY_MODEL_SUFFIXES.get(n)):
            if suffix:
                base = base.removesuffix(suffix)
    return base


def load_fitted(base: str, args: argparse.Namespace) -> tuple[Any, Any]:
    """The saved purchase and spend models under the prefix ``base``, each checked to be
    the right kind."""
    from clvkit.models.persistence import load
    from clvkit.models.registry import spec_of

    paths = {
        "transactions": _model_files(base, "purchase", args.model),
        "spend": _model_files(base, "spend", args.spend_model),
    }
    purchase, spend = load(paths["transactions"]), load(paths["spend"])
    spec_of(purchase, "purchase", paths["transactions"])  # the wrong kind of model: refused
    spec_of(spend, "spend", paths["spend"])
    return purchase, spend


def load_models(prefix: str, args: argparse.Namespace) -> tuple[Any, Any, Any]:
    """The saved models under ``prefix`` and their RFM table (every file checked to exist
    before any is read)."""
    import pandas as pd

    base = model_base(prefix)
    rfm_path = base + RFM_SUFFIX
    _model_files(base, "purchase", args.model)
    _model_files(base, "spend", args.spend_model)
    if not os.path.isfile(rfm_path):
        raise ClvkitError(
            f"file {rfm_path!r} does not exist. Suggestion: pass the --out prefix used with "
            "'clvkit fit' (e.g. models/shop)."
        )
    purchase, spend = load_fitted(base, args)
    try:
        rfm = pd.read_parquet(rfm_path)
    except Exception as exc:
        raise ClvkitError(f"could not read {rfm_path!r}: {exc}".splitlines()[0]) from exc
    return purchase, spend, rfm
