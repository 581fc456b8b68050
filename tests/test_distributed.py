"""clvkit.distributed on a dask.distributed LocalCluster: identical to the in-memory and
out-of-core (DuckDB) paths, for summaries and for customer value, at any partitioning."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import clvkit
from clvkit import distributed as cd
from clvkit.datasets import cdnow_transactions, simulate
from clvkit.errors import ClvkitError, ClvkitWarning

dask = pytest.importorskip("dask")
dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("dask.distributed")


@pytest.fixture(scope="module")
def client():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cluster = distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
        )
        cl = distributed.Client(cluster)
    yield cl
    cl.close()
    cluster.close()


@pytest.fixture(scope="module")
def cdnow_log() -> pd.DataFrame:
    return cdnow_transactions()


@pytest.fixture(scope="module")
def sim_log() -> pd.DataFrame:
    sim = simulate(3000, r=2.0, alpha=8.0, a=1.0, b=12.0, p=6.0, q=4.0, v=15.0, random_seed=7)
    log = sim.transactions.sample(frac=1.0, random_state=3)  # rows in no particular order
    # same-day purchases of one customer, three of them, to check the summing order
    extra = log.iloc[[0, 0, 0]].assign(amount=[0.1, 0.2, 0.3])
    return pd.concat([log, extra], ignore_index=True)


def _posteriors(seed: int, chains: int = 2, draws: int = 60):
    rng = np.random.default_rng(seed)

    def post(params, sd):
        return xr.Dataset(
            {
                k: (("chain", "draw"), v * np.exp(sd * rng.standard_normal((chains, draws))))
                for k, v in params.items()
            }
        )

    bg = post({"r": 0.2426, "alpha": 4.4137, "a": 0.793, "b": 2.4262}, 0.1)
    gg = post({"p": 6.2488, "q": 3.7446, "v": 15.4477}, 0.1)
    return bg, gg


def _assert_same_value(mem, dist, probs=(0.9, 0.5)):
    for name in ("equity", "expected_equity", "tier_equity", "tier_count", "new_customer"):
        assert np.array_equal(getattr(mem, name).values, getattr(dist, name).values), name
    pd.testing.assert_frame_equal(mem.tier_table(), dist.tier_table(), check_exact=True)
    for prob in probs:
        got = dist.summary(prob).compute().sort_index()
        pd.testing.assert_frame_equal(got, mem.summary(prob).sort_index(), check_exact=True)
    assert mem.report() == dist.report()


# ----------------------------------------------------------------------------------------------
# summaries
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("npartitions", [1, 3, 8])
def test_rfm_summary_identical_on_cdnow(client, cdnow_log, npartitions, tmp_path):
    kw = {"amount": "amount", "observation_end": "1997-09-30"}
    with pytest.warns(ClvkitWarning, match="after observation_end"):
        mem = clvkit.rfm_summary(cdnow_log, **kw)
    log = dd.from_pandas(cdnow_log, npartitions=npartitions)
    with pytest.warns(ClvkitWarning, match="after observation_end"):
        lazy = cd.rfm_summary(log, **kw, npartitions=npartitions + 1)
    got = lazy.compute()
    assert got.attrs == mem.attrs
    pd.testing.assert_frame_equal(got.sort_index(), mem, check_exact=True)
    if npartitions == 3:  # out of core: DuckDB on Parquet files, and Dask reading them
        for i, part in enumerate(np.array_split(np.arange(len(cdnow_log)), 3)):
            cdnow_log.iloc[part].to_parquet(tmp_path / f"p{i}.parquet", index=False)
        with pytest.warns(ClvkitWarning):
            duck = clvkit.rfm_summary(str(tmp_path / "*.parquet"), **kw)
        pd.testing.assert_frame_equal(duck, mem, check_exact=True)
        with pytest.warns(ClvkitWarning):
            from_files = cd.rfm_summary(dd.read_parquet(str(tmp_path / "*.parquet")), **kw)
        pd.testing.assert_frame_equal(from_files.compute().sort_index(), mem, check_exact=True)


@pytest.mark.parametrize("npartitions", [2, 5])
def test_summaries_identical_on_simulated_data(client, sim_log, npartitions):
    log = dd.from_pandas(sim_log, npartitions=npartitions)
    mem = clvkit.rfm_summary(sim_log, amount="amount", time_unit="D")
    got = cd.rfm_summary(log, amount="amount", time_unit="D").compute()
    pd.testing.assert_frame_equal(got.sort_index(), mem, check_exact=True)
    assert got.attrs == mem.attrs
    kw = {"calibration_end": "2020-09-30", "observation_end": "2021-03-31", "amount": "amount"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClvkitWarning)
        mem_ch = clvkit.calibration_holdout(sim_log, **kw)
        got_ch = cd.calibration_holdout(log, **kw).compute()
    pd.testing.assert_frame_equal(got_ch.sort_index(), mem_ch, check_exact=True)
    assert got_ch.attrs == mem_ch.attrs


def test_summary_without_amount_and_with_string_ids(client, sim_log):
    log = sim_log.drop(columns="amount").assign(
        customer_id=lambda d: "c" + d["customer_id"].astype(str)
    )
    mem = clvkit.rfm_summary(log)
    with dask.config.set({"dataframe.convert-string": False}):  # keep pandas' str dtype
        got = cd.rfm_summary(dd.from_pandas(log, npartitions=3)).compute()
    pd.testing.assert_frame_equal(got.sort_index(), mem, check_exact=True)
    assert list(got.columns) == ["frequency", "recency", "T"]


# ----------------------------------------------------------------------------------------------
# customer value
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "draws", "npartitions"),
    [("expected", None, 1), ("expected", 50, 4), ("simulate", None, 3), ("simulate", 50, 5)],
)
def test_customer_value_identical_on_cdnow(client, cdnow_log, method, draws, npartitions):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClvkitWarning)
        rfm = clvkit.rfm_summary(cdnow_log, amount="amount", observation_end="1997-09-30")
    bg, gg = _posteriors(1)
    kw = {"horizon": "52W", "annual_discount_rate": 0.1, "method": method, "random_seed": 5,
          "chunk_size": 170, "draws": draws, "cost_per_period": 0.5}  # fmt: skip
    mem = clvkit.customer_value(bg, gg, rfm, **kw)
    # rows in another order, split into partitions: the same chunks are rebuilt
    shuffled = rfm.sample(frac=1.0, random_state=1)
    dist = cd.customer_value(bg, gg, dd.from_pandas(shuffled, npartitions=2),
                             npartitions=npartitions, **kw)  # fmt: skip
    assert dist.settings["n_draws"] == mem.settings["n_draws"] == (draws or 120)
    assert dist.settings["n_customers"] == len(rfm)
    _assert_same_value(mem, dist)
    # the in-memory result does not depend on the row order of rfm either
    again = clvkit.customer_value(bg, gg, shuffled, **kw)
    assert np.array_equal(again.equity.values, mem.equity.values)
    pd.testing.assert_frame_equal(again.summary().sort_index(), mem.summary(), check_exact=True)


def test_simulated_end_to_end_and_out_of_core(client, sim_log, tmp_path):
    """Log -> Dask summary -> Dask value equals the in-memory and DuckDB routes."""
    for i, part in enumerate(np.array_split(np.arange(len(sim_log)), 4)):
        sim_log.iloc[part].to_parquet(tmp_path / f"p{i}.parquet", index=False)
    mem_rfm = clvkit.rfm_summary(sim_log, amount="amount")
    duck_rfm = clvkit.rfm_summary(str(tmp_path / "*.parquet"), amount="amount")
    pd.testing.assert_frame_equal(duck_rfm, mem_rfm, check_exact=True)
    dask_rfm = cd.rfm_summary(dd.read_parquet(str(tmp_path / "*.parquet")), amount="amount")
    bg, gg = _posteriors(2, chains=1, draws=40)
    kw = {"horizon": "26W", "annual_discount_rate": 0.1, "random_seed": 9, "chunk_size": 250,
          "probs": (0.8, 0.975)}  # fmt: skip
    mem = clvkit.customer_value(bg, gg, mem_rfm, **kw)
    duck = clvkit.customer_value(bg, gg, duck_rfm, **kw)
    assert np.array_equal(duck.equity.values, mem.equity.values)
    for npartitions in (2, 7):
        dist = cd.customer_value(bg, gg, dask_rfm, npartitions=npartitions, **kw)
        _assert_same_value(mem, dist, probs=(0.8, 0.975))


def test_default_chunks_and_pandas_input(client, cdnow_log):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClvkitWarning)
        rfm = clvkit.rfm_summary(cdnow_log, amount="amount", observation_end="1997-09-30")
    # the expected method's default chunk holds 8e6 values: 1,000 customers of 8,000 draws
    bg, gg = _posteriors(3, chains=1, draws=8000)
    kw = {"horizon": 39, "discount_rate_per_period": 0.01, "random_seed": 1}
    mem = clvkit.customer_value(bg, gg, rfm, **kw)
    dist = cd.customer_value(bg, gg, rfm, npartitions=3, **kw)
    assert dist.settings["chunk_size"] == 1000
    assert np.array_equal(mem.equity.values, dist.equity.values)
    assert dist.customers.npartitions == 3
    # the caller's frame is untouched
    assert list(rfm.columns) == ["frequency", "recency", "T", "monetary_value"]


def test_cashflow_settings_object_is_forwarded(client, cdnow_log):
    """distributed.customer_value takes the same CashflowSettings (and keyword overrides) as
    the in-memory call, with the same bits."""
    from clvkit.value import CashflowSettings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClvkitWarning)
        rfm = clvkit.rfm_summary(cdnow_log, amount="amount", observation_end="1997-09-30")
    bg, gg = _posteriors(5, chains=2, draws=30)
    flow = CashflowSettings("52W", period="4W", annual_discount_rate=0.1, cost_per_period=0.3)
    mem = clvkit.customer_value(bg, gg, rfm, flow, margin=0.5, random_seed=2, chunk_size=300)
    dist = cd.customer_value(bg, gg, dd.from_pandas(rfm, npartitions=2), flow, margin=0.5,
                             random_seed=2, chunk_size=300)  # fmt: skip
    assert dist.settings["margin"] == 0.5 and dist.settings["cost_per_period"] == 0.3
    _assert_same_value(mem, dist)


# ----------------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------------
def test_summary_errors_name_the_argument(client, cdnow_log):
    log = dd.from_pandas(cdnow_log, npartitions=2)
    with pytest.raises(ClvkitError, match=r"'transactions' is a pandas DataFrame.*Suggestion"):
        cd.rfm_summary(cdnow_log)
    with pytest.raises(ClvkitError, match="must be a Dask DataFrame"):
        cd.rfm_summary([1, 2])
    with pytest.raises(ClvkitError, match="amount='spend'"):
        cd.rfm_summary(log, amount="spend")
    with pytest.raises(ClvkitError, match="'npartitions'"):
        cd.rfm_summary(log, npartitions=0)
    with pytest.raises(ClvkitError, match=r"'observation_end'.*before the first purchase"):
        cd.rfm_summary(log, observation_end="1990-01-01")
    with pytest.raises(ClvkitError, match=r"'calibration_end'.*is not before"):
        cd.calibration_holdout(log, calibration_end="1998-01-01", observation_end="1997-01-01")
    with pytest.raises(ClvkitError, match=r"'calibration_end'.*before the first purchase"):
        cd.calibration_holdout(log, calibration_end="1990-01-01", observation_end="1998-01-01")
    bad = cdnow_log.astype({"date": object})
    bad.loc[bad.index[-1], "date"] = "not a date"
    with pytest.raises(ClvkitError, match="column 'date' is not a parseable date"):
        cd.rfm_summary(dd.from_pandas(bad, npartitions=2))
    with pytest.raises(ClvkitError, match="'time_unit'"):
        cd.rfm_summary(log, time_unit="fortnight")


def test_value_errors_name_the_argument(client, cdnow_log):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ClvkitWarning)
        rfm = clvkit.rfm_summary(cdnow_log, amount="amount", observation_end="1997-09-30")
    bg, gg = _posteriors(4, chains=1, draws=20)
    kw = {"horizon": "52W", "annual_discount_rate": 0.1}
    with pytest.raises(ClvkitError, match="argument 'rfm' lacks column"):
        cd.customer_value(bg, gg, dd.from_pandas(rfm.drop(columns="T"), npartitions=2), **kw)
    with pytest.raises(ClvkitError, match="'rfm' must be a Dask DataFrame"):
        cd.customer_value(bg, gg, rfm.to_numpy(), **kw)
    dup = pd.concat([rfm.iloc[:50], rfm.iloc[:50].assign(T=rfm["T"].iloc[:50] + 1)])
    with pytest.raises(ClvkitError, match="'customer_id' of 'rfm' is duplicated in 50 of 100"):
        cd.customer_value(bg, gg, dd.from_pandas(dup, npartitions=2, sort=False), **kw)
    with pytest.raises(ClvkitError, match="'customer_id' of 'rfm' is duplicated"):  # same part
        cd.customer_value(bg, gg, dd.from_pandas(dup, npartitions=1), **kw)
    neg = rfm.copy()
    neg.iloc[7, neg.columns.get_loc("T")] = -1.0
    with pytest.raises(ClvkitError, match=r"column 'T' of 'rfm'.*Suggestion"):
        cd.customer_value(bg, gg, dd.from_pandas(neg, npartitions=2), **kw)
    with pytest.raises(ClvkitError, match="'npartitions'"):
        cd.customer_value(bg, gg, dd.from_pandas(rfm, npartitions=2), npartitions=0, **kw)
    no_unit = rfm.copy()
    no_unit.attrs = {}
    with pytest.raises(ClvkitError, match="no time unit"):
        cd.customer_value(bg, gg, dd.from_pandas(no_unit, npartitions=2), **kw)
    with pytest.raises(ClvkitError, match="'margin'"):
        cd.customer_value(bg, gg, dd.from_pandas(rfm, npartitions=2), margin=2, **kw)
    res = cd.customer_value(bg, gg, dd.from_pandas(no_unit, npartitions=2), time_unit="W", **kw)
    with pytest.raises(ClvkitError, match="'prob'"):
        res.summary(0.7)


def test_missing_dask_gives_an_install_suggestion():
    """Dask is an optional extra: without it, clvkit.distributed says how to install it."""
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent(
        """
        import sys
        sys.modules["dask"] = None  # as if dask were not installed
        import pandas as pd
        import clvkit
        from clvkit import distributed
        from clvkit.errors import ClvkitError
        try:
            distributed.rfm_summary(pd.DataFrame({"customer_id": [1], "date": ["2020-01-01"]}))
        except ClvkitError as exc:
            print(exc)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "pip install 'clvkit[dask]'" in proc.stdout
