"""Searches, stopping policies and spaces in isolation (values fed by hand, a fake objective),
and the run loop's contracts: hooks, live reports, cancel, the registry's errors."""

import math
import statistics
import time

import pytest

from hops import experiment
from hops_jupyter.core.experiment import records, registry
from hops_jupyter.core.experiment.engines.local import LocalEngine
from hops_jupyter.core.experiment.search import TPESearch
from hops_jupyter.core.experiment.search.space import parse_bounds
from hops_jupyter.core.experiment.stopping import ASHA, MedianStopping
from hops_jupyter.core.experiment.trial import TrialTask

# --- stopping policies, fed by hand (losses: lower is better) ---------------------------------


def test_median_rule_waits_for_steps_and_trials_then_stops_the_worse_half():
    policy = MedianStopping(min_steps=2, min_trials=3)
    for trial, loss in (("a", 1.0), ("b", 2.0), ("c", 3.0)):
        for step in range(5):
            assert not policy.report(trial, step, loss)  # fewer than 3 others: never stops
    assert not policy.report("d", 0, 9.0) and not policy.report("d", 1, 9.0)  # before min_steps
    assert policy.report("d", 2, 9.0)  # 9 > median(1, 2, 3)
    assert not policy.report("e", 2, 1.5)  # better than the median: runs on


def test_median_rule_uses_the_best_value_so_far_and_nan_is_worst():
    policy = MedianStopping(min_steps=0, min_trials=2)
    for trial, loss in (("a", 1.0), ("b", 2.0)):
        policy.report(trial, 0, loss)
        policy.report(trial, 1, loss)
    assert not policy.report("c", 0, 0.5)
    assert not policy.report("c", 1, 5.0)  # a bad step after a good one: its best is 0.5
    assert policy.report("n", 0, math.nan)


def test_asha_promotes_the_top_third_at_each_rung_as_results_arrive():
    policy = ASHA(min_steps=1, reduction_factor=3)
    assert policy._rungs_upto(10) == [1, 3, 9]
    assert not policy.report("a", 1, 5.0)  # alone at rung 1: goes on, no waiting
    assert policy.report("b", 1, 6.0)  # worse than the best third of [5, 6]
    assert not policy.report("c", 1, 1.0)  # the best so far
    assert not policy.report("a", 2, 5.0)  # between rungs: nothing to decide
    assert not policy.report("a", 3, 4.0)  # first at rung 3
    assert policy.report("c", 3, 4.5)  # the top third of [4.0, 4.5] is 4.0


def test_asha_judges_skipped_rungs_and_stops_placing_rungs_at_max_steps():
    policy = ASHA(min_steps=1, reduction_factor=2, max_steps=4)
    assert policy._rungs_upto(100) == [1, 2]
    policy.report("a", 5, 1.0)  # jumped past rungs 1 and 2: judged at both
    assert policy._passed["a"] == 2


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: ASHA(reduction_factor=1), "reduction_factor must be an integer >= 2, got 1"),
        (lambda: ASHA(min_steps=0), "min_steps must be an integer >= 1, got 0"),
        (lambda: MedianStopping(min_trials=True), "min_trials must be an integer >= 1, got True"),
    ],
)
def test_policy_settings_are_checked(make, message):
    with pytest.raises(ValueError, match=message):
        make()


# --- spaces ------------------------------------------------------------------------------------


def test_log_ranges_sample_in_log_space_and_keep_their_scale():
    dims = parse_bounds(
        {"lr": experiment.loguniform(1e-5, 1e-1), "units": experiment.randint(8, 512, log=True)}
    )
    lr, units = dims
    lrs = [lr.from_unit(u / 1000) for u in range(1001)]
    assert min(lrs) == pytest.approx(1e-5) and max(lrs) == pytest.approx(1e-1)
    assert statistics.median(lrs) == pytest.approx(1e-3, rel=0.02)  # the geometric midpoint
    ints = [units.from_unit(u / 1000) for u in range(1001)]
    assert min(ints) == 8 and max(ints) == 512 and all(isinstance(i, int) for i in ints)
    assert 50 <= statistics.median(ints) <= 80  # near sqrt(8 * 512) = 64
    assert lr.describe() == {"type": "float", "low": 1e-5, "high": 1e-1, "log": True}
    assert parse_bounds({"x": [0.1, 0.2]})[0].describe() == [0.1, 0.2]


