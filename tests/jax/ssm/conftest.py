"""JAX SSM tests: compile with most XLA optimisations off (compiles dominate the
run time of these small tests on a CPU; results are the same to rounding).
Without JAX nothing here runs."""

import pytest

try:
    import jax  # noqa: F401
except ImportError:  # the `jax` extra is not installed
    collect_ignore_glob = ["*.py"]
else:

    @pytest.fixture(autouse=True)
    def _quick_compiles(quick_jax_compiles):
        """Every test here uses :func:`tests.conftest.quick_jax_compiles`."""
