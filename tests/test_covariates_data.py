"""The covariate design (issue 17, build item 1): encoding, alignment and clear errors."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clvkit.data.covariates import covariate_design
from clvkit.errors import ClvkitError


@pytest.fixture
def cov():
    return pd.DataFrame(
        {
            "customer_id": list(range(10, 20)),
            "channel": ["web", "shop", "web", "ad", "web", "shop", "ad", "web", "shop", "web"],
            "vip": [True, False, False, True, False, False, False, True, False, False],
            "region": [1, 2, 1, 3, 2, 1, 1, 2, 3, 2],
            "first_amount": [10.0, 30.0, 20.0, 40.0, 25.0, 35.0, 15.0, 50.0, 45.0, 5.0],
        }
    )


def test_encoding_reference_levels_and_centres(cov):
    order = [14, 10, 11, 12, 13, 15, 16, 17, 18, 19]
    rfm = pd.DataFrame({"frequency": range(10)}, index=pd.Index(order))
    before = copy.deepcopy(cov)
    d = covariate_design(cov, rfm, categorical=["region"], reference={"vip": True})
    pd.testing.assert_frame_equal(cov, before)  # the caller's frame is untouched
    assert d.names == (
        "channel[ad]", "channel[shop]", "vip[False]", "region[2]", "region[3]", "first_amount",
    )  # fmt: skip
    assert d.reference == {"channel": "web", "vip": True, "region": 1}
    assert list(d.index) == order
    # customer 13: channel ad, vip, region 3, first amount 40; the mean over all is 27.5
    row = dict(zip(d.names, d.matrix[4], strict=True))
    assert row == {"channel[ad]": 1.0, "channel[shop]": 0.0, "vip[False]": 0.0, "region[2]": 0.0,
                   "region[3]": 1.0, "first_amount": 12.5}  # fmt: skip
    assert d.centre == {"first_amount": 27.5}
    assert d.describe().loc["vip[False]", "meaning"] == "vip False instead of True"


def test_file_routes_give_the_same_design(cov, tmp_path):
    idx = pd.Index(range(10, 20), name="customer_id")
    a = covariate_design(cov, idx)
    for name in ("c.csv", "c.parquet"):
        path = tmp_path / name
        (cov.to_csv(path, index=False) if name.endswith("csv") else cov.to_parquet(path))
        b = covariate_design(path, idx)
        np.testing.assert_array_equal(a.matrix, b.matrix)
        assert (a.names, a.centre, a.levels) == (b.names, b.centre, b.levels)


def test_encode_new_customers_and_counterfactuals(cov):
    d = covariate_design(cov, pd.Index(range(10, 20)))
    np.testing.assert_array_equal(d.encode(cov, d.index), d.matrix)
    moved = cov.assign(channel="shop")  # everyone through the shop: a counterfactual
    m = d.encode(moved, d.index)
    j = d.names.index("channel[shop]")
    assert m[:, j].tolist() == [1.0] * 10 and m[:, d.names.index("channel[ad]")].sum() == 0
    with pytest.raises(ClvkitError, match=r"level not seen .* 1 of 10 rows.*'phone'"):
        d.encode(cov.assign(channel=["web"] * 9 + ["phone"]), d.index)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda c: c.drop(index=2), r"customers of the customer table have no row.*12"),
        (
            lambda c: c.assign(first_amount=[1.0, np.nan, *range(2, 10)]),
            r"'first_amount'.*missing.*11",
        ),
        (
            lambda c: c.assign(channel=["web", None] + ["ad", "web"] * 4),
            r"'channel'.*missing",
        ),
        (lambda c: pd.concat([c, c.iloc[[0]]]), r"appear more than once.*10"),
        (lambda c: c.assign(first_amount=5.0), r"one value \(5.0\) for all 10"),
        (
            lambda c: c.assign(region=c["first_amount"] * 2),
            r"'first_amount' is a linear combination",
        ),
        (lambda c: c.assign(customer_id=c["customer_id"].astype(str)), r"different kinds"),
    ],
)
def test_bad_covariates_are_named(cov, change, match):
    idx = pd.Index(range(10, 20), name="customer_id")
    with pytest.raises(ClvkitError, match=match):
        covariate_design(change(cov), idx, columns=["channel", "region", "first_amount"])


def test_argument_errors(cov):
    idx = pd.Index([10, 11, 12])
    with pytest.raises(ClvkitError, match="lacks column"):
        covariate_design(cov, idx, columns=["nope"])
    with pytest.raises(ClvkitError, match="'reference' gives 'tv'"):
        covariate_design(cov, idx, reference={"channel": "tv"})
    with pytest.raises(ClvkitError, match="not categorical covariate columns"):
        covariate_design(cov, idx, reference={"first_amount": 10.0})
    with pytest.raises(ClvkitError, match="'categorical' names"):
        covariate_design(cov, idx, columns=["channel"], categorical=["region"])


@settings(max_examples=60, deadline=None)
@given(
    codes=st.lists(st.integers(0, 3), min_size=4, max_size=40),
    x=st.lists(st.floats(-1e3, 1e3, allow_nan=False), min_size=40, max_size=40),
)
def test_design_properties(codes, x):
    """Every customer is one level (indicators sum to 0 or 1, the reference is the most
    frequent), numeric columns are centred, and encode() reproduces the matrix."""
    n = len(codes)
    cov = pd.DataFrame({"g": [f"L{c}" for c in codes], "x": x[:n]}, index=pd.RangeIndex(n))
    try:
        d = covariate_design(cov, cov.index)
    except ClvkitError as e:  # one level only, constant x, or x collinear with the levels
        assert "cannot be" in str(e) or "told apart" in str(e)
        return
    ind = d.matrix[:, [i for i, nm in enumerate(d.names) if nm.startswith("g[")]]
    assert set(ind.sum(axis=1)) <= {0.0, 1.0}
    counts = pd.Series(cov["g"]).value_counts()
    assert counts[d.reference["g"]] == counts.max()
    np.testing.assert_allclose(d.matrix[:, d.names.index("x")].mean(), 0.0, atol=1e-9)
    np.testing.assert_array_equal(d.encode(cov, cov.index), d.matrix)
