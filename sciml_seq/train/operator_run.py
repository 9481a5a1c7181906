"""The operator pipeline behind ``sciml-seq train operator`` and ``sciml-seq evaluate``.

:func:`train_operator` reads trajectories (:func:`sciml_seq.data.pde.read_trajectories`),
builds a named model (:mod:`.operator_models`), trains it on all-to-all pairs
with :class:`~sciml_seq.train.trainer.Trainer` (under ``torchrun`` on several
processes) and writes checkpoints.  Lead times are divided by ``time_scale``
(default: the trajectories' time span, so that leads lie in [0, 1]); the scale
is stored in the checkpoint and reused by :func:`evaluate_operator`, which writes
``metrics.json``, per-sample PNGs and ``error_vs_lead.png``.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import check_int, check_real
from ..errors import OptionError
from .evaluate import Evaluation, one_shot, rollout
from .plots import plot_error_vs_lead, plot_sample

__all__ = ["evaluate_operator", "load_operator", "train_operator"]


def _read(path: str | Path):
    from ..data.pde import read_trajectories

    return read_trajectories(path)


def train_operator(
    data: str | Path,
    *,
    model: str = "scot-t",
    out: str | Path = "outputs/operator",
    config: Any = None,
    device: str = "cpu",
    time_scale: float | None = None,
    min_lead: int = 0,
    max_lead: int | None = None,
    model_options: dict[str, Any] | None = None,
    resume: str | Path | None = None,
    overwrite: bool = False,
    max_seconds: float | None = None,
    normalize: bool = True,
    progress: bool = False,
    callback: Callable[[int, float], None] | None = None,
) -> dict[str, Any]:
    """Train ``model`` on the trajectories in ``data``; checkpoints go to ``out``.

    Parameters
    ----------
    config:
        A :class:`~sciml_seq.train.trainer.TrainConfig` (default ``steps=1000``).
    max_seconds:
        Stop early after this much training wall-clock time (a fixed budget for
        comparisons); the schedule still spans ``config.steps``.
    resume:
        A checkpoint directory to continue from (same model, data and batch size;
        the run keeps its run id).  To continue a run in place, pass its
        ``out / "final"`` and the same ``out``: each checkpoint is replaced safely
        (:mod:`sciml_seq.train.checkpoint`).
    overwrite:
        Without ``resume``, an ``out`` that already holds checkpoints is refused
        unless ``overwrite``; with it, they are removed before training starts.
    normalize:
        Standardise each channel with the training data's mean and std inside
        the model (:class:`~sciml_seq.train.normalize.ChannelNormalized`).

    Returns ``{"checkpoint": path, "steps": int, "seconds": float, "losses": [...],
    "parameters": int}``.
    """
    import torch

    from . import distributed
    from .normalize import channel_stats
    from .operator_models import build_operator
    from .pair_dataset import PairDataset
    from .trainer import TrainConfig, Trainer

    config = config or TrainConfig(steps=1000)
    if max_seconds is not None:
        max_seconds = check_real("max_seconds", max_seconds, gt=0.0)
    held = run_checkpoints(out)
    if held and resume is None and not overwrite:
        raise OptionError(
            f"out: {str(out)!r} already holds a run ({', '.join(p.name for p in held)}); "
            f"resume it (--resume {Path(out) / 'final'}) or replace it (--overwrite)"
        )
    resume_meta = None
    if resume is not None:
        from .checkpoint import read_checkpoint_meta

        resume_meta = read_checkpoint_meta(resume)
    device_obj = distributed.init_from_env(device)
    if held and resume is None and distributed.is_main():
        for folder in held:
            shutil.rmtree(folder)
    traj = _read(data)
    if time_scale is not None:
        scale = check_real("time_scale", time_scale, gt=0.0)
    elif not (scale := float(traj.t[-1] - traj.t[0])) > 0:
        raise OptionError(
            f"time_scale: expected a positive number (default: the time span of {data}, "
            f"which needs at least 2 times); got {scale}"
        )
    torch.manual_seed(config.seed)
    channels = traj.u.shape[2]
    net, spec = build_operator(
        model,
        in_channels=channels,
        out_channels=channels,
        grid=traj.u.shape[3:],
        normalization=channel_stats(traj.u) if normalize else None,
        **(model_options or {}),
    )
    if resume_meta is not None:
        saved = resume_meta["model_spec"]
        here = json.loads(json.dumps(spec))
        for key in ("name", "config"):
            if saved.get(key) != here.get(key):
                a, b = saved.get("config", {}), here.get("config", {})
                differ = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
                raise OptionError(
                    f"model: expected the model of the checkpoint to resume "
                    f"({_describe(saved)}); got {_describe(here)} (differs in "
                    f"{differ if key == 'config' else ['name']})"
                )
    dataset = PairDataset(traj.u, traj.t / scale, min_lead=min_lead, max_lead=max_lead)
    trainer = Trainer(
        net,
        dataset,
        config,
        device=device_obj,
        checkpoint_dir=out,
        model_spec=spec,
        extra={"time_scale": scale, "data": str(data)},
    )
    if resume_meta is not None:
        trainer.load(resume_meta["path"])
    start = time.perf_counter()
    losses = trainer.fit(progress=progress, callback=callback, max_seconds=max_seconds)
    return {
        "checkpoint": Path(out) / "final",
        "steps": trainer.step,
        "seconds": time.perf_counter() - start,
        "losses": losses,
        "parameters": sum(p.numel() for p in net.parameters()),
    }


def run_checkpoints(out: str | Path) -> list[Path]:
    """The checkpoint folders of a run folder: ``final``, ``step_<n>`` and the left-overs of
    interrupted saves (``*.tmp-*``, ``*.old-*``); empty when ``out`` does not exist."""
    out = Path(out)
    if not out.is_dir():
        return []
    return sorted(
        p
        for p in out.iterdir()
        if p.is_dir() and re.fullmatch(r"(final|step_\d+)(\.(tmp|old)-\w+)?", p.name)
    )


def _describe(spec: dict[str, Any]) -> str:
    """A model spec in a few words: its name and the config entries that identify it."""
    config = spec.get("config", {})
    keys = ("embed_dim", "depths", "patch_size", "hidden_channels", "n_layers", "n_modes")
    shown = {k: config[k] for k in keys if k in config}
    return f"{spec.get('name')!r} {shown}"


def load_operator(checkpoint: str | Path) -> tuple[Any, dict[str, Any]]:
    """``(model, extra)``: the model rebuilt from a checkpoint with its weights, and the
    checkpoint's ``extra`` entries (``time_scale``, ``data``, ``train_config``)."""
    from .checkpoint import load_checkpoint, read_model_spec
    from .operator_models import rebuild_operator

    model = rebuild_operator(read_model_spec(checkpoint))
    state = load_checkpoint(checkpoint, model=model, restore_rng=False)
    return model, state["extra"]


