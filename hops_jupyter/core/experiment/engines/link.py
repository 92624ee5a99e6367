"""The engine's side of fork-server workers (worker.py), wherever they run: a local process
(engines/local.py) or a long-running Spark task (engines/spark.py). A Link is one worker's
connection and the trials handed to it; LinkPool is an engine over such links: it hands out
trials, reads answers into records, cancels, and says what happened when a worker is lost."""

from __future__ import annotations

import pickle
import time
from dataclasses import replace
from multiprocessing.connection import Connection, wait
from typing import Any

from hops_jupyter.core.experiment.engines.base import Engine
from hops_jupyter.core.experiment.records import TrialRecord
from hops_jupyter.core.experiment.trial import TrialTask, record_failure

# How long a worker may stay silent past a trial's timeout (which it enforces itself) before
# it is taken for hung; also how long a cancel waits for its answer.
GRACE_S = 30.0
# How often a trial that never started is moved on from a worker that ended under it before it
# fails: a fork server that dies at every start (an import that crashes it) must not loop.
MOVES = 2


def crash_message(how: object) -> str:
    """What a trial's record says when its process ended under it, with the likely causes of
    that kind of end."""
    text = str(how)
    if "SIGKILL" in text:
        causes = "killed by another process, or by the system when out of memory"
    elif "signal" in text:
        causes = "a crash in native code, or a signal sent to it"
    elif "exited with code" in text:
        causes = "os._exit, or a library that ended the process"
    else:
        causes = "os._exit, a crash in native code, or out of memory"
    return f"The process running this trial exited unexpectedly: it {text} ({causes})"


class Link:
    """One worker: its connection and the trials sent to it and not yet answered (in order:
    the first runs, the others wait there)."""

    def __init__(self, conn: Connection, gpus: tuple[str, ...] | None = None) -> None:
        self.conn, self.gpus = conn, gpus
        self.tasks: dict[str, TrialTask] = {}
        self.busy_since = 0.0  # when it last went from idle to busy, or last answered
        self.fn_keys: set[str] = set()

    def send(self, task: TrialTask, timeout: float | None, reuse: bool = False) -> None:
        """Hand the worker a trial; `reuse`: run it in the worker's reused process."""
        sent = replace(task, fn_bytes=None) if task.fn_key in self.fn_keys else task
        if not self.tasks:
            self.busy_since = time.monotonic()
        self.conn.send_bytes(pickle.dumps(("task", sent, timeout, reuse)))
        self.fn_keys.add(task.fn_key)
        self.tasks[task.trial_id] = task  # whole: it may go to another worker

    def ask_fresh(self) -> bool:
        """Ask the worker whether it can take new work (no module it imported changed); False
        when it is gone. Its answer is `is_fresh`, once the connection is readable."""
        try:
            self.conn.send_bytes(pickle.dumps(("check",)))
        except OSError:
            return False
        return True

    def is_fresh(self) -> bool:
        try:
            kind, _, fresh = pickle.loads(self.conn.recv_bytes())
        except (EOFError, OSError):
            return False
        return kind == "fresh" and bool(fresh)

    def receive(self) -> tuple[str, str, Any]:
        """The worker's next answer: (kind, trial id, payload). EOFError when it is gone."""
        answer = pickle.loads(self.conn.recv_bytes())
        self.busy_since = time.monotonic()
        return answer


