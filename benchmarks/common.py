"""What the benchmarks share: standard test functions with their known minima, and the table
each script prints and keeps in benchmarks/results/."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np


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


def optuna_tpe(f, bounds, budget, seed):
    """Optuna's TPE with default settings, one trial at a time; the best value found."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(
        lambda t: f([t.suggest_float(f"x{i}", lo, hi) for i, (lo, hi) in enumerate(bounds)]),
        n_trials=budget,
    )
    return study.best_value


class Report:
    """Lines printed as they come and kept in benchmarks/results/<name>.txt at the end."""

    def __init__(self, name: str) -> None:
        self.name, self.lines = name, []

    def __call__(self, line: str) -> None:
        print(line, flush=True)
        self.lines.append(line)

    def save(self) -> None:
        results = Path(__file__).parent / "results"
        results.mkdir(exist_ok=True)
        (results / f"{self.name}.txt").write_text("\n".join(self.lines) + "\n")
