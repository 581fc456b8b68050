"""The NUTS backtest on CDNOW (39-week calibration, 39-week holdout); numbers in docs/backtest.md."""

from __future__ import annotations

import numpy as np
import pytest

import clvkit
from clvkit.datasets import cdnow_transactions

# Per-group conditional expectations at the CDNOW MLE (see tests/test_backtest.py)
MLE_GROUPS = [0.2251, 0.5231, 1.0441, 1.5202, 2.1638, 2.6538, 3.5039, 6.1571]


@pytest.mark.slow
def test_nuts_backtest_on_cdnow():
    res = clvkit.backtest(
        cdnow_transactions(),
        calibration_end="1997-09-30",
        observation_end="1998-06-30",
        fit_kwargs={"chains": 2, "draws": 500, "tune": 500, "progressbar": False},
        n_samples=1000,
        random_seed=0,
    )
    post = res.transactions_model.idata_.posterior
    assert post.sizes["chain"] == 2 and post.sizes["draw"] == 500
    # the posterior sits on the published MLE (r 0.243, alpha 4.41, a 0.79, b 2.43)
    assert float(post["r"].mean()) == pytest.approx(0.2426, abs=0.02)
    assert float(post["alpha"].mean()) == pytest.approx(4.41, abs=0.5)
    m = res.metrics.loc["purchases"]
    # honest CDNOW numbers: the BG/NBD under-predicts the holdout by about 12% (1,655 vs 1,882),
    # per-customer MAE ~0.79, RMSE ~1.61, correlation ~0.63; intervals are close to nominal
    assert m["total_actual"] == 1882
    assert -16 < m["aggregate_error_pct"] < -8
    assert 0.75 < m["mae"] < 0.82 and 1.55 < m["rmse"] < 1.67
    assert 0.6 < m["correlation"] < 0.65
    for level in (50, 80, 90):
        assert abs(m[f"coverage_{level}"] - level / 100) < 0.03
    ce = res.conditional_expectations["predicted"].to_numpy()
    np.testing.assert_allclose(ce, MLE_GROUPS, rtol=0.03)
    ppc = res.frequency_ppc
    assert ppc.attrs["p_value"] > 0.05
    tr = res.tracking.iloc[-1]
    assert tr["lower_cumulative"] <= tr["actual_cumulative"] <= tr["upper_cumulative"]
