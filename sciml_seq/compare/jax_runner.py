"""Train and measure one cell of the comparison grid in JAX (equinox + optax).

The mirror of :mod:`.torch_runner`: :func:`build_model` puts a task's head
around a depth scheme, :func:`run_cell` trains it for the budget and measures
it, and the record has the same keys and meanings as the torch one (the
shared parts are in :mod:`.measure`).  Every cell of a seed starts from the
same weights: ``jax.random.PRNGKey(seed)`` is split into the keys of the
encoder, the field, the decoder, the block's own parameters (ACT's halting
unit) and the training randomness, in that order; the untied and reversible
stacks copy the field.  Every cell sees the same batches in the same order
(:class:`~sciml_seq.compare.measure.Batches`: ``torch.randperm`` seeded by the
cell's seed, so the same rows as the torch runner; numpy's permutations where
torch is not installed).  Weights differ from the torch runner's (another
random generator), not their distributions.

The model acts on one example and is batched with ``jax.vmap``; the training
step (loss, regularisers with their schedules, ACT's ponder cost, the
gradient and optax's Adam) is one ``jax.jit`` compiled ahead of time, before
the clock starts: ``train_seconds`` and ``seconds_per_step`` exclude
compilation.  The randomness of the blocks (STEER's end time, the Hutchinson
noise of ``"jacobian"``, the time of the local regularisers) is drawn per
example from ``fold_in(training_key, step)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax import Array

from ..stats import SolveStats
from .budget import Budget
from .measure import (
    Batches,
    Progress,
    TrainingLog,
    adaptive_block_options,
    evaluate_splits,
    median_seconds,
)
from .schemes import ACT_PONDER_COST, Cell, Regularization, Scheme
from .tasks import Task, TaskSizes


def dense(linear: eqx.nn.Linear, x: Array) -> Array:
    """``linear`` on the last axis of ``x`` (any leading axes), as torch's ``nn.Linear``."""
    out = x @ linear.weight.T
    return out if linear.bias is None else out + linear.bias


class SequenceEmbedding(eqx.Module):
    """``(length, channels) -> (length, width)``: a linear map plus a learned position
    embedding (initialised ``N(0, 0.02^2)``, as GPT-2's); parameters ``linear.*`` and
    ``position (length, width)`` as torch's."""

    linear: eqx.nn.Linear
    position: Array

    def __init__(self, channels: int, length: int, width: int, *, dtype: Any, key: Array):
        k_linear, k_position = jax.random.split(key)
        self.linear = eqx.nn.Linear(channels, width, dtype=dtype, key=k_linear)
        self.position = 0.02 * jax.random.normal(k_position, (length, width), dtype)

    def __call__(self, x: Array) -> Array:
        return dense(self.linear, x) + self.position


class BlockCost(NamedTuple):
    """What a depth scheme cost on one example.

    Attributes
    ----------
    nfe: field evaluations (0-d integers; ``(batch,)`` under ``jax.vmap``).
    regularization: the ``ODEBlock``'s regulariser values by name (scalars), else empty.
    ponder: ACT's ponder cost ``N + R`` (a scalar), else ``None``.
    """

    nfe: Array
    regularization: dict[str, Array]
    ponder: Array | None


def fixed_cost(block: Any) -> int:
    """Field evaluations of a stack per call: one per layer, two for a reversible layer."""
    from ..jax import ReversibleStack

    if isinstance(block, ReversibleStack):
        return int(block.last_stats.nfe_forward)
    return block.n_layers


def run_block(block: Any, h: Array, key: Array | None) -> tuple[Array, BlockCost]:
    """The block on one example ``h``, with what it cost (``key``: the ``ODEBlock``'s draws)."""
    from ..jax import ACTStack, ODEBlock

    if isinstance(block, ODEBlock):
        out = block.solve(h, key=key)
        return out.ys, BlockCost(out.stats.nfe_forward, out.regularization, None)
    if isinstance(block, ACTStack):
        out = block.solve(h)
        return out.h, BlockCost(out.steps, {}, out.ponder)
    return block(h), BlockCost(jnp.asarray(fixed_cost(block)), {}, None)


