"""The command line with covariates and segments: --covariates, --by, and their errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import clvkit
from clvkit.cli import main
from clvkit.datasets import cdnow_transactions
from test_value_by import FLOW

CAL, END = "1997-09-30", "1998-06-30"
VALUE = ("--horizon", "52W", "--annual-discount-rate", "0.1", "--seed", "7", "--quiet")


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """The CDNOW sample log, a covariate file (channel and region for every customer), one
    with five customers missing, and saved models (BG/NBD and Gamma-Gamma MLE) with the RFM
    table that 'clvkit fit' writes (without covariate columns)."""
    folder = tmp_path_factory.mktemp("cli_cov")
    log = cdnow_transactions(sample=True)
    log.to_csv(folder / "log.csv", index=False)
    rfm = clvkit.rfm_summary(log, observation_end=END, amount="amount")
    i = np.arange(len(rfm))
    cov = pd.DataFrame(
        {"channel": np.where(i % 3 == 0, "shop", "web"), "region": np.where(i % 2 == 0, "n", "s")},
        index=rfm.index,
    )
    cov.reset_index().to_csv(folder / "cov.csv", index=False)
    cov.iloc[5:].reset_index().to_parquet(folder / "gap.parquet")
    bg = clvkit.BetaGeo().fit(rfm, method="mle")
    gg = clvkit.GammaGamma().fit(rfm, method="mle")
    prefix = folder / "m" / "shop"
    prefix.parent.mkdir()
    bg.save(f"{prefix}.bgnbd.nc")
    gg.save(f"{prefix}.gamma_gamma.nc")
    rfm.to_parquet(f"{prefix}.rfm.parquet")
    return {"folder": folder, "log": folder / "log.csv", "cov": folder / "cov.csv",
            "gap": folder / "gap.parquet", "prefix": prefix, "rfm": rfm.join(cov),
            "bg": bg, "gg": gg}  # fmt: skip


def test_value_by_group_equals_the_api(files, tmp_path, capsys):
    out_file = tmp_path / "by.csv"
    code, out, err = _run(
        capsys, "value", str(files["prefix"]), "--covariates", str(files["cov"]), "--by",
        "region", "--by-out", str(out_file), *VALUE,
    )  # fmt: skip
    assert code == 0, err
    assert "Value by region (credible intervals, 90%)" in out
    table = pd.read_csv(out_file, index_col="region")
    api = clvkit.customer_value(
        files["bg"], files["gg"], files["rfm"], by="region",
        random_seed=7, **FLOW,
    ).group_table()  # fmt: skip
    assert table.index.tolist() == ["n", "s"] and table["customers"].tolist() == [1179, 1178]
    np.testing.assert_allclose(table["equity"], api["equity"], rtol=1e-12)
    np.testing.assert_allclose(table["clv_lower"], api["clv_lower"], rtol=1e-12)
    assert table["equity_share"].sum() == pytest.approx(1.0)


def test_score_a_log_with_covariates_and_by(files, capsys):
    code, out, err = _run(
        capsys, "score", str(files["log"]), "--model-prefix", str(files["prefix"]),
        "--observation-end", END, "--covariates", str(files["cov"]), "--by", "channel", *VALUE,
    )  # fmt: skip
    assert code == 0, err
    assert "Value by channel" in out and "shop" in out and "web" in out


def test_a_customer_without_covariates_is_one_line_naming_it(files, capsys):
    code, _, err = _run(
        capsys, "value", str(files["prefix"]), "--covariates", str(files["gap"]), *VALUE
    )
    assert code == 2
    assert err.count("\n") == 1
    assert "have no row in" in err and "5 of 2,357" in err and "'customer_id': 1}" in err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--segment", "region"), "--segment need --covariates FILE"),
        (("--covariates", "nofile.csv"), "file 'nofile.csv' does not exist"),
        (("--covariates", "{cov}", "--covariate-columns", "chan"), "names ['chan'], not columns"),
        (
            ("--covariates", "{cov}", "--segment", "zone"),
            "'segment' (--segment) is 'zone', not a column",
        ),
        (("--covariates", "{cov}", "--links", "churn"), "'links' (--links) names ['churn']"),
    ],
)
def test_fit_errors_are_one_line_before_any_fit(files, tmp_path, capsys, extra, message):
    extra = [e.format(cov=files["cov"]) for e in extra]
    code, _, err = _run(
        capsys, "fit", str(files["log"]), "--amount", "amount", "--method", "map", "--out",
        str(tmp_path / "m"), *extra, "--quiet",
    )  # fmt: skip
    assert code == 2, err
    assert err.count("\n") == 1 and message in err
    assert not list(tmp_path.glob("m.*"))  # nothing written


def test_by_out_needs_by(files, capsys):
    code, _, err = _run(capsys, "value", str(files["prefix"]), "--by-out", "x.csv", *VALUE)
    assert code == 2 and "'--by-out' needs --by" in err


def test_fit_with_covariates_then_value_by_channel(files, tmp_path, capsys):
    prefix = tmp_path / "fit" / "shop"
    code, out, err = _run(
        capsys, "fit", str(files["log"]), "--amount", "amount", "--method", "map",
        "--observation-end", END, "--covariates", str(files["cov"]), "--covariate-columns",
        "channel", "--links", "purchase,dropout", "--out", str(prefix), "--quiet",
    )  # fmt: skip
    assert code == 0, err
    assert "coef_alpha[channel[web]]" in out or "coef_alpha[channel[shop]]" in out
    saved = pd.read_parquet(f"{prefix}.rfm.parquet")
    assert saved["channel"].tolist() == files["rfm"]["channel"].tolist()
    model = clvkit.load(f"{prefix}.bgnbd.nc")
    assert type(model).__name__ == "CovariatePurchaseModel"
    assert type(clvkit.load(f"{prefix}.gamma_gamma.nc")).__name__ == "GammaGamma"  # no spend link
    code, out, err = _run(capsys, "value", str(prefix), "--by", "channel", *VALUE)
    assert code == 0, err
    assert "Value by channel" in out
    # the saved table holds the covariates; without them the model says which it needs
    rfm_only = tmp_path / "bare"
    for suffix in (".bgnbd.nc", ".gamma_gamma.nc"):
        (tmp_path / f"bare{suffix}").write_bytes(Path(f"{prefix}{suffix}").read_bytes())
    saved.drop(columns="channel").to_parquet(f"{rfm_only}.rfm.parquet")
    code, _, err = _run(capsys, "value", str(rfm_only), *VALUE)
    assert (
        code == 2
        and err.count("\n") == 1
        and "covariate column(s) ['channel']" in err
        and "--covariates FILE" in err
    )
    code, _, err = _run(capsys, "value", str(rfm_only), "--covariates", str(files["cov"]), *VALUE)
    assert code == 0, err


def test_report_from_log_with_covariates(files):
    from clvkit.report import report_from_log

    run = report_from_log(
        files["log"], calibration_end=CAL, observation_end=END, fit_kwargs={"method": "map"},
        value_kwargs=FLOW, n_samples=100, random_seed=0, covariates=files["cov"],
        covariate_columns="channel", links="purchase",
    )  # fmt: skip
    assert type(run.transactions_model).__name__ == "CovariatePurchaseModel"
    assert type(run.spend_model).__name__ == "GammaGamma"  # links: purchase only
    assert "channel" in run.rfm.columns and len(run.rfm) == 2357


def test_default_links_put_the_covariates_on_both_models(files, tmp_path, capsys):
    prefix = tmp_path / "both"
    code, out, err = _run(
        capsys, "fit", str(files["log"]), "--amount", "amount", "--method", "map",
        "--observation-end", END, "--covariates", str(files["cov"]), "--covariate-columns",
        "channel", "--out", str(prefix), "--quiet",
    )  # fmt: skip
    assert code == 0, err
    assert "coef_b[channel[" in out and "coef_v[channel[" in out
    assert type(clvkit.load(f"{prefix}.gamma_gamma.nc")).__name__ == "CovariateSpendModel"
