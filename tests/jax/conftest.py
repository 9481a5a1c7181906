"""JAX tests run in float32, as users run JAX, and compile with most XLA
optimisations off (compiles dominate these small tests on a CPU; results agree
with optimised compiles to rounding).

A test about float64 (parity with torch or a numpy float64 reference to about
1e-12) says so with ``@pytest.mark.float64``, or its module with
``pytestmark = pytest.mark.float64``: ``jax_enable_x64`` is on for that test
alone and restored after it, whatever another module switched on.  Arrays made
at import time are numpy arrays, so that they take the precision of the test
that uses them.
"""

import pytest

try:
    import jax
except ImportError:  # the `jax` extra is not installed: nothing here can run
    collect_ignore_glob = ["test_*.py"]
else:

    @pytest.fixture(autouse=True)
    def _precision_and_quick_compiles(request, quick_jax_compiles):
        """float32 unless the test is marked ``float64``; quick compiles for every test."""
        previous = jax.config.read("jax_enable_x64")
        jax.config.update("jax_enable_x64", request.node.get_closest_marker("float64") is not None)
        yield
        jax.config.update("jax_enable_x64", previous)
