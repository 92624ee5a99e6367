"""The `hops-jupyter` command: set up the project and start JupyterLab on it."""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
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


LANDING_NOTEBOOK = "quickstart.ipynb"


def _lab(args: argparse.Namespace) -> int:
    """Start the project's Kafka broker (when it can) and JupyterLab on loopback; print the URL
    with its token once the server answers; on exit, stop what this command started."""
    path = hdfs.project_path()
    notebook_dir = os.path.abspath(args.notebook_dir)
    os.makedirs(notebook_dir, exist_ok=True)
    print(f"hops-jupyter: project {project.current().name} at {path}", flush=True)
    started_broker = False if args.no_kafka else _start_broker()
    # SIGTERM and SIGHUP end the command as Ctrl-C does, so the clean-up below always runs.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _interrupt)
    server: subprocess.Popen | None = None
    try:
        server, token, landing = _spawn_lab(args.port, notebook_dir, args.extra)
        url = _await_server(server, args.port, token)
        print(f"hops-jupyter: JupyterLab is ready at {url}{landing}?token={token}", flush=True)
        if args.browser:
            _open_browser(f"{url}{landing}?token={token}")
        return server.wait()
    except KeyboardInterrupt:
        print("\nhops-jupyter: stopping", flush=True)
        return 0
    except RuntimeError as err:
        print(f"hops-jupyter: {err}", file=sys.stderr, flush=True)
        return 1
    finally:
        if server is not None:
            _stop_process(server)
        if started_broker:
            from hops_jupyter.core import broker

            broker.stop()


def _interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _start_broker() -> bool:
    """Start the embedded broker if none runs; warn once and go on when it cannot start.
    True when this call started it (so the caller stops it on exit)."""
    from hops_jupyter.core import broker

    if project.current().kafka_brokers or broker.status() is not None:
        return False
    reason = broker.unavailable_reason()
    if reason is None:
        try:
            info = broker.start()
        except (OSError, RuntimeError, ValueError) as err:
            reason = f"the embedded Kafka broker did not start ({err})"
        else:
            print(f"hops-jupyter: kafka broker at {info.endpoint} (mutual TLS)", flush=True)
            return True
    print(f"hops-jupyter: warning: {reason}. JupyterLab starts without Kafka.", file=sys.stderr,
          flush=True)  # fmt: skip
    return False


def _spawn_lab(port: int, notebook_dir: str, extra: list[str]) -> tuple[subprocess.Popen, str, str]:
    """JupyterLab as a child in its own session (Ctrl-C reaches this command, which stops it),
    with a token this command chose and, when present, the quickstart notebook as landing page."""
    token = secrets.token_hex(24)
    landing = "lab"
    if os.path.isfile(os.path.join(notebook_dir, LANDING_NOTEBOOK)):
        landing = f"lab/tree/{LANDING_NOTEBOOK}"
    argv = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--ServerApp.port_retries=0",  # a taken port fails clearly instead of moving silently
        "--no-browser",
        f"--ServerApp.root_dir={notebook_dir}",
        f"--LabApp.default_url=/{landing}",  # the server root lands there too
        # Containers and CI run as root; JupyterLab refuses that unless told.
        *(["--allow-root"] if os.geteuid() == 0 else []),
        *extra,
    ]
    # Kernels inherit this: Spark executors started from a notebook use the same interpreter.
    # The token travels in the environment, not in argv where `ps` shows it to every user.
    env = {**os.environ, "JUPYTER_TOKEN": token}
    env.setdefault("PYSPARK_PYTHON", sys.executable)
    proc = subprocess.Popen(argv, env=env, start_new_session=True, preexec_fn=_die_with_parent)
    return proc, token, landing


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM when this command dies, even by SIGKILL."""
    import ctypes

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)


def _await_server(server: subprocess.Popen, port: int, token: str, timeout: float = 180) -> str:
    """Wait until the server answers an authenticated request; its base URL."""
    base = f"http://127.0.0.1:{port}/"
    request = urllib.request.Request(
        f"{base}api/status", headers={"Authorization": f"token {token}"}
    )
    deadline = time.monotonic() + timeout
    while True:
        if server.poll() is not None:
            raise RuntimeError(
                f"JupyterLab exited with code {server.returncode} before it answered"
            )
        try:
            with urllib.request.urlopen(request, timeout=2) as resp:
                if resp.status == 200:
                    return base
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"JupyterLab did not answer on port {port} within {timeout:.0f} s")
        time.sleep(0.25)


def _open_browser(url: str) -> None:
    """Open the URL where a desktop can show it (never a text browser in a headless shell)."""
    if sys.platform == "darwin" or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        import webbrowser

        with contextlib.suppress(Exception):
            webbrowser.open(url)


def _stop_process(proc: subprocess.Popen, grace: float = 20.0) -> None:
    """SIGTERM the child's process group (JupyterLab shuts its kernels down), SIGKILL after
    `grace` seconds."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


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
    lab.add_argument("--no-kafka", action="store_true", help="do not start the embedded broker")
    lab.add_argument("--no-browser", dest="browser", action="store_false",
                     help="do not open a browser (none opens without a desktop anyway)")  # fmt: skip
    lab.add_argument("extra", nargs=argparse.REMAINDER, help="more JupyterLab options")
    lab.set_defaults(fn=_lab)
    kafka = sub.add_parser("kafka", help="the project's embedded Kafka broker")
    kafka.add_argument("action", choices=["start", "stop", "status"])
    kafka.set_defaults(fn=_kafka)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # JupyterLab's own options (`--LabApp.x=y`) pass through `lab`
        if args.command != "lab":
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.extra = [*unknown, *args.extra]
    try:
        return args.fn(args)
    except (ValueError, OSError, RuntimeError) as err:
        print(f"hops-jupyter: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
