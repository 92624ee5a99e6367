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
    "HOPS_THREADS_PER_TRIAL",
    "HOPS_TENSORBOARD",
    "HOPS_TENSORBOARD_IDLE_TIMEOUT",
    "HOPS_TENSORBOARD_MAX",
    "HOPS_TENSORBOARD_ENDED_IDLE_S",
    "JUPYTER_RUNTIME_DIR",
    "HOPS_SERVER_BASE_URL",  # a server extension started in this process exports it
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


# The server extension's tests (pytest-jupyter's jp_fetch) run it under a non-root base_url.
SERVER_BASE = "/hub/user/alice/"


@pytest.fixture
def jp_base_url():
    return SERVER_BASE


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"hops_jupyter": True}}}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


# What each system tool is for, and the Debian package that brings it.
SYSTEM_TOOLS = {
    "java": ("openjdk-17-jre-headless", "PySpark"),
    "keytool": ("openjdk-17-jre-headless", "Java key stores"),
    "stunnel4": ("stunnel4", "the embedded Kafka broker's TLS"),
    "/usr/bin/chromium": ("chromium", "the browser tests"),
}
_missing_system: dict[str, list[str]] = {}


def require_system(*tools: str) -> None:
    """Fail in CI, else skip (and list at the end of the run), when a system tool is missing."""
    missing = [
        t for t in tools if not (os.path.exists(t) if t.startswith("/") else shutil.which(t))
    ]
    if not missing:
        return
    packages = sorted({SYSTEM_TOOLS[t][0] for t in missing})
    why = ", ".join(f"{t} ({SYSTEM_TOOLS[t][1]})" for t in missing)
    if in_ci():
        pytest.fail(f"missing {why}: scripts/system-deps test installs {' '.join(packages)}")
    for package in packages:
        _missing_system.setdefault(package, []).append(os.environ.get("PYTEST_CURRENT_TEST", "?"))
    pytest.skip(f"missing system package {' '.join(packages)}: {why}")


def pytest_terminal_summary(terminalreporter) -> None:
    """Name the tests that did not run for a missing system package, and the command to fix it."""
    if not _missing_system:
        return
    write = terminalreporter.write_line
    terminalreporter.section("skipped for missing system packages", sep="=", yellow=True)
    for package, tests in sorted(_missing_system.items()):
        write(f"{package}: {len(tests)} test(s) skipped, e.g. {tests[0].split(' ')[0]}")
    packages = " ".join(sorted(_missing_system))
    write(f"install them with: sudo apt-get install -y --no-install-recommends {packages}")
    write("(or run scripts/system-deps test as root); with CI=true these tests fail instead")


@pytest.fixture(scope="session")
def spark():
    """One PySpark local[2] session for the whole run (JVM start-up is the slow part)."""
    require_system("java")
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
