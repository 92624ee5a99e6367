"""The Hops `hdfs` API on pyarrow.fs: project paths, files, copies, logs.

Paths may be project-relative (`Resources/data.csv`, or `/Resources/data.csv`: as in the seed a
leading '/' is still inside the project), namespace-absolute (`/Projects/other/...`) or full URLs
(`hdfs://nn:8020/...`, `hopsfs://...`, `file:///...`). Project paths may not leave the project
with `..`, and `project=` names must be valid project names.
"""

from __future__ import annotations

import datetime
import fnmatch
import importlib
import io
import os
import shutil
import stat as stat_module
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pyarrow.fs as pafs

from hops_jupyter.core import context, filesystem
from hops_jupyter.core import project as project_config
from hops_jupyter.core.filesystem import AtomicWriter, Location, PathLike

__all__ = [
    "project_id", "project_user", "project_name", "project_path", "get_plain_path", "abs_path",
    "get", "get_fs", "close", "load", "dump", "copy_to_local", "copy_to_hdfs", "cp", "move",
    "rename", "delete", "rmr", "mkdir", "ls", "lsl", "glob", "exists", "isdir", "isfile", "stat",
    "access", "chmod", "chown", "capacity", "open_file", "add_module", "is_tls_enabled", "log",
    "FileStat", "FileSystemHandle",
]  # fmt: skip

_KINDS = {pafs.FileType.File: "file", pafs.FileType.Directory: "directory"}


def _project() -> project_config.Project:
    """The current configuration; the embedded project's folders exist from its first use."""
    cfg = project_config.current()
    _ensure_project_dirs(cfg)
    return cfg


def _loc(path: PathLike, project: str | None = None) -> Location:
    return filesystem.resolve(path, _project(), in_project=project)


def _existing(path: PathLike, project: str | None = None) -> Location:
    loc = _loc(path, project)
    if not loc.exists():
        raise FileNotFoundError(f"No such file or directory: {loc.url} (from {str(path)!r})")
    return loc


_ready: set[tuple[str, str]] = set()


def _ensure_project_dirs(cfg: project_config.Project) -> None:
    """Create the embedded project's datasets on first use (once per process and root). On
    HopsFS, Hopsworks owns the project folders, so nothing is created there."""
    key = (cfg.root, cfg.name)
    if key in _ready or cfg.scheme != "file":
        return
    base = filesystem.resolve(cfg.path, cfg)
    for name in project_config.DATASETS:
        base.child(name).make_dirs()
    _ready.add(key)


# --- who and where -------------------------------------------------------------------------


def project_id() -> str:
    """The Hopsworks project id (`$HOPSWORKS_PROJECT_ID`, else a stable id for the name)."""
    return _project().project_id


def project_user() -> str:
    """The project user, `<project>__<user>`."""
    return _project().project_user


def project_name() -> str:
    """The current project's name."""
    return _project().name


def project_path(project: str | None = None, exclude_nn_addr: bool = False) -> str:
    """The project's root as a full URL with a trailing slash (or `/Projects/<name>/`)."""
    cfg = _project()
    name = project_config.check_project_name(project, "project=") if project else cfg.name
    if name == cfg.name:
        _ensure_project_dirs(cfg)
    loc = filesystem.resolve(f"/Projects/{name}", cfg)
    return (f"/Projects/{name}" if exclude_nn_addr else loc.url) + "/"


def get_plain_path(abs_path: PathLike) -> str:
    """Drop scheme and namenode: `hdfs://nn:8020/Projects/demo/x` -> `/Projects/demo/x`."""
    return filesystem.namespace_path(_loc(abs_path), _project())


def abs_path(hdfs_path: PathLike, project: str | None = None) -> str:
    """The full URL of a path."""
    return _loc(hdfs_path, project).url


# --- handles -------------------------------------------------------------------------------


