"""Time one ODE block (forward + backward, same weights) under every solver backend.

The block integrates a TimeMLP field ``features -> hidden -> features`` (time
concatenated) over [0, 1] with dopri5 at rtol = atol = ``--tol`` for a batch of
states, and the loss is the mean square of the final state.  Backends:
torchdiffeq (direct backprop and adjoint), torchode (direct, per-sample steps),
diffrax under ``jax.jit`` (recursive checkpointing and backsolve adjoint), and
the host backends behind the torch front end: SciPy (``RK45``, the
Dormand-Prince pair, float64 on the CPU, continuous adjoint) and Julia
(``DP5`` from OrdinaryDiffEq, InterpolatingAdjoint), which is shown as
unavailable, with the reason, where Julia cannot start.
The JAX field is converted from the torch field, so every row solves the same
problem.  Prints a table (median of ``--repeats`` timed runs after warm-up;
ratio against torchdiffeq-direct in the same process) and writes it with the
command to ``benchmarks/results/solvers_<device>.md``.

    python benchmarks/solvers.py --device cpu
    python benchmarks/solvers.py --device cuda
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import report

#: Distributions whose versions go into the results header.
PACKAGES = ("torch", "torchdiffeq", "torchode", "jax", "diffrax", "equinox", "scipy", "juliacall")


@dataclass
class Row:
    backend: str
    adjoint: str
    ms: float
    nfe_forward: float
    nfe_backward: float | None
    peak_mib: float | None
    note: str = ""


def bench_torch(args, field, h0) -> list[Row]:
    import torch

    from sciml_seq.torch import ODEBlock, available_methods

    device = h0.device
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    configs = [("torchdiffeq", "direct"), ("torchdiffeq", "backsolve")]
    if "dopri5" in _maybe(lambda: available_methods("torchode"), ()):
        configs.append(("torchode", "direct"))
    rows = []
    for backend, adjoint in configs:
        block = ODEBlock(
            field,
            method="dopri5",
            rtol=args.tol,
            atol=args.tol,
            adjoint=adjoint,
            backend=backend,
        )

        def run(block=block) -> None:
            field.zero_grad(set_to_none=True)
            block(h0).pow(2).mean().backward()

        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        ms = 1e3 * report.median_seconds(run, sync, args.repeats)
        stats = block.last_stats
        peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else None
        rows.append(
            Row(
                backend,
                adjoint,
                ms,
                _mean(stats.nfe_forward),
                _mean(stats.nfe_backward),
                peak,
                note="per-sample steps" if backend == "torchode" else "one step size per batch",
            )
        )
    rows.append(_bench_raw_torchdiffeq(args, field, h0, sync))
    rows += [_bench_host(args, field, h0, sync, backend) for backend in _HOST_ROWS]
    return rows


#: Host backend -> its row name (the method dopri5 maps to there).
_HOST_ROWS = {"scipy": "scipy (RK45)", "julia": "julia (DP5)"}


def _bench_host(args, field, h0, sync, backend: str) -> Row:
    """One host backend (:mod:`sciml_seq.host`) through the torch ODEBlock, dopri5."""
    from sciml_seq.torch import ODEBlock

    name = _HOST_ROWS[backend]
    if backend == "julia":
        from sciml_seq.julia import julia_status

        status = julia_status(run_version=False)
        if not status.ok:
            nan = float("nan")
            return Row(
                name, "interpolating", nan, nan, None, None, f"unavailable: {status.found_by}"
            )
    block = ODEBlock(
        field,
        method="dopri5",
        rtol=args.tol,
        atol=args.tol,
        adjoint="interpolating",
        backend=backend,
    )

    def run() -> None:
        field.zero_grad(set_to_none=True)
        block(h0).pow(2).mean().backward()

    ms = 1e3 * report.median_seconds(run, sync, args.host_repeats)
    stats = block.last_stats
    return Row(
        name,
        "interpolating",
        ms,
        _mean(stats.nfe_forward),
        _mean(stats.nfe_backward),
        None,
        note="float64 on the host; one step size per batch; interpolating adjoint; "
        f"median of {args.host_repeats}",
    )


def _bench_raw_torchdiffeq(args, field, h0, sync) -> Row:
    """torchdiffeq.odeint called directly: the overhead baseline for our front end."""
    import torch
    import torchdiffeq

    ts = torch.tensor([0.0, 1.0], device=h0.device)

    def f(t, y):
        return field(t.expand(y.shape[0]), y)

    def run() -> None:
        field.zero_grad(set_to_none=True)
        ys = torchdiffeq.odeint(f, h0, ts, rtol=args.tol, atol=args.tol, method="dopri5")
        ys[-1].pow(2).mean().backward()

    return Row(
        "torchdiffeq (raw odeint)",
        "direct",
        1e3 * report.median_seconds(run, sync, args.repeats),
        float("nan"),
        None,
        None,
        note="no sciml_seq wrapper",
    )


def bench_jax(args, torch_field, h0_np) -> list[Row]:
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    from sciml_seq.convert import torch_to_jax
    from sciml_seq.jax import ODEBlock, TimeMLP

    jax.config.update("jax_default_matmul_precision", "highest")
    template = TimeMLP(args.features, args.hidden, depth=1, key=jax.random.PRNGKey(0))
    field = torch_to_jax(torch_field, template)
    h0 = jnp.asarray(h0_np)
    rows = []
    for adjoint in ("checkpoint", "backsolve"):
        block = ODEBlock(field, method="dopri5", rtol=args.tol, atol=args.tol, adjoint=adjoint)

        @eqx.filter_jit
        def loss_and_grad(block, h0):
            def loss(block):
                out = jax.vmap(lambda h: block.solve(h))(h0)
                return jnp.mean(out.ys**2), out.stats

            (value, stats), grads = eqx.filter_value_and_grad(loss, has_aux=True)(block)
            return value, stats, grads

        result: dict = {}

        def run(block=block, result=result) -> None:
            result["out"] = loss_and_grad(block, h0)

        def sync(result=result) -> None:
            jax.block_until_ready(result["out"])

        ms = 1e3 * report.median_seconds(run, sync, args.repeats)
        stats = result["out"][1]
        rows.append(
            Row(
                "diffrax (jit)",
                adjoint,
                ms,
                _mean(stats.nfe_forward),
                None,
                None,
                note="per-sample steps (vmap)",
            )
        )
    rows.append(_bench_raw_diffrax(args, field, h0))
    return rows


def _bench_raw_diffrax(args, field, h0) -> Row:
    """diffrax.diffeqsolve called directly: the overhead baseline for our front end."""
    import diffrax
    import equinox as eqx
    import jax
    import jax.numpy as jnp

    term = diffrax.ODETerm(lambda t, y, field: field(t, y))
    controller = diffrax.PIDController(rtol=args.tol, atol=args.tol)

    @eqx.filter_jit
    def loss_and_grad(field, h0):
        def loss(field):
            def one(h):
                sol = diffrax.diffeqsolve(
                    term,
                    diffrax.Dopri5(),
                    0.0,
                    1.0,
                    None,
                    h,
                    args=field,
                    stepsize_controller=controller,
                    max_steps=4096,
                )
                return sol.ys[-1], sol.stats["num_steps"]

            ys, steps = jax.vmap(one)(h0)
            return jnp.mean(ys**2), steps

        return eqx.filter_value_and_grad(loss, has_aux=True)(field)

    result: dict = {}

    def run() -> None:
        result["out"] = loss_and_grad(field, h0)

    def sync() -> None:
        jax.block_until_ready(result["out"])

    ms = 1e3 * report.median_seconds(run, sync, args.repeats)
    steps = np.asarray(result["out"][0][1])
    return Row(
        "diffrax (raw diffeqsolve, jit)",
        "checkpoint",
        ms,
        float(np.mean(1 + 6 * steps)),
        None,
        None,
        note="no sciml_seq wrapper; NFE from 1 + 6 steps",
    )


def _mean(x) -> float | None:
    return None if x is None else float(np.mean(np.asarray(x)))


def _maybe(fn, default):
    try:
        return fn()
    except ImportError:
        return default


def format_table(rows: list[Row], header: str) -> str:
    base = rows[0].ms
    lines = [
        header,
        "",
        "| backend | adjoint | time fwd+bwd (ms) | ratio to torchdiffeq-direct | NFE fwd | NFE bwd "
        "| peak GPU MiB | note |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        nfe_b = "n/r" if r.nfe_backward is None else f"{r.nfe_backward:.1f}"
        nfe_f = "n/r" if np.isnan(r.nfe_forward) else f"{r.nfe_forward:.1f}"
        peak = "" if r.peak_mib is None else f"{r.peak_mib:.0f}"
        ms, ratio = ("—", "—") if np.isnan(r.ms) else (f"{r.ms:.2f}", f"{r.ms / base:.2f}")
        lines.append(
            f"| {r.backend} | {r.adjoint} | {ms} | {ratio} | {nfe_f} "
            f"| {nfe_b} | {peak} | {r.note} |"
        )
    lines.append("")
    lines.append("n/r: not reported (diffrax does not report backward-pass evaluations; raw calls")
    lines.append("have no counter).")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--tol", type=float, default=1e-5)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--host-repeats", type=int, default=3, help="timed runs per host backend")
    parser.add_argument("--skip-jax", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)

    import torch

    from sciml_seq.torch import TimeMLP

    report.set_threads(args.threads)

    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(0)
    field = TimeMLP(args.features, args.hidden, depth=1).to(args.device)
    h0_np = np.random.default_rng(0).standard_normal((args.batch, args.features)).astype(np.float32)
    h0 = torch.as_tensor(h0_np, device=args.device)

    rows = bench_torch(args, field, h0)
    if not args.skip_jax:
        rows += bench_jax(args, field.cpu(), h0_np)
        field.to(args.device)
    header = "\n".join(
        [
            f"# ODE block forward+backward: dopri5, rtol=atol={args.tol:g}, max_steps 4096, "
            f"batch {args.batch}, TimeMLP {args.features}->{args.hidden}->{args.features}, "
            "float32",
            "",
            *report.header(__file__, argv, args.device, PACKAGES),
            f"median of {args.repeats} runs after 2 warm-up runs",
        ]
    )
    return report.publish(format_table(rows, header), args.out, f"solvers_{args.device}.md")


if __name__ == "__main__":
    main()
