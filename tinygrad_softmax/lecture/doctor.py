"""``tinygrad-softmax doctor``: which parts this machine has, what each enables, and how to install the rest.

The core needs Python 3.10+ and NumPy; everything else is optional and every
command does without it (:mod:`.extras`). The doctor checks each part, says
what it enables, and for a missing part prints the one install line for this
machine: apt-get on Debian or Ubuntu, Homebrew on macOS, winget on Windows,
conda inside a conda environment (Graphviz), and pip for the Python parts
(the same Python that runs the doctor).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import shutil
import sys
from dataclasses import dataclass

from . import extras

__all__ = ["Check", "diagnose", "installer", "report", "core_works"]

MIN_PYTHON = (3, 10)
MIN_NUMPY = (1, 24)
DEBIAN = "/etc/debian_version"  # Debian, Ubuntu and their kin: apt-get, even when it is not on PATH


@dataclass(frozen=True)
class Check:
    """One part: found or not, what it is (version or path), what it enables, how to install it."""

    name: str
    found: bool
    detail: str
    enables: str
    install: str
    core: bool = False


def installer() -> str:
    """This machine's installer for system programs: ``conda``, ``winget``, ``brew``, ``apt`` or ``""``."""
    if os.environ.get("CONDA_PREFIX") and shutil.which("conda"):
        return "conda"
    system = platform.system()
    if system == "Windows":
        return "winget"
    if system == "Darwin":
        return "brew"
    if shutil.which("apt-get") or os.path.isfile(DEBIAN):
        return "apt"
    return ""


def _system_line(part: str) -> str:
    """The install line of ``part`` for this machine's installer, or every way there is."""
    lines = extras.SYSTEM_INSTALL[part]
    how = installer()
    if how == "conda" and how not in lines:  # conda has no browser: the system's own installer then
        how = {"Windows": "winget", "Darwin": "brew"}.get(platform.system(), "apt")
    return lines.get(how, extras.INSTALL[part])


def _pip_line(what: str) -> str:
    """pip for the Python that runs this, with quotes the shell of this system understands."""
    quote = '"' if platform.system() == "Windows" else "'"
    python = sys.executable or "python"
    if " " in python:
        python = f'"{python}"'
    return f"{python} -m pip install {quote}{what}{quote}"


def _module(name: str, module: str) -> tuple[bool, str]:
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a blocked or half-installed package counts as missing
        found = False
    if not found:
        return False, "not installed"
    try:
        return True, importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return True, "installed"


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:2]:
        digits = "".join(c for c in piece if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def diagnose() -> list[Check]:
    """Every part, in the order the doctor prints them: the core first, then the optional parts."""
    py = sys.version_info[:3]
    checks = [
        Check(
            "Python",
            py[:2] >= MIN_PYTHON,
            ".".join(map(str, py)) + ("" if py[:2] >= MIN_PYTHON else " (3.10 or newer is needed)"),
            "the engine and every command",
            "Python 3.10 or newer: python.org, brew install python, winget install Python.Python.3.12",
            core=True,
        )
    ]
    found, version = _module("numpy", "numpy")
    good = found and _version(version) >= MIN_NUMPY if version[0].isdigit() else found
    checks.append(
        Check(
            "NumPy",
            good,
            version if good or not found else f"{version} (1.24 or newer is needed)",
            "the engine and every command",
            _pip_line("numpy>=1.24"),
            core=True,
        )
    )
    dot = shutil.which("dot")
    checks.append(
        Check(
            "Graphviz dot",
            extras.have("dot"),
            dot or "not on PATH",
            "graph pictures, the backward frames, the explorer page, and those slides of the deck",
            _system_line("dot"),
        )
    )
    for name, module, enables in (
        ("matplotlib", "matplotlib", "loss curves, weight images, decision boundaries, the epsilon plot"),
        ("Pillow", "PIL", "the animated GIF of the backward frames"),
    ):
        present, detail = _module(name, module)
        checks.append(Check(name, present, detail, enables, _pip_line("tinygrad_softmax[demo]")))
    program = extras.browser()
    checks.append(
        Check(
            "browser",
            program is not None,
            program or f"no Chromium, Chrome or Edge found (set {extras.BROWSER_ENV})",
            "slides --pdf, and the browser tests of the explorer and the deck "
            "(any browser opens the pages themselves)",
            _system_line("browser"),
        )
    )
    return checks


def core_works(checks: list[Check]) -> bool:
    return all(c.found for c in checks if c.core)


def report(checks: list[Check]) -> str:
    """The doctor's page: one line per part, what it enables, and the install line of a missing one."""
    width = max(len(c.name) for c in checks)
    system, how = platform.system() or "this system", installer() or "none found"
    lines = [f"tinygrad-softmax doctor: {system}, installer: {how}"]
    for c in checks:
        mark = "ok     " if c.found else "MISSING"
        lines.append(f"{mark} {c.name:<{width}}  {c.detail}")
        lines.append(f"{'':7} {'':<{width}}  enables: {c.enables}")
        if not c.found:
            lines.append(f"{'':7} {'':<{width}}  install: {c.install}")
    missing = [c.name for c in checks if not c.found and not c.core]
    if not core_works(checks):
        lines.append("the core does not work here: install the parts marked MISSING above")
    elif missing:
        lines.append(
            f"the core works; missing: {', '.join(missing)} "
            "(commands do everything else and say what they skip)"
        )
    else:
        lines.append("the core works, and every optional part is here")
    return "\n".join(lines) + "\n"
