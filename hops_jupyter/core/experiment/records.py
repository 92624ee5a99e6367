"""Experiment and trial records on the project filesystem.

Layout: `Experiments/<experiment_id>/experiment.json`, and one folder per trial named after its
hyperparameters (`lr=0.1&dropout=0.4`, `run` for a single run) holding `trial.json`,
`metrics.jsonl`, `stdout.log`, `stderr.log` and `hdfs.log`. JSON files are replaced atomically,
metrics are appended one line at a time, so readers never see half a record.
"""

from __future__ import annotations

import ast
import datetime
import enum
import hashlib
import json
import math
import os
import re
import secrets
import socket
import stat
import time
from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from typing import Any
from urllib.parse import quote

from hops_jupyter.core import filesystem, project
from hops_jupyter.core.filesystem import Location

EXPERIMENT_FILE = "experiment.json"
TRIAL_FILE = "trial.json"
METRICS_FILE = "metrics.jsonl"
STOP_FILE = "stop.json"  # a stop request: any process writes it, the experiment's driver obeys
SINGLE_RUN = "run"


class TrialStatus(enum.StrEnum):
    """The one status vocabulary of trials and experiments: records, widgets, server and panel
    all use these names (a StrEnum, so records hold the plain strings)."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    EARLY_STOPPED = "EARLY_STOPPED"  # a stopping policy ended it; its metric is its last report
    KILLED = "KILLED"  # stopped by the user or by the end of its experiment


PENDING, RUNNING, FINISHED = TrialStatus.PENDING, TrialStatus.RUNNING, TrialStatus.FINISHED
FAILED, EARLY_STOPPED, KILLED = TrialStatus.FAILED, TrialStatus.EARLY_STOPPED, TrialStatus.KILLED
ENDED = frozenset({FINISHED, FAILED, EARLY_STOPPED, KILLED})
HEARTBEAT_S = 5.0  # how often a running experiment's driver refreshes its record
HEARTBEAT_TIMEOUT_S = 60.0  # a driver on another host is lost after this long without one
_ID_RE = re.compile(r"^\d{8}T\d{9}-[0-9a-f]{4}$")


def now() -> str:
    """UTC timestamp in ISO format, the one format every record uses."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds")


def new_experiment_id() -> str:
    """Unique, and sortable by start time: `20261124T023015123-a1b2`."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S%f")[:-3]
    return f"{stamp}-{secrets.token_hex(2)}"


def is_experiment_id(value: Any) -> bool:
    """True for strings shaped like an experiment id."""
    return isinstance(value, str) and bool(_ID_RE.match(value))


def _text(value: Any) -> str:
    """A value as it reads in a folder name; a string that would read as another type (`"1"`
    next to `1`, `"True"`, `"None"`) keeps its quotes, so typed values never share a name."""
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        try:
            parsed = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return value
        return repr(value) if not isinstance(parsed, str) or value[:1] in "'\"" else value
    return str(value)


def _fmt(value: Any) -> str:
    return quote(_text(value), safe="-_.,:+@")


def trial_name(params: dict[str, Any]) -> str:
    """Folder name for a trial: `lr=0.1&dropout=0.4` (values URL-quoted, so never a '/')."""
    if not params:
        return SINGLE_RUN
    name = "&".join(f"{_fmt(k)}={_fmt(v)}" for k, v in params.items())
    if len(name.encode()) > 200:  # filesystems cap names at 255 bytes
        digest = hashlib.sha1(name.encode()).hexdigest()[:12]
        name = f"{name[:180]}~{digest}"
    return name


@dataclass
class TrialRecord:
    """One trial: what it ran with and how it ended."""

    id: str
    params: dict[str, Any]
    status: str = PENDING
    metric: float | None = None
    returned: dict[str, Any] | None = None
    error: dict[str, str] | None = None
    started: str | None = None
    finished: str | None = None
    duration_s: float | None = None
    stopped_step: int | None = None  # EARLY_STOPPED: the step at which it was stopped
    metric_nonfinite: str | None = None  # 'nan'/'inf'/'-inf' when the metric was (stored null)
    latest: dict[str, Any] | None = None  # last line of metrics.jsonl, filled in on read

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("latest")
        flag = nonfinite(self.metric)
        if flag is not None:
            data["metric"], data["metric_nonfinite"] = None, flag
        return data


@dataclass
class ExperimentRecord:
    """One experiment: a launch or a search, with its trials' summary."""

    id: str
    name: str
    kind: str
    function: str
    direction: str | None
    metric_key: str | None
    search_space: dict[str, Any]
    engine: str
    workers: int
    status: str = RUNNING
    started: str = field(default_factory=now)
    finished: str | None = None
    duration_s: float | None = None
    trials_total: int | None = None
    trials_done: int = 0
    trials_failed: int = 0
    best_trial: str | None = None
    best_metric: float | None = None
    best_params: dict[str, Any] | None = None
    seed: int | None = None
    options: dict[str, Any] = field(default_factory=dict)
    project: str = ""
    user: str = ""
    url: str = ""
    # The driver running it: host, pid, process start time, heartbeat (seconds since epoch).
    owner: dict[str, Any] | None = None
    status_message: str | None = None  # why it ended as it did ("driver lost")
    trials_killed: int = 0  # trials stopped while running (not counted in trials_done)
    # Trials handed to an engine that have no record of their own yet (queued, or starting):
    # trial id -> params, so that readers list them as PENDING.
    pending: dict[str, dict[str, Any]] = field(default_factory=dict)
    trials: list[TrialRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        # Shallow: json.dumps reads it at once (asdict's deep copy cost O(search space) per
        # write, with every trial's record on top).
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "trials"}
        return data


