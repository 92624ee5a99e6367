"""A local worker: a fork server that runs every trial in a fresh child of a clean interpreter.

Started as `python -m hops_jupyter.core.experiment.engines.worker FD` (not a fork of the
notebook kernel), in its own session, it is four processes and the trials:

- the keeper, a subreaper that only waits: when the dispatcher ends (even by a crash) or the
  engine's process dies, it ends everything below it;
- the dispatcher (this module's `Dispatcher`), which takes the engine's tasks, sets each trial up
  and writes its records. It never forks a trial itself: a process that keeps working while
  its forked children share its memory pays a copy-on-write fault for each page it touches;
- the fork server (forkserver.py), forked from the dispatcher at its start: it imports once
  what the experiment's function imports (numpy, scikit-learn, ...), caps the thread pools so
  loaded, and forks one child per trial, touching almost nothing between forks. It is a
  subreaper: whatever a trial leaves behind is adopted by it and ended before the next trial;
- the trial child, which runs one trial and exits. Its globals, threads, child processes,
  environment and working directory end with it: the next trial starts from the server again.

Forking a warm server costs about a millisecond, where a fresh interpreter with scikit-learn
costs a second: isolation without the start-up cost.

With `reuse_workers` (the engine's choice, as Ray Tune's `reuse_actors`), trials of one
function share one forked child instead, one after the other: no fork and no cold start per
trial, but what a trial leaves in the interpreter (globals, threads, environment) is there for
the next. The child still ends the processes each trial starts, and a crash, timeout or cancel
still takes only that child down; the next trial gets a fresh one.

Protocol over the socket, pickled tuples. Engine to dispatcher: ("task", TrialTask, timeout,
reuse) and ("cancel", trial_id); tasks queue in order. ("retire",): end the reused child (the
worker is kept as a spare), ("check",): the same, answered ("fresh", "", whether no imported
module changed on disk). Dispatcher to engine, exactly one per task:
(kind, trial_id, payload) with kind "record" (payload: the pickled TrialRecord), "crashed"
(payload: how the child ended), "failed" (payload: an error type and message), "timeout" or
"cancelled". ("closing", "", how its fork server ended): this worker ends, and the trials it
has not answered were never started (the engine hands them to other workers).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import socket
import struct
import sys
import threading
import time
from collections import deque
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

from hops_jupyter.core import project
from hops_jupyter.core.experiment import records
from hops_jupyter.core.experiment.engines.forkserver import (
    _FRAME,
    _GO,
    _PR_SET_CHILD_SUBREAPER,
    _PR_SET_PDEATHSIG,
    OWN_FAILURE,
    ForkServer,
    ServerDied,
    _changed_modules,
    _prctl,
    _write_frames,
    die_with,
)
from hops_jupyter.core.experiment.trial import (
    WORKDIR_OWNER_ENV,
    Prepared,
    TrialTask,
    conclude,
    discard,
    end_descendants,
    prepare,
    sweep_workdirs,
)

# How long a dying worker waits for the outcome of a trial whose function had returned (its
# return value is read after the hand-over: a large one takes seconds).
GRACE_S = 30.0
# A worker with nothing to do for this long exits ($HOPS_WORKER_IDLE_S, seconds).
SPARE_IDLE_S = 600.0
IDLE_ENV = "HOPS_WORKER_IDLE_S"


def _drain(fd: int, into: bytearray) -> bool:
    """Read what a non-blocking pipe holds now; False at end of file."""
    while True:
        try:
            chunk = os.read(fd, 1 << 20)
        except BlockingIOError:
            return True
        if not chunk:
            return False
        into += chunk


def _ended(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"was killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with code {os.waitstatus_to_exitcode(status)}"


class _Child:
    """A forked trial process, as the dispatcher sees it."""

    def __init__(self, trial: Prepared, timeout: float | None, pid: int, go: int | None,
                 out: int, before: _Child | None) -> None:  # fmt: skip
        self.trial, self.task, self.timeout, self.pid = trial, trial.task, timeout, pid
        self.go, self.out = go, out  # the write end of its go pipe; the read end of its output
        self.before = before  # the trial forked just before it, which hands over to it
        self.buffer = bytearray()  # frames not read yet
        self.handed_over = False  # its function returned and it started its successor
        self.after: _Child | None = None  # the child forked next: its successor
        self.concluded = False  # its final record is written
        self.answered = False  # the engine has its trial's answer
        self.open = True  # its output pipe has not reached end of file
        self.deadline: float | None = None
        self.outcome: str | None = None  # "cancelled" or "timeout": the dispatcher ended it
        self.tasks: int | None = None  # a reused child: the write end of its task pipe
        self.key: tuple[str, tuple[tuple[str, str], ...]] | None = None  # what it can run

    def assign(self, trial: Prepared, timeout: float | None) -> None:
        """Give a reused child its next trial (the last one is answered)."""
        self.trial, self.task, self.timeout = trial, trial.task, timeout
        self.concluded = self.answered = False
        self.deadline = None if timeout is None else time.monotonic() + timeout

    def frames(self) -> list[tuple[bytes, bytes]]:
        """The complete frames read so far (taken out of the buffer)."""
        out = []
        while len(self.buffer) >= _FRAME.size:
            tag, size = _FRAME.unpack_from(self.buffer)
            if len(self.buffer) < _FRAME.size + size:
                break
            out.append((tag, bytes(self.buffer[_FRAME.size : _FRAME.size + size])))
            del self.buffer[: _FRAME.size + size]
        return out

    def fds(self) -> list[int]:
        return [fd for fd in (self.go, self.out, self.tasks) if fd is not None]

    def kill(self, outcome: str) -> None:
        self.outcome = self.outcome or outcome
        for kill in (os.killpg, os.kill):
            with contextlib.suppress(OSError):
                kill(self.pid, signal.SIGKILL)

    def close(self) -> None:
        for fd in self.fds():
            with contextlib.suppress(OSError):
                os.close(fd)


class _EngineGone(Exception):
    pass


class Dispatcher:
    """The worker's scheduler: it takes the engine's tasks, sets each trial up, has its fork
    server fork it, and writes its records. Up to three kinds of trial children at a time:
    `next`, forked ahead and waiting for its go; `active`, whose function runs; and `closing`
    ones writing their records. So a trial starts the moment the one before returns, its fork
    and set-up done. Trials sent with `reuse` run one after the other in one child instead
    (`reused`)."""

    def __init__(self, conn: Connection, idle_s: float | None = SPARE_IDLE_S,
                 own_process: bool = True) -> None:  # fmt: skip
        """`idle_s`: exit when given nothing to do for that long (None: never). With
        `own_process=False` (a Spark task lends this process), serve() returns when the engine
        closes the connection instead of ending the process."""
        self.conn, self.idle_s, self.own_process = conn, idle_s, own_process
        self.queue: deque[tuple[TrialTask, float | None, bool]] = deque()
        self.unanswered: dict[str, bool] = {}  # trial id: whether it has been started
        self.functions: dict[str, bytes] = {}
        self.next: _Child | None = None
        self.reused: _Child | None = None  # the child that runs reuse trials, running or idle
        self.active: _Child | None = None
        self.closing: list[_Child] = []
        self.last: _Child | None = None  # the child forked last
        self.started_at = time.time()
        self.chain = os.pipe()  # the go pipe of the next child to fork
        self.cfg: project.Project | None = None  # the project, for the trials' env
        self.env: dict[str, str] = {}
        # Answers go out without blocking: a large record written while the engine writes a
        # large task would otherwise leave both blocked, each on a full socket buffer.
        self.outbox = bytearray()
        self.out = socket.socket(fileno=os.dup(conn.fileno()))
        self.server = ForkServer(close=[conn.fileno(), self.out.fileno(), *self.chain])

    def send(self, kind: str, trial_id: str, payload: Any = None) -> None:
        self.unanswered.pop(trial_id, None)
        self.outbox += _connection_frame(pickle.dumps((kind, trial_id, payload)))
        self._flush()

    def _flush(self) -> None:
        """Write what the socket takes now of the answers waiting to go out."""
        while self.outbox:
            try:
                sent = self.out.send(self.outbox, socket.MSG_DONTWAIT)
            except BlockingIOError:
                return
            except OSError:  # the engine is gone: reading its end of file ends it all
                self.outbox.clear()
                return
            del self.outbox[:sent]

    def children(self) -> list[_Child]:
        found = [c for c in (self.next, self.active, *self.closing) if c is not None]
        if self.reused is not None and self.reused not in found:
            found.append(self.reused)  # idle
        return found

    def serve(self) -> None:
        try:
            try:
                while True:
                    self._fork_ahead()
                    self._start()
                    self._fork_ahead()  # the one after: its fork and set-up overlap this trial
                    self._step()
            except ServerDied:
                self._server_died()
        except _EngineGone:
            self.server.close()  # it ends what it forked
            end_descendants()
            for child in self.children():
                child.close()
            for fd in self.chain:
                with contextlib.suppress(OSError):  # given to a child that was not forked
                    os.close(fd)
            self.out.close()

    def _server_died(self) -> None:
        """A trial killed the fork server, and so every child here: fail the trials that had
        started, tell the engine the others never did (it runs them on another worker), and
        end this worker."""
        try:
            _, status = os.waitpid(self.server.pid, 0)
            how = _ended(status)
        except ChildProcessError:
            how = "died"
        # Outcomes sent before the children died with it, and those of children whose function
        # had returned (they outlive the server to report; the others end with it, closing
        # their pipes at once): read, and recorded.
        deadline = time.monotonic() + GRACE_S
        for child in self.children():
            while child.open and not child.concluded and time.monotonic() < deadline:
                select.select([child.out], [], [], max(0.0, deadline - time.monotonic()))
                child.open = _drain(child.out, child.buffer)
                self._read(child)
        message = (
            f"Its worker's fork server {how} while this trial ran (a trial that kills its parent"
            " process takes its worker down); the run goes on with a new worker"
        )
        for trial_id, started in list(self.unanswered.items()):
            if started:  # most likely the trial that killed it
                self.send("failed", trial_id, ("WorkerCrashed", message))
        self.send("closing", "", how)  # the others never started: the engine runs them elsewhere
        self.out.setblocking(True)
        with contextlib.suppress(OSError):
            self.out.sendall(self.outbox)
        if self.own_process:
            end_descendants()
            os._exit(1)
        raise _EngineGone  # a Spark task: it returns, and the engine starts another

    def _gone(self) -> None:
        """The engine closed the connection (or nothing came for idle_s): end it all."""
        if self.own_process:
            end_descendants()
            os._exit(0)
        raise _EngineGone

    # --- messages from the engine ----------------------------------------------------------

    def _message(self) -> None:
        try:
            message = pickle.loads(self.conn.recv_bytes())
        except (EOFError, OSError):  # the engine is gone: so is everything here
            self._gone()
        if message[0] in ("check", "retire"):  # kept or taken as a spare: its trials' past ends
            self._retire_reused()
            if message[0] == "check":
                changed = _changed_modules(self.started_at) or self.server.changed(self.started_at)
                self.send("fresh", "", not changed)
            return
        if message[0] == "task":
            task, timeout, reuse = message[1:]
            if task.fn_bytes is not None:
                self.functions[task.fn_key] = task.fn_bytes
            self.queue.append((task, timeout, reuse))
            self.unanswered[task.trial_id] = False
            return
        trial_id = message[1]  # a cancel: of a queued, waiting or running trial
        for queued in list(self.queue):
            if queued[0].trial_id == trial_id:
                self.queue.remove(queued)
                self.send("cancelled", trial_id)
        for child in (self.next, self.active):
            if child is not None and child.task.trial_id == trial_id:
                self._close(child, "cancelled")
        # a closing trial has ended already: its record is the answer

    # --- children --------------------------------------------------------------------------

    def _prepare(self, task: TrialTask) -> Prepared | None:
        """Set the trial up; None when its folder cannot be made (answered: it fails alone)."""
        try:
            if self.cfg is None or task.env != self.env:
                os.environ.update(task.env)
                self.cfg, self.env = project.current(), task.env
            return prepare(task, keep=set(), cfg=self.cfg)
        except Exception as err:  # noqa: BLE001 - reported as the trial's failure
            self.send("failed", task.trial_id, ("SetupError", f"It could not be set up: {err!r}"))
            return None

    def _forked(self, kind: str, task: TrialTask, payload: bytes | None, fds: list[int]) -> int:
        """Have the fork server fork a child (forkserver.py: kind, payload, fds), and close the
        child's ends of its pipes here; its pid."""
        try:
            fn_bytes = self.functions[task.fn_key]
            return self.server.fork(kind, task.fn_key, fn_bytes, task.env, payload, fds)
        finally:
            for fd in fds:
                os.close(fd)

    def _fork_ahead(self) -> None:
        if self.next is not None or not self.queue or self.queue[0][2]:
            return  # a reuse trial is not forked ahead: it runs in the reused child
        task, timeout, _ = self.queue.popleft()
        trial = self._prepare(task)
        if trial is None:
            return
        trial.start = records.StartRecord.of(trial.loc, trial.record)
        (go_read, go), successor = self.chain, os.pipe()
        out, out_write = os.pipe()
        # It gets the read end of its go pipe, the write end of its successor's (to hand
        # over) and the write end of its output; the server sends them over, closed here.
        fds = [go_read, os.dup(successor[1]), out_write]
        pid = self._forked("trial", task, _for_child(trial), fds)
        self.chain = successor
        os.set_blocking(out, False)
        child = _Child(trial, timeout, pid, go, out, self.last)
        if self.last is not None:
            self.last.after = child
        self.next = self.last = child

    def _start(self) -> None:
        """Make the waiting child the running one: it was started by the trial before it, or
        is started here (first trial, or the one before died or was cancelled)."""
        child = self.next
        if self.active is not None:
            return
        if child is None:
            if self.queue and self.queue[0][2]:
                self._start_reused(*self.queue.popleft()[:2])
            return
        self.next, self.active = None, child
        if child.timeout is not None:
            child.deadline = time.monotonic() + child.timeout
        before, child.before = child.before, None  # no chain of every trial kept in memory
        if before is not None:
            before.after = None
            if before.handed_over:  # it started this one, forked before or after its end,
                self._running(child, records.now(), handed=True)
                return
        # Nothing an earlier trial left behind may meet this one.
        self.server.sweep({c.pid for c in self.children()})
        self._running(child, records.now())  # before it runs: it may remove its own folder
        with contextlib.suppress(OSError):  # it died while waiting: its exit tells
            os.write(child.go, _GO)

    def _start_reused(self, task: TrialTask, timeout: float | None) -> None:
        """Run a reuse trial in the reused child (forked now if there is none for its function
        and environment), its set-up sent over the child's task pipe."""
        key = (task.fn_key, tuple(sorted(task.env.items())))
        if self.reused is not None and self.reused.key != key:
            self._retire_reused()  # another function or environment: a child of its own
        trial = self._prepare(task)
        if trial is None:
            return
        # What a trial starts is ended by the reused child (a subreaper) at the trial's end, or
        # by _finish when a child dies: nothing to sweep here, per trial.
        child = self.reused
        if child is None:
            tasks_read, tasks = os.pipe()
            out, out_write = os.pipe()
            pid = self._forked("reused", task, None, [tasks_read, out_write])
            os.set_blocking(out, False)
            child = self.reused = _Child(trial, timeout, pid, None, out, None)
            child.tasks, child.key = tasks, key
        trial.record.started = records.now()
        self.unanswered[task.trial_id] = True
        child.assign(trial, timeout)
        self.active = child
        with contextlib.suppress(OSError):  # the final record still comes
            records.write_trial(trial.loc, trial.record)  # before it runs (see _start)
        with contextlib.suppress(OSError):  # it died: its exit answers for the trial
            _write_frames(child.tasks, [(b"T", _for_child(trial))])

    def _retire_reused(self) -> None:
        """End the reused child if it is idle (its last trial answered)."""
        if self.reused is not None and self.reused is not self.active:
            self._close(self.reused, "retired")

    def _close(self, child: _Child, outcome: str) -> None:
        """End a child now (a cancel, a timeout); it is answered for once it has exited."""
        child.kill(outcome)
        if child is self.next:
            self.next = None
        elif child is self.active:
            self.active = None
        if child is self.reused:
            self.reused = None
        if child not in self.closing:
            self.closing.append(child)

    def _step(self) -> None:
        """Wait for the engine or a child, and handle what happened."""
        poller = select.poll()
        poller.register(self.conn.fileno(), select.POLLIN | (select.POLLOUT if self.outbox else 0))
        wait_s: float | None = None
        poller.register(self.server.fileno(), select.POLLIN)  # exits of children
        for child in self.children():
            if child.open:
                poller.register(child.out, select.POLLIN)
        busy = [c for c in self.children() if c is not self.reused or c is self.active]
        pending = self.server.pending()  # exits read while waiting for the server's answer
        idle = not (busy or self.queue or self.outbox or pending) and self.idle_s is not None
        if idle:  # a spare between experiments: it exits when unused for long
            wait_s = self.idle_s
        active = self.active
        if active is not None and active.deadline is not None:
            left = max(0.0, active.deadline - time.monotonic())
            wait_s = left if wait_s is None else min(wait_s, left)
        watching = bool(busy) and (wait_s is None or wait_s > 1.0)
        if watching:  # a trial may stop the fork server: its exit reports would never come
            wait_s = 1.0
        if pending:
            wait_s = 0.0
        events = poller.poll(None if wait_s is None else wait_s * 1000)
        if watching and not events:
            self.server.resume_if_stopped()
        ready = {fd for fd, event in events if event & ~select.POLLOUT}
        if any(event & select.POLLOUT for _, event in events):
            self._flush()
        if idle and not events:
            self._gone()
        for child in self.children():
            if child.out in ready and child.open:
                child.open = _drain(child.out, child.buffer)
                self._read(child)
        if active is not None and active is self.active:
            if active.handed_over:  # its function returned: the next trial runs already
                self.active = None
                self.closing.append(active)
            elif active.deadline is not None and time.monotonic() >= active.deadline:
                self._close(active, "timeout")
        if self.conn.fileno() in ready:
            self._message()
        if self.server.fileno() in ready or pending:
            by_pid = {c.pid: c for c in self.children()}
            for pid, status in self.server.take_exits():
                if pid in by_pid:
                    self._finish(by_pid[pid], status)

    def _read(self, child: _Child) -> None:
        """Act on a child's frames: its records are written here, in the dispatcher,
        beside the trial rather than on its critical path."""
        trial = child.trial
        for tag, payload in child.frames():
            if tag == b"D":
                child.handed_over = True
                if child.after is not None:  # started at that moment
                    self._running(child.after, payload.decode(), handed=True)
            elif tag == b"R" and child.outcome is None:
                try:
                    answer = ("record", pickle.dumps(conclude(trial, pickle.loads(payload))))
                except Exception as err:  # noqa: BLE001 - its trial fails; the worker goes on
                    error = ("RecordError", f"Its record could not be written: {err!r}")
                    answer = ("failed", error)
                child.concluded = True
                self.send(answer[0], trial.task.trial_id, answer[1])
                child.answered = True
                if child is self.reused and child is self.active:
                    self.active = None  # idle, for the next reuse trial

    def _running(self, child: _Child, started: str, handed: bool = False) -> None:
        """Note that a trial started, and write its RUNNING record: unless its final one is
        written already, or it was `handed` its start by the trial before it and wrote its own
        (a local one: _Gate.wait)."""
        if child.task.trial_id in self.unanswered:
            self.unanswered[child.task.trial_id] = True
        record = child.trial.record
        if child.concluded or record.started is not None:
            return
        record.started = started
        if not (handed and child.trial.start is not None):
            with contextlib.suppress(OSError):  # the final record still comes
                records.write_trial(child.trial.loc, record)

    def _finish(self, child: _Child, status: int) -> None:
        """A child exited: answer for its trial."""
        _drain(child.out, child.buffer)
        self._read(child)
        child.close()
        with contextlib.suppress(OSError):
            os.killpg(child.pid, signal.SIGKILL)  # what is left in its group
        for slot in ("next", "active", "reused"):
            if getattr(self, slot) is child:  # it died before its function returned
                setattr(self, slot, None)
        if child in self.closing:
            self.closing.remove(child)
        if not child.handed_over and self.active is None:
            # It died or was killed before ending what it started (a child that handed over
            # had ended it all: it is the subreaper of everything it started).
            self.server.sweep({c.pid for c in self.children()})
        if not child.handed_over and child.trial.start is not None:
            with contextlib.suppress(OSError):  # killed while writing its RUNNING record
                os.unlink(child.trial.start.tmp)
        if child.answered:
            return
        discard(child.trial)
        trial_id = child.task.trial_id
        if child.outcome is not None:
            self.send(child.outcome, trial_id)
        elif os.WIFEXITED(status) and os.WEXITSTATUS(status) == OWN_FAILURE:
            message = (
                "Its process could not report how the trial ended (hops-jupyter's code around "
                "the trial's function failed: the traceback is at the end of its stderr.log). "
                "A trial that closes file descriptors it did not open cuts that report's pipe"
            )
            self.send("failed", trial_id, ("WorkerError", message))
        else:
            self.send("crashed", trial_id, _ended(status))


