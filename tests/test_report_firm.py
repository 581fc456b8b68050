"""The report page of the equity history and the rolling backtest: its sentences carry the
results' numbers and say when something is uncertain or miscalibrated."""

from __future__ import annotations

import numpy as np
import pytest

import clvkit
from clvkit.datasets import cdnow_transactions
from clvkit.errors import ClvkitError
from clvkit.report_firm import firm_report, history_sentences, horizon_words, rolling_sentences


@pytest.fixture(scope="module")
def history():
    return clvkit.equity_history(
        cdnow_transactions(), cutoffs="13W", horizon="52W", annual_discount_rate=0.1,
        fit_kwargs={"method": "laplace", "draws": 300}, refit=2, random_seed=0,
    )  # fmt: skip


@pytest.fixture(scope="module")
def rolling():
    return clvkit.rolling_backtest(
        cdnow_transactions(), origins="13W", horizons=[13, 26], fit_kwargs={"method": "map"},
        n_samples=300, random_seed=0,
    )  # fmt: skip


def test_history_sentences_carry_the_numbers(history):
    t = history.table()
    lines = history_sentences(history)
    text = [s for s, _ in lines]
    last = t.iloc[-1]
    assert text[0].startswith(
        f"Customer equity on {t.index[-1].date()} is {last['equity']:,.0f} "
        f"[{last['equity_lower']:,.0f}, {last['equity_upper']:,.0f}] (90% interval) for 2,357"
    )
    change = (history.equity.values[-1] - history.equity.values[0]).ravel()
    rel = change.mean() / t["equity"].iloc[0]
    assert f"down {abs(rel):.0%} from {t.index[0].date()}" in text[0]
    b = history.bridge()
    assert f"took {-b['lost'].sum():,.0f} ({int(b['lost_customers'].sum()):,} customers)" in text[1]
    # CDNOW acquired everyone in its first 12 weeks: no new customers after the first cut-off
    assert "new customers added 0 (0 customers)" in text[1]
    # the first cut-off (13 weeks of data) is the widest, and the reused fits are named
    wide = next(s for s, c in lines if c == "warn")
    assert wide.startswith(f"Equity on {t.index[0].date()} is uncertain")
    reused = [str(c.date()) for c, r in t.iterrows() if not r["refit"]]
    assert reused and any(", ".join(reused) in s for s in text)


def test_history_sentences_of_point_fits_state_no_interval():
    """MAP fits give one draw per cut-off: the sentences give the numbers without a
    degenerate [x, x] interval, and say why there is none."""
    h = clvkit.equity_history(
        cdnow_transactions(), cutoffs=["1997-04-02", "1997-10-01"], horizon="52W",
        annual_discount_rate=0.1, fit_kwargs={"method": "map"}, random_seed=0,
    )  # fmt: skip
    t = h.table()
    lines = history_sentences(h)
    first = lines[0][0]
    last = t.iloc[-1]
    assert first.startswith(
        f"Customer equity on 1997-10-01 is {last['equity']:,.0f} (point fits: no interval; "
        "NUTS or Laplace fits give one) for 2,357 customers"
    )
    change = last["equity"] - t.iloc[0]["equity"]
    assert f"(change {change:,.0f})." in first and "[" not in first
    assert lines[0][1] == ""
    assert all("[" not in s for s, _ in lines)


def test_horizon_words():
    assert horizon_words(365.25 * 5 / 7, "W") == "5 years (260.9 W)"
    assert horizon_words(52.0, "W") == "52 W"  # 364 days: not a whole year
    assert horizon_words(12.0, "M") == "1 year (12 M)"
    assert horizon_words(1.5, "Y") == "1.5 Y"


def test_rolling_sentences_flag_a_too_narrow_total(rolling):
    by = rolling.by_horizon()
    lines = rolling_sentences(rolling)
    cov = lines[0][0]
    assert ", ".join(f"{c:.0%}" for c in by["coverage"]) in cov
    assert lines[0][1] == ("ok" if np.abs(by["coverage"] - 0.9).max() <= 0.05 else "warn")
    assert f"from {by['mae'].iloc[0]:.2f} to {by['mae'].iloc[-1]:.2f}" in lines[1][0]
    total, css = lines[2]
    assert f"miss by {by['abs_aggregate_error_pct'].mean():.1f}%" in total
    # CDNOW's totals under MAP fits: the aggregate interval covered 50% / 0% of origins
    # (measured), well below 90%: the sentence must say so, and why
    assert (by["total_covered"] < 0.65).any()
    assert css == "warn" and "too narrow (a point fit, map" in total


def test_the_page_has_both_parts_and_refuses_nothing_to_show(history, rolling, tmp_path):
    path = firm_report(history, rolling).write(tmp_path / "firm.html")
    page = open(path, encoding="utf-8").read()
    assert page.count("<img") == 3  # the fan, the last bridge, the error by horizon
    assert "Bridge from each cut-off to the next" in page and "rolling-origin" in page
    with pytest.raises(ClvkitError, match="needs a firm valuation, an equity history or a rolling"):
        firm_report()