class DepthModel(eqx.Module):
    """``decoder(pool(block(encoder(x))))`` on one example; ``pool`` averages the positions
    of a sequence state for a classification task.  Parameter names as torch's
    ``DepthModel`` (``encoder.*``, ``block.*``, ``decoder.*``), so
    :func:`sciml_seq.convert.torch_to_jax` copies its weights."""

    encoder: Any
    block: Any
    decoder: eqx.nn.Linear
    pool: bool = eqx.field(static=True)

    def forward(self, x: Array, key: Array | None = None) -> tuple[Array, BlockCost]:
        """The prediction for one example ``x`` and what the block cost."""
        h, cost = run_block(self.block, self.encoder(x), key)
        return dense(self.decoder, h.mean(0) if self.pool else h), cost

    def __call__(self, x: Array, key: Array | None = None) -> Array:
        return self.forward(x, key)[0]


def build_field(task: Task, sizes: TaskSizes, dtype: Any, key: Array) -> eqx.Module:
    """A :class:`~sciml_seq.jax.TimeMLP` (vector states) or a
    :class:`~sciml_seq.jax.TransformerField` (sequence states) of the task's width."""
    from ..jax import TimeMLP, TransformerField

    if task.state == "sequence":
        return TransformerField(sizes.width, sizes.heads, sizes.hidden, dtype=dtype, key=key)
    return TimeMLP(sizes.width, sizes.hidden, depth=2, activation="tanh", dtype=dtype, key=key)


def copies(field: eqx.Module, n: int) -> list[eqx.Module]:
    """``n`` copies of ``field`` with their own arrays (the untied layers' common start)."""

    def copy(leaf: Any) -> Any:
        return jnp.array(leaf, copy=True) if eqx.is_array(leaf) else leaf

    return [jax.tree_util.tree_map(copy, field) for _ in range(n)]


def build_block(
    scheme: Scheme, field: eqx.Module, engine: str, regularizer: str, key: Array
) -> eqx.Module:
    """The depth scheme on ``field`` (see :mod:`sciml_seq.compare.schemes`); ``key``
    draws the block's own parameters (ACT's halting unit)."""
    from ..jax import ACTStack, ODEBlock, ResidualStack, ReversibleStack

    n = scheme.depth
    if scheme.kind == "untied":
        return ResidualStack(copies(field, n))
    if scheme.kind == "tied":
        return ResidualStack(field, n)
    if scheme.kind in ("euler", "rk4"):
        return ODEBlock(field, method=scheme.kind, n_steps=n)
    if scheme.kind == "act":
        return ACTStack(field, n, key=key)
    if scheme.kind == "reversible":
        return ReversibleStack(copies(field, n))
    return ODEBlock(field, **adaptive_block_options(scheme, engine, regularizer))


def init_keys(seed: int) -> tuple[Array, Array, Array, Array, Array]:
    """``(encoder, field, decoder, block, training)`` keys from ``jax.random.PRNGKey(seed)``."""
    keys = jax.random.split(jax.random.PRNGKey(seed), 5)
    return tuple(keys[i] for i in range(5))  # type: ignore[return-value]


def build_model(task: Task, cell: Cell, sizes: TaskSizes) -> DepthModel:
    """The task's head around the cell's depth scheme, in float32, initialised from
    ``cell.seed`` (:func:`init_keys`)."""
    dtype = jnp.float32
    k_encoder, k_field, k_decoder, k_block, _ = init_keys(cell.seed)
    x = task.train.x
    if task.state == "sequence":
        encoder: Any = SequenceEmbedding(
            x.shape[2], x.shape[1], sizes.width, dtype=dtype, key=k_encoder
        )
    else:
        encoder = eqx.nn.Linear(x.shape[1], sizes.width, dtype=dtype, key=k_encoder)
    field = build_field(task, sizes, dtype, k_field)
    decoder = eqx.nn.Linear(sizes.width, task.n_outputs, dtype=dtype, key=k_decoder)
    block = build_block(cell.scheme, field, cell.engine, cell.regularizer, k_block)
    pool = task.state == "sequence" and task.target == "classification"
    return DepthModel(encoder, block, decoder, pool)


def task_loss(task: Task, pred: Array, y: Array, weight: Array | None) -> Array:
    """The task's training loss on a batch: masked MSE, cross-entropy, or the user's callable."""
    if callable(task.loss):
        return task.loss(pred, y, weight)
    if task.loss == "cross_entropy":
        return optax.softmax_cross_entropy_with_integer_labels(pred, y).mean()
    if weight is None:
        return jnp.mean((pred - y) ** 2)
    return jnp.sum((pred - y) ** 2 * weight) / jnp.maximum(jnp.sum(weight), 1.0)


