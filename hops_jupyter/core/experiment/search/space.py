"""Hyperparameter spaces: validate the user's dicts and map points of the unit cube to values.

`[low, high]` of two ints is an integer range, of numbers a float range; any other list (strings,
booleans, more than two values) is a set of categorical choices.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Any


@dataclass(frozen=True)
class Dimension:
    """One hyperparameter: a float range, an int range, or categorical choices."""

    name: str
    kind: str  # "float" | "int" | "categorical"
    low: float = 0.0
    high: float = 1.0
    choices: tuple[Any, ...] = ()

    def from_unit(self, u: float) -> Any:
        """The value at position u in [0, 1]."""
        u = min(max(float(u), 0.0), 1.0)
        if self.kind == "float":
            return self.low + u * (self.high - self.low)
        if self.kind == "int":
            return int(min(self.high, self.low + math.floor(u * (self.high - self.low + 1))))
        return self.choices[min(int(u * len(self.choices)), len(self.choices) - 1)]

    def describe(self) -> Any:
        return list(self.choices) if self.kind == "categorical" else [self.low, self.high]


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _dimension(name: str, spec: Any) -> Dimension:
    if not isinstance(spec, (list, tuple)) or len(spec) == 0:
        raise ValueError(
            f"search_dict[{name!r}] must be [low, high] or a non-empty list of choices, got {spec!r}"
        )
    if len(spec) == 2 and all(_is_number(v) for v in spec):
        low, high = spec
        if not all(math.isfinite(v) for v in spec):
            raise ValueError(f"Bounds of {name!r} must be finite, got {list(spec)!r}")
        if low >= high:
            raise ValueError(
                f"Bounds of {name!r} have low >= high ({low!r} >= {high!r}): write [low, high]"
            )
        kind = "int" if all(isinstance(v, int) for v in spec) else "float"
        return Dimension(name, kind, low, high)
    return Dimension(name, "categorical", choices=tuple(spec))


def parse_bounds(search_dict: Any) -> list[Dimension]:
    """Dimensions of a differential-evolution or random search dict."""
    _check_dict(search_dict, "search_dict", "{'lr': [0.001, 0.1], 'opt': ['adam', 'sgd']}")
    return [_dimension(name, spec) for name, spec in search_dict.items()]


def _check_dict(value: Any, what: str, example: str) -> None:
    if not isinstance(value, dict):
        raise TypeError(f"{what} must be a dict like {example}, got {type(value).__name__}")
    if not value:
        raise ValueError(f"{what} is empty: give at least one hyperparameter, e.g. {example}")
    for name in value:
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"{what} key {name!r} must be a Python identifier (a parameter name)")


def check_lists(args_dict: Any, what: str, equal_lengths: bool) -> dict[str, list[Any]]:
    """Validate a dict of value lists (grid search, or launch's per-position lists)."""
    _check_dict(args_dict, what, "{'lr': [0.1, 0.01], 'layers': [2, 3]}")
    out = {}
    for name, values in args_dict.items():
        if not isinstance(values, (list, tuple)) or len(values) == 0:
            raise ValueError(f"{what}[{name!r}] must be a non-empty list, got {values!r}")
        out[name] = list(values)
    if equal_lengths:
        lengths = {name: len(v) for name, v in out.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(
                f"{what} lists must have equal lengths (one trial per position), got {lengths}"
            )
    return out