def experiments_dir(cfg: project.Project | None = None) -> Location:
    cfg = cfg or project.current()
    return filesystem.resolve(f"{cfg.path}/Experiments", cfg)


def experiment_dir(experiment_id: str, cfg: project.Project | None = None) -> Location:
    """The folder of an existing experiment; an unknown id is a clear error."""
    cfg = cfg or project.current()
    if not isinstance(experiment_id, str) or not _ID_RE.match(experiment_id):
        tail = str(experiment_id).rstrip("/").rsplit("/", 1)[-1]
        hint = f" (a folder: its id is {tail!r})" if _ID_RE.match(tail) else ""
        raise KeyError(
            f"Unknown experiment id {experiment_id!r}{hint}: ids look like "
            "'20261124T023015123-a1b2' (see experiment.list())"
        )
    loc = experiments_dir(cfg).child(experiment_id)
    if not loc.child(EXPERIMENT_FILE).isfile():
        raise KeyError(f"Unknown experiment id {experiment_id!r} in project {cfg.name!r}")
    return loc


def nonfinite(value: Any) -> str | None:
    """'nan', 'inf' or '-inf' for a non-finite float, else None."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return None


def json_safe(value: Any) -> Any:
    """Strict JSON has no NaN/inf: they become null (records that keep such a value say which
    in a `*_nonfinite` field), so every reader, in any language, can parse the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def _json_text(data: dict[str, Any]) -> str:
    """One line: the standard library encodes that in C, where an indented one goes through its
    pure-Python encoder (a million-number hyperparameter took seconds per write)."""
    try:  # no NaN or infinity (the common case): no walk over the values first
        return json.dumps(data, default=str, allow_nan=False, separators=(",", ":"))
    except ValueError:
        return json.dumps(json_safe(data), default=str, allow_nan=False, separators=(",", ":"))


def write_json(loc: Location, data: dict[str, Any], sweep: bool = True) -> None:
    """Replace a JSON record atomically (`sweep`: see filesystem.temp_sibling)."""
    filesystem.atomic_write(loc, _json_text(data), sweep)


def regular_file(loc: Location) -> bool:
    """Whether `loc` is a plain file (after symbolic links): a named pipe or a device in a
    record's place would block or flood whoever opens it."""
    if loc.scheme != "file":
        return loc.isfile()
    try:
        return stat.S_ISREG(os.stat(loc.path).st_mode)
    except (OSError, ValueError):  # missing, a name too long, a NUL byte
        return False


