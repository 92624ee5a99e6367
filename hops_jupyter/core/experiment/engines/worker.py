"""A local worker process: receives trials over a socket, runs them, sends back records.

Started as `python -m hops_jupyter.core.experiment.engines.worker FD` so it imports only what
trials need (no TensorFlow unless a trial imports it), in its own session (the notebook's
interrupt does not reach it), and dies with its parent.
"""

from __future__ import annotations

import ctypes
import pickle
import signal
import socket
import sys
from multiprocessing.connection import Connection

import cloudpickle

from hops_jupyter.core.experiment.trial import TrialTask, run_trial

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when the engine's process goes away, even by SIGKILL."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
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


def main() -> None:
    _die_with_parent()
    sock = socket.socket(fileno=int(sys.argv[1]))
    serve(Connection(sock.detach()))


if __name__ == "__main__":
    main()
