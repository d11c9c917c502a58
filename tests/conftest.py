"""Shared test settings."""

import importlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

# Hypothesis: enough examples to find shape bugs, with no deadline on a shared machine.
settings.register_profile(
    "default", max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("default")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def torch():
    """PyTorch as an oracle: skipped where it is not installed, required where CI asks for it.

    ``.ci/run`` installs the ``torch`` extra and sets TINYGRAD_SOFTMAX_REQUIRE_TORCH=1, so
    there a missing PyTorch fails the oracle tests instead of skipping them.
    """
    if os.environ.get("TINYGRAD_SOFTMAX_REQUIRE_TORCH"):
        return importlib.import_module("torch")
    return pytest.importorskip("torch")


ROOT = Path(__file__).resolve().parents[1]


def _source_copy(where: Path) -> Path:
    """The project as a clean clone would have it: pyproject, README, LICENSE and the package."""
    source = where / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "tinygrad_softmax", source / "tinygrad_softmax", ignore=shutil.ignore_patterns("__pycache__")
    )
    return source


@pytest.fixture(scope="session")
def wheel(tmp_path_factory) -> Path:
    """The package's wheel, built once per test run by pyproject's build backend, offline, from a copy."""
    where = tmp_path_factory.mktemp("wheel")
    source = _source_copy(where)
    build = f"from setuptools import build_meta; print(build_meta.build_wheel({str(where / 'dist')!r}))"
    done = subprocess.run([sys.executable, "-c", build], cwd=source, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]  # the build backend is pyproject's setuptools>=77
    return where / "dist" / done.stdout.strip().splitlines()[-1]


@pytest.fixture
def small_disk(tmp_path):
    """A 64 KiB tmpfs (needs root and a kernel that lets this process mount): skipped where impossible;
    tests/test_outputs.py covers the same code everywhere by monkeypatching."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    if getattr(os, "geteuid", lambda: 1)() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)
