"""History: the latest 50 on join, replay with `since`, and paging with `history`."""

from __future__ import annotations

from chat_server.server import ChatServer
from tests.server.helpers import Clients
from tests.support import Json, LineClient


async def fill(client: LineClient, room: str, count: int) -> None:
    """`count` messages m1..mN in `room`, pipelined; returns once the last is acked."""
    for number in range(1, count + 1):
        await client.send({"type": "say", "room": room, "text": f"m{number}", "id": f"f{number}"})
    await client.expect("ack", re=f"f{count}")


def seqs(page: Json) -> list[int]:
    return [m["seq"] for m in page["messages"]]


async def join_history(client: LineClient, request: Json) -> Json:
    reply = await client.request(request)
    assert reply["type"] == "room", reply
    return await client.expect("history", room=reply["room"])


async def test_join_sends_the_latest_50(server: ChatServer, clients: Clients) -> None:
    alice = await clients.registered(server.port, "alice", "lobby")
    await fill(alice, "lobby", 120)
    bob = await clients.registered(server.port, "bob")
    history = await join_history(bob, {"type": "join", "room": "lobby"})
    assert seqs(history) == list(range(71, 121))
    assert history["more"] is True
    first = history["messages"][0]
    assert (first["type"], first["room"], first["from"], first["text"]) == (
        "message",
        "lobby",
        "alice",
        "m71",
    )


async def test_join_with_since_replays_what_was_missed(
    server: ChatServer, clients: Clients
) -> None:
    alice = await clients.registered(server.port, "alice", "lobby")
    await fill(alice, "lobby", 30)
    bob = await clients.registered(server.port, "bob")
    history = await join_history(bob, {"type": "join", "room": "lobby", "since": 12})
    assert seqs(history) == list(range(13, 31))
    assert [m["text"] for m in history["messages"]][:2] == ["m13", "m14"]
    assert history["more"] is False
    await bob.request({"type": "part", "room": "lobby"})
    history = await join_history(bob, {"type": "join", "room": "lobby", "since": 30})
    assert (history["messages"], history["more"]) == ([], False)
    await bob.request({"type": "part", "room": "lobby"})
    history = await join_history(bob, {"type": "join", "room": "lobby", "since": 0})
    assert seqs(history) == list(range(1, 31))


async def test_join_since_caps_the_replay_at_500(server: ChatServer, clients: Clients) -> None:
    alice = await clients.registered(server.port, "alice", "lobby")
    await fill(alice, "lobby", 620)
    bob = await clients.registered(server.port, "bob")
    history = await join_history(bob, {"type": "join", "room": "lobby", "since": 10})
    assert seqs(history) == list(range(11, 511))
    assert history["more"] is True
    page = await bob.request({"type": "history", "room": "lobby", "after": 510, "limit": 500})
    assert seqs(page) == list(range(511, 621))
    assert page["more"] is False


async def test_history_pages_both_ways(server: ChatServer, clients: Clients) -> None:
    alice = await clients.registered(server.port, "alice", "lobby")
    await fill(alice, "lobby", 120)
    bob = await clients.registered(server.port, "bob")  # not a member: history still works

    page = await bob.request({"type": "history", "room": "#lobby", "id": "h"})
    assert (page["type"], page["room"], page["re"]) == ("history", "lobby", "h")
    assert seqs(page) == list(range(71, 121)) and page["more"] is True

    page = await bob.request({"type": "history", "room": "lobby", "before": 71, "limit": 30})
    assert seqs(page) == list(range(41, 71)) and page["more"] is True
    page = await bob.request({"type": "history", "room": "lobby", "before": 41, "limit": 100})
    assert seqs(page) == list(range(1, 41)) and page["more"] is False
    page = await bob.request({"type": "history", "room": "lobby", "before": 1})
    assert (page["messages"], page["more"]) == ([], False)

    page = await bob.request({"type": "history", "room": "lobby", "after": 0, "limit": 5})
    assert seqs(page) == [1, 2, 3, 4, 5] and page["more"] is True
    page = await bob.request({"type": "history", "room": "lobby", "after": 100, "limit": 20})
    assert seqs(page) == list(range(101, 121)) and page["more"] is False
    page = await bob.request({"type": "history", "room": "lobby", "after": 120})
    assert (page["messages"], page["more"]) == ([], False)

    page = await bob.request({"type": "history", "room": "lobby", "limit": 500})
    assert seqs(page) == list(range(1, 121)) and page["more"] is False
    page = await bob.request({"type": "history", "room": "lobby", "limit": 1})
    assert seqs(page) == [120] and page["more"] is True
    assert page["messages"][0]["text"] == "m120"


async def test_history_refusals(server: ChatServer, clients: Clients) -> None:
    alice = await clients.registered(server.port, "alice", "lobby")
    error = await alice.request({"type": "history", "room": "nope", "id": "1"})
    assert (error["type"], error["code"], error["re"]) == ("error", "no_such_room", "1")
    bad: list[tuple[Json, str]] = [
        ({"limit": 0}, "limit"),
        ({"limit": 501}, "limit"),
        ({"before": 5, "after": 1}, "before"),
        ({"after": "3"}, "after"),
        ({"before": -1}, "before"),
    ]
    for fields, named in bad:
        error = await alice.request({"type": "history", "room": "lobby", "id": "2", **fields})
        assert (error["type"], error["code"], error["re"]) == ("error", "invalid_message", "2")
        assert named in error["message"], error
    error = await alice.request({"type": "join", "room": "lobby", "since": -1, "id": "3"})
    assert (error["code"], error["re"]) == ("invalid_message", "3")
    assert "since" in error["message"]