class FileSystemHandle:
    """What `get_fs()` returns: the seed's handle methods, plus the pyarrow filesystem.

    `handle.pyarrow` is the underlying `pyarrow.fs.FileSystem`; attributes this class does not
    define are looked up there, so pyarrow code keeps working.
    """

    def __init__(self, project: str | None = None) -> None:
        self.project = project_config.check_project_name(project, "project=") if project else None
        self.pyarrow = filesystem.root_location(_project()).fs

    def open_file(self, path: PathLike, flags: str = "rw", buff_size: int = 0) -> Any:
        return open_file(path, project=self.project, flags=flags, buff_size=buff_size)

    def exists(self, path: PathLike) -> bool:
        return exists(path, project=self.project)

    def isdir(self, path: PathLike) -> bool:
        return isdir(path, project=self.project)

    def isfile(self, path: PathLike) -> bool:
        return isfile(path, project=self.project)

    def ls(self, path: PathLike = ".", recursive: bool = False) -> list[str]:
        return ls(_loc(path, self.project).url, recursive=recursive)

    def list_directory(self, path: PathLike = ".") -> list[FileStat]:
        return lsl(path, project=self.project)

    def mkdir(self, path: PathLike) -> None:
        mkdir(path, project=self.project)

    create_directory = mkdir

    def delete(self, path: PathLike, recursive: bool = False) -> None:
        delete(_loc(path, self.project).url, recursive=recursive)

    def rename(self, src: PathLike, dest: PathLike) -> None:
        move(_loc(src, self.project).url, _loc(dest, self.project).url)

    move = rename

    def stat(self, path: PathLike) -> FileStat:
        return stat(path, project=self.project)

    def close(self) -> None:
        close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pyarrow, name)


def get_fs(project: str | None = None) -> FileSystemHandle:
    """A filesystem handle for the project (see FileSystemHandle)."""
    return FileSystemHandle(project)


def get(project: str | None = None) -> FileSystemHandle:
    """The seed's older name for `get_fs()`."""
    return get_fs(project)


def close() -> None:
    """Close cached HDFS connections; the next call reconnects."""
    filesystem.close_all()


# --- whole files ---------------------------------------------------------------------------


def load(hdfs_path: PathLike, project: str | None = None) -> bytes:
    """Read a whole file and return its bytes (decode text with `.decode()`)."""
    loc = _loc(hdfs_path, project)
    if not loc.isfile():
        raise FileNotFoundError(f"No such file: {loc.url} (from {str(hdfs_path)!r})")
    with loc.fs.open_input_stream(loc.path) as stream:
        return stream.read()


def dump(data: str | bytes, hdfs_path: PathLike, project: str | None = None) -> None:
    """Write data (str or bytes) to a file atomically: readers see the old or the new file."""
    if not isinstance(data, (str, bytes, bytearray, memoryview)):
        raise TypeError(f"dump() writes str or bytes, got {type(data).__name__}")
    loc = _loc(hdfs_path, project)
    if loc.isdir():
        raise IsADirectoryError(f"Cannot dump onto directory {loc.url}")
    loc.parent.make_dirs()
    filesystem.atomic_write(loc, bytes(data) if not isinstance(data, str) else data)


def open_file(
    hdfs_path: PathLike, project: str | None = None, flags: str = "rw", buff_size: int = 0
) -> Any:
    """Open a file: flags 'r', 'w' or 'a', with 't' for text. 'w' replaces the file atomically
    on close. The default 'rw' reads an existing file and creates a missing one for writing."""
    loc = _loc(hdfs_path, project)
    mode = flags.replace("b", "")
    text = "t" in mode
    mode = mode.replace("t", "")
    if mode == "rw":
        mode = "r" if loc.isfile() else "w"
    if mode not in ("r", "w", "a"):
        raise ValueError(f"Unknown flags {flags!r}: use 'r', 'w' or 'a', optionally with 't'")
    if mode == "r":
        if not loc.isfile():
            raise FileNotFoundError(f"No such file: {loc.url} (from {str(hdfs_path)!r})")
        stream = loc.fs.open_input_file(loc.path)
        return _text(stream) if text else stream
    loc.parent.make_dirs()
    if mode == "a":
        stream = loc.fs.open_append_stream(loc.path, buffer_size=buff_size or None)
        return _text(stream) if text else stream
    return AtomicWriter(loc, buff_size)


def _text(stream: Any) -> Any:
    return io.TextIOWrapper(stream, encoding="utf-8")


# --- copies and moves ----------------------------------------------------------------------


def _same_tree(local: Path, remote: Location) -> bool:
    """True when a local file/tree has the same relative names and sizes as the remote one."""
    info = remote.info()
    if info.type == pafs.FileType.File:
        return local.is_file() and local.stat().st_size == info.size
    if not local.is_dir():
        return False
    entries = _entries(remote, recursive=True)
    theirs = {
        os.path.relpath(e.path, remote.path): (e.size if e.type == pafs.FileType.File else -1)
        for e in entries
    }
    ours = {
        str(p.relative_to(local)): (p.stat().st_size if p.is_file() else -1)
        for p in local.rglob("*")
    }
    return ours == theirs


