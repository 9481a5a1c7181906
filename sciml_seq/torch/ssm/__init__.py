"""State-space sequence layers in PyTorch (mirrors :mod:`sciml_seq.jax.ssm`).

* :class:`S4D`: diagonal state matrix, Vandermonde kernel.
* :class:`S4`: diagonal-plus-low-rank state matrix, Cauchy kernel + Woodbury.
* :class:`LSSL`: dense HiPPO state matrix, Krylov kernel (the original layer).
* :class:`S5`: MIMO diagonal SSM (HiPPO-N init) run by a parallel scan; irregular steps.
* :class:`ConvS5`: S5 over 2-D fields with convolutional B and C; :class:`ConvS5Operator`.
* :func:`linear_scan`: the linear recurrence ``h_t = a_t h_{t-1} + b_t`` (parallel scan).
* :func:`load_official_state_dict`: official ``state-spaces/s4`` checkpoints.
* :class:`StepGenerator`: fast recurrent generation (a CUDA-graph captured step).
* :class:`Mamba`: the Mamba (S6) block; :func:`selective_scan`: its selective scan.

Sequences are ``(batch, length, channels)``; every layer returns
``(y, next_state)`` and has a recurrent ``step`` mode (see :class:`SSMLayer`).
"""

from .convs5 import ConvS5, ConvS5Operator
from .generate import StepGenerator
from .lssl import LSSL, LSSLKernel
from .mamba import InferenceParams, Mamba, from_official_state_dict
from .s4 import S4, S4Kernel
from .s4d import S4D, S4DKernel, SSMLayer, load_official_state_dict
from .s5 import S5
from .scan import linear_scan, linear_scan_sequential
from .selective_scan import selective_scan, selective_scan_ref

__all__ = [
    "ConvS5",
    "ConvS5Operator",
    "InferenceParams",
    "Mamba",
    "from_official_state_dict",
    "selective_scan",
    "selective_scan_ref",
    "LSSL",
    "LSSLKernel",
    "S4",
    "S4D",
    "S4DKernel",
    "S4Kernel",
    "S5",
    "SSMLayer",
    "StepGenerator",
    "linear_scan",
    "linear_scan_sequential",
    "load_official_state_dict",
]
