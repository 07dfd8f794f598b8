"""Accounts and sessions (version 2): register, log in, several sessions, stored DMs."""

from __future__ import annotations

import asyncio

from chat_server.server import ChatServer
from tests.conftest import StartServer
from tests.server.helpers import Clients
from tests.support import Json, LineClient

PASSWORD = "correct horse"
FEATURES = ["accounts", "read", "away"]


async def from_address(clients: Clients, port: int, address: str) -> LineClient:
    """A connection from another loopback address (127.0.0.x), hello read."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(address, 0))
    client = clients.track(LineClient(reader, writer))
    assert (await client.recv())["type"] == "hello"
    return client


async def make_account(clients: Clients, port: int, nick: str) -> LineClient:
    """Register `nick` as a guest, turn it into an account, return that session."""
    client = await clients.open(port)
    welcome = await client.request({"type": "hello", "nick": nick, "features": FEATURES})
    assert welcome["account"] is False
    assert await client.request({"type": "register", "password": PASSWORD}) == {
        "type": "ack",
        "re": client.seen[-1]["re"],
    }
    return client


async def login(
    clients: Clients,
    port: int,
    nick: str,
    password: str = PASSWORD,
    client: LineClient | None = None,
) -> Json:
    client = client or await clients.open(port)
    return await client.request(
        {"type": "hello", "nick": nick, "account_password": password, "features": FEATURES}
    )


async def session(clients: Clients, port: int, nick: str) -> LineClient:
    client = await clients.open(port)
    welcome = await login(clients, port, nick, client=client)
    assert (welcome["type"], welcome["account"]) == ("welcome", True), welcome
    return client


async def test_hello_lists_the_features_and_welcome_grants_the_asked_ones(
    server: ChatServer, clients: Clients
) -> None:
    client = await clients.connect(server.port)
    hello = await client.recv()
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
    welcome = await client.request(
        {"type": "hello", "nick": "alice", "features": ["away", "teleport"]}
    )
    assert (welcome["features"], welcome["account"]) == (["away"], False)


async def test_register_then_login_needs_the_password(server: ChatServer, clients: Clients) -> None:
    alice = await make_account(clients, server.port, "Alice")
    again = await alice.request({"type": "register", "password": PASSWORD})
    assert again["code"] == "account_exists"
    await alice.close()
    other = await clients.open(server.port)
    missing = await other.request({"type": "hello", "nick": "alice"})
    assert missing["code"] == "auth_required"
    wrong = await login(clients, server.port, "alice", "wrong password", client=other)
    assert wrong["code"] == "auth_failed"
    welcome = await login(clients, server.port, "ALICE", client=other)
    assert (welcome["nick"], welcome["account"], welcome["features"]) == ("Alice", True, FEATURES)


async def test_short_or_multi_line_passwords_are_invalid_text(
    server: ChatServer, clients: Clients
) -> None:
    alice = await clients.registered(server.port, "alice")
    for bad in ["short", "x" * 129, "two\nlines!"]:
        refused = await alice.request({"type": "register", "password": bad})
        assert refused["code"] == "invalid_text", bad
    await alice.close()
    bob = await clients.registered(server.port, "alice")  # still a guest nick: nothing changed
    assert bob.seen[-1]["account"] is False


async def test_a_guest_cannot_take_an_accounts_nick_while_it_is_offline(
    server: ChatServer, clients: Clients
) -> None:
    alice = await make_account(clients, server.port, "alice")
    await alice.send({"type": "quit"})
    guest = await clients.open(server.port)
    refused = await guest.request({"type": "hello", "nick": "Alice"})
    assert refused["code"] == "auth_required"
    await guest.request({"type": "hello", "nick": "mallory"})
    renamed = await guest.request({"type": "nick", "nick": "ALICE"})
    assert renamed["code"] == "nick_taken"


async def test_an_accounts_nick_cannot_change(server: ChatServer, clients: Clients) -> None:
    alice = await make_account(clients, server.port, "alice")
    refused = await alice.request({"type": "nick", "nick": "alicia"})
    assert refused["code"] == "not_allowed"


async def test_guests_work_as_in_version_1(server: ChatServer, clients: Clients) -> None:
    alice = await clients.registered(server.port, "alice", "lobby")
    bob = await clients.registered(server.port, "bob", "lobby")
    assert (await bob.request({"type": "dm", "to": "alice", "text": "hi"}))["type"] == "ack"
    dm = await alice.expect("dm")
    assert "seq" not in dm
    await alice.close()
    gone = await bob.request({"type": "dm", "to": "alice", "text": "still there?"})
    assert gone["code"] == "no_such_user"
    history = await bob.request({"type": "history", "with": "alice"})
    assert history["code"] == "not_allowed"
    marker = await bob.request({"type": "mark_read", "with": "alice", "seq": 1})
    assert marker["code"] == "not_allowed"


async def test_two_sessions_share_messages_dms_and_count_once(
    server: ChatServer, clients: Clients
) -> None:
    first = await make_account(clients, server.port, "alice")
    bob = await clients.registered(server.port, "bob", "lobby")
    await first.request({"type": "join", "room": "lobby"})
    await bob.expect("joined", nick="alice")
    second = await session(clients, server.port, "alice")
    await second.send({"type": "join", "room": "lobby", "id": "j"})
    room = await second.expect("room")
    assert room["members"] == ["bob", "alice"]
    await second.expect("joined", nick="alice")
    who = await bob.request({"type": "who", "room": "lobby"})
    assert who["members"] == ["bob", "alice"]
    listing = await bob.request({"type": "rooms"})
    assert listing["rooms"] == [{"room": "lobby", "topic": "", "members": 2}]
    # bob saw alice join once: her second session is not news to the room
    await bob.request({"type": "say", "room": "lobby", "text": "hello both"})
    for alice in (first, second):
        await alice.expect("message", text="hello both")
    joins = [m for m in bob.seen if m["type"] == "joined" and m["nick"] == "alice"]
    assert len(joins) == 1
    await bob.request({"type": "dm", "to": "alice", "text": "psst"})
    for alice in (first, second):
        await alice.expect("dm", text="psst")
    await first.request({"type": "dm", "to": "bob", "text": "echo to both"})
    await second.expect("dm", text="echo to both", to="bob")
    await bob.expect("dm", text="echo to both")


async def test_joined_for_the_first_session_left_for_the_last(
    server: ChatServer, clients: Clients
) -> None:
    first = await make_account(clients, server.port, "alice")
    bob = await clients.registered(server.port, "bob", "lobby")
    second = await session(clients, server.port, "alice")
    await first.request({"type": "join", "room": "lobby"})
    await second.request({"type": "join", "room": "lobby"})
    await second.expect("joined", nick="alice")
    await first.request({"type": "part", "room": "lobby"})
    assert [m["room"] for m in first.seen if m["type"] == "left"] == ["lobby"]
    await second.close()
    left = await bob.expect("left", nick="alice")
    assert left["reason"] == "disconnected"
    presence = [m["type"] for m in bob.seen if m.get("nick") == "alice"]
    assert presence == ["joined", "left"]


async def test_max_sessions(start_server: StartServer, clients: Clients) -> None:
    server = await start_server(max_sessions=2)
    await make_account(clients, server.port, "alice")
    await session(clients, server.port, "alice")
    third = await login(clients, server.port, "alice")
    assert third["code"] == "too_many_sessions"


async def test_three_offline_dms_are_delivered_once_in_order_after_login(
    server: ChatServer, clients: Clients
) -> None:
    alice = await make_account(clients, server.port, "alice")
    bob = await make_account(clients, server.port, "bob")
    await bob.send({"type": "quit"})
    await bob.expect("bye")
    for text in ["one", "two", "three"]:
        assert (await alice.request({"type": "dm", "to": "bob", "text": text}))["type"] == "ack"
    echoes = [m for m in alice.seen if m["type"] == "dm"]
    assert [(m["text"], m["seq"]) for m in echoes] == [("one", 1), ("two", 2), ("three", 3)]
    back = await clients.open(server.port)
    await login(clients, server.port, "bob", client=back)
    got = [await back.expect("dm") for _ in range(3)]
    assert [(m["text"], m["seq"], m["ts"]) for m in got] == [
        (m["text"], m["seq"], m["ts"]) for m in echoes
    ]
    kinds = [m["type"] for m in back.seen]
    assert kinds.index("welcome") < kinds.index("dm")
    assert [m for m in await back.quiet() if m["type"] == "dm"] == []
    await back.send({"type": "quit"})
    await back.expect("bye")
    again = await session(clients, server.port, "bob")
    assert [m for m in await again.quiet() if m["type"] == "dm"] == []
    history = await again.request({"type": "history", "with": "alice"})
    assert history["with"] == "alice"
    assert [(m["seq"], m["text"]) for m in history["messages"]] == [
        (1, "one"),
        (2, "two"),
        (3, "three"),
    ]
    page = await again.request({"type": "history", "with": "alice", "before": 3, "limit": 1})
    assert ([m["seq"] for m in page["messages"]], page["more"]) == ([2], True)
    after = await again.request({"type": "history", "with": "ALICE", "after": 1})
    assert ([m["seq"] for m in after["messages"]], after["more"]) == ([2, 3], False)


async def test_a_dm_to_an_online_account_is_stored_with_a_seq(
    server: ChatServer, clients: Clients
) -> None:
    alice = await make_account(clients, server.port, "alice")
    bob = await make_account(clients, server.port, "bob")
    await bob.request({"type": "dm", "to": "alice", "text": "live"})
    assert (await alice.expect("dm", text="live"))["seq"] == 1
    await alice.request({"type": "dm", "to": "bob", "text": "reply"})
    assert (await bob.expect("dm", text="reply"))["seq"] == 2
    unknown = await alice.request({"type": "history", "with": "nobody"})
    assert unknown["code"] == "no_such_user"


async def test_five_wrong_passwords_block_the_account(server: ChatServer, clients: Clients) -> None:
    await make_account(clients, server.port, "alice")
    for n in range(5):
        client = await from_address(clients, server.port, f"127.0.0.{10 + n}")
        assert (await login(clients, server.port, "alice", "wrong!!!!", client))[
            "code"
        ] == "auth_failed"
    other = await from_address(clients, server.port, "127.0.0.20")
    blocked = await login(clients, server.port, "alice", client=other)  # even the right one
    assert blocked["code"] == "rate_limited"
    # other accounts and guests from that address are not blocked
    guest = await other.request({"type": "hello", "nick": "carol"})
    assert guest["type"] == "welcome"


async def test_five_wrong_passwords_block_the_address(server: ChatServer, clients: Clients) -> None:
    for nick in ["a1", "a2", "a3", "a4", "a5", "a6"]:
        await make_account(clients, server.port, nick)
    mallory = await from_address(clients, server.port, "127.0.0.7")
    for nick in ["a1", "a2", "a3", "a4", "a5"]:
        refused = await login(clients, server.port, nick, "wrong!!!!", mallory)
        assert refused["code"] == "auth_failed"
    blocked = await login(clients, server.port, "a6", client=mallory)
    assert blocked["code"] == "rate_limited"
    elsewhere = await from_address(clients, server.port, "127.0.0.8")
    assert (await login(clients, server.port, "a6", client=elsewhere))["account"] is True


async def test_a_slow_login_does_not_stall_others(server: ChatServer, clients: Clients) -> None:
    await make_account(clients, server.port, "alice")
    bob = await clients.registered(server.port, "bob", "lobby")
    logins = [await clients.open(server.port) for _ in range(3)]
    for client in logins:
        await client.send({"type": "hello", "nick": "alice", "account_password": PASSWORD})
    pong = await bob.request({"type": "ping", "token": "t"})
    assert pong["type"] == "pong"
    for client in logins:
        assert (await client.expect("welcome"))["account"] is True
