"""One check for every ``random_seed`` of the API (issue 12, item 5): a bad seed is a
ClvkitError naming the argument and the value, wherever it is passed."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import clvkit
from clvkit import evaluation as bt
from clvkit.errors import ClvkitError
from clvkit.rng import check_random_seed, make_rng

BAD = [
    math.nan,
    -1,
    1.5,
    "a",
    True,
    False,
    1.0,
    np.float64(2.0),
    np.int64(-3),
    np.bool_(True),
    [1, 2],
    b"7",
    math.inf,
]
GOOD = [None, 0, 7, np.int64(7), np.uint32(7), 2**70]

POST = {"r": 0.2426, "alpha": 4.4137, "a": 0.793, "b": 2.4262}


@pytest.fixture(scope="module")
def fitted():
    rfm = clvkit.datasets.cdnow_calibration_summary().iloc[:400].copy()
    rfm.attrs = dict(clvkit.datasets.cdnow_calibration_summary().attrs)
    bg = clvkit.BetaGeo().fit(rfm, method="mle")
    gg = clvkit.GammaGamma().fit(rfm, method="mle")
    return rfm, bg, gg


def _entry_points(rfm, bg, gg):
    """Every public function that takes ``random_seed``, as ``seed -> call``."""
    x, T = (rfm[c].to_numpy() for c in ("frequency", "T"))
    value_kw = {"horizon": 10, "annual_discount_rate": 0.1}
    log = clvkit.datasets.cdnow_transactions().iloc[:500]
    points = {
        "BetaGeo.fit mle": lambda s: clvkit.BetaGeo().fit(rfm, method="mle", random_seed=s),
        "BetaGeo.fit nuts": lambda s: clvkit.BetaGeo().fit(
            rfm, draws=5, tune=5, chains=1, random_seed=s, progressbar=False
        ),
        "GammaGamma.fit map": lambda s: clvkit.GammaGamma().fit(rfm, method="map", random_seed=s),
        "GammaGamma.fit laplace": lambda s: clvkit.GammaGamma().fit(
            rfm, method="laplace", draws=10, chains=1, random_seed=s
        ),
        "BetaGeo.posterior_predictive": lambda s: bg.posterior_predictive(
            rfm, 5, random_seed=s, return_draws=True
        ),
        "customer_value": lambda s: clvkit.customer_value(bg, gg, rfm, random_seed=s, **value_kw),
        "customer_value simulate": lambda s: clvkit.customer_value(
            bg, gg, rfm, method="simulate", random_seed=s, **value_kw
        ),
        "datasets.simulate": lambda s: clvkit.datasets.simulate(
            5, r=0.5, alpha=5.0, a=0.8, b=2.5, random_seed=s
        ),
        "backtest.holdout_predictive": lambda s: bt.holdout_predictive(
            POST, rfm, 10.0, actual=np.zeros(x.size), random_seed=s
        ),
        "backtest.frequency_ppc": lambda s: bt.frequency_ppc(POST, x, T, random_seed=s),
        "backtest.cohort_tracking": lambda s: bt.cohort_tracking(
            POST, np.array([0.0, 1.0]), np.array([0]), np.array([2.0]), horizon=4.0, random_seed=s
        ),
        "backtest (fits)": lambda s: clvkit.backtest(
            log,
            calibration_end="1997-03-31",
            observation_end="1997-06-30",
            fit_kwargs={"method": "mle"},
            random_seed=s,
        ),
        "backtest (given model)": lambda s: clvkit.backtest(
            log,
            calibration_end="1997-03-31",
            observation_end="1997-06-30",
            transactions_model=POST,
            random_seed=s,
        ),
    }
    try:
        from clvkit import distributed

        points["distributed.customer_value"] = lambda s: distributed.customer_value(
            bg, gg, rfm, random_seed=s, **value_kw
        )
    except ImportError:  # pragma: no cover - dask is a dev dependency
        pass
    return points


def test_every_entry_point_names_a_bad_seed(fitted):
    points = _entry_points(*fitted)
    assert len(points) >= 13
    for name, call in points.items():
        for bad in BAD:
            with pytest.raises(ClvkitError) as err:
                call(bad)
            msg = str(err.value)
            assert "argument 'random_seed'" in msg, (name, bad, msg)
            assert repr(bad) in msg and "Suggestion:" in msg, (name, bad, msg)


def test_good_seeds_are_accepted_and_reproducible(fitted):
    rfm, bg, _ = fitted
    for seed in GOOD:
        sim = bg.posterior_predictive(rfm, 10, random_seed=seed, return_draws=True)
        assert sim.shape == (1, 1, len(rfm))
    a = bg.posterior_predictive(rfm, 10, random_seed=np.int64(11), return_draws=True).values
    b = bg.posterior_predictive(rfm, 10, random_seed=11, return_draws=True).values
    c = bg.posterior_predictive(
        rfm, 10, random_seed=np.random.default_rng(11), return_draws=True
    ).values
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    ss = np.random.SeedSequence(3)
    d = clvkit.GammaGamma().fit(rfm, method="laplace", draws=50, chains=1, random_seed=ss)
    e = clvkit.GammaGamma().fit(
        rfm, method="laplace", draws=50, chains=1, random_seed=np.random.SeedSequence(3)
    )
    np.testing.assert_array_equal(d.posterior_["p"].values, e.posterior_["p"].values)
    log = clvkit.datasets.simulate(20, r=0.5, alpha=5.0, a=0.8, b=2.5, random_seed=2**70)
    assert isinstance(log.transactions, pd.DataFrame)


def test_seed_error_names_the_argument_given():
    with pytest.raises(ClvkitError, match=r"argument 'seed' is -5, which is not a seed"):
        check_random_seed(-5, argument="seed")


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.none(),
        st.integers(min_value=-(2**80), max_value=2**80),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.text(max_size=5),
        st.lists(st.integers(0, 10), max_size=3),
        st.binary(max_size=3),
    )
)
def test_check_random_seed_accepts_exactly_non_negative_integers_and_none(value):
    ok = value is None or (type(value) is int and value >= 0)
    if ok:
        assert check_random_seed(value) == value
        assert isinstance(make_rng(value), np.random.Generator)
    else:
        with pytest.raises(ClvkitError, match="argument 'random_seed' is"):
            check_random_seed(value)
        with pytest.raises(ClvkitError, match="argument 'random_seed' is"):
            make_rng(value)


def test_generators_pass_through_unchanged():
    rng = np.random.default_rng(0)
    assert check_random_seed(rng) is rng
    assert make_rng(rng) is rng


def test_nuts_takes_seeds_beyond_64_bits(fitted):
    # Before: OverflowError 'int too big to convert' in the sampler's settings.
    rfm = fitted[0]
    kw = {"chains": 1, "draws": 10, "tune": 10, "progressbar": False}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", clvkit.ConvergenceWarning)  # 10 draws
        a = clvkit.BetaGeo().fit(rfm, random_seed=2**70, **kw).posterior_["r"].values
        b = clvkit.BetaGeo().fit(rfm, random_seed=2**70, **kw).posterior_["r"].values
    np.testing.assert_array_equal(a, b)
    assert a.shape == (1, 10)
