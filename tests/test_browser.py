"""The JupyterLab side panel in a real browser: Debian's Chromium driven by Playwright against a
JupyterLab this test starts on 127.0.0.1 under a non-root base_url, with real kernels.
Screenshots of each step are kept in test-artifacts/browser/ under stable names (the README
shows panel.png and widget.png)."""

import json
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import require_system
from tests.lab import CHROMIUM, launch_chromium, running_lab

pytestmark = pytest.mark.browser


BASE = "/hub/user/alice/"
TOKEN = "browser-test-token"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "browser"
TB_MIME = "application/vnd.hops.tensorboard+json"

# A scikit-learn grid: one trial fails, every trial prints, reports (with a loss) per step.
SKLEARN_CELL = """%%experiment --grid C=0.1,1,-1 --workers 2 --name browser-sklearn -o sk
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from hops import experiment
print(f"training with C={C}", flush=True)
if C < 0:
    raise ValueError(f"C must be positive, got {C}")
X, y = load_iris(return_X_y=True)
for step in range(1, 4):
    acc = LogisticRegression(C=C, max_iter=10 * step).fit(X, y).score(X, y)
    experiment.report(acc, step=step, loss=1 - acc)
acc"""
# A grid far too long to wait for: the panel stops it.
LONG_CELL = """%%experiment --grid i=1,2,3,4 --workers 1 --name browser-long
import time
print(f"sleeping in trial {i}", flush=True)
time.sleep(120)
i"""
BOARD_CELL = "%tensorboard {sk.id} --height 500"


def _notebook(cells: list[tuple[str, str]], outputs: dict[str, list] | None = None) -> str:
    outputs = outputs or {}
    return json.dumps({
        "cells": [{"id": cid, "cell_type": "code", "metadata": {}, "source": source,
                   "outputs": outputs.get(cid, []), "execution_count": None} for cid, source in cells],
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4, "nbformat_minor": 5,
    })  # fmt: skip


@pytest.fixture
def lab(tmp_path, hops_home):
    require_system(CHROMIUM)
    root = tmp_path / "notebooks"
    root.mkdir()
    (root / "experiment.ipynb").write_text(
        _notebook([("sklearn", SKLEARN_CELL), ("long", LONG_CELL), ("board", BOARD_CELL)])
    )
    with running_lab(tmp_path, root, BASE, TOKEN) as lab:
        yield lab.url, lab.proc, root


