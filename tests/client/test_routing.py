"""Deciding TLS or plain for an address or an announced name, against real servers."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path

import pytest

from chat_client import routing
from chat_client.discovery import DiscoveredServer
from chat_client.routing import (
    Route,
    RouteError,
    looks_like_address,
    parse_address,
    route_to,
    route_to_address,
    route_to_discovered,
)
from chat_server.discovery import Announcer
from chat_server.server import ChatServer
from protocol import Announcement
from tests.conftest import StartServer


@pytest.fixture
async def tls_server(start_server: StartServer, tmp_path: Path) -> ChatServer:
    return await start_server(tls_port=0, data_dir=str(tmp_path))


async def test_a_plain_address_moves_to_the_offered_tls_port(tls_server: ChatServer) -> None:
    route = await route_to_address("127.0.0.1", tls_server.port)
    assert (route.host, route.port) == ("127.0.0.1", tls_server.tls_port)
    assert route.tls is not None
    assert (route.tls.announced, route.tls.fingerprint) == (tls_server.fingerprint, None)
    assert tls_server.context.online_users() == 0


async def test_a_silent_port_is_taken_for_tls(tls_server: ChatServer) -> None:
    assert tls_server.tls_port is not None
    route = await route_to_address("127.0.0.1", tls_server.tls_port, greeting_timeout=0.3)
    assert route.port == tls_server.tls_port and route.tls is not None


async def test_a_server_without_tls_is_plain_and_a_fingerprint_cannot_be_checked(
    server: ChatServer,
) -> None:
    route = await route_to_address("127.0.0.1", server.port)
    assert route == Route("127.0.0.1", server.port, None)
    with pytest.raises(RouteError, match="offers no TLS"):
        await route_to_address("127.0.0.1", server.port, fingerprint="AA" * 32)


async def test_tls_flag_goes_straight_to_tls() -> None:
    route = await route_to_address("10.9.9.9", None, tls=True, fingerprint="ab" * 32)
    assert route.port == routing.DEFAULT_TLS_PORT
    assert route.tls is not None and route.tls.fingerprint == "ab" * 32


async def test_nothing_on_the_default_port_tries_the_default_tls_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with socket.socket() as probe:  # a port with nothing listening on it
        probe.bind(("127.0.0.1", 0))
        free = probe.getsockname()[1]
    monkeypatch.setattr(routing, "DEFAULT_PORT", free)
    route = await route_to_address("127.0.0.1", None)
    assert route.port == routing.DEFAULT_TLS_PORT and route.tls is not None
    with pytest.raises(OSError):
        await route_to_address("127.0.0.1", free)


async def test_an_announced_name_is_found_on_the_lan(tls_server: ChatServer) -> None:
    name = f"room-{secrets.token_hex(3)}"
    record = Announcement(
        secrets.token_hex(4), tls_server.port, tls_server.tls_port, tls_server.fingerprint, False, 0
    )
    announcer = Announcer(name, record, lambda: 0, ["127.0.0.1"])
    await announcer.start()
    try:
        route = await route_to(name.upper(), interfaces=["127.0.0.1"])
    finally:
        await announcer.close()
    assert route.name == name
    assert (route.host, route.port) == ("127.0.0.1", tls_server.tls_port)
    assert route.tls is not None and route.tls.announced == tls_server.fingerprint


def test_discovered_without_tls_is_plain() -> None:
    found = DiscoveredServer("a1b2c3d4", "x", ("10.0.0.2",), 7790, None, None, False, 0, 2)
    assert route_to_discovered(found) == Route("10.0.0.2", 7790, None, "x")
    with pytest.raises(RouteError):
        route_to_discovered(found, fingerprint="AB" * 32)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("office", False),
        ("localhost", True),
        ("10.0.0.1", True),
        ("host:7777", True),
        ("chat.example", True),
        ("::1", True),
    ],
)
def test_what_counts_as_an_address(text: str, expected: bool) -> None:
    assert looks_like_address(text) is expected


def test_parse_address() -> None:
    assert parse_address("h") == ("h", None)
    assert parse_address("[::1]:7778") == ("::1", 7778)
    with pytest.raises(RouteError):
        parse_address("h:99999")


def test_the_nodes_of_one_chat_parse_in_order() -> None:
    assert routing.parse_addresses("h1:7777,h2,[::1]:7000") == [
        ("h1", 7777),
        ("h2", None),
        ("::1", 7000),
    ]
    assert routing.parse_addresses("solo:1") == [("solo", 1)]
    with pytest.raises(routing.RouteError):
        routing.parse_addresses("h1:7777,")
