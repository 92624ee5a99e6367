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
