"""Time one ODE block (forward + backward, same weights) under every solver engine.

The block integrates a TimeMLP field ``features -> hidden -> features`` (time
concatenated) over [0, 1] with dopri5 at rtol = atol = ``--tol`` for a batch of
states, and the loss is the mean square of the final state.  Engines: our native
PyTorch engine (direct, checkpoint, backsolve with and without the seminorm, and on
CUDA the whole step captured in a CUDA graph), torchdiffeq (direct, backsolve),
torchode (direct), a raw torchdiffeq ``odeint``, the host engines SciPy (``RK45``)
and Julia (``DP5``; shown as unavailable, with the reason, where Julia cannot
start), and in JAX under ``jit``: the native JAX engine, diffrax (checkpoint,
backsolve) and a raw ``diffeqsolve``.  The JAX field is converted from the torch
field, so every row solves the same problem.

A second table solves a heterogeneous batch (every sample's field scaled by its own
rate, from 0.25 to 64: very different stiffness) with the native engine under
per-sample control and under batch control (one step size for the batch, its error
measured over the whole batch, as torchdiffeq), and counts the steps; the largest
relative error of a sample's final state against a float64 solve at 1e-5 times the
tolerance shows what each control buys.

Prints both tables (median of ``--repeats`` timed runs after warm-up; ratios against
torchdiffeq-direct and against diffrax-checkpoint measured in the same process) and
writes them with the command to ``benchmarks/results/solvers_<device>.md``.

    python benchmarks/solvers.py --device cpu --threads 1
    python benchmarks/solvers.py --device cuda
"""

from __future__ import annotations

import argparse
import copy
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import report

#: Distributions whose versions go into the results header.
PACKAGES = ("torch", "torchdiffeq", "torchode", "jax", "diffrax", "equinox", "scipy", "juliacall")
BASELINE = ("torchdiffeq", "direct")
DIFFRAX = ("diffrax (jit)", "checkpoint")


@dataclass
class Row:
    engine: str
    adjoint: str
    ms: float
    nfe_forward: float  # mean per sample
    nfe_batch: float | None  # calls of the batched field
    nfe_backward: float | None
    peak_mib: float | None
    note: str = ""


def _sync_of(device):
    import torch

    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def _peak(device, reset: bool = False) -> float | None:
    import torch

    if device.type != "cuda":
        return None
    if reset:
        torch.cuda.reset_peak_memory_stats()
        return None
    return torch.cuda.max_memory_allocated() / 2**20


TORCH_CONFIGS = [
    # (engine, adjoint, extra options, note)
    ("native", "direct", {}, "per-sample steps"),
    ("native", "checkpoint", {}, "per-sample steps; recomputes each attempt"),
    ("native", "backsolve", {}, "per-sample forward; the batch backward as one system"),
    ("native", "backsolve", {"seminorm": True}, "as above, seminorm (Kidger et al. 2021)"),
    ("torchdiffeq", "direct", {}, "one step size per batch"),
    ("torchdiffeq", "backsolve", {}, "one step size per batch"),
    ("torchode", "direct", {}, "per-sample steps"),
]


def bench_torch(args, field, h0) -> list[Row]:

    from sciml_seq.torch import ODEBlock, available_methods

    device = h0.device
    sync = _sync_of(device)
    rows = []
    for engine, adjoint, extra, note in TORCH_CONFIGS:
        if engine == "torchode" and "dopri5" not in _maybe(
            lambda: available_methods("torchode"), ()
        ):
            continue
        block = ODEBlock(field, method="dopri5", rtol=args.tol, atol=args.tol, adjoint=adjoint,
                         engine=engine, **extra)

        def run(block=block) -> None:
            field.zero_grad(set_to_none=True)
            block(h0).pow(2).mean().backward()

        _peak(device, reset=True)
        ms = 1e3 * report.median_seconds(run, sync, args.repeats)
        stats = block.last_stats
        name = engine + (" seminorm" if extra.get("seminorm") else "")
        rows.append(Row(name, adjoint, ms, stats.mean("nfe_forward"), stats.nfe_batch,
                        stats.nfe_backward, _peak(device), note))
        if (engine, adjoint) == ("native", "direct"):
            attempts = int(stats.n_steps.max())
    if device.type == "cuda":
        rows.append(_bench_cuda_graph(args, field, h0, attempts))
    rows.append(_bench_raw_torchdiffeq(args, field, h0, sync))
    rows += [_bench_host(args, field, h0, sync, engine) for engine in _HOST_ROWS]
    return rows


