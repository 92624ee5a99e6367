"""A notebook cell as a trial function: `%%experiment` runs the cell's code once per trial.

The hyperparameters become variables of the cell; notebook variables the cell reads are sent
along by value. This module imports neither IPython nor Jupyter: workers unpickle it cheaply.
"""

from __future__ import annotations

import ast
import builtins
from typing import Any

import cloudpickle

RESULT = "__hops_cell_result__"
_SKIP = {"In", "Out", "get_ipython", "exit", "quit", "_", "__", "___"}


def _loaded_names(tree: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}


class CellFunction:
    """Runs a cell's source with the trial's hyperparameters and returns its metric: the
    variable `metric` names, else the value of the cell's last expression."""

    def __init__(
        self, source: str, globals_: dict[str, Any], metric: str | None, name: str = "cell"
    ) -> None:
        self.source = source
        self.globals = globals_
        self.metric = metric
        self.__name__ = self.__qualname__ = name
        tree = ast.parse(source)
        if metric is None and tree.body and isinstance(tree.body[-1], ast.Expr):
            last = tree.body[-1]
            tree.body[-1] = ast.Assign(targets=[ast.Name(RESULT, ast.Store())], value=last.value)
            ast.copy_location(tree.body[-1], last)
            ast.fix_missing_locations(tree)
        # The cell's first line is `%%experiment ...`: its code starts on line 2 of the cell, so
        # tracebacks name the line numbers the notebook shows.
        ast.increment_lineno(tree, 1)
        self._tree = tree

    def __call__(self, **params: Any) -> Any:
        namespace = {"__name__": "__main__", **self.globals, **params}
        exec(compile(self._tree, "<%%experiment cell>", "exec"), namespace)
        if self.metric is not None:
            if self.metric not in namespace:
                raise NameError(f"The cell did not set the metric variable {self.metric!r}")
            return namespace[self.metric]
        return namespace.get(RESULT)

    def __getstate__(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "_tree"}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["source"], state["globals"], state["metric"], state["__name__"])


def capture(
    source: str, user_ns: dict[str, Any], params: set[str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """The notebook variables a cell reads, and those that cannot be sent (name -> reason)."""
    names = _loaded_names(ast.parse(source)) - params - _SKIP
    found, problems = {}, {}
    for name in sorted(names):
        if name not in user_ns or (
            hasattr(builtins, name) and user_ns[name] is getattr(builtins, name)
        ):
            continue
        value = user_ns[name]
        try:
            cloudpickle.dumps(value)
        except Exception as err:  # anything pickling raises means "cannot send"
            problems[name] = f"{type(value).__name__}: {err}"
            continue
        found[name] = value
    return found, problems
