"""A printout as a page shows it, against what a command prints on this machine.

The pages quote printouts made on one CPU. The error figures in them (``7.6e-17``, ``3.9e-10``: every
one of them is printed in scientific notation with a decimal, ``d.de±xx``) are rounding: another
CPU's BLAS kernel sums in another order and prints other digits, and even ``0`` where the page shows
``6.5e-17``. So such a figure is compared by its order of magnitude: the two agree within a factor
of ten, or both are below ``NOISE`` (a lone ``0`` counts as such a figure). The entry an error is
largest at, ``[0, 1]``, is rounding's choice too; it is compared by its number of axes. Everything
else, words, shapes, other whole numbers, fixed-point values such as a loss, and round constants such
as ``1e-07`` or ``eps = 1e-06``, is compared as written; only the spaces between words are not, as a
figure printed wider or narrower moves the columns after it.

A page may also leave lines out: a line ``...`` stands for any lines, and a line ending in `` ...``
for any line that starts like it.
"""

from __future__ import annotations

import math
import re

# Below this an absolute or relative error is rounding in float64, whatever its digits.
NOISE = 1e-12
# d.de±xx: an error figure as the programs print them (round constants print as 1e-07, no decimals),
# or a lone 0, which a table prints for an error that happens to be exactly zero on this CPU.
FIGURE = re.compile(r"(?<![\w.])-?(?:\d\.\d+e[+-]\d+|0)(?![\w.])")
# The entry where an error is largest: dZ[0, 1], or the `worst` column's [2, 0].
INDEX = re.compile(r"\[\d+(?:, \d+)*\]")


def _tokens(line: str) -> tuple[list[str], list[float]]:
    """The line's words, each error figure replaced by a marker, and those figures in order."""
    figures: list[float] = []

    def keep(match: re.Match[str]) -> str:
        figures.append(float(match.group(0)))
        return "\x00"

    text = INDEX.sub(lambda m: "[" + "·" * (m.group(0).count(",") + 1) + "]", line)
    return [FIGURE.sub(keep, word) for word in text.split()], figures


def _same_size(shown: float, printed: float) -> bool:
    if abs(shown) < NOISE and abs(printed) < NOISE:
        return True
    if shown == 0 or printed == 0 or (shown < 0) != (printed < 0):
        return False
    return abs(math.log10(shown / printed)) < 1


def same_line(shown: str, printed: str) -> bool:
    """One shown line against one printed line, error figures by their order of magnitude (a figure
    printed wider or narrower moves the columns after it, so words are compared, not spaces)."""
    if shown == printed:
        return True
    words_shown, figures_shown = _tokens(shown.removesuffix(" ..."))
    words_printed, figures_printed = _tokens(printed)
    if shown.endswith(" ..."):  # the shown words start the printed line; the last may be cut short
        n = len(words_shown)
        if len(words_printed) < n or not words_shown:
            return False
        if words_printed[: n - 1] != words_shown[:-1] or not words_printed[n - 1].startswith(words_shown[-1]):
            return False
        figures_printed = figures_printed[: len(figures_shown)]
    elif words_printed != words_shown:
        return False
    return len(figures_shown) == len(figures_printed) and all(map(_same_size, figures_shown, figures_printed))


def shows(shown: list[str], printed: list[str]) -> bool:
    """``printed`` as ``shown`` writes it: ``...`` lines stand for any lines, `` ...`` ends for any
    ending; every other line is the printed one, in order, error figures by their order of magnitude."""
    at = 0
    for k, line in enumerate(shown):
        if line == "...":
            following = shown[k + 1] if k + 1 < len(shown) else None
            while at < len(printed) and following is not None and not same_line(following, printed[at]):
                at += 1
            continue
        if at >= len(printed) or not same_line(line, printed[at]):
            return False
        at += 1
    return at == len(printed) or shown[-1] == "..."
