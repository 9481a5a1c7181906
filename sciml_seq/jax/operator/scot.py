"""scOT (Poseidon's operator transformer) in JAX/equinox, one example at a time.

Mirrors :class:`sciml_seq.torch.operator.ScOT`: same configuration, parameter
names, shapes and numbers; ``jax.vmap`` over a batch.  The forward pass is the
evaluation-mode one (dropout and stochastic depth are not applied).
"""

from __future__ import annotations

import os
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import Array

from ...convert import path_name
from ...errors import DTypeError, OptionError, ShapeError
from ...operator.checkpoint import check_arrays, check_names, read_checkpoint, write_checkpoint
from ...operator.config import ScOTConfig
from ...operator.geometry import stage_resolutions
from .convnext import ConvNeXtBlock
from .layers import Conv2d, Init, PatchConv, PatchConvTranspose
from .norm import make_norm
from .swin import PatchMerging, PatchUnmerging, SwinBlock


class ScOTOutput(NamedTuple):
    """``output (C_out, H, W)`` and the hidden states ``(tokens, dim)`` (see the torch twin)."""

    output: Array
    encoder_hidden_states: tuple[Array, ...]
    decoder_hidden_states: tuple[Array, ...]


class _PatchEmbeddings(eqx.Module):
    projection: PatchConv


