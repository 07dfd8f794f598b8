"""ChatClient over real TLS: pinning on first use, refusing a changed or downgraded server."""

from __future__ import annotations

from pathlib import Path

import pytest

from chat_client import ChatClient, ClientSettings, Disconnected
from chat_client.secure import TlsOptions, find_tls
from chat_client.trust import (
    FingerprintChanged,
    FingerprintMismatch,
    KnownServers,
    PlainTextRefused,
    Verdict,
)
from chat_server.server import ChatServer
from tests.client.test_library import next_event
from tests.conftest import StartServer
from tests.support import TIMEOUT

FAST = ClientSettings(backoff_initial=0.05, backoff_max=0.2, connect_timeout=2.0)


@pytest.fixture
def known(known_servers: Path) -> KnownServers:
    return KnownServers(known_servers)


async def tls_server(start: StartServer, data: Path, tls_port: int = 0) -> ChatServer:
    return await start(tls_port=tls_port, data_dir=str(data))


def tls_port_of(server: ChatServer) -> int:
    assert server.tls_port is not None
    return server.tls_port


async def test_first_use_pins_then_the_same_certificate_is_known(
    start_server: StartServer, tmp_path: Path, known: KnownServers
) -> None:
    server = await tls_server(start_server, tmp_path / "a")
    port = tls_port_of(server)
    async with ChatClient("127.0.0.1", port, "alice", settings=FAST, tls=TlsOptions()) as alice:
        assert alice.security.encrypted
        assert alice.security.verdict is Verdict.PINNED
        assert alice.security.fingerprint == server.fingerprint
        await alice.join("lobby")
        assert await alice.say("lobby", "over tls") == 1
    assert known.pinned("127.0.0.1", port) == server.fingerprint
    async with ChatClient("127.0.0.1", port, "alice", settings=FAST, tls=TlsOptions()) as again:
        assert again.security.verdict is Verdict.KNOWN


async def test_a_changed_certificate_is_refused_until_trusted(
    start_server: StartServer, tmp_path: Path, known: KnownServers
) -> None:
    first = await tls_server(start_server, tmp_path / "a")
    port = tls_port_of(first)
    old = first.fingerprint
    async with ChatClient("127.0.0.1", port, "alice", settings=FAST, tls=TlsOptions()):
        pass
    await first.close()
    impostor = await tls_server(start_server, tmp_path / "b", tls_port=port)
    new = impostor.fingerprint
    assert old is not None and new is not None and old != new
    client = ChatClient("127.0.0.1", port, "alice", settings=FAST, tls=TlsOptions())
    with pytest.raises(FingerprintChanged) as caught:
        await client.connect()
    assert (caught.value.pinned, caught.value.presented) == (old, new)
    assert old in str(caught.value) and new in str(caught.value)
    assert impostor.context.online_users() == 0  # nothing was sent: no nick, no password
    assert known.pinned("127.0.0.1", port) == old

    trusted = TlsOptions(fingerprint=new.lower())  # the user read it off the host's screen
    async with ChatClient("127.0.0.1", port, "alice", settings=FAST, tls=trusted) as alice:
        assert alice.security.verdict is Verdict.TRUSTED
    assert known.pinned("127.0.0.1", port) == new


async def test_a_wrong_announced_fingerprint_is_refused(
    start_server: StartServer, tmp_path: Path, known: KnownServers
) -> None:
    server = await tls_server(start_server, tmp_path / "a")
    wrong = TlsOptions(announced=":".join(["00"] * 32))
    client = ChatClient("127.0.0.1", tls_port_of(server), "alice", settings=FAST, tls=wrong)
    with pytest.raises(FingerprintMismatch):
        await client.connect()
    assert known.pinned("127.0.0.1", tls_port_of(server)) is None


async def test_a_host_once_reached_over_tls_is_not_reached_in_plain_text(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = await tls_server(start_server, tmp_path / "a")
    async with ChatClient("127.0.0.1", tls_port_of(server), "alice", tls=TlsOptions()):
        pass
    plain = ChatClient("127.0.0.1", server.port, "bob", settings=FAST)
    with pytest.raises(PlainTextRefused, match="--insecure"):
        await plain.connect()
    assert server.context.online_users() == 0
    async with ChatClient("127.0.0.1", server.port, "bob", settings=FAST, insecure=True) as bob:
        assert not bob.security.encrypted


async def test_reconnecting_to_a_changed_certificate_stops(
    start_server: StartServer, tmp_path: Path
) -> None:
    first = await tls_server(start_server, tmp_path / "a")
    port = tls_port_of(first)
    client = ChatClient("127.0.0.1", port, "alice", settings=FAST, tls=TlsOptions())
    await client.connect()
    try:
        await first.close()
        await tls_server(start_server, tmp_path / "b", tls_port=port)
        while True:
            event = await next_event(client, Disconnected, timeout=TIMEOUT)
            assert isinstance(event, Disconnected)
            if event.retry_in is None:
                break
        assert "CHANGED" in event.reason
    finally:
        await client.close()


async def test_find_tls_reads_the_plain_greeting(start_server: StartServer, tmp_path: Path) -> None:
    server = await tls_server(start_server, tmp_path / "a")
    route = await find_tls("127.0.0.1", server.port, TIMEOUT)
    assert route is not None
    assert (route.port, route.fingerprint) == (server.tls_port, server.fingerprint)
    assert server.context.online_users() == 0
    plain_only = await start_server()
    assert await find_tls("127.0.0.1", plain_only.port, TIMEOUT) is None