def read_json(loc: Location) -> dict[str, Any]:
    if loc.scheme == "file" and not regular_file(loc):
        raise FileNotFoundError(f"{loc.url} is not a file")
    with loc.fs.open_input_stream(loc.path) as stream:
        text = stream.read()
    try:
        return json.loads(text)
    except RecursionError:  # nested deeper than the parser goes: not a record of ours
        raise ValueError(f"{loc.url} is nested too deeply to be a record") from None


_ZERO = {"str": "", "int": 0}  # a required field missing from a file


def _default(f: Field[Any]) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return _ZERO.get(_kind(f), {} if _kind(f) == "dict" else None)


def _kind(f: Field[Any]) -> str:
    """`str`, `int`, `float`, `dict` or `list`: what a field's annotation says it holds."""
    return str(f.type).split("|")[0].split("[")[0].strip()


def _fit(f: Field[Any], value: Any) -> Any:
    """A file's value for a field, of the field's type: text for text fields, and the field's
    default for a number, dict or list of the wrong type (records are files anyone with
    project access can write; a reader must not trip over one)."""
    kind = _kind(f)
    if value is None:
        return None if "None" in str(f.type) else _default(f)
    if kind == "str":
        return value if isinstance(value, str) else str(value)
    if kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return _default(f)
        try:
            finite = math.isfinite(value)  # a 400-digit int is no float either
        except OverflowError:
            return _default(f)
        return value if finite or kind == "float" else _default(f)
    if kind == "dict" and isinstance(value, dict) and _depth(value) <= MAX_DEPTH:
        return value
    return _default(f)


MAX_DEPTH = 32  # nesting no record of ours has: deeper values would exhaust readers' recursion


def _depth(value: Any, limit: int = MAX_DEPTH) -> int:
    """How deeply lists and dicts nest in `value` (counting stops past `limit`)."""
    children = value.values() if isinstance(value, dict) else value
    if not isinstance(value, (dict, list)) or not children:
        return 0
    if limit <= 0:
        return 1
    return 1 + max(_depth(v, limit - 1) for v in children)


def from_json(cls: type[Any], data: Any, **fixed: Any) -> Any:
    """A record (`TrialRecord`, `ExperimentRecord`) from a file's JSON: unknown keys are
    ignored, values of the wrong type replaced (see _fit), `fixed` values set as given."""
    if not isinstance(data, dict):
        raise ValueError(f"a JSON {type(data).__name__}, not a record (a JSON object)")
    values = {f.name: _fit(f, data[f.name]) if f.name in data else _default(f)
              for f in fields(cls) if f.name not in fixed and _kind(f) != "list"}  # fmt: skip
    record = cls(**values, **fixed)
    if isinstance(getattr(record, "error", None), dict):  # shown as text by every reader
        record.error = {str(k): v if v is None or isinstance(v, str) else str(v)
                        for k, v in record.error.items()}  # fmt: skip
    return record


def write_experiment(loc: Location, record: ExperimentRecord, sweep: bool = True) -> None:
    """`sweep=False` for the driver's writes while it runs: the folder holds every trial's
    folder, and listing it on each write would cost O(trials) per trial."""
    write_json(loc.child(EXPERIMENT_FILE), record.to_json(), sweep)


def write_trial(loc: Location, record: TrialRecord) -> None:
    """Write a trial's record, making its folder again if the trial removed it (a trial that
    cleans its `tensorboard.logdir()` with `shutil.rmtree`)."""
    try:
        write_json(loc.child(TRIAL_FILE), record.to_json())
    except FileNotFoundError:
        loc.make_dirs()
        write_json(loc.child(TRIAL_FILE), record.to_json())


