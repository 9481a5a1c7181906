"""torch <-> JAX parity in float64 of the ODEBlock regularisers of sciml_seq.{torch,jax}.
regularizers (R_E, R_S, the local estimates, TayNODE's R_K) on the same field weights, and the
same refusals with the same messages.

The step regularisers sum error ratios and stiffness estimates over the accepted steps; both
native engines take the same steps, and the estimates agree to the rounding that a difference
of stages carries (tests/test_solve_parity.py explains the tolerances).  The local estimate is
compared given the same state and time (each framework draws t_r from its own generator).

Not compared on one solve: R_K's channel in the state of an adaptive solve (values ~1e4) enters
the error norm, where the frameworks' ulps of tanh come back through the controller at ~1e-9.
"""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")

import jax.numpy as jnp  # noqa: E402

from sciml_seq.convert import torch_to_jax  # noqa: E402
from sciml_seq.errors import OptionError  # noqa: E402
from sciml_seq.jax import ODEBlock as JaxODEBlock  # noqa: E402
from sciml_seq.jax import TimeMLP as JaxTimeMLP  # noqa: E402
from sciml_seq.jax.regularizers import local_regularization as jax_local  # noqa: E402
from sciml_seq.torch import ODEBlock as TorchODEBlock  # noqa: E402
from sciml_seq.torch import TimeMLP as TorchTimeMLP  # noqa: E402
from sciml_seq.torch.regularizers import local_regularization as torch_local  # noqa: E402

jax.config.update("jax_enable_x64", True)
pytestmark = pytest.mark.usefixtures("one_torch_thread", "quick_jax_compiles")

T = 1.2
H0 = np.random.default_rng(1).standard_normal((3, 3))


def pair(**options) -> tuple[TorchODEBlock, JaxODEBlock]:
    """A torch block on a float64 TimeMLP (weights of std 1: the solves reject some attempts)
    and its JAX twin with the same weights."""
    torch.manual_seed(0)
    field = TorchTimeMLP(3, 8, 2, time_conditioning="concat+film", dtype=torch.float64)
    for film in field.film:
        torch.nn.init.normal_(film.weight, std=0.3)
    for layer in field.layers:
        torch.nn.init.normal_(layer.weight, std=1.0)
    torch_block = TorchODEBlock(field, **options)
    template = JaxTimeMLP(
        3, 8, 2, time_conditioning="concat+film", key=jax.random.key(0), dtype=jnp.float64
    )
    return torch_block, torch_to_jax(torch_block, JaxODEBlock(template, **options))


@eqx.filter_jit
def jax_batch(block, h0):
    return jax.vmap(block.solve)(h0)


@pytest.mark.parametrize(
    "options",
    [
        dict(method="dopri5", rtol=1e-4, atol=1e-6, regularizers=("error", "stiffness")),
        # K = 3; slow: each framework's closed-form test is in the fast suite
        pytest.param(
            dict(method="rk4", n_steps=8, regularizers=("taylor", "kinetic")),
            marks=pytest.mark.slow,
        ),
    ],
    ids=["error-stiffness", "taylor"],
)
def test_regularisers_agree(options):
    """R_E, R_S per sample on an adaptive solve (both engines take the same steps); R_K with
    K = 3 (nested JVPs against Taylor mode) on a fixed grid."""
    torch_block, jax_block = pair(t_end=T, **options)
    expected = torch_block.solve(torch.tensor(H0))
    got = jax_batch(jax_block, jnp.asarray(H0))
    if options["method"] == "dopri5":
        assert int(expected.stats.n_rejected.sum()) > 0
    np.testing.assert_array_equal(got.stats.n_steps, expected.stats.n_steps)
    np.testing.assert_allclose(got.ys, expected.ys.detach(), rtol=0, atol=1e-10)
    for name in options["regularizers"]:
        np.testing.assert_allclose(
            got.regularization[name],
            expected.regularization[name].detach(),
            rtol=1e-10,
            atol=1e-12,
            err_msg=name,
        )


def test_local_estimates_agree_given_the_same_time():
    """One compiled JAX function for both directions (t and t_end are traced)."""
    torch_block, jax_block = pair(method="dopri5", rtol=1e-5, atol=1e-7)
    names = ("local_error", "local_stiffness")

    @eqx.filter_jit
    def local(field, h, t, t_end):
        return jax.vmap(lambda y: jax_local(field, y, t, t_end, jax_block.solver, names))(h)

    for t, t_end in ((0.3, T), (0.9, 0.1)):
        expected = torch_local(
            torch_block.field, torch.tensor(H0), t, t_end, torch_block.solver, names
        )
        got = local(jax_block.field, jnp.asarray(H0), jnp.asarray(t), jnp.asarray(t_end))
        for name in names:
            np.testing.assert_allclose(
                got[name], expected[name].detach(), rtol=1e-9, atol=1e-14, err_msg=name
            )


