"""A local worker: a fork server that runs every trial in a fresh child of a clean template.

Started as `python -m hops_jupyter.core.experiment.engines.worker FD` (not a fork of the
notebook kernel), in its own session, it is three layers of processes:

- the keeper, a subreaper that only waits: when the template ends (even by a crash) or the
  engine's process dies, it ends everything below it;
- the template, which imports once what the experiment's function imports (numpy,
  scikit-learn, ...), caps the thread pools so loaded, and forks one child per trial. It is a
  subreaper too: whatever a trial leaves behind is adopted by it and ended before the next trial;
- the trial child, which runs one trial and exits. Its globals, threads, child processes,
  environment and working directory end with it: the next trial starts from the template again.

Forking a warm template costs about a millisecond, where a fresh interpreter with scikit-learn
costs a second: isolation without the start-up cost.

With `reuse_workers` (the engine's choice, as Ray Tune's `reuse_actors`), trials of one
function share one forked child instead, one after the other: no fork and no cold start per
trial, but what a trial leaves in the interpreter (globals, threads, environment) is there for
the next. The child still ends the processes each trial starts, and a crash, timeout or cancel
still takes only that child down; the next trial gets a fresh one.

Protocol over the socket, pickled tuples. Engine to template: ("task", TrialTask, timeout,
reuse) and ("cancel", trial_id); tasks queue in order. ("retire",): end the reused child (the
worker is kept as a spare), ("check",): the same, answered ("fresh", "", whether no imported
module changed on disk). Template to engine, exactly one per task:
(kind, trial_id, payload) with kind "record" (payload: the pickled TrialRecord), "crashed"
(payload: how the child ended), "timeout" or "cancelled".
"""

from __future__ import annotations

import contextlib
import ctypes
import dis
import gc
import importlib
import os
import pickle
import select
import signal
import socket
import struct
import sys
import threading
import time
import traceback
import types
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any

import cloudpickle

from hops_jupyter.core import project
from hops_jupyter.core.experiment import records
from hops_jupyter.core.experiment.threads import cap_loaded_pools, trial_threads
from hops_jupyter.core.experiment.trial import (
    WORKDIR_OWNER_ENV,
    Prepared,
    TrialTask,
    conclude,
    discard,
    end_descendants,
    execute,
    prepare,
    sweep_workdirs,
)

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
# A child's output is frames: a tag byte and a length, then the payload. D: its function
# returned and it started its successor (payload: when, ISO), R: its outcome (a pickled
# trial.Outcome). Both come in one write after the hand-over.
_FRAME = struct.Struct("!cQ")
_GO = b"G"  # on a child's go pipe: start
# A worker with nothing to do for this long exits ($HOPS_WORKER_IDLE_S, seconds).
SPARE_IDLE_S = 600.0
IDLE_ENV = "HOPS_WORKER_IDLE_S"
# Modules a template never imports ahead (forking after they start threads is unsafe).
_NO_PRELOAD = ("multiprocessing", "concurrent", "threading", "asyncio", "hops", "hops_jupyter")


try:  # looked up once: every forked trial calls it twice
    _LIBC_PRCTL: Any = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: no subreaper, no parent-death signal
    _LIBC_PRCTL = None


def _prctl(option: int, value: int) -> None:
    if _LIBC_PRCTL is not None:
        _LIBC_PRCTL(option, value, 0, 0, 0)


# --- the template's warm-up ---------------------------------------------------------------


def _code_imports(code: types.CodeType) -> list[str]:
    """Absolute module names the code imports (`import x.y`, `from x import y`)."""
    found, instructions = [], list(dis.get_instructions(code))
    for i, ins in enumerate(instructions):
        if ins.opname == "IMPORT_NAME" and i >= 2 and instructions[i - 2].argval == 0:
            found.append(ins.argval)
    return found


