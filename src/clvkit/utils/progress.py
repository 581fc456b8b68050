"""Progress on stderr for long work: a bar on a terminal, timed lines everywhere else.

A run whose stderr is a file or a pipe (a scheduler, ``2> log``, CI) gets one line every few
seconds instead of nothing; a terminal gets a transient rich bar. Two pieces:

- :func:`progress` wraps an iterable of known length (chunks of customers, holdout ages).
- :func:`heartbeat` wraps a block of unknown length (a NUTS fit): while it runs, a line
  ``[  12.0s] fitting BG/NBD (nuts): still running`` every ``every`` seconds.

Both print nothing when ``show`` is False.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import IO, Any

__all__ = ["EVERY", "heartbeat", "is_terminal", "progress", "set_clock"]

#: Seconds between progress lines when stderr is not a terminal.
EVERY = 5.0

_clock: dict[str, float | None] = {"start": None}


def set_clock(start: float | None) -> None:
    """Count the elapsed times of :func:`progress` lines from ``start`` (a
    ``time.perf_counter()`` value; ``None``: from each iteration's start), so a command's
    lines share one clock."""
    _clock["start"] = start


def is_terminal(stream: IO[str] | None = None) -> bool:
    """Whether ``stream`` (default stderr) is an interactive terminal."""
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def _line(stream: IO[str], t0: float, text: str) -> None:
    try:
        print(f"[{time.perf_counter() - t0:7.1f}s] {text}", file=stream, flush=True)
    except (OSError, ValueError):  # a closed stderr must not break the work
        pass


def progress(
    it: Iterable[Any],
    total: int,
    show: bool,
    label: str,
    *,
    every: float = EVERY,
    stream: IO[str] | None = None,
) -> Iterator[Any]:
    """``it``, with progress on ``stream`` (default stderr) when ``show``.

    On a terminal: a transient bar. Otherwise: ``label: done/total (pct)`` at most every
    ``every`` seconds, and a last line when the iteration ends.

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> list(progress(range(3), 3, True, "chunks", every=0.0, stream=out))
    [0, 1, 2]
    >>> out.getvalue().splitlines()[-1].endswith("chunks: 3/3 (100%), done")
    True
    """
    stream = sys.stderr if stream is None else stream
    if not show:
        yield from it
        return
    if is_terminal(stream):
        from rich.console import Console
        from rich.progress import Progress

        with Progress(console=Console(file=stream), transient=True) as bar:
            task = bar.add_task(label, total=total)
            for item in it:
                yield item
                bar.advance(task)
        return
    last = time.perf_counter()
    t0 = last if _clock["start"] is None else _clock["start"]
    done = 0
    for item in it:
        yield item
        done += 1
        now = time.perf_counter()
        if now - last >= every and done < total:
            _line(stream, t0, f"{label}: {done:,}/{total:,} ({done / max(total, 1):.0%})")
            last = now
    _line(stream, t0, f"{label}: {done:,}/{total:,} ({done / max(total, 1):.0%}), done")


@contextmanager
def heartbeat(
    label: str,
    show: bool,
    *,
    every: float = EVERY,
    stream: IO[str] | None = None,
    start: float | None = None,
) -> Iterator[None]:
    """While the block runs, print ``label: still running`` every ``every`` seconds.

    Lines are printed only when ``show`` and ``stream`` (default stderr) is not a terminal (a
    terminal has the step's own bar). ``start`` is the ``time.perf_counter()`` the elapsed
    times count from (default: entering the block).

    Examples
    --------
    >>> import io
    >>> out = io.StringIO()
    >>> with heartbeat("fitting", True, every=0.01, stream=out):
    ...     time.sleep(0.05)
    >>> "fitting: still running" in out.getvalue()
    True
    """
    stream = sys.stderr if stream is None else stream
    if not show or is_terminal(stream):
        yield
        return
    t0 = time.perf_counter() if start is None else start
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(every):
            _line(stream, t0, f"{label}: still running")

    thread = threading.Thread(target=beat, name="clvkit-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
