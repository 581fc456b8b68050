"""Outputs never touch what the user did not ask for; bad --out fails before the work.

Every test here failed on the code before issue 12 (see docs/reliability.md, "Outputs and the
command line").
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

import clvkit
import clvkit.utils.io as cio
from clvkit.cli import main
from clvkit.datasets import simulate

CAL, END = "2024-12-29", "2025-06-29"
BT_FILES = {
    "customers.csv", "metrics.csv", "conditional_expectations.csv", "tracking.csv",
    "retention.csv", "frequency_ppc.csv", "tracking_cumulative.png", "tracking_incremental.png",
    "retention.png", "frequency_ppc.png", "conditional_expectations.png", "pit.png",
}  # fmt: skip
SRC = str(Path(clvkit.__file__).parents[1])


@pytest.fixture(scope="module")
def log_csv(tmp_path_factory) -> Path:
    sim = simulate(
        300, r=0.5, alpha=6.0, a=0.8, b=2.5, p=6.0, q=4.0, v=15.0,
        start="2024-01-01", acquisition_periods=12, observation_periods=78, random_seed=7,
    )  # fmt: skip
    path = tmp_path_factory.mktemp("log") / "log.csv"
    sim.transactions.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def model(log_csv, tmp_path_factory) -> Path:
    prefix = tmp_path_factory.mktemp("models") / "shop"
    # --amount: `fit` fits the spend model only with an amount column named
    argv = ["fit", str(log_csv), "--amount", "amount", "--method", "map", "--out", str(prefix)]
    assert main([*argv, "--quiet"]) == 0
    return prefix


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code: int, err: str, *needles: str) -> str:
    assert code == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln and not ln.startswith("[")]
    assert len(lines) == 1 and lines[0].startswith("clvkit: error:"), err
    assert "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


def _snapshot(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file (and '<dir>' for folders) under ``folder``."""
    return {
        p.relative_to(folder).as_posix(): (
            "<dir>" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
        )
        for p in folder.rglob("*")
    }


def _temporaries(folder: Path) -> list[str]:
    return [
        p.name for p in folder.rglob("*") if ".clvkit-tmp-" in p.name or ".clvkit-old-" in p.name
    ]


def _backtest_args(log: Path, out: Path | str) -> list[str]:
    return ["backtest", str(log), "--calibration-end", CAL, "--observation-end", END,
            "--method", "map", "--out", str(out), "--quiet", "--seed", "1"]  # fmt: skip


# ---- folder outputs: data loss -----------------------------------------------------------
def test_backtest_refuses_a_user_folder_before_the_work(log_csv, tmp_path, capsys):
    # Before: the folder (the input log and a note) was replaced whole, exit 0.
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "log.csv").write_bytes(log_csv.read_bytes())
    (folder / "notes.txt").write_text("mine")
    before = _snapshot(tmp_path)
    t0 = time.perf_counter()
    code, _, err = _run(capsys, *_backtest_args(folder / "log.csv", folder))
    assert time.perf_counter() - t0 < 1.0
    _one_line_error(code, err, "not written by clvkit", "Suggestion: name a new folder")
    assert _snapshot(tmp_path) == before


def test_demo_refuses_a_user_folder(tmp_path, capsys):
    folder = tmp_path / "stuff"
    folder.mkdir()
    (folder / "a.txt").write_text("mine")
    code, _, err = _run(capsys, "demo", "--out", str(folder), "--method", "mle", "--quiet")
    _one_line_error(code, err, "'a.txt'", "not written by clvkit")
    assert (folder / "a.txt").read_text() == "mine" and len(list(tmp_path.iterdir())) == 1


def test_out_naming_an_existing_file_is_refused(log_csv, tmp_path, capsys):
    # Before: the file was renamed to a hidden .NAME.old-PID and a folder took its place.
    target = tmp_path / "results"
    target.write_text("a file the user keeps")
    code, _, err = _run(capsys, *_backtest_args(log_csv, target))
    _one_line_error(code, err, "existing file, not a folder")
    assert target.read_text() == "a file the user keeps"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results"]


@pytest.mark.parametrize("out", [".", "..", "sub/.."])
def test_out_current_folder_or_parent_is_refused(log_csv, tmp_path, capsys, monkeypatch, out):
    # Before: '--out .' ran the whole backtest, then crashed with a traceback.
    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "keep.txt").write_text("x")
    monkeypatch.chdir(work)
    before = _snapshot(tmp_path)
    code, _, err = _run(capsys, *_backtest_args(log_csv, out))
    _one_line_error(code, err, "current folder or one of its parents")
    assert _snapshot(tmp_path) == before


