"""The `hops-jupyter` command that `make run` starts: a real JupyterLab on loopback."""

import json
import subprocess
import sys
import time
import urllib.request

from hops_jupyter import cli
from tests.conftest import free_port


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