def _clear_for_overwrite(target: Location, what: str, overwrite: bool) -> None:
    if not target.exists():
        return
    if not overwrite:
        raise FileExistsError(
            f"{what} {target.url} already exists: pass overwrite=True to replace it"
        )


def copy_to_local(
    hdfs_path: PathLike, local_path: str = "", overwrite: bool = False, project: str | None = None
) -> str:
    """Copy a project file or directory to the local disk and return the local path.

    Where the copy lands, as in the seed:
    - into `local_path` when it is empty (the working directory), an existing directory, or
      ends with '/': `copy_to_local("Resources/data.json", "in/")` -> `in/data.json`;
    - otherwise, for a file, `local_path` is the new file's name:
      `copy_to_local("Resources/data.json", "mydata.json")` -> `./mydata.json`;
    - a directory always goes into `local_path` (created if missing).
    A local copy that is already identical (same names and sizes) is kept; a different one is
    replaced only with overwrite=True.
    """
    src = _existing(hdfs_path, project)
    local = Path(local_path or os.getcwd()).expanduser().absolute()
    into_dir = not local_path or local_path.endswith(("/", os.sep)) or local.is_dir() or src.isdir()
    if into_dir:
        if local.exists() and not local.is_dir():
            raise NotADirectoryError(
                f"local_path {str(local)!r} is a file: give a local directory to copy the "
                f"directory {src.url} into"
            )
        local.mkdir(parents=True, exist_ok=True)
        target = local / src.name
    else:
        target = local
        target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and _same_tree(target, src):
        return str(target)
    dst = Location("file", str(target))
    _clear_for_overwrite(dst, "Local path", overwrite)
    free = shutil.disk_usage(target.parent).free
    size = _tree_size(src)
    if size > free:
        raise OSError(
            f"Not enough space in {target.parent}: {src.url} needs {size} bytes, {free} free"
        )
    _copy_replacing(src, dst)
    return str(target)


def copy_to_hdfs(
    local_path: str,
    relative_hdfs_path: PathLike,
    overwrite: bool = False,
    project: str | None = None,
) -> str:
    """Copy a local file or directory into a project directory (created if missing) and return
    the new path's URL: `copy_to_hdfs("model.h5", "Models")` -> `.../Models/model.h5`."""
    source = Path(local_path).expanduser().absolute()
    if not source.exists():
        raise FileNotFoundError(f"No such local file or directory: {str(source)!r}")
    dest_dir = _loc(relative_hdfs_path, project)
    if dest_dir.isfile():
        raise NotADirectoryError(f"{dest_dir.url} is a file: give a directory to copy into")
    dest_dir.make_dirs()
    dst = dest_dir.child(source.name)
    _clear_for_overwrite(dst, "Path", overwrite)
    _copy_replacing(Location("file", str(source)), dst)
    return dst.url


def _tree_size(loc: Location) -> int:
    info = loc.info()
    if info.type == pafs.FileType.File:
        return info.size
    return sum(e.size or 0 for e in _entries(loc, recursive=True) if e.type == pafs.FileType.File)


def _copy_replacing(src: Location, dst: Location) -> None:
    """Copy src to dst; an existing dst (overwrite already allowed) is swapped out only after
    the new copy is complete, so a failure keeps the old data."""
    if not dst.exists():
        filesystem.copy(src, dst)
        return
    # A hidden temporary name of fixed length: swept if this process dies before the swap.
    staged = filesystem.temp_sibling(dst)
    filesystem.copy(src, staged)
    filesystem.delete(dst, recursive=True)
    dst.fs.move(staged.path, dst.path)


def cp(src_hdfs_path: PathLike, dest_hdfs_path: PathLike, overwrite: bool = False) -> None:
    """Copy a file or directory inside the filesystem (recursively for directories)."""
    src, dst = _existing(src_hdfs_path), _loc(dest_hdfs_path)
    if dst.isdir() and not src.isdir():
        dst = dst.child(src.name)
    _clear_for_overwrite(dst, "Destination", overwrite)
    dst.parent.make_dirs()
    _copy_replacing(src, dst)


