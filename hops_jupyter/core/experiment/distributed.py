"""Distributed TensorFlow training as one experiment: mirrored, collective all-reduce and
parameter-server strategies.

Every process of the cluster is one trial of the experiment (`role=worker&index=1`, ...), all
started together. The library builds each process's `TF_CONFIG` (cluster spec on free ports,
task type and index), runs the user's function where the strategy needs it (every worker for
all-reduce, the chief as coordinator for parameter servers, which run `tf.distribute.Server`s),
and tears everything down when the chief finishes or any process fails.

tf.distribute's multi-worker strategies need Keras 2 (`tf-keras`): Keras 3 does not support
ParameterServerStrategy and breaks under MultiWorkerMirroredStrategy, so these processes run
with `TF_USE_LEGACY_KERAS=1` (`tf.keras` is then Keras 2).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any

import cloudpickle

from hops_jupyter.core import context, filesystem, project, util
from hops_jupyter.core.experiment import records
from hops_jupyter.core.experiment.engines.base import Engine
from hops_jupyter.core.experiment.records import (
    FAILED,
    FINISHED,
    KILLED,
    ExperimentRecord,
    TrialRecord,
)
from hops_jupyter.core.experiment.runner import (
    ExperimentFailed,
    ExperimentResult,
    _start_tensorboard,
)
from hops_jupyter.core.experiment.trial import TrialTask, config_env, record_failure
from hops_jupyter.core.ports import free_ports

SCOPE_HINT = (
    "The model was built outside the strategy's scope, so the workers would train separate "
    "copies. Create and compile it inside the scope:\n"
    "    strategy = tf.distribute.MultiWorkerMirroredStrategy()\n"
    "    with strategy.scope():\n"
    "        model = build_and_compile_model()\n"
    "    model.fit(...)"
)


class StrategyScopeError(ValueError):
    """The user's model was not created inside `strategy.scope()`."""


def _guard_fit() -> None:
    """Make Keras 2's `fit` refuse a model built outside any distribution strategy while this
    process is part of a cluster (TF silently trains unsynchronized copies otherwise)."""
    import tf_keras

    original = tf_keras.Model.fit
    if getattr(original, "_hops_guarded", False):
        return

    def fit(self: Any, *args: Any, **kwargs: Any) -> Any:
        if type(self.distribute_strategy).__name__ == "_DefaultDistributionStrategy":
            raise StrategyScopeError(SCOPE_HINT)
        return original(self, *args, **kwargs)

    fit._hops_guarded = True  # type: ignore[attr-defined]
    tf_keras.Model.fit = fit


class RoleRunner:
    """What each process of a distributed run executes (a trial function with params role,
    index and tf_config)."""

    def __init__(self, fn: Callable[[], Any], serve: tuple[str, ...], guard: bool) -> None:
        self.fn, self.serve, self.guard = fn, serve, guard
        self.__name__ = self.__qualname__ = getattr(fn, "__name__", "train")

    def __call__(self, role: str, index: int, tf_config: dict[str, Any] | None) -> Any:
        os.environ["TF_USE_LEGACY_KERAS"] = "1"
        if tf_config is not None:
            os.environ["TF_CONFIG"] = json.dumps(tf_config)
        if role in self.serve:
            import tensorflow as tf

            resolver = tf.distribute.cluster_resolver.TFConfigClusterResolver()
            server = tf.distribute.Server(resolver.cluster_spec(), job_name=role, task_index=index,
                                          protocol="grpc", start=True)  # fmt: skip
            server.join()  # until the chief is done and the run tears the cluster down
            return None
        if self.guard:
            _guard_fit()
        return self.fn()


def cluster_spec(roles: list[tuple[str, int]], addresses: list[str]) -> dict[str, list[str]]:
    """{"worker": [...], "ps": [...], "chief": [...]} from the roles and their addresses."""
    spec: dict[str, list[str]] = {}
    for (role, _), address in zip(roles, addresses, strict=True):
        spec.setdefault(role, []).append(address)
    return spec


