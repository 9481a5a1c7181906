"""scOT training and inference throughput (samples/s): eager vs ``torch.compile``, fp32 vs bf16.

Times :class:`sciml_seq.torch.operator.ScOT` (a preset, default scOT-T) on random
fields at ``--size`` x ``--size`` with batch ``--batch``:

- ``infer``: ``model(x, t)`` under ``torch.no_grad()``;
- ``train``: forward, a relative L1 loss over all channels, backward and an AdamW step.

Precisions: ``fp32`` and ``bf16`` (``torch.autocast``).  ``--compile`` adds
``torch.compile`` rows; ``--cuda-graph`` adds rows that capture the whole step
(forward, and for ``train`` backward and a capturable AdamW step) in one CUDA
graph and replay it, which removes the host's per-kernel launch cost.  When the
official Poseidon package (``scOT.model``, with ``transformers==4.29.2``) is
importable, its model gets the same weights (the parameter names are identical)
and is timed too: it is then the ratio
baseline of each (mode, precision); otherwise our eager fp32 row is.  Prints a
table (median of ``--repeats`` timed runs after warm-up) and writes it with the
command to ``benchmarks/results/scot_<device>.md``.

    python benchmarks/scot.py --device cuda --cuda-graph                      # the target run
    python benchmarks/scot.py --device cpu --size 64 --batch 2 --repeats 3    # a CPU smoke run
"""

from __future__ import annotations

import argparse
import contextlib
from dataclasses import dataclass
from pathlib import Path

import report

#: The official Poseidon scOT-T on an H100 (issue 5): fp32 samples/s at 128x128, batch 32.
OFFICIAL_H100 = {"train": (127.0, 142.0), "infer": (557.0, 557.0)}


def _vs_official_h100(args, row: Row) -> str:
    """``samples/s / official`` (a range for a range) at the official sizes on CUDA, else ``""``."""
    at_official_sizes = (args.preset, args.size, args.batch) == ("T", 128, 32)
    if not (args.device.startswith("cuda") and at_official_sizes) or row.model == "official":
        return ""
    low, high = (row.samples_per_s / v for v in reversed(OFFICIAL_H100[row.mode]))
    return f"{low:.2f}x" if high - low < 5e-3 else f"{low:.2f}-{high:.2f}x"


@dataclass
class Row:
    model: str
    mode: str
    precision: str
    ms: float
    peak_mib: float | None
    batch: int
    baseline_ms: float | None = None

    @property
    def samples_per_s(self) -> float:
        return self.batch * 1e3 / self.ms


def _official_model(config, state_dict, device):
    """The official Poseidon ScOT with our weights, or ``None`` when it is not installed."""
    try:
        from scOT.model import ScOT as OfficialScOT
        from scOT.model import ScOTConfig as OfficialConfig
    except ImportError:
        return None
    skip = {"architectures", "model_type", "num_layers", "hidden_size", "pretrained_window_sizes"}
    kwargs = {k: v for k, v in config.to_dict().items() if k not in skip}
    model = OfficialScOT(OfficialConfig(**kwargs))
    model.load_state_dict(state_dict)
    return model.to(device)


def _graph_replay(step, device):
    """Capture ``step`` in a CUDA graph after warm-up on a side stream; returns the replay."""
    import torch

    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    return graph.replay


def _timed(
    model, call, args, x, t, y, mode: str, precision: str, sync, device, graphed: bool = False
) -> tuple:
    import torch

    def autocast():
        # a captured graph must not reuse autocast's cast cache across replays
        if precision == "bf16":
            return torch.autocast(device.type, dtype=torch.bfloat16, cache_enabled=not graphed)
        return contextlib.nullcontext()

    if mode == "infer":
        model.eval()

        def step() -> None:
            with torch.no_grad(), autocast():
                call(x, t)

    else:
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4, capturable=graphed)

        def step() -> None:
            opt.zero_grad(set_to_none=True)
            with autocast():
                pred = call(x, t)
            loss = (pred.float() - y).abs().mean() / y.abs().mean()
            loss.backward()
            opt.step()

    run = _graph_replay(step, device) if graphed else step
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    ms = 1e3 * report.median_seconds(run, sync, args.repeats, args.warmup)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return ms, peak


def _fp32_math() -> str:
    """How float32 matrix products and convolutions run (TF32 or not) on CUDA."""
    import torch

    return (
        f"matmul precision {torch.get_float32_matmul_precision()!r}, "
        f"cuDNN TF32 {'on' if torch.backends.cudnn.allow_tf32 else 'off'}"
    )


