"""torch <-> JAX parity in float64 of the native solve engines, and of their option checks.

The JAX native engine is the mirror of the torch one: the same tableaus, initial
step, controller, clipping, dense output and step records, computed in the same
order.  torch steps each sample of a batch on its own (per-sample control);
``jax.vmap`` over one-example solves does the same.  So the two agree to rounding
in everything a solve reports: outputs, counts and every step record, per sample,
on a batch whose samples differ in stiffness (frequency) by a factor of 16.

What makes 1e-10 possible: a step-size controller feeds rounding back (the
embedded error estimate is a difference of two solutions that agree to about the
tolerance, so it carries relative rounding of ``eps * |k| / |err|``), so the
field below is exact in both frameworks (products with powers of two, one
addition) and the tolerances are moderate (``rtol=1e-3``): what differs then is
the libraries' ``pow`` (the controller's factor, the first step) by an ulp, which
the records carry at 1e-12 (tsit5's stiffness, whose denominator ``|y1 - Y_5|``
is itself a small difference, at 2e-11).  At tighter tolerances the same ulps
grow to 1e-9 in the error ratios of any two correct implementations.

Gradients with respect to ``y0``, ``ts`` and the field's parameters agree for every
method and adjoint: ``direct``/``checkpoint`` differentiate the same discrete solve
(1e-8); ``backsolve`` solves the continuous adjoint, which torch steps for the
whole batch as one system and JAX per example (1e-7 at tight tolerances).

Every JAX case compiles; cases over ~3 s are marked slow.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")

import jax.numpy as jnp  # noqa: E402

from sciml_seq.errors import OptionError  # noqa: E402
from sciml_seq.jax import ODEBlock as JaxODEBlock  # noqa: E402
from sciml_seq.jax import solve as jax_solve  # noqa: E402
from sciml_seq.solver import SolveOptions  # noqa: E402
from sciml_seq.torch import ODEBlock as TorchODEBlock  # noqa: E402
from sciml_seq.torch import solve as torch_solve  # noqa: E402

jax.config.update("jax_enable_x64", True)
pytestmark = pytest.mark.usefixtures("one_torch_thread")

RECORD_FIELDS = ("t", "dt", "error_ratio", "stiffness")
COUNTS = ("nfe_forward", "n_steps", "n_accepted", "n_rejected")

# --- outputs, counts and step records -------------------------------------------------

RATES = np.array([1.0, 16.0, 256.0])  # per-sample stiffness; powers of two: exact products
Y0 = np.random.default_rng(0).normal(size=(3, 2))
TS = np.array([0.0, 0.37, 1.1, 2.0])  # interior outputs come from the dense output
STEPS = {
    "adaptive": dict(rtol=1e-3, atol=1e-5, max_steps=256, record_steps=True),
    "fixed": dict(n_steps=5, record_steps=True),
    # every controller setting away from its default (PI control, bounds, first step)
    "controller": dict(rtol=1e-3, atol=1e-5, max_steps=256, record_steps=True, pcoeff=0.2,
                       icoeff=0.4, dt0=0.05, dtmin=1e-3, dtmax=0.1, factormin=0.3,
                       factormax=4.0, safety=0.8),
}


def torch_oscillator(t, y):
    """A forced oscillator ``x'' = -k x + t`` per sample (frequency sqrt(k): 1, 4, 16)."""
    k = torch.tensor(RATES)
    return torch.stack([y[:, 1], -k * y[:, 0] + t], dim=1)


def jax_oscillator(k):
    return lambda t, y: jnp.stack([y[1], -k * y[0] + t])


@functools.cache
def jax_batched(method: str, kind: str):
    """jit(vmap(solve)) over (y0, k), the times an argument: one compile, both directions."""

    def one(y0, k, ts):
        return jax_solve(jax_oscillator(k), y0, ts, method=method, **STEPS[kind])

    return jax.jit(jax.vmap(one, in_axes=(0, 0, None)))


def assert_same_solve(method: str, kind: str, ts: np.ndarray) -> None:
    expected = torch_solve(
        torch_oscillator, torch.tensor(Y0), torch.tensor(ts), method=method, **STEPS[kind]
    )
    got = jax_batched(method, kind)(jnp.asarray(Y0), jnp.asarray(RATES), jnp.asarray(ts))
    # (5 fixed steps per interval are unstable for the stiff sample: its values grow)
    np.testing.assert_allclose(got.ys, expected.ys.numpy(), rtol=1e-13, atol=1e-10)
    np.testing.assert_array_equal(got.result, expected.result.numpy())
    np.testing.assert_allclose(got.t_reached, expected.t_reached.numpy(), rtol=0, atol=1e-12)
    for name in COUNTS:
        np.testing.assert_array_equal(getattr(got.stats, name), getattr(expected.stats, name))
    want, have = expected.steps, got.steps
    n = want.t.shape[1]  # torch records as many columns as the batch took attempts
    if kind != "fixed":
        assert have.t.shape == (3, STEPS[kind]["max_steps"])
        # JAX's buffers hold zeros after each example's last attempt
        assert not np.any(have.attempted[:, n:])
        for name in RECORD_FIELDS:
            if getattr(have, name) is not None:
                assert not np.any(np.asarray(getattr(have, name))[:, n:]), name
    else:
        assert have.t.shape == want.t.shape == (3, 5 * (len(ts) - 1))
    for name in ("accepted", "attempted"):
        np.testing.assert_array_equal(
            np.asarray(getattr(have, name))[:, :n], getattr(want, name).numpy(), err_msg=name
        )
    for name in RECORD_FIELDS:
        if getattr(want, name) is None:
            assert getattr(have, name) is None, name
            continue
        np.testing.assert_allclose(
            np.asarray(getattr(have, name))[:, :n],
            getattr(want, name).detach().numpy(),
            rtol=1e-10,
            atol=1e-10,
            err_msg=name,
        )


@pytest.mark.parametrize("method", ["bosh3", "dopri5", "tsit5"])
def test_adaptive_solves_agree_to_rounding(method):
    for ts in (TS, TS[::-1].copy()):
        assert_same_solve(method, "adaptive", ts)
    # the samples really step differently (the stiff one takes many more attempts)
    steps = np.asarray(jax_batched(method, "adaptive")(
        jnp.asarray(Y0), jnp.asarray(RATES), jnp.asarray(TS)
    ).stats.n_steps)
    assert steps[2] > 5 * steps[0]


def test_controller_settings_are_honoured_alike():
    for ts in (TS, TS[::-1].copy()):
        assert_same_solve("tsit5", "controller", ts)
    dt = np.abs(np.asarray(jax_batched("tsit5", "controller")(
        jnp.asarray(Y0), jnp.asarray(RATES), jnp.asarray(TS)
    ).steps.dt))
    assert np.all(dt <= 0.1 + 1e-15) and np.all(dt[:, 0] == 0.05)  # dtmax, dt0


@pytest.mark.parametrize("method", ["euler", "midpoint", "heun", "rk4"])
def test_fixed_step_solves_agree_to_rounding(method):
    for ts in (TS, TS[::-1].copy()):
        assert_same_solve(method, "fixed", ts)


# --- gradients -----------------------------------------------------------------------

W = np.array([[0.4, -0.7], [0.9, 0.2]])
G_Y0 = np.array([[0.5, -0.3], [1.0, 0.2], [-0.8, 0.6]])
G_TS = np.array([0.0, 0.4, 1.0, 1.5])
G_OUT = np.random.default_rng(1).normal(size=(3, 4, 2))  # loss weights


class TorchField(torch.nn.Module):
    """``tanh(W y) (1 + t) - 0.3 y``: time, state and parameters all matter."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor(W))

    def forward(self, t, y):
        return torch.tanh(y @ self.w.T) * (1 + t[:, None]) - 0.3 * y


