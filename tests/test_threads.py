"""Thread limits per trial: trials side by side do not each start machine-wide thread pools."""

import os

import pytest

from hops import experiment


def pools(x):
    import os

    from threadpoolctl import threadpool_info

    blas = sorted({p["num_threads"] for p in threadpool_info()})
    return {"metric": x, "omp": os.environ.get("OMP_NUM_THREADS"),
            "tf": os.environ.get("TF_NUM_INTRAOP_THREADS"), "blas": blas}  # fmt: skip


def _seen(result):
    return {(t.returned["omp"], t.returned["tf"], tuple(t.returned["blas"])) for t in result.trials}


def test_default_is_cores_divided_by_trials_at_once(hops_home, monkeypatch):
    for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    cores = os.cpu_count()
    result = experiment.grid_search(pools, {"x": [1, 2]}, workers=2)
    expected = str(max(1, cores // 2))
    assert _seen(result) == {(expected, expected, (int(expected),))}


def test_argument_config_and_environment(hops_home, monkeypatch):
    for var in ("OMP_NUM_THREADS", "TF_NUM_INTRAOP_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    result = experiment.grid_search(pools, {"x": [1, 2]}, workers=2, threads_per_trial=3)
    assert _seen(result) == {("3", "3", (3,))}
    monkeypatch.setenv("HOPS_THREADS_PER_TRIAL", "2")
    result = experiment.grid_search(pools, {"x": [1]}, workers=1)
    assert _seen(result) == {("2", "2", (2,))}
    monkeypatch.setenv("OMP_NUM_THREADS", "5")  # the user's own setting is kept
    result = experiment.grid_search(pools, {"x": [1]}, workers=1)
    assert {t.returned["omp"] for t in result.trials} == {"5"}
    with pytest.raises(ValueError, match="threads_per_trial must be a positive integer, got 0"):
        experiment.launch(lambda: 1, threads_per_trial=0)
    monkeypatch.setenv("HOPS_THREADS_PER_TRIAL", "many")
    with pytest.raises(ValueError, match="threads_per_trial from \\$HOPS_THREADS_PER_TRIAL"):
        experiment.launch(lambda: 1)


@pytest.mark.spark
def test_spark_tasks_get_their_task_cpus(spark, hops_home):
    result = experiment.grid_search(pools, {"x": [1, 2]}, engine="spark")
    assert {t.returned["omp"] for t in result.trials} == {"1"}  # spark.task.cpus = 1