def move(src: PathLike, dest: PathLike) -> None:
    """Move or rename src to dest; into dest when dest is an existing directory."""
    source, target = _existing(src), _loc(dest)
    if target.isdir():
        target = target.child(source.name)
    if target.exists():
        raise FileExistsError(f"Destination {target.url} already exists: delete it first")
    if source.scheme != target.scheme or source.host != target.host:
        filesystem.copy(source, target)
        filesystem.delete(source, recursive=True)
        return
    target.parent.make_dirs()
    source.fs.move(source.path, target.path)


def rename(src: PathLike, dest: PathLike) -> None:
    """Rename src to dest (same as move)."""
    move(src, dest)


def delete(hdfs_path: PathLike, recursive: bool = False) -> None:
    """Delete a file, or a directory (recursive=True when it is not empty). A missing path is a
    no-op, as in the seed."""
    loc = _loc(hdfs_path)
    if loc.exists():
        filesystem.delete(loc, recursive=recursive)


def rmr(hdfs_path: PathLike, project: str | None = None) -> None:
    """Remove a file or directory tree."""
    filesystem.delete(_existing(hdfs_path, project), recursive=True)


def mkdir(hdfs_path: PathLike, project: str | None = None) -> None:
    """Create a directory and its missing parents."""
    loc = _loc(hdfs_path, project)
    if loc.isfile():
        raise FileExistsError(f"Cannot create directory {loc.url}: a file is in the way")
    loc.make_dirs()


# --- listing and metadata ------------------------------------------------------------------


def _entries(loc: Location, recursive: bool) -> list[pafs.FileInfo]:
    """A directory's entries, sorted, without the temporary files of writes in progress (or
    of killed writers) and anything inside them."""
    info = loc.info()
    if info.type == pafs.FileType.File:
        return [info]
    selector = pafs.FileSelector(loc.path, recursive=recursive)
    prefix = loc.path.rstrip("/") + "/"
    return sorted(
        (
            e
            for e in loc.fs.get_file_info(selector)
            if not any(filesystem.is_temp_name(n) for n in e.path[len(prefix) :].split("/"))
        ),
        key=lambda e: e.path,
    )


def _with_path(loc: Location, path: str) -> Location:
    return Location(loc.scheme, path, loc.host, loc.port, loc.user)


def ls(
    hdfs_path: PathLike = "",
    recursive: bool = False,
    exclude_nn_addr: bool = False,
    project: str | None = None,
) -> list[str]:
    """Full paths of a directory's entries (of the whole tree with recursive=True)."""
    loc = _existing(hdfs_path or ".", project)
    cfg = _project()
    out = []
    for entry in _entries(loc, recursive):
        child = _with_path(loc, entry.path)
        out.append(filesystem.namespace_path(child, cfg) if exclude_nn_addr else child.url)
    return out


# The keys of the dicts that pydoop's `lsl()` returned, in that order.
_STAT_KEYS = (
    "name", "path", "kind", "size", "owner", "group", "permissions", "last_mod", "last_access",
    "replication", "block_size",
)  # fmt: skip


@dataclass(frozen=True)
class FileStat(Mapping[str, Any]):
    """Metadata of one path, usable the two ways the seed's results were (pydoop's): as the
    dict `lsl()` gave (`entry["size"]`, `entry.get("owner")`, `dict(entry)`, with the keys
    name, path, kind, size, owner, group, permissions, last_mod, last_access, replication,
    block_size), and as the object `stat()` gave (`st_size`, `st_mtime`, `st_uid`, ...).
    Values the backend does not report are None: on HDFS through pyarrow, permissions, owner,
    group, last_access, replication and block_size."""

    name: str
    kind: str
    size: int
    last_mod: float
    permissions: int | None
    owner: str | None
    group: str | None
    last_access: float | None = None
    replication: int | None = None
    block_size: int | None = None
    uid: int | None = None
    gid: int | None = None

    @property
    def path(self) -> str:
        """The full URL, as `name` (pydoop gave both)."""
        return self.name

    @property
    def st_size(self) -> int:
        return self.size

    @property
    def st_mtime(self) -> float:
        return self.last_mod

    @property
    def st_atime(self) -> float | None:
        return self.last_access

    @property
    def st_mode(self) -> int | None:
        return self.permissions

    @property
    def st_uid(self) -> int | str | None:
        """The numeric owner id where known (local files), else the owner's name (HDFS, as
        pydoop gave it)."""
        return self.uid if self.uid is not None else self.owner

    @property
    def st_gid(self) -> int | str | None:
        """The numeric group id where known (local files), else the group's name."""
        return self.gid if self.gid is not None else self.group

    @property
    def st_blksize(self) -> int | None:
        return self.block_size

    def __getitem__(self, key: str) -> Any:
        if key in _STAT_KEYS or (isinstance(key, str) and key.startswith("st_")):
            try:
                return getattr(self, key)
            except AttributeError:
                pass
        raise KeyError(f"{key!r} is not file metadata: use one of {', '.join(_STAT_KEYS)}")

    def __iter__(self) -> Iterator[str]:
        return iter(_STAT_KEYS)

    def __len__(self) -> int:
        return len(_STAT_KEYS)


