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
from collections.abc import Callable, Sequence
from typing import Any

from hops_jupyter.core import filesystem, project, util
from hops_jupyter.core.experiment import records
from hops_jupyter.core.experiment.engines.barrier import read_cluster
from hops_jupyter.core.experiment.engines.base import Engine
from hops_jupyter.core.experiment.engines.group import EngineGroup
from hops_jupyter.core.experiment.records import FAILED, FINISHED, KILLED, TrialRecord
from hops_jupyter.core.experiment.result import ExperimentResult
from hops_jupyter.core.experiment.run import ExperimentRun, ExperimentSpec, RunHooks
from hops_jupyter.core.experiment.search import FixedTrials
from hops_jupyter.core.experiment.trial import TrialTask, record_failure
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


def _name(name: str | None) -> str | None:
    return None if name in (None, "no-name") else name


def _driver_host(spark: Any) -> str:
    if spark is None:
        return "127.0.0.1"
    conf = getattr(spark, "sparkContext", spark).getConf()
    return conf.get("spark.driver.host", "127.0.0.1")


class ClusterRun(ExperimentRun):
    """A run whose trials are the processes of one training cluster: all start together, the
    first failure stops the others, and the chief's end ends the run (servers, which never end
    by themselves, are then stopped as finished). The chief's result is the run's result."""

    def __init__(self, spec: ExperimentSpec, roles: list[tuple[str, int]], chief: tuple[str, int],
                 serve: tuple[str, ...], on_spark: bool, local_cluster: dict[str, list[str]],
                 tf_config: bool) -> None:  # fmt: skip
        self.roles, self.serve, self.on_spark = roles, serve, on_spark
        self.local_cluster, self.tf_config = local_cluster, tf_config
        self.chief_id = records.trial_name({"role": chief[0], "index": chief[1]})
        self.chief_done = False
        super().__init__(spec)

    def _check(self) -> None:
        if not callable(self.spec.fn.fn):
            raise TypeError(
                f"The training function must be callable, got {type(self.spec.fn.fn).__name__}"
            )
        self._resources()

    def _describe_space(self) -> dict[str, Any]:
        counts: dict[str, int] = {}
        for role, _ in self.roles:
            counts[role] = counts.get(role, 0) + 1
        return {"cluster": counts}

    def _task(self, trial_id: str, params: dict[str, Any]) -> TrialTask:
        role, index = params["role"], params["index"]
        cluster = None
        if self.tf_config and not (self.on_spark and role == "worker"):
            # local roles of a Spark run learn the workers' addresses once the stage is up
            cluster = read_cluster(self.record.url, 120) if self.on_spark else self.local_cluster
        config = {"cluster": cluster, "task": {"type": role, "index": index}} if cluster else None
        return super()._task(trial_id, {"role": role, "index": index, "tf_config": config})

    def _trial_ended(self, trial: TrialRecord) -> None:
        super()._trial_ended(trial)
        if trial.status != FINISHED:
            self._stop_all(lambda task: record_failure(
                task, "Stopped", f"Stopped because {trial.id} failed", KILLED))  # fmt: skip
            return
        self.chief_done = self.chief_done or trial.id == self.chief_id
        running = self.engine.running()
        if self.chief_done and running and all(t.params["role"] in self.serve for t in running):
            self._stop_all(_finished_server)

    def _stop_all(self, write: Any) -> None:
        self.exhausted = True
        for task in self.engine.cancel_all():
            super()._trial_ended(write(task))

    def _final_status(self) -> str:
        chief = self.trials.get(self.chief_id)
        return FINISHED if chief is not None and chief.status == FINISHED else FAILED

    def _summarize(self) -> None:
        record, trials = self.record, self.trials.values()
        record.trials_done = len(self.trials)
        record.trials_failed = sum(t.status == FAILED for t in trials)
        chief = self.trials.get(self.chief_id)
        if chief is not None:
            record.best_trial, record.best_metric, record.best_params = chief.id, chief.metric, None

    def _failure_message(self) -> str:
        first = next((t for t in self.trials.values() if t.status == FAILED), None)
        detail = (
            f"\n\n{first.id} failed:\n{first.error['traceback'] or first.error['message']}"
            if first and first.error
            else ""
        )
        return f"Distributed run {self.record.id} failed; records are in {self.record.url}{detail}"


