"""Widgets: what a user sees of an experiment, live and in the saved output, and the comm traffic
and final outputs of real kernels."""

import json
import math
import random
import re
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote

import pytest
from jupyter_client.manager import start_new_kernel

from hops import experiment
from hops_jupyter.core.experiment import records
from hops_jupyter.core.experiment.records import ExperimentRecord, TrialRecord
from hops_jupyter.widgets import charts, formatting, palette, render
from hops_jupyter.widgets.importance import param_importances
from hops_jupyter.widgets.series import ReportSeries
from hops_jupyter.widgets.view import ExperimentView
from tests.conftest import require_system
from tests.lab import launch_chromium, running_lab


def train(lr, units):
    for step in range(4):
        experiment.report(lr * units * (step + 1), step=step)
    return lr * units


class _Tags(HTMLParser):
    """Every start tag with its attributes, and the text, as a browser would parse them."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text = ""
        self._skip = 0
        self.feed(text)

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data) -> None:
        self.text += data


class _Table(HTMLParser):
    """The trial table as rows of cell texts, one list per trial (its <tbody>), and the
    attributes of each trial's <tbody> and first <tr>."""

    def __init__(self, markup: str) -> None:
        super().__init__()
        self.head: list[str] = []
        self.trials: list[dict] = []
        self._cell: list[str] | None = None
        self._in_head = False
        self.feed(markup)

    def handle_starttag(self, tag, attrs) -> None:
        attrs = dict(attrs)
        if tag == "thead":
            self._in_head = True
        elif tag == "tbody":
            self.trials.append({"attrs": attrs, "rows": [], "row_attrs": []})
        elif tag == "tr" and self.trials and not self._in_head:
            self.trials[-1]["rows"].append([])
            self.trials[-1]["row_attrs"].append(attrs)
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag) -> None:
        if tag == "thead":
            self._in_head = False
        elif tag in ("td", "th") and self._cell is not None:
            text = "".join(self._cell).strip()
            if self._in_head:
                self.head.append(text)
            else:
                self.trials[-1]["rows"][-1].append(text)
            self._cell = None

    def handle_data(self, data) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def column(self, name: str) -> list[str]:
        index = self.head.index(name)
        return [t["rows"][0][index] for t in self.trials]

    def by_trial(self, trial_id: str) -> dict:
        return next(t for t in self.trials if t["attrs"]["data-trial"] == trial_id)


# --- the live view's state --------------------------------------------------------------------


def test_model_state_after_20_trials(hops_home):
    # One worker: trials start in grid order, which the row numbers below follow (with two,
    # the last two could start in either order).
    result = experiment.grid_search(
        train, {"lr": [0.1, 0.2, 0.3, 0.4, 0.5], "units": [1, 2, 3, 4]}, workers=1
    )
    view = ExperimentView(result.id)
    view.refresh(force=True)
    table = _Table(view.panel.table_html)
    assert len(table.trials) == 20 and set(table.column("status")) == {"FINISHED"}
    assert table.head == ["#", "status", "lr", "units", "metric", "duration"]
    assert table.column("#") == [str(i) if i != 20 else "★ 20" for i in range(1, 21)]
    assert all(re.fullmatch(r"\d\.\d+ s|\d+(\.\d+)? s", d) for d in table.column("duration"))
    assert (view.bar.value, view.bar.max) == (20, 20)
    assert view.bar.description == "20/20 trials, 0 failed"
    best = _Tags(view.best.value).text
    assert best == "best metric = 2 · trial #20 with lr=0.5, units=4"
    assert view.panel.experiment_id == result.id and view.panel.status == "FINISHED"
    assert (
        "Open TensorBoard" in view.header.value
        and f"/hops/tensorboard/{result.id}/" in view.header.value
    )
    curves = {trace.meta: trace for trace in view.charts["curves"].widget.data}
    assert len(curves) == 20
    assert list(curves["lr=0.5&units=4"].y) == [2.0, 4.0, 6.0, 8.0]
    assert list(curves["lr=0.5&units=4"].x) == [0, 1, 2, 3]
    assert curves["lr=0.5&units=4"].name == "#20 lr=0.5, units=4"
    shown = [c for c in view.box.children if c not in (view.header, view.bar, view.best)]
    assert [view.charts[n].widget for n in ("curves", "history", "parcoords")] == shown[2:5]
    dims = view.charts["parcoords"].widget.data[0].dimensions
    assert [d.label for d in dims] == ["lr", "units", "metric"]
    assert len(dims[2].values) == 20 and max(dims[2].values) == 2.0


