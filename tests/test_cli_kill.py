"""Kill `clvkit value`, `backtest` and `report` at random moments: never a partial output.

Each command writes into a folder that already holds its previous complete output, the input
log and an unrelated user file. It is killed (SIGTERM or SIGKILL) at seeded random moments spread
over its measured run time. After each kill: the output is the old one byte for byte or a
complete new one; nothing else in the folder changed; after SIGTERM the run left no temporary.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clvkit
import clvkit.utils.io as cio
from clvkit.cli import main
from clvkit.datasets import simulate

pytestmark = pytest.mark.slow

CAL, END = "2024-12-29", "2025-06-29"
N_CUSTOMERS = 300
SRC = str(Path(clvkit.__file__).parents[1])
BT_FILES = {
    "customers.csv", "metrics.csv", "conditional_expectations.csv", "tracking.csv",
    "retention.csv", "frequency_ppc.csv", "tracking_cumulative.png", "tracking_incremental.png",
    "retention.png", "frequency_ppc.png", "conditional_expectations.png", "pit.png",
}  # fmt: skip
# (signal, window as fractions of the measured run): the last one aims at the writing phase
PLAN = [(signal.SIGTERM, 0.4, 1.0), (signal.SIGKILL, 0.4, 1.0), (signal.SIGTERM, 0.6, 0.95)]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """A folder with a simulated log (300 customers) and models fitted on it (MAP)."""
    folder = tmp_path_factory.mktemp("inputs")
    sim = simulate(
        N_CUSTOMERS, r=0.5, alpha=6.0, a=0.8, b=2.5, p=6.0, q=4.0, v=15.0,
        start="2024-01-01", acquisition_periods=12, observation_periods=78, random_seed=7,
    )  # fmt: skip
    sim.transactions.to_csv(folder / "log.csv", index=False)
    prefix = folder / "models" / "shop"
    assert main(["fit", str(folder / "log.csv"), "--amount", "amount", "--method", "map",
                 "--out", str(prefix), "--quiet"]) == 0  # fmt: skip
    return folder


def _argv(command: str, folder: Path, seed: int) -> list[str]:
    split = ["--calibration-end", CAL, "--observation-end", END, "--method", "map"]
    log = str(folder / "log.csv")
    if command == "value":
        return ["value", str(folder / "models" / "shop"), "--out", str(folder / "clv.csv"),
                "--quiet", "--seed", str(seed)]  # fmt: skip
    if command == "backtest":
        return ["backtest", log, *split, "--out", str(folder / "bt"), "--quiet", "--seed",
                str(seed)]  # fmt: skip
    return ["report", log, *split, "--out", str(folder / "report.html"), "--quiet", "--seed",
            str(seed)]  # fmt: skip


OUTPUT = {"value": "clv.csv", "backtest": "bt", "report": "report.html"}


def _complete(command: str, out: Path) -> bool:
    """The output is whole: every file present and parseable."""
    if command == "value":
        clv = pd.read_csv(out, index_col=0)
        return len(clv) == N_CUSTOMERS and bool(np.isfinite(clv["mean"]).all())
    if command == "report":
        text = out.read_text(encoding="utf-8")
        return text.endswith("</html>") and text.count("data:image/png;base64,") >= 8
    import json

    files = set(json.loads((out / cio.MARKER_NAME).read_text())["files"])
    assert files == BT_FILES == {p.name for p in out.iterdir()} - {cio.MARKER_NAME}
    for name in files:
        path = out / name
        if name.endswith(".csv"):
            pd.read_csv(path, index_col=0)
        else:
            data = path.read_bytes()
            assert data.startswith(b"\x89PNG\r\n\x1a\n") and data.endswith(b"IEND\xaeB`\x82")
    return True


def _is_temporary(name: str) -> bool:
    return ".clvkit-tmp-" in name or ".clvkit-old-" in name


def _hashes(folder: Path, skip: str | None) -> dict[str, str]:
    """Relative path -> sha256 under ``folder``, leaving out ``skip`` and clvkit temporaries."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if rel.parts[0] == skip or any(_is_temporary(part) for part in rel.parts):
            continue
        out[rel.as_posix()] = "<dir>" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def _temporaries(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if _is_temporary(p.name)}


def _run(command: str, folder: Path, seed: int, sig: int | None = None, after: float = 0.0):
    env = {**os.environ, "PYTHONPATH": SRC, "MPLBACKEND": "Agg"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "clvkit.cli", *_argv(command, folder, seed)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=folder,
    )  # fmt: skip
    if sig is not None:
        time.sleep(after)
        proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return proc.returncode, err.decode()


@pytest.mark.parametrize("command", ["value", "backtest", "report"])
def test_killed_runs_leave_the_old_or_the_new_output(inputs, tmp_path, command):
    folder = tmp_path / "work"
    shutil.copytree(inputs, folder)
    (folder / "notes.txt").write_text("the user's own file")
    out = folder / OUTPUT[command]
    t0 = time.perf_counter()
    code, err = _run(command, folder, seed=0)
    duration = time.perf_counter() - t0
    assert code == 0, err
    assert _complete(command, out)

    rng = np.random.default_rng([2026, list(OUTPUT).index(command)])
    outcomes = []
    for i, (sig, low, high) in enumerate(PLAN, start=1):
        old = _hashes(out, None) if out.is_dir() else _hashes(folder, None)[OUTPUT[command]]
        rest = _hashes(folder, OUTPUT[command])
        stale = _temporaries(folder)  # left by earlier SIGKILLs (dead processes)
        after = float(rng.uniform(low, high)) * duration
        code, err = _run(command, folder, seed=i, sig=sig, after=after)
        now = _hashes(out, None) if out.is_dir() else _hashes(folder, None)[OUTPUT[command]]
        state = "old" if now == old else "new"
        if state == "new" or code == 0:
            assert _complete(command, out), (sig, after, code, err)
        assert _hashes(folder, OUTPUT[command]) == rest, (
            "a file clvkit was not asked to write changed"
        )
        if sig == signal.SIGTERM:
            assert code in (0, 143, -signal.SIGTERM), err
            assert _temporaries(folder) <= stale, "SIGTERM left a temporary"
            if code == 143:
                assert err.strip().splitlines()[-1].startswith("clvkit: terminated"), err
                assert "Traceback" not in err
        else:
            assert code in (0, -signal.SIGKILL), err
        outcomes.append((signal.Signals(sig).name, round(after, 1), code, state,
                         len(_temporaries(folder) - stale)))  # fmt: skip
    print(f"\n{command}: run {duration:.1f} s; kills (signal, s, exit, output, new temps): "
          f"{outcomes}")  # fmt: skip
    # The next run cleans what SIGKILLed runs left (their processes are dead).
    if out.is_dir():
        cio.prepare_output_dir(out)
    else:
        cio.prepare_output_file(out)
    assert _temporaries(folder) == set()
    assert _complete(command, out)
    assert (folder / "notes.txt").read_text() == "the user's own file"
