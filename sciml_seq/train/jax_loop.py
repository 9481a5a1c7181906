"""JAX/equinox training loop with optax, mirroring the PyTorch :class:`~.trainer.Trainer`.

The model acts on ONE example, ``model(x (C_in, *grid), time ()) -> (C_out, *grid)``
(equinox convention; e.g. :class:`sciml_seq.jax.operator.ScOT`), and is
``vmap``-ed over the batch.  The same pieces as in torch:

* loss: :func:`~sciml_seq.losses.relative_l1_loss` (the same function);
* optimizer: AdamW with the schedule of :func:`~sciml_seq.train.schedule.warmup_cosine`
  (``optax.warmup_cosine_decay_schedule``), global-norm clipping, and one
  AdamW per optimizer hint (:func:`~sciml_seq.train.param_groups.optax_labels`);
* data: :func:`~sciml_seq.train.pairs.pair_batches`;
* data parallelism: ``train(..., mesh=jax.sharding.Mesh(devices, ("data",)))``
  splits each batch over the mesh's first axis and replicates the model and the
  optimizer state (:func:`shard_batch`, :func:`replicate`); the jitted step is
  the same program, partitioned by XLA, so the result equals one device's to
  float rounding (tested with two host devices).  Across hosts, call
  ``jax.distributed.initialize()`` first and build the mesh over ``jax.devices()``.

So on the same batch the loss equals the torch loss, and with the same
weights and batches the updates match torch's AdamW (tested in float64).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ..errors import NonFiniteError, OptionError
from ..losses import relative_l1_loss
from .pairs import PairIndex, pair_batches
from .param_groups import optax_labels
from .schedule import warmup_cosine

__all__ = [
    "batch_loss",
    "first_nonfinite_gradient",
    "jax_predictor",
    "make_optimizer",
    "make_step",
    "replicate",
    "shard_batch",
    "train",
]


def shard_batch(batch: Sequence[Any], mesh: jax.sharding.Mesh) -> tuple[jax.Array, ...]:
    """Arrays of a batch placed with their leading (batch) axis split over ``mesh``'s first
    axis; the batch size must be a multiple of that axis's size."""
    from jax.sharding import NamedSharding, PartitionSpec

    axis = mesh.axis_names[0]
    size = mesh.shape[axis]
    out = []
    for value in batch:
        value = jnp.asarray(value)
        if value.shape[0] % size:
            raise OptionError(
                f"batch_size: expected a multiple of the {size} devices of mesh axis {axis!r}; "
                f"got {value.shape[0]}"
            )
        spec = PartitionSpec(axis, *([None] * (value.ndim - 1)))
        out.append(jax.device_put(value, NamedSharding(mesh, spec)))
    return tuple(out)


def replicate(tree: Any, mesh: jax.sharding.Mesh) -> Any:
    """Every array of ``tree`` (a model, an optimizer state) copied to every device of ``mesh``."""
    from jax.sharding import NamedSharding, PartitionSpec

    sharding = NamedSharding(mesh, PartitionSpec())
    arrays, rest = eqx.partition(tree, eqx.is_array)
    return eqx.combine(jax.device_put(arrays, sharding), rest)


def make_optimizer(
    model: Any,
    *,
    lr: float,
    total_steps: int,
    warmup_steps: int = 0,
    min_lr_ratio: float = 0.0,
    weight_decay: float = 0.0,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    clip_norm: float | None = 1.0,
) -> optax.GradientTransformation:
    """Clipping + AdamW under warm-up/cosine, one AdamW per hinted parameter group.

    ``model``'s optimizer hints (``optim_hints``) set per-parameter ``lr`` and
    ``weight_decay``; the schedule scales every group's learning rate alike.
    """
    warmup_cosine(0, total_steps=total_steps, warmup_steps=warmup_steps, min_ratio=min_lr_ratio)

    def adamw(peak: float, decay: float) -> optax.GradientTransformation:
        schedule = optax.warmup_cosine_decay_schedule(
            0.0, peak, warmup_steps, total_steps, end_value=peak * min_lr_ratio
        )
        return optax.adamw(schedule, b1=betas[0], b2=betas[1], eps=eps, weight_decay=decay)

    label_fn, hints = optax_labels(model)
    transforms = {"default": adamw(lr, weight_decay)}
    for label, hint in hints.items():
        transforms[label] = adamw(hint.get("lr", lr), hint.get("weight_decay", weight_decay))
    chain = [optax.multi_transform(transforms, label_fn)]
    if clip_norm is not None:
        chain.insert(0, optax.clip_by_global_norm(clip_norm))
    return optax.chain(*chain)


def batch_loss(
    model: Any,
    x: jax.Array,
    lead: jax.Array,
    y: jax.Array,
    channel_slice_list: Sequence[int] | None = None,
    reduction: str = "mean",
) -> jax.Array:
    """The training loss of a batch ``x, y`` ``(batch, C, *grid)``, ``lead`` ``(batch,)``."""
    pred = jax.vmap(model)(x, lead)
    return relative_l1_loss(pred, y, channel_slice_list, reduction=reduction)