def test_live_updates_are_throttled_in_a_kernel(hops_home):
    """200 fast trials in a real kernel: the widget sends at most 5 comm messages a second."""
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        values = ",".join(str(i) for i in range(200))
        code = f"%%experiment --grid i={values} --workers 2\nimport time\ntime.sleep(0.02)\nfrom hops import experiment\nexperiment.report(i)\ni"
        comm_updates = []
        outputs = []

        def hook(msg):
            kind = msg["header"]["msg_type"]
            if kind == "comm_msg" and msg["content"]["data"].get("method") == "update":
                comm_updates.append(time.monotonic())
            elif kind in ("display_data", "update_display_data", "stream", "error"):
                outputs.append(msg)

        start = time.monotonic()
        reply = kc.execute_interactive(code, timeout=300, output_hook=hook)
        duration = time.monotonic() - start
        assert reply["content"]["status"] == "ok", reply["content"]
        assert not [m for m in outputs if m["header"]["msg_type"] == "error"]
        assert duration > 2  # long enough for the rate to mean something
        assert comm_updates, "the widget never updated"
        assert len(comm_updates) / duration <= 5, (len(comm_updates), duration)
        assert len(comm_updates) < 60  # unthrottled, 200 trials would send hundreds
        # At the end the widget is replaced by a static summary (kept when the notebook is saved).
        finals = [m for m in outputs if m["header"]["msg_type"] == "update_display_data"
                  and "hops-experiment" in m["content"]["data"].get("text/html", "")]  # fmt: skip
        assert finals and "200/200 trials" in finals[-1]["content"]["data"]["text/html"]
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def curve(x):
    import time

    from hops import experiment

    for step in range(10):
        experiment.report(x * (step + 1), step=step)
        time.sleep(0.02)
    return x * 10


def test_early_stopped_trials_show_their_status_and_step(hops_home):
    result = experiment.grid_search(curve, {"x": [1.0, 0.1]}, workers=1,
                                    early_stopping=experiment.ASHA(min_steps=2))  # fmt: skip
    stopped = next(t for t in result.trials if t.params["x"] == 0.1)
    assert stopped.status == "EARLY_STOPPED" and stopped.stopped_step == 2
    view = ExperimentView(result.id)
    view.refresh(force=True)
    assert "EARLY_STOPPED at step 2" in view.panel.table_html
    assert view.bar.description == "2/2 trials, 0 failed"
    assert "EARLY_STOPPED at step 2" in render.static_summary(result.record)["text/html"]


# --- failures, pending trials and the static table --------------------------------------------


def fails_on_three(units):
    from hops import experiment

    experiment.report(units * 10, step=0)  # a report before failing: not its metric
    if units == 3:
        raise ValueError(f"units={units} diverged\nsee the log")
    return units


def test_failures_are_in_plain_sight_with_the_traceback_one_click_away(hops_home):
    result = experiment.grid_search(fails_on_three, {"units": [1, 2, 3]}, workers=1)
    failed_id = next(t.id for t in result.trials if t.status == "FAILED")
    summary = render.static_summary(experiment.get(result.id))["text/html"]
    view = ExperimentView(result.id)
    for markup in (summary, view.panel.table_html):
        table = _Table(markup)
        failed = table.by_trial(failed_id)
        status, units, metric = failed["rows"][0][1:4]
        assert (status, units, metric) == ("FAILED", "3", "")  # its report of 30 is no metric
        error_line = failed["rows"][1][0]
        assert error_line.startswith("ValueError: units=3 diverged …")  # the text, not a tooltip
        details = markup[markup.index(f'data-trial="{failed_id}"') :]
        details = details[: details.index("</tbody>")]
        assert "<details><summary" in details and "Traceback (most recent call last)" in details
        assert "see the log" in details[details.index("<pre") :]
    text = _Tags(summary).text
    assert "ValueError: units=3 diverged … · 1 trial (#3)" in text
    assert "ValueError" in view.failures.value


def plotted(spec):
    """A chart as the validated plotly figure users see."""
    return charts.to_figure(spec)


