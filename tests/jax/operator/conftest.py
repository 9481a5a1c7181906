"""JAX scOT tests: compile with most XLA optimisations off (compiles dominate them)."""

from __future__ import annotations

import jax
import pytest


@pytest.fixture(autouse=True)
def _quick_compiles():
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)
