"""The trial this process is running, if any.

Engines set it around a trial; `hdfs.log`, `tensorboard.logdir` and `experiment.report` read it.
It lives apart from `experiment` so that low-level modules can read it without importing engines.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

_local = threading.local()


@dataclass(frozen=True)
class TrialContext:
    """What code inside a trial may ask about itself."""

    experiment_id: str
    trial_id: str
    trial_url: str
    params: dict[str, Any] = field(default_factory=dict)


def current_trial() -> TrialContext | None:
    """The trial running in this thread, or None outside experiments."""
    return getattr(_local, "trial", None)


@contextlib.contextmanager
def running_trial(ctx: TrialContext) -> Iterator[TrialContext]:
    """Mark `ctx` as the running trial for the duration of the block."""
    previous = current_trial()
    _local.trial = ctx
    try:
        yield ctx
    finally:
        _local.trial = previous


@contextlib.contextmanager
def experiment_listener(callback: Callable[[str], None]) -> Iterator[None]:
    """Call `callback(experiment_id)` when an experiment started in this thread begins
    (used by views that want to follow it without changing the API's signatures)."""
    listeners = getattr(_local, "listeners", [])
    _local.listeners = [*listeners, callback]
    try:
        yield
    finally:
        _local.listeners = listeners


def experiment_started(experiment_id: str) -> None:
    """Tell this thread's listeners that an experiment began."""
    for callback in getattr(_local, "listeners", []):
        callback(experiment_id)
