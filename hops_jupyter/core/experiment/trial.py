"""Running one trial where it is scheduled (a local worker process or a Spark executor).

Both engines call `run_trial`, so records are identical whatever the engine: the trial folder,
`trial.json` (RUNNING, then FINISHED or FAILED), captured stdout/stderr, uploaded files.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import reprlib
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, Protocol

from hops_jupyter.core import context, filesystem, project
from hops_jupyter.core.experiment import events, records
from hops_jupyter.core.experiment.records import (
    EARLY_STOPPED,
    FAILED,
    FINISHED,
    KILLED,
    PENDING,
    RUNNING,
    TrialRecord,
)
from hops_jupyter.core.experiment.reports import ReportAddress, ReportClient, TrialStopped
from hops_jupyter.core.experiment.threads import limited
from hops_jupyter.core.filesystem import Location

# Configuration a trial needs to find the same project as the driver, wherever it runs.
CONFIG_ENV = ("HOPS_HOME", "HOPS_ROOT", "HOPSWORKS_PROJECT_NAME", "HADOOP_USER_NAME")


def config_env(cfg: project.Project) -> dict[str, str]:
    """The driver's configuration as environment variables for workers and executors."""
    return {
        "HOPS_HOME": cfg.home,
        "HOPS_ROOT": cfg.root,
        "HOPSWORKS_PROJECT_NAME": cfg.name,
        "HADOOP_USER_NAME": cfg.project_user,
    }


@dataclass
class TrialTask:
    """Everything a worker needs to run one trial. `fn_bytes` (cloudpickle) may be None when
    the worker already holds the function under `fn_key`."""

    experiment_id: str
    trial_id: str
    trial_url: str
    params: dict[str, Any]
    fn_key: str
    fn_bytes: bytes | None
    metric_key: str | None = None
    needs_metric: bool = False
    env: dict[str, str] = field(default_factory=dict)
    reporter: ReportAddress | None = None  # the driver's report server


class TrialValueError(ValueError):
    """The trial ran but returned something that is not a usable metric."""


def as_number(value: Any) -> float | None:
    """A value as a float metric; None when it is not one (or no float holds it: 10**400)."""
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, Real):
            return float(value)
        item = getattr(value, "item", None)  # numpy scalars, 0-d arrays and tensors
        if callable(item) and getattr(value, "size", 1) == 1:
            inner = item()
            if isinstance(inner, Real) and not isinstance(inner, bool):
                return float(inner)
    except (TypeError, ValueError, OverflowError):
        pass
    return None


def shown(value: Any, limit: int = 200) -> str:
    """A value as an error message shows it: its repr cut short (a returned million-item list
    is not copied into the record), and never raising (a broken __repr__)."""
    short = reprlib.Repr()
    short.maxstring = short.maxother = limit
    try:
        text = short.repr(value)
    except Exception:  # noqa: BLE001 - a repr that raises is the user's
        text = f"<{type(value).__name__} object whose repr() raised>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _key(key: Any) -> str:
    try:
        return str(key)
    except Exception:  # noqa: BLE001 - a __str__ that raises is the user's
        return shown(key)


