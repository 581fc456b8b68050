"""Progress on stderr when it is not a terminal (issue 14: silent for minutes under a scheduler)."""

from __future__ import annotations

import io
import re
import time

from clvkit.utils.progress import heartbeat, progress, set_clock

STAMP = re.compile(r"^\[\s*([0-9.]+)s\] (.*)$")


def _lines(text: str) -> list[tuple[float, str]]:
    return [(float(m.group(1)), m.group(2)) for ln in text.splitlines() if (m := STAMP.match(ln))]


def test_progress_prints_timed_lines_and_a_last_line():
    out = io.StringIO()
    items = list(progress(range(4), 4, True, "chunks", every=0.0, stream=out))
    assert items == [0, 1, 2, 3]
    lines = _lines(out.getvalue())
    assert [t for _, t in lines] == [
        "chunks: 1/4 (25%)", "chunks: 2/4 (50%)", "chunks: 3/4 (75%)", "chunks: 4/4 (100%), done",
    ]  # fmt: skip
    assert list(progress(range(2), 2, False, "quiet", stream=out)) == [0, 1]
    assert "quiet" not in out.getvalue()


def test_progress_lines_share_the_command_clock():
    out = io.StringIO()
    set_clock(time.perf_counter() - 100.0)
    try:
        list(progress(range(1), 1, True, "value", stream=out))
    finally:
        set_clock(None)
    ((elapsed, text),) = _lines(out.getvalue())
    assert elapsed >= 100.0 and text == "value: 1/1 (100%), done"
    out = io.StringIO()
    list(progress(range(1), 1, True, "value", stream=out))
    assert _lines(out.getvalue())[0][0] < 100.0


def test_heartbeat_beats_while_the_block_runs_and_stops_after():
    out = io.StringIO()
    with heartbeat("fitting bgnbd", True, every=0.02, stream=out):
        time.sleep(0.15)
    n = len(_lines(out.getvalue()))
    assert n >= 3 and all(t == "fitting bgnbd: still running" for _, t in _lines(out.getvalue()))
    time.sleep(0.1)
    assert len(_lines(out.getvalue())) == n  # the thread stopped with the block
