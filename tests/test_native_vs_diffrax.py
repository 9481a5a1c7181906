"""The native PyTorch engine steps as diffrax does: same attempts, steps and outputs.

diffrax (``diffeqsolve`` with ``PIDController``) is the independent reference for
the controller, the clipping at the end time and the dense output.  The two
implementations run different floating-point operations, and a step-size
controller feeds rounding back: the embedded error estimate is the difference of
two solutions that agree to ~tolerance, so it carries relative rounding of
~eps * |k| / |err| (1e-8 and worse at tight tolerances, for any implementation), and
the next step size inherits it.  So: outputs agree to 1e-12, attempt counts exactly,
and the accepted step times to 1e-10 with integral control at ``rtol = atol =
1e-3``; a PI controller remembers the errors of earlier steps and the step times
drift further apart (1e-8 at ``1e-5``) while the outputs still agree to 1e-12.
diffrax 0.7.2 skips its initial-step heuristic for the terms it wraps, so diffrax
gets the first step our engine chose (the heuristic is tested on its own in
``tests/torch/solve/test_native.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

jax = pytest.importorskip("jax")
diffrax = pytest.importorskip("diffrax")
torch = pytest.importorskip("torch")

import jax.numpy as jnp  # noqa: E402

from sciml_seq.torch import solve  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")

DAMPING = np.array([0.1, 0.5, 2.0])  # damped pendulums: each sample takes its own steps
Y0 = np.array([[2.0, 0.0], [1.0, 0.5], [-2.5, 1.0]])
TS = np.array([0.0, 0.37, 1.1, 2.0, 3.0])  # interior outputs come from the dense output
CLASSES = {"dopri5": diffrax.Dopri5, "tsit5": diffrax.Tsit5, "bosh3": diffrax.Bosh3}


def pendulum(t, y, c):
    return jnp.stack([y[1], -jnp.sin(y[0]) - c * y[1]])


def diffrax_solve(method, tol, pcoeff, icoeff, dt0):
    """Outputs, accepted step ends and attempts of every sample.

    One compiled solve, called per sample: under ``jax.vmap`` diffrax 0.7.2 returns
    interior outputs (``SaveAt(ts=...)``) that differ from its own unbatched solve by
    ~2e-8 here, while the steps agree; the unbatched one is the reference.
    """
    controller = diffrax.PIDController(rtol=tol, atol=tol, pcoeff=pcoeff, icoeff=icoeff)

    def one(y0, c, dt0):
        saveat = diffrax.SaveAt(subs=[diffrax.SubSaveAt(ts=jnp.asarray(TS)),
                                      diffrax.SubSaveAt(steps=True)])
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(pendulum), CLASSES[method](), t0=TS[0], t1=TS[-1], dt0=dt0, y0=y0,
            args=c, saveat=saveat, stepsize_controller=controller, max_steps=256,
        )
        return sol.ys[0], sol.ts[1], sol.stats["num_steps"]

    with jax.enable_x64(True):
        compiled = jax.jit(one)
        out = [compiled(jnp.asarray(Y0[b]), jnp.asarray(DAMPING[b]), jnp.asarray(dt0[b]))
               for b in range(len(Y0))]
        return [np.stack([np.asarray(o[i]) for o in out]) for i in range(3)]


@pytest.mark.parametrize(
    ("method", "tol", "pcoeff", "icoeff", "step_atol"),
    [
        ("dopri5", 1e-3, 0.0, 1.0, 1e-10),
        ("tsit5", 1e-3, 0.0, 1.0, 1e-10),
        pytest.param("bosh3", 1e-3, 0.0, 1.0, 1e-10, marks=pytest.mark.slow),
        pytest.param("tsit5", 1e-5, 0.3, 0.4, 1e-8, marks=pytest.mark.slow),
    ],
)
def test_attempts_steps_and_outputs_equal_diffrax(method, tol, pcoeff, icoeff, step_atol):
    damping = torch.tensor(DAMPING, dtype=torch.float64)

    def field(t, y):
        return torch.stack([y[:, 1], -torch.sin(y[:, 0]) - damping * y[:, 1]], dim=1)

    ours = solve(field, torch.tensor(Y0), torch.tensor(TS), method=method, rtol=tol, atol=tol,
                 pcoeff=pcoeff, icoeff=icoeff, record_steps=True)
    rec = ours.steps
    ys, ends, attempts = diffrax_solve(method, tol, pcoeff, icoeff, rec.dt[:, 0].numpy())
    assert ours.stats.n_steps.tolist() == attempts.tolist()
    np.testing.assert_allclose(ours.ys.numpy(), ys, rtol=0, atol=1e-12)
    for b in range(3):
        theirs = ends[b][np.isfinite(ends[b])]
        mine = (rec.t[b] + rec.dt[b])[rec.accepted[b]].numpy()
        np.testing.assert_allclose(mine, theirs, rtol=0, atol=step_atol)