@dataclass(frozen=True)
class StartRecord:
    """A local trial's RUNNING record but for its start time, ready for its forked process to
    write in a few system calls the moment it starts (write_trial, cold in a new process, took
    1.2 ms of each start); None for a remote folder."""

    tmp: str  # a temporary name beside trial.json, owned by the process that made this
    path: str
    head: str  # the record's JSON without its start time and its closing brace

    @classmethod
    def of(cls, loc: Location, record: TrialRecord) -> StartRecord | None:
        if loc.scheme != "file":
            return None
        data = record.to_json()
        del data["started"]
        target = loc.child(TRIAL_FILE)
        tmp = filesystem.temp_sibling(target, sweep=False)
        return cls(tmp.path, target.path, _json_text(data)[:-1])

    def write(self, started: str) -> None:
        """Write it, atomically, started at `started` (an ISO time: nothing to escape)."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
        fd = os.open(self.tmp, flags, 0o666)
        try:
            os.write(fd, f'{self.head},"started":"{started}"}}'.encode())
        finally:
            os.close(fd)
        os.replace(self.tmp, self.path)


def _latest_metric(loc: Location) -> dict[str, Any] | None:
    """The last complete line of metrics.jsonl (a line being appended is skipped)."""
    metrics = loc.child(METRICS_FILE)
    if metrics.scheme == "file" and not regular_file(metrics):
        return None  # most trials report nothing: no Arrow file opened for them
    try:
        with metrics.fs.open_input_file(metrics.path) as stream:
            size = stream.size()
            stream.seek(max(0, size - 65536))
            tail = stream.read().decode(errors="replace")
    except (FileNotFoundError, OSError):
        return None
    for line in reversed(tail.splitlines()):
        report = _report(line)
        if report is not None:
            return report
    return None


def _report(line: str | bytes) -> dict[str, Any] | None:
    """One line of metrics.jsonl as a report; None for anything else (garbage, a number, a
    list, a line nested too deeply to parse)."""
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, dict) else None


def read_metrics(loc: Location, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Complete lines of a trial's metrics.jsonl from byte `offset`, and the offset after them
    (a line still being written is left for the next read)."""
    metrics = loc.child(METRICS_FILE)
    if metrics.scheme == "file" and not regular_file(metrics):
        return [], offset
    try:
        with metrics.fs.open_input_file(metrics.path) as stream:
            stream.seek(offset)
            data = stream.read()
    except (FileNotFoundError, OSError):
        return [], offset
    end = data.rfind(b"\n") + 1
    out = []
    for line in data[:end].splitlines():
        report = _report(line)
        if report is not None:
            out.append(report)
    return out, offset + end


def with_latest(loc: Location, trials: list[TrialRecord]) -> list[TrialRecord]:
    """Trials the caller holds already, in start order, each with its latest reported metric
    (read_trials without reading every trial.json again)."""
    for trial in trials:
        trial.latest = _latest_metric(loc.child(trial.id))
    return sorted(trials, key=lambda t: (t.started or "~", t.id))


def read_trials(loc: Location) -> list[TrialRecord]:
    """Every trial folder's record, in start order."""
    trials, arrow = [], filesystem.arrow()
    for info in loc.fs.get_file_info(arrow.FileSelector(loc.path)):
        if info.type != arrow.FileType.Directory or info.base_name.startswith("."):
            continue
        trial_loc = loc.child(info.base_name)
        try:
            # The folder names it (logs, links), whatever the file says.
            trial = from_json(TrialRecord, read_json(trial_loc.child(TRIAL_FILE)),
                              id=info.base_name)  # fmt: skip
        except (FileNotFoundError, OSError, ValueError):
            continue  # missing, half-written or not a record: not listed
        trial.latest = _latest_metric(trial_loc)
        trials.append(trial)
    trials.sort(key=lambda t: (t.started or "~", t.id))
    return trials


def this_owner() -> dict[str, Any]:
    """This process as the owner of a running experiment."""
    import psutil

    return {"host": socket.gethostname(), "pid": os.getpid(),
            "started": psutil.Process().create_time(), "heartbeat": time.time()}  # fmt: skip


