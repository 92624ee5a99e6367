"""Search quality through the public API: `experiment.optimize` with its default optimizer and
2 workers (2 trials at once), beside Optuna's TPE with default settings run sequentially (one
trial at a time, which only helps it) and our random search (2 workers).

Median regret (best value found minus the known minimum) over 10 seeds, at 50 and 200
evaluations, on Branin, Hartmann-6, Rosenbrock-4, Ackley-5 and Styblinski-Tang-4. Target: at
or below Optuna TPE's median regret on every problem and budget. The table is kept in
benchmarks/results/search_quality.txt.
"""

from __future__ import annotations

import datetime
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SEEDS = int(os.environ.get("HOPS_BENCH_SEEDS", "10"))
BUDGETS = (50, 200)


def branin(x):
    x1, x2 = x
    b, c, t = 5.1 / (4 * math.pi**2), 5 / math.pi, 1 / (8 * math.pi)
    return (x2 - b * x1**2 + c * x1 - 6) ** 2 + 10 * (1 - t) * math.cos(x1) + 10


_H_A = np.array(
    [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8],
     [17, 8, 0.05, 10, 0.1, 14]]
)  # fmt: skip
_H_P = 1e-4 * np.array(
    [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
     [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]
)  # fmt: skip
_H_ALPHA = np.array([1.0, 1.2, 3.0, 3.2])


def hartmann6(x):
    x = np.asarray(x)
    return float(-np.sum(_H_ALPHA * np.exp(-np.sum(_H_A * (x - _H_P) ** 2, axis=1))))


def rosenbrock(x):
    x = np.asarray(x)
    return float(np.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2))


def ackley(x):
    x = np.asarray(x)
    d = len(x)
    return float(
        -20 * np.exp(-0.2 * np.sqrt(np.sum(x**2) / d))
        - np.exp(np.sum(np.cos(2 * np.pi * x)) / d)
        + 20
        + math.e
    )


def styblinski_tang(x):
    x = np.asarray(x)
    return float(0.5 * np.sum(x**4 - 16 * x**2 + 5 * x))


PROBLEMS = {
    "Branin": (branin, [(-5.0, 10.0), (0.0, 15.0)], 0.397887),
    "Hartmann-6": (hartmann6, [(0.0, 1.0)] * 6, -3.32237),
    "Rosenbrock-4": (rosenbrock, [(-5.0, 10.0)] * 4, 0.0),
    "Ackley-5": (ackley, [(-32.768, 32.768)] * 5, 0.0),
    "Styblinski-Tang-4": (styblinski_tang, [(-5.0, 5.0)] * 4, -39.16617 * 4),
}


def objective(f):
    """The problem as a training function of named hyperparameters x0, x1, ..."""

    def train(**params):
        return f([params[f"x{i}"] for i in range(len(params))])

    return train


def hops(optimizer: str):
    def run(f, bounds, budget, seed):
        from hops import experiment

        space = {f"x{i}": list(b) for i, b in enumerate(bounds)}
        result = experiment.optimize(objective(f), space, trials=budget, optimizer=optimizer,
                                     direction="min", seed=seed, workers=2)  # fmt: skip
        return result.best_metric

    return run


def optuna_tpe(f, bounds, budget, seed):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(
        lambda t: f([t.suggest_float(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(bounds)]),
        n_trials=budget,
    )
    return study.best_value


METHODS = {
    "optimize (auto)": hops("auto"),
    "Optuna TPE (seq)": optuna_tpe,
    "hops random": hops("random"),
}


def main() -> None:
    lines: list[str] = []

    def out(line: str) -> None:
        print(line, flush=True)
        lines.append(line)

    from hops_jupyter.core.experiment import registry

    with tempfile.TemporaryDirectory() as home:
        os.environ["HOPS_HOME"] = home
        os.environ["HOPS_TENSORBOARD"] = "false"
        out(f"# benchmarks/search_quality.py, {datetime.date.today()}, {os.cpu_count()} cores")
        out(f'optimizer="auto" is "{registry.AUTO_SEARCH}"; hops runs 2 trials at once, Optuna one')
        out(f"\nmedian regret over {SEEDS} seeds (lower is better)\n")
        out(
            f"{'problem':<19}{'budget':>7}"
            + "".join(f"{m:>18}" for m in METHODS)
            + f"{'seconds':>9}"
        )
        met = []
        for pname, (f, bounds, fmin) in PROBLEMS.items():
            for budget in BUDGETS:
                t0 = time.perf_counter()
                medians = {
                    name: statistics.median(method(f, bounds, budget, s) - fmin for s in range(SEEDS))
                    for name, method in METHODS.items()
                }  # fmt: skip
                met.append(medians["optimize (auto)"] <= medians["Optuna TPE (seq)"])
                out(f"{pname:<19}{budget:>7}" + "".join(f"{medians[m]:>18.4g}" for m in METHODS)
                    + f"{time.perf_counter() - t0:>9.0f}")  # fmt: skip
        out(f"\ntarget (optimize at or below Optuna TPE everywhere): "
            f"{'met' if all(met) else 'MISSED'} ({sum(met)}/{len(met)})")  # fmt: skip
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "search_quality.txt").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
