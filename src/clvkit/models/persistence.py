"""Loading saved models (``model.save(path)`` writes them)."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

from clvkit.errors import ClvkitError
from clvkit.inference.estimator import FORMAT_NAME, FORMAT_VERSION, ModelBase
from clvkit.models import registry

__all__ = ["load", "register_saved"]

#: Savable classes outside the model registry, by the ``model`` attribute of their files
#: (e.g. the sBG pooled over cohorts, which is not a model of the contract, and the
#: subscription fee, which is not fitted); they add themselves with :func:`register_saved` when
#: their module is imported (the built-in ones with the registry's built-in models).
SAVED: dict[str, Any] = {}


def register_saved(name: str, loader: Any) -> None:
    """Make :func:`load` read files whose ``model`` attribute is ``name`` with ``loader``: a
    :class:`~clvkit.inference.estimator.ModelBase` subclass (read like a registered model) or
    a class with a ``from_inference_data(idata, path)`` constructor."""
    SAVED[name] = loader


def load(path: str | os.PathLike) -> Any:
    """Read a model written by ``model.save(path)``.

    Parameters
    ----------
    path : str or os.PathLike
        The NetCDF file.

    Returns
    -------
    ModelBase or ShiftedBetaGeoPooled
        The fitted model (of the class registered under the file's ``model`` attribute, see
        :func:`clvkit.models.registry.get`, or a ``ShiftedBetaGeoPooled`` or
        ``SubscriptionFee``), with the same priors, settings, time unit and posterior.

    Raises
    ------
    ClvkitError
        If the file is missing, unreadable, not a clvkit model, or from an incompatible
        format version.

    Examples
    --------
    >>> import os, shutil, tempfile
    >>> from clvkit import BetaGeo
    >>> from clvkit.datasets import cdnow_calibration_summary
    >>> model = BetaGeo().fit(cdnow_calibration_summary(), method="mle")
    >>> path = os.path.join(tempfile.mkdtemp(), "bg.nc")
    >>> model.save(path)
    >>> loaded = load(path)
    >>> type(loaded).__name__, loaded.method_, loaded.time_unit_, loaded.n_customers_
    ('BetaGeo', 'mle', 'W', 2357)
    >>> bool(loaded.idata_.posterior["r"] == model.idata_.posterior["r"])
    True
    >>> shutil.rmtree(os.path.dirname(path))
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ClvkitError(
            f"argument 'path' is {path!r}, which is not a file. Suggestion: check the path."
        )
    import arviz as az  # deferred: ~2.5 s to import, and only loading needs it

    try:
        idata = az.from_netcdf(path, engine="h5netcdf")
        for group in idata.groups():
            idata[group].load()
            idata[group].close()
    except Exception as exc:
        raise ClvkitError(
            f"argument 'path' ({path!r}) could not be read as NetCDF ({type(exc).__name__}: "
            f"{exc}). Suggestion: the file is corrupt or not a model saved by clvkit; "
            "save it again with model.save(path)."
        ) from exc
    attrs = dict(idata.attrs)
    if attrs.get("clvkit_format") != FORMAT_NAME:
        raise ClvkitError(
            f"argument 'path' ({path!r}) is NetCDF but not a clvkit model. "
            "Suggestion: pass a file written by model.save(path)."
        )
    version = attrs.get("clvkit_format_version")
    version = int(version) if isinstance(version, (int, np.integer)) else version
    if version != FORMAT_VERSION:
        raise ClvkitError(
            f"argument 'path' ({path!r}) uses clvkit model format version {version!r} (written "
            f"by clvkit {attrs.get('clvkit_version', '?')}); this clvkit reads version "
            f"{FORMAT_VERSION}. Suggestion: refit the model with this clvkit version."
        )
    name = attrs.get("model")
    registry.models()  # imports the built-in models, which add their savable classes
    special = SAVED.get(str(name))
    if special is not None and not issubclass(special, ModelBase):
        return special.from_inference_data(idata, path)
    needed = {"posterior", "observed_data"}
    if not needed <= set(idata.groups()):
        raise ClvkitError(
            f"argument 'path' ({path!r}) is a damaged clvkit model (model {name!r}, groups "
            f"{list(idata.groups())}). Suggestion: save the model again."
        )
    try:
        cls = special if special is not None else registry.get(str(name))
    except ClvkitError as exc:
        raise ClvkitError(
            f"argument 'path' ({path!r}) holds a model {name!r} that is not registered "
            f"({exc}). Suggestion: import the module that registers it before loading, or "
            "save the model again."
        ) from exc
    try:
        settings = json.loads(attrs.get("settings", "{}"))
        model = cls(**settings)
        stats = cls._stats_from_observed(idata.observed_data)
    except (ValueError, TypeError, KeyError) as exc:
        raise ClvkitError(
            f"argument 'path' ({path!r}) has unreadable model settings or data ({exc}). "
            "Suggestion: save the model again."
        ) from exc
    missing = [n for n in model.spec.param_names if n not in idata.posterior]
    if missing or stats.fingerprint != attrs.get("data_fingerprint"):
        raise ClvkitError(
            f"argument 'path' ({path!r}) fails its integrity check (missing {missing} or data "
            "fingerprint mismatch). Suggestion: save the model again."
        )
    for key in ("clvkit_format", "clvkit_format_version", "settings"):
        idata.attrs.pop(key, None)
    groups = {g: idata[g] for g in idata.groups()}
    model._set_fitted(groups, dict(idata.attrs), stats, idata)
    return model