def test_categorical_choices_of_any_type():
    choices = [None, (1, 2), len, "adam"]
    (dim,) = parse_bounds({"opt": experiment.choice(choices)})
    assert {repr(dim.from_unit(u / 10)) for u in range(11)} == {repr(c) for c in choices}


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ({"lr": experiment.loguniform(0, 0.1)}, "A log range needs low > 0: 'lr' has low=0"),
        ({"lr": experiment.loguniform(-1, 0.1)}, "'lr' has low=-1"),
        ({"n": experiment.randint(1.5, 4)}, "integer range 'n' needs integer bounds"),
        ({"x": experiment.uniform(2, 1)}, "low >= high"),
        ({"x": experiment.choice([])}, "non-empty list of choices"),
    ],
)
def test_bad_ranges_are_named(space, message):
    with pytest.raises(ValueError, match=message):
        parse_bounds(space)


# --- TPE ------------------------------------------------------------------------------------


def test_tpe_learns_and_pending_trials_do_not_collapse_onto_one_point():
    space = {"x": [-5.0, 5.0], "y": [-5.0, 5.0]}
    search = TPESearch(space, trials=40, direction="min", seed=3)
    for _ in range(40):  # sequential: ask, evaluate, tell
        params = search.ask()
        search.tell(params, params["x"] ** 2 + params["y"] ** 2)
    best = min(t.value for t in search._study.trials)
    assert best < 0.5
    assert search.ask() is None
    parallel = TPESearch(space, trials=30, direction="min", seed=3)
    for _ in range(12):
        p = parallel.ask()
        parallel.tell(p, p["x"] ** 2 + p["y"] ** 2)
    pending = [parallel.ask() for _ in range(4)]  # four workers free at once
    assert len({repr(p) for p in pending}) == 4


def test_tpe_seed_makes_a_sequential_search_reproducible():
    def proposals():
        search = TPESearch({"x": [0.0, 1.0]}, trials=15, seed=11)
        out = []
        for _ in range(15):
            p = search.ask()
            search.tell(p, -abs(p["x"] - 0.3))
            out.append(p["x"])
        return out

    assert proposals() == proposals()


# --- the registry and the API's refusals ------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: experiment.optimize(lambda x: x, {"x": [0, 1]}, optimizer="bayes"),
         "Unknown optimizer .bayes.: known: auto, de, gp, gp\\+tpe, grid, random, tpe"),
        (lambda: experiment.optimize(lambda x: x, {"x": [0, 1]}, trials=0),
         "trials must be a positive integer, got 0"),
        (lambda: experiment.random_search(lambda x: x, {"x": [0, 1]}, early_stopping="hyperband"),
         "Unknown early_stopping 'hyperband': known: asha, median"),
        (lambda: experiment.launch(lambda: 1, early_stopping="asha"),
         "launch\\(\\) runs every trial to its end: early_stopping is for searches"),
        (lambda: experiment.optimize(lambda lr: lr, {"lr": experiment.loguniform(0, 1)}),
         "A log range needs low > 0: 'lr' has low=0"),
        (lambda: experiment.grid_search(lambda x: x, {"x": experiment.loguniform(1e-3, 1)}),
         "is a range .* a grid needs a list of values"),
        (lambda: experiment.launch(lambda: 1, engine="ray"), "Unknown engine 'ray': known: local, spark"),
    ],
)  # fmt: skip
def test_bad_input_names_the_value_and_writes_nothing(call, message, hops_home):
    with pytest.raises((ValueError, TypeError), match=message):
        call()
    assert experiment.list().empty


