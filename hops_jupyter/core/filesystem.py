"""Filesystem URLs to pyarrow filesystems, namespace path resolution, atomic writes and copies.

The project namespace (`/Projects/<name>/...`) lives under a root URL: `file:///home/me/.hops` on
one machine, `hdfs://namenode:8020` on a cluster. Everything that touches files goes through
`Location`, so the local and HDFS backends behave the same.
"""

from __future__ import annotations

import functools
import os
import posixpath
import re
import secrets
import shutil
import socket
import threading
import time
import zlib
from dataclasses import dataclass, replace
from types import ModuleType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from hops_jupyter.core.project import Project, check_project_name

if TYPE_CHECKING:
    import pyarrow.fs as pafs

PathLike = str | bytes | os.PathLike
_COPY_CHUNK = 8 * 1024 * 1024
_hdfs_cache: dict[tuple[str, int, str | None], pafs.FileSystem] = {}
_hdfs_lock = threading.Lock()


def arrow() -> ModuleType:
    """pyarrow.fs, imported on first use rather than with this module: a worker's fork
    server whose trials write only local files never loads it (its ~300 memory mappings
    cost every forked trial about 1.5 ms of CPU here, measured in benchmarks/trials.py)."""
    import pyarrow.fs

    return pyarrow.fs


@functools.cache
def _local_filesystem() -> pafs.FileSystem:
    return arrow().LocalFileSystem()


@dataclass(frozen=True)
class Location:
    """A path on one filesystem: `scheme` is "file" or "hdfs"; `path` is what pyarrow sees."""

    scheme: str
    path: str
    host: str = ""
    port: int = 0
    user: str | None = None

    @property
    def url(self) -> str:
        """The full URL users see (`file:///...` or `hdfs://host:port/...`)."""
        if self.scheme == "file":
            return "file://" + self.path
        netloc = f"{self.host}:{self.port}" if self.port else self.host
        return f"hdfs://{netloc}{self.path}"

    @property
    def fs(self) -> pafs.FileSystem:
        return filesystem(self)

    @property
    def name(self) -> str:
        return posixpath.basename(self.path)

    @property
    def parent(self) -> Location:
        return replace(self, path=posixpath.dirname(self.path) or "/")

    def child(self, *names: str) -> Location:
        return replace(self, path=posixpath.join(self.path, *names))

    def info(self) -> pafs.FileInfo:
        return self.fs.get_file_info(self.path)

    # Local checks and folders use the standard library: a trial's own path never loads pyarrow.
    def exists(self) -> bool:
        if self.scheme == "file":
            return os.path.exists(self.path)
        return self.info().type != arrow().FileType.NotFound

    def isdir(self) -> bool:
        if self.scheme == "file":
            return os.path.isdir(self.path)
        return self.info().type == arrow().FileType.Directory

    def isfile(self) -> bool:
        if self.scheme == "file":
            return os.path.isfile(self.path)
        return self.info().type == arrow().FileType.File

    def make_dirs(self) -> None:
        """Create this folder and its parents; nothing when it exists."""
        if self.scheme == "file":
            os.makedirs(self.path, exist_ok=True)
        else:
            self.fs.create_dir(self.path, recursive=True)

    def __str__(self) -> str:
        return self.url


def filesystem(loc: Location) -> pafs.FileSystem:
    """The pyarrow filesystem for a location; HDFS connections are opened once and cached."""
    if loc.scheme == "file":
        return _local_filesystem()
    key = (loc.host or "default", loc.port, loc.user)
    with _hdfs_lock:
        if key not in _hdfs_cache:
            try:
                _hdfs_cache[key] = arrow().HadoopFileSystem(key[0], key[1], user=loc.user)
            except OSError as err:
                first = str(err).strip().splitlines()[0] if str(err).strip() else repr(err)
                raise ConnectionError(
                    f"Cannot connect to HDFS at {loc.url}: {first}. HDFS needs Hadoop's libhdfs "
                    "and a JVM: set JAVA_HOME, HADOOP_HOME and CLASSPATH=$(hadoop classpath --glob)"
                ) from None
        return _hdfs_cache[key]


def close_all() -> None:
    """Forget cached HDFS connections (the next call reconnects)."""
    with _hdfs_lock:
        _hdfs_cache.clear()


def _split_netloc(netloc: str, url: str) -> tuple[str, int]:
    host, _, port = netloc.partition(":")
    if port and not port.isdigit():
        raise ValueError(f"Bad port {port!r} in {url!r}: write hdfs://host:port/path")
    return host, int(port or 0)


