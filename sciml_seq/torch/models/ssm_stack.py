"""A sequence model made of a stack of state-space layers (S4D by default).

The residual stack of the official ``state-spaces/s4`` ``example.py``::

    h = encoder(x)                               # Linear(d_input, d_model)
    for layer, norm in zip(layers, norms):       # n_layers times
        z = norm(h) if prenorm else h
        z, _ = layer(z, rate=rate)               # S4D | S4 | LSSL (GELU + GLU head inside)
        h = h + dropout(z)
        h = h if prenorm else norm(h)
    out = decoder(pool(h))                       # mean | last | none, Linear(d_model, d_output)

``rate`` is passed to every SSM layer: a model trained on sequences sampled at
one rate runs on sequences sampled ``rate`` times more coarsely (``rate=2`` at
half the sampling rate).  Everything outside the SSM layers acts per time step
(and mean pooling averages over the same time window at any rate).
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ...models import SSM_LAYER_NAMES, check_ssm_stack_options
from ..ssm import LSSL, S4, S4D
from .common import check_sequence, pool

__all__ = ["SSM_LAYERS", "SSMSequenceModel"]

#: The SSM layers :class:`SSMSequenceModel` accepts, by name.
SSM_LAYERS: dict[str, type[nn.Module]] = dict(zip(SSM_LAYER_NAMES, (S4D, S4, LSSL), strict=True))


class SSMSequenceModel(nn.Module):
    """Classifier / regressor / sequence-to-sequence backbone of SSM layers.

    Parameters
    ----------
    d_input, d_output:
        Input channels and outputs per prediction (classes, or 1 for regression).
    d_model:
        Width ``H`` of the SSM layers.
    n_layers:
        Number of residual SSM blocks.
    layer:
        ``"s4d"`` (default), ``"s4"`` or ``"lssl"``.
    d_state:
        State size ``N`` of every layer.
    l_max:
        Kernel length (required for ``"s4"``: the length its C-tilde is tuned to).
    pool:
        ``"mean"`` (default) or ``"last"``: output ``(batch, d_output)``;
        ``"none"``: ``(batch, length, d_output)``.
    prenorm:
        Normalise before each layer (True) or after each residual (False, default,
        as the official example).
    dropout:
        Dropout on each block's output (and inside the layers).
    layer_options:
        Further keyword arguments of the SSM layer (``dt_min``, ``dt_max``, ``lr``,
        ``init``, ``disc``, ...).  The layers' optimizer hints reach
        :func:`sciml_seq.train.param_groups.param_groups` through this model.

    Shapes: ``forward(x (batch, length, d_input), rate=1.0)`` -> ``(batch, d_output)``
    or ``(batch, length, d_output)`` (``pool="none"``).
    """

    def __init__(
        self,
        d_input: int,
        d_output: int,
        *,
        d_model: int = 64,
        n_layers: int = 4,
        layer: str = "s4d",
        d_state: int = 64,
        l_max: int | None = None,
        pool: str = "mean",
        prenorm: bool = False,
        dropout: float = 0.0,
        **layer_options: Any,
    ) -> None:
        super().__init__()
        opts = check_ssm_stack_options(d_input, d_output, d_model, n_layers, layer, pool, dropout)
        self.d_input, self.d_output = opts.d_input, opts.d_output
        self.layer, self.pool, self.prenorm = opts.layer, opts.pool, bool(prenorm)
        make = SSM_LAYERS[self.layer]
        self.encoder = nn.Linear(self.d_input, opts.d_model)
        self.layers = nn.ModuleList(
            make(opts.d_model, d_state, l_max, dropout=opts.dropout, **layer_options)
            for _ in range(opts.n_layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(opts.d_model) for _ in range(opts.n_layers))
        self.dropout = nn.Dropout(opts.dropout) if opts.dropout > 0 else nn.Identity()
        self.decoder = nn.Linear(opts.d_model, self.d_output)

    def forward(self, x: Tensor, rate: float = 1.0) -> Tensor:
        """``x (batch, length, d_input)`` -> outputs (see the class docstring)."""
        h = self.encoder(check_sequence(x, self.d_input))
        for layer, norm in zip(self.layers, self.norms, strict=True):
            z = norm(h) if self.prenorm else h
            z, _ = layer(z, rate=rate)
            h = h + self.dropout(z)
            if not self.prenorm:
                h = norm(h)
        return self.decoder(pool(h, self.pool))