def _api(lab_url: str, path: str, method: str = "GET"):
    request = urllib.request.Request(
        f"{lab_url}hops/{path}", method=method, headers={"Authorization": f"token {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


def test_panel_experiments_logs_stop_and_tensorboards(lab):
    from playwright.sync_api import expect, sync_playwright

    lab, server, root = lab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    def shot(page, name, element=None):
        (element or page).screenshot(path=str(ARTIFACTS / f"{name}.png"))

    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1500, "height": 950})
        loads = []
        page.on("load", lambda _: loads.append(time.monotonic()))
        panel = page.locator("#hops-experiments-panel")
        cells = page.locator(".jp-NotebookPanel:visible .jp-Cell")

        def show_panel():
            if not panel.is_visible():
                page.locator('.jp-SideBar [data-id="hops-experiments-panel"]').click()
            expect(panel).to_be_visible()

        def widen_side_panel(to=340):
            # As a user would for a closer look (the default is 250 px): drag the splitter.
            handle = page.locator(
                "#jp-main-split-panel > .lm-SplitPanel-handle"
            ).first.bounding_box()
            y = handle["y"] + 300
            page.mouse.move(handle["x"], y)
            page.mouse.down()
            page.mouse.move(handle["x"] + to - 250, y, steps=4)
            page.mouse.up()

        def show_notebook():
            page.get_by_role("tab", name="experiment.ipynb").click()

        def run_cell(index):
            show_notebook()
            # Only once the kernel is idle: on a loaded machine a key pressed while the kernel
            # still connects moves the selection without running the cell.
            expect(page.get_by_text(re.compile(r"\| Idle")).first).to_be_visible(timeout=120_000)
            cells.nth(index).locator(".cm-content").click()
            page.keyboard.press("Shift+Enter")

        def row(name):
            return panel.locator(".hops-Experiment", has_text=name)

        def row_action(experiment_row, action):
            # TensorBoard and copy actions show while the row is hovered, as for a user.
            experiment_row.locator(".hops-Experiment-row").hover()
            return experiment_row.locator(action)

        try:
            page.goto(f"{lab}lab/tree/experiment.ipynb?token={TOKEN}")
            page.wait_for_selector(".jp-NotebookPanel .jp-Cell .cm-content", timeout=90_000)

            # 1. The Experiments panel, from the left side bar.
            show_panel()
            expect(panel.get_by_text("No experiments yet")).to_be_visible(timeout=20_000)
            widen_side_panel()

            # 2. A scikit-learn grid: its row goes RUNNING -> FINISHED without a reload; the
            # failing trial's message is in the cell's widget without hovering anything.
            loads_before = len(loads)
            run_cell(0)
            sk = row("browser-sklearn")
            expect(sk).to_have_attribute("data-status", "RUNNING", timeout=120_000)
            expect(sk).to_have_attribute("data-status", "FINISHED", timeout=180_000)
            output = cells.nth(0).locator(".jp-OutputArea")
            expect(
                output.get_by_text(re.compile("C must be positive, got -1")).first
            ).to_be_visible(timeout=30_000)
            cells.nth(0).locator(".jp-InputArea").scroll_into_view_if_needed()
            shot(page, "widget", page.locator(".jp-NotebookPanel:visible"))

            # 3. Expanded: its trials, the failure inline (type: message), no metric for it.
            sk.locator(".hops-Experiment-title").click()
            expect(sk.locator(".hops-Trial")).to_have_count(3, timeout=20_000)
            expect(sk).to_contain_text("3/3 trials")
            failed = sk.locator('.hops-Trial[data-status="FAILED"]')
            expect(failed.locator(".hops-Trial-errorMessage")).to_have_text(
                "ValueError: C must be positive, got -1"
            )
            expect(failed.locator(".hops-Trial-metric")).to_have_count(0)
            expect(
                sk.locator('.hops-Trial[data-status="FINISHED"] .hops-Trial-metric')
            ).to_have_count(2)
            assert len(loads) == loads_before, "the page reloaded"
            expect(row_action(sk, ".hops-stop-tensorboard")).to_be_disabled()
            row_action(sk, ".hops-copy-path").click()
            expect(sk.locator(".hops-CopyButton-feedback")).to_have_text("Copied")

            # 4. A trial's output in a log tab.
            sk.locator('.hops-Trial[data-trial-id="C=1"] .hops-open-log').click()
            log = page.locator(".hops-LogView:visible")
            expect(log.locator(".hops-LogView-text")).to_contain_text(
                "training with C=1", timeout=20_000
            )

            # 5. A long grid: its running trial's output is followed live.
            run_cell(1)
            long = row("browser-long")
            expect(long).to_have_attribute("data-status", "RUNNING", timeout=120_000)
            long.locator(".hops-Experiment-title").click()
            running_trial = long.locator('.hops-Trial[data-status="RUNNING"]').first
            expect(running_trial).to_be_visible(timeout=60_000)
            running_trial.locator(".hops-open-log").click()
            log = page.locator(".hops-LogView:visible")
            expect(log.locator(".hops-LogView-text")).to_contain_text(
                "sleeping in trial", timeout=30_000
            )
            expect(log.locator(".hops-LogView-state")).to_have_text("live")
            shot(page, "log")

            # 6. Refreshes (1 s while something runs) keep the search box's focus and text.
            search = panel.locator(".hops-ExperimentsPanel-search")
            search.click()
            page.keyboard.type("long")
            page.wait_for_timeout(4500)
            assert page.evaluate(
                "document.activeElement?.classList.contains('hops-ExperimentsPanel-search')"
            ), "the search box lost the focus"
            expect(search).to_have_value("long")
            expect(panel.locator(".hops-Experiment")).to_have_count(1)
            expect(panel.locator(".hops-ExperimentsPanel-count")).to_have_text("1 of 2")
            search.fill("")
            panel.locator(".hops-ExperimentsPanel-status select").select_option("FINISHED")
            expect(panel.locator(".hops-Experiment")).to_have_count(1)
            expect(row("browser-sklearn")).to_have_count(1)
            panel.locator(".hops-ExperimentsPanel-status select").select_option("")
            expect(panel.locator(".hops-Experiment")).to_have_count(2)

            # 7. Stop the notebook's experiment from the panel: KILLED within seconds, the
            # trials not started listed as PENDING, and the cell ends.
            long.locator(".hops-stop-experiment").click()
            page.locator(".jp-Dialog").get_by_role("button", name="Stop", exact=True).click()
            expect(long).to_have_attribute("data-status", "KILLED", timeout=15_000)
            expect(long.locator(".hops-stop-experiment")).to_have_count(0)
            expect(long.locator('.hops-Trial[data-status="KILLED"]')).to_have_count(
                1, timeout=10_000
            )
            expect(long.locator('.hops-Trial[data-status="PENDING"]').first).to_be_visible()
            expect(
                long.locator('.hops-Trial[data-status="KILLED"] .hops-Trial-metric')
            ).to_have_count(0)
            show_notebook()
            expect(cells.nth(1).locator(".jp-InputPrompt")).not_to_contain_text("*", timeout=30_000)
            page.mouse.move(900, 600)  # no row hovered in the picture
            shot(page, "panel")
            long.locator(".hops-Experiment-title").click()  # collapse

            # 8. The scikit-learn experiment's TensorBoard in a tab named after it: its runs,
            # the reported loss as scalars, and its hyperparameters in HParams.
            row_action(sk, ".hops-open-tensorboard").click()
            expect(
                page.locator(".lm-TabBar-tab", has_text="TensorBoard: browser-sklearn")
            ).to_be_visible(timeout=60_000)
            frame = page.frame_locator(".hops-TensorBoardFrame:visible iframe")
            expect(frame.get_by_text("C=1", exact=True).first).to_be_visible(timeout=120_000)
            expect(frame.get_by_text("loss", exact=True).first).to_be_visible(timeout=30_000)
            expect(frame.get_by_text(re.compile(r"^\s*hparams\s*$", re.I)).first).to_be_visible()
            shot(page, "tensorboard")

            # 9. The Running panel lists it by name; the panel's button stops it.
            page.locator('.jp-SideBar [data-id="jp-running-sessions"]').click()
            running = page.locator(".hops-RunningTensorBoard")
            expect(running).to_have_count(1, timeout=30_000)
            expect(running).to_contain_text("browser-sklearn")
            shot(page, "running")
            show_panel()
            stop_tb = sk.locator(".hops-stop-tensorboard")
            expect(stop_tb).to_be_enabled(timeout=20_000)
            row_action(sk, ".hops-stop-tensorboard").click()
            expect(stop_tb).to_be_disabled(timeout=20_000)
            page.locator('.jp-SideBar [data-id="jp-running-sessions"]').click()
            expect(running).to_have_count(0, timeout=30_000)
            assert len(loads) == loads_before, "the page reloaded"

            # 10. %tensorboard run now: the kernel started it, so the frame shows at once.
            run_cell(2)
            inline = cells.nth(2).locator(".hops-TensorBoardOutput")
            expect(inline.locator("iframe")).to_have_count(1, timeout=60_000)
            expect(inline.locator(".hops-show-tensorboard")).to_have_count(0)
            expect(
                cells.nth(2)
                .frame_locator(".hops-TensorBoardOutput iframe")
                .get_by_text("C=1", exact=True)
                .first
            ).to_be_visible(timeout=120_000)
            shot(page, "inline-tensorboard")

            # 11. A reopened notebook with that output saved starts no TensorBoard until asked.
            sk_id = next(
                e["id"] for e in _api(lab, "api/experiments") if e["name"] == "browser-sklearn"
            )
            saved = {"output_type": "display_data", "metadata": {}, "data": {
                TB_MIME: {"experiment_id": sk_id, "path": f"hops/tensorboard/{sk_id}/", "height": 400},
                "text/plain": f"TensorBoard of {sk_id}"}}  # fmt: skip
            (root / "saved.ipynb").write_text(
                _notebook([("board", BOARD_CELL)], {"board": [saved]})
            )
            _api(lab, f"api/tensorboards/{sk_id}", method="DELETE")
            assert _api(lab, "api/tensorboards") == []
            page.goto(f"{lab}lab/tree/saved.ipynb?token={TOKEN}")
            placeholder = page.locator(".jp-NotebookPanel:visible .hops-show-tensorboard")
            expect(placeholder).to_be_visible(timeout=90_000)
            page.wait_for_timeout(3000)
            assert _api(lab, "api/tensorboards") == [], "a saved output started TensorBoard"
            expect(
                page.locator(".jp-NotebookPanel:visible .hops-TensorBoardOutput iframe")
            ).to_have_count(0)
            shot(page, "tensorboard-placeholder")
            placeholder.click()
            reopened = page.frame_locator(
                ".jp-NotebookPanel:visible .hops-TensorBoardOutput iframe"
            )
            expect(reopened.get_by_text("C=1", exact=True).first).to_be_visible(timeout=120_000)
            assert [tb["experiment_id"] for tb in _api(lab, "api/tensorboards")] == [sk_id]

            # 12. When the server cannot be reached, the panel says so (nothing is swallowed).
            show_panel()
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