@pytest.mark.slow
def test_step_regulariser_gradients_agree():
    """d(R_E + R_S)/d(parameters): torch's direct backprop and JAX's checkpointed gradient
    differentiate the same discrete solve (step sizes held fixed in both)."""
    import copy

    from sciml_seq.convert import jax_to_torch

    names = ("error", "stiffness")
    torch_block, jax_block = pair(t_end=T, method="tsit5", rtol=1e-4, atol=1e-6, regularizers=names)
    out = torch_block.solve(torch.tensor(H0))
    sum(out.regularization[n].sum() for n in names).backward()

    def loss(block):
        out = jax.vmap(block.solve)(jnp.asarray(H0))
        return sum(jnp.sum(out.regularization[n]) for n in names)

    grads = eqx.filter_jit(eqx.filter_grad(loss))(jax_block)
    as_torch = jax_to_torch(grads.field, copy.deepcopy(torch_block.field)).state_dict()
    for name, param in torch_block.field.named_parameters():
        np.testing.assert_allclose(as_torch[name], param.grad, rtol=1e-6, atol=1e-9, err_msg=name)


# --- the same refusals ------------------------------------------------------------------

REFUSED = [
    (
        dict(regularizers=("error",), engine="scipy", method="dopri5"),
        r"^regularizers: 'error' reads the internals of the native engine's Runge-Kutta "
        r"steps; expected engine='native'; got engine='scipy'$",
    ),
    (
        dict(regularizers=("local_error",), engine="julia", method="tsit5"),
        r"^regularizers: 'local_error' reads the internals .* got engine='julia'$",
    ),
    (
        dict(regularizers=("error",), method="rk4", n_steps=4),
        r"^regularizers: 'error' needs an adaptive method with an embedded error estimate "
        r"\('bosh3', 'dopri5', 'tsit5'\); got method='rk4'$",
    ),
    (
        dict(regularizers=("local_error",), method="euler", n_steps=3),
        r"^regularizers: 'local_error' needs an adaptive method .* got method='euler'$",
    ),
    (
        dict(regularizers=("stiffness",), method="bosh3"),
        r"^regularizers: 'stiffness' needs a method with Hairer's stiffness estimate "
        r"\('dopri5', 'tsit5'\); got method='bosh3'$",
    ),
    (
        dict(regularizers=("kinetic", "local_stiffness"), method="bosh3"),
        r"^regularizers: 'local_stiffness' needs a method with Hairer's stiffness estimate",
    ),
    (
        dict(regularizers=("error",), adjoint="backsolve"),
        r"^regularizers: 'error' differentiates the solver's step records, which carry the "
        r"gradient under adjoint='direct' or 'checkpoint' \(discrete sensitivities, as Pal et "
        r"al. 2021\); got adjoint='backsolve'; 'local_error' works with any adjoint$",
    ),
    (
        dict(regularizers=("stiffness",), adjoint="backsolve"),
        r"^regularizers: 'stiffness' differentiates .*; 'local_stiffness' works with any",
    ),
    (dict(taylor_order=1), r"^taylor_order: expected an integer >= 2; got 1$"),
    (dict(taylor_order=2.0), r"^taylor_order: expected an integer >= 2; got 2.0$"),
    (
        dict(regularizers=("kinetic", "lyapunov")),
        r"^regularizers\[1\]: expected one of 'kinetic', 'jacobian', 'taylor', 'error', "
        r"'stiffness', 'local_error', 'local_stiffness'; got 'lyapunov'$",
    ),
]


class TorchZero(torch.nn.Module):
    def forward(self, t, h):
        return torch.zeros_like(h)


@pytest.mark.parametrize(("options", "message"), REFUSED)
def test_the_same_refusals(options, message):
    with pytest.raises(OptionError, match=message) as torch_error:
        TorchODEBlock(TorchZero(), **options)
    with pytest.raises(OptionError, match=message) as jax_error:
        JaxODEBlock(lambda t, h: jnp.zeros_like(h), **options)
    assert str(torch_error.value) == str(jax_error.value)


@pytest.mark.parametrize(
    "options",
    [
        dict(regularizers=("local_error", "local_stiffness"), adjoint="backsolve"),
        dict(regularizers=("error", "stiffness"), adjoint="checkpoint", method="tsit5"),
        dict(regularizers=("error",), adjoint="direct", method="bosh3"),
        dict(regularizers=("taylor", "kinetic"), taylor_order=2, engine="scipy", method="dopri5"),
    ],
)
def test_the_same_acceptances(options):
    torch_block = TorchODEBlock(TorchZero(), **options)
    jax_block = JaxODEBlock(lambda t, h: jnp.zeros_like(h), **options)
    assert torch_block.regularizers == jax_block.regularizers == options["regularizers"]
    step = any(n in ("error", "stiffness") for n in options["regularizers"])
    assert torch_block.solver.record_steps == jax_block.solver.record_steps == step