class JaxField(eqx.Module):
    w: jax.Array

    def __call__(self, t, y):
        return jnp.tanh(self.w @ y) * (1 + t) - 0.3 * y


def grad_steps(method: str, adjoint: str) -> dict:
    if method in ("bosh3", "dopri5", "tsit5"):
        # backsolve: tight, so that the batch-vs-example adjoint systems agree to 1e-7
        if adjoint == "backsolve":
            return dict(rtol=1e-10, atol=1e-12)
        return dict(rtol=1e-5, atol=1e-7)
    return dict(step_size=0.15) if method == "midpoint" else dict(n_steps=3)


def torch_gradients(method, adjoint, ts):
    field = TorchField()
    y0 = torch.tensor(G_Y0, requires_grad=True)
    times = torch.tensor(ts, requires_grad=True)
    ys = torch_solve(field, y0, times, method=method, adjoint=adjoint,
                     **grad_steps(method, adjoint)).ys
    (ys * torch.tensor(G_OUT)).sum().backward()
    return y0.grad.numpy(), times.grad.numpy(), field.w.grad.numpy()


@functools.cache
def jax_gradient_function(method: str, adjoint: str):
    """grad of the weighted loss w.r.t. (field, y0, ts); jitted unless the grid needs
    concrete times (``step_size``), where it runs eagerly."""

    def loss(field, y0, ts):
        def one(y):
            return jax_solve(field, y, ts, method=method, adjoint=adjoint,
                             **grad_steps(method, adjoint)).ys

        return jnp.sum(jax.vmap(one)(y0) * G_OUT)

    grad = jax.grad(loss, argnums=(0, 1, 2))
    return grad if "step_size" in grad_steps(method, adjoint) else jax.jit(grad)


