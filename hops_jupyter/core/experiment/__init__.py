"""The seed's `experiment` API: run a training function as tracked trials.

`launch` runs it once (or once per position of `args_dict`), `grid_search`, `random_search` and
`differential_evolution` search hyperparameters. Trials run on the local engine (worker processes)
by default, or on Spark with `engine="spark"` / a SparkSession as first argument (the seed's older
signatures). Inside a trial, `report()` streams live values.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from typing import Any

from hops_jupyter.core import context, filesystem, project
from hops_jupyter.core.experiment import events, records, registry
from hops_jupyter.core.experiment.engines.base import Engine
from hops_jupyter.core.experiment.records import ExperimentRecord, TrialStatus
from hops_jupyter.core.experiment.reports import TrialStopped
from hops_jupyter.core.experiment.result import ExperimentFailed, ExperimentResult
from hops_jupyter.core.experiment.run import ExperimentSpec, RunHooks, run
from hops_jupyter.core.experiment.search import (
    DifferentialEvolution,
    FixedTrials,
    GridSearch,
    RandomSearch,
    Searcher,
    check_count,
    check_direction,
)
from hops_jupyter.core.experiment.search.space import (
    Categorical,
    Float,
    Int,
    choice,
    loguniform,
    randint,
    uniform,
)
from hops_jupyter.core.experiment.stopping import ASHA, MedianStopping, StoppingPolicy

__all__ = [
    "ASHA",
    "Categorical",
    "Direction",
    "begin",
    "end",
    "ExperimentFailed",
    "ExperimentResult",
    "Float",
    "Int",
    "MedianStopping",
    "RunHooks",
    "StoppingPolicy",
    "TrialStatus",
    "TrialStopped",
    "choice",
    "collective_all_reduce",
    "compare",
    "differential_evolution",
    "evolutionary_search",
    "get",
    "grid_search",
    "launch",
    "list",
    "loguniform",
    "mirrored",
    "optimize",
    "parameter_server",
    "randint",
    "random_search",
    "report",
    "show",
    "stop",
    "uniform",
]


class Direction:
    """The seed's constants: `direction=Direction.MAX`."""

    MAX = "max"
    MIN = "min"


def _is_spark(value: Any) -> bool:
    return hasattr(value, "sparkContext") or type(value).__name__ == "SparkContext"


def _split_spark(args: tuple[Any, ...]) -> tuple[Any, tuple[Any, ...]]:
    """The seed's older signatures put a SparkSession first: `launch(spark, fn, args_dict)`."""
    if args and _is_spark(args[0]):
        return args[0], args[1:]
    return None, args


def _engine(
    engine: str | Engine | None,
    spark: Any,
    workers: int | None,
    timeout: float | None,
    total: int | None,
    threads: int | None = None,
    gpus: int | None = None,
    reuse: bool | None = None,
) -> Engine:
    if isinstance(engine, Engine):
        return engine
    name = "spark" if spark is not None and engine in (None, "spark") else (engine or "local")
    if registry.check_engine(name) == "spark":
        from hops_jupyter.core.experiment.engines.spark import SparkEngine

        return SparkEngine(spark, workers=workers, timeout=timeout, threads_per_trial=threads,
                           reuse_workers=reuse)  # fmt: skip
    from hops_jupyter.core.experiment.engines.local import LocalEngine

    count = workers if workers is not None else project.current().local_workers
    if isinstance(count, int) and not isinstance(count, bool) and count > 0 and total:
        count = min(count, total)
    return LocalEngine(count, timeout=timeout, threads_per_trial=threads, gpus_per_trial=gpus,
                       reuse_workers=reuse)  # fmt: skip


def _run(
    kind: str,
    fn: Callable[..., Any],
    searcher: Searcher,
    *,
    spark: Any,
    engine: str | Engine | None,
    workers: int | None,
    timeout: float | None,
    name: str | None,
    direction: str | None,
    metric_key: str | None,
    needs_metric: bool,
    resume: str | None,
    seed: int | None,
    options: dict[str, Any],
    early_stopping: Any = None,
    hooks: Any = (),
    threads_per_trial: int | None = None,
    gpus_per_trial: int | None = None,
    reuse_workers: bool | None = None,
) -> ExperimentResult:
    stopper = registry.stopping_policy(early_stopping)
    hooks = _check_hooks(hooks)
    spec = ExperimentSpec(
        kind=kind, fn=fn, searcher=searcher,
        engine=_engine(engine, spark, workers, timeout, searcher.total, threads_per_trial,
                       gpus_per_trial, reuse_workers),
        name=name,
        direction=direction, metric_key=metric_key, needs_metric=needs_metric, resume=resume,
        seed=seed, options=options, stopper=stopper, hooks=hooks,
    )  # fmt: skip
    return run(spec)


