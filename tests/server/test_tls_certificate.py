"""The server's certificate: made once, kept private, fingerprinted like openssl does."""

from __future__ import annotations

import asyncio
import ipaddress
import os
import ssl
import stat
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from chat_server.tls import (
    CERT_FILE,
    TlsSetupError,
    load_certificate,
    load_or_create_certificate,
    server_ssl_context,
)
from protocol import fingerprint_of


def openssl_fingerprint(cert_path: Path) -> str:
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256", "-in", str(cert_path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=10,
    ).stdout.strip()
    assert out.lower().startswith("sha256 fingerprint=")
    return out.split("=", 1)[1]


def test_first_start_makes_a_p256_certificate_with_the_host_names(tmp_path: Path) -> None:
    made = load_or_create_certificate(tmp_path, "chathost", ["192.0.2.7", "not-an-ip"])
    assert made.created
    cert = x509.load_pem_x509_certificate((tmp_path / CERT_FILE).read_bytes())
    public = cert.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    assert public.curve.name == "secp256r1"
    sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {"chathost", "chathost.local"}
    assert set(sans.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("192.0.2.7"),
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }


def test_key_file_is_private(tmp_path: Path) -> None:
    old_umask = os.umask(0)  # even a permissive umask must not widen the key's mode
    try:
        made = load_or_create_certificate(tmp_path)
    finally:
        os.umask(old_umask)
    assert stat.S_IMODE(made.key_path.stat().st_mode) == 0o600
    assert not list(tmp_path.glob(".*.tmp"))


def test_certificate_is_made_once_and_reused(tmp_path: Path) -> None:
    first = load_or_create_certificate(tmp_path)
    cert_bytes = first.cert_path.read_bytes()
    key_bytes = first.key_path.read_bytes()
    again = load_or_create_certificate(tmp_path)
    assert not again.created
    assert again.fingerprint == first.fingerprint
    assert first.cert_path.read_bytes() == cert_bytes
    assert first.key_path.read_bytes() == key_bytes


def test_fingerprint_is_what_openssl_prints(tmp_path: Path) -> None:
    made = load_or_create_certificate(tmp_path)
    assert made.fingerprint == openssl_fingerprint(made.cert_path)


def test_half_a_pair_is_replaced_by_a_new_pair(tmp_path: Path) -> None:
    first = load_or_create_certificate(tmp_path)
    first.key_path.unlink()
    second = load_or_create_certificate(tmp_path)
    assert second.created
    assert second.fingerprint != first.fingerprint
    server_ssl_context(second)


def _openssl_pair(tmp_path: Path, name: str) -> tuple[Path, Path]:
    cert, key = tmp_path / f"{name}.crt", tmp_path / f"{name}.key"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def test_own_cert_and_key_load_with_openssl_fingerprint(tmp_path: Path) -> None:
    cert, key = _openssl_pair(tmp_path, "own")
    loaded = load_certificate(cert, key)
    assert loaded.fingerprint == openssl_fingerprint(cert)
    assert loaded.fingerprint == fingerprint_of(
        ssl.PEM_cert_to_DER_cert(cert.read_text(encoding="ascii"))
    )


def test_a_key_of_another_certificate_is_refused_in_one_line(tmp_path: Path) -> None:
    cert, _ = _openssl_pair(tmp_path, "one")
    _, other_key = _openssl_pair(tmp_path, "two")
    with pytest.raises(TlsSetupError, match="does not fit"):
        load_certificate(cert, other_key)


@pytest.mark.parametrize("problem", ["missing cert", "missing key", "not pem", "garbage key"])
def test_unusable_files_are_a_setup_error(tmp_path: Path, problem: str) -> None:
    made = load_or_create_certificate(tmp_path / "d")
    cert, key = made.cert_path, made.key_path
    if problem == "missing cert":
        cert = tmp_path / "nope.pem"
    elif problem == "missing key":
        key = tmp_path / "nope.key"
    elif problem == "not pem":
        cert = tmp_path / "x.pem"
        cert.write_text("hello\n")
    else:
        key = tmp_path / "x.key"
        key.write_text("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n")
    with pytest.raises(TlsSetupError) as caught:
        load_certificate(cert, key)
    assert "\n" not in str(caught.value)


async def test_context_speaks_tls_1_2_and_up_only(tmp_path: Path) -> None:
    made = load_or_create_certificate(tmp_path)
    context = server_ssl_context(made)
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"ok\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    try:
        client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        client.check_hostname = False
        client.verify_mode = ssl.CERT_NONE
        client.maximum_version = ssl.TLSVersion.TLSv1_2
        reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
        assert await asyncio.wait_for(reader.readline(), 5) == b"ok\n"
        ssl_object = writer.get_extra_info("ssl_object")
        assert ssl_object.version() == "TLSv1.2"
        assert fingerprint_of(ssl_object.getpeercert(binary_form=True)) == made.fingerprint
        writer.close()
    finally:
        server.close()
        await server.wait_closed()
