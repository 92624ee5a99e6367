"""The live trial panel: the trial table, a stop button and a trial log viewer, run in the browser.

While a foreground `%%experiment` runs, the kernel is busy with the cell and handles no message
from the browser until it ends, so whatever the user does during the run (sorting the table,
reading a trial's logs, stopping the experiment) is done by the panel's script (panel.js), which
calls the Jupyter server's hops REST api itself. The kernel only pushes the table and the
experiment's status, throttled by the view.
"""

from __future__ import annotations

import os
import pathlib

import anywidget
import traitlets

from hops_jupyter.widgets.table import table_css

_HERE = pathlib.Path(__file__).parent


def server_base_url() -> str:
    """The base URL of the Jupyter server that started this kernel (its server extension
    exports it; "/" otherwise). The script prefers the page's own when it has one."""
    base = os.environ.get("HOPS_SERVER_BASE_URL", "/") or "/"
    return base if base.endswith("/") else base + "/"


class TrialsPanel(anywidget.AnyWidget):
    """Sortable trial table, stop button and log viewer of one experiment."""

    _esm = _HERE / "panel.js"
    _css = (_HERE / "panel.css").read_text() + table_css()  # the table's classes (table.py)
    experiment_id = traitlets.Unicode("").tag(sync=True)
    base_url = traitlets.Unicode("/").tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)  # the experiment's, e.g. RUNNING, KILLED
    table_html = traitlets.Unicode("").tag(sync=True)