class Embeddings(eqx.Module):
    """Patch convolution, time-conditioned norm, optional absolute position table."""

    patch_embeddings: _PatchEmbeddings
    position_embeddings: Array | None
    norm: eqx.Module

    def __init__(self, config: ScOTConfig, *, init: Init) -> None:
        self.patch_embeddings = _PatchEmbeddings(
            PatchConv(config.num_channels, config.embed_dim, config.patch_size, init=init)
        )
        if config.use_absolute_embeddings:
            patches = (config.image_size // config.patch_size) ** 2
            self.position_embeddings = init.full((1, patches, config.embed_dim), 0.0)
        else:
            self.position_embeddings = None
        self.norm = make_norm(config.use_conditioning, config.embed_dim, init=init)

    def __call__(self, pixel_values: Array, time: Array) -> Array:
        x = self.patch_embeddings.projection(pixel_values)
        x = x.reshape(x.shape[0], -1).T
        x = self.norm(x, time)
        if self.position_embeddings is not None:
            if x.shape[0] != self.position_embeddings.shape[1]:
                raise ShapeError(
                    f"pixel_values: use_absolute_embeddings needs the configured grid "
                    f"({self.position_embeddings.shape[1]} patches), got {x.shape[0]}"
                )
            x = x + self.position_embeddings[0]
        return x


def _blocks(config: ScOTConfig, level: int, decoder: bool, init: Init) -> list[SwinBlock]:
    dim, depth = config.stage_dim(level), config.depths[level]
    return [
        SwinBlock(
            dim,
            config.num_heads[level],
            window_size=config.window_size,
            # decoder blocks are built in reverse index order (official)
            shifted=((depth - 1 - j) if decoder else j) % 2 == 1,
            mlp_dim=config.mlp_dim(dim),
            qkv_bias=config.qkv_bias,
            eps=config.layer_norm_eps,
            conditioned=config.use_conditioning,
            pretrained_window_size=config.pretrained_window_sizes[level],
            init=init,
        )
        for j in range(depth)
    ]


class EncodeStage(eqx.Module):
    """Swin blocks, then merging of ``blocks(x) + x`` (not on the last stage)."""

    blocks: list[SwinBlock]
    downsample: PatchMerging | None

    def __init__(self, config: ScOTConfig, level: int, *, init: Init) -> None:
        self.blocks = _blocks(config, level, False, init)
        last = level == config.num_layers - 1
        dim = config.stage_dim(level)
        self.downsample = (
            None if last else PatchMerging(dim, conditioned=config.use_conditioning, init=init)
        )

    def __call__(self, x: Array, time: Array, resolution) -> tuple[Array, Array]:
        out = x
        for block in self.blocks:
            out = block(out, time, resolution)
        if self.downsample is None:
            return out, out
        return self.downsample(out + x, time, resolution), out


class DecodeStage(eqx.Module):
    """Swin blocks (mirrored order), then unmerging except at level 0."""

    blocks: list[SwinBlock]
    upsample: PatchUnmerging | None

    def __init__(self, config: ScOTConfig, level: int, *, init: Init) -> None:
        self.blocks = _blocks(config, level, True, init)
        dim = config.stage_dim(level)
        self.upsample = (
            None
            if level == 0
            else PatchUnmerging(dim, conditioned=config.use_conditioning, init=init)
        )

    def __call__(self, x: Array, time: Array, resolution) -> Array:
        for block in self.blocks:
            x = block(x, time, resolution)
        return x if self.upsample is None else self.upsample(x, time, resolution)


class PatchRecovery(eqx.Module):
    """Transposed patch convolution D→C_out, then the 5x5 ``mixup`` (no bias)."""

    projection: PatchConvTranspose
    mixup: Conv2d

    def __init__(self, config: ScOTConfig, *, init: Init) -> None:
        c = config.num_out_channels
        self.projection = PatchConvTranspose(config.embed_dim, c, config.patch_size, init=init)
        self.mixup = Conv2d(c, c, 5, bias=False, init=init)

    def __call__(self, x: Array, resolution) -> Array:
        return self.mixup(self.projection(x.T.reshape(x.shape[1], *resolution)))


class _Stages(eqx.Module):
    layers: list


class ScOT(eqx.Module):
    """scOT: ``(pixel_values (C_in, H, W), time scalar)`` → ``(C_out, H, W)``.

    The twin of :class:`sciml_seq.torch.operator.ScOT` for one example (``jax.vmap``
    over a batch): same :class:`~sciml_seq.operator.ScOTConfig`, parameter names
    (attribute paths), shapes and outputs.  Dropout and stochastic depth are not
    applied (evaluation mode).

    Parameters
    ----------
    config: the hyper-parameters.
    key: seeds the official init (drawn with numpy on the host: no XLA compilation
        per parameter shape).  ``None`` builds a template whose leaves are
        ``jax.ShapeDtypeStruct`` (to load a checkpoint into, or count parameters).
    dtype: parameter dtype; JAX's default float when ``None``.
    """

    embeddings: Embeddings
    encoder: _Stages
    decoder: _Stages
    patch_recovery: PatchRecovery
    residual_blocks: list
    config: ScOTConfig = eqx.field(static=True)

    def __init__(self, config: ScOTConfig, *, key: Array | None, dtype=None) -> None:
        if not isinstance(config, ScOTConfig):
            raise OptionError(f"config: expected a ScOTConfig, got {type(config).__name__}")
        init = Init(key, dtype, config.initializer_range)
        levels = range(config.num_layers)
        self.config = config
        self.embeddings = Embeddings(config, init=init)
        self.encoder = _Stages([EncodeStage(config, i, init=init) for i in levels])
        self.decoder = _Stages([DecodeStage(config, i, init=init) for i in reversed(levels)])
        self.patch_recovery = PatchRecovery(config, init=init)
        self.residual_blocks = [
            [
                ConvNeXtBlock(
                    config.stage_dim(i),
                    eps=config.layer_norm_eps,
                    conditioned=config.use_conditioning,
                    init=init,
                )
                for _ in range(count)
            ]
            for i, count in enumerate(config.skip_connections)
        ]

    def _check(self, pixel_values: Array, time: Array) -> tuple[Array, list[tuple[int, int]]]:
        cfg = self.config
        dtype = jnp.asarray(pixel_values).dtype
        if not jnp.issubdtype(dtype, jnp.floating):
            raise DTypeError(f"pixel_values: expected a floating-point array, got {dtype}")
        if pixel_values.ndim != 3 or pixel_values.shape[0] != cfg.num_channels:
            raise ShapeError(
                f"pixel_values: expected ({cfg.num_channels}, H, W) for one example "
                f"(jax.vmap over a batch), got {tuple(pixel_values.shape)}"
            )
        time = jnp.asarray(time)
        if time.size != 1:
            raise ShapeError(f"time: expected a scalar per example, got shape {tuple(time.shape)}")
        res = stage_resolutions(
            pixel_values.shape[1],
            pixel_values.shape[2],
            cfg.patch_size,
            cfg.window_size,
            cfg.num_layers,
        )
        return time.reshape(()), res

    def hidden_states(self, pixel_values: Array, time: Array) -> ScOTOutput:
        """The output with the encoder and decoder hidden states (official order)."""
        time, res = self._check(pixel_values, time)
        n = self.config.num_layers
        x = self.embeddings(pixel_values, time)
        encoder_states = [x]
        skips = []
        for level, stage in enumerate(self.encoder.layers):
            x, skip = stage(x, time, res[level])
            skips.append(skip)
        encoder_states += skips
        for level in range(n):
            for block in self.residual_blocks[level]:
                skips[level] = block(skips[level], time, res[level])
        x = skips[-1]
        decoder_states = [x]
        for k, stage in enumerate(self.decoder.layers):
            level = n - 1 - k
            if k:
                x = x + skips[level]
            x = stage(x, time, res[level])
            decoder_states.append(x)
        prediction = self.patch_recovery(x, res[0])
        if self.config.residual:
            prediction = prediction + pixel_values[: self.config.num_out_channels]
        return ScOTOutput(prediction, tuple(encoder_states), tuple(decoder_states))

    def __call__(self, pixel_values: Array, time: Array) -> Array:
        """``(C_in, H, W)``, scalar ``time`` → ``(C_out, H, W)``."""
        return self.hidden_states(pixel_values, time).output

    def resampled(self, pixel_values: Array, time: Array) -> Array:
        """The official convention for a square input of another size than ``image_size``:
        FFT-resample to ``image_size``, run, resample the output back."""
        from .resample import fft_resample

        size = pixel_values.shape[-1]
        if pixel_values.ndim == 3 and pixel_values.shape[-2] != size:
            raise ShapeError(
                f"pixel_values: the resampled call needs square fields, "
                f"got {tuple(pixel_values.shape[-2:])}"
            )
        out = self(fft_resample(pixel_values, self.config.image_size), time)
        return fft_resample(out, size)

    def loss(self, prediction: Array, labels: Array, pixel_mask: Array | None = None) -> Array:
        """The official training loss of this configuration (see :func:`.loss.scot_loss`).

        On a batch, as the torch model's: ``(batch, C_out, H, W)`` → scalar.
        """
        from .loss import scot_loss

        return scot_loss(
            prediction,
            labels,
            p=self.config.p,
            channel_slices=self.config.channel_slice_list_normalized_loss,
            pixel_mask=pixel_mask,
        )

    @classmethod
    def from_pretrained(cls, path: str | os.PathLike, dtype=None) -> ScOT:
        """Load an official checkpoint folder (``config.json`` + ``model.safetensors``).

        Never downloads.  ``dtype`` defaults to JAX's default float.
        """
        config, arrays = read_checkpoint(path)
        template = cls(config, key=None, dtype=dtype)
        leaves, treedef = jax.tree_util.tree_flatten_with_path(template)
        names = [path_name(p) for p, _ in leaves]
        what = f"checkpoint {os.fspath(path)!r}"
        check_names(names, arrays.keys(), what)
        check_arrays(
            {k: leaf.shape for k, (_, leaf) in zip(names, leaves, strict=True)}, arrays, what
        )
        values = [
            jnp.asarray(np.asarray(arrays[k], dtype=leaf.dtype))
            for k, (_, leaf) in zip(names, leaves, strict=True)
        ]
        return jax.tree_util.tree_unflatten(treedef, values)

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write ``config.json`` and ``model.safetensors`` (official names, current dtype)."""
        leaves, _ = jax.tree_util.tree_flatten_with_path(eqx.filter(self, eqx.is_array))
        write_checkpoint(path, self.config, {path_name(p): np.asarray(v) for p, v in leaves})


__all__ = ["ScOT", "ScOTOutput"]
