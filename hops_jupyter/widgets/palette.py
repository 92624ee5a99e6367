"""Trial numbers and colours: one per trial, in start order, the same in every table and chart.

A trial's number is its position among the trials that started (1-based), and its colour comes
from that number: plotly's ten familiar colours first, then hues a golden angle apart, so trial
11 never repeats trial 1's colour and the live charts match the final ones.
"""

from __future__ import annotations

from hops_jupyter.core.experiment.records import ExperimentRecord, TrialStatus

BASE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
        "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")  # fmt: skip
GOLDEN_ANGLE = 137.50776


def colour(number: int) -> str:
    """The colour of trial `number` (1-based)."""
    if number <= len(BASE):
        return BASE[number - 1]
    step = number - len(BASE)
    hue = (step * GOLDEN_ANGLE + 15) % 360
    lightness = (42, 55, 35)[step % 3]
    return f"hsl({hue:.0f},70%,{lightness}%)"


def numbers(record: ExperimentRecord) -> dict[str, int]:
    """Trial id -> its number in start order; trials not yet started have none."""
    started = [t for t in record.trials if t.status != TrialStatus.PENDING]
    return {t.id: i for i, t in enumerate(started, start=1)}


def colours(record: ExperimentRecord) -> dict[str, str]:
    """Trial id -> its colour."""
    return {trial_id: colour(n) for trial_id, n in numbers(record).items()}
