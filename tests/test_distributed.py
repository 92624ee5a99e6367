"""Distributed training with real TensorFlow processes on CPU: mirrored, collective all-reduce
and parameter servers, failures that end the whole run, and bad input."""

import socket
import time

import pytest

from hops import experiment, util
from hops_jupyter.core.experiment import ExperimentFailed
from hops_jupyter.core.experiment.distributed import StrategyScopeError

pytestmark = pytest.mark.slow


def mirrored_train():
    import numpy as np
    import tensorflow as tf

    strategy = tf.distribute.MirroredStrategy()
    with strategy.scope():
        model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).random((64, 4)).astype("float32")
    history = model.fit(x, x.sum(1, keepdims=True), epochs=2, batch_size=16, verbose=0)
    return {"loss": history.history["loss"][-1], "replicas": strategy.num_replicas_in_sync}


def all_reduce_train():
    import json
    import os

    import numpy as np
    import tensorflow as tf

    from hops import experiment

    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    with strategy.scope():
        model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
    index = json.loads(os.environ["TF_CONFIG"])["task"]["index"]
    x = np.random.default_rng(index).random((64, 4)).astype("float32")  # each worker its own shard
    history = model.fit(x, x.sum(1, keepdims=True), epochs=3, batch_size=16, verbose=0)
    for step, loss in enumerate(history.history["loss"]):
        experiment.report(loss, step=step)
    return {
        "loss": history.history["loss"][-1],
        "weights": [float(w) for w in model.get_weights()[0].ravel()],
    }


def ps_train():
    import numpy as np
    import tensorflow as tf

    strategy = tf.distribute.ParameterServerStrategy(
        tf.distribute.cluster_resolver.TFConfigClusterResolver()
    )
    with strategy.scope():
        model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(1)])
        model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).random((256, 4)).astype("float32")

    def data(ctx):
        return tf.data.Dataset.from_tensor_slices((x, x.sum(1, keepdims=True))).repeat().batch(16)

    history = model.fit(
        tf.keras.utils.experimental.DatasetCreator(data), epochs=2, steps_per_epoch=8, verbose=0
    )
    return {
        "loss": history.history["loss"][-1],
        "devices": sorted({v.device for v in model.variables}),
    }


def test_mirrored_on_cpu(hops_home):
    result = experiment.mirrored(mirrored_train, name="one-box")
    logdir, returned = result
    assert result.record.kind == "mirrored" and result.status == "FINISHED"
    assert returned["replicas"] == 1 and returned["loss"] > 0
    assert [t.id for t in result.trials] == ["role=chief&index=0"]


def test_collective_all_reduce_workers_cooperate(hops_home):
    result = experiment.collective_all_reduce(all_reduce_train, num_workers=2)
    by = {t.id: t for t in result.trials}
    assert set(by) == {"role=worker&index=0", "role=worker&index=1"}
    assert all(t.status == "FINISHED" for t in by.values())
    # Different data on each worker, yet one model: the all-reduced weights are identical.
    assert (
        by["role=worker&index=0"].returned["weights"]
        == by["role=worker&index=1"].returned["weights"]
    )
    logdir, chief = result  # unpacks like launch: the chief's return dict
    assert chief == by["role=worker&index=0"].returned and logdir == result.path
    exp = hops_home / "Projects" / "demo" / "Experiments" / result.id
    for trial in by:  # both workers ran and reported their steps
        assert len((exp / trial / "metrics.jsonl").read_text().splitlines()) == 3
    assert result.record.best_trial == "role=worker&index=0"  # worker 0 is the chief


def test_parameter_server_holds_the_variables(hops_home):
    result = experiment.parameter_server(ps_train, num_ps=1, num_workers=2)
    by = {t.id: t for t in result.trials}
    assert set(by) == {
        "role=chief&index=0",
        "role=worker&index=0",
        "role=worker&index=1",
        "role=ps&index=0",
    }
    chief = by["role=chief&index=0"].returned
    assert chief["devices"] and all(d.startswith("/job:ps/") for d in chief["devices"])
    assert all(t.status == "FINISHED" for t in by.values())
    assert result.record.search_space == {"cluster": {"chief": 1, "worker": 2, "ps": 1}}


def crashing_train():
    import json
    import os
    import time

    import tensorflow as tf

    if json.loads(os.environ["TF_CONFIG"])["task"]["index"] == 1:
        raise RuntimeError("worker 1 ran out of data")
    tf.distribute.MultiWorkerMirroredStrategy()  # waits for worker 1, which never comes
    time.sleep(300)