def _check_hooks(hooks: Any) -> tuple[RunHooks, ...]:
    if isinstance(hooks, RunHooks):
        return (hooks,)
    hooks = tuple(hooks or ())
    bad = [h for h in hooks if not isinstance(h, RunHooks)]
    if bad:
        raise TypeError(f"hooks must be RunHooks objects, got {bad!r}")
    return hooks


def _seed(seed: int | None, resume: str | None) -> int:
    """An explicit seed, else the resumed experiment's, else a fresh one (always recorded)."""
    if seed is not None:
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"seed must be an integer, got {seed!r}")
        return seed
    if resume:
        old = records.read_json(records.experiment_dir(resume).child(records.EXPERIMENT_FILE))
        if old.get("seed") is not None:
            return int(old["seed"])
    return secrets.randbits(31)


def _name(name: str | None) -> str | None:
    return None if name in (None, "no-name") else name


def launch(*args: Any, name: str | None = None, metric_key: str | None = None,
           engine: str | Engine | None = None, workers: int | None = None,
           timeout: float | None = None, resume: str | None = None,
           description: str | None = None, local_logdir: bool = False,
           versioned_resources: list[str] | None = None, threads_per_trial: int | None = None,
           gpus_per_trial: int | None = None, reuse_workers: bool | None = None,
           hooks: Any = (), **kwargs: Any) -> ExperimentResult:  # fmt: skip
    """Run `fn()` once, or once per position of `args_dict` (equal-length lists, zipped).

    Signatures: `launch(fn, args_dict=None, ...)` or the seed's `launch(spark, fn, args_dict)`.
    Returns an ExperimentResult: `str()` is the experiment folder; it unpacks as
    `(logdir, return_dict)`.
    """
    if "early_stopping" in kwargs:
        raise TypeError(
            "launch() runs every trial to its end: early_stopping is for searches "
            "(grid_search, random_search, differential_evolution, optimize)"
        )
    spark, rest = _split_spark(args)
    fn, args_dict, _ = _positional(rest, kwargs, "args_dict", required=False)
    return _run(
        "launch", fn, FixedTrials(args_dict), spark=spark, engine=engine, workers=workers,
        timeout=timeout, name=_name(name), direction=None, metric_key=metric_key,
        needs_metric=False, resume=resume, seed=None, hooks=hooks,
        threads_per_trial=threads_per_trial,
        gpus_per_trial=gpus_per_trial, reuse_workers=reuse_workers,
        options={"description": description, "local_logdir": local_logdir,
                 "versioned_resources": versioned_resources},
    )  # fmt: skip


def grid_search(*args: Any, direction: str = Direction.MAX, name: str | None = None,
                optimization_key: str | None = None, metric_key: str | None = None,
                engine: str | Engine | None = None, workers: int | None = None,
                timeout: float | None = None, resume: str | None = None,
                description: str | None = None, local_logdir: bool = False,
                early_stopping: Any = None, hooks: Any = (),
                threads_per_trial: int | None = None, gpus_per_trial: int | None = None,
                reuse_workers: bool | None = None,
                **kwargs: Any) -> ExperimentResult:  # fmt: skip
    """One trial per point of the cartesian product of `args_dict`'s lists.

    Signatures: `grid_search(fn, args_dict, direction='max', ...)` or the seed's
    `grid_search(spark, fn, args_dict, direction)`. Unpacks as
    `(best_dir, best_params, best_return_dict)`.
    """
    spark, rest = _split_spark(args)
    fn, grid, more = _positional(rest, kwargs, "args_dict", aliases=("grid_dict",),
                                 extra=("direction",))  # fmt: skip
    direction = check_direction(more.get("direction", direction))
    return _run(
        "grid_search", fn, GridSearch(grid, direction), spark=spark, engine=engine,
        workers=workers, timeout=timeout, name=_name(name), direction=direction,
        metric_key=metric_key or optimization_key, needs_metric=True, resume=resume, seed=None,
        options={"description": description, "local_logdir": local_logdir},
        early_stopping=early_stopping, hooks=hooks, threads_per_trial=threads_per_trial,
        gpus_per_trial=gpus_per_trial, reuse_workers=reuse_workers,
    )  # fmt: skip


