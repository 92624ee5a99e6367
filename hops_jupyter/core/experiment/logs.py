"""A trial's log files (`stdout.log`, `stderr.log`, `hdfs.log` in its folder), read by byte
offset for the REST API's live tail: bounded reads, whole characters, nothing outside the
experiment's folder."""

from __future__ import annotations

import os
from typing import Any

from hops_jupyter.core.experiment.records import experiment_dir, regular_file
from hops_jupyter.core.filesystem import Location

STREAMS = ("stdout", "stderr", "hdfs")  # a trial's log files: <stream>.log


def path_of(experiment_id: str, trial_id: str, stream: str) -> Location:
    """A trial's log file (`stdout`, `stderr` or `hdfs`); unknown names are clear errors, and
    so is a log that leads out of the experiment's folder (a symbolic link)."""
    if stream not in STREAMS:
        raise KeyError(f"Unknown log {stream!r}: one of {', '.join(STREAMS)}")
    loc = experiment_dir(experiment_id)
    shown = repr(trial_id) if len(str(trial_id)) <= 120 else f"{str(trial_id)[:100]!r}…"
    unknown = KeyError(f"Unknown trial {shown} in experiment {experiment_id}")
    if not _is_name(trial_id):
        raise unknown
    trial = loc.child(trial_id)
    try:
        if not trial.isdir():
            raise unknown
    except (OSError, ValueError):
        raise unknown from None
    path = trial.child(f"{stream}.log")
    if path.scheme == "file":
        inside = os.path.realpath(loc.path) + os.sep
        if not os.path.realpath(path.path).startswith(inside):
            raise KeyError(
                f"The {stream} log of trial {shown} leads out of experiment {experiment_id}'s "
                "folder (a symbolic link): not shown"
            )
    return path


def _is_name(value: Any) -> bool:
    """A folder name in the experiment's folder: no path, no hidden name, no NUL, not too long."""
    if not isinstance(value, str) or not value or value.startswith("."):
        return False
    return "/" not in value and "\x00" not in value and len(value.encode(errors="replace")) <= 255


def _whole_characters(data: bytes, at_start: bool) -> tuple[int, int]:
    """Where the whole UTF-8 characters of `data` begin and end: a read that starts or stops
    inside a character leaves its pieces to the neighbouring read (never two U+FFFD)."""
    begin = 0
    if at_start:
        while begin < min(3, len(data)) and 0x80 <= data[begin] < 0xC0:
            begin += 1  # continuation bytes of a character that began before
    end = len(data)
    for back in range(1, min(4, len(data) - begin) + 1):
        byte = data[-back]
        if byte < 0x80:
            break
        if byte >= 0xC0:  # a lead byte: is its character complete?
            need = 2 if byte < 0xE0 else 3 if byte < 0xF0 else 4
            if need > back:
                end = len(data) - back
            break
    return begin, end


def read(
    experiment_id: str, trial_id: str, stream: str, offset: int | None = None, limit: int = 65536
) -> dict[str, Any]:
    """Up to `limit` bytes of a trial's log from `offset` (default: its last `limit` bytes),
    and where the next read starts: a live tail is repeated reads from `next_offset`. Reads
    start and stop between characters; a log that is not a plain file reads as empty."""
    loc = path_of(experiment_id, trial_id, stream)
    size, start, data = 0, 0, b""
    if regular_file(loc):
        try:
            with loc.fs.open_input_file(loc.path) as f:
                size = f.size()
                start = max(0, size - limit) if offset is None else min(max(0, int(offset)), size)
                f.seek(start)
                data = f.read(min(limit, size - start))
        except (FileNotFoundError, OSError):
            size, start, data = 0, 0, b""
    begin, end = _whole_characters(data, at_start=start > 0)
    start, data = start + begin, data[begin:end]
    return {"stream": stream, "text": data.decode(errors="replace"), "offset": start,
            "next_offset": start + len(data), "size": size}  # fmt: skip
