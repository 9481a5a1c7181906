"""Tokens/s (forward + backward) of the discrete and the ODE transformer encoder.

Rows, all with the parameters of ``--layers`` untied blocks of width ``--dim``
(the one-block encoders get the width :func:`sciml_seq.transformer.width_for_parameters`
picks): the untied stack (baseline), the weight-tied stack of ``--layers``
steps, the ODE encoder with Euler at ``--layers`` steps (the same
computation as the tied stack, through the solver front end), and the ODE
encoder with dopri5 at ``--tol``; for reference also the tied stack at the
untied width (a quarter of the parameters for four layers: the same cost per
evaluation as an untied block).  Input ``(batch, length, dim)`` with real
positions and RoPE, no padding mask, so on CUDA ``scaled_dot_product_attention``
may take a fused kernel (``--sdpa flash`` forces FlashAttention, which needs
``--amp`` on CUDA; ``--sdpa efficient`` the memory-efficient kernel, CUDA
only).  A forced kernel is tried first at every row's head size and dtype, and
the script stops with the reason when PyTorch cannot run it (PyTorch raises
rather than fall back inside ``sdpa_kernel``).  The loss is the
mean square of the output.  Median of ``--repeats`` timed runs after warm-up;
ratio to the untied stack in the same process.  An encoder that fails gets
a row with the error (traceback on stderr) and the others still run.  Writes
the table with the command to
``benchmarks/results/encoder_throughput_<device>.md``.

    python benchmarks/encoder_throughput.py --device cpu
    python benchmarks/encoder_throughput.py --device cuda --amp --sdpa flash \
        --batch 32 --length 1024 --dim 256
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import traceback
from pathlib import Path

import report


def sdpa_context(name: str):
    """``sdpa_kernel`` restricted to the backend ``name``; ``"auto"``: PyTorch's choice."""
    if name == "auto":
        return contextlib.nullcontext()
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backend = {
        "flash": SDPBackend.FLASH_ATTENTION,
        "efficient": SDPBackend.EFFICIENT_ATTENTION,
        "math": SDPBackend.MATH,
    }[name]
    return sdpa_kernel(backend)


