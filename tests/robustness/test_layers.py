# ruff: noqa: E501 - one case per line
"""Bad inputs to the SSM layers (S4D, S4, LSSL: options, inputs, states, dtypes and
devices), the position encodings, scOT (configuration, inputs, checkpoints) and the
FNO: each raises the library's error type naming the argument (issue 18)."""

from __future__ import annotations

import dataclasses
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
)
from tests.robustness.cases import Case, check, params  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
F64 = torch.float64


@functools.cache
def layer(kind: str = "s4d"):
    torch.manual_seed(0)
    cls = {"s4d": st.S4D, "s4": st.S4, "lssl": st.LSSL}[kind]
    return cls(3, 4, l_max=8)


def u(*shape, **kw):
    return torch.zeros(*(shape or (2, 5, 3)), **kw)


def nan_u():
    x = u()
    x[0, 1, 2] = math.nan
    return x


#: The batch argument of ``default_state``: ``batch_size`` (``batch`` before its rename).
BATCH = [n for n in inspect.signature(st.S4D.default_state).parameters if n != "self"][0]


def ssm_cases(kind: str) -> list[Case]:
    cls = {"s4d": st.S4D, "s4": st.S4, "lssl": st.LSSL}[kind]
    if kind == "s4":  # S4 needs l_max (its DPLR kernel is tuned to a length)
        cls = functools.partial(cls, l_max=8)
    run = lambda *a, **k: lambda: layer(kind)(*a, **k)  # noqa: E731
    step = lambda *a, **k: lambda: layer(kind).step(*a, **k)  # noqa: E731
    state = lambda: layer(kind).default_state(2)  # noqa: E731
    cases = [
        Case("d-model-zero", lambda: cls(0), OptionError, "d_model"),
        Case("d-model-float", lambda: cls(3.0), OptionError, "d_model"),
        Case("d-state-zero", lambda: cls(3, 0), OptionError, "d_state"),
        Case("l-max-zero", lambda: cls(3, 4, l_max=0), OptionError, "l_max"),
        Case("channels-zero", lambda: cls(3, 4, channels=0), OptionError, "channels"),
        Case("dt-min-negative", lambda: cls(3, 4, dt_min=-1e-3), OptionError, "dt_min"),
        Case("dt-max-below-min", lambda: cls(3, 4, dt_min=0.1, dt_max=0.01), OptionError, "dt_max"),
        Case("dropout-one", lambda: cls(3, 4, dropout=1.0), OptionError, "dropout"),
        Case("lr-negative", lambda: cls(3, 4, lr=-1.0), OptionError, "lr"),
        Case("wd-nan", lambda: cls(3, 4, wd=math.nan), OptionError, "wd"),
        Case("init-unknown", lambda: cls(3, 4, init="legx"), OptionError, "init"),
        Case("dtype-int", lambda: cls(3, 4, dtype=torch.int32), DTypeError, "dtype"),
        Case("dtype-str", lambda: cls(3, 4, dtype="float32"), DTypeError, "dtype"),
        Case("u-list", run([[0.0] * 3]), DTypeError, "u"),
        Case("u-2d", run(u(5, 3)), ShapeError, "u"),
        Case("u-channels", run(u(2, 5, 4)), ShapeError, "u"),
        Case("u-empty", run(u(2, 0, 3)), ShapeError, "u"),
        Case("u-int", run(u(dtype=torch.int64)), DTypeError, "u"),
        Case("u-f64", run(u(dtype=F64)), DTypeError, "u"),
        Case("u-meta", run(u(device="meta")), DeviceError, "u"),
        Case("u-nan", run(nan_u()), NonFiniteError, "u"),
        Case("rate-zero", run(u(), rate=0.0), OptionError, "rate"),
        Case("rate-nan", run(u(), rate=math.nan), OptionError, "rate"),
        Case(
            "state-wrong-batch",
            lambda: layer(kind)(u(), state=layer(kind).default_state(3)),
            ShapeError,
            "state",
        ),
        Case("state-list", lambda: layer(kind)(u(), state=[0.0]), OptionError, "state"),
        Case(
            "state-meta", lambda: layer(kind)(u(), state=state().to("meta")), DeviceError, "state"
        ),
        Case("step-u-3d", lambda: layer(kind).step(u(), state()), ShapeError, "u_t"),
        Case(
            "step-u-f64", lambda: layer(kind).step(u(2, 3, dtype=F64), state()), DTypeError, "u_t"
        ),
        Case("step-state-none", step(u(2, 3), None), OptionError, "state"),
        Case(
            "step-state-shape", lambda: layer(kind).step(u(2, 3), state()[:1]), ShapeError, "state"
        ),
        Case("default-state-zero", lambda: layer(kind).default_state(0), OptionError, BATCH),
        Case(
            "bidirectional-state",
            lambda: cls(3, 4, bidirectional=True)(u(), state=state()),
            OptionError,
            "state",
        ),
    ]
    if kind != "lssl":
        wide = lambda: state().to(torch.complex128)  # noqa: E731
        cases += [
            Case("state-complex128", lambda: layer(kind)(u(), state=wide()), DTypeError, "state"),
            Case(
                "step-state-complex128",
                lambda: layer(kind).step(u(2, 3), wide()),
                DTypeError,
                "state",
            ),
            Case(
                "state-real",
                lambda: layer(kind)(u(), state=state().real.contiguous()),
                DTypeError,
                "state",
            ),
            Case("backend-unknown", lambda: cls(3, 4, backend="cuda-fast"), OptionError, "backend"),
        ]
    else:
        cases += [
            Case(
                "state-f64", lambda: layer(kind)(u(), state=state().double()), DTypeError, "state"
            ),
            Case(
                "state-complex",
                lambda: layer(kind)(u(), state=state().to(torch.complex64)),
                DTypeError,
                "state",
            ),
        ]
    if kind == "s4d":
        cases.append(Case("disc-unknown", lambda: cls(3, 4, disc="euler"), OptionError, "disc"))
    if kind == "s4":
        cases.append(Case("rank-zero", lambda: cls(3, 4, rank=0), OptionError, "rank"))
    return [c._replace(id=f"{kind}-{c.id}") for c in cases]


