"""Numbers as the lecture prints them: a value that shows as zero is printed as 0, never as -0.

A gradient through ``relu`` or a product with 0 is often ``-0.0``, or a tiny
negative number that rounds to zero at the printed precision; NumPy and
``format`` then print ``-0.000``, which a student reads as a sign that
matters. Every table, graph label and ledger formats through these two
functions, so ``0.000`` is printed the same everywhere.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

__all__ = ["number", "array_text"]

# A minus sign in front of a zero as printed: -0, -0., -0.000, -0.000e+00 (not -0.001, not -1e-05).
_NEGATIVE_ZERO = re.compile(r"(?<![\w.])-(0(?:\.0*)?(?:e[+-]?\d+)?)(?![\w.])")


def _drop_negative_zero(text: str) -> str:
    # A space where the minus was keeps the columns of a printed array aligned.
    return _NEGATIVE_ZERO.sub(r" \1", text)


def number(x: float, spec: str) -> str:
    """``format(x, spec)``, with a result that reads as zero printed without a minus sign."""
    text = format(float(x), spec)
    if text.startswith("-") and float(text) == 0:
        return text[1:]
    return text


def array_text(array: Any, **options: Any) -> str:
    """``np.array2string(array, **options)``, with every printed zero written without a minus sign."""
    return _drop_negative_zero(np.array2string(np.asarray(array), **options))