def owner_alive(owner: dict[str, Any] | None) -> bool:
    """Whether the driver that owns a record still runs: on this host its pid, checked with its
    start time (pids are reused); elsewhere a heartbeat younger than HEARTBEAT_TIMEOUT_S."""
    if not owner:
        return False
    if owner.get("host") == socket.gethostname():
        import psutil

        try:
            proc = psutil.Process(int(owner["pid"]))
            return abs(proc.create_time() - float(owner["started"])) < 1.0 and (
                proc.status() != psutil.STATUS_ZOMBIE
            )
        except (psutil.Error, KeyError, TypeError, ValueError, OverflowError):
            return False
    try:
        return time.time() - float(owner.get("heartbeat") or 0) < HEARTBEAT_TIMEOUT_S
    except (TypeError, ValueError):  # not a time: no sign of life
        return False


def _driver_lost(record: ExperimentRecord) -> None:
    """What readers show for a RUNNING record whose driver is gone: KILLED, with its running
    trials, and why (the files stay as they are until a resume)."""
    record.status, record.status_message = KILLED, "driver lost"
    for trial in record.trials:
        if trial.status in (RUNNING, PENDING):
            trial.status = KILLED
            trial.error = {"type": "DriverLost", "message": "driver lost", "traceback": ""}


def _with_pending(record: ExperimentRecord, trials: list[TrialRecord]) -> list[TrialRecord]:
    """The trials on disk, then those the driver has queued that have no record yet."""
    seen = {t.id for t in trials}  # record.pending is a dict (from_json), its values may not be
    extra = [
        TrialRecord(tid, params if isinstance(params, dict) else {})
        for tid, params in record.pending.items()
        if tid not in seen
    ]
    return trials + extra


def read_experiment(loc: Location, with_trials: bool = True) -> ExperimentRecord:
    data = read_json(loc.child(EXPERIMENT_FILE))
    try:  # the folder names it, whatever the file says
        record = from_json(ExperimentRecord, data, id=loc.name, url=loc.url)
    except ValueError as err:
        raise ValueError(f"{loc.child(EXPERIMENT_FILE).url} is {err}") from None
    if with_trials:
        record.trials = _with_pending(record, read_trials(loc))
    if record.status == RUNNING and not owner_alive(record.owner):
        _driver_lost(record)
    return record


def get(experiment_id: str) -> ExperimentRecord:
    """One experiment with its trials (and each trial's latest reported metric)."""
    return read_experiment(experiment_dir(experiment_id))


def list_experiments() -> list[ExperimentRecord]:
    """The project's experiments, newest first (without trials; use get() for those)."""
    root = experiments_dir()
    if not root.isdir():
        return []
    found, arrow = [], filesystem.arrow()
    for info in root.fs.get_file_info(arrow.FileSelector(root.path)):
        if info.type == arrow.FileType.Directory and _ID_RE.match(info.base_name):
            try:
                found.append(read_experiment(root.child(info.base_name), with_trials=False))
            except (FileNotFoundError, OSError, ValueError, TypeError):
                continue  # missing, half-written or not a record: not listed
    return sorted(found, key=lambda r: r.id, reverse=True)


class NotRunning(ValueError):
    """A stop was requested for an experiment that is not running."""


def request_stop(experiment_id: str, by: str = "user") -> ExperimentRecord:
    """Ask the driver of a running experiment, in whatever process or host it runs, to stop it:
    a stop file in its folder, which the driver checks a few times a second."""
    loc = experiment_dir(experiment_id)
    record = read_experiment(loc, with_trials=False)
    if record.status != RUNNING:
        why = f": {record.status_message}" if record.status_message else ""
        raise NotRunning(
            f"Experiment {experiment_id} is not running (status {record.status}{why}): "
            "nothing to stop"
        )
    write_json(loc.child(STOP_FILE), {"requested": now(), "by": by})
    return record


def stop_requested(loc: Location) -> bool:
    """Whether someone asked this experiment to stop (see request_stop)."""
    stop = loc.child(STOP_FILE)
    if stop.scheme == "file":
        return os.path.exists(stop.path)  # a stat, several times a second: no Arrow call
    return stop.isfile()


def clear_stop(loc: Location) -> None:
    """Forget a stop request (done with, or left over from a run before a resume)."""
    stop = loc.child(STOP_FILE)
    if stop.isfile():  # once per run: no need for stop_requested's shortcut
        filesystem.delete(stop)
