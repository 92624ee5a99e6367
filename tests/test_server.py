"""The server extension against a real jupyter-server (pytest-jupyter) under a non-root base_url:
REST API, the TensorBoard proxy with tf.summary scalars, authentication, 404s, shutdown."""

import json
import socket
import urllib.parse

import pytest
from tornado.httpclient import HTTPClientError

from hops import experiment, tensorboard
from hops_jupyter.core.experiment import records
from tests.conftest import SERVER_BASE as BASE


def tf_train(lr):
    import tensorflow as tf

    writer = tf.summary.create_file_writer(tensorboard.logdir())
    with writer.as_default():
        for step in range(3):
            tf.summary.scalar("loss", lr * (step + 1), step=step)
    writer.flush()
    experiment.report(lr * 3, step=2)
    return -lr


async def _json(response):
    return json.loads(response.body)


async def _until(fetch_json, predicate, attempts=60):
    import asyncio

    for _ in range(attempts):
        data = await fetch_json()
        if predicate(data):
            return data
        await asyncio.sleep(0.5)
    pytest.fail(f"condition never held; last answer {data!r}")


async def test_api_and_tensorboard_through_proxy(
    jp_fetch, jp_serverapp, http_server_client, jp_auth_header, hops_home
):
    result = experiment.grid_search(tf_train, {"lr": [0.1, 0.2]}, workers=2)

    listed = await _json(await jp_fetch("hops", "api", "experiments"))
    assert [e["id"] for e in listed] == [result.id]
    assert listed[0]["kind"] == "grid_search" and listed[0]["trials_done"] == 2
    one = await _json(await jp_fetch("hops", "api", "experiments", result.id))
    trials = {t["id"]: t for t in one["trials"]}
    assert set(trials) == {"lr=0.1", "lr=0.2"}
    assert trials["lr=0.2"]["latest"]["metric"] == pytest.approx(0.6)
    assert one["best_params"] == {"lr": 0.1}

    # The proxy starts the TensorBoard on demand and passes TensorBoard's own API through.
    async def runs():
        return await _json(await jp_fetch("hops", "tensorboard", result.id, "data", "runs"))

    assert set(await _until(runs, lambda r: {"lr=0.1", "lr=0.2"} <= set(r))) >= {"lr=0.1", "lr=0.2"}
    bare = await jp_fetch(
        "hops", "tensorboard", result.id, follow_redirects=False, raise_error=False
    )
    assert bare.code == 302
    assert bare.headers["Location"] == f"{BASE}hops/tensorboard/{result.id}/"
    page = await http_server_client.fetch(bare.headers["Location"], headers=jp_auth_header)
    assert b"<tb-webapp>" in page.body and b"tb-relative-root" in page.body

    async def scalars():
        response = await jp_fetch(
            "hops", "tensorboard", result.id, "data", "plugin", "scalars", "scalars",
            params={"run": "lr=0.2", "tag": "loss"},
        )  # fmt: skip
        return await _json(response)

    points = await _until(scalars, lambda p: len(p) == 3)
    assert [(step, round(value, 6)) for _, step, value in points] == [(0, 0.2), (1, 0.4), (2, 0.6)]

    # TensorBoard's own POST (multi-run scalars) works without disabling XSRF.
    body = urllib.parse.urlencode([("tag", "loss"), ("runs", "lr=0.1"), ("runs", "lr=0.2")])
    multi = await jp_fetch(
        "hops", "tensorboard", result.id, "data", "plugin", "scalars", "scalars_multirun",
        method="POST", body=body,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )  # fmt: skip
    assert set(await _json(multi)) == {"lr=0.1", "lr=0.2"}

    boards = await _json(await jp_fetch("hops", "api", "tensorboards"))
    assert [b["experiment_id"] for b in boards] == [result.id]
    pid = boards[0]["pid"]
    response = await jp_fetch("hops", "api", "tensorboards", result.id, method="DELETE")
    assert response.code == 204
    assert tensorboard.find(result.id) is None
    from tests.test_tensorboard import gone

    assert gone(pid)

    started = await jp_fetch(
        "hops", "api", "tensorboards", method="POST", body=json.dumps({"experiment_id": result.id})
    )
    assert started.code == 201 and (await _json(started))["outcome"] == "launched"
    reused = await jp_fetch(
        "hops", "api", "tensorboards", method="POST", body=json.dumps({"experiment_id": result.id})
    )
    assert reused.code == 200 and (await _json(reused))["outcome"] == "reused"

    # The server stops the TensorBoards it started when it stops.
    pid = tensorboard.find(result.id).pid
    await jp_serverapp.cleanup_extensions()
    assert gone(pid) and tensorboard.find(result.id) is None


@pytest.fixture
def small_experiment(hops_home):
    return experiment.launch(lambda: 1.0)


