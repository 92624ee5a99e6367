"""Drives one experiment: asks the search for trials, runs them on an engine, keeps the records.

No state outlives a call: two experiments can run one after the other (or at once from two
threads) and an error in one leaves nothing behind that breaks the next.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from hops_jupyter.core import context, filesystem, project
from hops_jupyter.core.experiment import records
from hops_jupyter.core.experiment.engines.base import Engine
from hops_jupyter.core.experiment.records import (
    FAILED,
    FINISHED,
    KILLED,
    ExperimentRecord,
    TrialRecord,
)
from hops_jupyter.core.experiment.search import Searcher
from hops_jupyter.core.experiment.trial import TrialTask, config_env, record_failure

DISTRIBUTED_KINDS = ("mirrored", "collective_all_reduce", "parameter_server")


class ExperimentFailed(RuntimeError):
    """Every trial of an experiment failed; the records (with tracebacks) are kept."""

    def __init__(self, message: str, result: ExperimentResult) -> None:
        super().__init__(message)
        self.result = result


@dataclass
class ExperimentSpec:
    """What the public API collected from the user for one experiment."""

    kind: str
    fn: Callable[..., Any]
    searcher: Searcher
    engine: Engine
    name: str | None = None
    direction: str | None = None
    metric_key: str | None = None
    needs_metric: bool = False
    resume: str | None = None
    seed: int | None = None
    options: dict[str, Any] = field(default_factory=dict)


class ExperimentResult(os.PathLike):
    """What launch and the searches return.

    `str(result)` (and `os.fspath`) is the experiment's folder, as the seed's code expects
    (`tensorboard.visualize(result)`); it unpacks as `(logdir, return_dict)` for launch and
    `(best_dir, best_params, best_return_dict)` for searches, as later Hops versions return.
    """

    def __init__(self, record: ExperimentRecord) -> None:
        self.record = record
        self.id = record.id
        self.path = record.url

    @property
    def status(self) -> str:
        return self.record.status

    @property
    def trials(self) -> list[TrialRecord]:
        return self.record.trials

    def _best(self) -> TrialRecord | None:
        return next((t for t in self.trials if t.id == self.record.best_trial), None)

    @property
    def best_dir(self) -> str | None:
        return f"{self.path}/{self.record.best_trial}" if self.record.best_trial else None

    @property
    def best_params(self) -> dict[str, Any] | None:
        return self.record.best_params

    @property
    def best_metric(self) -> float | None:
        return self.record.best_metric

    @property
    def best_return(self) -> dict[str, Any] | None:
        best = self._best()
        return best.returned if best else None

    @property
    def return_dict(self) -> dict[str, Any] | None:
        """launch: the run's returned dict (one per trial id when args_dict gave several);
        distributed runs: the chief's."""
        if self.record.kind in DISTRIBUTED_KINDS:
            return self.best_return
        if len(self.trials) == 1:
            return self.trials[0].returned
        return {t.id: t.returned for t in self.trials}

    def _as_tuple(self) -> tuple[Any, ...]:
        if self.record.kind == "launch" or self.record.kind in DISTRIBUTED_KINDS:
            return (self.path, self.return_dict)
        return (self.best_dir, self.best_params, self.best_return)

    def __iter__(self):
        return iter(self._as_tuple())

    def __len__(self) -> int:
        return len(self._as_tuple())

    def __getitem__(self, index: int) -> Any:
        return self._as_tuple()[index]

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path

    def __repr__(self) -> str:
        return (
            f"ExperimentResult(id={self.id!r}, kind={self.record.kind!r}, "
            f"status={self.status!r}, best_metric={self.best_metric!r}, path={self.path!r})"
        )


