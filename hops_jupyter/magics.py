"""IPython magics: `%hdfs`, `%%experiment`, `%tensorboard` (`%load_ext hops_jupyter`).

User errors print one line (no traceback) and leave nothing half done; `%hdfs?`,
`%%experiment?` and `%tensorboard?` show the usage.
"""

from __future__ import annotations

import ast
import datetime
import html
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.utils.process import arg_split

from hops_jupyter.cell import CellFunction, capture
from hops_jupyter.core import experiment as experiment_api
from hops_jupyter.core import filesystem, hdfs, project, tensorboard
from hops_jupyter.core.experiment import records, registry

HDFS_COMMANDS = ("ls", "cat", "head", "put", "get", "mkdir", "rm", "mv", "cp", "du", "info")
USER_ERRORS = (ValueError, OSError, KeyError, TypeError, ConnectionError)


# --- %hdfs ---------------------------------------------------------------------------------


def _size(n: int | None) -> str:
    if n is None:
        return ""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


class Listing:
    """A directory listing that shows as a table (HTML in notebooks, text in terminals)."""

    def __init__(self, title: str, rows: list[tuple[str, str, int | None, float | None]]) -> None:
        self.title, self.rows = title, rows

    def _cells(self) -> list[tuple[str, str, str, str]]:
        out = []
        for name, kind, size, mtime in self.rows:
            when = (
                datetime.datetime.fromtimestamp(mtime).strftime("%Y-%m-%d %H:%M") if mtime else ""
            )
            out.append((name + ("/" if kind == "directory" else ""), kind, _size(size), when))
        return out

    def __repr__(self) -> str:
        cells = [("name", "type", "size", "modified"), *self._cells()]
        widths = [max(len(row[i]) for row in cells) for i in range(4)]
        lines = [self.title] + [
            "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
            for row in cells
        ]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>"
            for row in self._cells()
        )
        return (
            f"<p><code>{html.escape(self.title)}</code></p><table><thead><tr><th>name</th><th>type</th>"
            f"<th>size</th><th>modified</th></tr></thead><tbody>{body}</tbody></table>"
        )


def parse(magic: Callable[..., Any], line: str) -> Any:
    """Parse with the magic's own magic_arguments parser, but split the line as a POSIX shell
    does (quotes group words and are removed) and allow options between positionals
    (`%hdfs head -n 2 PATH`)."""
    return magic.parser.parse_intermixed_args(arg_split(line, posix=True))


def _need(args: Any, count: int, usage: str) -> list[str]:
    if len(args.paths) < count or len(args.paths) > count + (1 if usage.endswith("]") else 0):
        raise ValueError(f"usage: %hdfs {args.command} {usage}")
    return args.paths


def _hdfs_ls(args: Any) -> Listing:
    path = args.paths[0] if args.paths else ""
    base = hdfs.abs_path(path or ".")
    entries = hdfs.lsl(path, recursive=args.recursive)
    rows = [
        (
            e.name[len(base) :].lstrip("/") or e.name.rsplit("/", 1)[-1],
            e.kind,
            e.size if e.kind == "file" else None,
            e.last_mod,
        )
        for e in entries
    ]
    return Listing(hdfs.get_plain_path(base), rows)


def _hdfs_cat(args: Any) -> None:
    (path,) = _need(args, 1, "PATH")
    print(hdfs.load(path).decode(errors="replace"), end="")


def _hdfs_head(args: Any) -> None:
    (path,) = _need(args, 1, "[-n N] PATH")
    with hdfs.open_file(path, flags="rt") as stream:
        for _ in range(args.lines):
            line = stream.readline()
            if not line:
                break
            print(line, end="")


def _hdfs_put(args: Any) -> None:
    local, *dest = _need(args, 1, "LOCAL [DEST_DIR]")
    print(
        f"uploaded to {hdfs.copy_to_hdfs(local, dest[0] if dest else 'Resources', overwrite=args.force)}"
    )


def _hdfs_get(args: Any) -> None:
    path, *local = _need(args, 1, "PATH [LOCAL_DIR]")
    print(
        # LOCAL_DIR is a folder here (a trailing / tells copy_to_local so)
        f"downloaded to {hdfs.copy_to_local(path, os.path.join(local[0], '') if local else '', overwrite=args.force)}"
    )


def _hdfs_mkdir(args: Any) -> None:
    (path,) = _need(args, 1, "PATH")
    hdfs.mkdir(path)
    print(f"created {hdfs.abs_path(path)}")


