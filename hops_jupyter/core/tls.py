"""The seed's `tls` API: where the project's certificate material is.

On a Hopsworks cluster the platform provides it: `$MATERIAL_DIRECTORY`, or `k_certificate` /
`t_certificate` / `material_passwd` in the working directory (Java key and trust stores; PEM files
are derived from them once with `keytool`). In the embedded default the project gets its own CA,
a client certificate for the project user and a broker certificate for 127.0.0.1, generated once
with `cryptography`: keys are written with mode 0600, stores are PKCS#12 that Java reads.
"""

from __future__ import annotations

import datetime
import fcntl
import ipaddress
import os
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from hops_jupyter.core import project

CA_CHAIN, CLIENT_CERT, CLIENT_KEY = "ca_chain.pem", "client.pem", "client_key.pem"
KEY_STORE, TRUST_STORE, PASSWORD = "k_certificate", "t_certificate", "material_passwd"
BROKER_CERT, BROKER_KEY = "broker.pem", "broker_key.pem"
_VALIDITY = datetime.timedelta(days=3650)


@dataclass(frozen=True)
class Issued:
    """A private key and its certificate."""

    key: rsa.RSAPrivateKey
    cert: x509.Certificate

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def cert_pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "hops-jupyter"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])  # fmt: skip


def make_ca(common_name: str) -> Issued:
    """A self-signed certificate authority."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(key, cert)


def make_certificate(ca: Issued, common_name: str, server: bool = False) -> Issued:
    """A leaf certificate signed by `ca`: for a client (the project user) or a server on 127.0.0.1."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.datetime.now(datetime.UTC)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False
        )
    )
    if server:
        names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return Issued(key, builder.sign(ca.key, hashes.SHA256()))


def _write(path: Path, data: bytes, mode: int = 0o644) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as out:
        out.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


def _generate(folder: Path, cfg: project.Project) -> None:
    """The embedded project's material, written under a temporary name, then renamed into place."""
    staging = Path(tempfile.mkdtemp(prefix=".tls-", dir=folder.parent))
    ca = make_ca(f"hops-jupyter {cfg.name} CA")
    client = make_certificate(ca, cfg.project_user)
    broker = make_certificate(ca, "localhost", server=True)
    password = secrets.token_urlsafe(24)
    protect = serialization.BestAvailableEncryption(password.encode())
    _write(staging / CA_CHAIN, ca.cert_pem())
    _write(staging / CLIENT_CERT, client.cert_pem())
    _write(staging / CLIENT_KEY, client.key_pem(), 0o600)
    _write(staging / BROKER_CERT, broker.cert_pem() + ca.cert_pem())
    _write(staging / BROKER_KEY, broker.key_pem(), 0o600)
    _write(staging / "ca_key.pem", ca.key_pem(), 0o600)
    _write(staging / PASSWORD, password.encode(), 0o600)
    store = pkcs12.serialize_key_and_certificates(
        cfg.project_user.encode(), client.key, client.cert, [ca.cert], protect
    )
    _write(staging / KEY_STORE, store, 0o600)
    trusted = pkcs12.serialize_java_truststore(
        [pkcs12.PKCS12Certificate(ca.cert, b"hops-ca")], protect
    )
    _write(staging / TRUST_STORE, trusted, 0o644)
    os.replace(staging, folder)


def _embedded_dir(cfg: project.Project) -> Path:
    folder = Path(cfg.home) / "runtime" / "tls" / cfg.name
    if (folder / PASSWORD).is_file():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open(folder.parent / f".{cfg.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two processes at once generate one set
        if not (folder / PASSWORD).is_file():
            _generate(folder, cfg)
    return folder


def material_dir() -> Path:
    """Where the certificate material is: `$MATERIAL_DIRECTORY`, the working directory of a
    Hops container (k_certificate present), else the embedded project's generated set."""
    cfg = project.current()
    if cfg.material_directory:
        folder = Path(cfg.material_directory)
        if not folder.is_dir():
            raise FileNotFoundError(f"MATERIAL_DIRECTORY {str(folder)!r} does not exist")
        return folder
    if (Path.cwd() / KEY_STORE).is_file() and (Path.cwd() / TRUST_STORE).is_file():
        return Path.cwd()
    return _embedded_dir(cfg)


def _required(name: str) -> str:
    path = material_dir() / name
    if not path.is_file():
        raise FileNotFoundError(f"Certificate material {name!r} is missing: expected {str(path)!r}")
    return str(path)


def _pem(name: str) -> str:
    """A PEM file, derived once from the Java stores when the platform only gave those."""
    folder = material_dir()
    if not (folder / name).is_file() and (folder / KEY_STORE).is_file():
        _pems_from_stores(folder)
    return _required(name)


def _pems_from_stores(folder: Path) -> None:
    """Hops containers ship JKS stores: convert them to PKCS#12 with keytool, then to PEM."""
    keytool = shutil.which("keytool")
    if keytool is None:
        raise FileNotFoundError(
            f"PEM files are missing in {folder} and keytool (Java) is not there to derive them"
        )
    password = get_key_store_pwd()
    with tempfile.TemporaryDirectory() as tmp:
        converted = {}
        for store in (KEY_STORE, TRUST_STORE):
            out = Path(tmp) / f"{store}.p12"
            subprocess.run(
                [keytool, "-importkeystore", "-srckeystore", str(folder / store), "-srcstorepass", password,
                 "-destkeystore", str(out), "-deststoretype", "PKCS12", "-deststorepass", password, "-noprompt"],
                check=True, capture_output=True,
            )  # fmt: skip
            converted[store] = out.read_bytes()
    key, cert, extra = pkcs12.load_key_and_certificates(converted[KEY_STORE], password.encode())
    trusted = pkcs12.load_pkcs12(converted[TRUST_STORE], password.encode())
    cas = [c.certificate for c in trusted.additional_certs] or list(extra)
    pem = serialization.Encoding.PEM
    _write(folder / CLIENT_CERT, cert.public_bytes(pem))
    _write(
        folder / CLIENT_KEY,
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        0o600,
    )
    _write(folder / CA_CHAIN, b"".join(c.public_bytes(pem) for c in cas))


def get_ca_chain_location() -> str:
    """PEM file of the CA chain that signed the brokers' and the client's certificates."""
    return _pem(CA_CHAIN)


def get_client_certificate_location() -> str:
    """PEM file of the project user's client certificate."""
    return _pem(CLIENT_CERT)


def get_client_key_location() -> str:
    """PEM file of the client certificate's private key (mode 0600)."""
    return _pem(CLIENT_KEY)


def get_key_store() -> str:
    """The key store (client key and certificate) for Java and Spark."""
    return _required(KEY_STORE)


def get_trust_store() -> str:
    """The trust store (the CA) for Java and Spark."""
    return _required(TRUST_STORE)


def get_key_store_pwd() -> str:
    """Password of the key store (and of the key in it)."""
    with open(_required(PASSWORD)) as handle:
        return handle.read().strip()


def get_trust_store_pwd() -> str:
    """Password of the trust store (Hops uses one password for both)."""
    return get_key_store_pwd()


def get_key_store_cert() -> bytes:
    """The client certificate (PEM bytes), as the seed returns the key store's certificate."""
    with open(get_client_certificate_location(), "rb") as handle:
        return handle.read()


def broker_material() -> tuple[str, str, str]:
    """(certificate chain, key, CA) of the embedded broker's TLS endpoint."""
    folder = _embedded_dir(project.current())
    return str(folder / BROKER_CERT), str(folder / BROKER_KEY), str(folder / CA_CHAIN)