def _check_count(name: str, value: Any, low: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    return value


def _new_record(kind: str, fn: Callable[..., Any], roles: list[tuple[str, int]], engine: str,
                name: str | None, cfg: project.Project) -> ExperimentRecord:  # fmt: skip
    exp_id = records.new_experiment_id()
    loc = records.experiments_dir(cfg).child(exp_id)
    counts: dict[str, int] = {}
    for role, _ in roles:
        counts[role] = counts.get(role, 0) + 1
    return ExperimentRecord(
        id=exp_id, name=name or getattr(fn, "__name__", kind), kind=kind,
        function=getattr(fn, "__qualname__", repr(fn)), direction=None, metric_key=None,
        search_space={"cluster": counts}, engine=engine, workers=len(roles),
        trials_total=len(roles), project=cfg.name, user=cfg.user, url=loc.url,
    )  # fmt: skip


def _driver_host(spark: Any) -> str:
    if spark is None:
        return "127.0.0.1"
    conf = getattr(spark, "sparkContext", spark).getConf()
    return conf.get("spark.driver.host", "127.0.0.1")


def run_cluster(kind: str, fn: Callable[[], Any], roles: list[tuple[str, int]], chief: tuple[str, int],
                serve: tuple[str, ...], name: str | None, *, spark: Any = None, timeout: float | None = None,
                tf_config: bool = True) -> ExperimentResult:  # fmt: skip
    """Start one trial per role at once and run them to the chief's end (or the first failure).
    Without Spark every role is a local worker process; with Spark the workers are one barrier
    stage of Spark tasks and the chief and parameter servers run beside the driver."""
    if not callable(fn):
        raise TypeError(f"The training function must be callable, got {type(fn).__name__}")
    cfg = project.current()
    on_spark = [r for r in roles if spark is not None and r[0] == "worker"]
    local = [r for r in roles if r not in on_spark]
    engines: list[Engine] = []
    record = _new_record(kind, fn, roles, "spark" if on_spark else "local", name, cfg)
    loc = filesystem.resolve(record.url, cfg)
    data = cloudpickle.dumps(RoleRunner(fn, serve, guard=tf_config))
    host = _driver_host(spark)
    local_cluster = cluster_spec(local, [f"{host}:{p}" for p in free_ports(len(local))])
    env = config_env(cfg)

    def task(role: str, index: int, cluster: dict[str, list[str]] | None) -> TrialTask:
        trial_id = records.trial_name({"role": role, "index": index})
        config = {"cluster": cluster, "task": {"type": role, "index": index}} if cluster else None
        return TrialTask(record.id, trial_id, f"{record.url}/{trial_id}",
                         {"role": role, "index": index, "tf_config": config}, f"{record.id}-fn", data, env=env)  # fmt: skip

    if on_spark:  # checked before anything is written: too few slots is a clear error
        from hops_jupyter.core.experiment.engines.barrier import SparkBarrierEngine, read_cluster

        engines.append(
            SparkBarrierEngine(spark, len(on_spark), "worker", local_cluster, record.url, timeout)
        )
    if local:
        from hops_jupyter.core.experiment.engines.local import LocalEngine

        engines.append(LocalEngine(len(local), timeout=timeout))
    loc.fs.create_dir(loc.path, recursive=True)
    records.write_experiment(loc, record)
    if cfg.tensorboard:
        _start_tensorboard(record, loc)
    context.experiment_started(record.id)
    chief_id = records.trial_name({"role": chief[0], "index": chief[1]})
    start = time.monotonic()
    trials: dict[str, TrialRecord] = {}
    try:
        for role, index in on_spark:
            engines[0].submit(task(role, index, None))
        if local:
            cluster = read_cluster(record.url, 120) if on_spark else local_cluster
            for role, index in local:
                engines[-1].submit(task(role, index, cluster if tf_config else None))
        _supervise(engines, trials, chief_id, serve)
    except BaseException:
        for engine in engines:
            for stopped in engine.cancel_all():
                trials[stopped.trial_id] = record_failure(
                    stopped, "Stopped", "Stopped: the run was interrupted", KILLED
                )
        raise
    finally:
        for engine in engines:
            engine.close()
        chief_record = trials.get(chief_id)
        record.status = FINISHED if chief_record and chief_record.status == FINISHED else FAILED
        record.finished, record.duration_s = records.now(), round(time.monotonic() - start, 3)
        record.trials_done = len(trials)
        record.trials_failed = sum(t.status == FAILED for t in trials.values())
        if chief_record is not None:
            record.best_trial, record.best_metric, record.best_params = (
                chief_id,
                chief_record.metric,
                None,
            )
        records.write_experiment(loc, record)
    record.trials = records.read_trials(loc)
    result = ExperimentResult(record)
    if record.status == FAILED:
        first = next((t for t in trials.values() if t.status == FAILED), None)
        detail = (
            f"\n\n{first.id} failed:\n{first.error['traceback'] or first.error['message']}"
            if first
            else ""
        )
        raise ExperimentFailed(
            f"Distributed run {record.id} failed; records are in {record.url}{detail}", result
        )
    return result


def _cancel(engines: list[Engine]) -> list[TrialTask]:
    return [task for engine in engines for task in engine.cancel_all()]


def _supervise(engines: list[Engine], trials: dict[str, TrialRecord], chief_id: str,
               serve: tuple[str, ...]) -> None:  # fmt: skip
    """Wait for the processes. The first failure stops all the others; once the chief is done
    the servers (which never end by themselves) are stopped, workers finish on their own."""
    chief_done = False
    while any(engine.running() for engine in engines):
        for engine in engines:
            for done in engine.wait(timeout=0.5 / len(engines)):
                trials[done.id] = done
                if done.status != FINISHED:
                    for task in _cancel(engines):
                        trials[task.trial_id] = record_failure(
                            task, "Stopped", f"Stopped because {done.id} failed", KILLED
                        )
                    return
                chief_done = chief_done or done.id == chief_id
        running = [t for engine in engines for t in engine.running()]
        if chief_done and running and all(t.params["role"] in serve for t in running):
            for task in _cancel(engines):
                trials[task.trial_id] = _finished_server(task)


def _finished_server(task: TrialTask) -> TrialRecord:
    """A server process stopped because the chief is done: its part finished normally."""
    stopped = record_failure(task, "Stopped", "Stopped after the chief finished", FINISHED)
    stopped.error = None
    loc = filesystem.resolve(task.trial_url, project.current())
    records.write_trial(loc, stopped)
    return stopped


def mirrored(
    fn: Callable[[], Any], name: str | None = None, timeout: float | None = None
) -> ExperimentResult:
    """One worker using all its GPUs (`tf.distribute.MirroredStrategy`; the CPU when there are
    none), as a local worker process. `fn` builds its model inside `strategy.scope()`."""
    return run_cluster(
        "mirrored", fn, [("chief", 0)], ("chief", 0), (), name, timeout=timeout, tf_config=False
    )


def collective_all_reduce(fn: Callable[[], Any], num_workers: int | None = None, name: str | None = None,
                          timeout: float | None = None, spark: Any = None) -> ExperimentResult:  # fmt: skip
    """`num_workers` processes training one model with `MultiWorkerMirroredStrategy` (worker 0
    is the chief): local processes, or one Spark barrier stage when given a SparkSession.
    Default: `util.num_executors(spark)` workers."""
    count = _check_count(
        "num_workers", num_workers if num_workers is not None else util.num_executors(spark), 1
    )
    roles = [("worker", i) for i in range(count)]
    return run_cluster(
        "collective_all_reduce", fn, roles, roles[0], (), name, spark=spark, timeout=timeout
    )


def parameter_server(fn: Callable[[], Any], num_ps: int | None = None, num_workers: int | None = None,
                     name: str | None = None, timeout: float | None = None,
                     spark: Any = None) -> ExperimentResult:  # fmt: skip
    """TF2's `ParameterServerStrategy`: a chief runs `fn` as coordinator, `num_ps` parameter
    servers hold the variables, `num_workers` workers run the steps (Spark tasks when given a
    SparkSession; the chief and the parameter servers then run beside the driver). Defaults:
    `util.num_param_servers(spark)` (at least 1) and `util.num_executors(spark)`."""
    ps = _check_count(
        "num_ps", num_ps if num_ps is not None else max(1, util.num_param_servers(spark)), 1
    )
    workers = _check_count(
        "num_workers", num_workers if num_workers is not None else util.num_executors(spark), 1
    )
    roles = (
        [("chief", 0)] + [("worker", i) for i in range(workers)] + [("ps", i) for i in range(ps)]
    )
    return run_cluster(
        "parameter_server",
        fn,
        roles,
        roles[0],
        ("worker", "ps"),
        name,
        spark=spark,
        timeout=timeout,
    )
