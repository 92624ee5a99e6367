"""Widgets and the side panel under load, side by side in one run (issue 15).

1. Live widgets: 200 trials x 50 reports each, in a real kernel. A trivial cell's round trip on
   an idle kernel vs while the experiment runs in the background (`%%experiment --background`),
   the comm messages the widget sent, and the kernel CPU spent on display updates. Target: the
   trivial cell stays under 50 ms. Then the time from sending a small `%%experiment` cell to the
   widget on iopub (its first comm_open, and the cell's display slot updated to show it), in a
   fresh kernel (`%load_ext hops_jupyter` done first) and again in the same, warm, kernel.
   Target: under 1 s.
2. Panel refresh cost with 200 experiments on disk (one real experiment, copied under 199 new
   ids; the newest RUNNING, owned by this process): the server's answer time for the list and
   for one experiment, on a JupyterLab started here under a non-root base_url with a token; and
   the browser's scripting per panel refresh (Debian's Chromium via Playwright, from Chromium's
   performance counters over a window, minus JupyterLab's own scripting with the panel hidden).
3. TensorBoard memory with 10 finished experiments, each of which started its TensorBoard:
   before (commit 7c7077c, taken with `git archive`: one TensorBoard per experiment, all kept,
   TensorFlow loaded) and after (today's defaults: at most 3 per owner, no TensorFlow).

Every kernel, server, browser and TensorBoard started here is stopped at the end, also on
error. Writes the table to benchmarks/results/widgets.txt as well.
Usage: python benchmarks/widgets.py
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from jupyter_client.manager import start_new_kernel

ROOT = Path(__file__).resolve().parent.parent
TRIALS, REPORTS = 200, 50
KERNELS = 3  # fresh kernels timed (each then timed once more, warm)
SMALL_CELL = "%%experiment --grid i=1,2 --workers 1\ni"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"

PANEL_EXPERIMENTS, API_CALLS, WINDOW_S = 200, 20, 15
BASE, TOKEN = "/hub/user/bench/", "widgets-benchmark-token"
PANEL_TAB = '.jp-SideBar [data-id="hops-experiments-panel"]'
TB_EXPERIMENTS, OLD_COMMIT = 10, "7c7077c"

Out = Callable[[str], None]


def _spread(data: list[float]) -> tuple[float, float, float]:
    """(p50, p95, max) of the samples."""
    data = sorted(data)
    return statistics.median(data), data[max(int(len(data) * 0.95) - 1, 0)], data[-1]


def _sweep(marker: str) -> int:
    """Kill every process of ours whose command line names `marker` (a temp folder of this run:
    TensorBoards name their logdir, the JupyterLab server its root_dir); how many."""
    import psutil

    killed = 0
    for proc in psutil.process_iter(["pid", "cmdline"]):
        if proc.info["pid"] != os.getpid() and marker in " ".join(proc.info["cmdline"] or []):
            with contextlib.suppress(psutil.Error):
                proc.kill()
                killed += 1
    return killed


def _child(args: list[str], env: dict[str, str], cwd: Path, timeout: float) -> dict[str, Any]:
    """Run this script in one of its child modes, in `cwd` (not the repository: `python -m`
    children would import its code first); the JSON of its `RESULT` line."""
    proc = subprocess.run(
        [sys.executable, __file__, *args], env=env, capture_output=True, text=True,
        timeout=timeout, cwd=cwd,
    )  # fmt: skip
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line.removeprefix("RESULT "))
    raise RuntimeError(f"{args[0]} failed (rc {proc.returncode}):\n{proc.stderr[-3000:]}")


# --- 1. live widgets --------------------------------------------------------------------------


class Counter:
    """Runs cells and drains every iopub message, counting widget updates whatever cell they
    are attributed to (a background thread's messages carry the cell that started it)."""

    def __init__(self, kc) -> None:
        self.kc, self.comm = kc, 0

    def _drain(self, msg_id: str | None, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                msg = self.kc.get_iopub_msg(timeout=0.05 if msg_id is None else 1)
            except Exception:  # queue.Empty
                if msg_id is None:
                    return
                continue
            if msg["header"]["msg_type"] == "comm_msg":
                self.comm += 1
            if (
                msg_id is not None
                and msg["parent_header"].get("msg_id") == msg_id
                and msg["header"]["msg_type"] == "status"
                and msg["content"]["execution_state"] == "idle"
            ):
                return

    def run(self, code: str, expressions: dict[str, str] | None = None) -> tuple[float, dict]:
        """(round trip in ms, user expressions) of one cell."""
        start = time.perf_counter()
        msg_id = self.kc.execute(code, user_expressions=expressions or {})
        reply = self.kc.get_shell_msg(timeout=120)
        while reply["parent_header"].get("msg_id") != msg_id:
            reply = self.kc.get_shell_msg(timeout=120)
        elapsed = (time.perf_counter() - start) * 1000
        assert reply["content"]["status"] == "ok", reply["content"]
        self._drain(msg_id)
        return elapsed, reply["content"].get("user_expressions", {})


def _value(expressions: dict, name: str) -> str:
    return expressions[name]["data"]["text/plain"]


def time_to_widget(kc) -> tuple[float, float]:
    """(seconds to the first comm_open, seconds to the widget shown) after sending SMALL_CELL;
    then waits for the cell to end."""
    start = time.perf_counter()
    msg_id = kc.execute(SMALL_CELL)
    opened = shown = float("nan")
    while True:
        msg = kc.get_iopub_msg(timeout=120)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind, now = msg["header"]["msg_type"], time.perf_counter() - start
        if kind == "comm_open" and opened != opened:
            opened = now
        elif kind == "update_display_data" and WIDGET_MIME in msg["content"]["data"]:
            shown = min(shown, now) if shown == shown else now
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            return opened, shown


def startup() -> list[tuple[str, float, float]]:
    """Time to widget in KERNELS fresh kernels, and once more in each, warm."""
    fresh, warm = [], []
    for _ in range(KERNELS):
        km, kc = start_new_kernel(kernel_name="python3")
        try:
            Counter(kc).run("%load_ext hops_jupyter")
            fresh.append(time_to_widget(kc))
            warm.append(time_to_widget(kc))
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    rows = []
    for name, data in (("fresh kernel", fresh), ("warm kernel (second run)", warm)):
        rows.append((name, statistics.median(d[0] for d in data),
                     statistics.median(d[1] for d in data)))  # fmt: skip
    return rows


def live_widgets(out: Out) -> None:
    """A trivial cell's round trip, idle and while a 200-trial experiment runs; comm and CPU."""
    with tempfile.TemporaryDirectory() as home:
        os.environ.update(
            {"HOPS_HOME": home, "HOPS_TENSORBOARD": "false", "JUPYTER_RUNTIME_DIR": f"{home}/rt"}
        )
        km, kc = start_new_kernel(kernel_name="python3")
        counter = Counter(kc)
        try:
            counter.run("import hops_jupyter.widgets")  # warm the imports (plotly, ipywidgets)
            idle = [counter.run("1 + 1")[0] for _ in range(30)]
            values = ",".join(str(i) for i in range(TRIALS))
            cell = (
                f"%%experiment --background --grid i={values} --workers 2 -o bench\n"
                "import time\nfrom hops import experiment\n"
                f"for step in range({REPORTS}):\n    experiment.report(i * step, step=step)\n"
                "    time.sleep(0.0005)\ni"
            )
            counter.comm = 0
            start = time.perf_counter()
            counter.run(cell)
            busy = []
            while _value(counter.run("", {"d": "bench.done()"})[1], "d") != "True":
                busy.append(counter.run("1 + 1")[0])
                time.sleep(0.1)
            wall = time.perf_counter() - start
            counter._drain(None)
            stats = counter.run(
                "bench.wait()",
                {
                    "cpu": "sum(v.cpu_seconds for v in bench.views)",
                    "trials": "len(bench.result.trials)",
                },
            )[1]
            comm = counter.comm
        finally:
            kc.stop_channels()
            km.shutdown_kernel(now=True)
    cpu, trials = float(_value(stats, "cpu")), int(_value(stats, "trials"))
    out(f"\n## Live widget: {trials} trials x {REPORTS} reports, experiment wall {wall:.1f} s\n")
    out(f"{'trivial cell round trip':<40}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for name, data in (("idle kernel", idle), ("experiment running in background", busy)):
        p50, p95, worst = _spread(data)
        out(f"{name:<40}{p50:>10.1f}{p95:>10.1f}{worst:>10.1f}")
    out(f"\nwidget comm messages on iopub: {comm} ({comm / wall:.1f}/s; unthrottled, each of the "
        f"{trials * REPORTS} reports could have been one)")  # fmt: skip
    out(f"kernel CPU in display updates: {cpu:.2f} s ({cpu / wall:.1%} of the run)")
    p50 = statistics.median(busy)
    out(
        f"target (trivial cell < 50 ms while running): {'met' if p50 < 50 else 'MISSED'} (p50 {p50:.1f} ms)"
    )


def widget_startup(out: Out) -> None:
    """Time from a small `%%experiment` cell to its widget, fresh and warm kernels."""
    with tempfile.TemporaryDirectory() as home:
        os.environ.update({"HOPS_HOME": home, "JUPYTER_RUNTIME_DIR": f"{home}/rt"})
        rows = startup()
    out(f"\n## Time from running `{SMALL_CELL.splitlines()[0]}` to the widget "
        f"(median of {KERNELS} kernels)\n")  # fmt: skip
    out(f"{'':<40}{'comm_open s':>14}{'widget shown s':>16}")
    for name, opened, shown in rows:
        out(f"{name:<40}{opened:>14.2f}{shown:>16.2f}")
    worst = max(shown for _, _, shown in rows)
    out(f"target (widget shown < 1 s): {'met' if worst < 1 else 'MISSED'} (worst {worst:.2f} s)")


# --- 2. panel refresh cost --------------------------------------------------------------------


def _seed_trial(lr: float) -> float:
    """A trial worth showing: 20 reported steps with a loss beside the metric."""
    from hops import experiment

    for step in range(20):
        experiment.report(lr * step, step=step, loss=1 / (1 + lr * step))
    return lr


def seed_experiment() -> None:
    """Child mode `--seed`: one real 4-trial grid with the hops API; prints its folder."""
    from hops import experiment

    result = experiment.grid_search(
        _seed_trial, {"lr": [0.001, 0.01, 0.1, 1.0]}, name="panel-seed", workers=2
    )
    print("RESULT " + json.dumps({"path": result.record.url.removeprefix("file://")}), flush=True)


def _write_record(path: Path, record: dict[str, Any]) -> None:
    """Atomically, as the driver writes it: readers never see half a file."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(record, indent=1))
    os.replace(tmp, path)


def populate(src: Path, count: int) -> Path:
    """`count - 1` copies of the experiment folder `src` under new valid ids, one every 3 hours
    back in time; `src` itself (the newest) becomes RUNNING, owned by this process. Its record."""
    from hops_jupyter.core.experiment import records

    base = json.loads((src / "experiment.json").read_text())
    now = datetime.datetime.now(datetime.UTC)
    for n in range(1, count):
        started = now - datetime.timedelta(hours=3 * n)
        eid = f"{started.strftime('%Y%m%dT%H%M%S%f')[:-3]}-{secrets.token_hex(2)}"
        assert records.is_experiment_id(eid), eid
        dest = src.parent / eid
        shutil.copytree(src, dest)
        finished = started + datetime.timedelta(minutes=2)
        _write_record(dest / "experiment.json", dict(
            base, id=eid, name=f"bench-{n:03d}", url=dest.as_uri(), best_metric=0.5 + n / 1000,
            started=started.isoformat(timespec="milliseconds"),
            finished=finished.isoformat(timespec="milliseconds"),
        ))  # fmt: skip
    running = dict(base, status="RUNNING", finished=None, trials_done=1, owner=records.this_owner())
    _write_record(src / "experiment.json", running)
    return src / "experiment.json"


class Ticker:
    """While `changing` is set, rewrites the running record every second as a driver would
    (trials done, best metric, heartbeat)."""

    def __init__(self, path: Path) -> None:
        self.path, self.changing, self.done = path, threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        n = 0
        while not self.done.wait(1.0):
            if self.changing.is_set():
                n += 1
                record = json.loads(self.path.read_text())
                record.update(trials_done=n % 4, best_metric=0.9 + n % 10 / 1000,
                              owner=dict(record["owner"], heartbeat=time.time()))  # fmt: skip
                _write_record(self.path, record)

    def close(self) -> None:
        self.done.set()
        self.thread.join()


@contextlib.contextmanager
def jupyterlab(home: Path) -> Iterator[str]:
    """A JupyterLab with the hops_jupyter extension on 127.0.0.1 under BASE, with TOKEN, its
    projects in `home` (no TensorBoards); its URL. Stopped on the way out."""
    from tests.lab import running_lab  # main() put the checkout on the path

    root = home / "notebooks"
    root.mkdir()
    env = {"HOPS_HOME": str(home), "JUPYTER_RUNTIME_DIR": str(home / "rt")}
    with running_lab(home, root, BASE, TOKEN, env) as lab:
        yield lab.url


def api_times(url: str, path: str) -> tuple[list[float], int]:
    """Round trips in ms of API_CALLS GETs of `{url}hops/{path}` (after one not counted), and
    the answer's size in bytes."""
    request = urllib.request.Request(
        f"{url}hops/{path}", headers={"Authorization": f"token {TOKEN}"}
    )
    size = len(urllib.request.urlopen(request, timeout=30).read())
    times = []
    for _ in range(API_CALLS):
        start = time.perf_counter()
        urllib.request.urlopen(request, timeout=30).read()
        times.append((time.perf_counter() - start) * 1000)
    return times, size


def browser_refreshes(url: str, ticker: Ticker) -> dict[str, Any]:
    """Chromium's scripting over WINDOW_S windows with the panel open (the running experiment
    changing, then not), then hidden; the list polls in each; the panel's first render."""
    from playwright.sync_api import sync_playwright

    from tests.lab import launch_chromium  # main() put the checkout on the path

    polls: list[float] = []
    with sync_playwright() as pw:
        browser = launch_chromium(pw)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.on("response", lambda r: polls.append(time.monotonic())
                    if r.url.split("?")[0].endswith("/hops/api/experiments") else None)  # fmt: skip
            page.goto(f"{url}lab?token={TOKEN}")
            page.wait_for_selector(PANEL_TAB, timeout=90_000)
            cdp = page.context.new_cdp_session(page)
            cdp.send("Performance.enable")
            page.wait_for_timeout(3000)

            def counters() -> dict[str, float]:
                return {
                    m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]
                }

            def window() -> dict[str, float]:
                before, n = counters(), len(polls)
                page.wait_for_timeout(WINDOW_S * 1000)
                after = counters()
                keys = ("ScriptDuration", "LayoutDuration", "RecalcStyleDuration")
                return {"polls": len(polls) - n, **{k: (after[k] - before[k]) * 1000 for k in keys}}

            start, first = time.perf_counter(), counters()
            page.locator(PANEL_TAB).click()
            page.wait_for_function(
                f"document.querySelectorAll('.hops-Experiment').length >= {PANEL_EXPERIMENTS}",
                timeout=60_000,
            )
            rendered = {"wall": (time.perf_counter() - start) * 1000,
                        "script": (counters()["ScriptDuration"] - first["ScriptDuration"]) * 1000}  # fmt: skip
            page.mouse.move(900, 600)  # off the rows: no hover styles in the windows
            ticker.changing.set()
            page.wait_for_timeout(2000)
            changing = window()
            ticker.changing.clear()
            page.wait_for_timeout(2000)
            unchanged = window()
            page.locator('.jp-SideBar [data-id="filebrowser"]').click()
            page.wait_for_timeout(2000)
            hidden = window()
            return {"version": browser.version, "first": rendered, "changing": changing,
                    "unchanged": unchanged, "hidden": hidden}  # fmt: skip
        finally:
            browser.close()


def panel_section(out: Out) -> None:
    """The server's answer times and the browser's scripting per refresh, 200 experiments."""
    with tempfile.TemporaryDirectory(prefix="hops-bench-panel-") as tmp:
        home = Path(tmp)
        env = {**os.environ, "HOPS_HOME": str(home), "HOPS_TENSORBOARD": "false",
               "JUPYTER_RUNTIME_DIR": str(home / "rt")}  # fmt: skip
        env.pop("PYTHONPATH", None)
        try:
            seeded = Path(_child(["--seed"], env, home, timeout=180)["path"])
            running = populate(seeded, PANEL_EXPERIMENTS)
            ticker = Ticker(running)
            try:
                with jupyterlab(home) as url:
                    listed, list_size = api_times(url, "api/experiments")
                    one, one_size = api_times(url, f"api/experiments/{seeded.name}")
                    browser = browser_refreshes(url, ticker)
            finally:
                ticker.close()
        finally:
            _sweep(str(home))
    out(f"\n## Panel refresh cost: {PANEL_EXPERIMENTS} experiments on disk (4 trials x 20 "
        "reports each), the newest RUNNING\n")  # fmt: skip
    out("server: JupyterLab + hops_jupyter on 127.0.0.1, token auth; round trip of "
        f"{API_CALLS} calls after a first")  # fmt: skip
    out(f"{'GET {base}hops/...':<44}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}{'answer KB':>11}")
    for name, data, size in (
        (f"api/experiments (list of {PANEL_EXPERIMENTS})", listed, list_size),
        ("api/experiments/<id> (one, with trials)", one, one_size),
    ):
        p50, p95, worst = _spread(data)
        out(f"{name:<44}{p50:>10.1f}{p95:>10.1f}{worst:>10.1f}{size / 1024:>11.1f}")
    hidden = browser["hidden"]
    out(f"\nbrowser: Chromium {browser['version']} headless (Playwright), JupyterLab, panel open; "
        f"Chromium's counters over {WINDOW_S} s windows, per list poll, net of JupyterLab's own "
        "scripting in a window with the panel hidden")  # fmt: skip
    out(
        f"{'panel refresh':<44}{'polls':>7}{'script ms':>11}{'layout+style ms':>17}{'script gross ms':>17}"
    )
    for name, key in (
        ("one running experiment (changes every 1 s)", "changing"),
        ("nothing changing (1 s polls: one RUNNING)", "unchanged"),
    ):
        w, n = browser[key], max(browser[key]["polls"], 1)
        net = (w["ScriptDuration"] - hidden["ScriptDuration"]) / n
        render = (w["LayoutDuration"] + w["RecalcStyleDuration"]
                  - hidden["LayoutDuration"] - hidden["RecalcStyleDuration"]) / n  # fmt: skip
        out(f"{name:<44}{w['polls']:>7}{net:>11.2f}{render:>17.2f}{w['ScriptDuration'] / n:>17.2f}")
    out(f"{'panel hidden (baseline, window total)':<44}{hidden['polls']:>7}"
        f"{hidden['ScriptDuration']:>11.1f}"
        f"{hidden['LayoutDuration'] + hidden['RecalcStyleDuration']:>17.1f}")  # fmt: skip
    first = browser["first"]
    out(f"first render of the {PANEL_EXPERIMENTS} rows after opening the panel: "
        f"{first['wall']:.0f} ms wall, {first['script']:.0f} ms scripting")  # fmt: skip


# --- 3. TensorBoard memory --------------------------------------------------------------------


def _board_processes(pid: int) -> list[Any]:
    """A TensorBoard's watchdog process and its children (the Rust data server)."""
    import psutil

    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _maps_tensorflow(pid: int) -> bool:
    try:
        return "libtensorflow" in Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return False


def tensorboard_memory(n: int, home: str, timeout: float = 240.0) -> dict[str, Any]:
    """Child mode `--tb-memory N HOME`: run `n` one-trial experiments with their TensorBoards
    on (each starts one as it begins, as in a notebook session); once all serve and each was
    opened once, the RSS and PSS sums of those still running (PSS counts TensorFlow's shared
    pages once). Every TensorBoard is stopped afterwards."""
    import psutil

    os.environ.update(HOPS_HOME=home, JUPYTER_RUNTIME_DIR=os.path.join(home, "runtime"),
                      HOPS_TENSORBOARD="true")  # fmt: skip
    import hops_jupyter
    from hops import experiment, tensorboard

    try:
        for i in range(n):
            experiment.launch(lambda: 1.0, name=f"memory-{i}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            boards = tensorboard.running(starting=True)
            if all(b.ready and tensorboard.healthy(b) for b in boards):
                break
            time.sleep(0.5)
        boards = tensorboard.running()
        for board in boards:  # opened once, as a user would (plugins load lazily)
            for path in ("data/plugins_listing", "data/plugin/scalars/tags"):
                urllib.request.urlopen(f"{board.url}{path}", timeout=60).read()
        time.sleep(3)
        rss = pss = 0
        for board in boards:
            for proc in _board_processes(board.pid):
                with contextlib.suppress(psutil.Error):
                    mem = proc.memory_full_info()
                    rss, pss = rss + mem.rss, pss + mem.pss
        return {"experiments": n, "tensorboards": len(boards), "rss_mb": rss / 2**20,
                "pss_mb": pss / 2**20, "with_tf": sum(_maps_tensorflow(b.pid) for b in boards),
                "code": str(Path(hops_jupyter.__file__).parent.parent)}  # fmt: skip
    finally:
        for board in tensorboard.running(starting=True):
            tensorboard.stop(board.experiment_id)


def tensorboard_section(out: Out) -> None:
    """TensorBoard memory with TB_EXPERIMENTS finished experiments, old code vs today's."""
    with tempfile.TemporaryDirectory(prefix="hops-bench-tb-") as tmp:
        old = Path(tmp) / "old"
        old.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", OLD_COMMIT, "hops", "hops_jupyter"],
                                 capture_output=True, check=True).stdout  # fmt: skip
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive, check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOPS_")}
        env.pop("PYTHONPATH", None)
        env["TF_CPP_MIN_LOG_LEVEL"] = "2"
        runs = {}
        for name, extra in (("before", {"PYTHONPATH": str(old)}), ("after", {})):
            home = Path(tmp) / name
            home.mkdir()
            try:
                runs[name] = _child(["--tb-memory", str(TB_EXPERIMENTS), str(home)],
                                    {**env, **extra}, home, timeout=300)  # fmt: skip
            finally:
                _sweep(str(home))
        assert runs["before"]["code"] == str(old), runs["before"]["code"]
    out(f"\n## TensorBoard memory: {TB_EXPERIMENTS} finished experiments, each started its "
        "TensorBoard; each opened once\n")  # fmt: skip
    out(f"before: commit {OLD_COMMIT} (its hops and hops_jupyter from `git archive`, first on "
        "PYTHONPATH): one TensorBoard per experiment, all kept, TensorFlow loaded")  # fmt: skip
    out("after:  today's defaults: at most 3 TensorBoards per owner (HOPS_TENSORBOARD_MAX), "
        "TensorBoard without TensorFlow")  # fmt: skip
    out(
        f"{'':<10}{'TensorBoards alive':>20}{'with TensorFlow':>17}{'RSS sum MB':>12}{'PSS sum MB':>12}"
    )
    for name in ("before", "after"):
        r = runs[name]
        out(
            f"{name:<10}{r['tensorboards']:>20}{r['with_tf']:>17}{r['rss_mb']:>12.0f}{r['pss_mb']:>12.0f}"
        )
    before, after = runs["before"], runs["after"]
    if after["pss_mb"]:
        out(f"after / before: RSS {after['rss_mb'] / before['rss_mb']:.1%}, "
            f"PSS {after['pss_mb'] / before['pss_mb']:.1%}")  # fmt: skip


# ----------------------------------------------------------------------------------------------


def main() -> None:
    sys.path.insert(0, str(ROOT))  # here, not at import: a child running old code must not see it
    from benchmarks.common import Report

    out = Report("widgets")
    out(f"# benchmarks/widgets.py, {datetime.date.today()}, {os.cpu_count()} cores")
    started = time.perf_counter()
    live_widgets(out)
    widget_startup(out)
    panel_section(out)
    tensorboard_section(out)
    out(f"\n(whole run {time.perf_counter() - started:.0f} s)")
    out.save()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--seed"]:
        seed_experiment()
    elif sys.argv[1:2] == ["--tb-memory"]:
        result = tensorboard_memory(int(sys.argv[2]), sys.argv[3])
        print("RESULT " + json.dumps(result), flush=True)
    else:
        main()
