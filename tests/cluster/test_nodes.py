"""Several `chat-server --redis` processes on one real Redis behave as one server.

Every node here is a real subprocess, Redis is a real redis-server, and the clients
speak JSON lines over loopback.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.redis_support import RedisServer
from tests.support import TIMEOUT, UNIT, LineClient, ServerProcess, open_client, registered

from .conftest import Nodes


async def messages(client: LineClient, room: str, count: int) -> list[dict[str, Any]]:
    """The next `count` `message` events of `room` (others are skipped)."""
    got: list[dict[str, Any]] = []
    while len(got) < count:
        event = await client.expect("message", room=room, timeout=2 * TIMEOUT)
        got.append(event)
    return got


async def join_since(client: LineClient, room: str, since: int) -> list[int]:
    """Join `room` with `since`; the seqs of the history the join brings."""
    reply = await client.request({"type": "join", "room": room, "since": since})
    assert reply["type"] == "room", reply
    history = await client.expect("history", room=room)
    return [m["seq"] for m in history["messages"]]


async def test_nicks_are_unique_across_nodes(node: Nodes) -> None:
    a, b = await node(), await node()
    alice = await registered(a.port, "alice")
    other = await open_client(b.port)
    reply = await other.request({"type": "hello", "nick": "ALICE"})
    assert (reply["type"], reply["code"]) == ("error", "nick_taken"), reply
    await alice.close()
    await asyncio.sleep(0.3 * UNIT)  # the release is written after the close is seen
    again = await other.request({"type": "hello", "nick": "alice"})
    assert again["type"] == "welcome", again
    await other.close()


async def test_a_say_on_one_node_reaches_every_node_in_seq_order(node: Nodes) -> None:
    a, b, c = await node(), await node(), await node()
    alice = await registered(a.port, "alice", "x")
    bob = await registered(b.port, "bob", "x")
    carol = await registered(c.port, "carol", "x")
    members = await carol.request({"type": "who", "room": "x"})
    assert sorted(members["members"]) == ["alice", "bob", "carol"]
    # Two senders on two nodes at once: one order, no gap, the same on every node.
    for i in range(20):
        await alice.send({"type": "say", "room": "x", "text": f"a{i}", "id": f"a{i}"})
        await bob.send({"type": "say", "room": "x", "text": f"b{i}", "id": f"b{i}"})
    seen = [await messages(client, "x", 40) for client in (alice, bob, carol)]
    orders = [[(m["seq"], m["text"]) for m in got] for got in seen]
    assert [seq for seq, _ in orders[0]] == list(range(1, 41))
    assert orders[0] == orders[1] == orders[2]
    assert [t for _, t in orders[0] if t.startswith("a")] == [f"a{i}" for i in range(20)]
    while sum(1 for m in alice.seen if m.get("type") == "ack") < 20:
        await alice.expect("ack")
    acks = [m for m in alice.seen if m.get("type") == "ack"]
    by_text = {text: seq for seq, text in orders[0]}
    assert {m["re"]: m["seq"] for m in acks} == {f"a{i}": by_text[f"a{i}"] for i in range(20)}
    for client in (alice, bob, carol):
        await client.close()


async def test_history_and_since_across_nodes(node: Nodes) -> None:
    a, b = await node(), await node()
    alice = await registered(a.port, "alice", "x")
    for i in range(12):
        reply = await alice.request({"type": "say", "room": "x", "text": f"m{i + 1}"})
        assert reply == {"type": "ack", "re": reply["re"], "seq": i + 1}
    late = await registered(b.port, "bob")
    assert await join_since(late, "x", 9) == [10, 11, 12]
    changed = await late.request({"type": "join", "room": "x", "changed_since": 10})
    assert changed["type"] == "room", changed
    history = await late.expect("history", room="x")
    assert [m["seq"] for m in history["messages"]] == [11, 12]
    page = await late.request({"type": "history", "room": "x", "before": 5, "limit": 3})
    assert ([m["text"] for m in page["messages"]], page["more"]) == (["m2", "m3", "m4"], True)
    page = await late.request({"type": "history", "room": "x", "after": 10, "limit": 5})
    assert [m["seq"] for m in page["messages"]] == [11, 12]
    await alice.close()
    await late.close()


async def test_a_killed_node_loses_nobody_a_line(node: Nodes) -> None:
    """kill -9 of the reader's node mid-stream: it resumes on another with no gap, no twin,
    and the dead node's member leaves the room on the others within 10 s."""
    a, b = await node(), await node()
    reader = await registered(a.port, "reader", "x")
    writer = await registered(b.port, "writer", "x")
    total = 120
    sending = asyncio.create_task(_send_all(writer, total))
    first = await messages(reader, "x", 30)
    killed_at = asyncio.get_running_loop().time()
    a.process.kill()  # SIGKILL: no goodbye, no clean-up
    await a.wait()
    # The reader's own buffered lines are read to the end, as a client would.
    received = [m["seq"] for m in first]
    try:
        while True:
            event = await reader.recv(0.5 * UNIT)
            if event.get("type") == "message":
                received.append(event["seq"])
    except (TimeoutError, ConnectionError):
        pass
    await reader.close()
    last = received[-1]
    left = await writer.expect("left", room="x", nick="reader", timeout=12.0)
    took = asyncio.get_running_loop().time() - killed_at
    print(f"the killed node's member left after {took:.1f} s")
    assert took <= 10.0, left
    again = await open_client(b.port)
    welcome = await again.request({"type": "hello", "nick": "reader"})  # the nick is free
    assert welcome["type"] == "welcome", welcome
    resumed = await join_since(again, "x", last)
    await sending
    rest = total - last - len(resumed)
    if rest > 0:
        resumed += [m["seq"] for m in await messages(again, "x", rest)]
    assert received + resumed == list(range(1, total + 1))
    await again.close()
    await writer.close()


