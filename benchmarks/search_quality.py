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
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.common import PROBLEMS, Report, optuna_tpe  # noqa: E402 - after the path set-up

SEEDS = int(os.environ.get("HOPS_BENCH_SEEDS", "10"))
BUDGETS = (50, 200)


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


METHODS = {
    "optimize (auto)": hops("auto"),
    "Optuna TPE (seq)": optuna_tpe,
    "hops random": hops("random"),
}


def main() -> None:
    from hops_jupyter.core.experiment import registry

    out = Report("search_quality")
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
    out.save()


if __name__ == "__main__":
    main()