def test_marker_folder_is_replaced_empty_folder_is_used(log_csv, tmp_path, capsys, monkeypatch):
    out = tmp_path / "bt"
    out.mkdir()  # an empty folder is fine
    used = []
    real_exchange = cio.exchange_paths

    def spy(a, b):
        used.append(real_exchange(a, b))
        return used[-1]

    monkeypatch.setattr(cio, "exchange_paths", spy)
    assert _run(capsys, *_backtest_args(log_csv, out))[0] == 0
    marker = json.loads((out / ".clvkit-output").read_text())
    assert marker["clvkit_version"] == clvkit.__version__ and marker["command"] == "backtest"
    assert set(marker["files"]) == BT_FILES == {p.name for p in out.iterdir()} - {".clvkit-output"}
    first = (out / "metrics.csv").read_bytes()
    # A clvkit output folder is replaced (atomically exchanged on Linux).
    (out / "metrics.csv").write_text("stale")
    assert _run(capsys, *_backtest_args(log_csv, out))[0] == 0
    assert (out / "metrics.csv").read_bytes() == first  # same seed: the same table again
    if sys.platform.startswith("linux"):
        assert used == [True, True]  # the empty folder and the old output, both exchanged
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bt"]
    # A clvkit folder the user added a file to is refused: replacing it would delete the file.
    (out / "my_notes.txt").write_text("mine")
    code, _, err = _run(capsys, *_backtest_args(log_csv, out))
    _one_line_error(code, err, "'my_notes.txt'", "clvkit did not write")
    assert (out / "my_notes.txt").read_text() == "mine"


def _staged_output(out: Path, text: str) -> None:
    cio.prepare_output_dir(out)
    with cio.staged_output_dir(out, command="test") as staging:
        (staging / "a.csv").write_text(text)


def test_fallback_two_renames_replace_the_folder(tmp_path, monkeypatch):
    # Where RENAME_EXCHANGE is unavailable (non-Linux, some file systems): two renames.
    monkeypatch.setattr(cio, "exchange_paths", lambda a, b: False)
    out = tmp_path / "out"
    _staged_output(out, "old")
    _staged_output(out, "new")
    assert (out / "a.csv").read_text() == "new"
    assert json.loads((out / cio.MARKER_NAME).read_text())["files"] == ["a.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_exchange_paths_swaps_two_folders(tmp_path):
    if not sys.platform.startswith("linux"):
        assert cio.exchange_paths(tmp_path, tmp_path) is False
        return
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x").write_text("a")
    (tmp_path / "b").mkdir()
    assert cio.exchange_paths(tmp_path / "a", tmp_path / "b") is True
    assert (tmp_path / "b" / "x").read_text() == "a" and list((tmp_path / "a").iterdir()) == []
    with pytest.raises(FileNotFoundError):
        cio.exchange_paths(tmp_path / "a", tmp_path / "missing")


def test_fallback_failure_between_renames_rolls_back(tmp_path, monkeypatch):
    out = tmp_path / "out"
    _staged_output(out, "old")
    monkeypatch.setattr(cio, "exchange_paths", lambda a, b: False)
    real_rename = os.rename
    calls = []

    def rename(src, dst):
        calls.append((Path(src).name, Path(dst).name))
        if len(calls) == 2:  # the new output moving in
            raise OSError(errno.EIO, "simulated I/O error")
        real_rename(src, dst)

    monkeypatch.setattr(os, "rename", rename)
    with pytest.raises(OSError, match="simulated"):
        _staged_output(out, "new")
    assert calls[0][0] == "out" and ".out.clvkit-old-" in calls[0][1]
    assert (out / "a.csv").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_kill_between_renames_is_recovered_by_the_next_run(log_csv, tmp_path, capsys):
    # A process killed (SIGKILL) right after moving the old output aside leaves no output
    # folder; before, nothing put it back. The next clvkit run restores it before anything else.
    out = tmp_path / "out"
    _staged_output(out, "old")
    (tmp_path / "notes.txt").write_text("mine")
    script = f"""
import os, signal
from pathlib import Path
import clvkit.utils.io as cio
cio.exchange_paths = lambda a, b: False
real_rename = os.rename
def rename(src, dst):
    real_rename(src, dst)
    if ".clvkit-old-" in os.fspath(dst):
        os.kill(os.getpid(), signal.SIGKILL)
os.rename = rename
out = Path({str(out)!r})
cio.prepare_output_dir(out)
with cio.staged_output_dir(out, command="test") as staging:
    (staging / "a.csv").write_text("new")
"""
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.run([sys.executable, "-c", script], env=env, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    left = _temporaries(tmp_path)
    assert any(".out.clvkit-old-" in n for n in left) and any(".out.clvkit-tmp-" in n for n in left)
    # The next run (here one that fails right after, on a missing log) repairs first.
    code, _, err = _run(capsys, *_backtest_args(tmp_path / "missing.csv", out))
    _one_line_error(code, err, "missing.csv")
    assert (out / "a.csv").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "out"]
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_stale_temporaries_of_dead_processes_are_cleaned(tmp_path):
    proc = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = int(proc.stdout)
    (tmp_path / f".bt.clvkit-tmp-{dead}-abcd").mkdir()
    (tmp_path / f".clv.csv.clvkit-tmp-{dead}-x1y2").write_text("partial")
    (tmp_path / f".bt.clvkit-tmp-{os.getppid()}-live").mkdir()  # a live process: kept
    (tmp_path / ".bt.tmp-123").mkdir()  # not clvkit's pattern: kept
    cio.prepare_output_dir(tmp_path / "bt")
    cio.prepare_output_file(tmp_path / "clv.csv", suffixes=cio.TABLE_SUFFIXES)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".bt.clvkit-tmp-" + f"{os.getppid()}-live",
        ".bt.tmp-123",
    ]


