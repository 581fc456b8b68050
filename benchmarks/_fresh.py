"""One benchmark case in a fresh interpreter: wall time and the timings the child reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time


def fresh_run(src: str, timeout: float | None = None) -> dict:
    """Run ``src`` with ``python -c`` (warnings off); its last ``@@{json}`` line of stdout,
    plus ``wall`` (seconds, interpreter start to exit). On a failure or a timeout: ``wall``
    and ``error`` (the last line of stderr, or "did not finish in N s")."""
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", src], capture_output=True, text=True, env=env, check=False,
            timeout=timeout,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return {"wall": time.perf_counter() - t0, "error": f"did not finish in {timeout:.0f} s"}
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("@@")]
    if proc.returncode != 0 or not lines:
        return {"wall": wall, "error": " ".join(proc.stderr.strip().splitlines()[-1:])}
    out = json.loads(lines[-1][2:])
    out["wall"] = wall
    return out
