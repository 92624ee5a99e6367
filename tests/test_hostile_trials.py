"""Trials that break their own process or attack their worker, in both modes (a fresh process
per trial, and `reuse_workers=True`): each takes down at most itself, the run finishes, the
record says what happened, and nothing of it outlives the experiment."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from hops import experiment
from hops_jupyter.core.experiment import ExperimentFailed
from hops_jupyter.core.experiment.engines import local

BOTH = pytest.mark.parametrize("reuse", [False, True], ids=["fresh", "reuse"])


def _by_i(result):
    return {t.params["i"]: t for t in result.trials}


def _remove_own_folder(i):
    import shutil

    from hops import tensorboard

    shutil.rmtree(tensorboard.logdir())  # "clean my logdir", without making it again
    return float(i)


@BOTH
def test_trials_that_remove_their_own_folder_are_still_recorded(hops_home, reuse):
    # Each removes it as it starts, when its RUNNING record is written: before it runs, never
    # beside it (that made its rmtree fail, 2 trials in 100 under load).
    result = experiment.grid_search(
        _remove_own_folder, {"i": list(range(12))}, workers=1, reuse_workers=reuse
    )
    by = _by_i(result)
    assert [by[i].status for i in range(12)] == ["FINISHED"] * 12, [t.error for t in by.values()]
    assert [by[i].metric for i in range(12)] == [float(i) for i in range(12)]
    assert len(experiment.get(result.id).trials) == 12  # their records are on disk again


def _escape(i, pidfile):
    import ctypes
    import os

    if i == 1:  # turn off being a subreaper, then double-fork a daemon in its own session
        ctypes.CDLL(None).prctl(36, 0, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER, 0
        pid = os.fork()
        if pid == 0:
            os.setsid()
            if os.fork() == 0:
                with open(pidfile, "w") as f:
                    f.write(str(os.getpid()))
                os.execvp("sleep", ["sleep", "600"])
            os._exit(0)
        os.waitpid(pid, 0)
        while not os.path.exists(pidfile):
            pass
    return float(i)


def test_a_daemon_that_escapes_its_trial_ends_with_the_trial(hops_home, tmp_path):
    pidfile = str(tmp_path / "daemon")
    result = experiment.grid_search(
        _escape, {"i": [0, 1, 2, 3], "pidfile": [pidfile]}, workers=1
    )  # the worker stays warm after: the daemon must not live on under it
    assert all(t.status == "FINISHED" for t in result.trials)
    daemon = int(open(pidfile).read())
    # Ended as its trial's process exits (after that trial's record, so the run may return
    # a moment before).
    deadline = time.monotonic() + 5
    while psutil.pid_exists(daemon) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not psutil.pid_exists(daemon)


def _odd_metric(i):
    class Opaque:
        def __repr__(self):
            raise RuntimeError("no repr")

    if i == 0:
        return list(range(1_000_000))
    if i == 1:
        return 10**400
    if i == 2:
        return {"metric": 2.0, "extra": Opaque()}
    return float(i)


def test_odd_return_values_give_short_clear_errors(hops_home):
    by = _by_i(experiment.grid_search(_odd_metric, {"i": [0, 1, 2, 3]}, workers=1))
    assert by[0].status == "FAILED" and len(by[0].error["message"]) < 300
    assert "metric must be a number, got [0, 1, 2" in by[0].error["message"]
    assert by[1].status == "FAILED" and "does not fit in a float" in by[1].error["message"]
    assert by[2].status == "FINISHED" and by[2].metric == 2.0
    assert "Opaque" in by[2].returned["extra"]  # stored as what it is; the trial kept


def _leave_timers_and_handlers(i):
    import signal
    import sys
    import time

    if i == 0:
        import ctypes
        import faulthandler
        import resource

        signal.alarm(1)  # would kill the next trial, 1 s on
        signal.setitimer(signal.ITIMER_REAL, 1.0, 0.2)
        ctypes.CDLL(None).signal(signal.SIGCHLD, 1)  # SIG_IGN through libc: Python never sees
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
        faulthandler.dump_traceback_later(1, exit=True)
        used = resource.getrusage(resource.RUSAGE_SELF)
        resource.setrlimit(resource.RLIMIT_CPU, (int(used.ru_utime + used.ru_stime) + 1, -1))

        class Broken:
            def write(self, text):
                raise OSError("broken stdout")

            def flush(self):
                raise OSError("broken flush")

        sys.stdout = sys.stderr = Broken()
        return 0.0
    end = time.monotonic() + 1.5  # the timers would have gone off, and 1 s of CPU been used
    while time.monotonic() < end:
        pass
    import os

    assert signal.SIGUSR1 not in signal.pthread_sigmask(signal.SIG_BLOCK, [])

    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)  # ChildProcessError if SIGCHLD were still ignored
    print("printed")  # an OSError if sys.stdout were still the broken one
    return float(i)


def test_a_reused_process_gets_back_its_timers_handlers_and_streams(hops_home):
    result = experiment.grid_search(
        _leave_timers_and_handlers, {"i": [0, 1, 2]}, workers=1, reuse_workers=True
    )
    by = _by_i(result)
    assert [by[i].status for i in range(3)] == ["FINISHED"] * 3, [t.error for t in by.values()]


def _kill_my_parent(i):
    import os
    import signal
    import time

    if i == 2:
        os.kill(os.getppid(), signal.SIGKILL)  # the fork server
        time.sleep(5)
    return float(i)


@BOTH
def test_a_trial_that_kills_its_fork_server_fails_alone(hops_home, reuse):
    t0 = time.monotonic()
    result = experiment.grid_search(
        _kill_my_parent, {"i": list(range(6))}, workers=1, reuse_workers=reuse
    )
    assert time.monotonic() - t0 < 20  # not the dying worker's 30 s grace: within seconds
    by = _by_i(result)
    assert by[2].status == "FAILED" and by[2].error["type"] == "WorkerCrashed"
    assert "fork server was killed by signal SIGKILL while this trial ran" in by[2].error["message"]
    # The trial handed to that worker ahead never started: it runs on the new worker.
    assert [by[i].status for i in (0, 1, 3, 4, 5)] == ["FINISHED"] * 5, [
        (i, t.error) for i, t in by.items()
    ]
    assert all(by[i].metric == float(i) for i in (0, 1, 3, 4, 5))


def _stop_my_parent(i):
    import os
    import signal

    if i == 1:
        os.kill(os.getppid(), signal.SIGSTOP)  # the fork server: it would answer nothing
    return {"metric": float(i), "server": os.getppid()}


@BOTH
def test_a_fork_server_stopped_by_a_trial_is_continued(hops_home, reuse):
    t0 = time.monotonic()
    result = experiment.grid_search(
        _stop_my_parent, {"i": [0, 1, 2, 3, 4]}, workers=1, reuse_workers=reuse
    )
    by = _by_i(result)
    assert [by[i].status for i in range(5)] == ["FINISHED"] * 5
    # The same worker, kept warm, serves the next experiment: continued when next asked.
    again = experiment.grid_search(lambda i: float(i), {"i": [0, 1, 2]}, workers=1)
    assert all(t.status == "FINISHED" for t in again.trials)
    assert time.monotonic() - t0 < 15  # not the hang grace period (30 s) of a hung worker
    assert psutil.Process(by[1].returned["server"]).status() != psutil.STATUS_STOPPED


def test_spare_workers_that_no_longer_answer_are_killed(hops_home, monkeypatch):
    monkeypatch.setattr(local, "RETIRE_S", 1.0)
    experiment.grid_search(lambda i: float(i), {"i": [0, 1]}, workers=2)
    spares = [w for w in local._SPARES if w.env["HOPS_HOME"] == str(hops_home)]
    assert len(spares) == 2
    dispatchers = [psutil.Process(w.proc.pid).children()[0] for w in spares]
    for dispatcher in dispatchers:
        dispatcher.suspend()  # kept warm, and now silent
    # The next experiment finds them silent (asked at once: 5 s in all, not 5 s each), takes
    # new workers, and the old ones go.
    t0 = time.monotonic()
    second = experiment.grid_search(lambda i: float(i), {"i": [0, 1]}, workers=2)
    assert all(t.status == "FINISHED" for t in second.trials)
    assert time.monotonic() - t0 < 9
    deadline = time.monotonic() + 10
    pids = [d.pid for d in dispatchers] + [w.proc.pid for w in spares]
    while not all(map(_gone, pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert all(map(_gone, pids))


def _gone(pid):
    """Ended: no such process, or one that only waits to be reaped by its new parent."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _close_everything(i):
    import os

    if i == 1:
        os.closerange(3, 4096)  # the trial's own pipes to its worker go too
    return float(i)