def _workers_alive() -> list[int]:
    """This test process's worker processes (other runs on the machine have their own)."""
    import psutil

    alive = []
    for p in psutil.Process().children(recursive=True):
        try:
            if p.status() != psutil.STATUS_ZOMBIE and "engines.worker" in " ".join(p.cmdline()):
                alive.append(p.pid)
        except psutil.Error:  # ended meanwhile
            continue
    return alive


def test_a_crashing_worker_ends_the_run(hops_home):
    before = set(_workers_alive())
    start = time.monotonic()
    with pytest.raises(ExperimentFailed, match="role=worker&index=1 failed") as err:
        experiment.collective_all_reduce(crashing_train, num_workers=2)
    assert time.monotonic() - start < 30
    assert "RuntimeError: worker 1 ran out of data" in str(err.value)
    by = {t.id: t for t in err.value.result.trials}
    assert by["role=worker&index=1"].status == "FAILED"
    assert by["role=worker&index=0"].status == "KILLED"
    assert err.value.result.status == "FAILED"
    assert set(_workers_alive()) <= before  # no process left behind
    cluster = by["role=worker&index=0"].params["tf_config"]["cluster"]
    for address in cluster["worker"]:  # and no port: nothing listens on the cluster's addresses
        host, port = address.rsplit(":", 1)
        with socket.socket() as sock:
            assert sock.connect_ex((host, int(port))) != 0, f"{address}: {_listener(int(port))}"


def _listener(port: int) -> str:
    """Who listens on a port (to tell a process of the run from a stranger that took it)."""
    import psutil

    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port:
            try:
                proc = psutil.Process(conn.pid)
                return f"pid {conn.pid} {' '.join(proc.cmdline())[:300]} (parent {proc.ppid()})"
            except (psutil.Error, TypeError, ValueError):
                return f"pid {conn.pid}"
    return "no listener found"


def outside_scope_train():
    import numpy as np
    import tensorflow as tf

    tf.distribute.MultiWorkerMirroredStrategy()
    model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(1)])  # not in scope
    model.compile(optimizer="sgd", loss="mse")
    x = np.ones((16, 4), "float32")
    model.fit(x, x.sum(1, keepdims=True), epochs=1, verbose=0)


def test_bad_input(hops_home):
    with pytest.raises(ValueError, match="num_workers must be an integer >= 1, got 0"):
        experiment.collective_all_reduce(all_reduce_train, num_workers=0)
    with pytest.raises(ValueError, match="num_ps must be an integer >= 1, got -1"):
        experiment.parameter_server(ps_train, num_ps=-1)
    with pytest.raises(TypeError, match="must be callable"):
        experiment.mirrored("train")
    with pytest.raises(ExperimentFailed) as err:
        experiment.collective_all_reduce(outside_scope_train, num_workers=2)
    assert StrategyScopeError.__name__ in str(err.value)
    assert "with strategy.scope():" in str(err.value)


def test_defaults_agree_with_util(hops_home, monkeypatch):
    monkeypatch.setenv("HOPS_WORKERS", "2")
    monkeypatch.setenv("NUM_TF_PS", "1")
    assert util.num_executors() == 2 and util.num_param_servers() == 1
    result = experiment.parameter_server(ps_train)
    cluster = result.record.search_space["cluster"]
    assert cluster == {"chief": 1, "worker": util.num_executors(), "ps": util.num_param_servers()}


# --- on Spark (local[2]): workers are one barrier stage ------------------------------------


@pytest.mark.spark
def test_collective_all_reduce_on_spark(spark, hops_home):
    result = experiment.collective_all_reduce(spark, all_reduce_train, num_workers=2)  # seed's form
    by = {t.id: t for t in result.trials}
    assert result.record.engine == "spark" and all(t.status == "FINISHED" for t in by.values())
    assert (
        by["role=worker&index=0"].returned["weights"]
        == by["role=worker&index=1"].returned["weights"]
    )


@pytest.mark.spark
def test_parameter_server_on_spark(spark, hops_home):
    result = experiment.parameter_server(ps_train, num_ps=1, num_workers=2, spark=spark)
    assert result.record.engine == "spark"
    assert all(d.startswith("/job:ps/") for d in result.return_dict["devices"])
    assert {t.status for t in result.trials} == {"FINISHED"}


@pytest.mark.spark
def test_crash_on_spark_ends_the_run(spark, hops_home):
    start = time.monotonic()
    with pytest.raises(ExperimentFailed, match="role=worker&index=1 failed") as err:
        experiment.collective_all_reduce(crashing_train, num_workers=2, spark=spark)
    assert time.monotonic() - start < 30
    assert "worker 1 ran out of data" in str(err.value)
    with pytest.raises(ValueError, match="needs 3 task slots; the SparkSession has 2"):
        experiment.collective_all_reduce(all_reduce_train, num_workers=3, spark=spark)