def evaluate_operator(
    checkpoint: str | Path,
    data: str | Path,
    out: str | Path,
    *,
    lead_steps: Sequence[int] | None = None,
    rollout_step: int = 1,
    n_plots: int = 2,
    device: str = "cpu",
    precision: str = "fp32",
    batch_size: int = 16,
    channel_slice_list: Sequence[int] | None = None,
) -> dict[str, Any]:
    """Evaluate a checkpoint on trajectories; write metrics JSON and figures to ``out``.

    One-shot predictions from ``t[0]`` at ``lead_steps`` (default: every step),
    and an autoregressive rollout of ``rollout_step`` steps per call.  Figures:
    ``sample_<i>_lead_<k>.png`` for the first ``n_plots`` trajectories at each
    one-shot lead, and ``error_vs_lead.png`` (median relative L1).  Returns the
    metrics dict that is written to ``metrics.json``.
    """
    from .predict import torch_predictor

    n_plots = check_int("n_plots", n_plots, low=0)
    model, extra = load_operator(checkpoint)
    scale = float(extra.get("time_scale", 1.0))
    traj = _read(data)
    t = traj.t / scale
    predict = torch_predictor(model, device=device, precision=precision)
    lead_steps = list(lead_steps or range(1, traj.u.shape[1]))
    common = {"batch_size": batch_size, "channel_slice_list": channel_slice_list}
    shot = one_shot(predict, traj.u, t, lead_steps, **common)
    roll = rollout(predict, traj.u, t, step=rollout_step, **common)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    summaries = {"one-shot": shot.summary(), "rollout": roll.summary()}
    figures = _sample_figures(traj.u, shot, out, n_plots)
    figures.append(plot_error_vs_lead(summaries, out / "error_vs_lead.png"))
    metrics = {
        "checkpoint": str(checkpoint),
        "data": str(data),
        "n_trajectories": int(traj.u.shape[0]),
        "time_scale": scale,
        "one_shot": summaries["one-shot"],
        "rollout": summaries["rollout"],
        "figures": [str(f.name) for f in figures],
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return metrics


def _sample_figures(u: np.ndarray, shot: Evaluation, out: Path, n_plots: int) -> list[Path]:
    figures = []
    for i in range(min(n_plots, u.shape[0])):
        for k, steps in enumerate(shot.lead_steps):
            figures.append(
                plot_sample(
                    u[i, 0],
                    u[i, steps],
                    shot.predictions[k, i],
                    out / f"sample_{i}_lead_{int(steps)}.png",
                    title=f"trajectory {i}, lead {int(steps)} steps, "
                    f"rel. L1 {shot.rel_l1[k, i]:.3g}",
                )
            )
    return figures
