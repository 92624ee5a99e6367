"""What users see when records, requests and arguments are hostile or careless: records are
files anyone with project access can write, and the REST routes take any URL. Readers (the
records, the server, the widget) must answer every such case with data or a clear error, never a
crash, a hang, an unbounded answer or a file outside the experiment."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest
from jupyter_client.manager import start_new_kernel
from tornado.httpclient import HTTPClientError

from hops import experiment
from hops_jupyter.core.experiment import logs, records
from hops_jupyter.widgets import charts, render
from hops_jupyter.widgets.series import ReportSeries
from hops_jupyter.widgets.view import ExperimentView
from tests.conftest import SERVER_BASE as BASE
from tests.conftest import require_system
from tests.lab import launch_chromium, running_lab

EXP = "20260101T000000000-abcd"


def _folder(hops_home: Path, experiment_id: str = EXP) -> Path:
    return hops_home / "Projects" / "demo" / "Experiments" / experiment_id


def write_record(
    hops_home: Path,
    experiment: Any = None,
    trials: dict[str, Any] | None = None,
    experiment_id: str = EXP,
    fields: dict[str, Any] | None = None,
) -> Path:
    """An experiment folder written by hand: `experiment` (a dict, or raw text; by default a
    small record updated with `fields`) and trial folders `name -> trial.json` (a dict, or raw
    text)."""
    folder = _folder(hops_home, experiment_id)
    folder.mkdir(parents=True, exist_ok=True)
    if experiment is None:
        experiment = {"name": "hand-written", "kind": "grid_search", "function": "f",
                      "direction": "max", "metric_key": None, "search_space": {"x": [1, 2]},
                      "engine": "local", "workers": 1, "status": "FINISHED", **(fields or {})}  # fmt: skip
    text = experiment if isinstance(experiment, str) else json.dumps(experiment)
    (folder / "experiment.json").write_text(text)
    for name, trial in (trials or {}).items():
        (folder / name).mkdir(exist_ok=True)
        text = trial if isinstance(trial, str) else json.dumps(trial)
        (folder / name / "trial.json").write_text(text)
    return folder


def running_owner() -> dict[str, Any]:
    """This process as the driver: readers see the experiment RUNNING."""
    return records.this_owner()


# --- records of the wrong shape ----------------------------------------------------------------

WRONG_TYPES = {
    "name": {"a": 1}, "status": ["FINISHED"], "owner": "me", "pending": ["x=9"],
    "search_space": ["x"], "best_params": [1, 2], "best_trial": 7, "best_metric": "high",
    "trials_done": "3", "trials_total": float("nan"), "trials_failed": None,
    "status_message": {"why": "<b>"}, "options": "o", "started": 5, "unknown_key": {"z": 1},
    "trials": [{"id": "injected"}],
}  # fmt: skip
ODD_TRIALS = {
    "a": {"params": {"x": {"nested": [1, None]}, "y": None, "z": True}, "status": "FINISHED",
          "metric": 2.0, "started": 5, "duration_s": "long", "surplus": [1]},  # no "id"
    "b": {"params": [1, 2], "status": "FAILED", "started": "2020-01-01T00:00:00",
          "error": {"type": ["Value", "Error"], "message": {"m": 1}, "traceback": 12}},
    "c": {"id": "c", "params": {"x": 2}, "status": "EARLY_STOPPED", "metric": 10**400,
          "stopped_step": {"s": 1}},
    "d": {"id": "d", "params": {"x": 3}, "status": "RUNNING", "error": "just text"},
}  # fmt: skip
METRICS_GARBAGE = (
    'not json\n5\n[1, 2]\n"text"\n' + "[" * 50_000 + "\n"
    '{"step": 0, "metric": NaN}\n{"step": 1, "metric": 1.5, "acc": 0.5}\n[3]\n'
)


def test_records_of_the_wrong_types_read_as_text_and_defaults(hops_home):
    """Every field of a hand-edited experiment.json or trial.json that has the wrong type reads
    as text (text fields) or as its default, unknown keys are ignored, and a metrics.jsonl line
    that is not a report is skipped: the list, the record, the summary and the charts show the
    rest."""
    folder = write_record(hops_home, trials=ODD_TRIALS, fields=WRONG_TYPES)
    (folder / "d" / "metrics.jsonl").write_text(METRICS_GARBAGE)
    (folder / "a" / "metrics.jsonl").write_text(METRICS_GARBAGE)

    assert experiment.list().id.tolist() == [EXP]
    record = experiment.get(EXP)
    assert (record.name, record.status, record.owner) == ("{'a': 1}", "['FINISHED']", None)
    assert record.search_space == {} and record.best_params is None and record.options == {}
    assert (record.trials_done, record.trials_total, record.best_trial) == (0, None, "7")
    trials = {t.id: t for t in record.trials}
    assert set(trials) == {"a", "b", "c", "d"}  # "injected" came from the file: not a trial
    assert trials["a"].duration_s is None and trials["a"].started == "5"
    assert trials["b"].params == {} and trials["b"].error == {
        "type": "['Value', 'Error']", "message": "{'m': 1}", "traceback": "12"}  # fmt: skip
    assert trials["c"].metric is None and trials["c"].stopped_step is None
    assert trials["d"].error is None
    assert trials["d"].latest == {"step": 1, "metric": 1.5, "acc": 0.5}  # the last report

    summary = render.static_summary(record)["text/html"]
    assert "{&#x27;m&#x27;: 1}" in summary  # the error message, as text
    series = ReportSeries()
    series.read(records.experiment_dir(EXP), list(trials))
    assert series.trials["a"].series() == ([1], [1.5])
    for figure in charts.static_figures(record, series):
        charts.figure_bundle(figure)  # plotly accepts every chart
    experiment.compare([EXP])


def test_pending_of_any_shape_lists_only_real_queued_trials(hops_home):
    """`pending` is written by the driver: a list or a string there lists nothing; a dict lists
    its entries as PENDING whatever their params are, ids with slashes or markup included."""
    for pending in (["x=1"], "x=1", 5):
        write_record(
            hops_home, fields={"status": "RUNNING", "owner": running_owner(), "pending": pending}
        )
        assert experiment.get(EXP).trials == []
    odd = {"a/../b": 5, "<i>x</i>": [1], "c": None, "d" * 10_000: {"x": 1}}
    write_record(hops_home, fields={"status": "RUNNING", "owner": running_owner(), "pending": odd})
    record = experiment.get(EXP)
    assert [(t.id, t.status, t.params) for t in record.trials] == [
        ("a/../b", "PENDING", {}), ("<i>x</i>", "PENDING", {}), ("c", "PENDING", {}),
        ("d" * 10_000, "PENDING", {"x": 1})]  # fmt: skip
    table = render.table_html(record, inline=False)
    assert "<i>x</i>" not in table and "&lt;i&gt;x&lt;/i&gt;" in table


def test_unreadable_records_are_skipped_and_named(hops_home):
    """An experiment.json that is no JSON object (a list, nesting deeper than any parser goes)
    is left out of the list, and asking for it names its file; a trial.json that is no object
    leaves that trial out and the others in."""
    write_record(hops_home, "[1, 2]", experiment_id="20260101T000000001-aaaa")
    write_record(hops_home, "[" * 100_000 + "]" * 100_000, experiment_id="20260101T000000002-aaaa")
    deep = '{"id": "deep", "params": {"x": %s}, "status": "FINISHED"}' % ("[" * 500 + "]" * 500)
    write_record(hops_home, trials={"ok": {"params": {"x": 1}, "status": "FINISHED"},
                                    "list": "[1]", "number": "5", "deep": deep})  # fmt: skip
    assert experiment.list().id.tolist() == [EXP]
    for bad in ("20260101T000000001-aaaa", "20260101T000000002-aaaa"):
        with pytest.raises(ValueError, match=f"{bad}/experiment.json is"):
            experiment.get(bad)
    trials = {t.id: t for t in experiment.get(EXP).trials}
    assert set(trials) == {"ok", "deep"} and trials["deep"].params == {}


def _in_thread(fn: Any, timeout: float = 10) -> Any:
    """fn() from a daemon thread; fails the test if it does not return in time."""
    out: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: out.setdefault("v", fn()), daemon=True)
    thread.start()
    thread.join(timeout)
    assert not thread.is_alive(), "blocked"
    return out["v"]


def test_named_pipes_in_records_do_not_block_readers(hops_home):
    """A named pipe where a trial.json, metrics.jsonl or log belongs would block whoever opens
    it, forever: readers skip it (no trial record, no report, an empty log)."""
    folder = write_record(hops_home, trials={"ok": {"params": {"x": 1}, "status": "FINISHED"}})
    (folder / "pipe").mkdir()
    os.mkfifo(folder / "pipe" / "trial.json")
    os.mkfifo(folder / "ok" / "metrics.jsonl")
    os.mkfifo(folder / "ok" / "stdout.log")
    record = _in_thread(lambda: experiment.get(EXP))
    assert [t.id for t in record.trials] == ["ok"] and record.trials[0].latest is None
    log = _in_thread(lambda: logs.read(EXP, "ok", "stdout"))
    assert (log["text"], log["size"]) == ("", 0)
    series = ReportSeries()
    assert _in_thread(lambda: series.read(records.experiment_dir(EXP), ["ok"])) is False


def test_a_result_or_folder_given_as_an_id_is_named_with_its_id(hops_home):
    """experiment.stop/get take ids or results: given a folder (a result's text) or None, the
    error names the value and, for a folder, the id to use."""
    result = experiment.launch(lambda: 1.0)
    with pytest.raises(KeyError, match=f"a folder: its id is '{result.id}'"):
        experiment.stop(str(result))
    with pytest.raises(KeyError, match="Unknown experiment id 'None': ids look like"):
        experiment.stop(None)
    with pytest.raises(records.NotRunning, match="not running .status FINISHED.: nothing"):
        experiment.stop(result.id)


# --- the REST routes ---------------------------------------------------------------------------


async def _get(http_server_client, headers, path: str):
    return await http_server_client.fetch(f"{BASE}{path}", headers=headers, raise_error=False)


async def test_log_route_answers_odd_trial_ids_with_404(
    http_server_client, jp_auth_header, hops_home, tmp_path
):
    """Trial ids that are paths (`..` in any spelling, encoded slashes, absolute paths), hold a
    NUL byte or are too long for a name, and trial folders or logs that are symbolic links out
    of the experiment: 404 with the reason, never a 500 or a byte from outside."""
    folder = write_record(hops_home, trials={"run": {"params": {}, "status": "FINISHED"}})
    (folder / "run" / "stdout.log").write_text("inside\n")
    outside = tmp_path / "outside"
    outside.mkdir()
    for stream in ("stdout", "stderr", "hdfs"):
        (outside / f"{stream}.log").write_text("SECRET")
    (folder / "away").symlink_to(outside)
    (folder / "run" / "stderr.log").symlink_to(outside / "stderr.log")
    (folder / "run" / "hdfs.log").symlink_to(folder / "run" / "stdout.log")  # stays inside
    odd = ["..", "%2e%2e", "%2E%2E", "run%2F..%2F..", "%2Fetc", "a%00b", "run%00", "x" * 10_000,
           "..%2F" + EXP, ".", "%2e", "away"]  # fmt: skip
    for raw in odd:
        for stream in ("stdout", "stderr", "hdfs"):
            path = f"hops/api/experiments/{EXP}/trials/{raw}/logs/{stream}"
            answer = await _get(http_server_client, jp_auth_header, path)
            assert answer.code == 404, (raw[:20], stream, answer.code, answer.body[:200])
            assert b"SECRET" not in answer.body
            message = json.loads(answer.body)["message"]
            assert message.startswith(("Unknown trial", "The ")) and len(message) < 400
    refused = await _get(http_server_client, jp_auth_header,
                         f"hops/api/experiments/{EXP}/trials/run/logs/stderr")  # fmt: skip
    assert refused.code == 404 and "leads out of experiment" in json.loads(refused.body)["message"]
    ok = await _get(http_server_client, jp_auth_header,
                    f"hops/api/experiments/{EXP}/trials/run/logs/hdfs")  # fmt: skip
    assert ok.code == 200 and json.loads(ok.body)["text"] == "inside\n"


async def test_log_offsets_sizes_and_characters(http_server_client, jp_auth_header, hops_home):
    """Offsets that are no whole number of bytes, or negative, are a 400 that says what is
    allowed; one past the end reads nothing; a 100 MB log answers 64 KiB at a time; reads start
    and stop between UTF-8 characters, so polling from next_offset rebuilds the text exactly;
    bytes that are no UTF-8 read as U+FFFD."""
    folder = write_record(hops_home, trials={"run": {"params": {}, "status": "FINISHED"}})
    text = "x" + "é€😀" * 20_000  # 1, 2, 3 and 4-byte characters: no chunk ends on a boundary
    (folder / "run" / "stdout.log").write_text(text)
    with open(folder / "run" / "hdfs.log", "wb") as big:
        big.truncate(100 * 1024 * 1024)
    (folder / "run" / "stderr.log").write_bytes(b"ok \xff\xfe\x00 end")
    logs = f"hops/api/experiments/{EXP}/trials/run/logs"

    async def read(stream: str, offset: str | None = None) -> Any:
        query = "" if offset is None else f"?offset={urllib.parse.quote(offset)}"
        return await _get(http_server_client, jp_auth_header, f"{logs}/{stream}{query}")

    for bad in ("-5", "x", "1e3", "0x10", "NaN", "9" * 5000):
        answer = await read("stdout", bad)
        assert answer.code == 400, bad
        assert "whole number of bytes, 0 or more" in json.loads(answer.body)["message"]
    size = len(text.encode())
    for beyond in (str(size), str(size + 1), str(2**70)):
        data = json.loads((await read("stdout", beyond)).body)
        assert (data["text"], data["offset"], data["next_offset"]) == ("", size, size)

    for offset in (None, "0"):
        answer = await read("hdfs", offset)
        assert answer.code == 200 and len(answer.body) < 512 * 1024  # 64 KiB, JSON-escaped
        assert json.loads(answer.body)["size"] == 100 * 1024 * 1024

    pieces, offset = [], "0"
    while True:
        data = json.loads((await read("stdout", offset)).body)
        assert "\ufffd" not in data["text"]
        if not data["text"]:
            break
        pieces.append(data["text"])
        offset = str(data["next_offset"])
    assert "".join(pieces) == text and len(pieces) > 2
    tail = json.loads((await read("stdout")).body)
    assert "\ufffd" not in tail["text"] and text.endswith(tail["text"])
    mid = json.loads((await read("stdout", "2")).body)  # inside "é": starts at the next one
    assert mid["offset"] == 3 and mid["text"].startswith("€😀")

    odd = json.loads((await read("stderr")).body)
    assert odd["text"] == "ok \ufffd\ufffd\x00 end"


async def test_stop_of_an_experiment_whose_driver_died_is_409_and_writes_nothing(
    jp_fetch, hops_home
):
    from tests.test_guarantees import _dead_owner_record

    experiment_id = _dead_owner_record(hops_home)
    folder = _folder(hops_home, experiment_id)
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    with pytest.raises(HTTPClientError) as refused:
        await jp_fetch("hops", "api", "experiments", experiment_id, "stop", method="POST",
                       body="")  # fmt: skip
    assert refused.value.code == 409
    message = json.loads(refused.value.response.body)["message"]
    assert message == (
        f"Experiment {experiment_id} is not running (status KILLED: driver lost): nothing to stop"
    )
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before


def _cookies(response) -> dict[str, str]:
    return dict(c.split(";", 1)[0].split("=", 1) for c in response.headers.get_list("Set-Cookie"))


async def test_cookie_posts_need_the_xsrf_token_and_concurrent_stops_agree(
    http_server_client, jp_serverapp, jp_fetch, hops_home
):
    """A browser session (a login cookie, no token) cannot stop an experiment without the XSRF
    token, from its own origin or any other; with it, it can. Ten stops at once all succeed
    and leave one well-formed stop request."""
    folder = write_record(hops_home, fields={"status": "RUNNING", "owner": running_owner()})
    form = await http_server_client.fetch(f"{BASE}login", raise_error=False)
    jar = _cookies(form)
    login = await http_server_client.fetch(
        f"{BASE}login", method="POST", follow_redirects=False, raise_error=False,
        body=urllib.parse.urlencode({"password": jp_serverapp.identity_provider.token,
                                     "_xsrf": jar["_xsrf"]}),
        headers={"Cookie": f"_xsrf={jar['_xsrf']}"},
    )  # fmt: skip
    assert login.code == 302
    jar.update(_cookies(login))
    cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
    host = f"127.0.0.1:{http_server_client.get_http_port()}"

    async def stop(**headers: str):
        return await http_server_client.fetch(
            f"{BASE}hops/api/experiments/{EXP}/stop", method="POST", body="", raise_error=False,
            headers={"Cookie": cookie, "Host": host, **headers},
        )  # fmt: skip

    for headers in ({}, {"Origin": f"http://{host}"}, {"Origin": "http://evil.example"},
                    {"X-XSRFToken": jar["_xsrf"], "Origin": "http://evil.example"}):  # fmt: skip
        answer = await stop(**headers)
        assert answer.code in (403, 404), (headers, answer.code)
        assert not (folder / records.STOP_FILE).exists()
    assert (await stop(**{"X-XSRFToken": jar["_xsrf"], "Origin": f"http://{host}"})).code == 202
    (folder / records.STOP_FILE).unlink()

    answers = await asyncio.gather(*[
        jp_fetch("hops", "api", "experiments", EXP, "stop", method="POST", body="")
        for _ in range(10)
    ])  # fmt: skip
    assert [a.code for a in answers] == [202] * 10
    assert set(json.loads((folder / records.STOP_FILE).read_text())) == {"requested", "by"}
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []  # no temp files


async def test_server_answers_records_of_the_wrong_types(jp_fetch, http_server_client,
                                                         jp_auth_header, hops_home):  # fmt: skip
    """The panel renders what the API answers: every field has the type the panel expects (an
    object where text belongs would stop React), and an unreadable record says why."""
    folder = write_record(hops_home, trials=ODD_TRIALS, fields=WRONG_TYPES)
    (folder / "d" / "metrics.jsonl").write_text(METRICS_GARBAGE)
    write_record(hops_home, "[1]", experiment_id="20260101T000000001-aaaa")
    listed = json.loads((await jp_fetch("hops", "api", "experiments")).body)
    assert [e["id"] for e in listed] == [EXP]
    one = json.loads((await jp_fetch("hops", "api", "experiments", EXP)).body)
    for key in ("name", "status", "kind", "started", "best_trial", "status_message"):
        assert isinstance(one[key], str), key
    trials = {t["id"]: t for t in one["trials"]}
    for trial in trials.values():
        assert isinstance(trial["params"], dict) and isinstance(trial["status"], str)
        assert trial["duration_s"] is None or isinstance(trial["duration_s"], (int, float))
        assert all(isinstance(v, str) for v in (trial["error"] or {}).values())
    assert trials["d"]["latest"] == {"step": 1, "metric": 1.5, "acc": 0.5}
    broken = await _get(http_server_client, jp_auth_header,
                        "hops/api/experiments/20260101T000000001-aaaa")  # fmt: skip
    assert broken.code == 500
    assert "experiment.json is a JSON list, not a record" in json.loads(broken.body)["message"]


# --- the notebook widget, in a real kernel -----------------------------------------------------


def _run(kc: Any, code: str, timeout: float = 120) -> list[dict[str, Any]]:
    """Run code in the kernel; its display outputs, and any error as a failure."""
    msg_id = kc.execute(code)
    outputs = []
    while True:
        msg = kc.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, content = msg["msg_type"], msg["content"]
        if kind == "error":
            pytest.fail("\n".join(content["traceback"]))
        if kind in ("display_data", "update_display_data", "execute_result"):
            outputs.append(content["data"])
        if kind == "status" and content["execution_state"] == "idle":
            return outputs


def test_widget_shows_records_of_the_wrong_types_in_a_kernel(hops_home):
    """In a kernel, experiment.show() of a hand-edited record (wrong types, garbage metrics,
    NaN/inf metrics) shows its summary with the error as text; the live view builds too."""
    trials = {**ODD_TRIALS,
              "n": {"params": {"x": 1}, "status": "FINISHED", "metric": float("nan")},
              "i": {"params": {"x": 2}, "status": "FINISHED", "metric": float("inf")}}  # fmt: skip
    folder = write_record(hops_home, trials=trials, fields=WRONG_TYPES)
    (folder / "d" / "metrics.jsonl").write_text(METRICS_GARBAGE)
    km, kc = start_new_kernel(kernel_name="python3")
    try:
        shown = _run(kc, f"from hops import experiment; experiment.show({EXP!r})")
        html = shown[0]["text/html"]
        assert "{&#x27;m&#x27;: 1}" in html and "FAILED" in html
        (view,) = _run(kc, f"from hops_jupyter.widgets.view import ExperimentView\n"
                           f"v = ExperimentView({EXP!r}); v.refresh(force=True); v")  # fmt: skip
        assert "application/vnd.jupyter.widget-view+json" in view
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    assert isinstance(ExperimentView(EXP).panel.table_html, str)


# --- in the browser: the side panel, saved outputs and both log viewers ------------------------

LAB_TOKEN = "hostile-test-token"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "hostile"
EVIL_NAME = '<img src=x onerror="window.__pwned = 1">'
LIVE_VIEW = f"""from hops_jupyter.widgets.view import ExperimentView
view = ExperimentView({EXP!r}); view.display(); view.follow()"""


class ChattyLog:
    """A trial log growing at `rate` bytes a second from a thread, numbered line by line, that
    remembers how many lines it had written when."""

    def __init__(self, path: Path, rate: int = 500_000) -> None:
        self.path, self.rate = path, rate
        self.written: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._write, daemon=True)

    def _write(self) -> None:
        line = 0
        per_tick = self.rate // 10 // 105
        with open(self.path, "a") as log:
            while not self._stop.wait(0.1):
                log.write(
                    "".join(f"line {n:08d} {'.' * 90}\n" for n in range(line, line + per_tick))
                )
                log.flush()
                line += per_tick
                self.written.append((time.monotonic(), line))

    def lines_at(self, when: float) -> int:
        """How many lines were written by `when` (time.monotonic())."""
        return max([n for t, n in self.written if t <= when], default=0)

    def __enter__(self) -> ChattyLog:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join(5)


def _assert_follows(read_text: Any, log: ChattyLog, what: str) -> None:
    """The viewer shows lines written in the last few seconds (not a backlog it reads at
    64 KiB a second)."""
    time.sleep(6)
    deadline = time.monotonic() + 15
    while True:
        shown = [int(n) for n in re.findall(r"line (\d{8})", read_text())]
        recent = log.lines_at(time.monotonic() - 4)
        if shown and max(shown) >= recent:
            return
        assert time.monotonic() < deadline, f"{what} shows line {max(shown, default=None)}, " \
            f"{log.lines_at(time.monotonic())} written"  # fmt: skip
        time.sleep(0.5)


@pytest.fixture
def hostile_lab(tmp_path, hops_home):
    """JupyterLab with a RUNNING hostile experiment (its driver: a sleeping process) and two
    notebooks: saved TensorBoard outputs written by someone else, and a live view."""
    require_system("/usr/bin/chromium")
    driver = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    owner = {**records.this_owner(), "pid": driver.pid,
             "started": psutil.Process(driver.pid).create_time()}  # fmt: skip
    trials = {
        "run": {"params": {"x": {"a": [1]}}, "status": "RUNNING", "started": "2020-01-01T00:00:00"},
        "b": {"params": {"x": 2}, "status": "FAILED", "started": "2020-01-01T00:00:01",
              "error": {"type": ["Value", "Error"], "message": {"m": 1}, "traceback": 12}},
    }  # fmt: skip
    fields = {"name": EVIL_NAME, "status": "RUNNING", "owner": owner, "trials_total": 3,
              "search_space": {"x": [1, 2]}, "pending": {"<b>q</b>": {"x": 3}}}  # fmt: skip
    folder = write_record(hops_home, trials=trials, fields=fields)
    root = tmp_path / "notebooks"
    root.mkdir()
    (root / "evil.html").write_text("<script>parent.window.__pwned = 2</script>")
    mime = "application/vnd.hops.tensorboard+json"
    saved = [
        {"output_type": "display_data", "metadata": {}, "data": {mime: data, "text/plain": "tb"}}
        for data in ({"experiment_id": EXP, "path": "../../files/evil.html", "height": 10**9},
                     {"experiment_id": "../../api/contents", "path": "../../api/contents"})
    ]  # fmt: skip
    for name, source, outputs in (("saved", "%tensorboard", saved), ("live", LIVE_VIEW, [])):
        cell = {"id": name, "cell_type": "code", "metadata": {}, "source": source,
                "outputs": outputs, "execution_count": None}  # fmt: skip
        (root / f"{name}.ipynb").write_text(json.dumps({
            "cells": [cell], "nbformat": 4, "nbformat_minor": 5,
            "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                        "language": "python"}}}))  # fmt: skip
    try:
        with running_lab(tmp_path, root, BASE, LAB_TOKEN) as lab:
            yield lab.url, folder
    finally:
        driver.kill()
        driver.wait()


@pytest.mark.browser
def test_hostile_records_and_outputs_in_the_browser(hostile_lab):
    """In JupyterLab: a saved TensorBoard output frames only its experiment's proxy (whatever
    path it carries), and one with a bad id says so; the side panel shows a hostile record's
    values as text; both log viewers keep up with a trial writing 500 KB a second."""
    from playwright.sync_api import expect, sync_playwright

    lab, folder = hostile_lab
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        proxied: list[str] = []

        def no_tensorboard(route: Any) -> None:
            proxied.append(route.request.url)  # no TensorBoard started for this test
            route.abort()

        page.route("**/hops/tensorboard/**", no_tensorboard)
        try:
            page.goto(f"{lab}lab/tree/saved.ipynb?token={LAB_TOKEN}")
            outputs = page.locator(".jp-NotebookPanel:visible .hops-TensorBoardOutput")
            expect(outputs).to_have_count(2, timeout=90_000)
            expect(outputs.nth(1)).to_contain_text("not a TensorBoard output", timeout=30_000)
            expect(outputs.nth(1).locator("iframe, button")).to_have_count(0)
            outputs.nth(0).locator(".hops-show-tensorboard").click()
            frame = outputs.nth(0).locator("iframe")
            expect(frame).to_have_attribute(
                "src", re.compile(f"^[^?#]*{BASE}hops/tensorboard/{EXP}/$")
            )
            assert frame.evaluate("f => f.style.height") == "4000px"

            page.locator('.jp-SideBar [data-id="hops-experiments-panel"]').click()
            row = page.locator(f'.hops-Experiment[data-experiment-id="{EXP}"]')
            expect(row.locator(".hops-Experiment-name")).to_have_text(EVIL_NAME, timeout=30_000)
            row.locator(".hops-Experiment-title").click()
            expect(row.locator(".hops-Trial")).to_have_count(3, timeout=20_000)
            expect(
                row.locator('.hops-Trial[data-trial-id="b"] .hops-Trial-errorMessage')
            ).to_have_text("['Value', 'Error']: {'m': 1}")
            expect(row.locator('.hops-Trial[data-trial-id="run"] .hops-Trial-params')).to_have_text(
                'x={"a":[1]}'
            )
            expect(row.locator('.hops-Trial[data-trial-id="<b>q</b>"]')).to_have_count(1)

            with ChattyLog(folder / "run" / "stdout.log") as chatty:
                row.locator('.hops-Trial[data-trial-id="run"] .hops-open-log').click()
                text = page.locator(".hops-LogView:visible .hops-LogView-text")
                expect(text).to_contain_text(re.compile(r"line \d{8}"), timeout=30_000)
                _assert_follows(lambda: text.evaluate("t => t.textContent.slice(-3000)"),
                                chatty, "the log tab")  # fmt: skip

                page.goto(f"{lab}lab/tree/live.ipynb?reset&token={LAB_TOKEN}")  # only it open
                expect(page.get_by_text(re.compile(r"\| Idle")).first).to_be_visible(
                    timeout=120_000
                )
                cell = page.locator(".jp-NotebookPanel:visible .jp-Cell").first
                for _ in range(5):  # a key pressed while the kernel connects runs nothing
                    cell.locator(".cm-content").click()
                    page.keyboard.press("Shift+Enter")
                    prompt = cell.locator(".jp-InputPrompt")
                    try:
                        expect(prompt).to_have_text(re.compile(r"\[(\*|\d+)\]"), timeout=10_000)
                        break
                    except AssertionError:
                        continue
                panel = cell.locator(".hops-panel")
                expect(panel.locator('tbody[data-trial="run"]')).to_be_visible(timeout=120_000)
                expect(cell.locator(".jp-OutputArea")).to_contain_text(EVIL_NAME)
                panel.locator('tbody[data-trial="run"] td').first.click()
                logs = panel.locator(".hops-logtext")
                expect(logs).to_contain_text(re.compile(r"line \d{8}"), timeout=30_000)
                _assert_follows(lambda: logs.evaluate("t => t.textContent.slice(-3000)"),
                                chatty, "the widget's log viewer")  # fmt: skip
            assert page.evaluate("window.__pwned") is None
            assert all(f"/hops/tensorboard/{EXP}/" in url for url in proxied), proxied
        except Exception:
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "failure.png"))
            raise
        finally:
            browser.close()


def test_stop_get_and_compare_take_results_and_refuse_odd_input(hops_home):
    import pandas as pd

    from hops import experiment

    result = experiment.launch(lambda: 1.0)
    assert experiment.get(result).id == result.id
    with pytest.raises(records.NotRunning, match="not running"):
        experiment.stop(result)
    table = experiment.compare([result, result.id])
    assert isinstance(table, pd.DataFrame) and list(table.index) == [result.id]
    for bad in (None, 5):
        with pytest.raises(
            TypeError, match=f"compare\\(\\) takes experiment ids or results.*{bad}"
        ):
            experiment.compare(bad)
    with pytest.raises(KeyError, match="Unknown experiment id"):
        experiment.compare(["nope"])
