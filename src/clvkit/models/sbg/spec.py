"""The sBG model on the model contract: a "purchase" is a renewal payment.

A customer with ``renewals`` ``n`` and ``age`` ``a`` (periods since its start, see
:func:`clvkit.contract_summary`) at the end of observation ``T`` pays renewal ``n + k`` at
``(n + k) - a`` periods after ``T`` (``k = 1, 2, ...``) while alive; the first falls at
``u0 = n + 1 - a`` in ``(0, 1]``. So ``m(t) = floor(t - u0) + 1`` renewals are due in ``(T, T
+ t]`` (0 for ``t < u0``). A churned customer is not alive and pays nothing. Given active after
``n`` renewals, ``theta ~ Beta(alpha, beta + n)``:

- P(alive at ``T + t``) = ``S(n + m) / S(n)`` (it paid every renewal due; 1 at ``t = 0``);
- E[renewals in ``(T, T + t]``] = ``sum_{j=1}^{m} S(n + j) / S(n)``;
- P(``k`` renewals) = ``S(n + k) / S(n) * alpha / (alpha + beta + n + k)`` for ``k < m`` (it
  churns after ``k``), ``S(n + m) / S(n)`` for ``k = m``;
- simulation: ``theta`` from its conditional posterior, the number of further renewals
  ``K = Geometric(theta) - 1``, renewals at ``(n + j) - a`` for ``j <= min(K, m)``; the death
  time is the end of the last paid period, ``(n + K + 1) - a`` (``inf`` when it outlives the
  horizon).

A new customer (``new_customer_columns``) has just started and paid its first period at age 0:
``renewals = 0``, ``age = 0``, active; its renewals fall at 1, 2, ... periods.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import numpy as np
import pandas as pd

from clvkit.errors import ClvkitError, bad_rows_error
from clvkit.models.contract import (
    Cashflow,
    Columns,
    EventBatch,
    Future,
    Params,
    PMap,
    PurchaseSpec,
    serial_map,
    unit_batches,
)
from clvkit.models.sbg.math import expected_renewals, log_betaln_ratio, loglik_terms

__all__ = ["ShiftedBetaGeoSpec", "contract_columns"]

COLUMNS = ("renewals", "churned", "age")


def contract_columns(table: pd.DataFrame, argument: str = "summary") -> dict[str, np.ndarray]:
    """Validated float64 ``renewals``, ``churned`` (0/1) and ``age`` of a contract summary."""
    if not isinstance(table, pd.DataFrame):
        raise ClvkitError(
            f"argument {argument!r} must be a pandas DataFrame, got {type(table).__name__}. "
            "Suggestion: build it with clvkit.contract_summary(...)."
        )
    missing = [c for c in COLUMNS if c not in table.columns]
    if missing:
        raise ClvkitError(
            f"argument {argument!r} lacks columns {missing}. Suggestion: build it with "
            "clvkit.contract_summary(contracts, period=...)."
        )
    out = {}
    for c in COLUMNS:
        try:
            out[c] = table[c].to_numpy(dtype=np.float64, na_value=np.nan).copy()
        except (TypeError, ValueError) as exc:
            raise ClvkitError(
                f"column {c!r} of argument {argument!r} is not numeric. Suggestion: build the "
                "table with clvkit.contract_summary."
            ) from exc
    n, ch, a = out["renewals"], out["churned"], out["age"]
    checks = (
        ("renewals", ~np.isfinite(n) | (n < 0) | (n != np.round(n)), "is not a count >= 0"),
        ("churned", ~np.isin(ch, (0.0, 1.0)), "is not True/False"),
        ("age", ~np.isfinite(a) | (a < n) | (a > n + 1), "is not within [renewals, renewals + 1]"),
        ("age", (ch == 0) & (a >= n + 1), "equals renewals + 1 for an active customer"),
    )
    for col, bad, problem in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise bad_rows_error(
                f"column {col!r} of argument {argument!r}",
                problem,
                int(bad.sum()),
                {c: table[c].iloc[i] for c in COLUMNS},
                "build the table with clvkit.contract_summary.",
                n_total=len(table),
            )
    return out


def _ab(params: Params) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.asarray(params["alpha"], dtype=np.float64),
        np.asarray(params["beta"], dtype=np.float64),
    )


def _cols(cols: Columns) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return tuple(np.asarray(cols[c], dtype=np.float64) for c in COLUMNS)


def due(n: np.ndarray, age: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Renewals due in ``(T, T + t]``: ``floor(t - u0) + 1`` for ``t >= u0 = n + 1 - age``,
    else 0 (broadcast)."""
    u0 = n + 1.0 - age
    return np.where(t >= u0, np.floor(t - u0) + 1.0, 0.0)