def root_location(project: Project) -> Location:
    """Where the project namespace `/` lives for this configuration."""
    parts = urlsplit(project.root)
    if parts.scheme == "file":
        return Location("file", parts.path or "/")
    host, port = _split_netloc(parts.netloc, project.root)
    return Location("hdfs", parts.path or "/", host or "default", port, project.project_user)


def to_text(path: PathLike) -> str:
    """Accept str, bytes and path-like objects (experiment results included)."""
    if isinstance(path, bytes):
        return path.decode()
    text = os.fspath(path) if isinstance(path, os.PathLike) else path
    if not isinstance(text, str):
        raise TypeError(f"Expected a path string, got {type(path).__name__}: {path!r}")
    if not text:
        raise ValueError("Path is empty: give a project-relative path, /Projects/... or a URL")
    return text


def resolve(path: PathLike, project: Project, in_project: str | None = None) -> Location:
    """Resolve a user path as the seed's `hdfs` module does: a full URL as it is, `/Projects/...`
    in the namespace, anything else relative to the project, with or without a leading '/'
    (`/Resources/x` is the project's `Resources/x`). `in_project` names another project for
    relative paths; it is checked like the configured name, so it cannot lead outside
    `/Projects/<name>`."""
    name = check_project_name(in_project, "project=") if in_project else project.name
    text = to_text(path)
    if "://" in text:
        return _resolve_url(text, project)
    absolute = "/" + text.lstrip("/")
    if text.startswith("/") and (absolute == "/Projects" or absolute.startswith("/Projects/")):
        ns_path = posixpath.normpath(absolute)
        if ns_path != "/Projects" and not ns_path.startswith("/Projects/"):
            raise ValueError(
                f"Path {text!r} leaves /Projects with '..': namespace paths must stay inside "
                "/Projects; write a full URL (file:///..., hdfs://...) for anything else"
            )
    else:
        rel = posixpath.normpath(text.lstrip("/") or ".")
        base = f"/Projects/{name}"
        if rel == ".." or rel.startswith("../"):
            raise ValueError(
                f"Path {text!r} escapes the project with '..': project paths must stay inside "
                f"{base}; write an absolute /Projects/... path to reach another project"
            )
        ns_path = base if rel == "." else f"{base}/{rel}"
    root = root_location(project)
    return replace(root, path=posixpath.normpath(root.path.rstrip("/") + ns_path))


def _resolve_url(text: str, project: Project) -> Location:
    parts = urlsplit(text)
    path = posixpath.normpath("/" + parts.path.lstrip("/")) if parts.path else "/"
    if parts.scheme == "file":
        if parts.netloc:
            raise ValueError(f"Path {text!r}: a file:// URL takes no host, write file:///path")
        return Location("file", path)
    if parts.scheme in ("hdfs", "hopsfs"):
        if not parts.netloc:
            # `hdfs:///Projects/...` names the default filesystem: the configured root, which
            # is local in the embedded default, so seed notebooks run unchanged.
            root = root_location(project)
            return replace(root, path=posixpath.normpath(root.path.rstrip("/") + path))
        host, port = _split_netloc(parts.netloc, text)
        return Location("hdfs", path, host, port, project.project_user)
    raise ValueError(
        f"Unknown scheme {parts.scheme!r} in path {text!r}: use a project-relative path, "
        "/Projects/..., file://, hdfs:// or hopsfs://"
    )


def namespace_path(loc: Location, project: Project) -> str:
    """The path without scheme and namenode (`/Projects/demo/x`); local paths outside the root
    come back as they are."""
    root = root_location(project)
    prefix = root.path.rstrip("/")
    same_fs = loc.scheme == root.scheme and (loc.scheme == "file" or loc.host == root.host)
    if same_fs and (loc.path == prefix or loc.path.startswith(prefix + "/")):
        return loc.path[len(prefix) :] or "/"
    return loc.path


# --- temporary files ---------------------------------------------------------------------
#
# Writes land under a hidden temporary name and are renamed into place. The name has a fixed
# length (any legal final name, up to 255 bytes, can be written) and names its owner: a host id
# (hostname and pid namespace), the writer's pid and the pid's start time, so a later writer
# can tell a leftover of a killed process from a write still in progress.

