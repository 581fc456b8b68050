"""Tests for clvkit.data.coarsen_rfm: grid invariants, compression and the effect on estimates."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from clvkit.data.summary import coarsen_rfm
from clvkit.datasets import simulate
from clvkit.errors import ClvkitError
from clvkit.models import BetaGeo
from clvkit.models.bgnbd.likelihood import compress_bg
from clvkit.models.inputs import validate_rfm


@st.composite
def rfm_tables(draw):
    n = draw(st.integers(1, 40))
    times = st.floats(0.0, 200.0, allow_nan=False, allow_infinity=False)
    T = np.array(draw(st.lists(times, min_size=n, max_size=n)))
    share = np.array(draw(st.lists(st.floats(0.0, 1.0), min_size=n, max_size=n)))
    x = np.array(draw(st.lists(st.integers(0, 60), min_size=n, max_size=n)), dtype=np.int64)
    x[T == 0] = 0  # a repeat purchase needs time after the first one
    rec = np.where(x > 0, T * share, 0.0)
    x[(x > 0) & (rec <= 0)] = 0
    rec[x == 0] = 0.0
    rfm = pd.DataFrame(
        {"frequency": x, "recency": rec, "T": T, "monetary_value": np.arange(n) + 0.5},
        index=pd.Index([f"c{i}" for i in range(n)], name="customer_id"),
    )
    rfm.attrs = {"time_unit": draw(st.sampled_from(["W", "D", "30D"])), "observation_end": "x"}
    return rfm


@settings(max_examples=200, deadline=None)
@given(rfm=rfm_tables(), step=st.floats(1e-3, 50.0))
def test_coarsen_invariants(rfm, step):
    assume_step = min(step, float(rfm["T"].max())) if rfm["T"].max() > 0 else step
    before = rfm.copy(deep=True)
    attrs = dict(rfm.attrs)
    out = coarsen_rfm(rfm, assume_step)
    # the caller's table is untouched
    pd.testing.assert_frame_equal(rfm, before)
    assert rfm.attrs == attrs and out is not rfm
    # same rows, columns, dtypes; other columns copied; attrs kept plus the step
    pd.testing.assert_index_equal(out.index, rfm.index)
    assert list(out.columns) == list(rfm.columns) and (out.dtypes == rfm.dtypes).all()
    pd.testing.assert_series_equal(out["frequency"], rfm["frequency"])
    pd.testing.assert_series_equal(out["monetary_value"], rfm["monetary_value"])
    assert out.attrs == {**attrs, "time_step": assume_step}
    x, rec, T = (out[c].to_numpy() for c in ("frequency", "recency", "T"))
    rec0, T0 = rfm["recency"].to_numpy(), rfm["T"].to_numpy()
    # on the grid
    for v in (rec, T):
        k = v / assume_step
        np.testing.assert_allclose(k, np.round(k), atol=1e-9)
    # the models' invariants: 0 <= recency <= T, recency > 0 exactly for repeat buyers, T > 0
    # wherever it was
    assert ((rec >= 0) & (rec <= T)).all()
    assert ((rec > 0) == (x > 0)).all()
    assert ((T > 0) == (T0 > 0)).all()
    validate_rfm(out)
    # T and the time since the last purchase on the nearest grid point, recency within one
    # step, except where the floors at one step apply
    tol = assume_step / 2 * (1 + 1e-9) + 1e-9 * np.maximum(T0, 1)
    assert (np.abs(T - T0) <= np.maximum(tol, np.where(T0 > 0, assume_step - T0, 0))).all()
    floored = (x > 0) & (rec == assume_step)
    free = (x > 0) & ~floored
    gap, gap0 = T - rec, T0 - rec0
    assert (np.abs(gap - gap0)[free] <= tol[free]).all()
    assert (np.abs(rec - rec0)[free] <= 2 * tol[free]).all()
    assert (rec[floored] >= rec0[floored] - 2 * tol[floored]).all()
    # idempotent
    again = coarsen_rfm(out, assume_step)
    pd.testing.assert_frame_equal(again, out)


def test_coarsen_duration_steps():
    rfm = pd.DataFrame(
        {"frequency": [0, 3, 1], "recency": [0.0, 10.3, 0.05], "T": [20.0, 30.46, 5.0]},
        index=pd.Index([7, 8, 9], name="customer_id"),
    )
    rfm.attrs = {"time_unit": "W"}
    day = coarsen_rfm(rfm, "1D")
    assert day.attrs["time_step"] == pytest.approx(1 / 7)
    np.testing.assert_allclose(day["recency"] * 7, [0, 72, 1])  # 10.3 W = 72.1 days
    np.testing.assert_allclose(day["T"] * 7, [140, 213, 35])  # 30.46 W = 213.2 days
    pd.testing.assert_frame_equal(coarsen_rfm(rfm, pd.Timedelta(days=1)), day)
    pd.testing.assert_frame_equal(coarsen_rfm(rfm, 1 / 7), day)
    week = coarsen_rfm(rfm, "W")
    np.testing.assert_allclose(week["recency"], [0, 10, 1])
    np.testing.assert_allclose(week["T"], [20, 30, 5])
    daily = rfm.assign(recency=rfm["recency"] * 7, T=rfm["T"] * 7)
    daily.attrs = {"time_unit": "D"}
    np.testing.assert_allclose(coarsen_rfm(daily, "1W")["T"], [140, 210, 35])
    # a day-resolution summary is already on the day grid: coarsening to days is a no-op
    log = pd.DataFrame(
        {"customer_id": [1, 1, 2, 3, 3, 3], "date": pd.to_datetime(
            ["2024-01-01", "2024-01-10", "2024-01-03", "2024-01-02", "2024-01-03", "2024-02-01"])}
    )  # fmt: skip
    from clvkit.data.summary import rfm_summary

    summary = rfm_summary(log, observation_end="2024-02-20")
    same = coarsen_rfm(summary, "1D")
    np.testing.assert_allclose(same[["recency", "T"]], summary[["recency", "T"]], rtol=1e-12)


@pytest.mark.parametrize(
    ("step", "message"),
    [
        (0, "positive"),
        (-1.0, "positive"),
        (float("nan"), "positive"),
        (float("inf"), "positive"),
        (True, "positive"),
        (None, "positive"),
        ([1], "positive"),
        ("soon", "not a duration"),
        ("-1D", "positive duration"),
        (500.0, "longer than the longest T"),
    ],
)
def test_coarsen_rejects_bad_steps(step, message):
    rfm = pd.DataFrame({"frequency": [0, 2], "recency": [0.0, 3.0], "T": [5.0, 6.0]})
    rfm.attrs = {"time_unit": "W"}
    with pytest.raises(ClvkitError, match="'step'") as err:
        coarsen_rfm(rfm, step)
    assert message in str(err.value) and "Suggestion" in str(err.value)


def test_coarsen_rejects_bad_tables():
    good = pd.DataFrame({"frequency": [0, 2, 1], "recency": [0.0, 3.0, 1.0], "T": [5.0, 6, 7]})
    with pytest.raises(ClvkitError, match=r"no attrs\['time_unit'\].*Suggestion"):
        coarsen_rfm(good, "1D")  # a duration needs the table's unit
    assert coarsen_rfm(good, 0.5)["T"].tolist() == [5.0, 6.0, 7.0]  # a number does not
    with pytest.raises(ClvkitError, match="'rfm' lacks column"):
        coarsen_rfm(good.drop(columns="T"), 1.0)
    with pytest.raises(ClvkitError, match="'rfm' must be a pandas DataFrame"):
        coarsen_rfm(good.to_numpy(), 1.0)
    for bad, problem in (
        (good.assign(recency=[0.0, 8.0, 9.0]), "recency > T in 2 of 3 rows"),
        (good.assign(recency=[0.0, 0.0, 1.0]), "recency 0 for frequency > 0 in 1 of 3 rows"),
        (good.assign(T=[5.0, np.nan, 7.0]), "missing, non-numeric or infinite"),
        (good.assign(frequency=[-1, 2, 1]), "negative frequency or recency in 1 of 3"),
    ):
        with pytest.raises(ClvkitError, match=problem) as err:
            coarsen_rfm(bad, 1.0)
        assert "for example: {'row'" in str(err.value) and "Suggestion" in str(err.value)


# --- compression and the measured effect on the BG/NBD estimates -----------------------------

N_BASE = 100_000
# ~10 purchases per customer over 78 weeks, as in benchmarks/bench_scale.py
SIM = {"r": 2.0, "alpha": 8.0, "a": 1.0, "b": 12.0}


@pytest.fixture(scope="module")
def exact_base():
    sim = simulate(N_BASE, **SIM, random_seed=11)
    rfm = sim.rfm(exact=True)
    mle = BetaGeo().fit(rfm, method="mle")
    lap = BetaGeo().fit(rfm, method="laplace", chains=2, draws=2000, random_seed=3)
    sd = {k: float(np.log(lap.idata_.posterior[k]).std()) for k in SIM}
    return rfm, mle, sd


def _shift_in_sd(model: BetaGeo, base: BetaGeo, sd: dict[str, float]) -> dict[str, float]:
    post, ref = model.idata_.posterior, base.idata_.posterior
    return {k: float(np.log(post[k].item() / ref[k].item())) / sd[k] for k in SIM}


def test_coarsen_compression_ratio(exact_base):
    rfm = exact_base[0]
    n_exact = compress_bg(rfm["frequency"], rfm["recency"], rfm["T"]).n_rows
    assert n_exact == N_BASE  # continuous times: every customer is its own row
    x_values = np.unique(rfm["frequency"])
    for step, max_rows in (("1D", 0.9 * N_BASE), ("1W", N_BASE / 5)):
        out = coarsen_rfm(rfm, step)
        rows = compress_bg(out["frequency"], out["recency"], out["T"]).n_rows
        assert rows < max_rows, (step, rows)
        # grid bound: T spans 66..78 weeks, recency 0..T, one row per (x, recency, T) cell
        width = out.attrs["time_step"]
        n_T = math.floor(12 / width) + 2
        n_rec = math.floor(78 / width) + 2
        assert rows <= len(x_values) * n_T * n_rec
        assert out["T"].nunique() <= n_T


def test_coarsen_effect_on_mle(exact_base):
    # Rounding errors (at most step/2, mean ~0) move the MLE by a first-order random term of
    # relative size ~ step / tau and a second-order bias ~ (step / tau)^2 sqrt(N) standard
    # errors, tau being the time scale on which the likelihood bends ((alpha + t) / (r + x),
    # a few weeks for frequent buyers). Here (100k, seeds 11-14): 1 day moves each parameter by
    # at most 0.024 sd, 1 week moves alpha by 0.55-0.67 sd. At 1M customers a week moves it by
    # ~2 sd (benchmarks/results/scale.md), so a day grid is safe and a week grid is not.
    rfm, base, sd = exact_base
    assert all(0 < v < 0.05 for v in sd.values())  # 100k customers pin each log parameter
    day = _shift_in_sd(BetaGeo().fit(coarsen_rfm(rfm, "1D"), method="mle"), base, sd)
    assert max(abs(v) for v in day.values()) < 0.1, day
    week = _shift_in_sd(BetaGeo().fit(coarsen_rfm(rfm, "1W"), method="mle"), base, sd)
    assert max(abs(v) for v in week.values()) < 1.5, week
    # ...but a week is not free: alpha moves by a sizeable share of its standard error, more
    # than 10 times the day grid's shift (27-50x over seeds 11-14; second order alone would be
    # (7 days / 1 day)^2 = 49, and the day grid's shift also holds a first-order random part)
    assert week["alpha"] > 0.3 and week["alpha"] > 10 * abs(day["alpha"]), (day, week)
