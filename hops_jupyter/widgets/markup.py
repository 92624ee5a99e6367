"""Small HTML pieces shared by the header and the trial table: escaped values, short numbers
with their full precision on hover, coloured statuses.

Every value read from a record goes through `esc`: `experiment.json` is a file anyone with
project access can write, so its strings are text, never markup.
"""

from __future__ import annotations

import html
from typing import Any

from hops_jupyter.core.experiment.records import TrialStatus
from hops_jupyter.widgets import formatting as fmt

STATUS_COLOURS = {
    TrialStatus.RUNNING: "#1f77b4", TrialStatus.FINISHED: "#2ca02c", TrialStatus.FAILED: "#d62728",
    TrialStatus.KILLED: "#7f7f7f", TrialStatus.PENDING: "#a0a000",
    TrialStatus.EARLY_STOPPED: "#ff7f0e",
}  # fmt: skip


def esc(value: Any) -> str:
    """Any value as escaped text (None as nothing)."""
    return html.escape("" if value is None else str(value))


def short_html(value: Any) -> str:
    """A value in 3 significant digits, its full precision on hover when the two differ."""
    shown, full = fmt.short(value), fmt.full(value)
    if shown == full:
        return esc(shown)
    return f'<span title="{esc(full)}">{esc(shown)}</span>'


def status_html(status: str, stopped_step: Any = None) -> str:
    """A status in its colour (`EARLY_STOPPED at step 2` says where)."""
    colour = STATUS_COLOURS.get(status, "#777")
    label = esc(status)
    if status == TrialStatus.EARLY_STOPPED and stopped_step is not None:
        label += f" at step {esc(stopped_step)}"
    return f'<span style="color:{colour};font-weight:600">{label}</span>'
