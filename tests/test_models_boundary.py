"""Point fits whose maximum lies on the boundary, and data the models cannot learn from
(issue 12, items 5 and 8).

- A likelihood that keeps rising as parameters run to 0 or infinity has no maximum-likelihood
  estimate: ``fit(method="mle")`` raises a ClvkitError saying which parameters run off and what
  that means in the data (before, it returned an arbitrary point and ``summary()`` raised
  OverflowError, after the CLI had written the model files).
- ``summary()`` never raises on a fitted model: a point fit without a strict maximum shows
  inf standard errors and a ConvergenceWarning.
- No repeat purchase at all (BG/NBD) or one constant spend (Gamma-Gamma) is a ClvkitError for
  every fit method.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import clvkit
from clvkit import BetaGeo, GammaGamma
from clvkit.errors import ClvkitError, ConvergenceWarning

METHODS = ["mle", "map", "laplace", "nuts"]
FEW = {"chains": 1, "draws": 20, "tune": 20, "progressbar": False, "random_seed": 1}


def tiny_log(seed: int) -> pd.DataFrame:
    """2-10 customers with a few purchases in 120 days (the issue's small random logs)."""
    rng = np.random.default_rng(seed)
    n_c = int(rng.integers(2, 11))
    n_p = int(rng.integers(n_c, 4 * n_c + 1))
    return pd.DataFrame(
        {
            "customer_id": rng.integers(0, n_c, n_p),
            "date": pd.Timestamp("2024-01-01") + pd.to_timedelta(rng.integers(0, 120, n_p), "D"),
            "amount": rng.gamma(2.0, 10.0, n_p).round(2) + 0.01,
        }
    )


def tiny_rfm(seed: int) -> pd.DataFrame:
    return clvkit.rfm_summary(tiny_log(seed), amount="amount", time_unit="W")


# ---- boundary MLE -------------------------------------------------------------------------------
def test_bg_mle_without_rate_heterogeneity_is_refused_with_the_reason():
    rfm = tiny_rfm(1)  # summary() raised OverflowError: math range error
    with pytest.raises(ClvkitError) as err:
        BetaGeo().fit(rfm, method="mle")
    msg = str(err.value)
    assert "maximum-likelihood estimate does not exist" in msg
    assert "r -> infinity and alpha -> infinity" in msg
    assert "purchase rates show no variation" in msg
    assert "6 customers" in msg
    assert "Suggestion: fit with method='map' or method='nuts'" in msg


def test_gg_mle_without_spend_heterogeneity_is_refused_with_the_reason():
    rfm = tiny_rfm(0)
    with (
        pytest.warns(clvkit.SpendCorrelationWarning),
        pytest.raises(ClvkitError, match="q -> infinity and v -> infinity") as err,
    ):
        GammaGamma().fit(rfm, method="mle")
    assert "average spend shows no variation between customers" in str(err.value)


def test_bg_mle_that_ran_into_the_parameter_box_explains_instead_of_did_not_converge():
    rfm = tiny_rfm(19)  # was "BetaGeo MLE did not converge (... precision loss ...)"
    with pytest.raises(ClvkitError) as err:
        BetaGeo().fit(rfm, method="mle")
    assert "does not exist" in str(err.value) and "did not converge" not in str(err.value)


def test_interior_mle_is_unchanged():
    rfm = clvkit.datasets.cdnow_calibration_summary()
    bg = BetaGeo().fit(rfm, method="mle")
    got = [float(bg.posterior_[n].item()) for n in ("r", "alpha", "a", "b")]
    np.testing.assert_allclose(got, [0.2426, 4.4136, 0.7929, 2.4259], rtol=2e-3)
    s = bg.summary()
    assert np.isfinite(s[["mean", "sd", "5%", "95%"]].to_numpy()).all()
    small = tiny_rfm(4)  # a tiny log whose MLE is interior
    fit = BetaGeo().fit(small, method="mle")
    assert np.isfinite(fit.summary()[["sd", "5%", "95%"]].to_numpy()).all()


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000))
@example(1064)  # MAP refused: log(alpha) keeps rising past -14 under the default LogNormal(0, 5)
@example(2153)  # Gamma-Gamma MLE from 2 repeat customers: a flat ridge, refused as not unique
def test_point_fits_on_tiny_logs_never_break_summary(seed):
    rfm = tiny_rfm(seed)
    for model in (BetaGeo, GammaGamma):
        for method in ("mle", "map"):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", clvkit.SpendCorrelationWarning)
                    fit = model().fit(rfm, method=method)
            except ClvkitError as exc:
                assert "Suggestion:" in str(exc)
                # mle: no interior maximum; map: only a mode set by the prior's far tail
                # (refused with the parameters named), or data the model cannot learn from
                assert (
                    method == "mle"  # no interior maximum, or not a unique one
                    or "posterior mode (MAP) does not exist with these priors" in str(exc)
                    or "no customer with frequency" in str(exc)
                    or ("for all" in str(exc) or "one repeat customer" in str(exc))
                )
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("error", ConvergenceWarning)  # a real maximum
                s = fit.summary()
            values = s[["mean", "sd", "5%", "95%"]].to_numpy()
            assert np.isfinite(values).all() and (values[:, 0] > 0).all()