def _record(direction="max", **more) -> ExperimentRecord:
    fields = {"id": "20260101T000000000-abcd", "name": "hand", "kind": "random_search",
              "function": "f", "direction": direction, "metric_key": None,
              "search_space": {"lr": [1e-4, 1e-1]}, "engine": "local", "workers": 2}  # fmt: skip
    return ExperimentRecord(**{**fields, **more})


def _trial(trial_id, lr, status, metric=None, **more) -> TrialRecord:
    return TrialRecord(id=trial_id, params={"lr": lr}, status=status, metric=metric, **more)


def test_only_finished_trials_show_a_metric_and_pending_ones_are_listed(hops_home):
    latest = {"time": 1.0, "step": 4, "metric": 0.75}
    record = _record(trials_total=5, trials_done=3, best_trial="a", best_metric=0.9,
                     best_params={"lr": 0.00872345}, trials=[
        _trial("a", 0.00872345, "FINISHED", 0.9, started="2026-01-01T00:00:01", duration_s=1.234,
               latest=latest),
        _trial("b", 0.02, "RUNNING", started="2026-01-01T00:00:02", latest=latest),
        _trial("c", 0.03, "FAILED", started="2026-01-01T00:00:03", latest=latest,
               error={"type": "KeyError", "message": "'x'", "traceback": "Traceback ..."}),
        _trial("d", 0.04, "KILLED", started="2026-01-01T00:00:04", latest=latest,
               duration_s=123.4),
        _trial("e", 0.05, "PENDING"),
    ])  # fmt: skip
    table = _Table(render.table_html(record))
    assert table.column("status") == ["FINISHED", "RUNNING", "FAILED", "KILLED", "PENDING"]
    assert table.column("metric") == ["0.9", "0.75", "", "", ""]  # running: its latest report
    assert table.column("duration") == ["1.23 s", "", "", "2 min 3 s", ""]
    assert table.column("lr") == ["0.00872", "0.02", "0.03", "0.04", "0.05"]
    assert table.column("#") == ["★ 1", "2", "3", "4", ""]  # a pending trial has no number yet
    tags = _Tags(render.table_html(record)).tags
    assert ("span", {"title": "0.00872345"}) in tags  # full precision on hover
    running = next(a for t, a in tags if t == "td" and "data-started" in a)
    assert running["data-started"] == "2026-01-01T00:00:02"  # the browser counts its seconds
    best_row = table.by_trial("a")["row_attrs"][0]
    assert best_row["title"] == "best trial" and "background" in best_row["style"]


def test_static_table_is_best_first_with_inline_styles_only(hops_home):
    trials = [_trial(c, 0.01 * (i + 1), "FINISHED", m, started=f"2026-01-01T00:00:0{i}")
              for i, (c, m) in enumerate([("a", 0.5), ("b", 0.1), ("c", 0.9)])]  # fmt: skip
    trials.append(_trial("d", 0.5, "FAILED", started="2026-01-01T00:00:09",
                         error={"type": "E", "message": "m", "traceback": "t"}))  # fmt: skip
    for direction, order in (("max", ["c", "a", "b", "d"]), ("min", ["b", "a", "c", "d"])):
        best = order[0]
        record = _record(direction, best_trial=best, trials=trials)
        markup = render.static_summary(record)["text/html"]
        table = _Table(markup)
        assert [t["attrs"]["data-trial"] for t in table.trials] == order
        assert table.column("#")[0].startswith("★")
        tags = _Tags(markup).tags
        assert not [a for _, a in tags if "class" in a and a["class"].startswith("hops-t-")]
        assert "<style" not in markup and "<script" not in markup
    live = render.table_html(record, inline=False)
    assert "hops-t-td" in live and "padding" not in live.split("<tbody", 1)[1]


def test_values_read_short_with_sensible_durations():
    assert formatting.trial_label({"lr": 0.008723456, "units": 56, "opt": "adam"}) == (
        "lr=0.00872, units=56, opt=adam"
    )
    assert formatting.trial_label({}) == "run"
    assert formatting.short(123456.789) == "1.23e+05" and formatting.short(True) == "True"
    assert formatting.full(0.008723456) == "0.008723456"
    durations = [0.0004123, 1.234, 12.34, 59.7, 123.4, 3725.0, 7200.0, None]
    assert [formatting.duration(d) for d in durations] == [
        "0.000412 s", "1.23 s", "12.3 s", "1 min", "2 min 3 s", "1 h 2 min", "2 h", ""]  # fmt: skip


