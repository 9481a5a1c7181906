"""scOT vs the FNO baseline on generated 2-D Navier–Stokes data, same wall-clock budget.

Generates ``navier_stokes_2d`` vorticity trajectories (train and test sets with
different seeds, :func:`sciml_seq.data.pde.generate`), then for each model:

1. times a few training steps (after one warm-up step, three with ``--compile``)
   to size the run so that its warm-up + cosine schedule ends at the budget
   (every model is timed before the first one trains, so a model that fails on
   the device fails early);
2. trains a fresh model on all-to-all pairs for at most ``--seconds`` of
   wall-clock time (:class:`sciml_seq.train.trainer.Trainer`, same data, batch,
   learning-rate recipe and seed for every model);
3. evaluates on the test set: one-shot median relative L1 from ``t_0`` at
   several lead times, and an autoregressive rollout (one time step per call)
   to the last time.  A persistence row (``u(t) = u(t_0)``) is the reference
   that a trained model has to beat.

Prints the table and writes it with the command to
``benchmarks/results/operator_training_<device>.md``.

    python benchmarks/operator_training.py --device cuda          # the intended run
    python benchmarks/operator_training.py --device cuda --compile reduce-overhead
    python benchmarks/operator_training.py --device cpu --tiny    # a smoke-sized CPU run
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import report


def _args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument(
        "--models", default="scot-t,fno", help="comma list (scot-t, scot-b, fno, convs5)"
    )
    p.add_argument("--n-train", type=int, default=256, help="training trajectories")
    p.add_argument("--n-test", type=int, default=32, help="test trajectories")
    p.add_argument("--resolution", type=int, default=64)
    p.add_argument("--n-times", type=int, default=11, help="snapshots per trajectory (dt 0.1)")
    p.add_argument(
        "--seconds",
        type=float,
        default=200.0,
        help="training budget per model (default: both models and the data in ~10 minutes)",
    )
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--precision", default="bf16", help="fp32, bf16 or fp16")
    p.add_argument(
        "--compile", default=None, help="torch.compile mode of both models (default: eager)"
    )
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--out", type=Path, default=None, help="results file")
    p.add_argument(
        "--tiny",
        action="store_true",
        help="smoke size: 24/8 trajectories of 32x32, 60 s, small scOT and FNO widths",
    )
    args = p.parse_args(argv)
    if args.tiny:
        args.n_train, args.n_test, args.resolution, args.seconds = 24, 8, 32, 60.0
        args.batch_size, args.precision = 8, "fp32"
    return args


def _model_options(name: str, args: argparse.Namespace) -> dict:
    if not args.tiny:
        # scOT-T as released except patch 2 at 64x64 (Poseidon: patch 4 at 128x128, the
        # same 32x32 tokens and window 16); FNO: 16 modes, width 64 (a usual 2-D setting)
        if name.startswith("scot"):
            return {"patch_size": 2} if args.resolution <= 64 else {}
        if name == "convs5":
            return {"d_model": 64, "d_state": 64, "n_layers": 4}
        return {"hidden_channels": 64, "n_layers": 4}
    if name.startswith("scot"):
        return {"patch_size": 2, "window_size": 4, "embed_dim": 24, "depths": (2, 2, 2, 2)}
    if name == "convs5":
        return {"d_model": 24, "d_state": 24, "n_layers": 4}
    return {"hidden_channels": 24, "n_layers": 4}


def _steps_in_budget(name, args, train_path, device) -> tuple[int, float]:
    """Steps that fit in the budget, from timing 4 steps after 1 warm-up step."""
    import torch

    from sciml_seq.data.pde import read_trajectories
    from sciml_seq.train.operator_models import build_operator
    from sciml_seq.train.pair_dataset import PairDataset
    from sciml_seq.train.trainer import TrainConfig, Trainer

    traj = read_trajectories(train_path)
    model, _ = build_operator(
        name, in_channels=1, out_channels=1, grid=traj.u.shape[3:], **_model_options(name, args)
    )
    config = TrainConfig(
        steps=10, batch_size=args.batch_size, precision=args.precision, compile=args.compile
    )
    trainer = Trainer(model, PairDataset(traj.u, traj.t / traj.t[-1]), config, device=device)
    for _ in range(3 if args.compile else 1):  # compilation and CUDA-graph recording
        trainer.train_step()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)
    start = time.perf_counter()
    for _ in range(4):
        trainer.train_step()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize(trainer.device)
    per_step = (time.perf_counter() - start) / 4
    return max(10, int(args.seconds / per_step)), per_step


def main(argv: list[str] | None = None) -> str:
    args = _args(argv)
    from sciml_seq.data.pde import generate, read_trajectories, write_trajectories
    from sciml_seq.train.evaluate import one_shot, rollout
    from sciml_seq.train.operator_run import load_operator, train_operator
    from sciml_seq.train.predict import torch_predictor
    from sciml_seq.train.trainer import TrainConfig

    report.set_threads(args.threads)
    workdir = Path(tempfile.mkdtemp(prefix="operator_training_"))
    start = time.perf_counter()
    sizes = {"resolution": args.resolution, "n_times": args.n_times}
    write_trajectories(
        workdir / "train.h5", generate("navier_stokes_2d", args.n_train, seed=0, **sizes)
    )
    write_trajectories(
        workdir / "test.h5", generate("navier_stokes_2d", args.n_test, seed=1, **sizes)
    )
    generation_s = time.perf_counter() - start
    test = read_trajectories(workdir / "test.h5")
    T = test.u.shape[1]
    leads = sorted({1, max(1, (T - 1) // 4), (T - 1) // 2, T - 1})

    # every model's steps are timed before any model trains, so that a model that cannot
    # train on this device or precision fails in seconds, not after the others' budgets
    names = args.models.split(",")
    budgets = {
        name: _steps_in_budget(name, args, workdir / "train.h5", args.device) for name in names
    }
    rows = []
    for name in names:
        steps, per_step = budgets[name]
        config = TrainConfig(
            steps=steps,
            batch_size=args.batch_size,
            lr=args.lr,
            weight_decay=1e-6,
            warmup_steps=max(1, steps // 20),
            clip_norm=5.0,
            precision=args.precision,
            compile=args.compile,
        )
        print(f"{name}: {per_step * 1e3:.0f} ms/step -> {steps} steps in {args.seconds:.0f} s")
        result = train_operator(
            workdir / "train.h5",
            model=name,
            out=workdir / name,
            config=config,
            device=args.device,
            model_options=_model_options(name, args),
            max_seconds=args.seconds,
        )
        model, extra = load_operator(result["checkpoint"])
        predict = torch_predictor(model, device=args.device)
        t = test.t / extra["time_scale"]
        shot = one_shot(predict, test.u, t, leads, batch_size=args.batch_size)
        roll = rollout(predict, test.u, t, step=1, batch_size=args.batch_size)
        rows.append(
            {
                "model": name,
                "params": result["parameters"],
                "steps": result["steps"],
                "seconds": result["seconds"],
                "final_loss": float(np.mean(result["losses"][-20:])),
                "one_shot": [r["median_rel_l1"] for r in shot.summary()],
                "rollout": roll.summary()[-1]["median_rel_l1"],
            }
        )

    def persistence(x, lead):  # u(t) = u(t_0): the reference every model must beat
        return x

    still = one_shot(persistence, test.u, test.t, leads)
    rows.append(
        {
            "model": "persistence u(t)=u(0)",
            "params": 0,
            "steps": 0,
            "seconds": 0.0,
            "final_loss": float("nan"),
            "one_shot": [r["median_rel_l1"] for r in still.summary()],
            "rollout": still.summary()[-1]["median_rel_l1"],
        }
    )
    text = _text(args, argv, _table(rows, leads, test.t), generation_s)
    device = "cuda" if args.device.startswith("cuda") else "cpu"
    return report.publish(text, args.out, f"operator_training_{device}.md")


def _table(rows, leads, t) -> str:
    head = (
        "| model | parameters | steps | train s | ms/step | train loss (last 20) | "
        + " | ".join(f"one-shot t={t[k]:.1f}" for k in leads)
        + f" | rollout t={t[-1]:.1f} |"
    )
    lines = [head, "|" + "---|" * (7 + len(leads))]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['params']:,} | {r['steps']} | {r['seconds']:.0f} | "
            f"{1e3 * r['seconds'] / max(r['steps'], 1):.0f} | {r['final_loss']:.4f} | "
            + " | ".join(f"{v:.4f}" for v in r["one_shot"])
            + f" | {r['rollout']:.4f} |"
        )
    return "\n".join(lines)


def _text(args, argv: list[str] | None, table: str, generation_s: float) -> str:
    """The results file: title, run header, the data and training recipe, the table."""
    label = " (tiny smoke size: not a model comparison)" if args.tiny else ""
    tiny = (
        "\n`--tiny` shrinks the models (scOT: embed_dim 24, depths 2, patch 2, window 4; FNO:"
        " width 24; ConvS5: 4 layers of 24 channels, d_state 24) and the budget"
        ": 60 s of CPU training is far from convergence, so these"
        " rows check the pipeline, not the models.\n"
        if args.tiny
        else ""
    )
    header = "\n".join(report.header(__file__, argv, args.device, ("torch", "numpy", "jax")))
    return f"""# Operator training: scOT vs FNO on 2-D Navier–Stokes{label}

{header}
Precision {args.precision}; {f"torch.compile mode {args.compile!r}" if args.compile else "eager"}.
Data: `navier_stokes_2d` vorticity, {args.n_train} training / {args.n_test} test trajectories
(seeds 0 / 1), {args.resolution}x{args.resolution}, {args.n_times} snapshots (dt 0.1),
generated in {generation_s:.0f} s. Training on all-to-all pairs (t_i <= t_j, lead time
t_j - t_i scaled to [0, 1]), batch {args.batch_size}, AdamW lr {args.lr} with 5 % warm-up and
cosine decay sized to the budget, clip 5, the same {args.seconds:.0f} s wall-clock budget per
model. Metrics on the test set: median over trajectories of the relative L1 error, one-shot
from t=0 to each lead time, and an autoregressive rollout of one time step per call.
{tiny}
{table}"""


if __name__ == "__main__":
    main()
