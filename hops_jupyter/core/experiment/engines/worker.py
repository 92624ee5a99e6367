"""A local worker process: receives trials over a socket, runs them, sends back records.

Started as `python -m hops_jupyter.core.experiment.engines.worker FD` so it imports only what
trials need (no TensorFlow unless a trial imports it), in its own session (the notebook's
interrupt does not reach it), and dies with its parent.

It is two processes: a small keeper, a subreaper that only waits, and the runner it forks,
which runs the trials. Whatever a trial starts (children, daemons in sessions of their own,
double forks) is adopted by the keeper when orphaned, so the keeper can end it all when the
runner ends, even by `os._exit` or a crash, and when the engine's process dies.
"""

from __future__ import annotations

import ctypes
import os
import pickle
import signal
import socket
import sys
import threading
import time
from multiprocessing.connection import Connection

import cloudpickle

from hops_jupyter.core.experiment.trial import (
    WORKDIR_OWNER_ENV,
    TrialTask,
    end_descendants,
    run_trial,
    sweep_workdirs,
)

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> None:
    try:
        ctypes.CDLL(None, use_errno=True).prctl(option, value, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: no subreaper, no parent-death signal
        pass


def serve(conn: Connection) -> None:
    """Run trials until the engine closes the connection."""
    functions: dict[str, bytes] = {}
    while True:
        try:
            task: TrialTask = pickle.loads(conn.recv_bytes())
        except (EOFError, OSError):
            return
        if task.fn_bytes is not None:
            functions[task.fn_key] = task.fn_bytes
        fn_bytes = functions[task.fn_key]
        record = run_trial(task, lambda b=fn_bytes: cloudpickle.loads(b))
        conn.send_bytes(pickle.dumps(record))


def _end_all(*_: object) -> None:
    """Keeper: end the runner and everything the trials started, then this process."""
    end_descendants()
    sweep_workdirs(os.getpid())
    os._exit(1)


def _keep(runner: int) -> None:
    """Wait for the runner; then end what is left and exit as it did."""
    parent = os.getppid()
    signal.signal(signal.SIGTERM, _end_all)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    def watch() -> None:  # the engine's process died before the signal could be set
        while os.getppid() == parent:
            time.sleep(0.5)
        _end_all()

    threading.Thread(target=watch, name="hops-keeper", daemon=True).start()
    _, status = os.waitpid(runner, 0)
    end_descendants()
    sweep_workdirs(os.getpid())
    if os.WIFSIGNALED(status):  # report the runner's death as ours (the engine names it)
        sig = os.WTERMSIG(status)
        signal.signal(sig, signal.SIG_DFL)
        os.kill(os.getpid(), sig)
    os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


def main() -> None:
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    os.environ[WORKDIR_OWNER_ENV] = str(os.getpid())  # the keeper removes these folders
    fd = int(sys.argv[1])
    runner = os.fork()
    if runner:
        os.close(fd)
        _keep(runner)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # the runner never outlives its keeper
    sock = socket.socket(fileno=fd)
    serve(Connection(sock.detach()))


if __name__ == "__main__":
    main()