# --- charts ------------------------------------------------------------------------------------


def test_trial_colours_are_distinct_beyond_ten_and_the_same_live_and_final(hops_home):
    assert len({palette.colour(n) for n in range(1, 41)}) == 40
    result = experiment.grid_search(train, {"lr": [0.1, 0.2, 0.3], "units": [1, 2, 3, 4]})
    view = ExperimentView(result.id)
    live = {t.meta: t.line.color for t in view.charts["curves"].widget.data}
    series = ReportSeries()
    record = experiment.get(result.id)
    series.read(records.experiment_dir(result.id), [t.id for t in record.trials])
    final = {t.meta: t.line.color for t in plotted(charts.curves_figure(record, series)).data}
    assert live == final and len(set(final.values())) == 12
    history = plotted(charts.history_figure(record))
    marker_colours = dict(zip(history.data[0].x, history.data[0].marker.color, strict=True))
    numbers = palette.numbers(record)
    assert all(marker_colours[numbers[t]] == c for t, c in final.items())


def test_charts_of_many_trials_draw_the_running_and_the_best(hops_home):
    """Lines are capped as the table's rows are: beyond charts.LINES_MAX trials a chart draws
    the running ones and the best, and its title says so."""
    result = experiment.grid_search(train, {"lr": [0.1, 0.2, 0.3], "units": list(range(40))})
    record, series = experiment.get(result.id), ReportSeries()
    series.read(records.experiment_dir(result.id), [t.id for t in record.trials])
    curves = plotted(charts.curves_figure(record, series))
    assert len(curves.data) == charts.LINES_MAX
    assert f"running and best {charts.LINES_MAX} of 120 trials" in curves.layout.title.text
    metric = {t.id: t.metric for t in record.trials}
    drawn = sorted(metric[t.meta] for t in curves.data)
    assert drawn == sorted(metric.values())[-charts.LINES_MAX :]  # the best (ties either way)


def test_chart_axes_read_right(hops_home):
    result = experiment.grid_search(train, {"lr": [0.1, 0.2], "units": [1, 2]})
    record = experiment.get(result.id)
    series = ReportSeries()
    series.read(records.experiment_dir(result.id), [t.id for t in record.trials])
    curves = plotted(charts.curves_figure(record, series))
    assert curves.layout.xaxis.title.text == "step" and curves.layout.yaxis.title.text == "metric"
    assert curves.layout.xaxis.tickformat == "d" and curves.layout.xaxis.dtick == 1
    history = plotted(charts.history_figure(record))
    assert history.layout.xaxis.title.text == "trial" and history.layout.xaxis.tickformat == "d"
    parcoords = plotted(charts.parcoords_figure(record))
    assert parcoords.layout.margin.t >= 80  # the title clears the axis labels
    assert parcoords.layout.title.yref == "container"


def test_live_figure_follows_successive_charts():
    from hops_jupyter.widgets.livefigure import LiveFigure

    def chart(lines, title="t"):
        data = [{"type": "scatter", "meta": k, "x": list(range(len(y))), "y": y}
                for k, y in lines.items()]  # fmt: skip
        return {"data": data, "layout": {"title": {"text": title}}}

    live = LiveFigure(chart({"a": [1], "b": [2]}))
    live.update(chart({"a": [1, 5], "b": [2], "c": [7]}, title="u"))  # grown, same, new
    assert {t.meta: list(t.y) for t in live.widget.data} == {"a": [1, 5], "b": [2], "c": [7]}
    assert live.widget.layout.title.text == "u"
    live.update(chart({"c": [7, 8]}))  # traces went away: the widget starts over
    assert [(t.meta, list(t.y)) for t in live.widget.data] == [("c", [7, 8])]


def test_no_empty_chart_before_data(hops_home):
    folder = records.experiments_dir()
    record = _record(status="RUNNING", owner=records.this_owner())
    loc = folder.child(record.id)
    loc.fs.create_dir(loc.path, recursive=True)
    records.write_experiment(loc, record)
    view = ExperimentView(record.id)
    assert view.charts == {}
    assert not [c for c in view.box.children if type(c).__name__ == "FigureWidget"]
    assert charts.static_figures(view.record, view.series) == []


