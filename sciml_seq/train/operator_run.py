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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import check_int, check_real
from ..errors import OptionError
from .evaluate import Evaluation, one_shot, rollout
from .plots import plot_error_vs_lead, plot_sample

__all__ = [
    "BASELINES",
    "Run",
    "evaluate_operator",
    "export_official",
    "load_operator",
    "load_run",
    "run_checkpoints",
    "train_operator",
]

BASELINES: dict[str, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    "persistence": lambda x, lead: x,
    "zero": lambda x, lead: np.zeros_like(x),
}
"""The guesses :func:`evaluate_operator` scores beside the model: ``persistence`` predicts
no change (the input field), ``zero`` the zero field."""


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
        comparisons); the learning-rate schedule follows the budget, ending its
        decay when the time runs out (:meth:`~sciml_seq.train.trainer.Trainer.fit`).
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


@dataclass
class Run:
    """A trained operator loaded from a run folder (:func:`load_run`).

    Attributes
    ----------
    model:
        The model as trained, ``model(x, time) -> y`` on fields in the data's units
        (with the normalisation inside when the run had one); evaluation mode.
    operator:
        The bare operator (e.g. :class:`sciml_seq.torch.operator.ScOT`) that works on
        standardised fields; ``model`` itself when the run had no normalisation.
    normalization:
        ``(mean, std)`` per channel (numpy), or ``None``.
    time_scale:
        Lead times are divided by it before the model sees them.
    config:
        The :class:`~sciml_seq.train.trainer.TrainConfig` entries of the run (a dict).
    step, run_id, path:
        Of the checkpoint that was loaded.
    """

    model: Any
    operator: Any
    normalization: tuple[np.ndarray, np.ndarray] | None
    time_scale: float
    config: dict[str, Any]
    step: int
    run_id: str
    path: Path

    def predict(self, x: np.ndarray, lead_time: np.ndarray | float) -> np.ndarray:
        """``x (batch, C, *grid)`` after ``lead_time`` (data units), in numpy (float32)."""
        import torch

        x = np.asarray(x, dtype=np.float32)
        lead = np.broadcast_to(np.asarray(lead_time, dtype=np.float32), (len(x),))
        with torch.no_grad():
            y = self.model(torch.from_numpy(x), torch.from_numpy(lead / self.time_scale))
        return y.numpy()


def load_run(path: str | Path) -> Run:
    """A run of ``sciml-seq train operator``: its folder (``final`` is loaded) or one of its
    checkpoints (``run/step_100``).  See :class:`Run`; the checks of
    :func:`~sciml_seq.train.checkpoint.load_checkpoint` apply."""
    from .checkpoint import load_checkpoint, read_checkpoint_meta
    from .operator_models import rebuild_operator

    path = Path(path)
    if path.is_dir() and not (path / "model.safetensors").exists() and run_checkpoints(path):
        path = path / "final"
    meta = read_checkpoint_meta(path)
    model = rebuild_operator(meta["model_spec"])
    state = load_checkpoint(meta["path"], model=model, restore_rng=False)
    model.eval()
    stats = meta["model_spec"].get("normalization")
    extra = state["extra"]
    return Run(
        model=model,
        operator=model.model if stats is not None else model,
        normalization=(np.asarray(stats["mean"]), np.asarray(stats["std"])) if stats else None,
        time_scale=float(extra.get("time_scale", 1.0)),
        config=dict(extra.get("train_config", {})),
        step=state["step"],
        run_id=state["run_id"],
        path=meta["path"],
    )


def export_official(run: Run | str | Path, out: str | Path) -> Path:
    """Write a scOT run in the official Poseidon layout: ``config.json`` + ``model.safetensors``
    (``ScOT.from_pretrained(out)`` in torch, JAX or Poseidon loads it), plus
    ``normalization.json`` (``mean``, ``std``, ``time_scale``: the official layout has no
    place for them; the operator expects standardised fields and lead times divided by
    ``time_scale``).  Returns ``out``."""
    from ..torch.operator import ScOT

    run = run if isinstance(run, Run) else load_run(run)
    if not isinstance(run.operator, ScOT):
        raise OptionError(
            f"run: expected a scOT run to export in the official layout; got "
            f"{type(run.operator).__name__}"
        )
    out = Path(out)
    run.operator.save_pretrained(out)
    mean, std = run.normalization if run.normalization is not None else (None, None)
    extra = {
        "mean": None if mean is None else [float(v) for v in mean],
        "std": None if std is None else [float(v) for v in std],
        "time_scale": run.time_scale,
    }
    (out / "normalization.json").write_text(json.dumps(extra, indent=1))
    return out


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
    and an autoregressive rollout of ``rollout_step`` steps per call, each also for
    the baselines of :data:`BASELINES` (``metrics["baselines"][name]["one_shot"]``,
    ...): a model must beat "no change" (persistence) to be worth running, and the
    zero field scores a relative error of 1.  Figures:
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
    baselines = {}
    for name, guess in BASELINES.items():
        if name == "persistence" and traj.u.shape[2] != shot.predictions.shape[2]:
            continue  # no "no change" guess when the model's outputs are other channels
        baselines[name] = {
            "one_shot": one_shot(guess, traj.u, t, lead_steps, **common).summary(),
            "rollout": rollout(guess, traj.u, t, step=rollout_step, **common).summary(),
        }
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
        "baselines": baselines,
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