def _hdfs_rm(args: Any) -> None:
    (path,) = _need(args, 1, "[-r] PATH")
    loc = filesystem.resolve(path, project.current())
    if not loc.exists():
        raise FileNotFoundError(f"No such file or directory: {loc.url}")
    filesystem.delete(loc, recursive=args.recursive)
    print(f"deleted {loc.url}")


def _hdfs_mv(args: Any) -> None:
    src, dst = _need(args, 2, "SRC DST")
    hdfs.move(src, dst)
    print(f"moved {src} -> {dst}")


def _hdfs_cp(args: Any) -> None:
    src, dst = _need(args, 2, "SRC DST")
    hdfs.cp(src, dst, overwrite=args.force)
    print(f"copied {src} -> {dst}")


def _hdfs_du(args: Any) -> Listing:
    path = args.paths[0] if args.paths else ""
    base = hdfs.abs_path(path or ".")
    rows = []
    total = 0
    for entry in hdfs.lsl(path):
        size = (
            sum(e.size for e in hdfs.lsl(entry.name, recursive=True) if e.kind == "file")
            if entry.kind == "directory"
            else entry.size
        )
        total += size
        rows.append((entry.name.rsplit("/", 1)[-1], entry.kind, size, entry.last_mod))
    return Listing(f"{hdfs.get_plain_path(base)} ({_size(total)} in all)", rows)


def _hdfs_info(_: Any) -> None:
    cfg = project.current()
    print(f"project:      {cfg.name} (id {cfg.project_id})")
    print(f"user:         {cfg.project_user}")
    print(f"root:         {cfg.root}")
    print(f"project path: {hdfs.project_path()}")


_HDFS: dict[str, Callable[[Any], Any]] = {
    "ls": _hdfs_ls, "cat": _hdfs_cat, "head": _hdfs_head, "put": _hdfs_put, "get": _hdfs_get,
    "mkdir": _hdfs_mkdir, "rm": _hdfs_rm, "mv": _hdfs_mv, "cp": _hdfs_cp, "du": _hdfs_du,
    "info": _hdfs_info,
}  # fmt: skip


# --- %%experiment ----------------------------------------------------------------------------


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _split(item: str, option: str) -> tuple[str, str]:
    name, sep, values = item.partition("=")
    if not sep or not name.isidentifier() or not values:
        raise UsageError(
            f"{option}: bad hyperparameter {item!r}: write NAME=VALUES (e.g. lr=0.1,0.01)"
        )
    return name, values


def parse_grid(items: list[str]) -> dict[str, list[Any]]:
    """`lr=0.1,0.01 layers=2,3` -> {"lr": [0.1, 0.01], "layers": [2, 3]}."""
    return {
        name: [_literal(v) for v in values.split(",")]
        for name, values in (_split(i, "--grid") for i in items)
    }


def _number(text: str) -> Any:
    value = _literal(text)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def parse_bounds(items: list[str], option: str) -> dict[str, Any]:
    """`lr=1e-5:1e-1:log units=16:256 opt=adam,sgd` -> {"lr": loguniform(1e-5, 1e-1),
    "units": [16, 256], "opt": ["adam", "sgd"]}: LOW:HIGH is a range (ints: an integer range),
    `:log` puts it on a log scale, A,B,... are choices."""
    space: dict[str, Any] = {}
    for item in items:
        name, values = _split(item, option)
        if ":" not in values:
            space[name] = [_literal(v) for v in values.split(",")]
            continue
        parts = values.split(":")
        log = parts[-1] == "log"
        if log:
            parts = parts[:-1]
        bounds = [_number(p) for p in parts]
        if len(bounds) != 2 or None in bounds:
            raise UsageError(
                f"{option}: bad range {item!r}: LOW and HIGH must be numbers (NAME=LOW:HIGH[:log])"
            )
        if bounds[0] >= bounds[1]:
            raise UsageError(f"{option}: bad range {item!r}: LOW must be below HIGH")
        if log and bounds[0] <= 0:
            raise UsageError(f"{option}: bad range {item!r}: a log range needs LOW > 0")
        if log:
            ints = all(isinstance(b, int) for b in bounds)
            space[name] = (experiment_api.randint(*bounds, log=True) if ints
                           else experiment_api.loguniform(*bounds))  # fmt: skip
        else:
            space[name] = bounds
    if space and all(isinstance(v, list) and len(v) == 1 for v in space.values()):
        raise UsageError(
            f"{option}: nothing to search in {' '.join(items)!r}: each name has one value. Give "
            "at least one a range (NAME=LOW:HIGH) or choices (NAME=A,B), or use --grid"
        )
    return space


