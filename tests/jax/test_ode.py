"""sciml_seq.jax.ode: the Euler/residual identity, RNODE regularisers and STEER
against direct float64 computations, errors, jit/vmap/grad, and parity with
sciml_seq.torch.ode after weight conversion."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.linalg

from sciml_seq.errors import DTypeError, OptionError, ShapeError
from sciml_seq.jax.fields import TimeMLP
from sciml_seq.jax.ode import ODEBlock, ResidualStack, block_keys

#: float64 parity with torch / numpy references to ~1e-12 (tests/jax/conftest.py).
pytestmark = pytest.mark.float64

try:
    import torch
except ImportError:  # the parity tests below need it; the rest do not
    torch = None

A = np.array([[-0.5, 1.0], [-2.0, -0.3]])
T = 1.3
H0 = np.array([0.7, -1.1])
TIGHT = dict(method="dopri5", rtol=1e-11, atol=1e-13, max_steps=100_000)


class Linear(eqx.Module):
    """f(t, h) = A h."""

    a: jax.Array

    def __call__(self, t, h):
        return self.a @ h


def expm_apply(h0: np.ndarray, t: float) -> np.ndarray:
    return scipy.linalg.expm(A * t) @ h0


def kinetic_exact(h0: np.ndarray, t_end: float) -> float:
    """int_0^T ||A expm(A t) h0||^2 dt by quadrature."""
    return scipy.integrate.quad(
        lambda t: float(np.sum((A @ expm_apply(h0, t)) ** 2)),
        0.0,
        t_end,
        epsabs=1e-13,
        epsrel=1e-12,
    )[0]


def mlp(time_conditioning: str = "concat+film", dtype=None) -> TimeMLP:
    """A TimeMLP(3, 6) with non-zero FiLM layers, so time enters every way it can."""
    field = TimeMLP(
        3, 6, 2, time_conditioning=time_conditioning, dtype=dtype, key=jax.random.key(0)
    )
    if field.film:
        keys = jax.random.split(jax.random.key(1), len(field.film))
        field = eqx.tree_at(
            lambda m: [lin.weight for lin in m.film],
            field,
            [
                0.3 * jax.random.normal(k, lin.weight.shape, lin.weight.dtype)
                for k, lin in zip(keys, field.film, strict=True)
            ],
        )
    return field


@pytest.fixture(scope="module")
def batch():
    return np.random.default_rng(5).standard_normal((4, 3))


def test_residual_stack_is_euler(batch):
    field = mlp()
    h = jnp.asarray(batch)
    n = 8  # the block of the euler parity test below: one compiled solve for both
    stack = ResidualStack(field, n, t_end=T)
    block = ODEBlock(field, t_end=T, method="euler", n_steps=n, regularizers=("kinetic",))
    np.testing.assert_allclose(jax.vmap(stack)(h), jax.vmap(block)(h), rtol=0, atol=1e-12)


class Affine(eqx.Module):
    """f(t, h) = A h + t b: linear in h, explicit in t."""

    a: jax.Array
    b: jax.Array

    def __call__(self, t, h):
        return self.a @ h + t * self.b


def test_untied_residual_stack_equals_an_explicit_loop():
    rng = np.random.default_rng(3)
    layers = [(rng.standard_normal((2, 2)), rng.standard_normal(2)) for _ in range(4)]
    stack = ResidualStack([Affine(jnp.asarray(a), jnp.asarray(b)) for a, b in layers], t_end=T)
    assert stack.n_layers == 4 and stack.field is None and len(stack.fields) == 4
    expected, dt = H0, T / 4
    for k, (a, b) in enumerate(layers):  # h <- h + dt f_k(k dt, h), in numpy
        expected = expected + dt * (a @ expected + (k * dt) * b)
    np.testing.assert_allclose(stack(jnp.asarray(H0)), expected, rtol=0, atol=1e-13)
    jitted = eqx.filter_jit(lambda m, h: m(h))(stack, jnp.asarray(H0))
    np.testing.assert_allclose(jitted, expected, rtol=0, atol=1e-13)
    # Each layer's field gets its own gradient.
    grads = eqx.filter_grad(lambda m: jnp.sum(m(jnp.asarray(H0)) ** 2))(stack)
    assert not np.allclose(grads.fields[0].a, grads.fields[1].a)
    # The same field in every layer is the tied stack; n_layers may repeat the length.
    tied = ResidualStack(stack.fields[0], 4, t_end=T)
    assert tied.fields is None
    same = ResidualStack([stack.fields[0]] * 4, 4, t_end=T)
    np.testing.assert_allclose(same(jnp.asarray(H0)), tied(jnp.asarray(H0)), rtol=1e-14)


def test_residual_stack_errors():
    lin = Linear(jnp.asarray(A))
    with pytest.raises(OptionError, match=r"^field: expected one field .* non-empty sequence"):
        ResidualStack([])
    with pytest.raises(
        OptionError, match=r"^n_layers: expected None or len\(field\) = 2 .*; got 1"
    ):
        ResidualStack([lin, lin], 1)
    with pytest.raises(OptionError, match=r"^n_layers: expected an integer >= 1 with one .*None"):
        ResidualStack(lin)


def test_kinetic_regulariser_and_steer_in_inference():
    block = ODEBlock(Linear(jnp.asarray(A)), t_end=T, steer=0.4, regularizers=("kinetic",), **TIGHT)
    assert not block.inference
    evaluation = eqx.nn.inference_mode(block)
    assert evaluation.inference
    h0 = jnp.asarray(H0)
    out = evaluation.solve(h0)  # no key needed in inference
    assert float(out.t_end) == T
    assert list(out.regularization) == ["kinetic"]
    assert out.regularization["kinetic"].shape == ()
    np.testing.assert_allclose(out.regularization["kinetic"], kinetic_exact(H0, T), rtol=1e-8)
    np.testing.assert_allclose(out.ys, expm_apply(H0, T), rtol=0, atol=1e-9)
    # Output times switch STEER off, also in training; the solve (and the integrals)
    # run from ts[0] to ts[-1].  (Two times, so the compiled solve above is reused.)
    ts = jnp.array([0.4, T])
    out = block.solve(h0, ts)
    assert out.ys.shape == (2, 2) and float(out.t_end) == T
    np.testing.assert_array_equal(out.ys[0], h0)
    np.testing.assert_allclose(out.ys[1], expm_apply(H0, T - 0.4), rtol=0, atol=1e-9)
    kinetic = kinetic_exact(H0, T - 0.4)  # autonomous field: time-shift invariant
    np.testing.assert_allclose(out.regularization["kinetic"], kinetic, rtol=1e-8)
    assert ODEBlock(Linear(jnp.asarray(A)), steer=0.4, inference=True).inference


def test_jacobian_and_steer_under_jit_and_vmap():
    """With STEER and the Hutchinson term together, each draw comes from its own key
    (:func:`block_keys`), per example under ``jax.vmap`` inside ``jit``."""
    b = 0.4
    block = ODEBlock(
        Linear(jnp.asarray(A)), t_end=T, steer=b, regularizers=("jacobian", "kinetic"), **TIGHT
    )
    h0 = jnp.asarray(H0)
    keys = jax.random.split(jax.random.key(0), 3)
    batched = eqx.filter_jit(jax.vmap(lambda m, x, k: m.solve(x, key=k), in_axes=(None, None, 0)))
    out = batched(block, h0, keys)
    assert out.ys.shape == (3, 2) and out.t_end.shape == (3,)
    assert out.regularization["jacobian"].shape == (3,) and out.stats.n_steps.shape == (3,)
    for i, key in enumerate(keys):
        steer_key, noise_key = block_keys(key)
        t_end = T + b * jax.random.uniform(steer_key, (), jnp.float64, minval=-1.0, maxval=1.0)
        eps = np.asarray(jax.random.normal(noise_key, h0.shape, h0.dtype))
        t_i = float(out.t_end[i])
        assert T - b <= t_i <= T + b
        assert t_i == pytest.approx(float(t_end), abs=1e-15)
        # For f(h) = A h, eps^T df/dh = (A^T eps)^T, constant in time.
        expected_jac = t_i * np.sum((A.T @ eps) ** 2)
        np.testing.assert_allclose(out.regularization["jacobian"][i], expected_jac, rtol=1e-9)
        kinetic = kinetic_exact(H0, t_i)
        np.testing.assert_allclose(out.regularization["kinetic"][i], kinetic, rtol=1e-8)
        np.testing.assert_allclose(out.ys[i], expm_apply(H0, t_i), rtol=0, atol=1e-9)
    assert len(set(np.asarray(out.t_end).tolist())) == 3
    again = batched(block, h0, keys)  # the compiled function is reused
    np.testing.assert_array_equal(again.ys, out.ys)


def test_errors():
    lin = Linear(jnp.asarray(A))
    h0 = jnp.asarray(H0)
    with pytest.raises(OptionError, match="key is required.*jacobian"):
        ODEBlock(lin, regularizers=("jacobian",)).solve(h0)
    with pytest.raises(OptionError, match="key is required.*STEER"):
        ODEBlock(lin, steer=0.2)(h0)
    with pytest.raises(
        OptionError, match=r"^regularizers\[1\]: expected one of .*; got 'lyapunov'"
    ):
        ODEBlock(lin, regularizers=("kinetic", "lyapunov"))
    with pytest.raises(OptionError, match=r"^regularizers: expected a sequence .*; got 'kinetic'"):
        ODEBlock(lin, regularizers="kinetic")
    with pytest.raises(OptionError, match=r"^regularizers: expected distinct names"):
        ODEBlock(lin, regularizers=("kinetic", "kinetic"))
    with pytest.raises(OptionError, match=r"^t_end: expected a finite real number > 0.0; got 0.0"):
        ODEBlock(lin, t_end=0.0)
    with pytest.raises(OptionError, match=r"^steer: expected .* < t_end = 1.0; got 1.5"):
        ODEBlock(lin, t_end=1.0, steer=1.5)
    with pytest.raises(OptionError, match=r"^steer: expected a finite real number >= 0.0; got"):
        ODEBlock(lin, steer=-0.1)
    with pytest.raises(OptionError, match="n_steps"):
        ODEBlock(lin, method="rk4")
    with pytest.raises(OptionError, match=r"^method: expected one of .*; got 'rk45'$"):
        ODEBlock(lin, method="rk45")
    with pytest.raises(OptionError, match=r"^adjoint: expected one of .*; got 'seminorm'$"):
        ODEBlock(lin, adjoint="seminorm")
    with pytest.raises(OptionError, match=r"^engine: expected one of 'native', .*; got 'x'"):
        ODEBlock(lin, engine="x")
    with pytest.raises(OptionError, match=r"^backend: not a solver option"):
        ODEBlock(lin, backend="diffrax")
    with pytest.raises(OptionError, match=r"^engine: expected one of .* in JAX; got 'torchode'"):
        ODEBlock(lin, engine="torchode")
    with pytest.raises(OptionError, match=r"^n_layers: expected an integer >= 1; got 0"):
        ResidualStack(lin, 0)
    with pytest.raises(OptionError, match=r"^n_layers: expected an integer >= 1; got 2.0"):
        ResidualStack(lin, 2.0)
    with pytest.raises(OptionError, match=r"^t_end: expected a finite real number > 0.0"):
        ResidualStack(lin, 2, t_end=-1.0)
    with pytest.raises(ShapeError, match="h0"):
        ODEBlock(lin)(jnp.asarray(1.0))
    with pytest.raises(DTypeError, match="h0"):
        ODEBlock(lin, regularizers=("jacobian",))(jnp.array([1, 2]), key=jax.random.key(0))
    with pytest.raises(ShapeError, match="h must have shape"):
        ODEBlock(mlp(), method="euler", n_steps=1)(jnp.zeros((2, 3)))  # a batch: vmap it
    with pytest.raises(ShapeError, match="h must be"):
        ResidualStack(lin, 2)(jnp.asarray(1.0))


# --- parity with PyTorch -------------------------------------------------------------

needs_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed")


def torch_pair(**block_options):
    """A torch ODEBlock on a float64 TimeMLP and its float64 JAX twin (convert.torch_to_jax)."""
    from sciml_seq.convert import torch_to_jax
    from sciml_seq.torch import ODEBlock as TorchODEBlock
    from sciml_seq.torch import TimeMLP as TorchTimeMLP

    torch.manual_seed(0)
    field = TorchTimeMLP(3, 6, 2, time_conditioning="concat+film", dtype=torch.float64)
    for film in field.film:
        torch.nn.init.normal_(film.weight, std=0.3)
    torch_block = TorchODEBlock(field, **block_options)
    jax_block = torch_to_jax(torch_block, ODEBlock(mlp(dtype=jnp.float64), **block_options))
    return torch_block, jax_block


@needs_torch
@pytest.mark.parametrize("method", ["euler", "midpoint", "heun", "rk4"])
def test_fixed_step_parity_with_torch(method, batch):
    torch_block, jax_block = torch_pair(
        method=method, n_steps=8, t_end=T, regularizers=("kinetic",)
    )
    expected = torch_block.solve(torch.tensor(batch))
    got = jax.vmap(jax_block.solve)(jnp.asarray(batch))
    np.testing.assert_allclose(got.ys, expected.ys.detach(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(
        got.regularization["kinetic"], expected.regularization["kinetic"].detach(), rtol=1e-10
    )


@needs_torch
def test_gradient_parity_with_torch(batch):
    """JAX's checkpointed gradient equals torch's direct backprop: both differentiate
    the discrete solve exactly."""
    import copy

    from sciml_seq.convert import jax_to_torch

    options = dict(method="rk4", n_steps=8, t_end=T, regularizers=("kinetic",))
    torch_block, jax_block = torch_pair(**options)
    out = torch_block.solve(torch.tensor(batch))
    (out.ys.pow(2).sum() + out.regularization["kinetic"].sum()).backward()

    def loss(block, h):
        out = jax.vmap(block.solve)(h)
        return jnp.sum(out.ys**2) + jnp.sum(out.regularization["kinetic"])

    grads = eqx.filter_jit(eqx.filter_grad(loss))(jax_block, jnp.asarray(batch))
    as_torch = jax_to_torch(grads.field, copy.deepcopy(torch_block.field)).state_dict()
    for name, param in torch_block.field.named_parameters():
        np.testing.assert_allclose(as_torch[name], param.grad, rtol=1e-9, atol=1e-12, err_msg=name)


@needs_torch
def test_adaptive_parity_with_torch(batch):
    """The native engines take the same per-sample steps: rounding apart, same counts."""
    torch_block, jax_block = torch_pair(method="dopri5", rtol=1e-6, atol=1e-8, t_end=T)
    ts = np.array([0.0, 0.3, 0.9, T])
    got = jax.vmap(jax_block.solve, in_axes=(0, None))(jnp.asarray(batch), jnp.asarray(ts))
    assert got.ys.shape == (4, 4, 3)
    expected = torch_block.solve(torch.tensor(batch), torch.tensor(ts))
    np.testing.assert_allclose(got.ys, expected.ys.detach().numpy(), rtol=0, atol=1e-10)
    for name in ("nfe_forward", "n_steps", "n_accepted"):
        np.testing.assert_array_equal(getattr(got.stats, name), getattr(expected.stats, name))
    final = torch_block(torch.tensor(batch)).detach().numpy()
    np.testing.assert_allclose(got.ys[:, -1], final, rtol=0, atol=1e-10)


@needs_torch
def test_residual_stack_parity_with_torch(batch):
    from sciml_seq.convert import torch_to_jax
    from sciml_seq.torch import ResidualStack as TorchResidualStack

    torch_block, _ = torch_pair(method="euler", n_steps=1)
    torch_stack = TorchResidualStack(torch_block.field, 6, t_end=T)
    jax_stack = torch_to_jax(torch_stack, ResidualStack(mlp(), 6, t_end=T))
    expected = torch_stack(torch.tensor(batch)).detach().numpy()
    np.testing.assert_allclose(jax.vmap(jax_stack)(jnp.asarray(batch)), expected, atol=1e-12)


@needs_torch
def test_untied_residual_stack_parity_with_torch(batch):
    from sciml_seq.convert import torch_to_jax
    from sciml_seq.torch import ResidualStack as TorchResidualStack
    from sciml_seq.torch import TimeMLP as TorchTimeMLP

    torch.manual_seed(0)
    fields = [
        TorchTimeMLP(3, 6, 2, time_conditioning="concat+film", dtype=torch.float64)
        for _ in range(3)
    ]
    for field in fields:
        for film in field.film:
            torch.nn.init.normal_(film.weight, std=0.3)
    torch_stack = TorchResidualStack(fields, t_end=T)
    template = ResidualStack([mlp() for _ in range(3)], t_end=T)
    jax_stack = torch_to_jax(torch_stack, template)
    expected = torch_stack(torch.tensor(batch)).detach().numpy()
    got = jax.vmap(jax_stack)(jnp.asarray(batch))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    # Untied is not tied: the first field alone gives other numbers.
    tied = torch_to_jax(fields[0], mlp())
    assert not np.allclose(jax.vmap(ResidualStack(tied, 3, t_end=T))(jnp.asarray(batch)), got)
