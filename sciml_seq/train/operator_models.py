"""Named operator models for training, and their rebuild from a checkpoint's spec.

Names: ``"scot-t"``, ``"scot-b"``, ``"scot-l"`` (scOT presets T/B/L,
:class:`sciml_seq.torch.operator.ScOT`, 2-D fields), ``"fno"``
(:class:`sciml_seq.torch.operator.fno.TimeFNO`, any dimension) and ``"convs5"``
(:class:`sciml_seq.torch.ssm.ConvS5Operator`, 2-D fields).  Each model
comes with a JSON-able spec ``{"name": ..., "config": {...}}`` that
:func:`rebuild_operator` turns back into the same architecture (the
checkpoint then supplies the weights).  With ``normalization=(mean, std)`` the
model is wrapped in :class:`~sciml_seq.train.normalize.ChannelNormalized` and the
statistics are part of the spec.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from torch import nn

from ..checks import check_choice, check_int, format_choices
from ..errors import OptionError

__all__ = ["OPERATOR_MODELS", "build_operator", "rebuild_operator"]

OPERATOR_MODELS = ("scot-t", "scot-b", "scot-l", "fno", "convs5")


def build_operator(
    name: str,
    *,
    in_channels: int,
    out_channels: int,
    grid: Sequence[int],
    normalization: tuple[Sequence[float], Sequence[float]] | None = None,
    **overrides: Any,
) -> tuple[nn.Module, dict[str, Any]]:
    """A fresh model for fields ``(C_in, *grid)`` -> ``(C_out, *grid)`` and its spec.

    ``overrides``: ScOTConfig fields for scOT (e.g. ``embed_dim=24``), TimeFNO
    arguments for ``"fno"`` (default ``n_modes``: ``min(16, n // 2)`` per axis).
    ``normalization``: per-channel ``(mean, std)`` (needs ``C_out == C_in``).
    """
    check_choice("model", name, OPERATOR_MODELS)
    grid = tuple(check_int(f"grid[{i}]", n) for i, n in enumerate(grid))
    if name.startswith("scot-"):
        if len(grid) != 2:
            raise OptionError(f"grid: expected 2-D fields (H, W) for {name}; got {grid}")
        from ..torch.operator import ScOTConfig

        config = ScOTConfig.preset(
            name[-1].upper(),
            **{
                "image_size": grid[0],
                "num_channels": in_channels,
                "num_out_channels": out_channels,
                **overrides,
            },
        )
        spec = {"name": name, "config": config.to_dict()}
    elif name == "convs5":
        if len(grid) != 2:
            raise OptionError(f"grid: expected 2-D fields (H, W) for {name}; got {grid}")
        config = {"in_channels": in_channels, "out_channels": out_channels, **overrides}
        spec = {"name": name, "config": config}
    else:
        config = {
            "in_channels": in_channels,
            "out_channels": out_channels,
            "n_modes": [min(16, n // 2) for n in grid],
            **overrides,
        }
        spec = {"name": name, "config": config}
    if normalization is not None:
        if in_channels != out_channels:
            raise OptionError(
                f"normalization: expected out_channels == in_channels; got {out_channels} "
                f"and {in_channels}"
            )
        mean, std = normalization
        spec["normalization"] = {
            "mean": [float(m) for m in mean],
            "std": [float(v) for v in std],
        }
    return rebuild_operator(spec), spec


def rebuild_operator(spec: dict[str, Any]) -> nn.Module:
    """The model described by a spec from :func:`build_operator` (fresh weights)."""
    name = spec.get("name")
    if name == "fno":
        from ..torch.operator.fno import TimeFNO

        model = TimeFNO(**spec["config"])
    elif name == "convs5":
        from ..torch.ssm.convs5 import ConvS5Operator

        model = ConvS5Operator(**spec["config"])
    elif name in OPERATOR_MODELS:
        from ..torch.operator import ScOT, ScOTConfig

        model = ScOT(ScOTConfig.from_dict(spec["config"]))
    else:
        raise OptionError(
            f"model spec: expected a name in {format_choices(OPERATOR_MODELS)}; got {name!r} "
            f"(spec {spec})"
        )
    if "normalization" in spec:
        from .normalize import ChannelNormalized

        stats = spec["normalization"]
        model = ChannelNormalized(model, stats["mean"], stats["std"])
    return model
