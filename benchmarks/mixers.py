"""Scaling of the sequence mixers against length: forward + backward time and memory.

Every mixer of the registry (:data:`sciml_seq.mixers.MIXERS`, built through
:func:`sciml_seq.torch.mixers.make_mixer`; one that cannot be imported is
reported as missing) on a ``(batch, L, dim)`` input, loss ``y.square().mean()``,
forward + backward, next to the fused dense baseline ``softmax`` (PyTorch's
``scaled_dot_product_attention``) in the same process.  Two modes:
bidirectional and causal (a mixer that refuses ``causal=True`` says so), each
with its own dense baseline.  Columns:

- median time and its ratio to dense at the same length and mode;
- memory: the bytes of the distinct tensors autograd saved for the backward
  pass (``torch.autograd.graph.saved_tensors_hooks``; the activation memory,
  measured the same way on every device), and on CUDA the peak allocated above
  what was allocated before the call (``torch.cuda.max_memory_allocated``);
- per mixer and mode: the growth exponents of time and saved memory between
  the two longest lengths measured (``log(ratio) / log(length ratio)``: 1 =
  linear, 2 = quadratic) and the length from which it is at least as fast as
  dense (and stays so up to the longest length).

Then Aaren's decoding: µs per token of :meth:`AarenMixer.step` at prefix
lengths L (the state carried through all L tokens, then timed), next to one
query of dense attention over L cached keys and values (a KV cache: the cost
that grows with L).

Options: ``sliding_window`` gets ``window=--window`` (one-sided: 256 is
Longformer's w = 512), ``gmlp`` ``max_length`` = L, built for each length
(its weight is ``L^2`` per head; lengths above ``--gmlp-max-length`` are not
built), the others their defaults; the same seed for each.  A (mixer, mode) stops at the first
length that runs out of memory or whose single call took more than
``--max-seconds``.  Writes ``benchmarks/results/mixers_<device>.md``.

    python benchmarks/mixers.py --device cuda
    python benchmarks/mixers.py --device cpu --threads 1 --batch-size 1 --dim 64 \
        --lengths 512 1024 2048 4096 --decode-lengths 512 1024 2048 4096
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import report

MODES = ("bidirectional", "causal")


@dataclass
class Row:
    mixer: str
    mode: str
    L: int
    ms: float | None = None
    saved_mib: float | None = None
    peak_mib: float | None = None
    note: str = ""


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def saved_bytes(run) -> int:
    """Bytes of the distinct tensors autograd saves for the backward pass during ``run()``."""
    import torch

    seen: dict[tuple, int] = {}

    def pack(t):
        try:
            key = (t.untyped_storage().data_ptr(), t.device)
            seen[key] = max(seen.get(key, 0), t.untyped_storage().nbytes())
        except (RuntimeError, NotImplementedError):  # tensors without storage
            seen[(id(t), t.device)] = t.numel() * t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        run()
    return sum(seen.values())


def mixer_options(name: str, args, length: int) -> dict:
    if name == "sliding_window":
        return {"window": args.window}
    if name == "gmlp":
        return {"max_length": length}
    return {}


def build(name: str, args, dtype, length: int):
    """The mixer for sequences of ``length``, or the reason it cannot be built (a string)."""
    import torch

    from sciml_seq.torch.mixers import make_mixer

    if name == "gmlp" and length > args.gmlp_max_length:
        return f"not built: max_length={length} > --gmlp-max-length={args.gmlp_max_length}"
    try:
        torch.manual_seed(0)
        options = mixer_options(name, args, length)
        return make_mixer(name, args.dim, args.heads, dtype=dtype, **options)
    except ImportError as error:
        return f"missing ({type(error).__name__}: {error})"
    except Exception as error:  # noqa: BLE001 - a row reports it
        return f"not built: {type(error).__name__}: {error}"


def bench_scaling(args, checkpoint=None) -> list[Row]:
    """The rows; ``checkpoint(rows)`` is called after each mixer (partial results)."""
    import torch

    from sciml_seq.mixers import MIXERS

    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    rows = []
    for name in [m for m in MIXERS if m in args.mixers]:
        for mode in args.modes:
            for L in args.lengths:
                row = Row(name, mode, L)
                rows.append(row)
                mixer = build(name, args, dtype, L)  # gMLP's weight is sized to L
                if isinstance(mixer, str):
                    row.note = mixer
                    print(f"  {row}", file=sys.stderr)
                    break
                mixer = mixer.to(device)
                x = torch.randn(args.batch_size, L, args.dim, device=device, dtype=dtype)
                x.requires_grad_(True)

                def run(mixer=mixer, x=x, causal=(mode == "causal")):
                    mixer.zero_grad(set_to_none=True)
                    x.grad = None
                    mixer(x, causal=causal).float().square().mean().backward()

                try:
                    if device.type == "cuda":
                        torch.cuda.empty_cache()
                        torch.cuda.reset_peak_memory_stats(device)
                        before = torch.cuda.memory_allocated(device)
                    start = time.perf_counter()
                    run()  # first call: also the refusals and the --max-seconds guard
                    _sync(device)
                    first = time.perf_counter() - start
                    if first > args.max_seconds:
                        row.ms = 1e3 * first
                        row.note = f"one call, > {args.max_seconds:g} s: longer lengths skipped"
                    else:
                        seconds = report.median_seconds(
                            run, partial(_sync, device), args.repeats, warmup=args.warmup
                        )
                        row.ms = 1e3 * seconds
                    if device.type == "cuda":
                        peak = torch.cuda.max_memory_allocated(device) - before
                        row.peak_mib = peak / 2**20
                    row.saved_mib = saved_bytes(run) / 2**20
                except torch.cuda.OutOfMemoryError:
                    row.note = "out of memory: longer lengths skipped"
                except Exception as error:  # noqa: BLE001 - refusals (fnet causal, gmlp length)
                    row.note = f"{type(error).__name__}: {error}"
                print(f"  {row}", file=sys.stderr)
                del x, run, mixer
                if row.note and (row.note.endswith("skipped") or "Error" in row.note):
                    break
        if checkpoint is not None:
            checkpoint(rows)
    return rows


@dataclass
class DecodeRow:
    L: int
    aaren_us: float | None
    dense_us: float | None
    note: str = ""


def bench_decoding(args) -> list[DecodeRow]:
    """Aaren's step at prefix L (state carried through L tokens) and dense KV-cache attention."""
    import torch
    from torch.nn import functional as F

    device, dtype = torch.device(args.device), getattr(torch, args.dtype)
    mixer = build("aaren", args, dtype, max(args.decode_lengths))
    if isinstance(mixer, str):
        return [DecodeRow(args.decode_lengths[0], None, None, mixer)]
    mixer = mixer.to(device)
    head_dim = args.dim // args.heads
    rows = []
    with torch.no_grad():
        state = mixer.init_state(args.batch_size, dtype=dtype, device=device)
        tokens = torch.randn(args.batch_size, args.dim, device=device, dtype=dtype)
        done = 0
        for L in sorted(args.decode_lengths):
            for _ in range(L - done):  # carry the state to prefix L
                state, _ = mixer.step(state, tokens)
            done = L
            box = [state]

            def step(box=box):
                box[0], _ = mixer.step(box[0], tokens)

            aaren = report.median_seconds(step, partial(_sync, device), args.decode_repeats)
            done += args.decode_repeats + 2
            state = box[0]
            q = torch.randn(args.batch_size, args.heads, 1, head_dim, device=device, dtype=dtype)
            k = torch.randn(args.batch_size, args.heads, L, head_dim, device=device, dtype=dtype)
            v = torch.randn_like(k)

            def dense(q=q, k=k, v=v):
                F.scaled_dot_product_attention(q, k, v)

            dense_s = report.median_seconds(dense, partial(_sync, device), args.decode_repeats)
            rows.append(DecodeRow(L, 1e6 * aaren, 1e6 * dense_s))
            print(f"  decode {rows[-1]}", file=sys.stderr)
    return rows


