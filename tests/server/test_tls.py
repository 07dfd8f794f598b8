"""The TLS listener: same protocol and rooms as plain text, and bad handshakes harm nobody."""

from __future__ import annotations

import asyncio
import logging
import ssl
from pathlib import Path

import pytest

from chat_client.tls import client_ssl_context
from chat_server.server import ChatServer
from protocol import fingerprint_of
from tests.conftest import StartServer
from tests.server.helpers import Clients, join, prove_alive
from tests.support import TIMEOUT, LineClient


async def connect_tls(clients: Clients, port: int, *, read_hello: bool = True) -> LineClient:
    context = client_ssl_context()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context, limit=1 << 22)
    client = clients.track(LineClient(reader, writer))
    if read_hello:
        hello = await client.recv()
        assert hello["type"] == "hello", hello
    return client


async def tls_registered(clients: Clients, port: int, nick: str, *rooms: str) -> LineClient:
    client = await connect_tls(clients, port)
    welcome = await client.request({"type": "hello", "nick": nick})
    assert welcome["type"] == "welcome", welcome
    for room in rooms:
        await join(client, room, nick)
    return client


@pytest.fixture
async def tls_server(start_server: StartServer, tmp_path: Path) -> ChatServer:
    return await start_server(tls_port=0, data_dir=str(tmp_path / "data"))


async def test_hello_over_both_listeners_names_the_tls_port_and_fingerprint(
    tls_server: ChatServer, clients: Clients
) -> None:
    assert tls_server.tls_port is not None
    assert tls_server.fingerprint is not None
    kinds = [kind for _, _, kind in tls_server.listeners]
    assert kinds == ["plain", "tls"]
    plain = await clients.connect(tls_server.port)
    secure = await connect_tls(clients, tls_server.tls_port, read_hello=False)
    for client in (plain, secure):
        hello = await client.recv()
        assert hello["protocol"] == 2
        assert hello["features"] == [
            "accounts",
            "reply",
            "edit",
            "react",
            "typing",
            "read",
            "search",
            "moderation",
            "away",
        ]
        assert hello["tls_port"] == tls_server.tls_port
        assert hello["fingerprint"] == tls_server.fingerprint
    ssl_object = secure.writer.get_extra_info("ssl_object")
    assert fingerprint_of(ssl_object.getpeercert(binary_form=True)) == tls_server.fingerprint
    assert ssl_object.version() in ("TLSv1.2", "TLSv1.3")


async def test_tls_and_plain_json_clients_share_rooms(
    tls_server: ChatServer, clients: Clients
) -> None:
    assert tls_server.tls_port is not None
    alice = await tls_registered(clients, tls_server.tls_port, "alice", "lobby")
    bob = await clients.registered(tls_server.port, "bob", "lobby")
    await prove_alive(alice, bob, "lobby", "over tls")
    await prove_alive(bob, alice, "lobby", "over plain")


async def test_a_tls_client_leaving_is_a_left_and_no_warning(
    tls_server: ChatServer, clients: Clients, caplog: pytest.LogCaptureFixture
) -> None:
    assert tls_server.tls_port is not None
    bob = await clients.registered(tls_server.port, "bob", "lobby")
    with caplog.at_level(logging.INFO):
        alice = await tls_registered(clients, tls_server.tls_port, "alice", "lobby")
        await bob.expect("joined", nick="alice")
        await alice.close()  # close_notify, then EOF: no half-close over TLS
        await bob.expect("left", nick="alice")
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == []


async def test_features_are_granted_as_requested_and_supported(
    tls_server: ChatServer, clients: Clients
) -> None:
    assert tls_server.tls_port is not None
    client = await connect_tls(clients, tls_server.tls_port)
    welcome = await client.request(
        {"type": "hello", "nick": "carol", "features": ["reply", "teleport"]}
    )
    assert (welcome["features"], welcome["account"]) == (["reply"], False)  # not "teleport"
    too_many = await connect_tls(clients, tls_server.tls_port)
    error = await too_many.request(
        {"type": "hello", "nick": "dave", "features": [f"f{i}" for i in range(33)]}
    )
    assert error["code"] == "invalid_message"


async def test_text_mode_over_tls(tls_server: ChatServer, clients: Clients) -> None:
    assert tls_server.tls_port is not None
    alice = await clients.registered(tls_server.port, "alice", "lobby")
    person = await connect_tls(clients, tls_server.tls_port)
    await person.send_raw(b"bob\n")
    await alice.expect("joined", nick="bob")
    await person.send_raw(b"hello from tls\n")
    heard = await alice.expect("message", nick=None, text="hello from tls")
    assert heard["from"] == "bob"
    await alice.request({"type": "say", "room": "lobby", "text": "hi bob"})
    while b"<alice> hi bob" not in (line := await person.recv_line()):
        assert not line.startswith(b"{"), line


