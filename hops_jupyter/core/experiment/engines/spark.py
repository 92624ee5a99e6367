"""The Spark engine: long-running Spark tasks that serve trials, on the active or a given
SparkSession.

One Spark job starts a task per slot. Each task connects back to the driver (an authenticated
multiprocessing connection) and runs the same fork server as a local worker (worker.py) inside
its executor's Python worker: every trial is a fresh child process there, handed over directly
from the trial before. So a trial costs a message and a fork, not a Spark job (about 100 ms of
scheduling each on a small machine), and one trial can be cancelled alone. Executors write the
same records through the project filesystem. When an executor is lost, its running trial is
run again elsewhere once (as Spark retries a task) and the trials queued there go elsewhere;
executors that join get tasks of their own.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import re
import secrets
import socket
import sys
import threading
import time
import uuid
from collections import deque
from multiprocessing.connection import Client, Connection, Listener
from typing import Any

from hops_jupyter.core import util
from hops_jupyter.core.experiment.engines.base import (
    check_slots,
    check_timeout,
    reuse_workers_for,
)
from hops_jupyter.core.experiment.engines.link import Link, LinkPool
from hops_jupyter.core.experiment.records import TrialRecord
from hops_jupyter.core.experiment.threads import thread_env
from hops_jupyter.core.experiment.threads import threads_per_trial as threads_per_trial_for
from hops_jupyter.core.experiment.trial import TrialTask, record_failure

# A trial whose executor was lost under it runs again once elsewhere (Spark's own retries
# would run the task again, but a trial is not a task here).
RETRIES = 1


def _task_threads(explicit: int | None) -> int:
    """The CPUs Spark gave this task (`spark.task.cpus`), or the explicit threads_per_trial."""
    if explicit:
        return explicit
    try:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        return max(1, int(ctx.cpus())) if ctx is not None else 1
    except (ImportError, AttributeError, TypeError, ValueError):
        return 1


def _task_gpus() -> list[str] | None:
    """The GPU addresses Spark assigned this task, or None when it assigns none."""
    try:
        from pyspark import TaskContext

        ctx = TaskContext.get()
        gpu = ctx.resources().get("gpu") if ctx is not None else None
    except (ImportError, AttributeError):
        return None
    return list(gpu.addresses) if gpu is not None else None


def serve_trials(index: int, address: tuple[str, int], token: bytes, group: str,
                 threads: int | None) -> int:  # fmt: skip
    """Runs as a Spark task on an executor: connect to the driver and serve its trials (a fork
    server, as a local worker) until it closes the connection; the process is Spark's Python
    worker, so its environment is put back afterwards."""
    from hops_jupyter.core.experiment.engines import worker
    from hops_jupyter.core.experiment.trial import WORKDIR_OWNER_ENV, sweep_workdirs

    saved = dict(os.environ)
    os.environ.update(thread_env(_task_threads(threads), {}))
    gpus = _task_gpus()
    if gpus is not None:  # spark.task.resource.gpu.amount: the GPUs Spark gave this task
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpus) or "-1"
    os.environ[WORKDIR_OWNER_ENV] = str(os.getpid())
    conn = Client(address, authkey=token)
    conn.send_bytes(f"{group} {index}".encode())
    worker._prctl(worker._PR_SET_CHILD_SUBREAPER, 1)  # a trial's orphans come here
    try:
        worker.Dispatcher(conn, idle_s=None, own_process=False).serve()
    finally:
        worker._prctl(worker._PR_SET_CHILD_SUBREAPER, 0)
        conn.close()
        sweep_workdirs(os.getpid())
        os.environ.clear()
        os.environ.update(saved)
    return index


def spark_context(spark: Any) -> Any:
    """The SparkContext of a session. In local mode executors run on this machine, so they use
    the driver's interpreter (the one with hops-jupyter), not whatever `python3` is on PATH."""
    sc = getattr(spark, "sparkContext", spark)
    if sc.master.startswith("local") and sc.pythonExec != sys.executable:
        sc.pythonExec = sys.executable
    return sc


def driver_host(sc: Any) -> str:
    """The address executors reach the driver at (its report server listens there)."""
    return sc.getConf().get("spark.driver.host", "127.0.0.1")