ROUTES = [
    ("GET", ("hops", "api", "experiments")),
    ("GET", ("hops", "api", "experiments", "{id}")),
    ("GET", ("hops", "api", "tensorboards")),
    ("POST", ("hops", "api", "tensorboards")),
    ("DELETE", ("hops", "api", "tensorboards", "{id}")),
    ("GET", ("hops", "tensorboard", "{id}", "")),
    ("POST", ("hops", "tensorboard", "{id}", "data", "plugin", "scalars", "scalars_multirun")),
    ("POST", ("hops", "api", "experiments", "{id}", "stop")),
    ("GET", ("hops", "api", "experiments", "{id}", "trials", "run", "logs", "stdout")),
]


@pytest.mark.parametrize("auth", ["", "token wrong-token"])
@pytest.mark.parametrize("method, parts", ROUTES)
async def test_every_route_needs_authentication(jp_fetch, small_experiment, method, parts, auth):
    parts = [p.format(id=small_experiment.id) for p in parts]
    body = "{}" if method == "POST" else None
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch(*parts, method=method, body=body, headers={"Authorization": auth},
                       follow_redirects=False)  # fmt: skip
    code = err.value.code
    assert code == 403 or (code == 302 and "login" in err.value.response.headers["Location"])


async def test_websocket_upgrade_needs_authentication(jp_fetch, small_experiment):
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch(
            "hops", "tensorboard", small_experiment.id, "",
            headers={"Authorization": "", "Upgrade": "websocket", "Connection": "Upgrade"},
            follow_redirects=False,
        )  # fmt: skip
    assert err.value.code in (302, 403)


async def test_unknown_ids_and_traversal_are_404(
    jp_fetch, http_server_client, jp_auth_header, small_experiment
):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    port = listener.getsockname()[1]
    unknown = "20990101T000000000-abcd"
    for parts in [
        ("hops", "api", "experiments", unknown),
        ("hops", "api", "experiments", "nope"),
        ("hops", "api", "tensorboards", unknown),
        ("hops", "tensorboard", unknown, ""),
        ("hops", "tensorboard", f"127.0.0.1:{port}", ""),
    ]:
        with pytest.raises(HTTPClientError) as err:
            await jp_fetch(*parts, method="DELETE" if parts[2] == "tensorboards" else "GET")
        assert err.value.code == 404, parts
    for raw in [
        f"{BASE}hops/tensorboard/..%2F..%2Fapi%2Fcontents/",
        f"{BASE}hops/tensorboard/%2E%2E/api/contents",
        f"{BASE}hops/tensorboard/{small_experiment.id}%2F..%2F{unknown}/",
    ]:
        with pytest.raises(HTTPClientError) as err:
            await http_server_client.fetch(raw, headers=jp_auth_header)
        assert err.value.code == 404, raw
    with pytest.raises(BlockingIOError):
        listener.accept()  # nothing was proxied to an unregistered port
    listener.close()
    with pytest.raises(HTTPClientError) as err:
        await jp_fetch("hops", "api", "tensorboards", method="POST", body="not json")
    assert err.value.code == 400


def _cookies(response) -> dict[str, str]:
    return dict(c.split(";", 1)[0].split("=", 1) for c in response.headers.get_list("Set-Cookie"))


async def test_cookie_authenticated_posts_must_be_same_origin(
    http_server_client, jp_serverapp, small_experiment
):
    """A browser session (login cookie, no token): TensorBoard's POSTs pass from the page's own
    origin and are refused from another site."""
    form = await http_server_client.fetch(f"{BASE}login", raise_error=False)
    jar = _cookies(form)
    login = await http_server_client.fetch(
        f"{BASE}login", method="POST", follow_redirects=False, raise_error=False,
        body=urllib.parse.urlencode({"password": jp_serverapp.identity_provider.token, "_xsrf": jar["_xsrf"]}),
        headers={"Cookie": f"_xsrf={jar['_xsrf']}"},
    )  # fmt: skip
    assert login.code == 302, login.body
    jar.update(_cookies(login))
    cookie = "; ".join(f"{k}={v}" for k, v in jar.items())
    url = f"{BASE}hops/tensorboard/{small_experiment.id}/data/plugin/scalars/scalars_multirun"
    body = urllib.parse.urlencode([("tag", "loss"), ("runs", "run")])
    host = f"127.0.0.1:{http_server_client.get_http_port()}"

    async def post(origin: str):
        return await http_server_client.fetch(
            url, method="POST", body=body, raise_error=False,
            headers={"Cookie": cookie, "Origin": origin, "Host": host},
        )  # fmt: skip

    evil = await post("http://evil.example")
    assert evil.code == 403
    ok = await post(f"http://{host}")
    assert ok.code == 200, ok.body
    tensorboard.stop(small_experiment.id)