class LinkPool(Engine):
    """An engine whose workers are Links. Subclasses say how workers come and go (`lost`)."""

    timeout: float | None = None
    reuse_workers = False  # trials share a process per worker (worker.py), not one each

    def __init__(self) -> None:
        self.links: list[Link] = []
        self.ended: list[TrialRecord] = []  # answers read while waiting for something else
        self.moves: dict[str, int] = {}  # trial id: how often it was moved on, never started

    def lost(self, link: Link, why: str) -> None:
        """`link`'s worker is gone (or hung) with its trials: remove it and account for them."""
        self.links.remove(link)
        for task in link.tasks.values():
            self.ended.append(record_failure(task, "WorkerCrashed", why))
        link.tasks.clear()

    def drain(self, link: Link) -> None:
        """Read what a worker that died said before it went, then account for it as lost."""
        while link in self.links and link.conn.poll(0):
            self.answer(link)  # its end of file: lost
        if link in self.links:
            self.lost(link, self.why_lost(link))

    def requeue(self, link: Link, how: str) -> None:
        """`link`'s worker is ending (its fork server `how`), and none of the trials it holds
        has started: they go to other workers, up to MOVES times each."""
        tasks = list(link.tasks.values())
        link.tasks.clear()
        self.lost(link, "")
        for task in tasks:
            hint = ": something it imports ahead for the function (found in its code) may crash it"
            self.move(task, "Its worker's fork server died", f"the last one {how}", hint)

    def move(self, task: TrialTask, gone: str, last: str, hint: str = "") -> None:
        """Submit again a trial that never started, its worker `gone`; after MOVES times, fail
        it instead, saying how the last one went and what may cause it (a worker that dies at
        every start must not loop)."""
        self.moves[task.trial_id] = moves = self.moves.get(task.trial_id, 0) + 1
        if moves <= MOVES:
            self.submit(task)
            return
        message = f"{gone} before this trial could start, {moves} times ({last}){hint}"
        self.ended.append(record_failure(task, "WorkerCrashed", message))

    def why_lost(self, link: Link) -> str:
        """What a trial's record says when its worker went away under it."""
        return crash_message("went away with its worker")

    def running(self) -> list[TrialTask]:
        return [task for link in self.links for task in link.tasks.values()]

    def answer(self, link: Link) -> str | None:
        """Read and record one answer of `link`; the trial id it was about (None: the worker
        is gone)."""
        try:
            kind, trial_id, payload = link.receive()
        except (EOFError, OSError):
            self.lost(link, self.why_lost(link))
            return None
        if kind == "closing":  # its worker ends: no trial it has not answered had started
            self.requeue(link, payload)
            return None
        task = link.tasks.pop(trial_id, None)
        if task is None:  # cancelled: the caller has written its record
            return trial_id
        if kind == "record":
            self.ended.append(pickle.loads(payload))
        elif kind == "failed":  # the worker says how: (error type, message)
            self.ended.append(record_failure(task, *payload))
        elif kind == "timeout":
            message = f"The trial ran past its timeout of {self.timeout} s"
            self.ended.append(record_failure(task, "TrialTimeout", message))
        else:
            self.ended.append(record_failure(task, "WorkerCrashed", crash_message(payload)))
        return trial_id

    def wait_links(self, timeout: float | None, extra: list[Any] = ()) -> list[Any]:
        """Wait for answers (or one of `extra`, returned when ready) and record them; a worker
        silent well past a trial's timeout is taken for hung."""
        busy = [link for link in self.links if link.tasks]
        if not busy and not extra:
            return []
        limit = timeout
        if self.timeout is not None and busy:
            first = min(link.busy_since for link in busy) + self.timeout + GRACE_S
            until = max(0.0, first - time.monotonic())
            limit = until if limit is None else min(limit, until)
        ready = wait([link.conn for link in busy] + list(extra), timeout=limit)
        for link in busy:
            if link.conn in ready:
                self.answer(link)
            elif (
                self.timeout is not None
                and time.monotonic() - link.busy_since >= self.timeout + GRACE_S
            ):
                self.lost(link, "The worker stopped answering (hung) and was stopped")
        return [x for x in extra if x in ready]

    def take_ended(self) -> list[TrialRecord]:
        ended, self.ended = self.ended, []
        return ended

    def cancel(self, trial_id: str) -> TrialTask | None:
        link = next((link for link in self.links if trial_id in link.tasks), None)
        if link is None:
            return None
        task = link.tasks.pop(trial_id)
        try:
            link.conn.send_bytes(pickle.dumps(("cancel", trial_id)))
            # Wait for the worker to say it is gone, so nothing of it writes after the caller.
            while link.conn.poll(GRACE_S):
                if self.answer(link) in (trial_id, None):
                    return task
        except (EOFError, OSError):
            pass
        if link in self.links:
            self.lost(link, "The worker stopped answering (hung) and was stopped")
        return task
