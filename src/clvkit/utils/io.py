"""Writing outputs safely (purchase logs are read by :mod:`clvkit.data.summary`).

Every output clvkit writes obeys three rules:

- **Nothing the user did not ask for is touched.** A file output replaces only the file named by
  ``--out``; a folder output replaces an existing folder only if clvkit wrote it (it holds the
  marker file :data:`MARKER_NAME` listing every file in it). See :func:`prepare_output_file` and
  :func:`prepare_output_dir`, which check all of this before any expensive work starts.
- **Never a half-written output.** Files are written to a temporary sibling and renamed
  (:func:`atomic_path`); folders are staged in a temporary sibling and swapped in
  (:func:`staged_output_dir`, :func:`publish_dir`). On Linux the swap is one atomic
  ``renameat2(RENAME_EXCHANGE)``; elsewhere it is two renames, and a run killed between them is
  repaired by the next run (:func:`recover_output_dir`).
- **Temporaries are recognisable and cleaned.** They are named ``.NAME.clvkit-tmp-PID-XXXX``
  (``.NAME.clvkit-old-PID-XXXX`` for a replaced folder during the two-rename swap), removed on
  errors and on SIGTERM (:func:`sigterm_as_exception`), and those of dead processes are removed
  by the next run (:func:`clean_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import platform
import re
import secrets
import shutil
import signal
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from clvkit.errors import ClvkitError

__all__ = [
    "HTML_SUFFIXES",
    "MARKER_NAME",
    "TABLE_SUFFIXES",
    "Terminated",
    "atomic_path",
    "clean_stale_temporaries",
    "exchange_paths",
    "model_file_path",
    "no_interruption",
    "prepare_output_dir",
    "prepare_output_file",
    "publish_dir",
    "recover_output_dir",
    "sigterm_as_exception",
    "staged_output_dir",
    "temporary_paths",
    "terminated",
    "write_atomic",
]

MARKER_NAME = ".clvkit-output"
"""File in every output folder clvkit writes (JSON: clvkit version, command, files)."""
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")
"""Suffixes of a table output (``value --out``, ``summarize --out``)."""
HTML_SUFFIXES = (".html", ".htm")
"""Suffixes of the report output (``report --out``)."""

_TMP, _OLD = "tmp", "old"


# ---------------------------------------------------------------------------------------------
# SIGTERM as an exception, and sections it must not interrupt
# ---------------------------------------------------------------------------------------------
class Terminated(BaseException):
    """SIGTERM, raised in the main thread so ``finally`` blocks remove temporary files.

    A ``BaseException`` like ``KeyboardInterrupt``: ``except Exception`` does not swallow it.
    """


class _SignalState(threading.local):
    depth = 0  # nesting of no_interruption()
    pending = False  # SIGTERM arrived inside no_interruption(): raise when it ends
    fired = False  # Terminated was raised once; later SIGTERMs are ignored (cleanup runs)


_state = _SignalState()


def model_file_path(path: str | os.PathLike[str]) -> str:
    """``path`` as a string, checked for a ``save()``: its folder must exist (``ClvkitError``
    otherwise; ``save`` writes only the file it is given, never a folder)."""
    path = os.fspath(path)
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise ClvkitError(
            f"argument 'path' is {path!r}, whose folder does not exist. "
            "Suggestion: create the folder first."
        )
    return path


def terminated() -> bool:
    """Whether SIGTERM arrived inside the current :func:`sigterm_as_exception` block (a library
    that catches the :class:`Terminated` it raised, as DuckDB turns it into "Query
    interrupted", cannot hide the signal)."""
    return _state.fired


def _on_sigterm(signum: int, frame: Any) -> None:
    if _state.fired:
        return
    if _state.depth > 0:
        _state.pending = True
        return
    _state.fired = True
    raise Terminated


@contextlib.contextmanager
def sigterm_as_exception() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` while the block runs; restore the old handler after.

    Outside the main thread (where handlers cannot be installed) this does nothing.

    Examples
    --------
    >>> import os, signal
    >>> before = signal.getsignal(signal.SIGTERM)
    >>> with sigterm_as_exception():
    ...     try:
    ...         os.kill(os.getpid(), signal.SIGTERM)
    ...         for _ in range(10**6):  # the handler runs between bytecodes
    ...             pass
    ...     except Terminated:
    ...         print("terminated")
    terminated
    >>> signal.getsignal(signal.SIGTERM) is before
    True
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    _state.depth, _state.pending, _state.fired = 0, False, False
    try:
        yield
    finally:
        _state.fired = True  # a SIGTERM from here on must not raise out of this block
        signal.signal(signal.SIGTERM, previous)
        _state.depth, _state.pending, _state.fired = 0, False, False


@contextlib.contextmanager
def no_interruption() -> Iterator[None]:
    """Defer :class:`Terminated` to the end of the block (creating, renaming, removing files).

    A SIGTERM that arrives inside the block is raised when the outermost block ends, so a
    temporary file is never created without its cleanup being armed, and a cleanup or a swap
    is never cut in half.
    """
    _state.depth += 1
    try:
        yield
    finally:
        _state.depth -= 1
        if _state.depth == 0 and _state.pending:
            _state.pending, _state.fired = False, True
            raise Terminated


# ---------------------------------------------------------------------------------------------
# temporary names
# ---------------------------------------------------------------------------------------------
def _tmp_prefix(target: Path, kind: str = _TMP) -> str:
    return f".{target.name}.clvkit-{kind}-{os.getpid()}-"


def temporary_paths(target: str | os.PathLike[str]) -> list[tuple[Path, str, int]]:
    """clvkit's temporaries beside ``target``: ``(path, "tmp" or "old", pid)`` for each.

    They are named ``.NAME.clvkit-tmp-PID-XXXX`` or ``.NAME.clvkit-old-PID-XXXX``, where NAME is
    the name of ``target`` and PID the process that made them.
    """
    target = Path(os.path.abspath(target))
    pattern = re.compile(re.escape(f".{target.name}.clvkit-") + r"(tmp|old)-(\d+)-[^/]+")
    try:
        names = os.listdir(target.parent)
    except OSError:
        return []
    found = []
    for name in sorted(names):
        m = pattern.fullmatch(name)
        if m:
            found.append((target.parent / name, m.group(1), int(m.group(2))))
    return found


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        # Our own pid on a temporary we are not using yet: left by an earlier process that had
        # the same pid (containers restart pid numbering). Calls happen before staging starts.
        return False
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process there: assume alive
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, someone else's
        return True
    return True


def _remove(path: Path) -> None:
    """Remove a file or folder tree (no error if it is gone)."""
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def clean_stale_temporaries(target: str | os.PathLike[str]) -> list[Path]:
    """Remove clvkit temporaries beside ``target`` left by processes that no longer run.

    ``.NAME.clvkit-old-*`` folders are removed only when ``target`` exists (otherwise
    :func:`recover_output_dir` restores one of them first). Returns the removed paths.
    """
    target = Path(os.path.abspath(target))
    removed = []
    for path, kind, pid in temporary_paths(target):
        if _pid_alive(pid) or (kind == _OLD and not os.path.lexists(target)):
            continue
        with no_interruption():
            _remove(path)
        removed.append(path)
    return removed


def recover_output_dir(target: str | os.PathLike[str]) -> Path | None:
    """Put back an output folder that a killed run left renamed to ``.NAME.clvkit-old-*``.

    The two-rename swap (used where the atomic exchange is unavailable) moves the old output
    aside before moving the new one in; a run killed between the two leaves ``target`` missing.
    If ``target`` is missing and such a folder of a dead process exists, the newest one is
    renamed back. Returns the restored path, or None.
    """
    target = Path(os.path.abspath(target))
    if os.path.lexists(target):
        return None
    olds = [p for p, kind, pid in temporary_paths(target) if kind == _OLD and not _pid_alive(pid)]
    if not olds:
        return None
    newest = max(olds, key=lambda p: os.lstat(p).st_mtime_ns)
    with no_interruption():
        os.rename(newest, target)
    return target


# ---------------------------------------------------------------------------------------------
# checking outputs before the work
# ---------------------------------------------------------------------------------------------
def _check_parent(target: Path, option: str) -> None:
    """The nearest existing ancestor of ``target`` is a writable folder (the rest is created)."""
    ancestor = target.parent
    while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not os.path.isdir(ancestor):
        raise ClvkitError(
            f"argument '{option}' is {str(target)!r}, but {str(ancestor)!r} is a file, not a "
            "folder. Suggestion: choose a path whose folders are folders."
        )
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise ClvkitError(
            f"argument '{option}' is {str(target)!r}, but the folder {str(ancestor)!r} is not "
            "writable. Suggestion: choose a folder you can write to."
        )


def prepare_output_file(
    path: str | os.PathLike[str],
    *,
    suffixes: Sequence[str] | None = None,
    option: str = "--out",
) -> Path:
    """Check a file output before the work starts, and clean its stale temporaries.

    The file itself may exist (it is replaced, since the user named it), but it must not be a
    folder; its parent must be a folder, or creatable, and writable; its suffix must be one of
    ``suffixes`` (case-insensitive), when given.

    Parameters
    ----------
    path : str or path-like
        The file to be written.
    suffixes : sequence of str, optional
        Accepted suffixes, such as :data:`TABLE_SUFFIXES`.
    option : str
        The argument named in errors.

    Returns
    -------
    pathlib.Path
        ``path`` made absolute.

    Raises
    ------
    ClvkitError
        If any rule is broken.

    Examples
    --------
    >>> prepare_output_file("clv.xlsx", suffixes=TABLE_SUFFIXES)
    Traceback (most recent call last):
    ...
    clvkit.errors.ClvkitError: argument '--out' is 'clv.xlsx', whose suffix '.xlsx' clvkit \
cannot write. Suggestion: use one of .csv, .parquet, .pq.
    """
    target = Path(os.path.abspath(path))
    if suffixes is not None and target.suffix.lower() not in suffixes:
        raise ClvkitError(
            f"argument '{option}' is {os.fspath(path)!r}, whose suffix {target.suffix!r} clvkit "
            f"cannot write. Suggestion: use one of {', '.join(suffixes)}."
        )
    if os.path.isdir(target):
        raise ClvkitError(
            f"argument '{option}' is {os.fspath(path)!r}, which is an existing folder, not a "
            "file. Suggestion: name a file inside it, e.g. "
            f"{os.path.join(os.fspath(path), 'out' + (suffixes[0] if suffixes else ''))!r}."
        )
    _check_parent(target, option)
    clean_stale_temporaries(target)
    return target


def _listed_files(folder: Path) -> set[str] | None:
    """The files the marker of ``folder`` lists, or None if it has no readable marker."""
    try:
        info = json.loads((folder / MARKER_NAME).read_text(encoding="utf-8"))
        files = info["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        return None
    return set(files)


def _relative_entries(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def prepare_output_dir(path: str | os.PathLike[str], *, option: str = "--out") -> Path:
    """Check a folder output before the work starts; repair and clean what killed runs left.

    An existing ``path`` is replaced only if it is an empty folder or a folder clvkit wrote
    (its marker lists every file in it). Refused: a file, a symbolic link, a folder with other
    files, the current folder or one of its ancestors, an unwritable or non-folder parent.

    Parameters
    ----------
    path : str or path-like
        The output folder.
    option : str
        The argument named in errors.

    Returns
    -------
    pathlib.Path
        ``path`` made absolute.

    Raises
    ------
    ClvkitError
        If any rule is broken.
    """
    shown = os.fspath(path)
    target = Path(os.path.abspath(path))
    if target == target.parent:
        raise ClvkitError(
            f"argument '{option}' is {shown!r}, the root folder. Suggestion: name a new folder."
        )
    recover_output_dir(target)
    clean_stale_temporaries(target)
    cwd = os.path.realpath(os.getcwd())
    real = os.path.realpath(target)
    if cwd == real or cwd.startswith(real.rstrip(os.sep) + os.sep):
        raise ClvkitError(
            f"argument '{option}' is {shown!r}, which is the current folder or one of its "
            "parents; clvkit replaces its output folder as a whole. Suggestion: name a new "
            "folder, e.g. --out clvkit-output."
        )
    if os.path.islink(target):
        raise ClvkitError(
            f"argument '{option}' is {shown!r}, which is a symbolic link. Suggestion: name a new "
            "folder, or the folder the link points to."
        )
    if os.path.lexists(target) and not os.path.isdir(target):
        raise ClvkitError(
            f"argument '{option}' is {shown!r}, which is an existing file, not a folder. "
            "Suggestion: name a new folder."
        )
    if os.path.isdir(target):
        entries = _relative_entries(target)
        if entries:
            listed = _listed_files(target)
            if listed is None:
                raise ClvkitError(
                    f"argument '{option}' is {shown!r}, a folder that holds {len(entries):,} "
                    f"{'entry' if len(entries) == 1 else 'entries'} (e.g. "
                    f"{sorted(entries)[0]!r}) and was not written by clvkit; "
                    "clvkit replaces its output folder as a whole. Suggestion: name a new "
                    "folder (it is created), or an empty one."
                )
            allowed = listed | {MARKER_NAME}
            allowed |= {p.parent.as_posix() for p in map(Path, listed) if p.parent != Path(".")}
            extra = sorted(entries - allowed)
            if extra:
                raise ClvkitError(
                    f"argument '{option}' is {shown!r}, a clvkit output folder that now also "
                    f"holds {len(extra)} file(s) clvkit did not write (e.g. {extra[0]!r}); "
                    "replacing it would delete them. Suggestion: move them out, or name a new "
                    "folder."
                )
    _check_parent(target, option)
    return target


# ---------------------------------------------------------------------------------------------
# writing
# ---------------------------------------------------------------------------------------------
@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only on success.

    The file gets the usual mode (``0o666`` minus the umask). The temporary is removed on any
    exception, including :class:`Terminated`.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "x.txt") as tmp:
    ...     _ = tmp.write_text("hello")
    >>> (d / "x.txt").read_text(), sorted(p.name for p in d.iterdir())
    ('hello', ['x.txt'])
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_path: Path | None = None
    try:
        with no_interruption():
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=_tmp_prefix(target), suffix="")
            tmp_path = Path(tmp)
            os.close(fd)
        yield tmp_path
        with no_interruption():
            os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
            os.replace(tmp_path, target)
    finally:
        with no_interruption():
            if tmp_path is not None and os.path.lexists(tmp_path):
                _remove(tmp_path)


_umask_lock = threading.Lock()


def _umask() -> int:
    with _umask_lock:
        mask = os.umask(0)
        os.umask(mask)
    return mask


def write_atomic(target: str | os.PathLike[str], writer: Callable[[Path], object]) -> Path:
    """Call ``writer(tmp_path)`` and move the result onto ``target`` atomically."""
    with atomic_path(target) as tmp:
        writer(tmp)
    return Path(target)


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_SYS_RENAMEAT2 = {"x86_64": 316, "amd64": 316, "aarch64": 276, "arm64": 276}


def _renameat2() -> Callable[..., int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
    except OSError:
        return None
    fn = getattr(libc, "renameat2", None)
    if fn is not None:
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
        fn.restype = ctypes.c_int
        return fn
    number = _SYS_RENAMEAT2.get(platform.machine().lower())
    syscall = getattr(libc, "syscall", None)
    if number is None or syscall is None:
        return None
    syscall.restype = ctypes.c_long

    def via_syscall(fd1: int, a: bytes, fd2: int, b: bytes, flags: int) -> int:
        args = (ctypes.c_int(fd1), a, ctypes.c_int(fd2), b, ctypes.c_uint(flags))
        return int(syscall(ctypes.c_long(number), *args))

    return via_syscall


def exchange_paths(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Swap two existing paths in one atomic step (Linux ``renameat2(RENAME_EXCHANGE)``).

    Returns
    -------
    bool
        True if swapped; False if the system or file system cannot (non-Linux, ENOSYS,
        EINVAL, EOPNOTSUPP), in which case nothing changed.

    Raises
    ------
    OSError
        For any other failure (permissions, missing paths).
    """
    if not sys.platform.startswith("linux"):
        return False
    fn = _renameat2()
    if fn is None:
        return False
    pa, pb = os.fsencode(a), os.fsencode(b)
    if fn(_AT_FDCWD, pa, _AT_FDCWD, pb, _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), os.fspath(a), None, os.fspath(b))


def publish_dir(staging: str | os.PathLike[str], target: str | os.PathLike[str]) -> Path:
    """Move the complete folder ``staging`` onto ``target``, replacing an older output.

    At every instant ``target`` holds the complete old output or the complete new one, or, only
    in the fallback if the process is killed between its two renames, nothing, with the old
    output at ``.NAME.clvkit-old-*``, which the next run puts back (:func:`recover_output_dir`).
    With the atomic exchange the old output ends up at ``staging``; the caller removes it.
    """
    staging, target = Path(staging), Path(target)
    with no_interruption():
        if not os.path.lexists(target):
            os.rename(staging, target)
            return target
        if exchange_paths(staging, target):
            return target
        old = target.with_name(f".{target.name}.clvkit-{_OLD}-{os.getpid()}-{secrets.token_hex(4)}")
        os.rename(target, old)
        try:
            os.rename(staging, target)
        except BaseException:
            if not os.path.lexists(target):
                os.rename(old, target)
            raise
        _remove(old)
    return target


def _write_marker(folder: Path, command: str) -> None:
    from clvkit import __version__

    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir())
    info = {"clvkit_version": __version__, "command": command, "files": files}
    (folder / MARKER_NAME).write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")


@contextlib.contextmanager
def staged_output_dir(target: str | os.PathLike[str], *, command: str) -> Iterator[Path]:
    """Yield an empty staging folder beside ``target``; publish it onto ``target`` on success.

    On success the marker file (listing the files written) is added and the folder is swapped
    in with :func:`publish_dir`. On any exception, including :class:`Terminated`, the staging
    folder is removed and ``target`` is untouched. Call :func:`prepare_output_dir` first.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "out"
    >>> with staged_output_dir(out, command="example") as staging:
    ...     _ = (staging / "a.csv").write_text("x\\n1\\n")
    >>> sorted(p.name for p in out.iterdir()), sorted(p.name for p in out.parent.iterdir())
    (['.clvkit-output', 'a.csv'], ['out'])
    """
    target = Path(os.path.abspath(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    staging: Path | None = None
    try:
        with no_interruption():
            staging = Path(tempfile.mkdtemp(dir=target.parent, prefix=_tmp_prefix(target)))
            os.chmod(staging, 0o777 & ~_umask())
        yield staging
        _write_marker(staging, command)
        publish_dir(staging, target)
    finally:
        with no_interruption():
            if staging is not None and os.path.lexists(staging):
                _remove(staging)
