"""Widgets: the model state of a 20-trial experiment, and comm throttling in a real kernel."""

import re
import time

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