def test_history_tracks_the_best_so_far_in_the_direction(hops_home):
    values = [0.5, 0.2, 0.7, 0.1, 0.6]
    trials = [_trial(f"t{i}", 0.01, "FINISHED", v, started=f"2026-01-01T00:00:0{i}")
              for i, v in enumerate(values)]  # fmt: skip
    best = plotted(charts.history_figure(_record("max", trials=trials))).data[1]
    assert list(best.y) == [0.5, 0.5, 0.7, 0.7, 0.7] and list(best.x) == [1, 2, 3, 4, 5]
    best = plotted(charts.history_figure(_record("min", trials=trials))).data[1]
    assert list(best.y) == [0.5, 0.2, 0.2, 0.1, 0.1]
    assert charts.history_figure(_record(None, kind="launch", trials=trials[:1])) is None


def test_parallel_coordinates_axes(hops_home):
    space = {"lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
             "units": [16, 64], "opt": ["adam", "sgd", "rmsprop"], "layers": [2, 2],
             "dropout": [0.0, 0.5]}  # fmt: skip
    points = [(1e-3, 16, "sgd", 0.1), (1e-2, 32, "adam", 0.2), (5e-2, 64, "sgd", 0.3)]
    trials = [
        TrialRecord(id=f"t{i}", status="FINISHED", metric=float(i), started=f"2026-01-01T0{i}",
                    params={"lr": lr, "units": u, "opt": o, "layers": 2, "dropout": d})
        for i, (lr, u, o, d) in enumerate(points)
    ]  # fmt: skip
    record = _record(search_space=space, trials=trials)
    dims = {d.label: d for d in plotted(charts.parcoords_figure(record)).data[0].dimensions}
    lr = dims["lr (log)"]  # log10 values, labelled with real ones
    assert list(lr.values) == [-3.0, -2.0, math.log10(5e-2)] and list(lr.range) == [-4.0, -1.0]
    assert list(lr.ticktext) == ["0.0001", "0.001", "0.01", "0.1"]
    assert list(lr.tickvals) == [-4.0, -3.0, -2.0, -1.0]
    assert dims["units"].tickformat == "d" and list(dims["units"].range) == [16, 64]
    opt = dims["opt"]  # categories in the search space's order, only those tried
    assert list(opt.ticktext) == ["adam", "sgd"] and list(opt.values) == [1, 0, 1]
    layers = dims["layers"]  # one value: an axis around it, integer ticks
    assert list(layers.range) == [1.0, 3.0] and list(layers.tickvals) == [1, 2, 3]
    assert dims["dropout"].tickformat is None and list(dims["dropout"].range) == [0.0, 0.5]


def reports_extras(lr):
    from hops import experiment

    for step in range(3):
        experiment.report(lr * step, step=step, loss=1.0 / (step + 1), accuracy=0.3 * step)
    return lr


def test_extra_reported_values_get_charts(hops_home):
    result = experiment.grid_search(reports_extras, {"lr": [0.1, 0.2]})
    view = ExperimentView(result.id)
    figure = view.charts["extras"].widget
    assert [a.text for a in figure.layout.annotations] == ["loss", "accuracy"]
    by_key = {}
    for trace in figure.data:
        trial_id, key = trace.meta.split("\x1f")
        by_key[key, trial_id] = list(trace.y)
    assert by_key["loss", "lr=0.1"] == [1.0, 0.5, 1 / 3]
    assert by_key["accuracy", "lr=0.2"] == [0.0, 0.3, 0.6]
    assert (
        figure.layout.xaxis.title.text == "step" and figure.layout.yaxis2.title.text == "accuracy"
    )


# --- importances -------------------------------------------------------------------------------


def _synthetic(count: int, seed: int = 7) -> list[TrialRecord]:
    """`lr` decides the metric (best at 10^-2.5), `noise` and `opt` do not."""
    rng = random.Random(seed)
    trials = []
    for i in range(count):
        lr, noise, opt = 10 ** rng.uniform(-4, -1), rng.uniform(0, 1), rng.choice(["a", "b"])
        metric = -((math.log10(lr) + 2.5) ** 2) + rng.gauss(0, 0.05)
        trials.append(TrialRecord(id=f"t{i}", status="FINISHED", metric=metric,
                                  params={"lr": lr, "noise": noise, "opt": opt}))  # fmt: skip
    return trials


