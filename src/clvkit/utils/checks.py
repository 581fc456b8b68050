"""Argument checks shared by every layer."""

from __future__ import annotations

import math
from typing import Any

from clvkit.errors import ClvkitError

__all__ = ["check_prob"]


def check_prob(
    prob: Any, argument: str = "prob", suggestion: str = "0.9 for a 90% interval."
) -> float:
    """``prob`` as a float in (0, 1), else a ClvkitError naming the argument (a bool, a
    non-number or NaN is refused too) and ending with ``suggestion``."""
    ok = isinstance(prob, int | float) and not isinstance(prob, bool)
    if not (ok and math.isfinite(prob) and 0 < prob < 1):
        raise ClvkitError(
            f"argument {argument!r} must be in (0, 1), got {prob!r}. Suggestion: {suggestion}"
        )
    return float(prob)
