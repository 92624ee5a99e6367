"""The fork server of a local worker: the process that forks every trial, and the trial's side.

A process that forks trials and also writes their records pays for every page it touches
while a child shares it (a copy-on-write fault, ~4 us on a VM): ~600 per trial, 2-3 ms of CPU
(measured). So the worker splits the jobs: the dispatcher (worker.py) talks to the engine and
writes records, and never forks; this process, forked from it at its start, imports what the
trial function imports and forks one child per trial, touching almost nothing between forks.

Protocol over a Unix stream socket, frames of a `!IB` header (length, count of file
descriptors sent with it) and a pickled tuple. Dispatcher to server: ("fork", kind, fn_key,
fn_bytes or None, env, payload) with the child's pipes, answered ("forked", pid); kind "trial"
(payload: the pickled `Prepared`; pipes: go, successor, out) or "reused" (pipes: tasks, out).
("sweep", keep): end every process below the server but `keep` and theirs, answered
("swept",). ("changed", since): answered ("changed", modules changed on disk). Server to
dispatcher, unasked: ("exit", pid, status) when a child it forked has exited (reaped here).
"""

from __future__ import annotations

import array
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
import time
import traceback
import types
from collections import deque
from collections.abc import Callable
from typing import Any

import cloudpickle

from hops_jupyter.core.experiment import records
from hops_jupyter.core.experiment.threads import cap_loaded_pools, trial_threads
from hops_jupyter.core.experiment.trial import Prepared, end_descendants, execute

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36
# A child's output is frames: a tag byte and a length, then the payload. D: its function
# returned and it started its successor (payload: when, ISO), R: its outcome (a pickled
# trial.Outcome). Both come in one write after the hand-over.
_FRAME = struct.Struct("!cQ")
# On a child's go pipe: start. _GO comes from the dispatcher, which wrote the RUNNING record
# before; _HANDED from the trial before it, and the child writes that record itself before its
# function runs (a trial that removes its own folder must not race a write into it), when its
# folder is local (records.StartRecord); on HDFS the dispatcher writes it, off the trial's path.
_GO, _HANDED = b"G", b"H"
# A child's exit code when our own code in it failed (not the trial's function: its errors are
# its outcome). A trial's own os._exit(87) reads the same; the trial's stderr.log tells.
OWN_FAILURE = 87
# The most a fork server spends importing ahead what a function imports ($HOPS_WARM_UP_S).
WARM_UP_S = 20.0  # below the engine's grace for a silent worker (link.GRACE_S)
WARM_UP_ENV = "HOPS_WARM_UP_S"
# Modules the fork server never imports ahead (forking after they start threads is unsafe).
_NO_PRELOAD = ("multiprocessing", "concurrent", "threading", "asyncio", "hops_jupyter")


try:  # looked up once: every forked trial calls it twice
    _LIBC_PRCTL: Any = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: no subreaper, no parent-death signal
    _LIBC_PRCTL = None


def _prctl(option: int, value: int) -> None:
    if _LIBC_PRCTL is not None:
        _LIBC_PRCTL(option, value, 0, 0, 0)


