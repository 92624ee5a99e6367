"""copy_to_local / copy_to_hdfs of a 1 GiB file vs shutil.copyfile and pyarrow.fs.copy_files.

Each measurement runs in a fresh process so its peak-RSS growth is its own. Prints a table with
the median of REPEATS runs; target: ours >= 80% of the faster peer, peak RSS growth < 100 MiB.
Usage: python benchmarks/hdfs_copy.py [size_mib]
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap

SIZE_MIB = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
REPEATS = 3

CHILD = textwrap.dedent(
    """
    import json, os, resource, shutil, sys, time
    import pyarrow.fs as pafs
    from hops import hdfs

    method, src, dst_dir = sys.argv[1:4]
    def rss_kib():
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    hdfs.project_path()  # create the project before measuring
    base = rss_kib()
    t0 = time.perf_counter()
    if method == "copy_to_local":
        hdfs.copy_to_local("Resources/big.bin", dst_dir)
    elif method == "copy_to_hdfs":
        hdfs.copy_to_hdfs(src, "Resources/up")
    elif method == "shutil.copyfile":
        shutil.copyfile(src, os.path.join(dst_dir, "big.bin"))
    elif method == "pyarrow.fs.copy_files":
        pafs.copy_files(src, os.path.join(dst_dir, "big.bin"))
    elapsed = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"seconds": elapsed, "rss_growth_mib": max(0, peak - base) / 1024}))
    """
)


def run(method: str, src: str, home: str) -> dict:
    dst = tempfile.mkdtemp(dir=home)
    env = {**os.environ, "HOPS_HOME": home}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, method, src, dst],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    subprocess.run(["rm", "-rf", dst], check=True)
    up = os.path.join(home, "Projects", "demo", "Resources", "up")
    subprocess.run(["rm", "-rf", up], check=True)
    return json.loads(out)


def main() -> None:
    with tempfile.TemporaryDirectory(dir=os.path.expanduser("~")) as home:
        resources = os.path.join(home, "Projects", "demo", "Resources")
        os.makedirs(resources)
        src = os.path.join(resources, "big.bin")
        block = os.urandom(1 << 20)
        with open(src, "wb") as out:
            for _ in range(SIZE_MIB):
                out.write(block)
        methods = ["shutil.copyfile", "pyarrow.fs.copy_files", "copy_to_local", "copy_to_hdfs"]
        results: dict[str, list[dict]] = {m: [] for m in methods}
        for _ in range(REPEATS):
            for method in methods:  # interleaved so cache state is shared fairly
                results[method].append(run(method, src, home))
        rows = {}
        for method, runs in results.items():
            secs = statistics.median(r["seconds"] for r in runs)
            rss = max(r["rss_growth_mib"] for r in runs)
            rows[method] = (secs, SIZE_MIB / secs, rss)
        best_peer = min(rows["shutil.copyfile"][0], rows["pyarrow.fs.copy_files"][0])
        print(f"\ncopy of a {SIZE_MIB} MiB file, median of {REPEATS} runs (local backend)\n")
        print(
            f"{'method':<24}{'seconds':>9}{'MiB/s':>9}{'peak RSS +MiB':>15}{'vs faster peer':>16}"
        )
        for method, (secs, rate, rss) in rows.items():
            print(f"{method:<24}{secs:>9.2f}{rate:>9.0f}{rss:>15.1f}{best_peer / secs:>15.0%}")
        ok = all(
            best_peer / rows[m][0] >= 0.8 and rows[m][2] < 100
            for m in ("copy_to_local", "copy_to_hdfs")
        )
        print(
            f"\ntarget (ours >= 80% of faster peer, RSS growth < 100 MiB): {'met' if ok else 'MISSED'}"
        )


if __name__ == "__main__":
    main()
