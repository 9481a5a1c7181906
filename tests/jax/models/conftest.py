"""JAX model tests: compile with most XLA optimisations off, as the SSM tests do."""

import pytest


@pytest.fixture(autouse=True)
def _quick_compiles(quick_jax_compiles):
    """Every test here uses :func:`tests.conftest.quick_jax_compiles`."""
