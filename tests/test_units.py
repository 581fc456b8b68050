import numpy as np
import pandas as pd
import pytest

from clvkit.errors import ClvkitError
from clvkit.units import format_time_unit, parse_time_unit, to_units


@pytest.mark.parametrize(
    ("unit", "days"),
    [("D", 1.0), ("W", 7.0), ("30D", 30.0), ("4.345W", 30.415), ("12h", 0.5)],
)
def test_parse_time_unit(unit, days):
    assert parse_time_unit(unit) / pd.Timedelta(days=1) == pytest.approx(days)


@pytest.mark.parametrize("bad", ["m", "12m", "banana", "0D", "-1W", "0M", "-1Y", 3])
def test_parse_time_unit_rejects(bad):
    with pytest.raises(ClvkitError, match="time_unit"):
        parse_time_unit(bad)


def test_format_round_trip():
    for unit in ["D", "W", "30D", "4.345W"]:
        assert parse_time_unit(format_time_unit(unit)) == parse_time_unit(unit)


def test_to_units_array():
    deltas = pd.to_timedelta([0, 7, 14, 3.5], unit="D")
    np.testing.assert_allclose(to_units(deltas, "W"), [0, 1, 2, 0.5])


@pytest.mark.parametrize(
    ("text", "zoned"),
    [
        ("2024-01-01", False),  # ends in "-01": a day of month, not an offset
        ("2024-01-01 10:00:00", False),
        ("2024-01-01T10:00", False),
        ("2024-01-01T10:00:00Z", True),
        ("2024-01-01 10:00:00+02:00", True),
        ("2024-01-01 10:00:00.123-0500", True),
        ("2024-01-01 10:00 +05", True),
        ("2024-01-01 10:00 UTC", True),
    ],
)
def test_zoned_text_needs_a_time_of_day_before_the_offset(text, zoned):
    import re

    import duckdb

    from clvkit.units import ZONED_TEXT

    assert (re.search(ZONED_TEXT, text) is not None) is zoned
    with duckdb.connect() as con:  # DuckDB's RE2 reads the pattern alike
        assert con.execute("SELECT regexp_matches(?, ?)", [text, ZONED_TEXT]).fetchone()[0] is zoned


def test_check_tz():
    from clvkit.units import check_tz

    assert check_tz(None) == "UTC" and check_tz("America/New_York") == "America/New_York"
    for bad in ("Mars/Olympus", "", 5, "../etc/passwd"):
        with pytest.raises(ClvkitError, match="argument 'tz'"):
            check_tz(bad)