def _stat(loc: Location, info: pafs.FileInfo) -> FileStat:
    local: dict[str, Any] = {}
    if loc.scheme == "file":
        import grp
        import pwd

        st = os.stat(info.path)
        local = {
            "permissions": stat_module.S_IMODE(st.st_mode),
            "owner": _name_of(pwd.getpwuid, st.st_uid),
            "group": _name_of(grp.getgrgid, st.st_gid),
            "last_access": st.st_atime,
            "replication": 1,
            "block_size": st.st_blksize,
            "uid": st.st_uid,
            "gid": st.st_gid,
        }
    mtime = info.mtime.timestamp() if info.mtime else 0.0
    return FileStat(
        name=_with_path(loc, info.path).url,
        kind=_KINDS.get(info.type, "other"),
        size=info.size or 0,
        last_mod=mtime,
        permissions=local.pop("permissions", None),
        owner=local.pop("owner", None),
        group=local.pop("group", None),
        **local,
    )


def _name_of(lookup: Any, ident: int) -> str:
    try:
        return lookup(ident)[0]
    except KeyError:
        return str(ident)


def lsl(
    hdfs_path: PathLike = "", recursive: bool = False, project: str | None = None
) -> list[FileStat]:
    """Like ls, with metadata (kind, size, last_mod, permissions, owner, group) per entry."""
    loc = _existing(hdfs_path or ".", project)
    return [_stat(loc, entry) for entry in _entries(loc, recursive)]


def stat(hdfs_path: PathLike, project: str | None = None) -> FileStat:
    """Metadata of one path."""
    loc = _existing(hdfs_path, project)
    return _stat(loc, loc.info())


def glob(hdfs_path: PathLike, recursive: bool = False, project: str | None = None) -> list[str]:
    """Full paths matching a shell pattern (`Resources/*.csv`). Wildcards match within one path
    level unless recursive=True, where `*` also crosses '/'."""
    pattern = _loc(hdfs_path, project)
    parts = pattern.path.split("/")
    fixed = next((i for i, p in enumerate(parts) if any(c in p for c in "*?[")), len(parts))
    base = _with_path(pattern, "/".join(parts[:fixed]) or "/")
    if fixed == len(parts):
        return [pattern.url] if pattern.exists() else []
    if not base.isdir():
        raise FileNotFoundError(f"Glob base {base.url} does not exist (pattern {str(hdfs_path)!r})")
    deep = recursive or fixed < len(parts) - 1
    found = []
    for entry in _entries(base, recursive=deep):
        if recursive:
            match = fnmatch.fnmatchcase(entry.path, pattern.path)
        else:
            names = entry.path.split("/")
            match = len(names) == len(parts) and all(
                fnmatch.fnmatchcase(n, p) for n, p in zip(names, parts, strict=True)
            )
        if match:
            found.append(_with_path(base, entry.path).url)
    return found


def exists(hdfs_path: PathLike, project: str | None = None) -> bool:
    """True when the path exists."""
    return _loc(hdfs_path, project).exists()


def isdir(hdfs_path: PathLike, project: str | None = None) -> bool:
    """True when the path is a directory."""
    return _loc(hdfs_path, project).isdir()


def isfile(hdfs_path: PathLike, project: str | None = None) -> bool:
    """True when the path is a file."""
    return _loc(hdfs_path, project).isfile()


