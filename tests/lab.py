"""A real JupyterLab for the browser tests and benchmarks: on 127.0.0.1 under a non-root
base_url, token-authenticated, with its own settings and workspaces (no theme or layout of the
user's, no news prompt over screenshots), stopped on the way out."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class Lab:
    """A running JupyterLab: its URL (ending in the base URL) and its process."""

    url: str
    proc: subprocess.Popen


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def running_lab(
    folder: Path, root: Path, base: str, token: str, env: dict[str, str] | None = None
) -> Iterator[Lab]:
    """JupyterLab serving `root`, its settings, workspaces and log in `folder`; no TensorBoard
    per experiment unless `env` says so."""
    settings = folder / "lab-settings"
    news = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True, exist_ok=True)
    news.write_text(json.dumps({"fetchNews": "false"}))
    env = {**os.environ, "HOPS_TENSORBOARD": "false", "JUPYTERLAB_SETTINGS_DIR": str(settings),
           "JUPYTERLAB_WORKSPACES_DIR": str(folder / "lab-workspaces"), **(env or {})}  # fmt: skip
    port = _free_port()
    with open(folder / "lab.log", "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterlab", f"--port={port}", "--ip=127.0.0.1", "--no-browser",
             f"--ServerApp.base_url={base}", f"--IdentityProvider.token={token}",
             f"--ServerApp.root_dir={root}", "--allow-root", "--LabApp.news_url=",
             "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}{base}"
            deadline = time.monotonic() + 120
            while True:
                try:
                    urllib.request.urlopen(f"{url}api/status?token={token}", timeout=2)
                    break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError((folder / "lab.log").read_text()[-3000:]) from None
                    time.sleep(0.5)
            yield Lab(url, proc)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


CHROMIUM = "/usr/bin/chromium"  # Debian's: browsers are never downloaded


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium, headless, as a container runs it (no sandbox, no GPU, no /dev/shm)
    and quiet (no first-run, sync or update traffic)."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    )  # fmt: skip