# ---- file outputs ----------------------------------------------------------------------------
def test_value_out_below_a_file_fails_before_the_work(model, tmp_path, capsys):
    # Before: a FileExistsError traceback after the whole CLV run.
    (tmp_path / "existing").write_text("x")
    t0 = time.perf_counter()
    code, _, err = _run(capsys, "value", str(model), "--out", str(tmp_path / "existing" / "x.csv"))
    assert time.perf_counter() - t0 < 1.0
    _one_line_error(code, err, "is a file, not a folder")
    assert (tmp_path / "existing").read_text() == "x"


def test_fit_prefix_below_a_file_fails_before_reading(log_csv, tmp_path, capsys):
    (tmp_path / "existing").write_text("x")
    code, _, err = _run(capsys, "fit", str(log_csv), "--method", "map",
                        "--out", str(tmp_path / "existing" / "m"))  # fmt: skip
    _one_line_error(code, err, "is a file, not a folder")
    assert err.count("[") == 0  # no progress line: nothing was read or fitted


@pytest.mark.parametrize(
    ("command", "name", "accepted"),
    [("value", "clv.xlsx", ".csv, .parquet, .pq"), ("report", "report.csv", ".html, .htm")],
)
def test_suffix_clvkit_cannot_write_is_refused(log_csv, model, tmp_path, capsys, command, name,
                                               accepted):  # fmt: skip
    # Before: `value --out clv.xlsx` wrote CSV content into clv.xlsx.
    out = tmp_path / name
    if command == "value":
        argv = ["value", str(model), "--value-method", "expected", "--out", str(out)]
    else:
        argv = ["report", str(log_csv), "--calibration-end", CAL, "--observation-end", END,
                "--method", "map", "--out", str(out)]  # fmt: skip
    code, _, err = _run(capsys, *argv, "--quiet")
    _one_line_error(code, err, f"use one of {accepted}")
    assert not out.exists()


def test_file_output_at_an_existing_folder_is_refused(model, tmp_path, capsys):
    (tmp_path / "clv.csv").mkdir()
    code, _, err = _run(capsys, "value", str(model), "--out", str(tmp_path / "clv.csv"))
    _one_line_error(code, err, "existing folder, not a file")


def test_file_outputs_replace_only_the_named_file(model, tmp_path, capsys):
    (tmp_path / "clv.csv").write_text("old")
    (tmp_path / "other.csv").write_text("mine")
    code, _, _ = _run(capsys, "value", str(model), "--value-method", "expected",
                      "--out", str(tmp_path / "clv.csv"), "--quiet")  # fmt: skip
    assert code == 0
    assert len(pd.read_csv(tmp_path / "clv.csv", index_col=0)) == 300
    assert (tmp_path / "other.csv").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clv.csv", "other.csv"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_model_files_get_the_usual_mode(tmp_path, umask):
    # Before: .nc files were always 0600 (mkstemp), other outputs 0644 under umask 022.
    from clvkit import BetaGeo
    from clvkit.datasets import cdnow_calibration_summary

    model = BetaGeo().fit(cdnow_calibration_summary(), method="mle")
    old = os.umask(umask)
    try:
        model.save(tmp_path / "bg.nc")
    finally:
        os.umask(old)
    assert (tmp_path / "bg.nc").stat().st_mode & 0o777 == 0o666 & ~umask
    assert [p.name for p in tmp_path.iterdir()] == ["bg.nc"]


