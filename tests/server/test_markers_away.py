"""Read markers and away (version 2) over loopback."""

from __future__ import annotations

from chat_server.server import ChatServer
from tests.server.helpers import Clients
from tests.server.test_accounts import FEATURES, make_account, session


async def test_markers_move_forward_only_and_reach_the_other_session(
    server: ChatServer, clients: Clients
) -> None:
    first = await make_account(clients, server.port, "alice")
    await first.request({"type": "join", "room": "lobby"})
    for n in range(5):
        await first.request({"type": "say", "room": "lobby", "text": f"m{n}"})
    second = await session(clients, server.port, "alice")
    room = await second.request({"type": "join", "room": "lobby"})
    assert room["read"] == 0
    assert (await first.request({"type": "mark_read", "room": "lobby", "seq": 4}))["type"] == "ack"
    assert await second.expect("read") == {"type": "read", "room": "lobby", "seq": 4}
    assert (await first.request({"type": "mark_read", "room": "lobby", "seq": 2}))["type"] == "ack"
    assert [m for m in await second.quiet() if m["type"] == "read"] == []
    assert [
        m for m in first.seen if m["type"] == "read"
    ] == []  # never to the session that moved it
    third = await session(clients, server.port, "alice")
    assert (await third.request({"type": "join", "room": "lobby"}))["read"] == 4
    unknown = await first.request({"type": "mark_read", "room": "nowhere", "seq": 1})
    assert unknown["code"] == "no_such_room"


async def test_dm_markers_and_a_guests_own_markers(server: ChatServer, clients: Clients) -> None:
    alice = await make_account(clients, server.port, "alice")
    other = await session(clients, server.port, "alice")
    await alice.request({"type": "mark_read", "with": "bob", "seq": 3})
    assert await other.expect("read") == {"type": "read", "with": "bob", "seq": 3}
    guest = await clients.registered(server.port, "carol", "lobby")
    await guest.request({"type": "mark_read", "room": "lobby", "seq": 7})
    assert (await guest.request({"type": "join", "room": "lobby"}))["read"] == 7


async def test_away_events_and_maps(server: ChatServer, clients: Clients) -> None:
    bob = await clients.open(server.port)
    await bob.request({"type": "hello", "nick": "bob", "features": FEATURES})
    await bob.request({"type": "join", "room": "lobby"})
    v1 = await clients.registered(server.port, "old", "lobby")
    alice = await make_account(clients, server.port, "alice")
    second = await session(clients, server.port, "alice")
    await alice.request({"type": "join", "room": "lobby"})
    await alice.request({"type": "away", "text": "lunch"})
    assert [m for m in await bob.quiet() if m["type"] == "away"] == []  # one session still here
    await second.request({"type": "away", "text": "lunch"})
    assert await bob.expect("away") == {"type": "away", "nick": "alice", "text": "lunch"}
    who = await bob.request({"type": "who", "room": "lobby"})
    assert who["away"] == {"alice": "lunch"}
    room = await v1.request({"type": "join", "room": "lobby"})
    assert room["away"] == {"alice": "lunch"}
    await second.request({"type": "away"})
    assert await bob.expect("away") == {"type": "away", "nick": "alice", "text": None}
    assert (await bob.request({"type": "who", "room": "lobby"}))["away"] == {}
    assert [m for m in v1.seen if m["type"] == "away"] == []  # not granted: never pushed
    long = await bob.request({"type": "away", "text": "x" * 101})
    assert long["code"] == "invalid_text"


async def test_a_dm_history_page_carries_the_callers_marker(
    server: ChatServer, clients: Clients
) -> None:
    alice = await make_account(clients, server.port, "alice")
    bob = await make_account(clients, server.port, "bob")
    for n in range(3):
        await bob.request({"type": "dm", "to": "alice", "text": f"d{n}"})
    page = await alice.request({"type": "history", "with": "bob"})
    assert (len(page["messages"]), page["read"]) == (3, 0)
    await alice.request({"type": "mark_read", "with": "bob", "seq": 2})
    await alice.close()
    later = await session(clients, server.port, "alice")  # the next login, on another machine
    again = await later.request({"type": "history", "with": "bob"})
    assert again["read"] == 2
    assert (await bob.request({"type": "history", "with": "alice"}))["read"] == 0
