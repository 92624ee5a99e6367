"""Thread limits per trial: trials side by side do not each start machine-wide thread pools."""

import os

import pytest

from hops import experiment


def pools(x):
    import os

    import numpy  # noqa: F401 - its BLAS pool is what the limit must reach
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


# --- GPUs per trial (an injected GPU list: this machine has none) ------------------------------


def gpu_view(x):
    import os
    import time

    from hops import devices

    time.sleep(0.3)  # long enough for the trials of one wave to overlap
    return {"metric": x, "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "count": devices.get_num_gpus()}  # fmt: skip


def test_gpu_sets_split_the_gpus_between_slots():
    from hops_jupyter.core.experiment.engines.local import gpu_sets

    ids = ["0", "1", "2", "3"]
    assert gpu_sets(ids, None, 8) == [("0",), ("1",), ("2",), ("3",)]  # default: 1 each
    assert gpu_sets(ids, 2, 8) == [("0", "1"), ("2", "3")]
    assert gpu_sets(ids, 3, 8) == [("0", "1", "2")]
    assert gpu_sets(ids, 1, 2) == [("0",), ("1",)]  # never more slots than asked for
    assert gpu_sets([], None, 2) is None  # no GPU: nothing handed out
    assert gpu_sets(ids, 0, 2) == [(), ()]  # GPUs present, none wanted: hidden
    with pytest.raises(ValueError, match="gpus_per_trial=5 but this machine has 4 GPU"):
        gpu_sets(ids, 5, 2)
    with pytest.raises(ValueError, match="gpus_per_trial must be an integer >= 0, got -1"):
        gpu_sets(ids, -1, 2)


def test_parallel_trials_each_get_their_own_gpus(hops_home, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2,3")
    result = experiment.grid_search(gpu_view, {"x": [1, 2, 3, 4]}, workers=8)
    assert result.record.workers == 4  # min(workers, GPUs // 1)
    seen = sorted(t.returned["visible"] for t in result.trials)
    assert seen == ["0", "1", "2", "3"] and {t.returned["count"] for t in result.trials} == {1}
    pairs = experiment.grid_search(gpu_view, {"x": [1, 2]}, workers=4, gpus_per_trial=2)
    assert pairs.record.workers == 2
    assert sorted(t.returned["visible"] for t in pairs.trials) == ["0,1", "2,3"]
    assert {t.returned["count"] for t in pairs.trials} == {2}
    hidden = experiment.grid_search(gpu_view, {"x": [1]}, gpus_per_trial=0)
    assert hidden.trials[0].returned["count"] == 0
