"""Filesystem URLs to pyarrow filesystems, namespace path resolution, atomic writes and copies.

The project namespace (`/Projects/<name>/...`) lives under a root URL: `file:///home/me/.hops` on
one machine, `hdfs://namenode:8020` on a cluster. Everything that touches files goes through
`Location`, so the local and HDFS backends behave the same.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import threading
import uuid
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import pyarrow.fs as pafs

from hops_jupyter.core.project import Project

PathLike = str | bytes | os.PathLike
_COPY_CHUNK = 8 * 1024 * 1024
_LOCAL = pafs.LocalFileSystem()
_hdfs_cache: dict[tuple[str, int, str | None], pafs.FileSystem] = {}
_hdfs_lock = threading.Lock()


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

    def exists(self) -> bool:
        return self.info().type != pafs.FileType.NotFound

    def isdir(self) -> bool:
        return self.info().type == pafs.FileType.Directory

    def isfile(self) -> bool:
        return self.info().type == pafs.FileType.File

    def __str__(self) -> str:
        return self.url


def filesystem(loc: Location) -> pafs.FileSystem:
    """The pyarrow filesystem for a location; HDFS connections are opened once and cached."""
    if loc.scheme == "file":
        return _LOCAL
    key = (loc.host or "default", loc.port, loc.user)
    with _hdfs_lock:
        if key not in _hdfs_cache:
            try:
                _hdfs_cache[key] = pafs.HadoopFileSystem(key[0], key[1], user=loc.user)
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
    """Resolve a user path: relative to the project, `/...` in the namespace, or a full URL."""
    text = to_text(path)
    if "://" in text:
        return _resolve_url(text, project)
    if text.startswith("/"):
        ns_path = posixpath.normpath("/" + text.lstrip("/"))
    else:
        rel = posixpath.normpath(text)
        base = f"/Projects/{in_project or project.name}"
        if rel == ".." or rel.startswith("../"):
            raise ValueError(
                f"Path {text!r} escapes the project with '..': relative paths must stay inside "
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


def _temp_sibling(loc: Location) -> Location:
    return loc.parent.child(f".{loc.name}.tmp-{uuid.uuid4().hex[:12]}")


def _replace(tmp: Location, final: Location) -> None:
    """Rename tmp over final: atomic on a local disk; HDFS renames refuse to overwrite, so the
    old file is removed first (a reader may briefly see no file there, never a torn one)."""
    fs = final.fs
    if final.scheme == "hdfs" and final.exists():
        delete(final, recursive=True)
    fs.move(tmp.path, final.path)


def delete(loc: Location, recursive: bool = False) -> None:
    """Delete a file, or a directory (recursive=True for a non-empty one)."""
    info = loc.info()
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"No such file or directory: {loc.url}")
    if info.type == pafs.FileType.Directory:
        if not recursive and loc.fs.get_file_info(pafs.FileSelector(loc.path)):
            raise OSError(f"Directory {loc.url} is not empty: pass recursive=True to delete it")
        loc.fs.delete_dir(loc.path)
    else:
        loc.fs.delete_file(loc.path)


class AtomicWriter:
    """A writable file that appears at its path only when closed without error.

    Writes go to a hidden sibling; `close()` renames it into place, an exception inside a `with`
    block (or `abort()`) discards it. Accepts str (UTF-8) and bytes.
    """

    def __init__(self, loc: Location, buffer_size: int | None = None) -> None:
        self.location = loc
        self._tmp = _temp_sibling(loc)
        self._stream = loc.fs.open_output_stream(self._tmp.path, buffer_size=buffer_size or None)
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
        self._tmp.fs.delete_file(self._tmp.path)

    def __enter__(self) -> AtomicWriter:
        return self

    def __exit__(self, exc_type: Any, *_: Any) -> None:
        self.abort() if exc_type else self.close()

    def __del__(self) -> None:
        # Like a built-in file, an unclosed writer that goes away keeps what was written.
        if not getattr(self, "closed", True):
            self.close()


def atomic_write(loc: Location, data: str | bytes) -> None:
    """Write a whole file so that readers see the old version or the new one, never a mix."""
    with AtomicWriter(loc) as out:
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
    if info.type == pafs.FileType.NotFound:
        raise FileNotFoundError(f"No such file or directory: {src.url}")
    tmp = _temp_sibling(dst)
    try:
        if src.scheme == dst.scheme == "file":
            # shutil uses the kernel's copy_file_range/sendfile: faster than a user-space loop.
            if info.type == pafs.FileType.Directory:
                shutil.copytree(src.path, tmp.path)
            else:
                shutil.copyfile(src.path, tmp.path)
        else:
            if info.type == pafs.FileType.Directory:
                dst.fs.create_dir(tmp.path, recursive=True)
            pafs.copy_files(
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
