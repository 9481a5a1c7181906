# ruff: noqa: E501 - one case per line
"""Bad inputs to torch ``solve``, ``SolveOptions``, the depth blocks (ODE block,
residual/ACT/reversible stacks, time fields) and the transformer encoder: each raises
the library's error type naming the argument (issue 18's robustness suite)."""

from __future__ import annotations

import functools
import inspect
import math

import pytest

torch = pytest.importorskip("torch")

from sciml_seq import torch as st  # noqa: E402
from sciml_seq.errors import (  # noqa: E402
    DeviceError,
    DTypeError,
    NonFiniteError,
    OptionError,
    ShapeError,
    SolverError,
)
from sciml_seq.solver import SolveOptions, solve_options  # noqa: E402
from tests.robustness.cases import Case, check, params  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
F64 = torch.float64


@functools.cache
def field():
    torch.manual_seed(0)
    return st.TimeMLP(2, 8, 1, dtype=F64)


def y0(**kw):
    return torch.zeros(3, 2, dtype=F64, **kw)


TS = torch.linspace(0.0, 1.0, 3, dtype=F64)


def solve(y=None, ts=None, **options):
    return st.solve(field(), y0() if y is None else y, TS if ts is None else ts, **options)


def options(**kw):
    return lambda: SolveOptions(**kw)


def block(**kw):
    return lambda: st.ODEBlock(field(), **kw)


def run_block(h, ts=None, **kw):
    return lambda: st.ODEBlock(field(), method="rk4", n_steps=2, **kw)(h, ts)


def nan_y0():
    y = y0()
    y[1, 0] = math.nan
    return y


# fmt: off
SOLVE_OPTIONS = [
    Case("method-unknown", options(method="dopri"), OptionError, "method"),
    Case("method-int", options(method=5), OptionError, "method"),
    Case("method-none", options(method=None), OptionError, "method"),
    Case("rtol-negative", options(rtol=-1e-3), OptionError, "rtol"),
    Case("rtol-nan", options(rtol=math.nan), OptionError, "rtol"),
    Case("rtol-inf", options(rtol=math.inf), OptionError, "rtol"),
    Case("rtol-str", options(rtol="1e-3"), OptionError, "rtol"),
    Case("rtol-bool", options(rtol=True), OptionError, "rtol"),
    Case("atol-negative", options(atol=-1.0), OptionError, "atol"),
    Case("atol-complex", options(atol=1j), OptionError, "atol"),
    Case("tolerances-both-zero", options(rtol=0.0, atol=0.0), OptionError, "rtol"),
    Case("max-steps-zero", options(max_steps=0), OptionError, "max_steps"),
    Case("max-steps-float", options(max_steps=10.0), OptionError, "max_steps"),
    Case("max-steps-bool", options(max_steps=True), OptionError, "max_steps"),
    Case("fixed-no-steps", options(method="rk4"), OptionError, "n_steps"),
    Case("fixed-both", options(method="rk4", n_steps=2, step_size=0.1), OptionError, "n_steps"),
    Case("n-steps-zero", options(method="euler", n_steps=0), OptionError, "n_steps"),
    Case("n-steps-float", options(method="euler", n_steps=2.0), OptionError, "n_steps"),
    Case("step-size-negative", options(method="euler", step_size=-0.1), OptionError, "step_size"),
    Case("step-size-nan", options(method="euler", step_size=math.nan), OptionError, "step_size"),
    Case("adaptive-n-steps", options(method="dopri5", n_steps=4), OptionError, "n_steps"),
    Case("adaptive-step-size", options(method="tsit5", step_size=0.1), OptionError, "step_size"),
    Case("fixed-rtol", options(method="rk4", n_steps=4, rtol=1e-3), OptionError, "rtol"),
    Case("fixed-atol", options(method="euler", n_steps=4, atol=1e-3), OptionError, "atol"),
    Case("adjoint-unknown", options(adjoint="reverse"), OptionError, "adjoint"),
    Case("seminorm-no-backsolve", options(seminorm=True), OptionError, "seminorm"),
    Case("seminorm-str", options(seminorm="yes"), OptionError, "seminorm"),
    Case("engine-unknown", options(engine="scipyy"), OptionError, "engine"),
    Case("dt0-negative", options(dt0=-0.1), OptionError, "dt0"),
    Case("dtmin-zero", options(dtmin=0.0), OptionError, "dtmin"),
    Case("dtmax-nan", options(dtmax=math.nan), OptionError, "dtmax"),
    Case("dtmin-above-dtmax", options(dtmin=0.5, dtmax=0.1), OptionError, "dtmin"),
    Case("factormin-above-1", options(factormin=2.0), OptionError, "factormin"),
    Case("factormax-below-1", options(factormax=0.5), OptionError, "factormax"),
    Case("safety-zero", options(safety=0.0), OptionError, "safety"),
    Case("safety-above-1", options(safety=1.5), OptionError, "safety"),
    Case("pcoeff-nan", options(pcoeff=math.nan), OptionError, "pcoeff"),
    Case("icoeff-str", options(icoeff="1"), OptionError, "icoeff"),
    Case("dtmax-fixed", options(method="rk4", n_steps=2, dtmax=0.1), OptionError, "dtmax"),
    Case("safety-fixed", options(method="rk4", n_steps=2, safety=0.8), OptionError, "safety"),
    Case("record-steps-str", options(record_steps="yes"), OptionError, "record_steps"),
    Case("engine-options-unknown", options(engine_options={"nope": 1}), OptionError, "nope"),
    Case("keyword-unknown", lambda: solve_options(tol=1e-3), OptionError, "tol"),
    Case(
        "solver-and-keywords",
        lambda: solve_options(SolveOptions(), method="rk4"),
        OptionError,
        "solver",
    ),
    Case("solver-not-options", lambda: solve_options({"method": "rk4"}), OptionError, "solver"),
    Case("replace-bad", lambda: SolveOptions().replace(rtol=-1), OptionError, "rtol"),
    Case(
        "framework-unknown-engine",
        lambda: SolveOptions(engine="diffrax").for_framework("torch"),
        OptionError,
        "engine",
    ),
]

