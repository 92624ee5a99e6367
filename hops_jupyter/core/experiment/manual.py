"""hops-util-py 1.0's `experiment.begin(name)` / `experiment.end(metric)`: code run directly in
the notebook between the two calls is one tracked run (`kind="begin"`, one trial `run`), so
`tensorboard.logdir()`, `hdfs.log()` and `experiment.report()` work there as in a trial."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from hops_jupyter.core import context, filesystem, project
from hops_jupyter.core.experiment import events, records
from hops_jupyter.core.experiment.records import (
    FINISHED,
    RUNNING,
    ExperimentRecord,
    TrialRecord,
)
from hops_jupyter.core.experiment.trial import as_number, plain_value


class _ManualRun:
    def __init__(self, record: ExperimentRecord, trial: TrialRecord, stack: contextlib.ExitStack):
        self.record, self.trial, self.stack = record, trial, stack
        self.start = time.monotonic()


_current: _ManualRun | None = None


def begin(name: str = "no-name", local_logdir: bool = False,
          versioned_resources: list[str] | None = None,
          description: str | None = None) -> str:  # fmt: skip
    """Start a tracked run of the code that follows; returns its logdir (the trial folder)."""
    global _current
    if _current is not None:
        raise RuntimeError(
            f"experiment.begin() was already called (experiment {_current.record.id}): "
            "call experiment.end() first"
        )
    cfg = project.current()
    exp_id = records.new_experiment_id()
    loc = records.experiments_dir(cfg).child(exp_id)
    record = ExperimentRecord(
        id=exp_id, name=name if name not in (None, "no-name") else "begin", kind="begin",
        function="notebook", direction=None, metric_key=None, search_space={}, engine="notebook",
        workers=1, trials_total=1, options={"description": description,
                                            "local_logdir": local_logdir},
        project=cfg.name, user=cfg.user, url=loc.url, owner=records.this_owner(),
    )  # fmt: skip
    trial_loc = loc.child(records.SINGLE_RUN)
    trial_loc.make_dirs()
    records.write_experiment(loc, record)
    for path in versioned_resources or []:
        source = filesystem.resolve(path, cfg)
        filesystem.copy(source, loc.child(source.name))
    trial = TrialRecord(records.SINGLE_RUN, {}, status=RUNNING, started=records.now())
    records.write_trial(trial_loc, trial)
    stack = contextlib.ExitStack()
    stack.enter_context(
        context.running_trial(context.TrialContext(exp_id, trial.id, trial_loc.url))
    )
    _current = _ManualRun(record, trial, stack)
    return (
        trial_loc.path if trial_loc.scheme == "file" else trial_loc.url
    )  # as tensorboard.logdir()


def end(metric: Any = None) -> str:
    """Finish the run begun with `begin()`, with its metric (a number, or None); returns the
    experiment folder."""
    global _current
    run = _current
    if run is None:
        raise RuntimeError("experiment.end() without experiment.begin(): nothing to end")
    value = None if metric is None else as_number(metric)
    if metric is not None and value is None:
        raise ValueError(f"end() takes a number as metric, got {metric!r}")
    _current = None
    run.stack.close()
    record, trial = run.record, run.trial
    loc = filesystem.resolve(record.url, project.current())
    trial.status, trial.metric, trial.finished = FINISHED, value, records.now()
    trial.returned = {"metric": plain_value(metric)} if metric is not None else {}
    trial.duration_s = round(time.monotonic() - run.start, 3)
    records.write_trial(loc.child(trial.id), trial)
    events.trial_ended(loc.child(trial.id), trial)  # its HParams session, for TensorBoard
    record.status, record.finished, record.duration_s = FINISHED, records.now(), trial.duration_s
    record.trials_done, record.best_trial, record.best_metric = 1, trial.id, value
    records.write_experiment(loc, record)
    return record.url
