"""Helpers from the seed's `util` module: hyperparameter grids and cluster sizing."""

from __future__ import annotations

import itertools
import re
from typing import Any

from hops_jupyter.core import project


def grid_params(params: dict[str, list[Any]]) -> dict[str, list[Any]]:
    """Expand a dict of value lists into its cartesian product, in the `args_dict` form that
    `experiment.launch` takes: `{"a": [1, 2], "b": [3]}` -> `{"a": [1, 2], "b": [3, 3]}`."""
    if not isinstance(params, dict) or not params:
        raise ValueError(f"grid_params needs a non-empty dict of lists, got {params!r}")
    for name, values in params.items():
        if not isinstance(values, (list, tuple)) or not values:
            raise ValueError(f"grid_params: {name!r} must map to a non-empty list, got {values!r}")
    names = list(params)
    points = list(itertools.product(*(params[n] for n in names)))
    return {n: [p[i] for p in points] for i, n in enumerate(names)}


def _spark_conf(spark: Any) -> Any:
    context = getattr(spark, "sparkContext", spark)
    return context.getConf()


def _local_cores(master: str) -> int | None:
    match = re.fullmatch(r"local(?:\[(\d+|\*)(?:,\d+)?\])?", master.strip())
    if not match:
        return None
    if match.group(1) in (None, ""):
        return 1
    if match.group(1) == "*":
        import os

        return os.cpu_count() or 1
    return int(match.group(1))


def live_task_slots(spark: Any) -> int:
    """Tasks the session's live executors can run at once (their cores / `spark.task.cpus`,
    GPUs included), as Spark's scheduler counts them for barrier stages; 0 when unknown."""
    try:
        jsc = getattr(spark, "sparkContext", spark)._jsc.sc()
        profile = jsc.resourceProfileManager().defaultResourceProfile()
        return int(jsc.maxNumConcurrentTasks(profile))
    except Exception:  # py4j errors, older Spark: fall back on the configuration
        return 0


def num_executors(spark: Any = None) -> int:
    """How many trials run at once: with a SparkSession its task slots, whatever the master
    (`local[N]`, `spark://`, `yarn`, `k8s://`): the configured maximum under dynamic allocation,
    else the live executors' cores / `spark.task.cpus`, else what the configuration says;
    without one, the local engine's workers."""
    if spark is None:
        return project.current().local_workers
    conf = _spark_conf(spark)
    task_cpus = max(1, int(conf.get("spark.task.cpus", "1")))
    executor_cores = int(conf.get("spark.executor.cores", "1"))
    if conf.get("spark.dynamicAllocation.enabled", "false").lower() == "true":
        most = int(conf.get("spark.dynamicAllocation.maxExecutors", "0") or 0)
        if 0 < most < 2**31 - 1:  # Spark's default maximum is unbounded
            return max(1, most * executor_cores // task_cpus)
    live = live_task_slots(spark)
    if live > 0:
        return live
    cores = _local_cores(conf.get("spark.master", ""))
    if cores is not None:
        return max(1, cores // task_cpus)
    instances = conf.get("spark.executor.instances", None)
    if instances is not None:
        return max(1, int(instances) * executor_cores // task_cpus)
    parallelism = getattr(spark, "sparkContext", spark).defaultParallelism
    return max(1, int(parallelism) // task_cpus)


def num_param_servers(spark: Any = None) -> int:
    """Parameter servers for distributed training: Hops' `spark.tensorflow.num.ps` with a
    SparkSession, else `$NUM_TF_PS` / the config file, else 0."""
    if spark is not None:
        value = _spark_conf(spark).get("spark.tensorflow.num.ps", None)
        if value is not None:
            return int(value)
    return project.current().num_tf_ps


# The seed's helpers that call the Hopsworks REST API. Without a Hopsworks cluster there is no
# such API: each raises one clear error instead of an AttributeError.
HOPSWORKS_ONLY = (
    "get_jwt", "send_request", "get_requests_verify", "get_hopsworks_rest_endpoint",
    "set_auth_header", "prepare_requests", "http", "get_job_name", "get_api_key_aws",
    "get_credentials", "abspath", "get_host_port_pair", "get_hopsworks_domain",
)  # fmt: skip


class HopsworksOnly(RuntimeError):
    """A seed helper that needs a Hopsworks cluster was called outside one."""


def _hopsworks_only(name: str) -> Any:
    def helper(*_: Any, **__: Any) -> Any:
        raise HopsworksOnly(
            f"util.{name}() calls the Hopsworks REST API, which needs a Hopsworks cluster; "
            "hops-jupyter's embedded default has none (project files, experiments, TensorBoard "
            "and Kafka work without it)"
        )

    helper.__name__ = helper.__qualname__ = name
    helper.__doc__ = "Needs a Hopsworks cluster: raises HopsworksOnly here."
    return helper


for _name in HOPSWORKS_ONLY:
    globals()[_name] = _hopsworks_only(_name)
