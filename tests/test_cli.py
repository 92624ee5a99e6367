"""The `hops-jupyter` command that `make run` starts: a real JupyterLab on loopback."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from hops_jupyter import cli
from tests.conftest import free_port, require_system

QUICKSTART = Path(__file__).resolve().parent.parent / "notebooks" / "quickstart.ipynb"


def test_info_and_init(capsys, hops_home):
    assert cli.main(["init"]) == 0
    assert (hops_home / "Projects" / "demo" / "Experiments").is_dir()
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "project:      demo" in out and f"file://{hops_home}" in out


def test_bad_configuration_is_one_clear_line(capsys, monkeypatch):
    monkeypatch.setenv("HOPS_ROOT", "ftp://x")
    assert cli.main(["info"]) == 2
    assert "Unknown filesystem scheme 'ftp'" in capsys.readouterr().err


def test_lab_answers_on_loopback(tmp_path, hops_home):
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "hops_jupyter.cli", "lab", "--port", str(port),
         "--notebook-dir", str(tmp_path / "nb")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api", timeout=2) as resp:
                    assert "version" in json.loads(resp.read())
                    break
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()
                assert time.monotonic() < deadline, "JupyterLab did not answer in 90 s"
                time.sleep(0.5)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab", timeout=5) as resp:
            assert resp.status == 200
        assert (hops_home / "Projects" / "demo" / "Resources").is_dir()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def _lab(tmp_path, env: dict[str, str]) -> tuple[subprocess.Popen, int, list[str]]:
    """`hops-jupyter lab` as `make run` starts it, on a copy of notebooks/; the lines it printed
    up to the ready URL."""
    port = free_port()
    nb = tmp_path / "nb"
    nb.mkdir()
    (nb / "quickstart.ipynb").write_text(QUICKSTART.read_text())
    proc = subprocess.Popen(
        [sys.executable, "-m", "hops_jupyter.cli", "lab", "--port", str(port), "--notebook-dir",
         str(nb), "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )  # fmt: skip
    lines: list[str] = []
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        assert line, f"exited early: {''.join(lines)}"
        lines.append(line)
        if "JupyterLab is ready at" in line:
            return proc, port, lines
    raise AssertionError(f"no ready line in 120 s: {''.join(lines)}")


def _stop(proc: subprocess.Popen) -> str:
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    out, _ = proc.communicate(timeout=60)
    return out


def test_make_run_lands_on_quickstart_and_degrades_without_stunnel(tmp_path, hops_home):
    """No stunnel on PATH: one warning naming the package, JupyterLab still starts, the printed
    URL (with its token, printed only once the server answers) opens the quickstart notebook."""
    bare = tmp_path / "bin"
    bare.mkdir()
    opener = bare / "browser"  # what a desktop's browser would get ($BROWSER, Python's webbrowser)
    opener.write_text(f'#!/bin/sh\necho "$1" > {tmp_path / "opened"}\n')
    opener.chmod(0o755)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{bare}",
           "DISPLAY": ":0", "BROWSER": f"{opener} %s"}  # fmt: skip
    proc, port, lines = _lab(tmp_path, env)
    try:
        warnings = [line for line in lines if "warning" in line.lower()]
        assert len(warnings) == 1, lines
        assert "stunnel4" in warnings[0] and "apt-get install stunnel4" in warnings[0]
        assert "JupyterLab starts without Kafka" in warnings[0]
        url = re.search(r"(http://\S+)", lines[-1]).group(1)
        assert url.startswith(f"http://127.0.0.1:{port}/lab/tree/quickstart.ipynb?token=")
        with urllib.request.urlopen(url, timeout=10) as resp:  # answers at once: it was ready
            assert resp.status == 200
        token = url.split("token=")[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/?token={token}", timeout=10) as resp:
            assert resp.url.split("?")[0].endswith("/lab/tree/quickstart.ipynb")
        opened = tmp_path / "opened"
        for _ in range(50):
            if opened.exists() and opened.read_text().strip():
                break
            time.sleep(0.1)
        assert opened.read_text().strip() == url
    finally:
        out = _stop(proc)
    assert proc.returncode == 0, out
    with socket.socket() as sock:
        assert sock.connect_ex(("127.0.0.1", port)) != 0, "JupyterLab outlived Ctrl-C"


def test_make_run_starts_the_broker_and_ctrl_c_stops_it(tmp_path, hops_home):
    require_system("stunnel4")
    from hops_jupyter.core import broker

    proc, _, lines = _lab(tmp_path, dict(os.environ))
    try:
        assert any("kafka broker at 127.0.0.1:" in line for line in lines), lines
        info = broker.status()
        assert info is not None
    finally:
        _stop(proc)
    for pid in (info.tansu_pid, info.stunnel_pid):
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    assert broker.status() is None


def test_failed_broker_start_leaves_no_process(hops_home, monkeypatch):
    from hops_jupyter.core import broker

    monkeypatch.setattr(broker.shutil, "which", lambda name: None)
    children = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(FileNotFoundError, match="apt-get install stunnel4"):
        broker.start()
    assert {p.pid for p in psutil.Process().children(recursive=True)} == children
    with pytest.raises(ConnectionError, match="stunnel is not installed"):
        from hops import kafka

        kafka.get_kafka_default_config()


def test_broker_that_dies_at_start_is_cleaned_up(hops_home, monkeypatch):
    """stunnel starts but exits at once (here: a binary that is not stunnel): tansu goes too."""
    require_system("stunnel4")
    from hops_jupyter.core import broker

    monkeypatch.setattr(broker, "stunnel_binary", lambda: "/bin/false")
    children = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(RuntimeError, match="did not start"):
        broker.start(timeout=10)
    time.sleep(0.2)
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in children]
    assert not [p for p in left if p.status() != "zombie"], left
