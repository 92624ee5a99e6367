"""Widgets: the model state of a 20-trial experiment, and comm throttling in a real kernel."""

import re
import time
from html.parser import HTMLParser
from urllib.parse import quote

from jupyter_client.manager import start_new_kernel

from hops import experiment
from hops_jupyter.widgets.view import ExperimentView


def train(lr, units):
    for step in range(4):
        experiment.report(lr * units * (step + 1), step=step)
    return lr * units


def test_model_state_after_20_trials(hops_home):
    result = experiment.grid_search(train, {"lr": [0.1, 0.2, 0.3, 0.4, 0.5], "units": [1, 2, 3, 4]})
    view = ExperimentView(result.id)
    view.refresh(force=True)
    rows = re.findall(r"<tr[ >]", view.table.value)
    assert len(rows) == 1 + 20  # header + one row per trial
    assert view.table.value.count("FINISHED") == 20
    assert (view.bar.value, view.bar.max) == (20, 20)
    assert view.bar.description == "20/20 trials, 0 failed"
    assert view.best.value == "<b>best</b> 2 with <code>lr=0.5, units=4</code>"
    assert (
        "Open TensorBoard" in view.header.value
        and f"/hops/tensorboard/{result.id}/" in view.header.value
    )
    curves = {trace.name: trace for trace in view.curves.data}
    assert len(curves) == 20
    assert list(curves["lr=0.5&units=4"].y) == [2.0, 4.0, 6.0, 8.0]
    assert list(curves["lr=0.5&units=4"].x) == [0, 1, 2, 3]
    assert view.parcoords is not None and view.parcoords in view.box.children
    dims = view.parcoords.data[0].dimensions
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
    assert "EARLY_STOPPED at step 2" in view.table.value
    assert view.bar.description == "2/2 trials, 0 failed"
    from hops_jupyter.widgets import render

    assert "EARLY_STOPPED at step 2" in render.static_summary(result.record)["text/html"]


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
    `id` does not match its folder."""
    import json

    folder = hops_home / "Projects" / "demo" / "Experiments" / experiment_id
    (folder / "run").mkdir(parents=True)
    record = {
        "id": HOSTILE_ID, "name": "<b>name</b>", "kind": HOSTILE["kind"], "function": "f",
        "direction": "max", "metric_key": None, "search_space": {}, "engine": "local",
        "workers": 1, "status": HOSTILE["status"], "trials_total": 1, "trials_done": 1,
        "url": f"javascript:alert(1)//{HOSTILE_ID}",
    }  # fmt: skip
    (folder / "experiment.json").write_text(json.dumps(record))
    trial = {"id": HOSTILE_ID, "params": {}, "status": HOSTILE["trial_status"],
             "error": {"message": HOSTILE["error"]}}  # fmt: skip
    (folder / "run" / "trial.json").write_text(json.dumps(trial))
    return experiment_id


class _Tags(HTMLParser):
    """Every start tag with its attributes, as a browser would parse them."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text = ""
        self.feed(text)

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data) -> None:
        self.text += data


def assert_inert(markup: str, experiment_id: str) -> None:
    """No element or attribute came from a record, and the link names the folder's id."""
    parsed = _Tags(markup)
    names = {tag for tag, _ in parsed.tags}
    assert names <= {"div", "p", "b", "span", "code", "a", "table", "thead", "tbody", "tr",
                     "th", "td", "i"}, names  # fmt: skip
    for tag, attrs in parsed.tags:
        assert set(attrs) <= {"style", "href", "target", "rel", "class", "title"}, (tag, attrs)
    (href,) = [attrs["href"] for tag, attrs in parsed.tags if tag == "a"]
    assert href == f"/hops/tensorboard/{experiment_id}/"
    for value in HOSTILE.values():  # the values are shown as text
        if value != HOSTILE["error"]:
            assert value in parsed.text, value
    assert experiment_id in parsed.text and HOSTILE_ID not in parsed.text


def test_show_escapes_every_value_from_the_record(hops_home, monkeypatch):
    from hops_jupyter.widgets import render
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
    assert_inert(view.header.value + view.table.value, exp_id)
    title = next(a["title"] for t, a in _Tags(view.table.value).tags if "title" in a)
    assert title == HOSTILE["error"]  # an attribute value, intact and inert
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