def positions(length=5, batch=2, device="cpu"):
    # built on the CPU and moved: arange on the meta device costs seconds (decompositions)
    return torch.arange(float(length)).expand(batch, length).to(device)


def enc_cases() -> list[Case]:
    x = u(2, 5, 8)
    sin = st.SinusoidalEncoding(8)
    rot = st.RotaryEncoding(8)
    learned = st.LearnedEncoding(8, 6)
    return [
        Case("sin-dim-odd", lambda: st.SinusoidalEncoding(7), OptionError, "dim"),
        Case("sin-dim-zero", lambda: st.SinusoidalEncoding(0), OptionError, "dim"),
        Case("sin-period-zero", lambda: st.SinusoidalEncoding(8, 0.0), OptionError, "max_period"),
        Case("sin-positions-shape", lambda: sin(x, positions(4)), ShapeError, "positions"),
        Case(
            "sin-positions-nan",
            lambda: sin(x, torch.full((2, 5), math.nan)),
            NonFiniteError,
            "positions",
        ),
        Case("sin-x-2d", lambda: sin(u(5, 8), positions()), ShapeError, "x"),
        Case("sin-x-width", lambda: sin(u(2, 5, 6), positions()), ShapeError, "x"),
        Case(
            "sin-positions-meta", lambda: sin(x, positions(device="meta")), DeviceError, "positions"
        ),
        Case("rot-head-odd", lambda: st.RotaryEncoding(7), OptionError, "head_dim"),
        Case("rot-base-negative", lambda: st.RotaryEncoding(8, -1.0), OptionError, "base"),
        Case("rot-x-3d", lambda: rot(x, positions()), ShapeError, "x"),
        Case(
            "rot-positions-shape", lambda: rot(u(2, 1, 5, 8), positions(4)), ShapeError, "positions"
        ),
        Case(
            "rot-positions-meta",
            lambda: rot(u(2, 1, 5, 8), positions(device="meta")),
            DeviceError,
            "positions",
        ),
        Case("learned-max-zero", lambda: st.LearnedEncoding(8, 0), OptionError, "max_positions"),
        Case("learned-out-of-range", lambda: learned(x, positions() + 3), OptionError, "positions"),
        Case("learned-negative", lambda: learned(x, positions() - 1), OptionError, "positions"),
        Case("learned-fractional", lambda: learned(x, positions() + 0.5), OptionError, "positions"),
        Case(
            "learned-dtype-int",
            lambda: st.LearnedEncoding(8, 6, dtype=torch.int64),
            DTypeError,
            "dtype",
        ),
        Case("complex-dim-zero", lambda: st.ComplexOrderEncoding(0), OptionError, "dim"),
        Case("node-hidden-zero", lambda: st.NeuralODEEncoding(8, 0), OptionError, "hidden"),
        Case(
            "node-init-unknown", lambda: st.NeuralODEEncoding(8, init="zeros"), OptionError, "init"
        ),
        Case(
            "node-rtol-fixed",
            lambda: st.NeuralODEEncoding(8, method="rk4", n_steps=2, rtol=1e-3),
            OptionError,
            "rtol",
        ),
        Case("node-dim-odd", lambda: st.NeuralODEEncoding(7), OptionError, "dim"),
    ]


def micro_config(**overrides):
    from tests.operator.reference import micro_config as base

    return base(**overrides)


@functools.cache
def scot():
    from sciml_seq.torch.operator import ScOT

    torch.manual_seed(0)
    return ScOT(micro_config()).eval()


def config(**changes):
    return lambda: dataclasses.replace(micro_config(), **changes)


