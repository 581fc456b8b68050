"""Rolling-origin backtest (issue 18): coverage on a known BG/NBD, error by horizon on CDNOW,
one origin equal to the single-split backtest, skipped windows said in words, bad arguments."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvkit.datasets import cdnow_transactions, simulate
from clvkit.errors import ClvkitError
from clvkit.evaluation import backtest, rolling_backtest

MAP = {"method": "map"}


@pytest.fixture(scope="module")
def cdnow_rolling():
    """CDNOW, origins every 13 weeks, horizons 13/26/39 weeks, MAP fits."""
    return rolling_backtest(
        cdnow_transactions(), origins="13W", horizons=[13, 26, 39], fit_kwargs=MAP,
        n_samples=500, random_seed=0,
    )  # fmt: skip


def test_interval_coverage_on_known_bgnbd():
    """Data simulated from a known BG/NBD: the per-customer 90% predictive intervals cover
    85-95% of customers averaged over 3 origins x 2 horizons (measured 90.2%; per pair
    89.5-90.9%). The randomized-PIT coverage is the calibrated one; the plain interval
    [lower, upper] of a discrete count holds at least 90% of the mass, so it covers more
    (measured 96.9-98.2%)."""
    sim = simulate(
        4000, r=0.25, alpha=4.0, a=0.8, b=2.5, acquisition_periods=26, observation_periods=104,
        random_seed=7,
    )  # fmt: skip
    origins = [sim.start + pd.Timedelta(weeks=w) for w in (39, 52, 65)]
    bt = rolling_backtest(
        sim.transactions, origins=origins, horizons=[13, 26], fit_kwargs=MAP, n_samples=500,
        random_seed=0, observation_end=sim.observation_end,
    )  # fmt: skip
    t = bt.table()
    assert len(t) == 6 and bt.skipped.empty and bt.notes == []
    assert 0.85 <= t["coverage"].mean() <= 0.95
    assert t["coverage"].mean() == pytest.approx(0.90233, abs=1e-4)
    assert t["coverage"].between(0.88, 0.92).all()
    assert (t["interval_coverage"] >= 0.96).all()
    assert bt.by_horizon()["coverage"].between(0.85, 0.95).all()


def test_mae_grows_with_horizon_on_cdnow(cdnow_rolling):
    """CDNOW (78 weeks), origins at weeks 13, 26, 39, 52, 65, horizons 13/26/39 weeks: the MAE
    per customer grows with the horizon (averaged over the origins that observe it: 0.402 at
    13 weeks over 4 origins, 0.731 at 26 over 3, 1.085 at 39 over 2). The mean only depends on
    the MAP fits (no simulation), so the numbers are tight."""
    by = cdnow_rolling.by_horizon()
    assert by["origins"].tolist() == [4, 3, 2]
    assert by["mae"].tolist() == pytest.approx([0.40201, 0.73051, 1.08459], abs=1e-5)
    assert by.loc[13.0, "mae"] < by.loc[26.0, "mae"] < by.loc[39.0, "mae"]
    t = cdnow_rolling.table()
    # every origin has the 2,357 customers (CDNOW acquired them all in its first 12 weeks)
    assert (t["customers"] == 2357).all()
    # the MAE grows with the horizon at each origin, too
    for _, per in t.groupby(level="origin"):
        assert per["mae"].is_monotonic_increasing
    assert t["aggregate_error"].to_numpy() == pytest.approx(
        (t["total_predicted"] - t["total_actual"]).to_numpy()
    )


def test_skipped_windows_are_said_in_words(cdnow_rolling):
    """Windows past the log's end (1998-06-30) are skipped and listed: week 39 + 39 weeks,
    week 52 + 26/39 weeks, and the origin at week 65 (1998-04-01) which has no window."""
    sk = cdnow_rolling.skipped
    assert len(sk) == 6
    assert set(sk["reason"]) == {"past the log's end"}
    assert (sk["window_end"] > pd.Timestamp("1998-06-30")).all()
    notes = cdnow_rolling.notes
    assert notes == [
        "Origin 1997-10-01: horizon(s) 39 x W skipped: the window would end after the log's "
        "end (1998-06-30).",
        "Origin 1997-12-31: horizon(s) 26, 39 x W skipped: the window would end after the "
        "log's end (1998-06-30).",
        "Origin 1998-04-01: horizon(s) 13, 26, 39 x W skipped: the window would end after the "
        "log's end (1998-06-30). No window left: this origin was not fitted.",
    ]
    assert pd.Timestamp("1998-04-01") not in cdnow_rolling.fits
    assert notes[-1] in cdnow_rolling.report()


def test_one_origin_equals_single_split_backtest():
    """One origin (1997-09-30) and one horizon (39 weeks, to 1998-06-30): the per-customer
    expected purchases equal evaluation.backtest's with the same fit to 1e-10, and the
    actual holdout purchases are the same (1,882 in total)."""
    log = cdnow_transactions()
    bt = rolling_backtest(
        log, origins=["1997-09-30"], horizons=[39], fit_kwargs=MAP, n_samples=200, random_seed=1
    )
    origin = pd.Timestamp("1997-09-30")
    pred = bt.predictions[(origin, 39.0)]
    single = backtest(
        log, calibration_end="1997-09-30", observation_end="1998-06-30",
        transactions_model=bt.fits[origin], n_samples=200, random_seed=1,
    )  # fmt: skip
    ref = single.customers
    assert pred.index.equals(ref.index)
    np.testing.assert_allclose(pred["predicted"], ref["predicted"], rtol=0, atol=1e-10)
    np.testing.assert_array_equal(pred["actual"], ref["actual"])
    assert pred["actual"].sum() == 1882
    row = bt.table().loc[(origin, 39.0)]
    assert row["window_end"] == pd.Timestamp("1998-06-30")
    assert row["mae"] == pytest.approx(single.metrics.loc["purchases", "mae"], abs=1e-12)


def test_file_route_gives_the_same_table(tmp_path):
    """A CSV of the log (the DuckDB route) gives the same table as the DataFrame."""
    log = cdnow_transactions()
    path = tmp_path / "cdnow.csv"
    log.assign(date=log["date"].dt.strftime("%Y-%m-%d")).to_csv(path, index=False)
    kw = dict(origins=["1997-07-02"], horizons=["13W"], fit_kwargs=MAP, n_samples=100,
              random_seed=3)  # fmt: skip
    a = rolling_backtest(log, **kw).table()
    b = rolling_backtest(str(path), **kw).table()
    pd.testing.assert_frame_equal(a, b)


@pytest.mark.parametrize(
    ("origins", "horizons", "match"),
    [
        (
            ["1997-10-01", "1997-07-02"],
            [13],
            "'origins': 1 of 2 date\\(s\\) out of increasing order",
        ),
        (["1997-07-02", "1997-07-02"], [13], "'origins': 1 of 2 date\\(s\\) duplicated"),
        (
            ["1996-12-01"],
            [13],
            "'origins': 1 of 1 date\\(s\\) on or before the log's first purchase day",
        ),
        (["1998-07-15"], [13], "'origins': 1 of 1 date\\(s\\) after the log's end"),
        (["1997-07-02"], [0], "'horizons'"),
        (["1997-07-02"], [13, "13W"], "'horizons'.*duplicates"),
        (["1998-06-01"], [13], "no \\(origin, horizon\\) window"),
    ],
)
def test_bad_arguments(origins, horizons, match):
    with pytest.raises(ClvkitError, match=match):
        rolling_backtest(cdnow_transactions(), origins=origins, horizons=horizons, fit_kwargs=MAP)


def test_models_must_be_registry_names():
    with pytest.raises(ClvkitError, match="'transactions_model' must be the registry name"):
        rolling_backtest(
            cdnow_transactions(), origins=["1997-07-02"], horizons=[13],
            transactions_model={"r": 0.2, "alpha": 4.0, "a": 0.8, "b": 2.4},
        )  # fmt: skip


def test_progress_over_origins(capsys):
    rolling_backtest(
        cdnow_transactions(), origins=["1997-07-02", "1997-10-01"], horizons=[13],
        fit_kwargs=MAP, n_samples=50, progressbar=True,
    )  # fmt: skip
    assert "rolling backtest: 2/2 (100%), done" in capsys.readouterr().err
