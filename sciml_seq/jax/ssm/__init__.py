"""State-space sequence layers in JAX / equinox (mirrors :mod:`sciml_seq.torch.ssm`).

* :class:`S4D`: diagonal state matrix, Vandermonde kernel.
* :class:`S4`: diagonal-plus-low-rank state matrix, Cauchy kernel + Woodbury.
* :class:`LSSL`: dense HiPPO state matrix, Krylov kernel (the original layer).
* :class:`S5`: MIMO diagonal SSM (HiPPO-N init) run by a parallel scan; irregular steps.
* :class:`ConvS5`: S5 over 2-D fields with convolutional B and C.
* :func:`linear_scan`: the linear recurrence ``h_t = a_t h_{t-1} + b_t`` (parallel scan).
* :func:`load_official_state_dict`: official ``state-spaces/s4`` checkpoints.
* :class:`Mamba`: the Mamba (S6) block; :func:`selective_scan`: its selective scan.

Modules act on one example: a sequence is ``(length, channels)``; every layer
returns ``(y, next_state)`` and has a recurrent ``step`` mode.
"""

from .convs5 import ConvS5
from .lssl import LSSL, LSSLKernel
from .mamba import Mamba, from_official_state_dict, from_torch
from .s4 import S4, S4Kernel
from .s4d import S4D, S4DKernel, SSMLayer, load_official_state_dict
from .s5 import S5
from .scan import linear_scan, linear_scan_sequential
from .selective_scan import selective_scan

__all__ = [
    "Mamba",
    "from_official_state_dict",
    "from_torch",
    "selective_scan",
    "ConvS5",
    "LSSL",
    "LSSLKernel",
    "S4",
    "S4D",
    "S4DKernel",
    "S4Kernel",
    "S5",
    "SSMLayer",
    "linear_scan",
    "linear_scan_sequential",
    "load_official_state_dict",
]
