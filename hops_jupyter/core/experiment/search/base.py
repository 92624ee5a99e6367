"""The ask/tell interface every search algorithm implements; searches know nothing of engines."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any

DIRECTIONS = ("max", "min")


def check_count(name: str, value: Any) -> int:
    """A positive integer, or a clear error naming the value."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_direction(direction: Any) -> str:
    """Normalize 'max'/'min' (any case, or Direction.MAX/MIN); refuse anything else by name."""
    value = str(getattr(direction, "value", direction)).lower()
    if value not in DIRECTIONS:
        raise ValueError(f"direction must be 'max' or 'min', got {direction!r}")
    return value


class Pending:
    """Proposals asked and not yet told, by their parameters: what a learning search keeps
    about each (its point, its Optuna trial) until the result comes. Equal proposals queue."""

    def __init__(self) -> None:
        self._items: dict[str, list[Any]] = {}

    def add(self, params: dict[str, Any], item: Any) -> None:
        self._items.setdefault(repr(params), []).append(item)

    def pop(self, params: dict[str, Any]) -> Any | None:
        """The oldest item kept for these parameters, or None (not asked, or told already)."""
        waiting = self._items.get(repr(params))
        return waiting.pop(0) if waiting else None

    def items(self) -> list[Any]:
        return [item for waiting in self._items.values() for item in waiting]


class Searcher(ABC):
    """Proposes trials with `ask()` and learns from `tell()`.

    `ask()` returns a dict of hyperparameters, or None when the search has proposed all it
    will. `tell(params, value)` reports a finished trial; value None means it failed and counts
    as the worst possible result. Several asks may be outstanding at once. A new algorithm is
    one file with a subclass and one line in `experiment/registry.py`.
    """

    # A model-based search whose ask() takes tens of milliseconds: the run computes its next
    # proposal while trials run (search/ahead.py), off the critical path.
    slow_ask = False
    # A search that learns from results: the run hands out only as many trials as can run at
    # once, so each proposal sees every result it can. Others may be queued at the workers.
    learns = False

    def __init__(self, direction: str = "max", seed: int | None = None) -> None:
        self.direction = check_direction(direction)
        self.seed = seed

    @property
    def total(self) -> int | None:
        """How many trials the search will propose, when known in advance."""
        return None

    @abstractmethod
    def ask(self) -> dict[str, Any] | None: ...

    def tell(  # noqa: B027 - optional hook, do-nothing default
        self, params: dict[str, Any], value: float | None, stopped_step: int | None = None
    ) -> None:
        """Default: the search does not learn (grid, random, fixed lists). `stopped_step` is
        set when a stopping policy ended the trial there; `value` is then its last report."""

    def observe(self, params: dict[str, Any], value: float | None) -> None:  # noqa: B027
        """Learn from a point another search proposed (a portfolio shares its results);
        default: searches that do not learn ignore it."""

    def loss(self, value: float | None) -> float:
        """The value as something to minimize; failures are worst."""
        if value is None or not math.isfinite(value):
            return math.inf
        return -value if self.direction == "max" else value

    def describe(self) -> dict[str, Any]:
        """The search space as stored in experiment.json."""
        return {}


class PointList(Searcher):
    """A search over a list of points known up front, proposed in order (grid, fixed lists)."""

    def __init__(
        self, points: list[dict[str, Any]], space: dict[str, Any], direction: str = "max"
    ) -> None:
        super().__init__(direction)
        self._points = points
        self._space = space
        self._next = 0

    @property
    def total(self) -> int:
        return len(self._points)

    def ask(self) -> dict[str, Any] | None:
        if self._next >= len(self._points):
            return None
        self._next += 1
        return dict(self._points[self._next - 1])

    def describe(self) -> dict[str, Any]:
        return self._space
