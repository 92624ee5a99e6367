"""The Spark engine on PySpark local[2]: same API, same records as the local engine."""

import json
import os
import re
from pathlib import Path

import pytest

from hops import experiment, hdfs, util

pytestmark = pytest.mark.spark


def _layout(hops_home: Path, result) -> dict:
    """Which files each trial folder holds and which keys the records have."""
    exp = hops_home / "Projects" / hdfs.get_plain_path(result.path).split("/Projects/", 1)[1]
    # TensorBoard event files are named after their time, host and process: keep their kind.
    events = re.compile(r"^events\.out\.tfevents\..*\.hops$")
    trials = {
        p.name: sorted(events.sub("events.out.tfevents.*.hops", f.name) for f in p.iterdir())
        for p in sorted(exp.iterdir())
        if p.is_dir()
    }
    trial_keys = {
        sorted(json.loads((exp / t / "trial.json").read_text())).__str__() for t in trials
    }
    return {
        "trials": trials,
        "experiment_keys": sorted(json.loads((exp / "experiment.json").read_text())),
        "trial_keys": trial_keys,
    }


def train(lr, layers):
    print(f"lr={lr} layers={layers}")
    experiment.report(lr, step=0)
    hdfs.log("trained")
    return lr * layers


def test_seed_signatures_with_spark_first(spark, hops_home):
    logdir, ret = experiment.launch(spark, train, {"lr": [0.1], "layers": [2]})
    assert ret == {"metric": pytest.approx(0.2)}
    best_dir, best_params, _ = experiment.grid_search(
        spark, train, {"lr": [0.1, 0.2], "layers": [1, 3]}, direction="max"
    )
    assert best_params == {"lr": 0.2, "layers": 3}
    meta = experiment.get(os.path.basename(logdir))
    assert meta.engine == "spark" and meta.workers == 2


def test_identical_records_on_both_engines(spark, hops_home):
    grid = {"lr": [0.1, 0.2], "layers": [1, 2]}
    on_spark = experiment.grid_search(train, grid, engine="spark")
    local = experiment.grid_search(train, grid, engine="local")
    assert _layout(hops_home, on_spark) == _layout(hops_home, local)
    assert {t.id: t.metric for t in on_spark.trials} == {t.id: t.metric for t in local.trials}
    trial = next(t for t in on_spark.trials if t.id == "lr=0.2&layers=2")
    exp = hops_home / "Projects" / "demo" / "Experiments" / on_spark.id / trial.id
    assert (exp / "stdout.log").read_text() == "lr=0.2 layers=2\n"
    assert "trained" in (exp / "hdfs.log").read_text()


def test_failures_on_spark_do_not_stop_the_search(spark, hops_home):
    def flaky(mode):
        import time

        if mode == "raise":
            raise ValueError("no good")
        if mode == "exit":
            os._exit(5)
        if mode == "hang":
            time.sleep(120)
        return 1.0

    result = experiment.grid_search(
        flaky, {"mode": ["raise", "exit", "ok", "hang"]}, engine="spark", timeout=8
    )
    by = {t.params["mode"]: t for t in result.trials}
    assert by["ok"].status == "FINISHED"
    assert by["raise"].error["type"] == "ValueError" and "no good" in by["raise"].error["traceback"]
    assert by["exit"].status == "FAILED" and "exited unexpectedly" in by["exit"].error["message"]
    assert by["hang"].error["type"] == "TrialTimeout"


def test_differential_evolution_and_closures_on_spark(spark, hops_home):
    target = 0.25

    def objective(x, n):
        return -((x - target) ** 2) - abs(n - 2)

    result = experiment.differential_evolution(
        objective,
        {"x": [0.0, 1.0], "n": [0, 4]},
        generations=3,
        population=4,
        seed=7,
        engine="spark",
        workers=1,  # one at a time: results arrive in one order, so the search is repeatable
    )
    assert result.record.engine == "spark"
    assert result.best_params["n"] == 2
    assert len(result.trials) <= 12