def plain_value(value: Any) -> Any:
    number = as_number(value)
    if number is not None and not isinstance(value, (int, float)):
        return number
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, dict):
        return {_key(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain_value(v) for v in value]
    try:
        return repr(value)
    except Exception:  # noqa: BLE001 - stored as what it is, the trial's other values kept
        return shown(value)


def interpret(value: Any, metric_key: str | None, needs_metric: bool) -> tuple[float | None, dict]:
    """Split a trial's return value into (metric, returned dict), as the seed does."""
    if isinstance(value, dict):
        returned = dict(value)
        if metric_key is not None:
            if metric_key not in value:
                raise TrialValueError(
                    f"The trial returned a dict without the metric key {metric_key!r}; "
                    f"its keys are {sorted(map(str, value))}"
                )
            raw = value[metric_key]
        elif "metric" in value:
            raw = value["metric"]
        else:
            numeric = [k for k, v in value.items() if as_number(v) is not None]
            if len(numeric) == 1:
                raw = value[numeric[0]]
            elif needs_metric:
                raise TrialValueError(
                    f"The trial returned a dict with {len(numeric)} numeric values {numeric}: "
                    "pass metric_key= (optimization_key=) to say which one is the metric"
                )
            else:
                raw = None
    elif value is None:
        if needs_metric:
            raise TrialValueError("The trial returned None: return the metric (a number or a dict)")
        return None, {}
    elif not needs_metric and as_number(value) is None:
        return None, {"result": plain_value(value)}  # launch: any return value is kept as is
    else:
        returned, raw = {"metric": value}, value
    if raw is None and not needs_metric:
        return None, returned
    metric = as_number(raw)
    if metric is None and isinstance(raw, Real) and not isinstance(raw, bool):
        raise TrialValueError(f"The metric {shown(raw)} does not fit in a float")
    if metric is None:
        raise TrialValueError(
            f"The metric must be a number, got {shown(raw)} ({type(raw).__name__})"
        )
    return metric, returned


def upload_files(returned: dict[str, Any], trial: Location, workdir: str) -> dict[str, Any]:
    """Copy local files named by returned values into the trial folder; the value becomes the
    file's path in the project (as in Hops)."""
    out, made = {}, False
    for key, value in returned.items():
        path = os.path.join(workdir, value) if isinstance(value, str) and value else None
        if path and len(value) < 4096 and os.path.isfile(path):
            if not made:  # the trial may have removed its folder (cleaning its logdir)
                trial.make_dirs()
                made = True
            dest = trial.child(os.path.basename(path))
            if dest.exists():
                filesystem.delete(dest)
            filesystem.copy(Location("file", os.path.abspath(path)), dest)
            out[key] = dest.url
        else:
            out[key] = plain_value(value)
    return out


LOG_FILES = ("stdout.log", "stderr.log")


@contextlib.contextmanager
def captured_output(trial: Location) -> Iterator[None]:
    """Send this process's stdout/stderr (Python and C level) to the trial's log files."""
    local = trial.scheme == "file"
    spool = trial.path if local else tempfile.mkdtemp(prefix="hops-logs-")
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    # Raw descriptors, only to be dup'ed onto 1 and 2: no Python file objects to build.
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
    files = [os.open(os.path.join(spool, name), flags, 0o666) for name in LOG_FILES]
    try:
        os.dup2(files[0], 1)
        os.dup2(files[1], 2)
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a stream the trial broke: its own output
                stream.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved + files:
            os.close(fd)
        if not local:
            for name in LOG_FILES:
                filesystem.copy(Location("file", os.path.join(spool, name)), trial.child(name))
            shutil.rmtree(spool, ignore_errors=True)


# Files whose frames lead into the user's code: the hops_jupyter package.
_OURS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))) + os.sep


def error_info(err: BaseException) -> dict[str, str]:
    """Type, message and traceback, starting at the user's code (our frames dropped)."""
    if isinstance(err, TrialValueError):  # our check of the return value: no code to show
        return {
            "type": type(err).__name__,
            "message": str(err),
            "traceback": f"{type(err).__name__}: {err}",
        }
    tb = err.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(_OURS) and tb.tb_next:
        tb = tb.tb_next  # our frames before the user's (this module, a notebook cell's runner)
    return {
        "type": type(err).__name__,
        "message": str(err),
        "traceback": "".join(traceback.format_exception(type(err), err, tb)),
    }


WORKDIR_PREFIX = "hops-trial-"
_swept = False
# The process whose death frees a trial's working folder (a local worker's keeper; else the
# process running the trial).
WORKDIR_OWNER_ENV = "HOPS_WORKDIR_OWNER"


def workdir_glob(pid: int) -> str:
    """The working folders of the trials a process ran (`hops-trial-<pid>-*` in the temp dir)."""
    return os.path.join(tempfile.gettempdir(), f"{WORKDIR_PREFIX}{pid}-*")


def sweep_workdirs(pid: int | None = None) -> None:
    """Remove trial working folders left by a process that is gone (a crash or a kill skips
    the trial's own clean-up), or, given `pid`, those of that process."""
    import glob

    import psutil

    pattern = (
        workdir_glob(pid) if pid else os.path.join(tempfile.gettempdir(), f"{WORKDIR_PREFIX}*")
    )
    for path in glob.glob(pattern):
        owner = os.path.basename(path)[len(WORKDIR_PREFIX) :].split("-", 1)[0]
        if pid or (owner.isdigit() and not psutil.pid_exists(int(owner))):
            shutil.rmtree(path, ignore_errors=True)


