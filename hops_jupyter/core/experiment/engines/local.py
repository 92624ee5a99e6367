"""The default engine: a pool of worker processes on this machine.

Each worker (worker.py) is a fresh interpreter, not a fork of the notebook kernel, whose fork
server imports the trial function's modules once and forks every trial from that clean state,
so no state, thread, process or folder of one trial reaches the next.
A trial that hangs, segfaults or calls os._exit takes only its child down: the worker records
it FAILED and goes on. Each worker holds up to `depth` trials (one running, the rest queued)
so that the next trial starts the moment one ends, without a round trip to the driver.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection, wait

from hops_jupyter.core import devices, filesystem, project
from hops_jupyter.core.experiment.engines.base import (
    check_slots,
    check_timeout,
    reuse_workers_for,
)
from hops_jupyter.core.experiment.engines.link import Link, LinkPool, crash_message
from hops_jupyter.core.experiment.records import TRIAL_FILE, TrialRecord
from hops_jupyter.core.experiment.threads import thread_env
from hops_jupyter.core.experiment.threads import threads_per_trial as threads_per_trial_for
from hops_jupyter.core.experiment.trial import TrialTask, sweep_workdirs


def _python_path() -> str:
    """The driver's import path, so functions pickled by reference import in workers too."""
    entries = [os.path.abspath(p or os.getcwd()) for p in sys.path]
    return os.pathsep.join(dict.fromkeys(p for p in entries if os.path.exists(p)))


class _Worker(Link):
    """A local worker process (worker.py), started with `env`."""

    def __init__(self, env: dict[str, str], gpus: tuple[str, ...] | None = None) -> None:
        if gpus is not None:  # this worker's own GPUs: its trials see only these
            env = {**env, "CUDA_VISIBLE_DEVICES": ",".join(gpus) or "-1"}
        ours, theirs = socket.socketpair()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-X",
                "faulthandler",
                "-m",
                __package__ + ".worker",
                str(theirs.fileno()),
            ],
            pass_fds=[theirs.fileno()],
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            env=env,
        )
        theirs.close()
        super().__init__(Connection(ours.detach()), gpus)
        self.env = env

    def kill(self) -> None:
        """SIGKILL the worker, its process group and every descendant (daemons that left the
        group included), and remove its trials' working folders."""
        import psutil

        try:
            descendants = psutil.Process(self.proc.pid).children(recursive=True)
        except psutil.Error:
            descendants = []
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for proc in descendants:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        self.proc.wait()
        # Until they are gone they hold what they opened (a TensorFlow server's port): the
        # caller goes on only once nothing of the worker is left.
        psutil.wait_procs(descendants, timeout=5)
        self.conn.close()
        sweep_workdirs(self.proc.pid)

    def exit_reason(self) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        if code is not None and code < 0:
            return f"was killed by signal {signal.Signals(-code).name}"
        return f"exited with code {code}"


# Idle workers of ended experiments, kept warm for the next experiment in this process: a new
# interpreter that imports scikit-learn or TensorFlow costs about a second before its first
# trial. A spare is taken only by an engine with the same environment (threads, GPUs, import
# path), and only if none of the non-library modules it imported has changed on disk since it
# started (the worker checks: an edited module gets a new worker). Spares exit after
# SPARE_IDLE_S idle, and with this process.
_SPARES: list[_Worker] = []
_SPARES_LOCK = threading.Lock()
MAX_SPARES = max(2, os.cpu_count() or 1)
RETIRE_S = 10.0  # how long a retired spare may take to exit before it is killed
CHECK_S = 5.0  # how long spares may take to say whether they can take new work
os.register_at_fork(after_in_child=_SPARES.clear)  # a forked driver has no workers of its own