def random_search(*args: Any, direction: str = Direction.MAX, samples: int = 10,
                  name: str | None = None, optimization_key: str | None = None,
                  metric_key: str | None = None, seed: int | None = None,
                  engine: str | Engine | None = None, workers: int | None = None,
                  timeout: float | None = None, resume: str | None = None,
                  description: str | None = None, local_logdir: bool = False,
                  early_stopping: Any = None, hooks: Any = (),
                  threads_per_trial: int | None = None, gpus_per_trial: int | None = None,
                  reuse_workers: bool | None = None,
                  **kwargs: Any) -> ExperimentResult:  # fmt: skip
    """`samples` trials drawn uniformly from `search_dict` bounds (`[low, high]`, or a list of
    choices). Reproducible with `seed=`."""
    spark, rest = _split_spark(args)
    fn, space, more = _positional(rest, kwargs, "search_dict", aliases=("boundary_dict",),
                                  extra=("direction", "samples"))  # fmt: skip
    direction = check_direction(more.get("direction", direction))
    samples = more.get("samples", samples)
    seed = _seed(seed, resume)
    return _run(
        "random_search", fn, RandomSearch(space, samples, direction, seed), spark=spark,
        engine=engine, workers=workers, timeout=timeout, name=_name(name), direction=direction,
        metric_key=metric_key or optimization_key, needs_metric=True, resume=resume, seed=seed,
        options={"description": description, "local_logdir": local_logdir, "samples": samples},
        early_stopping=early_stopping, hooks=hooks, threads_per_trial=threads_per_trial,
        gpus_per_trial=gpus_per_trial, reuse_workers=reuse_workers,
    )  # fmt: skip


def differential_evolution(*args: Any, direction: str = Direction.MAX, generations: int = 4,
                           population: int | None = None,
                           mutation: float | tuple[float, float] = (0.5, 1.0),
                           crossover: float = 0.7, name: str | None = None,
                           optimization_key: str | None = None, metric_key: str | None = None,
                           seed: int | None = None, engine: str | Engine | None = None,
                           workers: int | None = None, timeout: float | None = None,
                           resume: str | None = None, description: str | None = None,
                           local_logdir: bool = False, cleanup_generations: bool = False,
                           early_stopping: Any = None, hooks: Any = (),
                           threads_per_trial: int | None = None, gpus_per_trial: int | None = None,
                           reuse_workers: bool | None = None,
                           **kwargs: Any) -> ExperimentResult:  # fmt: skip
    """Asynchronous differential evolution over `search_dict` bounds: `population *
    generations` trials, a free worker getting a new candidate at once. Ints stay ints, a list
    of strings is categorical. Unpacks as `(best_dir, best_params, best_return_dict)`."""
    population = kwargs.pop("popsize", population)  # the seed's evolutionary_search(popsize=)
    spark, rest = _split_spark(args)
    fn, space, more = _positional(
        rest, kwargs, "search_dict", aliases=("boundary_dict",),
        extra=("direction", "generations", "population", "mutation", "crossover"),
    )  # fmt: skip
    direction = check_direction(more.get("direction", direction))
    generations = more.get("generations", generations)
    population = more.get("population", population)
    mutation = more.get("mutation", mutation)
    crossover = more.get("crossover", crossover)
    seed = _seed(seed, resume)
    searcher = DifferentialEvolution(
        space, direction, generations, population, mutation, crossover, seed
    )
    return _run(
        "differential_evolution", fn, searcher, spark=spark, engine=engine, workers=workers,
        timeout=timeout, name=_name(name), direction=direction,
        metric_key=metric_key or optimization_key, needs_metric=True, resume=resume, seed=seed,
        options={"description": description, "local_logdir": local_logdir,
                 "generations": generations, "population": searcher.population,
                 "mutation": mutation, "crossover": crossover},
        early_stopping=early_stopping, hooks=hooks, threads_per_trial=threads_per_trial,
        gpus_per_trial=gpus_per_trial, reuse_workers=reuse_workers,
    )  # fmt: skip


evolutionary_search = differential_evolution


