"""The Spark engine on a real standalone cluster started from the pyspark package on loopback:
a Master and two one-core Workers. Executors are separate JVMs with their own Python workers,
seeing the driver only through the project filesystem and the network, as on a cluster."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests import spark_cluster
from tests.conftest import require_system

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """`spark://127.0.0.1:PORT` with two Workers of one core each; stopped afterwards."""
    require_system("java")
    try:
        running = spark_cluster.start(tmp_path_factory.mktemp("spark-cluster"))
    except RuntimeError as err:
        pytest.fail(str(err))
    yield {"url": running.url, "workers": running.workers, "webui": running.webui}
    running.stop()


DRIVER = textwrap.dedent(
    """
    import json, os, sys, time
    from pyspark.sql import SparkSession
    from hops import experiment, util

    spark = (SparkSession.builder.master(sys.argv[1]).appName("hops-cluster-test")
             .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
             .config("spark.ui.enabled", "false").config("spark.pyspark.python", sys.executable)
             .config("spark.executor.cores", "1").config("spark.executor.memory", "512m")
             .getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    deadline = time.monotonic() + 90
    while util.live_task_slots(spark) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    seconds = float(sys.argv[3])

    def trial(i):
        import os, time
        from hops import hdfs
        hdfs.log(f"trial {i} ran in pid {os.getpid()}")
        start = time.time()
        time.sleep(seconds)
        return {"metric": i, "pid": os.getpid(), "start": start, "end": time.time()}

    print("STARTED", flush=True)
    result = experiment.grid_search(trial, {"i": list(range(int(sys.argv[2])))}, engine="spark")
    print("RESULT " + json.dumps({
        "slots": util.num_executors(spark), "workers": result.record.workers,
        "driver": os.getpid(), "id": result.id, "status": result.status,
        "trials": [{"status": t.status, "returned": t.returned} for t in result.trials],
    }), flush=True)
    spark.stop()
    """
)


def _driver(tmp_path: Path, url: str, trials: int, seconds: float) -> subprocess.Popen:
    script = tmp_path / "driver.py"
    if not script.exists():
        script.write_text(DRIVER)
    env = {
        **os.environ,
        "HOPS_TENSORBOARD": "false",
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
    }  # the executors need hops-jupyter: this Python
    return subprocess.Popen([sys.executable, str(script), url, str(trials), str(seconds)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=env)  # fmt: skip


def _result(out: str) -> dict:
    line = next((x for x in out.splitlines() if x.startswith("RESULT ")), None)
    assert line is not None, out[-4000:]
    return json.loads(line[len("RESULT ") :])


def test_trials_run_two_at_once_in_executor_processes(cluster, tmp_path, hops_home):
    proc = _driver(tmp_path, cluster["url"], 4, 1.5)
    out, _ = proc.communicate(timeout=240)
    res = _result(out)
    assert res["slots"] == 2 and res["workers"] == 2  # not 1: util and the engine agree
    assert res["status"] == "FINISHED" and {t["status"] for t in res["trials"]} == {"FINISHED"}
    runs = [t["returned"] for t in res["trials"]]
    assert all(r["pid"] != res["driver"] for r in runs)  # in executors, not the driver
    spans = sorted((r["start"], r["end"]) for r in runs)
    assert any(b[0] < a[1] for a, b in zip(spans, spans[1:], strict=False))  # 2 at once
    folder = hops_home / "Projects" / "demo" / "Experiments" / res["id"]
    logs = sorted(p.read_text() for p in folder.glob("*/hdfs.log"))
    assert len(logs) == 4 and all("ran in pid" in text for text in logs)
    assert all((p / "trial.json").is_file() for p in folder.iterdir() if p.is_dir())


def test_a_worker_killed_mid_experiment_loses_no_trial(cluster, tmp_path, hops_home):
    proc = _driver(tmp_path, cluster["url"], 6, 3.0)
    exp_root = hops_home / "Projects" / "demo" / "Experiments"
    deadline = time.monotonic() + 120
    while not list(exp_root.glob("*/*/trial.json")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
        time.sleep(0.2)
    time.sleep(0.5)
    victim = cluster["workers"][1]
    spark_cluster.stop(victim)  # the Worker and its executor JVM with its Python workers
    out, _ = proc.communicate(timeout=300)
    res = _result(out)
    assert res["status"] == "FINISHED"
    assert len(res["trials"]) == 6  # every trial retried elsewhere or recorded, none lost
    assert {t["status"] for t in res["trials"]} <= {"FINISHED", "FAILED"}
    assert sum(t["status"] == "FINISHED" for t in res["trials"]) >= 5
