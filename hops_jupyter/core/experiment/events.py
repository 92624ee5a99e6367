"""TensorBoard events for every trial (scalars and HParams), written without TensorFlow.

A trial folder is a TensorBoard run. `scalars()` (called by `experiment.report()`) appends each
reported value, and every numeric extra, as a scalar at its step; `trial_ended()` (called where
a trial's final record is written) adds the HParams session: its hyperparameters, its final
metric and returned numbers as `final/<name>` scalars, and its status. So the experiment's
TensorBoard compares trials of any framework (scikit-learn, PyTorch, plain Python).

The event files are encoded here (a few protobuf fields and TFRecord framing): importing
TensorBoard's protos would cost a trial process far more than writing a few records, and
executors need not have TensorBoard installed. Files end in `.hops`, beside the files of the
user's own TensorFlow summaries in the same folder. Each record is one unbuffered write on a
file kept open per trial, so nothing is lost when a trial process exits at once (a forked
worker child calls `os._exit`) and TensorBoard shows values while the trial runs.

Trial folders on HDFS: events go to a local spool file and are copied at the trial's end.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import itertools
import math
import os
import shutil
import socket
import struct
import tempfile
import time
from typing import Any

SUFFIX = ".hops"
FINAL_PREFIX = "final/"
_SESSION_START_TAG = "_hparams_/session_start_info"
_SESSION_END_TAG = "_hparams_/session_end_info"
_STATUS = {"FINISHED": 1, "EARLY_STOPPED": 1, "FAILED": 2, "KILLED": 2}  # hparams api.Status
_MAX_OPEN = 4  # trial files kept open per process (a reused Spark worker runs many trials)
_counter = itertools.count()


# --- encoding: protobuf fields and TFRecord framing ----------------------------------------


_BYTES = [bytes((i,)) for i in range(128)]


def _varint(n: int) -> bytes:
    if 0 <= n < 0x80:
        return _BYTES[n]  # field keys, small lengths and steps: most calls
    n &= 0xFFFFFFFFFFFFFFFF  # int64 two's complement, as protobuf encodes negatives
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _field(number: int, data: bytes) -> bytes:
    """A length-delimited field (string, bytes or message)."""
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def _double(number: int, value: float) -> bytes:
    return _varint(number << 3 | 1) + struct.pack("<d", value)


def _float(number: int, value: float) -> bytes:
    try:
        packed = struct.pack("<f", value)
    except OverflowError:  # beyond float32: TensorBoard would show it as infinite anyway
        packed = struct.pack("<f", math.copysign(math.inf, value))
    return _varint(number << 3 | 5) + packed


_CRC_TABLE: list[int] = []


def _crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), which TFRecord framing uses (zlib's CRC-32 is another)."""
    if not _CRC_TABLE:
        for i in range(256):
            crc = i
            for _ in range(8):
                crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
            _CRC_TABLE.append(crc)
    table, crc = _CRC_TABLE, 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _masked_crc(data: bytes) -> bytes:
    crc = _crc32c(data)
    return struct.pack("<I", (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF)


def _record(event: bytes) -> bytes:
    """One TFRecord: length, its CRC, the event, its CRC."""
    header = struct.pack("<Q", len(event))
    return header + _masked_crc(header) + event + _masked_crc(event)


def _event(wall_time: float, step: int, summary_values: list[bytes]) -> bytes:
    """An Event (wall_time 1, step 2) holding a Summary (5) of the given Summary.Values."""
    summary = b"".join(_field(1, value) for value in summary_values)
    return _double(1, wall_time) + _varint(2 << 3) + _varint(step) + _field(5, summary)


def _scalar(tag: str, value: float) -> bytes:
    """A Summary.Value: tag (1) and simple_value (2), which TensorBoard reads as a scalar."""
    return _field(1, tag.encode()) + _float(2, value)


_EMPTY_TENSOR = _field(8, _varint(1 << 3) + _varint(1) + _field(2, _field(2, b"")))  # float [0]


def _hparams_value(tag: str, plugin_data: bytes) -> bytes:
    """A Summary.Value carrying HParamsPluginData (version 0) in the "hparams" plugin's
    metadata (9), with an empty float tensor (8) as TensorBoard's own writer does."""
    content = _field(1, b"hparams") + _field(2, plugin_data)
    return _field(1, tag.encode()) + _field(9, _field(1, content)) + _EMPTY_TENSOR


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:  # an int beyond any float
        return math.inf if value > 0 else -math.inf


def _proto_value(value: Any) -> bytes:
    """A google.protobuf.Value: number (2), string (3) or bool (4)."""
    if isinstance(value, bool):
        return _varint(4 << 3) + _varint(int(value))
    number = _number(value)
    if number is not None:
        return _double(2, number)
    return _field(3, str(value).encode())


def _session_start(params: dict[str, Any], start: float) -> bytes:
    """SessionStartInfo (3): the hparams map (1) and start_time_secs (5)."""
    entries = b"".join(
        _field(1, _field(1, str(name).encode()) + _field(2, _proto_value(value)))
        for name, value in params.items()
    )
    return _hparams_value(_SESSION_START_TAG, _field(3, entries + _double(5, start)))


def _session_end(status: int, end: float) -> bytes:
    """SessionEndInfo (4): status (1) and end_time_secs (2)."""
    info = _varint(1 << 3) + _varint(status) + _double(2, end)
    return _hparams_value(_SESSION_END_TAG, _field(4, info))


_FILE_VERSION = _record(_double(1, 0.0) + _field(3, b"brain.Event:2"))


# --- files ---------------------------------------------------------------------------------


def _local_folder(trial_url: str) -> tuple[str, bool]:
    """Where a trial's events are written here: its folder, or (HDFS) a local spool folder,
    and whether that is a spool."""
    if trial_url.startswith("file://"):
        return trial_url[len("file://") :], False
    key = hashlib.sha1(trial_url.encode()).hexdigest()[:20]
    return os.path.join(tempfile.gettempdir(), "hops-events", key), True


def _new_file(folder: str) -> int:
    """A new event file (TensorBoard's naming, our suffix), opened for appending."""
    os.makedirs(folder, exist_ok=True)
    name = (
        f"events.out.tfevents.{int(time.time()):010d}.{socket.gethostname()}."
        f"{os.getpid()}.{next(_counter)}{SUFFIX}"
    )
    fd = os.open(os.path.join(folder, name), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.write(fd, _FILE_VERSION)
    return fd


_open: dict[str, int] = {}  # trial URL -> the open file of its reported scalars


def _scalars_file(trial_url: str, params: dict[str, Any]) -> int:
    fd = _open.get(trial_url)
    if fd is None:
        while len(_open) >= _MAX_OPEN:
            with contextlib.suppress(OSError):
                os.close(_open.pop(next(iter(_open))))
        fd = _new_file(_local_folder(trial_url)[0])
        # The session starts with the first report, so HParams lists the trial while it runs.
        now = time.time()
        os.write(fd, _record(_event(now, 0, [_session_start(params, now)])))
        _open[trial_url] = fd
    return fd


def _close(trial_url: str) -> None:
    fd = _open.pop(trial_url, None)
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)


# --- the two calls -------------------------------------------------------------------------


def scalars(trial: Any, step: int, values: dict[str, Any]) -> None:
    """Write one report of a running trial (`trial`: its context.TrialContext): every numeric
    value as a scalar tagged with its name at `step`. Never raises (the values are in
    metrics.jsonl whatever happens here)."""
    try:
        numbers = [(str(k), _number(v)) for k, v in values.items() if _number(v) is not None]
        if numbers:
            fd = _scalars_file(trial.trial_url, trial.params)
            os.write(fd, _record(_event(time.time(), step, [_scalar(k, v) for k, v in numbers])))
    except Exception:  # noqa: BLE001 - TensorBoard is a view: a report never fails for it
        _close(trial.trial_url)


def _epoch(iso: str | None, default: float) -> float:
    if not iso:
        return default
    try:
        return datetime.datetime.fromisoformat(iso).timestamp()
    except (TypeError, ValueError):
        return default


def _finals(record: Any) -> list[bytes]:
    """The trial's final metric and the numbers it returned, as `final/<name>` scalars."""
    values: dict[str, float] = {}
    for key, value in [("metric", record.metric), *(record.returned or {}).items()][:100]:
        number = _number(value)
        if number is not None:
            values.setdefault(str(key), number)
    return [_scalar(FINAL_PREFIX + k, v) for k, v in values.items()]


def trial_ended(loc: Any, record: Any) -> None:
    """Write the end of a trial's HParams session (hyperparameters, final values, status) into
    its folder `loc` (a filesystem.Location), once its final record is written. A trial that
    never ran (PENDING) has none. Never raises: TensorBoard is a view, the record is the truth."""
    status = _STATUS.get(str(record.status))
    if status is None:
        return
    try:
        _close(loc.url)
        now = time.time()
        start, end = _epoch(record.started, now), _epoch(record.finished, now)
        values = [_session_start(record.params, start), *_finals(record), _session_end(status, end)]
        folder, spooled = _local_folder(loc.url)
        fd = _new_file(folder)
        try:
            os.write(fd, _record(_event(end, int(record.stopped_step or 0), values)))
        finally:
            os.close(fd)
        if spooled:
            _upload(folder, loc)
    except Exception:  # noqa: BLE001 - never fail a trial (or a run) for its TensorBoard view
        return


def _upload(spool: str, loc: Any) -> None:
    """Copy a spooled trial's event files into its (HDFS) folder and remove the spool."""
    from hops_jupyter.core import filesystem

    try:
        for name in os.listdir(spool):
            source = filesystem.Location("file", os.path.join(spool, name))
            filesystem.copy(source, loc.child(name))
    finally:
        shutil.rmtree(spool, ignore_errors=True)
