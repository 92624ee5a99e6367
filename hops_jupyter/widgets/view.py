"""The live view of an experiment: progress, trial table, best parameters, plotly charts.

It reads the experiment's records from the project filesystem (never the runner's memory), so
it follows local and Spark trials alike, and can be attached to any experiment by id. Updates
are throttled: tables at most once per `interval`, charts once per `figure_interval`, and a
widget is only sent when its content changed, which bounds comm traffic whatever the trial
count. When the experiment ends, the view is replaced by static outputs that a reopened
notebook shows without a kernel.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import ipywidgets as widgets
import plotly.graph_objects as go
from IPython.display import display

from hops_jupyter.core.experiment import records
from hops_jupyter.core.experiment.records import ExperimentRecord
from hops_jupyter.widgets import render


class Slots:
    """Display slots made in the calling cell: updates from any thread land there (ipykernel 7
    routes a thread's own output elsewhere, display updates by id go where the slot is)."""

    def __init__(self, main: Any, figures: list[Any]) -> None:
        self.main, self.figures = main, figures

    @classmethod
    def create(cls) -> Slots:
        blank = {"text/plain": ""}
        return cls(
            display(blank, raw=True, display_id=True),
            [display(blank, raw=True, display_id=True) for _ in range(2)],
        )


class ExperimentView:
    """A live, throttled widget for one experiment."""

    def __init__(
        self, experiment_id: str, interval: float = 1.5, figure_interval: float = 5.0
    ) -> None:
        self.experiment_id = experiment_id
        self.location = records.experiment_dir(experiment_id)
        self.interval = interval
        self.figure_interval = figure_interval
        self.record: ExperimentRecord | None = None
        self.series: dict[str, list[tuple[float, float]]] = {}
        self._offsets: dict[str, int] = {}
        record = self._read()
        done, total = render.progress(record)
        # Widgets are born with their first state: it travels in comm_open, not in updates.
        self.header = widgets.HTML(render.header_html(record))
        self.bar = widgets.IntProgress(
            value=min(done, total), min=0, max=total, style={"description_width": "initial"},
            description=f"{done}/{total} trials, {record.trials_failed} failed",
        )  # fmt: skip
        self.best = widgets.HTML(render.best_html(record))
        self.table = widgets.HTML(render.table_html(record))
        self.curves = go.FigureWidget(
            data=render.curve_traces(self.series), layout=render.figure_layout("metric per trial")
        )
        self.parcoords: go.FigureWidget | None = None
        self.box = widgets.VBox([self.header, self.bar, self.best, self.table, self.curves])
        self._last = self._last_figure = time.monotonic()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.cpu_seconds = 0.0  # CPU spent reading records and updating widgets

    # -- reading ----------------------------------------------------------------------------

    def _read(self) -> ExperimentRecord:
        record = records.read_experiment(self.location)
        record.id = self.experiment_id  # the folder's name, not whatever the file says
        for trial in record.trials:
            lines, self._offsets[trial.id] = records.read_metrics(
                self.location.child(trial.id), self._offsets.get(trial.id, 0)
            )
            points = self.series.setdefault(trial.id, [])
            for line in lines:
                if isinstance(line.get("metric"), (int, float)):
                    points.append((line.get("step", len(points)), line["metric"]))
        self.record = record
        return record

    # -- updating ---------------------------------------------------------------------------

    @staticmethod
    def _set(widget: widgets.Widget, name: str, value: Any) -> None:
        if getattr(widget, name) != value:
            setattr(widget, name, value)

    def refresh(self, force: bool = False) -> bool:
        """Re-read the records and update what changed; skipped when called too often."""
        with self._lock:
            now = time.monotonic()
            if not force and now - self._last < self.interval:
                return False
            started = time.thread_time()
            try:
                self._refresh(now, force)
            finally:
                self.cpu_seconds += time.thread_time() - started
            return True

    def _refresh(self, now: float, force: bool) -> None:
        """One refresh: re-read the records, send what changed."""
        self._last = now
        record = self._read()
        done, total = render.progress(record)
        self._set(self.header, "value", render.header_html(record))
        with self.bar.hold_sync():  # one message for the bar and its label
            self._set(self.bar, "max", total)
            self._set(self.bar, "value", min(done, total))
            self._set(
                self.bar, "description", f"{done}/{total} trials, {record.trials_failed} failed"
            )
        self._set(self.best, "value", render.best_html(record))
        self._set(self.table, "value", render.table_html(record))
        if force or now - self._last_figure >= self.figure_interval:
            self._last_figure = now
            self._update_figures(record)

    def _update_figures(self, record: ExperimentRecord) -> None:
        traces = render.curve_traces(self.series)
        existing = {trace.name: trace for trace in self.curves.data}
        with self.curves.batch_update():
            for trace in traces:
                if trace.name in existing and len(existing[trace.name].x or ()) != len(trace.x):
                    existing[trace.name].x, existing[trace.name].y = trace.x, trace.y
        new = [t for t in traces if t.name not in existing]
        if new:
            self.curves.add_traces(new)
        parcoords = render.parcoords_trace(record)
        if parcoords is None:
            return
        if self.parcoords is None:
            layout = render.figure_layout("hyperparameters vs metric")
            self.parcoords = go.FigureWidget(data=[parcoords], layout=layout)
            self.box.children = (*self.box.children, self.parcoords)
        elif len(self.parcoords.data[0].dimensions[0].values) != len(
            parcoords.dimensions[0].values
        ):
            with self.parcoords.batch_update():
                self.parcoords.data[0].dimensions = parcoords.dimensions
                self.parcoords.data[0].line = parcoords.line

    # -- showing ----------------------------------------------------------------------------

    def display(self, slots: Slots | None = None) -> None:
        """Show the live widget in `slots` (created earlier in the right cell), else here."""
        self.slots = slots or Slots.create()
        self.slots.main.update(self.box)

    def finish(self) -> None:
        """Replace the widget by outputs that need no kernel to read. The final state comes
        from the records; the live widget is not updated one last time only to be removed."""
        self.stop()
        with self._lock:
            record = self._read()
        slots = getattr(self, "slots", None) or Slots.create()
        slots.main.update(render.static_summary(record), raw=True)
        figures = render.static_figures(record, self.series)
        for handle, figure in zip(slots.figures, figures, strict=False):
            handle.update(figure)
        live = (self.header, self.bar, self.best, self.table, self.curves, self.parcoords, self.box)
        for widget in live:
            if widget is not None:
                widget.close()  # the static outputs replace it: free the kernel-side state

    def follow(self, poll: float = 0.2, finish: bool = True) -> threading.Thread:
        """Keep the view live from a background thread until the experiment ends."""

        def loop() -> None:
            while not self._stopping.is_set():
                try:
                    self.refresh()
                except (OSError, ValueError):
                    pass  # a record being replaced this instant: next round reads it
                if self.record is not None and self.record.status != records.RUNNING:
                    break
                self._stopping.wait(poll)
            if finish and not self._stopping.is_set():
                self.finish()

        self._stopping.clear()
        self._thread = threading.Thread(
            target=loop, name=f"hops-view-{self.experiment_id}", daemon=True
        )
        self._thread.start()
        return self._thread

    def stop(self) -> None:
        """Stop following (from another thread: waits for the follower to end)."""
        self._stopping.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.box._repr_mimebundle_(**kwargs)


def newest_experiment_id() -> str:
    """The newest experiment, by its folder's name (ids sort by start time); the id written
    inside experiment.json is not trusted."""
    import pyarrow.fs as pafs

    root = records.experiments_dir()
    found = []
    if root.isdir():
        for info in root.fs.get_file_info(pafs.FileSelector(root.path)):
            name = info.base_name
            if info.type == pafs.FileType.Directory and records.is_experiment_id(name):
                if root.child(name).child(records.EXPERIMENT_FILE).isfile():
                    found.append(name)
    if not found:
        raise KeyError("The project has no experiments yet")
    return max(found)


def show(experiment_id: str | None = None) -> ExperimentView | None:
    """Show an experiment (default: the newest): live while it runs, static once it ended."""
    if experiment_id is None:
        experiment_id = newest_experiment_id()
    view = ExperimentView(str(experiment_id))
    record = view.record
    assert record is not None
    if record.status == records.RUNNING:
        view.display()
        view.follow()
        return view
    display(render.static_summary(record), raw=True)
    for figure in render.static_figures(record, view.series):
        display(figure)
    return None