@BOTH
def test_a_trial_that_closes_its_pipes_fails_alone_and_says_why(hops_home, reuse):
    by = _by_i(
        experiment.grid_search(_close_everything, {"i": [0, 1, 2]}, workers=1, reuse_workers=reuse)
    )
    assert by[1].status == "FAILED" and by[1].error["type"] == "WorkerError"
    assert "closes file descriptors" in by[1].error["message"]
    assert "Bad file descriptor" in by[1].error["traceback"]  # from its stderr.log
    assert by[0].status == by[2].status == "FINISHED"


def _import_crashing_module(i):
    import crashes_on_import  # noqa: F401 - imported ahead by the fork server, which dies

    return float(i)


@pytest.mark.timeout(60)  # a loop of new workers would otherwise hold the suite for 300 s
def test_a_fork_server_that_dies_at_every_start_fails_the_trials_instead_of_looping(
    hops_home, tmp_path, monkeypatch
):
    (tmp_path / "crashes_on_import.py").write_text("import ctypes\nctypes.string_at(0)\n")
    monkeypatch.syspath_prepend(str(tmp_path))  # the workers' import path follows the driver's
    t0 = time.monotonic()
    with pytest.raises(ExperimentFailed, match="died before this trial could start, 3 times") as e:
        experiment.grid_search(_import_crashing_module, {"i": [0, 1, 2]}, workers=1)
    assert "killed by signal SIGSEGV" in str(e.value)
    assert time.monotonic() - t0 < 30


