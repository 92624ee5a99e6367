"""Early stopping on a real model: an MLPClassifier on scikit-learn's digits, trained epoch by
epoch with `partial_fit`, validation accuracy reported after each epoch, 40 trials.

Side by side, in one run, 2 trials at once each:
- hops `experiment.optimize` without early stopping,
- hops `experiment.optimize(early_stopping="asha")`,
- Optuna (default TPE sampler) with its SuccessiveHalvingPruner, `n_jobs=2`.

Reports wall time and best validation accuracy. Target: hops with ASHA reaches the same best
accuracy (within 0.5 points) in less wall time than both. Every side runs with one BLAS/OpenMP
thread per trial (2 trials on 2 cores), so no side is slowed by oversubscription.

As in a notebook session, the sides run one after the other in one process: Optuna's trials run
in threads of this process, where scikit-learn is imported already; hops' first side starts
its workers (a new interpreter importing scikit-learn, about a second), and the second finds
them warm (engines/local.py keeps idle workers for the next experiment). The default
optimizer with early stopping is "tpe" (registry.AUTO_SEARCH_EARLY_STOPPING). The table is
kept in benchmarks/results/early_stopping.txt.
"""

from __future__ import annotations

import datetime
import os
import sys
import tempfile
import time
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"  # before numpy loads; trials inherit it

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TRIALS = 40
EPOCHS = 30
SEED = 0


def data():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    x, y = load_digits(return_X_y=True)
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.3, random_state=0)
    scaler = StandardScaler().fit(x_train)
    return scaler.transform(x_train), scaler.transform(x_val), y_train, y_val


def train_epochs(lr: float, units: int, alpha: float, report) -> float:
    """Train for EPOCHS epochs, calling report(accuracy, epoch) after each; the last accuracy."""
    import warnings

    import numpy as np
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    x_train, x_val, y_train, y_val = data()
    model = MLPClassifier(hidden_layer_sizes=(units,), learning_rate_init=lr, alpha=alpha,
                          batch_size=64, random_state=0)  # fmt: skip
    classes = np.unique(y_train)
    accuracy = 0.0
    for epoch in range(EPOCHS):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            model.partial_fit(x_train, y_train, classes=classes)
        accuracy = float(model.score(x_val, y_val))
        report(accuracy, epoch)
    return accuracy


def hops_trial(lr, units, alpha):
    from hops import experiment

    return train_epochs(lr, units, alpha, lambda acc, epoch: experiment.report(acc, step=epoch))


def hops_side(early_stopping: str | None) -> tuple[float, float, int]:
    from hops import experiment

    space = {"lr": experiment.loguniform(1e-4, 1e-1), "units": experiment.randint(16, 128, log=True),
             "alpha": experiment.loguniform(1e-6, 1e-2)}  # fmt: skip
    t0 = time.perf_counter()
    result = experiment.optimize(hops_trial, space, trials=TRIALS, seed=SEED, workers=2,
                                 early_stopping=early_stopping)  # fmt: skip
    wall = time.perf_counter() - t0
    stopped = sum(t.status == "EARLY_STOPPED" for t in result.trials)
    return wall, result.best_metric, stopped


def optuna_side() -> tuple[float, float, int]:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-4, 1e-1, log=True)
        units = trial.suggest_int("units", 16, 128, log=True)
        alpha = trial.suggest_float("alpha", 1e-6, 1e-2, log=True)

        def report(acc, epoch):
            trial.report(acc, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned

        return train_epochs(lr, units, alpha, report)

    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=SEED),
        pruner=optuna.pruners.SuccessiveHalvingPruner(),
    )  # fmt: skip
    t0 = time.perf_counter()
    study.optimize(objective, n_trials=TRIALS, n_jobs=2)
    wall = time.perf_counter() - t0
    pruned = sum(t.state == optuna.trial.TrialState.PRUNED for t in study.trials)
    return wall, study.best_value, pruned


def main() -> None:
    from benchmarks.common import Report

    out = Report("early_stopping")
    with tempfile.TemporaryDirectory() as home:
        os.environ["HOPS_HOME"] = home
        os.environ["HOPS_TENSORBOARD"] = "false"
        data()  # warm the dataset cache for every side alike
        out(f"# benchmarks/early_stopping.py, {datetime.date.today()}, {os.cpu_count()} cores")
        out(f"MLPClassifier on digits, {TRIALS} trials x {EPOCHS} epochs, 2 at once\n")
        out(f"{'side':<40}{'wall s':>8}{'best acc':>10}{'stopped':>9}")
        rows = {
            "hops optimize, no early stopping": hops_side(None),
            'hops optimize, early_stopping="asha"': hops_side("asha"),
            "Optuna TPE + SuccessiveHalvingPruner": optuna_side(),
        }
        for name, (wall, best, stopped) in rows.items():
            out(f"{name:<40}{wall:>8.2f}{best * 100:>9.2f}%{stopped:>9}")
        full, asha, opt = rows.values()
        faster = asha[0] < full[0] and asha[0] < opt[0]
        close = asha[1] >= max(full[1], opt[1]) - 0.005
        out(f"\ntarget (asha faster than both, best within 0.5 points): "
            f"{'met' if faster and close else 'MISSED'}")  # fmt: skip
    out.save()


if __name__ == "__main__":
    main()
