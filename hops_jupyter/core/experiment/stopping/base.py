"""What a stopping policy does: watch trials' reported values and say which trial to stop.

Values reach a policy as losses (lower is better: the run negates them for `direction="max"`),
one `report()` per value a trial reports. Policies know nothing of engines or searches.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod


def check_positive_int(name: str, value: object, low: int = 1) -> int:
    """An integer >= low, or a clear error naming the value."""
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


def as_loss(value: float) -> float:
    """NaN counts as the worst value."""
    return math.inf if math.isnan(value) else value


class StoppingPolicy(ABC):
    """Decides, value by value, whether a running trial should stop."""

    name = "policy"

    @abstractmethod
    def report(self, trial_id: str, step: int, loss: float) -> bool:
        """Record a trial's loss at a step; True when the trial should stop now."""

    def trial_ended(self, trial_id: str) -> None:  # noqa: B027 - optional hook
        """A trial ended (any way); default: keep what it reported, for comparisons."""

    def describe(self) -> dict[str, object]:
        """The policy's settings, as stored in experiment.json."""
        return {"name": self.name}
