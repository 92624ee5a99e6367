"""What survives what, and what is refused before anything is written: typed trial ids, NaN
metrics, resume rules, a lost driver, leftovers, children of trials, seed-era forms."""

import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import psutil
import pytest

from hops import experiment, util
from hops_jupyter.core.experiment import records


def identity(x):
    return 1.0 if x in (1, 0.5) else 2.0


def test_values_that_differ_only_by_type_get_their_own_trials(hops_home):
    result = experiment.grid_search(identity, {"x": [1, "1", 0.5, "0.5", "None", None]}, workers=2)
    names = sorted(t.id for t in result.trials)
    assert len(names) == 6 and len(set(names)) == 6
    assert "x=1" in names and "x=%271%27" in names and "x=0.5" in names and "x=None" in names
    assert records.trial_name({"x": "adam"}) == "x=adam"  # plain strings read as before
    by = {repr(t.params["x"]): t.metric for t in result.trials}
    assert by["1"] == 1.0 and by["'1'"] == 2.0 and by["'0.5'"] == 2.0


def nonfinite(x):
    return {"inf": math.inf, "nan": math.nan, "-inf": -math.inf}.get(x, 1.0)


def _strict(path):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name} in {path}")

    return json.loads(path.read_text(), parse_constant=refuse)


def test_nan_and_inf_metrics_stay_strict_json_and_are_never_best(hops_home):
    space = {"x": ["inf", "nan", "-inf", "one"]}
    result = experiment.grid_search(nonfinite, space, direction="max", workers=1)
    assert result.best_params == {"x": "one"} and result.best_metric == 1.0
    folder = hops_home / "Projects" / "demo" / "Experiments" / result.id
    for path in folder.rglob("*.json"):
        _strict(path)
    inf = _strict(folder / "x=inf" / "trial.json")
    assert inf["metric"] is None and inf["metric_nonfinite"] == "inf"
    # Resuming it works, and does not change the finished record's outcome.
    again = experiment.grid_search(nonfinite, space, direction="max", workers=1, resume=result.id)
    assert again.status == "FINISHED" and again.best_params == {"x": "one"}


def slow(x):
    import time

    time.sleep(x)
    return x


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: experiment.grid_search(lambda y: y, {"x": [1]}), "does not match the hyperparameters"),
        (lambda: experiment.launch(42), "must be callable, got int"),
        (lambda: experiment.grid_search(slow, {"x": [1]}, timeout=float("nan")),
         "timeout must be a positive number of seconds, got nan"),
        (lambda: experiment.launch(lambda: 1, versioned_resources=["Resources/missing.csv"]),
         "versioned_resources: no file at 'Resources/missing.csv'"),
    ],
)  # fmt: skip
def test_refused_calls_write_nothing(hops_home, call, message):
    with pytest.raises((ValueError, TypeError, FileNotFoundError), match=message):
        call()
    assert not (hops_home / "Projects" / "demo" / "Experiments").exists() or not list(
        (hops_home / "Projects" / "demo" / "Experiments").iterdir()
    )


def test_resume_with_another_seed_is_refused_naming_it(hops_home):
    first = experiment.random_search(slow, {"x": [0.0, 0.01]}, samples=3, seed=1, workers=1)
    with pytest.raises(ValueError, match=r"differs in seed: 1 then, 2 now"):
        experiment.random_search(slow, {"x": [0.0, 0.01]}, samples=3, seed=2, resume=first.id)
    with pytest.raises(ValueError, match=r"differs in kind: 'random_search' then"):
        experiment.differential_evolution(slow, {"x": [0.0, 0.01]}, seed=1, resume=first.id)
    again = experiment.random_search(slow, {"x": [0.0, 0.01]}, samples=3, resume=first.id)
    assert again.record.trials_done == 3 and again.record.trials_total == 3


