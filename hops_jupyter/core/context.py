"""The trial this process is running, if any.

Engines set it around a trial; `hdfs.log`, `tensorboard.logdir` and `experiment.report` read it.
It lives apart from `experiment` so that low-level modules can read it without importing engines.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
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
    reporter: Any = None  # sends report() values to the driver (experiment.reports.ReportClient)


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
