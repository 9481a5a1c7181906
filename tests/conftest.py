"""Fixtures shared by every test folder."""

from __future__ import annotations

import os

import pytest

# On a GPU machine JAX would otherwise reserve 75 % of the GPU memory at its first
# use, leaving the torch tests of the same run short of memory.
os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")


@pytest.fixture
def quick_jax_compiles():
    """Compile with most XLA optimisations off for the test, then restore the setting.

    Compiles dominate the run time of the small JAX tests on a CPU; the results
    agree with optimised compiles to rounding.  Modules opt in with
    ``pytestmark = pytest.mark.usefixtures("quick_jax_compiles")``.
    """
    jax = pytest.importorskip("jax")
    previous = jax.config.read("jax_disable_most_optimizations")
    jax.config.update("jax_disable_most_optimizations", True)
    yield
    jax.config.update("jax_disable_most_optimizations", previous)