def assert_same_gradients(method: str, adjoint: str) -> None:
    tol = 1e-7 if adjoint == "backsolve" else 1e-8
    for ts in (G_TS, G_TS[::-1].copy()):
        want = torch_gradients(method, adjoint, ts)
        g_field, g_y0, g_ts = jax_gradient_function(method, adjoint)(
            JaxField(jnp.asarray(W)), jnp.asarray(G_Y0), jnp.asarray(ts)
        )
        for name, have, expected in zip(
            ("y0", "ts", "w"), (g_y0, g_ts, g_field.w), want, strict=True
        ):
            assert np.any(expected != 0), name
            np.testing.assert_allclose(
                np.asarray(have), expected, rtol=0, atol=tol, err_msg=f"{name}, ts={ts}"
            )


# one per adjoint (and step_size, which runs eagerly); adaptive gradients compile for
# 5-10 s each: slow
FAST_GRADIENTS = [("rk4", "checkpoint"), ("euler", "backsolve"), ("midpoint", "direct")]
SLOW_GRADIENTS = [
    (method, adjoint)
    for method in ("euler", "midpoint", "heun", "rk4", "bosh3", "dopri5", "tsit5")
    for adjoint in ("direct", "checkpoint", "backsolve")
    if (method, adjoint) not in FAST_GRADIENTS
]


@pytest.mark.parametrize(
    ("method", "adjoint"),
    FAST_GRADIENTS + [pytest.param(*case, marks=pytest.mark.slow) for case in SLOW_GRADIENTS],
)
def test_gradients_agree(method, adjoint):
    assert_same_gradients(method, adjoint)


# --- option checks -------------------------------------------------------------------

BAD_OPTIONS = [
    dict(rtol=-1.0),
    dict(rtol=float("nan")),
    dict(rtol=0.0, atol=0.0),
    dict(method="dopri"),
    dict(adjoint="backsolve", engine="torchode"),
    dict(adjoint="checkpoint", engine="torchdiffeq"),
    dict(adjoint="gauss", engine="native"),
    dict(seminorm=True, adjoint="direct"),
    dict(record_steps=True, engine="diffrax"),
    dict(method="rk4", n_steps=4, pcoeff=0.3),
]


def _message(call) -> str:
    with pytest.raises(OptionError) as info:
        call()
    return str(info.value)


@pytest.mark.parametrize("options", BAD_OPTIONS, ids=lambda o: ",".join(map(str, o.items())))
def test_bad_options_are_refused_alike(options):
    """SolveOptions, both solves' keywords and both ODEBlocks refuse with one message,
    before anything is solved (or compiled)."""
    expected = _message(lambda: SolveOptions(**options))
    y0, ts = np.ones((1, 2)), np.array([0.0, 1.0])
    calls = {
        "torch solve": lambda: torch_solve(
            lambda t, y: -y, torch.tensor(y0), torch.tensor(ts), **options
        ),
        "jax solve": lambda: jax_solve(lambda t, y: -y, jnp.asarray(y0[0]), jnp.asarray(ts),
                                       **options),
        "torch ODEBlock": lambda: TorchODEBlock(torch.nn.Identity(), **options),
        "jax ODEBlock": lambda: JaxODEBlock(lambda t, y: -y, **options),
    }
    for name, call in calls.items():
        assert _message(call) == expected, name
