"""What users see when records, requests and arguments are hostile or careless: records are
files anyone with project access can write, and the REST routes take any URL. Readers (the
records, the server, the widget) must answer every such case with data or a clear error, never a
crash, a hang, an unbounded answer or a file outside the experiment."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.manager import start_new_kernel
from tornado.httpclient import HTTPClientError

from hops import experiment
from hops_jupyter.core.experiment import records
from hops_jupyter.widgets import charts, render
from hops_jupyter.widgets.series import ReportSeries
from hops_jupyter.widgets.view import ExperimentView

BASE = "/hub/user/alice/"
EXP = "20260101T000000000-abcd"


@pytest.fixture
def jp_base_url():
    return BASE


@pytest.fixture
def jp_server_config():
    return {"ServerApp": {"jpserver_extensions": {"hops_jupyter": True}}}


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
    log = _in_thread(lambda: records.read_log(EXP, "ok", "stdout"))
    assert (log["text"], log["size"]) == ("", 0)
    series = ReportSeries()
    assert _in_thread(lambda: series.read(records.experiment_dir(EXP), ["ok"])) is False


def test_a_result_or_folder_given_as_an_id_is_named_with_its_id(hops_home):
    """experiment.stop/get take ids: given a result (whose text is its folder) or None, the
    error names the value and, for a folder, the id to use."""
    result = experiment.launch(lambda: 1.0)
    with pytest.raises(KeyError, match=f"a folder: its id is '{result.id}'"):
        experiment.stop(result)
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
