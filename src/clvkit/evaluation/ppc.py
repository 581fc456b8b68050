"""Posterior predictive check of the calibration repeat-purchase histogram, for any purchase model."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from clvkit.errors import ClvkitError
from clvkit.evaluation.common import CELLS, draw_index, model_draws
from clvkit.models.contract import PurchaseSpec, n_draws
from clvkit.rng import make_rng
from clvkit.utils.checks import check_prob

__all__ = ["frequency_ppc", "new_customer_pmf"]


def new_customer_pmf(
    spec: PurchaseSpec, params: dict[str, np.ndarray], ages: np.ndarray, n_max: int
) -> np.ndarray:
    """P(X(age) = n) for ``n < n_max`` and P(X(age) >= n_max) of a new customer.

    Built from :meth:`PurchaseSpec.probability_of_purchases` of an empty history
    (:meth:`PurchaseSpec.new_customer_columns`), one new customer per age in one call. Returns
    ``(S, len(ages), n_max + 1)``.

    Examples
    --------
    >>> from clvkit.evaluation.common import model_draws
    >>> spec, prm = model_draws({"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4}, "purchase", "p")
    >>> float(new_customer_pmf(spec, prm, np.array([30.0]), 3).sum())
    1.0
    """
    ages = np.asarray(ages, dtype=np.float64)
    k = np.arange(n_max, dtype=np.float64)
    probs = spec.probability_of_purchases(params, spec.new_customer_columns(ages.size), ages, k)
    tail = np.maximum(1.0 - probs.sum(-1, keepdims=True), 0.0)
    return np.concatenate([probs, tail], axis=-1)


def frequency_ppc(
    transactions_posterior: Any,
    frequency: np.ndarray,
    T: np.ndarray,
    *,
    max_frequency: int = 7,
    prob: float = 0.9,
    n_samples: int = 1000,
    random_seed: int | np.random.Generator | None = None,
) -> pd.DataFrame:
    """Posterior predictive check of the calibration repeat-purchase histogram (0..max, max+).

    The expected number of customers with ``n`` repeat purchases is ``sum_i P(X(T_i) = n)``
    (Fader, Hardie and Lee 2005, eq. 8, for BG/NBD), the new-customer probability of ``n``
    purchases at age ``T_i`` from the model contract, averaged over the draws; the interval
    comes from histograms simulated per draw (a multinomial per distinct age ``T``).

    Returns
    -------
    pandas.DataFrame
        Indexed by ``"0", ..., "7+"`` with ``actual``, ``expected``, ``lower``, ``upper``.
        ``attrs`` hold ``chi_square`` (sum of (actual - expected)^2 / expected), ``dof``
        (bins - 1 - the model's number of parameters, at least 1) and ``p_value`` (chi-square
        reference, approximate); bins that no customer can reach (expected 0 and empty, e.g.
        more purchases than a BG/BB customer had opportunities) are left out of both.

    Examples
    --------
    >>> post = {"r": 0.2426, "alpha": 4.4137, "a": 0.793, "b": 2.4262}
    >>> ppc = frequency_ppc(post, np.array([0, 1, 3]), np.array([30.0, 30.0, 20.0]),
    ...                     max_frequency=2, random_seed=0)
    >>> round(float(ppc["expected"].sum()), 6), ppc.attrs["dof"]
    (3.0, 1)
    """
    check_prob(prob)
    if int(max_frequency) != max_frequency or max_frequency < 1:
        raise ClvkitError(
            f"argument 'max_frequency' must be a positive integer, got {max_frequency!r}. "
            "Suggestion: use 7."
        )
    max_frequency = int(max_frequency)
    rng = make_rng(random_seed)
    spec, params = model_draws(transactions_posterior, "purchase", "transactions_posterior")
    x = np.minimum(np.asarray(frequency, dtype=np.int64), max_frequency)
    t_uniq, inv = np.unique(np.asarray(T, dtype=np.float64), return_inverse=True)
    S = n_draws(params)
    k = max_frequency + 1
    # expected histogram over all draws (distinct T only) and, from the same pmf blocks,
    # predictive histograms: the customers sharing an age T_g are i.i.d. categorical given the
    # draw, so their bin counts are Multinomial(n_g, pmf_g); summing over g is exact and
    # costs (samples x distinct T x bins), whatever the number of customers
    n_g = np.bincount(inv, minlength=t_uniq.size)
    expected = np.zeros(k)
    idx = draw_index(S, n_samples, rng)
    order = np.argsort(idx, kind="stable")  # samples grouped by draw (idx is sorted if S >= n)
    bounds = np.searchsorted(idx[order], np.arange(0, S + 1))
    hist = np.zeros((n_samples, k))
    step = max(1, CELLS // (k * t_uniq.size))
    for lo in range(0, S, step):
        hi = min(S, lo + step)
        sub = {n: v[lo:hi] for n, v in params.items()}
        pm = new_customer_pmf(spec, sub, t_uniq, max_frequency)  # (s, G, k)
        expected += np.einsum("sgk,g->k", pm, n_g.astype(float))
        pos = order[bounds[lo] : bounds[hi]]  # samples whose draw is in this block
        if pos.size:
            ps = pm[idx[pos] - lo]
            ps = ps / ps.sum(-1, keepdims=True)  # guard the multinomial against rounding
            hist[pos] = rng.multinomial(n_g, ps).sum(axis=1)
    expected /= S
    actual = np.bincount(x, minlength=k).astype(float)
    lower, upper = np.quantile(hist, [(1 - prob) / 2, (1 + prob) / 2], axis=0)
    labels = [str(i) for i in range(max_frequency)] + [f"{max_frequency}+"]
    out = pd.DataFrame(
        {"actual": actual, "expected": expected, "lower": lower, "upper": upper},
        index=pd.Index(labels, name="repeat_purchases"),
    )
    # bins no customer can reach (more purchases than opportunities, for BG/BB) are left out
    used = (expected > 1e-9 * max(len(x), 1)) | (actual > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        chi2 = float(np.sum((actual[used] - expected[used]) ** 2 / expected[used]))
    dof = max(int(used.sum()) - 1 - len(spec.param_names), 1)
    out.attrs.update(
        chi_square=chi2, dof=dof, p_value=float(stats.chi2.sf(chi2, dof)), prob=prob,
        model=spec.name,
    )  # fmt: skip
    return out