def run_cluster(kind: str, fn: Callable[[], Any], roles: list[tuple[str, int]], chief: tuple[str, int],
                serve: tuple[str, ...], name: str | None, *, spark: Any = None, timeout: float | None = None,
                tf_config: bool = True, hooks: Sequence[RunHooks] = (),
                options: dict[str, Any] | None = None) -> ExperimentResult:  # fmt: skip
    """Start one trial per role at once and run them to the chief's end (or the first failure).
    Without Spark every role is a local worker process; with Spark the workers are one barrier
    stage of Spark tasks and the chief and parameter servers run beside the driver."""
    if not callable(fn):
        raise TypeError(f"The training function must be callable, got {type(fn).__name__}")
    on_spark = [r for r in roles if spark is not None and r[0] == "worker"]
    local = [r for r in roles if r not in on_spark]
    host = _driver_host(spark)
    local_cluster = cluster_spec(local, [f"{host}:{p}" for p in free_ports(len(local))])
    engines: list[Engine] = []
    experiment_url = records.experiments_dir().url  # the barrier tasks learn the id below
    if on_spark:  # checked before anything is written: too few slots is a clear error
        from hops_jupyter.core.experiment.engines.barrier import SparkBarrierEngine

        engines.append(SparkBarrierEngine(spark, len(on_spark), "worker", local_cluster,
                                          experiment_url, timeout))  # fmt: skip
    if local:
        from hops_jupyter.core.experiment.engines.local import LocalEngine

        # One job's processes: no thread limit, and no workers kept warm for later runs.
        engines.append(LocalEngine(len(local), timeout=timeout, limit_threads=False,
                                   keep_warm=False))  # fmt: skip
    route = lambda task: engines[0] if on_spark and task.params["role"] == "worker" else engines[-1]  # noqa: E731
    spec = ExperimentSpec(
        kind=kind, fn=RoleRunner(fn, serve, guard=tf_config), searcher=FixedTrials(
            {"role": [r for r, _ in on_spark + local], "index": [i for _, i in on_spark + local]}),
        engine=EngineGroup(engines, route), name=name or getattr(fn, "__name__", kind),
        options=options or {}, hooks=hooks,
    )  # fmt: skip
    run = ClusterRun(spec, roles, chief, serve, bool(on_spark), local_cluster, tf_config)
    if on_spark:
        engines[0].experiment_url = run.record.url
    return run.run()


def _finished_server(task: TrialTask) -> TrialRecord:
    """A server process stopped because the chief is done: its part finished normally."""
    stopped = record_failure(task, "Stopped", "Stopped after the chief finished", FINISHED)
    stopped.error = None
    loc = filesystem.resolve(task.trial_url, project.current())
    records.write_trial(loc, stopped)
    return stopped


def _options(description: str | None, local_logdir: bool,
             versioned_resources: list[str] | None) -> dict[str, Any]:  # fmt: skip
    return {"description": description, "local_logdir": local_logdir,
            "versioned_resources": versioned_resources}  # fmt: skip


def mirrored(fn: Callable[[], Any], name: str | None = None, timeout: float | None = None,
             description: str | None = None, local_logdir: bool = False,
             versioned_resources: list[str] | None = None) -> ExperimentResult:  # fmt: skip
    """One worker using all its GPUs (`tf.distribute.MirroredStrategy`; the CPU when there are
    none), as a local worker process. `fn` builds its model inside `strategy.scope()`."""
    return run_cluster(
        "mirrored", fn, [("chief", 0)], ("chief", 0), (), _name(name), timeout=timeout,
        tf_config=False, options=_options(description, local_logdir, versioned_resources),
    )  # fmt: skip


def collective_all_reduce(fn: Callable[[], Any], num_workers: int | None = None, name: str | None = None,
                          timeout: float | None = None, spark: Any = None,
                          description: str | None = None, local_logdir: bool = False,
                          versioned_resources: list[str] | None = None) -> ExperimentResult:  # fmt: skip
    """`num_workers` processes training one model with `MultiWorkerMirroredStrategy` (worker 0
    is the chief): local processes, or one Spark barrier stage when given a SparkSession.
    Default: `util.num_executors(spark)` workers."""
    count = _check_count(
        "num_workers", num_workers if num_workers is not None else util.num_executors(spark), 1
    )
    roles = [("worker", i) for i in range(count)]
    return run_cluster(
        "collective_all_reduce", fn, roles, roles[0], (), _name(name), spark=spark,
        timeout=timeout, options=_options(description, local_logdir, versioned_resources),
    )  # fmt: skip


def parameter_server(fn: Callable[[], Any], num_ps: int | None = None, num_workers: int | None = None,
                     name: str | None = None, timeout: float | None = None,
                     spark: Any = None, description: str | None = None,
                     local_logdir: bool = False,
                     versioned_resources: list[str] | None = None) -> ExperimentResult:  # fmt: skip
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
        "parameter_server", fn, roles, roles[0], ("worker", "ps"), _name(name), spark=spark,
        timeout=timeout, options=_options(description, local_logdir, versioned_resources),
    )  # fmt: skip
