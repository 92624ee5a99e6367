"""TensorBoard latency and throughput: direct vs our proxy vs jupyter-server-proxy's proxy/<port>/.

Starts one real jupyter-server (both extensions enabled) under a non-root base_url and one real
TensorBoard, then measures, side by side: p50/p99 of 500 small requests (`data/logdir`) and the
throughput of a large response (TensorBoard's `index.js`). Targets: <= 2 ms p50 added, >= 70%
of direct throughput, and not slower than jupyter-server-proxy.
"""

from __future__ import annotations

import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

SMALL_N = 500
LARGE_N = 30
BASE = "/bench/user/"
TOKEN = "benchtoken"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Client:
    """A keep-alive HTTP/1.1 client that reconnects when the server closes."""

    def __init__(self, port: int, headers: dict[str, str]) -> None:
        self.port, self.headers = port, headers
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)

    def get(self, path: str) -> bytes:
        for attempt in (1, 2):
            try:
                self.conn.request("GET", path, headers=self.headers)
                resp = self.conn.getresponse()
                body = resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"{path}: HTTP {resp.status}")
                if resp.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                return body
            except (http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
                if attempt == 2:
                    raise
        raise AssertionError


def measure(client: Client, small: str, large: str) -> dict[str, float]:
    for _ in range(20):
        client.get(small)
    times = []
    for _ in range(SMALL_N):
        t0 = time.perf_counter()
        client.get(small)
        times.append((time.perf_counter() - t0) * 1000)
    client.get(large)
    size = 0
    t0 = time.perf_counter()
    for _ in range(LARGE_N):
        size += len(client.get(large))
    secs = time.perf_counter() - t0
    times.sort()
    return {
        "p50": statistics.median(times),
        "p99": times[int(len(times) * 0.99) - 1],
        "mib_s": size / secs / 2**20,
        "size_kib": size / LARGE_N / 1024,
    }


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        env = {
            **os.environ,
            "HOPS_HOME": home,
            "JUPYTER_RUNTIME_DIR": f"{home}/runtime",
            "HOPS_TENSORBOARD": "false",
        }
        os.environ.update(env)
        from hops import experiment, tensorboard

        result = experiment.launch(lambda: 1.0, name="proxy-bench")
        info = tensorboard.start(result.id).info
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "jupyter_server", f"--port={port}", "--ip=127.0.0.1", "--no-browser",
             f"--ServerApp.base_url={BASE}", f"--IdentityProvider.token={TOKEN}",
             f"--ServerApp.root_dir={home}", "--allow-root"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            for _ in range(120):
                try:
                    urllib.request.urlopen(
                        f"http://127.0.0.1:{port}{BASE}api/status?token={TOKEN}", timeout=1
                    )
                    break
                except OSError:
                    time.sleep(0.5)
            auth = {"Authorization": f"token {TOKEN}"}
            rows = {
                "direct to TensorBoard": measure(
                    Client(info.port, {}), "/data/logdir", "/index.js"
                ),
                "hops proxy": measure(
                    Client(port, auth),
                    f"{BASE}hops/tensorboard/{result.id}/data/logdir",
                    f"{BASE}hops/tensorboard/{result.id}/index.js",
                ),
                "jupyter-server-proxy": measure(
                    Client(port, auth),
                    f"{BASE}proxy/{info.port}/data/logdir",
                    f"{BASE}proxy/{info.port}/index.js",
                ),
            }
        finally:
            server.terminate()
            server.wait(timeout=30)
            tensorboard.stop(result.id)
    direct = rows["direct to TensorBoard"]
    print(f"\nTensorBoard through proxies: {SMALL_N} small requests, {LARGE_N} x index.js "
          f"({direct['size_kib']:.0f} KiB), keep-alive client\n")  # fmt: skip
    print(f"{'path':<24}{'p50 ms':>9}{'p99 ms':>9}{'+p50 ms':>9}{'MiB/s':>9}{'% direct':>10}")
    for name, row in rows.items():
        print(
            f"{name:<24}{row['p50']:>9.2f}{row['p99']:>9.2f}{row['p50'] - direct['p50']:>9.2f}"
            f"{row['mib_s']:>9.0f}{row['mib_s'] / direct['mib_s']:>10.0%}"
        )
    ours, peer = rows["hops proxy"], rows["jupyter-server-proxy"]
    checks = {
        "<= 2 ms p50 added": ours["p50"] - direct["p50"] <= 2,
        ">= 70% of direct throughput": ours["mib_s"] >= 0.7 * direct["mib_s"],
        "not slower than jupyter-server-proxy": ours["p50"] <= peer["p50"] * 1.05
        and ours["mib_s"] >= peer["mib_s"] * 0.95,
    }
    print("\n" + json.dumps({k: "met" if v else "MISSED" for k, v in checks.items()}))


if __name__ == "__main__":
    main()
