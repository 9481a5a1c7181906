"""Time PDE data generation (``sciml_seq.data.pde.generate``) for every dataset.

For each dataset at its default grid, times and substeps: the first call
(JAX compilation included) and the median of ``--repeats`` further calls with
the same settings (compiled rollout reused), for ``--n`` trajectories in one
chunk; trajectories per second; stored MiB per trajectory.

A second table checks the KdV solver choice on the soliton
``-c/2 sech^2(sqrt(c)/2 (x - c t - x0))`` (c = 1, L = 50, N = 128, t = 5):
exponax's ``KortewegDeVries`` (ETDRK2 and ETDRK4) against the numpy ETDRK4 of
:mod:`sciml_seq.math.spectral` at the same step sizes, in the same process
(max error and time; ratio to the numpy stepper).  exponax 0.2.0 takes the
real part of its ETDRK coefficients, so its dispersive step is first order.

    python benchmarks/pde_data.py --device cpu
    python benchmarks/pde_data.py --device cuda
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np
import report


def main(argv: list[str] | None = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--n", type=int, default=16, help="trajectories per call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--names", nargs="*", default=None)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    os.environ["JAX_PLATFORMS"] = "cpu" if args.device == "cpu" else "cuda"

    import jax

    from sciml_seq.data.pde import EQUATIONS, generate

    names = args.names or list(EQUATIONS)
    rows = []
    for name in names:
        eq = EQUATIONS[name]
        start = time.perf_counter()
        traj = generate(name, args.n, chunk_size=args.n)
        cold = time.perf_counter() - start
        warm = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            generate(name, args.n, chunk_size=args.n, seed=1)
            warm.append(time.perf_counter() - start)
        median = statistics.median(warm)
        device = "cpu (numpy, float64)" if eq.backend == "numpy" else jax.default_backend()
        rows.append(
            f"| {name} | {device} | {'x'.join([str(eq.resolution)] * eq.ndim)} | "
            f"{eq.n_times} | {eq.substeps} | {cold:.2f} | {median:.2f} | "
            f"{args.n / median:.1f} | {traj.u[0].nbytes / 2**20:.2f} |"
        )
        print(rows[-1], flush=True)

    kdv_rows = kdv_comparison()
    text = "\n".join(
        [
            f"# PDE data generation: {args.n} trajectories per call, default sizes",
            "",
            *report.header(__file__, argv, args.device, ("numpy", "jax", "equinox", "exponax")),
            f"JAX backend {jax.default_backend()} (on a shared machine timings are upper bounds)  ",
            f"cold: first call incl. JAX compile; warm: median of {args.repeats} calls",
            "",
            "| dataset | device | grid | snapshots | substeps | cold (s) | warm (s) "
            "| trajectories/s (warm) | MiB per trajectory |",
            "|---|---|---|---:|---:|---:|---:|---:|---:|",
            *rows,
            "",
            "## KdV soliton (c = 1, L = 50, N = 128, t = 5): max error and time",
            "",
            "| stepper | dt | max error | time (s) | error ratio to numpy ETDRK4 |",
            "|---|---:|---:|---:|---:|",
            *kdv_rows,
        ]
    )
    return report.publish(text, args.out, f"pde_data_{args.device}.md")


def kdv_comparison() -> list[str]:
    """exponax KortewegDeVries vs sciml_seq.math.spectral.kdv_1d on the soliton."""
    import exponax
    import jax
    import jax.numpy as jnp

    from sciml_seq.math.spectral import kdv_1d

    c, length, n, x0, t_end = 1.0, 50.0, 128, 20.0, 5.0
    x = np.arange(n) * length / n

    def exact(t: float) -> np.ndarray:
        return -c / 2 / np.cosh(np.sqrt(c) / 2 * (x - c * t - x0)) ** 2

    rows = []
    for dt in (0.05, 0.025, 0.0125):
        steps = round(t_end / dt)
        stepper = kdv_1d(length, n, dt, hyper_diffusivity=0.0)
        start = time.perf_counter()
        u_hat = np.fft.rfft(exact(0.0))
        for _ in range(steps):
            u_hat = stepper.step(u_hat)
        ours_time = time.perf_counter() - start
        ours = np.abs(np.fft.irfft(u_hat, n) - exact(t_end)).max()
        rows.append(
            f"| sciml_seq numpy ETDRK4 (float64) | {dt} | {ours:.2e} | {ours_time:.3f} | 1 |"
        )
        for order in (2, 4):
            step = exponax.stepper.KortewegDeVries(
                1, length, n, dt, hyper_diffusivity=0.0, order=order
            )
            run = jax.jit(exponax.repeat(step, steps))
            # JAX's default float: float32, or float64 where jax_enable_x64 is on
            # (exponax then steps in float64 and refuses a float32 start)
            u0 = jnp.asarray(exact(0.0)[None], dtype=jnp.zeros(()).dtype)
            run(u0).block_until_ready()  # compile
            start = time.perf_counter()
            u = np.asarray(run(u0).block_until_ready())
            elapsed = time.perf_counter() - start
            error = np.abs(u[0] - exact(t_end)).max()
            rows.append(
                f"| exponax KortewegDeVries ETDRK{order} ({u0.dtype}) | {dt} | {error:.2e} | "
                f"{elapsed:.3f} | {error / ours:.0f} |"
            )
    return rows


if __name__ == "__main__":
    main()
