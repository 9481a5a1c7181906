"""A continuous-time signal classification task for sampling-rate experiments (numpy only).

Each example is a waveform ``s(t)`` on ``[0, duration)``, defined for every
real ``t``, whose class is its fundamental frequency band: class ``c`` has
frequency ``f_c = f_min * (f_max / f_min) ** (c / (n_classes - 1))`` times a
random factor in ``[1 - jitter, 1 + jitter]``.  The waveform's form is drawn at
random (so that the class is the frequency content, not the form):

* ``0`` harmonics: ``Σ_{k=1..3} a_k sin(2π k f t + φ_k)``;
* ``1`` chirp: ``sin(2π f (t + sweep (t² / duration - t)) + φ)``, instantaneous
  frequency from ``f (1 - sweep)`` to ``f (1 + sweep)``;
* ``2`` damped: ``exp(-d t) sin(2π f t + φ)``.

Sampling at ``sample_rate`` (samples per unit time) gives ``s(k / sample_rate)``
for ``k = 0 .. round(duration * sample_rate) - 1``; at half the rate every
second sample of the full-rate sequence (exactly, when the full-rate length is
even).  A model trained at one rate and run at another should see the same
signal in continuous time: for the SSM layers that is ``rate = full rate /
new rate`` (``rate=2`` at half the rate: each sample spans twice the time, Δ
is doubled).

With the defaults (``f_max = 20``, three harmonics) every frequency stays below
the Nyquist frequency 64 of ``sample_rate = 128``, so half of the default full
rate 256 still resolves every waveform.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..checks import check_int, check_real
from ..errors import OptionError, ShapeError
from .long_range import SequenceTask

__all__ = [
    "FORMS",
    "Waveforms",
    "class_frequencies",
    "make_waveform_task",
    "sample_waveforms",
    "waveform_values",
    "waveforms",
]

#: Waveform forms, by code.
FORMS: tuple[str, ...] = ("harmonics", "chirp", "damped")


@dataclass(frozen=True)
class Waveforms:
    """Parameters of ``n`` random waveforms (continuous in time).

    Attributes
    ----------
    label: ``(n,)`` int64 class.
    form: ``(n,)`` int64 index into :data:`FORMS`.
    freq: ``(n,)`` fundamental frequency (cycles per unit time).
    amp: ``(n, 3)`` harmonic amplitudes (form 0): ``[0.5, 1.5)`` for the fundamental,
        ``[0, 0.5)`` for the overtones.
    phase: ``(n, 3)`` phases (forms 1 and 2 use ``phase[:, 0]``).
    sweep: ``(n,)`` relative chirp sweep (form 1).
    damping: ``(n,)`` decay rate ``d`` (form 2).
    duration: length of the time window.
    """

    label: NDArray[np.int64]
    form: NDArray[np.int64]
    freq: NDArray[np.float64]
    amp: NDArray[np.float64]
    phase: NDArray[np.float64]
    sweep: NDArray[np.float64]
    damping: NDArray[np.float64]
    duration: float


def class_frequencies(n_classes: int, f_min: float, f_max: float) -> NDArray[np.float64]:
    """Geometrically spaced class frequencies ``(n_classes,)`` from ``f_min`` to ``f_max``."""
    n = check_int("n_classes", n_classes, 2)
    lo, hi = check_real("f_min", f_min, gt=0.0), check_real("f_max", f_max, gt=0.0)
    if hi <= lo:
        raise OptionError(f"f_max: expected a finite real number > f_min = {lo!r}; got {f_max!r}")
    return lo * (hi / lo) ** (np.arange(n) / (n - 1))


def waveforms(
    n: int,
    *,
    n_classes: int = 10,
    f_min: float = 2.0,
    f_max: float = 20.0,
    jitter: float = 0.05,
    duration: float = 1.0,
    seed: int = 0,
) -> Waveforms:
    """Draw ``n`` random waveforms with balanced random classes (see the module docstring).

    ``jitter`` (in ``[0, 1)``) must stay below half the relative class spacing
    for the classes to be separable; it is checked against it.
    """
    n = check_int("n", n)
    freqs = class_frequencies(n_classes, f_min, f_max)
    spacing = (freqs[1] / freqs[0] - 1) / (freqs[1] / freqs[0] + 1)  # half-way, relative
    jitter = check_real("jitter", jitter, ge=0.0)
    if jitter >= spacing:
        raise OptionError(
            f"jitter: expected a finite real number >= 0.0 and < {spacing:.4f} (half the "
            f"relative class spacing, so that the classes do not overlap); got {jitter!r}"
        )
    duration = check_real("duration", duration, gt=0.0)
    rng = np.random.default_rng(check_int("seed", seed, 0))
    label = rng.integers(0, len(freqs), size=n)
    amp = rng.uniform(0.0, 0.5, size=(n, 3))
    amp[:, 0] = rng.uniform(0.5, 1.5, size=n)
    return Waveforms(
        label=label.astype(np.int64),
        form=rng.integers(0, len(FORMS), size=n).astype(np.int64),
        freq=freqs[label] * rng.uniform(1 - jitter, 1 + jitter, size=n),
        amp=amp,
        phase=rng.uniform(0, 2 * np.pi, size=(n, 3)),
        sweep=rng.uniform(0.0, 0.1, size=n),
        damping=rng.uniform(0.0, 3.0 / duration, size=n),
        duration=duration,
    )


def waveform_values(w: Waveforms, t: NDArray[np.floating]) -> NDArray[np.float64]:
    """Evaluate the waveforms at times ``t (m,)``: ``(n, m)`` float64."""
    t = np.asarray(t, dtype=np.float64)
    if t.ndim != 1:
        raise ShapeError(f"t: expected a 1-d array of times (m,); got shape {t.shape}")
    f, ph = w.freq[:, None], w.phase
    k = np.arange(1, 4)[None, :, None]
    harmonics = np.sum(
        w.amp[:, :, None] * np.sin(2 * np.pi * k * f[:, None] * t + ph[:, :, None]), axis=1
    )
    s = w.sweep[:, None]
    chirp = np.sin(2 * np.pi * f * (t + s * (t**2 / w.duration - t)) + ph[:, :1])
    damped = np.exp(-w.damping[:, None] * t) * np.sin(2 * np.pi * f * t + ph[:, :1])
    return np.choose(w.form[:, None], [harmonics, chirp, damped])


def sample_waveforms(w: Waveforms, sample_rate: float) -> NDArray[np.float32]:
    """Sample at ``t_k = k / sample_rate``, ``k < round(duration * sample_rate)``: ``(n, L, 1)``."""
    rate = check_real("sample_rate", sample_rate, gt=0.0)
    length = round(w.duration * rate)
    if length < 1:
        raise OptionError(
            f"sample_rate: expected at least one sample in the window (duration "
            f"{w.duration!r}); got {sample_rate!r}"
        )
    return waveform_values(w, np.arange(length) / rate)[..., None].astype(np.float32)


def make_waveform_task(
    n_train: int = 2048,
    n_test: int = 512,
    *,
    sample_rate: float = 256.0,
    seed: int = 0,
    n_classes: int = 10,
    f_min: float = 2.0,
    f_max: float = 20.0,
    jitter: float = 0.05,
    duration: float = 1.0,
) -> SequenceTask:
    """The waveform classification task sampled at ``sample_rate`` (a :class:`SequenceTask`).

    Train waveforms use ``seed``, test waveforms ``seed + 1``; the other options
    are those of :func:`waveforms`.
    The same seeds at another ``sample_rate`` give the same waveforms, sampled
    differently.  ``x (n, round(duration * sample_rate), 1)``, ``y (n,)``.
    """
    n_train, n_test = check_int("n_train", n_train), check_int("n_test", n_test)
    options = dict(n_classes=n_classes, f_min=f_min, f_max=f_max, jitter=jitter)
    train = waveforms(n_train, seed=seed, duration=duration, **options)
    test = waveforms(n_test, seed=seed + 1, duration=duration, **options)
    return SequenceTask(
        "waveforms",
        "classify",
        sample_waveforms(train, sample_rate),
        train.label,
        sample_waveforms(test, sample_rate),
        test.label,
        int(n_classes),
    )
