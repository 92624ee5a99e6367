"""Every example notebook, executed by nbclient on a real kernel, with assertions on outputs."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def execute(name: str, workdir: Path) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    ).execute()
    return nb


def text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts.append(str(out.get("data", {}).get("text/plain", "")))
    return "".join(parts)


def mimes(cell) -> set[str]:
    return {mime for out in cell.get("outputs", []) for mime in out.get("data", {})}


def test_notebooks_folder_has_the_examples():
    assert {p.name for p in NOTEBOOKS.glob("*.ipynb")} >= {
        "quickstart.ipynb", "differential_evolution_keras.ipynb", "spark_engine.ipynb", "kafka.ipynb",
        "early_stopping.ipynb",
    }  # fmt: skip


def test_quickstart(tmp_path, hops_home):
    nb = execute("quickstart.ipynb", tmp_path)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    assert "Projects/demo/" in text(cells[0])
    assert "project:      demo" in text(cells[1])  # magics loaded with no %load_ext
    assert "breast_cancer.csv" in text(cells[2])
    assert text(cells[3]).startswith("mean radius,")
    summary = [
        o for o in cells[4].outputs if "hops-experiment" in o.get("data", {}).get("text/html", "")
    ]
    assert summary and "6/6 trials" in summary[0]["data"]["text/html"]
    assert "application/vnd.plotly.v1+json" in mimes(cells[4])
    best = text(cells[5])
    assert best.startswith("best {'C': ") and float(best.split()[-1]) > 0.9
    assert "application/vnd.hops.tensorboard+json" in mimes(cells[6])
    assert "text/html" in mimes(cells[6])


def test_differential_evolution_keras(tmp_path, hops_home):
    nb = execute("differential_evolution_keras.ipynb", tmp_path)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    assert any(
        "hops-experiment" in o.get("data", {}).get("text/html", "") for o in cells[1].outputs
    )
    best = text(cells[2])
    assert best.startswith("best {'lr': ") and float(best.split()[-1]) > 0.8
    logs = list(
        (hops_home / "Projects" / "demo" / "Experiments").glob("*/*/train/events.out.tfevents*")
    )
    assert logs  # Keras' TensorBoard callback wrote into each trial's logdir


@pytest.mark.spark
def test_spark_engine(tmp_path, hops_home):
    nb = execute("spark_engine.ipynb", tmp_path)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    assert "executors 2 best {'lr': 0.05, 'layers': 1}" in text(cells[1])
    assert "engine: spark trials: 4" in text(cells[3])


@pytest.mark.kafka
def test_kafka(tmp_path, hops_home):
    from hops_jupyter.core import broker
    from tests.conftest import require_system

    require_system("stunnel4", "keytool")
    broker.start()  # what `make run` does before JupyterLab
    try:
        nb = execute("kafka.ipynb", tmp_path)
    finally:
        broker.stop()
    cells = [c for c in nb.cells if c.cell_type == "code"]
    assert "protocol: SSL" in text(cells[0]) and "client certificate: client.pem" in text(cells[0])
    assert "received [{'sensor': 's0', 'value': 0.0}" in text(cells[2])
    assert "{'sensor': 's4', 'value': 6.0}]" in text(cells[2])


def test_early_stopping(tmp_path, hops_home):
    nb = execute("early_stopping.ipynb", tmp_path)
    cells = [c for c in nb.cells if c.cell_type == "code"]
    summary = [
        o for o in cells[1].outputs if "hops-experiment" in o.get("data", {}).get("text/html", "")
    ]
    assert summary and "16/16 trials" in summary[0]["data"]["text/html"]
    assert "EARLY_STOPPED at step" in summary[0]["data"]["text/html"]
    statuses, best = text(cells[2]).splitlines()
    assert "'EARLY_STOPPED'" in statuses and "'FINISHED'" in statuses
    assert float(best.split()[-1]) > 0.9