def _retire_spare(worker: _Worker) -> None:
    """Close a spare; it exits, and a thread reaps it (no zombie left), or kills it when it
    does not exit (a worker whose fork server a trial stopped answers nothing)."""
    worker.conn.close()

    def reap() -> None:
        try:
            worker.proc.wait(timeout=RETIRE_S)
        except subprocess.TimeoutExpired:
            worker.kill()

    threading.Thread(target=reap, name="hops-reap", daemon=True).start()


def _keep_spare(worker: _Worker) -> bool:
    if worker.tasks or worker.proc.poll() is not None:
        return False
    try:  # the process its trials shared (reuse_workers) ends with its experiment
        worker.conn.send_bytes(pickle.dumps(("retire",)))
    except OSError:
        return False
    with _SPARES_LOCK:
        _SPARES.append(worker)
        while len(_SPARES) > MAX_SPARES:  # the oldest goes
            _retire_spare(_SPARES.pop(0))
    return True


def _fresh(spares: list[_Worker]) -> list[_Worker]:
    """The spares that can take new work: alive, answering, and no module they imported has
    changed since. All are asked at once, so silent ones cost CHECK_S in all, not each."""
    asked = [w for w in spares if w.proc.poll() is None and w.ask_fresh()]
    waiting, answered = {w.conn: w for w in asked}, set()
    deadline = time.monotonic() + CHECK_S
    while waiting and (left := deadline - time.monotonic()) > 0:
        for conn in wait(list(waiting), timeout=left):
            worker = waiting.pop(conn)
            if worker.is_fresh():
                answered.add(worker)
    return [w for w in asked if w in answered]


def _spare_or_new(env: dict[str, str], gpus: tuple[str, ...] | None) -> _Worker:
    with _SPARES_LOCK:
        found = [w for w in _SPARES if w.env == env and w.gpus == gpus]
        for worker in found:
            _SPARES.remove(worker)
    fresh = _fresh(found)
    for worker in found:
        if worker not in fresh:
            _retire_spare(worker)
    for other in fresh[1:]:
        _keep_spare(other)
    return fresh[0] if fresh else _Worker(env, gpus)


def _started(task: TrialTask) -> bool:
    """Whether a trial may have begun to run: in a local folder its RUNNING record is written
    before its function runs (worker.py); elsewhere, or when unsure, it may have."""
    try:
        record = filesystem.resolve(task.trial_url, project.current()).child(TRIAL_FILE)
    except Exception:  # noqa: BLE001 - unsure: it may have
        return True
    return record.scheme != "file" or os.path.lexists(record.path)