def active_session() -> Any:
    """The active SparkSession, or a clear error saying how to get one."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as err:  # pragma: no cover - pyspark is a dependency
        raise ValueError("engine='spark' needs pyspark installed") from err
    spark = SparkSession.getActiveSession()
    if spark is None:
        raise ValueError(
            "engine='spark' needs a SparkSession: create one first "
            "(SparkSession.builder.master('local[2]').getOrCreate()) or pass it as first argument"
        )
    return spark


_PY_ERROR = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception|Exit)):\s?(.*)$")


def _first_line(err: BaseException) -> str:
    """The useful line of a Spark job failure: the Python exception, or the crash reason."""
    text = str(err)
    if "Python worker exited unexpectedly" in text:
        return (
            "Python worker exited unexpectedly (crashed: os._exit, a native crash or out of memory)"
        )
    python_errors = [m.group(0).strip() for m in map(_PY_ERROR.match, text.splitlines()) if m]
    python_errors = [e for e in python_errors if not e.startswith(("org.", "java.", "py4j."))]
    if python_errors:
        return python_errors[-1][:500]
    return (text.strip().splitlines() or [repr(err)])[0][:500]


class _Runner(Link):
    """A Spark task serving trials, seen from the driver."""

    def __init__(self, conn: Connection, group: str) -> None:
        super().__init__(conn)
        self.group = group


class SparkEngine(LinkPool):
    """Runs up to `workers` trials at once (default: the session's executor slots), `depth`
    handed to each task at once (one runs, the others wait there)."""

    name = "spark"

    def __init__(
        self, spark: Any = None, workers: int | None = None, timeout: float | None = None,
        threads_per_trial: int | None = None, depth: int = 2, reuse_workers: bool | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.reuse_workers = reuse_workers_for(reuse_workers)
        spark = spark if spark is not None else active_session()
        self.sc = spark_context(spark)
        self.report_host = driver_host(self.sc)
        self.spark, self.fixed = spark, workers is not None
        self._slots = check_slots(workers if workers is not None else util.num_executors(spark))
        self._counted = time.monotonic()
        self.timeout = check_timeout(timeout)
        if threads_per_trial is not None:
            threads_per_trial_for(1, threads_per_trial)  # checked here, applied on executors
        self.threads = threads_per_trial
        self.depth = check_slots(depth)
        self._queue: deque[TrialTask] = deque()  # submitted, not yet handed to a task
        self._attempts: dict[str, int] = {}
        self._jobs: dict[concurrent.futures.Future, tuple[str, int]] = {}  # group, tasks
        self._joined: dict[str, int] = {}  # group -> its tasks that connected
        self._failure = ""  # why the last job of tasks failed (shown if none can run)
        self._token = secrets.token_bytes(32)
        self._listener = Listener((self.report_host, 0), authkey=self._token)
        self._arrived: list[_Runner] = []
        self._wake_r, self._wake_w = socket.socketpair()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, name="hops-spark-accept", daemon=True).start()
        self._pool = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="hops-spark")

    @property
    def slots(self) -> int:  # type: ignore[override]
        """Trials at once: the fixed `workers`, else the live task slots, recounted every 2 s
        so the engine follows executors that come and go."""
        if not self.fixed and time.monotonic() - self._counted > 2.0:
            self._slots = max(1, util.num_executors(self.spark))
            self._counted = time.monotonic()
        return self._slots

    @property
    def capacity(self) -> int:
        return self.slots * self.depth

    # --- tasks that serve trials -------------------------------------------------------------

    def _accept(self) -> None:
        """Accept the tasks' connections (the authkey handshake rejects any other)."""
        listener = self._listener
        while listener is not None:
            try:
                conn = listener.accept()
            except (OSError, EOFError):
                if self._listener is None:
                    return  # closed
                continue  # a client that failed the handshake
            try:
                if not conn.poll(30):
                    conn.close()
                    continue
                group, _ = conn.recv_bytes().decode().split()
            except (OSError, EOFError, ValueError):
                conn.close()
                continue
            with self._lock:
                self._arrived.append(_Runner(conn, group))
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")

    def _start_tasks(self, count: int) -> None:
        group = f"hops-workers-{uuid.uuid4().hex[:8]}"
        address, token, threads = self._listener.address, self._token, self.threads

        def job() -> list[int]:
            self.sc.setJobGroup(group, "hops trial workers", interruptOnCancel=True)
            try:
                rdd = self.sc.parallelize(range(count), count)
                return rdd.map(lambda i: serve_trials(i, address, token, group, threads)).collect()
            finally:
                self.sc.setLocalProperty("spark.jobGroup.id", None)

        self._joined[group] = 0
        self._jobs[self._pool.submit(job)] = (group, count)

    def _expected(self) -> int:
        """Tasks started and not connected yet."""
        return sum(max(0, count - self._joined[group])  # Spark retries a lost task: it joins again
                   for f, (group, count) in self._jobs.items() if not f.done())  # fmt: skip

    def _jobs_ended(self) -> None:
        for future in list(self._jobs):
            if not future.done():
                continue
            del self._jobs[future]
            error = future.exception()
            if error is not None:
                self._failure = _first_line(error)
                if "No module named 'hops_jupyter'" in self._failure:
                    self._failure += (
                        f" (the executors' Python, {self.sc.pythonExec!r}, needs hops-jupyter: "
                        "install it there or point PYSPARK_PYTHON at an interpreter that has it)"
                    )
        if self._queue and not self.links and not self._jobs and self._failure:
            while self._queue:  # nothing can run them
                task = self._queue.popleft()
                message = f"The Spark task failed: {self._failure}"
                self.ended.append(record_failure(task, "SparkTaskFailed", message))

    def _dispatch(self) -> None:
        """Take in tasks that connected, start tasks for missing slots, hand out trials."""
        with self._lock:
            arrived, self._arrived = self._arrived, []
        for runner in arrived:
            self._joined[runner.group] = self._joined.get(runner.group, 0) + 1
            self.links.append(runner)
        self._jobs_ended()
        missing = self.slots - len(self.links) - self._expected()
        if self._queue and missing > 0 and not (self._failure and not self.links):
            self._start_tasks(missing)
        ended: list[Link] = []
        for level in range(1, self.depth + 1):  # spread first, then queue behind
            for link in self.links:
                if self._queue and len(link.tasks) < level and link not in ended:
                    task = self._queue.popleft()
                    try:
                        link.send(task, self.timeout, self.reuse_workers)
                    except OSError:  # its Spark task ended just now (its fork server died)
                        self._queue.appendleft(task)
                        ended.append(link)
        for link in ended:  # what it said before it went (its trials' answers), then lost
            self.drain(link)

    def submit(self, task: TrialTask) -> None:
        self._failure = ""
        self._queue.append(task)
        self._dispatch()

    def running(self) -> list[TrialTask]:
        return [*super().running(), *self._queue]

    def why_lost(self, link: Link) -> str:
        return "The executor running this trial was lost (its Spark task or executor died)"

    def lost(self, link: Link, why: str) -> None:
        """A task ended under its trials: the running one runs again elsewhere (once), the
        waiting ones simply go elsewhere."""
        self.links.remove(link)
        link.conn.close()
        tasks = list(link.tasks.values())
        link.tasks.clear()
        for position, task in reversed(list(enumerate(tasks))):
            tries = self._attempts.get(task.trial_id, 0) + (position == 0)
            self._attempts[task.trial_id] = tries
            if tries > RETRIES:
                self.ended.append(record_failure(task, "ExecutorLost", why))
            else:
                self._queue.appendleft(task)

    def wait(self, timeout: float | None = None) -> list[TrialRecord]:
        self._dispatch()
        if not self.ended:
            ready = self.wait_links(timeout, extra=[self._wake_r])
            if ready:
                with contextlib.suppress(OSError):
                    self._wake_r.recv(4096)
            self._dispatch()
        return self.take_ended()

    def cancel(self, trial_id: str) -> TrialTask | None:
        for task in self._queue:
            if task.trial_id == trial_id:
                self._queue.remove(task)
                return task
        return super().cancel(trial_id)

    def cancel_all(self) -> list[TrialTask]:
        stopped = self.running()
        self._queue.clear()
        self.close()
        return stopped

    def close(self) -> None:
        """Close the tasks' connections (each ends its trials and returns), then cancel what
        is left of their jobs."""
        for link in self.links:
            link.tasks.clear()
            link.conn.close()
        self.links.clear()
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        done, pending = concurrent.futures.wait(list(self._jobs), timeout=2)
        for future in pending:
            self.sc.cancelJobGroup(self._jobs[future][0])
        self._jobs.clear()
        self._pool.shutdown(wait=False, cancel_futures=True)
        for sock in (self._wake_r, self._wake_w):
            sock.close()
