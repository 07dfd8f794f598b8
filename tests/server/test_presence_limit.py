"""Large rooms: above `--presence-limit` members, `joined` and `left` reach only their session.

The limit counts the room with the joiner after a join and with the leaver before a part;
`room`, `who` and `room_list` stay exact. A limit of 3 stands in for the default 1,000.
"""

from __future__ import annotations

from chat_server.cli import parse_serve_args
from chat_server.config import ServerConfig
from tests.conftest import StartServer
from tests.server.helpers import Clients, join, request_and_see
from tests.support import LineClient

LIMIT = 3


def presence(client: LineClient, *more: dict[str, object]) -> list[tuple[str, str]]:
    """The `joined`/`left` events `client` has seen, as (type, nick)."""
    return [
        (str(m["type"]), str(m["nick"]))
        for m in [*client.seen, *more]
        if m["type"] in ("joined", "left")
    ]


async def test_joins_and_parts_above_the_limit_reach_only_their_session(
    start_server: StartServer, clients: Clients
) -> None:
    server = await start_server(presence_limit=LIMIT)
    port = server.port
    a = await clients.registered(port, "a", "big")
    b = await clients.registered(port, "b", "big")
    c = await clients.registered(port, "c", "big")  # 3 members: not more than the limit
    await a.expect("joined", nick="c")
    await b.expect("joined", nick="c")
    assert presence(a) == [("joined", "a"), ("joined", "b"), ("joined", "c")]
    d = await clients.registered(port, "d", "big")  # 4 after the join: d alone hears it
    e = await clients.registered(port, "e")
    reply = await join(e, "big", "e")  # 5
    assert reply["members"] == ["a", "b", "c", "d", "e"]  # the room reply stays exact
    await a.request({"type": "say", "room": "big", "text": "first"})
    await d.expect("message", text="first")
    assert presence(d) == [("joined", "d")]
    ack, seen = await request_and_see(d, {"type": "part", "room": "big"}, "left")
    assert ack["type"] == "ack" and seen["left"]["nick"] == "d"  # 5 before the part
    # A broadcast after those events proves nothing else was queued for the others.
    await e.request({"type": "say", "room": "big", "text": "marker"})
    for member in (a, b, c):
        await member.expect("message", text="marker")
    assert presence(a) == [("joined", "a"), ("joined", "b"), ("joined", "c")]
    assert presence(b) == [("joined", "b"), ("joined", "c")]
    assert presence(c) == [("joined", "c")]
    who = await c.request({"type": "who", "room": "big"})
    assert sorted(who["members"]) == ["a", "b", "c", "e"]
    listing = await c.request({"type": "rooms"})
    assert listing["rooms"] == [{"room": "big", "topic": "", "members": 4}]


async def test_at_the_limit_joins_and_parts_are_broadcast_again(
    start_server: StartServer, clients: Clients
) -> None:
    server = await start_server(presence_limit=LIMIT)
    port = server.port
    a = await clients.registered(port, "a", "big")
    await clients.registered(port, "b", "big")
    c = await clients.registered(port, "c", "big")
    d = await clients.registered(port, "d", "big")  # 4: unannounced
    await d.close()  # 4 before it goes: unannounced, and no one to tell the leaver
    # Back to 3: c's part counts 3 with the leaver, so every member hears it.
    await c.request({"type": "part", "room": "big", "reason": "bye"})
    left = await a.expect("left", nick="c")
    assert left["reason"] == "bye"
    await clients.registered(port, "e", "big")  # 3 after the join: announced
    await a.expect("joined", nick="e")
    assert presence(a) == [
        ("joined", "a"),
        ("joined", "b"),
        ("joined", "c"),
        ("left", "c"),
        ("joined", "e"),
    ]


async def test_a_disconnect_in_a_large_room_is_not_announced(
    start_server: StartServer, clients: Clients
) -> None:
    server = await start_server(presence_limit=2)
    port = server.port
    a = await clients.registered(port, "a", "big")
    await clients.registered(port, "b", "big")
    c = await clients.registered(port, "c", "big")
    await c.close()
    who = await a.request({"type": "who", "room": "big"})
    while "c" in who["members"]:  # the server sees the close in its own time
        who = await a.request({"type": "who", "room": "big"})
    x = await clients.registered(port, "x", "big")  # 3 after the join: unannounced
    await x.request({"type": "say", "room": "big", "text": "marker"})
    await a.expect("message", text="marker")
    assert presence(a) == [("joined", "a"), ("joined", "b")]


def test_the_flag_and_its_default() -> None:
    assert ServerConfig().presence_limit == 1_000
    args = parse_serve_args(["--presence-limit", "3", "--no-tls", "--no-files"])
    assert args.config.presence_limit == 3
    assert parse_serve_args(["--no-tls"]).config.presence_limit == 1_000


async def test_member_lists_follow_joins_parts_and_nick_changes(
    start_server: StartServer, clients: Clients
) -> None:
    server = await start_server()
    port = server.port
    a = await clients.registered(port, "a", "r")
    b = await clients.registered(port, "b", "r")
    assert (await join(await clients.registered(port, "c"), "r", "c"))["members"] == ["a", "b", "c"]
    await b.request({"type": "nick", "nick": "bee"})
    who = await a.request({"type": "who", "room": "r"})
    assert who["members"] == ["a", "bee", "c"]
    await b.request({"type": "part", "room": "r"})
    reply = await join(await clients.registered(port, "d"), "r", "d")
    assert reply["members"] == ["a", "c", "d"]
    await join(b, "r", "bee")
    who = await a.request({"type": "who", "room": "r"})
    assert who["members"] == ["a", "c", "d", "bee"]