def _bench_cuda_graph(args, field, h0, attempts: int) -> Row:
    """The native engine's forward + backward captured in one CUDA graph and replayed.

    ``check_every=None`` runs exactly ``max_steps`` attempts with no host read; the
    run sets ``max_steps`` to the attempts the eager solve took (finished samples
    ride along unchanged), so the graph does the eager run's work.
    """
    import torch

    from sciml_seq.torch import ODEBlock

    block = ODEBlock(field, method="dopri5", rtol=args.tol, atol=args.tol, max_steps=attempts,
                     engine_options={"check_every": None})
    static = h0.clone()

    def step() -> None:
        for p in field.parameters():
            p.grad = None
        block(static).pow(2).mean().backward()

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        step()
    _peak(h0.device, reset=True)
    ms = 1e3 * report.median_seconds(graph.replay, torch.cuda.synchronize, args.repeats)
    stats = block.last_stats
    return Row("native CUDA graph", "direct", ms, stats.mean("nfe_forward"), stats.nfe_batch,
               None, _peak(h0.device),
               f"{attempts} attempts captured (check_every=None); backward counts not kept")


#: Host engine -> its row name (the method dopri5 maps to there).
_HOST_ROWS = {"scipy": "scipy (RK45)", "julia": "julia (DP5)"}


def _bench_host(args, field, h0, sync, engine: str) -> Row:
    """One host engine (:mod:`sciml_seq.host`) through the torch ODEBlock, dopri5."""
    from sciml_seq.torch import ODEBlock

    name = _HOST_ROWS[engine]
    nan = float("nan")
    if engine == "julia":
        from sciml_seq.julia import julia_status

        status = julia_status(run_version=False)
        if not status.ok:
            return Row(name, "interpolating", nan, nan, None, None, None,
                       f"unavailable: {status.found_by}")
    block = ODEBlock(field, method="dopri5", rtol=args.tol, atol=args.tol, engine=engine)

    def run() -> None:
        field.zero_grad(set_to_none=True)
        block(h0).pow(2).mean().backward()

    ms = 1e3 * report.median_seconds(run, sync, args.host_repeats)
    stats = block.last_stats
    return Row(name, "interpolating", ms, stats.mean("nfe_forward"), stats.nfe_batch,
               stats.nfe_backward, None,
               "float64 on the host; one step size per batch; interpolating adjoint; "
               f"median of {args.host_repeats}")


def _bench_raw_torchdiffeq(args, field, h0, sync) -> Row:
    """torchdiffeq.odeint called directly: the overhead baseline of our front end."""
    import torch
    import torchdiffeq

    ts = torch.tensor([0.0, 1.0], device=h0.device)

    def f(t, y):
        return field(t.expand(y.shape[0]), y)

    def run() -> None:
        field.zero_grad(set_to_none=True)
        ys = torchdiffeq.odeint(f, h0, ts, rtol=args.tol, atol=args.tol, method="dopri5")
        ys[-1].pow(2).mean().backward()

    ms = 1e3 * report.median_seconds(run, sync, args.repeats)
    nan = float("nan")
    return Row("torchdiffeq (raw odeint)", "direct", ms, nan, None, None, None,
               "no sciml_seq wrapper")


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
    for engine, adjoint, note in (
        ("native", "checkpoint", "per-sample steps (vmap)"),
        ("diffrax", "checkpoint", "per-sample steps (vmap)"),
        ("diffrax", "backsolve", "per-sample steps (vmap)"),
    ):
        block = ODEBlock(field, method="dopri5", rtol=args.tol, atol=args.tol, adjoint=adjoint,
                         engine=engine)

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
        rows.append(Row(f"{engine} (jit)", adjoint, ms, stats.mean("nfe_forward"),
                        stats.batch_evaluations(), None, None, note))
    rows.append(_bench_raw_diffrax(args, field, h0))
    return rows


def _bench_raw_diffrax(args, field, h0) -> Row:
    """diffrax.diffeqsolve called directly: the overhead baseline of our front end."""
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
                    term, diffrax.Dopri5(), 0.0, 1.0, None, h, args=field,
                    stepsize_controller=controller, max_steps=4096,
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
    return Row("diffrax (raw diffeqsolve, jit)", "checkpoint", ms,
               float(np.mean(1 + 6 * steps)), float(1 + 6 * steps.max()), None, None,
               "no sciml_seq wrapper; dt0 from diffrax; NFE from 1 + 6 steps")


