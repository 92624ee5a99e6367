"""The TensorBoard manager with real TensorBoard processes: start, reuse, registry, stop,
no orphans when the owner dies, idle timeout, and the seed's tensorboard API."""

import json
import os
import signal
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from hops import experiment, tensorboard


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def gone(pid: int) -> bool:
    """Exited (a zombie not yet reaped by its parent counts as exited)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.fixture
def finished_experiment(hops_home):
    return experiment.launch(lambda: 1.0, name="for-tensorboard")


def test_start_reuse_find_stop(finished_experiment):
    exp_id = finished_experiment.id
    first = tensorboard.start(exp_id)
    assert first.outcome == tensorboard.LAUNCHED, first.message
    info = first.info
    assert info.port > 0 and info.owner_pid == os.getpid()
    assert info.logdir.endswith(f"/Experiments/{exp_id}")
    entry = tensorboard.registry_dir() / f"{exp_id}.json"
    assert json.loads(entry.read_text())["port"] == info.port
    with urllib.request.urlopen(f"{info.url}data/logdir", timeout=5) as resp:
        assert json.loads(resp.read())["logdir"] == info.logdir
    again = tensorboard.start(exp_id)
    assert again.outcome == tensorboard.REUSED and again.info.pid == info.pid
    assert [i.experiment_id for i in tensorboard.running()] == [exp_id]
    assert tensorboard.stop(exp_id) is True
    assert gone(info.pid)
    assert tensorboard.find(exp_id) is None and not entry.exists()
    assert tensorboard.stop(exp_id) is False


def test_stale_entry_is_cleaned_on_read(hops_home):
    entry = tensorboard.registry_dir() / "20260101T000000000-dead.json"
    entry.write_text(json.dumps({
        "experiment_id": "20260101T000000000-dead", "pid": 2**22 + 7, "port": 1, "logdir": "/x",
        "started": 0, "owner_pid": 1, "idle_timeout": 0, "create_time": 0,
    }))  # fmt: skip
    assert tensorboard.find("20260101T000000000-dead") is None
    assert not entry.exists()


def test_sigkilled_kernel_leaves_no_tensorboard(finished_experiment):
    """A real ipykernel starts the TensorBoard; SIGKILL on the kernel takes the board down too."""
    from jupyter_client.manager import start_new_kernel

    km, kc = start_new_kernel(kernel_name="python3")
    try:
        outputs = []
        code = (
            "from hops_jupyter.core import tensorboard\n"
            f"print(tensorboard.start({finished_experiment.id!r}).info.pid)"
        )
        reply = kc.execute_interactive(
            code, timeout=120,
            output_hook=lambda m: outputs.append(m["content"].get("text", "")),
        )  # fmt: skip
        assert reply["content"]["status"] == "ok", reply
        tb_pid = int("".join(outputs).strip())
        assert not gone(tb_pid)
        assert tensorboard.find(finished_experiment.id).owner_pid == km.provisioner.process.pid
        os.kill(km.provisioner.process.pid, signal.SIGKILL)
        _wait(lambda: gone(tb_pid), 10, "TensorBoard to exit with its kernel")
        assert tensorboard.find(finished_experiment.id) is None
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


def test_idle_timeout_stops_an_unused_tensorboard(finished_experiment):
    result = tensorboard.start(finished_experiment.id, idle_timeout=2)
    pid = result.info.pid
    _wait(lambda: gone(pid), 20, "the idle TensorBoard to exit")
    assert tensorboard.find(finished_experiment.id) is None


def test_experiment_starts_its_tensorboard_and_visualize(hops_home, monkeypatch):
    monkeypatch.setenv("HOPS_TENSORBOARD", "true")

    def train(lr):
        return {"dump": tensorboard.interactive_debugger(), "metric": lr}

    result = experiment.grid_search(train, {"lr": [0.1]})
    info = _wait(lambda: tensorboard.find(result.id), 60, "the experiment's TensorBoard")
    assert info.logdir == str(Path(hops_home) / "Projects/demo/Experiments" / result.id)
    dump = result.best_return["dump"]
    assert dump == f"{info.logdir}/lr=0.1/debugger-v2" and os.path.isdir(dump)
    url = tensorboard.visualize(result)
    assert url == tensorboard.visualize(object(), str(result)) == info.url  # seed's (spark, path)
    tensorboard.stop(result.id)
    with pytest.raises(ValueError, match="not an experiment folder"):
        tensorboard.visualize("Experiments")


def _tensorboard_processes(experiment_id: str) -> list[int]:
    """Watchdog processes serving this experiment (its id is on their command line)."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if (
            "hops_jupyter.core.tensorboard" in cmdline
            and experiment_id in cmdline
            and proc.info["status"] != psutil.STATUS_ZOMBIE
        ):
            found.append(proc.pid)
    return found