def check_signature(fn: Callable[..., Any], names: list[str]) -> None:
    """Refuse a function whose parameters don't match the hyperparameter names, saying which."""
    if not callable(fn):
        raise TypeError(f"The training function must be callable, got {type(fn).__name__}")
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return
    kinds = inspect.Parameter
    takes_kwargs = any(p.kind == kinds.VAR_KEYWORD for p in params.values())
    named = {
        n for n, p in params.items() if p.kind in (kinds.POSITIONAL_OR_KEYWORD, kinds.KEYWORD_ONLY)
    }
    unknown = [n for n in names if n not in named and not takes_kwargs]
    missing = [
        n
        for n, p in params.items()
        if n in named and p.default is inspect.Parameter.empty and n not in names
    ]
    if unknown or missing:
        problems = []
        if unknown:
            problems.append(f"it has no parameter for {unknown}")
        if missing:
            problems.append(f"nothing gives a value for its parameter(s) {missing}")
        fname = getattr(fn, "__name__", repr(fn))
        raise ValueError(
            f"Function {fname}({', '.join(params)}) does not match the hyperparameters "
            f"{names}: {'; '.join(problems)}"
        )


def _pickle_function(fn: Callable[..., Any]) -> tuple[str, bytes]:
    try:
        data = cloudpickle.dumps(fn)
    except Exception as err:
        raise TypeError(
            f"Cannot send {getattr(fn, '__name__', fn)!r} to the workers: {err}. Everything the "
            "function uses from the notebook must be picklable (open files, locks, sessions are not)"
        ) from err
    return hashlib.sha1(data).hexdigest(), data


def _is_better(metric: float, best: float | None, direction: str) -> bool:
    if best is None:
        return True
    return metric > best if direction == "max" else metric < best


def _summarize(record: ExperimentRecord, trials: dict[str, TrialRecord]) -> None:
    done = [t for t in trials.values() if t.status in (FINISHED, FAILED, KILLED)]
    record.trials_done = len(done)
    record.trials_failed = sum(t.status == FAILED for t in done)
    best: TrialRecord | None = None
    direction = record.direction or "max"
    for trial in done:
        metric = trial.metric
        if trial.status != FINISHED or not isinstance(metric, (int, float)) or math.isnan(metric):
            continue
        if best is None or _is_better(metric, best.metric, direction):
            best = trial
    if best is None and record.kind == "launch":
        best = next((t for t in done if t.status == FINISHED), None)
    if best is not None:
        record.best_trial, record.best_metric, record.best_params = (
            best.id,
            best.metric,
            best.params,
        )


def _start_tensorboard(record: ExperimentRecord, loc: filesystem.Location) -> None:
    """Every experiment starts its TensorBoard as it begins (launched, not waited for)."""
    from hops_jupyter.core import tensorboard

    try:
        tensorboard.start(record.id, loc.path if loc.scheme == "file" else loc.url, wait=False)
    except (OSError, ImportError) as err:  # TensorBoard is a convenience: never fail the run
        print(f"hops: could not start TensorBoard for {record.id}: {err}")


def _new_record(spec: ExperimentSpec, cfg: project.Project) -> tuple[ExperimentRecord, dict]:
    if spec.resume:
        loc = records.experiment_dir(spec.resume, cfg)
        old = records.read_experiment(loc)
        space = json.loads(json.dumps(spec.searcher.describe(), default=str))
        if old.kind != spec.kind or old.search_space != space:
            raise ValueError(
                f"Cannot resume {spec.resume!r}: it was a {old.kind} over {old.search_space}, "
                f"this call is a {spec.kind} over {space}"
            )
        known = {t.id: t for t in old.trials if t.status == FINISHED}
        old.status, old.finished, old.duration_s = records.RUNNING, None, None
        old.trials = []
        return old, known
    exp_id = records.new_experiment_id()
    loc = records.experiments_dir(cfg).child(exp_id)
    record = ExperimentRecord(
        id=exp_id,
        name=spec.name or getattr(spec.fn, "__name__", "experiment"),
        kind=spec.kind,
        function=getattr(spec.fn, "__qualname__", repr(spec.fn)),
        direction=spec.direction,
        metric_key=spec.metric_key,
        search_space=json.loads(json.dumps(spec.searcher.describe(), default=str)),
        engine=spec.engine.name,
        workers=spec.engine.slots,
        trials_total=spec.searcher.total,
        seed=spec.seed,
        options=spec.options,
        project=cfg.name,
        user=cfg.user,
        url=loc.url,
    )
    return record, {}


