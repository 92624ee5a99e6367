"""What an experiment looks like: HTML tables and plotly figures built from its records.

Pure functions of the records, shared by the live widget and the static view a notebook keeps
once the experiment has ended. Every value read from a record is escaped (`html.escape`, and
`quote` inside URLs): `experiment.json` is a file anyone with project access can write.
"""

from __future__ import annotations

import html
import os
from typing import Any
from urllib.parse import quote

import plotly.graph_objects as go

from hops_jupyter.core.experiment.records import ExperimentRecord, TrialRecord, TrialStatus

_STATUS_COLOURS = {
    TrialStatus.RUNNING: "#1f77b4", TrialStatus.FINISHED: "#2ca02c", TrialStatus.FAILED: "#d62728",
    TrialStatus.KILLED: "#7f7f7f", TrialStatus.PENDING: "#bcbd22",
    TrialStatus.EARLY_STOPPED: "#ff7f0e",
}  # fmt: skip


def tensorboard_path(experiment_id: str) -> str:
    """The proxy path of an experiment's TensorBoard on the Jupyter server that started this
    kernel (the server extension exports its base_url to kernels; "/" otherwise)."""
    base = os.environ.get("HOPS_SERVER_BASE_URL", "/")
    return f"{base.rstrip('/')}/hops/tensorboard/{quote(str(experiment_id), safe='')}/"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return html.escape("" if value is None else str(value))


def _status(status: str, stopped_step: Any = None) -> str:
    colour = _STATUS_COLOURS.get(status, "#333")
    label = html.escape(str(status))
    if status == TrialStatus.EARLY_STOPPED and stopped_step is not None:
        label += f" at step {_fmt(stopped_step)}"
    return f'<span style="color:{colour};font-weight:600">{label}</span>'


def header_html(record: ExperimentRecord) -> str:
    link = html.escape(tensorboard_path(record.id))
    return (
        f"<b>{_fmt(record.name)}</b> &middot; {_fmt(record.kind)} &middot; {_status(record.status)}"
        f" &middot; <code>{_fmt(record.id)}</code> &middot; "
        f'<a href="{link}" target="_blank" rel="noopener">Open TensorBoard</a>'
    )


def best_html(record: ExperimentRecord) -> str:
    if record.best_trial is None:
        return "<i>no finished trial yet</i>"
    params = ", ".join(
        f"{html.escape(str(k))}={_fmt(v)}" for k, v in (record.best_params or {}).items()
    )
    label = "best" if record.direction else "result"
    return (
        f"<b>{label}</b> {_fmt(record.best_metric)} with <code>{params or 'no parameters'}</code>"
    )


def progress(record: ExperimentRecord) -> tuple[int, int]:
    total = record.trials_total or max(record.trials_done, 1)
    return record.trials_done, total


def _latest(trial: TrialRecord) -> Any:
    return (trial.latest or {}).get("metric")


def _error_message(trial: TrialRecord) -> Any:
    error = trial.error
    return error.get("message", error) if isinstance(error, dict) else error


def table_html(record: ExperimentRecord, limit: int = 200) -> str:
    names = list(record.search_space) or sorted({k for t in record.trials for k in t.params})
    head = "".join(f"<th>{_fmt(n)}</th>" for n in names)
    rows = []
    for trial in record.trials[:limit]:
        cells = "".join(f"<td>{_fmt(trial.params.get(n))}</td>" for n in names)
        error = f' title="{_fmt(_error_message(trial))}"' if trial.error else ""
        rows.append(
            f"<tr{error}><td>{_status(trial.status, trial.stopped_step)}</td>{cells}<td>{_fmt(_latest(trial))}</td>"
            f"<td>{_fmt(trial.metric)}</td><td>{_fmt(trial.duration_s)}</td></tr>"
        )
    more = (
        f"<p>{len(record.trials) - limit} more trials not shown</p>"
        if len(record.trials) > limit
        else ""
    )
    return (
        '<table class="hops-trials" style="border-collapse:collapse">'
        f"<thead><tr><th>status</th>{head}<th>latest</th><th>metric</th><th>seconds</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody></table>{more}"
    )


def curve_traces(series: dict[str, list[tuple[float, float]]]) -> list[go.Scatter]:
    """One line per trial: reported metric against step."""
    return [
        go.Scatter(
            x=[p[0] for p in points], y=[p[1] for p in points], mode="lines+markers", name=trial_id
        )
        for trial_id, points in sorted(series.items())
        if points
    ]


def parcoords_trace(record: ExperimentRecord) -> go.Parcoords | None:
    """Hyperparameters against the metric, one line per finished trial (searches only)."""
    done = [
        t
        for t in record.trials
        if t.status == TrialStatus.FINISHED and isinstance(t.metric, (int, float))
    ]
    if record.kind == "launch" or not done or not record.search_space:
        return None
    dims = []
    for name in record.search_space:
        values = [t.params.get(name) for t in done]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            dims.append({"label": name, "values": values})
        else:
            labels = sorted({str(v) for v in values})
            index = {label: i for i, label in enumerate(labels)}
            dims.append(
                {"label": name, "values": [index[str(v)] for v in values],
                 "tickvals": list(range(len(labels))), "ticktext": labels}
            )  # fmt: skip
    metrics = [t.metric for t in done]
    dims.append({"label": "metric", "values": metrics})
    return go.Parcoords(
        line={"color": metrics, "colorscale": "Viridis", "showscale": True}, dimensions=dims
    )


def figure_layout(title: str) -> dict[str, Any]:
    return {"title": {"text": title}, "height": 320, "margin": {"l": 50, "r": 20, "t": 40, "b": 40}}


def static_summary(record: ExperimentRecord) -> dict[str, Any]:
    """The experiment's final state as a plain output, kept in the notebook and readable with
    no kernel: header, progress, best parameters and the trial table."""
    done, total = progress(record)
    body = (
        f"<div class='hops-experiment'><p>{header_html(record)}</p>"
        f"<p>{_fmt(done)}/{_fmt(total)} trials &middot; {_fmt(record.trials_failed)} failed</p>"
        f"<p>{best_html(record)}</p>{table_html(record)}</div>"
    )
    text = f"{record.kind} {record.id}: {record.status}, {done}/{total} trials, best {record.best_metric}"
    return {"text/plain": text, "text/html": body}


def static_figures(
    record: ExperimentRecord, series: dict[str, list[tuple[float, float]]]
) -> list[go.Figure]:
    """The charts of the final state (plotly figures display statically in notebooks)."""
    figures = []
    if any(series.values()):
        figures.append(
            go.Figure(data=curve_traces(series), layout=figure_layout("metric per trial"))
        )
    parcoords = parcoords_trace(record)
    if parcoords is not None:
        figures.append(
            go.Figure(data=[parcoords], layout=figure_layout("hyperparameters vs metric"))
        )
    return figures
