"""The one run loop: an `ExperimentRun` owns an experiment from validation to its final record.

    ask -> submit -> wait -> (reports -> stopping policy -> cancel) -> tell -> ... -> finish

It validates before anything is written, writes the record, starts the report server and the
TensorBoard, then loops in named phases (`_launch`, `_collect`, `_enforce_stops`) until the
search is exhausted and no trial runs, and finishes (summary, status, error) in one place.
UI layers follow a run through `RunHooks` passed in; a failing hook is logged and never leaves
the record RUNNING. Distributed runs are a subclass (`distributed.ClusterRun`), not a second
loop. No state outlives a run: two runs can go one after the other, or at once from two threads.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from hops_jupyter.core import filesystem, project
from hops_jupyter.core.experiment import records
from hops_jupyter.core.experiment.engines.base import Engine
from hops_jupyter.core.experiment.records import (
    EARLY_STOPPED,
    ENDED,
    FAILED,
    FINISHED,
    KILLED,
    PENDING,
    ExperimentRecord,
    TrialRecord,
)
from hops_jupyter.core.experiment.reports import Report, ReportServer
from hops_jupyter.core.experiment.result import ExperimentFailed, ExperimentResult
from hops_jupyter.core.experiment.search import Searcher
from hops_jupyter.core.experiment.search.ahead import AskAhead
from hops_jupyter.core.experiment.stopping import StoppingPolicy
from hops_jupyter.core.experiment.trial import TrialTask, config_env, record_failure

log = logging.getLogger(__name__)

# A trial told to stop that has not ended this long after (it does not call report() again,
# or it catches everything) is killed by its engine.
STOP_GRACE_S = 0.5
LOCK_FILE = ".resume.lock"
# How long one wait for engine events lasts; reports are answered at once regardless.
WAIT_S = 0.2
# experiment.json (the summary) is rewritten at most this often while trials end; each
# trial's own record is written as it ends, and the last summary when the run ends.
SUMMARY_EVERY_S = 0.2
# How often the driver looks for a stop request (records.request_stop: the panel, the widget's
# stop button, experiment.stop() from another kernel).
STOP_POLL_S = 0.25


class RunHooks:
    """Optional callbacks for views that follow a run (widgets, magics); all do nothing by
    default. They run on the run's thread: keep them short."""

    def on_started(self, record: ExperimentRecord) -> None:
        """The record is written and trials are about to start."""

    def on_report(self, record: ExperimentRecord, report: Report) -> None:
        """A running trial reported a value."""

    def on_trial_end(self, record: ExperimentRecord, trial: TrialRecord) -> None:
        """A trial ended (any status); the record's summary is up to date."""

    def on_finished(self, record: ExperimentRecord) -> None:
        """The final record is written (FINISHED, FAILED or KILLED)."""


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
    stopper: StoppingPolicy | None = None
    hooks: Sequence[RunHooks] = ()


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


def pickle_function(fn: Callable[..., Any]) -> tuple[str, bytes]:
    """(a key, the cloudpickled function); what the notebook function drags along must pickle."""
    try:
        data = cloudpickle.dumps(fn)
    except Exception as err:
        raise TypeError(
            f"Cannot send {getattr(fn, '__name__', fn)!r} to the workers: {err}. Everything the "
            "function uses from the notebook must be picklable (open files, locks, sessions are not)"
        ) from err
    return hashlib.sha1(data).hexdigest(), data


def trial_value(trial: TrialRecord) -> float | None:
    """What the search learns from an ended trial: its metric if it finished or was stopped
    early (then its last report), None (the worst) otherwise."""
    if trial.status in (FINISHED, EARLY_STOPPED) and isinstance(trial.metric, (int, float)):
        return float(trial.metric)
    return None


def _better(metric: float, best: float | None, direction: str) -> bool:
    if best is None:
        return True
    return metric > best if direction == "max" else metric < best


def _space(searcher: Searcher) -> dict[str, Any]:
    return json.loads(json.dumps(searcher.describe(), default=str))


