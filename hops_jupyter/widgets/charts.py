"""The experiment's charts: learning curves, optimization history, parallel coordinates, the
extra reported values and hyperparameter importances.

Pure functions of the records and reported series, shared by the live widget and the final
output, so a trial keeps its colour (palette.py) from the first report to the saved notebook.
A chart is a plain plotly figure dict (`{"data": [...], "layout": {...}}`): plotly validates it
once, when a widget or the final output is made of it, not on every live refresh (building
validated plotly objects for 200 traces cost the kernel a fifth of a second each time). A chart
with nothing to show yet is None (never an empty -1..6 frame).
"""

from __future__ import annotations

import html
import json
import math
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from hops_jupyter.core.experiment.records import ExperimentRecord, TrialRecord
from hops_jupyter.widgets import formatting as fmt
from hops_jupyter.widgets import palette, render
from hops_jupyter.widgets.importance import MIN_TRIALS, is_log, param_importances
from hops_jupyter.widgets.series import METRIC, ReportSeries
from hops_jupyter.widgets.table import shown, shows_metric

LEGEND_MAX = 20  # more trials than this: hover names them, a legend would bury the chart
LINES_MAX = 100  # lines per chart: the running trials, then the best (as the table does)
EXTRA_KEYS_MAX = 8
LIVE = ("curves", "history", "parcoords", "extras", "importance")  # live charts, in order
IMPORTANCE_GROWTH = 1.5  # live importances are redone when the scored trials grew this much
Figure = dict[str, Any]  # {"data": [trace dicts], "layout": {...}}


def figure(data: list[dict[str, Any]], layout: dict[str, Any]) -> Figure:
    return {"data": data, "layout": layout}


def to_figure(spec: Figure) -> go.Figure:
    """The validated plotly figure of a chart."""
    return go.Figure(spec)


def layout(title: str, height: int = 320, top: int = 40, **more: Any) -> dict[str, Any]:
    """A figure's layout: its title left above the plot, and the user's zoom kept when
    the live widget updates the data (uirevision)."""
    return {
        "title": {"text": title, "x": 0.01, "xanchor": "left", "y": 0.98, "yanchor": "top",
                  "yref": "container", "font": {"size": 14}},
        "height": height, "margin": {"l": 60, "r": 20, "t": top, "b": 45},
        "uirevision": "hops", **more,
    }  # fmt: skip


def figure_bundle(spec: Figure) -> dict[str, Any]:
    """A chart as a display bundle: the plotly mime type (JupyterLab, VS Code) and HTML (an
    export, nbviewer). Displayed raw by id, never through plotly's display hook, which would
    show a new output in whatever cell runs now instead of updating the slot."""
    plotted = to_figure(spec)
    return {
        "application/vnd.plotly.v1+json": json.loads(plotted.to_json()),
        "text/html": pio.to_html(plotted, full_html=False, include_plotlyjs="cdn",
                                 config={"displaylogo": False}),
        "text/plain": f"<plotly figure: {plotted.layout.title.text or 'chart'}>",
    }  # fmt: skip


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def step_axis(series: ReportSeries, steps: list[Any]) -> dict[str, Any]:
    """The step axis: integer ticks when steps are integers (one per step on short runs)."""
    axis: dict[str, Any] = {"title": {"text": "step"}}
    if series.integer_steps() and steps:
        axis["tickformat"] = "d"
        if max(steps) - min(steps) <= 10:
            axis["dtick"] = 1
    return axis


def _hover(label: str, number: int | None, key: str) -> str:
    name = f"#{number} {label}" if number else label
    return f"{hover_text(name)}<br>step %{{x}}<br>{hover_text(key)} %{{y:.4g}}<extra></extra>"


def hover_text(text: str) -> str:
    """Text for plotly's hover templates, which read HTML and %{...} placeholders."""
    return html.escape(text).replace("%{", "%&#123;")


