"""The live view of an experiment: header, progress, best trial, trial panel and charts.

It reads the experiment's records from the project filesystem (never the runner's memory), so
it follows local and Spark trials alike, and can be attached to any experiment by id. Updates
are throttled: tables at most once per `interval`, charts once per `figure_interval` and only
when their data changed, and a widget is only sent when its content changed, which bounds comm
traffic whatever the trial count. When the experiment ends, the view is replaced by static
outputs that a reopened notebook shows without a kernel.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import ipywidgets as widgets
from IPython.display import display

from hops_jupyter.core.experiment import records
from hops_jupyter.core.experiment.records import ExperimentRecord
from hops_jupyter.widgets import charts, render
from hops_jupyter.widgets.livefigure import LiveFigure
from hops_jupyter.widgets.panel import TrialsPanel, server_base_url
from hops_jupyter.widgets.series import ReportSeries

FIGURE_SLOTS = 5  # the most charts a final output has (charts.static_figures)


class Slots:
    """Display slots made in the calling cell: updates from any thread land there (ipykernel 7
    routes a thread's own output elsewhere, display updates by id go where the slot is). Only
    raw bundles go in: a plotly figure given to display() would show itself as a new output
    in whatever cell runs then (its _ipython_display_), leaving its slot empty."""

    def __init__(self, main: Any, figures: list[Any]) -> None:
        self.main, self.figures = main, figures

    @classmethod
    def create(cls, figures: int = FIGURE_SLOTS) -> Slots:
        blank = {"text/plain": ""}
        return cls(
            display(blank, raw=True, display_id=True),
            [display(blank, raw=True, display_id=True) for _ in range(figures)],
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
        self.series = ReportSeries()
        self._series_changed = False
        self._figures_of: tuple[Any, ...] | None = None  # what the charts last showed
        self._importance_of = 0  # how many scored trials the importances were computed on
        self.slots: Slots | None = None
        record = self._read()
        # Widgets are born with their first state: it travels in comm_open, not in updates.
        self.header = widgets.HTML(render.header_html(record))
        self.bar = widgets.IntProgress(
            value=min(*render.progress(record)), min=0, max=render.progress(record)[1],
            description=render.progress_text(record), style={"description_width": "initial"},
        )  # fmt: skip
        self.best = widgets.HTML(render.best_html(record))
        self.failures = widgets.HTML(render.failures_html(record))
        self.panel = TrialsPanel(
            experiment_id=experiment_id, base_url=server_base_url(), status=str(record.status),
            table_html=render.table_html(record, inline=False),
        )  # fmt: skip
        self.charts: dict[str, LiveFigure] = {}
        self.box = widgets.VBox([self.header, self.bar, self.best, self.failures, self.panel])
        self._update_figures(record)
        self._last = self._last_figure = time.monotonic()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.cpu_seconds = 0.0  # CPU spent reading records and updating widgets

    # -- reading ----------------------------------------------------------------------------

    def _read(self) -> ExperimentRecord:
        record = records.read_experiment(self.location)
        record.id = self.experiment_id  # the folder's name, not whatever the file says
        started = [t.id for t in record.trials if t.status != records.PENDING]
        self._series_changed |= self.series.read(self.location, started)
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
            self._set(self.bar, "description", render.progress_text(record))
        self._set(self.best, "value", render.best_html(record))
        self._set(self.failures, "value", render.failures_html(record))
        with self.panel.hold_sync():
            self._set(self.panel, "status", str(record.status))
            self._set(self.panel, "table_html", render.table_html(record, inline=False))
        if force or now - self._last_figure >= self.figure_interval:
            self._last_figure = now
            self._update_figures(record)

    def _update_figures(self, record: ExperimentRecord) -> None:
        """Rebuild the charts when a report arrived or a trial changed state since the last
        time; a chart joins the view when it first has something to show."""
        state = tuple((t.id, t.status, t.metric) for t in record.trials)
        if not self._series_changed and state == self._figures_of:
            return
        self._series_changed, self._figures_of = False, state
        added = False
        figures = charts.live_figures(record, self.series)
        scored = charts.scored_count(record)
        if scored >= max(charts.MIN_TRIALS, self._importance_of * charts.IMPORTANCE_GROWTH):
            # A forest fit per refresh would cost the kernel seconds: redone as trials grow.
            self._importance_of = scored
            figures["importance"] = charts.importance_figure(record)
        for name, figure in figures.items():
            if figure is None:
                continue
            if name in self.charts:
                self.charts[name].update(figure)
            else:
                self.charts[name] = LiveFigure(figure)
                added = True
        if added:
            shown = [self.charts[n].widget for n in charts.LIVE if n in self.charts]
            self.box.children = (
                self.header,
                self.bar,
                self.best,
                self.failures,
                self.panel,
                *shown,
            )

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
        slots = self.slots or Slots.create()
        slots.main.update(render.static_summary(record), raw=True)
        figures = charts.static_figures(record, self.series)
        for handle, figure in zip(slots.figures, figures, strict=False):
            handle.update(charts.figure_bundle(figure), raw=True)
        live = [self.header, self.bar, self.best, self.failures, self.panel, self.box]
        for widget in live + [c.widget for c in self.charts.values()]:
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
    experiment_id = str(experiment_id) if experiment_id is not None else newest_experiment_id()
    location = records.experiment_dir(experiment_id)
    record = records.read_experiment(location)
    if record.status == records.RUNNING:
        view = ExperimentView(experiment_id)
        view.display()
        view.follow()
        return view
    record.id = experiment_id  # the folder's name, not whatever the file says
    series = ReportSeries()
    series.read(location, [t.id for t in record.trials])
    display(render.static_summary(record), raw=True)
    for figure in charts.static_figures(record, series):
        display(charts.figure_bundle(figure), raw=True)
    return None
