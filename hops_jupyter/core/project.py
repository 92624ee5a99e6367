"""Which project, which user, which filesystem root: the hops core's configuration.

Values come, in order, from function arguments, environment variables (Hopsworks names first, so
a notebook moved from Hopsworks finds its project), a TOML config file, then embedded defaults.
"""

from __future__ import annotations

import getpass
import os
import re
import tomllib
import zlib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from xml.etree import ElementTree

DEFAULT_PROJECT = "demo"
DATASETS = ("Resources", "Logs", "Experiments", "Jupyter", "Models")
ROOT_SCHEMES = ("file", "hdfs", "hopsfs")
_NAME_RE = re.compile(r"^[A-Za-z0-9_]+$")
_USER_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class Project:
    """One resolved configuration: the project, its user, and where its files live."""

    name: str
    user: str
    root: str
    project_id: str
    home: str
    hadoop_conf_dir: str | None = None
    executor_gpus: int = 0
    num_tf_ps: int = 0
    kafka_brokers: str | None = None
    material_directory: str | None = None
    workers: int = 0
    threads_per_trial: int = 0  # 0: cores divided by the trials running at once
    reuse_workers: bool = False  # trials of a worker share one process (no fresh one each)
    tensorboard: bool = True
    tensorboard_idle_timeout: float = 1800.0
    tensorboard_max: int = 3  # TensorBoards one process keeps running (0: no limit)
    tensorboard_ended_idle_timeout: float = 120.0  # idle time once the experiment has ended

    @property
    def project_user(self) -> str:
        """The Hopsworks project user, `<project>__<user>`."""
        return f"{self.name}__{self.user}"

    @property
    def path(self) -> str:
        """The project's path inside the filesystem namespace, `/Projects/<name>`."""
        return f"/Projects/{self.name}"

    @property
    def scheme(self) -> str:
        return urlsplit(self.root).scheme

    @property
    def runtime_dir(self) -> Path:
        """Local folder for this machine's runtime state (ports, pids, certificates)."""
        return Path(self.home) / "runtime"

    @property
    def local_workers(self) -> int:
        """Worker processes the local engine uses: configured, else one per core."""
        return self.workers if self.workers > 0 else (os.cpu_count() or 1)


# Field name -> environment variables consulted, in order. HADOOP_USER_NAME/HDFS_USER are
# handled separately because they carry both project and user (`<project>__<user>`).
_ENV = {
    "name": ("HOPSWORKS_PROJECT_NAME",),
    "project_id": ("HOPSWORKS_PROJECT_ID",),
    "root": ("HOPS_ROOT",),
    "hadoop_conf_dir": ("HADOOP_CONF_DIR",),
    "executor_gpus": ("EXECUTOR_GPUS",),
    "num_tf_ps": ("NUM_TF_PS",),
    "kafka_brokers": ("KAFKA_BROKERS",),
    "material_directory": ("MATERIAL_DIRECTORY",),
    "workers": ("HOPS_WORKERS",),
    "threads_per_trial": ("HOPS_THREADS_PER_TRIAL",),
    "reuse_workers": ("HOPS_REUSE_WORKERS",),
    "tensorboard": ("HOPS_TENSORBOARD",),
    "tensorboard_idle_timeout": ("HOPS_TENSORBOARD_IDLE_TIMEOUT",),
    "tensorboard_max": ("HOPS_TENSORBOARD_MAX",),
    "tensorboard_ended_idle_timeout": ("HOPS_TENSORBOARD_ENDED_IDLE_S",),
}
_INT_FIELDS = ("executor_gpus", "num_tf_ps", "workers", "threads_per_trial", "tensorboard_max")
_CONFIG_KEYS = {f.name for f in fields(Project)} - {"home"} | {"project", "user"}


def hops_home() -> Path:
    """The local folder for the embedded default: `$HOPS_HOME`, else `~/.hops`."""
    return Path(os.environ.get("HOPS_HOME") or Path.home() / ".hops").expanduser().resolve()


def config_file() -> Path:
    """The TOML config file: `$HOPS_CONFIG`, else `<HOPS_HOME>/config.toml`."""
    return Path(os.environ.get("HOPS_CONFIG") or hops_home() / "config.toml")