def test_unwritable_parent_fails_before_the_work(log_csv, unprivileged_command):
    # Before: the whole backtest ran, then failed on the read-only folder. Run as 'nobody'
    # (uid 65534) since root may write anywhere; pytest's own temporary folders are private
    # (0700), so this test uses a world-readable one of its own.
    import shutil
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="clvkit-unwritable-"))
    try:
        os.chmod(base, 0o755)
        log = base / "log.csv"
        shutil.copyfile(log_csv, log)
        os.chmod(log, 0o644)
        locked = base / "locked"
        locked.mkdir(mode=0o755)
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": SRC, "HOME": str(base)}
        t0 = time.perf_counter()
        proc = subprocess.run(
            [*unprivileged_command, sys.executable, "-m", "clvkit.cli",
             *_backtest_args(log, locked / "bt")],
            env=env, capture_output=True, text=True, timeout=120, cwd=base,
        )  # fmt: skip
        elapsed = time.perf_counter() - t0
        _one_line_error(proc.returncode, proc.stderr, "is not writable")
        assert elapsed < 3.0  # interpreter start + the check; the work takes far longer
        assert list(locked.iterdir()) == []
    finally:
        shutil.rmtree(base)


def test_unwritable_parent_check_runs_before_the_work(log_csv, tmp_path, capsys, monkeypatch):
    # The same rule in-process, where root cannot be made to lack write access: the folder
    # is reported unwritable by os.access (what the check asks), and nothing is read or fitted.
    locked = tmp_path / "locked"
    locked.mkdir()
    real_access = os.access

    def access(path, mode, *args, **kwargs):
        if Path(path) == locked and mode & os.W_OK:
            return False
        return real_access(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)
    for argv in (
        _backtest_args(log_csv, locked / "bt"),
        ["report", str(log_csv), "--calibration-end", CAL, "--observation-end", END,
         "--out", str(locked / "r.html")],
        ["fit", str(log_csv), "--out", str(locked / "sub" / "m")],
    ):  # fmt: skip
        t0 = time.perf_counter()
        code, _, err = _run(capsys, *argv)
        assert time.perf_counter() - t0 < 1.0
        _one_line_error(code, err, "is not writable")
        assert "[" not in err  # no progress line: nothing was read or fitted
    assert list(locked.iterdir()) == []


# ---- signals, pipes and OS errors -----------------------------------------------------------
class _TestTerm(BaseException):
    pass


def _raise_test_term(signum, frame):
    raise _TestTerm


