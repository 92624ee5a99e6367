"""The engines on real workloads, side by side in one run (issue 12). Sections:

- hgb: a 40-trial random search over HistGradientBoostingClassifier on load_breast_cancer,
  3-fold CV, 2 trials at once, no thread variables set by hand: hops with its default thread
  limit, hops with every core per trial (oversubscribed), Optuna `n_jobs=2`. Target: hops'
  default <= Optuna.
- keras: a small Keras model on load_digits per trial, our default thread limit against one
  thread and against every core.
- makespan: 2,000 trials of 50 ms on 2 workers (each trial a fresh forked process, records
  written), beside a bare ProcessPoolExecutor(2) and Optuna `n_jobs=2`. Target: <= 2% over
  the ideal.
- spark: per-trial overhead of the Spark engine on local[2] and on a standalone cluster (a
  Master and two one-core Workers on loopback), after session start. Target: <= 50 ms.

Usage: python benchmarks/engines.py [SECTION ...]   (default: all). The table is kept in
benchmarks/results/engines.txt.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import Report  # noqa: E402 - after the path set-up

TRIALS = 40
MAKESPAN_TRIALS = 2000
NAP_S = 0.05


def cv_score(learning_rate: float, max_leaf_nodes: int, l2: float) -> float:
    from sklearn.datasets import load_breast_cancer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import cross_val_score

    x, y = load_breast_cancer(return_X_y=True)
    model = HistGradientBoostingClassifier(learning_rate=learning_rate,
                                           max_leaf_nodes=max_leaf_nodes,
                                           l2_regularization=l2, random_state=0)  # fmt: skip
    return float(cross_val_score(model, x, y, cv=3).mean())


def hops_side(threads: int | None) -> tuple[float, float]:
    from hops import experiment

    space = {"learning_rate": experiment.loguniform(0.01, 0.3),
             "max_leaf_nodes": experiment.randint(8, 64), "l2": [0.0, 1.0]}  # fmt: skip
    t0 = time.perf_counter()
    result = experiment.random_search(cv_score, space, samples=TRIALS, seed=0, workers=2,
                                      threads_per_trial=threads)  # fmt: skip
    return time.perf_counter() - t0, result.best_metric


def optuna_side() -> tuple[float, float]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial):
        return cv_score(trial.suggest_float("learning_rate", 0.01, 0.3, log=True),
                        trial.suggest_int("max_leaf_nodes", 8, 64),
                        trial.suggest_float("l2", 0.0, 1.0))  # fmt: skip

    study = optuna.create_study(direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))  # fmt: skip
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=TRIALS, n_jobs=2)
    return time.perf_counter() - t0, study.best_value


def nap(i: int) -> int:
    time.sleep(NAP_S)
    return i


def makespan_section(out: Report, n: int = MAKESPAN_TRIALS) -> None:
    import optuna

    from hops import experiment

    ideal = n * NAP_S / 2
    rows = {}
    t0 = time.perf_counter()
    with concurrent.futures.ProcessPoolExecutor(2) as pool:
        list(pool.map(nap, range(n)))
    rows["bare ProcessPoolExecutor(2)"] = time.perf_counter() - t0
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study()
    t0 = time.perf_counter()
    study.optimize(lambda trial: nap(trial.suggest_int("i", 0, n)), n_trials=n, n_jobs=2)
    rows["Optuna n_jobs=2 (threads)"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = experiment.grid_search(nap, {"i": list(range(n))}, workers=2)
    rows["hops local engine, 2 workers"] = time.perf_counter() - t0
    assert len(result.trials) == n and all(t.status == "FINISHED" for t in result.trials)
    out(f"\n## Makespan: {n} trials of {NAP_S * 1000:.0f} ms, 2 at once (ideal {ideal:.1f} s)\n")
    out(f"{'runner':<40}{'wall s':>8}{'over ideal':>12}")
    for name, wall in rows.items():
        out(f"{name:<40}{wall:>8.2f}{(wall / ideal - 1) * 100:>11.2f}%")
    ours = rows["hops local engine, 2 workers"]
    met = ours <= ideal * 1.02
    out(f"target (hops <= 2% over ideal, every trial in its own process, records written): "
        f"{'met' if met else 'MISSED'}")  # fmt: skip


def keras_trial(units: int, epochs: int) -> float:
    import os

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(x / 16.0, y, test_size=0.3, random_state=0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(units, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])  # fmt: skip
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0)
    return float(model.evaluate(x_val, y_val, verbose=0)[1])


def keras_section(out: Report) -> None:
    from hops import experiment

    space = {"units": [32, 64, 128, 256], "epochs": [10]}
    cores = os.cpu_count() or 1
    out("\n## A Keras model on load_digits: 4 trials (10 epochs each)\n")
    out(f"{'configuration':<52}{'wall s':>8}{'best':>8}")
    for workers, threads, label in (
        (2, None, f"2 at once, default ({max(1, cores // 2)} thread(s) each)"),
        (2, cores, f"2 at once, every core ({cores}) each"),
        (1, None, f"1 at a time, default ({cores} thread(s))"),
        (1, 1, "1 at a time, 1 thread"),
    ):
        t0 = time.perf_counter()
        result = experiment.grid_search(keras_trial, space, workers=workers,
                                        threads_per_trial=threads)  # fmt: skip
        out(f"{label:<52}{time.perf_counter() - t0:>8.2f}{result.best_metric:>8.4f}")


def spark_trial(i: int) -> int:
    time.sleep(0.2)
    return i


def _spark_overhead(master: str, n: int = 20) -> tuple[float, float]:
    """(cold, warm) per-trial overhead in ms: n trials of 0.2 s on the session's 2 slots, the
    first run on fresh Python workers, the second on warm ones."""
    from pyspark.sql import SparkSession

    from hops import experiment, util

    os.environ["PYSPARK_PYTHON"] = sys.executable  # executors need this Python (hops-jupyter)
    spark = (
        SparkSession.builder.master(master).appName("hops-bench")
        .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.pyspark.python", sys.executable).config("spark.executor.cores", "1")
        .config("spark.executor.memory", "512m").getOrCreate()
    )  # fmt: skip
    spark.sparkContext.setLogLevel("ERROR")
    deadline = time.monotonic() + 90
    while util.live_task_slots(spark) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    out = []
    try:
        for _ in range(2):
            t0 = time.perf_counter()
            result = experiment.grid_search(spark_trial, {"i": list(range(n))}, engine="spark")
            wall = time.perf_counter() - t0
            busy = sum(t.duration_s or 0 for t in result.trials)
            out.append((wall * 2 - busy) / n * 1000)
    finally:
        spark.stop()
    return out[0], out[1]


def spark_section(out: Report) -> None:
    from tests import spark_cluster

    out("\n## Spark engine: per-trial overhead, 20 trials of 0.2 s on 2 slots\n")
    out(f"{'master':<40}{'cold ms':>10}{'warm ms':>10}")
    rows = {"local[2]": _spark_overhead("local[2]")}
    with tempfile.TemporaryDirectory() as base:
        cluster = spark_cluster.start(Path(base))
        try:
            rows["standalone, 2 one-core Workers"] = _spark_overhead(cluster.url)
        finally:
            cluster.stop()
    for name, (cold, warm) in rows.items():
        out(f"{name:<40}{cold:>10.1f}{warm:>10.1f}")
    met = all(warm <= 50 for _, warm in rows.values())
    out("(cold: the experiment that starts the executors' Python workers; warm: the next one)")
    out(f"target (<= 50 ms per trial after session start, warm): {'met' if met else 'MISSED'}")


def hgb_section(out: Report) -> None:
    out(f"\n## HistGradientBoosting on breast cancer, {TRIALS} trials, 3-fold CV, 2 at once\n")
    out(f"{'side':<46}{'wall s':>8}{'best':>8}")
    rows = {
        "hops, default threads per trial": hops_side(None),
        "hops, every core per trial (oversubscribed)": hops_side(os.cpu_count() or 1),
        "Optuna n_jobs=2": optuna_side(),
    }
    for name, (wall, best) in rows.items():
        out(f"{name:<46}{wall:>8.2f}{best:>8.4f}")
    ours, _, optuna = rows.values()
    out(f"target (hops default <= Optuna n_jobs=2): {'met' if ours[0] <= optuna[0] else 'MISSED'}")


SECTIONS = {"hgb": hgb_section, "keras": keras_section, "makespan": makespan_section,
            "spark": spark_section}  # fmt: skip


def main() -> None:
    chosen = sys.argv[1:] or list(SECTIONS)
    unknown = [name for name in chosen if name not in SECTIONS]
    if unknown:
        sys.exit(f"unknown section(s) {unknown}: choose from {list(SECTIONS)}")
    # A partial run keeps its table beside the full one, never over it.
    out = Report("engines" if chosen == list(SECTIONS) else "engines-" + "-".join(chosen))
    with tempfile.TemporaryDirectory() as home:
        os.environ["HOPS_HOME"] = home
        os.environ["HOPS_TENSORBOARD"] = "false"
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # workers import TensorFlow quietly
        out(f"# benchmarks/engines.py, {datetime.date.today()}, {os.cpu_count()} cores")
        for name in chosen:
            SECTIONS[name](out)
    out.save()


if __name__ == "__main__":
    main()
