"""Long-range sequence tasks that need no download (numpy only, seeded).

Every task is a :class:`SequenceTask`: train and test arrays plus what the
target means.  Inputs are always float sequences ``x (n, length, channels)``;
the target ``y`` depends on the task's ``kind``:

* ``"classify"``: ``y (n,)`` int64 class labels in ``[0, n_classes)``;
* ``"regress"``: ``y (n,)`` float targets (``n_classes`` is None);
* ``"seq2seq"``: ``y (n, m)`` int64 symbols in ``[0, n_classes)`` that the model
  must emit at the LAST ``m`` positions of the sequence.

Tasks
-----
* :func:`copying` (Hochreiter & Schmidhuber 1997; Arjovsky et al. 2016): remember
  ``m`` symbols over a delay, emit them after a delimiter.
* :func:`selective_copying` (Gu & Dao 2023, Mamba): ``m`` symbols at random
  positions among blanks, emit them in order.
* :func:`adding` (Hochreiter & Schmidhuber 1997): add the two marked values.
* :func:`digits` (scikit-learn's bundled 8x8 digits, pixel by pixel, length 64)
  and the permuted variant (one fixed permutation of the pixels), the small
  relatives of sequential / permuted MNIST.  Needs ``scikit-learn`` (extra
  ``data``); the images ship with it, nothing is downloaded.

:func:`make_task` builds any of them by name with train/test splits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..checks import check_choice, check_int, format_choices
from ..errors import OptionError, UnavailableError

__all__ = [
    "PERMUTATION_SEED",
    "SIZE_OPTIONS",
    "TASKS",
    "SequenceTask",
    "adding",
    "copying",
    "digit_permutation",
    "digits",
    "make_task",
    "one_hot",
    "selective_copying",
]

#: Task names accepted by :func:`make_task`.
TASKS: tuple[str, ...] = ("copying", "selective_copying", "adding", "digits", "permuted_digits")

#: Seed of the fixed pixel permutation of the permuted digits task.
PERMUTATION_SEED = 1234

#: Size options each generated task accepts in :func:`make_task`.
SIZE_OPTIONS: dict[str, tuple[str, ...]] = {
    "copying": ("n_copy", "delay", "n_symbols"),
    "selective_copying": ("n_copy", "length", "n_symbols"),
    "adding": ("length",),
    "digits": (),
    "permuted_digits": (),
}


@dataclass(frozen=True)
class SequenceTask:
    """Train and test data of one sequence task.

    Attributes
    ----------
    name: the task's name (one of :data:`TASKS`).
    kind: ``"classify"``, ``"regress"`` or ``"seq2seq"`` (see the module docstring).
    x_train, x_test: float32 inputs ``(n, length, channels)``.
    y_train, y_test: targets, ``(n,)`` or ``(n, m)`` (see ``kind``).
    n_classes: number of classes (symbols for ``"seq2seq"``); None for ``"regress"``.
    """

    name: str
    kind: str
    x_train: NDArray[np.float32]
    y_train: NDArray
    x_test: NDArray[np.float32]
    y_test: NDArray
    n_classes: int | None

    @property
    def length(self) -> int:
        """Sequence length."""
        return int(self.x_train.shape[1])

    @property
    def channels(self) -> int:
        """Input channels."""
        return int(self.x_train.shape[2])

    @property
    def d_output(self) -> int:
        """Model outputs per prediction: ``n_classes``, or 1 for regression."""
        return 1 if self.n_classes is None else int(self.n_classes)


def one_hot(tokens: NDArray[np.integer], n_tokens: int) -> NDArray[np.float32]:
    """``tokens (...)`` in ``[0, n_tokens)`` -> float32 one-hot ``(..., n_tokens)``."""
    tokens = np.asarray(tokens)
    if tokens.size and (tokens.min() < 0 or tokens.max() >= n_tokens):
        raise OptionError(
            f"tokens: expected integers in [0, {n_tokens}); got values in "
            f"[{tokens.min()}, {tokens.max()}]"
        )
    return np.eye(n_tokens, dtype=np.float32)[tokens]


def copying(
    n: int, *, n_copy: int = 8, delay: int = 32, n_symbols: int = 8, seed: int = 0
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """The copying task: remember ``n_copy`` symbols for ``delay`` steps, then emit them.

    Tokens: ``0`` blank, ``1..n_symbols`` symbols, ``n_symbols + 1`` the delimiter.
    The input is ``[s_1 .. s_m, blank x (delay - 1), delimiter, blank x m]``
    (``m = n_copy``, length ``2 m + delay``), one-hot over ``n_symbols + 2`` tokens.

    Returns
    -------
    ``x (n, 2 n_copy + delay, n_symbols + 2)`` float32 and ``y (n, n_copy)``
    int64 in ``[0, n_symbols)``: ``y = s - 1``, the symbols to emit at the last
    ``n_copy`` positions.
    """
    n, m = check_int("n", n), check_int("n_copy", n_copy)
    delay, k = check_int("delay", delay), check_int("n_symbols", n_symbols, 2)
    rng = np.random.default_rng(check_int("seed", seed, 0))
    symbols = rng.integers(1, k + 1, size=(n, m))
    tokens = np.zeros((n, 2 * m + delay), dtype=np.int64)
    tokens[:, :m] = symbols
    tokens[:, m + delay - 1] = k + 1
    return one_hot(tokens, k + 2), (symbols - 1).astype(np.int64)


def selective_copying(
    n: int, *, n_copy: int = 4, length: int = 64, n_symbols: int = 8, seed: int = 0
) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """Selective copying: ``n_copy`` symbols at random positions among ``length`` blanks.

    Tokens: ``0`` blank, ``1..n_symbols`` symbols, ``n_symbols + 1`` the "emit"
    marker.  The input is the ``length``-long noise segment (blanks with the
    symbols at ``n_copy`` distinct random positions) followed by ``n_copy``
    markers; the model must emit the symbols in their order of appearance.

    Returns
    -------
    ``x (n, length + n_copy, n_symbols + 2)`` float32 and ``y (n, n_copy)``
    int64 in ``[0, n_symbols)`` (symbol minus one).
    """
    n, m = check_int("n", n), check_int("n_copy", n_copy)
    length, k = check_int("length", length, m), check_int("n_symbols", n_symbols, 2)
    rng = np.random.default_rng(check_int("seed", seed, 0))
    symbols = rng.integers(1, k + 1, size=(n, m))
    # m distinct sorted positions per row: the first m of a random permutation, sorted
    positions = np.sort(np.argsort(rng.random((n, length)), axis=1)[:, :m], axis=1)
    tokens = np.zeros((n, length + m), dtype=np.int64)
    np.put_along_axis(tokens, positions, symbols, axis=1)
    tokens[:, length:] = k + 1
    return one_hot(tokens, k + 2), (symbols - 1).astype(np.int64)


def adding(
    n: int, *, length: int = 100, seed: int = 0
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """The adding problem: sum the two marked values of a random sequence.

    Channel 0 holds values uniform in ``[0, 1)``; channel 1 is 1 at one position
    in the first half and one in the second half, 0 elsewhere.  The constant
    prediction 1 has mean squared error 1/6.

    Returns
    -------
    ``x (n, length, 2)`` float32 and ``y (n,)`` float32, the sum of the two marked values.
    """
    n, length = check_int("n", n), check_int("length", length, 2)
    rng = np.random.default_rng(check_int("seed", seed, 0))
    values = rng.random((n, length))
    half = length // 2
    first = rng.integers(0, half, size=n)
    second = rng.integers(half, length, size=n)
    marks = np.zeros((n, length))
    rows = np.arange(n)
    marks[rows, first] = 1.0
    marks[rows, second] = 1.0
    y = values[rows, first] + values[rows, second]
    return np.stack([values, marks], axis=-1).astype(np.float32), y.astype(np.float32)


def _load_digits() -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    try:
        from sklearn.datasets import load_digits
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise UnavailableError(
            "digits: needs scikit-learn (it ships the 8x8 digits); pip install 'sciml-seq[data]'"
        ) from err
    data = load_digits()
    return data.images.astype(np.float64), data.target.astype(np.int64)


def digit_permutation(seed: int = PERMUTATION_SEED) -> NDArray[np.int64]:
    """The fixed permutation of the 64 pixels used by the permuted digits task."""
    return np.random.default_rng(check_int("seed", seed, 0)).permutation(64).astype(np.int64)


def digits(*, permuted: bool = False) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
    """scikit-learn's 1797 8x8 digits as pixel sequences (row-major), scaled to ``[0, 1]``.

    ``permuted=True`` reorders the pixels of every image by the same fixed
    permutation :func:`digit_permutation` (``x_perm[:, t] = x[:, perm[t]]``).

    Returns
    -------
    ``x (1797, 64, 1)`` float32 and ``y (1797,)`` int64 in ``[0, 10)``.
    """
    images, labels = _load_digits()
    x = images.reshape(len(images), 64) / 16.0
    if permuted:
        x = x[:, digit_permutation()]
    return x[..., None].astype(np.float32), labels


def make_task(
    name: str,
    *,
    n_train: int = 4096,
    n_test: int = 512,
    seed: int = 0,
    **sizes: int,
) -> SequenceTask:
    """Build a task of :data:`TASKS` with disjoint train and test sets.

    Parameters
    ----------
    name: one of :data:`TASKS`.
    n_train, n_test: set sizes of the generated tasks.  The digits tasks split
        the 1797 images at random (``seed``): ``min(n_test, 359)`` (at most a
        fifth) for testing, the rest for training; ``n_train`` is ignored.
    seed: the generator's seed (the test set uses ``seed + 1``), or the digits split.
    sizes: the generator's size options (:data:`SIZE_OPTIONS`); others raise OptionError.
    """
    check_choice("name", name, TASKS)
    seed = check_int("seed", seed, 0)
    n_test = check_int("n_test", n_test)
    unknown = sorted(set(sizes) - set(SIZE_OPTIONS[name]))
    if unknown:
        takes = (
            f"keywords among {format_choices(SIZE_OPTIONS[name])}"
            if SIZE_OPTIONS[name]
            else "no size keywords"
        )
        raise OptionError(
            f"sizes: expected {takes} for task {name!r}; got {format_choices(unknown)}"
        )
    if name in ("digits", "permuted_digits"):
        x, y = digits(permuted=name == "permuted_digits")
        order = np.random.default_rng(seed).permutation(len(x))
        n_te = min(n_test, len(x) // 5)
        test, train = order[:n_te], order[n_te:]
        return SequenceTask(name, "classify", x[train], y[train], x[test], y[test], 10)
    generator = {"copying": copying, "selective_copying": selective_copying, "adding": adding}[name]
    n_train = check_int("n_train", n_train)
    x_tr, y_tr = generator(n_train, seed=seed, **sizes)
    x_te, y_te = generator(n_test, seed=seed + 1, **sizes)
    if name == "adding":
        return SequenceTask(name, "regress", x_tr, y_tr, x_te, y_te, None)
    n_symbols = x_tr.shape[2] - 2  # one-hot over blank, symbols, marker
    return SequenceTask(name, "seq2seq", x_tr, y_tr, x_te, y_te, n_symbols)