class _ViewHooks(experiment_api.RunHooks):
    """Shows the live widget as soon as the run has written its record."""

    def __init__(self, slots: Any, show: bool, views: list[Any],
                 started: Callable[[str], None] | None = None) -> None:  # fmt: skip
        self.slots, self.show, self.views, self.started = slots, show, views, started

    def on_started(self, record: records.ExperimentRecord) -> None:
        if self.started is not None:
            self.started(record.id)
        if not self.show:
            return
        from hops_jupyter.widgets.view import ExperimentView

        view = ExperimentView(record.id)
        view.display(self.slots)
        view.follow(finish=False)
        self.views.append(view)


class BackgroundExperiment:
    """What `%%experiment --background` stores: the experiment runs in a thread."""

    def __init__(self) -> None:
        self.result: experiment_api.ExperimentResult | None = None
        self.error: BaseException | None = None
        self.experiment_id: str | None = None
        self.views: list[Any] = []
        self._done = threading.Event()

    def done(self) -> bool:
        return self._done.is_set()

    def wait(self, timeout: float | None = None) -> experiment_api.ExperimentResult | None:
        """Block until the experiment ends and return its result (re-raising its error)."""
        self._done.wait(timeout)
        if self.error is not None:
            raise self.error
        return self.result

    def __repr__(self) -> str:
        state = "done" if self.done() else "running"
        return f"BackgroundExperiment({self.experiment_id!r}, {state}, result={self.result!r})"


