"""Long-range sequence tasks that need no download: S4D vs LSTM/GRU vs Transformer.

Tasks (:mod:`sciml_seq.data.long_range`): copying, selective copying, the adding
problem, and scikit-learn's 8x8 digits pixel by pixel (length 64) and permuted.
Every model is sized to the same parameter budget (``--params``) by fitting its
width (:func:`sciml_seq.torch.models.sizing.build_sized`); the architectures are in
``benchmarks/seq_common.py``.  Training: AdamW over the optimizer-hint parameter
groups, warm-up + cosine decay, gradient clipping
(:func:`sciml_seq.train.sequence.fit`).  Prints progress and writes the table
(device, sizes, parameter counts, the command, the test metric after the last
epoch) to ``benchmarks/results/long_range.md``.

One task per run is "a small training script per task"::

    python benchmarks/long_range.py --task copying
    python benchmarks/long_range.py --task adding --model s4d gru transformer
    python benchmarks/long_range.py                  # every task, the committed table
    python benchmarks/long_range.py --device cuda --params 200000 --epochs 50
    python benchmarks/long_range.py --task adding --model s4d transformer --mixers fnet aaren

``--mixers`` adds a transformer row per token mixer (:data:`sciml_seq.mixers.MIXERS`),
sized to the same budget: RoPE where the mixer takes it, gMLP with ``max_length`` =
the task's length, Aaren causal (its many-to-many RNN; bidirectional it would give
every token one pooled vector).
"""

from __future__ import annotations

import argparse
import time

import report
import seq_common

#: Default sizes and epochs per task (small enough for a 2-core CPU).
TASKS: dict[str, dict] = {
    "copying": {"sizes": {"n_copy": 8, "delay": 32, "n_symbols": 8}, "epochs": 8},
    "selective_copying": {"sizes": {"n_copy": 4, "length": 64, "n_symbols": 8}, "epochs": 8},
    "adding": {"sizes": {"length": 100}, "epochs": 8},
    "digits": {"sizes": {}, "epochs": 20},
    "permuted_digits": {"sizes": {}, "epochs": 20},
}

#: Distributions whose versions go into the results header.
PACKAGES = ("torch", "numpy", "scikit-learn")

#: Score of the best input-independent prediction (the chance level).
CHANCE = {
    "copying": "acc 0.125",
    "selective_copying": "acc 0.125",
    "adding": "MSE 0.167",
    "digits": "acc ~0.10",
    "permuted_digits": "acc ~0.10",
}


def run_task(name: str, args) -> list[dict]:
    from sciml_seq.data.long_range import make_task
    from sciml_seq.torch.models.sizing import count_parameters
    from sciml_seq.train.sequence import fit

    spec = TASKS[name]
    task = make_task(
        name, n_train=args.n_train, n_test=args.n_test, seed=args.seed, **spec["sizes"]
    )
    epochs = args.epochs or spec["epochs"]
    rows = []
    mixers = [m for m in (args.mixers or []) if m != "softmax"]
    for model_name in [*args.model, *(f"transformer[{m}]" for m in mixers)]:
        import torch

        torch.manual_seed(args.seed)
        if model_name.startswith("transformer["):
            model, arch = mixer_model(model_name[len("transformer[") : -1], task, args.params)
            lr = seq_common.LR["transformer"]
        else:
            model = seq_common.make_model(model_name, task, args.params)
            arch, lr = seq_common.describe(model_name, model), seq_common.LR[model_name]
        n_params = count_parameters(model)
        print(f"\n== {name} / {model_name}: {arch}, {n_params} parameters, {epochs} epochs")
        cpu = time.process_time()
        result = fit(
            model,
            task,
            epochs=epochs,
            batch_size=args.batch_size,
            lr=lr,
            device=args.device,
            seed=args.seed,
            max_steps=args.max_steps,
        )
        rows.append(
            {
                "task": name,
                "model": model_name,
                "arch": arch,
                "params": n_params,
                "epochs": len(result.test_metric),
                "seconds": result.seconds,
                "cpu": time.process_time() - cpu,
                "metric": result.test_metric[-1],
                "best": max(result.test_metric)
                if task.kind != "regress"
                else min(result.test_metric),
                "kind": task.kind,
                "sizes": _sizes(task, spec["sizes"]),
            }
        )
    return rows


