"""The default engine: a pool of worker processes on this machine.

Each worker is a fork server (worker.py): a fresh interpreter (not a fork of the notebook
kernel) that imports the trial function's modules once and runs every trial in a child forked
from that clean template, so no state, thread, process or folder of one trial reaches the next.
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
from dataclasses import replace
from multiprocessing.connection import Connection, wait

from hops_jupyter.core import devices
from hops_jupyter.core.experiment.engines.base import Engine, check_slots, check_timeout
from hops_jupyter.core.experiment.records import TrialRecord
from hops_jupyter.core.experiment.threads import thread_env
from hops_jupyter.core.experiment.threads import threads_per_trial as threads_per_trial_for
from hops_jupyter.core.experiment.trial import TrialTask, record_failure, sweep_workdirs

# How long a worker may stay silent past a trial's timeout (which it enforces itself) before
# it is killed as hung; also how long a cancel waits for its answer.
_GRACE_S = 30.0


def _python_path() -> str:
    """The driver's import path, so functions pickled by reference import in workers too."""
    entries = [os.path.abspath(p or os.getcwd()) for p in sys.path]
    return os.pathsep.join(dict.fromkeys(p for p in entries if os.path.exists(p)))


class _Worker:
    def __init__(self, env: dict[str, str], gpus: tuple[str, ...] | None = None) -> None:
        self.gpus = gpus
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
        self.conn = Connection(ours.detach())
        self.env = env
        self.tasks: dict[str, TrialTask] = {}  # sent and not answered, in order
        self.busy_since = 0.0  # when it last went from idle to busy, or last answered
        self.fn_keys: set[str] = set()

    def send(self, task: TrialTask, timeout: float | None) -> None:
        if task.fn_key in self.fn_keys:
            task = replace(task, fn_bytes=None)
        if not self.tasks:
            self.busy_since = time.monotonic()
        self.conn.send_bytes(pickle.dumps(("task", task, timeout)))
        self.fn_keys.add(task.fn_key)
        self.tasks[task.trial_id] = task

    def fresh(self) -> bool:
        """A spare can take new work: alive, and no module it imported changed since."""
        if self.proc.poll() is not None:
            return False
        try:
            self.conn.send_bytes(pickle.dumps(("check",)))
            if not self.conn.poll(5):
                return False
            kind, _, fresh = pickle.loads(self.conn.recv_bytes())
        except (EOFError, OSError):
            return False
        return kind == "fresh" and bool(fresh)

    def receive(self) -> tuple[str, str, object]:
        """The worker's next answer: (kind, trial id, payload). EOFError when it died."""
        answer = pickle.loads(self.conn.recv_bytes())
        self.busy_since = time.monotonic()
        return answer

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
        self.conn.close()
        sweep_workdirs(self.proc.pid)

    def exit_reason(self) -> str:
        try:
            code = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.kill()
            code = self.proc.returncode
        if code is not None and code < 0:
            return f"killed by signal {signal.Signals(-code).name}"
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
os.register_at_fork(after_in_child=_SPARES.clear)  # a forked driver has no workers of its own


def _keep_spare(worker: _Worker) -> bool:
    if worker.tasks or worker.proc.poll() is not None:
        return False
    with _SPARES_LOCK:
        _SPARES.append(worker)
        while len(_SPARES) > MAX_SPARES:  # the oldest goes
            _SPARES.pop(0).conn.close()
    return True


def _spare_or_new(env: dict[str, str], gpus: tuple[str, ...] | None) -> _Worker:
    with _SPARES_LOCK:
        found = [w for w in _SPARES if w.env == env and w.gpus == gpus]
        for worker in found:
            _SPARES.remove(worker)
    for worker in found:
        if worker.fresh():
            for other in found[found.index(worker) + 1 :]:
                _keep_spare(other)
            return worker
        worker.conn.close()
    return _Worker(env, gpus)


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