def run(args) -> list[Row]:
    import torch

    from sciml_seq.operator import ScOTConfig
    from sciml_seq.torch.operator import ScOT

    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    overrides = {"image_size": args.size}
    if args.embed_dim:
        overrides["embed_dim"] = args.embed_dim
    config = ScOTConfig.preset(args.preset, **overrides)
    torch.manual_seed(0)
    ours = ScOT(config).to(device)
    gen = torch.Generator(device="cpu").manual_seed(1)
    shape = (args.batch, config.num_channels, args.size, args.size)
    x = torch.randn(shape, generator=gen).to(device)
    y = torch.randn((args.batch, config.num_out_channels, args.size, args.size), generator=gen)
    y = y.to(device)
    t = torch.rand(args.batch, generator=gen).to(device)
    official = _official_model(config, ours.state_dict(), device)

    rows: list[Row] = []
    for mode in args.modes.split(","):
        for precision in args.precisions.split(","):
            variants = [("sciml_seq eager", ours, ours, False)]
            if args.cuda_graph:
                variants.append(("sciml_seq CUDA graph", ours, ours, True))
            if args.compile:
                variants.append(("sciml_seq compiled", ours, torch.compile(ours), False))
            if official is not None:
                variants.insert(
                    0,
                    (
                        "official",
                        official,
                        lambda a, b: official(pixel_values=a, time=b).output,
                        False,
                    ),
                )
            for name, module, call, graphed in variants:
                ms, peak = _timed(
                    module, call, args, x, t, y, mode, precision, sync, device, graphed
                )
                rows.append(Row(name, mode, precision, ms, peak, args.batch))
    # ratios: against the official row of the same mode/precision, else our eager fp32
    for row in rows:
        base = next(
            (
                r
                for r in rows
                if r.mode == row.mode
                and (
                    (r.model == "official" and r.precision == row.precision)
                    if official is not None
                    else (r.model == "sciml_seq eager" and r.precision == "fp32")
                )
            ),
            None,
        )
        row.baseline_ms = base.ms if base else None
    return rows


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--preset", default="T", help="T, B or L")
    parser.add_argument("--embed-dim", type=int, default=None, help="override embed_dim")
    parser.add_argument("--size", type=int, default=128, help="grid side")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--modes", default="infer,train")
    parser.add_argument("--precisions", default="fp32,bf16")
    parser.add_argument("--compile", action="store_true", help="add torch.compile rows")
    parser.add_argument(
        "--cuda-graph", action="store_true", help="add rows replaying the step as a CUDA graph"
    )
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.cuda_graph and not args.device.startswith("cuda"):
        parser.error("--cuda-graph: needs a CUDA --device")

    report.set_threads(args.threads)
    rows = run(args)
    official = any(r.model == "official" for r in rows)
    packages = ("torch", "transformers") if official else ("torch",)
    baseline = (
        "the official Poseidon model, same mode and precision"
        if official
        else "our eager fp32 row of the same mode (official Poseidon not installed)"
    )
    lines = [
        f"# scOT-{args.preset} throughput: {args.size}x{args.size}, batch {args.batch}",
        "",
        *report.header(__file__, argv, args.device, packages),
        f"median of {args.repeats} runs after {args.warmup} warm-up runs (torch.compile's "
        f"compilation falls in the warm-up); ratio = baseline time / this time, baseline: "
        f"{baseline}; fp32 rows: {_fp32_math()}",
        "",
        "| model | mode | precision | ms / step | samples / s | speed-up | peak GPU MiB "
        "| samples/s vs official H100 |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        ratio = f"{r.baseline_ms / r.ms:.2f}" if r.baseline_ms else "—"
        peak = f"{r.peak_mib:.0f}" if r.peak_mib is not None else ""
        lines.append(
            f"| {r.model} | {r.mode} | {r.precision} | {r.ms:.1f} | {r.samples_per_s:.1f} "
            f"| {ratio} | {peak} | {_vs_official_h100(args, r)} |"
        )
    lines += [
        "",
        "Official H100 numbers (issue 5, the Poseidon code in fp32, its bf16 is slower): "
        f"train {OFFICIAL_H100['train'][0]:.0f}-{OFFICIAL_H100['train'][1]:.0f}, "
        f"infer {OFFICIAL_H100['infer'][0]:.0f} samples/s at 128x128, batch 32; compared "
        "only on CUDA at those sizes.",
    ]
    return report.publish("\n".join(lines), args.out, f"scot_{args.device.split(':')[0]}.md")


if __name__ == "__main__":
    main()
