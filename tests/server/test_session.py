"""The session rows of the contract: greeting, registration, ping/pong, quit and disconnect."""

from __future__ import annotations

import re

from chat_server.server import ChatServer
from tests.conftest import StartServer
from tests.server.helpers import Clients, join

TS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


async def test_server_speaks_first_with_hello(start_server: StartServer, clients: Clients) -> None:
    server = await start_server(name="test-server", motd="hi there")
    client = await clients.connect(server.port)
    hello = await client.recv()
    assert hello == {
        "type": "hello",
        "server": "test-server",
        "protocol": 2,
        "motd": "hi there",
        "password_required": False,
        "features": [
            "accounts",
            "reply",
            "edit",
            "react",
            "typing",
            "read",
            "search",
            "moderation",
            "away",
        ],  # version 2: what this server offers
        "tls_port": None,
        "fingerprint": None,
    }


async def test_hello_gets_welcome_with_existing_rooms(server: ChatServer, clients: Clients) -> None:
    await clients.registered(server.port, "alice", "lobby", "dev")
    bob = await clients.open(server.port)
    welcome = await bob.request({"type": "hello", "nick": "bob", "client": "tests/1", "id": "h"})
    assert welcome == {
        "type": "welcome",
        "nick": "bob",
        "rooms": ["dev", "lobby"],
        "features": [],
        "account": False,
        "re": "h",
    }


async def test_nick_taken_is_case_insensitive_and_retry_works(
    server: ChatServer, clients: Clients
) -> None:
    await clients.registered(server.port, "alice")
    bob = await clients.open(server.port)
    for taken in ["alice", "ALICE", "Alice"]:
        error = await bob.request({"type": "hello", "nick": taken, "id": "1"})
        assert (error["type"], error["code"], error["re"]) == ("error", "nick_taken", "1")
    welcome = await bob.request({"type": "hello", "nick": "Bob"})
    assert welcome["nick"] == "Bob"


async def test_invalid_nick_then_retry(server: ChatServer, clients: Clients) -> None:
    client = await clients.open(server.port)
    for bad in ["", "a b", "x" * 33, "émile", "#chan", "bob!"]:
        error = await client.request({"type": "hello", "nick": bad, "id": "n"})
        assert (error["type"], error["code"], error["re"]) == ("error", "invalid_nick", "n"), bad
    welcome = await client.request({"type": "hello", "nick": "x" * 32})
    assert welcome["type"] == "welcome"


async def test_password_required(start_server: StartServer, clients: Clients) -> None:
    server = await start_server(password="s3cret", auth_delay=0.05)
    client = await clients.connect(server.port)
    hello = await client.recv()
    assert hello["password_required"] is True
    for attempt in [{}, {"password": "s3cret "}]:  # a third failure would close the connection
        error = await client.request({"type": "hello", "nick": "alice", "id": "a", **attempt})
        assert (error["type"], error["code"], error["re"]) == ("error", "auth_failed", "a")
    # A refused hello has no effect: the nick is still free and the client not registered.
    refused = await client.request({"type": "rooms", "id": "r"})
    assert refused["code"] == "not_registered"
    welcome = await client.request({"type": "hello", "nick": "alice", "password": "s3cret"})
    assert welcome["type"] == "welcome"


async def test_everything_but_hello_pong_and_quit_needs_registration(
    server: ChatServer, clients: Clients
) -> None:
    client = await clients.open(server.port)
    requests = [
        {"type": "join", "room": "lobby"},
        {"type": "part", "room": "lobby"},
        {"type": "say", "room": "lobby", "text": "hi"},
        {"type": "dm", "to": "bob", "text": "hi"},
        {"type": "nick", "nick": "bob"},
        {"type": "topic", "room": "lobby", "topic": "t"},
        {"type": "who", "room": "lobby"},
        {"type": "rooms"},
        {"type": "history", "room": "lobby"},
        {"type": "ping", "token": "t"},
    ]
    for number, request in enumerate(requests):
        error = await client.request({**request, "id": f"q{number}"})
        assert error["type"] == "error", error
        assert (error["code"], error["re"]) == ("not_registered", f"q{number}"), request
    await client.send({"type": "pong", "token": "x", "id": "p"})
    assert await client.quiet() == []
    welcome = await client.request({"type": "hello", "nick": "late"})
    assert welcome["rooms"] == []  # the refused join created nothing