def test_concurrent_start_reuses_the_one_being_launched(finished_experiment):
    """An experiment launches its TensorBoard without waiting; a start() right after (the
    proxy, %tensorboard) must wait for that one, not start a second, unregistered one."""
    exp_id = finished_experiment.id
    first = tensorboard.start(exp_id, wait=False)
    assert first.outcome == tensorboard.LAUNCHED
    provisional = tensorboard.find(exp_id, starting=True)
    assert provisional is not None and not provisional.ready  # registered before it serves
    assert tensorboard.find(exp_id) is None  # not running yet: no port to reach
    second = tensorboard.start(exp_id)
    assert second.outcome == tensorboard.REUSED, second.message
    assert second.info.pid == provisional.pid and second.info.ready
    time.sleep(3)  # a second TensorBoard, had one been spawned, would be up by now
    assert _tensorboard_processes(exp_id) == [second.info.pid]
    assert tensorboard.find(exp_id).pid == second.info.pid
    assert tensorboard.healthy(tensorboard.find(exp_id))
    tensorboard.stop(exp_id)
    assert gone(second.info.pid) and _tensorboard_processes(exp_id) == []


def test_start_from_another_process_while_launching(finished_experiment):
    """The same race across processes: the other caller gets the experiment's TensorBoard,
    and when it exits the experiment's one still runs, registered."""
    import subprocess
    import sys

    exp_id = finished_experiment.id
    assert tensorboard.start(exp_id, wait=False).outcome == tensorboard.LAUNCHED
    code = (
        "from hops_jupyter.core import tensorboard\n"
        f"r = tensorboard.start({exp_id!r})\n"
        "print(r.outcome, r.info.pid if r.info else r.message)\n"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           timeout=120, env=os.environ.copy())  # fmt: skip
    assert other.returncode == 0, other.stderr
    outcome, pid = other.stdout.split()
    info = tensorboard.find(exp_id)
    assert info is not None and info.ready, "the experiment's TensorBoard is no longer registered"
    assert (outcome, int(pid)) == (tensorboard.REUSED, info.pid)
    assert info.owner_pid == os.getpid() and tensorboard.healthy(info)
    assert _tensorboard_processes(exp_id) == [info.pid]
    tensorboard.stop(exp_id)
    assert gone(info.pid)


# --- every experiment's TensorBoard is worth opening: scalars and HParams of every trial -----


def _get(info, path: str, body: dict | None = None):
    """A TensorBoard HTTP API call (JSON in, JSON out)."""
    request = urllib.request.Request(
        f"{info.url}{path}",
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as resp:
        return json.loads(resp.read())


_SESSION_GROUPS = {
    "experimentName": "",
    "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"],
    "colParams": [],
    "startIndex": 0,
    "sliceSize": 100,
}