def bench_heterogeneous(args, device) -> list[dict]:
    """Per-sample vs batch control of the native engine on samples of very different stiffness."""
    import torch

    from sciml_seq.torch import ODEBlock, TimeMLP

    torch.manual_seed(1)
    mlp = TimeMLP(args.features, args.hidden, depth=1).to(device)
    rates = torch.logspace(np.log10(0.25), np.log10(64.0), args.batch_size, device=device)

    class Scaled(torch.nn.Module):
        """Sample b's field is rates[b] times the MLP: its stiffness scales with it."""

        def __init__(self, mlp, rates) -> None:
            super().__init__()
            self.mlp, self.rates = mlp, rates

        def forward(self, t, y):
            return self.rates[:, None] * self.mlp(t, y)

    field = Scaled(mlp, rates)
    h0 = torch.randn(args.batch_size, args.features, device=device)
    sync = _sync_of(device)
    reference = Scaled(copy.deepcopy(mlp).double(), rates.double())
    with torch.no_grad():  # float64, at 1e-5 times the benchmark's tolerances
        exact = ODEBlock(reference, method="dopri5", rtol=1e-5 * args.tol,
                         atol=1e-5 * args.tol)(h0.double())
    out = []
    for control in ("sample", "batch"):
        block = ODEBlock(field, method="dopri5", rtol=args.tol, atol=args.tol,
                         engine_options={"control": control})

        def run(block=block) -> None:
            field.zero_grad(set_to_none=True)
            block(h0).pow(2).mean().backward()

        ms = 1e3 * report.median_seconds(run, sync, args.repeats)
        stats = block.last_stats
        with torch.no_grad():
            error = (block(h0).double() - exact).norm(dim=1) / exact.norm(dim=1)
        out.append(dict(control=control, ms=ms, total=int(stats.n_steps.sum()),
                        slowest=int(stats.n_steps.max()), nfe_batch=stats.nfe_batch,
                        error=float(error.max())))
    return out


def _maybe(fn, default):
    try:
        return fn()
    except ImportError:
        return default


def _fmt(x, spec: str) -> str:
    return "n/r" if x is None or (isinstance(x, float) and np.isnan(x)) else format(x, spec)


def format_table(rows: list[Row], hetero: list[dict], header: str) -> str:
    base = next(r.ms for r in rows if (r.engine, r.adjoint) == BASELINE)
    diffrax = next((r.ms for r in rows if (r.engine, r.adjoint) == DIFFRAX), None)
    lines = [
        header,
        "",
        "| engine | adjoint | time fwd+bwd (ms) | ratio to torchdiffeq-direct | ratio to diffrax "
        "| NFE fwd per sample | batched calls | NFE bwd | peak GPU MiB | note |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        timed = not np.isnan(r.ms)
        ms = f"{r.ms:.2f}" if timed else "—"
        ratio = f"{r.ms / base:.2f}" if timed else "—"
        vs_diffrax = f"{r.ms / diffrax:.2f}" if timed and diffrax else "—"
        peak = "" if r.peak_mib is None else f"{r.peak_mib:.0f}"
        lines.append(
            f"| {r.engine} | {r.adjoint} | {ms} | {ratio} | {vs_diffrax} "
            f"| {_fmt(r.nfe_forward, '.1f')} | {_fmt(r.nfe_batch, '.0f')} "
            f"| {_fmt(r.nfe_backward, '.0f')} | {peak} | {r.note} |"
        )
    lines += [
        "",
        "n/r: not reported (XLA runs JAX's backward pass; raw calls have no counter).",
        "",
        "Heterogeneous batch (sample b's field scaled by its rate, 0.25 to 64 log-spaced): the "
        "native engine with one step size per sample and with one for the whole batch.",
        "",
        "| control | total steps (sum over samples) | slowest sample's steps | batched calls "
        "| time fwd+bwd (ms) | largest relative error | total steps vs batch control |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    batch_total = next(h["total"] for h in hetero if h["control"] == "batch")
    for h in hetero:
        lines.append(
            f"| {h['control']} | {h['total']} | {h['slowest']} | {h['nfe_batch']} "
            f"| {h['ms']:.2f} | {h['error']:.1e} | {batch_total / h['total']:.2f}x fewer |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--batch-size", "--batch", type=int, default=512)
    parser.add_argument("--features", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--tol", type=float, default=1e-5)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--host-repeats", type=int, default=3, help="timed runs per host engine")
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
    shape = (args.batch_size, args.features)
    h0_np = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    h0 = torch.as_tensor(h0_np, device=args.device)

    rows = bench_torch(args, field, h0)
    if not args.skip_jax:
        rows += bench_jax(args, field.cpu(), h0_np)
        field.to(args.device)
    hetero = bench_heterogeneous(args, h0.device)
    header = "\n".join(
        [
            f"# ODE block forward+backward: dopri5, rtol=atol={args.tol:g}, max_steps 4096, "
            f"batch {args.batch_size}, TimeMLP {args.features}->{args.hidden}->{args.features}, "
            "float32",
            "",
            *report.header(__file__, argv, args.device, PACKAGES),
            f"median of {args.repeats} runs after 2 warm-up runs",
        ]
    )
    return report.publish(format_table(rows, hetero, header), args.out, f"solvers_{args.device}.md")


if __name__ == "__main__":
    main()
