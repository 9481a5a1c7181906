"""Safe checkpoints: atomic replacement, recovery after a kill, and one error line for every
damaged or mismatched checkpoint (the files, the CLI)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file
from typer.testing import CliRunner

from sciml_seq.cli import app
from sciml_seq.errors import FormatError, OptionError, ShapeError
from sciml_seq.train.checkpoint import (
    PAUSE_ENV,
    load_checkpoint,
    read_checkpoint_meta,
    resolve_checkpoint,
    save_checkpoint,
)
from sciml_seq.train.pair_dataset import PairDataset
from sciml_seq.train.trainer import TrainConfig, Trainer

from .conftest import TinyOperator, decay_trajectories, train_operator_args, write_decay_file
from .test_cli_errors import assert_one_line_error

pytest.importorskip("neuralop")

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


def _model(seed: int) -> TinyOperator:
    torch.manual_seed(seed)
    return TinyOperator()


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def test_replacing_a_checkpoint_leaves_no_leftovers_and_stamps_both_files(tmp_path):
    target = tmp_path / "final"
    save_checkpoint(target, model=_model(0), step=3, run_id="abc")
    save_checkpoint(target, model=_model(1), step=5, run_id="abc")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]
    meta = read_checkpoint_meta(target)
    assert (meta["step"], meta["run_id"], meta["path"]) == (5, "abc", target)
    expected = _model(1).state_dict()
    for name, value in _weights(target).items():
        assert torch.equal(value, expected[name]), name


def test_an_interrupted_swap_loads_the_previous_checkpoint(tmp_path):
    """The state a kill between the two renames leaves: ``final`` missing, ``final.old-*`` and a
    complete ``final.tmp-*`` beside it.  The old one loads (never a .tmp), with a warning; the
    next save cleans up."""
    target = tmp_path / "final"
    save_checkpoint(target, model=_model(0), step=2, run_id="r")
    save_checkpoint(tmp_path / "new", model=_model(1), step=4, run_id="r")
    os.rename(target, tmp_path / "final.old-aaaa")
    os.rename(tmp_path / "new", tmp_path / "final.tmp-bbbb")
    with pytest.warns(UserWarning, match="missing after an interrupted save; loading"):
        assert resolve_checkpoint(target) == tmp_path / "final.old-aaaa"
    model = _model(7)
    with pytest.warns(UserWarning, match="interrupted save"):
        state = load_checkpoint(target, model=model, restore_rng=False)
    assert state["step"] == 2
    for name, value in _model(0).state_dict().items():
        assert torch.equal(model.state_dict()[name], value), name
    save_checkpoint(target, model=_model(2), step=6, run_id="r")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["final"]


def _writer_script(target: Path, pause: str) -> str:
    """A writer: a complete checkpoint at step 2, then a replacement at step 4 that pauses as
    ``pause`` (the value of ``PAUSE_ENV``) says."""
    return textwrap.dedent(
        f"""
        import os
        import torch
        from sciml_seq.train.checkpoint import PAUSE_ENV, save_checkpoint
        torch.manual_seed(0)
        model = torch.nn.Linear(3, 2)
        opt = torch.optim.AdamW(model.parameters())
        model(torch.ones(1, 3)).sum().backward(); opt.step()
        save_checkpoint({str(target)!r}, model=model, optimizer=opt, step=2, run_id="run")
        torch.save(model.state_dict(), {str(target) + ".expected"!r})
        with torch.no_grad():
            model.weight.add_(1.0)
        opt.step()
        os.environ[PAUSE_ENV] = {pause!r}
        save_checkpoint({str(target)!r}, model=model, optimizer=opt, step=4, run_id="run")
        """
    )


def _kill_writer_at(stage: str, target: Path) -> None:
    """Run the writer, SIGKILL it when it pauses at ``stage``."""
    marker = target.parent / "paused"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    script = _writer_script(target, f"{stage}:{marker}")
    proc = subprocess.Popen([sys.executable, "-c", script], env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, f"the writer exited with {proc.returncode}"
            assert time.monotonic() < deadline, "the writer never paused"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _assert_step_2_loads(target: Path) -> None:
    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    state = load_checkpoint(target, model=model, optimizer=optimizer, restore_rng=False)
    assert state["step"] == 2 and state["run_id"] == "run"
    expected = torch.load(str(target) + ".expected")
    for name, value in model.state_dict().items():
        assert torch.equal(value, expected[name]), name
    assert optimizer.state_dict()["state"][0]["step"] == 1  # the optimizer of step 2, too


def test_a_writer_killed_between_the_files_keeps_the_previous_checkpoint(tmp_path):
    target = tmp_path / "final"
    _kill_writer_at("between-files", target)
    assert {p.name.split("-")[0] for p in tmp_path.iterdir() if p.is_dir()} == {
        "final",
        "final.tmp",
    }
    _assert_step_2_loads(target)


@pytest.mark.slow  # a second writer process (~3 s)
def test_a_writer_killed_between_the_renames_recovers_the_previous_checkpoint(tmp_path):
    target = tmp_path / "final"
    _kill_writer_at("between-renames", target)
    assert not target.exists()
    with pytest.warns(UserWarning, match="interrupted save"):
        _assert_step_2_loads(target)


# -- damaged checkpoints: the functions ------------------------------------------------------
@pytest.fixture
def saved(tmp_path):
    path = save_checkpoint(tmp_path / "ck", model=_model(0), step=3, run_id="one")
    return path


def test_files_of_two_saves_are_refused(saved, tmp_path):
    other = save_checkpoint(tmp_path / "other", model=_model(0), step=5, run_id="two")
    shutil.copy(other / "training.safetensors", saved / "training.safetensors")
    with pytest.raises(FormatError, match="model.safetensors is from step 3 of run 'one' but"):
        load_checkpoint(saved, model=_model(0))


@pytest.mark.parametrize("name", ["model.safetensors", "training.safetensors"])
def test_truncated_files_are_refused(saved, name):
    data = (saved / name).read_bytes()
    (saved / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(FormatError, match=f"{name} is not a readable safetensors file"):
        load_checkpoint(saved, model=_model(0))


def test_nonfinite_and_integer_weights_are_refused(saved):
    weights = _weights(saved)
    meta = {"step": "3", "run_id": "one", "model_spec": "{}"}
    broken = dict(weights, **{"lift.bias": weights["lift.bias"].clone()})
    broken["lift.bias"][1] = float("nan")
    save_file(broken, str(saved / "model.safetensors"), metadata=meta)
    with pytest.raises(FormatError, match="tensor 'lift.bias' has 1 NaN or infinite entries"):
        load_checkpoint(saved, model=_model(0))
    integer = dict(weights, **{"out.weight": weights["out.weight"].to(torch.int32)})
    save_file(integer, str(saved / "model.safetensors"), metadata=meta)
    with pytest.raises(FormatError, match="tensor 'out.weight' is torch.int32; the model"):
        load_checkpoint(saved, model=_model(0))


def test_resume_with_another_batch_size_is_refused(saved, tmp_path):
    trajectories = decay_trajectories()
    first = Trainer(_model(0), PairDataset(*trajectories), TrainConfig(steps=4, batch_size=6))
    first.train_step()
    first.save(tmp_path / "run")
    other = Trainer(_model(0), PairDataset(*trajectories), TrainConfig(steps=4, batch_size=3))
    with pytest.raises(OptionError, match=r"batch_size: expected the batch size of the run in"):
        other.load(tmp_path / "run")
    same = Trainer(_model(1), PairDataset(*trajectories), TrainConfig(steps=8, batch_size=6))
    same.load(tmp_path / "run")
    assert (same.step, same.run_id) == (1, first.run_id)  # the resumed run keeps its id


# -- the CLI ------------------------------------------------------------------------------------
@pytest.fixture
def run(tmp_path):
    """A 2-step tiny FNO run in ``tmp_path / "run"`` on 4 trajectories of 4 times."""
    data = write_decay_file(tmp_path / "toy.h5", n=4, n_times=4, channels=2, size=8)
    args = train_operator_args(data, steps=2, batch_size=4)
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    return data, args, tmp_path / "run"


def test_cli_out_of_an_existing_run_needs_resume_or_overwrite(run):
    data, args, out = run
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert_one_line_error(result, f"out: {str(out)!r} already holds a run (final); resume it")
    before = _weights(out / "final")
    result = runner.invoke(app, [*args, "--out", str(out), "--overwrite", "--seed", "1"])
    assert result.exit_code == 0, result.output
    after = _weights(out / "final")
    assert any(not torch.equal(before[k], after[k]) for k in before)  # another seed's run
    result = runner.invoke(
        app, [*args, "--steps", "4", "--out", str(out), "--resume", str(out / "final")]
    )
    assert result.exit_code == 0, result.output
    assert "now at step 4" in result.output


def test_cli_refuses_every_damaged_or_mismatched_checkpoint(run, tmp_path):
    data, args, out = run
    final = out / "final"
    evaluate = ["evaluate", "--data", str(data), "--out", str(tmp_path / "e"), "--plots", "0"]
    resume = [*args, "--out", str(tmp_path / "next"), "--resume"]

    result = runner.invoke(app, [*resume, str(final), "--batch-size", "2"])
    assert_one_line_error(result, "batch_size: expected the batch size of the run in")
    result = runner.invoke(app, [*resume, str(final), "--option", "hidden_channels=4"])
    assert_one_line_error(result, "model: expected the model of the checkpoint to resume")
    result = runner.invoke(app, [*resume, str(tmp_path / "nowhere")])
    assert_one_line_error(result, "(no such directory)")
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "x"), "--max-seconds", "0"])
    assert_one_line_error(result, "max_seconds: expected a finite real number > 0.0; got 0.0")

    mixed = tmp_path / "mixed"
    shutil.copytree(final, mixed)
    other = save_checkpoint(tmp_path / "other", model=torch.nn.Linear(1, 1), step=9)
    shutil.copy(other / "training.safetensors", mixed / "training.safetensors")
    for command in ([*resume, str(mixed)], [*evaluate, "--checkpoint", str(mixed)]):
        assert_one_line_error(runner.invoke(app, command), "(files of two different saves)")

    for name in ("model.safetensors", "training.safetensors"):
        broken = tmp_path / f"truncated-{name}"
        shutil.copytree(final, broken)
        data_bytes = (broken / name).read_bytes()
        (broken / name).write_bytes(data_bytes[:100])
        for command in ([*resume, str(broken)], [*evaluate, "--checkpoint", str(broken)]):
            result = runner.invoke(app, command)
            assert_one_line_error(result, f"{name} is not a readable safetensors file")

    nan = tmp_path / "nan"
    shutil.copytree(final, nan)
    weights = _weights(nan)
    name = sorted(k for k, v in weights.items() if v.is_floating_point())[0]
    weights[name] = torch.full_like(weights[name], float("inf"))
    from safetensors import safe_open

    with safe_open(str(final / "model.safetensors"), "pt") as f:
        meta = f.metadata()
    save_file(weights, str(nan / "model.safetensors"), metadata=meta)
    for command in ([*resume, str(nan)], [*evaluate, "--checkpoint", str(nan)]):
        assert_one_line_error(runner.invoke(app, command), f"tensor {name!r} has")


def test_official_checkpoint_with_a_broken_config_is_one_error(tmp_path):
    from sciml_seq.operator.checkpoint import read_checkpoint

    (tmp_path / "config.json").write_text('{"embed_dim": 4,')
    save_file({"x": torch.zeros(1)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(FormatError, match="config.json is not valid JSON"):
        read_checkpoint(tmp_path)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(FormatError, match="config.json: expected a JSON object"):
        read_checkpoint(tmp_path)


@pytest.mark.slow  # a CLI process (~5 s on an idle machine)
def test_cli_run_killed_while_replacing_final_resumes_from_the_previous_one(run, tmp_path):
    """The issue's case: continuing a run into the same --out, killed while ``final`` is
    replaced; the next --resume continues from the previous complete checkpoint and ends
    with the weights of the same continuation not interrupted."""
    data, args, out = run
    marker = tmp_path / "paused"
    four = [*args, "--steps", "4", "--out", str(out), "--resume", str(out / "final")]
    env = {**os.environ, PAUSE_ENV: f"between-renames:{marker}", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "sciml_seq.cli", *four], env=env, cwd=ROOT)
    try:
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert proc.poll() is None, f"the run exited with {proc.returncode}"
            assert time.monotonic() < deadline, "the run never paused"
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert not (out / "final").exists()
    with pytest.warns(UserWarning, match="interrupted save"):
        assert read_checkpoint_meta(out / "final")["step"] == 2
    with pytest.warns(UserWarning, match="interrupted save"):
        result = runner.invoke(app, four)
    assert result.exit_code == 0, result.output
    assert "2 steps in" in result.output and "now at step 4" in result.output
    assert sorted(p.name for p in out.iterdir()) == ["final"]
    straight = tmp_path / "straight"  # the same two runs, not interrupted
    assert runner.invoke(app, [*args, "--out", str(straight)]).exit_code == 0
    continued = [*args, "--steps", "4", "--out", str(straight)]
    result = runner.invoke(app, [*continued, "--resume", str(straight / "final")])
    assert result.exit_code == 0, result.output
    a, b = _weights(out / "final"), _weights(straight / "final")
    for name in a:
        assert torch.equal(a[name], b[name]), name


@pytest.mark.parametrize("framework", ["torch", "jax"])
def test_official_layout_loaders_check_every_tensor(tmp_path, framework):
    """A wrong-shaped bias (which would broadcast), an integer weight and a NaN weight: each
    refused by ScOT.from_pretrained, naming the tensor."""
    from sciml_seq.operator.checkpoint import read_checkpoint, write_checkpoint
    from sciml_seq.torch.operator import ScOT as TorchScOT

    from ..operator.reference import micro_config

    config = micro_config(image_size=8, num_channels=2)
    if framework == "jax":
        pytest.importorskip("jax")
        from sciml_seq.jax.operator import ScOT
    else:
        ScOT = TorchScOT
    torch.manual_seed(0)
    TorchScOT(config).save_pretrained(tmp_path / "good")
    _, arrays = read_checkpoint(tmp_path / "good")
    bias = next(k for k, v in arrays.items() if k.endswith(".bias") and v.size > 1)
    cases = {
        "shape": ({bias: arrays[bias][:1]}, f"tensor {bias!r} has shape (1,); the model"),
        "int": ({bias: arrays[bias].astype(np.int32)}, f"tensor {bias!r} is int32; expected a"),
        "nan": ({bias: arrays[bias] * np.nan}, f"tensor {bias!r} has {arrays[bias].size} NaN"),
    }
    if framework == "jax":  # the case (a broadcasting bias) in JAX; the rest in torch
        ScOT.from_pretrained(tmp_path / "good")  # loads
        cases = {"shape": cases["shape"]}
    for name, (change, message) in cases.items():
        write_checkpoint(tmp_path / name, config, {**arrays, **change})
        with pytest.raises((ShapeError, FormatError), match=re.escape(message)):
            ScOT.from_pretrained(tmp_path / name)
