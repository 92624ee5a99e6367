"""A fixed list of trials: `launch` with an args_dict runs one trial per list position."""

from __future__ import annotations

from typing import Any

from hops_jupyter.core.experiment.search.base import Searcher
from hops_jupyter.core.experiment.search.space import check_lists


class FixedTrials(Searcher):
    """Trial i gets the i-th value of every list (zip, not product)."""

    def __init__(self, args_dict: dict[str, list[Any]] | None) -> None:
        super().__init__("max")
        if args_dict is None:
            self._points: list[dict[str, Any]] = [{}]
            self._space: dict[str, Any] = {}
        else:
            lists = check_lists(args_dict, "args_dict", equal_lengths=True)
            n = len(next(iter(lists.values())))
            self._points = [{k: v[i] for k, v in lists.items()} for i in range(n)]
            self._space = lists
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
