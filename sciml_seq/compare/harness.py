"""Train fixed-depth and continuous-depth models on one task and measure them."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..data.oscillator import make_oscillator_task


@dataclass(frozen=True)
class CompareConfig:
    """Sizes of the comparison; ``quick()`` fits in under three minutes on 2 CPU cores."""

    n_train: int = 2048
    n_test: int = 512
    horizon: float = 3.0
    width: int = 16
    hidden: int = 64
    n_layers: int = 8
    tolerances: tuple[float, ...] = (1e-3, 1e-6)
    epochs: int = 60
    batch_size: int = 128
    learning_rate: float = 3e-3
    seed: int = 0

    @classmethod
    def quick(cls) -> CompareConfig:
        return cls(n_train=512, n_test=256, epochs=30, batch_size=64)


@dataclass(frozen=True)
class Candidate:
    """A named model: ``build(field)`` wraps the shared vector-field module."""

    name: str
    build: Callable
    """``build(field) -> block``: a module ``(batch, width) -> (batch, width)`` with a
    ``last_stats`` attribute (:class:`~sciml_seq.stats.SolveStats` of its last call)."""


@dataclass
class Result:
    """Measurements of one trained candidate.

    NFE are means over the batches of every epoch (per-sample forward counts averaged
    over each batch; backward counts per batch); time is the median epoch.
    """

    name: str
    parameters: int
    test_rel_l2: float
    nfe_forward: float
    nfe_backward: float
    seconds_per_epoch: float
    losses: list[float] = field(default_factory=list)


def default_candidates(config: CompareConfig) -> list[Candidate]:
    """Residual stack of N layers, rk4 with N steps, dopri5 at each tolerance."""
    from ..torch import ODEBlock, ResidualStack

    n = config.n_layers
    candidates = [
        Candidate(f"resnet-{n}", lambda f: ResidualStack(f, n)),
        Candidate(f"ode-rk4-{n}", lambda f: ODEBlock(f, method="rk4", n_steps=n)),
    ]
    for tol in config.tolerances:
        candidates.append(
            Candidate(
                f"ode-dopri5-{tol:g}",
                lambda f, tol=tol: ODEBlock(f, method="dopri5", rtol=tol, atol=tol),
            )
        )
    return candidates


def run_comparison(
    config: CompareConfig,
    candidates: Sequence[Candidate] | None = None,
    progress: Callable[[str, int, float], None] | None = None,
) -> list[Result]:
    """Train every candidate on the damped-oscillator flow map and measure it.

    Each candidate is ``decoder(block(encoder(x0)))`` with a linear encoder
    ``2 -> width``, the candidate's block on a :class:`~sciml_seq.torch.TimeMLP`
    field, and a linear decoder; all start from the same weights.  The loss is
    the MSE of the predicted state after ``horizon``; the test metric is the
    relative L2 error over the test set.  ``progress(name, epoch, loss)`` is
    called after every epoch.
    """
    import torch
    from torch import nn

    from ..torch import TimeMLP

    data = make_oscillator_task(config.n_train, config.n_test, config.horizon, seed=config.seed)
    x_train, y_train = (
        torch.as_tensor(a, dtype=torch.float32) for a in (data.x_train, data.y_train)
    )
    x_test, y_test = (torch.as_tensor(a, dtype=torch.float32) for a in (data.x_test, data.y_test))
    results = []
    for candidate in candidates or default_candidates(config):
        torch.manual_seed(config.seed)
        field_module = TimeMLP(config.width, config.hidden, depth=2, activation="tanh")
        block = candidate.build(field_module)
        model = nn.Sequential(nn.Linear(2, config.width), block, nn.Linear(config.width, 2))
        optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
        generator = torch.Generator().manual_seed(config.seed)
        losses: list[float] = []
        epoch_seconds: list[float] = []
        for epoch in range(config.epochs):
            order = torch.randperm(config.n_train, generator=generator)
            nfe_f, nfe_b, epoch_loss = [], [], 0.0
            start = time.perf_counter()
            for idx in order.split(config.batch_size):
                optimizer.zero_grad()
                loss = nn.functional.mse_loss(model(x_train[idx]), y_train[idx])
                loss.backward()
                optimizer.step()
                epoch_loss += loss.item() * len(idx)
                nfe_f.append(block.last_stats.mean("nfe_forward"))  # mean over the batch
                nfe_b.append(block.last_stats.nfe_backward)
            epoch_seconds.append(time.perf_counter() - start)
            losses.append(epoch_loss / config.n_train)
            if progress is not None:
                progress(candidate.name, epoch, losses[-1])
        with torch.no_grad():
            pred = model(x_test)
        results.append(
            Result(
                name=candidate.name,
                parameters=sum(p.numel() for p in model.parameters()),
                test_rel_l2=float((pred - y_test).norm() / y_test.norm()),
                nfe_forward=float(np.mean(nfe_f)),
                nfe_backward=float(np.mean(nfe_b)),
                seconds_per_epoch=float(np.median(epoch_seconds)),
                losses=losses,
            )
        )
    return results
