"""sciml_seq.host: import isolation, the flat parameter layout of MLPFieldSpec, and its
numpy field (values against torch TimeMLP, VJP and Jacobian against finite differences);
the Jacobian assembled from VJPs against the analytic one."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sciml_seq.errors import OptionError, ShapeError
from sciml_seq.fields import ACTIVATIONS, TIME_CONDITIONINGS
from sciml_seq.host import (
    HostField,
    MLPFieldSpec,
    field_jacobian,
    flatten_params,
    jacobian_from_vjp,
    mlp_spec_of,
    named_params_of,
    params_from_module,
    unflatten_params,
)

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("torch", "jax", "jaxlib", "equinox", "diffrax", "juliacall", "juliapkg")


@pytest.mark.parametrize(
    "modules",
    [
        ["sciml_seq.host", "sciml_seq.host.scipy_backend", "sciml_seq.host.registry"],
        ["sciml_seq.julia", "sciml_seq.julia.backend"],
    ],
)
def test_imports_load_no_framework_and_no_julia(modules: list[str]) -> None:
    code = (
        "import json, sys\n"
        + "".join(f"import {m}\n" for m in modules)
        + "import sciml_seq.julia as j; j.julia_status\n"
        + "from sciml_seq.host.registry import backend_class; backend_class('julia')\n"
        + f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def random_torch_field(time_conditioning: str, activation: str = "tanh", depth: int = 2):
    torch = pytest.importorskip("torch")
    from sciml_seq.torch import TimeMLP

    torch.manual_seed(0)
    field = TimeMLP(
        3,
        5,
        depth,
        activation=activation,
        time_conditioning=time_conditioning,
        dtype=torch.float64,
    )
    for film in field.film:  # zero-initialised: make FiLM matter
        torch.nn.init.normal_(film.weight, std=0.5)
        torch.nn.init.normal_(film.bias, std=0.5)
    return field


def test_spec_param_shapes_follow_pytorch_linear_layout() -> None:
    spec = MLPFieldSpec(2, 4, 1, time_conditioning="concat+film")
    assert spec.param_shapes() == [
        ("layers.0.weight", (4, 3)),
        ("layers.0.bias", (4,)),
        ("layers.1.weight", (2, 5)),
        ("layers.1.bias", (2,)),
        ("film.0.weight", (8, 1)),
        ("film.0.bias", (8,)),
    ]
    assert spec.n_params == 12 + 4 + 10 + 2 + 8 + 8
    # Row-major (out, in): element [o, i] of layers.0.weight sits at o * in + i.
    p = np.arange(spec.n_params, dtype=float)
    w = unflatten_params(spec, p)["layers.0.weight"]
    assert w[2, 1] == 2 * 3 + 1
    assert unflatten_params(spec, p)["layers.0.bias"][0] == 12


@pytest.mark.parametrize("time_conditioning", TIME_CONDITIONINGS)
def test_layout_round_trip_torch(time_conditioning: str) -> None:
    torch = pytest.importorskip("torch")
    from sciml_seq.torch.solve.host import flat_params

    field = random_torch_field(time_conditioning)
    spec = mlp_spec_of(field)
    assert spec == MLPFieldSpec(3, 5, 2, "tanh", time_conditioning)
    p = params_from_module(field)
    assert p.shape == (spec.n_params,) == (sum(q.numel() for q in field.parameters()),)
    np.testing.assert_array_equal(
        p, torch.nn.utils.parameters_to_vector(field.parameters()).detach().numpy()
    )
    np.testing.assert_array_equal(flat_params(field).detach().numpy(), p)
    named = unflatten_params(spec, p)
    state = {k: v.numpy() for k, v in field.state_dict().items()}
    assert set(named) == set(state)
    for name, value in named.items():
        np.testing.assert_array_equal(value, state[name])
    np.testing.assert_array_equal(flatten_params(spec, named), p)


@pytest.mark.parametrize("time_conditioning", TIME_CONDITIONINGS)
def test_layout_round_trip_jax(time_conditioning: str) -> None:
    jax = pytest.importorskip("jax")
    from sciml_seq.convert import torch_to_jax
    from sciml_seq.jax import TimeMLP

    jax.config.update("jax_enable_x64", True)
    torch_field = random_torch_field(time_conditioning)
    template = TimeMLP(3, 5, 2, time_conditioning=time_conditioning, key=jax.random.key(0))
    field = torch_to_jax(torch_field, template)
    assert mlp_spec_of(field) == mlp_spec_of(torch_field)
    p = params_from_module(field)
    np.testing.assert_array_equal(p, params_from_module(torch_field))
    flat = np.concatenate([np.ravel(a) for a in named_params_of(field).values()])
    np.testing.assert_array_equal(flat, p)
    named = unflatten_params(mlp_spec_of(field), p)
    np.testing.assert_array_equal(named["layers.1.weight"], np.asarray(field.layers[1].weight))


def test_depth_zero_and_layout_errors() -> None:
    spec = MLPFieldSpec(2, 7, 0, time_conditioning="film")  # FiLM acts on hidden layers: none
    assert spec.param_shapes() == [("layers.0.weight", (2, 2)), ("layers.0.bias", (2,))]
    with pytest.raises(ShapeError, match=r"^p: expected shape \(6,\) for .*; got \(5,\)$"):
        unflatten_params(spec, np.zeros(5))
    with pytest.raises(OptionError, match=r"^params: expected .*; got missing \['layers.0.bias'\]"):
        flatten_params(spec, {"layers.0.weight": np.zeros((2, 2))})
    with pytest.raises(ShapeError, match=r"^params\['layers.0.bias'\]: expected shape \(2,\)"):
        flatten_params(spec, {"layers.0.weight": np.zeros((2, 2)), "layers.0.bias": np.zeros(3)})
    with pytest.raises(OptionError, match=r"^activation: expected one of 'tanh', .*; got 'swish'$"):
        MLPFieldSpec(2, 3, 1, activation="swish")
    with pytest.raises(OptionError, match=r"^depth: expected an integer >= 0; got 1.0$"):
        MLPFieldSpec(2, 3, 1.0)


def test_mlp_spec_of_recognises_only_time_mlp() -> None:
    torch = pytest.importorskip("torch")
    from sciml_seq.torch import TimeMLP

    assert mlp_spec_of(torch.nn.Linear(2, 2)) is None
    assert mlp_spec_of(lambda t, y: y) is None

    class Shifted(TimeMLP):  # a subclass may compute something else: not the fast path
        def forward(self, t, h):
            return super().forward(t, h) + 1.0

    assert mlp_spec_of(Shifted(2, 3, 1)) is None
    assert mlp_spec_of(TimeMLP(2, 3, 1)) == MLPFieldSpec(2, 3, 1)
    with pytest.raises(OptionError, match=r"^module: expected a sciml_seq.torch.TimeMLP .*; got"):
        params_from_module(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("time_conditioning", TIME_CONDITIONINGS)
def test_numpy_field_equals_torch(activation: str, time_conditioning: str) -> None:
    torch = pytest.importorskip("torch")
    field = random_torch_field(time_conditioning, activation)
    rng = np.random.default_rng(0)
    y = 3 * rng.normal(size=(4, 3))  # wide enough to reach relu/elu kinks and both sides
    t = rng.uniform(size=4)
    expected = field(torch.tensor(t), torch.tensor(y)).detach().numpy()
    spec, p = mlp_spec_of(field), params_from_module(field)
    assert isinstance(spec, HostField)
    np.testing.assert_allclose(spec.f(t, y, p), expected, rtol=0, atol=1e-12)
    np.testing.assert_allclose(spec.f(t[1], y[1], p), expected[1], rtol=0, atol=1e-12)


@pytest.mark.parametrize("activation", ["tanh", "softplus", "gelu", "silu", "elu"])
@pytest.mark.parametrize("time_conditioning", TIME_CONDITIONINGS)
def test_numpy_vjp_and_jacobian_against_finite_differences(
    activation: str, time_conditioning: str
) -> None:
    spec = MLPFieldSpec(3, 4, 2, activation, time_conditioning)
    rng = np.random.default_rng(1)
    p = rng.normal(size=spec.n_params)
    y, t, v = rng.normal(size=(2, 3)), np.array([0.3, 0.7]), rng.normal(size=(2, 3))
    f, vjp_y, vjp_p = spec.vjp(t, y, p, v)
    np.testing.assert_array_equal(f, spec.f(t, y, p))

    def loss(p_, y_):
        return float(np.sum(v * spec.f(t, y_, p_)))

    eps = 1e-6
    fd_y = np.zeros_like(y)
    for i in np.ndindex(y.shape):
        d = np.zeros_like(y)
        d[i] = eps
        fd_y[i] = (loss(p, y + d) - loss(p, y - d)) / (2 * eps)
    fd_p = np.array(
        [(loss(p + eps * e, y) - loss(p - eps * e, y)) / (2 * eps) for e in np.eye(spec.n_params)]
    )
    np.testing.assert_allclose(vjp_y, fd_y, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(vjp_p, fd_p, rtol=1e-6, atol=1e-8)
    jac = spec.jacobian(t, y, p)
    np.testing.assert_allclose(np.einsum("bo,boi->bi", v, jac), vjp_y, rtol=1e-12, atol=1e-12)


class _NoJacobian:
    """The MLP without its Jacobian: what a callback field offers."""

    jacobian = None

    def __init__(self, spec: MLPFieldSpec) -> None:
        self.spec, self.features, self.n_params = spec, spec.features, spec.n_params
        self.vjps = 0

    def f(self, t, y, p):
        return self.spec.f(t, y, p)

    def vjp(self, t, y, p, a):
        self.vjps += 1
        return self.spec.vjp(t, y, p, a)


def test_jacobian_from_vjps_equals_the_analytic_one() -> None:
    spec = MLPFieldSpec(3, 4, 2, "gelu", "concat+film")
    rng = np.random.default_rng(2)
    p, y = rng.normal(size=spec.n_params), rng.normal(size=(5, 3))
    field = _NoJacobian(spec)
    assert isinstance(field, HostField)
    expected = spec.jacobian(0.4, y, p)
    np.testing.assert_allclose(jacobian_from_vjp(field, 0.4, y, p), expected, rtol=0, atol=1e-14)
    assert field.vjps == 3  # one per state entry, for the whole batch
    np.testing.assert_allclose(field_jacobian(field, 0.4, y, p), expected, rtol=0, atol=1e-14)
    assert field_jacobian(spec, 0.4, y, p) is not None and field.vjps == 6