# A scikit-learn-like search over a plain Python function, run in its own interpreter: nothing
# in it (driver, worker template, trials) may import TensorFlow to write TensorBoard events.
_PLAIN_SEARCH = """
import json, sys
from hops import experiment

def train(C, kernel):
    import sys
    from hops import experiment
    acc = 0.0
    for epoch in range(3):
        acc = round(0.5 + C / 10 + epoch / 100 + (kernel == "rbf") / 20, 4)
        experiment.report(acc, step=epoch, loss=round(1 - acc, 4), note="not a number")
    return {"accuracy": acc, "tensorflow": "tensorflow" in sys.modules}

result = experiment.grid_search(train, {"C": [0.5, 1.0], "kernel": ["rbf", "linear"]},
                                metric_key="accuracy", workers=1)
print(json.dumps({"id": result.id, "driver": "tensorflow" in sys.modules,
                  "trials": [t.returned["tensorflow"] for t in result.trials]}))
"""


def test_every_trial_shows_scalars_and_hparams_without_tensorflow(hops_home):
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", _PLAIN_SEARCH], capture_output=True, text=True,
                         timeout=180, env=os.environ.copy())  # fmt: skip
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["driver"] is False and out["trials"] == [False] * 4  # no TensorFlow anywhere
    info = tensorboard.start(out["id"]).info
    try:
        listing = _wait(lambda: _get(info, "data/plugins_listing"), 30, "the plugins listing")
        tags = _wait(lambda: len(_get(info, "data/plugin/scalars/tags")) == 4
                     and _get(info, "data/plugin/scalars/tags"), 30, "scalars of 4 trials")  # fmt: skip
        groups = _wait(lambda: _get(info, "data/plugin/hparams/session_groups",
                                    _SESSION_GROUPS)["sessionGroups"], 30, "HParams sessions")  # fmt: skip
    finally:
        tensorboard.stop(out["id"])
    assert listing["scalars"]["enabled"] is True and listing["hparams"]["enabled"] is True
    run_name = "C=1.0&kernel=rbf"
    assert {"metric", "loss", "final/metric", "final/accuracy"} <= set(tags[run_name])
    assert "note" not in tags[run_name] and "final/tensorflow" not in tags[run_name]
    by_name = {g["name"]: g for g in groups}
    assert set(by_name) == set(tags)
    group = by_name[run_name]
    assert group["hparams"] == {"C": 1.0, "kernel": "rbf"}
    (session,) = group["sessions"]
    assert session["status"] == "STATUS_SUCCESS"
    values = {m["name"]["tag"]: m for m in session["metricValues"]}
    assert values["final/accuracy"]["value"] == pytest.approx(0.67, abs=1e-6)
    assert values["loss"]["value"] == pytest.approx(0.33, abs=1e-6)
    assert values["loss"]["trainingStep"] == 2


def test_failed_trials_are_failed_sessions(hops_home):
    def train(x):
        from hops import experiment

        experiment.report(0.5, step=0)
        if x > 1:
            raise ValueError("diverged")
        return x

    result = experiment.grid_search(train, {"x": [1, 2]}, workers=1)
    info = tensorboard.start(result.id).info
    try:
        groups = _wait(lambda: len(_get(info, "data/plugin/hparams/session_groups",
                                        _SESSION_GROUPS)["sessionGroups"]) == 2
                       and _get(info, "data/plugin/hparams/session_groups",
                                _SESSION_GROUPS)["sessionGroups"], 30, "2 sessions")  # fmt: skip
    finally:
        tensorboard.stop(result.id)
    status = {g["name"]: g["sessions"][0]["status"] for g in groups}
    assert status == {"x=1": "STATUS_SUCCESS", "x=2": "STATUS_FAILURE"}
    failed = {m["name"]["tag"] for g in groups if g["name"] == "x=2"
              for m in g["sessions"][0]["metricValues"]}  # fmt: skip
    assert "final/metric" not in failed  # a failed trial has no final metric


