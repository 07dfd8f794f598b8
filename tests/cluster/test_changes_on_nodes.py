"""Edits, deletes and reactions across `chat-server --redis` nodes (real Redis, real nodes).

Revs come from Redis, shared by messages and changes; every node's reader fans the
changes out in rev order; a change computed from a stale state is retried, so two
nodes never lose one of two changes; a deleted text leaves Redis's files once the
append-only file is rewritten.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from tests.redis_support import RedisServer
from tests.support import TIMEOUT, UNIT, LineClient, open_client

from .conftest import Nodes

PASSWORD = "correct horse"
FEATURES = ["accounts", "reply", "edit", "react"]
EMOJI = ["👍", "🎉", "😀", "🚀", "❤️"]


async def member(port: int, nick: str, room: str = "x", *, register: bool = False) -> LineClient:
    """A client asking for the change features, in `room` (an account if `register`)."""
    client = await open_client(port)
    welcome = await client.request({"type": "hello", "nick": nick, "features": FEATURES})
    assert welcome["type"] == "welcome", welcome
    assert "edit" in welcome["features"] and "react" in welcome["features"], welcome
    if register:
        reply = await client.request({"type": "register", "password": PASSWORD})
        assert reply["type"] == "ack", reply
    joined = await client.request({"type": "join", "room": room})
    assert joined["type"] == "room", joined
    return client


async def login(port: int, nick: str, room: str = "x") -> LineClient:
    """Another session of the account `nick` (made with `member(register=True)`)."""
    client = await open_client(port)
    hello = {"type": "hello", "nick": nick, "account_password": PASSWORD, "features": FEATURES}
    welcome = await client.request(hello)
    assert welcome["type"] == "welcome" and welcome["account"] is True, welcome
    assert (await client.request({"type": "join", "room": room}))["type"] == "room"
    return client


async def history(client: LineClient, **query: Any) -> list[dict[str, Any]]:
    page = await client.request({"type": "history", "room": "x", "limit": 100, **query})
    assert page["type"] == "history", page
    messages: list[dict[str, Any]] = page["messages"]
    return messages


async def events(client: LineClient, kinds: set[str], count: int) -> list[dict[str, Any]]:
    """The next `count` events of `kinds` (others are skipped)."""
    got: list[dict[str, Any]] = []
    while len(got) < count:
        event = await client.recv(3 * TIMEOUT)
        if event.get("type") in kinds:
            got.append(event)
    return got


def redis_bytes(directory: Path) -> bytes:
    """Every file Redis keeps in its directory (the append-only files), concatenated."""
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


async def stream_revs(url: str, room: str) -> list[int]:
    """The rev of every entry of the room's stream (messages and changes), in stream order."""
    client: Any = aioredis.Redis.from_url(url, decode_responses=True)  # replies are str
    try:
        entries = await client.xrange(f"lanchat:log:{room}")
    finally:
        await client.aclose()
    return [int(fields["v"]) for _, fields in entries]