def test_registry_is_what_the_magic_offers():
    from hops_jupyter.magics import HopsMagics

    doc = HopsMagics.experiment.__doc__
    for name in [*registry.SEARCHES, *registry.STOPPERS]:
        assert name in doc


# --- the run loop: hooks, live reports, cancel --------------------------------------------------


class Recorder(experiment.RunHooks):
    def __init__(self):
        self.events = []

    def on_started(self, record):
        self.events.append(("started", record.status))

    def on_report(self, record, report):
        self.events.append(("report", report.trial_id, report.step, report.value, time.time()))

    def on_trial_end(self, record, trial):
        self.events.append(("end", trial.id, trial.status))

    def on_finished(self, record):
        self.events.append(("finished", record.status))


class Broken(experiment.RunHooks):
    def on_started(self, record):
        raise RuntimeError("a view's bug")

    def on_finished(self, record):
        raise RuntimeError("again")


def slow_reporter(x):
    from hops import experiment

    experiment.report(x, step=0, loss=1 - x)
    time.sleep(2)
    return x


def test_reports_reach_the_driver_within_a_second_and_hooks_follow_the_run(hops_home):
    recorder = Recorder()
    result = experiment.grid_search(slow_reporter, {"x": [0.25, 0.5]}, workers=2,
                                    hooks=[recorder, Broken()])  # fmt: skip
    assert result.status == "FINISHED"
    assert recorder.events[0] == ("started", "RUNNING")
    assert recorder.events[-1] == ("finished", "FINISHED")
    reports = [e for e in recorder.events if e[0] == "report"]
    assert sorted(e[3] for e in reports) == [0.25, 0.5]
    for trial in result.trials:
        (line,) = records.read_metrics(records.experiment_dir(result.id).child(trial.id))[0]
        arrival = next(e[4] for e in reports if e[1] == trial.id)
        assert arrival - line["time"] < 1.0  # live, long before the trial's 2 s end
        assert line["loss"] == pytest.approx(1 - trial.params["x"])  # the extras are kept
    ends = [e for e in recorder.events if e[0] == "end"]
    assert {e[2] for e in ends} == {"FINISHED"}


def stubborn(x):
    import time

    from hops import experiment

    for step in range(100):
        try:
            experiment.report(x if x > 0.5 else -step, step=step)
        except BaseException:  # a trial that swallows the stop request
            pass
        time.sleep(0.05)
    return x


def test_a_trial_that_ignores_the_stop_is_killed_and_recorded_early_stopped(hops_home):
    start = time.monotonic()
    result = experiment.grid_search(
        stubborn, {"x": [0.9, 0.1]}, workers=1,
        early_stopping=ASHA(min_steps=2, reduction_factor=2),
    )  # fmt: skip
    by = {t.params["x"]: t for t in result.trials}
    assert by[0.9].status == "FINISHED"
    stopped = by[0.1]
    assert stopped.status == "EARLY_STOPPED" and stopped.stopped_step == 2 and stopped.metric == -2
    assert stopped.duration_s < 2.0  # killed within the grace after the decision, not at 5 s
    assert time.monotonic() - start < 12
    assert result.best_params == {"x": 0.9}
    on_disk = records.read_json(records.experiment_dir(result.id).child(records.EXPERIMENT_FILE))
    assert on_disk["options"]["early_stopping"]["name"] == "asha"


def test_engines_cancel_one_trial(hops_home):
    engine = LocalEngine(2)
    from hops_jupyter.core.experiment.run import pickle_function

    key, data = pickle_function(lambda: time.sleep(30))
    url = f"{records.experiments_dir().url}/20260101T000000000-abcd"
    tasks = [TrialTask("20260101T000000000-abcd", f"t{i}", f"{url}/t{i}", {}, key, data)
             for i in range(2)]  # fmt: skip
    try:
        for task in tasks:
            engine.submit(task)
        time.sleep(0.5)
        assert engine.cancel("t0").trial_id == "t0"
        assert engine.cancel("t0") is None
        assert [t.trial_id for t in engine.running()] == ["t1"]
    finally:
        engine.cancel_all()
        engine.close()