class ExperimentRun:
    """One experiment: `ExperimentRun(spec).run()` returns its result or raises
    ExperimentFailed (every trial failed) or the interrupt that stopped it."""

    def __init__(self, spec: ExperimentSpec) -> None:
        self.spec, self.engine, self.search = spec, spec.engine, spec.searcher
        if spec.searcher.slow_ask:
            self.search = AskAhead(spec.searcher)
        self.resumed_status: str | None = None
        self.cfg = project.current()
        self._check()  # everything is validated before anything is written
        self.fn_key, self.fn_bytes = pickle_function(spec.fn)
        self.record, self.known = self._new_record()
        self.loc = filesystem.resolve(self.record.url, self.cfg)
        self.trials: dict[str, TrialRecord] = dict(self.known)
        self._summarize()  # a resumed run counts on from its finished trials
        self.inflight: dict[str, TrialTask] = {}
        self.parked: dict[str, list[dict[str, Any]]] = {}  # duplicate proposals in flight
        self.exhausted = False
        self.stopping: dict[str, tuple[float, Report]] = {}  # told to stop: since, last report
        self.server: ReportServer | None = None
        self._policy_lock = threading.Lock()  # the report server's threads use the policy too
        self.env = config_env(self.cfg)
        self._start = time.monotonic()
        self._written = 0.0
        self._dirty = False  # trials ended since experiment.json was last written
        self._lock_path: str | None = None
        self._stop_checked = 0.0
        self.stop_requested = False  # someone asked it to stop (records.request_stop)

    # --- set-up --------------------------------------------------------------------------

    def _check(self) -> None:
        check_signature(self.spec.fn, list(self.search.describe()))
        self._resources()

    def _resources(self) -> list[filesystem.Location]:
        """The files `versioned_resources=` names, each checked to exist (as Hops did, they are
        copied into the experiment folder)."""
        paths = self.spec.options.get("versioned_resources") or []
        if isinstance(paths, str) or not isinstance(paths, (list, tuple)):
            raise TypeError(f"versioned_resources must be a list of paths, got {paths!r}")
        found = []
        for path in paths:
            loc = filesystem.resolve(path, self.cfg)
            if not loc.isfile():
                raise FileNotFoundError(f"versioned_resources: no file at {path!r} ({loc.url})")
            found.append(loc)
        return found

    def _describe_space(self) -> dict[str, Any]:
        return _space(self.search)

    def _new_record(self) -> tuple[ExperimentRecord, dict[str, TrialRecord]]:
        spec = self.spec
        if spec.resume:
            old = records.read_experiment(records.experiment_dir(spec.resume, self.cfg))
            self._check_resume(old)
            known = {t.id: t for t in old.trials if t.status in (FINISHED, EARLY_STOPPED)}
            self.resumed_status = old.status
            old.status, old.finished, old.duration_s = records.RUNNING, None, None
            old.status_message, old.trials_total = None, self.search.total
            old.trials = []
            return old, known
        exp_id = records.new_experiment_id()
        options = dict(spec.options)
        if spec.stopper is not None:
            options["early_stopping"] = spec.stopper.describe()
        record = ExperimentRecord(
            id=exp_id, name=spec.name or getattr(spec.fn, "__name__", "experiment"),
            kind=spec.kind, function=getattr(spec.fn, "__qualname__", repr(spec.fn)),
            direction=spec.direction, metric_key=spec.metric_key,
            search_space=self._describe_space(), engine=self.engine.name,
            workers=self.engine.slots, trials_total=self.search.total, seed=spec.seed,
            options=options, project=self.cfg.name, user=self.cfg.user,
            url=records.experiments_dir(self.cfg).child(exp_id).url,
        )  # fmt: skip
        return record, {}

    def _check_resume(self, old: ExperimentRecord) -> None:
        """Refuse a resume that would run other trials than the first run (another kind, space,
        seed or optimizer), or that another live process is running now."""
        spec = self.spec
        mine = {"kind": spec.kind, "search space": self._describe_space(), "seed": spec.seed,
                "optimizer": spec.options.get("optimizer")}  # fmt: skip
        theirs = {"kind": old.kind, "search space": old.search_space, "seed": old.seed,
                  "optimizer": old.options.get("optimizer")}  # fmt: skip
        differ = [k for k in mine if mine[k] != theirs[k] and not (k == "seed" and mine[k] is None)]
        if differ:
            detail = "; ".join(f"{k}: {theirs[k]!r} then, {mine[k]!r} now" for k in differ)
            raise ValueError(f"Cannot resume {old.id!r}: this call differs in {detail}")
        if old.status == records.RUNNING and records.owner_alive(old.owner):
            owner = old.owner or {}
            raise RuntimeError(
                f"Experiment {old.id} is running in process {owner.get('pid')} on "
                f"{owner.get('host')}: resume it once that process has ended"
            )

    def _lock(self) -> None:
        """One resumer at a time: an exclusive lock file (local filesystems), taken over only
        from a process that is gone."""
        if self.loc.scheme != "file":
            return  # HDFS: the owner check above is what we have
        path = os.path.join(self.loc.path, LOCK_FILE)
        # The lock appears whole or not at all: written under a private name, then hard-linked
        # (link fails if the lock exists), so a racing resumer never reads it half-written.
        mine = f"{path}.{os.getpid()}"
        with open(mine, "w") as f:
            json.dump(records.this_owner(), f)
        try:
            self._take_lock(mine, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(mine)

    def _take_lock(self, mine: str, path: str) -> None:
        for _ in range(2):
            try:
                os.link(mine, path)
            except FileExistsError:
                try:
                    with open(path) as f:
                        holder = json.load(f)
                except (OSError, ValueError):
                    holder = {}
                if records.owner_alive(holder):
                    raise RuntimeError(
                        f"Experiment {self.record.id} is being resumed by process "
                        f"{holder.get('pid')} on {holder.get('host')}: wait for it to end"
                    ) from None
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)  # its holder died: take it over
                continue
            self._lock_path = path
            return
        raise RuntimeError(f"Could not lock experiment {self.record.id} for resuming")

    def _unlock(self) -> None:
        if self._lock_path is not None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._lock_path)
            self._lock_path = None

    def _begin(self) -> None:
        self.loc.make_dirs()
        if self.spec.resume:
            self._lock()
        self.record.owner = records.this_owner()
        records.clear_stop(self.loc)  # a request left from an earlier run is not for this one
        self._write(sweep=True)
        for source in self._resources():
            filesystem.copy(source, self.loc.child(source.name))
        self.server = ReportServer(self._decide, getattr(self.engine, "report_host", "127.0.0.1"))
        if self.cfg.tensorboard:
            self._start_tensorboard()

    def _start_tensorboard(self) -> None:
        """Every experiment starts its TensorBoard as it begins (launched, not waited for)."""
        from hops_jupyter.core import tensorboard

        loc = self.loc
        try:
            tensorboard.start(self.record.id, loc.path if loc.scheme == "file" else loc.url,
                              wait=False)  # fmt: skip
        except (OSError, ImportError) as err:  # TensorBoard is a convenience: never fail the run
            print(f"hops: could not start TensorBoard for {self.record.id}: {err}")

    # --- the loop ------------------------------------------------------------------------

    def run(self) -> ExperimentResult:
        """Run to the end; the record is final whatever happens (interrupt included)."""
        self._begin()
        try:
            self._hook("on_started", self.record)
            while self._step():
                pass
            if self.stop_requested:
                self._halt("Stopped", "Stopped by the user")
        except KeyboardInterrupt as err:
            self._abort(err)
            # One short line, not a traceback through the engine's internals: the record says
            # what was stopped, and the caller (a script, the magic) decides how to show it.
            raise KeyboardInterrupt(
                f"experiment {self.record.id} {self.record.status_message}"
            ) from None
        except BaseException as err:
            self._abort(err)
            raise
        finally:
            self._close()
        if self.stop_requested:
            self._finish(KILLED)
            print(f"experiment {self.record.id} {self.record.status_message}")
        else:
            self._finish(self._final_status())
        return self._result()

    def _step(self) -> bool:
        """One turn: fill free slots, collect what happened, stop what the policy stopped.
        False once the search is exhausted and nothing runs."""
        self._launch()
        if not self.inflight or self._stop_due():
            return False
        self._collect(self.engine.wait(timeout=WAIT_S))
        self._enforce_stops()
        since = time.time() - self._written
        if since >= records.HEARTBEAT_S or (self._dirty and since >= SUMMARY_EVERY_S):
            self._write()  # the heartbeat: readers on other hosts see the driver alive
        return True

    def _stop_due(self) -> bool:
        """Whether a stop was requested (checked at most every STOP_POLL_S: one stat)."""
        now = time.monotonic()
        if now - self._stop_checked >= STOP_POLL_S:
            self._stop_checked = now
            self.stop_requested = records.stop_requested(self.loc)
        return self.stop_requested

    def _launch(self) -> None:
        # A search that does not learn may queue trials at the workers, so a trial starts the
        # moment one ends; a learning one proposes only when a slot is free.
        room = self.engine.slots if self.search.learns else self.engine.capacity
        while not self.exhausted and len(self.inflight) < room:
            params = self.search.ask()
            if params is None:
                self.exhausted = True
                return
            trial_id = records.trial_name(params)
            if trial_id in self.known:  # resumed, or the search proposed a finished point again
                old = self.known[trial_id]
                self.search.tell(params, trial_value(old), old.stopped_step)
                continue
            if trial_id in self.inflight:  # the same point already runs: share its result
                self.parked.setdefault(trial_id, []).append(params)
                continue
            task = self._task(trial_id, params)
            self.engine.submit(task)
            self.inflight[trial_id] = task
            self._dirty = True  # readers list it as PENDING until its own record appears

    def _task(self, trial_id: str, params: dict[str, Any]) -> TrialTask:
        spec = self.spec
        return TrialTask(
            self.record.id, trial_id, f"{self.record.url}/{trial_id}", params, self.fn_key,
            self.fn_bytes, spec.metric_key, spec.needs_metric, self.env,
            reporter=self.server.address if self.server else None,
        )  # fmt: skip

    def _collect(self, ended: list[TrialRecord]) -> None:
        if self.server is not None:
            for report in self.server.drain():
                decided = self.server.stop_requested.get(report.trial_id)
                if decided is not None:  # the report that made the policy stop it
                    self.stopping.setdefault(report.trial_id, (time.monotonic(), decided))
                self._hook("on_report", self.record, report)
        for trial in ended:
            self._trial_ended(trial)

    def _decide(self, report: Report) -> bool:
        """Called by the report server for every report: should this trial stop now?"""
        stopper = self.spec.stopper
        if stopper is None or report.trial_id not in self.inflight:
            return False
        loss = self.search.loss(report.value)
        with self._policy_lock:
            return stopper.report(report.trial_id, report.step, loss)

    def _enforce_stops(self) -> None:
        """Kill a trial that was told to stop and did not, STOP_GRACE_S after the decision."""
        now = time.monotonic()
        for trial_id, (since, report) in list(self.stopping.items()):
            if trial_id not in self.inflight:
                del self.stopping[trial_id]
            elif now - since >= STOP_GRACE_S:
                task = self.engine.cancel(trial_id)
                del self.stopping[trial_id]
                if task is not None:
                    self._trial_ended(self._stopped_record(task, report))

    def _stopped_record(self, task: TrialTask, report: Report) -> TrialRecord:
        trial = record_failure(task, "EarlyStopped", f"Stopped early at step {report.step}",
                               EARLY_STOPPED)  # fmt: skip
        trial.error, trial.metric, trial.stopped_step = None, report.value, report.step
        records.write_trial(filesystem.resolve(task.trial_url, self.cfg), trial)
        return trial

    def _trial_ended(self, trial: TrialRecord) -> None:
        task = self.inflight.pop(trial.id, None)
        if task is None:  # already accounted for (cancelled, then reported by the engine)
            return
        self.trials[trial.id] = trial
        value = trial_value(trial)
        stopped = trial.stopped_step if trial.status == EARLY_STOPPED else None
        for params in [task.params, *self.parked.pop(trial.id, [])]:
            self.search.tell(params, value, stopped)
        if self.spec.stopper is not None:
            with self._policy_lock:
                self.spec.stopper.trial_ended(trial.id)
        if trial.status in (FINISHED, EARLY_STOPPED):
            self.known[trial.id] = trial
        self._count(trial)
        self._dirty = True
        if time.time() - self._written >= SUMMARY_EVERY_S:
            self._write()
        self._hook("on_trial_end", self.record, trial)

    # --- the end -------------------------------------------------------------------------

    def _halt(self, error_type: str, message: str) -> None:
        """Stop every trial in flight: those running end KILLED, those that had not started
        are recorded PENDING ("not started"), so none vanishes from the record."""
        tasks = {t.trial_id: t for t in self.engine.cancel_all()}
        tasks.update({k: t for k, t in self.inflight.items() if k not in tasks})
        for trial_id, task in tasks.items():
            if self.inflight.pop(trial_id, None) is not None:
                self.trials[trial_id] = record_failure(task, error_type, message, KILLED)
        self.record.status_message = self.stop_summary()

    def stop_summary(self) -> str:
        """`stopped: 5 finished, 2 killed, 3 not started` (failed ones too, when any)."""
        statuses = [t.status for t in self.trials.values()]
        finished = statuses.count(FINISHED) + statuses.count(EARLY_STOPPED)
        failed, killed = statuses.count(FAILED), statuses.count(KILLED)
        total = self.record.trials_total
        waiting = statuses.count(PENDING)
        not_started = max(waiting, total - finished - failed - killed) if total else waiting
        parts = [f"{finished} finished", *([f"{failed} failed"] if failed else []),
                 f"{killed} killed", f"{not_started} not started"]  # fmt: skip
        return "stopped: " + ", ".join(parts)

    def _abort(self, err: BaseException) -> None:
        """Interrupted or broken: stop every running trial and write the final record."""
        killed = isinstance(err, KeyboardInterrupt)
        message = "Stopped by the user" if killed else f"Stopped: the experiment failed ({err!r})"
        self._halt("KeyboardInterrupt" if killed else "Stopped", message)
        if not killed:
            self.record.status_message = message
        if self.resumed_status == FINISHED:
            self._finish(FINISHED)  # a failed resume never rewrites a finished record
        else:
            self._finish(KILLED if killed else FAILED)

    def _close(self) -> None:
        if isinstance(self.search, AskAhead):
            self.search.close()
        self.engine.close()
        if self.server is not None:
            self.server.close()
        self._unlock()

    def _final_status(self) -> str:
        ok = any(t.status in (FINISHED, EARLY_STOPPED) for t in self.trials.values())
        return FINISHED if ok else FAILED

    def _count(self, trial: TrialRecord) -> None:
        """The summary after one more ended trial, in O(1) (a full pass per trial would cost
        O(trials^2) over a long search)."""
        record = self.record
        if trial.status == KILLED:  # stopped, not done: "2/3 trials" would read as progress
            record.trials_killed += 1
            return
        if trial.status not in ENDED:
            return
        record.trials_done += 1
        record.trials_failed += trial.status == FAILED
        metric, direction = trial.metric, record.direction or "max"
        if (
            trial.status == FINISHED
            and isinstance(metric, (int, float))
            and math.isfinite(metric)
            and (record.best_trial is None or _better(metric, record.best_metric, direction))
        ):
            record.best_trial, record.best_metric = trial.id, metric
            record.best_params = trial.params
        elif record.best_trial is None and record.kind == "launch" and trial.status == FINISHED:
            record.best_trial, record.best_metric = trial.id, metric
            record.best_params = trial.params

    def _summarize(self) -> None:
        """The summary counted again over every trial (at the start and the end); a best found
        earlier stays when no trial qualifies."""
        record = self.record
        kept = record.best_trial, record.best_metric, record.best_params
        record.trials_done = record.trials_failed = record.trials_killed = 0
        record.best_trial = record.best_metric = record.best_params = None
        for trial in self.trials.values():
            self._count(trial)
        if record.best_trial is None:
            record.best_trial, record.best_metric, record.best_params = kept

    def _finish(self, status: str) -> None:
        record = self.record
        record.status = status
        record.finished = records.now()
        record.duration_s = round(time.monotonic() - self._start, 3)
        record.pending = {}  # trials that never started have their own PENDING record now
        self._summarize()
        self._write(sweep=True)
        if self.cfg.tensorboard:  # a FAILED experiment keeps no TensorBoard nobody asked for
            from hops_jupyter.core import tensorboard

            tensorboard.experiment_ended(record.id, status)
        self._hook("on_finished", record)

    def _write(self, sweep: bool = False) -> None:
        """Write experiment.json; `sweep` (first and last write) also removes temp files that
        killed writers left in the experiment folder."""
        if self.record.owner is not None:
            self.record.owner["heartbeat"] = time.time()
        if self.record.status == records.RUNNING:
            self.record.pending = {k: t.params for k, t in self.inflight.items()}
        records.write_experiment(self.loc, self.record, sweep)
        self._written, self._dirty = time.time(), False

    def _hook(self, name: str, *args: Any) -> None:
        for hooks in self.spec.hooks:
            try:
                getattr(hooks, name)(*args)
            except Exception:  # a view's bug must not break, or hang, the experiment
                log.exception("hops: the %s hook of %r failed", name, hooks)

    def _failure_message(self) -> str:
        first = next((t for t in self.record.trials if t.error), None)
        detail = (
            f"\n\nFirst failure ({first.id}):\n{first.error['traceback'] or first.error['message']}"
            if first
            else ""
        )
        return (
            f"All {len(self.record.trials)} trial(s) of experiment {self.record.id} failed; "
            f"records are in {self.record.url}{detail}"
        )

    def _result(self) -> ExperimentResult:
        self.record.trials = records.with_latest(self.loc, list(self.trials.values()))
        result = ExperimentResult(self.record)
        if self.record.status == FAILED:
            raise ExperimentFailed(self._failure_message(), result)
        return result


def run(spec: ExperimentSpec) -> ExperimentResult:
    """Run one experiment (see ExperimentRun)."""
    return ExperimentRun(spec).run()