def check_sdpa(name: str, device, amp: bool, heads: int, head_dims: list[int]) -> str | None:
    """Why the forced backend ``name`` cannot run the encoders' attention, or ``None``.

    Runs one small ``scaled_dot_product_attention`` (no mask, as the encoders
    call it) per head size under the run's autocast and ``sdpa_kernel``
    context, forward and backward.
    """
    import torch
    import torch.nn.functional as F

    if name == "auto":
        return None
    if name == "flash" and device.type == "cuda" and not amp:
        return "FlashAttention on CUDA needs float16/bfloat16 inputs: add --amp"
    for head_dim in sorted(set(head_dims)):
        q, k, v = (
            torch.randn(2, heads, 16, head_dim, device=device, requires_grad=True) for _ in range(3)
        )
        try:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp), sdpa_context(name):
                out = F.scaled_dot_product_attention(q, k, v)
            out.float().sum().backward()
        except RuntimeError as error:
            reason = str(error).strip().splitlines()[0]
            dtype = "bfloat16 autocast" if amp else "float32"
            return f"no {name} kernel for head size {head_dim}, {dtype}, on {device} ({reason})"
    return None


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", "--batch", type=int, default=8)
    parser.add_argument("--length", type=int, default=128)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--heads", type=int, default=4)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--tol", type=float, default=1e-3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast (CUDA)")
    parser.add_argument("--sdpa", default="auto", choices=["auto", "flash", "efficient", "math"])
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (torch default)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    report.set_threads(args.threads)

    from sciml_seq.torch.transformer import TransformerEncoder
    from sciml_seq.transformer import block_parameters, width_for_parameters

    device = torch.device(args.device)
    cuda = device.type == "cuda"

    def sync():
        if cuda:
            torch.cuda.synchronize()

    target = args.layers * block_parameters(args.dim, 2 * args.dim)
    wide = width_for_parameters(target, args.heads, 2.0, even_head=True)
    common = dict(encoding="rotary", encoding_options=dict(base=100.0))
    rows = {
        f"untied, {args.layers} blocks": (
            args.dim, dict(depth_mode="untied", n_layers=args.layers)),
        f"tied, {args.layers} steps": (wide, dict(depth_mode="tied", n_layers=args.layers)),
        f"tied, {args.layers} steps, untied width (1/{args.layers} params)": (
            args.dim, dict(depth_mode="tied", n_layers=args.layers)),
        f"ODE, euler {args.layers} steps": (
            wide, dict(depth_mode="ode", method="euler", n_steps=args.layers)),
        f"ODE, dopri5 tol {args.tol:g}": (
            wide, dict(depth_mode="ode", method="dopri5", rtol=args.tol, atol=args.tol)),
    }  # fmt: skip
    problem = check_sdpa(
        args.sdpa, device, args.amp, args.heads, [dim // args.heads for dim, _ in rows.values()]
    )
    if problem:
        parser.error(f"--sdpa {args.sdpa}: {problem}")
    torch.manual_seed(0)
    tokens = args.batch_size * args.length
    results = []
    for name, (dim, options) in rows.items():
        model = TransformerEncoder(dim, args.heads, mlp_hidden=2 * dim, **common, **options)
        model = model.to(device)
        params = sum(p.numel() for p in model.layers.parameters())
        x = torch.randn(args.batch_size, args.length, dim, device=device)
        positions = torch.cumsum(torch.rand(args.batch_size, args.length, device=device), dim=1)
        autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.amp)

        def run(model=model, x=x, positions=positions, autocast=autocast):
            with autocast, sdpa_context(args.sdpa):
                loss = model(x, positions).float().pow(2).mean()
            loss.backward()

        if cuda:
            torch.cuda.reset_peak_memory_stats()
        try:
            ms = 1e3 * report.median_seconds(run, sync, args.repeats)
        except Exception as error:  # one failing encoder must not cost the other rows
            traceback.print_exc()
            reason = f"failed: {type(error).__name__}: {str(error).splitlines()[0]}"
            results.append((name, dim, params, None, None, None, None, reason))
            continue
        finally:
            del run  # it holds the model: freed before the next row's peak is measured
        peak = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
        stats = model.last_stats
        nfe_forward = stats.mean("nfe_forward")
        results.append((name, dim, params, ms, f"{nfe_forward:g}", stats.nfe_backward, peak, ""))
        print(f"{name}: {ms:.2f} ms", file=sys.stderr, flush=True)
        del model

    base = results[0][3]
    lines = [
        "# Transformer encoder throughput, forward + backward: discrete vs ODE at equal parameters",
        "",
        *report.header(__file__, argv, args.device, ("torch",)),
        f"batch {args.batch_size} x length {args.length}, {args.heads} heads, "
        "RoPE at real positions, "
        f"{'bfloat16 autocast' if args.amp else 'float32'}, SDPA backend {args.sdpa}; "
        f"median of {args.repeats} runs after 2 warm-up runs",
        "",
        "| encoder | width | block params | time fwd+bwd (ms) | tokens/s | ratio to untied "
        "| NFE fwd | NFE bwd | peak GPU MiB | note |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for name, dim, params, ms, nfe_f, nfe_b, peak, note in results:
        if ms is None:
            lines.append(f"| {name} | {dim} | {params} | — | — | — | — | — | | {note} |")
            continue
        ratio = f"{ms / base:.2f}" if base else "—"
        lines.append(
            f"| {name} | {dim} | {params} | {ms:.2f} | {tokens / (ms / 1e3):,.0f} | "
            f"{ratio} | {nfe_f} | {nfe_b} | {'' if peak is None else f'{peak:.0f}'} | |"
        )
    lines += [
        "",
        "Equal parameters make the one-block encoders wider (the width column), so each",
        "of their evaluations costs more than an untied block's.",
        "NFE bwd of the ODE rows is 0: backpropagation goes through the solver's",
        "operations (adjoint='direct'), not through a backward solve; the NFE of the",
        "dopri5 row depends on the (random, untrained) weights.",
    ]
    return report.publish("\n".join(lines), args.out, f"encoder_throughput_{device.type}.md")


if __name__ == "__main__":
    main()