def _kill_server_after_a_slow_return(i):
    import os
    import signal
    import time

    class Slow:
        def __repr__(self):
            time.sleep(3)  # read after the hand-over: the successor is running meanwhile
            return "Slow()"

    if i == 1:
        return {"metric": 1.0, "slow": Slow()}
    if i == 2:
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(5)
    return float(i)


def test_a_trial_that_returned_is_recorded_when_its_successor_kills_the_server(hops_home):
    by = _by_i(
        experiment.grid_search(_kill_server_after_a_slow_return, {"i": [0, 1, 2, 3]}, workers=1)
    )
    assert by[1].status == "FINISHED" and by[1].returned["slow"] == "Slow()"
    assert by[2].status == "FAILED" and "fork server" in by[2].error["message"]
    assert by[0].status == by[3].status == "FINISHED"


def _stop_server_then(i, then):
    import os
    import signal
    import time

    if i == 1:
        os.kill(os.getppid(), signal.SIGSTOP)
        if then == "crash":
            os._exit(3)
        time.sleep(60)
    return float(i)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("then", ["crash", "overrun"])
def test_the_last_trial_may_stop_its_server_and_then_crash_or_overrun(hops_home, then):
    t0 = time.monotonic()
    by = _by_i(
        experiment.grid_search(
            _stop_server_then,
            {"i": [0, 1], "then": [then]},
            workers=1,
            timeout=None if then == "crash" else 2,
        )  # fmt: skip
    )
    assert by[0].status == "FINISHED"
    expected = "WorkerCrashed" if then == "crash" else "TrialTimeout"
    assert by[1].status == "FAILED" and by[1].error["type"] == expected
    assert time.monotonic() - t0 < 15


