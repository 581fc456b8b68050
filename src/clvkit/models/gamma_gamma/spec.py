"""Gamma-Gamma on the model contract: expected and simulated spend per purchase."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pandas as pd

from clvkit.models.contract import Columns, Params, SpendSpec
from clvkit.models.gamma_gamma.likelihood import gg_loglik_customers
from clvkit.models.gamma_gamma.predictions import gg_expected_spend, gg_sample_nu
from clvkit.models.inputs import validate_rfm

__all__ = ["GammaGammaSpec"]


def _p(params: Params) -> tuple[np.ndarray, ...]:
    return tuple(np.asarray(params[n], dtype=np.float64) for n in ("p", "q", "v"))


def _c(cols: Columns) -> tuple[np.ndarray, np.ndarray]:
    return (
        np.asarray(cols["frequency"], dtype=np.float64),
        np.asarray(cols["monetary_value"], dtype=np.float64),
    )


class GammaGammaSpec(SpendSpec):
    """Gamma-Gamma (Fader and Hardie 2013): each purchase's spend is ``Gamma(p, nu)`` with
    ``nu ~ Gamma(q, v)`` across customers; ``monetary_value`` is the mean of the repeat
    purchases."""

    name: ClassVar[str] = "gamma_gamma"
    model_name: ClassVar[str] = "GammaGamma"
    label: ClassVar[str] = "Gamma-Gamma"
    param_names: ClassVar[tuple[str, ...]] = ("p", "q", "v")
    covariate_links: ClassVar[dict[str, tuple[str, int]]] = {"v": ("spend", 1)}
    process_texts: ClassVar[dict[str, tuple[str, str]]] = {
        "spend": ("mean spend per purchase", "spend {x} as much per purchase"),
    }
    columns: ClassVar[tuple[str, ...]] = ("frequency", "monetary_value")

    def customer_columns(self, table: pd.DataFrame, argument: str = "rfm") -> dict[str, np.ndarray]:
        data = validate_rfm(table, need_recency=False, need_monetary=True, argument=argument)
        return {"frequency": data.frequency, "monetary_value": data.monetary_value}

    def process_means(self, params: Params) -> dict[str, np.ndarray]:
        """The mean spend per purchase ``p v / (q - 1)`` per draw (``inf`` where ``q <= 1``:
        the mean does not exist)."""
        p, q, v = (np.asarray(x).reshape(-1) for x in _p(params))
        mean = np.full(q.shape, np.inf)
        ok = q > 1
        mean[ok] = p[ok] * v[ok] / (q[ok] - 1.0)
        return {"spend": mean}

    def value_key(self, cols: Columns) -> np.ndarray:
        x, m = _c(cols)
        return np.stack([x, np.where(x > 0, m, 0.0)], axis=1)

    def loglik(self, params: Params, cols: Columns) -> np.ndarray:
        return gg_loglik_customers(*_p(params), *_c(cols))

    def expected_spend(self, params: Params, cols: Columns) -> np.ndarray:
        x, m = _c(cols)
        return gg_expected_spend(*_p(params), x, np.where(x > 0, m, 0.0))

    def sample_spend(
        self,
        params: Params,
        cols: Columns,
        draw: np.ndarray,
        customer: np.ndarray,
        count: np.ndarray,
        rng: np.random.Generator,
    ) -> np.ndarray:
        p, q, v = (w[draw, 0] for w in _p(params))
        x, m = _c(cols)
        nu = gg_sample_nu(p, q, v, x[customer], m[customer], rng)  # nu | history, per unit
        owner = np.repeat(np.arange(count.size), count)
        return rng.gamma(p[owner]) / nu[owner]
