"""Moderation on `chat-server --redis` nodes: ops, kicks and bans hold on every node.

Real Redis, real node processes over loopback. Ops and bans are kept in Redis, a kick
or a ban on one node takes the target out on another at once, `mode`/`kicked`/`banned`
reach members on every node, and all of it survives a node restart.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support import TIMEOUT, UNIT, LineClient, open_client

from .conftest import Nodes

PASSWORD = "correct horse"
FEATURES = ["accounts", "moderation", "away"]
WAIT = 3 * TIMEOUT


async def member(
    port: int, nick: str, *, register: bool = False, features: list[str] | None = None
) -> LineClient:
    """A connection with `nick` (made an account with `register`), granted `features`."""
    wanted = FEATURES if features is None else features
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:  # a nick just freed on another node is free once Redis says so
        client = await open_client(port)
        welcome = await client.request({"type": "hello", "nick": nick, "features": wanted})
        if welcome["type"] == "welcome":
            break
        await client.close()
        assert welcome["code"] == "nick_taken" and loop.time() < deadline, welcome
        await asyncio.sleep(0.1 * UNIT)
    if register:
        reply = await client.request({"type": "register", "password": PASSWORD})
        assert reply["type"] == "ack", reply
    return client


async def login(port: int, nick: str) -> LineClient:
    client = await open_client(port)
    hello = {"type": "hello", "nick": nick, "account_password": PASSWORD, "features": FEATURES}
    welcome = await client.request(hello)
    assert welcome["type"] == "welcome" and welcome["account"] is True, welcome
    return client


async def join(client: LineClient, room: str) -> dict[str, Any]:
    reply = await client.request({"type": "join", "room": room})
    assert reply["type"] == "room", reply
    return reply


async def until(client: LineClient, request: dict[str, Any], wanted: str) -> dict[str, Any]:
    """Send `request` until its reply has type `wanted` (another node learns through Redis)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        reply = await client.request(dict(request))
        if reply["type"] == wanted or loop.time() > deadline:
            return reply
        await asyncio.sleep(0.1 * UNIT)


async def who(client: LineClient, room: str) -> list[str]:
    reply = await client.request({"type": "who", "room": room})
    return sorted(reply["members"])