def _stop_server_with_big_params(i, blob):
    import os
    import signal

    if i == 1:
        os.kill(os.getppid(), signal.SIGSTOP)  # the next set-up sent to it exceeds a buffer
    return float(i)


@pytest.mark.timeout(60)
def test_a_stopped_server_does_not_block_a_large_set_up(hops_home):
    t0 = time.monotonic()
    result = experiment.grid_search(
        _stop_server_with_big_params, {"i": [0, 1, 2, 3], "blob": ["x" * 3_000_000]},
        workers=1, timeout=5,
    )  # fmt: skip
    assert [t.status for t in result.trials] == ["FINISHED"] * 4
    assert time.monotonic() - t0 < 20


def _import_only_if_negative(i):
    if i < 0:
        import hangs_on_import  # noqa: F401 - never taken, but imported ahead by the server

    return float(i)


@pytest.mark.timeout(60)
def test_an_import_that_hangs_in_the_warm_up_is_given_up(hops_home, tmp_path, monkeypatch):
    (tmp_path / "hangs_on_import.py").write_text("import time\ntime.sleep(3600)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("HOPS_WARM_UP_S", "1")
    t0 = time.monotonic()
    result = experiment.grid_search(_import_only_if_negative, {"i": [0, 1, 2]}, workers=1)
    assert [t.status for t in result.trials] == ["FINISHED"] * 3
    assert time.monotonic() - t0 < 15


def test_a_process_whose_parent_died_before_it_could_ask_to_die_with_it_exits(tmp_path):
    # A trial that kills its fork server the moment it starts can do so while the server forks
    # the next trial, before that child has set its parent-death signal: the child must not
    # live on, waiting for a go that never comes (the dying worker waited 30 s for it in CI).
    survived = tmp_path / "survived"
    script = f"""
import os, time
from hops_jupyter.core.experiment.engines.forkserver import die_with
parent = os.getpid()
if os.fork() == 0:
    time.sleep(0.3)  # the parent exits meanwhile
    die_with(parent)
    open({str(survived)!r}, "w").close()
    os._exit(0)
os._exit(0)
"""
    subprocess.run([sys.executable, "-c", script], check=True)
    time.sleep(1.0)
    assert not os.path.exists(survived)


def _kill_my_worker(i, who):
    import os
    import signal
    import time

    import psutil

    if i == 1:  # above the fork server: the worker's dispatcher, or the keeper above that
        # Trial 0's outcome reaches the engine through the dispatcher: let it get there first
        # (when it has not, trial 0 is lost too, as the engine cannot tell it ended).
        time.sleep(1)
        dispatcher = psutil.Process(os.getppid()).parent()
        victim = dispatcher if who == "dispatcher" else dispatcher.parent()
        os.kill(victim.pid, signal.SIGKILL)
        time.sleep(5)
    return float(i)


@pytest.mark.parametrize("who,reuse", [("dispatcher", False), ("dispatcher", True),
                                       ("keeper", False)])  # fmt: skip
def test_trials_waiting_on_a_worker_that_dies_run_on_another(hops_home, who, reuse):
    result = experiment.grid_search(
        _kill_my_worker, {"i": [0, 1, 2, 3], "who": [who]}, workers=1, reuse_workers=reuse
    )
    by = _by_i(result)
    assert by[1].status == "FAILED" and by[1].error["type"] == "WorkerCrashed"
    assert "killed by signal SIGKILL" in by[1].error["message"]
    # The one handed to that worker behind it had not started (no RUNNING record): moved on.
    assert [by[i].status for i in (0, 2, 3)] == ["FINISHED"] * 3, [t.error for t in by.values()]
