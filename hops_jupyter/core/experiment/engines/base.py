"""What an engine does: run trials somewhere, report them as they finish. Engines know nothing
of search; the run loop (experiment/run.py) feeds them trials and reads results. A new engine is
one file with an Engine subclass plus a line in experiment/registry.py."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

from hops_jupyter.core import project
from hops_jupyter.core.experiment.records import TrialRecord
from hops_jupyter.core.experiment.trial import TrialTask


def check_slots(workers: object) -> int:
    """A positive worker count, or a clear error naming the value."""
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    return workers


def check_timeout(timeout: object) -> float | None:
    """None, or a positive, finite number of seconds."""
    if timeout is not None and (
        not isinstance(timeout, (int, float))
        or isinstance(timeout, bool)
        or not math.isfinite(timeout)
        or timeout <= 0
    ):
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return timeout


def reuse_workers_for(explicit: object = None) -> bool:
    """Whether trials share a process per worker: `explicit`, else the configured value."""
    if explicit is None:
        return project.current().reuse_workers
    if not isinstance(explicit, bool):
        raise ValueError(f"reuse_workers must be True or False, got {explicit!r}")
    return explicit


class Engine(ABC):
    """Runs up to `slots` trials at once."""

    name: str = "engine"
    slots: int = 1
    # Where the driver's report server listens so that this engine's trials reach it.
    report_host: str = "127.0.0.1"

    @abstractmethod
    def submit(self, task: TrialTask) -> None:
        """Start a trial; the caller ensures fewer than `slots` run."""

    @abstractmethod
    def wait(self, timeout: float | None = None) -> list[TrialRecord]:
        """Block until at least one trial ends (or timeout); return the ended trials' records.
        A trial that crashed its worker or ran past its timeout comes back FAILED."""

    @abstractmethod
    def running(self) -> list[TrialTask]:
        """Trials submitted and not yet returned by wait()."""

    @abstractmethod
    def cancel(self, trial_id: str) -> TrialTask | None:
        """Stop one running trial now; its task, or None when it was not running. The caller
        writes its record."""

    @abstractmethod
    def cancel_all(self) -> list[TrialTask]:
        """Stop every running trial now; return the trials that were stopped."""

    @property
    def capacity(self) -> int:
        """Trials it accepts at once, running or queued to start as soon as a slot frees;
        default: its slots."""
        return self.slots

    def close(self) -> None:  # noqa: B027
        """Release workers; default: nothing to release."""
