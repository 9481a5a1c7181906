# ruff: noqa: E501 - one case per line
"""Bad data files and data options, converter mismatches, command-line misuse, host
engines (SciPy, Julia without Julia) and JAX constructors: each raises the library's
error type naming the argument; each command line prints one ``error:`` line naming
the option and exits 2 (issue 18's robustness suite).

The checkpoint faults (NaN/integer tensors, truncated files, files of two saves,
a writer killed between the files or the renames, resume with another batch size)
are the training core's tests and are not repeated here:
tests/train/test_checkpoint_safety.py (and tests/train/test_cli_errors.py).
"""

from __future__ import annotations

import functools
import inspect
import json
import math

import h5py
import numpy as np
import pytest

from sciml_seq.data.pde import (
    Trajectories,
    TrajectoryWriter,
    generate,
    iterate_batches,
    open_trajectories,
    read_trajectories,
    write_trajectories,
)
from sciml_seq.errors import (
    DTypeError,
    FormatError,
    NonFiniteError,
    OptionError,
    ShapeError,
    UnavailableError,
)
from tests.robustness.cases import Case, check, names, params

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.usefixtures("one_torch_thread")

U = np.zeros((2, 3, 1, 8), np.float32)
T = np.arange(3.0)


def traj(**changes):
    values = dict(u=U, t=T, meta={})
    values.update(changes)
    return lambda: Trajectories(**values)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Bad files, made once: name -> path."""
    root = tmp_path_factory.mktemp("files")
    good = write_trajectories(root / "good.h5", Trajectories(u=U + 1, t=T, meta={}))
    out = {"good": good, "missing": root / "missing.h5"}
    (root / "text.h5").write_text("not hdf5")
    out["text"] = root / "text.h5"

    def variant(name, edit):
        path = write_trajectories(root / f"{name}.h5", Trajectories(u=U + 1, t=T, meta={}))
        with h5py.File(path, "r+") as f:
            edit(f)
        out[name] = path

    variant("format", lambda f: f.attrs.__setitem__("format", "other"))
    variant("version", lambda f: f.attrs.__setitem__("format_version", 2))
    variant("meta", lambda f: f.attrs.__setitem__("meta", "{not json"))
    variant("no-u", lambda f: f.__delitem__("u"))
    variant("no-t", lambda f: f.__delitem__("t"))
    variant("nan", lambda f: f["u"].__setitem__((1, 2, 0, 3), np.nan))
    variant("inf", lambda f: f["u"].__setitem__((0, 0, 0, 0), np.inf))
    variant("t-decreasing", lambda f: (f.__delitem__("t"), f.create_dataset("t", data=T[::-1])))
    variant(
        "meta-channels", lambda f: f.attrs.__setitem__("meta", json.dumps({"channels": ["a", "b"]}))
    )
    broken = write_trajectories(root / "broken.h5", Trajectories(u=U + 1, t=T, meta={}))
    with h5py.File(broken, "r") as f:
        offset = f["u"].id.get_chunk_info(1).byte_offset + 8
    with open(broken, "r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)[0]
        handle.seek(offset)
        handle.write(bytes([byte ^ 0xFF]))
    out["broken"] = broken
    return out


def lazily(name, reader):
    """A case call that reads ``files[name]`` with ``reader`` (resolved at run time)."""
    return lambda files: reader(files[name])


def read_all(path):
    with open_trajectories(path) as f:
        return f[list(range(len(f)))]


FILE_CASES = [
    ("missing-open", lazily("missing", open_trajectories), FileNotFoundError, "path"),
    ("missing-read", lazily("missing", read_trajectories), FileNotFoundError, "path"),
    ("text-file", lazily("text", open_trajectories), FormatError, "path"),
    ("format-attr", lazily("format", open_trajectories), FormatError, "format"),
    ("format-version", lazily("version", open_trajectories), FormatError, "format_version"),
    ("meta-not-json", lazily("meta", open_trajectories), FormatError, "meta"),
    ("no-u", lazily("no-u", open_trajectories), FormatError, "u"),
    ("no-t", lazily("no-t", open_trajectories), FormatError, "t"),
    ("t-decreasing", lazily("t-decreasing", open_trajectories), ShapeError, "t"),
    ("meta-channels", lazily("meta-channels", open_trajectories), FormatError, "channels"),
    ("nan-read", lazily("nan", read_trajectories), NonFiniteError, "u"),
    ("nan-lazy", lazily("nan", read_all), NonFiniteError, "u"),
    ("nan-batches", lazily("nan", lambda p: list(iterate_batches(p, 1))), NonFiniteError, "u"),
    ("inf-lazy-first", lazily("inf", lambda p: open_trajectories(p)[0]), NonFiniteError, "u"),
    ("broken-chunk-read", lazily("broken", read_trajectories), FormatError, "path"),
    ("broken-chunk-lazy", lazily("broken", lambda p: open_trajectories(p)[1]), FormatError, "path"),
    (
        "broken-chunk-batches",
        lazily("broken", lambda p: list(iterate_batches(p, 2))),
        FormatError,
        "path",
    ),
    (
        "batch-size-zero",
        lazily("good", lambda p: list(iterate_batches(p, 0))),
        OptionError,
        "batch_size",
    ),
    ("index-out-of-range", lazily("good", lambda p: open_trajectories(p)[5]), IndexError, "index"),
    (
        "indices-out-of-range",
        lazily("good", lambda p: open_trajectories(p)[[0, 9]]),
        IndexError,
        "indices",
    ),
]


def torch_dataset(path, **kw):
    from sciml_seq.torch.data import TrajectoryDataset

    return TrajectoryDataset(path, **kw)


FILE_CASES += [
    ("dataset-nan", lazily("nan", lambda p: torch_dataset(p)[1]), NonFiniteError, "u"),
    (
        "dataset-dtype-int",
        lazily("good", lambda p: torch_dataset(p, dtype=torch.int64)),
        DTypeError,
        "dtype",
    ),
    ("dataset-index", lazily("good", lambda p: torch_dataset(p)[7]), IndexError, "index"),
    ("dataset-missing", lazily("missing", torch_dataset), FileNotFoundError, "path"),
    ("dataset-broken", lazily("broken", lambda p: torch_dataset(p)[1]), FormatError, "path"),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c[0]) for c in FILE_CASES])
def test_bad_file_is_refused_naming_the_argument(files, case):
    name, call, error, argument = case
    check(Case(name, lambda: call(files), error, argument))


def writer_missing(tmp_path):
    with TrajectoryWriter(tmp_path / "w.h5", (3, 3, 1, 8), T, {}) as w:
        w.write(0, U)


def writer_bad_block(tmp_path):
    with TrajectoryWriter(tmp_path / "w.h5", (3, 3, 1, 8), T, {}) as w:
        w.write(2, U)


def nan_u():
    u = U.copy()
    u[0, 1, 0, 2] = np.nan
    return u


def pairs(**kw):
    from sciml_seq.train.pairs import PairIndex

    return lambda: PairIndex(**{"n_trajectories": 2, "n_times": 5, **kw})


DATA = [
    Case("traj-u-float64", traj(u=U.astype(np.float64)), DTypeError, "u"),
    Case("traj-u-list", traj(u=U.tolist()), DTypeError, "u"),
    Case("traj-u-3d", traj(u=U[:, :, 0]), ShapeError, "u"),
    Case("traj-u-6d", traj(u=U[..., None, None]), ShapeError, "u"),
    Case("traj-u-nan", traj(u=nan_u()), NonFiniteError, "u"),
    Case("traj-t-length", traj(t=np.arange(4.0)), ShapeError, "t"),
    Case("traj-t-start", traj(t=T + 1), ShapeError, "t"),
    Case("traj-t-repeated", traj(t=np.array([0.0, 1.0, 1.0])), ShapeError, "t"),
    Case("traj-t-2d", traj(t=T[None]), ShapeError, "t"),
    Case("traj-meta-list", traj(meta=[]), FormatError, "meta"),
    Case("traj-meta-channels", traj(meta={"channels": ["a", "b"]}), FormatError, "channels"),
    Case("traj-meta-resolution", traj(meta={"resolution": 16}), FormatError, "resolution"),
    Case("traj-meta-n-times", traj(meta={"n_times": 9}), FormatError, "n_times"),
    Case("write-not-trajectories", lambda: write_trajectories("/tmp/x.h5", U), TypeError, "traj"),
    Case(
        "write-meta-not-json",
        lambda: TrajectoryWriter("/tmp/x.h5", U.shape, T, {"a": object()}),
        FormatError,
        "meta",
    ),
    Case("batches-source-int", lambda: list(iterate_batches(3, 1)), TypeError, "source"),
    Case("generate-unknown", lambda: generate("heat_2d", 1), OptionError, "name"),
    Case("generate-n-zero", lambda: generate("kdv_1d", 0), OptionError, "n_trajectories"),
    Case(
        "generate-resolution",
        lambda: generate("kdv_1d", 1, resolution=2),
        OptionError,
        "resolution",
    ),
    Case("generate-n-times", lambda: generate("kdv_1d", 1, n_times=1), OptionError, "n_times"),
    Case("generate-dt", lambda: generate("kdv_1d", 1, dt=-0.1), OptionError, "dt"),
    Case(
        "generate-param", lambda: generate("kdv_1d", 1, params={"nu": 1.0}), OptionError, "params"
    ),
    Case(
        "generate-param-nan",
        lambda: generate("kdv_1d", 1, params={"dispersivity": math.nan}),
        OptionError,
        "dispersivity",
    ),
    Case("generate-seed", lambda: generate("kdv_1d", 1, seed=-1), OptionError, "seed"),
    Case("generate-chunk", lambda: generate("kdv_1d", 1, chunk_size=0), OptionError, "chunk_size"),
    Case("pairs-max-lead-zero", pairs(max_lead=0), OptionError, "max_lead"),
    Case("pairs-max-lead-negative", pairs(max_lead=-1), OptionError, "max_lead"),
    Case("pairs-min-lead-two", pairs(min_lead=2), OptionError, "min_lead"),
    Case("pairs-n-times-zero", pairs(n_times=0), OptionError, "n_times"),
    Case("pairs-one-time-min-lead", pairs(n_times=1, min_lead=1), OptionError, "n_times"),
    Case("pairs-trajectories-float", pairs(n_trajectories=2.0), OptionError, "n_trajectories"),
]


@pytest.mark.parametrize("case", params(DATA))
def test_bad_data_input_is_refused_naming_the_argument(case):
    check(case)


@pytest.mark.parametrize(
    "make, error, name",
    [(writer_missing, FormatError, "trajectories"), (writer_bad_block, ShapeError, "block")],
    ids=["writer-missing", "writer-block"],
)
def test_bad_writes_are_refused_and_leave_nothing(tmp_path, make, error, name):
    check(Case("write", lambda: make(tmp_path), error, name))
    assert not list(tmp_path.iterdir())  # no partial file


# ---------------------------------------------------------------- converter
@functools.cache
def scot_pair():
    pytest.importorskip("jax")
    from sciml_seq.torch.operator import ScOT
    from tests.operator.reference import micro_config

    torch.manual_seed(0)
    return micro_config(), ScOT(micro_config())


def template(**changes):
    import dataclasses

    from sciml_seq.jax.operator import ScOT as JaxScOT

    config, _ = scot_pair()
    return JaxScOT(dataclasses.replace(config, **changes), key=None)


def to_jax(**changes):
    from sciml_seq.convert import torch_to_jax

    return lambda: torch_to_jax(scot_pair()[1], template(**changes))


def to_torch_from_template():
    from sciml_seq.convert import jax_to_torch

    return jax_to_torch(template(), scot_pair()[1])


def to_jax_other_module():
    from sciml_seq import torch as st
    from sciml_seq.convert import torch_to_jax

    return torch_to_jax(st.TimeMLP(2, 4, 1), template())


CONVERT = [
    Case("convert-eps", to_jax(layer_norm_eps=1e-3), OptionError, "layer_norm_eps"),
    Case("convert-act", to_jax(hidden_act="relu"), OptionError, "hidden_act"),
    Case("convert-window", to_jax(window_size=2), OptionError, "window_size"),
    Case("convert-p", to_jax(p=2), OptionError, "p"),
    Case(
        "convert-slices",
        to_jax(channel_slice_list_normalized_loss=(0, 2)),
        OptionError,
        "channel_slice_list_normalized_loss",
    ),
    Case(
        "convert-embed-dim",
        to_jax(embed_dim=8),
        ShapeError,
        "embeddings.patch_embeddings.projection.weight",
    ),
    Case(
        "convert-depths",
        to_jax(depths=(1, 2)),
        OptionError,
        "encoder.layers.0.blocks.1.attention.self.logit_scale",
    ),
    Case(
        "convert-out-channels",
        to_jax(num_out_channels=3),
        ShapeError,
        "patch_recovery.projection.weight",
    ),
    Case("convert-template-to-torch", to_torch_from_template, OptionError, "jax_module"),
    Case("convert-other-module", to_jax_other_module, OptionError, "layers.0.weight"),
]


@pytest.mark.parametrize("case", params(CONVERT))
def test_converter_mismatch_is_refused_naming_it(case):
    check(case)


# ------------------------------------------------------------ host engines
@functools.cache
def mlp():
    from sciml_seq import torch as st

    torch.manual_seed(0)
    return st.TimeMLP(2, 4, 1, dtype=torch.float64)


def host_solve(engine="scipy", y=None, **options):
    from sciml_seq import torch as st

    y = torch.zeros(2, 2, dtype=torch.float64) if y is None else y
    ts = torch.tensor([0.0, 0.5], dtype=y.dtype)
    return lambda: st.solve(mlp(), y, ts, engine=engine, **options)


def spec(**kw):
    from sciml_seq.host import MLPFieldSpec

    return lambda: MLPFieldSpec(**{"features": 2, "hidden": 4, **kw})


@pytest.fixture
def no_julia(monkeypatch):
    import sys

    import sciml_seq.julia.backend as backend

    if "juliacall" in sys.modules:
        pytest.skip("juliacall is loaded in this process")
    monkeypatch.setattr(backend, "find_julia", lambda: (None, "no julia (test)"))
    monkeypatch.delenv(backend.AUTO_INSTALL_ENV, raising=False)


HOSTS = [
    Case("scipy-method", host_solve(method="RK45x"), OptionError, "method"),
    Case("scipy-adjoint", host_solve(adjoint="direct"), OptionError, "adjoint"),
    Case("scipy-dtmin", host_solve(dtmin=1e-3), OptionError, "dtmin"),
    Case("scipy-safety", host_solve(safety=0.8), OptionError, "safety"),
    Case(
        "scipy-engine-options",
        host_solve(engine_options={"first_step": 0.1}),
        OptionError,
        "engine_options",
    ),
    Case("scipy-seminorm", host_solve(adjoint="backsolve", seminorm=True), OptionError, "seminorm"),
    Case(
        "scipy-y0-nan",
        host_solve(y=torch.full((2, 2), math.nan, dtype=torch.float64)),
        NonFiniteError,
        "y0",
    ),
    Case("scipy-y0-f32", host_solve(y=torch.zeros(2, 2)), DTypeError, "y0"),
    Case("julia-method", host_solve("julia", method="Rodas9"), OptionError, "method"),
    Case("julia-vjp", host_solve("julia", engine_options={"vjp": "enzyme2"}), OptionError, "vjp"),
    Case(
        "julia-controller",
        host_solve("julia", engine_options={"controller": "pid2"}),
        OptionError,
        "controller",
    ),
    Case("julia-safety", host_solve("julia", safety=0.5), OptionError, "safety"),
    Case("spec-features", spec(features=0), OptionError, "features"),
    Case("spec-activation", spec(activation="mish"), OptionError, "activation"),
    Case(
        "spec-conditioning", spec(time_conditioning="film+concat"), OptionError, "time_conditioning"
    ),
]


@pytest.mark.parametrize("case", params(HOSTS))
def test_bad_host_option_is_refused_naming_it(case):
    check(case)


def test_julia_without_julia_names_the_engine(no_julia):
    check(Case("julia-missing", host_solve("julia"), UnavailableError, "engine"))


# ------------------------------------------------------- JAX constructors
def jax_cases() -> list[Case]:
    pytest.importorskip("jax")
    import jax

    from sciml_seq import jax as sj

    key = jax.random.key(0)
    mlp_ = functools.partial(sj.TimeMLP, key=key)
    # the encoder's string depth: depth_mode (depth before its rename)
    depth = (
        "depth_mode"
        if "depth_mode" in inspect.signature(sj.TransformerEncoder).parameters
        else "depth"
    )
    return [
        Case("jax-mlp-features", lambda: mlp_(0, 4), OptionError, "features"),
        Case(
            "jax-mlp-activation", lambda: mlp_(2, 4, activation="swishh"), OptionError, "activation"
        ),
        Case(
            "jax-mlp-conditioning",
            lambda: mlp_(2, 4, time_conditioning="add"),
            OptionError,
            "time_conditioning",
        ),
        Case("jax-enc-heads", lambda: sj.TransformerEncoder(8, 3, key=key), OptionError, "heads"),
        Case(
            "jax-enc-depth",
            lambda: sj.TransformerEncoder(8, 2, **{depth: "deep"}, key=key),
            OptionError,
            depth,
        ),
        Case(
            "jax-enc-ode-layers",
            lambda: sj.TransformerEncoder(8, 2, **{depth: "ode"}, n_layers=3, key=key),
            OptionError,
            "n_layers",
        ),
        Case(
            "jax-enc-t-end",
            lambda: sj.TransformerEncoder(8, 2, t_end=-1.0, key=key),
            OptionError,
            "t_end",
        ),
        Case(
            "jax-enc-fixed-rtol",
            lambda: sj.TransformerEncoder(8, 2, method="rk4", n_steps=2, rtol=1e-2, key=key),
            OptionError,
            "rtol",
        ),
        Case("jax-s4d-d-model", lambda: sj.S4D(0, key=key), OptionError, "d_model"),
        Case("jax-s4d-init", lambda: sj.S4D(3, 4, init="legx", key=key), OptionError, "init"),
        Case("jax-s4d-dt", lambda: sj.S4D(3, 4, dt_min=-1.0, key=key), OptionError, "dt_min"),
        Case("jax-lssl-disc", lambda: sj.LSSL(3, 4, disc="rk4", key=key), OptionError, "disc"),
        Case("jax-sin-dim", lambda: sj.SinusoidalEncoding(7), OptionError, "dim"),
        Case("jax-rot-head", lambda: sj.RotaryEncoding(7), OptionError, "head_dim"),
        Case(
            "jax-block-engine", lambda: sj.ODEBlock(None, engine="torchode"), OptionError, "engine"
        ),
        Case(
            "jax-block-rtol-fixed",
            lambda: sj.ODEBlock(None, method="rk4", n_steps=2, rtol=1e-3),
            OptionError,
            "rtol",
        ),
        Case("jax-block-steer", lambda: sj.ODEBlock(None, steer=-1.0), OptionError, "steer"),
        Case("jax-stack-layers", lambda: sj.ResidualStack(None, 0), OptionError, "n_layers"),
    ]


@pytest.mark.parametrize("case", params(jax_cases()))
def test_bad_jax_option_is_refused_at_construction(case):
    check(case)


# ------------------------------------------------------------ command line
CLI = [
    ("cli-data-missing", ["train", "operator", "--data", "/nonexistent.h5"], "--data"),
    ("cli-unknown-command", ["trian"], "trian"),
    ("cli-unknown-option", ["train", "operator", "--dataa", "x"], "--dataa"),
    (
        "cli-train-device-tpu",
        ["train", "operator", "--data", "{good}", "--device", "tpu"],
        "device",
    ),
    (
        "cli-train-device-cuda9",
        ["train", "operator", "--data", "{good}", "--device", "cuda:9"],
        "device",
    ),
    ("cli-train-steps-zero", ["train", "operator", "--data", "{good}", "--steps", "0"], "--steps"),
    (
        "cli-train-batch-zero",
        ["train", "operator", "--data", "{good}", "--batch-size", "0"],
        "--batch-size",
    ),
    (
        "cli-train-slices",
        ["train", "operator", "--data", "{good}", "--channel-slices", "a,b"],
        "--channel-slices",
    ),
    (
        "cli-train-model",
        ["train", "operator", "--data", "{good}", "--model", "unet", "--out", "{tmp}"],
        "model",
    ),
    (
        "cli-train-nan-data",
        [
            "train",
            "operator",
            "--data",
            "{nan}",
            "--model",
            "fno",
            "--steps",
            "1",
            "--out",
            "{tmp}",
        ],
        "u",
    ),
    (
        "cli-evaluate-device",
        ["evaluate", "--checkpoint", "{tmp}", "--data", "{good}", "--device", "tpu"],
        "device",
    ),
    (
        "cli-evaluate-data",
        ["evaluate", "--checkpoint", "{tmp}", "--data", "/nonexistent.h5"],
        "--data",
    ),
    (
        "cli-evaluate-lead-steps",
        ["evaluate", "--checkpoint", "{tmp}", "--data", "{good}", "--lead-steps", "x"],
        "--lead-steps",
    ),
    ("cli-compare-device-tpu", ["compare", "--device", "tpu"], "device"),
    ("cli-compare-device-cuda", ["compare", "--device", "cuda:7"], "device"),
    ("cli-compare-seeds", ["compare", "--seeds", "0"], "--seeds"),
    ("cli-forecast-device", ["forecast", "ett", "--root", "{tmp}", "--device", "tpu"], "device"),
    ("cli-compare-framework", ["compare", "--framework", "tf"], "framework"),
    ("cli-compare-task", ["compare", "--task", "weather"], "tasks"),
    ("cli-compare-engine", ["compare", "--engines", "rk45"], "engines"),
    ("cli-compare-config-missing", ["compare", "--config", "/nonexistent.toml"], "config"),
    ("cli-generate-name", ["data", "generate", "heat", "--out", "{tmp}/d.h5"], "NAME"),
    ("cli-generate-n", ["data", "generate", "kdv_1d", "--out", "{tmp}/d.h5", "--n", "0"], "--n"),
    (
        "cli-generate-param",
        ["data", "generate", "kdv_1d", "--out", "{tmp}/d.h5", "--param", "nu=1"],
        "params",
    ),
    (
        "cli-generate-resolution",
        ["data", "generate", "kdv_1d", "--out", "{tmp}/d.h5", "--resolution", "2"],
        "--resolution",
    ),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c[0]) for c in CLI])
def test_cli_misuse_is_one_error_line_and_exit_2(files, tmp_path, case):
    from typer.testing import CliRunner

    from sciml_seq.cli import app

    _, args, name = case
    args = [a.format(good=files["good"], nan=files["nan"], tmp=tmp_path) for a in args]
    result = CliRunner().invoke(app, args)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert names(lines[0], name), lines[0]
    assert "╭" not in result.output and "Traceback" not in result.output
