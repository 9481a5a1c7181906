"""JAX SSM tests: compile with most XLA optimisations off (compiles dominate the
run time of these small tests on a CPU; results are the same to rounding).
The previous setting is restored after each test.  Without JAX nothing here runs."""

import pytest

try:
    import jax
except ImportError:  # the `jax` extra is not installed
    collect_ignore_glob = ["*.py"]
else:

    @pytest.fixture(autouse=True)
    def _quick_compiles():
        previous = jax.config.read("jax_disable_most_optimizations")
        jax.config.update("jax_disable_most_optimizations", True)
        yield
        jax.config.update("jax_disable_most_optimizations", previous)
