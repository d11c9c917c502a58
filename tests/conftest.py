"""Shared test settings."""

import importlib
import os

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
