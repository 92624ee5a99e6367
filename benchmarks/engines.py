"""A real scikit-learn tuning job on the local engine, side by side in one run: a 40-trial
random search over HistGradientBoostingClassifier on load_breast_cancer, 3-fold CV, 2 trials at
once, with no thread variables set by hand.

- hops with its default thread limit (cores // trials at once per trial),
- hops with the limit lifted to every core per trial (what it did before: oversubscription),
- Optuna `n_jobs=2` (its default random sampler seeded alike, same space).

Target (issue 12): hops' wall time <= Optuna's. The table is kept in
benchmarks/results/engines.txt.
"""

from __future__ import annotations

import datetime
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import Report  # noqa: E402 - after the path set-up

TRIALS = 40


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


def main() -> None:
    out = Report("engines")
    with tempfile.TemporaryDirectory() as home:
        os.environ["HOPS_HOME"] = home
        os.environ["HOPS_TENSORBOARD"] = "false"
        out(f"# benchmarks/engines.py, {datetime.date.today()}, {os.cpu_count()} cores")
        out(f"HistGradientBoosting on breast cancer, {TRIALS} trials, 3-fold CV, 2 at once\n")
        out(f"{'side':<46}{'wall s':>8}{'best':>8}")
        rows = {
            "hops, default threads per trial": hops_side(None),
            "hops, every core per trial (oversubscribed)": hops_side(os.cpu_count() or 1),
            "Optuna n_jobs=2": optuna_side(),
        }
        for name, (wall, best) in rows.items():
            out(f"{name:<46}{wall:>8.2f}{best:>8.4f}")
        ours, _, optuna = rows.values()
        out(
            f"\ntarget (hops default <= Optuna n_jobs=2): {'met' if ours[0] <= optuna[0] else 'MISSED'}"
        )
    out.save()


if __name__ == "__main__":
    main()