def die_with(parent: int) -> None:
    """In a process just forked from `parent`: be killed when it dies, and exit now if it died
    already (between the fork and here, when the signal could not yet be set; a child that
    missed it would wait for a go that never comes)."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if _LIBC_PRCTL is not None and os.getppid() != parent:
        os._exit(0)


# --- the fork server's warm-up ---------------------------------------------------------------


def _code_imports(code: types.CodeType) -> list[str]:
    """Absolute module names the code imports (`import x.y`, `from x import y`), and for
    `from x import y` also `x.y`, which may be a submodule (`from hops import hdfs`)."""
    found, instructions = [], list(dis.get_instructions(code))
    for i, ins in enumerate(instructions):
        if ins.opname == "IMPORT_NAME" and i >= 2 and instructions[i - 2].argval == 0:
            found.append(ins.argval)
            names = instructions[i - 1].argval
            if isinstance(names, tuple):
                found += [f"{ins.argval}.{name}" for name in names if name != "*"]
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


class _TooSlow(Exception):
    """The warm-up ran past its time ($HOPS_WARM_UP_S)."""


def _too_slow(*_: object) -> None:
    raise _TooSlow


def warm_up(fn_bytes: bytes) -> Callable[..., Any] | None:
    """Unpickle the trial function in the fork server and import what it will import, then cap
    the thread pools those imports loaded, so every forked trial starts warm and within its
    thread limit. The function, or None when it does not unpickle here (each trial then tries,
    and records the error). It takes at most $HOPS_WARM_UP_S seconds: an import that hangs
    (one in a branch the trials never take, waiting on a network) is given up, not the run."""
    try:
        budget = float(os.environ.get(WARM_UP_ENV) or WARM_UP_S)
    except ValueError:
        budget = WARM_UP_S
    previous = signal.signal(signal.SIGALRM, _too_slow)
    signal.setitimer(signal.ITIMER_REAL, max(budget, 0.001))
    try:
        with contextlib.redirect_stdout(None):
            fn = cloudpickle.loads(fn_bytes)  # imports the modules its globals refer to
            names = imports_of(fn)
            # numpy.random loads lazily, in ~7 ms: once here for a function that names numpy,
            # not per trial. Not for others: each child reseeds it (_reseed), ~150 page faults.
            if any(name.split(".")[0] == "numpy" for name in names):
                names.append("numpy.random")
            for name in names:
                if name.split(".")[0] not in _NO_PRELOAD:
                    try:
                        importlib.import_module(name)
                    except _TooSlow:
                        break
                    except BaseException:  # noqa: BLE001, S112 - the trial will say it
                        continue
    except BaseException:  # noqa: BLE001 - a warm-up never stops the worker
        return None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    threads = trial_threads()
    if threads > 0:
        with contextlib.suppress(Exception):
            cap_loaded_pools(threads)  # kept by every child this server forks
    return fn


# --- one trial in a forked child ------------------------------------------------------------


def _write_frames(fd: int, frames: list[tuple[bytes, bytes]]) -> None:
    _write_all(fd, b"".join(_FRAME.pack(tag, len(payload)) + payload for tag, payload in frames))


def _write_all(fd: int, data: bytes) -> None:
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
    instead of a round trip through the dispatcher; the child then writes its RUNNING record,
    `start`), or from the dispatcher, which wrote that record first; at the end it hands over
    to its successor."""

    def __init__(
        self, go: int, successor: int, out: int, start: records.StartRecord | None
    ) -> None:
        self.go, self.successor, self.out, self.said_done = go, successor, out, False
        self.start, self.handed_over_at = start, ""
        self.pid = os.getpid()

    def wait(self) -> str:
        how = os.read(self.go, 1)
        if not how:  # no writer is left: the dispatcher is gone
            os._exit(0)
        started = records.now()
        if how == _HANDED and self.start is not None:
            with contextlib.suppress(OSError):  # the final record still comes
                self.start.write(started)
        return started

    def done(self) -> None:
        _only(self.pid)
        if not self.said_done:  # the trial's processes are ended already (execute)
            self.said_done = True
            # Its function has returned: were its successor to kill the fork server, this
            # process still reports how the trial ended (and then exits, adopted by the
            # dispatcher), instead of dying with the server.
            _prctl(_PR_SET_PDEATHSIG, 0)
            with contextlib.suppress(OSError):
                os.write(self.successor, _HANDED)
            self.handed_over_at = records.now()
            # What is left of this trial steps aside while its successor starts: the CPU it
            # is on is the one the successor was woken on.
            with contextlib.suppress(OSError):
                os.nice(10)
            time.sleep(0.001)

    def finish(self, outcome: bytes) -> None:
        """Tell the dispatcher, in one write, that the trial handed over and how it ended; not
        at the hand-over itself, so that the dispatcher's work does not compete with the
        successor's start."""
        _only(self.pid)
        done = [(b"D", self.handed_over_at.encode())] if self.said_done else []
        _write_frames(self.out, [*done, (b"R", outcome)])


def _child(gate: _Gate, trial: Prepared, load: Callable[[], Callable[..., Any]]) -> None:
    """In the forked child: wait for the go, run the trial's function, send its outcome, exit.
    The dispatcher set the trial up and writes its records."""

    def run() -> None:
        outcome = execute(trial, load, cap_threads=False, gate=gate)
        gate.done()
        gate.finish(pickle.dumps(outcome))

    _in_child(run, lambda: trial)


def _reused_child(tasks: int, out: int, load: Callable[[], Callable[..., Any]]) -> None:
    """In a reused child: run the trials the dispatcher sends (pickled `Prepared`s), one after
    the other, each outcome sent back as it ends; exit when the dispatcher closes the pipe."""

    current: list[Prepared] = []

    def run() -> None:
        me, start = os.getpid(), _ProcessState()
        while (payload := _read_frame(tasks)) is not None:
            trial: Prepared = pickle.loads(payload)
            current[:] = [trial]
            outcome = execute(trial, load, cap_threads=False)
            _only(me)
            start.restore()
            if trial.client is not None:
                trial.client.close()
            _write_frames(out, [(b"R", pickle.dumps(outcome))])

    _in_child(run, lambda: current[0] if current else None)


