"""The Spark engine: one Spark job of one task per trial, on the active or a given SparkSession.

Each trial is submitted from its own driver thread with its own job group, so trials start as
slots free up (asynchronous search works as on the local engine) and a timed-out or interrupted
trial can be cancelled alone. Executors run the same `run_trial` as local workers and write the
same records through the project filesystem.
"""

from __future__ import annotations

import concurrent.futures
import os
import pickle
import re
import sys
import time
import uuid
from typing import Any

import cloudpickle

from hops_jupyter.core import util
from hops_jupyter.core.experiment.engines.base import Engine, check_slots, check_timeout
from hops_jupyter.core.experiment.records import TrialRecord
from hops_jupyter.core.experiment.threads import thread_env
from hops_jupyter.core.experiment.threads import threads_per_trial as threads_per_trial_for
from hops_jupyter.core.experiment.trial import TrialTask, record_failure, run_trial


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


def execute_trial(payload: bytes, threads: int | None = None) -> bytes:
    """Runs on an executor: bound the trial's threads, unpack the task, run the trial, pack
    its record."""
    os.environ.update(thread_env(_task_threads(threads), {}))
    gpus = _task_gpus()
    if gpus is not None:  # spark.task.resource.gpu.amount: the GPUs Spark gave this task
        os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(gpus) or "-1"
    task: TrialTask = pickle.loads(payload)
    fn_bytes = task.fn_bytes
    record = run_trial(task, lambda: cloudpickle.loads(fn_bytes))
    return pickle.dumps(record)


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


class SparkEngine(Engine):
    """Runs up to `workers` trials at once (default: the session's executor slots)."""

    name = "spark"

    def __init__(
        self, spark: Any = None, workers: int | None = None, timeout: float | None = None,
        threads_per_trial: int | None = None,
    ) -> None:  # fmt: skip
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
        # One driver thread per running trial; executors that join add slots during a run.
        self._pool = concurrent.futures.ThreadPoolExecutor(256, thread_name_prefix="hops-spark")
        self._jobs: dict[concurrent.futures.Future, tuple[TrialTask, float, str]] = {}

    @property
    def slots(self) -> int:  # type: ignore[override]
        """Trials at once: the fixed `workers`, else the live task slots, recounted every 2 s
        so the engine follows executors that come and go."""
        if not self.fixed and time.monotonic() - self._counted > 2.0:
            self._slots = max(1, util.num_executors(self.spark))
            self._counted = time.monotonic()
        return self._slots

    def _job(self, task: TrialTask, group: str) -> bytes:
        self.sc.setJobGroup(group, f"hops trial {task.trial_id}", interruptOnCancel=True)
        try:
            rdd = self.sc.parallelize([pickle.dumps(task)], 1)
            threads = self.threads
            return rdd.map(lambda payload: execute_trial(payload, threads)).collect()[0]
        finally:
            self.sc.setLocalProperty("spark.jobGroup.id", None)

    def submit(self, task: TrialTask) -> None:
        group = f"hops-{task.experiment_id}-{uuid.uuid4().hex[:8]}"
        future = self._pool.submit(self._job, task, group)
        self._jobs[future] = (task, time.monotonic(), group)

    def running(self) -> list[TrialTask]:
        return [task for task, _, _ in self._jobs.values()]

    def wait(self, timeout: float | None = None) -> list[TrialRecord]:
        if not self._jobs:
            return []
        limit = timeout
        if self.timeout is not None:
            first = min(started for _, started, _ in self._jobs.values()) + self.timeout
            until = max(0.0, first - time.monotonic())
            limit = until if limit is None else min(limit, until)
        done, _ = concurrent.futures.wait(
            list(self._jobs), timeout=limit, return_when=concurrent.futures.FIRST_COMPLETED
        )
        out = []
        for future in done:
            task, _, _ = self._jobs.pop(future)
            try:
                out.append(pickle.loads(future.result()))
            except Exception as err:
                reason = _first_line(err)
                if "No module named 'hops_jupyter'" in reason:
                    reason += (
                        f" (the executors' Python, {self.sc.pythonExec!r}, needs hops-jupyter: "
                        "install it there or point PYSPARK_PYTHON at an interpreter that has it)"
                    )
                out.append(
                    record_failure(task, "SparkTaskFailed", f"The Spark task failed: {reason}")
                )
        if self.timeout is not None:
            now = time.monotonic()
            for future, (task, started, group) in list(self._jobs.items()):
                if now - started >= self.timeout:
                    self.sc.cancelJobGroup(group)
                    del self._jobs[future]
                    out.append(
                        record_failure(
                            task,
                            "TrialTimeout",
                            f"The trial ran past its timeout of {self.timeout} s",
                        )
                    )
        return out

    def cancel(self, trial_id: str) -> TrialTask | None:
        for future, (task, _, group) in list(self._jobs.items()):
            if task.trial_id == trial_id:
                self.sc.cancelJobGroup(group)
                del self._jobs[future]
                return task
        return None

    def cancel_all(self) -> list[TrialTask]:
        stopped = []
        for task, _, group in self._jobs.values():
            self.sc.cancelJobGroup(group)
            stopped.append(task)
        self._jobs.clear()
        return stopped

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