def scot_cases() -> list[Case]:
    from sciml_seq.torch.operator import ScOT

    x = torch.zeros(1, 3, 16, 16)
    t = torch.zeros(1)
    run = lambda xx, tt: lambda: scot()(xx, tt)  # noqa: E731
    return [
        Case("image-size-zero", config(image_size=0), OptionError, "image_size"),
        Case("patch-not-divisor", config(patch_size=3), OptionError, "patch_size"),
        Case("channels-zero", config(num_channels=0), OptionError, "num_channels"),
        Case("out-channels-zero", config(num_out_channels=0), OptionError, "num_out_channels"),
        Case("embed-dim-zero", config(embed_dim=0), OptionError, "embed_dim"),
        Case("depths-heads-length", config(num_heads=(1,)), OptionError, "num_heads"),
        Case(
            "depths-empty",
            config(depths=(), num_heads=(), skip_connections=(), pretrained_window_sizes=()),
            OptionError,
            "depths",
        ),
        Case("heads-not-divisor", config(num_heads=(4, 2)), OptionError, "num_heads"),
        Case("window-zero", config(window_size=0), OptionError, "window_size"),
        Case("mlp-ratio-zero", config(mlp_ratio=0.0), OptionError, "mlp_ratio"),
        Case("dropout-one", config(hidden_dropout_prob=1.0), OptionError, "hidden_dropout_prob"),
        Case("drop-path-negative", config(drop_path_rate=-0.1), OptionError, "drop_path_rate"),
        Case("act-unknown", config(hidden_act="swishy"), OptionError, "hidden_act"),
        Case("eps-zero", config(layer_norm_eps=0.0), OptionError, "layer_norm_eps"),
        Case("p-three", config(p=3), OptionError, "p"),
        Case(
            "slices-decreasing",
            config(channel_slice_list_normalized_loss=(0, 2, 1)),
            OptionError,
            "channel_slice_list_normalized_loss",
        ),
        Case("residual-unknown", config(residual_model="unet"), OptionError, "residual_model"),
        Case("skip-length", config(skip_connections=(1,)), OptionError, "skip_connections"),
        Case(
            "pretrained-windows-length",
            config(pretrained_window_sizes=(0,)),
            OptionError,
            "pretrained_window_sizes",
        ),
        Case("x-3d", run(x[0], t), ShapeError, "pixel_values"),
        Case("x-channels", run(torch.zeros(1, 2, 16, 16), t), ShapeError, "pixel_values"),
        Case("x-grid-not-patches", run(torch.zeros(1, 3, 15, 16), t), ShapeError, "pixel_values"),
        Case("x-int", run(x.long(), t), DTypeError, "pixel_values"),
        Case("x-f64", run(x.double(), t), DTypeError, "pixel_values"),
        Case("x-meta", run(x.to("meta"), t), DeviceError, "pixel_values"),
        Case("time-shape", run(x, torch.zeros(2)), ShapeError, "time"),
        Case(
            "from-pretrained-missing",
            lambda: ScOT.from_pretrained("/nonexistent/folder"),
            OptionError,
            "path",
        ),
    ]


def fno_cases() -> list[Case]:
    pytest.importorskip("neuralop")
    from sciml_seq.torch.operator.fno import TimeFNO

    fno = functools.cache(lambda: TimeFNO(1, 1, (4, 4), hidden_channels=4, n_layers=1))
    return [
        Case(
            "fno-modes-beyond-grid",
            lambda: fno()(torch.zeros(1, 1, 3, 8), torch.zeros(1)),
            OptionError,
            "n_modes",
        ),
        Case("fno-modes-zero", lambda: TimeFNO(1, 1, (0, 4)), OptionError, "n_modes[0]"),
        Case(
            "fno-unknown-kwarg", lambda: TimeFNO(1, 1, (4, 4), bogus=1), OptionError, "fno_kwargs"
        ),
        Case(
            "fno-x-channels",
            lambda: fno()(torch.zeros(1, 2, 8, 8), torch.zeros(1)),
            ShapeError,
            "x",
        ),
        Case(
            "fno-x-int",
            lambda: fno()(torch.zeros(1, 1, 8, 8, dtype=torch.int64), torch.zeros(1)),
            DTypeError,
            "x",
        ),
        Case(
            "fno-time-shape",
            lambda: fno()(torch.zeros(2, 1, 8, 8), torch.zeros(3)),
            ShapeError,
            "time",
        ),
    ]


# fmt: off
CASES = (
    ssm_cases("s4d") + ssm_cases("s4") + ssm_cases("lssl")
    + [c._replace(id=f"enc-{c.id}") for c in enc_cases()]
    + [c._replace(id=f"scot-{c.id}") for c in scot_cases()]
)
# fmt: on


@pytest.mark.parametrize("case", params(CASES))
def test_bad_input_is_refused_naming_the_argument(case):
    check(case)


@pytest.mark.parametrize("case", params(fno_cases()) if True else [])
def test_bad_fno_input_is_refused_naming_the_argument(case):
    check(case)
