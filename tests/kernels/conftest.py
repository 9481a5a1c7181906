"""Run the Triton kernels through the CPU interpreter where there is no GPU.

Triton reads ``TRITON_INTERPRET`` when it is imported (its own language
functions) and when a kernel is defined, so it is set before either; if
something imported Triton earlier without it, the tests skip with that reason.
"""

import os
import sys

import pytest

torch = pytest.importorskip("torch")
INTERPRET_TOO_LATE = False
if not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET", "0") in ("", "0"):
    INTERPRET_TOO_LATE = "triton" in sys.modules
    os.environ["TRITON_INTERPRET"] = "1"
pytest.importorskip("triton")


@pytest.fixture(autouse=True)
def _interpreter_ready():
    if INTERPRET_TOO_LATE:
        pytest.skip("triton was imported before TRITON_INTERPRET=1 could be set (no GPU here)")
