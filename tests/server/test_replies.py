"""Request ids: exactly one direct reply carries each `id` as `re`; broadcasts never do."""

from __future__ import annotations

import pytest

from chat_server.server import ChatServer
from tests.server.helpers import Clients
from tests.support import Json

BROADCASTS = {"message", "joined", "left", "nick", "topic", "dm"}

# (request, type of its one direct reply); run in this order by one registered client.
REQUESTS: list[tuple[Json, str]] = [
    ({"type": "join", "room": "lobby"}, "room"),
    ({"type": "say", "room": "lobby", "text": "hi"}, "ack"),
    ({"type": "say", "room": "lobby", "text": "waves", "action": True}, "ack"),
    ({"type": "dm", "to": "bob", "text": "psst"}, "ack"),
    ({"type": "dm", "to": "alice", "text": "me"}, "ack"),
    ({"type": "topic", "room": "lobby", "topic": "t"}, "ack"),
    ({"type": "who", "room": "lobby"}, "members"),
    ({"type": "rooms"}, "room_list"),
    ({"type": "history", "room": "lobby"}, "history"),
    ({"type": "ping", "token": "k"}, "pong"),
    ({"type": "nick", "nick": "alicia"}, "ack"),
    ({"type": "nick", "nick": "alicia"}, "ack"),  # unchanged: still one reply
    ({"type": "part", "room": "lobby", "reason": "bye"}, "ack"),
    # Refused ones: one `error` each.
    ({"type": "say", "room": "lobby", "text": "gone"}, "error"),
    ({"type": "who", "room": "missing"}, "error"),
    ({"type": "hello", "nick": "again"}, "error"),
    ({"type": "dm", "to": "nobody", "text": "x"}, "error"),
    ({"type": "say", "room": "lobby", "text": ""}, "error"),
    ({"type": "say", "room": "lobby"}, "error"),
    ({"type": "say", "room": "lobby", "text": "x", "action": "yes"}, "error"),
    ({"type": "join", "room": "Lobby"}, "error"),
    ({"type": "warp", "to": "nowhere"}, "error"),
]


async def test_each_request_gets_exactly_one_reply(server: ChatServer, clients: Clients) -> None:
    alice = await clients.registered(server.port, "alice")
    bob = await clients.registered(server.port, "bob", "lobby")
    for number, (request, reply_type) in enumerate(REQUESTS):
        reply = await alice.request({**request, "id": f"id-{number}"})
        assert reply["type"] == reply_type, (request, reply)
    await alice.quiet()
    carrying_re = [m["re"] for m in alice.seen if m.get("re", "").startswith("id-")]
    assert carrying_re == [f"id-{number}" for number in range(len(REQUESTS))]
    for message in [*alice.seen, *await bob.quiet()]:
        if message["type"] in BROADCASTS:
            assert "re" not in message, message


async def test_hello_reply_carries_re(server: ChatServer, clients: Clients) -> None:
    client = await clients.open(server.port)
    await client.send({"type": "hello", "nick": "alice", "id": "first"})
    assert await client.quiet() == [
        {
            "type": "welcome",
            "nick": "alice",
            "rooms": [],
            "features": [],
            "account": False,
            "re": "first",
        }
    ]


async def test_quit_is_answered_by_bye(server: ChatServer, clients: Clients) -> None:
    client = await clients.registered(server.port, "alice")
    await client.send({"type": "quit", "id": "q"})
    assert await client.recv() == {"type": "bye", "reason": "quit"}
    assert await client.reader.read() == b""


async def test_pong_is_answered_by_nothing(server: ChatServer, clients: Clients) -> None:
    client = await clients.registered(server.port, "alice")
    await client.send({"type": "pong", "token": "t", "id": "p"})
    assert await client.quiet() == []


@pytest.mark.parametrize(
    ("request_", "code", "field"),
    [
        ({"type": "say", "room": "lobby", "text": 5}, "invalid_message", "text"),
        ({"type": "say", "room": "lobby", "text": "\x1b[31m"}, "invalid_text", "text"),
        ({"type": "join", "room": "lobby", "since": "5"}, "invalid_message", "since"),
        ({"type": "join", "room": "BAD"}, "invalid_room", "room"),
        ({"type": "nick"}, "invalid_message", "nick"),
        ({"type": "dm", "to": "a b", "text": "x"}, "invalid_nick", "to"),
        ({"type": "ping", "token": "x" * 65}, "invalid_text", "token"),
        ({"type": "nope"}, "invalid_message", "type"),
        ({"room": "lobby"}, "invalid_message", "type"),
    ],
)
async def test_validation_errors_carry_re(
    server: ChatServer, clients: Clients, request_: Json, code: str, field: str
) -> None:
    client = await clients.registered(server.port, "alice", "lobby")
    error = await client.request({**request_, "id": "v1"})
    assert (error["type"], error["code"], error["re"]) == ("error", code, "v1")
    assert field in error["message"], error


async def test_errors_without_a_readable_id_carry_no_re(
    server: ChatServer, clients: Clients
) -> None:
    client = await clients.registered(server.port, "alice", "lobby")
    lines = [
        b'{"type":"ping","id":"x"\n',  # bad_json: the id cannot be read
        b'{"type":"ping","id":"\xff"}\n',  # bad_encoding
        b'{"type":"ping","id":5}\n',  # the id itself is invalid
        ('{"type":"ping","id":"' + "x" * 65 + '"}\n').encode(),
    ]
    for line in lines:
        await client.send_raw(line)
        error = await client.recv()
        assert error["type"] == "error" and "re" not in error, (line, error)
    codes = [m["code"] for m in client.seen[-4:]]
    assert codes == ["bad_json", "bad_encoding", "invalid_message", "invalid_message"]
    ok = await client.request({"type": "ping", "id": "x" * 64})
    assert ok["type"] == "pong"
