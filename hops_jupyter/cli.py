"""The `hops-jupyter` command: set up the project and start JupyterLab on it."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from hops_jupyter.core import hdfs, project


def _info(_: argparse.Namespace) -> int:
    cfg = project.current()
    print(f"project:      {cfg.name} (id {cfg.project_id})")
    print(f"project user: {cfg.project_user}")
    print(f"root:         {cfg.root}")
    print(f"project path: {hdfs.project_path()}")
    print(f"config file:  {project.config_file()}")
    return 0


def _init(_: argparse.Namespace) -> int:
    print(f"project ready at {hdfs.project_path()}")
    return 0


def _lab(args: argparse.Namespace) -> int:
    """Replace this process with JupyterLab on loopback, the project created first."""
    path = hdfs.project_path()
    notebook_dir = os.path.abspath(args.notebook_dir)
    os.makedirs(notebook_dir, exist_ok=True)
    print(f"hops-jupyter: project {project.current().name} at {path}", flush=True)
    # Kernels inherit this: Spark executors started from a notebook use the same interpreter.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    argv = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--ip=127.0.0.1",
        f"--port={args.port}",
        "--no-browser",
        f"--ServerApp.root_dir={notebook_dir}",
        # Containers and CI run as root; JupyterLab refuses that unless told.
        *(["--allow-root"] if os.geteuid() == 0 else []),
        *args.extra,
    ]
    os.execv(sys.executable, argv)
    return 0  # not reached


def _kafka(args: argparse.Namespace) -> int:
    """Start, stop or show the project's embedded Kafka broker."""
    from hops_jupyter.core import broker

    if args.action == "start":
        info = broker.start()
        print(f"kafka: broker for project {info.project} at {info.endpoint} (mutual TLS)")
    elif args.action == "stop":
        print("kafka: stopped" if broker.stop() else "kafka: no broker was running")
    else:
        info = broker.status()
        if info is None:
            print("kafka: not running")
            return 1
        print(f"kafka: running at {info.endpoint} (mutual TLS; tansu pid {info.tansu_pid}, "
              f"stunnel pid {info.stunnel_pid})")  # fmt: skip
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hops-jupyter` console script."""
    parser = argparse.ArgumentParser(prog="hops-jupyter", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="show the resolved project configuration").set_defaults(fn=_info)
    sub.add_parser("init", help="create the project folders").set_defaults(fn=_init)
    lab = sub.add_parser("lab", help="start JupyterLab on 127.0.0.1 for the project")
    lab.add_argument("--port", type=int, default=8888)
    lab.add_argument("--notebook-dir", default="notebooks")
    lab.add_argument("extra", nargs=argparse.REMAINDER, help="more JupyterLab options")
    lab.set_defaults(fn=_lab)
    kafka = sub.add_parser("kafka", help="the project's embedded Kafka broker")
    kafka.add_argument("action", choices=["start", "stop", "status"])
    kafka.set_defaults(fn=_kafka)
    args = parser.parse_args(argv)
    try:
        return args.fn(args)
    except (ValueError, OSError, RuntimeError) as err:
        print(f"hops-jupyter: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
