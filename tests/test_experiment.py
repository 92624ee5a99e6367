"""Experiments on the local engine: the seed's API, records, failures, interrupt, resume."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from hops import experiment, hdfs, tensorboard
from hops_jupyter.core.experiment import ExperimentFailed, records


def _exp_dir(result) -> Path:
    return Path(hdfs.get_plain_path(result.path).replace("/Projects", "", 1)).relative_to("/")


def folder(hops_home, result) -> Path:
    return hops_home / "Projects" / hdfs.get_plain_path(result.path).split("/Projects/", 1)[1]


def read(path: Path) -> dict:
    return json.loads(path.read_text())


# --- the seed's examples -------------------------------------------------------------------


def test_launch_single_run_and_return_forms(hops_home):
    def train():
        print("hello from the trial")
        return {"accuracy": 0.9, "loss": 0.1}

    result = experiment.launch(train, name="mnist")
    logdir, return_dict = result
    assert logdir == str(result) == os.fspath(result) == result.path
    assert return_dict == {"accuracy": 0.9, "loss": 0.1}
    exp = folder(hops_home, result)
    meta = read(exp / "experiment.json")
    assert meta["kind"] == "launch" and meta["name"] == "mnist" and meta["status"] == "FINISHED"
    assert (exp / "run" / "stdout.log").read_text() == "hello from the trial\n"
    assert read(exp / "run" / "trial.json")["status"] == "FINISHED"
    assert hdfs.exists(result)  # every API taking a path accepts the result


def test_launch_args_dict_zips_positions(hops_home):
    def train(lr, layers):
        return lr * layers

    result = experiment.launch(train, {"lr": [0.1, 0.2, 0.3], "layers": [1, 2, 3]})
    ids = sorted(t.id for t in result.trials)
    assert ids == ["lr=0.1&layers=1", "lr=0.2&layers=2", "lr=0.3&layers=3"]
    assert result.return_dict["lr=0.3&layers=3"] == {"metric": pytest.approx(0.9)}


def test_grid_search_product_best_and_negative_metrics(hops_home):
    def train(lr, dropout):
        return -(lr * 10 + dropout)  # all negative; best is the least negative

    result = experiment.grid_search(
        train, {"lr": [0.1, 0.3], "dropout": [0.4, 0.2, 0.8]}, direction="max"
    )
    best_dir, best_params, best_return = result
    assert len(result.trials) == 6
    assert best_params == {"lr": 0.1, "dropout": 0.2}
    assert best_return == {"metric": pytest.approx(-1.2)}
    assert best_dir.endswith("/lr=0.1&dropout=0.2")
    meta = read(folder(hops_home, result) / "experiment.json")
    assert meta["best_trial"] == "lr=0.1&dropout=0.2" and meta["trials_done"] == 6
    low = experiment.grid_search(
        train, {"lr": [0.1, 0.3], "dropout": [0.4]}, direction=experiment.Direction.MIN
    )
    assert low.best_params == {"lr": 0.3, "dropout": 0.4}


def test_differential_evolution_types_and_budget(hops_home):
    seen = []

    def train(lr, layers, optimizer):
        assert isinstance(layers, int) and isinstance(lr, float)
        assert optimizer in ("adam", "sgd", "rmsprop", "adagrad")
        return -((lr - 0.3) ** 2) - (layers - 3) ** 2 + (optimizer == "adam")

    space = {
        "lr": [0.01, 0.9],
        "layers": [1, 6],
        "optimizer": ["adam", "sgd", "rmsprop", "adagrad"],
    }
    result = experiment.differential_evolution(
        train, space, direction="max", generations=5, population=6, seed=3
    )
    assert len(result.trials) <= 30  # duplicates of finished points are not run again
    meta = read(folder(hops_home, result) / "experiment.json")
    assert meta["trials_total"] == 30 and meta["seed"] == 3
    assert meta["search_space"]["optimizer"] == space["optimizer"]
    assert result.best_params["layers"] in (2, 3, 4)
    assert seen == []  # the closure's list lives in the notebook, not in the worker
    old = experiment.evolutionary_search(train, space, generations=2, population=4, seed=1)
    assert old.record.kind == "differential_evolution"


def test_random_search_same_trials_whatever_the_worker_count(hops_home):
    def train(a, b, c):
        return a + b

    space = {"a": [0.0, 1.0], "b": [1, 100], "c": ["x", "y", "z"]}
    one = experiment.random_search(train, space, samples=8, seed=42, workers=1)
    two = experiment.random_search(train, space, samples=8, seed=42, workers=2)
    assert sorted(t.id for t in one.trials) == sorted(t.id for t in two.trials)
    assert len(one.trials) == 8


def test_dict_return_metric_key_and_file_upload(hops_home):
    def train(lr):
        with open("model.txt", "w") as f:  # written in the trial's private working dir
            f.write(f"weights for {lr}")
        return {"acc": lr, "loss": 1 - lr, "model": "model.txt"}

    result = experiment.grid_search(train, {"lr": [0.2, 0.7]}, metric_key="acc")
    assert result.best_params == {"lr": 0.7}
    uploaded = result.best_return["model"]
    assert uploaded == result.best_dir + "/model.txt"
    assert hdfs.load(uploaded) == b"weights for 0.7"
    with pytest.raises(ExperimentFailed, match="several|2 numeric values"):
        experiment.grid_search(lambda lr: {"acc": lr, "loss": 1 - lr}, {"lr": [0.2]})


def test_report_logdir_and_log_inside_trials(hops_home):
    def train(lr):
        for step in range(3):
            experiment.report(lr * step, loss=1.0 / (step + 1))
        hdfs.log(f"done with {lr}")
        return float(Path(tensorboard.logdir()).name == f"lr={lr!r}")

    result = experiment.grid_search(train, {"lr": [0.5]})
    trial = result.trials[0]
    assert trial.metric == 1.0
    lines = (folder(hops_home, result) / trial.id / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [0, 1, 2]
    assert json.loads(lines[-1])["metric"] == 1.0 and json.loads(lines[-1])[
        "loss"
    ] == pytest.approx(1 / 3)
    assert experiment.get(result.id).trials[0].latest["step"] == 2
    assert "done with 0.5" in (folder(hops_home, result) / trial.id / "hdfs.log").read_text()
    experiment.report(1.0)  # outside a trial: a no-op
    with pytest.raises(RuntimeError, match="inside a function run by experiment"):
        tensorboard.logdir()


# --- failures never take down the experiment -----------------------------------------------


def test_raise_exit_segfault_and_timeout_are_recorded(hops_home):
    def train(mode):
        import ctypes
        import time

        if mode == "raise":
            raise ValueError("bad batch size 0")
        if mode == "exit":
            os._exit(7)
        if mode == "segfault":
            ctypes.string_at(0)
        if mode == "hang":
            time.sleep(60)
        return 1.0

    modes = ["raise", "exit", "segfault", "hang", "ok"]
    start = time.monotonic()
    result = experiment.grid_search(train, {"mode": modes}, timeout=4, workers=2)
    assert time.monotonic() - start < 30
    by = {t.params["mode"]: t for t in result.trials}
    assert by["ok"].status == "FINISHED" and result.status == "FINISHED"
    assert by["raise"].error["type"] == "ValueError"
    assert "bad batch size 0" in by["raise"].error["traceback"]
    assert "exited with code 7" in by["exit"].error["message"]
    assert "SIGSEGV" in by["segfault"].error["message"]
    assert "Fatal Python error" in by["segfault"].error["traceback"]  # faulthandler's report
    assert by["hang"].error["type"] == "TrialTimeout"
    assert all(by[m].status == "FAILED" for m in modes[:4])
    assert read(folder(hops_home, result) / "experiment.json")["trials_failed"] == 4


def test_all_trials_failing_raises_with_first_traceback(hops_home):
    def train(x):
        raise RuntimeError(f"broken {x}")

    with pytest.raises(ExperimentFailed, match="All 2 trial") as err:
        experiment.grid_search(train, {"x": [1, 2]})
    assert "RuntimeError: broken" in str(err.value)
    assert err.value.result.status == "FAILED"
    # No global state left behind: the next experiment runs.
    assert experiment.launch(lambda: 1).status == "FINISHED"


def test_notebook_functions_and_closures_are_pickled_by_value(hops_home):
    namespace = {"__name__": "__main__", "factor": 3}
    exec("def train(x):\n    return x * factor\n", namespace)
    result = experiment.grid_search(namespace["train"], {"x": [1, 2]})
    assert result.best_metric == 6
    offset = 10
    closure = experiment.grid_search(lambda x: x + offset, {"x": [1]})
    assert closure.best_metric == 11


def test_workers_do_not_pay_for_heavy_imports(hops_home):
    import scipy.optimize  # noqa: F401  - heavy module in the "notebook"

    def train(x):
        import sys

        return float(any(m.startswith(("scipy", "tensorflow", "pyspark")) for m in sys.modules))

    assert experiment.grid_search(train, {"x": [1]}).best_metric == 0.0


# --- bad input -----------------------------------------------------------------------------


def f2(lr, layers):
    return lr


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: experiment.launch(f2, {"lr": [1, 2], "layers": [1]}), r"equal lengths.*'lr': 2, 'layers': 1"),
        (lambda: experiment.grid_search(f2, {}), "args_dict is empty"),
        (lambda: experiment.random_search(f2, {}), "search_dict is empty"),
        (lambda: experiment.differential_evolution(f2, {"lr": [1, 0], "layers": [1, 2]}), r"'lr' have low >= high \(1 >= 0\)"),
        (lambda: experiment.grid_search(f2, {"lr": [1], "layers": [1]}, direction="up"), "direction must be 'max' or 'min', got 'up'"),
        (lambda: experiment.grid_search(f2, {"lr": [1], "units": [1]}), r"no parameter for \['units'\].*\['layers'\]"),
        (lambda: experiment.grid_search(f2, {"lr": [1], "layers": [1]}, engine="ray"), "Unknown engine 'ray'"),
        (lambda: experiment.grid_search(f2, {"lr": 0.1, "layers": [1]}), r"args_dict\['lr'\] must be a non-empty list"),
        (lambda: experiment.random_search(f2, {"lr": [0, 1], "layers": [1, 2]}, samples=0), "samples must be a positive integer, got 0"),
        (lambda: experiment.differential_evolution(f2, {"lr": [0, 1], "layers": [1, 2]}, population=2), r"population must be an integer in \[4"),
        (lambda: experiment.get("nope"), "Unknown experiment id 'nope'"),
    ],
)  # fmt: skip
def test_bad_input_is_named(call, message):
    with pytest.raises((ValueError, TypeError, KeyError), match=message):
        call()


def test_non_numeric_metric_fails_the_trial_with_its_value(hops_home):
    def train(x):
        return "great" if x == 1 else x

    result = experiment.grid_search(train, {"x": [1, 2]})
    bad = next(t for t in result.trials if t.params["x"] == 1)
    assert bad.status == "FAILED"
    assert "metric must be a number, got 'great' (str)" in bad.error["message"]


# --- listing, interrupt, resume ------------------------------------------------------------


def test_get_and_list(hops_home):
    first = experiment.launch(lambda: 1, name="first")
    second = experiment.grid_search(lambda x: x, {"x": [1, 2]}, name="second")
    listed = experiment.list()
    assert list(listed.id) == [second.id, first.id]  # newest first
    got = experiment.get(second.id)
    assert got.name == "second" and len(got.trials) == 2 and got.best_metric == 2


def _script(code: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(code)]


def test_keyboard_interrupt_kills_trials_and_marks_experiment(hops_home, tmp_path):
    code = """
        import time
        from hops import experiment
        def train(x):
            if x > 1:
                time.sleep(120)
            return x
        experiment.grid_search(train, {"x": [1, 2, 3, 4]}, workers=2)
    """
    proc = subprocess.Popen(_script(code), env=os.environ.copy(), stderr=subprocess.PIPE)
    exp_root = hops_home / "Projects" / "demo" / "Experiments"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        metas = list(exp_root.glob("*/experiment.json"))
        if (
            metas
            and read(metas[0])["trials_done"] >= 1
            and len(list(metas[0].parent.glob("*/trial.json"))) >= 3
        ):
            break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("experiment did not start")
    import psutil

    # this driver's workers only (other runs on the machine have theirs)
    workers = [str(p.pid) for p in psutil.Process(proc.pid).children(recursive=True)]
    assert workers
    proc.send_signal(signal.SIGINT)
    t0 = time.monotonic()
    proc.wait(timeout=10)
    assert time.monotonic() - t0 < 5
    assert b"KeyboardInterrupt" in proc.stderr.read()
    for pid in workers:
        assert (
            not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        )
    meta = read(metas[0])
    assert meta["status"] == "KILLED"
    trials = {p.parent.name: read(p) for p in metas[0].parent.glob("*/trial.json")}
    assert trials["x=1"]["status"] == "FINISHED" and trials["x=1"]["metric"] == 1
    # Two were running when stopped; the fourth had not started, and is listed as such.
    assert trials["x=2"]["status"] == trials["x=3"]["status"] == "KILLED"
    assert trials["x=4"]["status"] == "PENDING" and trials["x=4"]["error"]["type"] == "NotStarted"
    assert meta["status_message"] == "stopped: 1 finished, 2 killed, 1 not started"


def test_resume_reruns_only_unfinished_trials(hops_home, tmp_path):
    marker = tmp_path / "fail-x3"
    marker.write_text("")

    def train(x):
        if x == 3 and os.path.exists(str(marker)):
            raise RuntimeError("transient")
        return x

    first = experiment.grid_search(train, {"x": [1, 2, 3]})
    assert {t.id: t.status for t in first.trials}["x=3"] == "FAILED"
    started = {t.id: t.started for t in first.trials}
    marker.unlink()
    again = experiment.grid_search(train, {"x": [1, 2, 3]}, resume=first.id)
    assert again.id == first.id and again.status == "FINISHED"
    now = {t.id: t for t in again.trials}
    assert now["x=3"].status == "FINISHED" and now["x=3"].started != started["x=3"]
    assert now["x=1"].started == started["x=1"] and now["x=2"].started == started["x=2"]
    assert again.best_params == {"x": 3}
    with pytest.raises(ValueError, match="Cannot resume"):
        experiment.grid_search(train, {"x": [1, 2]}, resume=first.id)


def test_trial_folder_names():
    assert records.trial_name({}) == "run"
    assert records.trial_name({"lr": 0.1, "dropout": 0.4}) == "lr=0.1&dropout=0.4"
    assert "/" not in records.trial_name({"path": "a/b"})
    assert len(records.trial_name({"x": "y" * 1000})) < 255