def test_random_search_is_engine_independent(spark, hops_home):
    space = {"a": [0.0, 1.0], "b": ["x", "y"]}
    on_spark = experiment.random_search(lambda a, b: a, space, samples=6, seed=5, engine="spark")
    local = experiment.random_search(lambda a, b: a, space, samples=6, seed=5)
    assert sorted(t.id for t in on_spark.trials) == sorted(t.id for t in local.trials)


def test_sizing_with_spark(spark):
    assert util.num_executors(spark) == 2
    assert util.num_param_servers(spark) == 0


def _process_of(i):
    import os
    import sys

    module = sys.modules["json"]
    seen = getattr(module, "left_by_trial", None)
    module.left_by_trial = i  # a global no later trial may see
    return {"metric": float(i), "pid": os.getpid(), "server": os.getppid(), "seen": seen}


def test_each_trial_is_a_fresh_process_on_the_executor(spark, hops_home):
    """The engine's Spark tasks serve trials as fork servers: one task serves several trials,
    each in a process of its own."""
    result = experiment.grid_search(_process_of, {"i": [0, 1, 2, 3]}, engine="spark", workers=1)
    runs = [t.returned for t in result.trials]
    assert len({r["pid"] for r in runs}) == 4 and len({r["server"] for r in runs}) == 1
    assert [r["seen"] for r in runs] == [None] * 4
    assert result.record.engine == "spark" and result.record.workers == 1


def test_reused_workers_on_spark_share_a_process_per_task(spark, hops_home):
    result = experiment.grid_search(
        _process_of, {"i": [0, 1, 2, 3]}, engine="spark", workers=1, reuse_workers=True
    )
    runs = sorted((t.returned for t in result.trials), key=lambda r: r["metric"])
    assert len({r["pid"] for r in runs}) == 1
    assert [r["seen"] for r in runs] == [None, 0, 1, 2]


def test_a_trial_lost_twice_with_its_executor_is_recorded_failed(spark, hops_home):
    """An executor lost under a running trial: it runs again elsewhere, once; the trials that
    were waiting there go elsewhere without counting as a try."""
    import socket
    from multiprocessing.connection import Connection

    from hops_jupyter.core import project
    from hops_jupyter.core.experiment.engines.spark import SparkEngine, _Runner
    from hops_jupyter.core.experiment.records import experiments_dir
    from hops_jupyter.core.experiment.trial import TrialTask

    root = experiments_dir(project.current()).child("20261125T000000000-abcd").url
    running, waiting = (TrialTask("e", f"x={i}", f"{root}/x={i}", {"x": i}, "k", b"")
                        for i in (1, 2))  # fmt: skip
    engine = SparkEngine(spark, workers=1)
    try:
        for attempt in range(2):
            ours, _theirs = socket.socketpair()
            link = _Runner(Connection(ours.detach()), "g")
            link.tasks = {running.trial_id: running, waiting.trial_id: waiting}
            engine.links.append(link)
            engine._queue.clear()
            engine.lost(link, "lost")
            if attempt == 0:
                assert list(engine._queue) == [running, waiting]  # in their order
                assert engine.take_ended() == []
        assert list(engine._queue) == [waiting]
        (failed,) = engine.take_ended()
        assert failed.id == running.trial_id and failed.status == "FAILED"
        assert failed.error["type"] == "ExecutorLost"
    finally:
        engine._queue.clear()
        engine.close()


def _kill_my_fork_server(i):
    import os
    import signal
    import time

    if i == 1:
        os.kill(os.getppid(), signal.SIGKILL)
        time.sleep(5)
    return float(i)


def test_a_trial_that_kills_its_fork_server_on_spark_fails_alone(spark, hops_home):
    """Its Spark task says so for it and returns; the trial waiting there runs on a new task."""
    result = experiment.grid_search(
        _kill_my_fork_server, {"i": [0, 1, 2, 3, 4]}, engine="spark", workers=1
    )
    by = {t.params["i"]: t for t in result.trials}
    assert by[1].status == "FAILED" and "fork server was killed" in by[1].error["message"]
    assert [by[i].status for i in (0, 2, 3, 4)] == ["FINISHED"] * 4