async def test_an_edit_on_node_a_is_seen_live_on_node_b(node: Nodes) -> None:
    a, b = await node(), await node()
    alice = await member(a.port, "alice")
    bob = await member(b.port, "bob")
    said = await alice.request({"type": "say", "room": "x", "text": "helo"})
    assert said["type"] == "ack" and said["seq"] == 1, said
    await bob.expect("message", room="x", seq=1, timeout=2 * TIMEOUT)
    edited = await alice.request({"type": "edit", "room": "x", "seq": 1, "text": "hello"})
    assert edited["type"] == "ack", edited
    seen = await bob.expect("edited", room="x", seq=1, timeout=2 * TIMEOUT)
    assert (seen["text"], seen["by"], seen["rev"]) == ("hello", "alice", 2)
    # Only the author edits, on any node.
    refused = await bob.request({"type": "edit", "room": "x", "seq": 1, "text": "mine"})
    assert (refused["type"], refused["code"]) == ("error", "not_allowed"), refused
    missing = await bob.request({"type": "edit", "room": "x", "seq": 9, "text": "?"})
    assert (missing["type"], missing["code"]) == ("error", "no_such_message"), missing
    # The next message takes the next rev after the change: one counter for both.
    again = await bob.request({"type": "say", "room": "x", "text": "ok", "reply_to": 1})
    assert again["type"] == "ack" and again["seq"] == 2, again
    page = await history(bob, after=0)
    assert [(m["seq"], m["text"], m["rev"], "edited" in m) for m in page] == [
        (1, "hello", 2, True),
        (2, "ok", 3, False),
    ]
    # Text mode on node B: /edit of one's own message reaches alice on node A.
    _reader, writer = await asyncio.open_connection("127.0.0.1", b.port)
    writer.write(b"carol\n/join x\nfirst try\n")
    line = await alice.expect("message", room="x", text="first try", timeout=2 * TIMEOUT)
    writer.write(f"/edit {line['seq']} second try\n".encode())
    seen = await alice.expect("edited", room="x", seq=line["seq"], timeout=2 * TIMEOUT)
    assert seen["text"] == "second try" and seen["by"] == "carol"
    writer.close()
    with contextlib.suppress(ConnectionError, OSError):
        await writer.wait_closed()
    for client in (alice, bob):
        await client.close()


async def test_a_delete_on_node_b_erases_the_text_and_is_seen_on_node_c(
    node: Nodes, redis_server: RedisServer
) -> None:
    a, b, c = await node(), await node(), await node()
    secret = "the-launch-code-is-XYZZY-4711"
    alice = await member(a.port, "alice", register=True)
    carol = await member(c.port, "carol")
    for i in range(5):
        text = secret if i == 2 else f"filler {i}"
        assert (await alice.request({"type": "say", "room": "x", "text": text}))["type"] == "ack"
    react = await carol.request({"type": "react", "room": "x", "seq": 3, "emoji": "👍"})
    assert react["type"] == "ack", react
    assert secret.encode() in redis_bytes(redis_server.directory)  # on disk before the delete
    # carol is neither the author nor an op: refused.
    refused = await carol.request({"type": "delete", "room": "x", "seq": 3})
    assert (refused["type"], refused["code"]) == ("error", "not_allowed"), refused
    alice_b = await login(b.port, "alice")  # the author, on another node
    deleted = await alice_b.request({"type": "delete", "room": "x", "seq": 3})
    assert deleted["type"] == "ack", deleted
    seen = await carol.expect("deleted", room="x", seq=3, timeout=2 * TIMEOUT)
    assert (seen["by"], seen["rev"]) == ("alice", 7)
    again = await carol.request({"type": "delete", "room": "x", "seq": 3})
    assert (again["type"], again["code"]) == ("error", "no_such_message"), again
    gone = await carol.request({"type": "edit", "room": "x", "seq": 3, "text": "back"})
    assert gone["type"] == "error", gone
    # Not returned by any read, on any node.
    for client in (carol, alice_b, alice):
        for query in ({"after": 0}, {"around": 3}, {"changed_since": 0}):
            page = await history(client, **query)
            three = [m for m in page if m["seq"] == 3]
            assert three and three[0]["deleted"] is True and three[0]["text"] == "", page
            assert not three[0].get("reactions"), page
            assert secret not in str(page)
    # And gone from Redis's files once the append-only file is rewritten (asked for
    # after the delete, at once for the first one).
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 20 * UNIT
    while secret.encode() in redis_bytes(redis_server.directory):
        assert loop.time() < deadline, "the deleted text is still in Redis's files"
        await asyncio.sleep(0.2)
    assert b"filler 4" in redis_bytes(redis_server.directory)  # the rest is kept
    for client in (alice, alice_b, carol):
        await client.close()


