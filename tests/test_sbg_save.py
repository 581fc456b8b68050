"""Saving the subscription models: ShiftedBetaGeoPooled and SubscriptionFee through
``model.save(path)`` and ``clvkit.load(path)``, with identical predictions after loading, the
atomic write (only the named file, nothing half-written) and the integrity checks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import clvkit
from clvkit import ClvkitError, ShiftedBetaGeo, ShiftedBetaGeoPooled, SubscriptionFee, cohort_counts


@pytest.fixture(scope="module")
def pooled() -> ShiftedBetaGeoPooled:
    t = cohort_counts(
        {"2023": [100, 70, 55, 46, 40], "2024": [100, 66, 52], "2025": [100, 72]}, "Y", size=500
    )
    return ShiftedBetaGeoPooled().fit(t, chains=2, draws=200, tune=300, random_seed=1)


def _fees() -> pd.DataFrame:
    t = pd.DataFrame(
        {"renewals": [5, 2, 0], "churned": [False, False, False], "age": [5.0, 2.5, 0.2],
         "fee": [20.0, 10.0, 12.5]},
        index=pd.Index(["a", "b", "c"], name="customer_id"),
    )  # fmt: skip
    t.attrs["time_unit"] = "M"
    return t


def test_pooled_round_trip(pooled, tmp_path):
    path = tmp_path / "pooled.nc"
    pooled.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pooled.nc"]  # no temporary left
    loaded = clvkit.load(path)
    assert type(loaded) is ShiftedBetaGeoPooled
    assert loaded.cohorts_ == ["2023", "2024", "2025"]
    assert loaded.time_unit_ == "Y" and loaded.n_customers_ == pooled.n_customers_ == 1500
    for v in ("mu_m", "tau_m", "mu_k", "tau_k", "alpha", "beta"):
        np.testing.assert_array_equal(loaded.posterior_[v].values, pooled.posterior_[v].values)
    assert loaded.diagnostics() == pooled.diagnostics()
    for c in loaded.cohorts_:
        a, b = pooled.cohort_model(c), loaded.cohort_model(c)
        np.testing.assert_array_equal(
            a.survival(12, return_draws=True).values, b.survival(12, return_draws=True).values
        )
        np.testing.assert_array_equal(
            a.derl(0.1, [0, 3, 10], return_draws=True).values,
            b.derl(0.1, [0, 3, 10], return_draws=True).values,
        )
    np.testing.assert_array_equal(
        pooled.new_cohort_model(random_seed=3).posterior_["alpha"].values,
        loaded.new_cohort_model(random_seed=3).posterior_["alpha"].values,
    )
    # the loaded model saves again to the same content
    loaded.save(tmp_path / "again.nc")
    again = clvkit.load(tmp_path / "again.nc")
    np.testing.assert_array_equal(again.posterior_["beta"].values, pooled.posterior_["beta"].values)


def test_pooled_save_is_atomic(pooled, tmp_path, monkeypatch):
    target = tmp_path / "pooled.nc"
    target.write_text("the user's old file")
    import arviz as az

    def boom(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(az.InferenceData, "to_netcdf", boom)
    with pytest.raises(OSError, match="disk full"):
        pooled.save(target)
    assert target.read_text() == "the user's old file"  # untouched, no half-written file
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pooled.nc"]
    monkeypatch.undo()
    with pytest.raises(ClvkitError, match="folder does not exist"):
        pooled.save(tmp_path / "nope" / "pooled.nc")
    with pytest.raises(ClvkitError, match="not fitted"):
        ShiftedBetaGeoPooled().save(tmp_path / "x.nc")


def test_pooled_integrity(pooled, tmp_path):
    import arviz as az

    path = tmp_path / "pooled.nc"
    pooled.save(path)
    idata = az.from_netcdf(path, engine="h5netcdf")
    idata.posterior = idata.posterior.load()
    idata.posterior["alpha"] = idata.posterior["alpha"] * 1.01  # edited draws
    idata.to_netcdf(tmp_path / "edited.nc", engine="h5netcdf")
    with pytest.raises(ClvkitError, match="integrity check"):
        clvkit.load(tmp_path / "edited.nc")
    del idata.posterior["tau_k"]
    idata.to_netcdf(tmp_path / "damaged.nc", engine="h5netcdf")
    with pytest.raises(ClvkitError, match=r"damaged ShiftedBetaGeoPooled.*tau_k"):
        clvkit.load(tmp_path / "damaged.nc")


def test_fee_round_trip(tmp_path):
    fee = SubscriptionFee.from_params(list_fee=[15.0, 16.0, 17.0], time_unit="M")
    path = tmp_path / "fee.nc"
    fee.save(path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fee.nc"]
    loaded = clvkit.load(path)
    assert type(loaded) is SubscriptionFee and loaded.time_unit_ == "M"
    np.testing.assert_array_equal(
        loaded.posterior_["list_fee"].values, fee.posterior_["list_fee"].values
    )
    t = _fees()
    pd.testing.assert_frame_equal(loaded.expected_spend(t), fee.expected_spend(t))
    np.testing.assert_array_equal(
        loaded.expected_spend_new_customer(), fee.expected_spend_new_customer()
    )
    model = ShiftedBetaGeo.from_params(alpha=[1.0, 1.1, 1.2], beta=[3.0, 3.1, 2.9], time_unit="M")
    kw = {"horizon": 24, "period": 1.0, "discount_rate_per_period": 0.01, "random_seed": 2}
    a = clvkit.customer_value(model, fee, t, **kw)
    b = clvkit.customer_value(model, loaded, t, **kw)
    np.testing.assert_array_equal(a.equity.values, b.equity.values)
    assert float(a.new_customer.mean()) == float(b.new_customer.mean())
    loaded.save(tmp_path / "again.nc")  # a loaded fee saves again
    assert clvkit.load(tmp_path / "again.nc").posterior_["list_fee"].values.tolist() == [
        [15.0, 16.0, 17.0]
    ]
    fee.save(path)  # the named file is replaced, nothing else written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again.nc", "fee.nc"]


def test_sbg_fit_round_trip(tmp_path):
    """The single-cohort sBG (a registered model) next to the two: MLE on the published
    'regular' series, identical DERL draws after loading."""
    regular = cohort_counts([100, 63.1, 46.8, 38.2, 32.6, 28.9, 26.2, 24.1], "Y", size=1000)
    m = ShiftedBetaGeo().fit(regular, method="mle")
    m.save(tmp_path / "sbg.nc")
    loaded = clvkit.load(tmp_path / "sbg.nc")
    assert type(loaded) is ShiftedBetaGeo
    assert round(float(loaded.posterior_["alpha"].item()), 3) == 0.704
    pd.testing.assert_frame_equal(loaded.derl(0.1, [0, 4]), m.derl(0.1, [0, 4]))