async def _send_all(writer: LineClient, total: int) -> None:
    for i in range(total):
        await writer.send({"type": "say", "room": "x", "text": f"m{i + 1}", "id": f"s{i + 1}"})
        if i % 10 == 9:
            await asyncio.sleep(0.02)


async def test_redis_restarted_under_load_loses_nothing_acknowledged(
    node: Nodes, redis_server: RedisServer
) -> None:
    """Redis is killed (SIGKILL, as in a crash) and started again while a sender streams:
    writes meanwhile are refused with `unavailable`; every acked seq is kept with its
    text, none is given twice, and the nodes go on by themselves afterwards."""
    a, b = await node(), await node()
    alice = await registered(a.port, "alice", "x")
    watcher = await registered(b.port, "watcher", "x")
    total = 300
    replies: dict[str, dict[str, Any]] = {}

    async def send() -> None:
        for i in range(total):
            await alice.send({"type": "say", "room": "x", "text": f"m{i}", "id": f"m{i}"})
            await asyncio.sleep(0.005)

    async def collect() -> None:
        while len(replies) < total:
            reply = await alice.recv(4 * TIMEOUT)
            if reply.get("re", "").startswith("m"):
                replies[reply["re"]] = reply

    collecting = asyncio.create_task(collect())
    sending = asyncio.create_task(send())
    await asyncio.sleep(0.4)
    await redis_server.kill()
    await asyncio.sleep(0.5)
    await redis_server.start()
    await sending
    await collecting
    acked = {r["seq"]: r["re"] for r in replies.values() if r["type"] == "ack"}
    refused = [r for r in replies.values() if r["type"] == "error"]
    assert all(r["code"] == "unavailable" for r in refused), refused
    assert len(acked) == sum(1 for r in replies.values() if r["type"] == "ack")  # no seq twice
    print(f"redis killed under load: {len(acked)} acked, {len(refused)} refused")
    assert refused, "Redis was down for half a second: some writes must have been refused"
    assert acked, "nothing went through"
    # After the restart the node takes writes again by itself.
    reply = await alice.request({"type": "say", "room": "x", "text": "after"})
    assert reply["type"] == "ack" and reply["seq"] > max(acked), reply
    stored: dict[int, str] = {}
    more = True
    while more:
        after = max(stored, default=0)
        page = await watcher.request({"type": "history", "room": "x", "after": after})
        assert page["type"] == "history", page
        stored.update({m["seq"]: m["text"] for m in page["messages"]})
        more = page["more"]
    assert sorted(stored) == list(range(1, len(stored) + 1))  # no gap
    assert all(stored[seq] == text for seq, text in acked.items())  # nothing acked lost
    assert stored[reply["seq"]] == "after"
    # The watcher on the other node saw every stored message once, in order.
    if not any(m.get("type") == "message" and m["seq"] == reply["seq"] for m in watcher.seen):
        await watcher.expect("message", room="x", seq=reply["seq"])
    live = [m["seq"] for m in watcher.seen if m.get("type") == "message" and m["room"] == "x"]
    assert live == sorted(stored)
    assert "Redis unavailable" in "".join(a.log)
    await alice.close()
    await watcher.close()


async def test_a_node_refuses_a_redis_that_can_forget(tmp_path: Any) -> None:
    loose = RedisServer(tmp_path, appendfsync="everysec")
    await loose.start()
    try:
        try:
            process = await ServerProcess.start("--redis", loose.url, "--no-tls", "--no-files")
        except RuntimeError as exc:
            assert "appendfsync always" in str(exc)
        else:
            await process.kill()
            raise AssertionError("a node started on a Redis with appendfsync everysec")
    finally:
        await loose.stop()


