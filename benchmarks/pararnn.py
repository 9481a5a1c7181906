"""ParaRNN: Newton iterations on the parallel scan against the sequential loop, vs length.

One diagonal-GRU layer (:class:`sciml_seq.torch.ParaRNN`) on a ``(batch, L,
d_input)`` input, for each length: the Newton iterations it took and its last
residual, the largest difference from the sequential loop, and the median time
of the forward pass (no gradients) and of forward + backward (loss
``sum(sin(h))``; Newton differentiated by the implicit function theorem, the
loop by autograd) for ``method="newton"`` and ``method="sequential"`` (the
baseline of the ratios), both in the same process.  Writes
``benchmarks/results/pararnn_<device>.md``::

    python benchmarks/pararnn.py --threads 1
    python benchmarks/pararnn.py --device cuda --lengths 1024 4096 16384 65536 \\
        --batch 16 --d-hidden 256
"""

from __future__ import annotations

import argparse
from pathlib import Path

import report


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--d-input", type=int, default=16)
    parser.add_argument("--d-hidden", type=int, default=64)
    parser.add_argument("--lengths", type=int, nargs="+", default=[64, 256, 1024, 4096])
    parser.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    report.set_threads(args.threads)

    import torch

    from sciml_seq.torch import ParaRNN

    device = torch.device(args.device)
    dtype = getattr(torch, args.dtype)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    torch.manual_seed(0)
    layers = {
        m: ParaRNN(args.d_input, args.d_hidden, method=m, check_finite=False, dtype=dtype).to(
            device
        )
        for m in ("newton", "sequential")
    }
    layers["sequential"].load_state_dict(layers["newton"].state_dict())
    rows = []
    for L in args.lengths:
        g = torch.Generator(device="cpu").manual_seed(L)
        x = torch.randn(args.batch, L, args.d_input, generator=g, dtype=dtype).to(device)
        with torch.no_grad():
            h_newton, stats = layers["newton"](x)
            h_seq, _ = layers["sequential"](x)
        diff = float((h_newton - h_seq).abs().max())
        times = {}
        for name, layer in layers.items():

            def forward(layer=layer, x=x) -> None:
                with torch.no_grad():
                    layer(x)

            def forward_backward(layer=layer, x=x) -> None:
                xg = x.detach().requires_grad_()
                h, _ = layer(xg)
                torch.sin(h).sum().backward()

            times[name] = (
                report.median_seconds(forward, sync, args.repeats, warmup=1),
                report.median_seconds(forward_backward, sync, args.repeats, warmup=1),
            )
        (nf, nb), (sf, sb) = times["newton"], times["sequential"]
        rows.append(
            f"| {L} | {stats.iterations} | {stats.residual:.1e} | {diff:.1e} | "
            f"{nf * 1e3:.1f} | {sf * 1e3:.1f} | {sf / nf:.2f} | "
            f"{nb * 1e3:.1f} | {sb * 1e3:.1f} | {sb / nb:.2f} |"
        )
        print(rows[-1], flush=True)

    device_tag = "cuda" if device.type == "cuda" else "cpu"
    lines = [
        f"# ParaRNN: Newton on the parallel scan vs the sequential loop ({device_tag})",
        "",
        *report.header(__file__, argv, args.device, ["torch", "numpy"]),
        "",
        f"Diagonal GRU, batch {args.batch}, d_input {args.d_input}, d_hidden "
        f"{args.d_hidden}, {args.dtype}; median of {args.repeats}.  Newton stops at "
        "max |h^k - h^(k-1)| <= tol (1e-5 in float32, 1e-10 in float64); "
        "'max diff' is the largest |h_newton - h_sequential|.  Ratios are "
        "sequential time / Newton time (> 1: Newton is faster).",
        "",
        "| L | Newton iterations | last residual | max diff | Newton fwd ms | loop fwd ms | "
        "fwd ratio | Newton fwd+bwd ms | loop fwd+bwd ms | fwd+bwd ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ]
    return report.publish("\n".join(lines), args.out, f"pararnn_{device_tag}.md")


if __name__ == "__main__":
    main()