def _fmt(x: float | None, spec: str = ".2f") -> str:
    return "—" if x is None else format(x, spec)


def exponent(rows: list[Row], field: str) -> float | None:
    """``log(v2 / v1) / log(L2 / L1)`` over the two longest lengths with a value."""
    points = [(r.L, getattr(r, field)) for r in rows if getattr(r, field)]
    if len(points) < 2:
        return None
    (l1, v1), (l2, v2) = points[-2], points[-1]
    return math.log(v2 / v1) / math.log(l2 / l1)


def crossing(rows: list[Row], dense: dict[int, Row]) -> str:
    """The shortest length from which the mixer is at least as fast as dense, to the end."""
    timed = [r for r in rows if r.ms and dense.get(r.L) and dense[r.L].ms]
    if not timed:
        return "—"
    start = None
    for r in timed:
        if r.ms <= dense[r.L].ms:
            start = r.L if start is None else start
        else:
            start = None
    last = timed[-1].L
    if start is None:
        return f"slower than dense up to {last}"
    return f"from {start} (measured to {last})"


def format_tables(rows: list[Row], decode: list[DecodeRow], args, header: str) -> str:
    lines = [header, ""]
    cuda = args.device == "cuda"
    for mode in args.modes:
        dense = {r.L: r for r in rows if r.mixer == "softmax" and r.mode == mode}
        lines += [f"## {mode.capitalize()}, forward + backward", ""]
        cols = (
            "| mixer | L | time (ms) | ratio to dense | saved for backward MiB | ratio to dense |"
        )
        sep = "|---|---:|---:|---:|---:|---:|"
        if cuda:
            cols += " peak CUDA MiB | ratio to dense |"
            sep += "---:|---:|"
        lines += [cols + " note |", sep + "---|"]
        for r in (r for r in rows if r.mode == mode):
            b = dense.get(r.L)
            t = r.ms / b.ms if b and b.ms and r.ms else None
            s = r.saved_mib / b.saved_mib if b and b.saved_mib and r.saved_mib else None
            line = (
                f"| {r.mixer} | {r.L} | {_fmt(r.ms)} | {_fmt(t)} | "
                f"{_fmt(r.saved_mib, '.1f')} | {_fmt(s)} |"
            )
            if cuda:
                p = r.peak_mib / b.peak_mib if b and b.peak_mib and r.peak_mib else None
                line += f" {_fmt(r.peak_mib, '.0f')} | {_fmt(p)} |"
            lines.append(f"{line} {r.note} |")
        lines += ["", f"Growth in length ({mode}): exponent over the two longest lengths", ""]
        lines += [
            "| mixer | time exponent | saved-memory exponent | as fast as dense |",
            "|---|---:|---:|---|",
        ]
        for name in dict.fromkeys(r.mixer for r in rows if r.mode == mode):
            mine = [r for r in rows if r.mixer == name and r.mode == mode]
            lines.append(
                f"| {name} | {_fmt(exponent(mine, 'ms'))} | "
                f"{_fmt(exponent(mine, 'saved_mib'))} | "
                f"{'(baseline)' if name == 'softmax' else crossing(mine, dense)} |"
            )
        lines.append("")
    lines += ["## Aaren decoding, µs per token (whole batch)", ""]
    lines += [
        "| prefix L | Aaren step | dense, 1 query over L cached keys | ratio | note |",
        "|---:|---:|---:|---:|---|",
    ]
    for d in decode:
        ratio = d.aaren_us / d.dense_us if d.aaren_us and d.dense_us else None
        lines.append(
            f"| {d.L} | {_fmt(d.aaren_us, '.1f')} | {_fmt(d.dense_us, '.1f')} | "
            f"{_fmt(ratio)} | {d.note} |"
        )
    lines += [
        "",
        "Ratios below 1 are faster / smaller than dense.  'saved for backward' counts "
        "each storage autograd keeps once (parameters included when an op saves them, "
        "e.g. gMLP's token-mixing weight).  Aaren's step includes its key/value and output "
        "projections; the dense column is the attention alone.",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch-size", "--batch", type=int, default=2)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument(
        "--lengths", type=int, nargs="+", default=[1024, 2048, 4096, 8192, 16384, 32768, 65536]
    )
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--mixers", nargs="+", default=None, help="default: every registered one")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--window", type=int, default=256, help="sliding_window, one-sided")
    parser.add_argument("--gmlp-max-length", type=int, default=8192)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=10.0)
    parser.add_argument("--decode-lengths", type=int, nargs="+", default=[1024, 4096, 16384, 65536])
    parser.add_argument("--decode-repeats", type=int, default=50)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    from sciml_seq.mixers import MIXERS

    report.set_threads(args.threads)
    args.lengths = sorted(args.lengths)
    if args.mixers is None:
        args.mixers = list(MIXERS)
    if "softmax" not in args.mixers:
        args.mixers = ["softmax", *args.mixers]
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    name = f"mixers_{args.device}.md"

    def header(partial: bool = False) -> str:
        return "\n".join(
            [
                f"# Sequence mixers: forward + backward against length, batch {args.batch_size}, "
                f"dim {args.dim}, heads {args.heads}, {args.dtype}",
                "",
                *report.header(__file__, argv, args.device, ("torch",)),
                f"median of {args.repeats} runs after {args.warmup} warm-up run(s); "
                f"sliding_window window={args.window} (one-sided), gmlp max_length = L (up to "
                f"{args.gmlp_max_length}), other mixers at their defaults; "
                f"decoding: median of {args.decode_repeats} steps"
                + (
                    " **(partial: written after each mixer; the run did not finish)**"
                    if partial
                    else ""
                ),
            ]
        )

    def checkpoint(rows: list[Row]) -> None:  # a run cut short still leaves its rows
        path = args.out or report.RESULTS / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(format_tables(rows, [], args, header(partial=True)) + "\n")

    rows = bench_scaling(args, checkpoint)
    decode = bench_decoding(args)
    return report.publish(format_tables(rows, decode, args, header()), args.out, name)


if __name__ == "__main__":
    main()
