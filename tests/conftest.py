"""Shared fixtures: the CDNOW data sets and their published calibration summary."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def lifetimes_data_dir() -> str:
    import lifetimes

    return os.path.join(os.path.dirname(lifetimes.__file__), "datasets")
