"""The HTML report opened in a real browser (headless Chromium): it renders, with its images.

Chromium is installed by ``make test`` when missing (Debian's ``chromium`` package); where it
cannot be installed this test is skipped with that reason. The screenshot is kept in
``test-artifacts/report.png`` (or ``$CLVKIT_ARTIFACTS``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from clvkit.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTIFACTS = Path(os.environ.get("CLVKIT_ARTIFACTS", Path(__file__).parents[1] / "test-artifacts"))
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--run-all-compositor-stages-before-draw",
    "--virtual-time-budget=5000",
]

# Appended to a copy of the report only: counts images that decoded to real pixels.
PROBE = """<script>
window.addEventListener('load', () => {
  const imgs = Array.from(document.images);
  const ok = imgs.filter(i => i.complete && i.naturalWidth > 100 && i.naturalHeight > 100);
  document.body.setAttribute('data-images', imgs.length + '/' + ok.length);
});
</script>"""


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    from clvkit.datasets import cdnow_transactions

    folder = tmp_path_factory.mktemp("browser")
    csv = folder / "cdnow.csv"
    cdnow_transactions().to_csv(csv, index=False)
    out = folder / "report.html"
    code = main(
        ["report", str(csv), "--amount", "amount", "--calibration-end", "1997-09-30",
         "--observation-end", "1998-06-30", "--method", "mle", "--out", str(out),
         "--quiet", "--seed", "11"]
    )  # fmt: skip
    assert code == 0
    return out


def _chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.skipif(
    CHROMIUM is None,
    reason="Chromium is not installed and could not be installed here (make test tries "
    "'apt-get install chromium'); the report's browser rendering is not checked.",
)
def test_report_renders_in_chromium(report_html, tmp_path):
    probe = tmp_path / "probe.html"
    probe.write_text(report_html.read_text().replace("</body>", PROBE + "</body>"))
    dom = _chromium(tmp_path / "p1", "--dump-dom", probe.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'data-images="(\d+)/(\d+)"', dom.stdout)
    assert found, "the load handler did not run"
    total, decoded = map(int, found.groups())
    assert total >= 8 and decoded == total

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "report.png"
    res = _chromium(
        tmp_path / "p2", "--window-size=1200,2400", f"--screenshot={shot}", report_html.as_uri()
    )
    assert res.returncode == 0, res.stderr[-2000:]
    from matplotlib.image import imread

    pixels = imread(shot)
    assert pixels.shape[0] >= 2000 and pixels.shape[1] >= 1100
    # a rendered page, not a blank one: many distinct colours and real variation
    assert np.std(pixels[..., :3]) > 0.05
    assert len(np.unique(pixels[::8, ::8, :3].reshape(-1, 3), axis=0)) > 200


# Appended to a copy of the report only: the rendered text and every table's cells, as the
# browser shows them.
TEXT_PROBE = """<script>
window.addEventListener('load', () => {
  const tables = Array.from(document.querySelectorAll('table')).map(t => Array.from(t.rows).map(
    r => Array.from(r.cells).map(c => c.innerText.trim())));
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify({text: document.body.innerText, tables: tables});
  document.body.appendChild(pre);
});
</script>"""


@pytest.fixture(scope="module")
def demo_output(tmp_path_factory) -> Path:
    """`clvkit demo --method mle`: the report and the per-customer CSV of one run."""
    out = tmp_path_factory.mktemp("demo") / "out"
    assert main(["demo", "--method", "mle", "--out", str(out), "--quiet"]) == 0
    return out


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed (see above)")
def test_rendered_report_tells_the_verdict_dates_and_tier_counts(demo_output, tmp_path):
    import html
    import json

    import pandas as pd

    page = demo_output / "report.html"
    probe = tmp_path / "probe.html"
    probe.write_text(page.read_text().replace("</body>", TEXT_PROBE + "</body>"))
    dom = _chromium(tmp_path / "p", "--dump-dom", probe.as_uri())
    assert dom.returncode == 0, dom.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, re.S)
    assert found, "the load handler did not run"
    rendered = json.loads(html.unescape(found.group(1)))
    text = rendered["text"]
    # the verdict opens the page, before the value and the models
    assert text.index("Verdict") < text.index("Customer value") < text.index("Models")
    assert "The backtest does not fully support the model" in text
    assert "[FAILED] Total holdout purchases" in text and "plan with the upper bound" in text
    assert "without a repeat purchase" in text and "property of the model" in text
    # the as-of dates: the valuation's and the backtest's
    assert "Values as of 1998-06-30: models fitted on all purchases up to 1998-06-30" in text
    assert "a separate fit on the calibration window (purchases to 1997-09-30)" in text
    # tier counts on the page equal the CSV's tier column
    csv = pd.read_csv(demo_output / "customer_value.csv", index_col=0)
    counts = csv["tier"].value_counts()
    tier_rows = {}
    for table in rendered["tables"]:
        if table and {"top_share", "count", "equity_share"} <= set(table[0]):
            col = table[0].index("count")
            tier_rows = {row[0]: row[col] for row in table[1:] if row and row[0]}
    assert tier_rows and set(tier_rows) >= set(counts.index)
    for tier, n in counts.items():
        assert tier_rows[tier] == f"{n:,}"
    # no cell shows NaN or a number with more than 4 decimals
    cells = [c for table in rendered["tables"] for row in table for c in row]
    assert cells
    assert not [c for c in cells if re.search(r"\bnan\b|\bNone\b", c, re.I)]
    assert not [c for c in cells if re.search(r"\d\.\d{5,}", c)]
    assert not re.search(r"\d\.\d{5,}", text) and not re.search(r"\bNaN\b", text)
