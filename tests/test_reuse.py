"""`reuse_workers=True` (as Ray Tune's `reuse_actors`): a worker's trials share one process,
one after the other, for short trials that would spend most of their time starting cold. What a
trial leaves in the interpreter is there for the next; the processes it starts are not, and a
crash, a timeout or an exception still takes down only its own trial."""

from __future__ import annotations

import os
import time

import pytest

from hops import experiment
from hops_jupyter.core.experiment import records


def _look(i):
    import os
    import sys

    seen = getattr(sys, "_left_by_trial", None)
    sys._left_by_trial = i
    print(f"trial {i} printed this")
    return {"metric": float(i), "pid": os.getpid(), "seen": seen, "cwd": os.getcwd()}


def _alive(pid):
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _by_i(result):
    return {t.params["i"]: t for t in result.trials}


def test_trials_share_the_worker_process_in_order(hops_home):
    result = experiment.grid_search(_look, {"i": [0, 1, 2, 3]}, workers=1, reuse_workers=True)
    by = _by_i(result)
    assert {t.status for t in result.trials} == {"FINISHED"}
    assert len({t.returned["pid"] for t in result.trials}) == 1
    assert [by[i].returned["seen"] for i in range(4)] == [None, 0, 1, 2]
    # Each trial its own working directory, removed when it ends.
    cwds = [by[i].returned["cwd"] for i in range(4)]
    assert len(set(cwds)) == 4 and not any(os.path.exists(cwd) for cwd in cwds)
    # Each trial's output still goes to its own log.
    folder = records.experiment_dir(result.id)
    for i in range(4):
        log = open(os.path.join(folder.child(by[i].id).path, "stdout.log")).read()
        assert log == f"trial {i} printed this\n"


def test_nothing_carries_over_to_the_next_experiment(hops_home):
    first = experiment.grid_search(_look, {"i": [0, 1]}, workers=1, reuse_workers=True)
    second = experiment.grid_search(_look, {"i": [5, 6]}, workers=1, reuse_workers=True)
    assert _by_i(second)[5].returned["seen"] is None  # the worker is kept warm, not its trials
    assert _by_i(second)[6].returned["seen"] == 5
    assert _by_i(first)[1].returned["pid"] != _by_i(second)[5].returned["pid"]
    # The process an experiment's trials shared ends with it (it may hold their memory).
    shared = _by_i(second)[6].returned["pid"]
    deadline = time.monotonic() + 10
    while _alive(shared) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(shared)
    # An experiment without reuse on the same warm worker starts every trial fresh.
    third = experiment.grid_search(_look, {"i": [7, 8]}, workers=1)
    assert [t.returned["seen"] for t in third.trials] == [None, None]


def _start_sleeper_then_look(i, pidfile):
    import os
    import subprocess
    import sys

    if i == 0:
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        daemon = subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True
        )
        open(pidfile, "w").write(f"{child.pid} {daemon.pid}")
        return {"metric": 0.0, "pid": os.getpid()}
    import psutil

    alive = []
    for pid in map(int, open(pidfile).read().split()):
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                alive.append(pid)
        except psutil.NoSuchProcess:
            pass
    return {"metric": 1.0, "pid": os.getpid(), "alive": alive}


def test_processes_a_trial_starts_end_with_it(hops_home, tmp_path):
    pidfile = str(tmp_path / "pids")
    result = experiment.grid_search(
        _start_sleeper_then_look, {"i": [0, 1], "pidfile": [pidfile]}, workers=1,
        reuse_workers=True,
    )  # fmt: skip
    by = _by_i(result)
    assert by[0].returned["pid"] == by[1].returned["pid"]
    assert by[1].returned["alive"] == []


def _misbehave(i):
    import os
    import time

    if i == 1:
        raise ValueError("bad trial")
    if i == 2:
        os._exit(3)
    if i == 3:
        time.sleep(30)
    return {"metric": float(i), "pid": os.getpid()}


def test_a_failure_crash_or_timeout_takes_down_only_its_trial(hops_home):
    t0 = time.monotonic()
    result = experiment.grid_search(
        _misbehave, {"i": [0, 1, 2, 3, 4, 5]}, workers=1, timeout=2, reuse_workers=True
    )
    assert time.monotonic() - t0 < 20
    by = _by_i(result)
    assert by[1].status == "FAILED" and by[1].error["type"] == "ValueError"
    assert by[2].status == "FAILED" and by[2].error["type"] == "WorkerCrashed"
    assert "exited with code 3" in by[2].error["message"]
    assert by[3].status == "FAILED" and by[3].error["type"] == "TrialTimeout"
    assert by[3].started is not None
    assert [by[i].status for i in (0, 4, 5)] == ["FINISHED"] * 3
    # An exception keeps the process; a crash and a timeout end it: the next gets a new one.
    pids = [by[i].returned["pid"] for i in (0, 4, 5)]
    assert pids[1] == pids[2] != pids[0]


def test_the_setting_comes_from_the_argument_the_config_or_the_environment(hops_home, monkeypatch):
    monkeypatch.setenv("HOPS_REUSE_WORKERS", "true")
    result = experiment.grid_search(_look, {"i": [0, 1]}, workers=1)
    assert _by_i(result)[1].returned["seen"] == 0
    result = experiment.grid_search(_look, {"i": [0, 1]}, workers=1, reuse_workers=False)
    assert _by_i(result)[1].returned["seen"] is None
    monkeypatch.setenv("HOPS_REUSE_WORKERS", "sometimes")
    with pytest.raises(ValueError, match="reuse_workers from \\$HOPS_REUSE_WORKERS"):
        experiment.grid_search(_look, {"i": [0]}, workers=1)
    monkeypatch.delenv("HOPS_REUSE_WORKERS")
    with pytest.raises(ValueError, match="reuse_workers must be True or False, got 'yes'"):
        experiment.grid_search(_look, {"i": [0]}, workers=1, reuse_workers="yes")


def _report(i):
    from hops import experiment

    for step in range(3):
        experiment.report(float(i + step), step=step)
    return float(i)


def test_reports_of_each_trial_reach_its_record(hops_home):
    result = experiment.grid_search(_report, {"i": [0, 10]}, workers=1, reuse_workers=True)
    by = _by_i(result)
    for i in (0, 10):
        steps, _ = records.read_metrics(records.experiment_dir(result.id).child(by[i].id))
        assert [(s["step"], s["metric"]) for s in steps] == [(0, i), (1, i + 1), (2, i + 2)]
