"""Months, quarters and years as time units and durations (issue 14, item 5)."""

import numpy as np
import pandas as pd
import pytest

from clvkit.data import calibration_holdout, rfm_summary
from clvkit.errors import ClvkitError
from clvkit.units import duration_in_units, format_time_unit, parse_time_unit, to_units


@pytest.mark.parametrize(
    ("unit", "days"),
    [
        ("M", 30.4375),
        ("mo", 30.4375),
        ("months", 30.4375),
        ("Q", 91.3125),
        ("q", 91.3125),
        ("Y", 365.25),
        ("y", 365.25),
        ("year", 365.25),
        ("12M", 365.25),
        ("3M", 91.3125),
        ("0.5Y", 182.625),
        ("1.5 months", 45.65625),
    ],
)
def test_calendar_units_are_mean_calendar_periods(unit, days):
    assert parse_time_unit(unit) / pd.Timedelta(days=1) == days


@pytest.mark.parametrize(
    ("unit", "canonical"),
    [("M", "M"), ("month", "M"), ("3M", "Q"), ("Q", "Q"), ("12M", "Y"), ("1Y", "Y"),
     ("0.5Y", "6M"), ("2Y", "2Y"), ("W", "W"), ("30D", "30D")],
)  # fmt: skip
def test_calendar_units_round_trip(unit, canonical):
    assert format_time_unit(unit) == canonical
    assert parse_time_unit(canonical) == parse_time_unit(unit)


@pytest.mark.parametrize("bad", ["m", "12m", " 3 m "])
def test_lower_case_m_is_refused_with_both_readings(bad):
    with pytest.raises(ClvkitError, match=r"'M'.*months.*'min' for minutes"):
        parse_time_unit(bad, "horizon")


def test_durations_in_calendar_units():
    assert duration_in_units("1Y", "W", "t") == 365.25 / 7
    assert duration_in_units("12M", "W", "t") == 365.25 / 7
    assert duration_in_units("26W", "M", "t") == 182 / 30.4375
    assert duration_in_units("6M", "Y", "t") == 0.5
    assert to_units(pd.Timedelta(days=365.25), "M") == 12.0
    np.testing.assert_array_equal(to_units(pd.to_timedelta([0, 91.3125], unit="D"), "Q"), [0, 1])


def test_cashflow_horizon_in_months():
    from clvkit.value.settings import CashflowSettings

    plan, rate = CashflowSettings("12M", period="M", annual_discount_rate=0.1).plan(
        pd.Timedelta(weeks=1)
    )
    assert plan.horizon == 365.25 / 7 and plan.n_periods == 12
    assert rate == pytest.approx(1.1 ** (1 / 12) - 1, rel=1e-12)


def _log():
    return pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "b", "c"],
            "date": ["2024-01-01", "2024-03-01", "2024-06-30", "2024-02-15", "2024-08-01"],
            "amount": [10.0, 20.0, 30.0, 5.0, 7.0],
        }
    )


def test_rfm_summary_in_months_on_both_routes(tmp_path):
    log = _log()
    path = tmp_path / "log.csv"
    log.to_csv(path, index=False)
    mem = rfm_summary(log, amount="amount", time_unit="M", observation_end="2024-12-31")
    disk = rfm_summary(str(path), amount="amount", time_unit="M", observation_end="2024-12-31")
    pd.testing.assert_frame_equal(mem, disk)
    assert mem.attrs == disk.attrs and mem.attrs["time_unit"] == "M"
    # a: first 2024-01-01, last 2024-06-30 (181 days), end 2024-12-31 (365 days)
    assert mem.loc["a", "recency"] == 181 / 30.4375
    assert mem.loc["a", "T"] == 365 / 30.4375
    ch_mem = calibration_holdout(
        log, calibration_end="2024-06-30", observation_end="2024-12-31", time_unit="Q"
    )
    ch_disk = calibration_holdout(
        str(path), calibration_end="2024-06-30", observation_end="2024-12-31", time_unit="Q"
    )
    pd.testing.assert_frame_equal(ch_mem, ch_disk)
    assert ch_mem.loc["a", "duration_holdout"] == 184 / 91.3125


def test_calendar_units_round_trip_through_a_saved_model(tmp_path):
    import clvkit
    from clvkit.datasets import simulate
    from clvkit.models import BetaGeo

    sim = simulate(2000, r=0.5, alpha=2.0, a=1.0, b=3.0, time_unit="month",
                   acquisition_periods=3, observation_periods=18, random_seed=2)  # fmt: skip
    rfm = sim.rfm()
    assert rfm.attrs["time_unit"] == "M" and sim.time_unit == "M"
    model = BetaGeo().fit(rfm, method="mle")
    assert model.time_unit_ == "M"
    model.save(tmp_path / "bg.nc")
    again = clvkit.load(tmp_path / "bg.nc")
    assert again.time_unit_ == "M"
    same_unit = rfm.copy()
    same_unit.attrs["time_unit"] = "1month"  # the same unit, spelled otherwise
    np.testing.assert_array_equal(
        again.probability_alive(same_unit).values, model.probability_alive(rfm).values
    )
    weeks = rfm.copy()
    weeks.attrs["time_unit"] = "W"
    with pytest.raises(ClvkitError, match=r"time unit|time_unit"):
        again.probability_alive(weeks)