def _for_child(trial: Prepared) -> bytes:
    """A trial's set-up, pickled for its child (which has the function already)."""
    return pickle.dumps(replace(trial, task=replace(trial.task, fn_bytes=None)))


def _connection_frame(data: bytes) -> bytes:
    """`data` framed as multiprocessing.connection.Connection.send_bytes frames it (its API
    has no non-blocking send): a 4-byte length, or -1 and an 8-byte length past 2 GiB."""
    if len(data) > 0x7FFFFFFF:
        return struct.pack("!i", -1) + struct.pack("!Q", len(data)) + data
    return struct.pack("!i", len(data)) + data


def _keep(dispatcher: int) -> None:
    """Wait for the dispatcher; then end what is left and exit as it did. The engine's death
    (a signal, or the watch thread seeing it) only kills the dispatcher: this thread alone
    reaps and cleans up, so no two threads wait for children or run the clean-up at once
    (that deadlocked a keeper once in a hundred runs)."""
    parent = os.getppid()

    def stop(*_: object) -> None:
        with contextlib.suppress(OSError):
            os.kill(dispatcher, signal.SIGKILL)

    signal.signal(signal.SIGTERM, stop)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    def watch() -> None:  # the engine's process died before the signal could be set
        while os.getppid() == parent:
            time.sleep(0.5)
        stop()

    threading.Thread(target=watch, name="hops-keeper", daemon=True).start()
    _, status = os.waitpid(dispatcher, 0)
    try:
        end_descendants()
        sweep_workdirs(os.getpid())
    finally:
        if os.WIFSIGNALED(status):  # report the dispatcher's death as ours (the engine names it)
            sig = os.WTERMSIG(status)
            with contextlib.suppress(OSError, ValueError):  # SIGKILL has no handler to reset
                signal.signal(sig, signal.SIG_DFL)
            os.kill(os.getpid(), sig)
        os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 1)


def main() -> None:
    import psutil  # noqa: F401 - loaded before any signal handler may need it

    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    os.environ[WORKDIR_OWNER_ENV] = str(os.getpid())  # the keeper removes these folders
    fd = int(sys.argv[1])
    keeper = os.getpid()
    dispatcher = os.fork()
    if dispatcher:
        os.close(fd)
        _keep(dispatcher)
    die_with(keeper)  # the dispatcher never outlives its keeper
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)  # a trial's orphans come here, to be ended
    try:
        idle_s = float(os.environ.get(IDLE_ENV) or SPARE_IDLE_S)
    except ValueError:
        idle_s = SPARE_IDLE_S
    Dispatcher(Connection(socket.socket(fileno=fd).detach()), idle_s=idle_s).serve()


if __name__ == "__main__":
    main()
