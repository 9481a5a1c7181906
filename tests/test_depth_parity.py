"""ACTStack and ReversibleStack: torch, JAX and a direct numpy re-implementation, in float64.

- ACT against :func:`act_reference`, a plain-loop numpy version of Graves'
  halting rule written from the paper's formulas (per position lists of
  probabilities and states; ``N``, ``R`` and the output weights computed after
  the loop), on a vector state and on a sequence state whose field mixes
  positions (so the freezing of halted positions matters);
- torch <-> JAX parity (weights moved by ``torch_to_jax``) of outputs, ponder
  costs, steps and gradients, with ``TimeMLP`` (vector state) and
  ``TransformerField`` (sequence state) fields;
- the same option errors, word for word, in both frameworks.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")

import jax.numpy as jnp  # noqa: E402
from torch import nn  # noqa: E402

from sciml_seq import jax as sj  # noqa: E402
from sciml_seq import torch as st  # noqa: E402
from sciml_seq.convert import path_name, torch_to_jax  # noqa: E402
from sciml_seq.errors import OptionError  # noqa: E402

jax.config.update("jax_enable_x64", True)

pytestmark = pytest.mark.usefixtures("one_torch_thread", "quick_jax_compiles")

F64 = torch.float64
KEY = jax.random.key(0)
EPSILON = 0.01
ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- reference


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def act_reference(field, w, b, h0, max_depth, t_end, epsilon, freeze=True):
    """ACT on one example ``h0 (*positions, d)``, written from Graves (2016), eqs. 6-12.

    Returns ``(output, N, R)`` per position.  Each running position takes the
    Euler step, records its state ``s_n`` and ``p_n = sigmoid(w . s_n + b)``, and
    halts at the first ``n`` with ``p_1 + ... + p_n > 1 - epsilon`` or at
    ``max_depth``; then ``R = 1 - (p_1 + ... + p_{N-1})`` and the output is
    ``sum_{n<N} p_n s_n + R s_N``.  Halted positions keep their state
    (``freeze=False``: they keep stepping, tensor2tensor's code).
    """
    shape, d = h0.shape, h0.shape[-1]
    states_now = h0.reshape(-1, d).copy()
    count = states_now.shape[0]
    grid = t_end * np.arange(max_depth + 1) / max_depth
    probs = [[] for _ in range(count)]
    states = [[] for _ in range(count)]
    halted = [False] * count
    for n in range(max_depth):
        if all(halted) and freeze:
            break
        rates = field(grid[n], states_now.reshape(shape)).reshape(count, d)
        for i in range(count):
            if halted[i] and freeze:
                continue
            states_now[i] = states_now[i] + (grid[n + 1] - grid[n]) * rates[i]
            if halted[i]:
                continue
            p = sigmoid(states_now[i] @ w + b)
            states[i].append(states_now[i].copy())
            if n == max_depth - 1 or sum(probs[i]) + p > 1 - epsilon:
                halted[i] = True
            probs[i].append(p)
    updates = np.array([len(s) for s in states])
    remainders = np.array([1.0 - sum(p[: n - 1]) for p, n in zip(probs, updates, strict=True)])
    outputs = []
    for p, s, n, r in zip(probs, states, updates, remainders, strict=True):
        weights = [*p[: n - 1], r]
        assert abs(sum(weights) - 1.0) < 1e-12  # the output is a mean of the states
        outputs.append(sum(wk * sk for wk, sk in zip(weights, s, strict=True)))
    return (
        np.stack(outputs).reshape(shape),
        updates.reshape(shape[:-1]),
        remainders.reshape(shape[:-1]),
    )


LENGTH, WIDTH = 4, 3
_rng = np.random.default_rng(0)
W = _rng.normal(size=(WIDTH, WIDTH))
C = _rng.normal(size=WIDTH)
A = _rng.normal(size=(LENGTH, LENGTH)) / LENGTH
HALT_W = 1.5 * _rng.normal(size=WIDTH)
HALT_B = 0.3


def numpy_field(t: float, h: np.ndarray) -> np.ndarray:
    """``tanh(h W + t c)``; on a sequence ``(length, d)`` the positions are mixed first by ``A``."""
    return np.tanh((A @ h if h.ndim == 2 else h) @ W + t * C)


class TorchMix(nn.Module):
    def __init__(self, mix: bool) -> None:
        super().__init__()
        self.mix = mix
        self.w, self.c, self.a = (nn.Parameter(torch.tensor(x)) for x in (W, C, A))

    def forward(self, t, h):
        x = torch.einsum("ij,bjd->bid", self.a, h) if self.mix else h
        return torch.tanh(x @ self.w + t.reshape(-1, *[1] * (h.ndim - 1)) * self.c)


class JaxMix(eqx.Module):
    w: jax.Array
    c: jax.Array
    a: jax.Array
    mix: bool = eqx.field(static=True)

    def __call__(self, t, h):
        return jnp.tanh((self.a @ h if self.mix else h) @ self.w + t * self.c)


def set_halting(act, weight, bias):
    """``act`` with the given halting unit (torch: in place; JAX: a copy)."""
    if isinstance(act, nn.Module):
        with torch.no_grad():
            act.halting.weight.copy_(torch.as_tensor(weight)[None])
            act.halting.bias.fill_(bias)
        return act
    return eqx.tree_at(
        lambda m: (m.halting.weight, m.halting.bias),
        act,
        (jnp.asarray(weight)[None], jnp.full((1,), bias)),
    )


@pytest.mark.parametrize("mix", [False, True], ids=["vector", "sequence-mixing"])
def test_act_matches_the_numpy_reference(mix):
    depth = 5
    shape = (3, LENGTH, WIDTH) if mix else (10, WIDTH)
    h0 = 1.5 * np.random.default_rng(0).normal(size=shape)
    refs = [act_reference(numpy_field, HALT_W, HALT_B, x, depth, 1.3, EPSILON) for x in h0]
    out_ref = np.stack([r[0] for r in refs])
    n_ref, r_ref = np.stack([r[1] for r in refs]), np.stack([r[2] for r in refs])
    # The case exercises first-step halting, halting in between and the forced halt.
    assert {1, 2, depth} < set(n_ref.ravel().tolist())

    t_act = set_halting(st.ACTStack(TorchMix(mix), depth, t_end=1.3, d_model=WIDTH), HALT_W, HALT_B)
    got = t_act.solve(torch.tensor(h0))
    j_act = sj.ACTStack(
        JaxMix(*(jnp.asarray(x) for x in (W, C, A)), mix), depth, t_end=1.3, d_model=WIDTH, key=KEY
    )
    j_got = jax.vmap(set_halting(j_act, HALT_W, HALT_B).solve)(jnp.asarray(h0))
    axes = tuple(range(1, n_ref.ndim))
    for h, ponder, steps in (
        (got.h.detach().numpy(), got.ponder.detach().numpy(), got.steps.numpy()),
        (np.asarray(j_got.h), np.asarray(j_got.ponder), np.asarray(j_got.steps)),
    ):
        np.testing.assert_allclose(h, out_ref, rtol=0, atol=1e-13)
        np.testing.assert_array_equal(steps, n_ref.max(axis=axes) if axes else n_ref)
        np.testing.assert_allclose(ponder, (n_ref + r_ref).mean(axis=axes), rtol=0, atol=1e-13)
        if not mix:  # one position per sample: steps is its N, ponder - steps its R
            np.testing.assert_allclose(ponder - steps, r_ref, rtol=0, atol=1e-13)
    if mix:  # positions read the halted ones: without freezing the numbers change
        unfrozen = np.stack(
            [
                act_reference(numpy_field, HALT_W, HALT_B, x, depth, 1.3, EPSILON, False)[0]
                for x in h0
            ]
        )
        assert np.abs(unfrozen - out_ref).max() > 1e-3


# --------------------------------------------------------------------------- parity


def time_mlp_pair(seed: int = 0):
    torch.manual_seed(seed)
    field = st.TimeMLP(3, 8, 2, time_conditioning="concat+film", dtype=F64)
    for film in field.film:
        nn.init.normal_(film.weight, std=0.5)
    return field, sj.TimeMLP(3, 8, 2, time_conditioning="concat+film", key=KEY)


def transformer_pair():
    torch.manual_seed(0)
    field = st.TransformerField(8, 2, 16, dtype=F64)
    nn.init.normal_(field.time.weight, std=0.5)  # zero at initialisation: make time matter
    return field, sj.TransformerField(8, 2, 16, key=KEY)


def torch_grads(module, x, loss_of):
    x = x.clone().requires_grad_(True)
    module.zero_grad()
    loss_of(module, x).backward()
    grads = {name: p.grad.numpy() for name, p in module.named_parameters()}
    return x.grad.numpy(), grads


@eqx.filter_jit
def example_grads(loss_of, module, x):
    """``loss_of(module, x) -> (loss, aux)`` for one example: ``(aux, d loss / d(module, x))``."""
    grads, aux = eqx.filter_grad(lambda mx: loss_of(*mx), has_aux=True)((module, x))
    return aux, grads


def jax_grads(module, xs, loss_of):
    """``(auxes, d/dxs, {name: d/dparameter})`` of the loss summed over examples, one compiled
    example at a time (vmapping the gradient of a while loop compiles several times slower)."""
    auxes, per_example = zip(*[example_grads(loss_of, module, x) for x in xs], strict=True)
    g_module = jax.tree_util.tree_map(lambda *g: sum(g), *[g[0] for g in per_example])
    leaves = jax.tree_util.tree_flatten_with_path(eqx.filter(g_module, eqx.is_array))[0]
    g_x = np.stack([np.asarray(g[1]) for g in per_example])
    return np.stack(auxes), g_x, {path_name(path): np.asarray(v) for path, v in leaves}


@eqx.filter_jit
def solve_batch(module, xs):
    return jax.vmap(module.solve)(xs)


def assert_grads_equal(torch_side, jax_side, atol):
    """``torch_grads`` and ``jax_grads`` agree (the gradients w.r.t. the input and by name)."""
    np.testing.assert_allclose(jax_side[1], torch_side[0], rtol=0, atol=atol)
    assert set(jax_side[2]) == set(torch_side[1])
    for name, value in torch_side[1].items():
        np.testing.assert_allclose(jax_side[2][name], value, rtol=0, atol=atol, err_msg=name)


def torch_act_loss(act, x):
    out = act.solve(x)
    return (out.h**2).sum() + out.ponder.sum()


def jax_act_loss(act, x):
    out = act.solve(x)
    return jnp.sum(out.h**2) + out.ponder, out.h


def act_pair(untied: bool, depth: int = 4):
    """A torch ACTStack of TimeMLP field(s) whose samples halt at different steps, and its
    JAX twin."""
    if untied:
        pairs = [time_mlp_pair(seed) for seed in range(depth)]
        t_field, j_field = [p[0] for p in pairs], [p[1] for p in pairs]
    else:
        t_field, j_field = time_mlp_pair()
    t_act = st.ACTStack(t_field, depth, t_end=0.9, halting_bias=-0.5)
    with torch.no_grad():
        t_act.halting.weight.mul_(6.0)
    return t_act, torch_to_jax(t_act, sj.ACTStack(j_field, depth, t_end=0.9, key=KEY))


X_VECTOR = torch.randn(12, 3, dtype=F64, generator=torch.Generator().manual_seed(2))


@pytest.mark.parametrize(
    "untied", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["tied", "untied"]
)
def test_act_parity_time_mlp(untied):
    """Vector state: outputs, ponder costs and steps agree to 1e-10."""
    t_act, j_act = act_pair(untied)
    got, j_got = t_act.solve(X_VECTOR), solve_batch(j_act, jnp.asarray(X_VECTOR.numpy()))
    assert len(set(got.steps.tolist())) > 1  # the samples halt at different steps
    np.testing.assert_allclose(j_got.h, got.h.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(j_got.ponder, got.ponder.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_array_equal(j_got.steps, got.steps.numpy())


@pytest.mark.slow  # the gradient of JAX's checkpointed while loop compiles for ~5-10 s
@pytest.mark.parametrize("untied", [False, True], ids=["tied", "untied"])
def test_act_gradient_parity_time_mlp(untied):
    """The gradient of ``|h|^2 + ponder`` w.r.t. the input and every parameter, to 1e-10."""
    t_act, j_act = act_pair(untied)
    assert_grads_equal(
        torch_grads(t_act, X_VECTOR, torch_act_loss),
        jax_grads(j_act, jnp.asarray(X_VECTOR.numpy()), jax_act_loss),
        atol=1e-10,
    )


@pytest.mark.slow  # ~3 s of compiles on an idle CPU; the mixing case above is the fast twin
def test_act_parity_transformer_field():
    """Sequence state, attention mixing the positions: the same numbers in both."""
    t_field, j_field = transformer_pair()
    t_act = st.ACTStack(t_field, 5, halting_bias=-1.0)
    with torch.no_grad():
        t_act.halting.weight.mul_(8.0)
    j_act = torch_to_jax(t_act, sj.ACTStack(j_field, 5, key=KEY))
    x = torch.randn(3, 6, 8, dtype=F64, generator=torch.Generator().manual_seed(3))
    got, j_got = t_act.solve(x), solve_batch(j_act, jnp.asarray(x.numpy()))
    np.testing.assert_allclose(j_got.h, got.h.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(j_got.ponder, got.ponder.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_array_equal(j_got.steps, got.steps.numpy())
    # Positions of a sample halt at different steps: were every N equal to the sample's
    # steps, its ponder cost would exceed them (N + R with R > 0).
    assert (got.ponder < got.steps).any()


def rev_pair(kind: str):
    if kind == "transformer":
        t_field, j_field = transformer_pair()
        return st.ReversibleStack(t_field, 3), sj.ReversibleStack(j_field, 3), (2, 5, 8)
    if kind == "untied":
        pairs = [time_mlp_pair(seed) for seed in range(3)]
        t_stack = st.ReversibleStack([p[0] for p in pairs], t_end=1.4)
        return t_stack, sj.ReversibleStack([p[1] for p in pairs], t_end=1.4), (4, 3)
    t_field, j_field = time_mlp_pair()
    return (
        st.ReversibleStack(t_field, 4, t_end=1.4),
        sj.ReversibleStack(j_field, 4, t_end=1.4),
        (4, 3),
    )


def jax_rev_loss(stack, x):
    out = stack(x)
    return jnp.sum(out**2), out


@pytest.mark.parametrize(
    "kind",
    [
        pytest.param("tied", marks=pytest.mark.slow),  # fast suite: untied covers the path
        "untied",
        pytest.param("transformer", marks=pytest.mark.slow),
    ],
)
def test_reversible_parity(kind):
    """Outputs and the custom backward's gradients (input and parameters) agree to 1e-10."""
    t_stack, template, shape = rev_pair(kind)
    j_stack = torch_to_jax(t_stack, template)
    x = torch.randn(*shape, dtype=F64, generator=torch.Generator().manual_seed(4))
    xj = jnp.asarray(x.numpy())
    j_grads = jax_grads(j_stack, xj, jax_rev_loss)
    np.testing.assert_allclose(j_grads[0], t_stack(x).detach().numpy(), rtol=0, atol=1e-10)
    assert_grads_equal(torch_grads(t_stack, x, lambda m, v: (m(v) ** 2).sum()), j_grads, 1e-10)


# --------------------------------------------------------------------------- options


class NoWidth(nn.Module):
    def forward(self, t, h):
        return h


class JaxNoWidth(eqx.Module):
    def __call__(self, t, h):
        return h


BAD_ACT = [
    dict(max_depth=0),
    dict(max_depth=2.0),
    dict(max_depth=None),
    dict(max_depth=3, epsilon=0.0),
    dict(max_depth=3, epsilon=1.0),
    dict(max_depth=3, epsilon=float("nan")),
    dict(max_depth=3, halting_bias=float("inf")),
    dict(max_depth=3, t_end=-1.0),
    dict(max_depth=3, d_model=0),
    dict(max_depth=3, no_width=True),
    dict(untied=3, max_depth=2),
    dict(untied=0),
]
BAD_REVERSIBLE = [
    dict(n_layers=0),
    dict(n_layers=None),
    dict(n_layers=3, t_end=0.0),
    dict(untied=2, n_layers=3),
    dict(untied=0),
]


def build(framework: str, cls: str, options: dict):
    options = dict(options)
    torch_side = framework == "torch"
    if options.pop("no_width", False):
        field = NoWidth() if torch_side else JaxNoWidth()
    else:
        field = time_mlp_pair()[0 if torch_side else 1]
    if "untied" in options:
        field = [field] * options.pop("untied")
    namespace = st if torch_side else sj
    if cls == "act":
        extra = {} if torch_side else {"key": KEY}
        return namespace.ACTStack(field, options.pop("max_depth", None), **options, **extra)
    return namespace.ReversibleStack(field, options.pop("n_layers", None), **options)


@pytest.mark.parametrize(
    "cls, options",
    [("act", o) for o in BAD_ACT] + [("reversible", o) for o in BAD_REVERSIBLE],
    ids=lambda v: v if isinstance(v, str) else ",".join(f"{k}={v[k]}" for k in v),
)
def test_bad_options_refused_with_the_same_message(cls, options):
    with pytest.raises(OptionError) as torch_error:
        build("torch", cls, options)
    with pytest.raises(OptionError) as jax_error:
        build("jax", cls, options)
    assert str(torch_error.value) == str(jax_error.value)
    first = str(torch_error.value).split(":")[0]
    assert first in (
        "max_depth",
        "n_layers",
        "epsilon",
        "halting_bias",
        "t_end",
        "d_model",
        "field",
    )


def test_depth_core_imports_no_framework():
    code = (
        "import json, sys\nimport sciml_seq.depth\n"
        "print(json.dumps([m for m in ('torch', 'jax', 'equinox') if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
