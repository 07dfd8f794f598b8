"""The server's TLS certificate and context.

By default a self-signed ECDSA P-256 certificate is made at first start into
the data directory (`tls-cert.pem`, and `tls-key.pem` with mode 0600) and
reused on every later start, so the fingerprint clients pinned stays the same.
`--cert`/`--key` load the host's own PEM files instead. Clients do not check
the certificate against a CA (a LAN server has none): they pin its
fingerprint, so the certificate's names only help people reading it.
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import ipaddress
import logging
import os
import secrets
import socket
import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from protocol import fingerprint_of

__all__ = [
    "CERT_FILE",
    "KEY_FILE",
    "ServerCertificate",
    "TlsSetupError",
    "load_certificate",
    "load_or_create_certificate",
    "server_ssl_context",
]

log = logging.getLogger("chat_server.tls")

CERT_FILE = "tls-cert.pem"
KEY_FILE = "tls-key.pem"
VALID_DAYS = 3650  # clients pin the fingerprint; a renewal would only make them re-check it


class TlsSetupError(Exception):
    """The certificate or key cannot be read, made, or used (one line for the host)."""


@dataclass(frozen=True, slots=True)
class ServerCertificate:
    """A certificate and key on disk, and the fingerprint clients pin."""

    cert_path: Path
    key_path: Path
    fingerprint: str
    created: bool = False  # made just now (first start)


def load_or_create_certificate(
    data_dir: Path, hostname: str | None = None, addresses: Iterable[str] = ()
) -> ServerCertificate:
    """The data directory's self-signed certificate, made first if it is not there.

    Args:
        data_dir: where `tls-cert.pem` and `tls-key.pem` live.
        hostname: the DNS name to put in the SANs (default: this host's name).
        addresses: IP addresses to put in the SANs (loopback is always added).

    Raises:
        TlsSetupError: the files exist but are unusable, or cannot be written.
    """
    cert_path, key_path = data_dir / CERT_FILE, data_dir / KEY_FILE
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        with _creation_lock(data_dir):  # two servers starting at once make one pair
            if cert_path.exists() and key_path.exists():
                return load_certificate(cert_path, key_path)
            return _create(cert_path, key_path, hostname, addresses)
    except OSError as exc:
        if cert_path.exists() and key_path.exists():  # a read-only data directory is fine
            return load_certificate(cert_path, key_path)
        raise TlsSetupError(f"cannot write the TLS certificate into {data_dir}: {exc}") from None


@contextlib.contextmanager
def _creation_lock(data_dir: Path) -> Iterator[None]:
    with open(data_dir / ".tls.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _create(
    cert_path: Path, key_path: Path, hostname: str | None, addresses: Iterable[str]
) -> ServerCertificate:
    if cert_path.exists() or key_path.exists():  # half of a pair: a start interrupted, or a mistake
        log.warning("only one of %s and %s exists: making a new pair", CERT_FILE, KEY_FILE)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _self_signed(key, hostname or socket.gethostname(), addresses)
    _write_private(key_path, _key_pem(key))
    _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    log.info("made a new self-signed TLS certificate: %s", cert_path)
    return ServerCertificate(
        cert_path, key_path, fingerprint_of(cert.public_bytes(serialization.Encoding.DER)), True
    )


def load_certificate(cert_path: Path, key_path: Path) -> ServerCertificate:
    """A PEM certificate and its key, checked to belong together.

    Raises:
        TlsSetupError: a file is missing or unreadable, not PEM, or the key does not match.
    """
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except OSError as exc:
        raise TlsSetupError(f"cannot read the certificate {cert_path}: {exc.strerror}") from None
    except ValueError:
        raise TlsSetupError(f"{cert_path} is not a PEM certificate") from None
    certificate = ServerCertificate(
        cert_path, key_path, fingerprint_of(cert.public_bytes(serialization.Encoding.DER))
    )
    server_ssl_context(certificate)  # the key must load and match the certificate
    return certificate


def server_ssl_context(certificate: ServerCertificate) -> ssl.SSLContext:
    """A server-side context: TLS 1.2 or newer, no client certificates.

    Raises:
        TlsSetupError: the key cannot be read or does not match the certificate.
    """
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(certificate.cert_path, certificate.key_path)
    except FileNotFoundError as exc:
        raise TlsSetupError(f"cannot read the TLS key {exc.filename}: no such file") from None
    except PermissionError as exc:
        raise TlsSetupError(f"cannot read the TLS key {exc.filename}: permission denied") from None
    except ssl.SSLError as exc:
        raise TlsSetupError(
            f"the key {certificate.key_path} does not fit the certificate "
            f"{certificate.cert_path} ({exc.reason or exc})"
        ) from None
    return context


def _self_signed(
    key: ec.EllipticCurvePrivateKey, hostname: str, addresses: Iterable[str]
) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostname)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(int.from_bytes(secrets.token_bytes(16)) >> 1)
        .not_valid_before(now - datetime.timedelta(minutes=5))  # tolerate a clock a bit behind
        .not_valid_after(now + datetime.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(_names(hostname, addresses)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


def _names(hostname: str, addresses: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = [x509.DNSName(hostname)]
    if "." not in hostname:
        names.append(x509.DNSName(f"{hostname}.local"))
    seen: set[ipaddress.IPv4Address | ipaddress.IPv6Address] = set()
    for text in [*addresses, "127.0.0.1", "::1"]:
        try:
            address = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            continue
        if address not in seen:
            seen.add(address)
            names.append(x509.IPAddress(address))
    return names


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 from the first byte (not chmod-ed afterwards), then renamed into place.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _write_public(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)