class ShiftedBetaGeoSpec(PurchaseSpec):
    """Renewals of subscribers who churn with probability ``theta ~ Beta(alpha, beta)`` at the
    end of each period."""

    name: ClassVar[str] = "sbg"
    model_name: ClassVar[str] = "ShiftedBetaGeo"
    label: ClassVar[str] = "sBG"
    param_names: ClassVar[tuple[str, ...]] = ("alpha", "beta")
    covariate_links: ClassVar[dict[str, tuple[str, int]]] = {
        "alpha": ("churn", 1),
        "beta": ("churn", 1),
    }
    process_texts: ClassVar[dict[str, tuple[str, str]]] = {
        "churn": (
            "P(churn at the end of a period)",
            "are {x} as likely to churn each period",
        ),
    }
    columns: ClassVar[tuple[str, ...]] = COLUMNS
    data: ClassVar[str] = "contracts"

    def customer_columns(self, table: pd.DataFrame, argument: str = "rfm") -> dict[str, np.ndarray]:
        return contract_columns(table, argument)

    def process_means(self, params: Params) -> dict[str, np.ndarray]:
        """The mean churn probability per period ``alpha / (alpha + beta)``, per draw."""
        alpha, beta = (
            np.asarray(params[n], dtype=np.float64).reshape(-1) for n in ("alpha", "beta")
        )
        return {"churn": alpha / (alpha + beta)}

    def value_key(self, cols: Columns) -> np.ndarray:
        n, ch, a = _cols(cols)
        return np.stack([n, ch, np.where(ch > 0, 0.0, n + 1.0 - a)], axis=1)

    def loglik(self, params: Params, cols: Columns) -> np.ndarray:
        alpha, beta = _ab(params)
        n, ch, _ = _cols(cols)
        return loglik_terms(alpha, beta, n, ch)

    def probability_alive(self, params: Params, cols: Columns, t: np.ndarray) -> np.ndarray:
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        alpha, beta = _ab(params)
        n, ch, a = _cols(cols)
        m = due(n[:, None], a[:, None], t)  # (n, P)
        ln = log_betaln_ratio(alpha[..., None], (beta + n)[..., None], m)  # (S, n, P)
        return np.where(ch[:, None] > 0, 0.0, np.exp(ln))

    def expected_purchases(self, params: Params, cols: Columns, t: np.ndarray) -> np.ndarray:
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        alpha, beta = _ab(params)
        n, ch, a = _cols(cols)
        m = due(n[:, None], a[:, None], t)
        e = expected_renewals(alpha[..., None], beta[..., None], n[:, None], m)
        return np.where(ch[:, None] > 0, 0.0, e)

    def probability_of_purchases(
        self, params: Params, cols: Columns, t: float | np.ndarray, k: np.ndarray
    ) -> np.ndarray:
        k = np.atleast_1d(np.asarray(k, dtype=np.float64))
        alpha, beta = _ab(params)
        n, ch, a = _cols(cols)
        t = np.asarray(t, dtype=np.float64)
        m = due(n, a, t)[:, None]  # (n, 1): one window, or one per customer
        b = (beta + n)[..., None]  # (S, n, 1)
        al = alpha[..., None]
        surv = np.exp(log_betaln_ratio(al, b, k))  # S(n + k) / S(n)
        pk = np.where(k < m, surv * al / (al + b + k), np.where(k == m, surv, 0.0))
        return np.where(ch[:, None] > 0, (k == 0).astype(np.float64), pk)

    def expected_value(
        self,
        params: Params,
        cols: Columns,
        spend: np.ndarray,
        cashflow: Cashflow,
        pmap: PMap = serial_map,
    ) -> tuple[np.ndarray, np.ndarray]:
        """One compiled pass over each customer's renewals in the horizon
        (:mod:`clvkit.models.sbg.cashflow`); equal to the generic route."""
        from clvkit.models.sbg.cashflow import expected_value  # numba: compiled on first use

        return expected_value(params, cols, spend, cashflow, pmap)

    def simulate(
        self,
        params: Params,
        cols: Columns,
        horizon: float | np.ndarray,
        rng: np.random.Generator,
        batch_size: int = 2_000_000,
    ) -> Future:
        alpha, beta = _ab(params)
        n, ch, a = _cols(cols)
        H = np.broadcast_to(np.asarray(horizon, dtype=np.float64), n.shape)
        S = alpha.shape[0]
        pa = np.broadcast_to(np.where(ch > 0, 0.0, 1.0), (S, n.size)).copy()
        di, ci = np.nonzero(pa > 0)  # active customers are alive at T
        theta = rng.beta(alpha[di, 0], beta[di, 0] + n[ci])
        more = rng.geometric(np.maximum(theta, 1e-300)) - 1  # renewals before churn
        m = due(n[ci], a[ci], H[ci]).astype(np.int64)
        count = np.minimum(more, m)
        u0 = n[ci] + 1.0 - a[ci]
        death = np.where(more < m, u0 + more, np.inf)  # end of the last paid period

        def batches() -> Iterator[EventBatch]:
            for units in unit_batches(count, batch_size):
                nb = count[units]
                owner = np.repeat(np.arange(units.size), nb)
                j = np.arange(owner.size) - np.repeat(np.cumsum(nb) - nb, nb)  # 0, 1, ...
                times = u0[units][owner] + j
                yield EventBatch(draw=di[units], customer=ci[units], count=nb, times=times)

        return Future(
            p_alive=pa,
            alive_draw=di,
            alive_customer=ci,
            death=death,
            batches=batches(),
            latent={"theta": theta},
        )
