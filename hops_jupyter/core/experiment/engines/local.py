"""The default engine: a pool of worker processes on this machine.

Each worker is a fresh interpreter (not a fork of the notebook kernel) in its own process group,
so a trial that hangs, segfaults or calls os._exit is contained: the engine sees the worker's
socket close or its deadline pass, kills the whole group, records the trial FAILED, and starts a
new worker for the next trial.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from multiprocessing.connection import Connection, wait

from hops_jupyter.core import devices
from hops_jupyter.core.experiment.engines.base import Engine, check_slots, check_timeout
from hops_jupyter.core.experiment.records import TrialRecord
from hops_jupyter.core.experiment.threads import thread_env
from hops_jupyter.core.experiment.threads import threads_per_trial as threads_per_trial_for
from hops_jupyter.core.experiment.trial import TrialTask, record_failure, sweep_workdirs


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
        self.task: TrialTask | None = None
        self.started = 0.0
        self.fn_keys: set[str] = set()

    def send(self, task: TrialTask) -> None:
        if task.fn_key in self.fn_keys:
            task = replace(task, fn_bytes=None)
        self.conn.send_bytes(pickle.dumps(task))
        self.fn_keys.add(task.fn_key)
        self.task = task
        self.started = time.monotonic()

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
    `min(workers, GPUs // gpus_per_trial)`."""

    name = "local"

    def __init__(self, workers: int, timeout: float | None = None,
                 threads_per_trial: int | None = None, gpus_per_trial: int | None = None,
                 gpu_ids: list[str] | None = None, limit_threads: bool = True) -> None:  # fmt: skip
        self.slots = check_slots(workers)
        self.timeout = check_timeout(timeout)
        ids = devices.gpu_ids() if gpu_ids is None else list(gpu_ids)
        self._gpu_sets = gpu_sets(ids, gpus_per_trial, self.slots)
        if self._gpu_sets is not None and self._gpu_sets and self._gpu_sets[0]:
            self.slots = len(self._gpu_sets)
        self.threads = threads_per_trial_for(self.slots, threads_per_trial)
        self._workers: list[_Worker] = []
        self._env = {**os.environ, "PYTHONPATH": _python_path()}
        if limit_threads:  # a distributed run's processes share the machine as one job
            self._env.update(thread_env(self.threads, os.environ))

    def submit(self, task: TrialTask) -> None:
        idle = next((w for w in self._workers if w.task is None), None)
        if idle is None:
            if len(self._workers) >= self.slots:
                raise RuntimeError("all workers are busy")
            idle = _Worker(self._env, self._free_gpus())
            self._workers.append(idle)
        idle.send(task)

    def _free_gpus(self) -> tuple[str, ...] | None:
        """A GPU set no live worker holds (a replaced worker's set is free again)."""
        if self._gpu_sets is None:
            return None
        held = [w.gpus for w in self._workers]
        return next(g for g in self._gpu_sets if g not in held or not g)

    def running(self) -> list[TrialTask]:
        return [w.task for w in self._workers if w.task is not None]

    def _retire(self, worker: _Worker) -> None:
        worker.kill()
        self._workers.remove(worker)

    def wait(self, timeout: float | None = None) -> list[TrialRecord]:
        busy = [w for w in self._workers if w.task is not None]
        if not busy:
            return []
        limit = timeout
        if self.timeout is not None:
            first_deadline = min(w.started for w in busy) + self.timeout
            until = max(0.0, first_deadline - time.monotonic())
            limit = until if limit is None else min(limit, until)
        ready = wait([w.conn for w in busy], timeout=limit)
        done = []
        for worker in busy:
            task = worker.task
            assert task is not None
            if worker.conn in ready:
                try:
                    done.append(pickle.loads(worker.conn.recv_bytes()))
                    worker.task = None
                    continue
                except (EOFError, OSError):
                    reason = worker.exit_reason()
                    done.append(
                        record_failure(
                            task,
                            "WorkerCrashed",
                            f"The worker process running this trial {reason} "
                            "(os._exit, a crash in native code, or out of memory)",
                        )
                    )
            elif self.timeout is not None and time.monotonic() - worker.started >= self.timeout:
                done.append(
                    record_failure(
                        task, "TrialTimeout", f"The trial ran past its timeout of {self.timeout} s"
                    )
                )
            else:
                continue
            self._retire(worker)
        return done

    def cancel(self, trial_id: str) -> TrialTask | None:
        worker = next((w for w in self._workers if w.task and w.task.trial_id == trial_id), None)
        if worker is None:
            return None
        task = worker.task
        self._retire(worker)
        return task

    def cancel_all(self) -> list[TrialTask]:
        stopped = self.running()
        for worker in list(self._workers):
            if worker.task is not None:
                self._retire(worker)
        return stopped

    def close(self) -> None:
        for worker in self._workers:
            worker.conn.close()  # the worker sees EOF and exits
        deadline = time.monotonic() + 3
        for worker in self._workers:
            try:
                worker.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                worker.kill()
        self._workers.clear()
