"""DDP: 2 gloo processes on the CPU give the gradients of 1 process on the combined batch,
and a resumed 2-process run repeats an uninterrupted one bitwise."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from safetensors import safe_open

from sciml_seq.torch.operator import ScOT
from sciml_seq.train import distributed
from sciml_seq.train.pair_dataset import PairDataset
from sciml_seq.train.trainer import TrainConfig, Trainer

from ..operator.reference import micro_config
from .conftest import TinyOperator, decay_trajectories, train_operator_args, write_decay_file

CONFIG = TrainConfig(steps=3, batch_size=8, lr=1e-2, warmup_steps=1, clip_norm=0.05)

TINY_SCOT = micro_config(image_size=8, num_channels=2, channel_slice_list_normalized_loss=None)
"""A two-stage scOT for the 2-channel 8 x 8 toy fields (token grids 4 x 4 and 2 x 2)."""

MODELS = {"stand-in": TinyOperator, "scot": lambda: ScOT(TINY_SCOT)}


def _run(model: str, steps: int) -> tuple[list[torch.Tensor], dict[str, torch.Tensor], list[float]]:
    torch.manual_seed(0)
    trainer = Trainer(MODELS[model](), PairDataset(*decay_trajectories()), CONFIG)
    grads, losses = [], []
    for _ in range(steps):
        losses.append(trainer.train_step())
        grads.append(torch.cat([p.grad.flatten() for p in trainer.module.parameters()]))
    return grads, trainer.module.state_dict(), losses


def _spawn(worker, tmp_path, *args) -> None:
    """Run ``worker(rank, 2, init, *args)`` on 2 gloo processes.

    Each group gets a rendezvous file of its own (a FileStore file must not be reused)."""
    init = f"file://{tmp_path / f'rendezvous-{next(_GROUPS)}'}"
    mp.spawn(worker, args=(2, init, *args), nprocs=2, join=True)


_GROUPS = itertools.count()


def _in_group(rank: int, world: int, init: str, work) -> None:
    """Run ``work()`` in a gloo group of ``world`` processes, then leave it together.

    The barrier keeps a rank from tearing down while its peer still talks to it (gloo
    then aborts the process: "terminate called without an active exception"); after
    an error the rank leaves at once, so that its peer fails instead of waiting."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        work()
    except BaseException:
        dist.destroy_process_group()
        raise
    dist.barrier()
    dist.destroy_process_group()


def _worker(rank: int, world: int, init: str, out: str, model: str) -> None:
    def work() -> None:
        assert (distributed.rank(), distributed.world_size()) == (rank, world)
        grads, state, losses = _run(model, CONFIG.steps)
        torch.save({"grads": grads, "state": state, "losses": losses}, f"{out}.{rank}")

    _in_group(rank, world, init, work)


@pytest.mark.parametrize(  # ~10 s each on 2 busy cores, mostly process start-up
    "model", [pytest.param("stand-in", marks=pytest.mark.slow), "scot"]
)
def test_two_processes_equal_one_on_the_combined_batch(tmp_path, model):
    out = str(tmp_path / "result")
    _spawn(_worker, tmp_path, out, model)
    grads, state, losses = _run(model, CONFIG.steps)
    for rank in (0, 1):
        got = torch.load(f"{out}.{rank}")
        for step, (g, ref) in enumerate(zip(got["grads"], grads, strict=True)):
            torch.testing.assert_close(g, ref, rtol=1e-5, atol=1e-7, msg=f"step {step}")
        for name, value in got["state"].items():
            torch.testing.assert_close(value, state[name], rtol=1e-5, atol=1e-6, msg=name)
    # each rank's loss is its half of the batch: their mean is the combined loss
    halves = [torch.load(f"{out}.{r}")["losses"] for r in (0, 1)]
    for step, combined in enumerate(losses):
        assert (halves[0][step] + halves[1][step]) / 2 == pytest.approx(combined, rel=1e-5)


RESUME = TrainConfig(steps=6, batch_size=8, lr=1e-2, warmup_steps=1)


def _resume_worker(rank: int, world: int, init: str, out: str, phase: str) -> None:
    """``straight``: 6 steps; ``first``: 3 steps and a checkpoint; ``resumed``: load it, finish."""

    def work() -> None:
        torch.manual_seed(0)
        model = TinyOperator(dropout=0.5)
        trainer = Trainer(model, PairDataset(*decay_trajectories()), RESUME)
        torch.manual_seed(100 + rank)  # each rank its own dropout masks
        if phase == "first":
            for _ in range(3):
                trainer.train_step()
            trainer.save(f"{out}.checkpoint")
            return
        if phase == "resumed":
            torch.manual_seed(7)  # any other state: the checkpoint must restore this rank's
            trainer.load(f"{out}.checkpoint")
        trainer.fit()
        torch.save(trainer.module.state_dict(), f"{out}.{phase}.{rank}")

    _in_group(rank, world, init, work)


@pytest.mark.slow
def test_two_process_resume_repeats_the_uninterrupted_run_bitwise(tmp_path):
    """Each rank draws its own dropout masks: the checkpoint must hold every rank's state."""
    out = str(tmp_path / "run")
    for phase in ("straight", "first", "resumed"):
        _spawn(_resume_worker, tmp_path, out, phase)
    with safe_open(f"{out}.checkpoint/training.safetensors", "pt") as f:
        assert not torch.equal(f.get_tensor("rng.0.cpu"), f.get_tensor("rng.1.cpu"))
    for rank in (0, 1):
        straight = torch.load(f"{out}.straight.{rank}")
        resumed = torch.load(f"{out}.resumed.{rank}")
        for name, value in straight.items():
            assert torch.equal(resumed[name], value), (rank, name)


def test_single_process_defaults():
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    assert distributed.init_from_env("cpu") == torch.device("cpu")


@pytest.mark.slow
def test_torchrun_cli_matches_one_process(tmp_path):
    """`torchrun --nproc-per-node 2 -m sciml_seq.cli train operator` == the 1-process run."""
    import subprocess
    import sys

    from safetensors.torch import load_file

    pytest.importorskip("neuralop")
    data = write_decay_file(tmp_path / "toy.h5", n=4, n_times=4, channels=2, size=8)
    args = ["-m", "sciml_seq.cli", *train_operator_args(data, steps=3, batch_size=8)]
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc-per-node",
        "2",
        "--master-port",
        "29517",
    ]
    for cmd, out in ((torchrun, "two"), ([sys.executable], "one")):
        run = subprocess.run(
            [*cmd, *args, "--out", str(tmp_path / out)], capture_output=True, text=True, timeout=300
        )
        assert run.returncode == 0, run.stdout + run.stderr
    two = load_file(str(tmp_path / "two" / "final" / "model.safetensors"))
    one = load_file(str(tmp_path / "one" / "final" / "model.safetensors"))
    assert two.keys() == one.keys()
    for name in one:
        torch.testing.assert_close(two[name], one[name], rtol=1e-5, atol=1e-6, msg=name)
