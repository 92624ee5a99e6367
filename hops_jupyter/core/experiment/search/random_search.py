"""Random search: independent uniform samples, reproducible from the seed."""

from __future__ import annotations

from typing import Any

from hops_jupyter.core.experiment.search.base import Searcher, check_count
from hops_jupyter.core.experiment.search.space import parse_bounds


class RandomSearch(Searcher):
    """`samples` points drawn uniformly (ints and categories uniformly too). The i-th proposal
    depends only on the seed and i, so every engine and worker count sees the same trials."""

    def __init__(
        self,
        search_dict: dict[str, Any],
        samples: int = 10,
        direction: str = "max",
        seed: int | None = None,
    ) -> None:
        import numpy as np  # on first use: fork servers need not load it

        super().__init__(direction, seed)
        check_count("samples", samples)
        self.dims = parse_bounds(search_dict)
        self.samples = samples
        self._rng = np.random.default_rng(seed)
        self._asked = 0

    @property
    def total(self) -> int:
        return self.samples

    def ask(self) -> dict[str, Any] | None:
        if self._asked >= self.samples:
            return None
        self._asked += 1
        u = self._rng.random(len(self.dims))
        return {d.name: d.from_unit(x) for d, x in zip(self.dims, u, strict=True)}

    def describe(self) -> dict[str, Any]:
        return {d.name: d.describe() for d in self.dims}
