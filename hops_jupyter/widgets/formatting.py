"""How values read in tables and legends: short forms for the eye, full forms for hovering.

Plain text only (no HTML): callers escape. Shared by the tables, the charts' legends and the log
viewer's trial list, so a trial is named the same everywhere.
"""

from __future__ import annotations

import math
from typing import Any


def short(value: Any) -> str:
    """A value in 3 significant digits (`0.00872`, `1.23e+04`); ints, strings and None as they are."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    return f"{value:.3g}"


def full(value: Any) -> str:
    """A value in full precision (the hover text of a short value)."""
    if isinstance(value, float):
        return repr(value)
    return "" if value is None else str(value)


def trial_label(params: dict[str, Any]) -> str:
    """`lr=0.00872, units=56` (a single run with no parameters is `run`)."""
    return ", ".join(f"{name}={short(value)}" for name, value in params.items()) or "run"


def trial_title(params: dict[str, Any]) -> str:
    """The trial's parameters in full precision, for hover text."""
    return ", ".join(f"{name}={full(value)}" for name, value in params.items()) or "run"


def duration(seconds: float | None) -> str:
    """`0.412 s`, `1.23 s`, `12.3 s`, `2 min 3 s`, `1 h 2 min`: precision a reader can use."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    seconds = max(0.0, float(seconds))
    if seconds < 59.5:  # what would round to 60 s reads as 1 min
        return f"{seconds:.3g} s"
    whole = int(round(seconds))
    if whole < 3600:
        minutes, secs = divmod(whole, 60)
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, rest = divmod(whole, 3600)
    minutes = rest // 60
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