def _trial_traces(
    record: ExperimentRecord, series: ReportSeries, key: str
) -> tuple[list[dict[str, Any]], list[Any]]:
    """One line per trial that reported `key`, in trial order; and every step seen."""
    numbers, colours = palette.numbers(record), palette.colours(record)
    traces, all_steps = [], []
    many = len(numbers) > LEGEND_MAX
    for trial in shown(record, LINES_MAX):  # plotly's cost grows with every line
        points = series.trials.get(trial.id)
        steps, values = points.series(key) if points else ([], [])
        if not steps:
            continue
        all_steps += steps
        label = fmt.trial_label(trial.params)
        number = numbers.get(trial.id)
        traces.append({
            "type": "scatter", "x": steps, "y": values,
            "mode": "lines+markers" if len(steps) < 30 else "lines",
            "name": f"#{number} {label}" if number else label, "meta": trial.id,
            "line": {"color": colours.get(trial.id, "#777"), "width": 1.5}, "marker": {"size": 4},
            "hovertemplate": _hover(label, number, key), "showlegend": not many,
        })  # fmt: skip
    return traces, all_steps


def _lines_note(record: ExperimentRecord) -> str:
    """What a chart of capped lines leaves out, for its title."""
    hidden = len(record.trials) - LINES_MAX
    return f" (running and best {LINES_MAX} of {len(record.trials)} trials)" if hidden > 0 else ""


def curves_figure(record: ExperimentRecord, series: ReportSeries) -> Figure | None:
    """The reported metric per trial against step."""
    traces, steps = _trial_traces(record, series, METRIC)
    if not traces:
        return None
    name = render.metric_name(record)
    title = f"{name} per step" + _lines_note(record)
    return figure(traces, layout(title, xaxis=step_axis(series, steps),
                                 yaxis={"title": {"text": name}}))  # fmt: skip


def scored_count(record: ExperimentRecord) -> int:
    """How many trials have a metric to chart."""
    return len(_scored(record))


def _scored(record: ExperimentRecord) -> list[tuple[int, TrialRecord, float]]:
    numbers = palette.numbers(record)
    return [
        (numbers[t.id], t, float(t.metric))
        for t in record.trials
        if t.id in numbers and shows_metric(t)
        and isinstance(t.metric, (int, float)) and math.isfinite(t.metric)
    ]  # fmt: skip


def history_figure(record: ExperimentRecord) -> Figure | None:
    """Each trial's value by trial number and the best so far (searches only)."""
    scored = _scored(record)
    if not record.direction or not scored:
        return None
    scored.sort(key=lambda item: item[0])
    better = max if record.direction == "max" else min
    best, running = [], None
    for _, _, value in scored:
        running = value if running is None else better(running, value)
        best.append(running)
    name = render.metric_name(record)
    colours = palette.colours(record)
    numbers = [n for n, _, _ in scored]
    labels = [hover_text(f"#{n} {fmt.trial_label(t.params)}") for n, t, _ in scored]
    points = {
        "type": "scatter", "x": numbers, "y": [v for _, _, v in scored], "mode": "markers",
        "name": "trial", "marker": {"color": [colours[t.id] for _, t, _ in scored], "size": 8},
        "text": labels,
        "hovertemplate": f"%{{text}}<br>{hover_text(name)} %{{y:.4g}}<extra></extra>",
    }  # fmt: skip
    line = {
        "type": "scatter", "x": numbers, "y": best, "mode": "lines",
        "line": {"shape": "hv", "color": "#d62728", "width": 2},
        "name": f"best so far ({record.direction})", "hoverinfo": "skip",
    }  # fmt: skip
    xaxis = {"title": {"text": "trial"}, "tickformat": "d"}
    if max(numbers) - min(numbers) <= 10:
        xaxis["dtick"] = 1
    legend = {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 1, "xanchor": "right"}
    return figure([points, line], layout("optimization history", xaxis=xaxis, legend=legend,
                                         yaxis={"title": {"text": name}}))  # fmt: skip


# --- parallel coordinates ----------------------------------------------------------------------


