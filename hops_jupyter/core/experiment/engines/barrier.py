"""Gang scheduling on Spark: a barrier stage with one task per process of a distributed run.

All tasks start together (Spark's barrier execution mode), learn each other's addresses with
`allGather`, and a task whose trial fails raises, which makes Spark stop the whole stage. The
tasks' records are read from the project filesystem, as for every engine.
"""

from __future__ import annotations

import concurrent.futures
import json
import pickle
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import cloudpickle

from hops_jupyter.core import filesystem, project, util
from hops_jupyter.core.experiment import records
from hops_jupyter.core.experiment.engines.base import Engine, check_timeout
from hops_jupyter.core.experiment.engines.spark import driver_host, spark_context
from hops_jupyter.core.experiment.records import FAILED, FINISHED, KILLED, TrialRecord
from hops_jupyter.core.experiment.trial import TrialTask, record_failure, run_trial
from hops_jupyter.core.ports import free_ports

CLUSTER_FILE = ".cluster.json"


def barrier_main(payload: bytes, _: Iterator[Any]) -> Iterator[bytes]:
    """One barrier task: find its address, exchange addresses, run its role's trial."""
    from pyspark import BarrierTaskContext

    spec = pickle.loads(payload)
    ctx = BarrierTaskContext.get()
    part = ctx.partitionId()
    host = ctx.getTaskInfos()[part].address.rsplit(":", 1)[0]
    addresses = ctx.allGather(f"{host}:{free_ports(1, host='')[0]}")
    cluster = {**spec["cluster"], spec["role"]: addresses}
    task: TrialTask = spec["tasks"][part]
    if part == 0:  # tell the driver where the workers are (parameter-server runs need it)
        loc = filesystem.resolve(spec["experiment_url"], project.current())
        filesystem.atomic_write(loc.child(CLUSTER_FILE), json.dumps(cluster))
    config = {"cluster": cluster, "task": {"type": spec["role"], "index": task.params["index"]}}
    task = replace(task, params={**task.params, "tf_config": config})
    record = run_trial(task, lambda: cloudpickle.loads(task.fn_bytes))
    if record.status != FINISHED:
        raise RuntimeError(f"{record.id} failed: {record.error['message'] if record.error else ''}")
    yield pickle.dumps(record)


class SparkBarrierEngine(Engine):
    """Runs exactly `count` trials of one role, all at once, as one Spark barrier stage."""

    name = "spark"

    def __init__(self, spark: Any, count: int, role: str, cluster: dict[str, list[str]],
                 experiment_url: str, timeout: float | None = None) -> None:  # fmt: skip
        slots = util.num_executors(spark)
        if count > slots:
            raise ValueError(
                f"A barrier stage of {count} tasks needs {count} task slots; the SparkSession has "
                f"{slots} (spark.master / spark.executor.instances)"
            )
        self.sc = spark_context(spark)
        self.report_host = driver_host(self.sc)
        self.slots, self.role, self.cluster = count, role, cluster
        self.experiment_url, self.timeout = experiment_url, check_timeout(timeout)
        self._tasks: list[TrialTask] = []
        self._ended: set[str] = set()
        self._group = f"hops-gang-{uuid.uuid4().hex[:8]}"
        self._future: concurrent.futures.Future | None = None
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="hops-barrier")
        self._started = 0.0

    def submit(self, task: TrialTask) -> None:
        self._tasks.append(task)
        if len(self._tasks) == self.slots:
            payload = pickle.dumps(
                {"tasks": self._tasks, "role": self.role, "cluster": self.cluster,
                 "experiment_url": self.experiment_url}
            )  # fmt: skip
            self._started = time.monotonic()
            self._future = self._pool.submit(self._job, payload)

    def _job(self, payload: bytes) -> list[bytes]:
        from functools import partial

        self.sc.setJobGroup(self._group, "hops distributed run", interruptOnCancel=True)
        rdd = self.sc.parallelize(range(self.slots), self.slots)
        return rdd.barrier().mapPartitions(partial(barrier_main, payload)).collect()

    def running(self) -> list[TrialTask]:
        return [t for t in self._tasks if t.trial_id not in self._ended]

    def _on_disk(self, task: TrialTask) -> TrialRecord | None:
        loc = filesystem.resolve(task.trial_url, project.current()).child(records.TRIAL_FILE)
        try:
            return TrialRecord(**records.read_json(loc))
        except (FileNotFoundError, OSError, ValueError, TypeError):
            return None

    def wait(self, timeout: float | None = None) -> list[TrialRecord]:
        if self._future is None:
            return []
        try:
            self._future.result(timeout=min(timeout or 1.0, 1.0))
        except concurrent.futures.TimeoutError:
            pass
        except Exception:  # the stage failed: the failing task wrote its record
            pass
        out = []
        for task in self.running():
            record = self._on_disk(task)
            if record is not None and record.status in (FINISHED, FAILED):
                self._ended.add(task.trial_id)
                out.append(record)
        if self._future.done() and self.running() and not out:
            for task in self.running():  # the stage ended under them (a crash, a cancel)
                self._ended.add(task.trial_id)
                out.append(
                    record_failure(
                        task,
                        "SparkTaskFailed",
                        "The Spark barrier stage ended before this task",
                        FAILED,
                    )
                )
        if (
            self.timeout is not None
            and time.monotonic() - self._started > self.timeout
            and self.running()
        ):
            for task in self.cancel_all():
                out.append(
                    record_failure(
                        task, "TrialTimeout", f"The run passed its timeout of {self.timeout} s"
                    )
                )
        return out

    def cancel(self, trial_id: str) -> TrialTask | None:
        """A gang lives and dies together: cancelling one of its tasks cancels the stage."""
        task = next((t for t in self.running() if t.trial_id == trial_id), None)
        if task is not None:
            self.cancel_all()
        return task

    def cancel_all(self) -> list[TrialTask]:
        stopped = self.running()
        if stopped:
            self.sc.cancelJobGroup(self._group)
        self._ended.update(t.trial_id for t in stopped)
        return stopped

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def read_cluster(experiment_url: str, timeout: float) -> dict[str, list[str]]:
    """Wait for the barrier stage to publish the cluster's addresses."""
    loc = filesystem.resolve(experiment_url, project.current()).child(CLUSTER_FILE)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if loc.isfile():
            return records.read_json(loc)
        time.sleep(0.1)
    raise TimeoutError(f"The Spark workers did not start within {timeout} s")


__all__ = ["KILLED", "SparkBarrierEngine", "barrier_main", "read_cluster"]
