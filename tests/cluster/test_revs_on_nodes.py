"""Revs, replies and changes on `chat-server --redis` nodes (real Redis, real node processes).

A node keeps replies and authors in Redis and numbers every rev there, one counter per
room for messages and changes (changes across nodes: test_changes_on_nodes.py).
"""

from __future__ import annotations

from typing import Any

from tests.support import TIMEOUT, LineClient, open_client, registered

from .conftest import Nodes


async def hello_with_features(port: int, nick: str) -> tuple[LineClient, dict[str, Any], list[str]]:
    """Connect asking for every feature; the client, the server's hello and what was granted."""
    client = await open_client(port)
    hello = client.seen[0]
    wanted = [
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
    welcome = await client.request({"type": "hello", "nick": nick, "features": wanted})
    assert welcome["type"] == "welcome", welcome
    return client, hello, list(welcome["features"])


async def test_a_node_offers_and_grants_changes(node: Nodes) -> None:
    a = await node()
    alice, hello, granted = await hello_with_features(a.port, "alice")
    for feature in ("reply", "edit", "react"):
        assert feature in hello["features"] and feature in granted, (hello, granted)
    joined = await alice.request({"type": "join", "room": "x"})
    assert joined["type"] == "room", joined
    said = await alice.request({"type": "say", "room": "x", "text": "first"})
    assert said["type"] == "ack" and said["seq"] == 1, said
    edited = await alice.request({"type": "edit", "room": "x", "seq": 1, "text": "fixed"})
    assert edited["type"] == "ack", edited
    page = await alice.request({"type": "history", "room": "x", "after": 0, "limit": 5})
    assert [(m["seq"], m["text"], m["rev"]) for m in page["messages"]] == [(1, "fixed", 2)]
    assert "edited" in page["messages"][0]
    await alice.close()


async def test_replies_cross_nodes_and_a_fresh_node_reads_them_from_redis(node: Nodes) -> None:
    a, b = await node(), await node()
    alice = await registered(a.port, "alice", "x")
    bob = await registered(b.port, "bob", "x")
    first = await alice.request({"type": "say", "room": "x", "text": "question"})
    assert first["seq"] == 1, first
    answer = await bob.request({"type": "say", "room": "x", "text": "answer", "reply_to": 1})
    assert answer["type"] == "ack" and answer["seq"] == 2, answer
    seen = await alice.expect("message", room="x", seq=2, timeout=2 * TIMEOUT)
    assert (seen["text"], seen["reply_to"], seen["rev"]) == ("answer", 1, 2)
    # A node started now has none of it in memory: the reply's target is read from Redis.
    c = await node()
    carol = await registered(c.port, "carol", "x")
    again = await carol.request({"type": "say", "room": "x", "text": "me too", "reply_to": 1})
    assert again["type"] == "ack" and again["seq"] == 3, again
    missing = await carol.request({"type": "say", "room": "x", "text": "?", "reply_to": 99})
    assert (missing["type"], missing["code"]) == ("error", "no_such_message"), missing
    page = await carol.request({"type": "history", "room": "x", "after": 0, "limit": 10})
    got = [(m["seq"], m["rev"], m.get("reply_to")) for m in page["messages"]]
    assert got == [(1, 1, None), (2, 2, 1), (3, 3, 1)]
    for client in (alice, bob, carol):
        await client.close()


async def test_changed_since_after_moving_to_another_node_is_the_servers_state(
    node: Nodes,
) -> None:
    a, b, c = await node(), await node(), await node()
    alice = await registered(a.port, "alice", "x")
    for i in range(5):
        await alice.request({"type": "say", "room": "x", "text": f"m{i + 1}"})
    bob = await registered(b.port, "bob", "x")
    history = await bob.request({"type": "history", "room": "x", "after": 0, "limit": 50})
    top = max(m["rev"] for m in history["messages"])
    assert top == 5
    await bob.close()  # bob's node is gone for him; meanwhile the room goes on
    writer = await registered(b.port, "writer", "x")
    for i in range(3):
        await writer.request({"type": "say", "room": "x", "text": f"late{i}", "reply_to": 2})
    await alice.expect("message", room="x", seq=8, timeout=2 * TIMEOUT)
    again = await registered(c.port, "bob")
    reply = await again.request({"type": "join", "room": "x", "changed_since": top})
    assert reply["type"] == "room", reply
    page = await again.expect("history", room="x")
    server = await alice.request({"type": "history", "room": "x", "after": 0, "limit": 50})
    newer = [m for m in server["messages"] if m["rev"] > top]
    assert page["messages"] == newer
    assert [(m["seq"], m["rev"], m["reply_to"]) for m in page["messages"]] == [
        (6, 6, 2),
        (7, 7, 2),
        (8, 8, 2),
    ]
    assert not page["more"]
    for client in (alice, writer, again):
        await client.close()


async def test_the_presence_limit_holds_for_joins_and_parts_from_other_nodes(
    node: Nodes,
) -> None:
    a = await node("--presence-limit", "2")
    b = await node()
    alice = await registered(a.port, "alice", "x")
    bob = await registered(b.port, "bob", "x")
    # Two members in all: at the limit, bob's join from the other node is announced.
    await alice.expect("joined", room="x", nick="bob", timeout=2 * TIMEOUT)
    carol = await registered(b.port, "carol", "x")
    await carol.request({"type": "say", "room": "x", "text": "hello"})
    await alice.expect("message", room="x", text="hello", timeout=2 * TIMEOUT)
    # Three now, above alice's node's limit: carol's join was not announced there.
    assert not [m for m in alice.seen if m.get("type") == "joined" and m.get("nick") == "carol"]
    who = await alice.request({"type": "who", "room": "x"})
    assert sorted(who["members"]) == ["alice", "bob", "carol"]  # `who` stays exact
    await carol.send({"type": "part", "room": "x"})
    await carol.expect("left", room="x", nick="carol")
    await bob.request({"type": "say", "room": "x", "text": "after"})
    await alice.expect("message", room="x", text="after", timeout=2 * TIMEOUT)
    assert not [m for m in alice.seen if m.get("type") == "left"]  # counted with carol: 3
    who = await alice.request({"type": "who", "room": "x"})
    assert sorted(who["members"]) == ["alice", "bob"]
    # Back at the limit: bob's part is announced again.
    await bob.send({"type": "part", "room": "x"})
    await alice.expect("left", room="x", nick="bob", timeout=2 * TIMEOUT)
    for client in (alice, bob, carol):
        await client.close()


async def test_a_node_offers_search_and_moderation(node: Nodes) -> None:
    a = await node()
    alice, hello, granted = await hello_with_features(a.port, "alice")
    for feature in ("search", "moderation", "edit", "react"):
        assert feature in hello["features"] and feature in granted, (feature, hello)
    joined = await alice.request({"type": "join", "room": "x"})
    assert joined["type"] == "room", joined
    await alice.request({"type": "say", "room": "x", "text": "findable words"})
    found = await alice.request({"type": "search", "query": "findable"})
    assert [hit["text"] for hit in found["results"]] == ["findable words"], found
    await alice.close()
