"""DDP: 2 gloo processes on the CPU give the gradients of 1 process on the combined batch."""

from __future__ import annotations

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from sciml_seq.train import distributed
from sciml_seq.train.pair_dataset import PairDataset
from sciml_seq.train.trainer import TrainConfig, Trainer

from .conftest import TinyOperator, decay_trajectories, train_operator_args

CONFIG = TrainConfig(steps=3, batch_size=8, lr=1e-2, warmup_steps=1, clip_norm=0.05)


def _run(steps: int) -> tuple[list[torch.Tensor], dict[str, torch.Tensor], list[float]]:
    torch.manual_seed(0)
    trainer = Trainer(TinyOperator(), PairDataset(*decay_trajectories()), CONFIG)
    grads, losses = [], []
    for _ in range(steps):
        losses.append(trainer.train_step())
        grads.append(torch.cat([p.grad.flatten() for p in trainer.module.parameters()]))
    return grads, trainer.module.state_dict(), losses


def _worker(rank: int, world: int, init: str, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
    try:
        assert (distributed.rank(), distributed.world_size()) == (rank, world)
        grads, state, losses = _run(CONFIG.steps)
        torch.save({"grads": grads, "state": state, "losses": losses}, f"{out}.{rank}")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_processes_equal_one_on_the_combined_batch(tmp_path):
    init, out = f"file://{tmp_path / 'rendezvous'}", str(tmp_path / "result")
    mp.spawn(_worker, args=(2, init, out), nprocs=2, join=True)
    grads, state, losses = _run(CONFIG.steps)
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


def test_single_process_defaults():
    assert (distributed.rank(), distributed.world_size(), distributed.is_main()) == (0, 1, True)
    assert distributed.init_from_env("cpu") == torch.device("cpu")


@pytest.mark.slow
def test_torchrun_cli_matches_one_process(tmp_path):
    """`torchrun --nproc-per-node 2 -m sciml_seq.cli train operator` == the 1-process run."""
    import subprocess
    import sys

    from safetensors.torch import load_file

    from sciml_seq.data import pde

    pytest.importorskip("neuralop")
    u, t = decay_trajectories(n=4, n_times=4, channels=2, size=8)
    data = tmp_path / "toy.h5"
    pde.write_trajectories(data, pde.Trajectories(u=u, t=t, meta={}))
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