@magics_class
class HopsMagics(Magics):
    """The hops-jupyter magics."""

    @magic_arguments()
    @argument(
        "command", nargs="?", default="ls", help=f"one of {', '.join(HDFS_COMMANDS)} (default ls)"
    )
    @argument(
        "paths",
        nargs="*",
        help="project-relative paths, /Projects/..., or URLs; quote paths with spaces",
    )
    @argument(
        "-r",
        "--recursive",
        action="store_true",
        help="rm: delete a directory tree; ls: list the whole tree",
    )
    @argument("-n", "--lines", type=int, default=10, help="head: how many lines (default 10)")
    @argument("-f", "--force", action="store_true", help="put/get/cp: replace an existing target")
    @line_magic
    def hdfs(self, line: str) -> Any:
        """Browse and move project files: `%hdfs ls Resources`, `%hdfs put data.csv Resources`."""
        args = parse(self.hdfs, line)
        handler = _HDFS.get(args.command)
        if handler is None:
            print(
                f"hdfs: unknown subcommand {args.command!r}; use one of {', '.join(HDFS_COMMANDS)}",
                file=sys.stderr,
            )
            return None
        try:
            return handler(args)
        except USER_ERRORS as err:
            message = err.args[0] if isinstance(err, KeyError) and err.args else err
            print(f"hdfs {args.command}: {message}", file=sys.stderr)
            return None

    @magic_arguments()
    @argument(
        "--grid", nargs="+", default=[], metavar="NAME=V1,V2", help="grid search over these values"
    )
    @argument(
        "--de",
        nargs="+",
        default=[],
        metavar="NAME=LOW:HIGH",
        help="differential evolution over ranges (or NAME=A,B choices)",
    )
    @argument(
        "--random",
        nargs="+",
        default=[],
        metavar="NAME=LOW:HIGH",
        help="random search over ranges (or NAME=A,B choices)",
    )
    @argument(
        "--optimize",
        nargs="+",
        default=[],
        metavar="NAME=LOW:HIGH[:log]",
        help="model-based search (see --optimizer) over ranges or NAME=A,B choices",
    )
    @argument("--trials", type=int, default=20, help="--optimize: how many trials")
    @argument(
        "--optimizer",
        choices=["auto", *sorted(registry.SEARCHES)],
        default="auto",
        help="--optimize: the search algorithm (auto: the benchmark's best)",
    )
    @argument(
        "--early-stop",
        choices=sorted(registry.STOPPERS),
        default=None,
        help="stop trials whose experiment.report() values fall behind (searches only)",
    )
    @argument("--samples", type=int, default=10, help="--random: how many trials")
    @argument("--generations", type=int, default=4, help="--de: generations")
    @argument(
        "--population", type=int, default=None, help="--de: population (default max(5, dims + 2))"
    )
    @argument(
        "--direction", choices=["max", "min"], default="max", help="maximize or minimize the metric"
    )
    @argument(
        "--metric",
        default=None,
        help="variable the cell sets as metric (default: its last expression)",
    )
    @argument("--name", default=None, help="experiment name")
    @argument(
        "--engine", choices=sorted(registry.ENGINES), default="local", help="where trials run"
    )
    @argument("--workers", type=int, default=None, help="trials at once")
    @argument(
        "--reuse-workers", action="store_true", default=None,
        help="a worker runs its trials in one process, not each in a fresh one (faster, shared)",
    )  # fmt: skip
    @argument("--timeout", type=float, default=None, help="seconds per trial")
    @argument("--seed", type=int, default=None, help="seed for --de/--random/--optimize")
    @argument("--background", action="store_true", help="return at once; the widget stays live")
    @argument("--no-widget", action="store_true", help="do not show the live widget")
    @argument("-o", "--output", default="_exp", help="variable for the result (default _exp)")
    @line_cell_magic
    def experiment(self, line: str, cell: str | None = None) -> None:
        """Run the cell as the trial function: `%%experiment --grid lr=0.1,0.01`. The
        hyperparameters are variables in the cell; it may read (picklable) notebook variables."""
        if cell is None:  # `%experiment ...` on one line (`%experiment?` shows this help)
            raise UsageError(
                "%experiment runs the cell below it: write %%experiment (two %) on the first line "
                "of the cell, e.g. %%experiment --grid lr=0.1,0.01 (see %experiment?)"
            )
        args = parse(self.experiment, line)
        call, space = self._plan(args)
        source = self.shell.transform_cell(cell)
        try:
            ast.parse(source)
        except SyntaxError as err:
            raise UsageError(f"the cell is not valid Python: {err}") from None
        found, problems = capture(source, self.shell.user_ns, set(space))
        if problems:
            detail = "; ".join(f"{name} ({why})" for name, why in problems.items())
            raise UsageError(
                f"cannot send these notebook variables to the trials: {detail}. Create them inside "
                "the cell, or make them picklable"
            )
        fn = CellFunction(source, found, args.metric, name=args.name or "cell")
        run = lambda hooks: call(fn, hooks)  # noqa: E731
        # Widgets need a kernel and a frontend; a terminal IPython gets the text result only.
        show = not args.no_widget and getattr(self.shell, "kernel", None) is not None
        if args.background:
            self.shell.user_ns[args.output] = self._background(run, show)
        else:
            self._foreground(run, show, args.output)
            if not show:
                print(repr(self.shell.user_ns.get(args.output)))

    def _plan(self, args: Any) -> tuple[Callable[[Any, Any], Any], dict[str, Any]]:
        """What to call (with the cell function and the view hooks), and the space's names."""
        chosen = [o for o in ("grid", "de", "random", "optimize") if getattr(args, o)]
        if len(chosen) > 1:
            raise UsageError(
                f"use one of --grid, --de, --random, --optimize (got "
                f"{', '.join('--' + c for c in chosen)})"
            )
        common = {"name": args.name, "engine": args.engine, "workers": args.workers,
                  "timeout": args.timeout, "reuse_workers": args.reuse_workers}  # fmt: skip
        if not chosen:
            if args.early_stop:
                raise UsageError("--early-stop needs a search: --grid, --de, --random, --optimize")
            return (lambda fn, hooks: experiment_api.launch(fn, hooks=hooks, **common)), {}
        searched = {**common, "direction": args.direction, "early_stopping": args.early_stop}
        if args.grid:
            space = parse_grid(args.grid)
            return (lambda fn, hooks: experiment_api.grid_search(
                fn, space, hooks=hooks, **searched)), space  # fmt: skip
        if args.de:
            space = parse_bounds(args.de, "--de")
            return (lambda fn, hooks: experiment_api.differential_evolution(
                fn, space, generations=args.generations, population=args.population,
                seed=args.seed, hooks=hooks, **searched)), space  # fmt: skip
        if args.random:
            space = parse_bounds(args.random, "--random")
            return (lambda fn, hooks: experiment_api.random_search(
                fn, space, samples=args.samples, seed=args.seed, hooks=hooks, **searched)), space  # fmt: skip
        space = parse_bounds(args.optimize, "--optimize")
        return (lambda fn, hooks: experiment_api.optimize(
            fn, space, trials=args.trials, optimizer=args.optimizer, seed=args.seed,
            hooks=hooks, **searched)), space  # fmt: skip

    def _foreground(self, run: Callable[[Any], Any], show: bool, output: str) -> None:
        from hops_jupyter.widgets.view import Slots

        slots = Slots.create() if show else None
        views: list[Any] = []
        try:
            self.shell.user_ns[output] = run(_ViewHooks(slots, show, views))
        except experiment_api.ExperimentFailed as err:
            self.shell.user_ns[output] = err.result
            print(f"experiment: {err}", file=sys.stderr)
        except USER_ERRORS as err:
            raise UsageError(
                str(err.args[0] if isinstance(err, KeyError) and err.args else err)
            ) from None
        except KeyboardInterrupt as err:  # the stop button: one line, not a traceback
            print(str(err) or "experiment: interrupted", file=sys.stderr)
        finally:
            for view in views:
                view.finish()

    def _background(self, run: Callable[[Any], Any], show: bool) -> BackgroundExperiment:
        from hops_jupyter.widgets.view import Slots

        slots = Slots.create() if show else None  # made here, in this cell
        handle = BackgroundExperiment()
        views = handle.views

        def started(experiment_id: str) -> None:
            handle.experiment_id = experiment_id

        def target() -> None:
            try:
                handle.result = run(_ViewHooks(slots, show, views, started))
            except experiment_api.ExperimentFailed as err:
                handle.result, handle.error = err.result, err
            except BaseException as err:  # reported through handle.wait()
                handle.error = err
            finally:
                for view in views:
                    view.finish()
                handle._done.set()

        threading.Thread(target=target, name="hops-experiment", daemon=True).start()
        return handle

    @magic_arguments()
    @argument(
        "experiment_id", nargs="?", default=None, help="experiment id (default: the last one)"
    )
    @argument("--logdir", default=None, help="an experiment folder instead of an id")
    @argument("--height", type=int, default=800, help="height of the inline TensorBoard in pixels")
    @line_magic
    def tensorboard(self, line: str) -> Any:
        """Show an experiment's TensorBoard inline (through the server's proxy); in a terminal,
        print its URL."""
        args = parse(self.tensorboard, line)
        try:
            experiment_id = self._experiment_id(args)
        except USER_ERRORS as err:
            print(
                f"tensorboard: {err.args[0] if isinstance(err, KeyError) and err.args else err}",
                file=sys.stderr,
            )
            return None
        result = tensorboard.start(experiment_id)
        if result.info is None:
            print(
                f"tensorboard: could not start TensorBoard for {experiment_id}: {result.message}",
                file=sys.stderr,
            )
            return None
        if result.stopped:  # TensorBoards are bounded: say which made room for this one
            print(
                f"tensorboard: stopped the TensorBoard of {', '.join(result.stopped)} "
                f"(at most {project.current().tensorboard_max} run at once; HOPS_TENSORBOARD_MAX)",
                file=sys.stderr,
            )
        if getattr(self.shell, "kernel", None) is None:
            print(result.info.url)
            return None
        from hops_jupyter.widgets.tensorboard import TensorBoardDisplay

        return TensorBoardDisplay(experiment_id, args.height)

    def _experiment_id(self, args: Any) -> str:
        if args.logdir:
            loc = filesystem.resolve(args.logdir, project.current())
            if not records.is_experiment_id(loc.name):
                raise ValueError(
                    f"{loc.url} is not an experiment folder (Experiments/<experiment_id>)"
                )
            return loc.name
        if args.experiment_id:
            records.experiment_dir(args.experiment_id)
            return args.experiment_id
        last = self.shell.user_ns.get("_exp")
        if isinstance(last, experiment_api.ExperimentResult):
            return last.id
        newest = records.list_experiments()
        if not newest:
            raise ValueError("no experiment yet: run one, or give an experiment id")
        return newest[0].id


def load_ipython_extension(ipython: Any) -> None:
    """`%load_ext hops_jupyter`: register the magics."""
    ipython.register_magics(HopsMagics)


def unload_ipython_extension(ipython: Any) -> None:
    """`%unload_ext hops_jupyter`: remove them again."""
    registry = ipython.magics_manager.magics
    for kind, names in (("line", ("hdfs", "tensorboard")), ("cell", ("experiment",))):
        for name in names:
            registry[kind].pop(name, None)
    ipython.magics_manager.registry.pop("HopsMagics", None)