async def test_reactions_from_two_nodes_at_once_are_all_kept(
    node: Nodes, redis_server: RedisServer
) -> None:
    a, b, c = await node(), await node(), await node()
    bob = await member(a.port, "bob")
    carol = await member(b.port, "carol")
    alice = await member(c.port, "alice")
    said = await alice.request({"type": "say", "room": "x", "text": "vote"})
    assert said["seq"] == 1, said
    await bob.expect("message", room="x", seq=1, timeout=2 * TIMEOUT)
    await carol.expect("message", room="x", seq=1, timeout=2 * TIMEOUT)

    async def react_all(client: LineClient) -> list[dict[str, Any]]:
        for emoji in EMOJI:  # all sent before any answer: they race the other node's
            await client.send({"type": "react", "room": "x", "seq": 1, "emoji": emoji, "id": emoji})
        replies: list[dict[str, Any]] = []
        while len(replies) < len(EMOJI):
            event = await client.recv(3 * TIMEOUT)
            if event.get("re") in EMOJI:
                replies.append(event)
        return replies

    for replies in await asyncio.gather(react_all(bob), react_all(carol)):
        assert [r["type"] for r in replies] == ["ack"] * len(EMOJI), replies
    told = await events(alice, {"reaction"}, 2 * len(EMOJI))
    assert [e["rev"] for e in told] == list(range(2, 2 + 2 * len(EMOJI)))  # once, in order
    assert sorted((e["emoji"], e["nick"]) for e in told) == sorted(
        (emoji, nick) for emoji in EMOJI for nick in ("bob", "carol")
    )
    page = await history(alice, after=0)
    assert {e: sorted(n) for e, n in page[0]["reactions"].items()} == {
        emoji: ["bob", "carol"] for emoji in EMOJI
    }
    # Idempotent: the same reaction again (or removing one not there) is acked, takes no rev.
    same = await bob.request({"type": "react", "room": "x", "seq": 1, "emoji": EMOJI[0]})
    assert same["type"] == "ack", same
    absent = await bob.request(
        {"type": "react", "room": "x", "seq": 1, "emoji": "🐢", "remove": True}
    )
    assert absent["type"] == "ack", absent
    removed = await carol.request(
        {"type": "react", "room": "x", "seq": 1, "emoji": EMOJI[0], "remove": True}
    )
    assert removed["type"] == "ack", removed
    last = await alice.expect("reaction", room="x", seq=1, removed=True, timeout=2 * TIMEOUT)
    assert (last["nick"], last["rev"]) == ("carol", 2 + 2 * len(EMOJI))
    assert await stream_revs(redis_server.url, "x") == list(range(1, 3 + 2 * len(EMOJI)))
    for client in (alice, bob, carol):
        await client.close()


async def test_a_client_away_during_changes_resumes_on_another_node_with_each_change_once(
    node: Nodes,
) -> None:
    a, b, c = await node(), await node(), await node()
    alice = await member(a.port, "alice")
    for i in range(6):
        assert (await alice.request({"type": "say", "room": "x", "text": f"m{i + 1}"}))[
            "seq"
        ] == i + 1
    bob = await member(b.port, "bob")
    top = max(m["rev"] for m in await history(bob, after=0))
    assert top == 6
    await bob.close()  # away while the room changes
    assert (await alice.request({"type": "edit", "room": "x", "seq": 2, "text": "two"}))[
        "type"
    ] == "ack"
    await alice.request({"type": "react", "room": "x", "seq": 4, "emoji": "👍"})
    await alice.request({"type": "edit", "room": "x", "seq": 2, "text": "TWO"})  # twice
    await alice.request({"type": "say", "room": "x", "text": "m7"})
    await alice.request({"type": "delete", "room": "x", "seq": 5})
    back = await open_client(c.port)
    welcome = await back.request({"type": "hello", "nick": "bob", "features": FEATURES})
    assert welcome["type"] == "welcome", welcome
    reply = await back.request({"type": "join", "room": "x", "changed_since": top})
    assert reply["type"] == "room", reply
    page = await back.expect("history", room="x")
    got = [(m["seq"], m["rev"]) for m in page["messages"]]
    assert got == [(4, 8), (2, 9), (7, 10), (5, 11)], page  # each once, in rev order
    by_seq = {m["seq"]: m for m in page["messages"]}
    assert by_seq[2]["text"] == "TWO" and by_seq[4]["reactions"] == {"👍": ["alice"]}
    assert by_seq[5]["deleted"] is True and by_seq[5]["text"] == ""
    # Live from here: a change made on node A now reaches bob on node C.
    await alice.request({"type": "react", "room": "x", "seq": 1, "emoji": "🎉"})
    live = await back.expect("reaction", room="x", seq=1, timeout=2 * TIMEOUT)
    assert live["rev"] == 12
    # Paged by the limit: the page stops at the limit and says so.
    first = await back.request({"type": "history", "room": "x", "changed_since": 0, "limit": 3})
    assert [m["rev"] for m in first["messages"]] == [3, 6, 8] and first["more"]
    for client in (alice, back):
        await client.close()


