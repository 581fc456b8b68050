"""Checked random seeds: every clvkit function that takes ``random_seed`` passes it through
:func:`check_random_seed`, so a bad seed gives one :class:`~clvkit.errors.ClvkitError` naming
the argument, wherever it is given.

A seed is ``None`` (fresh entropy from the operating system), a non-negative integer (Python
or numpy, not ``bool``), a :class:`numpy.random.Generator` (used as is, and advanced) or a
:class:`numpy.random.SeedSequence`. Floats (even ``1.0``), strings, booleans, negative integers
and sequences are refused.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from clvkit.errors import ClvkitError

__all__ = ["check_random_seed", "make_rng"]


def check_random_seed(
    value: Any, argument: str = "random_seed"
) -> np.random.Generator | np.random.SeedSequence | int | None:
    """Validate a random seed and return it in a form :func:`numpy.random.default_rng` takes.

    Parameters
    ----------
    value : int, numpy.random.Generator, numpy.random.SeedSequence or None
        The seed as the caller gave it.
    argument : str
        The argument name shown in the error.

    Returns
    -------
    numpy.random.Generator, numpy.random.SeedSequence, int or None
        ``value`` unchanged, with numpy integers converted to ``int``.

    Raises
    ------
    ClvkitError
        For anything else, e.g. ``-1``, ``1.5``, ``nan``, ``"a"``, ``True``.

    Examples
    --------
    >>> check_random_seed(np.int64(7))
    7
    >>> try:
    ...     check_random_seed(-1)
    ... except ClvkitError as err:
    ...     print(err)  # doctest: +NORMALIZE_WHITESPACE
    argument 'random_seed' is -1, which is not a seed. Suggestion: pass a non-negative
    integer (e.g. random_seed=0), a numpy Generator (np.random.default_rng(0)) or None.
    """
    if value is None or isinstance(value, np.random.Generator | np.random.SeedSequence):
        return value
    if (
        isinstance(value, numbers.Integral)
        and not isinstance(value, bool | np.bool_)
        and int(value) >= 0
    ):
        return int(value)
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    kind = "" if isinstance(value, int | float | str) else f" (type {type(value).__name__})"
    raise ClvkitError(
        f"argument {argument!r} is {shown}{kind}, which is not a seed. Suggestion: pass a "
        f"non-negative integer (e.g. {argument}=0), a numpy Generator "
        "(np.random.default_rng(0)) or None."
    )


def make_rng(value: Any, argument: str = "random_seed") -> np.random.Generator:
    """A :class:`numpy.random.Generator` from a seed checked by :func:`check_random_seed`
    (a Generator is returned as is, so the caller's stream advances).

    Examples
    --------
    >>> rng = np.random.default_rng(3)
    >>> make_rng(rng) is rng
    True
    >>> float(make_rng(0).random()) == float(np.random.default_rng(0).random())
    True
    """
    return np.random.default_rng(check_random_seed(value, argument))