def test_tensorflow_summaries_beside_ours_stay_live(hops_home, monkeypatch):
    """A TensorFlow user's own summaries in tensorboard.logdir() and the reported values, both
    written while the experiment's TensorBoard reads them: every point of both shows."""
    monkeypatch.setenv("HOPS_TENSORBOARD", "true")

    def train():
        import time

        import tensorflow as tf

        from hops import experiment, tensorboard

        writer = tf.summary.create_file_writer(tensorboard.logdir())
        for step in range(3):
            with writer.as_default():
                tf.summary.scalar("tf_accuracy", 0.1 * step, step=step)
            writer.flush()
            experiment.report(0.2 * step, step=step, loss=1 - 0.2 * step)
            time.sleep(2.5)  # TensorBoard reloads every 2 s: it reads both files as they grow
        writer.close()
        return 0.4

    result = experiment.launch(train)
    info = _wait(lambda: tensorboard.find(result.id), 60, "the experiment's TensorBoard")
    try:

        def points(tag: str) -> list[int]:
            query = f"data/plugin/scalars/scalars?run=run&tag={tag}"
            try:
                return [step for _, step, _ in _get(info, query)]
            except urllib.error.HTTPError:
                return []

        for tag in ("tf_accuracy", "metric", "loss"):
            assert _wait(lambda t=tag: points(t) == [0, 1, 2], 30, f"all steps of {tag}")
    finally:
        tensorboard.stop(result.id)


# --- bounded TensorBoards ----------------------------------------------------------------------


def _owned_boards() -> dict[str, int]:
    """Live TensorBoard watchdogs this test process owns: experiment id -> pid."""
    found = {}
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if (
            "hops_jupyter.core.tensorboard" in cmdline
            and len(cmdline) > cmdline.index("hops_jupyter.core.tensorboard") + 3
            and cmdline[cmdline.index("hops_jupyter.core.tensorboard") + 3] == str(os.getpid())
            and proc.info["status"] != psutil.STATUS_ZOMBIE
        ):
            found[cmdline[cmdline.index("hops_jupyter.core.tensorboard") + 1]] = proc.pid
    return found


def test_at_most_three_tensorboards_per_owner_least_recently_used_stop(hops_home, monkeypatch):
    monkeypatch.setenv("HOPS_TENSORBOARD", "true")
    ids = [experiment.launch(lambda: 1.0, name=f"bounded-{i}").id for i in range(6)]
    alive = _owned_boards()
    assert set(alive) == set(ids[3:]), "the three started last run, the others stopped"
    assert {i.experiment_id for i in tensorboard.running(starting=True)} == set(ids[3:])
    reused = tensorboard.start(ids[3])  # used now: ids[4] is the least recently used
    assert reused.outcome == tensorboard.REUSED and reused.info.pid == alive[ids[3]]
    seventh = experiment.launch(lambda: 1.0, name="bounded-6").id
    assert set(_owned_boards()) == {ids[3], ids[5], seventh}
    assert gone(alive[ids[4]]) and tensorboard.find(ids[4]) is None
    for exp_id in (ids[3], ids[5], seventh):
        tensorboard.stop(exp_id)


def test_start_reports_what_it_stopped_to_stay_within_the_limit(hops_home, monkeypatch):
    monkeypatch.setenv("HOPS_TENSORBOARD_MAX", "1")
    first = experiment.launch(lambda: 1.0).id
    second = experiment.launch(lambda: 1.0).id
    assert tensorboard.start(first).stopped == ()
    result = tensorboard.start(second)
    assert result.outcome == tensorboard.LAUNCHED and result.stopped == (first,)
    assert set(_owned_boards()) == {second}
    tensorboard.stop(second)


def test_config_of_the_bounds(hops_home, monkeypatch):
    from hops_jupyter.core import project

    cfg = project.current()
    assert (cfg.tensorboard_max, cfg.tensorboard_ended_idle_timeout) == (3, 120.0)
    monkeypatch.setenv("HOPS_TENSORBOARD_MAX", "5")
    monkeypatch.setenv("HOPS_TENSORBOARD_ENDED_IDLE_S", "30")
    cfg = project.current()
    assert (cfg.tensorboard_max, cfg.tensorboard_ended_idle_timeout) == (5, 30.0)
    monkeypatch.setenv("HOPS_TENSORBOARD_MAX", "many")
    with pytest.raises(ValueError, match="HOPS_TENSORBOARD_MAX"):
        project.current()


