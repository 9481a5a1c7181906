"""A stack of state-space layers as a sequence model (mirrors the PyTorch ``ssm_stack``).

The residual stack of the official ``state-spaces/s4`` ``example.py``, on one
example ``x (length, d_input)`` (``jax.vmap`` over a batch)::

    h = encoder(x)                               # Linear(d_input, d_model), per step
    for layer, norm in zip(layers, norms):       # n_layers times
        z = norm(h) if prenorm else h
        z, _ = layer(z, rate=rate)               # S4D | S4 | LSSL (GELU + GLU head inside)
        h = h + dropout(z)
        h = h if prenorm else norm(h)
    out = decoder(pool(h))                       # mean | last | none, Linear(d_model, d_output)

Same constructor arguments (plus ``dtype`` and ``key``), parameter names and
numbers as the PyTorch model: :func:`sciml_seq.convert.torch_to_jax` and
:func:`~sciml_seq.convert.jax_to_torch` move the weights.  ``rate`` is a Python
number (static under ``jax.jit``).
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
from jax import Array
from jax.typing import ArrayLike

from ...errors import DTypeError, OptionError
from ...models import SSM_LAYER_NAMES, check_sequence_shape, check_ssm_stack_options
from ..ssm import LSSL, S4, S4D, SSMLayer
from ..ssm.s4d import default_float

__all__ = ["SSM_LAYERS", "SSMSequenceModel"]

#: The SSM layers :class:`SSMSequenceModel` accepts, by name.
SSM_LAYERS: dict[str, type[SSMLayer]] = dict(zip(SSM_LAYER_NAMES, (S4D, S4, LSSL), strict=True))


class SSMSequenceModel(eqx.Module):
    """Classifier / regressor / sequence-to-sequence backbone of SSM layers, one example at a time.

    As :class:`sciml_seq.torch.models.SSMSequenceModel` (same arguments, see
    there), plus ``dtype`` (default: equinox's default float) and ``key``.
    ``layers`` and ``norms`` are lists, so parameter paths read
    ``layers.0.kernel.inv_dt``, ``norms.0.weight`` as in PyTorch.

    Shapes: ``model(x (length, d_input), rate=1.0, *, key=None, inference=None)`` ->
    ``(d_output,)`` (``pool="mean"`` or ``"last"``) or ``(length, d_output)``
    (``pool="none"``).  ``key`` drives dropout (in the block and inside the layers)
    and is needed when ``dropout > 0`` outside inference; ``inference=True`` (or
    ``eqx.nn.inference_mode(model)``) turns dropout off, as PyTorch's ``eval()``.
    """

    encoder: eqx.nn.Linear
    layers: list[SSMLayer]
    norms: list[eqx.nn.LayerNorm]
    dropout: eqx.nn.Dropout
    decoder: eqx.nn.Linear
    d_input: int = eqx.field(static=True)
    d_output: int = eqx.field(static=True)
    layer: str = eqx.field(static=True)
    pool: str = eqx.field(static=True)
    prenorm: bool = eqx.field(static=True)

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
        dtype=None,
        key: Array,
        **layer_options: Any,
    ) -> None:
        opts = check_ssm_stack_options(d_input, d_output, d_model, n_layers, layer, pool, dropout)
        self.d_input, self.d_output = opts.d_input, opts.d_output
        self.layer, self.pool, self.prenorm = opts.layer, opts.pool, bool(prenorm)
        dtype = default_float(dtype)
        make = SSM_LAYERS[self.layer]
        k_enc, k_dec, *k_layers = jax.random.split(key, 2 + opts.n_layers)
        self.encoder = eqx.nn.Linear(self.d_input, opts.d_model, dtype=dtype, key=k_enc)
        self.layers = [
            make(
                opts.d_model,
                d_state,
                l_max,
                dropout=opts.dropout,
                dtype=dtype,
                key=k,
                **layer_options,
            )
            for k in k_layers
        ]
        self.norms = [
            eqx.nn.LayerNorm(opts.d_model, eps=1e-5, dtype=dtype) for _ in range(opts.n_layers)
        ]
        self.dropout = eqx.nn.Dropout(opts.dropout)
        self.decoder = eqx.nn.Linear(opts.d_model, self.d_output, dtype=dtype, key=k_dec)

    def _layer_keys(
        self, key: Array | None, inference: bool | None
    ) -> list[tuple[Array | None, Array | None]]:
        """Two dropout keys per block (inside the layer, on its output), or ``None``s."""
        off = self.dropout.inference if inference is None else inference
        if self.dropout.p == 0 or off:
            return [(None, None)] * len(self.layers)
        if key is None:
            raise OptionError(
                f"key: expected a PRNG key for dropout={self.dropout.p} outside inference "
                f"(or inference=True, or eqx.nn.inference_mode(model)); got None"
            )
        return [tuple(k) for k in jax.random.split(key, (len(self.layers), 2))]

    def __call__(
        self,
        x: ArrayLike,
        rate: float = 1.0,
        *,
        key: Array | None = None,
        inference: bool | None = None,
    ) -> Array:
        """``x (length, d_input)`` -> outputs (see the class docstring)."""
        x = jnp.asarray(x)
        check_sequence_shape(x.shape, self.d_input, batched=False)
        if not jnp.issubdtype(x.dtype, jnp.floating):
            raise DTypeError(f"x: expected a floating-point array; got {x.dtype}")
        keys = self._layer_keys(key, inference)
        h = jax.vmap(self.encoder)(x)
        for layer, norm, (k_layer, k_out) in zip(self.layers, self.norms, keys, strict=True):
            z = jax.vmap(norm)(h) if self.prenorm else h
            z, _ = layer(z, rate=rate, key=k_layer, inference=inference)
            h = h + self.dropout(z, key=k_out, inference=inference)
            if not self.prenorm:
                h = jax.vmap(norm)(h)
        if self.pool == "mean":
            return self.decoder(h.mean(axis=0))
        if self.pool == "last":
            return self.decoder(h[-1])
        return jax.vmap(self.decoder)(h)
