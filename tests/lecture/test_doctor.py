"""``tinygrad-softmax doctor``: each part found or missing, what it enables, and this system's install line.

Each part is taken away the way a machine without it looks: a module that
refuses to import, a PATH without ``dot`` or a browser, another operating
system. The doctor names the part MISSING with the install line for that
system and exits 0 as long as the core (Python and NumPy) works.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_extras_missing import BLOCKER

from tinygrad_softmax.cli import main
from tinygrad_softmax.lecture import doctor, extras


def checks_by_name() -> dict[str, doctor.Check]:
    return {c.name: c for c in doctor.diagnose()}


def hide_module(monkeypatch, module: str) -> None:
    """``module`` cannot be imported, as on a machine where it was never installed."""
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        if name.split(".")[0] == module:
            return None
        return real(name, *args, **kwargs)

    monkeypatch.setattr(doctor.importlib.util, "find_spec", find_spec)


@pytest.fixture
def linux_with_apt(monkeypatch):
    monkeypatch.setattr(doctor.platform, "system", lambda: "Linux")
    monkeypatch.setattr(doctor, "installer", lambda: "apt")


def test_with_everything_here_every_part_is_ok_and_the_status_is_0(capsys):
    if not (extras.have("dot") and extras.have("matplotlib") and extras.have("Pillow") and extras.browser()):
        pytest.skip("an optional part is missing on this machine")
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert "MISSING" not in out and "every optional part is here" in out
    for name in ("Python", "NumPy", "Graphviz dot", "matplotlib", "Pillow", "browser"):
        assert f"ok      {name}" in out


@pytest.mark.parametrize(
    ("part", "module", "install"),
    [
        ("matplotlib", "matplotlib", "-m pip install 'tinygrad_softmax[demo]'"),
        ("Pillow", "PIL", "-m pip install 'tinygrad_softmax[demo]'"),
    ],
)
def test_a_missing_python_part_gets_the_pip_line_of_this_python(
    monkeypatch, linux_with_apt, part, module, install
):
    hide_module(monkeypatch, module)
    found = checks_by_name()[part]
    assert not found.found and found.install == f"{sys.executable} {install}"
    report = doctor.report(doctor.diagnose())
    assert f"MISSING {part}" in report and f"install: {sys.executable} {install}" in report
    assert doctor.core_works(doctor.diagnose())


def test_without_dot_the_apt_line_on_debian_and_the_brew_winget_conda_lines_elsewhere(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on it: no dot, no neato
    monkeypatch.delenv("CONDA_PREFIX", raising=False)
    for system, line in (
        ("Linux", "sudo apt-get install graphviz"),
        ("Darwin", "brew install graphviz"),
        ("Windows", "winget install graphviz"),
    ):
        monkeypatch.setattr(doctor.platform, "system", lambda system=system: system)
        monkeypatch.setattr(doctor.os.path, "isfile", lambda path: path == doctor.DEBIAN)
        dot = checks_by_name()["Graphviz dot"]
        assert not dot.found and dot.install == line, system
    # Inside a conda environment: conda's Graphviz, and the system's own installer for the browser.
    (tmp_path / "conda").write_text("#!/bin/sh\n")
    (tmp_path / "conda").chmod(0o755)
    monkeypatch.setenv("CONDA_PREFIX", str(tmp_path))
    monkeypatch.setattr(doctor.platform, "system", lambda: "Darwin")
    assert checks_by_name()["Graphviz dot"].install == "conda install -c conda-forge graphviz"
    monkeypatch.delenv(extras.BROWSER_ENV, raising=False)
    monkeypatch.setattr(extras, "_BROWSER_PLACES", ())
    assert checks_by_name()["browser"].install == "brew install --cask chromium"


def test_on_windows_the_pip_line_uses_double_quotes(monkeypatch):
    monkeypatch.setattr(doctor.platform, "system", lambda: "Windows")
    hide_module(monkeypatch, "matplotlib")
    assert checks_by_name()["matplotlib"].install.endswith('-m pip install "tinygrad_softmax[demo]"')


def test_without_a_browser_the_deck_pdf_is_what_it_misses(monkeypatch, tmp_path, linux_with_apt):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.delenv(extras.BROWSER_ENV, raising=False)
    monkeypatch.setattr(extras, "_BROWSER_PLACES", ())
    browser = checks_by_name()["browser"]
    assert not browser.found and browser.install == "sudo apt-get install chromium"
    assert "slides --pdf" in browser.enables
    # TINYGRAD_SOFTMAX_CHROMIUM names the browser; a name that is no program is no browser.
    monkeypatch.setenv(extras.BROWSER_ENV, str(tmp_path / "no-such-chromium"))
    assert extras.browser() is None
    program = tmp_path / "my-chrome"
    program.write_text("#!/bin/sh\n")
    monkeypatch.setenv(extras.BROWSER_ENV, str(program))
    assert checks_by_name()["browser"].found and checks_by_name()["browser"].detail == str(program)


def test_without_numpy_the_core_does_not_work_and_the_status_is_1(monkeypatch, capsys):
    hide_module(monkeypatch, "numpy")
    checks = doctor.diagnose()
    numpy = {c.name: c for c in checks}["NumPy"]
    assert not numpy.found and numpy.core and "numpy>=1.24" in numpy.install
    assert not doctor.core_works(checks)
    assert main(["doctor"]) == 1
    assert "the core does not work here" in capsys.readouterr().out


def test_an_old_python_is_named_with_the_version_needed(monkeypatch):
    monkeypatch.setattr(doctor.sys, "version_info", (3, 9, 18, "final", 0))
    python = checks_by_name()["Python"]
    assert not python.found and python.core and python.detail == "3.9.18 (3.10 or newer is needed)"


def test_an_old_numpy_is_named_with_the_version_needed(monkeypatch):
    monkeypatch.setattr(doctor.importlib.metadata, "version", lambda name: "1.21.6")
    numpy = checks_by_name()["NumPy"]
    assert not numpy.found and numpy.detail == "1.21.6 (1.24 or newer is needed)"


def test_run_where_matplotlib_and_dot_are_missing(tmp_path):
    """The command itself, in a process that cannot import matplotlib and finds no dot: status 0."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(BLOCKER)  # refuses matplotlib and PIL
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MPLBACKEND")}
    env["PYTHONPATH"] = str(site)
    env["PATH"] = str(tmp_path)  # no dot, no browser on it
    env.pop(extras.BROWSER_ENV, None)
    done = subprocess.run(
        [sys.executable, "-m", "tinygrad_softmax", "doctor"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for name in ("Graphviz dot", "matplotlib", "Pillow"):
        assert f"MISSING {name}" in out
    assert "ok      Python" in out and "ok      NumPy" in out
    if Path(doctor.DEBIAN).is_file():
        assert "install: sudo apt-get install graphviz" in out
    assert (
        out.strip().splitlines()[-1].startswith("the core works; missing: Graphviz dot, matplotlib, Pillow")
    )
