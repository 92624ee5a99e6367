"""Grid search: one trial per point of the cartesian product, in a fixed order."""

from __future__ import annotations

import itertools
from typing import Any

from hops_jupyter.core.experiment.search.base import Searcher
from hops_jupyter.core.experiment.search.space import check_lists


class GridSearch(Searcher):
    """Every combination of the given value lists, the last parameter varying fastest."""

    def __init__(self, args_dict: dict[str, list[Any]], direction: str = "max") -> None:
        super().__init__(direction)
        self._space = check_lists(args_dict, "args_dict", equal_lengths=False)
        names = list(self._space)
        self._points = [
            dict(zip(names, p, strict=True)) for p in itertools.product(*self._space.values())
        ]
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