async def test_a_node_killed_during_changes_loses_no_acked_change(
    node: Nodes, redis_server: RedisServer
) -> None:
    a, b = await node(), await node()
    alice = await member(a.port, "alice")
    bob = await member(b.port, "bob")
    total = 8
    for i in range(total):
        await alice.request({"type": "say", "room": "x", "text": f"m{i + 1}"})
    await bob.expect("message", room="x", seq=total, timeout=2 * TIMEOUT)
    emojis = ["👍", "🎉", "😀", "🚀"]
    wanted = [(seq, emoji) for seq in range(1, total + 1) for emoji in emojis]
    for seq, emoji in wanted:
        await alice.send(
            {"type": "react", "room": "x", "seq": seq, "emoji": emoji, "id": f"{seq}{emoji}"}
        )
    acked: set[tuple[int, str]] = set()
    while len(acked) < 6:  # some are through: kill the node in the middle of the rest
        event = await alice.recv(3 * TIMEOUT)
        if event.get("type") == "ack" and event.get("re"):
            acked.add((int(event["re"][0]), event["re"][1:]))
    a.process.kill()  # SIGKILL: no goodbye
    await a.wait()
    try:
        while True:
            event = await alice.recv(0.5 * UNIT)
            if event.get("type") == "ack" and event.get("re"):
                acked.add((int(event["re"][0]), event["re"][1:]))
    except (TimeoutError, ConnectionError):
        pass
    await alice.close()
    page = await history(bob, after=0)
    kept = {(m["seq"], e) for m in page for e in m.get("reactions", {})}
    assert acked <= kept, acked - kept
    print(f"killed during changes: {len(acked)} acked, {len(kept)} stored of {len(wanted)}")
    revs = await stream_revs(redis_server.url, "x")
    assert revs == list(range(1, len(revs) + 1))  # no rev twice, none skipped
    assert len(revs) == total + len(kept)
    # The room goes on from there on node B.
    after = await bob.request({"type": "react", "room": "x", "seq": 1, "emoji": "🐢"})
    assert after["type"] == "ack", after
    assert await stream_revs(redis_server.url, "x") == list(range(1, len(revs) + 2))
    await bob.close()


async def test_a_message_reacted_to_before_another_node_reads_it_comes_as_sent(
    node: Nodes,
) -> None:
    """Node B reads the message after its reaction was made: its members get the
    message as it was sent, then the reaction, in rev order (as from one server)."""
    a, b = await node(), await node()
    alice = await member(a.port, "alice")
    bob = await member(b.port, "bob")
    await alice.expect("joined", nick="bob")
    b.process.send_signal(signal.SIGSTOP)  # node B's reader stands still
    try:
        said = await alice.request({"type": "say", "room": "x", "text": "lunch?"})
        assert said["type"] == "ack", said
        reacted = await alice.request(
            {"type": "react", "room": "x", "seq": said["seq"], "emoji": "👍"}
        )
        assert reacted["type"] == "ack", reacted
    finally:
        b.process.send_signal(signal.SIGCONT)
    message, reaction = await events(bob, {"message", "reaction"}, 2)
    assert message["type"] == "message" and message["seq"] == said["seq"], message
    assert not message.get("reactions"), message  # it had none when it was sent
    assert reaction["type"] == "reaction" and reaction["emoji"] == "👍", reaction
    assert reaction["rev"] > message["rev"]
    page = await history(bob)
    assert page[-1]["reactions"] == {"👍": ["alice"]}  # history has the state as it is now
    await alice.close()
    await bob.close()
