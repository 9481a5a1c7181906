"""scOT (Poseidon's scalable operator transformer) in PyTorch.

A Swin-V2 U-Net on patch tokens: patch embedding, encoder stages of post-norm
Swin-V2 blocks with patch merging, ConvNeXt blocks on the skip connections, a
mirrored decoder with patch unmerging, and a transposed-convolution recovery.
Every layer norm is time-conditioned (``γ(t)·norm(x) + β(t)``): the lead time
enters the model only there.  Parameter names, order and init are the official
``camlab-ethz/poseidon`` ones, so official checkpoints load unchanged
(:meth:`ScOT.from_pretrained`).

Unlike the official model, which FFT-resamples any other input size to
``image_size``, this one runs natively on every grid that fits its windows,
square or not (:func:`sciml_seq.operator.geometry.stage_resolutions`); on
``image_size`` the two coincide.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from ...errors import DTypeError, OptionError, ShapeError
from ...operator.checkpoint import check_arrays, check_names, read_checkpoint, write_checkpoint
from ...operator.config import ScOTConfig
from ...operator.geometry import stage_resolutions
from ..checks import check_module_input
from .convnext import ConvNeXtBlock
from .norm import make_norm
from .swin import PatchMerging, PatchUnmerging, SwinBlock


@dataclass
class ScOTOutput:
    """Output with hidden states (official order and meaning).

    Attributes
    ----------
    output: ``(batch, C_out, H, W)``.
    encoder_hidden_states: embeddings, then each encoder stage's block output
        (before the stage input is added and before merging) — the skip states.
    decoder_hidden_states: decoder input, then each decoder stage's output
        (after unmerging; the last stage has none).
    All hidden states are ``(batch, tokens, dim)``.
    """

    output: Tensor
    encoder_hidden_states: tuple[Tensor, ...]
    decoder_hidden_states: tuple[Tensor, ...]


class Embeddings(nn.Module):
    """``patch_embeddings.projection`` (Conv2d k = s = patch) then ``norm`` (eps 1e-5).

    Shapes: ``(batch, C_in, H, W)`` → ``(batch, H/p * W/p, D)`` (row-major tokens).
    """

    def __init__(self, config: ScOTConfig) -> None:
        super().__init__()
        self.patch_embeddings = nn.Module()
        self.patch_embeddings.projection = nn.Conv2d(
            config.num_channels, config.embed_dim, config.patch_size, stride=config.patch_size
        )
        if config.use_absolute_embeddings:
            patches = (config.image_size // config.patch_size) ** 2
            self.position_embeddings = nn.Parameter(torch.zeros(1, patches, config.embed_dim))
        else:
            self.position_embeddings = None
        self.norm = make_norm(config.use_conditioning, config.embed_dim)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, pixel_values: Tensor, time: Tensor) -> Tensor:
        x = self.patch_embeddings.projection(pixel_values).flatten(2).transpose(1, 2)
        x = self.norm(x, time)
        if self.position_embeddings is not None:
            if x.shape[1] != self.position_embeddings.shape[1]:
                raise ShapeError(
                    f"pixel_values: use_absolute_embeddings needs the configured grid "
                    f"({self.position_embeddings.shape[1]} patches), got {x.shape[1]}"
                )
            x = x + self.position_embeddings
        return self.dropout(x)


class _Stage(nn.Module):
    def __init__(self, config: ScOTConfig, level: int, drop_path: list[float], decoder: bool):
        super().__init__()
        dim = config.stage_dim(level)
        depth = config.depths[level]
        side = config.image_size // config.patch_size // 2**level
        self.blocks = nn.ModuleList(
            SwinBlock(
                dim,
                config.num_heads[level],
                window_size=config.window_size,
                # decoder blocks are built in reverse index order (official)
                shifted=((depth - 1 - j) if decoder else j) % 2 == 1,
                resolution=(side, side),
                mlp_dim=config.mlp_dim(dim),
                qkv_bias=config.qkv_bias,
                eps=config.layer_norm_eps,
                conditioned=config.use_conditioning,
                dropout=config.hidden_dropout_prob,
                attn_dropout=config.attention_probs_dropout_prob,
                drop_path=drop_path[j],
                pretrained_window_size=config.pretrained_window_sizes[level],
            )
            for j in range(depth)
        )

    def run_blocks(self, x: Tensor, time: Tensor, resolution: tuple[int, int]) -> Tensor:
        for block in self.blocks:
            x = block(x, time, resolution)
        return x


class EncodeStage(_Stage):
    """Swin blocks, then ``downsample`` (merging) of ``blocks(x) + x`` (not on the last stage)."""

    def __init__(self, config: ScOTConfig, level: int, drop_path: list[float]) -> None:
        super().__init__(config, level, drop_path, decoder=False)
        last = level == config.num_layers - 1
        self.downsample = (
            None
            if last
            else PatchMerging(config.stage_dim(level), conditioned=config.use_conditioning)
        )

    def forward(
        self, x: Tensor, time: Tensor, resolution: tuple[int, int]
    ) -> tuple[Tensor, Tensor]:
        """``(next stage input, block output = skip state)``."""
        out = self.run_blocks(x, time, resolution)
        if self.downsample is None:
            return out, out
        return self.downsample(out + x, time, resolution), out


class DecodeStage(_Stage):
    """Swin blocks (mirrored order), then ``upsample`` (unmerging) except at level 0."""

    def __init__(self, config: ScOTConfig, level: int, drop_path: list[float]) -> None:
        super().__init__(config, level, drop_path, decoder=True)
        self.upsample = (
            PatchUnmerging(config.stage_dim(level), conditioned=config.use_conditioning)
            if level > 0
            else None
        )

    def forward(self, x: Tensor, time: Tensor, resolution: tuple[int, int]) -> Tensor:
        x = self.run_blocks(x, time, resolution)
        return x if self.upsample is None else self.upsample(x, time, resolution)


class PatchRecovery(nn.Module):
    """``projection`` (ConvTranspose2d D→C_out, k = s = patch) then ``mixup`` (5x5, no bias)."""

    def __init__(self, config: ScOTConfig) -> None:
        super().__init__()
        p = config.patch_size
        self.projection = nn.ConvTranspose2d(
            config.embed_dim, config.num_out_channels, kernel_size=p, stride=p
        )
        self.mixup = nn.Conv2d(
            config.num_out_channels, config.num_out_channels, 5, padding=2, bias=False
        )

    def forward(self, x: Tensor, resolution: tuple[int, int]) -> Tensor:
        batch, _, dim = x.shape
        x = x.transpose(1, 2).reshape(batch, dim, *resolution)
        return self.mixup(self.projection(x))


class _Stages(nn.Module):
    def __init__(self, layers: list[nn.Module]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)


class ScOT(nn.Module):
    """scOT operator transformer: ``(pixel_values (batch, C_in, H, W), time (batch,))`` →
    ``(batch, C_out, H, W)``.

    Build from a :class:`~sciml_seq.operator.ScOTConfig` (``ScOTConfig.preset("T")``
    is Poseidon-T, 20,774,444 parameters) or load an official checkpoint folder
    with :meth:`from_pretrained`.  ``H`` and ``W`` may differ; each must fit the
    windows (a ``ShapeError`` says which size would).  ``time`` is the lead time
    as the official pipeline normalises it (e.g. ``(t2 - t1) / 20``).

    Submodules (official names): ``embeddings``, ``encoder.layers[i]``,
    ``decoder.layers[k]`` (level ``num_layers - 1 - k``), ``patch_recovery``,
    ``residual_blocks[i]`` (ConvNeXt blocks on skip ``i``; an identity when 0).
    """

    def __init__(self, config: ScOTConfig) -> None:
        super().__init__()
        if not isinstance(config, ScOTConfig):
            raise OptionError(f"config: expected a ScOTConfig, got {type(config).__name__}")
        self.config = config
        enc_rates, dec_rates = config.drop_path_rates()
        levels = range(config.num_layers)
        self.embeddings = Embeddings(config)
        self.encoder = _Stages([EncodeStage(config, i, enc_rates[i]) for i in levels])
        self.decoder = _Stages([DecodeStage(config, i, dec_rates[i]) for i in reversed(levels)])
        self.patch_recovery = PatchRecovery(config)
        self.residual_blocks = nn.ModuleList(
            nn.ModuleList(
                [
                    ConvNeXtBlock(
                        config.stage_dim(i),
                        eps=config.layer_norm_eps,
                        conditioned=config.use_conditioning,
                    )
                    for _ in range(n)
                ]
                or [nn.Identity()]
            )
            for i, n in enumerate(config.skip_connections)
        )
        self.reset_parameters()

    # ------------------------------------------------------------------ init

    def reset_parameters(self) -> None:
        """The official init: linear/conv weights ~ N(0, initializer_range²), biases 0,
        layer norms 1/0, ``logit_scale = log 10``, ConvNeXt layer scale 1e-6, absolute
        position table 0; the transposed convolution keeps PyTorch's default init."""
        std = self.config.initializer_range
        with torch.no_grad():
            for module in self.modules():
                if isinstance(module, nn.Linear | nn.Conv2d):
                    module.weight.normal_(0.0, std)
                    if module.bias is not None:
                        module.bias.zero_()
                elif isinstance(module, nn.LayerNorm):
                    module.weight.fill_(1.0)
                    module.bias.zero_()
                elif isinstance(module, ConvNeXtBlock):
                    module.weight.fill_(1e-6)
                elif isinstance(module, nn.ConvTranspose2d):
                    module.reset_parameters()
            for name, param in self.named_parameters():
                if name.endswith("logit_scale"):
                    param.fill_(float(np.log(10.0)))
            if self.embeddings.position_embeddings is not None:
                self.embeddings.position_embeddings.zero_()

    # ------------------------------------------------------------------ forward

    def _check(self, pixel_values: Tensor, time: Tensor) -> tuple[Tensor, list[tuple[int, int]]]:
        cfg = self.config
        if not isinstance(pixel_values, Tensor) or not pixel_values.is_floating_point():
            raise DTypeError(
                f"pixel_values: expected a floating-point tensor, got "
                f"{getattr(pixel_values, 'dtype', type(pixel_values).__name__)}"
            )
        if pixel_values.dim() != 4 or pixel_values.shape[1] != cfg.num_channels:
            raise ShapeError(
                f"pixel_values: expected (batch, {cfg.num_channels}, H, W), "
                f"got {tuple(pixel_values.shape)}"
            )
        check_module_input("pixel_values", pixel_values, self)
        batch = pixel_values.shape[0]
        if not isinstance(time, Tensor):
            time = torch.as_tensor(time, device=pixel_values.device)
        time = time.to(device=pixel_values.device)  # a no-op when already there
        if time.dim() == 0:
            time = time.expand(batch)
        if time.shape != (batch,):
            raise ShapeError(
                f"time: expected shape ({batch},) or a scalar, got {tuple(time.shape)}"
            )
        res = stage_resolutions(
            pixel_values.shape[2],
            pixel_values.shape[3],
            cfg.patch_size,
            cfg.window_size,
            cfg.num_layers,
        )
        return time, res

    def _run(self, pixel_values: Tensor, time: Tensor, collect: bool) -> ScOTOutput:
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
                if isinstance(block, ConvNeXtBlock):
                    skips[level] = block(skips[level], time, res[level])
        x = skips[-1]
        decoder_states = [x]
        for k, stage in enumerate(self.decoder.layers):
            level = n - 1 - k
            if k:
                x = x + skips[level]
            x = stage(x, time, res[level])
            if collect:
                decoder_states.append(x)
        prediction = self.patch_recovery(x, res[0])
        if self.config.residual:
            prediction = prediction + pixel_values[:, : self.config.num_out_channels]
        return ScOTOutput(prediction, tuple(encoder_states), tuple(decoder_states))

    def forward(self, pixel_values: Tensor, time: Tensor) -> Tensor:
        """``(batch, C_in, H, W)``, ``time (batch,)`` (or a scalar) → ``(batch, C_out, H, W)``."""
        return self._run(pixel_values, time, collect=False).output

    def forward_with_hidden_states(self, pixel_values: Tensor, time: Tensor) -> ScOTOutput:
        """As :meth:`forward`, plus the encoder and decoder hidden states (:class:`ScOTOutput`)."""
        return self._run(pixel_values, time, collect=True)

    def forward_resampled(self, pixel_values: Tensor, time: Tensor) -> Tensor:
        """The official convention for square inputs of another size than ``image_size``.

        The input is FFT-resampled to ``image_size``, the model runs there, and the
        output is resampled back (:func:`~sciml_seq.torch.operator.resample.fft_resample`);
        at ``image_size`` this is :meth:`forward`.  Shapes as :meth:`forward`, ``H == W``.
        """
        from .resample import fft_resample

        size, target = pixel_values.shape[-1], self.config.image_size
        if pixel_values.dim() == 4 and pixel_values.shape[-2] != size:
            raise ShapeError(
                f"pixel_values: the resampled forward needs square fields, "
                f"got {tuple(pixel_values.shape[-2:])}"
            )
        out = self.forward(fft_resample(pixel_values, target), time)
        return fft_resample(out, size)

    def loss(self, prediction: Tensor, labels: Tensor, pixel_mask: Tensor | None = None) -> Tensor:
        """The official training loss of this configuration (see :func:`scot_loss`)."""
        from .loss import scot_loss

        return scot_loss(
            prediction,
            labels,
            p=self.config.p,
            channel_slices=self.config.channel_slice_list_normalized_loss,
            pixel_mask=pixel_mask,
        )

    # ------------------------------------------------------------------ checkpoints

    @classmethod
    def from_pretrained(
        cls,
        path: str | os.PathLike,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> ScOT:
        """Load an official checkpoint folder (``config.json`` + ``model.safetensors``).

        Never downloads.  Raises ``OptionError`` when the folder or a file is
        missing or the parameter names differ from the model the config builds.
        """
        config, arrays = read_checkpoint(path)
        with torch.device("meta"):
            model = cls(config)
        what = f"checkpoint {os.fspath(path)!r}"
        check_names(model.state_dict().keys(), arrays.keys(), what)
        state = model.state_dict()
        ints = [k for k, v in state.items() if not v.is_floating_point()]
        check_arrays({k: tuple(v.shape) for k, v in state.items()}, arrays, what, not_float=ints)
        state = {k: torch.from_numpy(np.array(v)).to(dtype) for k, v in arrays.items()}
        model.load_state_dict(state, assign=True)
        # the non-persistent window tables were built on the meta device: rebuild them
        for module in model.modules():
            if isinstance(module, SwinBlock):
                module.reset_tables(dtype)
        return model.to(device) if device is not None else model

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write ``config.json`` and ``model.safetensors`` (official names, current dtype)."""
        arrays = {k: v.detach().cpu().numpy() for k, v in self.state_dict().items()}
        write_checkpoint(path, self.config, arrays)


__all__ = ["ScOT", "ScOTOutput"]
