"""The median stopping rule (Golovin et al., Google Vizier): stop a trial whose best value so
far is worse than the median of the other trials' best values up to the same step."""

from __future__ import annotations

import statistics

from hops_jupyter.core.experiment.stopping.base import StoppingPolicy, as_loss, check_positive_int


class MedianStopping(StoppingPolicy):
    """Judges a trial from step `min_steps` on, once `min_trials` other trials have reported
    that far. Trials above the median run to the end, so it saves less than ASHA."""

    name = "median"

    def __init__(self, min_steps: int = 3, min_trials: int = 4) -> None:
        self.min_steps = check_positive_int("min_steps", min_steps, 0)
        self.min_trials = check_positive_int("min_trials", min_trials, 1)
        # trial -> list of (step, best loss up to that step), steps increasing
        self._curves: dict[str, list[tuple[int, float]]] = {}

    def _best_upto(self, trial_id: str, step: int) -> float | None:
        best = None
        for s, loss in self._curves.get(trial_id, ()):
            if s > step:
                break
            best = loss
        return best

    def report(self, trial_id: str, step: int, loss: float) -> bool:
        curve = self._curves.setdefault(trial_id, [])
        best = min(as_loss(loss), curve[-1][1]) if curve else as_loss(loss)
        if curve and step <= curve[-1][0]:  # a repeated or older step: keep the order
            curve[:] = [(s, v) for s, v in curve if s < step]
            best = min([as_loss(loss), *(v for _, v in curve[-1:])])
        curve.append((step, best))
        if step < self.min_steps:
            return False
        others = [
            b
            for other, points in self._curves.items()
            if other != trial_id and points and points[-1][0] >= step
            for b in [self._best_upto(other, step)]
            if b is not None
        ]
        if len(others) < self.min_trials:
            return False
        return best > statistics.median(others)

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "min_steps": self.min_steps, "min_trials": self.min_trials}