async def test_a_node_stops_when_redis_comes_back_without_what_it_sent(
    node: Nodes, redis_server: RedisServer
) -> None:
    """Redis restarted empty (its files lost): the node refuses to hand out seq 1 again."""
    a = await node()
    alice = await registered(a.port, "alice", "x")
    for i in range(3):
        reply = await alice.request({"type": "say", "room": "x", "text": f"m{i}"})
        assert reply["type"] == "ack"
    await redis_server.kill()
    for path in redis_server.directory.rglob("*.aof"):
        path.unlink()
    for path in redis_server.directory.rglob("*.manifest"):
        path.unlink()
    await redis_server.start()
    code = await a.wait(timeout=4 * TIMEOUT)
    assert code == 1
    assert "lost acknowledged writes" in "".join(a.log)
    await alice.close()


async def test_while_redis_is_down_writes_are_refused_and_memory_still_answers(
    node: Nodes, redis_server: RedisServer
) -> None:
    a = await node()
    alice = await registered(a.port, "alice", "x")
    for i in range(3):
        assert (await alice.request({"type": "say", "room": "x", "text": f"m{i}"}))["type"] == "ack"
    await redis_server.stop()
    refused = await alice.request({"type": "say", "room": "x", "text": "lost?"})
    assert (refused["type"], refused["code"]) == ("error", "unavailable"), refused
    topic = await alice.request({"type": "topic", "room": "x", "topic": "t"})
    assert (topic["type"], topic["code"]) == ("error", "unavailable"), topic
    # A join the node's memory can answer is answered; a page from Redis is refused.
    assert await join_since(alice, "x", 1) == [2, 3]
    page = await alice.request({"type": "history", "room": "x", "before": 2})
    assert (page["type"], page["code"]) == ("error", "unavailable"), page
    await asyncio.sleep(1.0 * UNIT)
    await redis_server.start()
    for _ in range(50):  # the node goes on by itself
        reply = await alice.request({"type": "say", "room": "x", "text": "back"})
        if reply["type"] == "ack":
            break
        await asyncio.sleep(0.1)
    assert reply == {"type": "ack", "re": reply["re"], "seq": 4}  # the refused one took no seq
    log = "".join(a.log)
    assert log.count("Redis unavailable") == 1 and log.count("Redis works again") == 1, log
    await alice.close()


async def test_typing_reaches_members_and_users_on_other_nodes(node: Nodes) -> None:
    a, b = await node(), await node()
    alice, bob = await open_client(a.port), await open_client(b.port)
    for client, nick in ((alice, "alice"), (bob, "bob")):
        welcome = await client.request({"type": "hello", "nick": nick, "features": ["typing"]})
        assert "typing" in welcome["features"], welcome
        reply = await client.request({"type": "join", "room": "x"})
        assert reply["type"] == "room", reply
    await alice.expect("joined", nick="bob")  # B's join reached A: x has members there
    await alice.send({"type": "typing", "room": "x", "state": "active"})
    notice = await bob.expect("typing", timeout=TIMEOUT)
    assert (notice.get("room"), notice["from"], notice["state"]) == ("x", "alice", "active")
    await bob.send({"type": "typing", "to": "alice", "state": "done"})
    direct = await alice.expect("typing", timeout=TIMEOUT)
    assert ("room" not in direct, direct["from"], direct["state"]) == (True, "bob", "done")
    assert not [m for m in alice.seen if m.get("type") == "typing" and m["from"] == "alice"]
    await alice.close()
    await bob.close()


async def test_away_is_seen_from_other_nodes(node: Nodes) -> None:
    a, b = await node(), await node()
    alice, bob = await open_client(a.port), await open_client(b.port)
    for client, nick in ((alice, "alice"), (bob, "bob")):
        welcome = await client.request({"type": "hello", "nick": nick, "features": ["away"]})
        assert "away" in welcome["features"], welcome
        assert (await client.request({"type": "join", "room": "x"}))["type"] == "room"
    await alice.expect("joined", nick="bob")  # each node knows the other's member
    assert (await alice.request({"type": "away", "text": "lunch"}))["type"] == "ack"
    changed = await bob.expect("away", nick="alice")
    assert changed.get("text") == "lunch"
    who = await bob.request({"type": "who", "room": "x"})
    assert who["away"] == {"alice": "lunch"}, who
    assert (await alice.request({"type": "away"}))["type"] == "ack"
    back = await bob.expect("away", nick="alice")
    assert back.get("text") is None
    who = await bob.request({"type": "who", "room": "x"})
    assert not who.get("away"), who
    await alice.close()
    await bob.close()