async def test_second_hello_is_already_registered(server: ChatServer, clients: Clients) -> None:
    client = await clients.registered(server.port, "alice")
    error = await client.request({"type": "hello", "nick": "other", "id": "2"})
    assert (error["type"], error["code"], error["re"]) == ("error", "already_registered", "2")
    newcomer = await clients.open(server.port)
    # The refused hello had no effect: "alice" is still taken, "other" is free.
    assert (await newcomer.request({"type": "hello", "nick": "alice"}))["code"] == "nick_taken"
    assert (await newcomer.request({"type": "hello", "nick": "other"}))["type"] == "welcome"


async def test_ping_gets_pong_with_token(server: ChatServer, clients: Clients) -> None:
    client = await clients.registered(server.port, "alice")
    pong = await client.request({"type": "ping", "token": "abc", "id": "p1"})
    assert pong == {"type": "pong", "token": "abc", "re": "p1"}
    await client.send({"type": "ping"})
    assert await client.recv() == {"type": "pong"}


async def test_pong_never_errors(server: ChatServer, clients: Clients) -> None:
    early = await clients.open(server.port)
    await early.send({"type": "pong"})
    await early.send({"type": "pong", "token": "t", "id": "x"})
    late = await clients.registered(server.port, "alice")
    await late.send({"type": "pong", "token": "t", "id": "y"})
    assert await early.quiet() == []
    assert await late.quiet() == []
    pong = await early.request({"type": "ping", "token": "still"})
    assert pong["type"] == "error" and pong["code"] == "not_registered"


async def test_quit_says_bye_and_others_get_left(server: ChatServer, clients: Clients) -> None:
    alice = await clients.registered(server.port, "alice", "lobby", "dev")
    bob = await clients.registered(server.port, "bob", "lobby")
    await alice.expect("joined", room="lobby", nick="bob")
    await alice.send({"type": "quit", "reason": "lunch", "id": "q"})
    bye = await alice.recv()
    assert bye == {"type": "bye", "reason": "quit"}
    assert await alice.reader.read() == b""  # then the server closes
    left = await bob.expect("left")
    assert (left["room"], left["nick"], left["reason"]) == ("lobby", "alice", "lunch")
    assert TS.fullmatch(left["ts"])
    assert "re" not in left
    members = await bob.request({"type": "who", "room": "dev"})
    assert members["members"] == []


async def test_quit_without_reason(server: ChatServer, clients: Clients) -> None:
    alice = await clients.registered(server.port, "alice", "lobby")
    bob = await clients.registered(server.port, "bob", "lobby")
    await alice.send({"type": "quit"})
    assert (await alice.expect("bye"))["reason"] == "quit"
    left = await bob.expect("left", nick="alice")
    assert left.get("reason", "quit") == "quit"


async def test_quit_before_hello(server: ChatServer, clients: Clients) -> None:
    client = await clients.open(server.port)
    await client.send({"type": "quit"})
    assert (await client.recv())["reason"] == "quit"
    assert await client.reader.read() == b""


async def test_disconnect_counts_as_quit_and_frees_the_nick(
    server: ChatServer, clients: Clients
) -> None:
    alice = await clients.registered(server.port, "alice", "lobby")
    bob = await clients.registered(server.port, "bob", "lobby")
    await alice.close()
    left = await bob.expect("left", nick="alice")
    assert (left["room"], left["reason"]) == ("lobby", "disconnected")
    again = await clients.registered(server.port, "ALICE", "lobby")
    members = await again.request({"type": "who", "room": "lobby"})
    assert sorted(members["members"]) == ["ALICE", "bob"]


async def test_nothing_is_joined_automatically(server: ChatServer, clients: Clients) -> None:
    alice = await clients.registered(server.port, "alice", "lobby")
    bob = await clients.registered(server.port, "bob")
    await alice.request({"type": "say", "room": "lobby", "text": "anyone?"})
    assert [m for m in await bob.quiet() if m["type"] == "message"] == []
    error = await bob.request({"type": "say", "room": "lobby", "text": "me"})
    assert error["code"] == "not_in_room"
    await join(bob, "lobby", "bob")