def optimize(fn: Callable[..., Any], search_dict: dict[str, Any], trials: int = 50,
             optimizer: str = "auto", direction: str = Direction.MAX,
             early_stopping: Any = None, seed: int | None = None, workers: int | None = None,
             engine: str | Engine | None = None, timeout: float | None = None,
             name: str | None = None, resume: str | None = None,
             metric_key: str | None = None, spark: Any = None,
             hooks: Any = (), threads_per_trial: int | None = None,
             gpus_per_trial: int | None = None,
             reuse_workers: bool | None = None) -> ExperimentResult:  # fmt: skip
    """`trials` trials proposed by `optimizer` (any registered search: "tpe", "de", "random",
    "grid", or "auto", the best one in benchmarks/search_quality.py, or "tpe" with early
    stopping, see registry.AUTO_SEARCH_EARLY_STOPPING), which learns from each
    result as it arrives, with several trials at once. `search_dict` takes `[low, high]`, lists
    of choices, `loguniform(...)`, `randint(...)` and `choice(...)`. `early_stopping="asha"` or
    `"median"` (or a policy object) stops trials whose reported values fall behind. Unpacks as
    `(best_dir, best_params, best_return_dict)`."""
    check_count("trials", trials)
    stops = registry.stopping_policy(early_stopping) is not None
    key, factory = registry.search_factory(optimizer, early_stopping=stops)
    direction = check_direction(direction)
    seed = _seed(seed, resume)
    searcher = factory(search_dict, trials, direction, seed)
    return _run(
        "optimize", fn, searcher, spark=spark, engine=engine, workers=workers, timeout=timeout,
        name=_name(name), direction=direction, metric_key=metric_key, needs_metric=True,
        resume=resume, seed=seed, options={"optimizer": key, "trials": trials},
        early_stopping=early_stopping, hooks=hooks, threads_per_trial=threads_per_trial,
        gpus_per_trial=gpus_per_trial, reuse_workers=reuse_workers,
    )  # fmt: skip


def _positional(
    rest: tuple[Any, ...],
    kwargs: dict[str, Any],
    dict_name: str,
    required: bool = True,
    aliases: tuple[str, ...] = (),
    extra: tuple[str, ...] = (),
) -> tuple[Callable[..., Any], Any, dict[str, Any]]:
    """(fn, the dict, positional extras by name) from positional or keyword arguments, with
    the seed's keyword names (`map_fun`, `boundary_dict`, ...) and positional options
    (`grid_search(fn, grid, "min")`, `random_search(fn, space, "max", 20)`)."""
    fn = (
        rest[0]
        if rest
        else kwargs.pop("map_fun", kwargs.pop("objective_function", kwargs.pop("fn", None)))
    )
    value = rest[1] if len(rest) > 1 else None
    for key in (dict_name, *aliases):
        if key in kwargs:
            value = kwargs.pop(key)
    if len(rest) > 2 + len(extra):
        expected = ", ".join(("fn", dict_name, *extra))
        raise TypeError(f"Too many positional arguments: {len(rest)} (expected {expected})")
    if kwargs:
        raise TypeError(f"Unknown keyword argument(s) {sorted(kwargs)}")
    if fn is None:
        raise TypeError("Missing the training function (the first argument)")
    if required and value is None:
        raise TypeError(f"Missing {dict_name}: the hyperparameters to search")
    return fn, value, dict(zip(extra, rest[2:], strict=False))


_steps: dict[str, int] = {}


def report(metric: Any, step: int | None = None, **more: Any) -> None:
    """Stream a live value from inside a trial (appended to its `metrics.jsonl`). Outside an
    experiment (calling the function directly while developing it) this does nothing."""
    trial = context.current_trial()
    if trial is None:
        return
    from hops_jupyter.core.experiment.trial import as_number, plain_value

    value = as_number(metric)
    if value is None:
        raise ValueError(
            f"report() takes a number as metric, got {metric!r} ({type(metric).__name__})"
        )
    key = trial.trial_url
    step = _steps.get(key, -1) + 1 if step is None else int(step)
    _steps[key] = step
    extras = plain_value(more)
    line = {"time": time.time(), "step": step, "metric": value, **extras}
    loc = filesystem.resolve(trial.trial_url, project.current()).child(records.METRICS_FILE)
    filesystem.append_line(loc, json.dumps(records.json_safe(line)))
    events.scalars(trial, step, {"metric": value, **extras})  # for TensorBoard
    if trial.reporter is not None and trial.reporter.send(step, value, extras):
        raise TrialStopped(step, value)  # the run's stopping policy ended this trial here


def stop(experiment_id: str) -> None:
    """Ask a running experiment to stop, whichever kernel or process runs it: its driver sees
    the request within a second, kills the running trials and returns what finished."""
    records.request_stop(_experiment_id(experiment_id))


def _experiment_id(value: Any) -> str:
    """An experiment id from an id or a result (whose str() is its folder)."""
    return value.id if isinstance(value, ExperimentResult) else str(value)


def mirrored(*args: Any, **kwargs: Any) -> ExperimentResult:
    """One worker, all its GPUs (MirroredStrategy); see experiment.distributed."""
    from hops_jupyter.core.experiment import distributed

    return distributed.mirrored(*args, **kwargs)


