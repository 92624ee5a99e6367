"""Hyperparameter spaces: validate the user's dicts and map points of the unit cube to values.

`[low, high]` of two ints is an integer range, of numbers a float range; any other list (strings,
booleans, more than two values) is a set of categorical choices. `Float(low, high, log=True)`
(`loguniform(low, high)`), `Int(low, high, log=...)` (`randint`) and `Categorical(choices)`
(`choice`) say the same explicitly, with a log scale where wanted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Any


@dataclass(frozen=True)
class Dimension:
    """One hyperparameter: a float range, an int range (either optionally log-scale), or
    categorical choices of any type."""

    name: str
    kind: str  # "float" | "int" | "categorical"
    low: float = 0.0
    high: float = 1.0
    choices: tuple[Any, ...] = ()
    log: bool = False

    def from_unit(self, u: float) -> Any:
        """The value at position u in [0, 1] (uniform in log space for log ranges)."""
        u = min(max(float(u), 0.0), 1.0)
        if self.kind == "categorical":
            return self.choices[min(int(u * len(self.choices)), len(self.choices) - 1)]
        if self.kind == "int":
            if self.log:  # each integer gets the share of log space around it
                lo, hi = math.log(self.low - 0.5 + 1e-9), math.log(self.high + 0.5)
                value = round(math.exp(lo + u * (hi - lo)))
            else:
                value = self.low + math.floor(u * (self.high - self.low + 1))
            return int(min(self.high, max(self.low, value)))
        if self.log:
            lo, hi = math.log(self.low), math.log(self.high)
            return float(min(self.high, max(self.low, math.exp(lo + u * (hi - lo)))))
        return self.low + u * (self.high - self.low)

    def to_unit(self, value: Any) -> float:
        """The position in [0, 1] of a value (the inverse of from_unit, at the value's centre
        for ints and choices), so a search can learn from a point it did not propose."""
        if self.kind == "categorical":
            index = next((i for i, c in enumerate(self.choices) if c is value or c == value), 0)
            return (index + 0.5) / len(self.choices)
        if self.kind == "int" and not self.log:
            return (float(value) - self.low + 0.5) / (self.high - self.low + 1)
        if self.log:
            lo, hi = (math.log(self.low - 0.5 + 1e-9), math.log(self.high + 0.5)) if (
                self.kind == "int") else (math.log(self.low), math.log(self.high))  # fmt: skip
            return min(1.0, max(0.0, (math.log(float(value)) - lo) / (hi - lo)))
        return min(1.0, max(0.0, (float(value) - self.low) / (self.high - self.low)))

    def describe(self) -> Any:
        """As stored in experiment.json: `[low, high]` or the choices as before; a log range
        keeps its scale: `{"type": "float", "low": ..., "high": ..., "log": true}`."""
        if self.kind == "categorical":
            return list(self.choices)
        if self.log:
            return {"type": self.kind, "low": self.low, "high": self.high, "log": True}
        return [self.low, self.high]


class Float:
    """A float range: `Float(1e-5, 1e-1, log=True)` samples uniformly in log space."""

    kind = "float"

    def __init__(self, low: float, high: float, log: bool = False) -> None:
        self.low, self.high, self.log = low, high, bool(log)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.low!r}, {self.high!r}, log={self.log})"


class Int(Float):
    """An integer range, both bounds included: `Int(16, 512, log=True)`."""

    kind = "int"


class Categorical:
    """Choices of any type (strings, numbers, tuples, None, functions): `Categorical([...])`."""

    def __init__(self, choices: Any) -> None:
        self.choices = choices

    def __repr__(self) -> str:
        return f"Categorical({self.choices!r})"


def uniform(low: float, high: float) -> Float:
    """A float range on a linear scale (the same as `[low, high]`)."""
    return Float(low, high)


def loguniform(low: float, high: float) -> Float:
    """A float range on a log scale, for learning rates and regularization: both bounds > 0."""
    return Float(low, high, log=True)


def randint(low: int, high: int, log: bool = False) -> Int:
    """An integer range, both bounds included, optionally on a log scale."""
    return Int(low, high, log=log)


def choice(choices: Any) -> Categorical:
    """A categorical choice among any values."""
    return Categorical(choices)


def _is_number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool)


def _range(name: str, kind: str, low: Any, high: Any, log: bool) -> Dimension:
    if not (_is_number(low) and _is_number(high)):
        raise ValueError(f"Bounds of {name!r} must be numbers, got [{low!r}, {high!r}]")
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"Bounds of {name!r} must be finite, got [{low!r}, {high!r}]")
    if low >= high:
        raise ValueError(
            f"Bounds of {name!r} have low >= high ({low!r} >= {high!r}): write [low, high]"
        )
    if kind == "int" and not (float(low).is_integer() and float(high).is_integer()):
        raise ValueError(
            f"The integer range {name!r} needs integer bounds, got [{low!r}, {high!r}]"
        )
    if log and low <= 0:
        raise ValueError(
            f"A log range needs low > 0: {name!r} has low={low!r} (e.g. loguniform(1e-5, 1e-1))"
        )
    if kind == "int":
        low, high = int(low), int(high)
    return Dimension(name, kind, low, high, log=log)


def _dimension(name: str, spec: Any) -> Dimension:
    if isinstance(spec, Float):
        return _range(name, spec.kind, spec.low, spec.high, spec.log)
    if isinstance(spec, Categorical):
        spec = spec.choices
        if not isinstance(spec, (list, tuple)) or len(spec) == 0:
            raise ValueError(
                f"Categorical {name!r} needs a non-empty list of choices, got {spec!r}"
            )
        return Dimension(name, "categorical", choices=tuple(spec))
    if not isinstance(spec, (list, tuple)) or len(spec) == 0:
        raise ValueError(
            f"search_dict[{name!r}] must be [low, high], a non-empty list of choices, or "
            f"Float/Int/Categorical (loguniform, randint, choice), got {spec!r}"
        )
    if len(spec) == 2 and all(_is_number(v) for v in spec):
        kind = "int" if all(isinstance(v, int) for v in spec) else "float"
        return _range(name, kind, spec[0], spec[1], False)
    return Dimension(name, "categorical", choices=tuple(spec))


def parse_bounds(search_dict: Any) -> list[Dimension]:
    """Dimensions of a search dict (differential evolution, random search, optimize)."""
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
        if isinstance(values, Categorical):
            values = values.choices
        if isinstance(values, Float):
            raise ValueError(
                f"{what}[{name!r}] is a range ({values!r}); a grid needs a list of values"
            )
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