def _proc_children(pid: int) -> set[int] | None:
    """Direct children from /proc/PID/task/*/children (Linux): one small read per thread
    instead of psutil's scan of every process on the machine. None where unavailable."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
        out: set[int] = set()
        for tid in tasks:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out.update(int(c) for c in f.read().split())
        return out
    except (OSError, ValueError):
        return None


def _children(keep: set[int] | frozenset[int] = frozenset()) -> set[int]:
    """Every descendant of this process, leaving out the processes in `keep` and theirs."""
    found: set[int] = set()
    todo = [os.getpid()]
    while todo:
        direct = _proc_children(todo.pop())
        if direct is None:  # no /proc children files: psutil's way
            import psutil

            try:
                me = psutil.Process()
                kept = {p.pid for k in me.children() if k.pid in keep
                        for p in [k, *k.children(recursive=True)]}  # fmt: skip
                return {p.pid for p in me.children(recursive=True)} - kept
            except psutil.Error:
                return found
        direct -= keep
        todo.extend(direct - found)
        found |= direct
    return found


def _may_have_children() -> bool:
    """False when this process has no child at all, alive or not (one wait4 call, where reading
    /proc costs ten times more): the common end of a trial."""
    try:
        os.waitpid(-1, os.WNOHANG)
    except ChildProcessError:
        return False
    return True


def end_descendants(keep: set[int] | frozenset[int] = frozenset()) -> None:
    """SIGKILL every process this one started (children, grandchildren, daemons reparented to
    it as a subreaper) except those in `keep` and their descendants: nothing a trial starts
    outlives it."""
    if not keep and not _may_have_children():
        return
    pids = _children(keep)
    if not pids:
        return
    import psutil

    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            proc.kill()
            procs.append(proc)
    psutil.wait_procs(procs, timeout=2)


class Gate(Protocol):
    """Where a trial's process is forked ahead of its start (a local worker's fork server)."""

    def wait(self) -> str:
        """Block until the trial may start, its RUNNING record written; when it started."""

    def done(self) -> None:
        """The trial's function has returned and its processes are ended."""


@dataclass
class Prepared:
    """A trial set up to run: its folder, private working directory and context."""

    task: TrialTask
    loc: Location
    workdir: str
    ctx: context.TrialContext
    client: ReportClient | None
    record: TrialRecord  # RUNNING, its start time set when it starts
    keep: set[int]  # processes that were there before it (not the trial's to end)
    start: records.StartRecord | None = None  # written by its process as it starts (a fork)


@dataclass
class Outcome:
    """What running the trial's function gave, in plain values (it may cross processes)."""

    status: str
    start: float  # time.monotonic() at the call (system-wide on Linux)
    started: str | None  # the ISO time of the call
    metric: float | None = None
    returned: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    stopped_step: int | None = None


def prepare(
    task: TrialTask, keep: set[int] | None = None, cfg: project.Project | None = None
) -> Prepared:
    """Create the trial's folder and private working directory; write nothing yet. `cfg`: the
    project, when the caller has resolved it already (a dispatcher preparing many trials)."""
    os.environ.update(task.env)
    global _swept
    if not _swept:  # once per process: folders of trials whose process was killed earlier
        sweep_workdirs()
        _swept = True
    loc = filesystem.resolve(task.trial_url, cfg or project.current())
    loc.make_dirs()
    client = ReportClient(task.reporter, task.trial_id) if task.reporter else None
    ctx = context.TrialContext(
        task.experiment_id, task.trial_id, loc.url, dict(task.params), reporter=client
    )
    owner = os.environ.get(WORKDIR_OWNER_ENV) or str(os.getpid())
    workdir = tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{owner}-")
    record = TrialRecord(task.trial_id, task.params, status=RUNNING)
    return Prepared(task, loc, workdir, ctx, client, record, _children() if keep is None else keep)


def _load(load_fn: Callable[[], Callable[..., Any]]) -> tuple[Any, BaseException | None]:
    try:
        return load_fn(), None
    except (Exception, SystemExit, KeyboardInterrupt) as err:  # recorded as the trial's failure
        return None, err