def _read_config(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ValueError(f"Config file {str(path)!r} is not valid TOML: {err}") from err
    unknown = sorted(set(data) - _CONFIG_KEYS)
    if unknown:
        raise ValueError(
            f"Config file {str(path)!r} has unknown keys {unknown}; allowed: {sorted(_CONFIG_KEYS)}"
        )
    if "project" in data:
        data["name"] = data.pop("project")
    return data


def check_project_name(name: Any, source: str = "arguments") -> str:
    """Return a valid project name or raise. Every project name that reaches a path goes
    through here (configuration and `project=` arguments alike), so none can hold '/' or '..'
    and lead outside `/Projects/<name>`."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(
            f"Project name {name!r} (from {source}) may hold only letters, digits and '_'"
        )
    return name


def _split_project_user(value: str) -> tuple[str | None, str]:
    """`demo__meb10000` -> ("demo", "meb10000"); a plain user name has no project part."""
    if "__" in value:
        project, user = value.split("__", 1)
        return project, user
    return None, value


def _default_fs_from_hadoop_conf(conf_dir: str | None) -> str | None:
    """`fs.defaultFS` from `$HADOOP_CONF_DIR/core-site.xml`, as on a Hopsworks cluster."""
    if not conf_dir:
        return None
    site = Path(conf_dir) / "core-site.xml"
    if not site.is_file():
        return None
    for prop in ElementTree.parse(site).getroot().iter("property"):
        if prop.findtext("name") == "fs.defaultFS":
            return (prop.findtext("value") or "").strip() or None
    return None


def normalize_root(root: str) -> str:
    """Check a filesystem root URL and give it one spelling (no trailing slash)."""
    if "://" not in root:
        if not os.path.isabs(os.path.expanduser(root)):
            raise ValueError(f"Root {root!r} must be an absolute path or a URL like file:///data")
        root = "file://" + str(Path(root).expanduser().resolve())
    parts = urlsplit(root)
    if parts.scheme not in ROOT_SCHEMES:
        allowed = ", ".join(f"{s}://" for s in ROOT_SCHEMES)
        raise ValueError(
            f"Unknown filesystem scheme {parts.scheme!r} in root {root!r}: use {allowed}"
        )
    if parts.scheme == "file":
        if parts.netloc:
            raise ValueError(f"Root {root!r}: a file:// URL takes no host, write file:///path")
        return "file://" + (parts.path.rstrip("/") or "/")
    return f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"


def _int(field: str, value: Any, source: str) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{field} from {source} must be an integer, got {value!r}") from None
    if number < 0:
        raise ValueError(f"{field} from {source} must be >= 0, got {number}")
    return number


def _bool(field: str, value: Any, source: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{field} from {source} must be true or false, got {value!r}")


def _seconds(field: str, value: Any, source: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{field} from {source} must be a number of seconds, got {value!r}"
        ) from None
    if number < 0:
        raise ValueError(f"{field} from {source} must be >= 0, got {number}")
    return number


def current(**overrides: Any) -> Project:
    """Resolve the project configuration: arguments, then environment, then file, then defaults."""
    env = os.environ
    home = hops_home()
    cfg = _read_config(config_file())
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}

    env_user = env.get("HADOOP_USER_NAME") or env.get("HDFS_USER")
    user_project, user = _split_project_user(env_user) if env_user else (None, None)
    for field, names in _ENV.items():
        found = next((n for n in names if env.get(n)), None)
        if found:
            values[field], sources[field] = env[found], f"${found}"
    if user_project and "name" not in values:
        values["name"], sources["name"] = user_project, "$HADOOP_USER_NAME"
    if user:
        values["user"], sources["user"] = user, "$HADOOP_USER_NAME"
    for key, value in cfg.items():
        if key not in values:
            values[key], sources[key] = value, str(config_file())
    for key, value in overrides.items():
        if value is not None:
            values["name" if key == "project" else key] = value
            sources["name" if key == "project" else key] = "arguments"

    name = check_project_name(
        str(values.get("name") or DEFAULT_PROJECT), sources.get("name", "the default")
    )
    user = str(values.get("user") or getpass.getuser())
    if not _USER_RE.match(user):
        raise ValueError(f"User name {user!r} may hold only letters, digits, '_', '.' and '-'")
    conf_dir = values.get("hadoop_conf_dir")
    root = values.get("root") or _default_fs_from_hadoop_conf(conf_dir) or f"file://{home}"
    ints = {f: _int(f, values[f], sources[f]) for f in _INT_FIELDS if f in values}
    for key in ("tensorboard", "reuse_workers"):
        if key in values:
            ints[key] = _bool(key, values[key], sources[key])
    for key in ("tensorboard_idle_timeout", "tensorboard_ended_idle_timeout"):
        if key in values:
            ints[key] = _seconds(key, values[key], sources[key])
    return Project(
        name=name,
        user=user,
        root=normalize_root(str(root)),
        # Embedded projects have no Hopsworks id: derive a stable one from the name.
        project_id=str(values.get("project_id") or zlib.crc32(name.encode()) % 100_000),
        home=str(home),
        hadoop_conf_dir=conf_dir,
        kafka_brokers=values.get("kafka_brokers"),
        material_directory=values.get("material_directory"),
        **ints,
    )
