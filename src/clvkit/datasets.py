"""Example data: the CDNOW purchase logs and a simulator of the BG/NBD + Gamma-Gamma process.

The CDNOW files ship with the ``lifetimes`` package; they are read from its install directory
(no network). The simulator draws a purchase log from the generative process the models assume,
so parameter recovery can be tested against known truth.
"""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pandas as pd

from clvkit.errors import ClvkitError

__all__ = [
    "cdnow_calibration_summary",
    "cdnow_transactions",
]


def _lifetimes_datasets_dir() -> str:
    # find_spec locates the package without importing it (lifetimes' import is slow and noisy)
    spec = importlib.util.find_spec("lifetimes")
    if spec is None or not spec.submodule_search_locations:
        raise ClvkitError(
            "the CDNOW data ship with the 'lifetimes' package, which is not installed. "
            "Suggestion: pip install lifetimes"
        )
    return os.path.join(next(iter(spec.submodule_search_locations)), "datasets")


def cdnow_transactions(sample: bool = True) -> pd.DataFrame:
    """The CDNOW purchase log (music CDs bought from 1997-01-01 to 1998-06-30).

    Parameters
    ----------
    sample : bool
        ``True`` (default): the 1/10 sample of 2,357 customers (6,919 rows) used by Fader,
        Hardie and Lee (2005), with ``customer_id`` 1..2357 matching the rows of
        :func:`cdnow_calibration_summary`. ``False``: the full log of 23,570 customers
        (69,659 rows).

    Returns
    -------
    pandas.DataFrame
        Columns ``customer_id`` (int64), ``date`` (datetime64, day resolution) and ``amount``
        (float64, dollars), one row per purchase record (a customer may have several records on
        one day).

    Examples
    --------
    >>> log = cdnow_transactions()
    >>> log.shape, log["customer_id"].nunique()
    ((6919, 3), 2357)
    >>> log.iloc[0].to_dict()
    {'customer_id': 1, 'date': Timestamp('1997-01-01 00:00:00'), 'amount': 29.33}
    """
    folder = _lifetimes_datasets_dir()
    if sample:
        # columns: master id, sample id (1..2357), yyyymmdd, number of CDs, dollars
        raw = pd.read_csv(
            os.path.join(folder, "CDNOW_sample.txt"),
            sep=r"\s+",
            header=None,
            usecols=[1, 2, 4],
            names=["master_id", "customer_id", "date", "cds", "amount"],
            dtype={"customer_id": "int64", "date": "str", "amount": "float64"},
        )
    else:
        raw = pd.read_csv(
            os.path.join(folder, "CDNOW_master.txt"),
            sep=r"\s+",
            header=0,
            names=["customer_id", "date", "cds", "amount"],
            usecols=["customer_id", "date", "amount"],
            dtype={"customer_id": "int64", "date": "str", "amount": "float64"},
        )
    out = pd.DataFrame(
        {
            "customer_id": raw["customer_id"].to_numpy(dtype=np.int64),
            "date": pd.to_datetime(raw["date"], format="%Y%m%d").to_numpy(dtype="datetime64[ns]"),
            "amount": raw["amount"].to_numpy(dtype=np.float64),
        }
    )
    return out


def cdnow_calibration_summary() -> pd.DataFrame:
    """The published 39-week calibration summary of the CDNOW sample.

    Fader, Hardie and Lee (2005), as shipped by ``lifetimes``
    (``cdnow_customers_summary_with_transactions.csv``): calibration period 1997-01-01 to
    1997-09-30, times in weeks rounded to 0.01, spend rounded to cents.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``customer_id`` (1..2357) with ``frequency`` (int64), ``recency``, ``T``
        and ``monetary_value`` (float64); ``attrs`` hold ``time_unit="W"`` and
        ``observation_end="1997-09-30"``.

    Examples
    --------
    >>> rfm = cdnow_calibration_summary()
    >>> len(rfm), int(rfm["frequency"].sum()), rfm.attrs["time_unit"]
    (2357, 2457, 'W')
    """
    raw = pd.read_csv(
        os.path.join(_lifetimes_datasets_dir(), "cdnow_customers_summary_with_transactions.csv")
    )
    out = pd.DataFrame(
        {
            "frequency": raw["x"].to_numpy(dtype=np.int64),
            "recency": raw["t_x"].to_numpy(dtype=np.float64),
            "T": raw["T"].to_numpy(dtype=np.float64),
            "monetary_value": raw["zbar"].to_numpy(dtype=np.float64),
        },
        index=pd.Index(raw["ID"].to_numpy(dtype=np.int64), name="customer_id"),
    )
    out.attrs = {"time_unit": "W", "observation_end": "1997-09-30"}
    return out
