"""PyTorch implementation of sciml_seq (mirrors :mod:`sciml_seq.jax`)."""

from .solve import Solution, available_methods, solve

__all__ = ["Solution", "available_methods", "solve"]
