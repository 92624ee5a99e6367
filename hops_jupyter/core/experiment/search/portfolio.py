"""A portfolio of searches taking turns: each proposal comes from the next search in turn, and
every result teaches all of them (the proposer through `tell`, the others through `observe`).

A Gaussian process exploits smooth problems; TPE explores multimodal ones where one GP's
length scales mislead it. Sharing results makes the pair better than either alone on the
problems of benchmarks/search_quality.py, which is why optimizer="auto" is this portfolio.
"""

from __future__ import annotations

from typing import Any

from hops_jupyter.core.experiment.search.base import Pending, Searcher


class Portfolio(Searcher):
    """Round-robin proposals from `searches` (all over the same space, each with the budget)."""

    slow_ask = True
    learns = True

    def __init__(self, searches: list[Searcher], trials: int) -> None:
        super().__init__(searches[0].direction, searches[0].seed)
        self.searches, self.trials = searches, trials
        self._owner = Pending()
        self._asked = 0

    @property
    def total(self) -> int:
        return self.trials

    def ask(self) -> dict[str, Any] | None:
        if self._asked >= self.trials:
            return None
        search = self.searches[self._asked % len(self.searches)]
        self._asked += 1
        params = search.ask()
        if params is not None:
            self._owner.add(params, search)
        return params

    def tell(self, params: dict[str, Any], value: float | None,
             stopped_step: int | None = None) -> None:  # fmt: skip
        owner = self._owner.pop(params)
        if owner is None:
            return
        owner.tell(params, value, stopped_step)
        for other in self.searches:
            if other is not owner:
                other.observe(params, value)

    def describe(self) -> dict[str, Any]:
        return self.searches[0].describe()
