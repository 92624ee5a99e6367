"""Several engines as one: a distributed run puts its Spark workers on a barrier stage and its
chief and parameter servers in local processes, and the run loop sees a single engine."""

from __future__ import annotations

from collections.abc import Callable

from hops_jupyter.core.experiment.engines.base import Engine
from hops_jupyter.core.experiment.records import TrialRecord
from hops_jupyter.core.experiment.trial import TrialTask


class EngineGroup(Engine):
    """Routes each trial to `route(task)`, one of `engines`; waits on all of them in turn."""

    def __init__(self, engines: list[Engine], route: Callable[[TrialTask], Engine]) -> None:
        self.engines, self.route = engines, route
        self.slots = sum(e.slots for e in engines)
        self.name = engines[0].name  # a Spark run with local helpers is a "spark" run
        self.report_host = engines[0].report_host

    def submit(self, task: TrialTask) -> None:
        self.route(task).submit(task)

    def wait(self, timeout: float | None = None) -> list[TrialRecord]:
        share = None if timeout is None else timeout / len(self.engines)
        return [trial for engine in self.engines for trial in engine.wait(timeout=share)]

    def running(self) -> list[TrialTask]:
        return [task for engine in self.engines for task in engine.running()]

    def cancel(self, trial_id: str) -> TrialTask | None:
        for engine in self.engines:
            task = engine.cancel(trial_id)
            if task is not None:
                return task
        return None

    def cancel_all(self) -> list[TrialTask]:
        return [task for engine in self.engines for task in engine.cancel_all()]

    def close(self) -> None:
        for engine in self.engines:
            engine.close()
