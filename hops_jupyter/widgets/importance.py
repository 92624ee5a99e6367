"""Which hyperparameters mattered: permutation importance of a random forest fit on the trials.

A forest learns metric ~ params from the finished trials; shuffling one parameter's column and
measuring how much worse the forest predicts says how much the metric depends on it (the
approach of optuna's and W&B's importance panels). Categoricals are ordinal codes (shuffling the
one column shuffles the whole parameter), log-scale ranges are used as log10(value). Seeded, so
the same trials give the same answer.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from hops_jupyter.core.experiment.records import TrialRecord, TrialStatus

MIN_TRIALS = 20  # below this a forest fit on the trials says little


@dataclass(frozen=True)
class Importance:
    """One hyperparameter's importance: the mean drop in R² when it is shuffled, and its spread."""

    name: str
    mean: float
    std: float


def is_log(description: Any) -> bool:
    """Whether a search-space description (experiment.json) is a log-scale range."""
    return isinstance(description, dict) and bool(description.get("log"))


def _usable(trials: Sequence[TrialRecord]) -> list[TrialRecord]:
    return [
        t for t in trials
        if t.status in (TrialStatus.FINISHED, TrialStatus.EARLY_STOPPED)
        and isinstance(t.metric, (int, float)) and math.isfinite(t.metric)
    ]  # fmt: skip


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _column(name: str, description: Any, trials: list[TrialRecord]) -> list[float]:
    """One parameter as numbers: log10 for log ranges, codes for categoricals."""
    values = [t.params.get(name) for t in trials]
    if all(_is_number(v) for v in values):
        if is_log(description) and all(v > 0 for v in values):
            return [math.log10(v) for v in values]
        return [float(v) for v in values]
    choices = description if isinstance(description, list) else []
    order = [str(c) for c in choices] + sorted({str(v) for v in values} - {str(c) for c in choices})
    codes = {label: i for i, label in enumerate(order)}
    return [float(codes[str(v)]) for v in values]


def param_importances(
    trials: Sequence[TrialRecord],
    search_space: dict[str, Any],
    seed: int = 0,
    min_trials: int = MIN_TRIALS,
) -> list[Importance]:
    """Importances, most important first; empty when fewer than `min_trials` trials have a
    metric or nothing was searched."""
    done = _usable(trials)
    names = list(search_space) or sorted({k for t in done for k in t.params})
    if len(done) < min_trials or not names:
        return []
    import numpy as np
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.inspection import permutation_importance

    features = np.array([_column(n, search_space.get(n), done) for n in names]).T
    target = np.array([float(t.metric) for t in done])
    if np.ptp(target) == 0:  # every trial scored the same: nothing to explain
        return [Importance(n, 0.0, 0.0) for n in names]
    forest = RandomForestRegressor(n_estimators=64, min_samples_leaf=2, random_state=seed)
    forest.fit(features, target)
    found = permutation_importance(forest, features, target, n_repeats=10, random_state=seed)
    out = [
        Importance(name, float(mean), float(std))
        for name, mean, std in zip(
            names, found.importances_mean, found.importances_std, strict=True
        )
    ]
    return sorted(out, key=lambda i: i.mean, reverse=True)