def mixer_model(mixer: str, task, n_params: int):
    """The transformer baseline with ``mixer`` in every block, sized to ``n_params``."""
    from sciml_seq.mixers import MIXER_FACTS
    from sciml_seq.torch.models.sizing import build_sized

    options = dict(seq_common.ARCH["transformer"])
    options["pool"] = "none" if task.kind == "seq2seq" else "mean"
    options["mixer"] = mixer
    options["mixer_options"] = {"max_length": task.length} if mixer == "gmlp" else {}
    options["causal"] = mixer == "aaren"
    model = build_sized("transformer", task.channels, task.d_output, n_params, **options)
    rope = ", RoPE" if MIXER_FACTS[mixer].rope else ", no positional encoding"
    arch = seq_common.describe("transformer", model).replace(", RoPE", f", mixer={mixer}{rope}")
    return model, arch


def _sizes(task, sizes: dict) -> str:
    extra = ", ".join(f"{k}={v}" for k, v in sizes.items())
    return (
        f"L={task.length}, {task.channels} ch, train {len(task.x_train)}, "
        f"test {len(task.x_test)}" + (f"; {extra}" if extra else "")
    )


def table(rows: list[dict], args, header: list[str], minutes: float, cpu_minutes: float) -> str:
    lines = [
        f"# Long-range sequence tasks at ~{args.params} parameters",
        "",
        *header,
        f"total time: {minutes:.1f} min wall, {cpu_minutes:.1f} min CPU (this process); "
        f"batch {args.batch_size}, seed {args.seed}; "
        "metric on the test set after the last epoch (best epoch in brackets)",
        "",
        "| task | sizes | chance | model | architecture | params | epochs | train s (CPU s) "
        "| test metric |",
        "|---|---|---|---|---|---:|---:|---:|---:|",
    ]
    for r in rows:
        what = "MSE" if r["kind"] == "regress" else "acc"
        lines.append(
            f"| {r['task']} | {r['sizes']} | {CHANCE[r['task']]} | {r['model']} | {r['arch']} "
            f"| {r['params']} | {r['epochs']} | {r['seconds']:.0f} ({r['cpu']:.0f}) "
            f"| {what} {r['metric']:.4f} ({r['best']:.4f}) |"
        )
    lines += [
        "",
        "acc: accuracy (per output symbol for the copying tasks); MSE: mean squared error.",
        "Architectures and learning rates: `benchmarks/seq_common.py` (widths fitted to the",
        "parameter budget); all models: AdamW, weight decay 0.01 (none on the SSM Δ, A, B,",
        "which train at lr 1e-3), 5 % warm-up then cosine decay, gradient clipping at 1.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument(
        "--model", nargs="+", default=["s4d", "lstm", "transformer"], choices=list(seq_common.ARCH)
    )
    parser.add_argument(
        "--mixers",
        nargs="+",
        default=[],
        help="token mixers (sciml_seq.mixers.MIXERS): one transformer row each",
    )
    parser.add_argument("--epochs", type=int, default=None, help="override the per-task epochs")
    parser.add_argument("--n-train", type=int, default=4096, help="generated tasks")
    seq_common.add_training_arguments(parser)
    args = parser.parse_args(argv)
    report.set_threads(args.threads)

    start, cpu = time.perf_counter(), time.process_time()
    rows = [row for name in args.task for row in run_task(name, args)]
    minutes = (time.perf_counter() - start) / 60
    cpu_minutes = (time.process_time() - cpu) / 60
    header = report.header(__file__, argv, args.device, PACKAGES)
    text = table(rows, args, header, minutes, cpu_minutes)
    return report.publish(text, args.out, "long_range.md")


if __name__ == "__main__":
    main()
