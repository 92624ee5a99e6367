"""Asynchronous differential evolution, sized for notebook budgets (tens to hundreds of trials).

Steady-state DE/current-to-best/1/bin on the unit cube: a free worker gets a new candidate at
once, built from the population as it stands, and the candidate replaces its target when it is
better. The first population is a Latin hypercube. A small default population (max(5, dimensions + 2)) and the
pull towards the best point make it useful at 50 evaluations, where scipy's 15 x dimensions
population is no better than random search (benchmarks/trials.py measures this).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from hops_jupyter.core.experiment.search.base import Pending, Searcher, check_count
from hops_jupyter.core.experiment.search.space import parse_bounds

if TYPE_CHECKING:
    import numpy as np


def _check(name: str, value: Any, low: float, high: float, integer: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if integer:
        ok = ok and float(value).is_integer()
    if not ok or not (low <= value <= high):
        kind = "an integer" if integer else "a number"
        raise ValueError(f"{name} must be {kind} in [{low}, {high}], got {value!r}")


class DifferentialEvolution(Searcher):
    """Evaluates `population * generations` candidates; the first generation is the initial
    population. `mutation` is F (a number, or a (low, high) range drawn per candidate), and
    `crossover` is CR."""

    learns = True

    def __init__(
        self,
        search_dict: dict[str, Any],
        direction: str = "max",
        generations: int = 4,
        population: int | None = None,
        mutation: float | tuple[float, float] = (0.5, 1.0),
        crossover: float = 0.7,
        seed: int | None = None,
        trials: int | None = None,
    ) -> None:
        import numpy as np  # on first use: fork servers need not load it

        super().__init__(direction, seed)
        self.dims = parse_bounds(search_dict)
        d = len(self.dims)
        if population is None:
            population = max(5, d + 2)
        _check("population", population, 4, 10_000, integer=True)
        _check("generations", generations, 1, 1_000_000, integer=True)
        if isinstance(mutation, (tuple, list)):
            if len(mutation) != 2:
                raise ValueError(f"mutation range must be (low, high), got {mutation!r}")
            for m in mutation:
                _check("mutation", m, 0.0, 2.0)
        else:
            _check("mutation", mutation, 0.0, 2.0)
        _check("crossover", crossover, 0.0, 1.0)
        self.population = int(population)
        self.generations = int(generations)
        # optimize(trials=N) caps the evaluations at N (the last generation may be partial)
        self._cap = None if trials is None else check_count("trials", trials)
        self.mutation = mutation
        self.crossover = float(crossover)
        self._rng = np.random.default_rng(seed)
        self._initial = self._latin_hypercube(self.population, d)
        self._pop: list[np.ndarray | None] = [None] * self.population
        self._loss = np.full(self.population, np.inf)
        self._pending = Pending()  # of (target index, point)
        self._asked = 0

    @property
    def total(self) -> int:
        full = self.population * self.generations
        return full if self._cap is None else min(full, self._cap)

    def _latin_hypercube(self, n: int, d: int) -> np.ndarray:
        import numpy as np  # on first use: fork servers need not load it

        cells = np.stack([self._rng.permutation(n) for _ in range(d)], axis=1)
        return (cells + self._rng.random((n, d))) / n

    def _decode(self, u: np.ndarray) -> dict[str, Any]:
        return {dim.name: dim.from_unit(x) for dim, x in zip(self.dims, u, strict=True)}

    def _f(self) -> float:
        if isinstance(self.mutation, (tuple, list)):
            return float(self._rng.uniform(*self.mutation))
        return float(self.mutation)

    def _candidate(self, target: int) -> np.ndarray:
        import numpy as np  # on first use: fork servers need not load it

        known = [i for i, x in enumerate(self._pop) if x is not None]
        if len(known) < 3:
            return self._rng.random(len(self.dims))
        best = self._pop[int(np.argmin(self._loss))]
        base = self._pop[target] if self._pop[target] is not None else best
        others = [i for i in known if i != target]
        r1, r2 = self._rng.choice(others, size=2, replace=False)
        f = self._f()
        mutant = base + f * (best - base) + f * (self._pop[r1] - self._pop[r2])
        # Reflect into the cube rather than clip, so the search does not pile up on the bounds.
        mutant = np.where(mutant < 0, -mutant, mutant)
        mutant = np.where(mutant > 1, 2 - mutant, mutant)
        mutant = np.clip(mutant, 0.0, 1.0)
        cross = self._rng.random(len(self.dims)) < self.crossover
        cross[self._rng.integers(len(self.dims))] = True
        return np.where(cross, mutant, base)

    def ask(self) -> dict[str, Any] | None:
        if self._asked >= self.total:
            return None
        target = self._asked % self.population
        if self._asked < self.population:
            u = self._initial[target]
        else:
            u = self._candidate(target)
        self._asked += 1
        params = self._decode(u)
        self._pending.add(params, (target, u))
        return params

    def tell(self, params: dict[str, Any], value: float | None,
             stopped_step: int | None = None) -> None:  # fmt: skip
        kept = self._pending.pop(params)
        if kept is None:
            return
        target, u = kept
        loss = self.loss(value)
        if self._pop[target] is None or loss <= self._loss[target]:
            self._pop[target] = u
            self._loss[target] = loss

    def describe(self) -> dict[str, Any]:
        return {d.name: d.describe() for d in self.dims}
