"""Every trial starts clean (issue 12): a worker is a fork server, and each trial runs in a
fresh child of its fork server. Nothing one trial leaves (a global, a thread, a child process,
a daemon, its working directory, the environment) is visible to the next trial on the same
worker slot, while the worker itself (and its warm imports) stays."""

from __future__ import annotations

import json
import os
import time

import pytest

from hops import experiment
from hops_jupyter.core.experiment import records


def _leave_and_look(step, log):
    """Trial 'leave' leaves everything behind it can; trial 'look' reports what it sees."""
    import os
    import subprocess
    import sys
    import threading
    import time

    import psutil

    seen = {"pid": os.getpid(), "worker": os.getppid(), "cwd": os.getcwd(),
            "sklearn_preloaded": "sklearn" in sys.modules}  # fmt: skip
    import sklearn  # noqa: F401 - what the fork server imports ahead of the trials

    if step == "leave":
        sys.modules["json"].left_by_trial = True  # a global in a module
        os.environ["LEFT_BY_TRIAL"] = "1"

        def chatter():
            while True:
                print("thread of the first trial", flush=True)
                time.sleep(0.01)

        threading.Thread(target=chatter, daemon=True).start()
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        daemon = subprocess.Popen(  # leaves this trial's process group and session
            [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
        )
        # A double fork: the grandchild is orphaned at once, and writes its own pid.
        subprocess.run([sys.executable, "-c", "import os, sys, time\n"
                        "if os.fork() == 0:\n"
                        "    open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(60)",
                        "orphan.pid"], check=True)  # fmt: skip
        while not (os.path.exists("orphan.pid") and os.path.getsize("orphan.pid")):
            time.sleep(0.01)
        orphan = int(open("orphan.pid").read())
        os.remove("orphan.pid")
        open("left.txt", "w").write("x")
        with open(log, "w") as f:
            json.dump({"pids": [child.pid, daemon.pid, orphan], "cwd": os.getcwd()}, f)
        time.sleep(0.2)
        return {"metric": 0, **seen}
    with open(log) as f:
        left = json.load(f)
    time.sleep(0.1)  # the first trial's thread would have printed by now
    seen.update(
        global_seen=hasattr(sys.modules["json"], "left_by_trial"),
        env_seen="LEFT_BY_TRIAL" in os.environ,
        threads=threading.active_count(),
        processes_alive=[
            p
            for p in left["pids"]
            if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
        ],  # fmt: skip
        files_seen=os.listdir("."),
        cwd_is_new=os.getcwd() != left["cwd"] and not os.path.exists(left["cwd"]),
    )
    return {"metric": 1, **seen}


def test_nothing_of_one_trial_reaches_the_next_on_the_same_worker(hops_home, tmp_path):
    log = str(tmp_path / "left.json")
    result = experiment.grid_search(
        _leave_and_look, {"step": ["leave", "look"], "log": [log]}, workers=1
    )
    by = {t.params["step"]: t for t in result.trials}
    assert all(t.status == "FINISHED" for t in by.values()), [t.error for t in by.values()]
    first, second = by["leave"].returned, by["look"].returned
    assert second["worker"] == first["worker"]  # the same worker slot ...
    assert second["pid"] != first["pid"]  # ... and a fresh process for each trial
    assert second["sklearn_preloaded"]  # warm: the fork server imported it ahead
    assert second["global_seen"] is False
    assert second["env_seen"] is False
    assert second["threads"] == 1
    assert second["processes_alive"] == []
    assert second["files_seen"] == []
    assert second["cwd_is_new"] is True
    folder = records.experiment_dir(result.id).child(by["look"].id)
    printed = open(os.path.join(folder.path, "stdout.log")).read()
    assert "thread of the first trial" not in printed


def _what_is_loaded(i):
    import sys

    return {"metric": float(i), "heavy": [m for m in ("numpy", "pyarrow") if m in sys.modules]}


def test_a_trial_carries_only_what_its_function_imports(hops_home):
    # The fork server loads what the function imports, and not the engine's own heavy
    # libraries (numpy, pyarrow): each would make every fork of it costlier.
    result = experiment.grid_search(_what_is_loaded, {"i": [0, 1]}, workers=1)
    assert [t.returned["heavy"] for t in result.trials] == [[], []]
    result = experiment.grid_search(_draw, {"i": [0]}, workers=1)
    assert result.trials[0].status == "FINISHED"


def _family(i):
    import os

    import psutil

    chain = [psutil.Process(os.getppid())]  # the fork server, then its ancestors
    while chain[-1].parent() is not None and len(chain) < 4:
        chain.append(chain[-1].parent())
    return {"metric": float(i), "ancestors": [p.pid for p in chain],
            "dispatcher_children": [p.pid for p in chain[1].children()]}  # fmt: skip


def test_trials_are_forked_by_a_fork_server_not_by_the_record_writer(hops_home):
    # driver -> keeper -> dispatcher (tasks and records; it forks only the fork server) -> fork
    # server -> each trial.
    result = experiment.grid_search(_family, {"i": [0, 1, 2]}, workers=1)
    assert all(t.status == "FINISHED" for t in result.trials), [t.error for t in result.trials]
    chains = {tuple(t.returned["ancestors"]) for t in result.trials}
    assert len(chains) == 1  # the same worker
    ((server, dispatcher, _keeper, driver),) = chains
    assert driver == os.getpid()
    assert all(t.returned["dispatcher_children"] == [server] for t in result.trials)


def _use_hdfs(i):
    import sys

    preloaded = "hops.hdfs" in sys.modules and "pyarrow" in sys.modules
    from hops import hdfs

    return {"metric": float(i), "preloaded": preloaded, "project": hdfs.project_name()}


def test_a_trial_that_imports_hops_hdfs_finds_it_loaded(hops_home):
    # pyarrow loads on first use, so the fork server loads it ahead for a function that
    # imports hops.hdfs (each trial would otherwise import it anew, in about 0.2 s).
    result = experiment.grid_search(_use_hdfs, {"i": [0, 1]}, workers=1)
    assert [t.returned["preloaded"] for t in result.trials] == [True, True]
    assert all(t.returned["project"] for t in result.trials)


def _fork_and_return_twice(i):
    import os
    import time

    forked = os.fork() == 0 if i == 1 else False  # a careless fork: both processes return
    if i == 1 and not forked:
        time.sleep(0.3)  # the copy returns first
    return {"metric": float(i), "forked_copy": forked, "pid": os.getpid()}


@pytest.mark.parametrize("reuse", [False, True])
def test_a_process_forked_by_a_trial_that_returns_does_not_answer_for_it(hops_home, reuse):
    result = experiment.grid_search(
        _fork_and_return_twice, {"i": [0, 1, 2, 3]}, workers=1, reuse_workers=reuse
    )
    assert sorted(t.params["i"] for t in result.trials) == [0, 1, 2, 3]
    assert all(t.status == "FINISHED" for t in result.trials), [t.error for t in result.trials]
    assert [t.returned["forked_copy"] for t in result.trials] == [False] * 4
    folder = records.experiment_dir(result.id)
    kept = [
        json.load(open(os.path.join(folder.child(t.id).path, "trial.json"))) for t in result.trials
    ]
    assert [k["returned"]["forked_copy"] for k in kept] == [False] * 4


def _draw(i):
    import random

    import numpy as np

    return {"metric": float(i), "py": random.random(), "np": float(np.random.rand())}


def _draw_unseen(i):
    """numpy reached in a way the fork server cannot see ahead: it does not load numpy.random."""
    import importlib
    import sys

    preloaded = "numpy.random" in sys.modules
    rand = importlib.import_module("numpy").random.rand
    return {"metric": float(i), "np": float(rand()), "preloaded": preloaded}


def test_forked_trials_do_not_share_random_state(hops_home):
    # numpy's generator, not loaded ahead for a function that does not name numpy, is
    # imported by each trial afresh: seeded anew, not copied from the fork server.
    result = experiment.grid_search(_draw_unseen, {"i": [0, 1, 2, 3]}, workers=1)
    assert [t.returned["preloaded"] for t in result.trials] == [False] * 4
    assert len({t.returned["np"] for t in result.trials}) == 4
    # Loaded ahead (the function imports numpy), it is reseeded in each trial. The same
    # worker, kept warm, serves both experiments.
    result = experiment.grid_search(_draw, {"i": [0, 1, 2, 3]}, workers=1)
    draws = [(t.returned["py"], t.returned["np"]) for t in result.trials]
    assert len({d[0] for d in draws}) == 4 and len({d[1] for d in draws}) == 4


def _crash_then_run(i):
    import os

    if i == 0:
        os._exit(3)
    if i == 1:
        import time

        time.sleep(30)
    return {"metric": float(i), "worker": os.getppid()}


def test_a_crash_or_timeout_takes_only_its_trial_down(hops_home):
    t0 = time.monotonic()
    result = experiment.grid_search(_crash_then_run, {"i": [0, 1, 2, 3]}, workers=1, timeout=2)
    assert time.monotonic() - t0 < 20
    by = {t.params["i"]: t for t in result.trials}
    assert by[0].status == "FAILED" and "exited with code 3" in by[0].error["message"]
    assert by[1].status == "FAILED" and by[1].error["type"] == "TrialTimeout"
    assert by[2].status == by[3].status == "FINISHED"
    assert by[2].returned["worker"] == by[3].returned["worker"]  # the worker lived on


@pytest.mark.parametrize("workers", [1, 2])
def test_many_short_trials_all_recorded_in_order(hops_home, workers):
    """Trials handed over from one forked child to the next: none lost, each record whole."""

    result = experiment.grid_search(lambda i: i, {"i": list(range(60))}, workers=workers)
    assert sorted(t.metric for t in result.trials) == list(range(60))
    assert all(t.status == "FINISHED" and t.started and t.finished for t in result.trials)


def _big(i):
    return {"metric": float(i), "blob": "x" * 3_000_000}


def test_a_large_return_value_comes_back_whole(hops_home):
    """Bigger than a pipe's buffer: the dispatcher reads while the trial writes."""
    result = experiment.grid_search(_big, {"i": [1, 2]}, workers=1)
    assert [len(t.returned["blob"]) for t in result.trials] == [3_000_000] * 2


def _own_record(x):
    import json
    import os
    import time

    from hops import tensorboard

    time.sleep(0.3)  # the worker writes the RUNNING record beside the trial's start
    with open(os.path.join(tensorboard.logdir(), "trial.json")) as f:
        record = json.load(f)
    return {"metric": x, "status": record["status"], "started": record["started"]}


@pytest.mark.parametrize("optimizer", ["random", "tpe"])
def test_each_trial_is_recorded_running_while_it_runs(hops_home, optimizer):
    """Handed over by the trial before it, or started by the worker (a learning search hands
    out a trial only when a slot frees: it is forked after its predecessor ended)."""
    result = experiment.optimize(_own_record, {"x": [0.0, 1.0]}, trials=4, seed=1, workers=1,
                                 optimizer=optimizer)  # fmt: skip
    assert [t.returned["status"] for t in result.trials] == ["RUNNING"] * 4
    assert all(t.returned["started"] for t in result.trials)


def _module_value(i):
    import os

    import hops_spare_probe

    return {"metric": float(i), "value": hops_spare_probe.VALUE, "worker": os.getppid()}


def test_workers_stay_warm_for_the_next_experiment_unless_a_module_changed(
    hops_home, tmp_path, monkeypatch
):
    module = tmp_path / "hops_spare_probe.py"
    module.write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    first = experiment.grid_search(_module_value, {"i": [0]}, workers=1)
    second = experiment.grid_search(_module_value, {"i": [1]}, workers=1)
    (a,), (b,) = first.trials, second.trials
    assert a.returned["value"] == b.returned["value"] == 1
    assert b.returned["worker"] == a.returned["worker"]  # the same warm worker
    module.write_text("VALUE = 2\n")
    later = time.time() + 5
    os.utime(module, (later, later))
    third = experiment.grid_search(_module_value, {"i": [2]}, workers=1)
    (c,) = third.trials
    assert c.returned["value"] == 2  # never the old code
    assert c.returned["worker"] != a.returned["worker"]


def test_a_spare_worker_exits_once_idle_long_enough(hops_home, monkeypatch):
    """Spares wait for the next experiment of this process, not forever ($HOPS_WORKER_IDLE_S,
    600 s by default)."""
    import psutil

    monkeypatch.setenv("HOPS_WORKER_IDLE_S", "1")
    result = experiment.grid_search(_module_free, {"i": [0]}, workers=1)
    keeper = psutil.Process(result.trials[0].returned["worker"]).ppid()
    assert psutil.pid_exists(keeper)  # kept warm after the experiment
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if psutil.Process(keeper).status() == psutil.STATUS_ZOMBIE:
                break
        except psutil.NoSuchProcess:
            break
        time.sleep(0.1)
    else:
        raise AssertionError("the idle spare worker did not exit")


def _module_free(i):
    import os

    return {"metric": float(i), "worker": os.getppid()}


def test_a_worker_that_exits_idle_during_a_run_is_replaced(hops_home, monkeypatch):
    """A slow driver (a hook, a slow model) leaves a worker idle past $HOPS_WORKER_IDLE_S in
    the middle of a run: it exits, and the next trial gets a new worker."""

    class Slow(experiment.RunHooks):
        def on_trial_end(self, record, trial):
            time.sleep(1.0)

    monkeypatch.setenv("HOPS_WORKER_IDLE_S", "0.3")
    result = experiment.optimize(_module_free, {"i": [0, 9]}, trials=3, seed=3, workers=1,
                                 optimizer="tpe", hooks=[Slow()])  # fmt: skip
    assert [t.status for t in result.trials] == ["FINISHED"] * 3
    assert len({t.returned["worker"] for t in result.trials}) == 3  # a new worker each time


def _sized(i, values):
    return {"metric": float(i), "count": len(values)}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("reuse", [False, True])
def test_large_hyperparameters_go_both_ways_without_a_deadlock(hops_home, reuse):
    """A task and its record each larger than a socket buffer: the worker sends records while
    the driver sends the next task, and neither may wait on the other forever."""
    values = list(range(200_000))
    result = experiment.grid_search(
        _sized, {"i": [0, 1, 2], "values": [values]}, workers=1, reuse_workers=reuse
    )
    assert [t.status for t in result.trials] == ["FINISHED"] * 3
    assert {t.returned["count"] for t in result.trials} == {len(values)}
