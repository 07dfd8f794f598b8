"""`search` on `chat-server --redis` nodes: each node searches a SQLite copy of the logs.

The copy catches up with Redis before every search, so a message acked on one node
is found at once on another, with the SQLite store's semantics; an edit is found by
its new text, a delete by nothing; the copy kept with `--db` survives a restart and
catches up, and a missing one is rebuilt from the streams.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.support import LineClient, open_client

from .conftest import Nodes

PASSWORD = "correct horse"
FEATURES = ["accounts", "reply", "edit", "react", "search"]


async def member(port: int, nick: str, *rooms: str, register: bool = False) -> LineClient:
    client = await open_client(port)
    welcome = await client.request({"type": "hello", "nick": nick, "features": FEATURES})
    assert welcome["type"] == "welcome" and "search" in welcome["features"], welcome
    if register:
        assert (await client.request({"type": "register", "password": PASSWORD}))["type"] == "ack"
    for room in rooms:
        assert (await client.request({"type": "join", "room": room}))["type"] == "room"
    return client


async def found(client: LineClient, query: str, **filters: Any) -> list[str]:
    reply = await client.request({"type": "search", "query": query, **filters})
    assert reply["type"] == "search_results", reply
    return [hit["text"] for hit in reply["results"]]


async def test_search_on_node_b_finds_what_was_said_on_node_a_and_not_after_its_delete(
    node: Nodes,
) -> None:
    a, b = await node(), await node()
    alice = await member(a.port, "alice", "lobby", register=True)
    bob = await member(b.port, "bob", "games")
    texts = ["Déploiement lundi", "on deploie mardi", "rien", "secret plan"]
    seqs = {}
    for text in texts:
        ack = await alice.request({"type": "say", "room": "lobby", "text": text})
        assert ack["type"] == "ack", ack
        seqs[text] = ack["seq"]
    # At once after the ack, on the other node: no wait for its background catch-up.
    said = await bob.request({"type": "say", "room": "games", "text": "deploiement des dragons"})
    assert said["type"] == "ack", said
    assert await found(alice, "deploi*") == [
        "deploiement des dragons",
        "on deploie mardi",
        "Déploiement lundi",
    ]
    assert await found(bob, "deploi*", room="lobby") == ["on deploie mardi", "Déploiement lundi"]
    assert await found(bob, "deploi*", **{"from": "BOB"}) == ["deploiement des dragons"]
    assert await found(bob, '"des dragons"') == ["deploiement des dragons"]
    assert await found(bob, '"dragons des"') == []
    assert await found(bob, "lundi deploiement") == ["Déploiement lundi"]  # AND of words
    # Paged by the cursor, newest first, no gap and no repeat.
    first = await bob.request({"type": "search", "query": "deploi*", "limit": 2})
    assert [h["text"] for h in first["results"]] == ["deploiement des dragons", "on deploie mardi"]
    assert first["more"] is True
    rest = await bob.request(
        {"type": "search", "query": "deploi*", "limit": 2, "before": first["cursor"]}
    )
    assert [h["text"] for h in rest["results"]] == ["Déploiement lundi"] and not rest["more"]
    # An edit on node A: found by its new text only, on node B.
    edit = {"type": "edit", "room": "lobby", "seq": seqs["rien"], "text": "quelque chose"}
    assert (await alice.request(edit))["type"] == "ack"
    assert await found(bob, "rien") == []
    assert await found(bob, "quelque") == ["quelque chose"]
    # A delete on node B (the author's other session): found by nothing, on either node.
    assert await found(alice, "secret") == ["secret plan"]
    other = await open_client(b.port)
    hello = {"type": "hello", "nick": "alice", "account_password": PASSWORD, "features": FEATURES}
    assert (await other.request(hello))["type"] == "welcome"
    assert (await other.request({"type": "join", "room": "lobby"}))["type"] == "room"
    gone = await other.request({"type": "delete", "room": "lobby", "seq": seqs["secret plan"]})
    assert gone["type"] == "ack", gone
    assert await found(bob, "secret") == []
    assert await found(alice, "secret") == []
    assert await found(alice, "plan") == []
    for client in (alice, bob, other):
        await client.close()


async def test_a_nodes_index_survives_a_restart_and_a_lost_one_is_rebuilt(
    node: Nodes, tmp_path: Path
) -> None:
    index = tmp_path / "search.sqlite3"
    a = await node("--db", str(index))
    b = await node()
    alice = await member(a.port, "alice", "x")
    for i in range(30):
        assert (await alice.request({"type": "say", "room": "x", "text": f"word{i} common"}))[
            "type"
        ] == "ack"
    assert len(await found(alice, "common", limit=100)) == 30
    await alice.close()
    await a.kill()
    assert index.exists()
    bob = await member(b.port, "bob", "x")
    for i in range(30, 40):  # said while node A was away
        await bob.request({"type": "say", "room": "x", "text": f"word{i} common"})
    again = await node("--db", str(index))  # the same copy, caught up from its watermark
    carol = await member(again.port, "carol", "x")
    hits = await found(carol, "common", limit=100)
    assert hits == [f"word{i} common" for i in range(39, -1, -1)]
    assert await found(carol, "word35") == ["word35 common"]
    await carol.close()
    await again.kill()
    for suffix in ("", "-wal", "-shm"):  # the copy lost: rebuilt from the streams
        Path(str(index) + suffix).unlink(missing_ok=True)  # noqa: ASYNC240 (a test's files)
    fresh = await node("--db", str(index))
    dave = await member(fresh.port, "dave", "x")
    assert len(await found(dave, "common", limit=100)) == 40
    await dave.close()
    await bob.close()


async def test_dms_are_searched_with_on_a_node(node: Nodes) -> None:
    a, b = await node(), await node()
    alice = await member(a.port, "alice", register=True)
    bob = await member(b.port, "bob", register=True)
    sent = await alice.request({"type": "dm", "to": "bob", "text": "the meeting is at noon"})
    assert sent["type"] == "ack", sent
    await bob.expect("dm", text="the meeting is at noon")
    reply = await bob.request({"type": "search", "query": "meeting", "with": "alice"})
    assert reply["type"] == "search_results", reply
    assert [hit["text"] for hit in reply["results"]] == ["the meeting is at noon"]
    for client in (alice, bob):
        await client.close()
