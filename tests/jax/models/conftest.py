"""JAX model tests: compile with most XLA optimisations off, as the SSM tests do."""

from tests.jax.ssm.conftest import _quick_compiles  # noqa: F401
