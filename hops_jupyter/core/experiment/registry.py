"""The one place where searches, stopping policies and engines are named.

The Python API (`optimize(optimizer=...)`, `early_stopping=...`, `engine=...`), `%%experiment`
and the error messages ("known: ...") all read these tables. Adding an algorithm is one file
(a `Searcher`, a `StoppingPolicy` or an `Engine` subclass) plus one line here.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from hops_jupyter.core.experiment.search import (
    DifferentialEvolution,
    GPSearch,
    GridSearch,
    Portfolio,
    RandomSearch,
    Searcher,
    TPESearch,
)
from hops_jupyter.core.experiment.stopping import ASHA, MedianStopping, StoppingPolicy

# optimize(): name -> factory(search_dict, trials, direction, seed)
SearchFactory = Callable[[dict[str, Any], int, str, int | None], Searcher]


def _de(space: dict[str, Any], trials: int, direction: str, seed: int | None) -> Searcher:
    population = max(5, len(space) + 2)
    generations = max(1, math.ceil(trials / population))
    return DifferentialEvolution(
        space, direction, generations, population, seed=seed, trials=trials
    )


def _gp_tpe(space: dict[str, Any], trials: int, direction: str, seed: int | None) -> Searcher:
    return Portfolio([GPSearch(space, trials, direction, seed),
                      TPESearch(space, trials, direction, seed)], trials)  # fmt: skip


SEARCHES: dict[str, SearchFactory] = {
    "gp+tpe": _gp_tpe,
    "gp": lambda space, trials, direction, seed: GPSearch(space, trials, direction, seed),
    "tpe": lambda space, trials, direction, seed: TPESearch(space, trials, direction, seed),
    "de": _de,
    "random": lambda space, trials, direction, seed: RandomSearch(space, trials, direction, seed),
    "grid": lambda space, trials, direction, seed: GridSearch(space, direction),
}
# What optimizer="auto" runs: the best of SEARCHES in benchmarks/search_quality.py.
AUTO_SEARCH = "gp+tpe"
# ... and with early stopping, where most results are partial (a stopped trial's value at an
# early step): TPE ranks those by step as Optuna does, where a GP would regress partial and
# final values as one quantity. On benchmarks/early_stopping.py, tpe with ASHA reaches the same
# accuracy as gp+tpe with ASHA in about half the time.
AUTO_SEARCH_EARLY_STOPPING = "tpe"

STOPPERS: dict[str, Callable[[], StoppingPolicy]] = {
    "median": MedianStopping,
    "asha": ASHA,
}

ENGINES = ("local", "spark")  # built in experiment/__init__.py (Spark's is imported lazily)


def known(names: Any) -> str:
    return ", ".join(sorted(names))


def search_factory(name: Any, early_stopping: bool = False) -> tuple[str, SearchFactory]:
    """The factory for an optimizer name ('auto' picks the default, which depends on whether
    trials may be stopped early); unknown names are refused with the known ones."""
    auto = AUTO_SEARCH_EARLY_STOPPING if early_stopping else AUTO_SEARCH
    key = auto if name == "auto" else name
    if not isinstance(key, str) or key not in SEARCHES:
        raise ValueError(f"Unknown optimizer {name!r}: known: auto, {known(SEARCHES)}")
    return key, SEARCHES[key]


def stopping_policy(value: Any) -> StoppingPolicy | None:
    """None, a policy object (for its settings), or a registered name."""
    if value is None or value is False:
        return None
    if isinstance(value, StoppingPolicy):
        return value
    if isinstance(value, str) and value in STOPPERS:
        return STOPPERS[value]()
    raise ValueError(
        f"Unknown early_stopping {value!r}: known: {known(STOPPERS)}, or a policy object "
        "such as ASHA(min_steps=1, reduction_factor=3)"
    )


def check_engine(name: Any) -> str:
    if name not in ENGINES:
        raise ValueError(f"Unknown engine {name!r}: known: {known(ENGINES)}")
    return name
