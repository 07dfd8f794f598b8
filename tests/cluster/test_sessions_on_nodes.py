"""An account's sessions on several `chat-server --redis` nodes count as one user's.

Real Redis, real node processes over loopback: away is combined over every node's
sessions (away only while all are), `--max-sessions` and held nicks count on every
node, and a dead node's sessions stop counting when its heartbeat expires.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support import TIMEOUT, UNIT, LineClient, open_client

from .conftest import Nodes

PASSWORD = "correct horse"
FEATURES = ["accounts", "away"]
WAIT = 3 * TIMEOUT


async def session(port: int, nick: str, *, register: bool = False) -> LineClient:
    """A guest (made an account with `register`), or a login when `register` is False
    and the nick is an account."""
    client = await open_client(port)
    hello: dict[str, Any] = {"type": "hello", "nick": nick, "features": FEATURES}
    if not register:
        hello["account_password"] = PASSWORD
    welcome = await client.request(hello)
    assert welcome["type"] == "welcome", welcome
    if register:
        reply = await client.request({"type": "register", "password": PASSWORD})
        assert reply["type"] == "ack", reply
    return client


async def login(port: int, nick: str) -> dict[str, Any]:
    """A login's reply (welcome or error); the connection is kept in `opened`."""
    client = await open_client(port)
    hello = {"type": "hello", "nick": nick, "account_password": PASSWORD, "features": FEATURES}
    reply = await client.request(hello)
    opened.append(client)
    return reply


opened: list[LineClient] = []


async def joined(client: LineClient, room: str) -> None:
    reply = await client.request({"type": "join", "room": room})
    assert reply["type"] == "room", reply


async def away(client: LineClient, text: str | None) -> None:
    request: dict[str, Any] = {"type": "away"}
    if text is not None:
        request["text"] = text
    assert (await client.request(request))["type"] == "ack"


async def who_away(client: LineClient, room: str) -> dict[str, str]:
    reply = await client.request({"type": "who", "room": room})
    return dict(reply.get("away") or {})


def aways(client: LineClient, nick: str) -> list[str | None]:
    return [m["text"] for m in client.seen if m.get("type") == "away" and m["nick"] == nick]


async def test_an_account_is_away_only_while_its_sessions_on_every_node_are(
    node: Nodes,
) -> None:
    a, b, c = await node(), await node(), await node()
    first = await session(a.port, "alice", register=True)
    bob = await session(a.port, "bob")  # a guest beside alice's first session
    carol = await session(c.port, "carol")  # a guest on a node alice is not on
    second = None
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while second is None:  # B hears of the account through Redis
        reply = await login(b.port, "alice")
        if reply["type"] == "welcome":
            second = opened.pop()
        assert loop.time() < deadline, reply
        await asyncio.sleep(0.1 * UNIT)
    for client in (first, second, bob, carol):
        await joined(client, "x")
    for watcher in (bob, carol):
        deadline = loop.time() + WAIT
        while len((await watcher.request({"type": "who", "room": "x"}))["members"]) < 3:
            assert loop.time() < deadline
            await asyncio.sleep(0.1 * UNIT)

    # One session away, the other (on another node) here: alice is not away anywhere.
    await away(first, "lunch")
    await away(second, "meeting")  # now both are: away with the latest text
    for watcher in (bob, carol):
        got = await watcher.expect("away", nick="alice", timeout=WAIT)
        assert got["text"] == "meeting", got
        assert aways(watcher, "alice") == ["meeting"]  # "lunch" alone was never shown
        assert await who_away(watcher, "x") == {"alice": "meeting"}
    await away(second, None)  # back on B: back everywhere
    for watcher in (bob, carol):
        got = await watcher.expect("away", nick="alice", timeout=WAIT)
        assert got["text"] is None, got
        assert await who_away(watcher, "x") == {}
    # The session that is here goes: the one left is away, so alice is.
    await second.close()
    for watcher in (bob, carol):
        got = await watcher.expect("away", nick="alice", timeout=WAIT)
        assert got["text"] == "lunch", got
        assert await who_away(watcher, "x") == {"alice": "lunch"}
    # A new session on C, where she had none: here again on every node, C too.
    third = await session(c.port, "alice")
    for watcher in (bob, carol):
        got = await watcher.expect("away", nick="alice", timeout=WAIT)
        assert got["text"] is None, got
        assert await who_away(watcher, "x") == {}
    await third.close()
    for watcher in (bob, carol):
        got = await watcher.expect("away", nick="alice", timeout=WAIT)
        assert got["text"] == "lunch", got
    # The last one quits: she leaves, with no `away` change on the way out.
    await first.send({"type": "quit"})
    for watcher in (bob, carol):
        await watcher.expect("left", room="x", nick="alice", timeout=WAIT)
        assert aways(watcher, "alice") == ["meeting", None, "lunch", None, "lunch"]
        assert await who_away(watcher, "x") == {}
    await first.close()
    await bob.close()
    await carol.close()


