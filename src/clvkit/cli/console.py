"""The console of the ``clvkit`` command: progress lines on stderr, exit codes, warnings
as one line and a quiet stdout after a closed pipe."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a program killed by SIGPIPE
EXIT_SIGTERM = 143  # 128 + SIGTERM


class Console:
    """Progress lines on stderr, silenced by ``--quiet``."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.t0 = time.perf_counter()
        from clvkit.utils.progress import set_clock

        set_clock(self.t0)

    def step(self, text: str) -> None:
        if not self.quiet:
            print(f"[{time.perf_counter() - self.t0:7.1f}s] {text}", file=sys.stderr, flush=True)


def show_warning(message: Any, category: Any, *args: Any, **kwargs: Any) -> None:
    """Show a Python warning as one line on stderr (``warnings.showwarning``)."""
    print(f"clvkit: warning: {category.__name__}: {message}", file=sys.stderr)


def silence_stdout() -> None:
    """Point stdout at devnull, so the final flush after a closed pipe cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, AttributeError):  # stdout without a file descriptor (tests)
        pass
