"""JAX SSM tests: compile with most XLA optimisations off (compiles dominate the
run time of these small tests on a CPU; results are the same to rounding).
The previous setting is restored after each test."""

import jax
import pytest


@pytest.fixture(autouse=True)
def _quick_compiles():
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)
