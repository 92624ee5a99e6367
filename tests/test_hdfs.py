"""The `hdfs` module on the local backend, for real; HDFS URL handling without a cluster."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hops import hdfs
from hops_jupyter.core import context


@pytest.fixture
def root(hops_home) -> Path:
    """The project folder on disk."""
    hdfs.project_path()
    return hops_home / "Projects" / "demo"


# --- the seed's examples -------------------------------------------------------------------


def test_project_identity_and_paths(hops_home, root):
    assert hdfs.project_name() == "demo"
    assert hdfs.project_user().startswith("demo__")
    assert hdfs.project_id().isdigit()
    assert hdfs.project_path() == f"file://{root}/"
    assert hdfs.project_path(exclude_nn_addr=True) == "/Projects/demo/"
    assert hdfs.project_path("other") == f"file://{hops_home}/Projects/other/"
    for dataset in ("Resources", "Logs", "Experiments", "Jupyter", "Models"):
        assert (root / dataset).is_dir()


def test_relative_full_and_other_project_paths(hops_home, root):
    hdfs.dump("relative", "Resources/a.txt")
    full = hdfs.project_path() + "Resources/a.txt"
    assert hdfs.load(full) == b"relative"
    assert hdfs.load("/Projects/demo/Resources/a.txt") == b"relative"
    # No namenode: the default filesystem, which is the embedded root here.
    assert hdfs.load("hdfs:///Projects/demo/Resources/a.txt") == b"relative"
    assert hdfs.load("hopsfs:///Projects/demo/Resources/a.txt") == b"relative"
    assert hdfs.load(f"file://{root}/Resources/a.txt") == b"relative"
    assert hdfs.abs_path("Resources/a.txt") == f"file://{root}/Resources/a.txt"
    assert hdfs.get_plain_path(full) == "/Projects/demo/Resources/a.txt"
    hdfs.mkdir("Resources", project="other")
    hdfs.dump("theirs", hdfs.project_path("other") + "Resources/b.txt")
    assert hdfs.exists("Resources/b.txt", project="other")
    assert not hdfs.exists("Resources/b.txt")
    assert hdfs.load("/Projects/other/Resources/b.txt") == b"theirs"


def test_get_fs_open_file_as_in_the_seed(root):
    fs = hdfs.get_fs()
    fd = fs.open_file(hdfs.project_path() + "Resources/seed.txt", flags="w")
    fd.write("line one\n")
    fd.write(b"line two\n")
    fd.close()
    with hdfs.open_file("Resources/seed.txt", flags="rt") as text:
        assert text.readlines() == ["line one\n", "line two\n"]
    with hdfs.open_file("Resources/seed.txt", flags="r") as raw:
        assert raw.read() == b"line one\nline two\n"
    with hdfs.open_file("Resources/seed.txt", flags="a") as out:
        out.write(b"line three\n")
    assert hdfs.load("Resources/seed.txt").count(b"\n") == 3
    # The handle also exposes pyarrow.
    import pyarrow.fs

    assert isinstance(fs.pyarrow, pyarrow.fs.FileSystem)
    assert fs.get_file_info(str(root / "Resources" / "seed.txt")).size == 29


def test_copy_both_ways_files_and_directories(tmp_path, root):
    local = tmp_path / "data"
    (local / "sub").mkdir(parents=True)
    (local / "x.csv").write_text("1,2\n")
    (local / "sub" / "y.csv").write_text("3,4\n")
    assert hdfs.copy_to_hdfs(str(local / "x.csv"), "Resources") == hdfs.abs_path("Resources/x.csv")
    assert hdfs.copy_to_hdfs(str(local), "Resources/in") == hdfs.abs_path("Resources/in/data")
    assert (root / "Resources" / "in" / "data" / "sub" / "y.csv").read_text() == "3,4\n"

    out = tmp_path / "out"
    got = hdfs.copy_to_local("Resources/in/data", str(out))
    assert got == str(out / "data")
    assert (out / "data" / "sub" / "y.csv").read_text() == "3,4\n"
    # Default destination: the working directory.
    assert hdfs.copy_to_local("Resources/x.csv") == os.path.join(os.getcwd(), "x.csv")
    assert Path("x.csv").read_text() == "1,2\n"


def test_copy_to_local_skips_identical_and_refuses_different(tmp_path, root):
    hdfs.dump("same bytes", "Resources/f.txt")
    first = Path(hdfs.copy_to_local("Resources/f.txt", str(tmp_path)))
    os.utime(first, (1, 1))
    hdfs.copy_to_local("Resources/f.txt", str(tmp_path))
    assert first.stat().st_mtime == 1  # identical: not downloaded again
    first.write_text("local edit!")
    with pytest.raises(FileExistsError, match=str(first)):
        hdfs.copy_to_local("Resources/f.txt", str(tmp_path))
    assert first.read_text() == "local edit!"  # nothing touched
    hdfs.copy_to_local("Resources/f.txt", str(tmp_path), overwrite=True)
    assert first.read_text() == "same bytes"


def test_copy_to_hdfs_refuses_to_overwrite(tmp_path, root):
    src = tmp_path / "m.bin"
    src.write_bytes(b"v1")
    hdfs.copy_to_hdfs(str(src), "Models")
    src.write_bytes(b"version 2")
    with pytest.raises(FileExistsError, match="Models/m.bin.*overwrite=True"):
        hdfs.copy_to_hdfs(str(src), "Models")
    assert hdfs.load("Models/m.bin") == b"v1"
    hdfs.copy_to_hdfs(str(src), "Models", overwrite=True)
    assert hdfs.load("Models/m.bin") == b"version 2"
    assert [p for p in os.listdir(root / "Models") if p.startswith(".")] == []


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["../other/x", "Resources/../../x", ".."])
def test_escaping_relative_path_is_refused(path):
    with pytest.raises(ValueError, match="escapes the project") as err:
        hdfs.dump("x", path)
    assert repr(path) in str(err.value)


def test_missing_file_errors_name_the_path():
    with pytest.raises(FileNotFoundError, match="Resources/nope.txt"):
        hdfs.load("Resources/nope.txt")
    with pytest.raises(FileNotFoundError, match="nope"):
        hdfs.copy_to_local("Resources/nope")
    with pytest.raises(FileNotFoundError, match="/no/such/local"):
        hdfs.copy_to_hdfs("/no/such/local", "Resources")


def test_unknown_scheme_is_named():
    with pytest.raises(ValueError, match="Unknown scheme 's3' in path 's3://b/k'"):
        hdfs.exists("s3://b/k")


def test_bad_flags_and_bad_dump_data():
    with pytest.raises(ValueError, match="'x'"):
        hdfs.open_file("Resources/a", flags="x")
    with pytest.raises(TypeError, match="dict"):
        hdfs.dump({"a": 1}, "Resources/a.json")


# --- atomicity -----------------------------------------------------------------------------


def test_exception_inside_write_keeps_old_version(root):
    hdfs.dump("old", "Resources/a.txt")
    with pytest.raises(RuntimeError):
        with hdfs.open_file("Resources/a.txt", flags="w") as out:
            out.write("half of the new")
            raise RuntimeError("boom")
    assert hdfs.load("Resources/a.txt") == b"old"
    assert sorted(os.listdir(root / "Resources")) == ["a.txt"]


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_process_dying_mid_write_leaves_no_torn_file(root):
    hdfs.dump("old", "Resources/a.txt")
    done = _python(
        """
        import os
        from hops import hdfs
        out = hdfs.open_file("Resources/a.txt", flags="w")
        out.write(b"n" * 5_000_000)
        os._exit(3)
        """
    )
    assert done.returncode == 3, done.stderr
    assert hdfs.load("Resources/a.txt") == b"old"


def test_concurrent_dumps_leave_one_whole_version(root):
    writer = """
        import sys
        from hops import hdfs
        tag = sys.argv[1]
        for i in range(40):
            hdfs.dump((tag * 200_000).encode(), "Resources/shared.bin")
        """
    procs = [
        subprocess.Popen([sys.executable, "-c", textwrap.dedent(writer), tag]) for tag in "abc"
    ]
    seen = set()
    while any(p.poll() is None for p in procs):
        if hdfs.exists("Resources/shared.bin"):
            data = hdfs.load("Resources/shared.bin")
            assert len(data) == 200_000 and len(set(data)) == 1, "torn file seen"
            seen.add(data[:1])
    assert all(p.wait() == 0 for p in procs)
    final = hdfs.load("Resources/shared.bin")
    assert len(final) == 200_000 and len(set(final)) == 1
    assert seen  # the reader did observe versions while writers ran


# --- the rest of the API -------------------------------------------------------------------


def test_listing_glob_and_metadata(root):
    hdfs.dump("1", "Resources/a/one.json")
    hdfs.dump("22", "Resources/a/two.json")
    hdfs.dump("333", "Resources/b/three.csv")
    assert hdfs.ls("Resources") == [hdfs.abs_path("Resources/a"), hdfs.abs_path("Resources/b")]
    assert len(hdfs.ls("Resources", recursive=True)) == 5
    assert hdfs.ls("Resources/a", exclude_nn_addr=True) == [
        "/Projects/demo/Resources/a/one.json",
        "/Projects/demo/Resources/a/two.json",
    ]
    assert hdfs.glob("Resources/a/*.json") == [
        hdfs.abs_path("Resources/a/one.json"),
        hdfs.abs_path("Resources/a/two.json"),
    ]
    assert hdfs.glob("Resources/*/t*") == [
        hdfs.abs_path("Resources/a/two.json"),
        hdfs.abs_path("Resources/b/three.csv"),
    ]
    assert hdfs.glob("Resources/*.json") == []
    assert len(hdfs.glob("Resources/*.json", recursive=True)) == 2
    entries = {e.name.rsplit("/", 1)[1]: e for e in hdfs.lsl("Resources/a")}
    assert entries["two.json"].size == 2 and entries["two.json"].kind == "file"
    st = hdfs.stat("Resources/b")
    assert st.kind == "directory" and st["owner"] and st.st_mode is not None
    assert hdfs.isdir("Resources/a") and hdfs.isfile("Resources/a/one.json")
    assert not hdfs.isfile("Resources/a")


def test_mkdir_move_rename_cp_delete(root):
    hdfs.mkdir("Resources/x/y/z")
    assert hdfs.isdir("Resources/x/y/z")
    hdfs.dump("v", "Resources/x/f.txt")
    hdfs.cp("Resources/x", "Resources/x2")
    assert hdfs.load("Resources/x2/f.txt") == b"v"
    with pytest.raises(FileExistsError):
        hdfs.cp("Resources/x", "Resources/x2")
    hdfs.move("Resources/x2/f.txt", "Resources/moved.txt")
    hdfs.rename("Resources/moved.txt", "Resources/renamed.txt")
    assert hdfs.load("Resources/renamed.txt") == b"v"
    hdfs.move("Resources/renamed.txt", "Models")  # into an existing directory
    assert hdfs.exists("Models/renamed.txt")
    with pytest.raises(OSError, match="not empty"):
        hdfs.delete("Resources/x")
    hdfs.delete("Resources/x", recursive=True)
    hdfs.delete("Resources/never-there")  # no-op, as in the seed
    hdfs.rmr("Resources/x2")
    assert not hdfs.exists("Resources/x") and not hdfs.exists("Resources/x2")


def test_chmod_access_chown_capacity(root):
    hdfs.dump("secret", "Resources/s.txt")
    hdfs.chmod("Resources/s.txt", 0o600)
    assert hdfs.stat("Resources/s.txt").permissions == 0o600
    assert hdfs.access("Resources/s.txt", os.R_OK)
    hdfs.chown("Resources/s.txt", hdfs.stat("Resources/s.txt").owner, "")
    assert hdfs.capacity() > 0


def test_add_module_py_and_notebook_with_reload(root):
    hdfs.dump("VALUE = 1\n", "Resources/mymod.py")
    local = hdfs.add_module("Resources/mymod.py")
    import mymod

    assert mymod.VALUE == 1 and local.endswith("mymod.py")
    hdfs.dump("VALUE = 2\n", "Resources/mymod.py")
    hdfs.add_module("Resources/mymod.py")
    assert mymod.VALUE == 2
    notebook = {
        "cells": [{"id": "c1", "cell_type": "code", "metadata": {}, "source": "def f():\n    return 42\n",
                   "outputs": [], "execution_count": None}],
        "metadata": {}, "nbformat": 4, "nbformat_minor": 5,
    }  # fmt: skip
    hdfs.dump(json.dumps(notebook), "Jupyter/mynb.ipynb")
    hdfs.add_module("Jupyter/mynb.ipynb")
    import mynb

    assert mynb.f() == 42
    with pytest.raises(ValueError, match="not a .py or .ipynb"):
        hdfs.dump("x", "Resources/data.txt")
        hdfs.add_module("Resources/data.txt")


def test_is_tls_enabled_reads_core_site(tmp_path, monkeypatch):
    assert hdfs.is_tls_enabled() is False
    (tmp_path / "core-site.xml").write_text(
        "<configuration><property><name>ipc.server.ssl.enabled</name><value>true</value>"
        "</property></configuration>"
    )
    monkeypatch.setenv("HADOOP_CONF_DIR", str(tmp_path))
    assert hdfs.is_tls_enabled() is True


def test_log_outside_and_inside_a_trial(root):
    hdfs.log("hello from the notebook")
    assert "hello from the notebook" in (root / "Logs" / "hops.log").read_text()
    trial_dir = root / "Experiments" / "e1" / "lr=0.1"
    trial_dir.mkdir(parents=True)
    ctx = context.TrialContext("e1", "lr=0.1", f"file://{trial_dir}", {"lr": 0.1})
    with context.running_trial(ctx):
        hdfs.log("epoch 1")
        hdfs.log({"not": "a string"})
    lines = (trial_dir / "hdfs.log").read_text().splitlines()
    assert lines[0].endswith(": epoch 1") and "{'not': 'a string'}" in lines[1]
    assert "epoch 1" not in (root / "Logs" / "hops.log").read_text()


# --- HDFS backend: URL handling without a cluster ------------------------------------------


def test_hdfs_root_url_handling(monkeypatch):
    monkeypatch.setenv("HOPS_ROOT", "hdfs://namenode.hops:8020")
    monkeypatch.setenv("HADOOP_USER_NAME", "demo__meb10000")
    assert hdfs.project_path() == "hdfs://namenode.hops:8020/Projects/demo/"
    assert hdfs.project_path(exclude_nn_addr=True) == "/Projects/demo/"
    assert hdfs.abs_path("Resources/x") == "hdfs://namenode.hops:8020/Projects/demo/Resources/x"
    assert hdfs.abs_path("hopsfs://10.0.2.15:8020/Projects/demo/Models/") == (
        "hdfs://10.0.2.15:8020/Projects/demo/Models"
    )
    assert hdfs.abs_path("hdfs:///Projects/demo/Models") == (
        "hdfs://namenode.hops:8020/Projects/demo/Models"
    )
    assert (
        hdfs.get_plain_path("hdfs://namenode.hops:8020/Projects/demo_deep_learning/Models/")
        == "/Projects/demo_deep_learning/Models"
    )
    with pytest.raises(ValueError, match="Bad port 'x'"):
        hdfs.abs_path("hdfs://nn:x/Projects")
    # No Hadoop here: touching the filesystem fails fast with a clear message.
    with pytest.raises(
        ConnectionError, match=r"Cannot connect to HDFS at hdfs://namenode.hops:8020.*libhdfs"
    ):
        hdfs.exists("Resources")


# --- issue #13: `project=` names, leading '/', copy_to_local, temp files, stat fields -------


@pytest.mark.parametrize("bad", ["../..", "../../../../etc", "a/b", "..", ".", "demo/../x", " "])
def test_project_argument_is_checked_like_the_configured_name(hops_home, root, bad):
    calls = {
        "dump": lambda: hdfs.dump("X", "escaped.txt", project=bad),
        "load": lambda: hdfs.load("hostname", project=bad),
        "exists": lambda: hdfs.exists("x", project=bad),
        "ls": lambda: hdfs.ls("", project=bad),
        "mkdir": lambda: hdfs.mkdir("d", project=bad),
        "abs_path": lambda: hdfs.abs_path("x", project=bad),
        "project_path": lambda: hdfs.project_path(bad),
        "get_fs": lambda: hdfs.get_fs(bad),
        "copy_to_hdfs": lambda: hdfs.copy_to_hdfs(__file__, "Resources", project=bad),
        "namespace path": lambda: hdfs.exists("/Projects/demo/Resources", project=bad),
    }
    for what, call in calls.items():
        with pytest.raises(ValueError, match="letters, digits and '_'") as err:
            call()
        assert repr(bad) in str(err.value), what
    assert not list(hops_home.parent.rglob("escaped.txt"))


def test_project_argument_cannot_reach_outside_the_root(hops_home, root):
    # The two examples of the issue: both used to leave $HOPS_HOME.
    with pytest.raises(ValueError, match=r"'\.\./\.\.'"):
        hdfs.dump("X", "escaped.txt", project="../..")
    with pytest.raises(ValueError, match="etc"):
        hdfs.load("hostname", project="../../../../etc")
    assert not (hops_home.parent / "escaped.txt").exists()
    # A valid other project still works, and "" or None mean the current one.
    hdfs.dump("theirs", "Resources/t.txt", project="other_1")
    assert (hops_home / "Projects" / "other_1" / "Resources" / "t.txt").read_text() == "theirs"
    assert hdfs.exists("Resources/t.txt", project="") is False
    assert hdfs.project_path("") == hdfs.project_path()


def test_leading_slash_is_project_relative(tmp_path, hops_home, root):
    local = tmp_path / "local.txt"
    local.write_text("local data")
    got = hdfs.copy_to_hdfs(str(local), "/Resources")
    assert got == hdfs.abs_path("Resources/local.txt")
    assert (root / "Resources" / "local.txt").read_text() == "local data"
    assert not (hops_home / "Resources").exists()  # not root-absolute any more

    hdfs.dump("1", "Resources/a/f1.txt")
    assert hdfs.exists("/Resources/a/f1.txt")
    assert hdfs.load("//Resources/a/f1.txt") == b"1"
    assert hdfs.ls("/Resources/a") == [hdfs.abs_path("Resources/a/f1.txt")]
    assert hdfs.abs_path("/") == hdfs.abs_path(".") == f"file://{root}"
    assert hdfs.get_plain_path("/Models") == "/Projects/demo/Models"
    hdfs.delete("/Resources/a", recursive=True)
    assert not (root / "Resources" / "a").exists()
    # With project=, a leading '/' is relative to that project.
    hdfs.mkdir("/Resources", project="other")
    assert (hops_home / "Projects" / "other" / "Resources").is_dir()

    # /Projects/... stays namespace-absolute, full URLs stay as they are.
    assert hdfs.abs_path("/Projects/demo/Models") == f"file://{root}/Models"
    assert hdfs.abs_path("/Projects") == f"file://{hops_home}/Projects"
    assert hdfs.abs_path("hdfs:///Projects/demo/Models") == f"file://{root}/Models"
    assert hdfs.abs_path(f"file://{tmp_path}/x") == f"file://{tmp_path}/x"
    # A relative path that merely starts with "Projects" is inside the project.
    assert hdfs.abs_path("Projects/x") == f"file://{root}/Projects/x"


@pytest.mark.parametrize("path", ["/..", "/Resources/../../x", "/../demo2/x"])
def test_leading_slash_cannot_escape_the_project(path):
    with pytest.raises(ValueError, match="escapes the project") as err:
        hdfs.exists(path)
    assert repr(path) in str(err.value)


def test_namespace_path_cannot_leave_projects():
    with pytest.raises(ValueError, match=r"'/Projects/\.\./etc/hostname' leaves /Projects"):
        hdfs.load("/Projects/../etc/hostname")


def test_copy_to_local_names_the_new_file(tmp_path, root):
    hdfs.dump('{"a": 1}', "Resources/mydata.json")
    # The seed's example: a file path that is not an existing directory names the new file.
    got = hdfs.copy_to_local("Resources/mydata.json", "local_file_name")
    assert got == os.path.join(os.getcwd(), "local_file_name")
    assert Path("local_file_name").is_file()
    assert Path("local_file_name").read_text() == '{"a": 1}'
    # Missing parent folders are made.
    nested = tmp_path / "deep" / "er" / "copy.json"
    assert hdfs.copy_to_local("Resources/mydata.json", str(nested)) == str(nested)
    assert nested.read_text() == '{"a": 1}'
    # An existing directory, or a path ending in '/', is a folder to copy into.
    (tmp_path / "existing").mkdir()
    assert hdfs.copy_to_local("Resources/mydata.json", str(tmp_path / "existing")) == str(
        tmp_path / "existing" / "mydata.json"
    )
    into = hdfs.copy_to_local("Resources/mydata.json", "newdir/")
    assert into == os.path.join(os.getcwd(), "newdir", "mydata.json")
    # An existing, different file is replaced only with overwrite=True; an identical one kept.
    Path("local_file_name").write_text("edited")
    with pytest.raises(FileExistsError, match="local_file_name.*overwrite=True"):
        hdfs.copy_to_local("Resources/mydata.json", "local_file_name")
    assert Path("local_file_name").read_text() == "edited"
    hdfs.copy_to_local("Resources/mydata.json", "local_file_name", overwrite=True)
    assert Path("local_file_name").read_text() == '{"a": 1}'
    assert hdfs.copy_to_local("Resources/mydata.json", "local_file_name") == got


def test_copy_to_local_directory_goes_into_local_path(tmp_path, root):
    hdfs.dump("1", "Resources/tree/one.txt")
    got = hdfs.copy_to_local("Resources/tree", str(tmp_path / "fresh"))
    assert got == str(tmp_path / "fresh" / "tree")
    assert (tmp_path / "fresh" / "tree" / "one.txt").read_text() == "1"
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(NotADirectoryError, match="a_file.*is a file"):
        hdfs.copy_to_local("Resources/tree", str(tmp_path / "a_file"))


def _temps(folder: Path) -> list[str]:
    """The hidden (temporary) names in a folder."""
    return sorted(n for n in os.listdir(folder) if n.startswith("."))


def _writing(folder: Path) -> bool:
    """True while a temporary file there has data in it: a write is under way."""
    for name in _temps(folder):
        try:
            if (folder / name).stat().st_size > 0:
                return True
        except FileNotFoundError:
            pass  # renamed into place meanwhile
    return False


def _listed_names() -> dict[str, list[str]]:
    """What each listing shows of Resources/big, by name."""
    from types import SimpleNamespace

    from hops_jupyter.magics import _hdfs_ls

    magic = _hdfs_ls(SimpleNamespace(paths=["Resources/big"], recursive=True))
    return {
        "ls": [u.rsplit("/", 1)[1] for u in hdfs.ls("Resources/big", recursive=True)],
        "lsl": [e.name.rsplit("/", 1)[1] for e in hdfs.lsl("Resources/big", recursive=True)],
        "glob": [u.rsplit("/", 1)[1] for u in hdfs.glob("Resources/big/*")]
        + [u.rsplit("/", 1)[1] for u in hdfs.glob("Resources/big/.*")],
        "%hdfs ls": [row[0] for row in magic.rows],
    }


def test_sigkill_during_dump_leftover_is_hidden_then_swept(root):
    """A real SIGKILL of a process in the middle of `hdfs.dump` of a large bytes object."""
    import signal
    import time

    folder = root / "Resources" / "big"
    folder.mkdir()
    writer = """
        from hops import hdfs
        data = b"x" * (64 * 1024 * 1024)
        for _ in range(40):
            hdfs.dump(data, "Resources/big/big.bin")
        """
    for _attempt in range(5):
        child = subprocess.Popen([sys.executable, "-c", textwrap.dedent(writer)])
        deadline = time.monotonic() + 60
        while child.poll() is None and time.monotonic() < deadline and not _writing(folder):
            time.sleep(0.001)
        child.send_signal(signal.SIGKILL)
        assert child.wait() == -signal.SIGKILL, "the writer finished before it could be killed"
        if _temps(folder):
            break
    (leftover,) = _temps(folder)
    # Hidden from every listing, the `%hdfs ls` table included.
    for listing, names in _listed_names().items():
        assert leftover not in names, listing
    # The name is short and names its owner: host id, pid, start time, random part.
    assert leftover.startswith(".hops-tmp-") and len(leftover.encode()) <= 48
    assert f"-{child.pid:x}-" in leftover
    # The next write into that folder removes it, and writes normally.
    hdfs.dump("small", "Resources/big/next.txt")
    assert _temps(folder) == []
    assert hdfs.load("Resources/big/next.txt") == b"small"


def test_temp_file_of_a_live_writer_is_kept_until_its_owner_dies(root):
    """A second process holds a write open; other writes leave its temp file alone, and once
    the process is SIGKILLed the next write removes it."""
    import signal

    folder = root / "Resources" / "big"
    folder.mkdir()
    child = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys, time
                from hops import hdfs
                out = hdfs.open_file("Resources/big/slow.bin", flags="w")
                out.write(b"s" * 20_000_000)
                out.flush()
                print("writing", flush=True)
                time.sleep(120)
                """
            ),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "writing"
        (live,) = _temps(folder)
        hdfs.dump("mine", "Resources/big/mine.txt")
        assert _temps(folder) == [live]  # its owner is alive: kept
        assert "slow.bin" not in _listed_names()["ls"]
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert not hdfs.exists("Resources/big/slow.bin")  # a killed write never appears
    hdfs.dump("again", "Resources/big/mine.txt")
    assert _temps(folder) == []


