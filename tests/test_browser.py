"""The JupyterLab side panel in a real browser: Debian's Chromium driven by Playwright against a
JupyterLab this test starts on 127.0.0.1 under a non-root base_url. Screenshots of each step
are kept in test-artifacts/browser/."""

import json
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import free_port, require_system

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
BASE = "/hub/user/alice/"
TOKEN = "browser-test-token"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "browser"
CELL = """%%experiment --grid x=1,2 --workers 2 --name browser-grid
import time
import tensorflow as tf
from hops import tensorboard
writer = tf.summary.create_file_writer(tensorboard.logdir())
with writer.as_default():
    for step in range(3):
        tf.summary.scalar("loss", x * (step + 1), step=step)
writer.flush()
time.sleep(3)
x"""


@pytest.fixture
def lab(tmp_path, hops_home):
    require_system(CHROMIUM)
    root = tmp_path / "notebooks"
    root.mkdir()
    notebook = {
        "cells": [{"id": "grid", "cell_type": "code", "metadata": {}, "source": CELL, "outputs": [], "execution_count": None},
                  {"id": "board", "cell_type": "code", "metadata": {}, "source": "%tensorboard --height 500", "outputs": [], "execution_count": None}],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    }  # fmt: skip
    (root / "experiment.ipynb").write_text(json.dumps(notebook))
    port = free_port()
    log = open(tmp_path / "lab.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", f"--port={port}", "--ip=127.0.0.1", "--no-browser",
         f"--ServerApp.base_url={BASE}", f"--IdentityProvider.token={TOKEN}", f"--ServerApp.root_dir={root}",
         "--allow-root", "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HOPS_TENSORBOARD": "false"},
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}{BASE}"
    deadline = time.monotonic() + 90
    while True:
        try:
            urllib.request.urlopen(f"{url}api/status?token={TOKEN}", timeout=2)
            break
        except OSError:
            assert proc.poll() is None and time.monotonic() < deadline, (
                tmp_path / "lab.log"
            ).read_text()
            time.sleep(0.5)
    yield url, proc
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def test_panel_experiment_tensorboard_and_running(lab):
    from playwright.sync_api import expect, sync_playwright

    lab, server = lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shots = iter(range(1, 100))

    def shot(page, name):
        page.screenshot(path=str(ARTIFACTS / f"{next(shots):02d}-{name}.png"))

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--disable-sync", "--disable-dev-shm-usage"],
        )  # fmt: skip
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        loads = []
        page.on("load", lambda _: loads.append(time.monotonic()))
        try:
            page.goto(f"{lab}lab/tree/experiment.ipynb?token={TOKEN}")
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell .cm-content", timeout=90_000)
            expect(
                page.locator(".jp-Notebook-ExecutionIndicator, .jp-Toolbar-kernelStatus").first
            ).to_be_visible(timeout=60_000)

            # 1. Open the Experiments panel from the left side bar.
            page.locator('.jp-SideBar [data-id="hops-experiments-panel"]').click()
            panel = page.locator("#hops-experiments-panel")
            expect(panel).to_be_visible()
            expect(panel.get_by_text("No experiments yet")).to_be_visible(timeout=20_000)
            shot(page, "panel-open")

            # 2. Run the %%experiment --grid cell; the row goes RUNNING -> FINISHED, no reload.
            # Run it only once the kernel is idle: on a loaded machine a key pressed while the
            # kernel still connects moves the selection without running the cell.
            expect(page.get_by_text(re.compile(r"\| Idle")).first).to_be_visible(timeout=120_000)
            loads_before = len(loads)
            page.locator(".jp-Cell .cm-content").first.click()
            page.keyboard.press("Shift+Enter")
            row = panel.locator(".hops-Experiment").first
            expect(row).to_have_attribute("data-status", "RUNNING", timeout=120_000)
            expect(row).to_contain_text("browser-grid")
            shot(page, "experiment-running")
            expect(row).to_have_attribute("data-status", "FINISHED", timeout=180_000)
            expect(row).to_contain_text("2/2 trials")
            row.locator(".hops-Experiment-title").click()
            expect(row.locator(".hops-Trial")).to_have_count(2, timeout=20_000)
            expect(row.locator('.hops-Trial[data-status="FINISHED"]')).to_have_count(2)
            assert len(loads) == loads_before, "the page reloaded"
            shot(page, "experiment-finished")

            # 3. Open its TensorBoard in a main-area tab: the trial runs are listed there.
            row.locator(".hops-open-tensorboard").click()
            frame = page.frame_locator(".hops-TensorBoardFrame iframe")
            expect(frame.get_by_text("x=1", exact=True).first).to_be_visible(timeout=120_000)
            expect(frame.get_by_text("x=2", exact=True).first).to_be_visible()
            shot(page, "tensorboard-tab")

            # 4. The Running panel lists it; stopping it removes it.
            page.locator('.jp-SideBar [data-id="jp-running-sessions"]').click()
            running = page.locator(".hops-RunningTensorBoard")
            expect(running).to_have_count(1, timeout=30_000)
            shot(page, "running-panel")
            page.locator('.jp-SideBar [data-id="hops-experiments-panel"]').click()
            stop = panel.locator(".hops-Experiment").first.locator(".hops-stop-tensorboard")
            expect(stop).to_be_enabled(timeout=20_000)
            stop.click()
            expect(stop).to_be_disabled(timeout=20_000)
            page.locator('.jp-SideBar [data-id="jp-running-sessions"]').click()
            expect(running).to_have_count(0, timeout=30_000)
            shot(page, "tensorboard-stopped")
            assert len(loads) == loads_before

            # 5. %tensorboard output renders inline through the labextension's MIME renderer.
            page.get_by_role("tab", name="experiment.ipynb").click()
            page.locator(".jp-Cell").nth(1).locator(".cm-content").click()
            page.keyboard.press("Shift+Enter")
            inline = page.frame_locator(".hops-TensorBoardOutput iframe")
            expect(inline.get_by_text("x=2", exact=True).first).to_be_visible(timeout=120_000)
            shot(page, "inline-tensorboard")

            # 6. When the server cannot be reached, the panel says so (nothing is swallowed).
            page.locator('.jp-SideBar [data-id="hops-experiments-panel"]').click()
            server.terminate()
            server.wait(timeout=30)
            expect(panel.locator(".hops-ExperimentsPanel-error")).to_contain_text(
                "Could not reach the experiments API", timeout=30_000
            )
            shot(page, "server-error")
        except Exception:
            shot(page, "failure")
            raise
        finally:
            browser.close()


def test_extensions_enabled_and_ok():
    """What `make run`'s install leaves: both extensions listed as enabled and OK."""
    bin_dir = Path(sys.executable).parent
    labext = subprocess.run(
        [str(bin_dir / "jupyter"), "labextension", "list"], capture_output=True, text=True
    )
    listed = labext.stdout + labext.stderr
    assert (
        "hops-jupyter v0.1.0" in listed
        and "enabled" in listed
        and "OK" in listed.split("hops-jupyter v0.1.0", 1)[1].splitlines()[0]
    )
    server = subprocess.run(
        [str(bin_dir / "jupyter"), "server", "extension", "list"], capture_output=True, text=True
    )
    listed = server.stdout + server.stderr
    assert "hops_jupyter \x1b[32menabled" in listed or "hops_jupyter enabled" in listed
    assert "hops_jupyter 0.1.0 \x1b[32mOK" in listed or "hops_jupyter 0.1.0 OK" in listed
