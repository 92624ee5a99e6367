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

TensorBoards are bounded: at most `tensorboard_max` per owner process (starting one more stops
the owner's least recently used first), a shorter idle time (`tensorboard_ended_idle_timeout`)
once their experiment has ended, and none kept for an experiment that failed
(`experiment_ended`). They run without TensorFlow (TensorBoard's own stub: about a tenth of the
memory) unless the logdir holds what only TensorFlow reads (Debugger V2 dumps, projector
checkpoints); the watchdog restarts its TensorBoard with TensorFlow when such files appear.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
import types
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
    ended_idle_timeout: float = 0.0  # idle time once the experiment has ended (0: idle_timeout)
    with_tensorflow: bool = False  # False: TensorBoard's stub (no Debugger V2, no projector)

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
    stopped: tuple[str, ...] = ()  # the owner's least recently used ones stopped to make room


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
    another caller is still starting is waited for and reused, never started twice. When this
    process runs `tensorboard_max` TensorBoards already, its least recently used one stops
    first (`stopped` names it)."""
    logdir = logdir or experiment_logdir(experiment_id)
    cfg = project.current()
    idle = idle_timeout if idle_timeout is not None else cfg.tensorboard_idle_timeout
    proc: subprocess.Popen | None = None
    stopped: tuple[str, ...] = ()
    with _owner_lock, _lock(experiment_id):
        info = find(experiment_id, starting=True)
        if info is not None and info.logdir == logdir and healthy(info):
            touch(experiment_id)
            return StartResult(REUSED, info)
        if info is not None and info.logdir == logdir and not info.ready:
            pending = info  # someone else is starting it: wait below, outside the lock
        else:
            if info is not None:
                stop(experiment_id)
            stopped = make_room(experiment_id, cfg.tensorboard_max)
            ended_idle = cfg.tensorboard_ended_idle_timeout
            proc = _spawn(experiment_id, logdir, idle, ended_idle)
            pending = _register_provisional(experiment_id, proc, logdir, idle, ended_idle)
    if not wait:
        if proc is None:
            return StartResult(REUSED, None, "already starting")
        return StartResult(LAUNCHED, stopped=stopped)
    # The watchdog takes the lock to register its port, so nobody waits while holding it.
    result = _await(experiment_id, pending, proc, timeout)
    if proc is None and result.info is not None:
        touch(experiment_id)  # reused: used now, as a running one would be
        return StartResult(REUSED, result.info)
    return dataclasses.replace(result, stopped=stopped)


# One starter at a time in this process, so that two threads cannot both find room for one
# more TensorBoard (only this process starts the ones it owns).
_owner_lock = threading.Lock()


def last_use(info: TensorBoardInfo) -> float:
    """When a TensorBoard was last used: its registry entry's mtime (see touch())."""
    try:
        return _entry(info.experiment_id).stat().st_mtime
    except FileNotFoundError:
        return 0.0


def make_room(experiment_id: str, limit: int) -> tuple[str, ...]:
    """Stop this process's least recently used TensorBoards (other than `experiment_id`'s)
    until one more fits within `limit` (0: no limit); the ids of those stopped."""
    if limit <= 0:
        return ()
    me = os.getpid()
    mine = [i for i in running(starting=True)
            if i.owner_pid == me and i.experiment_id != experiment_id]  # fmt: skip
    mine.sort(key=last_use)
    stopped = []
    while len(mine) >= limit:
        victim = mine.pop(0)
        if stop(victim.experiment_id):
            stopped.append(victim.experiment_id)
    return tuple(stopped)


def experiment_ended(experiment_id: str, status: str) -> bool:
    """Called by the run that started an experiment's TensorBoard, as the experiment ends: a
    FAILED experiment keeps none (nobody asked for it; opening it starts it again). Any other
    end changes nothing here: the watchdog applies the shorter ended idle time. True when one
    was stopped; never raises (TensorBoard must not fail a run)."""
    if str(status) != "FAILED":
        return False
    try:
        info = find(experiment_id, starting=True)
        if info is None or info.owner_pid != os.getpid():
            return False
        return stop(experiment_id)
    except (OSError, ValueError):
        return False


def _spawn(experiment_id: str, logdir: str, idle: float, ended_idle: float) -> subprocess.Popen:
    log = registry_dir() / f".{experiment_id}.log"
    pdeathsig = threading.current_thread() is threading.main_thread()
    args = _watchdog_args(experiment_id, logdir, os.getpid(), idle, pdeathsig, ended_idle)
    with open(log, "wb") as out:
        return subprocess.Popen(
            args,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )


def _register_provisional(
    experiment_id: str, proc: subprocess.Popen, logdir: str, idle: float, ended_idle: float
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
        ended_idle_timeout=ended_idle,
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
    it never lands before the provisional entry). False when the entry no longer names us.
    The entry keeps its last use (mtime): serving is not using."""
    return _replace_own_entry(mine)


def _replace_own_entry(mine: TensorBoardInfo) -> bool:
    """Write this process's registry entry anew, under the starters' lock, keeping its last
    use (its mtime): serving is not using. False when the entry no longer names this process
    (stopped, or replaced, meanwhile)."""
    with _lock(mine.experiment_id):
        entry = _entry(mine.experiment_id)
        current = _read(entry)
        if current is None or current.pid != mine.pid:
            return False
        used = last_use(current)
        _write_entry(mine)
        with contextlib.suppress(OSError):
            os.utime(entry, (used, used))
        return True


# What only TensorBoard with TensorFlow shows: Debugger V2 dumps (interactive_debugger()) and
# the projector's embeddings, read from checkpoints.
_TF_MARKERS = frozenset({"debugger-v2", "projector_config.pbtxt"})
_EXPERIMENT_ENDED = frozenset({"FINISHED", "FAILED", "KILLED"})
CHECK_EVERY_S = 2.0  # how often the watchdog reads its experiment's status
SCAN_ENDED_EVERY_S = 30.0  # how often it looks for files needing TensorFlow once it ended


def needs_tensorflow(logdir: str, depth: int = 3) -> bool:
    """True when TensorBoard needs TensorFlow for this logdir: files only TensorFlow reads
    within `depth` levels, or a logdir that is not local (TensorFlow's filesystems read HDFS)."""
    if "://" in logdir:
        return True
    todo = [(logdir, 1)]
    while todo:
        folder, level = todo.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name in _TF_MARKERS:
                        return True
                    if level < depth and entry.is_dir(follow_symlinks=False):
                        todo.append((entry.path, level + 1))
        except OSError:
            continue
    return False


def experiment_has_ended(logdir: str) -> bool:
    """True when the experiment TensorBoard reads has ended, as its experiment.json says (one
    small local read). False when unknown (no record, an HDFS logdir)."""
    if "://" in logdir:
        return False
    try:
        with open(os.path.join(logdir, "experiment.json"), "rb") as f:
            return json.load(f).get("status") in _EXPERIMENT_ENDED
    except (OSError, ValueError, AttributeError):
        return False


def idle_limit(info: TensorBoardInfo, ended: bool) -> float:
    """Seconds without use after which a TensorBoard stops (0: never): shorter once its
    experiment has ended."""
    idle, ended_idle = info.idle_timeout, info.ended_idle_timeout
    if ended and ended_idle > 0:
        return min(idle, ended_idle) if idle > 0 else ended_idle
    return idle


def _watchdog_args(
    experiment_id: str, logdir: str, owner_pid: int, idle: float, pdeathsig: bool,
    ended_idle: float, mode: str = "auto", port: int = 0,
) -> list[str]:  # fmt: skip
    """The watchdog's command line (see _main); `mode`: tf, notf, or auto (decide on start)."""
    return [
        sys.executable, "-m", "hops_jupyter.core.tensorboard", experiment_id, logdir,
        str(owner_pid), str(idle), "1" if pdeathsig else "0", str(ended_idle), mode, str(port),
    ]  # fmt: skip


def _restart_with_tensorflow(mine: TensorBoardInfo, pdeathsig: bool) -> None:
    """Files only TensorFlow reads appeared: serve again with TensorFlow, in this same process
    (exec) and on the same port where it is still free, so the registry entry stays ours and
    URLs handed out stay valid. It is provisional (port 0) meanwhile: callers wait for it to
    serve again rather than find it unhealthy and replace it."""
    if not _replace_own_entry(dataclasses.replace(mine, port=0)):
        return  # stopped meanwhile: the watch loop ends
    sys.stdout.flush()
    sys.stderr.flush()
    args = _watchdog_args(mine.experiment_id, mine.logdir, mine.owner_pid, mine.idle_timeout,
                          pdeathsig, mine.ended_idle_timeout, "tf", mine.port)  # fmt: skip
    os.execv(sys.executable, args)


def _launch(logdir: str, with_tf: bool, port: int = 0) -> str:
    """Serve TensorBoard over `logdir` on 127.0.0.1 (`port`, else a free one), without
    TensorFlow unless `with_tf`; its URL."""
    if not with_tf:
        # TensorBoard's compat layer takes its stub when this module exists (its no-TF build).
        sys.modules["tensorboard.compat.notf"] = types.ModuleType("tensorboard.compat.notf")
    from tensorboard import program

    def board(on: int) -> program.TensorBoard:
        tb = program.TensorBoard()
        tb.configure(
            argv=[None, "--logdir", logdir, "--host", "127.0.0.1", "--port", str(on),
                  "--load_fast", "auto", "--reload_interval", "2"]
        )  # fmt: skip
        return tb

    try:
        return board(port).launch()
    except program.TensorBoardServerException:
        if port == 0:
            raise
        return board(0).launch()  # its old port was taken meanwhile


def _serve(
    experiment_id: str,
    logdir: str,
    owner_pid: int,
    idle: float,
    pdeathsig: bool,
    ended_idle: float = 0.0,
    with_tf: bool | None = None,
    port: int = 0,
) -> None:
    """Run TensorBoard in this process and watch the owner, the idle timer (shorter once the
    experiment has ended) and whether TensorFlow became needed. The Rust data server
    (`--load_fast auto`) reads every event file of a run as it grows: our `.hops` files and
    the user's own TensorFlow summaries side by side."""
    import psutil

    if pdeathsig:
        _die_with_parent()
    entry = _entry(experiment_id)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    has_tf = importlib.util.find_spec("tensorflow") is not None
    if with_tf is None:
        with_tf = has_tf and needs_tensorflow(logdir)
    url = _launch(logdir, with_tf, port)
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
        ended_idle_timeout=ended_idle,
        with_tensorflow=with_tf,
    )
    if not _register_port(mine):
        os._exit(0)  # stopped (or replaced) while it started: never serve unregistered
    try:
        _watch(mine, psutil.Process(owner_pid), watch_tf=has_tf and not with_tf,
               pdeathsig=pdeathsig)  # fmt: skip
    except psutil.Error:
        pass
    finally:
        current = _read(entry)
        if current is not None and current.pid == os.getpid():
            entry.unlink(missing_ok=True)
    os._exit(0)


def _watch(mine: TensorBoardInfo, owner: Any, watch_tf: bool, pdeathsig: bool) -> None:
    """Return when this TensorBoard should stop: its owner died, it was stopped or replaced in
    the registry, or nobody used it for its idle limit. Restart it with TensorFlow (`watch_tf`)
    when files that need it appear (looked for less often once the experiment has ended)."""
    import psutil

    entry = _entry(mine.experiment_id)
    ended, next_check, next_scan = False, 0.0, 0.0
    while owner.is_running() and owner.status() != psutil.STATUS_ZOMBIE:
        try:
            last_use = entry.stat().st_mtime
        except FileNotFoundError:
            return  # stopped by someone else
        current = _read(entry)
        if current is not None and current.pid != mine.pid:
            return  # the registry names another process: this one is not the experiment's
        now = time.time()
        if now >= next_check:
            next_check = now + CHECK_EVERY_S
            ended = experiment_has_ended(mine.logdir)
            if watch_tf and (not ended or now >= next_scan):
                next_scan = now + SCAN_ENDED_EVERY_S
                if needs_tensorflow(mine.logdir):
                    _restart_with_tensorflow(mine, pdeathsig)
                    return
        limit = idle_limit(mine, ended)
        if limit > 0 and now - last_use > limit:
            return
        time.sleep(0.5)


def _main(argv: list[str]) -> None:
    """`python -m hops_jupyter.core.tensorboard ID LOGDIR OWNER_PID IDLE PDEATHSIG
    [ENDED_IDLE [tf|notf|auto [PORT]]]`: the watchdog process start() spawns."""
    ended_idle = float(argv[5]) if len(argv) > 5 else 0.0
    with_tf = {"tf": True, "notf": False}.get(argv[6]) if len(argv) > 6 else None
    port = int(argv[7]) if len(argv) > 7 else 0
    _serve(argv[0], argv[1], int(argv[2]), float(argv[3]), argv[4] == "1", ended_idle, with_tf,
           port)  # fmt: skip


if __name__ == "__main__":
    _main(sys.argv[1:])
