"""The adaptive-vs-fixed-depth comparison harness (PyTorch).

:func:`run_comparison` trains each :class:`Candidate` on the same data with the
same optimiser and reports test error, solver cost and wall time;
:mod:`.report` prints the table and draws error against function evaluations.
"""

from .harness import Candidate, CompareConfig, Result, default_candidates, run_comparison

__all__ = ["Candidate", "CompareConfig", "Result", "default_candidates", "run_comparison"]