class LocalEngine(Engine):
    """Runs trials in `workers` local processes; `timeout` (seconds) bounds each trial. With
    GPUs, each worker gets `gpus_per_trial` of them (default 1) and the slots are
    `min(workers, GPUs // gpus_per_trial)`. `depth` trials may be handed to a worker at once:
    one runs, the others wait there for it to end."""

    name = "local"

    def __init__(self, workers: int, timeout: float | None = None,
                 threads_per_trial: int | None = None, gpus_per_trial: int | None = None,
                 gpu_ids: list[str] | None = None, limit_threads: bool = True,
                 depth: int = 2) -> None:  # fmt: skip
        self.slots = check_slots(workers)
        self.timeout = check_timeout(timeout)
        ids = devices.gpu_ids() if gpu_ids is None else list(gpu_ids)
        self._gpu_sets = gpu_sets(ids, gpus_per_trial, self.slots)
        if self._gpu_sets is not None and self._gpu_sets and self._gpu_sets[0]:
            self.slots = len(self._gpu_sets)
        self.depth = check_slots(depth)
        self.threads = threads_per_trial_for(self.slots, threads_per_trial)
        self._workers: list[_Worker] = []
        self._ended: list[TrialRecord] = []  # answers read while waiting for a cancel
        self._env = {**os.environ, "PYTHONPATH": _python_path()}
        if limit_threads:  # a distributed run's processes share the machine as one job
            self._env.update(thread_env(self.threads, os.environ))

    @property
    def capacity(self) -> int:
        return self.slots * self.depth

    def submit(self, task: TrialTask) -> None:
        least = min(self._workers, key=lambda w: len(w.tasks), default=None)
        if least is None or (least.tasks and len(self._workers) < self.slots):
            least = _spare_or_new(self._env, self._free_gpus())
            self._workers.append(least)
        elif len(least.tasks) >= self.depth:
            raise RuntimeError("all workers are busy")
        least.send(task, self.timeout)

    def _free_gpus(self) -> tuple[str, ...] | None:
        """A GPU set no live worker holds (a replaced worker's set is free again)."""
        if self._gpu_sets is None:
            return None
        held = [w.gpus for w in self._workers]
        return next(g for g in self._gpu_sets if g not in held or not g)

    def running(self) -> list[TrialTask]:
        return [task for w in self._workers for task in w.tasks.values()]

    def _retire(self, worker: _Worker, reason: str | None = None) -> None:
        """Kill a worker; with `reason`, its trials are recorded FAILED (it died under them)."""
        worker.kill()
        self._workers.remove(worker)
        if reason is not None:
            for task in worker.tasks.values():
                self._ended.append(record_failure(task, "WorkerCrashed", reason))
        worker.tasks.clear()

    def _answer(self, worker: _Worker) -> str | None:
        """Read and record one answer of `worker`; the trial id it was about (None: the worker
        died, and its trials are recorded FAILED)."""
        try:
            kind, trial_id, payload = worker.receive()
        except (EOFError, OSError):
            self._retire(worker, f"The worker process running this trial {worker.exit_reason()}")
            return None
        task = worker.tasks.pop(trial_id, None)
        if task is None:  # cancelled: the caller has written its record
            return trial_id
        if kind == "record":
            self._ended.append(pickle.loads(payload))
        elif kind == "timeout":
            message = f"The trial ran past its timeout of {self.timeout} s"
            self._ended.append(record_failure(task, "TrialTimeout", message))
        else:
            message = (
                f"The worker process running this trial {payload} "
                "(os._exit, a crash in native code, or out of memory)"
            )
            self._ended.append(record_failure(task, "WorkerCrashed", message))
        return trial_id

    def wait(self, timeout: float | None = None) -> list[TrialRecord]:
        busy = [w for w in self._workers if w.tasks]
        if busy and not self._ended:
            limit = timeout
            if self.timeout is not None:  # a worker silent well past a timeout is hung
                first = min(w.busy_since for w in busy) + self.timeout + _GRACE_S
                until = max(0.0, first - time.monotonic())
                limit = until if limit is None else min(limit, until)
            ready = wait([w.conn for w in busy], timeout=limit)
            for worker in busy:
                if worker.conn in ready:
                    self._answer(worker)
                elif (
                    self.timeout is not None
                    and time.monotonic() - worker.busy_since >= self.timeout + _GRACE_S
                ):
                    self._retire(worker, "The worker stopped answering (hung) and was killed")
        ended, self._ended = self._ended, []
        return ended

    def cancel(self, trial_id: str) -> TrialTask | None:
        worker = next((w for w in self._workers if trial_id in w.tasks), None)
        if worker is None:
            return None
        task = worker.tasks.pop(trial_id)
        try:
            worker.conn.send_bytes(pickle.dumps(("cancel", trial_id)))
            # Wait for the worker to say it is gone, so nothing of it writes after the caller.
            while worker.conn.poll(_GRACE_S):
                if self._answer(worker) in (trial_id, None):
                    return task
        except (EOFError, OSError):
            pass
        if worker in self._workers:
            self._retire(worker, "The worker stopped answering (hung) and was killed")
        return task

    def cancel_all(self) -> list[TrialTask]:
        stopped = self.running()
        for worker in list(self._workers):
            if worker.tasks:
                worker.tasks.clear()
                self._retire(worker)
        return stopped

    def close(self) -> None:
        """Keep idle, healthy workers warm for the next experiment of this process (see
        _SPARES); close the others."""
        closing = [w for w in self._workers if not _keep_spare(w)]
        for worker in closing:
            worker.conn.close()  # the worker sees EOF and exits
        deadline = time.monotonic() + 3
        for worker in closing:
            try:
                worker.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.kill()
        self._workers.clear()
