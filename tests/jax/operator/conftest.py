"""JAX scOT tests: compile with most XLA optimisations off (compiles dominate them)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _quick_compiles(quick_jax_compiles):
    """Every test here uses :func:`tests.conftest.quick_jax_compiles`."""