TEMP_PREFIX = ".hops-tmp-"
_TEMP_RE = re.compile(
    r"^\.hops-tmp-(?P<host>[0-9a-f]{8})-(?P<pid>[0-9a-f]{1,8})-(?P<start>[0-9a-f]{1,16})"
    r"-[0-9a-f]{8}$"
)
# Temporary names of earlier versions (`.NAME.tmp-<12 hex>`): hidden and swept like foreign ones.
_LEGACY_TEMP_RE = re.compile(r"^\..+\.tmp-[0-9a-f]{12}$")
# A temporary file whose owner cannot be checked from here (another machine, an earlier
# version) is removed only when it has not changed for this long.
UNCHECKABLE_STALE_S = 7 * 24 * 3600.0
# On HDFS a sweep costs a namenode listing: at most one per folder per process this often.
_REMOTE_SWEEP_INTERVAL_S = 30.0
_last_remote_sweep: dict[tuple[str, str, str], float] = {}
_host_id_cache: list[str] = []


def _host_id() -> str:
    """8 hex digits for this machine and pid namespace: pids compare only inside one."""
    if not _host_id_cache:
        try:
            pid_ns = os.stat("/proc/self/ns/pid").st_ino
        except OSError:
            pid_ns = 0
        _host_id_cache.append(f"{zlib.crc32(f'{socket.gethostname()}:{pid_ns}'.encode()):08x}")
    return _host_id_cache[0]


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks after boot) of a process from /proc, None if unknown."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data.rsplit(b")", 1)[-1].split()
    try:
        return fields[0].decode(), int(fields[19])
    except (IndexError, ValueError):
        return None


def is_temp_name(name: str) -> bool:
    """True for the hidden names of writes in progress (or left by killed writers); listings
    leave them out."""
    return name.startswith(TEMP_PREFIX) or bool(_LEGACY_TEMP_RE.match(name))


def temp_name() -> str:
    """A fresh temporary name owned by this process: about 40 bytes, whatever the final name."""
    pid = os.getpid()
    start = (_proc_stat(pid) or ("", 0))[1]
    return f"{TEMP_PREFIX}{_host_id()}-{pid:x}-{start:x}-{secrets.token_hex(4)}"


def _owner_gone(name: str) -> bool | None:
    """True when the temp file's owner is known to be dead, False when alive, None when it
    cannot be checked here (another machine or pid namespace, or an old-style name)."""
    match = _TEMP_RE.match(name)
    if not match or match["host"] != _host_id():
        return None
    pid, start = int(match["pid"], 16), int(match["start"], 16)
    if pid <= 0:
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, owned by another user
    now = _proc_stat(pid)
    if now is not None and (now[0] in ("Z", "X") or (start and now[1] != start)):
        return True  # a zombie, or the pid now belongs to a newer process
    return False


def _is_stale(name: str, mtime: float | None, now: float) -> bool:
    gone = _owner_gone(name)
    if gone is not None:
        return gone
    return mtime is not None and now - mtime > UNCHECKABLE_STALE_S


def _local_entry(entry: os.DirEntry) -> tuple[str, float | None, bool]:
    try:
        mtime: float | None = entry.stat(follow_symlinks=False).st_mtime
    except OSError:
        mtime = None  # renamed or removed meanwhile
    return entry.name, mtime, entry.is_dir(follow_symlinks=False)


def sweep_stale_temps(folder: Location) -> list[str]:
    """Remove the temporary files in `folder` whose writers are gone (killed mid-write) and
    return their names. Best effort: a sweep never makes the write that triggers it fail."""
    now = time.time()
    removed = []
    try:
        if folder.scheme == "file":
            with os.scandir(folder.path) as entries:
                found = [_local_entry(e) for e in entries if is_temp_name(e.name)]
        else:
            key = (folder.host, str(folder.port), folder.path)
            if now - _last_remote_sweep.get(key, 0.0) < _REMOTE_SWEEP_INTERVAL_S:
                return []
            _last_remote_sweep[key] = now
            infos = folder.fs.get_file_info(arrow().FileSelector(folder.path, allow_not_found=True))
            found = [
                (
                    i.base_name,
                    i.mtime.timestamp() if i.mtime else None,
                    i.type == arrow().FileType.Directory,
                )
                for i in infos
                if is_temp_name(i.base_name)
            ]
    except OSError:
        return []
    for name, mtime, is_dir in found:
        if not _is_stale(name, mtime, now):
            continue
        path = posixpath.join(folder.path, name)
        try:
            if is_dir:
                folder.fs.delete_dir(path)
            else:
                folder.fs.delete_file(path)
        except OSError:
            continue  # already gone (another sweeper), or not ours to delete
        removed.append(name)
    return removed


def temp_sibling(loc: Location, sweep: bool = True) -> Location:
    """A hidden temporary path next to `loc`, after sweeping leftovers of dead writers there
    (unless `sweep=False`: a writer that rewrites one file often sweeps now and then)."""
    if sweep:
        sweep_stale_temps(loc.parent)
    return loc.parent.child(temp_name())


