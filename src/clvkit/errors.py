"""Exceptions and warnings raised by clvkit.

Every error a user can cause derives from :class:`ClvkitError` (itself a ``ValueError``), names
the column or argument at fault, counts the bad rows and shows one, and ends with a suggestion.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ClvkitError",
    "ClvkitWarning",
    "ConvergenceWarning",
    "NotFittedError",
    "SpendCorrelationWarning",
    "bad_rows_error",
]


class ClvkitError(ValueError):
    """Base class for every error caused by the caller's input.

    Examples
    --------
    >>> import pandas as pd
    >>> from clvkit import rfm_summary
    >>> try:
    ...     rfm_summary(pd.DataFrame({"customer_id": [1], "when": ["2024-01-01"]}))
    ... except ClvkitError as err:
    ...     print(str(err).split(";")[0])
    transactions has no column for date='date'
    """


class NotFittedError(ClvkitError, AttributeError):
    """A model method that needs a fit was called before ``fit``.

    Examples
    --------
    >>> from clvkit import BetaGeo
    >>> try:
    ...     BetaGeo().expected_purchases_new_customer(10)
    ... except NotFittedError:
    ...     print("fit first")
    fit first
    """


class ClvkitWarning(UserWarning):
    """Base class for clvkit's warnings.

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("error", ClvkitWarning)  # make every clvkit warning fatal
    ...     issubclass(ConvergenceWarning, ClvkitWarning)
    True
    """


class ConvergenceWarning(ClvkitWarning):
    """The sampler's diagnostics (R-hat, ESS, divergences) failed their thresholds.

    Examples
    --------
    >>> import warnings, clvkit
    >>> rfm = clvkit.datasets.cdnow_calibration_summary()
    >>> with warnings.catch_warnings(record=True) as caught:  # far too short to converge
    ...     warnings.simplefilter("always")
    ...     _ = clvkit.BetaGeo().fit(rfm, chains=2, draws=30, tune=30, random_seed=1,
    ...                              progressbar=False)
    >>> any(issubclass(w.category, ConvergenceWarning) for w in caught)
    True
    """


class SpendCorrelationWarning(ClvkitWarning):
    """Spend and purchase frequency are correlated, against the Gamma-Gamma assumption.

    :class:`clvkit.GammaGamma` warns at fit time when ``|corr(frequency, monetary_value)|``
    among repeat customers exceeds 0.3.

    Examples
    --------
    >>> import warnings
    >>> import pandas as pd
    >>> from clvkit import GammaGamma
    >>> rfm = pd.DataFrame({"frequency": [1, 2, 3, 4], "monetary_value": [10.0, 21.0, 29.0, 42.0]})
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = GammaGamma().fit(rfm, method="map")
    >>> [w.category.__name__ for w in caught]
    ['SpendCorrelationWarning']
    """


def bad_rows_error(
    what: str,
    problem: str,
    n_bad: int,
    example: Any,
    suggestion: str | None = None,
    n_total: int | None = None,
) -> ClvkitError:
    """Build a :class:`ClvkitError` that names ``what``, counts bad rows and shows one.

    Parameters
    ----------
    what : str
        The column or argument at fault, e.g. ``"column 'amount'"``.
    problem : str
        What is wrong, e.g. ``"is negative"``.
    n_bad : int
        Number of offending rows.
    example : Any
        One offending row or value, shown verbatim.
    suggestion : str, optional
        How to fix it.
    n_total : int, optional
        Total rows, to show the share.

    Returns
    -------
    ClvkitError
        The error, to be raised by the caller.

    Examples
    --------
    >>> err = bad_rows_error("column 'amount'", "is negative", 3, {"amount": -1.0})
    >>> print(err)  # doctest: +NORMALIZE_WHITESPACE
    column 'amount' is negative in 3 rows; for example: {'amount': -1.0}
    """
    rows = "row" if n_bad == 1 and n_total is None else "rows"
    of_total = f" of {n_total:,}" if n_total is not None else ""
    msg = f"{what} {problem} in {n_bad:,}{of_total} {rows}; for example: {example}"
    if suggestion:
        msg += f". Suggestion: {suggestion}"
    return ClvkitError(msg)
