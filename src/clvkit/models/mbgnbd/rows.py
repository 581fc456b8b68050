"""MBG/NBD per-row log-likelihood and gradient, compiled: the fitting kernel of covariate models
with one row per customer.

Row ``i`` is the base likelihood (:func:`clvkit.models.mbgnbd.likelihood.mbg_loglik_grad`) of
the history ``(x, t_x, T)[i]`` under its own ``theta[i] = log([r, alpha, a, b])``; the numpy
form is :func:`clvkit.models.mbgnbd.likelihood.mbg_loglik_rows_grad` (tested equal). As in
:mod:`clvkit.models.bgnbd.rows`, the gamma-function ratios of ``A(x)`` are rising factorials
(``Γ(r+x)/Γ(r) · Γ(b+x+1)/Γ(b) · Γ(a+b)/Γ(a+b+x+1)``) and their digamma differences sums of
reciprocals, up to ``x = XMAX``. The kernel is BG/NBD's
(:func:`clvkit.models.rising.beta_geometric_rows`) with one ``extra`` chance to drop out, at
the first purchase.
"""

from __future__ import annotations

import numpy as np

from clvkit.models.rising import beta_geometric_rows

__all__ = ["mbg_rows_loglik_grad"]


def mbg_rows_loglik_grad(
    theta: np.ndarray, frequency: np.ndarray, recency: np.ndarray, T: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Compiled :func:`clvkit.models.mbgnbd.likelihood.mbg_loglik_rows_grad`: the MBG/NBD
    log-likelihood ``(m,)`` of each row under its own ``theta`` ``(m, 4)`` (log parameters) and
    its gradient ``(m, 4)``."""
    theta = np.ascontiguousarray(theta, dtype=np.float64)
    x, tx, t = (np.ascontiguousarray(v, dtype=np.float64) for v in (frequency, recency, T))
    ll = np.empty(x.size)
    grad = np.empty((x.size, 4))
    beta_geometric_rows(theta, x, tx, t, ll, grad, 1)
    return ll, grad
