"""Training tables for the contract suite where a model's columns differ from CDNOW's RFM table
(a contractual model reads renewals, not purchases); see ``OWN_TABLES`` in test_contract.py."""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["contract_table"]


def contract_table(n: int = 600, seed: int = 16) -> pd.DataFrame:
    """A contract summary (as :func:`clvkit.contract_summary` gives) of ``n`` monthly
    subscribers who churn with ``theta ~ Beta(0.7, 1.2)``, observed for up to 24 months."""
    rng = np.random.default_rng(seed)
    theta = rng.beta(0.7, 1.2, n)
    life = rng.geometric(theta)  # periods paid
    age = rng.uniform(0.0, 24.0, n)  # periods from the start to the end of observation
    active = life > np.floor(age)
    renewals = np.where(active, np.floor(age), life - 1).astype(np.int64)
    frac = rng.uniform(0.05, 1.0, n)  # churned: the contract ends within its last period
    out = pd.DataFrame(
        {
            "cohort": "all",
            "renewals": renewals,
            "churned": ~active,
            "age": np.where(active, age, renewals + frac),
        },
        index=pd.Index(np.arange(1, n + 1), name="customer_id"),
    )
    # active and churned customers alternate, so any few rows hold both
    act, gone = np.flatnonzero(active), np.flatnonzero(~active)
    k = min(act.size, gone.size)
    order = np.concatenate([np.stack([act[:k], gone[:k]], axis=1).ravel(), act[k:], gone[k:]])
    out = out.iloc[order]
    out.index = pd.Index(np.arange(1, n + 1), name="customer_id")
    out.attrs.update({"time_unit": "M", "period": "M", "kind": "contractual"})
    return out