def test_optimize_with_rich_spaces_end_to_end(hops_home):
    def train(lr, units, act):
        import math

        return -abs(math.log10(lr) + 2.5) - abs(units - 64) / 64 + (act is None)

    space = {"lr": experiment.loguniform(1e-4, 1e-1), "units": experiment.randint(8, 256, log=True),
             "act": experiment.choice(["relu", None])}  # fmt: skip
    result = experiment.optimize(train, space, trials=16, seed=5, workers=2)
    assert result.record.kind == "optimize" and len(result.trials) == 16
    assert result.record.options["optimizer"] == "gp+tpe"
    assert result.record.search_space["lr"] == {
        "type": "float",
        "low": 1e-4,
        "high": 1e-1,
        "log": True,
    }
    assert all(1e-4 <= t.params["lr"] <= 1e-1 and isinstance(t.params["units"], int)
               for t in result.trials)  # fmt: skip
    best_dir, best_params, best_return = result
    assert best_params == result.best_params and best_return["metric"] == result.best_metric
    for name in ("gp", "tpe", "de", "random"):
        other = experiment.optimize(train, space, trials=6, optimizer=name, seed=5, workers=2)
        assert len(other.trials) == 6 and other.record.options["optimizer"] == name


def test_gp_learns_and_running_trials_spread_the_proposals():
    from hops_jupyter.core.experiment.search import GPSearch

    space = {"x": [-5.0, 5.0], "y": experiment.loguniform(1e-3, 10.0)}

    def f(p):
        return (p["x"] - 1) ** 2 + (math.log10(p["y"])) ** 2

    search = GPSearch(space, trials=25, direction="min", seed=2)
    values = []
    for _ in range(25):
        params = search.ask()
        values.append(f(params))
        search.tell(params, values[-1])
    assert min(values) < 0.05  # the optimum is (1, 1.0)
    assert search.ask() is None
    parallel = GPSearch(space, trials=20, direction="min", seed=2)
    for _ in range(10):
        p = parallel.ask()
        parallel.tell(p, f(p))
    pending = [parallel.ask() for _ in range(3)]
    xs = sorted((p["x"], p["y"]) for p in pending)
    assert all(abs(a[0] - b[0]) + abs(a[1] - b[1]) > 1e-3 for a, b in zip(xs, xs[1:], strict=False))
    failed = GPSearch({"x": [0.0, 1.0]}, trials=8, seed=1)  # failures count as the worst
    for _ in range(8):
        failed.tell(failed.ask(), None)


def quiet(x):
    import time

    time.sleep(0.2)
    return x


def test_trials_that_never_report_run_to_the_end(hops_home):
    result = experiment.random_search(quiet, {"x": [0.0, 1.0]}, samples=6, seed=1, workers=2,
                                      early_stopping="asha")  # fmt: skip
    assert {t.status for t in result.trials} == {"FINISHED"}


def test_auto_optimizer_is_tpe_when_trials_may_stop_early(hops_home):
    """With early stopping most results are partial: "auto" then runs TPE, which ranks them by
    step, rather than a GP that would take them for final values."""

    def curve(lr):
        from hops import experiment

        for step in range(4):
            experiment.report(lr * (step + 1), step=step)
        return lr * 4

    result = experiment.optimize(curve, {"lr": [0.0, 1.0]}, trials=6, seed=2, workers=2,
                                 early_stopping="asha")  # fmt: skip
    assert result.record.options["optimizer"] == "tpe"
    explicit = experiment.optimize(curve, {"lr": [0.0, 1.0]}, trials=3, seed=2, workers=1,
                                   optimizer="gp", early_stopping="median")  # fmt: skip
    assert explicit.record.options["optimizer"] == "gp"