def test_records_read_api_matches_server_view(small_experiment):
    got = records.get(small_experiment.id)
    assert got.trials[0].id == "run" and got.status == "FINISHED"


def curve(x):
    for step in range(10):
        experiment.report(x * (step + 1), step=step)
    return x * 10


async def test_api_shows_early_stopped_trials(jp_fetch, hops_home):
    result = experiment.grid_search(curve, {"x": [1.0, 0.1]}, workers=1,
                                    early_stopping=experiment.ASHA(min_steps=2))  # fmt: skip
    one = await _json(await jp_fetch("hops", "api", "experiments", result.id))
    trials = {t["id"]: t for t in one["trials"]}
    assert trials["x=0.1"]["status"] == "EARLY_STOPPED" and trials["x=0.1"]["stopped_step"] == 2
    assert (
        trials["x=0.1"]["metric"] == pytest.approx(0.3) and trials["x=1.0"]["status"] == "FINISHED"
    )


class _Echo:
    """A real upstream HTTP server on 127.0.0.1 that answers every request with what it
    received (request line and headers), standing in for a TensorBoard in the registry."""

    def __init__(self) -> None:
        import http.server
        import threading

        seen = self.seen = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def _answer(self) -> None:
                body = json.dumps({"path": self.path, "headers": dict(self.headers.items())})
                seen.append(json.loads(body))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            do_GET = do_POST = _answer

            def log_message(self, *args) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def echo_tensorboard(small_experiment):
    """Register the echo server as the experiment's TensorBoard (this process stands in for
    the watchdog: alive, never stopped by the test, not owned by the server)."""
    import os
    import time

    import psutil

    echo = _Echo()
    info = tensorboard.TensorBoardInfo(
        experiment_id=small_experiment.id, pid=os.getpid(), port=echo.port, logdir="/echo",
        started=time.time(), owner_pid=0, idle_timeout=0,
        create_time=psutil.Process().create_time(),
    )  # fmt: skip
    entry = tensorboard.registry_dir() / f"{small_experiment.id}.json"
    entry.write_text(json.dumps(info.to_json()))
    assert tensorboard.find(small_experiment.id) == info
    yield echo
    entry.unlink(missing_ok=True)
    echo.close()


async def test_proxy_strips_jupyter_credentials_from_the_query(
    http_server_client, jp_serverapp, small_experiment, echo_tensorboard
):
    token = jp_serverapp.identity_provider.token
    url = (
        f"{BASE}hops/tensorboard/{small_experiment.id}/data/runs"
        f"?run=a%20b&token={token}&tag=x%26y&_xsrf=zzz&to%6Ben={token}"
    )
    response = await http_server_client.fetch(
        url, headers={"Referer": f"http://x/lab?token={token}"}
    )
    got = json.loads(response.body)
    assert got["path"] == "/data/runs?run=a%20b&tag=x%26y"
    assert token not in json.dumps(got)  # neither in the query nor in any header


async def test_proxy_forwards_the_path_still_encoded(
    http_server_client, jp_auth_header, small_experiment, echo_tensorboard
):
    url = f"{BASE}hops/tensorboard/{small_experiment.id}/data/plugin/x%20y%3Fz%23w%2Fv/%25?q=1"
    response = await http_server_client.fetch(url, headers=jp_auth_header)
    assert json.loads(response.body)["path"] == "/data/plugin/x%20y%3Fz%23w%2Fv/%25?q=1"


async def test_api_takes_the_id_from_the_folder(jp_fetch, hops_home):
    """A hand-written experiment.json that claims another id (one that would break out of an
    attribute) is answered with its folder's id and URL; its other strings are plain data."""
    from tests.test_widgets import HOSTILE, HOSTILE_ID, write_hostile_experiment

    exp_id = write_hostile_experiment(hops_home)
    folder_url = records.experiments_dir().child(exp_id).url
    listed = await _json(await jp_fetch("hops", "api", "experiments"))
    assert [(e["id"], e["url"]) for e in listed] == [(exp_id, folder_url)]
    assert listed[0]["kind"] == HOSTILE["kind"]  # JSON carries it as a string, unchanged
    one = await _json(await jp_fetch("hops", "api", "experiments", exp_id))
    assert (one["id"], one["url"]) == (exp_id, folder_url)
    assert HOSTILE_ID not in json.dumps([listed, {k: v for k, v in one.items() if k != "trials"}])
    assert [t["status"] for t in one["trials"]] == [HOSTILE["trial_status"]]


async def test_api_shows_a_lost_driver_as_killed(jp_fetch, hops_home):
    from tests.test_guarantees import _dead_owner_record

    exp_id = _dead_owner_record(hops_home)
    listed = await _json(await jp_fetch("hops", "api", "experiments"))
    assert listed[0]["status"] == "KILLED" and listed[0]["status_message"] == "driver lost"
    one = await _json(await jp_fetch("hops", "api", "experiments", exp_id))
    assert one["trials"][0]["status"] == "KILLED"