def test_map_with_default_priors_answers_where_the_mle_does_not():
    rfm = tiny_rfm(1)
    bg = BetaGeo().fit(rfm, method="map")
    s = bg.summary()
    assert np.isfinite(s.to_numpy(dtype=float)[:, :4]).all()
    assert s.loc["r", "mean"] < 1e4  # the prior keeps it finite


def test_summary_of_a_boundary_point_fit_shows_inf_and_warns():
    """A boundary MLE as earlier versions stored it (e.g. loaded from a file)."""
    rfm = tiny_rfm(1)
    fit = BetaGeo().fit(rfm, method="map")
    fit.method_ = "mle"
    boundary = {"r": np.exp(11.75), "alpha": np.exp(13.79), "a": np.exp(-8.62), "b": np.exp(8.3)}
    for name, value in boundary.items():
        fit.posterior_[name].values[...] = value
    with pytest.warns(ConvergenceWarning, match="not a strict maximum") as rec:
        s = fit.summary()
    assert "refit with method='map'" in str(rec[0].message)
    assert np.isinf(s["sd"]).all() and np.isinf(s["95%"]).all() and (s["5%"] == 0).all()
    np.testing.assert_allclose(s["mean"], list(boundary.values()), rtol=1e-12)


def test_cli_fit_mle_on_a_tiny_log_exits_2_and_writes_nothing(tmp_path, capsys):
    from clvkit.cli import main

    log = tmp_path / "log.csv"
    tiny_log(1).to_csv(log, index=False)
    out = tmp_path / "models" / "shop"
    code = main(["fit", str(log), "--method", "mle", "--out", str(out), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert "maximum-likelihood estimate does not exist" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["log.csv"]


# ---- data the models cannot learn from ----------------------------------------------------------
@pytest.mark.parametrize("method", METHODS)
def test_bg_on_all_zero_frequencies_is_an_error_for_every_method(method):
    rfm = pd.DataFrame({"frequency": [0, 0, 0], "recency": [0.0] * 3, "T": [5.0, 8.0, 10.0]})
    rfm.attrs["time_unit"] = "W"
    with pytest.raises(ClvkitError) as err:
        BetaGeo().fit(rfm, method=method, **(FEW if method != "mle" else {}))
    msg = str(err.value)
    assert "column 'frequency' of 'rfm' is 0 for all 3 customers" in msg
    assert "Suggestion: use a longer calibration window" in msg


@pytest.mark.parametrize("method", METHODS)
def test_gg_on_constant_spend_is_an_error_for_every_method(method):
    rfm = pd.DataFrame({"frequency": [1, 2, 3, 0, 5], "monetary_value": [9.99] * 4 + [9.99]})
    rfm.loc[3, "monetary_value"] = 0.0
    with pytest.raises(ClvkitError) as err:
        GammaGamma().fit(rfm, method=method, **(FEW if method != "mle" else {}))
    msg = str(err.value)
    assert "column 'monetary_value' of 'rfm' is 9.99 for all 4 repeat customers" in msg
    assert "spend has no variation" in msg and "did not converge" not in msg
    assert "fixed amount per purchase" in msg


def test_gg_on_a_single_repeat_customer_is_an_error():
    rfm = pd.DataFrame({"frequency": [0, 2, 0], "monetary_value": [0.0, 12.5, 0.0]})
    with pytest.raises(ClvkitError, match=r"is 12\.5 for the one repeat customer"):
        GammaGamma().fit(rfm, method="map")


def test_gg_with_spend_rounded_to_equal_means_is_constant():
    # 3 x 9.99 averaged is 9.990000000000002 in floats: still the same price
    m = np.array([29.97 / 3, 9.99, 19.98 / 2])
    rfm = pd.DataFrame({"frequency": [3, 1, 2], "monetary_value": m})
    with pytest.raises(ClvkitError, match="spend has no variation"):
        GammaGamma().fit(rfm, method="mle")


def test_mle_on_a_flat_ridge_is_refused_as_not_unique():
    """Three Gamma-Gamma parameters from two repeat customers: the optimizer stops on a ridge
    (interior, not a boundary), whose points all fit as well; the fit says so instead of
    returning an arbitrary point whose summary then warns."""
    rfm = pd.DataFrame(
        {"frequency": [2, 2], "recency": [14.857143, 4.714286], "T": [14.857143, 14.0],
         "monetary_value": [14.575, 11.8]}
    )  # fmt: skip
    rfm.attrs["time_unit"] = "W"
    with pytest.raises(ClvkitError, match=r"estimate is not unique .*2 customers.*flat along"):
        GammaGamma().fit(rfm, method="mle")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        s = GammaGamma().fit(rfm, method="map").summary()  # the priors make the mode unique
    assert np.isfinite(s[["sd", "5%", "95%"]].to_numpy()).all()
