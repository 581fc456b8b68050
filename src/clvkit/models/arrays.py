"""Cheap input checks shared by the models' prediction functions (numpy in, numpy out).

Population parameters are scalars or ``(S, 1)`` draws; customer arrays are ``(N,)``; these
helpers turn bad input into a :class:`clvkit.errors.ClvkitError` naming the argument.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from clvkit.errors import ClvkitError, bad_rows_error

__all__ = [
    "as_float",
    "broadcast_shape",
    "check_window",
    "customer_arrays",
    "customer_layout",
    "draw_layout",
    "horizon_array",
    "nonneg",
    "positive_param",
]


def as_float(value: ArrayLike, name: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ClvkitError(
            f"argument {name!r} must be numeric. Suggestion: pass a number or a numpy array."
        ) from exc
    return arr


def positive_param(value: ArrayLike, name: str) -> np.ndarray:
    arr = as_float(value, name)
    bad = ~(np.isfinite(arr) & (arr > 0))
    if bad.any():
        raise bad_rows_error(
            f"parameter {name!r}",
            "is not a positive finite number",
            int(bad.sum()),
            arr[bad].ravel()[0],
            "population parameters must be > 0; pass posterior draws as an (S, 1) array",
        )
    return arr


def nonneg(value: ArrayLike, name: str, suggestion: str) -> np.ndarray:
    arr = as_float(value, name)
    bad = ~(np.isfinite(arr) & (arr >= 0))
    if bad.any():
        raise bad_rows_error(
            f"argument {name!r}", "is negative or not finite", int(bad.sum()),
            arr[bad].ravel()[0], suggestion,
        )  # fmt: skip
    return arr


def customer_arrays(
    frequency: ArrayLike, recency: ArrayLike | None, T: ArrayLike
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    x = nonneg(frequency, "frequency", "frequency counts repeat purchases, so it is >= 0")
    T_ = nonneg(T, "T", "T is the customer's age (observation end minus first purchase)")
    non_int = x != np.round(x)
    if non_int.any():
        raise bad_rows_error(
            "argument 'frequency'", "is not a whole number", int(non_int.sum()),
            x[non_int].ravel()[0], "frequency counts repeat purchases",
        )  # fmt: skip
    if recency is None:
        return x, None, T_
    tx = nonneg(recency, "recency", "recency is last minus first purchase time, so it is >= 0")
    broadcast_shape(x, tx, T_)
    tx_b, T_b = np.broadcast_arrays(tx, T_)
    late = tx_b > T_b
    if late.any():
        raise bad_rows_error(
            "argument 'recency'", "exceeds T", int(late.sum()),
            {"recency": tx_b[late].ravel()[0], "T": T_b[late].ravel()[0]},
            "recency and T must share a time unit and a customer's recency cannot exceed its age",
        )  # fmt: skip
    return x, tx, T_


def horizon_array(value: ArrayLike, name: str) -> np.ndarray:
    arr = nonneg(value, name, f"{name} is a duration in the model's time unit, so it is >= 0")
    if arr.ndim > 1:
        raise ClvkitError(
            f"argument {name!r} has shape {arr.shape}. Suggestion: pass a scalar or a 1-D "
            "array of horizons (they become a trailing axis of the result)."
        )
    return arr


def check_window(s: np.ndarray, e: np.ndarray, suggestion: str) -> list[np.ndarray]:
    """Broadcast ``start`` and ``end``; refuse windows that end before they start."""
    broadcast_shape(s, e)
    sb, eb = np.broadcast_arrays(s, e)
    bad = sb > eb
    if bad.any():
        raise bad_rows_error(
            "argument 'start'", "exceeds 'end'", int(bad.sum()),
            {"start": sb[bad].ravel()[0], "end": eb[bad].ravel()[0]}, suggestion,
        )  # fmt: skip
    return [sb, eb]


def broadcast_shape(*arrays: np.ndarray) -> tuple[int, ...]:
    try:
        return np.broadcast_shapes(*(np.shape(a) for a in arrays))
    except ValueError as exc:
        raise ClvkitError(
            f"inputs do not broadcast ({exc}). Suggestion: pass draws as (S, 1) arrays and "
            "customers as (N,) arrays."
        ) from exc


def draw_layout(params: list[np.ndarray], names: list[str]) -> tuple[tuple[int, ...], int]:
    """Parameters must be scalars or share one (S, 1) layout; returns (shape, S)."""
    try:
        shape = np.broadcast_shapes(*(p.shape for p in params))
    except ValueError as exc:
        raise ClvkitError(
            f"parameters {', '.join(names)} do not broadcast together. "
            "Suggestion: pass posterior draws as (S, 1) arrays or scalars."
        ) from exc
    if shape == ():
        return shape, 1
    if len(shape) != 2 or shape[1] != 1:
        raise ClvkitError(
            f"parameters {', '.join(names)} have shape {shape}. Suggestion: pass posterior "
            "draws as (S, 1) arrays (e.g. draws.reshape(-1, 1)) or scalars."
        )
    return shape, shape[0]


def customer_layout(arrays: list[np.ndarray]) -> tuple[tuple[int, ...], list[np.ndarray]]:
    try:
        shape = np.broadcast_shapes(*(a.shape for a in arrays))
    except ValueError as exc:
        raise ClvkitError(
            "customer arrays (frequency, recency, T) have different lengths. "
            "Suggestion: pass aligned 1-D arrays, one entry per customer."
        ) from exc
    if len(shape) > 1:
        raise ClvkitError(
            f"customer arrays have shape {shape}. Suggestion: pass 1-D arrays of shape (N,)."
        )
    return shape, [np.broadcast_to(a, shape).ravel() for a in arrays]