class _ProcessState:
    """What a reused child restores after each trial, beyond what the README says a trial may
    leave to the next (globals, threads, environment): timers (faulthandler's too), signal
    handlers and mask, resource limits and the standard streams. A trial's `signal.alarm(1)`
    or CPU limit would otherwise kill the next one; its broken `sys.stdout`, or SIGCHLD
    ignored, would fail every trial after it."""

    _TIMERS = (signal.ITIMER_REAL, signal.ITIMER_VIRTUAL, signal.ITIMER_PROF)

    def __init__(self) -> None:
        import resource

        self.handlers = {sig: signal.getsignal(sig) for sig in signal.valid_signals()
                         if sig not in (signal.SIGKILL, signal.SIGSTOP)}  # fmt: skip
        self.mask = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        self.limits = {}
        for limit in (getattr(resource, n) for n in dir(resource) if n.startswith("RLIMIT_")):
            with contextlib.suppress(OSError, ValueError):
                self.limits[limit] = resource.getrlimit(limit)
        self.streams = (sys.stdin, sys.stdout, sys.stderr)

    def restore(self) -> None:
        import faulthandler
        import resource

        faulthandler.cancel_dump_traceback_later()
        for timer in self._TIMERS:
            signal.setitimer(timer, 0)  # signal.alarm's timer is ITIMER_REAL
        signal.pthread_sigmask(signal.SIG_SETMASK, self.mask)
        for sig, handler in self.handlers.items():
            # Set again even when Python's view is unchanged: a trial may have changed it
            # through libc (ctypes), which Python does not see.
            with contextlib.suppress(OSError, ValueError, TypeError):
                signal.signal(sig, handler)
        for limit, value in self.limits.items():
            with contextlib.suppress(OSError, ValueError):  # a lowered hard limit stays
                if resource.getrlimit(limit) != value:
                    resource.setrlimit(limit, value)
        sys.stdin, sys.stdout, sys.stderr = (
            stream if stream is None or not stream.closed else open(fd, mode, closefd=False)
            for stream, fd, mode in zip(self.streams, (0, 1, 2), "rww", strict=True)
        )


def _only(pid: int) -> None:
    """End here a process that a trial forked and that returned from the trial's function into
    our code (an `os.fork()` without `os._exit`): only the trial's own process answers for it."""
    if os.getpid() != pid:
        os._exit(0)


def _in_child(run: Callable[[], None], trial: Callable[[], Prepared | None]) -> None:
    """Set a forked child up, call `run`, and exit: with 0 when it returned, with OWN_FAILURE
    when our own code failed (a trial that closed our pipes), its traceback appended to the
    stderr.log of the `trial()` it ran (which its record shows), else to the worker's stderr.
    Never returns."""
    code = OWN_FAILURE
    try:
        # Orphans of what a trial starts come to it, so it ends them all at the trial's end.
        _prctl(_PR_SET_CHILD_SUBREAPER, 1)
        _reseed()
        run()
        code = 0
    except BaseException:  # noqa: BLE001 - our own failure: said where the user looks
        text = f"hops-jupyter could not report this trial's outcome:\n{traceback.format_exc()}"
        ran, fd = trial(), 2
        # A trial's logs on HDFS are copied there at its end, which this one did not reach.
        if ran is not None and ran.loc.scheme == "file":
            with contextlib.suppress(OSError):
                log = os.path.join(ran.loc.path, "stderr.log")
                fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        with contextlib.suppress(OSError):
            _write_all(fd, text.encode(errors="replace"))
    finally:
        os._exit(code)


def _reseed() -> None:
    """Give numpy's global generator fresh entropy, as a new interpreter would have (`random`
    reseeds itself after a fork; numpy does not, and forked trials would draw alike). Where the
    server has not loaded numpy.random, a trial that uses it imports it afresh, seeded."""
    rnd = sys.modules.get("numpy.random")
    if rnd is not None:
        import numpy

        rnd.seed(numpy.frombuffer(os.urandom(32), dtype=numpy.uint32))


def _changed_modules(since: float) -> list[str]:
    """Modules imported here, outside the standard library and site-packages, whose file
    changed after `since`: a fork server that imported them would run old code."""
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


# --- the fork server ------------------------------------------------------------------------

_HEADER = struct.Struct("!IB")  # a frame's length and how many descriptors came with it


