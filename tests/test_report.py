"""build_report: generic model sections and the frequency check's chi-square line."""

from __future__ import annotations

import re

import matplotlib

matplotlib.use("Agg")

import numpy as np
import pytest

import clvkit
from clvkit.datasets import cdnow_transactions
from clvkit.report import build_report, chi_square_text

CAL, END = "1997-09-30", "1998-06-30"


@pytest.fixture(scope="module")
def pipeline():
    log = cdnow_transactions()
    rfm = clvkit.calibration_holdout(log, calibration_end=CAL, observation_end=END,
                                     amount="amount")  # fmt: skip
    calib = rfm[["frequency", "recency", "T", "monetary_value"]].copy()
    calib.attrs = dict(rfm.attrs)
    bg = clvkit.BetaGeo().fit(calib, method="mle")
    gg = clvkit.GammaGamma().fit(calib, method="mle")
    value = clvkit.customer_value(
        bg, gg, calib, horizon="52W", annual_discount_rate=0.1, method="expected"
    )
    bt = clvkit.backtest(log, calibration_end=CAL, observation_end=END, amount="amount",
                         transactions_model=bg, spend_model=gg, n_samples=100, random_seed=0)  # fmt: skip
    return calib, bg, gg, value, bt


def test_chi_square_line_appears_with_the_frequency_check_number(pipeline):
    calib, bg, gg, value, bt = pipeline
    ppc = bt.frequency_ppc
    chi2 = float(((ppc["actual"] - ppc["expected"]) ** 2 / ppc["expected"]).sum())
    assert ppc.attrs["chi_square"] == pytest.approx(chi2, rel=1e-12)
    html = build_report(calib, bg, gg, value, bt).to_html()
    found = re.search(r"chi-square ([0-9.]+) \((\d+) degrees of freedom, p = ([0-9.]+)\)", html)
    assert found is not None  # the line never appeared: the report read attrs["chi2"]
    assert float(found.group(1)) == round(chi2, 1)
    assert int(found.group(2)) == 3  # 8 bins - 1 - 4 BG/NBD parameters
    assert float(found.group(3)) == round(ppc.attrs["p_value"], 3)
    # the MLE fits CDNOW's calibration histogram (the published fit), so p is not small
    assert ppc.attrs["p_value"] > 0.05 and np.isfinite(chi2)


def test_model_sections_come_from_the_specs(pipeline):
    calib, bg, gg, value, _ = pipeline
    html = build_report(calib, bg, gg, value, None).to_html()
    # the heading names the fit's role: the valuation fit (the backtest has its own fits)
    assert "<h3>BG/NBD purchase model (valuation fit)</h3>" in html
    assert "<h3>Gamma-Gamma spend model (valuation fit)</h3>" in html
    assert "Parameters: r, alpha, a, b." in html and "Parameters: p, q, v." in html
    assert "Point fit (method=&#x27;mle&#x27;)" in html
    assert "Predicted vs actual" not in html  # no backtest, no section


def test_chi_square_text_without_a_check():
    import pandas as pd

    assert chi_square_text(pd.DataFrame({"actual": [1.0]})) is None
