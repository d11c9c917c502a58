"""What to do when an optional part is missing: do everything else, then say in one line what was skipped.

The optional parts are matplotlib (plots), Pillow (animated GIFs), SymPy (the element view of
``derive``) and Graphviz's ``dot`` program (graph pictures). Every command uses this one
policy: it does all the work it can, then prints one line per missing part
naming what was skipped and the exact command that installs it. The install
hints below are the only copy; the Makefile and the README quote them and a
test keeps them identical.
"""

from __future__ import annotations

import importlib.util
import shutil

__all__ = [
    "DEMO_EXTRA",
    "GRAPHVIZ_INSTALL",
    "INSTALL",
    "have",
    "skipped",
]

DEMO_EXTRA = "pip install 'tinygrad_softmax[demo]'"
# Graphviz is a system program, not a Python package: one line per way of installing it.
GRAPHVIZ_INSTALL = (
    "sudo apt-get install graphviz (Debian/Ubuntu), brew install graphviz (macOS), "
    "winget install graphviz (Windows), conda install -c conda-forge graphviz (conda)"
)

# The name a reader knows → the exact install command.
INSTALL: dict[str, str] = {
    "matplotlib": DEMO_EXTRA,
    "Pillow": DEMO_EXTRA,
    "SymPy": DEMO_EXTRA,
    "dot": GRAPHVIZ_INSTALL,
}
_MODULE = {"matplotlib": "matplotlib", "Pillow": "PIL", "SymPy": "sympy"}


def have(part: str) -> bool:
    """Whether ``part`` (``"matplotlib"``, ``"Pillow"``, ``"SymPy"`` or ``"dot"``) can be used here."""
    if part == "dot":
        return shutil.which("dot") is not None and shutil.which("neato") is not None
    try:
        return importlib.util.find_spec(_MODULE[part]) is not None
    except (ImportError, ValueError):  # a blocked or half-installed package counts as missing
        return False


def skipped(what: str, part: str) -> str:
    """The one line a command prints for a missing part: what it skipped and how to install the part."""
    return f"skipped {what}: {part} is not installed; install it with: {INSTALL[part]}"