class _Frames:
    """Frames and the descriptors sent with them, read from a stream socket in any chunks (a
    chunk's descriptors come with its first byte, so never mix with another frame's)."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.fds: deque[int] = deque()

    def feed(self, data: bytes, fds: list[int]) -> None:
        self.buffer += data
        self.fds.extend(fds)

    def take(self) -> list[tuple[tuple[Any, ...], list[int]]]:
        out = []
        while len(self.buffer) >= _HEADER.size:
            size, count = _HEADER.unpack_from(self.buffer)
            if len(self.buffer) < _HEADER.size + size:
                break
            message = pickle.loads(self.buffer[_HEADER.size : _HEADER.size + size])
            del self.buffer[: _HEADER.size + size]
            out.append((message, [self.fds.popleft() for _ in range(count)]))
        return out


def _send(sock: socket.socket, message: tuple[Any, ...], fds: list[int] | None = None,
          stalled: Callable[[], None] | None = None) -> None:  # fmt: skip
    """Send one frame, `fds` with its first byte, without ever blocking inside a send: while
    the peer takes nothing, `stalled` is called each second (a fork server a trial stopped)."""
    data = pickle.dumps(message)
    frame = memoryview(_HEADER.pack(len(data), len(fds or ())) + data)
    # sendmsg, not socket.send_fds: that drops its flags argument (CPython 3.11).
    rights = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", fds))] if fds else []
    while frame:
        try:
            sent = sock.sendmsg([frame], rights, socket.MSG_DONTWAIT)
        except BlockingIOError:  # full: wait for room, a second at a time
            while not select.select([], [sock], [], 1.0)[1]:
                if stalled is not None:
                    stalled()
            continue
        rights, frame = [], frame[sent:]


class _Server:
    """The fork server's state: the functions it warmed up for and the children it forked."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.functions: dict[str, bytes] = {}
        self.loaded: dict[str, Callable[..., Any] | None] = {}
        self.env: dict[str, str] = {}
        self.children: dict[int, int | None] = {}  # pid: its pidfd (None: no pidfd here)

    def serve(self) -> None:
        frames = _Frames()
        while True:
            poller = select.poll()
            poller.register(self.sock, select.POLLIN)
            for pidfd in self.children.values():
                if pidfd is not None:
                    poller.register(pidfd, select.POLLIN)
            slow = any(pidfd is None for pidfd in self.children.values())
            events = poller.poll(50 if slow else None)  # no pidfd here: look every 50 ms
            if any(fd == self.sock.fileno() for fd, _ in events):
                data, fds, _, _ = socket.recv_fds(self.sock, 1 << 20, 16)
                if not data:  # the dispatcher is gone: so is everything forked here
                    end_descendants()
                    os._exit(0)
                frames.feed(data, fds)
                for message, sent in frames.take():
                    self.handle(message, sent)
            self.reap()

    def handle(self, message: tuple[Any, ...], fds: list[int]) -> None:
        if message[0] == "fork":
            _send(self.sock, ("forked", self.fork(*message[1:], fds=fds)))
        elif message[0] == "sweep":
            end_descendants(keep=message[1])
            _send(self.sock, ("swept",))
        elif message[0] == "changed":
            _send(self.sock, ("changed", _changed_modules(message[1])))

    def fork(self, kind: str, fn_key: str, fn_bytes: bytes | None, env: dict[str, str],
             payload: bytes | None, fds: list[int]) -> int:  # fmt: skip
        """Fork a child for a trial ("trial") or a reused child ("reused"); its pid."""
        if fn_bytes is not None:
            self.functions[fn_key] = fn_bytes
        if fn_key not in self.loaded:
            self.loaded[fn_key] = warm_up(self.functions[fn_key])
        if env != self.env:  # the children's environment (the trial's, set up by the engine)
            os.environ.update(env)
            self.env = env
        fn, fn_bytes = self.loaded[fn_key], self.functions[fn_key]
        gc.freeze()  # the child's collections leave the server's objects (and pages) alone
        server = os.getpid()
        pid = os.fork()
        if pid == 0:
            die_with(server)  # first: a trial may kill the server the moment it starts
            with contextlib.suppress(OSError):
                os.setpgid(0, 0)
            self.sock.close()
            for pidfd in self.children.values():
                if pidfd is not None:
                    os.close(pidfd)
            load = (lambda: fn) if fn is not None else (lambda: cloudpickle.loads(fn_bytes))
            if kind == "trial":
                trial = pickle.loads(payload or b"")
                _child(_Gate(*fds, trial.start), trial, load)
            else:
                _reused_child(*fds, load)
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)  # its own group, so a cancel reaches what it started
        for fd in fds:
            os.close(fd)
        self.children[pid] = os.pidfd_open(pid) if hasattr(os, "pidfd_open") else None
        return pid

    def reap(self) -> None:
        """Reap what exited: children it forked are reported; orphans a trial left, adopted by
        this subreaper, are only reaped. When a child it forked has exited, what else is left
        below this server is ended: a process of a trial that turned its subreaper flag off
        before forking away (a trial's other processes end with it)."""
        exited = False
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid in self.children:
                pidfd = self.children.pop(pid)
                if pidfd is not None:
                    os.close(pidfd)
                _send(self.sock, ("exit", pid, status))
                exited = True
        if exited:
            end_descendants(keep=set(self.children))


