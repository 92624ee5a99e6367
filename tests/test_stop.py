"""Stopping from anywhere: a stop request written through the records reaches the driver that
runs the experiment (this process, another kernel, a script), which kills the running trials,
lists those that never started, and ends with one line instead of a traceback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import pytest

from hops import experiment
from hops_jupyter.core.experiment import records


def sleeper(x):
    import time

    print(f"trial {x} starts")
    time.sleep(0.2 if x < 2 else 60)
    return float(x)


def _newest(timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = records.list_experiments()
        if found:
            return found[0].id
        time.sleep(0.05)
    raise AssertionError("no experiment appeared")


def _until(predicate, timeout: float = 30, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"{what} never held")


def test_stop_request_kills_running_lists_not_started_and_returns(capsys):
    out: dict = {}

    def run() -> None:
        out["result"] = experiment.grid_search(sleeper, {"x": [0, 1, 2, 3, 4, 5, 6]}, workers=2)

    thread = threading.Thread(target=run)
    thread.start()
    exp_id = _newest()
    # Trials 0 and 1 end quickly, 2 and 3 then run for a minute; 4.. wait at the workers.
    _until(lambda: sum(t.status == "RUNNING" for t in experiment.get(exp_id).trials) == 2
           and experiment.get(exp_id).trials_done == 2, what="two finished, two running")  # fmt: skip
    pending = [t for t in experiment.get(exp_id).trials if t.status == "PENDING"]
    assert pending, "queued trials are listed as PENDING while the experiment runs"
    asked = time.monotonic()
    experiment.stop(exp_id)
    thread.join(timeout=20)
    assert not thread.is_alive()
    assert time.monotonic() - asked < 5
    record = experiment.get(exp_id)
    by = {t.params["x"]: t for t in record.trials}
    assert record.status == "KILLED"
    assert {by[0].status, by[1].status} == {"FINISHED"}
    assert by[2].status == by[3].status == "KILLED"
    assert by[2].metric is None
    assert record.trials_done == 2 and record.trials_killed == 2
    assert record.status_message == "stopped: 2 finished, 2 killed, 3 not started"
    assert len(record.trials) >= 4
    assert all(t.status == "PENDING" for t in record.trials if t.params["x"] > 3)
    result = out["result"]
    assert result.status == "KILLED" and result.best_metric == 1.0
    assert "stopped: 2 finished, 2 killed, 3 not started" in capsys.readouterr().out
    with pytest.raises(records.NotRunning, match="not running"):
        experiment.stop(exp_id)
    with pytest.raises(KeyError, match="Unknown experiment id"):
        experiment.stop("nope")


def test_stop_from_another_process_and_a_resume_after_it(tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(
        textwrap.dedent(
            """
            import time
            from hops import experiment

            def f(x):
                import time
                time.sleep(60 if x == 1 else 0.05)
                return x

            r = experiment.grid_search(f, {"x": [0, 1]}, workers=2)
            print("RESULT", r.status, r.record.status_message)
            """
        )
    )
    driver = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    exp_id = _newest()
    _until(lambda: experiment.get(exp_id).trials_done == 1, what="one trial done")
    experiment.stop(exp_id)  # from this process: the driver is another one
    out, _ = driver.communicate(timeout=30)
    assert "RESULT KILLED stopped: 1 finished, 1 killed, 0 not started" in out, out
    assert "Traceback" not in out
    # A resume does not see the old request: it runs the killed trial again.
    again = experiment.grid_search(lambda x: x, {"x": [0, 1]}, resume=exp_id)
    assert again.status == "FINISHED"
    assert {t.status for t in experiment.get(exp_id).trials} == {"FINISHED"}


def test_keyboard_interrupt_is_one_line(tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(
        textwrap.dedent(
            """
            import os, signal, threading, time
            from hops import experiment

            def f(x):
                import time
                time.sleep(60)

            threading.Timer(3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
            try:
                experiment.grid_search(f, {"x": [0, 1, 2]}, workers=2)
            except KeyboardInterrupt as err:
                import traceback
                print("LINES", len(traceback.format_exception(err)), "|", err)
            """
        )
    )
    out = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60
    ).stdout
    assert "| experiment " in out and "stopped: 0 finished, 2 killed, 1 not started" in out, out
    lines = int(out.split("LINES ")[1].split()[0])
    assert lines < 12, out  # not a traceback through selectors and engine internals
