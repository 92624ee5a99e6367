"""Experiment and trial records on the project filesystem.

Layout: `Experiments/<experiment_id>/experiment.json`, and one folder per trial named after its
hyperparameters (`lr=0.1&dropout=0.4`, `run` for a single run) holding `trial.json`,
`metrics.jsonl`, `stdout.log`, `stderr.log` and `hdfs.log`. JSON files are replaced atomically,
metrics are appended one line at a time, so readers never see half a record.
"""

from __future__ import annotations

import datetime
import enum
import hashlib
import json
import math
import re
import secrets
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import quote

import pyarrow.fs as pafs

from hops_jupyter.core import filesystem, project
from hops_jupyter.core.filesystem import Location

EXPERIMENT_FILE = "experiment.json"
TRIAL_FILE = "trial.json"
METRICS_FILE = "metrics.jsonl"
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


def _fmt(value: Any) -> str:
    text = repr(value) if isinstance(value, float) else str(value)
    return quote(text, safe="-_.,:+@")


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
    latest: dict[str, Any] | None = None  # last line of metrics.jsonl, filled in on read

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("latest")
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
    trials: list[TrialRecord] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("trials")
        return data


def experiments_dir(cfg: project.Project | None = None) -> Location:
    cfg = cfg or project.current()
    return filesystem.resolve(f"{cfg.path}/Experiments", cfg)


def experiment_dir(experiment_id: str, cfg: project.Project | None = None) -> Location:
    """The folder of an existing experiment; an unknown id is a clear error."""
    cfg = cfg or project.current()
    if not isinstance(experiment_id, str) or not _ID_RE.match(experiment_id):
        raise KeyError(
            f"Unknown experiment id {experiment_id!r}: ids look like '20261124T023015123-a1b2' "
            "(see experiment.list())"
        )
    loc = experiments_dir(cfg).child(experiment_id)
    if not loc.child(EXPERIMENT_FILE).isfile():
        raise KeyError(f"Unknown experiment id {experiment_id!r} in project {cfg.name!r}")
    return loc


def json_safe(value: Any) -> Any:
    """JSON has no NaN/inf: store them as strings so every reader can parse the file."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_json(loc: Location, data: dict[str, Any]) -> None:
    """Replace a JSON record atomically."""
    text = json.dumps(json_safe(data), indent=1, default=str, allow_nan=False)
    filesystem.atomic_write(loc, text)


def read_json(loc: Location) -> dict[str, Any]:
    with loc.fs.open_input_stream(loc.path) as stream:
        return json.loads(stream.read())


def write_experiment(loc: Location, record: ExperimentRecord) -> None:
    write_json(loc.child(EXPERIMENT_FILE), record.to_json())


def write_trial(loc: Location, record: TrialRecord) -> None:
    write_json(loc.child(TRIAL_FILE), record.to_json())


def _latest_metric(loc: Location) -> dict[str, Any] | None:
    """The last complete line of metrics.jsonl (a line being appended is skipped)."""
    metrics = loc.child(METRICS_FILE)
    try:
        with metrics.fs.open_input_file(metrics.path) as stream:
            size = stream.size()
            stream.seek(max(0, size - 65536))
            tail = stream.read().decode(errors="replace")
    except (FileNotFoundError, OSError):
        return None
    for line in reversed(tail.splitlines()):
        try:
            return json.loads(line)
        except json.JSONDecodeError:
            continue
    return None


def read_metrics(loc: Location, offset: int = 0) -> tuple[list[dict[str, Any]], int]:
    """Complete lines of a trial's metrics.jsonl from byte `offset`, and the offset after them
    (a line still being written is left for the next read)."""
    metrics = loc.child(METRICS_FILE)
    try:
        with metrics.fs.open_input_file(metrics.path) as stream:
            stream.seek(offset)
            data = stream.read()
    except (FileNotFoundError, OSError):
        return [], offset
    end = data.rfind(b"\n") + 1
    out = []
    for line in data[:end].splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out, offset + end


def read_trials(loc: Location) -> list[TrialRecord]:
    """Every trial folder's record, in start order."""
    trials = []
    for info in loc.fs.get_file_info(pafs.FileSelector(loc.path)):
        if info.type != pafs.FileType.Directory or info.base_name.startswith("."):
            continue
        trial_loc = loc.child(info.base_name)
        try:
            data = read_json(trial_loc.child(TRIAL_FILE))
        except (FileNotFoundError, OSError, json.JSONDecodeError):
            continue
        trial = TrialRecord(**data)
        trial.latest = _latest_metric(trial_loc)
        trials.append(trial)
    trials.sort(key=lambda t: (t.started or "~", t.id))
    return trials


def read_experiment(loc: Location, with_trials: bool = True) -> ExperimentRecord:
    record = ExperimentRecord(**read_json(loc.child(EXPERIMENT_FILE)))
    if with_trials:
        record.trials = read_trials(loc)
    return record


def get(experiment_id: str) -> ExperimentRecord:
    """One experiment with its trials (and each trial's latest reported metric)."""
    return read_experiment(experiment_dir(experiment_id))


def list_experiments() -> list[ExperimentRecord]:
    """The project's experiments, newest first (without trials; use get() for those)."""
    root = experiments_dir()
    if not root.isdir():
        return []
    found = []
    for info in root.fs.get_file_info(pafs.FileSelector(root.path)):
        if info.type == pafs.FileType.Directory and _ID_RE.match(info.base_name):
            try:
                found.append(read_experiment(root.child(info.base_name), with_trials=False))
            except (FileNotFoundError, OSError, json.JSONDecodeError, TypeError):
                continue
    return sorted(found, key=lambda r: r.id, reverse=True)
