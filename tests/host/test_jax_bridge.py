"""The JAX bridge (jax.custom_vjp over jax.pure_callback) to the SciPy host engine:
agreement with the native engine, gradient checks (also under vmap/jit), any field (called
back through JAX), step records, statistics and errors."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from sciml_seq.errors import OptionError, SolverError, UnavailableError
from sciml_seq.stats import result_name

jax = pytest.importorskip("jax")
eqx = pytest.importorskip("equinox")
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

from sciml_seq.jax import ODEBlock, TimeMLP, solve  # noqa: E402

TS = jnp.array([0.0, 0.4, 1.0])
Y0 = jnp.array([0.3, -0.2])
Y0S = jnp.array([[0.3, -0.2], [0.1, 0.5], [-0.4, 0.2]])
TIGHT = dict(rtol=1e-11, atol=1e-13)


def field(time_conditioning: str = "concat+film") -> TimeMLP:
    f = TimeMLP(2, 3, 1, time_conditioning=time_conditioning, key=jax.random.key(0))
    if f.film:  # zero-initialised: make FiLM matter
        w = 0.5 * jax.random.normal(jax.random.key(1), f.film[0].weight.shape)
        f = eqx.tree_at(lambda m: m.film[0].weight, f, w)
    return f


def scipy_solve(f, y0, **kw):
    return solve(f, y0, TS, engine="scipy", method="DOP853", **{**TIGHT, **kw})


def test_agrees_with_the_native_engine_and_reports_stats() -> None:
    f = field()
    sol = scipy_solve(f, Y0)
    ref = solve(f, Y0, TS, method="dopri5", rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(sol.ys, ref.ys, rtol=0, atol=1e-10)
    assert sol.ys.dtype == jnp.float64
    assert int(sol.stats.nfe_forward) > 0 and int(sol.stats.n_accepted) > 0
    assert sol.stats.n_steps is None and sol.stats.nfe_backward is None
    assert int(sol.result) == 0 and float(sol.t_reached) == float(TS[-1])
    backwards = solve(f, Y0, TS[::-1], engine="scipy", method="DOP853", **TIGHT)
    ref_back = solve(f, Y0, TS[::-1], method="dopri5", rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(backwards.ys, ref_back.ys, rtol=0, atol=1e-10)
    assert float(backwards.t_reached) == float(TS[0])
    batched = jax.vmap(lambda y: scipy_solve(f, y))(Y0S)
    assert batched.ys.shape == (3, 3, 2) and batched.stats.n_accepted.shape == (3,)
    np.testing.assert_allclose(batched.ys[0], sol.ys, rtol=0, atol=1e-14)


def test_check_grads_through_the_bridge() -> None:
    f = field()
    check_grads(lambda y: scipy_solve(f, y).ys, (Y0,), order=1, modes=["rev"], atol=1e-6, rtol=1e-6)

    def by_params(w):
        g = eqx.tree_at(lambda m: m.layers[0].weight, f, w)
        return scipy_solve(g, Y0).ys

    check_grads(by_params, (f.layers[0].weight,), order=1, modes=["rev"], atol=1e-6, rtol=1e-6)


def test_vmapped_jitted_gradients_sum_the_per_example_gradients() -> None:
    f = field()
    w = jnp.asarray(np.random.default_rng(0).normal(size=(3, 3, 2)))

    def loss(model):
        ys = jax.vmap(lambda y: scipy_solve(model, y, adjoint="backsolve").ys)(Y0S)
        return jnp.sum(w * ys)

    got = eqx.filter_jit(eqx.filter_grad(loss))(f)
    per_example = [
        eqx.filter_grad(lambda m, i=i: jnp.sum(w[i] * scipy_solve(m, Y0S[i]).ys))(f)
        for i in range(3)
    ]
    want = jax.tree.map(lambda *g: sum(g), *per_example)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-7, atol=1e-9)


def test_ode_block_engine_argument() -> None:
    f = field()
    block = ODEBlock(f, engine="scipy", method="Radau")
    assert block.solver.engine == "scipy" and block.solver.adjoint == "interpolating"
    np.testing.assert_allclose(block(Y0), scipy_solve(f, Y0).ys[-1], rtol=0, atol=1e-5)
    np.testing.assert_allclose(eqx.filter_jit(block)(Y0), block(Y0), rtol=0, atol=1e-14)
    with pytest.raises(
        OptionError, match=r"^method: expected .* with engine='scipy'.*got 'tsit5'"
    ):
        ODEBlock(f, engine="scipy", method="tsit5")
    with pytest.raises(OptionError, match="regularizers=.* engine='julia'"):
        ODEBlock(f, engine="julia", method="tsit5", regularizers=("kinetic",))
    with pytest.raises(OptionError, match=r"^engine: expected one of .* in JAX; got 'torchode'$"):
        ODEBlock(f, engine="torchode")


def test_solver_failure_raises_or_returns_result() -> None:
    f = field()
    with pytest.raises(SolverError, match="max_steps=2"):
        solve(f, Y0, TS, engine="scipy", method="RK45", rtol=1e-12, atol=1e-14, max_steps=2)
    sol = solve(
        f,
        Y0,
        TS,
        engine="scipy",
        method="RK45",
        rtol=1e-12,
        atol=1e-14,
        max_steps=2,
        throw=False,
    )
    assert not bool(jnp.all(jnp.isfinite(sol.ys)))
    assert result_name(sol.result) == "max_steps_reached"


def test_main_thread_check_before_tracing(monkeypatch: pytest.MonkeyPatch) -> None:
    from sciml_seq.host.scipy_backend import ScipyBackend

    monkeypatch.setattr(ScipyBackend, "requires_main_thread", True)
    errors = []

    def worker() -> None:
        try:
            scipy_solve(field(), Y0)
        except UnavailableError as err:
            errors.append(err)

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert len(errors) == 1 and "main thread" in str(errors[0])


def test_step_options_reach_scipy_through_the_block(monkeypatch) -> None:
    """``dtmax`` (SciPy's ``max_step``) changes the host solve exactly as it changes
    solve_ivp's (per example)."""
    import scipy.integrate

    from sciml_seq.host import mlp_spec_of, params_from_module, scipy_backend

    f = field()
    spec, p = mlp_spec_of(f), params_from_module(f)
    tol = dict(rtol=1e-6, atol=1e-8)
    block = ODEBlock(f, engine="scipy", method="RK45", dtmax=0.02, **tol)
    assert block.solver.dtmax == 0.02
    out = eqx.filter_jit(lambda b, ys: jax.vmap(b.solve)(ys))(block, Y0S)  # options: static
    for i, y0 in enumerate(np.asarray(Y0S)):
        ref = scipy.integrate.solve_ivp(
            lambda t, y: spec.f(t, y[None], p)[0],
            (0.0, 1.0),
            y0,
            method="RK45",
            max_step=0.02,
            **tol,
        )
        assert int(out.stats.n_accepted[i]) == len(ref.t) - 1 >= 50
        assert int(out.stats.nfe_forward[i]) == ref.nfev
        np.testing.assert_allclose(out.ys[i], ref.y[:, -1], rtol=0, atol=1e-12)
    default = ODEBlock(f, engine="scipy", method="RK45", **tol).solve(Y0S[0])
    assert int(default.stats.n_accepted) < 50
    # Gradients go through the same options (the backward callback re-solves with them).
    solves = []
    integrate = scipy_backend._integrate

    def recording(fun, t0, t1, z0, settings, *rest):
        solves.append((rest[-2], settings.max_step))
        return integrate(fun, t0, t1, z0, settings, *rest)

    monkeypatch.setattr(scipy_backend, "_integrate", recording)
    g = jax.grad(lambda y: block(y).sum())(Y0)
    assert [phase for phase, _ in solves].count("adjoint (backward)") >= 1
    assert {max_step for _, max_step in solves} == {0.02}
    g_ref = jax.grad(lambda y: scipy_solve(f, y).ys[-1].sum())(Y0)
    np.testing.assert_allclose(g, g_ref, rtol=1e-5, atol=1e-7)


def test_engine_option_errors() -> None:
    f = field()
    with pytest.raises(OptionError, match=r"^backend_options: not a solver option"):
        ODEBlock(f, backend_options={"max_step": 0.1})
    with pytest.raises(
        OptionError, match=r"^engine_options: expected None \(it takes no options\) with engine="
    ):
        solve(f, Y0, TS, engine="diffrax", engine_options={"max_step": 0.1})
    with pytest.raises(OptionError, match=r"^engine_options: engine='native' takes no options in"):
        ODEBlock(f, engine_options={"control": "batch"})
    with pytest.raises(OptionError, match=r"^dt0: expected a finite real number > 0.0"):
        solve(f, Y0, TS, engine="scipy", method="RK45", dt0=-1.0)
    assert ODEBlock(f, engine_options={}).solver.engine_options == ()


class Rotation(eqx.Module):
    """Not a TimeMLP: dy/dt = tanh(W y) (1 + t) on a (2, 2) state, called back through JAX."""

    w: jax.Array

    def __call__(self, t, y):
        return jnp.tanh(self.w @ y) * (1 + t)


ROTATION = Rotation(jnp.array([[0.3, -1.0], [0.8, 0.1]]))
STATE = jnp.array([[0.5, -0.2], [0.1, 0.4]])  # a (2, 2) state
HOST = dict(method="DOP853", rtol=1e-11, atol=1e-13)
NATIVE = dict(rtol=1e-11, atol=1e-13, adjoint="direct")  # the cheapest gradient to compile


def _loss(model, y, engine, options):
    return jnp.sum(solve(model, y, TS, engine=engine, **options).ys ** 2)


def _assert_gradients_agree(adjoint: str) -> None:
    g_host = jax.grad(_loss, (0, 1))(ROTATION, STATE, "scipy", dict(HOST, adjoint=adjoint))
    g_native = jax.grad(_loss, (0, 1))(ROTATION, STATE, "native", NATIVE)
    np.testing.assert_allclose(g_host[0].w, g_native[0].w, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(g_host[1], g_native[1], rtol=1e-6, atol=1e-8)


def test_any_field_is_called_back_through_jax() -> None:
    np.testing.assert_allclose(
        solve(ROTATION, STATE, TS, engine="scipy", **HOST).ys,
        solve(ROTATION, STATE, TS, **NATIVE).ys,
        rtol=0,
        atol=1e-9,
    )
    _assert_gradients_agree("interpolating")


@pytest.mark.slow  # compiles a backsolve and a batched backwards solve
def test_any_field_backsolve_backwards_and_batched() -> None:
    _assert_gradients_agree("backsolve")
    back = jax.jit(jax.vmap(lambda y: solve(ROTATION, y, TS[::-1], engine="scipy", **HOST).ys))(
        jnp.stack([STATE, 2 * STATE])
    )
    for i, scale in enumerate((1.0, 2.0)):
        np.testing.assert_allclose(
            back[i], solve(ROTATION, scale * STATE, TS[::-1], **NATIVE).ys, rtol=0, atol=1e-9
        )


def test_scipy_step_records() -> None:
    f = field()
    sol = solve(f, Y0, TS, engine="scipy", method="RK45", max_steps=64, record_steps=True)
    rec = sol.steps
    n = int(sol.stats.n_accepted)
    assert rec.t.shape == (64,) and rec.error_ratio is None and rec.stiffness is None
    assert np.all(rec.accepted[:n]) and not np.any(rec.accepted[n:])
    assert float(rec.t[0]) == 0.0
    np.testing.assert_allclose(float(rec.t[n - 1] + rec.dt[n - 1]), 1.0, rtol=0, atol=1e-15)
    np.testing.assert_allclose(rec.t[1:n], (rec.t + rec.dt)[: n - 1], rtol=0, atol=1e-15)
    assert not np.any(rec.dt[n:])
    back = solve(f, Y0, TS[::-1], engine="scipy", method="RK45", max_steps=64,
                 record_steps=True).steps
    n = int(back.accepted.sum())
    assert float(back.t[0]) == 1.0 and np.all(back.dt[:n] < 0)  # the user's time direction


@pytest.mark.slow  # ~9 s of compiling; the torch twin in test_torch_bridge.py is fast
def test_rnode_regularisers_through_scipy_equal_the_native_engine() -> None:
    """The augmented field of the regularisers is just another field to call back."""
    key = jax.random.PRNGKey(5)

    def outputs(engine: str, options: dict):
        block = ODEBlock(ROTATION, engine=engine, regularizers=("kinetic", "jacobian"), **options)

        def loss(model, y):
            out = eqx.tree_at(lambda b: b.field, block, model).solve(y, key=key)
            return jnp.sum(out.ys**2) + sum(jnp.sum(r) for r in out.regularization.values()), out

        (_, out), grads = jax.value_and_grad(loss, (0, 1), has_aux=True)(ROTATION, STATE)
        return out, grads

    host, host_grads = outputs("scipy", HOST)
    native, native_grads = outputs("native", NATIVE)
    np.testing.assert_allclose(host.ys, native.ys, rtol=0, atol=1e-9)
    for name in ("kinetic", "jacobian"):
        np.testing.assert_allclose(host.regularization[name], native.regularization[name],
                                   rtol=1e-8)
    np.testing.assert_allclose(host_grads[0].w, native_grads[0].w, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(host_grads[1], native_grads[1], rtol=1e-6, atol=1e-8)


@pytest.mark.slow  # compiles a transformer's forward and gradient through both engines
def test_an_ode_transformer_through_scipy_against_the_native_engine() -> None:
    from sciml_seq.jax.transformer import TransformerEncoder

    native = TransformerEncoder(4, 2, depth="ode", mlp_hidden=8, rtol=1e-12, atol=1e-14,
                                key=jax.random.PRNGKey(0))
    leaves, tree = jax.tree_util.tree_flatten(eqx.filter(native, eqx.is_inexact_array))
    keys = jax.random.split(jax.random.PRNGKey(1), len(leaves))
    leaves = [
        x + 0.3 * jax.random.normal(k, x.shape, x.dtype)
        for x, k in zip(leaves, keys, strict=True)
    ]
    native = eqx.combine(jax.tree_util.tree_unflatten(tree, leaves), native)  # time matters
    hosted = TransformerEncoder(4, 2, depth="ode", mlp_hidden=8, engine="scipy",
                                method="dopri5", rtol=1e-10, atol=1e-12, key=jax.random.PRNGKey(0))
    # the same arrays (the solver options are static: part of the tree's structure)
    hosted = jax.tree_util.tree_unflatten(
        jax.tree_util.tree_structure(hosted), jax.tree_util.tree_leaves(native)
    )
    x = jax.random.normal(jax.random.PRNGKey(2), (5, 4))
    positions = jnp.arange(5.0)
    w = jax.random.normal(jax.random.PRNGKey(3), (5, 4))

    def loss(model):
        return jnp.sum(model(x, positions) * w)

    outputs = [encoder(x, positions) for encoder in (native, hosted)]
    np.testing.assert_allclose(outputs[1], outputs[0], rtol=0, atol=1e-8)
    grads = [eqx.filter_grad(loss)(encoder) for encoder in (native, hosted)]
    for g_host, g_native in zip(jax.tree_util.tree_leaves(grads[1]),
                                jax.tree_util.tree_leaves(grads[0]), strict=True):
        np.testing.assert_allclose(g_host, g_native, rtol=1e-6, atol=1e-8)