def test_copy_to_hdfs_sweeps_dead_writers_directories(tmp_path, root):
    from hops_jupyter.core import filesystem

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = root / "Models" / f".hops-tmp-{filesystem._host_id()}-{dead.pid:x}-1-0123abcd"
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "part.bin").write_bytes(b"half")
    assert hdfs.ls("Models") == []
    src = tmp_path / "model"
    src.mkdir()
    (src / "w.bin").write_bytes(b"weights")
    hdfs.copy_to_hdfs(str(src), "Models")
    assert sorted(os.listdir(root / "Models")) == ["model"]


def test_temp_files_whose_owner_cannot_be_checked_go_only_when_old(root):
    folder = root / "Resources"
    foreign_old = folder / ".hops-tmp-00000000-1f-2a-00000000"
    foreign_new = folder / ".hops-tmp-00000000-20-2a-00000001"
    legacy_old = folder / ".data.csv.tmp-0123456789ab"
    for path in (foreign_old, foreign_new, legacy_old):
        path.write_bytes(b"?")
    long_ago = 1_000_000_000
    os.utime(foreign_old, (long_ago, long_ago))
    os.utime(legacy_old, (long_ago, long_ago))
    assert hdfs.ls("Resources") == []  # all hidden
    hdfs.dump("x", "Resources/x.txt")
    assert sorted(p.name for p in folder.iterdir()) == [foreign_new.name, "x.txt"]