SOLVE = [
    Case("y0-list", lambda: solve(y=[[0.0, 0.0]]), ShapeError, "y0"),
    Case("y0-int", lambda: solve(y=torch.zeros(3, 2, dtype=torch.int64)), DTypeError, "y0"),
    Case("y0-nan", lambda: solve(y=nan_y0()), NonFiniteError, "y0"),
    Case("y0-scalar", lambda: solve(y=torch.tensor(0.0, dtype=F64)), ShapeError, "y0"),
    Case("y0-empty-batch", lambda: solve(y=torch.zeros(0, 2, dtype=F64)), ShapeError, "y0"),
    Case("y0-wrong-features", lambda: solve(y=torch.zeros(3, 5, dtype=F64)), ShapeError, "h"),
    Case("y0-meta", lambda: solve(y=y0(device="meta")), DeviceError, "y0"),
    Case("ts-2d", lambda: solve(ts=TS[None]), ShapeError, "ts"),
    Case("ts-empty", lambda: solve(ts=TS[:0]), ShapeError, "ts"),
    Case("ts-not-monotone", lambda: solve(ts=TS[[0, 2, 1]]), OptionError, "ts"),
    Case("ts-repeated", lambda: solve(ts=TS[[0, 1, 1]]), OptionError, "ts"),
    Case("ts-nan", lambda: solve(ts=torch.tensor([0.0, math.nan], dtype=F64)), NonFiniteError, "ts"),
    Case("ts-less-precise", lambda: solve(ts=TS.float()), DTypeError, "ts"),
    Case("ts-int", lambda: solve(ts=torch.arange(3)), DTypeError, "ts"),
    Case("ts-list", lambda: solve(ts=[0.0, 1.0]), DTypeError, "ts"),
    Case("ts-meta", lambda: solve(ts=TS.to("meta")), DeviceError, "ts"),
    Case("solve-max-steps", lambda: solve(max_steps=1, rtol=1e-12, atol=1e-12), SolverError, "max_steps"),
    Case("solve-bad-keyword", lambda: solve(n_step=3), OptionError, "n_step"),
    Case("solve-throw-str", lambda: st.solve(field(), y0(), TS, throw="no"), OptionError, "throw"),
    Case(
        "field-wrong-shape",
        lambda: st.solve(lambda t, y: y[:, :1], y0(), TS, method="rk4", n_steps=2),
        ShapeError,
        "field",
    ),
]

