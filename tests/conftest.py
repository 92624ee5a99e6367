"""Shared fixtures: every test gets its own HOPS_HOME and working directory, and no Hopsworks
environment leaks in from the machine."""

from __future__ import annotations

import os
import shutil
import socket

import pytest

pytest_plugins = ["pytest_jupyter.jupyter_server"]

HOPS_ENV = (
    "HOPSWORKS_PROJECT_NAME",
    "HOPSWORKS_PROJECT_ID",
    "HADOOP_USER_NAME",
    "HDFS_USER",
    "HADOOP_CONF_DIR",
    "EXECUTOR_GPUS",
    "NUM_TF_PS",
    "KAFKA_BROKERS",
    "MATERIAL_DIRECTORY",
    "HOPS_ROOT",
    "HOPS_CONFIG",
    "HOPS_WORKERS",
    "HOPS_TENSORBOARD",
    "HOPS_TENSORBOARD_IDLE_TIMEOUT",
    "JUPYTER_RUNTIME_DIR",
)


@pytest.fixture(autouse=True)
def hops_home(tmp_path, monkeypatch):
    """A fresh embedded project root for each test."""
    home = tmp_path / "hops"
    monkeypatch.setenv("HOPS_HOME", str(home))
    for name in HOPS_ENV:
        monkeypatch.delenv(name, raising=False)
    # Experiments start a TensorBoard each; tests of TensorBoard turn it back on.
    monkeypatch.setenv("HOPS_TENSORBOARD", "false")
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "runtime"))
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return home


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def spark():
    """One PySpark local[2] session for the whole run (JVM start-up is the slow part)."""
    if shutil.which("java") is None:
        if in_ci():
            pytest.fail(
                "Java is missing: PySpark needs a JRE (.ci/run installs openjdk-17-jre-headless)"
            )
        pytest.skip("no Java on this machine")
    from pyspark.sql import SparkSession

    session = (
        SparkSession.builder.master("local[2]")
        .appName("hops-jupyter-tests")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