class ServerDied(RuntimeError):
    """The fork server is gone (a trial killed it), and with it every child it forked."""


class ForkServer:
    """The dispatcher's handle on its fork server: forked at once, it runs until the handle
    is closed (or the dispatcher dies)."""

    def __init__(self, close: list[int]) -> None:
        """`close`: the dispatcher's descriptors the server must not hold (the engine's, the
        pipes it hands to children)."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        dispatcher = os.getpid()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                die_with(dispatcher)
                ours.close()
                for fd in close:
                    with contextlib.suppress(OSError):
                        os.close(fd)
                # Orphans of a trial's processes come here, to be ended by a sweep.
                _prctl(_PR_SET_CHILD_SUBREAPER, 1)
                _Server(theirs).serve()
            except BaseException:  # noqa: BLE001 - our own failure: said on the worker's stderr
                traceback.print_exc()
            finally:
                os._exit(code)
        theirs.close()
        self.pid, self.sock = pid, ours
        self.frames = _Frames()
        self.exits: list[tuple[int, int]] = []  # (pid, status) reported, not yet taken
        self.sent: set[str] = set()  # the functions the server has

    def fileno(self) -> int:
        return self.sock.fileno()

    def _ask(self, message: tuple[Any, ...], fds: list[int] | None = None) -> tuple[Any, ...]:
        """Send a request and wait for its answer (exits reported meanwhile are kept)."""
        try:
            _send(self.sock, message, fds, stalled=self.resume_if_stopped)
            while True:
                answers = [a for a, _ in self.frames.take() if not self._exit(a)]
                if answers:  # one request at a time: one answer
                    return answers[0]
                while not select.select([self.sock], [], [], 1.0)[0]:
                    self.resume_if_stopped()  # slow (a first import), or stopped by a trial
                data = self.sock.recv(1 << 20)
                if not data:
                    break
                self.frames.feed(data, [])
        except OSError:
            pass
        raise ServerDied("the worker's fork server died")

    def resume_if_stopped(self) -> None:
        """Continue the server if a trial stopped it (SIGSTOP): it would answer nothing, and
        its worker would hang. A tracing stop (a debugger) is left alone."""
        import psutil

        with contextlib.suppress(psutil.Error):
            server = psutil.Process(self.pid)
            if server.status() == psutil.STATUS_STOPPED:
                server.resume()

    def _exit(self, message: tuple[Any, ...]) -> bool:
        """Keep an exit report; False for anything else (an answer)."""
        if message[0] != "exit":
            return False
        self.exits.append((message[1], message[2]))
        return True

    def fork(self, kind: str, fn_key: str, fn_bytes: bytes, env: dict[str, str],
             payload: bytes | None, fds: list[int]) -> int:  # fmt: skip
        """Fork a child (see the module's protocol); its pid."""
        first = fn_key not in self.sent
        self.sent.add(fn_key)
        message = ("fork", kind, fn_key, fn_bytes if first else None, env, payload)
        return int(self._ask(message, fds)[1])

    def sweep(self, keep: set[int]) -> None:
        """End every process below the server but `keep` and their descendants."""
        self._ask(("sweep", keep))

    def changed(self, since: float) -> list[str]:
        """The modules the server imported whose file changed after `since`."""
        return list(self._ask(("changed", since))[1])

    def pending(self) -> bool:
        """Exits already read (while waiting for an answer): the socket will not tell."""
        return bool(self.exits or self.frames.buffer)

    def take_exits(self) -> list[tuple[int, int]]:
        """The (pid, status) of children that exited, read without blocking."""
        while True:
            try:
                data = self.sock.recv(1 << 20, socket.MSG_DONTWAIT)
            except BlockingIOError:
                break
            except OSError:
                data = b""
            if not data:  # its children died with it: nothing would answer for them
                raise ServerDied("the worker's fork server died")
            self.frames.feed(data, [])
        for answer, _ in self.frames.take():
            self._exit(answer)
        exits, self.exits = self.exits, []
        return exits

    def close(self) -> None:
        """End the server and everything it forked (it does, at the end of its socket), and
        reap it."""
        self.sock.close()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)