def _set_status(experiment_id: str, status: str) -> None:
    from hops_jupyter.core.experiment import records

    path = Path(records.experiment_dir(experiment_id).path) / "experiment.json"
    data = json.loads(path.read_text())
    data["status"] = status
    path.write_text(json.dumps(data))


def test_tensorboard_of_an_ended_experiment_stops_after_the_shorter_idle_time(
    finished_experiment, monkeypatch
):
    monkeypatch.setenv("HOPS_TENSORBOARD_ENDED_IDLE_S", "1")
    exp_id = finished_experiment.id
    _set_status(exp_id, "RUNNING")  # as if it still ran: the long idle timeout applies
    info = tensorboard.start(exp_id).info
    time.sleep(tensorboard.CHECK_EVERY_S + 3)
    assert not gone(info.pid) and tensorboard.find(exp_id) is not None
    _set_status(exp_id, "FINISHED")
    _wait(lambda: gone(info.pid), 20, "the ended experiment's TensorBoard to stop")
    assert tensorboard.find(exp_id) is None


def test_failed_experiment_leaves_no_tensorboard(hops_home, monkeypatch):
    monkeypatch.setenv("HOPS_TENSORBOARD", "true")

    def broken(x):
        raise ValueError("broken")

    with pytest.raises(experiment.ExperimentFailed) as failed:
        experiment.grid_search(broken, {"x": [1, 2]}, name="broken")
    exp_id = failed.value.result.id
    assert tensorboard.find(exp_id, starting=True) is None
    assert _tensorboard_processes(exp_id) == []
    started = tensorboard.start(exp_id)  # asked for: it starts
    assert started.outcome == tensorboard.LAUNCHED
    tensorboard.stop(exp_id)


def test_static_export_shows_a_link_not_a_frame(finished_experiment):
    """nbconvert's HTML export of a `%tensorboard` output: a plain link to the TensorBoard."""
    import nbformat
    from nbconvert import HTMLExporter

    from hops_jupyter.widgets.tensorboard import MIME_TYPE, TensorBoardDisplay

    exp_id = finished_experiment.id
    bundle = TensorBoardDisplay(exp_id)._repr_mimebundle_()
    assert bundle[MIME_TYPE]["name"] == "for-tensorboard"
    assert set(bundle[MIME_TYPE]) == {"experiment_id", "path", "height", "name"}
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("%tensorboard")
    cell.outputs = [nbformat.v4.new_output("display_data", data=bundle)]
    nb.cells = [cell]
    page, _ = HTMLExporter().from_notebook_node(nb)
    assert "<iframe" not in page
    assert f">Open TensorBoard of {exp_id}</a>" in page
    assert f'href="/hops/tensorboard/{exp_id}/"' in page


def test_tensorboard_runs_without_tensorflow_until_a_trial_needs_it(finished_experiment):
    """TensorFlow costs a TensorBoard most of its memory: it is loaded only for what needs it
    (Debugger V2 dumps), in the same process and on the same port."""
    exp_id = finished_experiment.id
    _set_status(exp_id, "RUNNING")  # dumps appear while an experiment runs
    info = tensorboard.start(exp_id).info
    try:
        assert info.with_tensorflow is False
        memory = sum(p.memory_info().rss for p in [psutil.Process(info.pid),
                                                   *psutil.Process(info.pid).children()])  # fmt: skip
        assert memory < 400 * 2**20, f"{memory / 2**20:.0f} MB"
        (Path(info.logdir) / "run" / "debugger-v2").mkdir()
        upgraded = _wait(lambda: (i := tensorboard.find(exp_id)) and i.with_tensorflow and i,
                         30, "TensorBoard with TensorFlow")  # fmt: skip
        assert (upgraded.pid, upgraded.port) == (info.pid, info.port)
        assert tensorboard.healthy(upgraded)
        assert tensorboard.start(exp_id).outcome == tensorboard.REUSED
    finally:
        tensorboard.stop(exp_id)