def penalty(cost: BlockCost, weights: dict[str, Array]) -> Array | float:
    """The regularisers' weighted batch means (``weights``: their schedules at this step)
    and ACT's ponder cost."""
    total: Array | float = 0.0
    for name, weight in weights.items():
        total = total + weight * jnp.mean(cost.regularization[name])
    if cost.ponder is not None:
        total = total + ACT_PONDER_COST * jnp.mean(cost.ponder)
    return total


def backward_evaluations(scheme: Scheme, nfe: np.ndarray) -> float:
    """Field VJPs of a training step's backward pass, from the batch's forward counts ``nfe``.

    JAX does not count them (XLA runs the backward pass); where the scheme fixes
    them they are derived as the torch runner counts them, per batch: one VJP per
    batched forward evaluation for the stacks and fixed-step ``ODEBlock`` s (the
    batch's ``max(nfe)``; a reversible layer's two fields once each) and per step
    the batch ran for ACT (its checkpointed loop runs until the slowest example
    has halted).  NaN for adaptive solves: their VJPs depend on the engine and
    adjoint (the first-step heuristic carries no gradient; a backsolve adjoint
    solves its own ODE) and are not counted.
    """
    if scheme.adaptive:
        return float("nan")
    return float(np.max(nfe))


def _device(device: str) -> Any:
    if device.startswith("cuda"):
        return jax.devices("gpu")[int(device.partition(":")[2] or 0)]
    return jax.devices("cpu")[0]


def _pad(x: np.ndarray, size: int) -> np.ndarray:
    """``x`` with rows repeated from its first up to ``size`` rows (one compiled shape)."""
    if x.shape[0] >= size:
        return x
    return np.concatenate([x, np.repeat(x[:1], size - x.shape[0], axis=0)])