async def test_openssl_s_client_is_a_working_text_mode_chat(
    tls_server: ChatServer, clients: Clients
) -> None:
    assert tls_server.tls_port is not None
    alice = await clients.registered(tls_server.port, "alice", "lobby")
    process = await asyncio.create_subprocess_exec(
        *("openssl", "s_client", "-quiet", "-connect", f"127.0.0.1:{tls_server.tls_port}"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdin is not None and process.stdout is not None
    try:
        banner = await asyncio.wait_for(process.stdout.readline(), 10)
        assert b'"type":"hello"' in banner
        process.stdin.write(b"carol\n")
        await alice.expect("joined", nick="carol", timeout=10)
        process.stdin.write(b"hi over openssl\n")
        heard = await alice.expect("message", text="hi over openssl", timeout=10)
        assert heard["from"] == "carol"
        await alice.request({"type": "say", "room": "lobby", "text": "welcome carol"})
        async with asyncio.timeout(10):
            while b"<alice> welcome carol" not in (line := await process.stdout.readline()):
                assert line, "s_client ended early"
        process.stdin.write(b"/quit\n")
        await alice.expect("left", nick="carol", timeout=10)
    finally:
        if process.returncode is None:
            process.kill()
        await process.wait()


async def make_pair(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    process = await asyncio.create_subprocess_exec(
        *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
        *("-nodes", "-days", "2", "-subj", "/CN=own", "-keyout", str(key), "-out", str(cert)),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert await asyncio.wait_for(process.wait(), 60) == 0
    return cert, key


async def test_a_plain_client_on_the_tls_port_is_closed_in_one_line(
    tls_server: ChatServer, clients: Clients, caplog: pytest.LogCaptureFixture
) -> None:
    assert tls_server.tls_port is not None
    alice = await tls_registered(clients, tls_server.tls_port, "alice", "lobby")
    bob = await clients.registered(tls_server.port, "bob", "lobby")
    with caplog.at_level(logging.INFO, logger="chat_server"):
        intruder = await clients.connect(tls_server.tls_port)
        await intruder.send_raw(b'{"type":"hello","nick":"mallory"}\n')
        assert await asyncio.wait_for(intruder.reader.read(), TIMEOUT) == b""
        await prove_alive(alice, bob, "lobby", "still here")
    lines = [r for r in caplog.records if "handshake" in r.getMessage()]
    assert len(lines) == 1, [r.getMessage() for r in caplog.records]
    assert "plain-text client on the TLS port" in lines[0].getMessage()
    assert all(r.exc_info is None and r.levelno < logging.WARNING for r in caplog.records)


async def test_a_tls_client_on_the_plain_port_is_closed_in_one_line(
    tls_server: ChatServer, clients: Clients, caplog: pytest.LogCaptureFixture
) -> None:
    assert tls_server.tls_port is not None
    alice = await tls_registered(clients, tls_server.tls_port, "alice", "lobby")
    bob = await clients.registered(tls_server.port, "bob", "lobby")
    with caplog.at_level(logging.INFO, logger="chat_server"):
        with pytest.raises((ssl.SSLError, ConnectionError)):
            await asyncio.wait_for(
                asyncio.open_connection("127.0.0.1", tls_server.port, ssl=client_ssl_context()),
                TIMEOUT,
            )
        await prove_alive(bob, alice, "lobby", "unharmed")
    closing = [r for r in caplog.records if "tls_client_on_plain_port" in r.getMessage()]
    assert len(closing) == 1
    assert all(r.exc_info is None and r.levelno < logging.WARNING for r in caplog.records)


async def test_a_client_leaving_mid_handshake_harms_nobody(
    tls_server: ChatServer, clients: Clients, caplog: pytest.LogCaptureFixture
) -> None:
    assert tls_server.tls_port is not None
    alice = await tls_registered(clients, tls_server.tls_port, "alice", "lobby")
    bob = await tls_registered(clients, tls_server.tls_port, "bob", "lobby")
    with caplog.at_level(logging.INFO, logger="chat_server"):
        for payload in (b"", b"\x16\x03\x01\x00\x05hello", b"\x16\x03\x01\xff\xff" + b"x" * 100):
            _, writer = await asyncio.open_connection("127.0.0.1", tls_server.tls_port)
            writer.write(payload)
            await writer.drain()
            writer.close()
            await writer.wait_closed()
        await prove_alive(alice, bob, "lobby", "fine")
    assert all(r.exc_info is None and r.levelno < logging.WARNING for r in caplog.records)


async def test_tls_only_has_no_plain_listener(
    start_server: StartServer, clients: Clients, tmp_path: Path
) -> None:
    server = await start_server(tls_port=0, tls_only=True, data_dir=str(tmp_path))
    assert [kind for _, _, kind in server.listeners] == ["tls"]
    assert server.port == server.tls_port
    client = await connect_tls(clients, server.port)
    welcome = await client.request({"type": "hello", "nick": "alice"})
    assert welcome["type"] == "welcome"


async def test_own_cert_and_key(
    start_server: StartServer, clients: Clients, tmp_path: Path
) -> None:
    cert, key = await make_pair(tmp_path)
    server = await start_server(tls_port=0, cert_path=str(cert), key_path=str(key))
    assert server.tls_port is not None
    client = await connect_tls(clients, server.tls_port, read_hello=False)
    hello = await client.recv()
    ssl_object = client.writer.get_extra_info("ssl_object")
    presented = fingerprint_of(ssl_object.getpeercert(binary_form=True))
    assert hello["fingerprint"] == presented == server.fingerprint


async def test_the_certificate_survives_a_restart(tmp_path: Path) -> None:
    from tests.support import make_config

    config = make_config(tls_port=0, data_dir=str(tmp_path))
    fingerprints = []
    for _ in range(2):
        async with ChatServer(config) as server:
            fingerprints.append(server.fingerprint)
    assert fingerprints[0] is not None
    assert fingerprints[0] == fingerprints[1]