def chatty(x):
    import sys
    import time

    for i in range(3):
        print(f"line {i} of trial {x}", flush=True)
    print("to stderr", file=sys.stderr, flush=True)
    if x == "slow":
        time.sleep(60)
    if x == "bad":
        raise ValueError("x must not be 'bad'")
    return 1.0


async def test_trial_logs_and_stop_through_the_api(jp_fetch, hops_home):
    import asyncio
    import threading

    done: dict = {}
    thread = threading.Thread(
        target=lambda: done.setdefault(
            "r", experiment.grid_search(chatty, {"x": ["ok & fine", "bad", "slow"]}, workers=3)
        )
    )
    thread.start()
    for _ in range(200):
        found = records.list_experiments()
        if found and sum(t.status == "RUNNING" for t in experiment.get(found[0].id).trials) == 1:
            if experiment.get(found[0].id).trials_done == 2:
                break
        await asyncio.sleep(0.1)
    exp_id = found[0].id
    trial = "x=ok%20%26%20fine"  # the folder's name: values are URL-quoted
    assert trial in {t.id for t in experiment.get(exp_id).trials}
    quoted = trial  # jp_fetch quotes each path part again, as the panel's encodeURIComponent
    log = await _json(
        await jp_fetch("hops", "api", "experiments", exp_id, "trials", quoted, "logs", "stdout")
    )
    assert log["text"].splitlines() == [f"line {i} of trial ok & fine" for i in range(3)]
    assert log["offset"] == 0 and log["next_offset"] == log["size"] == len(log["text"].encode())
    tail = await _json(await jp_fetch("hops", "api", "experiments", exp_id, "trials", quoted,
                                      "logs", "stdout", params={"offset": "7"}))  # fmt: skip
    assert tail["offset"] == 7 and tail["text"] == log["text"][7:]
    err = await _json(
        await jp_fetch("hops", "api", "experiments", exp_id, "trials", quoted, "logs", "stderr")
    )
    assert err["text"] == "to stderr\n"
    detail = await _json(await jp_fetch("hops", "api", "experiments", exp_id))
    bad = next(t for t in detail["trials"] if t["params"]["x"] == "bad")
    assert bad["status"] == "FAILED" and bad["metric"] is None
    assert bad["error"]["type"] == "ValueError" and "x must not be 'bad'" in bad["error"]["message"]
    assert "Traceback" in bad["error"]["traceback"]
    for parts, code in [
        ((exp_id, "trials", quoted, "logs", "secrets"), 404),
        ((exp_id, "trials", "nope", "logs", "stdout"), 404),
        ((exp_id, "trials", "..", "logs", "stdout"), 404),
    ]:
        with pytest.raises(HTTPClientError) as raised:
            await jp_fetch("hops", "api", "experiments", *parts)
        assert raised.value.code == code, parts
    with pytest.raises(HTTPClientError) as raised:
        await jp_fetch("hops", "api", "experiments", exp_id, "trials", quoted, "logs", "stdout",
                       params={"offset": "x"})  # fmt: skip
    assert raised.value.code == 400

    stopped = await jp_fetch("hops", "api", "experiments", exp_id, "stop", method="POST", body="")
    assert stopped.code == 202 and (await _json(stopped))["stop_requested"] is True
    await asyncio.to_thread(thread.join, 20)
    assert not thread.is_alive()
    record = experiment.get(exp_id)
    assert record.status == "KILLED"
    assert record.status_message == "stopped: 1 finished, 1 failed, 1 killed, 0 not started"
    with pytest.raises(HTTPClientError) as raised:
        await jp_fetch("hops", "api", "experiments", exp_id, "stop", method="POST", body="")
    assert raised.value.code == 409
    with pytest.raises(HTTPClientError) as raised:
        await jp_fetch(
            "hops", "api", "experiments", "20990101T000000000-abcd", "stop", method="POST", body=""
        )
    assert raised.value.code == 404


async def test_proxy_follows_a_tensorboard_restarted_on_another_port(jp_fetch, hops_home):
    """The proxy caches where a TensorBoard listens for a few seconds; one stopped and started
    again meanwhile (the panel's stop, then %tensorboard in a kernel) is found at its new port
    instead of a refused connection turning into a 500."""
    result = experiment.launch(lambda: 1.0)
    try:
        first = await jp_fetch("hops", "tensorboard", result.id, "data", "runs")
        assert first.code == 200
        old = tensorboard.find(result.id).port
        tensorboard.stop(result.id)
        started = tensorboard.start(result.id)
        assert started.info is not None and started.info.port != old
        again = await jp_fetch("hops", "tensorboard", result.id, "data", "runs")
        assert again.code == 200
    finally:
        tensorboard.stop(result.id)
