"""Live widgets under load: 200 trials x 50 reports each, in a real kernel; and how soon the
widget shows after a `%%experiment` cell is run.

Side by side in one run: a trivial cell's round trip on an idle kernel vs while the experiment
runs in the background (`%%experiment --background`), the comm messages the widget sent, and the
kernel CPU spent on display updates. Target: the trivial cell stays under 50 ms. Then the time
from sending a small `%%experiment` cell to the widget on iopub (its first comm_open, and the
cell's display slot updated to show it), in a fresh kernel (`%load_ext hops_jupyter` done
first) and again in the same, warm, kernel. Target: under 1 s.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time

from jupyter_client.manager import start_new_kernel

TRIALS, REPORTS = 200, 50
KERNELS = 3  # fresh kernels timed (each then timed once more, warm)
SMALL_CELL = "%%experiment --grid i=1,2 --workers 1\ni"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"


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


def main() -> None:
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
    print(f"\nwidgets: {trials} trials x {REPORTS} reports, experiment wall {wall:.1f} s\n")
    print(f"{'trivial cell round trip':<40}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}")
    for name, data in (("idle kernel", idle), ("experiment running in background", busy)):
        data = sorted(data)
        print(
            f"{name:<40}{statistics.median(data):>10.1f}{data[int(len(data) * 0.95) - 1]:>10.1f}{data[-1]:>10.1f}"
        )
    print(f"\nwidget comm messages on iopub: {comm} ({comm / wall:.1f}/s; unthrottled, each of the "
          f"{trials * REPORTS} reports could have been one)")  # fmt: skip
    print(f"kernel CPU in display updates: {cpu:.2f} s ({cpu / wall:.1%} of the run)")
    p50 = statistics.median(busy)
    print(
        f"target (trivial cell < 50 ms while running): {'met' if p50 < 50 else 'MISSED'} (p50 {p50:.1f} ms)"
    )
    with tempfile.TemporaryDirectory() as home:
        os.environ.update({"HOPS_HOME": home, "JUPYTER_RUNTIME_DIR": f"{home}/rt"})
        rows = startup()
    print(f"\ntime from running `{SMALL_CELL.splitlines()[0]}` to the widget "
          f"(median of {KERNELS} kernels)")  # fmt: skip
    print(f"{'':<40}{'comm_open s':>14}{'widget shown s':>16}")
    for name, opened, shown in rows:
        print(f"{name:<40}{opened:>14.2f}{shown:>16.2f}")
    worst = max(shown for _, _, shown in rows)
    print(f"target (widget shown < 1 s): {'met' if worst < 1 else 'MISSED'} (worst {worst:.2f} s)")


if __name__ == "__main__":
    main()
