"""``clvkit retention --fee COLUMN``: the value of the subscriber base on stdout, in the report
page and per subscriber (--value-out), and its one-line errors (exit 2, nothing written)."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from clvkit.cli import main
from clvkit.evaluation.retention import subscriber_base_value

CAL, OBS = "2024-06-30", "2024-12-31"


@pytest.fixture(scope="module")
def contracts(tmp_path_factory) -> str:
    """Monthly contracts of 6 cohorts of 60 from an sBG (alpha 1, beta 3), fees 10 or 20."""
    rng = np.random.default_rng(5)
    month = np.repeat(np.datetime64("2023-07", "M") + np.arange(6), 60)
    day = rng.integers(0, 28, month.size)
    start = month.astype("datetime64[D]") + day
    life = rng.geometric(rng.beta(1.0, 3.0, month.size))
    end = (month + life).astype("datetime64[D]") + day
    frame = pd.DataFrame(
        {"customer_id": np.arange(month.size), "start": start,
         "end": pd.Series(end).where(end <= np.datetime64(OBS)),
         "fee": rng.choice([10.0, 20.0], month.size)}
    )  # fmt: skip
    path = tmp_path_factory.mktemp("contracts") / "c.csv"
    frame.to_csv(path, index=False)
    return str(path)


def _argv(path: str) -> list[str]:
    return ["retention", path, "--period", "M", "--calibration-end", CAL, "--observation-end",
            OBS, "--method", "map", "--seed", "1", "--samples", "200", "--quiet"]  # fmt: skip


def test_value_on_stdout_report_and_file(contracts, tmp_path, capsys):
    page, values = tmp_path / "r.html", tmp_path / "v.csv"
    argv = [*_argv(contracts), "--fee", "fee", "--margin", "0.5", "--annual-discount-rate",
            "0.08", "--horizon", "5Y", "--report", str(page), "--value-out", str(values)]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    ref = subscriber_base_value(contracts, "M", OBS, fee_col="fee", method="map", random_seed=1,
                                margin=0.5, annual_discount_rate=0.08, horizon="5Y")  # fmt: skip
    s = ref.summary()
    assert "Value of the subscriber base" in out
    assert f"equity {s.loc['equity', 'mean']:,.0f} (90% credible" in out
    assert re.search(r"one point more retention: \+\d\.\d\d% equity", out)
    assert "horizon 60 periods of M, margin 0.5" in out
    table = pd.read_csv(values, index_col=0)
    assert table.columns.tolist() == ["cohort", "renewals", "fee", "value", "lower", "upper"]
    assert len(table) == ref.settings["n_customers"]
    assert table["value"].sum() == pytest.approx(s.loc["equity", "mean"], rel=1e-9)
    html = page.read_text()
    assert "Value of the subscriber base" in html and "value by tenure" in html
    assert html.count("<img") == 6 + 1 + 1 + 1  # 6 cohorts, all, tenure curve, value
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.html", "v.csv"]


def test_without_fee_the_page_is_unchanged(contracts, tmp_path, capsys):
    page = tmp_path / "r.html"
    assert main([*_argv(contracts), "--report", str(page)]) == 0
    assert "Value of the subscriber base" not in capsys.readouterr().out
    assert "Value of the subscriber base" not in page.read_text()


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        (["--fee", "price"], "lacks columns ['price']"),
        (["--value-out", "v.csv"], "'--value-out' needs --fee"),
        (["--fee", "fee", "--value-out", "v.xlsx"], "--value-out"),
        (["--fee", "fee", "--margin", "1.5"], "'--margin' is 1.5"),
        (["--fee", "fee", "--annual-discount-rate", "10"], "rate above 1"),
        (["--fee", "fee", "--horizon", "soon"], "argument '--horizon' is 'soon'"),
        (["--fee", "fee", "--horizon", "0"], "less than one billing period"),
        (["--fee", "fee", "--predictive-draws", "0"], "'--predictive-draws' is 0"),
    ],
)
def test_errors_are_one_line(contracts, tmp_path, capsys, monkeypatch, extra, match):
    monkeypatch.chdir(tmp_path)
    assert main([*_argv(contracts), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("clvkit: error:") and match in err
    assert list(tmp_path.iterdir()) == []  # nothing written
