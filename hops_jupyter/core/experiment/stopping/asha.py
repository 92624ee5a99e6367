"""Asynchronous successive halving (ASHA, Li et al. 2020): rungs at steps
`min_steps * reduction_factor**k`; a trial reaching a rung goes on only if its value is in the
top 1/reduction_factor of the values recorded at that rung so far. Decided as results arrive,
with no waiting for a generation."""

from __future__ import annotations

import math

from hops_jupyter.core.experiment.stopping.base import StoppingPolicy, as_loss, check_positive_int


class ASHA(StoppingPolicy):
    """Rungs by step; `max_steps` (optional) is the last step a trial can run to, beyond which
    no rung is placed."""

    name = "asha"

    def __init__(self, min_steps: int = 1, reduction_factor: int = 3,
                 max_steps: int | None = None) -> None:  # fmt: skip
        self.min_steps = check_positive_int("min_steps", min_steps, 1)
        self.reduction_factor = check_positive_int("reduction_factor", reduction_factor, 2)
        if max_steps is not None:
            check_positive_int("max_steps", max_steps, self.min_steps)
        self.max_steps = max_steps
        self._rungs: dict[int, list[float]] = {}  # rung step -> losses recorded there
        self._passed: dict[str, int] = {}  # trial -> highest rung it has been judged at

    def _rungs_upto(self, step: int) -> list[int]:
        out, rung = [], self.min_steps
        while rung <= step and (self.max_steps is None or rung < self.max_steps):
            out.append(rung)
            rung *= self.reduction_factor
        return out

    def report(self, trial_id: str, step: int, loss: float) -> bool:
        loss = as_loss(loss)
        for rung in self._rungs_upto(step):
            if rung <= self._passed.get(trial_id, -1):
                continue
            self._passed[trial_id] = rung
            recorded = self._rungs.setdefault(rung, [])
            recorded.append(loss)
            # the value at the 1/eta quantile of what this rung has seen (itself included)
            ordered = sorted(recorded)
            keep = max(1, math.floor(len(ordered) / self.reduction_factor))
            if loss > ordered[keep - 1]:
                return True
        return False

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "min_steps": self.min_steps,
                "reduction_factor": self.reduction_factor, "max_steps": self.max_steps}  # fmt: skip