def _replace(tmp: Location, final: Location) -> None:
    """Rename tmp over final: atomic on a local disk; HDFS renames refuse to overwrite, so the
    old file is removed first (a reader may briefly see no file there, never a torn one)."""
    if final.scheme == "file":
        os.replace(tmp.path, final.path)
        return
    fs = final.fs
    if final.scheme == "hdfs" and final.exists():
        delete(final, recursive=True)
    fs.move(tmp.path, final.path)


def delete(loc: Location, recursive: bool = False) -> None:
    """Delete a file, or a directory (recursive=True for a non-empty one)."""
    info = loc.info()
    if info.type == arrow().FileType.NotFound:
        raise FileNotFoundError(f"No such file or directory: {loc.url}")
    if info.type == arrow().FileType.Directory:
        if not recursive and loc.fs.get_file_info(arrow().FileSelector(loc.path)):
            raise OSError(f"Directory {loc.url} is not empty: pass recursive=True to delete it")
        loc.fs.delete_dir(loc.path)
    else:
        loc.fs.delete_file(loc.path)


class AtomicWriter:
    """A writable file that appears at its path only when closed without error.

    Writes go to a hidden sibling; `close()` renames it into place, an exception inside a `with`
    block (or `abort()`) discards it. Accepts str (UTF-8) and bytes.
    """

    def __init__(self, loc: Location, buffer_size: int | None = None, sweep: bool = True) -> None:
        self.location = loc
        self._tmp = temp_sibling(loc, sweep)
        self._stream: Any
        if loc.scheme == "file":  # the standard library: no Arrow I/O set-up per file
            self._stream = open(self._tmp.path, "wb")  # noqa: SIM115 - closed by close()
        else:
            self._stream = loc.fs.open_output_stream(
                self._tmp.path, buffer_size=buffer_size or None
            )
        self.closed = False

    def write(self, data: str | bytes) -> int:
        if isinstance(data, str):
            data = data.encode()
        self._stream.write(data)
        return len(data)

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self._stream.flush()

    def tell(self) -> int:
        return self._stream.tell()

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._stream.close()
        _replace(self._tmp, self.location)

    def abort(self) -> None:
        """Drop what was written; the target keeps its previous content."""
        if self.closed:
            return
        self.closed = True
        self._stream.close()
        if self._tmp.scheme == "file":
            os.unlink(self._tmp.path)
        else:
            self._tmp.fs.delete_file(self._tmp.path)

    def __enter__(self) -> AtomicWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.abort() if exc_type else self.close()

    def __del__(self) -> None:
        # Like a built-in file, an unclosed writer that goes away keeps what was written.
        if not getattr(self, "closed", True):
            self.close()


def atomic_write(loc: Location, data: str | bytes, sweep: bool = True) -> None:
    """Write a whole file so that readers see the old version or the new one, never a mix."""
    with AtomicWriter(loc, sweep=sweep) as out:
        out.write(data)


def append_line(loc: Location, line: str) -> None:
    """Append one line; a single small append is not interleaved with other writers' lines."""
    data = (line.rstrip("\n") + "\n").encode()
    if loc.scheme == "file":
        # O_APPEND writes below PIPE_BUF are atomic: concurrent reporters never mix lines.
        fd = os.open(loc.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        return
    with loc.fs.open_append_stream(loc.path) as out:
        out.write(data)


def copy(src: Location, dst: Location) -> None:
    """Copy a file or a directory tree, streaming, into dst (which must not exist).

    The copy lands under a hidden temporary name and is renamed into place at the end, so an
    interrupted copy never leaves a partial file at dst.
    """
    info = src.info()
    if info.type == arrow().FileType.NotFound:
        raise FileNotFoundError(f"No such file or directory: {src.url}")
    tmp = temp_sibling(dst)
    try:
        if src.scheme == dst.scheme == "file":
            # shutil uses the kernel's copy_file_range/sendfile: faster than a user-space loop.
            if info.type == arrow().FileType.Directory:
                shutil.copytree(src.path, tmp.path)
            else:
                shutil.copyfile(src.path, tmp.path)
        else:
            if info.type == arrow().FileType.Directory:
                dst.fs.create_dir(tmp.path, recursive=True)
            arrow().copy_files(
                src.path,
                tmp.path,
                source_filesystem=src.fs,
                destination_filesystem=dst.fs,
                chunk_size=_COPY_CHUNK,
                use_threads=True,
            )
        _replace(tmp, dst)
    except BaseException:
        if tmp.exists():
            delete(tmp, recursive=True)
        raise