def imports_of(fn: Callable[..., Any], limit: int = 64) -> list[str]:
    """The modules a function imports in its body, and in the functions and nested code it
    calls through its globals (a trial `train()` calling a helper that imports sklearn), and
    the modules it uses as globals."""
    seen: set[int] = set()
    names: list[str] = []
    todo: list[tuple[types.CodeType, dict[str, Any]]] = []
    if isinstance(getattr(fn, "__code__", None), types.CodeType):
        todo.append((fn.__code__, getattr(fn, "__globals__", {})))
    while todo and len(seen) < limit:
        code, scope = todo.pop()
        if id(code) in seen:
            continue
        seen.add(id(code))
        names += _code_imports(code)
        todo += [(c, scope) for c in code.co_consts if isinstance(c, types.CodeType)]
        for name in code.co_names:
            called = scope.get(name)
            if isinstance(called, types.FunctionType):
                todo.append((called.__code__, called.__globals__))
            elif isinstance(called, types.ModuleType):  # `np` imported at the notebook's top
                names.append(called.__name__)
    return list(dict.fromkeys(names))


def warm_up(fn_bytes: bytes) -> Callable[..., Any] | None:
    """Unpickle the trial function in the template and import what it will import, then cap
    the thread pools those imports loaded, so every forked trial starts warm and within its
    thread limit. The function, or None when it does not unpickle here (each trial then tries,
    and records the error)."""
    try:
        with contextlib.redirect_stdout(None):
            fn = cloudpickle.loads(fn_bytes)  # imports the modules its globals refer to
            names = imports_of(fn)
            for name in names:
                if name.split(".")[0] not in _NO_PRELOAD:
                    with contextlib.suppress(BaseException):
                        importlib.import_module(name)
        # numpy.random loads lazily, in ~7 ms: once here for a function that names numpy, not
        # per trial. Not for others: each child then reseeds it (_reseed), ~150 page faults.
        if any(name.split(".")[0] == "numpy" for name in names):
            with contextlib.suppress(BaseException):
                importlib.import_module("numpy.random")
    except BaseException:  # noqa: BLE001 - a warm-up never stops the worker
        return None
    threads = trial_threads()
    if threads > 0:
        with contextlib.suppress(Exception):
            cap_loaded_pools(threads)  # kept by every child this template forks
    return fn


# --- one trial in a forked child ------------------------------------------------------------


def _write_frames(fd: int, frames: list[tuple[bytes, bytes]]) -> None:
    data = b"".join(_FRAME.pack(tag, len(payload)) + payload for tag, payload in frames)
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exact(fd: int, size: int) -> bytes | None:
    """`size` bytes from a blocking pipe; None at end of file."""
    data = bytearray()
    while len(data) < size:
        chunk = os.read(fd, size - len(data))
        if not chunk:
            return None
        data += chunk
    return bytes(data)


def _read_frame(fd: int) -> bytes | None:
    """One frame's payload from a blocking pipe; None at end of file."""
    header = _read_exact(fd, _FRAME.size)
    return None if header is None else _read_exact(fd, _FRAME.unpack(header)[1])


class _Gate:
    """The child's side of its start and end. It sets up, then waits for its go: from the
    trial before it, which hands over directly the moment its function returns (one wake-up
    instead of a round trip through the template), or from the template. The template writes
    its RUNNING record meanwhile; at the end it hands over to its successor."""

    def __init__(self, go: int, successor: int, out: int) -> None:
        self.go, self.successor, self.out, self.said_done = go, successor, out, False
        self.handed_over_at = ""

    def wait(self) -> None:
        if not os.read(self.go, 1):  # no writer is left: the template is gone
            os._exit(0)

    def done(self) -> None:
        if not self.said_done:  # the trial's processes are ended already (execute)
            self.said_done = True
            with contextlib.suppress(OSError):
                os.write(self.successor, _GO)
            self.handed_over_at = records.now()
            # What is left of this trial steps aside while its successor starts: the CPU it
            # is on is the one the successor was woken on.
            with contextlib.suppress(OSError):
                os.nice(10)
            time.sleep(0.001)

    def finish(self, outcome: bytes) -> None:
        """Tell the template, in one write, that the trial handed over and how it ended; not
        at the hand-over itself, so that the template's work does not compete with the
        successor's start."""
        done = [(b"D", self.handed_over_at.encode())] if self.said_done else []
        _write_frames(self.out, [*done, (b"R", outcome)])


def _child(conn: Connection, close: list[int], gate: _Gate, trial: Prepared,
           load: Callable[[], Callable[..., Any]]) -> None:  # fmt: skip
    """In the forked child: wait for the go, run the trial's function, send its outcome, exit.
    The template set the trial up before the fork and writes its records."""
    code = 1
    try:
        _set_up_child(conn, close)
        outcome = execute(trial, load, cap_threads=False, gate=gate)
        gate.done()
        gate.finish(pickle.dumps(outcome))
        code = 0
    except BaseException:  # noqa: BLE001 - our own failure: say it on the worker's stderr
        traceback.print_exc()
    finally:
        os._exit(code)