def test_names_up_to_255_bytes_can_be_written(tmp_path, root):
    name = "n" * 251 + ".bin"
    assert len(name.encode()) == 255
    hdfs.dump("first", f"Resources/{name}")
    hdfs.dump("second", f"Resources/{name}")
    with hdfs.open_file(f"Resources/{name}", flags="w") as out:
        out.write("third")
    assert hdfs.load(f"Resources/{name}") == b"third"
    wide = "é" * 127 + "x"  # 255 bytes in UTF-8
    assert len(wide.encode()) == 255
    local = tmp_path / wide
    local.write_bytes(b"v1")
    hdfs.copy_to_hdfs(str(local), "Models")
    local.write_bytes(b"v2")
    hdfs.copy_to_hdfs(str(local), "Models", overwrite=True)  # swaps via a staged copy
    assert hdfs.load(f"Models/{wide}") == b"v2"
    hdfs.cp(f"Models/{wide}", "Resources", overwrite=True)
    assert hdfs.load(f"Resources/{wide}") == b"v2"
    assert [n for n in os.listdir(root / "Models") if n.startswith(".")] == []


def test_stat_and_lsl_entries_have_the_pydoop_fields(root):
    hdfs.dump("12345", "Resources/s/f.txt")
    st = hdfs.stat("Resources/s/f.txt")
    disk = os.stat(root / "Resources" / "s" / "f.txt")
    assert (st.st_uid, st.st_gid) == (disk.st_uid, disk.st_gid)
    assert st.st_atime == disk.st_atime and st.st_blksize == disk.st_blksize
    # Today's attributes keep working.
    assert (st.st_size, st.size, st.kind, st.st_mode) == (5, 5, "file", st.permissions)
    assert st["st_size"] == 5 and st["owner"] == st.owner

    (entry,) = hdfs.lsl("Resources/s")
    assert entry["path"] == entry["name"] == entry.path == hdfs.abs_path("Resources/s/f.txt")
    assert entry["last_access"] == disk.st_atime
    assert entry["replication"] == 1 and entry["block_size"] == disk.st_blksize
    assert entry.get("owner") == entry.owner and entry.get("nope", "dflt") == "dflt"
    as_dict = dict(entry)
    assert set(as_dict) == {
        "name", "path", "kind", "size", "owner", "group", "permissions", "last_mod",
        "last_access", "replication", "block_size",
    }  # fmt: skip
    assert as_dict["size"] == 5 and "size" in entry and "nope" not in entry
    with pytest.raises(KeyError, match="'nope'.*block_size"):
        entry["nope"]
