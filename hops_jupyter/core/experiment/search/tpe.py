"""Tree-structured Parzen Estimator through Optuna's ask/tell: a model-based search that learns
from every finished trial. Trials asked but not yet told are pending: Optuna's constant liar
treats them as bad results, so parallel workers do not all get the same proposal."""

from __future__ import annotations

import math
from typing import Any

from hops_jupyter.core.experiment.search.base import Pending, Searcher, check_count
from hops_jupyter.core.experiment.search.space import Dimension, parse_bounds


def _distribution(dim: Dimension) -> Any:
    from optuna.distributions import (
        CategoricalDistribution,
        FloatDistribution,
        IntDistribution,
    )

    if dim.kind == "float":
        return FloatDistribution(dim.low, dim.high, log=dim.log)
    if dim.kind == "int":
        return IntDistribution(int(dim.low), int(dim.high), log=dim.log)
    # Choices of any type: Optuna sees their positions, the trial gets the value itself.
    return CategoricalDistribution(list(range(len(dim.choices))))


class TPESearch(Searcher):
    """`trials` proposals from Optuna's TPESampler (multivariate, constant liar), seeded."""

    slow_ask = True
    learns = True

    def __init__(self, search_dict: dict[str, Any], trials: int = 50, direction: str = "max",
                 seed: int | None = None, n_startup_trials: int = 10) -> None:  # fmt: skip
        super().__init__(direction, seed)
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.dims = parse_bounds(search_dict)
        self.trials = check_count("trials", trials)
        self._dists = {d.name: _distribution(d) for d in self.dims}
        sampler = optuna.samplers.TPESampler(
            seed=seed, multivariate=True, constant_liar=True,
            n_startup_trials=check_count("n_startup_trials", n_startup_trials),
        )  # fmt: skip
        self._study = optuna.create_study(direction="minimize", sampler=sampler)
        self._pending = Pending()  # of Optuna trials
        self._asked = 0

    @property
    def total(self) -> int:
        return self.trials

    def ask(self) -> dict[str, Any] | None:
        if self._asked >= self.trials:
            return None
        self._asked += 1
        trial = self._study.ask(self._dists)
        params = {}
        for dim in self.dims:
            value = trial.params[dim.name]
            params[dim.name] = dim.choices[value] if dim.kind == "categorical" else value
        self._pending.add(params, trial)
        return params

    def tell(self, params: dict[str, Any], value: float | None,
             stopped_step: int | None = None) -> None:  # fmt: skip
        trial = self._pending.pop(params)
        if trial is None:
            return
        loss = self.loss(value)
        if stopped_step is not None and math.isfinite(loss):
            from optuna.trial import TrialState

            # Optuna ranks pruned trials by how far they got, then by their last value.
            trial.report(loss, stopped_step)
            self._study.tell(trial, state=TrialState.PRUNED)
            return
        self._study.tell(trial, loss if math.isfinite(loss) else math.inf)

    def observe(self, params: dict[str, Any], value: float | None) -> None:
        import optuna

        values = {}
        for dim in self.dims:
            v = params[dim.name]
            if dim.kind == "categorical":
                v = next((i for i, c in enumerate(dim.choices) if c is v or c == v), 0)
            values[dim.name] = v
        loss = self.loss(value)
        self._study.add_trial(optuna.trial.create_trial(
            params=values, distributions=self._dists, value=loss if math.isfinite(loss) else math.inf,
        ))  # fmt: skip

    def describe(self) -> dict[str, Any]:
        return {d.name: d.describe() for d in self.dims}