def test_importance_finds_the_parameter_that_matters():
    space = {"lr": {"type": "float", "low": 1e-4, "high": 1e-1, "log": True},
             "noise": [0.0, 1.0], "opt": ["a", "b"]}  # fmt: skip
    found = param_importances(_synthetic(40), space, seed=3)
    assert [i.name for i in found][0] == "lr"
    by_name = {i.name: i.mean for i in found}
    assert by_name["lr"] > 0.5 and by_name["lr"] > 10 * max(by_name["noise"], by_name["opt"])
    assert found == param_importances(_synthetic(40), space, seed=3)  # seeded
    assert param_importances(_synthetic(19), space) == []  # too few trials to say
    record = _record(search_space=space, trials=_synthetic(40))
    bars = plotted(charts.importance_figure(record)).data[0]
    assert list(bars.y)[-1] == "lr"  # the top bar


# --- list and compare --------------------------------------------------------------------------


def test_list_and_compare_are_dataframes(hops_home):
    assert experiment.list().empty
    first = experiment.grid_search(train, {"lr": [0.1, 0.2], "units": [1]}, name="first")
    second = experiment.grid_search(lambda x, opt: x, {"x": [1, 3], "opt": ["a"]},
                                    direction="min", name="second")  # fmt: skip
    listed = experiment.list()
    assert list(listed.id) == [second.id, first.id]  # newest first
    assert list(listed.columns) == ["id", "name", "kind", "status", "started", "duration_s",
                                    "trials_done", "trials_total", "trials_failed",
                                    "best_metric", "best_params"]  # fmt: skip
    assert listed.name.iloc[0] == "second" and listed.best_metric.iloc[0] == 1
    assert str(listed.started.dt.tz) == "UTC"
    both = experiment.compare(listed.id)
    assert list(both.index) == [second.id, first.id]
    assert both.loc[first.id, "lr"] == 0.2 and both.loc[second.id, "opt"] == "a"
    assert both.loc[second.id, "direction"] == "min" and both.loc[first.id, "trials_done"] == 2
    assert both.isna().loc[first.id, "x"]  # a parameter the other experiment did not have
    assert "<table" in both._repr_html_()


# --- records are data, not HTML --------------------------------------------------------------

HOSTILE_ID = '" onmouseover="alert(1)" x="'
HOSTILE = {
    "kind": "<img src=x onerror=alert(1)>",
    "status": '"><script>status()</script>',
    "trial_status": "<script>trial()</script>",
    "error": '"><script>error()</script>',
}


def write_hostile_experiment(hops_home, experiment_id: str = "20260102T030405678-beef") -> str:
    """A hand-written experiment.json (and one trial.json) whose strings are HTML, and whose
    `id` does not match its folder; its trial's folder is named like HTML too (readers take a
    trial's id from its folder)."""
    folder = hops_home / "Projects" / "demo" / "Experiments" / experiment_id
    (folder / HOSTILE_ID).mkdir(parents=True)
    record = {
        "id": HOSTILE_ID, "name": "<b>name</b>", "kind": HOSTILE["kind"], "function": "f",
        "direction": "max", "metric_key": None, "search_space": {}, "engine": "local",
        "workers": 1, "status": HOSTILE["status"], "trials_total": 1, "trials_done": 1,
        "url": f"javascript:alert(1)//{HOSTILE_ID}",
    }  # fmt: skip
    (folder / "experiment.json").write_text(json.dumps(record))
    trial = {"id": HOSTILE_ID, "params": {}, "status": HOSTILE["trial_status"],
             "error": {"type": "<i>T</i>", "message": HOSTILE["error"],
                       "traceback": HOSTILE["error"]}}  # fmt: skip
    (folder / HOSTILE_ID / "trial.json").write_text(json.dumps(trial))
    return experiment_id


ALLOWED_TAGS = {"div", "p", "b", "span", "code", "a", "table", "thead", "tbody", "tr", "th", "td",
                "i", "details", "summary", "pre"}  # fmt: skip
ALLOWED_ATTRS = {"style", "href", "target", "rel", "class", "title", "colspan", "data-v",
                 "data-col", "data-num", "data-trial", "data-status", "data-label",
                 "data-started"}  # fmt: skip


