"""Tests for clvkit.datasets: the CDNOW loaders and the BG/NBD + Gamma-Gamma simulator."""

from __future__ import annotations

import numpy as np
import pandas as pd

from clvkit.datasets import cdnow_calibration_summary, cdnow_transactions


def test_cdnow_sample_shape_and_ids():
    log = cdnow_transactions()
    assert log.shape == (6919, 3)
    assert list(log.columns) == ["customer_id", "date", "amount"]
    assert log["date"].dtype.kind == "M" and log["amount"].dtype == np.float64
    ids = np.sort(log["customer_id"].unique())
    np.testing.assert_array_equal(ids, np.arange(1, 2358))
    assert log["date"].min() == pd.Timestamp("1997-01-01")
    assert log["date"].max() == pd.Timestamp("1998-06-30")
    assert (log["amount"] >= 0).all()


def test_cdnow_master_shape():
    log = cdnow_transactions(sample=False)
    assert log.shape == (69659, 3)
    assert log["customer_id"].nunique() == 23570
    assert log["date"].min() == pd.Timestamp("1997-01-01")
    assert log["date"].max() == pd.Timestamp("1998-06-30")


def test_cdnow_calibration_summary_published_totals():
    # Fader, Hardie and Lee (2005): 2,357 customers, 2,457 repeat purchases in the 39-week
    # calibration period, 1,411 customers with none.
    rfm = cdnow_calibration_summary()
    assert len(rfm) == 2357
    assert rfm.index.name == "customer_id"
    assert int(rfm["frequency"].sum()) == 2457
    assert int((rfm["frequency"] == 0).sum()) == 1411
    assert rfm.attrs == {"time_unit": "W", "observation_end": "1997-09-30"}
    assert ((rfm["recency"] <= rfm["T"]) & (rfm["recency"] >= 0)).all()