def _set_up_child(conn: Connection, close: list[int]) -> None:
    conn.close()  # the engine's socket is the template's, never a trial's
    for fd in close:  # the other trials' pipes
        with contextlib.suppress(OSError):
            os.close(fd)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # never outlive the template
    # Orphans of what a trial starts come to it, so it ends them all at the trial's end.
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)
    _reseed()


def _reused_child(conn: Connection, close: list[int], tasks: int, out: int,
                  load: Callable[[], Callable[..., Any]]) -> None:  # fmt: skip
    """In a reused child: run the trials the template sends (pickled `Prepared`s), one after
    the other, each outcome sent back as it ends; exit when the template closes the pipe."""
    code = 1
    try:
        _set_up_child(conn, close)
        while (payload := _read_frame(tasks)) is not None:
            trial: Prepared = pickle.loads(payload)
            outcome = execute(trial, load, cap_threads=False)
            if trial.client is not None:
                trial.client.close()
            _write_frames(out, [(b"R", pickle.dumps(outcome))])
        code = 0
    except BaseException:  # noqa: BLE001 - our own failure: say it on the worker's stderr
        traceback.print_exc()
    finally:
        os._exit(code)


def _reseed() -> None:
    """Give numpy's global generator fresh entropy, as a new interpreter would have (`random`
    reseeds itself after a fork; numpy does not, and forked trials would draw alike). Where the
    template has not loaded numpy.random, a trial that uses it imports it afresh, seeded."""
    rnd = sys.modules.get("numpy.random")
    if rnd is not None:
        import numpy

        rnd.seed(numpy.frombuffer(os.urandom(32), dtype=numpy.uint32))


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
    """A forked trial process, as the template sees it."""

    def __init__(self, trial: Prepared, timeout: float | None, pid: int, go: int | None,
                 out: int, before: _Child | None) -> None:  # fmt: skip
        self.trial, self.task, self.timeout, self.pid = trial, trial.task, timeout, pid
        self.go, self.out = go, out  # the write end of its go pipe; the read end of its output
        self.before = before  # the trial forked just before it, which hands over to it
        self.exited = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
        self.buffer = bytearray()  # frames not read yet
        self.handed_over = False  # its function returned and it started its successor
        self.after: _Child | None = None  # the child forked next: its successor
        self.concluded = False  # its final record is written
        self.answered = False  # the engine has its trial's answer
        self.open = True  # its output pipe has not reached end of file
        self.deadline: float | None = None
        self.outcome: str | None = None  # "cancelled" or "timeout": the template ended it
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
        return [fd for fd in (self.go, self.out, self.exited, self.tasks) if fd is not None]

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