def run(
    spec: ExperimentSpec, on_update: Callable[[ExperimentRecord], None] | None = None
) -> ExperimentResult:
    """Run the experiment to the end and return its result (records are written as it goes)."""
    cfg = project.current()
    fn_key, fn_bytes = _pickle_function(spec.fn)
    record, known = _new_record(spec, cfg)
    loc = filesystem.resolve(record.url, cfg)
    loc.fs.create_dir(loc.path, recursive=True)
    records.write_experiment(loc, record)
    if cfg.tensorboard:
        _start_tensorboard(record, loc)
    context.experiment_started(record.id)
    trials: dict[str, TrialRecord] = dict(known)
    start = time.monotonic()
    env = config_env(cfg)

    def task_for(trial_id: str, params: dict[str, Any]) -> TrialTask:
        return TrialTask(
            record.id, trial_id, f"{record.url}/{trial_id}", params, fn_key, fn_bytes,
            spec.metric_key, spec.needs_metric, env,
        )  # fmt: skip

    def finish(status: str) -> None:
        record.status = status
        record.finished = records.now()
        record.duration_s = round(time.monotonic() - start, 3)
        _summarize(record, trials)
        records.write_experiment(loc, record)

    try:
        _loop(spec, record, loc, trials, known, task_for, on_update)
    except BaseException as err:
        stopped = spec.engine.cancel_all()
        killed = isinstance(err, KeyboardInterrupt)
        for task in stopped:
            message = (
                "Stopped by the user" if killed else f"Stopped: the experiment failed ({err!r})"
            )
            trials[task.trial_id] = record_failure(
                task, "KeyboardInterrupt" if killed else "Stopped", message, KILLED
            )
        finish(KILLED if killed else FAILED)
        raise
    finally:
        spec.engine.close()
    finish(FINISHED if any(t.status == FINISHED for t in trials.values()) else FAILED)
    record.trials = records.read_trials(loc)
    result = ExperimentResult(record)
    if record.status == FAILED:
        first = next((t for t in record.trials if t.error), None)
        detail = (
            f"\n\nFirst failure ({first.id}):\n{first.error['traceback'] or first.error['message']}"
            if first
            else ""
        )
        raise ExperimentFailed(
            f"All {len(record.trials)} trial(s) of experiment {record.id} failed; records are in "
            f"{record.url}{detail}",
            result,
        )
    return result


def _loop(
    spec: ExperimentSpec,
    record: ExperimentRecord,
    loc: filesystem.Location,
    trials: dict[str, TrialRecord],
    known: dict[str, TrialRecord],
    task_for: Callable[[str, dict[str, Any]], TrialTask],
    on_update: Callable[[ExperimentRecord], None] | None,
) -> None:
    engine, searcher = spec.engine, spec.searcher
    inflight: dict[str, TrialTask] = {}
    parked: dict[str, list[dict[str, Any]]] = {}
    exhausted = False
    checked = False
    while True:
        while not exhausted and len(inflight) < engine.slots:
            params = searcher.ask()
            if params is None:
                exhausted = True
                break
            if not checked:
                check_signature(spec.fn, list(params))
                checked = True
            trial_id = records.trial_name(params)
            if trial_id in known:  # resumed, or the search proposed a finished point again
                searcher.tell(params, known[trial_id].metric)
                continue
            if trial_id in inflight:  # same point already running: reuse its result
                parked.setdefault(trial_id, []).append(params)
                continue
            task = task_for(trial_id, params)
            engine.submit(task)
            inflight[trial_id] = task
        if not inflight:
            return
        for done in engine.wait(timeout=1.0):
            task = inflight.pop(done.id)
            trials[done.id] = done
            value = done.metric if done.status == FINISHED else None
            for params in [task.params, *parked.pop(done.id, [])]:
                searcher.tell(params, value)
            if done.status == FINISHED:
                known[done.id] = done
            _summarize(record, trials)
            records.write_experiment(loc, record)
            if on_update is not None:
                on_update(record)
