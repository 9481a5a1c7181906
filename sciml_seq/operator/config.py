"""The scOT configuration: official field names, presets T/B/L, JSON in the official layout.

:class:`ScOTConfig` carries the fields of Poseidon's ``ScOTConfig``
(``camlab-ethz/poseidon``, ``scOT/model.py``) under the same names, so an official
``config.json`` reads into it and one written by :meth:`ScOTConfig.to_json` reads
back with the official ``ScOTConfig.from_pretrained``.  The defaults are the
released scOT-T model (the official class defaults are Swin-V2 image defaults
that no released checkpoint uses).  Framework-free; both
:mod:`sciml_seq.torch.operator` and :mod:`sciml_seq.jax.operator` build from it.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..checks import check_choice, check_int, check_real, format_choices
from ..errors import OptionError
from ..losses import LOSS_EXPONENTS
from .geometry import grid_misfit

PRESETS: dict[str, dict[str, Any]] = {
    "T": {"embed_dim": 48, "depths": (4, 4, 4, 4)},
    "B": {"embed_dim": 96, "depths": (8, 8, 8, 8)},
    "L": {"embed_dim": 192, "depths": (8, 8, 8, 8)},
}
"""The released Poseidon sizes (``train.py`` ``MODEL_MAP``); everything else is shared."""

HIDDEN_ACTS = ("gelu",)
"""Supported ``hidden_act`` values (exact, erf-based GELU; the released models use it)."""

RESIDUAL_MODELS = ("convnext",)
"""Supported ``residual_model`` values.  The official ``"resnet"`` (BatchNorm) is not built."""

# Keys Hugging Face's PretrainedConfig writes that carry no model information here.
_HF_KEYS = {
    "architectures",
    "hidden_size",
    "model_type",
    "num_layers",
    "torch_dtype",
    "transformers_version",
    "_name_or_path",
    "id2label",
    "label2id",
    "output_hidden_states",
    "output_attentions",
    "return_dict",
    "chunk_size_feed_forward",
    "problem_type",
    "pruned_heads",
    "torchscript",
}


def _ints(name: str, value: Any, low: int) -> tuple[int, ...]:
    """``value`` as a tuple of integers ``>= low`` (``OptionError`` naming the entry)."""
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise OptionError(f"{name}: expected a list of integers; got {value!r}")
    return tuple(check_int(f"{name}[{i}]", v, low) for i, v in enumerate(value))


@dataclass(frozen=True)
class ScOTConfig:
    """Hyper-parameters of scOT (official Poseidon names; defaults = released scOT-T).

    Attributes
    ----------
    image_size:
        The grid size the model was built for (square side).  Our models run on
        any grid whose size fits the windows (see
        :func:`sciml_seq.operator.geometry.stage_resolutions`); ``image_size``
        only matters for ``use_absolute_embeddings`` and the official
        FFT-resampling convention.
    patch_size:
        Side of the square patches of the embedding convolution.
    num_channels, num_out_channels:
        Input and output channels ``C_in``, ``C_out``.
    embed_dim:
        Token width ``D`` of the first stage; stage ``i`` has ``D * 2**i``.
    depths, num_heads, skip_connections:
        Per stage: Swin blocks (the decoder mirrors the encoder), attention
        heads, and ConvNeXt blocks on the skip connection (0 = identity).
        ``depths`` sets the number of stages; longer ``num_heads`` and
        ``skip_connections`` are accepted as by the official model (the extra
        skip blocks exist, with their parameters, but are never applied).
    window_size:
        Side of the attention windows (clamped to a smaller stage grid).
    mlp_ratio:
        MLP width over token width in the Swin blocks.
    qkv_bias:
        Biases on query and value (the key never has one, as in Swin-V2).
    hidden_dropout_prob, attention_probs_dropout_prob, drop_path_rate:
        Dropout after the dense layers, on the attention weights, and the
        largest stochastic-depth rate (linearly increasing over encoder then
        decoder blocks).
    hidden_act:
        MLP activation; only ``"gelu"``.
    use_absolute_embeddings:
        A learned position table ``(1, num_patches, D)`` added after the embedding.
    initializer_range:
        Standard deviation of the normal init of linear and convolution weights.
    layer_norm_eps:
        Epsilon of the Swin-block and ConvNeXt norms (the embedding and the
        patch merging/unmerging norms always use 1e-5, as the official model).
    p:
        Loss exponent: 1 (L1) or 2 (MSE).
    channel_slice_list_normalized_loss:
        Channel boundaries of the relative loss, e.g. ``(0, 1, 3, 4)``; ``None``
        is the plain loss over all channels.
    residual_model:
        Skip-connection blocks; only ``"convnext"``.
    use_conditioning:
        Time-conditioned layer norms ``γ(t)·norm(x) + β(t)`` everywhere (else
        plain layer norms and ``time`` is ignored).
    learn_residual:
        Add the input (first ``C_out`` channels) to the prediction; the
        official model only honours it with ``use_conditioning``.
    pretrained_window_sizes:
        Per stage, the window the relative coordinates are normalised by (0 =
        the stage's own window).
    """

    image_size: int = 128
    patch_size: int = 4
    num_channels: int = 4
    num_out_channels: int = 4
    embed_dim: int = 48
    depths: tuple[int, ...] = (4, 4, 4, 4)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    skip_connections: tuple[int, ...] = (2, 2, 2, 0)
    window_size: int = 16
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    hidden_dropout_prob: float = 0.0
    attention_probs_dropout_prob: float = 0.0
    drop_path_rate: float = 0.0
    hidden_act: str = "gelu"
    use_absolute_embeddings: bool = False
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-5
    p: int = 1
    channel_slice_list_normalized_loss: tuple[int, ...] | None = (0, 1, 3, 4)
    residual_model: str = "convnext"
    use_conditioning: bool = True
    learn_residual: bool = False
    pretrained_window_sizes: tuple[int, ...] = field(default=(0, 0, 0, 0))

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for name, low in (
            ("depths", 1),
            ("num_heads", 1),
            ("skip_connections", 0),
            ("pretrained_window_sizes", 0),
        ):
            set_(self, name, _ints(name, getattr(self, name), low))
        if self.channel_slice_list_normalized_loss is not None:
            name = "channel_slice_list_normalized_loss"
            slices = _ints(name, self.channel_slice_list_normalized_loss, 0)
            if len(slices) < 2 or any(b <= a for a, b in zip(slices, slices[1:], strict=False)):
                raise OptionError(
                    f"{name}: expected increasing channel boundaries (at least two); "
                    f"got {list(slices)}"
                )
            set_(self, name, slices)
        for name in (
            "image_size",
            "patch_size",
            "num_channels",
            "num_out_channels",
            "embed_dim",
            "window_size",
        ):
            set_(self, name, check_int(name, getattr(self, name)))
        n = len(self.depths)
        if n == 0:
            raise OptionError("depths: expected at least one stage; got ()")
        # as the official model, extra entries are allowed (and ignored, except that
        # extra skip_connections build skip blocks that are never used)
        for name in ("num_heads", "skip_connections", "pretrained_window_sizes"):
            if len(getattr(self, name)) < n:
                raise OptionError(
                    f"{name}: expected at least one entry per stage ({n}, as depths); "
                    f"got {list(getattr(self, name))}"
                )
        misfit = grid_misfit(self.image_size, self.patch_size, self.window_size, n)
        if misfit:
            raise OptionError(
                f"image_size: expected a side that fits the scOT grid ({misfit}); "
                f"got {self.image_size}"
            )
        for i, heads in enumerate(self.num_heads[:n]):
            dim = self.stage_dim(i)
            if dim % heads:
                raise OptionError(
                    f"num_heads[{i}]: expected a divisor of the stage width "
                    f"embed_dim * 2**{i} = {dim}; got {heads}"
                )
        check_choice("hidden_act", self.hidden_act, HIDDEN_ACTS)
        if self.residual_model not in RESIDUAL_MODELS:
            raise OptionError(
                f"residual_model: expected one of {format_choices(RESIDUAL_MODELS)} (the "
                f"official 'resnet' skip blocks are not built); got {self.residual_model!r}"
            )
        check_choice("p", self.p, LOSS_EXPONENTS)
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob", "drop_path_rate"):
            set_(self, name, check_real(name, getattr(self, name), ge=0.0, lt=1.0))
        for name in ("mlp_ratio", "layer_norm_eps"):
            set_(self, name, check_real(name, getattr(self, name), gt=0.0))
        set_(
            self,
            "initializer_range",
            check_real("initializer_range", self.initializer_range, ge=0.0),
        )

    # ------------------------------------------------------------------ derived

    @property
    def num_layers(self) -> int:
        """Number of stages (encoder and decoder each)."""
        return len(self.depths)

    @property
    def residual(self) -> bool:
        """Whether the input is added to the prediction (official: only with conditioning)."""
        return self.learn_residual and self.use_conditioning

    def stage_dim(self, level: int) -> int:
        """Token width of stage ``level``: ``embed_dim * 2**level``."""
        return self.embed_dim * 2**level

    def mlp_dim(self, dim: int) -> int:
        """Hidden width of a Swin MLP on tokens of width ``dim`` (as the official ``int``)."""
        return int(self.mlp_ratio * dim)

    def drop_path_rates(self) -> tuple[list[list[float]], list[list[float]]]:
        """Stochastic-depth rate per block: ``(encoder[level][block], decoder[level][block])``.

        As the official model: ``linspace(0, drop_path_rate, 2 * sum(depths))``, the
        first half over the encoder blocks in order, the second half over the
        decoder, deepest level first, each decoder level's blocks in reverse.
        """
        total = sum(self.depths)
        n = 2 * total
        rates = [self.drop_path_rate * i / (n - 1) if n > 1 else 0.0 for i in range(n)]
        enc_rates, dec_rates = rates[:total], rates[total:]
        encoder, decoder = [], []
        for level, depth in enumerate(self.depths):
            start = sum(self.depths[:level])
            encoder.append(enc_rates[start : start + depth])
            dstart = sum(self.depths[level + 1 :])
            level_rates = dec_rates[dstart : dstart + depth]
            decoder.append([level_rates[depth - 1 - j] for j in range(depth)])
        return encoder, decoder

    # ------------------------------------------------------------------ presets and JSON

    @classmethod
    def preset(cls, name: str, **overrides: Any) -> ScOTConfig:
        """The released scOT-``name`` configuration (``"T"``, ``"B"``, ``"L"``) with overrides.

        Raises ``OptionError`` naming an override that is not a field (as :meth:`from_dict`).
        """
        check_choice("name", name, PRESETS)
        return cls.from_dict({**PRESETS[name], **overrides})

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ScOTConfig:
        """From a dict of official field names; Hugging Face bookkeeping keys are skipped.

        Raises ``OptionError`` naming any other key that is not a field.
        """
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(k for k in values if k not in names and k not in _HF_KEYS)
        if unknown:
            raise OptionError(
                f"config: unknown scOT field(s) {unknown}; expected official ScOTConfig names "
                f"({sorted(names)})"
            )
        return cls(**{k: v for k, v in values.items() if k in names})

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> ScOTConfig:
        """Read an official ``config.json`` (or a folder holding one)."""
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, "config.json")
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))

    def to_dict(self) -> dict[str, Any]:
        """The fields with lists for tuples, plus the keys the official loader expects."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        out["architectures"] = ["ScOT"]
        out["model_type"] = "swinv2"
        out["num_layers"] = self.num_layers
        out["hidden_size"] = self.stage_dim(self.num_layers - 1)
        return dict(sorted(out.items()))

    def to_json(self, path: str | os.PathLike) -> None:
        """Write ``config.json`` (``path`` is the file, or a folder to write it into)."""
        path = os.fspath(path)
        if os.path.isdir(path):
            path = os.path.join(path, "config.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)
            f.write("\n")
