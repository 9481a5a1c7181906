"""Triton kernels for the hot loops, each with its plain-PyTorch ``*_ref`` beside it.

Shipped as ``sciml_seq.kernels`` (through the symlink ``sciml_seq/kernels ->
../kernels``).  Importing this package needs only torch; the Triton kernels
are compiled on first use and need the ``triton`` package (extra
``sciml-seq[kernels]``) and a CUDA tensor, or ``TRITON_INTERPRET=1`` set
before the first import of Triton (the CPU interpreter, used by the tests).

* :mod:`.vandermonde`: the S4D kernel ``2 Re Σ_n v_n exp(l x_n)``.
* :mod:`.cauchy`: the bilinear Cauchy sums of the S4 (DPLR) kernel.
* :mod:`.selective_scan`: the selective scan of Mamba (S6), forward and backward.

The layers reach these through one dispatch point,
:mod:`sciml_seq.torch.ssm.kernels` (``backend="triton"``).

What the CPU interpreter does not check and compiled CUDA code needs (kept
in the sources, reviewed without a GPU): block sizes are powers of two; no
``tl.dot`` (whose 16-element minimum and dtype rules would bind; the sums are
``tl.sum`` of elementwise complex products written as real pairs); every
ragged load and store is masked; row offsets are int64 (``m * L`` passes
2**31 at large batch x length); accumulators have the data's dtype and
float64 is supported (``tl.exp``/``tl.cos``/``tl.sin`` on float64 call
libdevice); inputs are made contiguous, conjugate views resolved, and the
launch happens under the tensors' CUDA device (Triton launches on the
current one).  No autotuning: a kernel compiles once per dtype and per
Triton specialisation of its integer arguments (equal to 1, divisible by 16).
"""

from __future__ import annotations

from .cauchy import bilinear_cauchy_ref, bilinear_cauchy_triton
from .common import require_triton, triton_available
from .selective_scan import selective_scan_triton
from .vandermonde import vandermonde_ref, vandermonde_triton

__all__ = [
    "bilinear_cauchy_ref",
    "bilinear_cauchy_triton",
    "require_triton",
    "selective_scan_triton",
    "triton_available",
    "vandermonde_ref",
    "vandermonde_triton",
]
