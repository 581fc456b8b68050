"""Where clvkit's compiled (numba) kernels are cached: every ``@njit``/``@cfunc`` of clvkit is
made through :func:`njit` and :func:`cfunc` here.

numba caches a compiled function in the first folder of its locators that is writable:
``NUMBA_CACHE_DIR`` when set, else the ``__pycache__`` beside the source file, else the
user-wide cache folder (``~/.cache/numba``). A read-only install run by a user without a
writable home (a container with a read-only root and an arbitrary user id) has none of them,
and ``cache=True`` then fails with ``RuntimeError: cannot cache function ... no locator
available``. Here numba is asked first (its own locators decide, so ``NUMBA_CACHE_DIR`` and its
other settings keep working); if it finds no folder, the kernel is cached in a fresh private
temporary folder (``tempfile.mkdtemp``, mode 0700, removed when the process exits: the kernels
compile once per process); if no temporary folder can be made either, the kernel is compiled
without a cache and one :class:`clvkit.errors.ClvkitWarning` says so. Results are the same in
every case; only the compile time at the first call differs.

``numba.config.CACHE_DIR`` is pointed at the temporary folder only while a clvkit kernel is
being decorated (numba resolves a function's cache folder then and keeps it), so the caller's
own cached numba functions are not redirected.
"""

from __future__ import annotations

import atexit
import inspect
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Callable
from typing import Any

import numba

from clvkit.errors import ClvkitWarning

__all__ = ["cache_folders", "cfunc", "njit"]

_LOCK = threading.RLock()
_temporary: list[str] = []  # the one temporary cache folder of this process, once made
_state = {"temporary_failed": False, "warned": False}
#: qualified name of each kernel -> "numba" (numba's own folder), "temporary" or "none"
_where: dict[str, str] = {}


def _no_locator(exc: RuntimeError) -> bool:
    return "no locator available" in str(exc)


def _temporary_folder() -> str | None:
    """This process's private temporary cache folder (made on first use), or None."""
    if _temporary:
        return _temporary[0]
    if _state["temporary_failed"]:
        return None
    try:
        folder = tempfile.mkdtemp(prefix="clvkit-numba-cache-")
    except OSError:
        _state["temporary_failed"] = True
        return None
    atexit.register(_remove, folder, os.getpid())
    _temporary.append(folder)
    return folder


def _remove(folder: str, owner_pid: int) -> None:
    """Remove the temporary folder at exit of the process that made it (not of a forked
    child, which shares it)."""
    if os.getpid() == owner_pid:
        shutil.rmtree(folder, ignore_errors=True)


def _warn_uncached(name: str) -> None:
    if _state["warned"]:
        return
    _state["warned"] = True
    warnings.warn(
        f"numba cannot cache clvkit's compiled kernels (first: {name}): NUMBA_CACHE_DIR is not "
        "set or not writable, the package's __pycache__ folders and the user cache folder "
        "(~/.cache/numba) are not writable, and no temporary folder could be made. They are "
        "compiled without a cache, in every process (results are the same; the first fit or "
        "value call of each process is slower). Suggestion: set NUMBA_CACHE_DIR to a writable "
        "folder.",
        ClvkitWarning,
        stacklevel=4,
    )


def _cached(make: Callable[[bool], Any]) -> Any:
    """``make(True)``, or None when numba finds no folder to cache in."""
    try:
        return make(True)
    except RuntimeError as exc:
        if not _no_locator(exc):
            raise
    return None


def _decorate(make: Callable[[bool], Any], name: str, source: str) -> Any:
    """``make(cache)`` decorates the kernel; try numba's folders, then a temporary one, then
    no cache. A function without a source file (typed at a prompt, in a doctest) has nothing
    to cache against: it is compiled without a cache, silently."""
    if not os.path.isfile(source):
        _where[name] = "none"
        return make(False)
    with _LOCK:
        out = _cached(make)
        if out is not None:
            _where[name] = "numba"
            return out
        folder = _temporary_folder()
        if folder is not None:
            saved = numba.config.CACHE_DIR
            numba.config.CACHE_DIR = folder
            try:
                out = _cached(make)
            finally:
                numba.config.CACHE_DIR = saved
            if out is not None:
                _where[name] = "temporary"
                return out
        _warn_uncached(name)
        _where[name] = "none"
        return make(False)


def njit(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(cache=True, **options)`` with clvkit's cache fallback (see the module).

    Examples
    --------
    >>> @njit(nogil=True)
    ... def twice(x):
    ...     return 2 * x
    >>> twice(21)
    42
    """

    def decorator(fn: Callable[..., Any]) -> Any:
        return _decorate(
            lambda cache: numba.njit(cache=cache, **options)(fn),
            f"{fn.__module__}.{fn.__qualname__}",
            inspect.getfile(fn),
        )

    return decorator


def cfunc(signature: Any, **options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.cfunc(signature, cache=True, **options)`` with clvkit's cache fallback."""

    def decorator(fn: Callable[..., Any]) -> Any:
        return _decorate(
            lambda cache: numba.cfunc(signature, cache=cache, **options)(fn),
            f"{fn.__module__}.{fn.__qualname__}",
            inspect.getfile(fn),
        )

    return decorator


def cache_folders() -> dict[str, str]:
    """Where each clvkit kernel decorated so far is cached: ``"numba"`` (numba's own folder:
    ``NUMBA_CACHE_DIR``, ``__pycache__`` or the user cache), ``"temporary"`` (this process's
    temporary folder) or ``"none"`` (compiled without a cache).

    Examples
    --------
    >>> import clvkit.models.bgnbd.quadrature  # doctest: +SKIP
    >>> set(cache_folders().values()) <= {"numba", "temporary", "none"}
    True
    """
    with _LOCK:
        return dict(_where)
