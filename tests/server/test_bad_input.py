"""Bad lines get the contract's error and hurt nobody: after each, this connection and
another client's still work, and a refused message has had no effect."""

from __future__ import annotations

import itertools

import pytest

from chat_server.server import ChatServer
from tests.conftest import StartServer
from tests.server.helpers import Clients, prove_alive
from tests.support import Json, LineClient

_texts = itertools.count()


async def pair(port: int, clients: Clients) -> tuple[LineClient, LineClient]:
    """Two registered clients in #lobby, each having seen the other join."""
    alice = await clients.registered(port, "alice", "lobby")
    bob = await clients.registered(port, "bob", "lobby")
    await alice.expect("joined", nick="bob")
    return alice, bob


async def still_fine(alice: LineClient, bob: LineClient, *, bob_heard: int = 0) -> None:
    """Both connections still work, and bob heard only the `bob_heard` good messages."""
    text = f"still fine {next(_texts)}"
    assert len([m for m in await bob.quiet(0.05) if m["type"] == "message"]) == bob_heard
    await prove_alive(alice, bob, "lobby", text)
    await prove_alive(bob, alice, "lobby", text + "!")


async def refused(client: LineClient, line: bytes) -> Json:
    await client.send_raw(line)
    error = await client.recv()
    assert error["type"] == "error", (line, error)
    return error


@pytest.mark.parametrize(
    "line",
    [
        b"\xff\xfe\n",
        b'{"type":"say","room":"lobby","text":"caf\xe9"}\n',  # Latin-1, not UTF-8
        b'{"type":"say","room":"lobby","text":"\xed\xa0\x80"}\n',  # an encoded surrogate
        b'{"type":"say","room":"lobby","text":"\xc3"}\n',  # truncated sequence
    ],
)
async def test_bad_encoding(server: ChatServer, clients: Clients, line: bytes) -> None:
    alice, bob = await pair(server.port, clients)
    error = await refused(alice, line)
    assert error["code"] == "bad_encoding" and "re" not in error
    await still_fine(alice, bob)


@pytest.mark.parametrize(
    "line",
    [
        b"{nope\n",
        b"{'type': 'ping'}\n",
        b'{"type":"ping",}\n',
        b'{"type":"ping"} {"type":"ping"}\n',
        b'{"type":"ping"\n',
        b"hello there\n",  # after a JSON first line the connection stays JSON
    ],
)
async def test_bad_json(server: ChatServer, clients: Clients, line: bytes) -> None:
    alice, bob = await pair(server.port, clients)
    error = await refused(alice, line)
    assert error["code"] == "bad_json" and "re" not in error, error
    await still_fine(alice, bob)


@pytest.mark.parametrize(
    ("line", "named"),
    [
        (b"[1, 2]\n", "object"),
        (b'"ping"\n', "object"),
        (b"42\n", "object"),
        (b"null\n", "object"),
        (b'{"type":"teleport","id":"u"}\n', "type"),
        (b'{"room":"lobby","id":"u"}\n', "type"),
        (b'{"type":5,"id":"u"}\n', "type"),
        (b'{"type":"say","room":"lobby","text":["hi"],"id":"u"}\n', "text"),
        (b'{"type":"say","room":"lobby","text":"hi","action":1,"id":"u"}\n', "action"),
        (b'{"type":"say","room":7,"text":"hi","id":"u"}\n', "room"),
        (b'{"type":"say","text":"hi","id":"u"}\n', "room"),
        (b'{"type":"join","room":"lobby","since":"5","id":"u"}\n', "since"),
        (b'{"type":"join","room":"lobby","since":5.0,"id":"u"}\n', "since"),
        (b'{"type":"history","room":"lobby","limit":true,"id":"u"}\n', "limit"),
        (b'{"type":"dm","to":null,"text":"x","id":"u"}\n', "to"),
        (b'{"type":"hello","nick":"x","client":{},"id":"u"}\n', "client"),
    ],
)
async def test_invalid_message_names_the_field(
    server: ChatServer, clients: Clients, line: bytes, named: str
) -> None:
    alice, bob = await pair(server.port, clients)
    error = await refused(alice, line)
    assert error["code"] == "invalid_message", error
    assert named in error["message"], error
    assert error.get("re") == ("u" if b'"id":"u"' in line else None)
    await still_fine(alice, bob)


async def test_unknown_extra_fields_are_ignored(server: ChatServer, clients: Clients) -> None:
    alice, bob = await pair(server.port, clients)
    ack = await alice.request({"type": "say", "room": "lobby", "text": "x", "future": [1, {}]})
    assert ack["type"] == "ack"
    assert (await bob.expect("message"))["text"] == "x"


