"""The training budget of a comparison cell: optimizer steps or seconds of training."""

from __future__ import annotations

from dataclasses import dataclass

from ..checks import check_int, check_real
from ..errors import OptionError


@dataclass(frozen=True)
class Budget:
    """Exactly one of ``steps`` (optimizer steps) and ``seconds`` (training wall time,
    evaluation excluded); every cell of a grid gets the same budget."""

    steps: int | None = None
    seconds: float | None = None

    def __post_init__(self) -> None:
        if (self.steps is None) == (self.seconds is None):
            raise OptionError(
                "budget: expected exactly one of steps and seconds; got "
                f"steps={self.steps!r}, seconds={self.seconds!r}"
            )
        if self.steps is not None:
            check_int("steps", self.steps)
        else:
            check_real("seconds", self.seconds, gt=0.0)

    def done(self, step: int, seconds: float) -> bool:
        """Whether a run at ``step`` after ``seconds`` of training has spent the budget."""
        if self.steps is not None:
            return step >= self.steps
        return seconds >= self.seconds

    def fraction(self, step: int, seconds: float) -> float:
        """How much of the budget is spent, in ``[0, 1]`` (regulariser schedules read it)."""
        spent = step / self.steps if self.steps is not None else seconds / self.seconds
        return min(max(spent, 0.0), 1.0)

    def as_dict(self) -> dict[str, float]:
        return {"steps": self.steps} if self.steps is not None else {"seconds": self.seconds}