def make_step(
    optimizer: optax.GradientTransformation,
    channel_slice_list: Sequence[int] | None = None,
    reduction: str = "mean",
) -> Callable:
    """A jitted ``step(model, opt_state, x, lead, y) -> (model, opt_state, loss, finite)``.

    ``finite`` (a boolean scalar) says whether every gradient entry is finite;
    when it is not, the returned model and state are the inputs, not updated.
    """

    @eqx.filter_jit
    def step(model, opt_state, x, lead, y):
        loss, grads = eqx.filter_value_and_grad(batch_loss)(
            model, x, lead, y, channel_slice_list, reduction
        )
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(g)) for g in jax.tree.leaves(grads)]))
        params = eqx.filter(model, eqx.is_inexact_array)
        updates, new_state = optimizer.update(grads, opt_state, params)
        new_model = eqx.apply_updates(model, updates)
        keep = lambda new, old: jnp.where(finite, new, old)  # noqa: E731
        new_model = eqx.combine(
            jax.tree.map(
                keep, eqx.filter(new_model, eqx.is_array), eqx.filter(model, eqx.is_array)
            ),
            eqx.filter(model, lambda leaf: not eqx.is_array(leaf)),
        )
        new_state = jax.tree.map(keep, new_state, opt_state)
        return new_model, new_state, loss, finite

    return step


def first_nonfinite_gradient(
    model: Any,
    x: jax.Array,
    lead: jax.Array,
    y: jax.Array,
    channel_slice_list: Sequence[int] | None = None,
    reduction: str = "mean",
) -> str:
    """Name the first gradient leaf (its path in ``model``) with non-finite entries."""
    grads = eqx.filter_grad(batch_loss)(model, x, lead, y, channel_slice_list, reduction)
    for path, grad in jax.tree_util.tree_flatten_with_path(grads)[0]:
        values = np.asarray(grad)
        bad = values[~np.isfinite(values)]
        if bad.size:
            return (
                f"the gradient of {jax.tree_util.keystr(path)} {values.shape} has "
                f"{bad.size} non-finite entries (first: {bad.flat[0]})"
            )
    return "the gradients are not finite"  # pragma: no cover - finite when recomputed


def train(
    model: Any,
    u: np.ndarray,
    t: np.ndarray,
    *,
    steps: int,
    batch_size: int = 16,
    lr: float = 1e-3,
    warmup_steps: int = 0,
    min_lr_ratio: float = 0.0,
    weight_decay: float = 0.0,
    clip_norm: float | None = 1.0,
    channel_slice_list: Sequence[int] | None = None,
    min_lead: int = 0,
    max_lead: int | None = None,
    seed: int = 0,
    batches: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray]] | None = None,
    mesh: jax.sharding.Mesh | None = None,
) -> tuple[Any, list[float]]:
    """Train an equinox operator on all-to-all pairs of ``u`` ``(n, T, C, *grid)``.

    Batches come from :func:`~sciml_seq.train.pairs.pair_batches` (epoch ``e``
    shuffled with seed ``seed + e``) unless ``batches`` is given.  Raises
    :class:`~sciml_seq.errors.NonFiniteError` naming the step if the loss is not
    finite, or the step and the first parameter whose gradient is not (the model
    is then not updated).  ``mesh``: data parallelism over its first axis (module
    docstring).  Returns the trained model and the losses.
    """
    optimizer = make_optimizer(
        model,
        lr=lr,
        total_steps=steps,
        warmup_steps=warmup_steps,
        min_lr_ratio=min_lr_ratio,
        weight_decay=weight_decay,
        clip_norm=clip_norm,
    )
    opt_state = optimizer.init(eqx.filter(model, eqx.is_inexact_array))
    if mesh is not None:
        model, opt_state = replicate(model, mesh), replicate(opt_state, mesh)
    step_fn = make_step(optimizer, channel_slice_list)
    if batches is None:
        index = PairIndex(u.shape[0], u.shape[1], min_lead=min_lead, max_lead=max_lead)

        def epochs():
            epoch = 0
            while True:
                yield from pair_batches(u, t, batch_size, index=index, seed=seed + epoch)
                epoch += 1

        batches = epochs()
    losses: list[float] = []
    for step, (x, lead, y) in zip(range(steps), batches, strict=False):
        if mesh is None:
            batch = jnp.asarray(x), jnp.asarray(lead), jnp.asarray(y)
        else:
            batch = shard_batch((x, lead, y), mesh)
        model, opt_state, loss, finite = step_fn(model, opt_state, *batch)
        losses.append(float(loss))
        if not np.isfinite(losses[-1]):
            raise NonFiniteError(f"step {step}: the loss is {losses[-1]}")
        if not bool(finite):
            reason = first_nonfinite_gradient(model, *batch, channel_slice_list)
            raise NonFiniteError(f"step {step}: {reason}")
    return model, losses


def jax_predictor(model: Any) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``predict(x (batch, C, *grid), lead (batch,)) -> numpy`` for :mod:`.evaluate`."""

    def predict(x: np.ndarray, lead: np.ndarray) -> np.ndarray:
        return np.asarray(_batched(model, jnp.asarray(x), jnp.asarray(lead)))

    return predict


@eqx.filter_jit
def _batched(model: Any, x: jax.Array, lead: jax.Array) -> jax.Array:
    return jax.vmap(model)(x, lead)