async def eventually_members(client: LineClient, room: str, wanted: list[str]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while (found := await who(client, room)) != sorted(wanted):
        assert loop.time() < deadline, found
        await asyncio.sleep(0.1 * UNIT)


async def test_ops_kicks_and_bans_hold_across_nodes_and_a_node_restart(node: Nodes) -> None:
    a, b, c = await node(), await node(), await node()
    greeter = await open_client(b.port)
    assert "moderation" in greeter.seen[0]["features"], greeter.seen[0]
    await greeter.close()
    alice = await member(a.port, "alice", register=True)
    room = await join(alice, "x")
    assert room["ops"] == ["alice"], room  # the creator, on her node
    bob = await member(b.port, "bob", register=True)
    room = await join(bob, "x")
    assert room["ops"] == ["alice"], room  # ...and as seen from another node
    carol = await member(b.port, "carol")  # a guest on B
    await join(carol, "x")
    dave = await member(c.port, "dave", features=["accounts"])  # no `moderation` on C
    await join(dave, "x")
    await eventually_members(alice, "x", ["alice", "bob", "carol", "dave"])

    # op on A reaches B and C; bob (on B) is op from then on.
    opped = await until(alice, {"type": "op", "room": "x", "nick": "bob"}, "ack")
    assert opped["type"] == "ack", opped
    mode = await bob.expect("mode", room="x", nick="bob", timeout=WAIT)
    assert (mode["op"], mode["by"]) == (True, "alice")
    await carol.expect("mode", room="x", nick="bob", timeout=WAIT)

    # A kick on A of carol, who is on B: out of the room at once, told everywhere.
    kicked = await alice.request({"type": "kick", "room": "x", "nick": "carol", "reason": "calm"})
    assert kicked["type"] == "ack", kicked
    got = await carol.expect("kicked", room="x", nick="carol", timeout=WAIT)
    assert (got["by"], got["reason"]) == ("alice", "calm")
    await bob.expect("kicked", room="x", nick="carol", timeout=WAIT)
    left = await dave.expect("left", room="x", nick="carol", timeout=WAIT)
    assert left["reason"] == "kicked"
    said = await carol.request({"type": "say", "room": "x", "text": "still here?"})
    assert (said["type"], said["code"]) == ("error", "not_in_room"), said
    for client in (alice, bob, dave):
        await eventually_members(client, "x", ["alice", "bob", "dave"])
    assert not [m for m in dave.seen if m.get("type") == "kicked"]  # not granted: `left` only
    assert len([m for m in dave.seen if m.get("type") == "left"]) == 1  # once, not twice

    # carol comes back, and bob (op, on B) bans her from C's point of view too.
    await join(carol, "x")
    await dave.expect("joined", room="x", nick="carol", timeout=WAIT)
    banned = await bob.request({"type": "ban", "room": "x", "nick": "carol", "reason": "spam"})
    assert banned["type"] == "ack", banned
    await carol.expect("banned", room="x", nick="carol", timeout=WAIT)
    got = await alice.expect("banned", room="x", nick="carol", timeout=WAIT)
    assert (got["by"], got["reason"], got["removed"]) == ("bob", "spam", False)
    await dave.expect("left", room="x", nick="carol", reason="banned", timeout=WAIT)
    await carol.close()
    for port in (a.port, c.port):  # refused on every node
        again = await member(port, "carol")
        refused = await again.request({"type": "join", "room": "x"})
        assert (refused["type"], refused["code"]) == ("error", "banned"), refused
        await again.close()
    listed = await alice.request({"type": "bans", "room": "x"})
    assert [(e["nick"], e["by"], e["reason"]) for e in listed["bans"]] == [("carol", "bob", "spam")]
    refused = await dave.request({"type": "kick", "room": "x", "nick": "alice"})
    assert (refused["type"], refused["code"]) == ("error", "not_allowed"), refused

    # Node B dies and a new node starts: ops and bans are read back from Redis.
    await b.kill()
    await alice.expect("left", room="x", nick="bob", timeout=WAIT)
    await bob.close()
    b2 = await node()
    bob = await login(b2.port, "bob")
    room = await join(bob, "x")
    assert sorted(room["ops"]) == ["alice", "bob"], room
    listed = await bob.request({"type": "bans", "room": "x"})
    assert [e["nick"] for e in listed["bans"]] == ["carol"], listed
    carol = await member(b2.port, "carol")
    refused = await carol.request({"type": "join", "room": "x"})
    assert (refused["type"], refused["code"]) == ("error", "banned"), refused
    lifted = await bob.request({"type": "unban", "room": "x", "nick": "carol"})
    assert lifted["type"] == "ack", lifted
    got = await alice.expect("banned", room="x", nick="carol", removed=True, timeout=WAIT)
    assert got["by"] == "bob"
    await until(carol, {"type": "join", "room": "x"}, "room")
    await alice.expect("joined", room="x", nick="carol", timeout=WAIT)
    # deop from B reaches A; bob's ops are gone on every node.
    dropped = await bob.request({"type": "op", "room": "x", "nick": "bob", "remove": True})
    assert dropped["type"] == "ack", dropped
    mode = await alice.expect("mode", room="x", nick="bob", op=False, timeout=WAIT)
    assert mode["by"] == "bob"
    refused = await bob.request({"type": "bans", "room": "x"})
    assert (refused["type"], refused["code"]) == ("error", "not_allowed"), refused
    for client in (alice, bob, carol, dave):
        await client.close()


async def test_admins_and_one_creator_op_across_nodes(node: Nodes) -> None:
    a, b = await node("--admin", "root"), await node("--admin", "root")
    root = await member(a.port, "root", register=True)
    await root.close()
    # Two joiners make one new room at once from two nodes: one of them is its op.
    alice = await member(a.port, "alice", register=True)
    bob = await member(b.port, "bob", register=True)
    first, second = await asyncio.gather(join(alice, "y"), join(bob, "y"))
    creators = [r["ops"] for r in (first, second)]
    assert all(len(ops) <= 1 for ops in creators), creators
    await eventually_members(alice, "y", ["alice", "bob"])
    await eventually_members(bob, "y", ["alice", "bob"])
    ops_a = (await alice.request({"type": "join", "room": "y"}))["ops"]
    ops_b = (await bob.request({"type": "join", "room": "y"}))["ops"]
    assert ops_a == ops_b and len(ops_a) == 1, (ops_a, ops_b)
    creator, other = (alice, bob) if ops_a == ["alice"] else (bob, alice)
    refused = await other.request({"type": "bans", "room": "y"})
    assert (refused["type"], refused["code"]) == ("error", "not_allowed"), refused
    listed = await creator.request({"type": "bans", "room": "y"})
    assert listed["type"] == "ban_list", listed
    # The admin (an account named by --admin on every node) is op everywhere: it logs in
    # on B, where it was not made, kicks, and cannot be kicked.
    root = await until_login(b.port, "root")
    room = await join(root, "y")
    assert "root" in room["ops"], room
    kicked = await root.request({"type": "kick", "room": "y", "nick": other_nick(other, alice)})
    assert kicked["type"] == "ack", kicked
    await other.expect("kicked", room="y", timeout=WAIT)
    refused = await creator.request({"type": "kick", "room": "y", "nick": "root"})
    assert (refused["type"], refused["code"]) == ("error", "not_allowed"), refused
    for client in (alice, bob, root):
        await client.close()


def other_nick(other: LineClient, alice: LineClient) -> str:
    return "alice" if other is alice else "bob"


async def until_login(port: int, nick: str) -> LineClient:
    """Log in on a node that may not have heard of the account yet."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while True:
        client = await open_client(port)
        hello = {"type": "hello", "nick": nick, "account_password": PASSWORD, "features": FEATURES}
        welcome = await client.request(hello)
        if welcome["type"] == "welcome" or loop.time() > deadline:
            assert welcome["type"] == "welcome", welcome
            return client
        await client.close()
        await asyncio.sleep(0.1 * UNIT)


async def test_a_room_op_deletes_another_persons_message_from_another_node(node: Nodes) -> None:
    a, b = await node(), await node()
    features = [*FEATURES, "edit"]
    alice = await member(a.port, "alice", register=True, features=features)
    await join(alice, "x")  # the creator: op
    bob = await member(b.port, "bob", register=True, features=features)
    await join(bob, "x")
    carol = await member(b.port, "carol", features=features)
    await join(carol, "x")
    said = await carol.request({"type": "say", "room": "x", "text": "spam spam"})
    assert said["type"] == "ack", said
    seq = said["seq"]
    await alice.expect("message", room="x", seq=seq, timeout=WAIT)
    refused = await bob.request({"type": "delete", "room": "x", "seq": seq})
    assert (refused["type"], refused["code"]) == ("error", "not_allowed"), refused  # not op
    deleted = await alice.request({"type": "delete", "room": "x", "seq": seq})
    assert deleted["type"] == "ack", deleted
    for client in (bob, carol):
        await client.expect("deleted", room="x", seq=seq, timeout=WAIT)
    page = await bob.request({"type": "history", "room": "x", "limit": 10})
    gone = [m for m in page["messages"] if m["seq"] == seq]
    assert gone and gone[0].get("deleted") and not gone[0].get("text"), page
    for client in (alice, bob, carol):
        await client.close()
