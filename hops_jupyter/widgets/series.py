"""Every trial's reported values by step, read incrementally from its metrics.jsonl.

A line is `{"time", "step", "metric", **extras}`; the metric and every numeric extra become a
series. Each read continues from where the last one stopped, so following a run costs what the
trials appended since, not what they reported in all.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hops_jupyter.core.experiment import records
from hops_jupyter.core.filesystem import Location

METRIC = "metric"
_NOT_SERIES = {"time", "step"}


@dataclass
class Points:
    """One trial's series: steps, and per key the values (None where a step lacks that key)."""

    steps: list[Any] = field(default_factory=list)
    values: dict[str, list[float | None]] = field(default_factory=dict)

    def add(self, line: dict[str, Any]) -> None:
        for key, value in line.items():
            if key not in _NOT_SERIES and _plottable(value) and key not in self.values:
                self.values[key] = [None] * len(self.steps)
        self.steps.append(line.get("step", len(self.steps)))
        for key, column in self.values.items():
            value = line.get(key)
            column.append(float(value) if _plottable(value) else None)

    def series(self, key: str = METRIC) -> tuple[list[Any], list[float]]:
        """(steps, values) of one key, skipping steps that did not report it."""
        column = self.values.get(key, [])
        kept = [(s, v) for s, v in zip(self.steps, column, strict=False) if v is not None]
        return [s for s, _ in kept], [v for _, v in kept]


def _plottable(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(float(value))
    )


class ReportSeries:
    """The reported values of an experiment's trials, kept up to date by `read`."""

    def __init__(self) -> None:
        self.trials: dict[str, Points] = {}
        self._offsets: dict[str, int] = {}

    def read(self, location: Location, trial_ids: Iterable[str]) -> bool:
        """Read what the trials appended since the last call; True when anything was new."""
        changed = False
        for trial_id in trial_ids:
            lines, self._offsets[trial_id] = records.read_metrics(
                location.child(trial_id), self._offsets.get(trial_id, 0)
            )
            points = self.trials.setdefault(trial_id, Points())
            for line in lines:
                points.add(line)
                changed = True
        return changed

    def keys(self) -> list[str]:
        """The extra keys reported besides the metric, in the order first seen."""
        seen: dict[str, None] = {}
        for points in self.trials.values():
            seen.update(dict.fromkeys(k for k in points.values if k != METRIC))
        return list(seen)

    def has(self, key: str = METRIC) -> bool:
        return any(p.series(key)[0] for p in self.trials.values())

    def integer_steps(self) -> bool:
        """Whether every reported step is an integer (the step axis then ticks in integers)."""
        return all(
            isinstance(s, int) or (isinstance(s, float) and s.is_integer())
            for p in self.trials.values()
            for s in p.steps
        )