DRIVER = textwrap.dedent(
    """
    import sys, time
    from hops import experiment

    def train(x):
        import os, time
        time.sleep(float(os.environ.get("TRIAL_S", "0.3")))
        if os.environ.get("RAN"):
            with open(os.environ["RAN"], "a") as ran:
                ran.write(f"{x!r}\\n")
        return x

    result = experiment.random_search(train, {"x": [0.0, 1.0]}, samples=int(sys.argv[1]),
                                      seed=3, workers=2, resume=sys.argv[2] or None)
    print("DONE", result.id, result.best_params["x"], flush=True)
    """
)


def _driver(tmp_path, samples, resume="", **env):
    script = tmp_path / "driver.py"
    if not script.exists():  # written once: a rewrite could be read half-done by a running twin
        script.write_text(DRIVER)
    return subprocess.Popen([sys.executable, str(script), str(samples), resume],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "HOPS_TENSORBOARD": "false", **env})  # fmt: skip


def _newest(timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = experiment.list()
        if not found.empty:
            return found.id.iloc[0]
        time.sleep(0.1)
    raise AssertionError("no experiment appeared")


def _wait_trials_done(exp_id, count, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = [t for t in experiment.get(exp_id).trials if t.status == "FINISHED"]
        if len(done) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"{count} trials did not finish")


def test_driver_sigkill_at_three_moments_then_resume(tmp_path, hops_home):
    """A 40-trial random search whose driver is SIGKILLed three times: each time, within 5 s
    and with no resume, no experiment or trial shows RUNNING and no process of it lives; then
    resume completes all 40 trials, each FINISHED once, with the uninterrupted run's best."""
    exp_id = None
    for moment in (0, 10, 25):  # at once, a quarter through, past the middle
        proc = _driver(tmp_path, 40, exp_id or "")
        exp_id = exp_id or _newest()
        _wait_trials_done(exp_id, moment)
        ours = psutil.Process(proc.pid).children(recursive=True)  # keepers, runners, trials
        assert ours
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 5
        while True:
            record = experiment.get(exp_id)
            running = [t for t in record.trials if t.status == "RUNNING"]
            alive = []
            for p in ours:  # trial processes come and go: one may end while looked at
                with contextlib.suppress(psutil.Error):
                    if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                        alive.append(p)
            if record.status != "RUNNING" and not running and not alive:
                break
            assert time.monotonic() < deadline, (record.status, running, alive)
            time.sleep(0.1)
        assert record.status == "KILLED" and record.status_message == "driver lost"
    proc = _driver(tmp_path, 40, exp_id)
    out, _ = proc.communicate(timeout=300)
    assert "DONE" in out, out
    final = experiment.get(exp_id)
    assert final.status == "FINISHED" and final.trials_done == 40
    assert len(final.trials) == 40 and {t.status for t in final.trials} == {"FINISHED"}
    whole = _driver(tmp_path, 40)
    out2, _ = whole.communicate(timeout=300)
    assert out2.split()[-1] == out.split()[-1]  # the same best x as the uninterrupted run


def test_two_resumers_at_once_the_second_is_refused(tmp_path, hops_home):
    first = _driver(tmp_path, 12)
    exp_id = _newest()
    _wait_trials_done(exp_id, 2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    ran = tmp_path / "ran.txt"
    a, b = (_driver(tmp_path, 12, exp_id, TRIAL_S="1", RAN=str(ran)) for _ in range(2))
    outs = [p.communicate(timeout=120)[0] + f" rc={p.returncode}" for p in (a, b)]
    # The second waits for nothing: it is refused while the first runs, or, started after the
    # first has finished, it finds every trial done. Either way no trial runs twice.
    refused = ("is being resumed by process", "is running in process")
    assert all("DONE" in o or any(r in o for r in refused) for o in outs), outs
    assert any("DONE" in o for o in outs), outs
    lines = ran.read_text().splitlines()
    assert len(lines) == len(set(lines)) == 10  # no unfinished trial ran twice
    assert {t.status for t in experiment.get(exp_id).trials} == {"FINISHED"}


def spawner(x):
    import subprocess
    import time

    subprocess.Popen(["sleep", "311"])
    subprocess.Popen(["sleep", "311"], start_new_session=True)
    if x == "hang":
        time.sleep(60)
    if x == "crash":
        import os

        os._exit(3)
    return 1.0


def _sleepers():
    return [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "311"]]


def test_nothing_a_trial_started_outlives_it(hops_home):
    before = {p.pid for p in _sleepers()}
    result = experiment.grid_search(spawner, {"x": ["ok", "crash", "hang"]}, workers=3, timeout=3)
    by = {t.params["x"]: t for t in result.trials}
    assert by["ok"].status == "FINISHED" and by["crash"].status == "FAILED"
    assert by["hang"].error["type"] == "TrialTimeout"
    time.sleep(0.5)
    left = [p for p in _sleepers() if p.pid not in before and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, left
    owners = [d.split("-")[2] for d in os.listdir(tempfile.gettempdir())
              if d.startswith("hops-trial-")]  # fmt: skip
    leftover = [o for o in owners if o.isdigit() and not psutil.pid_exists(int(o))]
    assert not leftover, leftover  # the crashed and the timed-out trials' folders are gone


def interrupted():
    raise KeyboardInterrupt("stop here")


def test_keyboard_interrupt_inside_a_trial_is_recorded_as_such(hops_home):
    with pytest.raises(experiment.ExperimentFailed):
        experiment.launch(interrupted)
    (trial,) = experiment.get(experiment.list().id.iloc[0]).trials
    assert trial.error["type"] == "KeyboardInterrupt" and trial.error["message"] == "stop here"
    assert "raise KeyboardInterrupt" in trial.error["traceback"]


# --- seed-era notebooks --------------------------------------------------------------------


def train(lr, units):
    return lr * units


def test_results_are_strings(hops_home):
    logdir, ret = experiment.launch(lambda: {"acc": 0.5})
    result = experiment.grid_search(train, {"lr": [0.1, 0.2], "units": [1, 2]})
    assert isinstance(result, str) and result.startswith("file://")
    assert (result + "/run").endswith("/run") and json.loads(json.dumps(result)) == result
    log_dir, best_params = experiment.differential_evolution(
        train, {"lr": [0.1, 0.2], "units": [1, 4]}, generations=1, population=4, seed=1
    )  # the hops-util-py 1.0 form
    assert log_dir.endswith(experiment.list().id.iloc[0]) and set(best_params) == {"lr", "units"}
    best_dir, params, returned = result  # the later form
    assert best_dir.endswith("lr=0.2&units=2") and returned == {"metric": 0.4}
    assert result.id and result.best_metric == 0.4 and os.fspath(result) == str(result)


def test_seed_keywords_and_positional_options(hops_home, tmp_path):
    from hops import hdfs

    hdfs.dump("a,b\n", "Resources/data.csv")
    launched = experiment.launch(lambda: 1, versioned_resources=["Resources/data.csv"])
    folder = hops_home / "Projects" / "demo" / "Experiments" / launched.id
    assert (folder / "data.csv").read_text() == "a,b\n"
    grid = experiment.grid_search(train, {"lr": [0.1, 0.2], "units": [1]}, "min")
    assert grid.best_params == {"lr": 0.1, "units": 1}
    rnd = experiment.random_search(train, {"lr": [0.1, 0.2], "units": [1, 2]}, "max", 3)
    assert len(rnd.trials) == 3
    de = experiment.differential_evolution(train, {"lr": [0.1, 0.2], "units": [1, 2]}, "max", 1, 4)
    assert len(de.trials) <= 4 and de.record.options["population"] == 4
    evo = experiment.evolutionary_search(train, {"lr": [0.1, 0.2], "units": [1, 2]},
                                         generations=1, popsize=5)  # fmt: skip
    assert evo.record.options["population"] == 5


def test_begin_and_end(hops_home):
    from hops import hdfs, tensorboard

    logdir = experiment.begin(name="manual")
    assert tensorboard.logdir() == logdir
    hdfs.log("inside the manual run")
    experiment.report(0.5, step=0)
    folder = experiment.end(0.75)
    record = experiment.get(experiment.list().id.iloc[0])
    assert folder == record.url and record.kind == "begin" and record.status == "FINISHED"
    assert record.best_metric == 0.75 and record.trials[0].latest["metric"] == 0.5
    with pytest.raises(RuntimeError, match="without experiment.begin"):
        experiment.end()


def test_hopsworks_only_helpers_say_so():
    for name in ("get_jwt", "send_request"):
        with pytest.raises(
            util.HopsworksOnly, match=f"util.{name}\\(\\) calls the Hopsworks REST API"
        ):
            getattr(util, name)()


def _dead_owner_record(hops_home):
    """A RUNNING experiment (with a RUNNING trial) whose driver process no longer exists."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    dead = int(done.stdout)
    exp_id = "20260101T000000000-dead"
    folder = hops_home / "Projects" / "demo" / "Experiments" / exp_id
    (folder / "x=1").mkdir(parents=True)
    record = {"id": exp_id, "name": "lost", "kind": "grid_search", "function": "f",
              "direction": "max", "metric_key": None, "search_space": {"x": [1]},
              "engine": "local", "workers": 1, "status": "RUNNING",
              "owner": {"host": __import__("socket").gethostname(), "pid": dead,
                        "started": 0.0, "heartbeat": time.time()}}  # fmt: skip
    (folder / "experiment.json").write_text(json.dumps(record))
    trial = {"id": "x=1", "params": {"x": 1}, "status": "RUNNING"}
    (folder / "x=1" / "trial.json").write_text(json.dumps(trial))
    return exp_id


def test_every_reader_shows_a_lost_driver_as_killed(hops_home):
    exp_id = _dead_owner_record(hops_home)
    record = experiment.get(exp_id)
    assert record.status == "KILLED" and record.status_message == "driver lost"
    assert record.trials[0].status == "KILLED" and record.trials[0].error["type"] == "DriverLost"
    assert experiment.list().status.iloc[0] == "KILLED"
    from hops_jupyter.widgets import render

    assert "KILLED" in render.static_summary(record)["text/html"]


def test_distributed_calls_take_the_seed_keywords(hops_home):
    from hops import hdfs

    hdfs.dump("v1", "Resources/notes.txt")
    result = experiment.mirrored(lambda: 0.5, name="mirror", description="seed form",
                                 local_logdir=True, versioned_resources=["Resources/notes.txt"])  # fmt: skip
    assert result.record.name == "mirror" and result.record.options["description"] == "seed form"
    folder = hops_home / "Projects" / "demo" / "Experiments" / result.id
    assert (folder / "notes.txt").read_text() == "v1"


def half_fails(x):
    if x == 2:
        raise ValueError("two")
    return x


class InterruptAtStart(experiment.RunHooks):
    def on_started(self, record):
        raise KeyboardInterrupt  # the user's stop button, as the resume begins


def test_a_failed_resume_never_rewrites_a_finished_record(hops_home):
    first = experiment.grid_search(half_fails, {"x": [1, 2, 3]}, workers=1)
    assert first.status == "FINISHED" and first.best_params == {"x": 3}
    with pytest.raises(KeyboardInterrupt):
        experiment.grid_search(half_fails, {"x": [1, 2, 3]}, workers=1, resume=first.id,
                               hooks=[InterruptAtStart()])  # fmt: skip
    after = experiment.get(first.id)
    assert after.status == "FINISHED" and after.best_params == {"x": 3}
    assert after.best_metric == 3


def test_distributed_signatures_take_the_seed_keywords():
    import inspect

    for fn in (experiment.mirrored, experiment.collective_all_reduce, experiment.parameter_server):
        from hops_jupyter.core.experiment import distributed

        params = inspect.signature(getattr(distributed, fn.__name__)).parameters
        assert {"name", "description", "local_logdir", "versioned_resources"} <= set(params)