def _bounds(values: list[float], description: Any, log: bool) -> list[float]:
    """An axis range: the search space's bounds where known, else the data's; a single value
    gets room around it instead of a degenerate axis."""
    low, high = min(values), max(values)
    if isinstance(description, dict) and "low" in description and "high" in description:
        bounds = [float(description["low"]), float(description["high"])]
        if log:
            bounds = [math.log10(b) for b in bounds if b > 0] or [low, high]
        low, high = min(low, *bounds), max(high, *bounds)
    elif (
        isinstance(description, list)
        and len(description) == 2
        and not log
        and all(isinstance(b, (int, float)) and not isinstance(b, bool) for b in description)
    ):
        low, high = min(low, description[0]), max(high, description[1])
    if low == high:
        pad = 1.0 if log or float(low).is_integer() else abs(low) * 0.5 or 1.0
        low, high = low - pad, high + pad
    return [low, high]


def _log_ticks(low: float, high: float) -> tuple[list[float], list[str]]:
    """Ticks of a log10 axis, labelled with the real values: decades, or a few in between."""
    decades = list(range(math.ceil(low - 1e-9), math.floor(high + 1e-9) + 1))
    ticks = [float(d) for d in decades] if len(decades) >= 2 else [
        low + (high - low) * f for f in (0.0, 0.5, 1.0)]  # fmt: skip
    return ticks, [fmt.short(10**t) for t in ticks]


def _int_ticks(low: float, high: float) -> list[int] | None:
    if high - low <= 12:
        return list(range(math.ceil(low), math.floor(high) + 1))
    return None


def _dimension(name: str, description: Any, values: list[Any]) -> dict[str, Any]:
    """One parcoords axis: categorical labels, integer ticks, or a log10 scale shown in the
    real values (plotly's parcoords has no log axis)."""
    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if not numeric:
        choices = description if isinstance(description, list) else []
        labels = [str(c) for c in choices if str(c) in {str(v) for v in values}]
        labels += sorted({str(v) for v in values} - set(labels))
        index = {label: i for i, label in enumerate(labels)}
        return {"label": name, "values": [index[str(v)] for v in values],
                "tickvals": list(range(len(labels))), "ticktext": labels,
                "range": [-0.5, len(labels) - 0.5] if len(labels) == 1 else [0, len(labels) - 1]}  # fmt: skip
    if is_log(description) and all(v > 0 for v in values):
        shown = [math.log10(v) for v in values]
        low, high = _bounds(shown, description, log=True)
        ticks, text = _log_ticks(low, high)
        return {"label": f"{name} (log)", "values": shown, "range": [low, high],
                "tickvals": ticks, "ticktext": text}  # fmt: skip
    low, high = _bounds([float(v) for v in values], description, log=False)
    dim: dict[str, Any] = {"label": name, "values": values, "range": [low, high]}
    kind = description.get("type") if isinstance(description, dict) else None
    if kind == "int" or all(_is_int(v) for v in values):
        dim["tickformat"] = "d"
        ticks = _int_ticks(low, high)
        if ticks:
            dim["tickvals"] = ticks
    return dim


def parcoords_figure(record: ExperimentRecord) -> Figure | None:
    """Hyperparameters against the metric, one line per scored trial (searches only)."""
    scored = _scored(record)
    if record.kind == "launch" or not scored or not record.search_space:
        return None
    trials = [t for _, t, _ in scored]
    metrics = [v for _, _, v in scored]
    dims = [_dimension(n, d, [t.params.get(n) for t in trials])
            for n, d in record.search_space.items()]  # fmt: skip
    name = render.metric_name(record)
    dims.append({"label": name, "values": metrics, "range": _bounds(metrics, None, log=False)})
    trace = {
        "type": "parcoords", "dimensions": dims, "labelangle": 0, "labelside": "top",
        # Coloured by the metric, best bright whatever the direction; the metric's own axis
        # is the scale (a colour bar beside it would cover its tick labels).
        "line": {"color": metrics, "colorscale": "Viridis", "showscale": False,
                 "reversescale": record.direction == "min"},
    }  # fmt: skip
    spec = layout("hyperparameters vs " + name, height=380, top=90)
    spec["margin"].update(l=70, r=60)  # the outer axes' tick labels sit outside the plot
    return figure([trace], spec)