class Template:
    """The fork server. Up to three kinds of trial children at a time: `next`, forked ahead
    and waiting for its go; `active`, whose function runs; and `closing` ones writing their
    records. So a trial starts the moment the one before returns, its fork and set-up done.
    Trials sent with `reuse` run one after the other in one child instead (`reused`)."""

    def __init__(self, conn: Connection, idle_s: float | None = SPARE_IDLE_S,
                 own_process: bool = True) -> None:  # fmt: skip
        """`idle_s`: exit when given nothing to do for that long (None: never). With
        `own_process=False` (a Spark task lends this process), serve() returns when the engine
        closes the connection instead of ending the process."""
        self.conn, self.idle_s, self.own_process = conn, idle_s, own_process
        self.queue: deque[tuple[TrialTask, float | None, bool]] = deque()
        self.functions: dict[str, bytes] = {}
        self.next: _Child | None = None
        self.reused: _Child | None = None  # the child that runs reuse trials, running or idle
        self.active: _Child | None = None
        self.closing: list[_Child] = []
        self.last: _Child | None = None  # the child forked last
        self.started_at = time.time()
        self.chain = os.pipe()  # the go pipe of the next child to fork
        self.loaded: dict[str, Callable[..., Any] | None] = {}  # unpickled functions
        self.cfg: project.Project | None = None  # the project, for the trials' env
        self.env: dict[str, str] = {}
        # Answers go out without blocking: a large record written while the engine writes a
        # large task would otherwise leave both blocked, each on a full socket buffer.
        self.outbox = bytearray()
        self.out = socket.socket(fileno=os.dup(conn.fileno()))

    def send(self, kind: str, trial_id: str, payload: Any = None) -> None:
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
            while True:
                self._fork_ahead()
                self._start()
                self._fork_ahead()  # the one after: its fork and set-up overlap this trial
                self._step()
        except _EngineGone:
            end_descendants()
            for child in self.children():
                child.close()
            for fd in self.chain:
                os.close(fd)
            self.out.close()

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
                self.send("fresh", "", not _changed_modules(self.started_at))
            return
        if message[0] == "task":
            task, timeout, reuse = message[1:]
            if task.fn_bytes is not None:
                self.functions[task.fn_key] = task.fn_bytes
            self.queue.append((task, timeout, reuse))
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
        """Warm up for the task's function (once) and set the trial up; None when its folder
        cannot be made (answered: it fails alone)."""
        if task.fn_key not in self.loaded:
            self.loaded[task.fn_key] = warm_up(self.functions[task.fn_key])
        try:
            if self.cfg is None or task.env != self.env:
                os.environ.update(task.env)
                self.cfg, self.env = project.current(), task.env
            return prepare(task, keep=set(), cfg=self.cfg)
        except Exception as err:  # noqa: BLE001 - reported as the trial's failure
            self.send("crashed", task.trial_id, f"could not be set up: {err!r}")
            return None

    def _forked(self, run: Callable[[Callable[[], Callable[..., Any]]], None], fn_key: str) -> int:
        """Fork a child that calls `run(load)` (`load` gives the trial function: the one
        unpickled here, each child its own pristine copy) and never returns."""
        fn, fn_bytes = self.loaded[fn_key], self.functions[fn_key]
        gc.freeze()  # the child's collections leave the template's objects (and pages) alone
        pid = os.fork()
        if pid == 0:
            with contextlib.suppress(OSError):
                os.setpgid(0, 0)
            self.out.close()  # the engine's socket is the template's, never a trial's
            run((lambda: fn) if fn is not None else (lambda: cloudpickle.loads(fn_bytes)))
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # its own group, so a cancel reaches what it started
        return pid

    def _fork_ahead(self) -> None:
        if self.next is not None or not self.queue or self.queue[0][2]:
            return  # a reuse trial is not forked ahead: it runs in the reused child
        task, timeout, _ = self.queue.popleft()
        trial = self._prepare(task)
        if trial is None:
            return
        (go_read, go), successor = self.chain, os.pipe()
        out, out_write = os.pipe()
        others = [fd for c in self.children() for fd in c.fds()] + [go, successor[0], out]
        gate = _Gate(go_read, successor[1], out_write)
        pid = self._forked(lambda load: _child(self.conn, others, gate, trial, load), task.fn_key)
        os.close(go_read)
        os.close(out_write)
        self.chain = successor  # this child holds its write end too, to hand over
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
            if before.handed_over:  # it started this one, forked before or after its end
                self._running(child, records.now())  # unless written at that hand-over
                return
        # Nothing an earlier trial left behind may meet this one.
        end_descendants(keep={c.pid for c in self.children()})
        with contextlib.suppress(OSError):  # it died while waiting: its exit tells
            os.write(child.go, _GO)
        self._running(child, records.now())

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
            others = [fd for c in self.children() for fd in c.fds()] + [tasks, out, *self.chain]
            run = lambda load: _reused_child(self.conn, others, tasks_read, out_write, load)  # noqa: E731
            pid = self._forked(run, task.fn_key)
            os.close(tasks_read)
            os.close(out_write)
            os.set_blocking(out, False)
            child = self.reused = _Child(trial, timeout, pid, None, out, None)
            child.tasks, child.key = tasks, key
        trial.record.started = records.now()
        child.assign(trial, timeout)
        self.active = child
        shown = replace(trial, task=replace(task, fn_bytes=None))  # the child has the function
        with contextlib.suppress(OSError):  # it died: its exit answers for the trial
            _write_frames(child.tasks, [(b"T", pickle.dumps(shown))])
        with contextlib.suppress(OSError):  # the final record still comes
            records.write_trial(trial.loc, trial.record)

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
        for child in self.children():
            if child.open:
                poller.register(child.out, select.POLLIN)
            if child.exited is not None:
                poller.register(child.exited, select.POLLIN)
            else:  # no pidfd here: look for exits every 50 ms
                wait_s = 0.05
        busy = [c for c in self.children() if c is not self.reused or c is self.active]
        idle = not busy and not self.queue and not self.outbox and self.idle_s is not None
        if idle:  # a spare between experiments: it exits when unused for long
            wait_s = self.idle_s
        active = self.active
        if active is not None and active.deadline is not None:
            left = max(0.0, active.deadline - time.monotonic())
            wait_s = left if wait_s is None else min(wait_s, left)
        events = poller.poll(None if wait_s is None else wait_s * 1000)
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
        for child in self.children():
            done, status = os.waitpid(child.pid, os.WNOHANG)
            if done:
                self._finish(child, status)

    def _read(self, child: _Child) -> None:
        """Act on a child's frames: its records are written here, in the warm template,
        beside the trial rather than on its critical path."""
        trial = child.trial
        for tag, payload in child.frames():
            if tag == b"D":
                child.handed_over = True
                if child.after is not None:  # started at that moment
                    self._running(child.after, payload.decode())
            elif tag == b"R" and child.outcome is None:
                record = conclude(trial, pickle.loads(payload))
                child.concluded = True
                self.send("record", trial.task.trial_id, pickle.dumps(record))
                child.answered = True
                if child is self.reused and child is self.active:
                    self.active = None  # idle, for the next reuse trial

    def _running(self, child: _Child, started: str) -> None:
        """Write a started trial's RUNNING record (unless its final one is written already)."""
        record = child.trial.record
        if child.concluded or record.started is not None:
            return
        record.started = started
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
            end_descendants(keep={c.pid for c in self.children()})
        if child.answered:
            return
        discard(child.trial)
        trial_id = child.task.trial_id
        if child.outcome is not None:
            self.send(child.outcome, trial_id)
        else:
            self.send("crashed", trial_id, _ended(status))


