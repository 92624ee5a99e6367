"""What an experiment reads like: its header, counts, best trial, and the static output.

Pure functions of the records, shared by the live widget and the static output a saved notebook
keeps (with the trial table from table.py), so both look the same. Styles are inline (a saved
notebook or an HTML export has no stylesheet of ours) and theme-neutral; every value read from a
record is escaped (markup.esc, and `quote` inside URLs).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import quote

from hops_jupyter.core.experiment.records import ExperimentRecord, TrialStatus
from hops_jupyter.widgets import formatting as fmt
from hops_jupyter.widgets import palette
from hops_jupyter.widgets.markup import esc, short_html, status_html
from hops_jupyter.widgets.table import error_summary, shows_metric, table_html

__all__ = ["shows_metric", "table_html"]  # re-exported: the charts and the view read them here


def tensorboard_path(experiment_id: str) -> str:
    """The proxy path of an experiment's TensorBoard on the Jupyter server that started this
    kernel (the server extension exports its base_url to kernels; "/" otherwise)."""
    base = os.environ.get("HOPS_SERVER_BASE_URL", "/")
    return f"{base.rstrip('/')}/hops/tensorboard/{quote(str(experiment_id), safe='')}/"


def header_html(record: ExperimentRecord) -> str:
    link = esc(tensorboard_path(record.id))
    message = f" ({esc(record.status_message)})" if record.status_message else ""
    return (
        f"<b>{esc(record.name)}</b> &middot; {esc(record.kind)} &middot; "
        f"{status_html(record.status)}{message} &middot; <code>{esc(record.id)}</code> &middot; "
        f'<a href="{link}" target="_blank" rel="noopener">Open TensorBoard</a>'
    )


def progress(record: ExperimentRecord) -> tuple[int, int]:
    total = record.trials_total or max(record.trials_done, 1)
    return record.trials_done, total


def progress_text(record: ExperimentRecord) -> str:
    """`12/20 trials, 1 failed` (the progress bar's label)."""
    done, total = progress(record)
    return f"{done}/{total} trials, {record.trials_failed} failed"


def metric_name(record: ExperimentRecord) -> str:
    return record.metric_key or "metric"


def best_html(record: ExperimentRecord) -> str:
    """`best metric = 0.953 · trial #7 with lr=0.00872, units=56` (full values on hover)."""
    if record.best_trial is None:
        return "<i>no finished trial yet</i>"
    params = record.best_params or {}
    label = "best" if record.direction else "result"
    number = palette.numbers(record).get(record.best_trial)
    which = f" &middot; trial #{number}" if number else ""
    shown = esc(fmt.trial_label(params)) if params else "no parameters"
    return (
        f"<b>{label}</b> {esc(metric_name(record))} = {short_html(record.best_metric)}{which} "
        f'with <code title="{esc(fmt.trial_title(params))}">{shown}</code>'
    )


def summary_html(record: ExperimentRecord) -> str:
    """Counts and time: `20/20 trials · 2 failed · 3 pending · 1 min 4 s`."""
    done, total = progress(record)
    parts = [f"{done}/{total} trials", f"{record.trials_failed} failed"]
    for status in (TrialStatus.RUNNING, TrialStatus.PENDING, TrialStatus.EARLY_STOPPED,
                   TrialStatus.KILLED):  # fmt: skip
        count = sum(t.status == status for t in record.trials)
        if count:
            parts.append(f"{count} {status.lower().replace('_', ' ')}")
    if record.duration_s is not None:
        parts.append(fmt.duration(record.duration_s))
    return " &middot; ".join(parts)


def failures_html(record: ExperimentRecord) -> str:
    """The failed trials' errors, one line per distinct error with the trials that raised it,
    so a search where every trial fails says why at a glance ("" when none failed)."""
    numbers = palette.numbers(record)
    groups: dict[str, list[str]] = {}
    for trial in record.trials:
        if trial.status == TrialStatus.FAILED and isinstance(trial.error, dict):
            number = numbers.get(trial.id)
            groups.setdefault(error_summary(trial.error), []).append(
                f"#{number}" if number else esc(fmt.trial_label(trial.params))
            )
    lines = [
        f"{summary} &middot; {len(which)} trial{'s' if len(which) > 1 else ''} "
        f"({', '.join(which[:10])}{', …' if len(which) > 10 else ''})"
        for summary, which in sorted(groups.items(), key=lambda item: -len(item[1]))
    ]
    return "".join(f'<div style="color:#d62728">{line}</div>' for line in lines[:5])


def static_summary(record: ExperimentRecord) -> dict[str, Any]:
    """The experiment's final state as a plain output, kept in the notebook and readable with
    no kernel: header, counts, best trial and the trial table, best first."""
    body = (
        f"<div class='hops-experiment' style='font-size:13px'><p>{header_html(record)}</p>"
        f"<p>{summary_html(record)}</p><p>{best_html(record)}</p>{failures_html(record)}"
        f"{table_html(record, order='best')}</div>"
    )
    done, total = progress(record)
    text = (
        f"{record.kind} {record.id}: {record.status}, {done}/{total} trials, "
        f"best {record.best_metric}"
    )
    return {"text/plain": text, "text/html": body}