async def test_blank_lines_and_crlf(server: ChatServer, clients: Clients) -> None:
    alice, bob = await pair(server.port, clients)
    await alice.send_raw(b"\n   \n\r\n\t \r\n")
    assert await alice.quiet() == []
    await alice.send_raw(b'{"type":"ping","id":"crlf"}\r\n')
    assert await alice.recv() == {"type": "pong", "re": "crlf"}
    await still_fine(alice, bob)


async def test_line_too_long(start_server: StartServer, clients: Clients) -> None:
    server = await start_server(max_line=256)
    alice, bob = await pair(server.port, clients)
    say = b'{"type":"say","room":"lobby","id":"x","text":"'
    exact = say + b"a" * (256 - len(say) - 2) + b'"}'
    assert len(exact) == 256
    await alice.send_raw(exact + b"\r\n")
    assert (await alice.expect("ack", re="x"))["seq"] == 1
    error = await refused(alice, say + b"a" * (257 - len(say) - 2) + b'"}\n')
    assert error["code"] == "line_too_long" and "re" not in error
    # A long line in pieces, with a good line right behind it in the same write.
    await alice.send_raw(say + b"b" * 300)
    await alice.send_raw(b"b" * 5000)
    await alice.send_raw(b'"}\n{"type":"ping","id":"after"}\n')
    error = await alice.recv()
    assert (error["type"], error["code"]) == ("error", "line_too_long")
    assert await alice.recv() == {"type": "pong", "re": "after"}
    await still_fine(alice, bob, bob_heard=1)
    first = next(m for m in bob.seen if m["type"] == "message")
    assert first["text"] == "a" * (256 - len(say) - 2)


async def test_over_long_text(server: ChatServer, clients: Clients) -> None:
    alice, bob = await pair(server.port, clients)
    for request in [
        {"type": "say", "room": "lobby", "text": "x" * 4001},
        {"type": "say", "room": "lobby", "text": ""},
        {"type": "dm", "to": "bob", "text": "é" * 4001},
        {"type": "part", "room": "lobby", "reason": "r" * 301},
        {"type": "quit", "reason": "r" * 301},
    ]:
        error = await alice.request({**request, "id": "long"})
        assert (error["type"], error["code"]) == ("error", "invalid_text"), request
    await still_fine(alice, bob)
    # Characters, not bytes: 4,000 two-byte characters are fine.
    ack = await alice.request({"type": "say", "room": "lobby", "text": "é" * 4000})
    assert ack["type"] == "ack"
    assert len((await bob.expect("message", seq=ack["seq"]))["text"]) == 4000


async def test_configured_text_limit(start_server: StartServer, clients: Clients) -> None:
    server = await start_server(max_text=10)
    alice, bob = await pair(server.port, clients)
    error = await alice.request({"type": "say", "room": "lobby", "text": "x" * 11})
    assert error["code"] == "invalid_text"
    ack = await alice.request({"type": "say", "room": "lobby", "text": "x" * 10})
    assert ack["seq"] == 1
    await prove_alive(bob, alice, "lobby", "still ok")


@pytest.mark.parametrize("char", ["\x1b", "\r", "\x00", "\x07", "\x7f", "\x85", "\x9f"])
async def test_control_characters_in_text(server: ChatServer, clients: Clients, char: str) -> None:
    alice, bob = await pair(server.port, clients)
    for request in [
        {"type": "say", "room": "lobby", "text": f"red{char}[31m"},
        {"type": "dm", "to": "bob", "text": f"a{char}b"},
        {"type": "topic", "room": "lobby", "topic": f"a{char}b"},
        {"type": "part", "room": "lobby", "reason": f"a{char}b"},
        {"type": "ping", "token": f"a{char}b"},
    ]:
        error = await alice.request({**request, "id": "ctl"})
        assert (error["type"], error["code"], error["re"]) == ("error", "invalid_text", "ctl")
    assert not [m for m in await bob.quiet() if m["type"] in ("message", "dm", "topic", "left")]
    await still_fine(alice, bob)


async def test_newline_and_tab_only_in_chat_text(server: ChatServer, clients: Clients) -> None:
    alice, bob = await pair(server.port, clients)
    ack = await alice.request({"type": "say", "room": "lobby", "text": "a\nb\tc"})
    assert ack["type"] == "ack"
    assert (await bob.expect("message"))["text"] == "a\nb\tc"
    for request in [
        {"type": "topic", "room": "lobby", "topic": "a\nb"},
        {"type": "topic", "room": "lobby", "topic": "a\tb"},
        {"type": "hello", "nick": "x", "client": "a\nb"},
    ]:
        error = await alice.request(request)
        assert error["code"] == "invalid_text", (request, error)
    await still_fine(alice, bob)