def assert_inert(markup: str, experiment_id: str) -> None:
    """No element or attribute came from a record, and the link names the folder's id."""
    parsed = _Tags(markup)
    names = {tag for tag, _ in parsed.tags}
    assert names <= ALLOWED_TAGS, names
    for tag, attrs in parsed.tags:
        assert set(attrs) <= ALLOWED_ATTRS, (tag, attrs)
    for href in [attrs["href"] for tag, attrs in parsed.tags if tag == "a"]:
        assert href == f"/hops/tensorboard/{experiment_id}/"
    for value in HOSTILE.values():  # the values are shown as text
        assert value in parsed.text, value
    assert HOSTILE_ID not in parsed.text.replace(f"data-trial={HOSTILE_ID}", "")


def test_show_escapes_every_value_from_the_record(hops_home, monkeypatch):
    from hops_jupyter.widgets import view as view_module

    monkeypatch.delenv("HOPS_SERVER_BASE_URL", raising=False)  # set by a server in this process
    exp_id = write_hostile_experiment(hops_home)
    shown = []
    monkeypatch.setattr(view_module, "display", lambda obj, **_: shown.append(obj))
    assert view_module.show() is None  # the newest experiment, found by its folder
    assert_inert(shown[0]["text/html"], exp_id)
    view_module.show(exp_id)
    assert_inert(shown[-1]["text/html"], exp_id)
    view = ExperimentView(exp_id)
    assert_inert(view.header.value + view.panel.table_html + view.failures.value, exp_id)
    assert exp_id in _Tags(view.header.value).text
    (trial,) = _Table(view.panel.table_html).trials
    assert trial["attrs"]["data-trial"] == HOSTILE_ID  # an attribute value, intact and inert
    # Rendering a record that says another id still yields a well-formed link.
    record = view.record
    record.id = HOSTILE_ID
    (href,) = [a["href"] for t, a in _Tags(render.header_html(record)).tags if t == "a"]
    assert href == f"/hops/tensorboard/{quote(HOSTILE_ID, safe='')}/"


def test_inline_tensorboard_output_is_inert():
    from hops_jupyter.widgets.tensorboard import tensorboard_bundle

    bundle = tensorboard_bundle('x"></iframe><script>a()</script>')
    markup = bundle["text/html"]
    assert "</iframe><script>a()" not in markup and "<script>a()" not in markup
    assert bundle["application/vnd.hops.tensorboard+json"]["path"].count("/") == 3


# --- a background run's final outputs ----------------------------------------------------------


def test_background_run_ends_with_its_charts_in_its_own_cell(hops_home):
    """The figures of a `--background` run's final state land in the slots made by its cell
    (display updates by id), not as new outputs of whatever cell runs when it ends."""
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        kc.execute_interactive("%load_ext hops_jupyter", timeout=60)
        messages = []
        code = ("%%experiment --background --grid x=1,2,3 -o bg\nfrom hops import experiment\n"
                "for s in range(3):\n    experiment.report(x * s, step=s)\nx")  # fmt: skip
        first = kc.execute_interactive(code, timeout=120, output_hook=messages.append)
        cell = first["parent_header"]["msg_id"]
        slots = [m["content"]["transient"]["display_id"] for m in messages
                 if m["header"]["msg_type"] == "display_data"
                 and m["parent_header"]["msg_id"] == cell]  # fmt: skip
        later = kc.execute_interactive("bg.wait()\nimport time; time.sleep(0.5)", timeout=120,
                                       output_hook=messages.append)  # fmt: skip
        assert later["content"]["status"] == "ok"
        finals = {}
        for m in messages:
            if m["header"]["msg_type"] == "update_display_data":
                finals[m["content"]["transient"]["display_id"]] = m["content"]["data"]
        plotly = "application/vnd.plotly.v1+json"
        charted = [finals[s][plotly]["layout"]["title"]["text"] for s in slots[1:]
                   if s in finals and plotly in finals[s]]  # fmt: skip
        assert charted == ["metric per step", "optimization history", "hyperparameters vs metric"]
        assert "text/html" in finals[slots[2]]  # readable in an HTML export too
        assert "hops-experiment" in finals[slots[0]]["text/html"]
        stray = [m for m in messages if m["header"]["msg_type"] == "display_data"
                 and m["parent_header"]["msg_id"] != cell]  # fmt: skip
        assert stray == []  # nothing shown in the cell that happened to run at the end
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


# --- the live panel in JupyterLab, while the kernel is busy with the cell ------------------------