def execute(
    trial: Prepared,
    load_fn: Callable[[], Callable[..., Any]],
    cap_threads: bool = True,
    gate: Gate | None = None,
) -> Outcome:
    """The trial's own part: output captured, a private working directory, the call, its
    return value read. Never raises for the trial's errors; ends what the trial started."""
    task = trial.task
    start, started = time.monotonic(), trial.record.started
    old_cwd = os.getcwd()
    try:
        with captured_output(trial.loc), context.running_trial(trial.ctx):
            os.chdir(trial.workdir)  # a private working dir: parallel trials never clash on files
            try:
                fn, failed = _load(load_fn)
                if gate is not None:
                    # A rehearsal: in a freshly forked process the first call of each costs
                    # copy-on-write page faults, paid here rather than at the start or end.
                    records.now(), _may_have_children(), time.monotonic()
                    started = gate.wait()
                    start = time.monotonic()
                if failed is not None:
                    raise failed
                with limited() if cap_threads else contextlib.nullcontext():
                    value = fn(**task.params)
            finally:
                os.chdir(old_cwd)
                end_descendants(keep=trial.keep)
                if gate is not None:
                    gate.done()
        metric, returned = interpret(value, task.metric_key, task.needs_metric)
        plain = {k: plain_value(v) for k, v in returned.items()}
        return Outcome(FINISHED, start, started, metric=metric, returned=plain)
    except TrialStopped as stop:  # the stopping policy ended it at this step
        return Outcome(EARLY_STOPPED, start, started, metric=stop.value, stopped_step=stop.step)
    except (Exception, SystemExit, KeyboardInterrupt) as err:  # an interrupt is the trial's too
        return Outcome(FAILED, start, started, error=error_info(err))


def conclude(trial: Prepared, outcome: Outcome) -> TrialRecord:
    """Write the trial's final record from its outcome, uploading the files it returned, and
    remove its working directory."""
    record = trial.record
    record.started = outcome.started or record.started
    record.status, record.metric = outcome.status, outcome.metric
    record.error, record.stopped_step = outcome.error, outcome.stopped_step
    try:
        if outcome.returned is not None:
            record.returned = upload_files(outcome.returned, trial.loc, trial.workdir)
    except Exception as err:  # noqa: BLE001 - a failed upload fails the trial, not the run
        record.status, record.error = FAILED, error_info(err)
    finally:
        discard(trial)
    record.finished = records.now()
    record.duration_s = round(time.monotonic() - outcome.start, 6)
    records.write_trial(trial.loc, record)
    events.trial_ended(trial.loc, record)  # its HParams session, for TensorBoard
    return record


def discard(trial: Prepared) -> None:
    """Remove a trial's working directory and close its report connection."""
    shutil.rmtree(trial.workdir, ignore_errors=True)
    if trial.client is not None:
        trial.client.close()


def run_trial(task: TrialTask, load_fn: Callable[[], Callable[..., Any]]) -> TrialRecord:
    """Run `load_fn()(**task.params)` as the trial in this process; never raises for the
    trial's own errors. Whatever the trial started (child processes, its working folder) is
    gone when it returns."""
    trial = prepare(task)
    trial.record.started = records.now()
    records.write_trial(trial.loc, trial.record)
    outcome = execute(trial, load_fn)
    return conclude(trial, outcome)


def _stderr_tail(loc: Location, limit: int = 4000) -> str:
    err = loc.child("stderr.log")
    try:
        with err.fs.open_input_file(err.path) as stream:
            stream.seek(max(0, stream.size() - limit))
            return stream.read().decode(errors="replace")
    except (FileNotFoundError, OSError):
        return ""


def record_failure(
    task: TrialTask, error_type: str, message: str, status: str = FAILED
) -> TrialRecord:
    """Write the final record of a trial whose worker could not (crashed, timed out, killed)."""
    loc = filesystem.resolve(task.trial_url, project.current())
    started = None
    try:
        started = records.read_json(loc.child(records.TRIAL_FILE)).get("started")
    except (FileNotFoundError, OSError, ValueError):
        loc.make_dirs()
    finished = records.now()
    duration = None
    if started:
        delta = datetime.datetime.fromisoformat(finished) - datetime.datetime.fromisoformat(started)
        duration = round(delta.total_seconds(), 6)
    tail = _stderr_tail(loc)
    if status == KILLED and started is None:  # stopped before it began: it never ran
        status, error_type, message = PENDING, "NotStarted", f"Not started: {message}"
    record = TrialRecord(
        task.trial_id,
        task.params,
        status=status,
        error={"type": error_type, "message": message, "traceback": tail},
        started=started,
        finished=finished,
        duration_s=duration,
    )
    records.write_trial(loc, record)
    events.trial_ended(loc, record)  # its HParams session, for TensorBoard
    return record