def _sigterm_inside(monkeypatch, cls, name: str) -> None:
    """Make ``cls.name`` write its file, then receive SIGTERM while the temporary exists."""
    real = getattr(cls, name)

    def wrapped(*args, **kwargs):
        result = real(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(10_000):  # Python runs the handler between bytecodes
            time.sleep(0)
        return result

    monkeypatch.setattr(cls, name, wrapped)


def test_sigterm_during_value_leaves_old_file_and_no_temporary(
    model, tmp_path, capsys, monkeypatch
):
    # Before: SIGTERM killed the run with its partial .tmp file left in the folder.
    out = tmp_path / "clv.csv"
    out.write_text("old output")
    previous = signal.signal(signal.SIGTERM, _raise_test_term)
    try:
        _sigterm_inside(monkeypatch, pd.DataFrame, "to_csv")
        code, _, err = _run(capsys, "value", str(model), "--value-method", "expected",
                            "--out", str(out), "--quiet")  # fmt: skip
        assert signal.getsignal(signal.SIGTERM) is _raise_test_term  # main restored it
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == 143
    assert err.strip().splitlines() == ["clvkit: terminated (SIGTERM); temporary files removed"]
    assert out.read_text() == "old output"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clv.csv"]


def test_sigterm_during_backtest_removes_the_staging_folder(log_csv, tmp_path, capsys, monkeypatch):
    import matplotlib.figure

    out = tmp_path / "bt"
    _staged_output(out, "old output")
    before = _snapshot(tmp_path)
    previous = signal.signal(signal.SIGTERM, _raise_test_term)
    try:
        _sigterm_inside(monkeypatch, matplotlib.figure.Figure, "savefig")
        code, _, err = _run(capsys, *_backtest_args(log_csv, out))
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert code == 143 and "terminated" in err
    assert _snapshot(tmp_path) == before and _temporaries(tmp_path) == []


def test_os_error_while_writing_is_one_line(model, tmp_path, capsys, monkeypatch):
    def full_disk(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", full_disk)
    code, _, err = _run(capsys, "value", str(model), "--value-method", "expected",
                        "--out", str(tmp_path / "clv.csv"), "--quiet")  # fmt: skip
    _one_line_error(code, err, "No space left on device")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("seed", ["-1", "1.5", "x", str(2**32)])
def test_bad_seed_is_a_usage_error(model, capsys, seed):
    # Before: '--seed -1' reached numpy and ended in a traceback.
    with pytest.raises(SystemExit) as info:
        main(["value", str(model), "--seed", seed, "--quiet"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "argument --seed" in err.strip().splitlines()[-1]


def test_closed_stdout_is_a_quiet_exit(log_csv, tmp_path):
    # Before: a BrokenPipeError traceback (`clvkit value ... | head`). main() handles it the
    # same way for every command; summarize is the quickest one that prints.
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.Popen(
        [sys.executable, "-m", "clvkit.cli", "summarize", str(log_csv), "--quiet",
         "--out", str(tmp_path / "rfm.parquet")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    proc.stdout.close()  # the reader is gone before clvkit prints
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141
    assert err == ""
    assert len(pd.read_parquet(tmp_path / "rfm.parquet")) == 300


def test_broken_pipe_in_process(model, capsys, monkeypatch):
    class ClosedPipe:
        def write(self, text):
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

        def flush(self):
            raise BrokenPipeError(errno.EPIPE, "Broken pipe")

    monkeypatch.setattr(sys, "stdout", ClosedPipe())
    code = main(["value", str(model), "--value-method", "expected", "--quiet"])
    monkeypatch.undo()
    assert code == 141 and capsys.readouterr().err == ""


# ---- summarize ------------------------------------------------------------------------------
def test_summarize_writes_the_rfm_table_of_the_path(log_csv, tmp_path, capsys):
    out = tmp_path / "rfm.parquet"
    code, stdout, _ = _run(capsys, "summarize", str(log_csv), "--amount", "amount",
                           "--out", str(out), "--quiet")  # fmt: skip
    assert code == 0 and stdout.startswith("300 customers")
    expected = clvkit.rfm_summary(str(log_csv), amount="amount")
    pd.testing.assert_frame_equal(pd.read_parquet(out), expected, check_like=False)

    cal = tmp_path / "cal.csv"
    code, _, _ = _run(capsys, "summarize", str(log_csv), "--amount", "amount",
                      "--calibration-end", CAL, "--observation-end", END, "--out", str(cal),
                      "--quiet")  # fmt: skip
    assert code == 0
    table = pd.read_csv(cal, index_col=0)
    expected = clvkit.calibration_holdout(str(log_csv), calibration_end=CAL, observation_end=END,
                                          amount="amount")  # fmt: skip
    assert list(table.columns) == list(expected.columns) and len(table) == len(expected)
    assert table["frequency_holdout"].sum() == expected["frequency_holdout"].sum()

    code, _, err = _run(capsys, "summarize", str(log_csv), "--calibration-end", CAL,
                        "--out", str(tmp_path / "x.csv"))  # fmt: skip
    _one_line_error(code, err, "--observation-end")
    code, _, err = _run(capsys, "summarize", str(log_csv), "--out", str(tmp_path / "x.json"))
    _one_line_error(code, err, "use one of .csv, .parquet, .pq")


def test_sigterm_inside_a_critical_section_is_deferred_to_its_end():
    # Creating a temporary and arming its cleanup, or a swap, is never cut in half.
    steps = []
    with cio.sigterm_as_exception():
        with pytest.raises(cio.Terminated):
            with cio.no_interruption():
                os.kill(os.getpid(), signal.SIGTERM)
                for _ in range(10_000):
                    time.sleep(0)
                steps.append("finished")
            steps.append("not reached")
    assert steps == ["finished"]
