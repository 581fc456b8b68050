"""``datasets.simulate(resolution="exact")``: timestamps with the time of day, summarized in
continuous time, recover the simulator's truth (issue 14, papercut on notebook 03)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from clvkit.datasets import simulate
from clvkit.errors import ClvkitError
from clvkit.models import BetaGeo, GammaGamma

TRUE_BG = {"r": 0.25, "alpha": 4.0, "a": 0.8, "b": 2.5}
TRUE_GG = {"p": 6.0, "q": 4.0, "v": 15.0}


def test_exact_resolution_keeps_the_time_of_day_and_the_same_draws():
    exact = simulate(300, **TRUE_BG, **TRUE_GG, resolution="exact", random_seed=3)
    day = simulate(300, **TRUE_BG, **TRUE_GG, random_seed=3)
    stamps = exact.transactions["date"]
    assert (stamps != stamps.dt.normalize()).mean() > 0.99  # times of day
    # the same draws: the exact timestamps are the simulated times, the days their floor
    since = (stamps - exact.start) / pd.Timedelta(weeks=1)
    np.testing.assert_allclose(since.to_numpy(), exact.purchase_times, rtol=0, atol=1e-12)
    pd.testing.assert_series_equal(stamps.dt.normalize(), day.transactions["date"])
    assert exact.resolution == "exact" and day.resolution == "day"
    # sim.rfm() is the continuous-time summary for an exact log ...
    pd.testing.assert_frame_equal(exact.rfm(), exact.rfm(exact=True))
    assert exact.rfm().attrs["exact_times"] is True
    # ... and rfm_summary works at day resolution, as for the day log
    pd.testing.assert_frame_equal(exact.rfm(exact=False), day.rfm())
    with pytest.raises(ClvkitError, match="argument 'resolution'"):
        simulate(10, **TRUE_BG, resolution="hour")


@pytest.mark.slow
def test_mle_on_an_exact_log_of_10000_customers_is_within_3_se_of_the_truth():
    sim = simulate(10_000, **TRUE_BG, **TRUE_GG, resolution="exact", random_seed=14)
    rfm = sim.rfm()
    z = {}
    for cls, truth in ((BetaGeo, TRUE_BG), (GammaGamma, TRUE_GG)):
        mle = cls().fit(rfm, method="mle").idata_.posterior
        lap = cls().fit(rfm, method="laplace", chains=2, draws=1000, random_seed=1)
        for name, value in truth.items():
            se = float(np.log(lap.idata_.posterior[name]).std())  # of the log parameter
            z[name] = (np.log(mle[name].item()) - np.log(value)) / se
    assert all(abs(v) < 3 for v in z.values()), z