def gpu_sets(ids: list[str], gpus_per_trial: object, slots: int) -> list[tuple[str, ...]] | None:
    """The GPUs of each worker slot: `gpus_per_trial` of `ids` each, as many slots as fit (at
    most `slots`); None when GPUs are not handed out (none on the machine, and none asked)."""
    if gpus_per_trial is None:
        gpus_per_trial = 1 if ids else 0
    if (
        not isinstance(gpus_per_trial, int)
        or isinstance(gpus_per_trial, bool)
        or gpus_per_trial < 0
    ):
        raise ValueError(f"gpus_per_trial must be an integer >= 0, got {gpus_per_trial!r}")
    if gpus_per_trial == 0:
        return [()] * slots if ids else None  # GPUs present but not wanted: hide them
    if gpus_per_trial > len(ids):
        raise ValueError(
            f"gpus_per_trial={gpus_per_trial} but this machine has {len(ids)} GPU(s) "
            f"(CUDA_VISIBLE_DEVICES / nvidia-smi): ask for at most {len(ids)}"
        )
    count = min(slots, len(ids) // gpus_per_trial)
    return [tuple(ids[i * gpus_per_trial : (i + 1) * gpus_per_trial]) for i in range(count)]


class LocalEngine(LinkPool):
    """Runs trials in `workers` local processes; `timeout` (seconds) bounds each trial. With
    GPUs, each worker gets `gpus_per_trial` of them (default 1) and the slots are
    `min(workers, GPUs // gpus_per_trial)`. `depth` trials may be handed to a worker at once:
    one runs, the others wait there for it to end. `reuse_workers`: each worker runs its trials
    one after the other in one process, not each in a fresh one."""

    name = "local"

    def __init__(self, workers: int, timeout: float | None = None,
                 threads_per_trial: int | None = None, gpus_per_trial: int | None = None,
                 gpu_ids: list[str] | None = None, limit_threads: bool = True,
                 depth: int = 2, keep_warm: bool = True,
                 reuse_workers: bool | None = None) -> None:  # fmt: skip
        super().__init__()
        self.reuse_workers = reuse_workers_for(reuse_workers)
        self.keep_warm = keep_warm  # idle workers stay for the next experiment (_SPARES)
        self.slots = check_slots(workers)
        self.timeout = check_timeout(timeout)
        ids = devices.gpu_ids() if gpu_ids is None else list(gpu_ids)
        self._gpu_sets = gpu_sets(ids, gpus_per_trial, self.slots)
        if self._gpu_sets is not None and self._gpu_sets and self._gpu_sets[0]:
            self.slots = len(self._gpu_sets)
        self.depth = check_slots(depth)
        self.threads = threads_per_trial_for(self.slots, threads_per_trial)
        self._env = {**os.environ, "PYTHONPATH": _python_path()}
        if limit_threads:  # a distributed run's processes share the machine as one job
            self._env.update(thread_env(self.threads, os.environ))

    @property
    def capacity(self) -> int:
        return self.slots * self.depth

    def submit(self, task: TrialTask) -> None:
        for idle in [w for w in self.links if not w.tasks and w.proc.poll() is not None]:
            self.lost(idle, "")  # exited while idle ($HOPS_WORKER_IDLE_S): replaced below
        least = min(self.links, key=lambda w: len(w.tasks), default=None)
        if least is None or (least.tasks and len(self.links) < self.slots):
            least = _spare_or_new(self._env, self._free_gpus())
            self.links.append(least)
        elif len(least.tasks) >= self.depth:
            raise RuntimeError("all workers are busy")
        try:
            least.send(task, self.timeout, self.reuse_workers)
        except OSError:  # it died just now: its trials (this one too) are recorded FAILED,
            least.tasks[task.trial_id] = task  # but for those it said it never started
            self.drain(least)

    def _free_gpus(self) -> tuple[str, ...] | None:
        """A GPU set no live worker holds (a replaced worker's set is free again)."""
        if self._gpu_sets is None:
            return None
        held = [w.gpus for w in self.links]
        return next(g for g in self._gpu_sets if g not in held or not g)

    def lost(self, link: Link, why: str) -> None:
        """A worker died or hung: its trials that had not started run on another worker."""
        assert isinstance(link, _Worker)
        link.kill()
        waiting = [task for task in link.tasks.values() if why and not _started(task)]
        for task in waiting:
            del link.tasks[task.trial_id]
        super().lost(link, why)
        for task in waiting:
            self.move(task, "Its worker went away", f"the last time: {why}")

    def why_lost(self, link: Link) -> str:
        assert isinstance(link, _Worker)
        return crash_message(link.exit_reason())

    def wait(self, timeout: float | None = None) -> list[TrialRecord]:
        if not self.ended:
            self.wait_links(timeout)
        return self.take_ended()

    def cancel_all(self) -> list[TrialTask]:
        stopped = self.running()
        for worker in list(self.links):
            if worker.tasks:
                worker.tasks.clear()
                self.lost(worker, "")
        return stopped

    def close(self) -> None:
        """Keep idle, healthy workers warm for the next experiment of this process (see
        _SPARES); close the others."""
        closing = [w for w in self.links if not (self.keep_warm and _keep_spare(w))]
        for worker in closing:
            worker.conn.close()  # the worker sees EOF and exits
        deadline = time.monotonic() + 3
        for worker in closing:
            try:
                worker.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.kill()
        self.links.clear()
