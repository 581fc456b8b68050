"""The README's one-screen tour runs as written, and without a warning (issue 14: "the README
tour itself emits a warning")."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _tour() -> str:
    text = README.read_text(encoding="utf-8")
    section = text.split("## A one-screen tour", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert match, "the tour's python block is missing"
    return match.group(1)


@pytest.mark.slow
def test_readme_tour_runs_without_warnings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the tour saves models/cdnow.bgnbd.nc
    (tmp_path / "models").mkdir()
    import matplotlib

    matplotlib.use("Agg")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        namespace: dict = {}
        exec(compile(_tour(), "README tour", "exec"), namespace)
    ours = [
        w
        for w in caught
        if issubclass(w.category, RuntimeWarning | UserWarning)
        and not str(w.filename).startswith(("/usr", str(Path(pytest.__file__).parents[1])))
    ]
    assert not ours, [f"{w.category.__name__}: {w.message} ({w.filename})" for w in ours]
    value = namespace["value"]
    assert value.settings["n_customers"] == 2357
    assert (tmp_path / "models" / "cdnow.bgnbd.nc").is_file()
