"""A plotly FigureWidget kept in step with successive charts, sending only what changed.

Each refresh builds the chart afresh from the records (charts.py, plain dicts); sending it whole
would cost a full re-plot per update. Here a trace is matched by the trial it draws (its `meta`)
or its position, and only the properties whose JSON differs from what was last sent travel, in
one batched message; plotly validates only those.
"""

from __future__ import annotations

import json
from typing import Any

import plotly.graph_objects as go


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _key(index: int, trace: dict[str, Any]) -> str:
    """A trace's identity: its trial (`meta`), else its position (FigureWidget gives every
    trace a uid of its own, so uids cannot say)."""
    meta = trace.get("meta")
    return meta if isinstance(meta, str) else f"#{index}"


def _props(trace: dict[str, Any]) -> dict[str, str]:
    return {name: _json(value) for name, value in trace.items()}


class LiveFigure:
    """A FigureWidget showing the latest of the charts given to `update`."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.widget = go.FigureWidget(spec)
        self._remember(spec)

    def _remember(self, spec: dict[str, Any]) -> None:
        self._traces = {_key(i, t): _props(t) for i, t in enumerate(spec["data"])}
        self._order = [_key(i, t) for i, t in enumerate(spec["data"])]
        self._layout = _json(spec["layout"])

    def update(self, spec: dict[str, Any]) -> None:
        """Send the difference between what the widget shows and `spec`."""
        new = [(_key(i, t), t) for i, t in enumerate(spec["data"])]
        if set(self._traces) - {k for k, _ in new}:  # a trace went away: start over
            self._replace(spec)
            return
        added = [(k, t) for k, t in new if k not in self._traces]
        position = {key: i for i, key in enumerate(self._order)}
        with self.widget.batch_update():
            for key, trace in new:
                sent = self._traces.get(key)
                if sent is None:
                    continue
                props = _props(trace)
                shown = self.widget.data[position[key]]
                for name, text in props.items():
                    if sent.get(name) != text and name != "type":
                        shown[name] = trace[name]
                self._traces[key] = props
            layout = _json(spec["layout"])
            if layout != self._layout:
                self.widget.update_layout(spec["layout"])
                self._layout = layout
        if added:
            self.widget.add_traces([t for _, t in added])
            for key, trace in added:
                self._order.append(key)
                self._traces[key] = _props(trace)

    def _replace(self, spec: dict[str, Any]) -> None:
        with self.widget.batch_update():
            self.widget.data = ()
            self.widget.update_layout(spec["layout"])
        self.widget.add_traces(spec["data"])
        self._remember(spec)