async def test_max_sessions_counts_every_node_and_a_dead_nodes_sessions_stop_counting(
    node: Nodes,
) -> None:
    a = await node("--max-sessions", "2")
    b = await node("--max-sessions", "2")
    c = await node("--max-sessions", "2")
    first = await session(a.port, "alice", register=True)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while (reply := await login(b.port, "alice"))["type"] != "welcome":
        assert loop.time() < deadline, reply  # B hears of the account through Redis
        await asyncio.sleep(0.1 * UNIT)
    # One session on A and one on B: a third is refused on A, B and C alike.
    for port in (a.port, b.port, c.port):
        deadline = loop.time() + WAIT
        while (refused := await login(port, "alice"))["type"] == "error":
            if refused["code"] == "too_many_sessions":
                break
            assert loop.time() < deadline, refused  # C may not know the account yet
            await asyncio.sleep(0.1 * UNIT)
        assert (refused["type"], refused["code"]) == ("error", "too_many_sessions"), refused
        assert "2 sessions" in refused["message"], refused
    # A session that ends frees its place on every node.
    await first.close()
    deadline = loop.time() + WAIT
    while (reply := await login(c.port, "alice"))["type"] != "welcome":
        assert loop.time() < deadline and reply["code"] == "too_many_sessions", reply
        await asyncio.sleep(0.1 * UNIT)
    # B dies (SIGKILL: no goodbye): once its heartbeat expires its session counts no more.
    await b.kill()
    refused = await login(a.port, "alice")
    assert (refused["type"], refused["code"]) == ("error", "too_many_sessions"), refused
    deadline = loop.time() + WAIT
    while (reply := await login(a.port, "alice"))["type"] != "welcome":
        assert loop.time() < deadline and reply["code"] == "too_many_sessions", reply
        await asyncio.sleep(0.2 * UNIT)
    refused = await login(c.port, "alice")  # C and A hold two again
    assert (refused["type"], refused["code"]) == ("error", "too_many_sessions"), refused
    for client in opened:
        await client.close()
    opened.clear()


async def open_from(port: int, source: str) -> LineClient:
    """A connection from the loopback address `source` (127.0.0.x), hello read."""
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", port, local_addr=(source, 0), limit=1 << 22
    )
    client = LineClient(reader, writer)
    assert (await client.recv())["type"] == "hello"
    return client


async def test_a_dropped_guests_nick_is_held_on_every_node(node: Nodes) -> None:
    a = await node("--nick-grace", str(3 * UNIT))
    b = await node("--nick-grace", str(3 * UNIT))
    watcher = await open_client(b.port)
    assert (await watcher.request({"type": "hello", "nick": "watcher"}))["type"] == "welcome"
    await joined(watcher, "x")
    victim = await open_from(a.port, "127.0.0.2")
    assert (await victim.request({"type": "hello", "nick": "victim"}))["type"] == "welcome"
    await joined(victim, "x")
    await watcher.expect("joined", room="x", nick="victim", timeout=WAIT)
    victim.writer.transport.abort()  # dropped, not quit
    await watcher.expect("left", room="x", nick="victim", timeout=WAIT)
    # Another address gets neither the nick on the other node, nor a change to it.
    mallory = await open_from(b.port, "127.0.0.5")
    taken = await mallory.request({"type": "hello", "nick": "Victim"})
    assert (taken["type"], taken["code"]) == ("error", "nick_taken"), taken
    assert "held" in taken["message"], taken
    assert (await mallory.request({"type": "hello", "nick": "mallory"}))["type"] == "welcome"
    refused = await mallory.request({"type": "nick", "nick": "victim"})
    assert (refused["type"], refused["code"]) == ("error", "nick_taken"), refused
    # The victim's own address takes it back on the other node; quitting holds nothing.
    back = await open_from(b.port, "127.0.0.2")
    assert (await back.request({"type": "hello", "nick": "victim"}))["type"] == "welcome"
    await back.send({"type": "quit"})
    await back.expect("bye")
    await back.close()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT
    while (reply := await mallory.request({"type": "nick", "nick": "victim"}))["type"] != "ack":
        assert loop.time() < deadline and "held" not in reply["message"], reply
        await asyncio.sleep(0.1 * UNIT)  # the release reaches Redis
    # A hold runs out: after the grace another address may take it.
    other = await open_from(a.port, "127.0.0.3")
    assert (await other.request({"type": "hello", "nick": "bob"}))["type"] == "welcome"
    other.writer.transport.abort()
    await asyncio.sleep(0.5 * UNIT)
    refused = await mallory.request({"type": "nick", "nick": "bob"})
    assert (refused["type"], refused["code"]) == ("error", "nick_taken"), refused
    await asyncio.sleep(3 * UNIT)
    assert (await mallory.request({"type": "nick", "nick": "bob"}))["type"] == "ack"
    for client in (watcher, mallory, victim, other):
        await client.close()
