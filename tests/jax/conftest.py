"""JAX tests run in float64 (parity with torch is checked to ~1e-12)."""

try:
    import jax
except ImportError:  # the `jax` extra is not installed: nothing here can run
    collect_ignore_glob = ["test_*.py"]
else:
    jax.config.update("jax_enable_x64", True)
