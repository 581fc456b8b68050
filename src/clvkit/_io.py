"""Reading purchase logs and writing files atomically (never a half-written file)."""

from __future__ import annotations

import contextlib
import glob
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd

from clvkit.errors import ClvkitError

__all__ = ["atomic_path", "make_staging_dir", "read_table", "write_atomic"]


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only on success.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> with atomic_path(d / "x.txt") as tmp:
    ...     _ = tmp.write_text("hello")
    >>> (d / "x.txt").read_text()
    'hello'
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_staging_dir(target: str | os.PathLike[str]) -> Path:
    """A fresh temporary folder beside ``target`` (usual permissions), to be renamed onto it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp"))
    os.chmod(tmp, 0o777 & ~_umask())
    return tmp


def write_atomic(target: str | os.PathLike[str], writer: Callable[[Path], object]) -> Path:
    """Call ``writer(tmp_path)`` and move the result onto ``target`` atomically."""
    with atomic_path(target) as tmp:
        writer(tmp)
    return Path(target)


def read_table(path: str | os.PathLike[str], columns: list[str] | None = None) -> pd.DataFrame:
    """Read a CSV or Parquet file (or a glob of them) into a DataFrame.

    Parameters
    ----------
    path : str or path-like
        A ``.csv``/``.csv.gz``/``.parquet`` file, or a glob such as ``"logs/*.parquet"``.
    columns : list of str, optional
        Columns to read; a missing one is reported by name.

    Returns
    -------
    pandas.DataFrame
    """
    text = os.fspath(path)
    files = sorted(glob.glob(text)) if any(ch in text for ch in "*?[") else [text]
    if not files or not all(os.path.isfile(f) for f in files):
        missing = next((f for f in files if not os.path.isfile(f)), text)
        raise ClvkitError(
            f"input file {missing!r} does not exist. Suggestion: check the path (globs such as "
            "'logs/*.csv' are allowed)."
        )
    frames = []
    for f in files:
        lower = f.lower()
        try:
            if lower.endswith((".parquet", ".pq")):
                frame = pd.read_parquet(f)
            elif lower.endswith((".csv", ".csv.gz", ".txt", ".tsv")):
                frame = pd.read_csv(f, sep="\t" if lower.endswith(".tsv") else ",")
            else:
                raise ClvkitError(
                    f"input file {f!r} has an unknown format. Suggestion: use .csv or .parquet."
                )
        except ClvkitError:
            raise
        except Exception as exc:  # parser errors of every kind become one clear line
            raise ClvkitError(f"could not read {f!r}: {exc}".splitlines()[0]) from exc
        if columns is not None:
            absent = [c for c in columns if c not in frame.columns]
            if absent:
                raise ClvkitError(
                    f"column {absent[0]!r} is missing from {f!r}; it has columns "
                    f"{list(frame.columns)}. Suggestion: name the right column with "
                    "--customer-id/--date/--amount."
                )
            frame = frame[columns]
        frames.append(frame)
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
