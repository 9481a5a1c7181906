"""Triton kernels for the hot loops, each with its plain-PyTorch ``*_ref`` beside it.

Shipped as ``sciml_seq.kernels`` (through the symlink ``sciml_seq/kernels ->
../kernels``).  Importing this package needs only torch; the Triton kernels
are compiled on first use and need the ``triton`` package (extra
``sciml-seq[kernels]``) and a CUDA tensor, or ``TRITON_INTERPRET=1`` set
before the first import of Triton (the CPU interpreter, used by the tests).

* :mod:`.vandermonde`: the S4D kernel ``2 Re Σ_n v_n exp(l x_n)``.
* :mod:`.cauchy`: the bilinear Cauchy sums of the S4 (DPLR) kernel.

The layers reach these through one dispatch point,
:mod:`sciml_seq.torch.ssm.kernels` (``backend="triton"``).
"""

from __future__ import annotations

from .cauchy import bilinear_cauchy_ref, bilinear_cauchy_triton
from .common import require_triton, triton_available
from .vandermonde import vandermonde_ref, vandermonde_triton

__all__ = [
    "bilinear_cauchy_ref",
    "bilinear_cauchy_triton",
    "require_triton",
    "triton_available",
    "vandermonde_ref",
    "vandermonde_triton",
]
