"""Early stopping on a learning-curve workload, on the local engine and on Spark local[2]:
24 random-search trials (seed fixed), 20 epochs of 0.05 s each reporting a score, curves that
never cross. ASHA must cost <= 40% of the summed trial time of the same search without early
stopping, the median rule <= 75%, with the same best configuration and at least a third of
the trials recorded EARLY_STOPPED."""

import math

import pytest

from hops import experiment

SPACE = {"x": [0.01, 1.0], "units": [1, 50]}


def curve(x, units):
    """Quality q scales one shared learning curve, so curves never cross."""
    import math
    import time

    from hops import experiment

    q = x * (1 + units / 100)
    for epoch in range(20):
        time.sleep(0.05)
        experiment.report(q * (1 - math.exp(-(epoch + 1) / 5)), step=epoch)
    return q * (1 - math.exp(-20 / 5))


def _run(early_stopping, **engine):
    result = experiment.random_search(
        curve, SPACE, samples=24, seed=7, workers=2, early_stopping=early_stopping, **engine
    )
    summed = sum(t.duration_s for t in result.trials)
    return result, summed


def _check(engine: dict) -> None:
    full, full_time = _run(None, **engine)
    assert {t.status for t in full.trials} == {"FINISHED"} and len(full.trials) == 24
    for policy, budget in (("asha", 0.40), ("median", 0.75)):
        result, summed = _run(policy, **engine)
        assert summed <= budget * full_time, (policy, summed, full_time)
        assert result.best_params == full.best_params
        stopped = [t for t in result.trials if t.status == "EARLY_STOPPED"]
        assert len(stopped) >= 8, (policy, len(stopped))
        for trial in stopped:  # its step and its last reported value as its metric
            assert 0 < trial.stopped_step < 19
            q = trial.params["x"] * (1 + trial.params["units"] / 100)
            expected = q * (1 - math.exp(-(trial.stopped_step + 1) / 5))
            assert trial.metric == pytest.approx(expected)
            assert trial.error is None
        assert result.record.trials_done == 24 and result.status == "FINISHED"


def test_early_stopping_on_local_workers(hops_home):
    _check({})


@pytest.mark.spark
def test_early_stopping_on_spark(spark, hops_home):
    _check({"engine": "spark"})