def _hadoop_cli(*args: str) -> str:
    """Run `hdfs dfs ...`: pyarrow exposes no permission or capacity calls for HDFS, the Hadoop
    command line (present wherever HDFS is) does."""
    exe = shutil.which("hdfs") or (
        os.path.join(os.environ["HADOOP_HOME"], "bin", "hdfs")
        if "HADOOP_HOME" in os.environ
        else None
    )
    if not exe or not os.path.exists(exe):
        raise OSError(f"'hdfs dfs {' '.join(args)}' needs Hadoop's 'hdfs' command: set HADOOP_HOME")
    done = subprocess.run([exe, "dfs", *args], capture_output=True, text=True)
    if done.returncode != 0 and args[0] != "-test":
        raise OSError(f"hdfs dfs {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout if args[0] != "-test" else str(done.returncode)


def access(hdfs_path: PathLike, mode: int, project: str | None = None) -> bool:
    """Like os.access: may the current user read/write/execute the path (os.R_OK, W_OK, X_OK)?"""
    loc = _loc(hdfs_path, project)
    if loc.scheme == "file":
        return os.access(loc.path, mode)
    if not loc.exists():
        return False
    flags = [f for bit, f in ((os.R_OK, "-r"), (os.W_OK, "-w")) if mode & bit]
    return all(_hadoop_cli("-test", f, loc.url) == "0" for f in flags)


def chmod(hdfs_path: PathLike, mode: int, project: str | None = None) -> None:
    """Change permission bits (e.g. 0o750)."""
    loc = _existing(hdfs_path, project)
    if loc.scheme == "file":
        os.chmod(loc.path, mode)
    else:
        _hadoop_cli("-chmod", format(mode, "o"), loc.url)


def chown(hdfs_path: PathLike, user: str, group: str, project: str | None = None) -> None:
    """Change owner and group."""
    loc = _existing(hdfs_path, project)
    if loc.scheme == "file":
        shutil.chown(loc.path, user or None, group or None)
    else:
        _hadoop_cli("-chown", f"{user}:{group}", loc.url)


def capacity() -> int:
    """Raw capacity of the filesystem in bytes."""
    root = filesystem.root_location(_project())
    if root.scheme == "file":
        Path(root.path).mkdir(parents=True, exist_ok=True)
        return shutil.disk_usage(root.path).total
    lines = _hadoop_cli("-df", root.url).strip().splitlines()
    return int(lines[-1].split()[1])


# --- modules, TLS, logging -----------------------------------------------------------------

_module_dir: Path | None = None


def add_module(hdfs_path: PathLike, project: str | None = None) -> str:
    """Make a project `.py` or `.ipynb` importable (copied locally, notebooks converted to
    Python), import it, and reload it on later calls. Returns the local `.py` path."""
    global _module_dir
    loc = _existing(hdfs_path, project)
    if not loc.isfile() or not loc.name.endswith((".py", ".ipynb")):
        raise ValueError(f"{loc.url} is not a .py or .ipynb file")
    if _module_dir is None:
        _module_dir = Path(tempfile.mkdtemp(prefix="hops-modules-"))
    if str(_module_dir) not in sys.path:
        sys.path.insert(0, str(_module_dir))
    module_name, ext = os.path.splitext(loc.name)
    target = _module_dir / f"{module_name}.py"
    data = load(loc.url)
    if ext == ".ipynb":
        import nbformat
        from nbconvert import PythonExporter

        source, _ = PythonExporter().from_notebook_node(nbformat.reads(data.decode(), as_version=4))
        data = source.encode()
    filesystem.atomic_write(Location("file", str(target)), data)
    importlib.invalidate_caches()
    if module_name in sys.modules:
        importlib.reload(sys.modules[module_name])
    else:
        importlib.import_module(module_name)
    return str(target)


def is_tls_enabled() -> bool:
    """True when HopsFS RPC uses TLS (`ipc.server.ssl.enabled` in $HADOOP_CONF_DIR/core-site.xml)."""
    conf_dir = _project().hadoop_conf_dir
    site = Path(conf_dir) / "core-site.xml" if conf_dir else None
    if site is None or not site.is_file():
        return False
    for prop in ElementTree.parse(site).getroot().iter("property"):
        if prop.findtext("name") == "ipc.server.ssl.enabled":
            return (prop.findtext("value") or "").strip().lower() == "true"
    return False


def log(string: Any) -> None:
    """Append a timestamped line to the running trial's `hdfs.log`, else to `Logs/hops.log`."""
    trial = context.current_trial()
    cfg = _project()
    if trial is not None:
        loc = filesystem.resolve(trial.trial_url, cfg).child("hdfs.log")
    else:
        _ensure_project_dirs(cfg)
        loc = filesystem.resolve("Logs/hops.log", cfg)
    stamp = datetime.datetime.now().isoformat(timespec="milliseconds")
    filesystem.append_line(loc, f"{stamp}: {string}")
