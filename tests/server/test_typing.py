"""`typing`: features negotiated in hello/welcome, forwarding, throttle and flood control."""

from __future__ import annotations

import asyncio

from chat_server.server import ChatServer
from tests.conftest import StartServer
from tests.server.helpers import Clients, join
from tests.support import Json, LineClient

INTERVAL = 0.4  # a short --typing-interval, so the throttle's window can be waited out


async def typist(clients: Clients, port: int, nick: str, *rooms: str) -> LineClient:
    """A client that asked for `typing`, joined to `rooms`."""
    client = await clients.open(port)
    welcome = await client.request({"type": "hello", "nick": nick, "features": ["typing"]})
    assert welcome["features"] == ["typing"], welcome
    for room in rooms:
        await join(client, room, nick)
    return client


def typings(messages: list[Json]) -> list[Json]:
    return [m for m in messages if m["type"] == "typing"]


async def test_hello_offers_typing_and_welcome_grants_only_what_was_asked(
    server: ChatServer, clients: Clients
) -> None:
    client = await clients.connect(server.port)
    hello = await client.recv()
    assert "typing" in hello["features"]
    welcome = await client.request(
        {"type": "hello", "nick": "alice", "features": ["typing", "no-such-thing"]}
    )
    assert welcome["features"] == ["typing"]
    plain = await clients.open(server.port)
    welcome = await plain.request({"type": "hello", "nick": "bob"})
    assert welcome["features"] == []  # a version-1 client asked for none


async def test_room_typing_reaches_other_members_granted_it_and_never_the_sender(
    server: ChatServer, clients: Clients
) -> None:
    alice = await typist(clients, server.port, "alice", "lobby")
    bob = await typist(clients, server.port, "bob", "lobby")
    carol = await clients.registered(server.port, "carol", "lobby")  # did not ask for typing
    await alice.quiet()
    ack = await alice.request({"type": "typing", "room": "lobby", "state": "active"})
    assert ack["type"] == "ack"
    got = await bob.expect("typing")
    assert got == {"type": "typing", "room": "lobby", "from": "alice", "state": "active"}
    await bob.request({"type": "say", "room": "lobby", "text": "marker"})
    await carol.expect("message", text="marker")
    await alice.expect("message", text="marker")
    assert not typings(carol.seen)
    assert not typings(alice.seen)


async def test_typing_to_a_user_reaches_only_that_user(
    server: ChatServer, clients: Clients
) -> None:
    alice = await typist(clients, server.port, "alice", "lobby")
    bob = await typist(clients, server.port, "bob", "lobby")
    carol = await typist(clients, server.port, "carol", "lobby")
    await alice.send({"type": "typing", "to": "bob", "state": "paused"})
    assert await bob.expect("typing") == {"type": "typing", "from": "alice", "state": "paused"}
    await alice.request({"type": "say", "room": "lobby", "text": "marker"})
    await carol.expect("message", text="marker")
    assert not typings(carol.seen)


async def test_typing_refusals(server: ChatServer, clients: Clients) -> None:
    alice = await typist(clients, server.port, "alice")
    refused = await alice.request({"type": "typing", "room": "lobby", "state": "active"})
    assert refused["code"] == "not_in_room"
    refused = await alice.request({"type": "typing", "to": "nobody", "state": "active"})
    assert refused["code"] == "no_such_user"
    refused = await alice.request({"type": "typing", "to": "alice", "room": "x", "state": "done"})
    assert refused["code"] == "invalid_message"
    refused = await alice.request({"type": "typing", "to": "bob", "state": "busy"})
    assert refused["code"] == "invalid_message"


async def test_one_active_per_interval_passes_and_paused_or_done_always_pass(
    start_server: StartServer, clients: Clients
) -> None:
    server = await start_server(typing_interval=INTERVAL)
    alice = await typist(clients, server.port, "alice", "lobby")
    bob = await typist(clients, server.port, "bob", "lobby")
    loop = asyncio.get_running_loop()
    started = loop.time()
    for state in ("active", "active", "paused", "active", "done"):
        ack = await alice.request({"type": "typing", "room": "lobby", "state": state})
        assert ack["type"] == "ack"  # a throttled one is acked too
    await alice.request({"type": "say", "room": "lobby", "text": "marker"})
    await bob.expect("message", text="marker")
    states = [m["state"] for m in typings(bob.seen)]
    if loop.time() - started < INTERVAL:  # all five went within one window
        assert states == ["active", "paused", "done"]
    await asyncio.sleep(max(0.0, started + INTERVAL - loop.time()) + 0.05)
    await alice.send({"type": "typing", "room": "lobby", "state": "active"})
    await bob.expect("typing", state="active")
    # The throttle is per target: a DM target has its own window.
    await alice.send({"type": "typing", "to": "bob", "state": "active"})
    assert "room" not in await bob.expect("typing", state="active")


async def test_typing_lines_do_not_use_up_the_chat_line_bucket(
    start_server: StartServer, clients: Clients
) -> None:
    server = await start_server(rate=0.5, burst=3)
    alice = await typist(clients, server.port, "alice")
    bob = await typist(clients, server.port, "bob")
    for _ in range(20):  # far past the line burst, and past the typing bound too
        await alice.send({"type": "typing", "to": "bob", "state": "done"})
    replies = await alice.quiet()
    assert not [r for r in replies if r["type"] == "error"]
    ack = await alice.request({"type": "ping", "token": "still-here"})
    assert ack["type"] == "pong"
    got = typings(await bob.quiet())
    assert 1 <= len(got) <= 12  # bounded by the typing bucket (burst 10, 2/s)


async def test_a_typing_line_sent_again_and_by_others_is_handled_each_time(
    server: ChatServer, clients: Clients
) -> None:
    # The server keeps decoded id-less typing lines by their bytes: the same bytes from
    # another sender, or refused where they are sent, must still be handled afresh.
    alice = await typist(clients, server.port, "alice", "lobby")
    carol = await typist(clients, server.port, "carol", "lobby")
    bob = await typist(clients, server.port, "bob", "lobby")
    line = b'{"type":"typing","room":"lobby","state":"done"}\n'
    for sender in (alice, carol, alice, carol):
        await sender.send_raw(line)
        await sender.request({"type": "ping", "token": "handled"})  # in this order
    await alice.request({"type": "say", "room": "lobby", "text": "marker"})
    await bob.expect("message", text="marker")
    assert [m["from"] for m in typings(bob.seen)] == ["alice", "carol", "alice", "carol"]
    dave = await typist(clients, server.port, "dave")  # in no room: the same bytes are refused
    await dave.send_raw(line)
    await dave.send_raw(line)
    refused = [m for m in await dave.quiet() if m["type"] == "error"]
    assert [m["code"] for m in refused] == ["not_in_room", "not_in_room"]
    bad = b'{"type":"typing","room":"lobby","state":"busy"}\n'
    await alice.send_raw(bad)
    await alice.send_raw(bad)
    refused = [m for m in await alice.quiet() if m["type"] == "error"]
    assert [m["code"] for m in refused] == ["invalid_message", "invalid_message"]


def test_the_kept_typing_lines_are_bounded() -> None:
    from chat_server import json_session
    from protocol import Typing

    for n in range(json_session.TYPING_LINES_KEPT * 2 + 5):
        line = b'{"type":"typing","room":"r%d","state":"done"}' % n
        json_session._remember_typing(line, Typing(room=f"r{n}", state="done"))
        assert len(json_session._TYPING_LINES) <= json_session.TYPING_LINES_KEPT