BLOCKS = [
    Case("block-t-end-zero", block(t_end=0.0), OptionError, "t_end"),
    Case("block-t-end-nan", block(t_end=math.nan), OptionError, "t_end"),
    Case("block-steer-negative", block(steer=-0.1), OptionError, "steer"),
    Case("block-steer-above-t-end", block(steer=2.0), OptionError, "steer"),
    Case("block-regularizer-unknown", block(regularizers=("kinetik",)), OptionError, "regularizers"),
    Case("block-regularizer-str", block(regularizers="kinetic"), OptionError, "regularizers"),
    Case("block-taylor-order-zero", block(regularizers=("taylor",), taylor_order=0), OptionError, "taylor_order"),
    Case("block-rtol-fixed", block(method="rk4", n_steps=2, rtol=1e-3), OptionError, "rtol"),
    Case("block-engine-jax-only", block(engine="diffrax"), OptionError, "engine"),
    Case("block-unknown-keyword", block(n_layers=3), OptionError, "n_layers"),
    Case("block-method-unknown", block(method="rk45"), OptionError, "method"),
    Case("block-h0-int", run_block(torch.zeros(2, 2, dtype=torch.int64)), DTypeError, "h0"),
    Case("block-h0-f32", run_block(torch.zeros(2, 2)), DTypeError, "h0"),
        # values are checked by the solve (one synchronisation), which calls the state y0
    Case("block-h0-nan", run_block(torch.full((2, 2), math.nan, dtype=F64)), NonFiniteError, "y0"),
    Case("block-h0-wrong-width", run_block(torch.zeros(2, 3, dtype=F64)), ShapeError, "h"),
    Case("block-h0-meta", run_block(torch.zeros(2, 2, dtype=F64, device="meta")), DeviceError, "h0"),
    Case("block-ts-2d", run_block(torch.zeros(2, 2, dtype=F64), TS[None]), ShapeError, "ts"),
    Case("mlp-features-zero", lambda: st.TimeMLP(0, 8), OptionError, "features"),
    Case("mlp-hidden-float", lambda: st.TimeMLP(2, 8.0), OptionError, "hidden"),
    Case("mlp-depth-negative", lambda: st.TimeMLP(2, 8, -1), OptionError, "depth"),
    Case("mlp-activation", lambda: st.TimeMLP(2, 8, activation="swishh"), OptionError, "activation"),
    Case("mlp-conditioning", lambda: st.TimeMLP(2, 8, time_conditioning="add"), OptionError, "time_conditioning"),
    Case("mlp-dtype-int", lambda: st.TimeMLP(2, 8, dtype=torch.int32), DTypeError, "dtype"),
    Case("mlp-h-f32", lambda: field()(torch.zeros(3), torch.zeros(3, 2)), DTypeError, "h"),
    Case("mlp-h-width", lambda: field()(torch.zeros(3, dtype=F64), torch.zeros(3, 4, dtype=F64)), ShapeError, "h"),
    Case("mlp-h-meta", lambda: field()(torch.zeros(3, dtype=F64), torch.zeros(3, 2, dtype=F64, device="meta")), DeviceError, "h"),
    Case("stack-n-layers-zero", lambda: st.ResidualStack(field(), 0), OptionError, "n_layers"),
    Case("stack-n-layers-missing", lambda: st.ResidualStack(field()), OptionError, "n_layers"),
    Case("stack-n-layers-float", lambda: st.ResidualStack(field(), 2.0), OptionError, "n_layers"),
    Case("stack-t-end-negative", lambda: st.ResidualStack(field(), 2, t_end=-1.0), OptionError, "t_end"),
    Case("stack-empty-list", lambda: st.ResidualStack([]), OptionError, "field"),
    Case("stack-list-and-n", lambda: st.ResidualStack([field(), field()], 3), OptionError, "n_layers"),
    Case("reversible-n-layers-zero", lambda: st.ReversibleStack(field(), 0), OptionError, "n_layers"),
    Case("reversible-t-end-nan", lambda: st.ReversibleStack(field(), 2, t_end=math.nan), OptionError, "t_end"),
    Case("act-max-depth-zero", lambda: st.ACTStack(field(), 0), OptionError, "max_depth"),
    Case("act-epsilon-one", lambda: st.ACTStack(field(), 3, epsilon=1.0), OptionError, "epsilon"),
    Case("act-epsilon-negative", lambda: st.ACTStack(field(), 3, epsilon=-0.1), OptionError, "epsilon"),
    Case("act-halting-bias-nan", lambda: st.ACTStack(field(), 3, halting_bias=math.nan), OptionError, "halting_bias"),
    Case("act-d-model-zero", lambda: st.ACTStack(field(), 3, d_model=0), OptionError, "d_model"),
]


