"""The task protocol of the comparison instrument: splits, sizes, loss, metric (numpy only).

A :class:`Task` holds three :class:`Split` s of numpy arrays, says whether the
input is a vector ``(n, features)`` or a sequence ``(n, length, channels)``
(``state``) and whether the target is regression, ``y (n, outputs)`` float32
(with an optional 0/1 ``weight`` per entry), or classification, ``y (n,)``
int64 (``target``); it names its training loss and its test metric (lower is
better) and carries default model sizes for a full run and for a quick one.
Nothing here imports a framework: each runner turns the arrays into tensors
and the loss name into its own loss; metrics are computed here, in numpy, once
(:func:`metric_value`).

Your own task is a few lines (the validation rows are carved from the training
rows, 10 % by default, by a permutation fixed by ``seed``):

>>> import numpy as np
>>> from sciml_seq.compare.tasks import Task
>>> rng = np.random.default_rng(0)
>>> x = rng.uniform(-1.0, 1.0, size=(600, 3))
>>> y = np.sin(x).sum(axis=1)  # one output: (600,) is read as (600, 1)
>>> task = Task.from_arrays("sine_sum", x[:500], y[:500], x[500:], y[500:])
>>> task.train.x.shape, task.val.x.shape, task.test.y.shape, task.metric
((450, 3), (50, 3), (100, 1), 'rel_l2')
>>> task.evaluate(np.zeros_like(task.test.y))  # the relative L2 error of predicting zero
1.0

The built-in tasks are in :mod:`sciml_seq.compare.builtin_tasks`, by name in
:data:`sciml_seq.compare.tasks.TASKS`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..checks import check_choice, check_int, check_real
from ..errors import DTypeError, NonFiniteError, OptionError, ShapeError

__all__ = [
    "LOSSES",
    "METRICS",
    "QUICK_SIZES",
    "SPLITS",
    "STATES",
    "TARGETS",
    "Split",
    "Task",
    "TaskSizes",
    "check_quick",
    "metric_value",
]

STATES = ("vector", "sequence")
TARGETS = ("regression", "classification")
LOSSES = ("mse", "cross_entropy")
"""Loss names a runner implements: masked (``weight``) MSE and cross-entropy on logits."""
METRICS = ("rel_l2", "mse", "mae", "error_rate")
"""Metric names :func:`metric_value` computes; lower is better."""
SPLITS = ("train", "val", "test")
_TARGET_METRICS = {"regression": ("rel_l2", "mse", "mae"), "classification": ("error_rate",)}
_TARGET_LOSS = {"regression": "mse", "classification": "cross_entropy"}
_DEFAULT_METRIC = {"regression": "rel_l2", "classification": "error_rate"}

Metric = Callable[[np.ndarray, np.ndarray, "np.ndarray | None"], float]


# --- splits and sizes ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Split:
    """The arrays of one split.

    Attributes
    ----------
    x: float32 inputs, ``(n, features)`` for a vector state, ``(n, length, channels)``
        for a sequence state.
    y: targets: float32 ``(n, outputs)`` (regression) or int64 ``(n,)`` class labels.
    weight: regression only, float32 of ``y``'s shape (or ``None``): ``1`` where an
        entry counts, ``0`` where it is missing; loss and metric are weighted means.

    Raises :class:`~sciml_seq.errors.SciMLSeqError` subclasses for wrong dtypes,
    shapes, NaN/inf values or negative weights.
    """

    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray | None = None

    def __post_init__(self) -> None:
        x, y, w = self.x, self.y, self.weight
        if not isinstance(x, np.ndarray) or x.dtype != np.float32 or x.ndim not in (2, 3):
            raise DTypeError(
                f"x: expected a float32 array (n, features) or (n, length, channels); "
                f"got {_describe(x)}"
            )
        if len(x) == 0:
            raise ShapeError(f"x: expected at least one row; got shape {x.shape}")
        regression = isinstance(y, np.ndarray) and y.dtype == np.float32 and y.ndim == 2
        labels = isinstance(y, np.ndarray) and y.dtype == np.int64 and y.ndim == 1
        if not (regression or labels):
            raise DTypeError(f"y: expected float32 (n, outputs) or int64 (n,); got {_describe(y)}")
        if len(y) != len(x):
            raise ShapeError(f"y: expected {len(x)} rows (one per row of x); got {len(y)}")
        _check_finite("x", x)
        if regression:
            _check_finite("y", y)
        if w is not None:
            if not regression:
                raise OptionError("weight: expected None for class labels (int64 y); got an array")
            if not isinstance(w, np.ndarray) or w.dtype != np.float32 or w.shape != y.shape:
                raise DTypeError(
                    f"weight: expected float32 of y's shape {y.shape}; got {_describe(w)}"
                )
            _check_finite("weight", w)
            if np.any(w < 0):
                raise OptionError(f"weight: expected entries >= 0; got minimum {w.min()}")

    def __len__(self) -> int:
        return len(self.x)

    def take(self, index: np.ndarray) -> Split:
        """The rows ``index`` (an integer array) of every array, as a new split."""
        w = None if self.weight is None else self.weight[index]
        return Split(self.x[index], self.y[index], w)


@dataclass(frozen=True)
class TaskSizes:
    """Model and training sizes of a task (the defaults suit a full run).

    Attributes
    ----------
    width: model width (``d_model``) the head encodes into.
    hidden: hidden width of the field.
    heads: attention heads (sequence tasks; ``width`` must be a multiple).
    batch_size: training batch size.
    learning_rate: Adam's learning rate.
    steps: default training budget in optimizer steps.
    depth: default number of layers / fixed steps of the depth schemes.
    """

    width: int = 16
    hidden: int = 64
    heads: int = 2
    batch_size: int = 128
    learning_rate: float = 3e-3
    steps: int = 2000
    depth: int = 8

    def __post_init__(self) -> None:
        for name in ("width", "hidden", "heads", "batch_size", "steps", "depth"):
            object.__setattr__(self, name, check_int(name, getattr(self, name)))
        lr = check_real("learning_rate", self.learning_rate, gt=0.0)
        object.__setattr__(self, "learning_rate", lr)


QUICK_SIZES = TaskSizes(width=8, hidden=32, heads=2, batch_size=64, steps=150, depth=4)
"""Quick sizes of the built-in tasks (and the default of :meth:`Task.from_arrays`):
a model trains in seconds on one CPU thread."""


# --- metrics ------------------------------------------------------------------------------------


def metric_value(
    name: str, pred: np.ndarray, y: np.ndarray, weight: np.ndarray | None = None
) -> float:
    """The metric ``name`` of predictions ``pred`` against targets ``y``; lower is better.

    Parameters
    ----------
    name: one of :data:`METRICS`:

        * ``"rel_l2"``: ``sqrt(sum w (pred - y)^2 / sum w y^2)``, over the whole
          split (one norm over every entry, not a mean of per-sample errors);
        * ``"mse"``: ``sum w (pred - y)^2 / sum w``;
        * ``"mae"``: ``sum w |pred - y| / sum w``;
        * ``"error_rate"``: the fraction of rows whose predicted class differs
          from ``y``; ``pred`` is ``(n, classes)`` scores (the argmax is the
          class) or ``(n,)`` integer labels.

    pred: predictions, ``y``'s shape for regression metrics.
    y: targets, float ``(n, outputs)`` or int ``(n,)``.
    weight: regression metrics only: ``y``'s shape, ``>= 0`` (``None``: every entry
        counts 1).

    Returns a float computed in float64; NaN where ``pred`` holds NaN (a diverged
    model is measured, not refused).
    """
    name = check_choice("metric", name, METRICS)
    pred, y = np.asarray(pred), np.asarray(y)
    if name == "error_rate":
        if weight is not None:
            raise OptionError("weight: the error rate takes no weights; got an array")
        if y.ndim != 1:
            raise ShapeError(f"y: expected class labels (n,); got shape {y.shape}")
        if pred.shape == y.shape:
            labels = pred
        elif pred.ndim == 2 and len(pred) == len(y):
            labels = np.argmax(pred, axis=1)
        else:
            raise ShapeError(
                f"pred: expected labels {y.shape} or scores ({len(y)}, classes); got {pred.shape}"
            )
        return float(np.mean(labels != y))
    if pred.shape != y.shape:
        raise ShapeError(f"pred: expected the shape of y, {y.shape}; got {pred.shape}")
    pred, y = pred.astype(np.float64), y.astype(np.float64)
    w = np.ones_like(y) if weight is None else np.asarray(weight, dtype=np.float64)
    if w.shape != y.shape:
        raise ShapeError(f"weight: expected the shape of y, {y.shape}; got {w.shape}")
    if not w.sum() > 0:
        raise OptionError("weight: expected at least one positive entry; got none")
    error = pred - y
    if name == "rel_l2":
        norm = np.sum(w * y**2)
        if norm == 0:
            raise OptionError("y: the relative L2 error needs targets that are not all zero")
        return float(np.sqrt(np.sum(w * error**2) / norm))
    if name == "mse":
        return float(np.sum(w * error**2) / w.sum())
    return float(np.sum(w * np.abs(error)) / w.sum())


# --- the task -----------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Task:
    """Data, head shape, loss, metric and default sizes of one comparison task.

    Attributes
    ----------
    name: the task's name (records carry it).
    train, val, test: the splits.
    state: ``"vector"`` (``x (n, features)``) or ``"sequence"`` (``x (n, length, channels)``).
    target: ``"regression"`` (``y (n, outputs)`` float32) or ``"classification"``
        (``y (n,)`` int64 in ``[0, n_outputs)``).
    n_outputs: regression: ``y.shape[1]``; classification: the number of classes.
    loss: ``"mse"`` (weighted by ``Split.weight``), ``"cross_entropy"`` (on logits),
        or a callable ``loss(pred, y, weight) -> scalar`` in the runner's framework.
    metric: a name of :data:`METRICS` or ``metric(pred, y, weight) -> float`` on numpy
        arrays; lower is better.
    sizes: model and training sizes of a full run.
    quick_sizes: sizes for the tests and ``make demo`` (seconds on one CPU thread).
    description: one line on what the task is.
    meta: what a record should know about the data: generator settings,
        normalisation statistics, sources.

    Every field is checked when the task is built (names, shapes, dtypes, and
    that the loss and metric fit the target); a bad one raises a
    :class:`~sciml_seq.errors.SciMLSeqError` subclass naming it.
    """

    name: str
    train: Split
    val: Split
    test: Split
    state: str
    target: str
    n_outputs: int
    loss: str | Callable
    metric: str | Metric
    sizes: TaskSizes
    quick_sizes: TaskSizes
    description: str = ""
    meta: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise OptionError(f"name: expected a non-empty string; got {self.name!r}")
        state = check_choice("state", self.state, STATES)
        target = check_choice("target", self.target, TARGETS)
        splits = {s: getattr(self, s) for s in SPLITS}
        for s, split in splits.items():
            if not isinstance(split, Split):
                raise OptionError(f"{s}: expected a Split; got {type(split).__name__}")
        ndim = 2 if state == "vector" else 3
        shape = self.train.x.shape[1:]
        for s, split in splits.items():
            if split.x.ndim != ndim or split.x.shape[1:] != shape:
                expected = "(n, features)" if state == "vector" else "(n, length, channels)"
                raise ShapeError(
                    f"{s}.x: expected {expected} for state {state!r}, with the "
                    f"train split's {shape}; got {split.x.shape}"
                )
        n_outputs = check_int(
            "n_outputs", self.n_outputs, low=2 if target == "classification" else 1
        )
        for s, split in splits.items():
            if target == "regression" and (split.y.ndim != 2 or split.y.shape[1] != n_outputs):
                raise ShapeError(
                    f"{s}.y: expected float32 (n, {n_outputs}) for regression with "
                    f"n_outputs={n_outputs}; got {_describe(split.y)}"
                )
            if target == "classification":
                if split.y.ndim != 1:
                    raise ShapeError(
                        f"{s}.y: expected int64 labels (n,) for classification; "
                        f"got {_describe(split.y)}"
                    )
                low, high = int(split.y.min()), int(split.y.max())
                if low < 0 or high >= n_outputs:
                    raise OptionError(
                        f"{s}.y: expected labels in [0, {n_outputs}) "
                        f"(n_outputs classes); got [{low}, {high}]"
                    )
        if not callable(self.loss):
            check_choice("loss", self.loss, LOSSES)
            if self.loss != _TARGET_LOSS[target]:
                raise OptionError(
                    f"loss: expected {_TARGET_LOSS[target]!r} (or a callable) for "
                    f"target {target!r}; got {self.loss!r}"
                )
        if not callable(self.metric):
            check_choice("metric", self.metric, _TARGET_METRICS[target])
        for name in ("sizes", "quick_sizes"):
            sizes = getattr(self, name)
            if not isinstance(sizes, TaskSizes):
                raise OptionError(f"{name}: expected a TaskSizes; got {type(sizes).__name__}")
            if state == "sequence" and sizes.width % sizes.heads:
                raise OptionError(
                    f"{name}: expected width a multiple of heads for a sequence "
                    f"task; got width={sizes.width}, heads={sizes.heads}"
                )
        if not isinstance(self.description, str):
            raise OptionError(f"description: expected a string; got {self.description!r}")
        object.__setattr__(self, "n_outputs", n_outputs)
        object.__setattr__(self, "meta", dict(self.meta))

    @property
    def n_inputs(self) -> int:
        """Input features (vector state) or channels per step (sequence state)."""
        return int(self.train.x.shape[-1])

    @property
    def length(self) -> int | None:
        """Sequence length (sequence state), ``None`` for a vector state."""
        return int(self.train.x.shape[1]) if self.state == "sequence" else None

    def split(self, name: str) -> Split:
        """The split ``"train"``, ``"val"`` or ``"test"``."""
        return getattr(self, check_choice("split", name, SPLITS))

    def evaluate(self, pred: np.ndarray, split: str = "test") -> float:
        """The task's metric of ``pred`` on ``split`` (lower is better).

        ``pred`` is ``y``'s shape for regression, ``(n, n_outputs)`` scores or
        ``(n,)`` labels for classification, as numpy (or anything ``np.asarray``
        takes).  The split's ``weight`` masks a regression metric.
        """
        data = self.split(split)
        if callable(self.metric):
            return float(self.metric(np.asarray(pred), data.y, data.weight))
        return metric_value(self.metric, pred, data.y, data.weight)

    def describe(self) -> dict[str, Any]:
        """A JSON-ready summary: names, shapes, loss and metric names, sizes and ``meta``."""

        def name_of(value: Any) -> str:
            return value if isinstance(value, str) else getattr(value, "__name__", "custom")

        return {
            "name": self.name,
            "state": self.state,
            "target": self.target,
            "n_inputs": self.n_inputs,
            "length": self.length,
            "n_outputs": self.n_outputs,
            "rows": {s: len(self.split(s)) for s in SPLITS},
            "loss": name_of(self.loss),
            "metric": name_of(self.metric),
            "description": self.description,
            "meta": _jsonable(self.meta),
        }

    @classmethod
    def from_arrays(
        cls,
        name: str,
        x_train: Any,
        y_train: Any,
        x_test: Any,
        y_test: Any,
        *,
        x_val: Any = None,
        y_val: Any = None,
        val_fraction: float = 0.1,
        loss: str | Callable | None = None,
        metric: str | Metric | None = None,
        target: str = "regression",
        n_classes: int | None = None,
        weight_train: Any = None,
        weight_val: Any = None,
        weight_test: Any = None,
        sizes: TaskSizes | None = None,
        quick_sizes: TaskSizes | None = None,
        description: str = "",
        seed: int = 0,
    ) -> Task:
        """A task from your own arrays (see the module docstring for an example).

        Parameters
        ----------
        name: what records call the task.
        x_train, x_test, x_val: real inputs, ``(n, features)`` (vector state) or
            ``(n, length, channels)`` (sequence state); stored as float32, as given
            (normalise them yourself, with training statistics).
        y_train, y_test, y_val: regression: real ``(n, outputs)``, or ``(n,)`` for one
            output; classification: integer labels ``(n,)`` in ``[0, n_classes)``.
        x_val, y_val: a validation split; when both are ``None``, a fraction
            ``val_fraction`` (in ``(0, 1)``, at least one row) of the training rows,
            chosen by ``numpy.random.default_rng(seed)``, becomes the validation split.
        loss: ``"mse"`` / ``"cross_entropy"`` or ``loss(pred, y, weight) -> scalar`` in
            the runner's framework; ``None``: the target's (``"mse"`` for regression,
            ``"cross_entropy"`` for classification).
        metric: a name of :data:`METRICS` or ``metric(pred, y, weight) -> float`` on
            numpy arrays (lower is better); ``None``: ``"rel_l2"`` for regression,
            ``"error_rate"`` for classification.
        target: ``"regression"`` or ``"classification"``.
        n_classes: classification: the number of classes (default: the largest
            label + 1).
        weight_train, weight_val, weight_test: regression: ``y``'s shape, ``>= 0``
            (``0`` = missing entry) or ``None``.  With a carved validation split,
            ``weight_val`` comes from ``weight_train``.
        sizes: model sizes of a full run (default :class:`TaskSizes`).
        quick_sizes: sizes of a quick run (default ``sizes`` when given, else
            :data:`QUICK_SIZES`).
        description: one line for records.
        seed: the validation carve-out (``>= 0``).

        Raises
        ------
        OptionError, ShapeError, DTypeError, NonFiniteError naming the argument.
        """
        target = check_choice("target", target, TARGETS)
        seed = check_int("seed", seed, low=0)
        if (x_val is None) != (y_val is None):
            only = "x_val" if x_val is not None else "y_val"
            raise OptionError(f"x_val, y_val: expected both or neither; got only {only}")
        if weight_val is not None and x_val is None:
            raise OptionError(
                "weight_val: expected None when the validation split is carved "
                "from the training rows (it takes weight_train's rows)"
            )
        regression = target == "regression"
        arrays: dict[str, Split] = {}
        given = [("train", x_train, y_train, weight_train), ("test", x_test, y_test, weight_test)]
        if x_val is not None:
            given.append(("val", x_val, y_val, weight_val))
        for split, x, y, w in given:
            x = _as_inputs(f"x_{split}", x)
            y = _as_targets(f"y_{split}", y, regression)
            if len(y) != len(x):
                raise ShapeError(
                    f"y_{split}: expected {len(x)} rows (one per row of x_{split}); got {len(y)}"
                )
            if w is not None:
                if not regression:
                    raise OptionError(
                        f"weight_{split}: expected None for classification; got an array"
                    )
                w = _as_real(f"weight_{split}", w)
                if w.shape != y.shape:
                    raise ShapeError(
                        f"weight_{split}: expected the shape of y_{split}, {y.shape}; got {w.shape}"
                    )
                if np.any(w < 0):
                    raise OptionError(f"weight_{split}: expected entries >= 0; got {w.min()}")
            if split != "train":
                train = arrays["train"]
                for what, array, reference in (("x", x, train.x), ("y", y, train.y)):
                    if array.shape[1:] != reference.shape[1:]:
                        raise ShapeError(
                            f"{what}_{split}: expected rows of shape "
                            f"{reference.shape[1:]} (those of {what}_train); "
                            f"got {array.shape}"
                        )
            arrays[split] = Split(x, y, w)
        if "val" not in arrays:
            arrays["train"], arrays["val"] = _carve(arrays["train"], val_fraction, seed)
        if regression:
            n_outputs = arrays["train"].y.shape[1]
        else:
            largest = max(int(s.y.max()) for s in arrays.values())
            n_outputs = max(2, largest + 1)
            if n_classes is not None:
                n_outputs = check_int("n_classes", n_classes, low=2)
                if largest >= n_outputs:
                    raise OptionError(
                        f"n_classes: expected more than the largest label, "
                        f"{largest}; got {n_classes}"
                    )
        x = arrays["train"].x
        return cls(
            name=name,
            train=arrays["train"],
            val=arrays["val"],
            test=arrays["test"],
            state="vector" if x.ndim == 2 else "sequence",
            target=target,
            n_outputs=n_outputs,
            loss=_TARGET_LOSS[target] if loss is None else loss,
            metric=_DEFAULT_METRIC[target] if metric is None else metric,
            sizes=TaskSizes() if sizes is None else sizes,
            quick_sizes=quick_sizes or sizes or QUICK_SIZES,
            description=description,
            meta={"source": "from_arrays", "seed": seed},
        )


# --- checks and conversions -------------------------------------------------------------------


def check_quick(quick: object) -> bool:
    """``quick`` if it is ``True`` or ``False`` (a task builder's size switch)."""
    if not isinstance(quick, bool):
        raise OptionError(f"quick: expected True or False; got {quick!r}")
    return quick


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    return type(value).__name__


def _check_finite(name: str, array: np.ndarray) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        raise NonFiniteError(
            f"{name}: expected finite values; got {int(bad.sum())} NaN/inf "
            f"entries (the first at index {tuple(int(i) for i in np.argwhere(bad)[0])})"
        )


def _as_real(name: str, value: Any) -> np.ndarray:
    """``value`` as a finite float32 array; DTypeError unless its entries are real numbers."""
    array = np.asarray(value)
    if array.dtype.kind not in "iuf":
        raise DTypeError(
            f"{name}: expected real numbers (integer or float); got dtype {array.dtype}"
        )
    array = array.astype(np.float32)
    _check_finite(name, array)
    return array


def _as_inputs(name: str, value: Any) -> np.ndarray:
    array = _as_real(name, value)
    if array.ndim not in (2, 3) or len(array) == 0:
        raise ShapeError(
            f"{name}: expected a non-empty (n, features) or (n, length, channels) "
            f"array; got shape {array.shape}"
        )
    return array


def _as_targets(name: str, value: Any, regression: bool) -> np.ndarray:
    if regression:
        array = _as_real(name, value)
        if array.ndim not in (1, 2):
            raise ShapeError(
                f"{name}: expected (n, outputs) or (n,) for regression; got shape {array.shape}"
            )
        return array[:, None] if array.ndim == 1 else array
    array = np.asarray(value)
    if array.dtype.kind not in "iu":
        raise DTypeError(f"{name}: expected integer class labels; got dtype {array.dtype}")
    if array.ndim != 1:
        raise ShapeError(f"{name}: expected class labels (n,); got shape {array.shape}")
    if len(array) and array.min() < 0:
        raise OptionError(f"{name}: expected labels >= 0; got {array.min()}")
    return array.astype(np.int64)


def _carve(train: Split, val_fraction: float, seed: int) -> tuple[Split, Split]:
    """Training and validation splits: ``val_fraction`` of the rows, drawn by ``seed``."""
    fraction = check_real("val_fraction", val_fraction, gt=0.0, lt=1.0)
    n = len(train)
    n_val = max(1, round(fraction * n))
    if n_val >= n:
        raise OptionError(
            f"val_fraction: expected to leave training rows of the {n} in x_train; "
            f"got {val_fraction!r} ({n_val} validation rows)"
        )
    order = np.random.default_rng(seed).permutation(n)
    return train.take(np.sort(order[n_val:])), train.take(np.sort(order[:n_val]))


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
