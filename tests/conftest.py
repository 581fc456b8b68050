"""Shared fixtures: the CDNOW data sets and their published calibration summary."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def lifetimes_data_dir() -> str:
    import lifetimes

    return os.path.join(os.path.dirname(lifetimes.__file__), "datasets")


@pytest.fixture(scope="session")
def unprivileged_command() -> list[str]:
    """A command prefix that runs a program as uid 65534 (nobody) without write access to the
    install, for tests of read-only installs and unwritable folders (root may write anywhere).

    Plain ``setpriv`` if that user can run this interpreter, else with the capability to read
    and search every folder (not to write), for interpreters below a private home such as
    ``/root/.pyenv``. Skips unless the tests run as root with ``setpriv`` (util-linux).
    """
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("needs root, to run a program as another user")
    if shutil.which("setpriv") is None:
        pytest.fail("setpriv (util-linux) is needed to run as another user")
    src = str(Path(__file__).resolve().parents[1] / "src")
    base = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    probe = subprocess.run(
        [*base, sys.executable, "-c", "import clvkit"],
        env={"PYTHONPATH": src, "HOME": "/nonexistent"},
        capture_output=True,
        cwd="/",
        check=False,
    )
    if probe.returncode == 0:
        return base
    return [*base, "--inh-caps=+dac_read_search", "--ambient-caps=+dac_read_search"]