#: The encoder's string depth argument: ``depth_mode`` (``depth`` before its rename).
DEPTH = (
    "depth_mode"
    if "depth_mode" in inspect.signature(st.TransformerEncoder).parameters
    else "depth"
)


def encoder(**kw):
    if "depth" in kw:
        kw[DEPTH] = kw.pop("depth")
    return lambda: st.TransformerEncoder(8, 2, **kw)


TRANSFORMER = [
    Case("enc-dim-zero", lambda: st.TransformerEncoder(0, 2), OptionError, "dim"),
    Case("enc-heads-not-divisor", lambda: st.TransformerEncoder(8, 3), OptionError, "heads"),
    Case("enc-heads-zero", lambda: st.TransformerEncoder(8, 0), OptionError, "heads"),
    Case("enc-depth-unknown", encoder(depth="deep"), OptionError, DEPTH),
    Case("enc-depth-int", encoder(depth=3), OptionError, DEPTH),
    Case("enc-n-layers-zero", encoder(depth="tied", n_layers=0), OptionError, "n_layers"),
    Case("enc-n-layers-with-ode", encoder(depth="ode", n_layers=4), OptionError, "n_layers"),
    Case("enc-encoding-unknown", encoder(encoding="alibi"), OptionError, "encoding"),
    Case("enc-per-layer-rotary", encoder(encoding="rotary", per_layer=True), OptionError, "encoding"),
    Case("enc-activation", encoder(activation="gelux"), OptionError, "activation"),
    Case("enc-mlp-hidden-zero", encoder(mlp_hidden=0), OptionError, "mlp_hidden"),
    Case("enc-mixer-unknown", encoder(mixer="flash"), OptionError, "mixer"),
    Case("enc-rotary-odd-head", lambda: st.TransformerEncoder(6, 2, encoding="rotary"), OptionError, "heads"),
    Case("enc-solver-bad", encoder(rtol=-1.0), OptionError, "rtol"),
    Case("enc-fixed-rtol", encoder(method="rk4", n_steps=2, rtol=1e-2), OptionError, "rtol"),
    Case("enc-t-end-zero", encoder(t_end=0.0), OptionError, "t_end"),
    Case("enc-dtype-int", encoder(dtype=torch.int64), DTypeError, "dtype"),
    Case("attn-heads", lambda: st.MultiheadAttention(8, 3), OptionError, "heads"),
    Case("attn-dropout", lambda: st.MultiheadAttention(8, 2, dropout=1.5), OptionError, "dropout"),
]


# fmt: on


@pytest.mark.parametrize("case", params(SOLVE_OPTIONS + SOLVE + BLOCKS + TRANSFORMER))
def test_bad_input_is_refused_naming_the_argument(case):
    check(case)
