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


@pytest.mark.parametrize("bad", ["M", "Y", "banana", "0D", "-1W", 3])
def test_parse_time_unit_rejects(bad):
    with pytest.raises(ClvkitError, match="time_unit"):
        parse_time_unit(bad)


def test_format_round_trip():
    for unit in ["D", "W", "30D", "4.345W"]:
        assert parse_time_unit(format_time_unit(unit)) == parse_time_unit(unit)


def test_to_units_array():
    deltas = pd.to_timedelta([0, 7, 14, 3.5], unit="D")
    np.testing.assert_allclose(to_units(deltas, "W"), [0, 1, 2, 0.5])