def collective_all_reduce(*args: Any, **kwargs: Any) -> ExperimentResult:
    """N workers with MultiWorkerMirroredStrategy; see experiment.distributed."""
    from hops_jupyter.core.experiment import distributed

    spark, rest = _split_spark(args)  # the seed's form: SparkSession first
    if spark is not None:
        kwargs.setdefault("spark", spark)
    return distributed.collective_all_reduce(*rest, **kwargs)


def parameter_server(*args: Any, **kwargs: Any) -> ExperimentResult:
    """TF2's ParameterServerStrategy with a coordinator; see experiment.distributed."""
    from hops_jupyter.core.experiment import distributed

    spark, rest = _split_spark(args)  # the seed's form: SparkSession first
    if spark is not None:
        kwargs.setdefault("spark", spark)
    return distributed.parameter_server(*rest, **kwargs)


def begin(name: str = "no-name", local_logdir: bool = False,
          versioned_resources: list[str] | None = None, description: str | None = None) -> str:  # fmt: skip
    """hops-util-py 1.0: start tracking the notebook code that follows as one run; returns its
    logdir. Finish it with `end(metric)`."""
    from hops_jupyter.core.experiment import manual

    return manual.begin(name, local_logdir, versioned_resources, description)


def end(metric: Any = None) -> str:
    """hops-util-py 1.0: finish the run started by `begin()`; returns the experiment folder."""
    from hops_jupyter.core.experiment import manual

    return manual.end(metric)


def show(experiment_id: str | None = None) -> Any:
    """Show an experiment (default: the newest) in the notebook: live while it runs, its final
    state once it ended. The view comes from an installed `hops_jupyter.viewers` entry point
    (hops-jupyter's widgets), so this module needs no notebook libraries."""
    from importlib.metadata import entry_points

    viewers = sorted(entry_points(group="hops_jupyter.viewers"), key=lambda e: e.name)
    if not viewers:
        raise RuntimeError("No experiment viewer is installed (hops-jupyter's widgets provide one)")
    return viewers[0].load()(None if experiment_id is None else str(experiment_id))


def get(experiment_id: str) -> ExperimentRecord:
    """One experiment's record with its trials (each with its latest reported metric)."""
    return records.get(_experiment_id(experiment_id))


_LIST_COLUMNS = ("id", "name", "kind", "status", "started", "duration_s", "trials_done",
                 "trials_total", "trials_failed", "best_metric", "best_params")  # fmt: skip


def list() -> Any:  # noqa: A001 - the seed-style name users call
    """The project's experiments as a pandas DataFrame, one row per experiment, newest first:
    `experiment.list().id.iloc[0]` is the newest's id (the rows of records.list_experiments())."""
    import pandas as pd

    rows = [{c: getattr(r, c) for c in _LIST_COLUMNS} for r in records.list_experiments()]
    table = pd.DataFrame(rows, columns=_LIST_COLUMNS)
    # ISO 8601 whatever the precision; anything else (a hand-edited record) reads as NaT
    table["started"] = pd.to_datetime(table["started"], utc=True, errors="coerce", format="ISO8601")
    return table


_COMPARE_COLUMNS = ("name", "kind", "status", "direction", "metric", "best_metric", "trials_done",
                    "trials_total", "trials_failed", "duration_s")  # fmt: skip


def compare(experiment_ids: Any) -> Any:
    """Experiments side by side as a pandas DataFrame, one row per experiment (indexed by id,
    in the order given): what each searched for, its best metric, trials and duration, and its
    best parameters, one column per parameter any of them has. Takes ids, results, or a column
    of ids (`experiment.compare(experiment.list().id[:3])`)."""
    import pandas as pd

    if isinstance(experiment_ids, (str, ExperimentResult)):
        experiment_ids = [experiment_ids]
    try:
        given = [*experiment_ids]
    except TypeError:
        raise TypeError(
            f"compare() takes experiment ids or results (a list, or experiment.list().id), "
            f"got {experiment_ids!r}"
        ) from None
    ids = [*dict.fromkeys(_experiment_id(e) for e in given)]  # each once (`list` is ours here)
    found = [records.read_experiment(records.experiment_dir(str(i)), with_trials=False)
             for i in ids]  # fmt: skip
    rows, params = [], {}
    for record in found:
        row = {c: getattr(record, c, None) for c in _COMPARE_COLUMNS}
        row["metric"] = record.metric_key or ("metric" if record.direction else None)
        for name, value in (record.best_params or {}).items():
            column = params.setdefault(name, f"param {name}" if name in _COMPARE_COLUMNS else name)
            row[column] = value
        rows.append(row)
    index = pd.Index([r.id for r in found], name="id")
    return pd.DataFrame(rows, index=index, columns=[*_COMPARE_COLUMNS, *params.values()])
