"""Intermediate results from running trials to the driver, and stop decisions back.

`experiment.report(value, step=...)` inside a trial appends to the trial's `metrics.jsonl` (the
record readers use) and also sends the value to its experiment's `ReportServer`: a TCP socket on
the driver, reachable from local workers and Spark executors alike. The server asks the run's
stopping policy at once and answers `stop` or `continue`, so a trial stops at the step where the
decision is made (`report` raises `TrialStopped`), with no polling and no extra work for the
user. A per-experiment secret keeps other processes from reporting into or stopping a run.
The stdlib socket server is used because no library adds anything for one line per report.
"""

from __future__ import annotations

import contextlib
import json
import queue
import secrets
import socket
import socketserver
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# How long a trial waits for the driver's answer before it goes on (a busy or lost driver must
# never hang a trial; the value is in metrics.jsonl whatever happens).
ANSWER_TIMEOUT_S = 5.0


class TrialStopped(BaseException):  # noqa: N818 - the name users see, like optuna.TrialPruned
    """Raised by `report()` when the stopping policy ends the trial. A BaseException, so a
    trial's own `except Exception:` does not swallow it."""

    def __init__(self, step: int, value: float) -> None:
        super().__init__(f"stopped early at step {step} (value {value})")
        self.step, self.value = step, value


@dataclass(frozen=True)
class ReportAddress:
    """Where a trial sends its reports (travels inside the trial's task)."""

    host: str
    port: int
    token: str


@dataclass(frozen=True)
class Report:
    """One intermediate result of a running trial."""

    trial_id: str
    step: int
    value: float
    extras: dict[str, Any]


Decide = Callable[[Report], bool]


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        server: _Server = self.server  # type: ignore[assignment]
        for raw in self.rfile:
            try:
                msg = json.loads(raw)
                if not secrets.compare_digest(str(msg.get("token", "")), server.token):
                    return  # not one of our trials: drop the connection
                report = Report(str(msg["trial"]), int(msg["step"]), float(msg["value"]),
                                dict(msg.get("extras") or {}))  # fmt: skip
            except (ValueError, KeyError, TypeError):
                return
            stop = server.owner.receive(report)
            self.wfile.write(b'{"stop": true}\n' if stop else b'{"stop": false}\n')
            self.wfile.flush()


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: ReportServer, token: str) -> None:
        super().__init__(address, _Handler)
        self.owner, self.token = owner, token


class ReportServer:
    """Receives reports for one experiment on `host`; `decide(report)` says whether to stop the
    trial (called in the server's threads, one report at a time). Every report is also queued
    for the run loop (`drain()`)."""

    def __init__(self, decide: Decide, host: str = "127.0.0.1") -> None:
        self._decide = decide
        self._lock = threading.Lock()
        self._queue: queue.SimpleQueue[Report] = queue.SimpleQueue()
        self.stop_requested: dict[str, Report] = {}
        token = secrets.token_hex(16)
        self._server = _Server((host, 0), self, token)
        self.address = ReportAddress(host, self._server.server_address[1], token)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.2,), name="hops-reports", daemon=True
        )
        self._thread.start()

    def receive(self, report: Report) -> bool:
        with self._lock:
            if report.trial_id in self.stop_requested:
                return True
            try:
                stop = bool(self._decide(report))
            except Exception:  # a broken policy must not stop trials nor kill the server
                stop = False
            if stop:
                self.stop_requested[report.trial_id] = report
        self._queue.put(report)
        return stop

    def drain(self) -> list[Report]:
        """Reports received since the last call, in arrival order."""
        out = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        """Stop serving now: shutdown() waits for the serve loop's next poll (0.2 s), so the
        loop is woken by connections until it has seen the request."""
        stopper = threading.Thread(target=self._server.shutdown, daemon=True)
        stopper.start()
        while stopper.is_alive():
            with contextlib.suppress(OSError):
                socket.create_connection(self._server.server_address[:2], timeout=0.1).close()
            stopper.join(0.01)
        self._server.server_close()


class ReportClient:
    """The trial side: one connection per trial process, opened at the first report."""

    def __init__(self, address: ReportAddress, trial_id: str) -> None:
        self.address, self.trial_id = address, trial_id
        self._sock: socket.socket | None = None
        self._file: Any = None
        self._broken = False

    def send(self, step: int, value: float, extras: dict[str, Any]) -> bool:
        """Send one report; True when the driver says stop. Never raises for a lost driver."""
        if self._broken:
            return False
        line = json.dumps({"token": self.address.token, "trial": self.trial_id, "step": step,
                           "value": value, "extras": extras}, default=str)  # fmt: skip
        try:
            if self._sock is None:
                self._sock = socket.create_connection(
                    (self.address.host, self.address.port), timeout=ANSWER_TIMEOUT_S
                )
                self._file = self._sock.makefile("rb")
            self._sock.sendall(line.encode() + b"\n")
            answer = self._file.readline()
            return bool(json.loads(answer).get("stop")) if answer else False
        except (OSError, ValueError):
            self._broken = True  # the driver is gone or too slow: run on, records still written
            self.close()
            return False

    def close(self) -> None:
        with contextlib.suppress(OSError):
            if self._file is not None:
                self._file.close()
            if self._sock is not None:
                self._sock.close()
        self._sock = self._file = None