LIVE_CELL = """%%experiment --grid i=1,2,3,4,5,6 --workers 2 --name widget-live -o live
import time
from hops import experiment
print(f"hello from trial {i}", flush=True)
for step in range(3):
    experiment.report(i * step, step=step)
    time.sleep(0.1)
if i == 2:
    raise ValueError("two is not allowed")
if i >= 5:
    for second in range(120):
        print(f"trial {i} still running, second {second}", flush=True)
        time.sleep(1)
i"""
LAB_BASE, LAB_TOKEN = "/user/bob/", "widget-test-token"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "widgets"


@pytest.fixture
def lab(tmp_path, hops_home):
    """JupyterLab on 127.0.0.1 under a non-root base_url, with a notebook of LIVE_CELL."""
    require_system("/usr/bin/chromium")
    root = tmp_path / "notebooks"
    root.mkdir()
    cell = {"id": "live", "cell_type": "code", "metadata": {}, "source": LIVE_CELL,
            "outputs": [], "execution_count": None}  # fmt: skip
    notebook = {"cells": [cell], "nbformat": 4, "nbformat_minor": 5,
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                            "language": "python"}}}  # fmt: skip
    (root / "widget.ipynb").write_text(json.dumps(notebook))
    with running_lab(tmp_path, root, LAB_BASE, LAB_TOKEN) as lab:
        yield lab.url


@pytest.mark.browser
def test_live_panel_sorts_shows_logs_and_stops_while_the_cell_runs(lab):
    """In the browser, during a foreground run (the kernel busy with the cell): the failed
    trial's error is in the table, a header click sorts, a row click tails that trial's log,
    and the stop button stops the experiment, whose final output then says so."""
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1300, "height": 1700})
        page.goto(f"{lab}lab/tree/widget.ipynb?token={LAB_TOKEN}")
        expect(page.get_by_text(re.compile(r"\| Idle")).first).to_be_visible(timeout=120_000)
        cell = page.locator(".jp-NotebookPanel:visible .jp-Cell").first
        cell.locator(".cm-content").click()
        page.keyboard.press("Shift+Enter")
        panel = cell.locator(".hops-panel")
        expect(panel).to_be_visible(timeout=120_000)
        failed = panel.locator('tbody[data-status="FAILED"]')
        expect(failed).to_contain_text("ValueError: two is not allowed", timeout=60_000)
        expect(failed.locator("details pre")).to_be_hidden()  # the traceback: one click away
        failed.locator("summary").click()
        expect(failed.locator("details pre")).to_contain_text("Traceback")
        running = panel.locator('tbody[data-status="RUNNING"]')
        expect(running).to_have_count(2, timeout=60_000)
        expect(cell.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)

        panel.locator("th", has_text="metric").click()  # ascending; no metric: last
        metric_order = panel.locator("tbody").evaluate_all(
            "bodies => bodies.map(b => b.dataset.trial)"
        )
        assert metric_order[:3] == ["i=1", "i=3", "i=4"], metric_order
        panel.locator("th", has_text="metric").click()  # descending: running ones by latest
        expect(panel.locator("tbody").first).to_have_attribute("data-trial", "i=6")

        panel.locator('tbody[data-trial="i=5"] td').first.click()
        logs = panel.locator(".hops-logtext")
        expect(logs).to_contain_text("hello from trial 5", timeout=20_000)
        expect(logs).to_contain_text("still running, second 3", timeout=20_000)  # live tail
        panel.locator(".hops-stream", has_text="stderr").click()
        expect(panel.locator(".hops-logstate")).to_be_visible()
        panel.locator(".hops-stream", has_text="stdout").click()
        expect(logs).to_contain_text("hello from trial 5", timeout=20_000)
        cell.screenshot(path=str(ARTIFACTS / "live.png"))

        panel.locator(".hops-stop").click()
        expect(panel.locator(".hops-stop")).to_have_text("stopping…")
        final = cell.locator(".hops-experiment")
        expect(final).to_be_visible(timeout=60_000)  # the static output replaced the widget
        expect(final).to_contain_text("KILLED")
        expect(final).to_contain_text("stopped")
        expect(final.locator('tbody[data-trial="i=4"] td').first).to_contain_text("★")
        expect(cell.locator(".js-plotly-plot").first).to_be_visible(timeout=30_000)
        cell.screenshot(path=str(ARTIFACTS / "final.png"))
        browser.close()