# --- extras and importances --------------------------------------------------------------------


def _grid(keys: tuple[str, ...]) -> dict[str, Any]:
    """The layout of one small chart per key, two a row: axes domains and titles."""
    from plotly.subplots import make_subplots

    cols = min(2, len(keys))
    rows = math.ceil(len(keys) / cols)
    grid = make_subplots(rows=rows, cols=cols, subplot_titles=keys, vertical_spacing=0.6 / rows,
                         horizontal_spacing=0.1)  # fmt: skip
    return grid.layout.to_plotly_json()


_grids: dict[tuple[str, ...], dict[str, Any]] = {}  # the same keys each refresh: made once


def extras_figure(record: ExperimentRecord, series: ReportSeries) -> Figure | None:
    """One small chart per extra value given to report() (`report(loss, step, acc=...)`)."""
    keys = tuple(series.keys()[:EXTRA_KEYS_MAX])
    if not keys:
        return None
    grid = json.loads(json.dumps(_grids.get(keys) or _grids.setdefault(keys, _grid(keys))))
    data = []
    for i, key in enumerate(keys):
        suffix = "" if i == 0 else str(i + 1)
        traces, steps = _trial_traces(record, series, key)
        for trace in traces:
            trace.update(legendgroup=trace["meta"], meta=f"{trace['meta']}\x1f{key}",
                         showlegend=trace["showlegend"] and i == 0,
                         xaxis=f"x{suffix}", yaxis=f"y{suffix}")  # fmt: skip
        data += traces
        grid[f"xaxis{suffix}"].update(step_axis(series, steps))
        grid[f"yaxis{suffix}"]["title"] = {"text": key}
    rows = math.ceil(len(keys) / min(2, len(keys)))
    grid.update(
        layout("other reported values" + _lines_note(record), height=80 + 250 * rows, top=70)
    )
    return figure(data, grid)


def importance_figure(record: ExperimentRecord, seed: int = 0) -> Figure | None:
    """Permutation importances as horizontal bars (searches of MIN_TRIALS scored trials)."""
    if record.kind == "launch" or len(_scored(record)) < MIN_TRIALS:
        return None
    found = param_importances(record.trials, record.search_space, seed=seed)
    if not found:
        return None
    found = found[::-1]  # plotly draws the first bar at the bottom: most important on top
    bars = {
        "type": "bar", "x": [i.mean for i in found], "y": [i.name for i in found],
        "orientation": "h", "error_x": {"type": "data", "array": [i.std for i in found]},
        "marker": {"color": "#1f77b4"}, "hovertemplate": "%{y}: %{x:.3f}<extra></extra>",
    }  # fmt: skip
    return figure(
        [bars],
        layout(
            f"hyperparameter importance ({len(_scored(record))} trials)",
            height=max(200, 90 + 28 * len(found)),
            xaxis={"title": {"text": "drop in R² of a random forest when shuffled"},
                   "rangemode": "tozero"},
            yaxis={"automargin": True},
        ),
    )  # fmt: skip


def live_figures(record: ExperimentRecord, series: ReportSeries) -> dict[str, Figure | None]:
    """The charts the live widget keeps up to date, by name (None: nothing to show yet)."""
    return {"curves": curves_figure(record, series), "history": history_figure(record),
            "parcoords": parcoords_figure(record), "extras": extras_figure(record, series)}  # fmt: skip


def static_figures(record: ExperimentRecord, series: ReportSeries) -> list[Figure]:
    """The charts of the final state, importances included."""
    figures = [f for f in live_figures(record, series).values() if f is not None]
    importance = importance_figure(record)
    return figures + ([importance] if importance is not None else [])