def _connection_frame(data: bytes) -> bytes:
    """`data` framed as multiprocessing.connection.Connection.send_bytes frames it (its API
    has no non-blocking send): a 4-byte length, or -1 and an 8-byte length past 2 GiB."""
    if len(data) > 0x7FFFFFFF:
        return struct.pack("!i", -1) + struct.pack("!Q", len(data)) + data
    return struct.pack("!i", len(data)) + data


def _changed_modules(since: float) -> list[str]:
    """Modules imported here, outside the standard library and site-packages, whose file
    changed after `since`: a template that imported them would run old code."""
    import sysconfig

    libraries = tuple({sysconfig.get_paths()[k] for k in ("stdlib", "platstdlib", "purelib",
                                                          "platlib")})  # fmt: skip
    changed = []
    for name, module in list(sys.modules.items()):
        path = getattr(module, "__file__", None)
        if not path or path.startswith(libraries):
            continue
        with contextlib.suppress(OSError):
            if os.stat(path).st_mtime > since:
                changed.append(name)
    return changed


def _keep(template: int) -> None:
    """Wait for the template; then end what is left and exit as it did. The engine's death
    (a signal, or the watch thread seeing it) only kills the template: this thread alone
    reaps and cleans up, so no two threads wait for children or run the clean-up at once
    (that deadlocked a keeper once in a hundred runs)."""
    parent = os.getppid()

    def stop(*_: object) -> None:
        with contextlib.suppress(OSError):
            os.kill(template, signal.SIGKILL)

    signal.signal(signal.SIGTERM, stop)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)

    def watch() -> None:  # the engine's process died before the signal could be set
        while os.getppid() == parent:
            time.sleep(0.5)
        stop()

    threading.Thread(target=watch, name="hops-keeper", daemon=True).start()
    _, status = os.waitpid(template, 0)
    try:
        end_descendants()
        sweep_workdirs(os.getpid())
    finally:
        if os.WIFSIGNALED(status):  # report the template's death as ours (the engine names it)
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
    template = os.fork()
    if template:
        os.close(fd)
        _keep(template)
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)  # the template never outlives its keeper
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)  # a trial's orphans come here, to be ended
    try:
        idle_s = float(os.environ.get(IDLE_ENV) or SPARE_IDLE_S)
    except ValueError:
        idle_s = SPARE_IDLE_S
    Template(Connection(socket.socket(fileno=fd).detach()), idle_s=idle_s).serve()


if __name__ == "__main__":
    main()
