"""The seed's `tensorboard` API, and the manager of one TensorBoard process per experiment.

The registry is one JSON file per running TensorBoard in
`jupyter_runtime_dir()/hops/tensorboards/<experiment_id>.json`, so the kernel and the Jupyter
server (separate processes) find the same instances. Each TensorBoard runs inside a small
watchdog process (`python -m hops_jupyter.core.tensorboard`) bound to 127.0.0.1 on a port the
OS picks; it exits when the process that started it dies, when nobody used it for the idle
timeout, or when the registry no longer names it, and removes its registry file on the way out.

Exactly one TensorBoard per experiment: `start()` writes a provisional entry (the watchdog's
pid, port 0) before it releases the per-experiment lock, so a concurrent `start()` (the
server's proxy, `%tensorboard`, another kernel) finds the one being started and waits for it
instead of launching a second, unregistered one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hops_jupyter.core import context, filesystem, project

LAUNCHED, REUSED, FAILED, TIMED_OUT = "launched", "reused", "failed", "timed_out"


# --- inside a trial ------------------------------------------------------------------------


def logdir() -> str:
    """The running trial's folder, which is its TensorBoard logdir: a local path on the
    embedded root (TensorFlow writes there directly), a full URL on HDFS."""
    trial = context.current_trial()
    if trial is None:
        raise RuntimeError(
            "tensorboard.logdir() is the running trial's folder: call it inside a function run by "
            "experiment.launch / grid_search / random_search / differential_evolution"
        )
    loc = filesystem.resolve(trial.trial_url, project.current())
    return loc.path if loc.scheme == "file" else loc.url


def interactive_debugger() -> str:
    """A TensorFlow 2 Debugger V2 dump folder under the trial's logdir, which the experiment's
    TensorBoard shows in its Debugger V2 tab. Pass it to
    `tf.debugging.experimental.enable_dump_debug_info(dump_root, tensor_debug_mode=...)`."""
    return _debug_dir()


def non_interactive_debugger() -> str:
    """Same folder as interactive_debugger(): TF2 has one dump-based debugger (the old tfdbg
    endpoints, host:port for the interactive and CLI wrappers, no longer exist)."""
    return _debug_dir()


def _debug_dir() -> str:
    base = logdir()
    path = f"{base.rstrip('/')}/debugger-v2"
    if "://" not in path:
        os.makedirs(path, exist_ok=True)
    return path


# --- the registry --------------------------------------------------------------------------


@dataclass(frozen=True)
class TensorBoardInfo:
    """One running TensorBoard, as recorded in the registry."""

    experiment_id: str
    pid: int
    port: int
    logdir: str
    started: float
    owner_pid: int
    idle_timeout: float
    create_time: float

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def ready(self) -> bool:
        """False for a provisional entry: the process is starting and has no port yet."""
        return self.port > 0

    def to_json(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "url": self.url, "ready": self.ready}


@dataclass(frozen=True)
class StartResult:
    """What start() did: launched a new one, reused a running one, failed, or timed out."""

    outcome: str
    info: TensorBoardInfo | None = None
    message: str = ""


def registry_dir() -> Path:
    """`jupyter_runtime_dir()/hops/tensorboards`, shared by kernels and the server."""
    from jupyter_core.paths import jupyter_runtime_dir

    path = Path(jupyter_runtime_dir()) / "hops" / "tensorboards"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _entry(experiment_id: str) -> Path:
    if not experiment_id or "/" in experiment_id or experiment_id.startswith("."):
        raise ValueError(f"Bad TensorBoard key {experiment_id!r}")
    return registry_dir() / f"{experiment_id}.json"


def _alive(info: TensorBoardInfo) -> bool:
    import psutil

    try:
        proc = psutil.Process(info.pid)
        return (
            abs(proc.create_time() - info.create_time) < 1 and proc.status() != psutil.STATUS_ZOMBIE
        )
    except psutil.Error:
        return False


def _read(path: Path) -> TensorBoardInfo | None:
    try:
        data = json.loads(path.read_text())
        data.pop("url", None)
        data.pop("ready", None)
        return TensorBoardInfo(**data)
    except (FileNotFoundError, ValueError, TypeError):
        return None


def find(experiment_id: str, starting: bool = False) -> TensorBoardInfo | None:
    """The running TensorBoard of an experiment; a stale entry (dead process) is removed.
    One still starting (no port yet) counts only with starting=True."""
    path = _entry(experiment_id)
    info = _read(path)
    if info is None:
        return None
    if not _alive(info):
        path.unlink(missing_ok=True)
        return None
    return info if info.ready or starting else None


def running(starting: bool = False) -> list[TensorBoardInfo]:
    """Every live registered TensorBoard (stale entries are cleaned on the way); those still
    starting too with starting=True."""
    out = []
    for path in sorted(registry_dir().glob("*.json")):
        info = find(path.stem, starting)
        if info is not None:
            out.append(info)
    return out


def healthy(info: TensorBoardInfo, timeout: float = 3.0) -> bool:
    """True when the TensorBoard answers HTTP (a provisional entry never does)."""
    if not info.ready:
        return False
    try:
        with urllib.request.urlopen(f"{info.url}data/logdir", timeout=timeout) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError):
        return False


def touch(experiment_id: str) -> None:
    """Mark a TensorBoard as used now (its idle timer restarts)."""
    with contextlib.suppress(FileNotFoundError):
        os.utime(_entry(experiment_id))


@contextlib.contextmanager
def _lock(experiment_id: str) -> Iterator[None]:
    """One starter at a time per experiment, across processes (kernel and server)."""
    with open(registry_dir() / f".{experiment_id}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def experiment_logdir(experiment_id: str) -> str:
    """The folder TensorBoard reads for an experiment (its trials are the runs)."""
    from hops_jupyter.core.experiment import records

    loc = records.experiment_dir(experiment_id)
    return loc.path if loc.scheme == "file" else loc.url


def start(
    experiment_id: str,
    logdir: str | None = None,
    wait: bool = True,
    timeout: float = 90.0,
    idle_timeout: float | None = None,
) -> StartResult:
    """Start (or reuse) the TensorBoard of an experiment. With wait=False the process is
    launched and the call returns at once (outcome LAUNCHED, info None). A TensorBoard that
    another caller is still starting is waited for and reused, never started twice."""
    logdir = logdir or experiment_logdir(experiment_id)
    idle = idle_timeout if idle_timeout is not None else project.current().tensorboard_idle_timeout
    proc: subprocess.Popen | None = None
    with _lock(experiment_id):
        info = find(experiment_id, starting=True)
        if info is not None and info.logdir == logdir and healthy(info):
            touch(experiment_id)
            return StartResult(REUSED, info)
        if info is not None and info.logdir == logdir and not info.ready:
            pending = info  # someone else is starting it: wait below, outside the lock
        else:
            if info is not None:
                stop(experiment_id)
            proc = _spawn(experiment_id, logdir, idle)
            pending = _register_provisional(experiment_id, proc, logdir, idle)
    if not wait:
        if proc is None:
            return StartResult(REUSED, None, "already starting")
        return StartResult(LAUNCHED)
    # The watchdog takes the lock to register its port, so nobody waits while holding it.
    result = _await(experiment_id, pending, proc, timeout)
    if proc is None and result.info is not None:
        return StartResult(REUSED, result.info)
    return result


def _spawn(experiment_id: str, logdir: str, idle: float) -> subprocess.Popen:
    log = registry_dir() / f".{experiment_id}.log"
    args = [
        sys.executable, "-m", "hops_jupyter.core.tensorboard", experiment_id, logdir,
        str(os.getpid()), str(idle),
        "1" if threading.current_thread() is threading.main_thread() else "0",
    ]  # fmt: skip
    with open(log, "wb") as out:
        return subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _register_provisional(
    experiment_id: str, proc: subprocess.Popen, logdir: str, idle: float
) -> TensorBoardInfo:
    """Record the process just spawned (port 0) while the lock is still held, so a concurrent
    start() finds it; the watchdog replaces the entry with its port once it serves."""
    import psutil

    try:
        create_time = psutil.Process(proc.pid).create_time()
    except psutil.Error:
        create_time = time.time()  # already gone: _await reports its exit
    info = TensorBoardInfo(
        experiment_id=experiment_id,
        pid=proc.pid,
        port=0,
        logdir=logdir,
        started=time.time(),
        owner_pid=os.getpid(),
        idle_timeout=idle,
        create_time=create_time,
    )
    _write_entry(info)
    return info


def _write_entry(info: TensorBoardInfo) -> None:
    entry = _entry(info.experiment_id)
    filesystem.atomic_write(filesystem.Location("file", str(entry)), json.dumps(info.to_json()))


def _await(
    experiment_id: str, pending: TensorBoardInfo, proc: subprocess.Popen | None, timeout: float
) -> StartResult:
    """Wait until the process `pending` names registers its port and answers HTTP. `proc` is
    set when this caller spawned it (and then kills it on timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        info = _read(_entry(experiment_id))
        if info is not None and info.pid == pending.pid and info.ready and healthy(info, 2):
            return StartResult(LAUNCHED, info)
        if proc is not None and proc.poll() is not None:
            _forget(experiment_id, proc.pid)
            return StartResult(FAILED, None, f"TensorBoard exited with code {proc.returncode}: "
                               f"{_log_tail(experiment_id)}")  # fmt: skip
        if info is None or info.pid != pending.pid or not _alive(pending):
            return StartResult(FAILED, None, f"TensorBoard was stopped while it started: "
                               f"{_log_tail(experiment_id)}")  # fmt: skip
        time.sleep(0.2)
    if proc is not None:
        _kill_group(proc.pid)
        _forget(experiment_id, proc.pid)
    return StartResult(TIMED_OUT, None, f"TensorBoard did not answer within {timeout} s")


def _forget(experiment_id: str, pid: int) -> None:
    """Remove the registry entry if it still names `pid` (a launch that failed)."""
    current = _read(_entry(experiment_id))
    if current is not None and current.pid == pid:
        _entry(experiment_id).unlink(missing_ok=True)


def _log_tail(experiment_id: str) -> str:
    try:
        return (registry_dir() / f".{experiment_id}.log").read_text(errors="replace")[-2000:]
    except FileNotFoundError:
        return ""


def _kill_group(pid: int) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        for _ in range(50):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    return
            time.sleep(0.05)


def stop(experiment_id: str) -> bool:
    """Stop an experiment's TensorBoard (its whole process group); False when none ran."""
    info = find(experiment_id, starting=True)
    _entry(experiment_id).unlink(missing_ok=True)
    if info is None:
        return False
    _kill_group(info.pid)
    return True


def stop_owned_by(pid: int) -> list[str]:
    """Stop every TensorBoard a process started (the server calls this when it stops)."""
    stopped = []
    for info in running(starting=True):
        if info.owner_pid == pid and stop(info.experiment_id):
            stopped.append(info.experiment_id)
    return stopped


def visualize(*args: Any) -> str:
    """Start (or reuse) a TensorBoard over a past experiment folder and return its URL.
    Accepts an experiment result, its path, or the seed's `visualize(spark, path)`."""
    if len(args) == 2:
        args = args[1:]
    if len(args) != 1:
        raise TypeError("visualize(path) takes the experiment folder (or visualize(spark, path))")
    from hops_jupyter.core.experiment import records

    cfg = project.current()
    loc = filesystem.resolve(args[0], cfg)
    if not loc.isdir():
        raise FileNotFoundError(f"No experiment folder at {loc.url}")
    experiment_id = loc.name
    if not records.is_experiment_id(experiment_id):
        raise ValueError(f"{loc.url} is not an experiment folder (Experiments/<experiment_id>)")
    result = start(experiment_id, loc.path if loc.scheme == "file" else loc.url)
    if result.info is None:
        raise RuntimeError(f"TensorBoard for {experiment_id} {result.outcome}: {result.message}")
    return result.info.url


# --- the watchdog process ------------------------------------------------------------------


def _die_with_parent() -> None:
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


def _register_port(mine: TensorBoardInfo) -> bool:
    """Replace this process's provisional entry by its real one, under the starters' lock (so
    it never lands before the provisional entry). False when the entry no longer names us."""
    with _lock(mine.experiment_id):
        current = _read(_entry(mine.experiment_id))
        if current is None or current.pid != mine.pid:
            return False
        _write_entry(mine)
        return True


def _serve(experiment_id: str, logdir: str, owner_pid: int, idle: float, pdeathsig: bool) -> None:
    """Run TensorBoard in this process and watch the owner and the idle timer."""
    import psutil
    from tensorboard import program

    if pdeathsig:
        _die_with_parent()
    entry = _entry(experiment_id)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    board = program.TensorBoard()
    board.configure(
        argv=[None, "--logdir", logdir, "--host", "127.0.0.1", "--port", "0", "--load_fast", "false",
              "--reload_interval", "2"]
    )  # fmt: skip
    url = board.launch()
    me = psutil.Process()
    mine = TensorBoardInfo(
        experiment_id=experiment_id,
        pid=os.getpid(),
        port=int(url.rstrip("/").rsplit(":", 1)[1]),
        logdir=logdir,
        started=time.time(),
        owner_pid=owner_pid,
        idle_timeout=idle,
        create_time=me.create_time(),
    )
    if not _register_port(mine):
        os._exit(0)  # stopped (or replaced) while it started: never serve unregistered
    try:
        owner = psutil.Process(owner_pid)
        while owner.is_running() and owner.status() != psutil.STATUS_ZOMBIE:
            try:
                last_use = entry.stat().st_mtime
            except FileNotFoundError:
                break  # stopped by someone else
            current = _read(entry)
            if current is not None and current.pid != mine.pid:
                break  # the registry names another process: this one is not the experiment's
            if idle > 0 and time.time() - last_use > idle:
                break
            time.sleep(0.5)
    except psutil.Error:
        pass
    finally:
        current = _read(entry)
        if current is not None and current.pid == os.getpid():
            entry.unlink(missing_ok=True)
    os._exit(0)


if __name__ == "__main__":
    _serve(sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4]), sys.argv[5] == "1")