def make_train_step(task: Task, static: Any, optimizer: optax.GradientTransformation) -> Callable:
    """``step(params, opt_state, data, idx, key, weights) -> (params, opt_state, loss, nfe)``:
    one optimizer step on the rows ``idx`` of ``data = (x, y, weight or None)``; ``nfe``
    per example of the batch."""

    def step(params, opt_state, data, idx, key, weights):
        x, y, w = data
        xb, yb = x[idx], y[idx]
        wb = None if w is None else w[idx]
        keys = jax.random.split(key, idx.shape[0])

        def loss_fn(params):
            model = eqx.combine(params, static)
            pred, cost = jax.vmap(model.forward)(xb, keys)
            loss = task_loss(task, pred, yb, wb)
            return loss + penalty(cost, weights), (loss, cost.nfe)

        (_, (loss, nfe)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss, nfe

    return step


def temp_bytes(compiled: Any) -> int | None:
    """XLA's planned temporary memory of a compiled computation (``memory_analysis()``),
    or ``None`` where the backend does not report it."""
    try:
        analysis = compiled.memory_analysis()
    except (AttributeError, NotImplementedError, RuntimeError):
        return None
    size = getattr(analysis, "temp_size_in_bytes", None)
    return None if size is None else int(size)


def peak_bytes(dev: Any) -> int | None:
    """The device's ``peak_bytes_in_use`` (GPU; ``None`` on CPU or where not reported)."""
    if dev.platform == "cpu":
        return None
    stats = dev.memory_stats() or {}
    peak = stats.get("peak_bytes_in_use")
    return None if peak is None else int(peak)


def run_cell(
    task: Task,
    cell: Cell,
    sizes: TaskSizes,
    budget: Budget,
    device: str = "cpu",
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train the cell's model for ``budget`` and measure it; returns the record's numbers.

    The keys and meanings of :func:`sciml_seq.compare.torch_runner.run_cell`, measured
    in JAX:

    - ``train_nfe_forward``: the mean over steps of the batch mean of the per-example
      counts; ``train_nfe_backward``: :func:`backward_evaluations` (NaN for adaptive
      schemes: JAX does not count VJPs);
    - ``test_nfe_forward`` per test sample, ``test_nfe_batch`` as
      :meth:`~sciml_seq.stats.SolveStats.batch_evaluations` (``max`` of the batch's
      counts: a vmapped loop runs until its slowest example is done).  A last test
      batch shorter than ``sizes.batch_size`` is padded with copies of its first row
      (one compiled shape; the copies change no count and are dropped);
    - ``seconds_per_step``, ``train_seconds``: wall time of the compiled step (compiled
      ahead of time, before the clock starts), the batch gather and a device sync;
    - ``activation_bytes``: XLA's planned temporary memory of the compiled training
      step (``memory_analysis().temp_size_in_bytes``: activations kept for the
      backward pass plus workspace, as the compiler plans it; not a count of saved
      tensors as in torch); ``None`` where the backend does not report it;
    - ``peak_memory_bytes``: on a GPU the device's ``peak_bytes_in_use`` (JAX cannot
      reset it: the peak of the process so far, cells before this one included);
      ``None`` on the CPU.
    """
    dev = _device(device)
    with jax.default_device(dev):
        return _run(task, cell, sizes, budget, dev, progress)


def _run(
    task: Task, cell: Cell, sizes: TaskSizes, budget: Budget, dev: Any, progress: Progress | None
) -> dict[str, Any]:
    model = build_model(task, cell, sizes)
    params, static = eqx.partition(model, eqx.is_inexact_array)
    params = jax.device_put(params, dev)
    optimizer = optax.adam(sizes.learning_rate)
    opt_state = optimizer.init(params)
    split = task.train
    arrays = (split.x, split.y, split.weight)
    data = tuple(None if a is None else jax.device_put(a, dev) for a in arrays)
    train_key = init_keys(cell.seed)[4]

    regularization = Regularization.parse(cell.regularizer)  # once, not per step

    def weights_at(log: TrainingLog) -> dict[str, Array]:
        fraction = budget.fraction(log.steps, log.seconds)
        weights = regularization.weights(fraction)
        return {n: jnp.asarray(w, jnp.float32) for n, w in weights.items()}

    batches = Batches(split.x.shape[0], sizes.batch_size, cell.seed)
    log = TrainingLog(cell, progress)
    probe = np.zeros(min(sizes.batch_size, split.x.shape[0]), np.int64)  # a batch's shape
    step = jax.jit(make_train_step(task, static, optimizer))
    compiled = step.lower(params, opt_state, data, probe, train_key, weights_at(log)).compile()
    while not budget.done(log.steps, log.seconds):
        idx = batches.next()
        key = jax.random.fold_in(train_key, log.steps)
        weights = weights_at(log)
        start = time.perf_counter()
        params, opt_state, loss, nfe = compiled(params, opt_state, data, idx, key, weights)
        jax.block_until_ready((params, opt_state, loss))
        elapsed = time.perf_counter() - start
        nfe = np.asarray(nfe)
        backward = backward_evaluations(cell.scheme, nfe)
        log.add(elapsed, float(loss), float(np.mean(nfe)), backward)
    record = evaluate(task, eqx.combine(params, static), sizes)
    record.update(
        log.numbers(),
        parameters=int(sum(a.size for a in jax.tree_util.tree_leaves(params))),
        activation_bytes=temp_bytes(compiled),
        peak_memory_bytes=peak_bytes(dev),
    )
    return record


def evaluate(task: Task, model: DepthModel, sizes: TaskSizes) -> dict[str, Any]:
    """Test and validation metrics, per-sample test NFE and the prediction time, in
    inference mode (no STEER, no local regulariser draws)."""
    params, static = eqx.partition(eqx.nn.inference_mode(model), eqx.is_inexact_array)
    size = sizes.batch_size
    keys = jax.random.split(jax.random.PRNGKey(0), size)  # the "jacobian" noise, if any

    @jax.jit
    def batch_predict(params: Any, x: Array) -> tuple[Array, Array]:
        pred, cost = jax.vmap(eqx.combine(params, static).forward)(x, keys[: x.shape[0]])
        return pred, cost.nfe

    def predict(x: np.ndarray) -> tuple[np.ndarray, SolveStats]:
        n = x.shape[0]
        pred, nfe = batch_predict(params, _pad(x, size))
        nfe = np.asarray(nfe)[:n]
        return np.asarray(pred)[:n], SolveStats(nfe, None, None, None, None)

    out = evaluate_splits(task, size, predict)
    xb = _pad(task.test.x[:size], size)
    out["seconds_per_prediction"] = median_seconds(
        lambda: jax.block_until_ready(batch_predict(params, xb)), lambda: None
    )
    return out


__all__ = [
    "BlockCost",
    "DepthModel",
    "SequenceEmbedding",
    "backward_evaluations",
    "build_block",
    "build_model",
    "run_block",
    "run_cell",
    "task_loss",
]
