"""A Spark standalone cluster on loopback, started from the pyspark package: a Master and
one-core Workers. Used by the cluster tests and by benchmarks/engines.py."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import psutil


def spark_home() -> str:
    import pyspark

    return os.path.dirname(pyspark.__file__)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _spark_class(*args: str, log: Path, env: dict[str, str]) -> subprocess.Popen:
    script = os.path.join(spark_home(), "bin", "spark-class")
    return subprocess.Popen([script, *args], stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            env=env, start_new_session=True)  # fmt: skip


def alive_workers(webui: int) -> int:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{webui}/json/", timeout=2) as resp:
            return int(json.loads(resp.read()).get("aliveworkers", 0))
    except (OSError, ValueError):
        return 0


def stop(proc: subprocess.Popen) -> None:
    """Kill a Master or Worker and everything it started (executor JVMs, Python workers)."""
    try:
        for child in psutil.Process(proc.pid).children(recursive=True):
            child.kill()
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, psutil.Error):
        pass
    proc.wait()


@dataclass
class Cluster:
    url: str
    master: subprocess.Popen
    workers: list[subprocess.Popen]
    webui: int

    def stop(self) -> None:
        for proc in (*self.workers, self.master):
            stop(proc)


def start(base: Path, workers: int = 2, timeout: float = 90) -> Cluster:
    """Start a Master and `workers` one-core Workers; logs go to `base`. Raises RuntimeError
    with the logs when they do not come up in time."""
    env = {**os.environ, "SPARK_HOME": spark_home(), "SPARK_LOCAL_IP": "127.0.0.1",
           "PYSPARK_PYTHON": sys.executable, "SPARK_LOG_DIR": str(base)}  # fmt: skip
    port, webui = _free_port(), _free_port()
    master = _spark_class("org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                          "--port", str(port), "--webui-port", str(webui),
                          log=base / "master.log", env=env)  # fmt: skip
    url = f"spark://127.0.0.1:{port}"
    procs = [
        _spark_class(
            "org.apache.spark.deploy.worker.Worker",
            "--cores",
            "1",
            "--memory",
            "1g",
            "--host",
            "127.0.0.1",
            "--webui-port",
            str(_free_port()),
            "--work-dir",
            str(base / f"work{i}"),
            url,
            log=base / f"worker{i}.log",
            env=env,
        )  # fmt: skip
        for i in range(workers)
    ]
    cluster = Cluster(url, master, procs, webui)
    deadline = time.monotonic() + timeout
    while alive_workers(webui) < workers:
        if time.monotonic() > deadline:
            logs = "\n".join(p.read_text()[-1500:] for p in base.glob("*.log"))
            cluster.stop()
            raise RuntimeError(f"the standalone cluster did not come up:\n{logs}")
        time.sleep(0.5)
    return cluster
