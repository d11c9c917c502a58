"""What to do when an optional part is missing: do everything else, then say in one line what was skipped.

The optional parts are matplotlib (plots), Pillow (animated GIFs),
Graphviz's ``dot`` program (graph pictures) and a browser (Chromium, Chrome
or Edge: the deck's PDF). Every command uses this one
policy: it does all the work it can, then prints one line per missing part
naming what was skipped and the exact command that installs it. The install
hints below are the only copy; the Makefile and the README quote them and a
test keeps them identical.
"""

from __future__ import annotations

import importlib.util
import os
import shutil

__all__ = [
    "DEMO_EXTRA",
    "GRAPHVIZ_INSTALL",
    "BROWSER_INSTALL",
    "INSTALL",
    "SYSTEM_INSTALL",
    "browser",
    "have",
    "skipped",
]

DEMO_EXTRA = "pip install 'tinygrad_softmax[demo]'"
# Graphviz is a system program, not a Python package: one line per way of installing it.
GRAPHVIZ_INSTALL = (
    "sudo apt-get install graphviz (Debian/Ubuntu), brew install graphviz (macOS), "
    "winget install graphviz (Windows), conda install -c conda-forge graphviz (conda)"
)

BROWSER_ENV = "TINYGRAD_SOFTMAX_CHROMIUM"
BROWSER_INSTALL = (
    "sudo apt-get install chromium (Debian/Ubuntu), brew install --cask chromium (macOS), "
    f"winget install Google.Chrome (Windows), or set {BROWSER_ENV} to a Chromium, Chrome or Edge program"
)

# The name a reader knows → the exact install command.
INSTALL: dict[str, str] = {
    "matplotlib": DEMO_EXTRA,
    "Pillow": DEMO_EXTRA,
    "dot": GRAPHVIZ_INSTALL,
    "browser": BROWSER_INSTALL,
}
# The same, one line per installer, for ``doctor`` to pick this machine's (conda has no browser).
SYSTEM_INSTALL: dict[str, dict[str, str]] = {
    "dot": {
        "apt": "sudo apt-get install graphviz",
        "brew": "brew install graphviz",
        "winget": "winget install graphviz",
        "conda": "conda install -c conda-forge graphviz",
    },
    "browser": {
        "apt": "sudo apt-get install chromium",
        "brew": "brew install --cask chromium",
        "winget": "winget install Google.Chrome",
    },
}
_MODULE = {"matplotlib": "matplotlib", "Pillow": "PIL"}

# Where a browser lives when it is not on PATH (a Mac's apps, Windows' Program Files).
_BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome", "msedge")
_BROWSER_PLACES = (
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
    "/Applications/Microsoft Edge.app/Contents/MacOS/Microsoft Edge",
    r"C:\Program Files\Google\Chrome\Application\chrome.exe",
    r"C:\Program Files (x86)\Google\Chrome\Application\chrome.exe",
    r"C:\Program Files (x86)\Microsoft\Edge\Application\msedge.exe",
    r"C:\Program Files\Microsoft\Edge\Application\msedge.exe",
)


def browser() -> str | None:
    """A Chromium-family browser for printing the deck: $TINYGRAD_SOFTMAX_CHROMIUM if set, else the
    first on PATH, else one in the usual place on macOS or Windows; None if there is none."""
    chosen = os.environ.get(BROWSER_ENV)
    if chosen:
        return chosen if os.path.isfile(chosen) or shutil.which(chosen) else None
    for name in _BROWSER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return next((place for place in _BROWSER_PLACES if os.path.isfile(place)), None)


def have(part: str) -> bool:
    """Whether ``part`` (``"matplotlib"``, ``"Pillow"``, ``"dot"`` or ``"browser"``) can be used here."""
    if part == "dot":
        return shutil.which("dot") is not None and shutil.which("neato") is not None
    if part == "browser":
        return browser() is not None
    try:
        return importlib.util.find_spec(_MODULE[part]) is not None
    except (ImportError, ValueError):  # a blocked or half-installed package counts as missing
        return False


def skipped(what: str, part: str) -> str:
    """The one line a command prints for a missing part: what it skipped and how to install the part."""
    return f"skipped {what}: {part} is not installed; install it with: {INSTALL[part]}"
