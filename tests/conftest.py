"""Shared test settings."""

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
