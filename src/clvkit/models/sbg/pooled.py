"""sBG with partial pooling over cohorts: cohort parameters from a population distribution.

Cohort ``c`` churns with ``theta ~ Beta(alpha_c, beta_c)``, written as its mean churn ``m_c =
alpha_c / (alpha_c + beta_c)`` and its concentration ``k_c = alpha_c + beta_c`` (polarisation
``1 / (k_c + 1)``), drawn from the population:

- ``logit m_c = mu_m + tau_m z_m[c]``, ``log k_c = mu_k + tau_k z_k[c]``, ``z ~ Normal(0, 1)``;
- ``mu_m ~ Normal(-1, 1.5)``, ``mu_k ~ Normal(1, 1.5)``, ``tau_m, tau_k ~ HalfNormal(1)``.

The sampler sees each cohort coordinate non-centred (``z``) or centred (``logit m_c`` or
``log k_c`` itself), whichever suits the cohort's data (:func:`centring_flags`); the posterior
is the same.

So a young cohort (a few periods, or few customers) borrows strength from the older ones, and
``tau`` says how much the cohorts differ. Fitted with NUTS (nutpie on a compiled kernel, the
model's own); each cohort's posterior is a :class:`~clvkit.models.sbg.ShiftedBetaGeo` posterior
(:meth:`ShiftedBetaGeoPooled.cohort_model`), so every sBG prediction, value and equity works per
cohort unchanged; an unseen cohort is valued from the population distribution
(:meth:`ShiftedBetaGeoPooled.new_cohort_model`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from clvkit.errors import ClvkitError, NotFittedError
from clvkit.inference.diagnostics import ess_bulk, rhat
from clvkit.inference.sampling import (
    TARGET_ACCEPT,
    check_target_accept,
    kernel_logp,
    start_point,
)
from clvkit.models.sbg.likelihood import is_survival_table, stats_from_survival
from clvkit.models.sbg.model import ShiftedBetaGeo
from clvkit.models.sbg.pooled_kernels import (
    PRIOR_MU_K,
    PRIOR_MU_M,
    pooled_logp,
    pooled_logp_shaped,
)
from clvkit.models.sbg.spec import contract_columns
from clvkit.rng import check_random_seed
from clvkit.units import format_time_unit

__all__ = [
    "PRIOR_MU_K",
    "PRIOR_MU_M",
    "ShiftedBetaGeoPooled",
    "centring_flags",
    "pooled_logp",
    "pooled_logp_shaped",
    "to_mixed",
    "whitening",
]

LOW_RANK = False  # a diagonal mass matrix: 1.5x the ESS per second of low-rank here
#: :func:`centring_flags`: a cohort coordinate is centred where its data sd < tau / CENTRE_RATIO
#: (a margin against the funnel where tau is small: at a ratio of 2, 24 cohorts of 100
#: subscribers had divergences).
CENTRE_RATIO = 4.0


def _dims(K: int, N1: int, flags: np.ndarray) -> np.ndarray:
    """The ``dims`` argument of :func:`pooled_logp`: ``(K, N1)`` and the modes (centring
    flags)."""
    return np.concatenate([[K, N1], np.asarray(flags, dtype=np.int64)]).astype(np.int64)


def centring_flags(
    w_churn: np.ndarray, w_active: np.ndarray, K: int, N1: int, eta: np.ndarray
) -> np.ndarray:
    """Which cohort coordinates to centre (``2 K`` booleans: ``logit m_c``, then ``log k_c``)
    for the sampler, from a point ``eta`` of the non-centred parametrisation (the start).

    A coordinate ``u`` is centred when the cohort's data alone pin it down to well within the
    population spread, ``sigma_c < tau / CENTRE_RATIO`` (4): there the non-centred ``z = (u -
    mu) / tau`` is tied to ``mu`` and ``tau`` by the data and NUTS needs long trajectories,
    while a centred ``u`` is nearly independent of them (Betancourt and Girolami 2015); cohorts
    with little data stay non-centred (there the funnel of a small ``tau`` is the problem).
    ``sigma_c^2 = 1 / I_c``, ``I_c`` the curvature of the cohort's log-likelihood in ``u`` at
    ``eta``; ``tau`` a lower bound of the DerSimonian-Laird estimate of the between-cohort
    spread of the ``u`` at ``eta`` given those variances (0 when the cohorts do not differ
    beyond their noise, or for three cohorts or fewer: nothing is centred)."""
    eta = np.asarray(eta, dtype=np.float64)
    every = np.ones(2 * K, dtype=bool)
    point = to_mixed(eta, every)
    u = point[4:]
    point[[1, 3]] = 20.0  # a flat population prior: the curvature is the data's alone
    logp = kernel_logp(pooled_logp, [w_churn, w_active, _dims(K, N1, every)])
    info = np.empty(2 * K)
    h = 1e-4
    for i in range(2 * K):
        step = np.zeros(eta.size)
        step[4 + i] = h
        info[i] = -(logp(point + step)[1][4 + i] - logp(point - step)[1][4 + i]) / (2 * h)
    flags = np.zeros(2 * K, dtype=bool)
    for block in (slice(0, K), slice(K, 2 * K)):
        w = info[block]
        y = u[block]
        ok = np.isfinite(w) & (w > 0) & np.isfinite(y)
        if ok.sum() < 2:
            continue
        w, y = w[ok], y[ok]
        # a lower bound: the estimate less two of its relative standard errors, about
        # 1 / sqrt(2 (n - 1)) for n cohorts (none for n <= 3): few cohorts leave tau uncertain,
        # and a centred coordinate makes a funnel where tau runs small
        low = max(0.0, 1.0 - 2.0 / math.sqrt(2.0 * (w.size - 1)))
        if low == 0.0:
            continue
        with np.errstate(all="ignore"):
            q = float(w @ (y - (w @ y) / w.sum()) ** 2)
            tau2 = (q - (w.size - 1)) / (w.sum() - (w @ w) / w.sum())
        if not (np.isfinite(tau2) and tau2 > 0):
            continue
        flags[block][ok] = w * tau2 * low**2 > CENTRE_RATIO**2
    return flags


def whitening(
    w_churn: np.ndarray,
    w_active: np.ndarray,
    K: int,
    N1: int,
    eta: np.ndarray,
    flags: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """The ``dims`` modes and the ``shape`` of :func:`pooled_logp_shaped` for centring
    ``flags`` at a point ``eta`` of the non-centred parametrisation (the start): a cohort with
    both coordinates centred is whitened (mode 2) by its likelihood's covariance there, the
    inverse of the curvature of its log-likelihood in ``(logit m_c, log k_c)``, when that is
    positive definite, around its coordinates at ``eta`` (so ``v = 0`` there)."""
    eta = np.asarray(eta, dtype=np.float64)
    modes = np.asarray(flags, dtype=np.int64).copy()
    shape = np.zeros(5 * K)
    every = np.ones(2 * K, dtype=bool)
    point = to_mixed(eta, every)
    u = point[4:].copy()
    point[[1, 3]] = 20.0  # a flat population prior: the curvature is the data's alone
    logp = kernel_logp(pooled_logp, [w_churn, w_active, _dims(K, N1, every)])
    h = 1e-4
    cols = []
    for block in (slice(4, 4 + K), slice(4 + K, 4 + 2 * K)):  # the cohorts are independent
        step = np.zeros(eta.size)
        step[block] = h
        d = (logp(point + step)[1] - logp(point - step)[1]) / (2 * h)
        cols.append((-d[4 : 4 + K], -d[4 + K :]))
    for c in range(K):
        if not (flags[c] and flags[K + c]):
            continue
        a11, a21 = cols[0][0][c], cols[0][1][c]
        a12, a22 = cols[1][0][c], cols[1][1][c]
        off = 0.5 * (a12 + a21)
        det = a11 * a22 - off * off
        if not (np.isfinite(det) and det > 0 and a11 > 0):
            continue
        cov = np.array([[a22, -off], [-off, a11]]) / det
        chol = np.linalg.cholesky(cov)
        modes[c] = modes[K + c] = 2
        shape[5 * c : 5 * c + 5] = (u[c], u[K + c], chol[0, 0], chol[1, 0], chol[1, 1])
    return modes, shape


def to_mixed(eta: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """A point of the non-centred parametrisation in the mixed one of ``flags``: centred
    coordinates ``z`` become ``u = mu + tau z``."""
    out = np.array(eta, dtype=np.float64)
    K = (out.size - 4) // 2
    u_m = out[0] + math.exp(out[1]) * out[4 : 4 + K]
    u_k = out[2] + math.exp(out[3]) * out[4 + K :]
    f = np.asarray(flags, dtype=bool)
    out[4 : 4 + K] = np.where(f[:K], u_m, out[4 : 4 + K])
    out[4 + K :] = np.where(f[K:], u_k, out[4 + K :])
    return out


def _cohort_weights(table: pd.DataFrame, cohort_col: str) -> tuple[list, np.ndarray, np.ndarray]:
    """Cohort labels and the customers of each cohort churned / active after ``n`` renewals,
    ``(K, N1)`` each (the arrays of :func:`pooled_logp`), from a contract summary (grouped by
    ``cohort_col``) or a survival table (its rows)."""
    if not isinstance(table, pd.DataFrame):
        raise ClvkitError(
            f"argument 'table' must be a pandas DataFrame, got {type(table).__name__}. "
            "Suggestion: clvkit.contract_summary(...) or clvkit.survival_table(...)."
        )
    if is_survival_table(table):
        labels = list(table.index)
        rows = [stats_from_survival(table.iloc[[i]], "table") for i in range(len(labels))]
        codes = np.concatenate([np.full(r.renewals.size, k) for k, r in enumerate(rows)])
        renewals = np.concatenate([r.renewals for r in rows])
        churned = np.concatenate([r.churned for r in rows])
        weight = np.concatenate([r.weight for r in rows])
    else:
        if cohort_col not in table.columns:
            raise ClvkitError(
                f"argument 'table' has no column {cohort_col!r}. Suggestion: build it with "
                "clvkit.contract_summary (column 'cohort') or pass cohort_col=."
            )
        cols = contract_columns(table, "table")
        codes, labels = pd.factorize(table[cohort_col], sort=True)
        labels = list(labels)
        renewals, churned = cols["renewals"], cols["churned"]
        weight = np.ones(renewals.size)
    K = len(labels)
    N1 = int(renewals.max()) + 1 if renewals.size else 1
    cell = codes.astype(np.int64) * N1 + renewals.astype(np.int64)
    w_churn = np.bincount(cell, weights=weight * (churned > 0), minlength=K * N1)
    w_active = np.bincount(cell, weights=weight * (churned == 0), minlength=K * N1)
    return labels, w_churn.reshape(K, N1), w_active.reshape(K, N1)


class ShiftedBetaGeoPooled:
    """sBG over several cohorts with partial pooling (a hierarchical prior), fitted by NUTS.

    See the module docstring for the model. Use :meth:`fit`, then :meth:`cohort_model` (a
    :class:`ShiftedBetaGeo` with the cohort's posterior draws: predictions, ``project``,
    ``derl``, ``customer_value``), :meth:`new_cohort_model` (an unseen cohort, from the
    population), ``posterior_`` (``mu_m``, ``tau_m``, ``mu_k``, ``tau_k`` over ``chain, draw``
    and ``alpha``, ``beta`` over ``chain, draw, cohort``) and ``cohorts_``.

    Examples
    --------
    >>> from clvkit import cohort_counts
    >>> t = cohort_counts({"2023": [100, 70, 55, 46], "2024": [100, 66]}, "Y", size=500)
    >>> pooled = ShiftedBetaGeoPooled().fit(t, draws=300, tune=300, random_seed=1)
    >>> pooled.cohorts_
    ['2023', '2024']
    """

    def fit(
        self,
        table: pd.DataFrame,
        *,
        cohort_col: str = "cohort",
        chains: int = 4,
        draws: int = 1000,
        tune: int = 1000,
        random_seed: int | np.random.Generator | None = None,
        progressbar: bool = False,
        target_accept: float = TARGET_ACCEPT,
    ) -> ShiftedBetaGeoPooled:
        """Fit by NUTS to a contract summary (cohorts from ``cohort_col``) or a survival table
        (one cohort per row); ``target_accept`` is NUTS's target acceptance rate (higher:
        smaller steps, where it diverges). Returns ``self``."""
        from clvkit.inference.nutpie_native import NativeKernel, sample_native
        from clvkit.models.sbg.pooled_native import pooled_logp_c  # numba's machinery: here

        unit = table.attrs.get("time_unit") if isinstance(table, pd.DataFrame) else None
        labels, w_churn, w_active = _cohort_weights(table, cohort_col)
        if not unit:
            raise ClvkitError(
                "argument 'table' has no attrs['time_unit'] (the billing period). Suggestion: "
                "build it with clvkit.contract_summary / survival_table / cohort_counts."
            )
        if len(labels) < 2:
            raise ClvkitError(
                f"argument 'table' holds {len(labels)} cohort. Suggestion: pooling needs two "
                "or more cohorts; fit ShiftedBetaGeo to one."
            )
        K, N1 = w_churn.shape
        arrays = [w_churn.ravel(), w_active.ravel(), np.array([K, N1], dtype=np.int64)]
        if not (w_churn > 0).any():
            raise ClvkitError(
                "argument 'table' has no churned customer. Suggestion: observe the cohorts longer."
            )
        seed = check_random_seed(random_seed)
        logp = kernel_logp(pooled_logp, arrays)
        x0 = np.zeros(4 + 2 * K)
        x0[0], x0[2] = PRIOR_MU_M[0], PRIOR_MU_K[0]
        start = start_point(logp, x0)
        flags = centring_flags(arrays[0], arrays[1], K, N1, start)
        modes, shape = whitening(arrays[0], arrays[1], K, N1, start, flags)
        white = modes[:K] == 2
        start = to_mixed(start, flags)
        start[4:][modes == 2] = 0.0  # whitened: v = 0 at the start
        start[[1, 3]] = np.maximum(start[[1, 3]], -3.0)  # not at the funnel's neck
        kernel = NativeKernel(
            pooled_logp_shaped, pooled_logp_c, [*arrays[:2], _dims(K, N1, modes), shape]
        )
        names = (
            "mu_m", "log_tau_m", "mu_k", "log_tau_k",
            *(f"z_m{k}" for k in range(K)), *(f"z_k{k}" for k in range(K)),
        )  # fmt: skip
        post, stats = sample_native(
            kernel,
            names,
            ("real",) * len(names),
            start,
            chains=int(chains),
            draws=int(draws),
            tune=int(tune),
            random_seed=seed,
            progressbar=progressbar,
            low_rank=LOW_RANK,
            target_accept=check_target_accept(target_accept),
        )
        zm = np.stack([post[f"z_m{k}"].to_numpy() for k in range(K)], axis=-1)
        zk = np.stack([post[f"z_k{k}"].to_numpy() for k in range(K)], axis=-1)
        mu_m, mu_k = post["mu_m"].to_numpy(), post["mu_k"].to_numpy()
        tau_m, tau_k = np.exp(post["log_tau_m"].to_numpy()), np.exp(post["log_tau_k"].to_numpy())
        # u = logit m_c, log k_c: the coordinate itself where centred, s + L v where whitened,
        # mu + tau z elsewhere
        um = np.where(flags[:K], zm, mu_m[..., None] + tau_m[..., None] * zm)
        uk = np.where(flags[K:], zk, mu_k[..., None] + tau_k[..., None] * zk)
        sh = shape.reshape(K, 5)
        um = np.where(white, sh[:, 0] + sh[:, 2] * zm, um)
        uk = np.where(white, sh[:, 1] + sh[:, 3] * zm + sh[:, 4] * zk, uk)
        m = 1.0 / (1.0 + np.exp(-um))
        kc = np.exp(uk)
        dims = ("chain", "draw", "cohort")
        self.posterior_ = xr.Dataset(
            {
                "mu_m": (("chain", "draw"), mu_m),
                "tau_m": (("chain", "draw"), tau_m),
                "mu_k": (("chain", "draw"), mu_k),
                "tau_k": (("chain", "draw"), tau_k),
                "alpha": (dims, m * kc),
                "beta": (dims, (1.0 - m) * kc),
            },
            coords={
                "chain": post["chain"].to_numpy(),
                "draw": post["draw"].to_numpy(),
                "cohort": np.asarray([str(c) for c in labels], dtype=object),
            },
        )
        self.posterior_.attrs.update({"time_unit": format_time_unit(unit), "model": "sBG pooled"})
        self.sample_stats_ = stats
        self.cohorts_ = [str(c) for c in labels]
        self.time_unit_ = format_time_unit(unit)
        self.n_customers_ = round(float(w_churn.sum() + w_active.sum()))
        return self

    def _check(self) -> None:
        if not hasattr(self, "posterior_"):
            raise NotFittedError(
                "ShiftedBetaGeoPooled is not fitted. Suggestion: call fit(table) first."
            )

    def cohort_model(self, cohort: Any) -> ShiftedBetaGeo:
        """The sBG model of one cohort: its posterior draws of ``alpha``, ``beta``."""
        self._check()
        if str(cohort) not in self.cohorts_:
            raise ClvkitError(
                f"argument 'cohort' is {cohort!r}, not a fitted cohort. Suggestion: one of "
                f"{self.cohorts_[:5]}{'...' if len(self.cohorts_) > 5 else ''}, or "
                "new_cohort_model() for an unseen one."
            )
        ds = self.posterior_[["alpha", "beta"]].sel(cohort=str(cohort)).drop_vars("cohort")
        ds.attrs = {}
        return ShiftedBetaGeo.from_posterior(ds, time_unit=self.time_unit_)

    def new_cohort_model(self, random_seed: int | np.random.Generator | None = None) -> Any:
        """An unseen cohort: per draw, its ``alpha``, ``beta`` drawn from the population
        distribution (``z ~ Normal(0, 1)``), as a :class:`ShiftedBetaGeo`."""
        self._check()
        rng = np.random.default_rng(check_random_seed(random_seed))
        p = self.posterior_
        shape = p["mu_m"].shape
        m = 1.0 / (1.0 + np.exp(-(p["mu_m"].to_numpy() + p["tau_m"].to_numpy()
                                  * rng.standard_normal(shape))))  # fmt: skip
        kc = np.exp(p["mu_k"].to_numpy() + p["tau_k"].to_numpy() * rng.standard_normal(shape))
        ds = xr.Dataset(
            {"alpha": (("chain", "draw"), m * kc), "beta": (("chain", "draw"), (1.0 - m) * kc)},
            coords={"chain": p["chain"].to_numpy(), "draw": p["draw"].to_numpy()},
        )
        return ShiftedBetaGeo.from_posterior(ds, time_unit=self.time_unit_)

    def diagnostics(self) -> dict[str, float]:
        """R-hat and bulk ESS of the population parameters and the cohorts' ``alpha``,
        ``beta`` (worst over them), and the number of divergences (ArviZ's definitions, by
        :mod:`clvkit.inference.diagnostics`: no ArviZ import)."""
        self._check()
        rhats, ess = [], []
        for v in self.posterior_.data_vars:
            x = self.posterior_[v].transpose("chain", "draw", ...).to_numpy()
            x = x.reshape(x.shape[0], x.shape[1], -1)
            for j in range(x.shape[2]):
                rhats.append(rhat(x[:, :, j]))
                ess.append(ess_bulk(x[:, :, j]))
        div = self.sample_stats_.get("diverging")
        return {
            "max_rhat": float(np.nanmax(rhats)),
            "min_ess_bulk": float(np.nanmin(ess)),
            "divergences": int(div.sum()) if div is not None else 0,
        }

    # ---- persistence (save / clvkit.load) ----------------------------------------------------
    #: The ``model`` attribute of a saved file, and the posterior variables it must hold.
    SAVED_NAME = "ShiftedBetaGeoPooled"
    SAVED_VARS = ("mu_m", "tau_m", "mu_k", "tau_k", "alpha", "beta")

    def _fingerprint(self) -> str:
        from clvkit.models.stats import fingerprint

        p = self.posterior_
        arrays = [p[v].transpose("chain", "draw", ...).to_numpy() for v in self.SAVED_VARS]
        labels = np.frombuffer("\x00".join(self.cohorts_).encode(), dtype=np.uint8)
        return fingerprint(*arrays, labels, np.array([self.n_customers_], dtype=np.int64))

    def save(self, path: str | Any) -> None:
        """Write the fitted model (posterior, sampler statistics, cohorts, time unit) to NetCDF.

        Written to a temporary file beside ``path`` and moved onto it only when complete; no
        other file is touched. Read it back with :func:`clvkit.load`.
        """

        import arviz as az

        from clvkit.inference.estimator import FORMAT_NAME, FORMAT_VERSION
        from clvkit.utils.io import atomic_path, model_file_path

        self._check()
        path = model_file_path(path)
        post = self.posterior_.copy()
        post["cohort"] = post["cohort"].astype(str)
        idata = az.InferenceData(posterior=post, sample_stats=self.sample_stats_)
        idata.attrs.update(
            {
                "clvkit_format": FORMAT_NAME,
                "clvkit_format_version": FORMAT_VERSION,
                "model": self.SAVED_NAME,
                "time_unit": self.time_unit_,
                "n_customers": int(self.n_customers_),
                "posterior_fingerprint": self._fingerprint(),
            }
        )
        with atomic_path(path) as tmp:
            idata.to_netcdf(tmp, engine="h5netcdf")

    @classmethod
    def from_inference_data(cls, idata: Any, path: str = "") -> ShiftedBetaGeoPooled:
        """The model from the ``InferenceData`` of a file written by :meth:`save` (read it
        with :func:`clvkit.load`, which checks the format first). Raises ``ClvkitError`` for a
        damaged file."""
        groups = set(idata.groups())
        post = idata.posterior if "posterior" in groups else None
        missing = [v for v in cls.SAVED_VARS if post is None or v not in post]
        if missing or "sample_stats" not in groups or "cohort" not in post.coords:
            raise ClvkitError(
                f"argument 'path' ({path!r}) is a damaged ShiftedBetaGeoPooled file (missing "
                f"{missing or 'groups or the cohort coordinate'}). Suggestion: save the model "
                "again."
            )
        model = cls()
        posterior = post.copy()
        posterior = posterior.assign_coords(
            cohort=np.asarray([str(c) for c in post["cohort"].to_numpy()], dtype=object)
        )
        model.posterior_ = posterior
        model.sample_stats_ = idata.sample_stats
        model.cohorts_ = [str(c) for c in posterior["cohort"].to_numpy()]
        model.time_unit_ = str(idata.attrs.get("time_unit", "")) or None
        model.n_customers_ = int(idata.attrs.get("n_customers", 0))
        if model._fingerprint() != idata.attrs.get("posterior_fingerprint"):
            raise ClvkitError(
                f"argument 'path' ({path!r}) fails its integrity check (posterior fingerprint "
                "mismatch). Suggestion: save the model again."
            )
        return model


def _register_saved() -> None:
    """Let :func:`clvkit.load` read saved pooled fits."""
    from clvkit.models.persistence import register_saved

    register_saved(ShiftedBetaGeoPooled.SAVED_NAME, ShiftedBetaGeoPooled)


_register_saved()
