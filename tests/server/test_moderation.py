"""Moderation over loopback: ops, kick, ban, unban, bans, --admin, bans across a restart."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from chat_server.server import ChatServer
from tests.conftest import StartServer
from tests.server.helpers import Clients
from tests.support import TIMEOUT, UNIT, Json, LineClient

PASSWORD = "correct horse"
MODERATION = ["accounts", "moderation"]


async def guest(
    clients: Clients, port: int, nick: str, features: list[str] | None = None
) -> LineClient:
    client = await clients.open(port)
    welcome = await client.request(
        {"type": "hello", "nick": nick, "features": MODERATION if features is None else features}
    )
    assert welcome["type"] == "welcome", welcome
    return client


async def account(
    clients: Clients, port: int, nick: str, features: list[str] | None = None
) -> LineClient:
    """A session of the account `nick` (made on first use)."""
    client = await clients.open(port)
    welcome = await client.request(
        {
            "type": "hello",
            "nick": nick,
            "account_password": PASSWORD,
            "features": MODERATION if features is None else features,
        }
    )
    if welcome["type"] == "welcome" and not welcome["account"]:
        assert (await client.request({"type": "register", "password": PASSWORD}))["type"] == "ack"
    else:
        assert welcome["type"] == "welcome", welcome
    return client


async def event(client: LineClient, type_: str, **fields: Any) -> Json:
    """The next `type_` event: one already read (say, before the ack of a request), or a new one."""
    for index, message in enumerate(client.seen):
        if message.get("type") == type_ and all(message.get(k) == v for k, v in fields.items()):
            del client.seen[index]
            return message
    found = await client.expect(type_, **fields)
    client.seen.remove(found)
    return found


async def enter(client: LineClient, room: str) -> Json:
    reply = await client.request({"type": "join", "room": room})
    assert reply["type"] == "room", reply
    await client.expect("joined", room=room)
    return reply


async def test_the_creator_is_op_and_a_non_op_is_refused_everything(
    server: ChatServer, clients: Clients
) -> None:
    alice = await account(clients, server.port, "alice")
    bob = await account(clients, server.port, "bob")
    carol = await account(clients, server.port, "carol")
    info = await enter(alice, "lobby")
    assert info["ops"] == ["alice"]
    assert (await enter(bob, "lobby"))["ops"] == ["alice"]
    await enter(carol, "lobby")
    requests: list[Json] = [
        {"type": "op", "room": "lobby", "nick": "carol"},
        {"type": "op", "room": "lobby", "nick": "alice", "remove": True},
        {"type": "kick", "room": "lobby", "nick": "carol"},
        {"type": "ban", "room": "lobby", "nick": "carol"},
        {"type": "unban", "room": "lobby", "nick": "carol"},
        {"type": "bans", "room": "lobby"},
    ]
    for request in requests:
        refused = await bob.request(request)
        assert refused["code"] == "not_allowed", (request, refused)
    # Nothing changed: carol is still in, alice still the only op.
    members = await bob.request({"type": "who", "room": "lobby"})
    assert members["members"] == ["alice", "bob", "carol"]


async def test_op_and_deop_reach_every_member(server: ChatServer, clients: Clients) -> None:
    alice = await account(clients, server.port, "alice")
    bob = await account(clients, server.port, "bob")
    await enter(alice, "lobby")
    await enter(bob, "lobby")
    assert (await alice.request({"type": "op", "room": "lobby", "nick": "bob"}))["type"] == "ack"
    for client in (alice, bob):
        mode = await event(client, "mode")
        assert (mode["nick"], mode["op"], mode["by"]) == ("bob", True, "alice")
    # bob, now op, may kick; after a deop he may not.
    assert (await bob.request({"type": "bans", "room": "lobby"}))["type"] == "ban_list"
    deop = await alice.request({"type": "op", "room": "lobby", "nick": "bob", "remove": True})
    assert deop["type"] == "ack"
    assert (await event(bob, "mode"))["op"] is False
    assert (await bob.request({"type": "bans", "room": "lobby"}))["code"] == "not_allowed"


async def test_a_kick_reaches_every_member_and_the_target_may_come_back(
    server: ChatServer, clients: Clients, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="chat_server.moderating")
    alice = await account(clients, server.port, "alice")
    bob = await account(clients, server.port, "bob")
    bob_phone = await account(clients, server.port, "bob")
    old = await guest(clients, server.port, "oldie", features=[])  # no `moderation`
    await enter(alice, "lobby")
    await enter(bob, "lobby")
    await enter(bob_phone, "lobby")
    await enter(old, "lobby")
    kick = {"type": "kick", "room": "lobby", "nick": "bob", "reason": "calm down"}
    assert (await alice.request(kick))["type"] == "ack"
    for client in (alice, bob, bob_phone):
        kicked = await event(client, "kicked")
        assert (kicked["nick"], kicked["by"], kicked["reason"]) == ("bob", "alice", "calm down")
    left = await event(old, "left", nick="bob")
    assert left["reason"] == "kicked"
    members = await alice.request({"type": "who", "room": "lobby"})
    assert members["members"] == ["alice", "oldie"]
    said = await bob.request({"type": "say", "room": "lobby", "text": "hey"})
    assert said["code"] == "not_in_room"
    await enter(bob, "lobby")
    assert any("alice kicked bob from #lobby" in record.getMessage() for record in caplog.records)
    assert all("calm down" not in record.getMessage() for record in caplog.records)


async def test_a_ban_kicks_and_refuses_every_session_of_the_account(
    server: ChatServer, clients: Clients
) -> None:
    alice = await account(clients, server.port, "alice")
    bob = await account(clients, server.port, "bob")
    carol = await guest(clients, server.port, "carol")
    await enter(alice, "lobby")
    await enter(bob, "lobby")
    await enter(carol, "lobby")
    ban = {"type": "ban", "room": "lobby", "nick": "BOB", "reason": "spam"}
    assert (await alice.request(ban))["type"] == "ack"
    for client in (alice, bob, carol):
        banned = await event(client, "banned")
        assert (banned["nick"], banned["by"], banned["removed"]) == ("bob", "alice", False)
    assert (await bob.request({"type": "join", "room": "lobby"}))["code"] == "banned"
    other_session = await account(clients, server.port, "bob")
    assert (await other_session.request({"type": "join", "room": "lobby"}))["code"] == "banned"
    listed = await alice.request({"type": "bans", "room": "lobby"})
    assert [(b["nick"], b["by"], b["reason"]) for b in listed["bans"]] == [("bob", "alice", "spam")]
    unban = await alice.request({"type": "unban", "room": "lobby", "nick": "bob"})
    assert unban["type"] == "ack"
    lifted = await event(carol, "banned")
    assert lifted["removed"] is True
    await enter(bob, "lobby")
    assert (await alice.request({"type": "bans", "room": "lobby"}))["bans"] == []
    missing = await alice.request({"type": "unban", "room": "lobby", "nick": "bob"})
    assert missing["code"] == "no_such_user"


async def test_a_banned_guest_nick_cannot_rejoin_with_that_nick(
    server: ChatServer, clients: Clients
) -> None:
    alice = await account(clients, server.port, "alice")
    await enter(alice, "lobby")
    mallory = await guest(clients, server.port, "mallory", features=[])
    await enter(mallory, "lobby")
    assert (await alice.request({"type": "ban", "room": "lobby", "nick": "mallory"}))[
        "type"
    ] == "ack"
    left = await event(mallory, "left", nick="mallory")
    assert left["reason"] == "banned"
    await mallory.close()
    again = await guest(clients, server.port, "mallory")
    assert (await again.request({"type": "join", "room": "lobby"}))["code"] == "banned"
    renamed = await guest(clients, server.port, "mallory2")
    await enter(renamed, "lobby")


async def test_a_guest_creator_is_op_only_while_connected(
    server: ChatServer, clients: Clients
) -> None:
    gus = await guest(clients, server.port, "gus")
    assert (await enter(gus, "den"))["ops"] == ["gus"]
    bob = await guest(clients, server.port, "bob")
    await enter(bob, "den")
    assert (await gus.request({"type": "kick", "room": "den", "nick": "bob"}))["type"] == "ack"
    await gus.close()
    gus_again = await guest(clients, server.port, "gus")
    info = await enter(gus_again, "den")
    assert info["ops"] == []
    refused = await gus_again.request({"type": "bans", "room": "den"})
    assert refused["code"] == "not_allowed"


async def test_admins_are_op_everywhere_and_cannot_be_kicked_or_banned(
    start_server: StartServer, clients: Clients
) -> None:
    server = await start_server(admins=("root",))
    alice = await account(clients, server.port, "alice")
    await enter(alice, "lobby")
    root = await account(clients, server.port, "root")
    info = await enter(root, "lobby")
    assert info["ops"] == ["alice", "root"]
    assert (await root.request({"type": "kick", "room": "lobby", "nick": "alice"}))["type"] == "ack"
    await enter(alice, "lobby")
    refused_requests: list[Json] = [
        {"type": "kick", "room": "lobby", "nick": "root"},
        {"type": "ban", "room": "lobby", "nick": "root"},
        {"type": "op", "room": "lobby", "nick": "root", "remove": True},
    ]
    for request in refused_requests:
        assert (await alice.request(request))["code"] == "not_allowed", request
    # A guest cannot pose as the admin: the nick is an account.
    impostor = await clients.open(server.port)
    assert (await impostor.request({"type": "hello", "nick": "root"}))["code"] == "auth_required"


async def test_bans_and_ops_survive_a_restart(
    start_server: StartServer, clients: Clients, tmp_path: Path
) -> None:
    path = str(tmp_path / "chat.sqlite3")
    server = await start_server(db_path=path)
    alice = await account(clients, server.port, "alice")
    await enter(alice, "lobby")
    bob = await account(clients, server.port, "bob")
    await enter(bob, "lobby")
    carol = await account(clients, server.port, "carol")
    await enter(carol, "lobby")
    assert (await alice.request({"type": "op", "room": "lobby", "nick": "carol"}))["type"] == "ack"
    assert (await alice.request({"type": "ban", "room": "lobby", "nick": "bob"}))["type"] == "ack"
    await clients.close_all()
    await server.close()
    again = await start_server(db_path=path)
    bob = await account(clients, again.port, "bob")
    assert (await bob.request({"type": "join", "room": "lobby"}))["code"] == "banned"
    carol = await account(clients, again.port, "carol")
    info = await enter(carol, "lobby")
    assert info["ops"] == ["carol"]
    listed = await carol.request({"type": "bans", "room": "lobby"})
    assert [b["nick"] for b in listed["bans"]] == ["bob"]


async def _gone(client: LineClient, room: str) -> None:
    """Wait until `room` has expired (it is no longer listed)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while True:
        names = [r["room"] for r in (await client.request({"type": "rooms"}))["rooms"]]
        if room not in names:
            return
        assert loop.time() < deadline, f"#{room} did not expire: {names}"
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("on_disk", [False, True], ids=["memory", "sqlite"])
async def test_a_room_made_again_after_it_expired_has_only_its_new_creator_as_op(
    start_server: StartServer, clients: Clients, tmp_path: Path, on_disk: bool
) -> None:
    path = str(tmp_path / "chat.sqlite3") if on_disk else ":memory:"
    server = await start_server(db_path=path, room_expiry=0.2 * UNIT)
    alice = await account(clients, server.port, "alice")
    carol = await account(clients, server.port, "carol")
    dave = await account(clients, server.port, "dave")
    await enter(alice, "den")
    await enter(carol, "den")
    await enter(dave, "den")
    assert (await alice.request({"type": "op", "room": "den", "nick": "carol"}))["type"] == "ack"
    assert (await alice.request({"type": "ban", "room": "den", "nick": "dave"}))["type"] == "ack"
    for client in (alice, carol):
        assert (await client.request({"type": "part", "room": "den"}))["type"] == "ack"
    await _gone(alice, "den")  # empty, no history, no topic: forgotten
    bob = await account(clients, server.port, "bob")
    assert (await enter(bob, "den"))["ops"] == ["bob"]
    assert (await enter(alice, "den"))["ops"] == ["bob"]
    assert (await enter(carol, "den"))["ops"] == ["bob"]
    assert (await enter(dave, "den"))["ops"] == ["bob"]  # the old room's ban went with it
    refused = await alice.request({"type": "kick", "room": "den", "nick": "bob"})
    assert refused["code"] == "not_allowed"
    listed = await bob.request({"type": "bans", "room": "den"})
    assert listed["bans"] == []
    if not on_disk:
        return
    await bob.request({"type": "say", "room": "den", "text": "history keeps den"})
    await clients.close_all()
    await server.close()
    again = await start_server(db_path=path)
    alice = await account(clients, again.port, "alice")
    assert (await enter(alice, "den"))["ops"] == []  # bob is not here; alice and carol are not op
    carol = await account(clients, again.port, "carol")
    assert (await enter(carol, "den"))["ops"] == []
    bob = await account(clients, again.port, "bob")
    assert (await enter(bob, "den"))["ops"] == ["bob"]
