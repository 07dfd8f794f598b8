"""Backpressure and abuse: slow consumers are dropped, floods are refused, connections capped."""

from __future__ import annotations

import asyncio
import json
import socket

from tests.conftest import StartServer
from tests.server.helpers import Clients, prove_alive
from tests.support import TIMEOUT, UNIT, Json


async def recv_all(sock: socket.socket) -> list[Json]:
    """Read a socket the server has closed to its end (EOF or a reset)."""
    loop = asyncio.get_running_loop()
    data = b""
    try:
        while chunk := await asyncio.wait_for(loop.sock_recv(sock, 1 << 16), TIMEOUT):
            data += chunk
    except ConnectionResetError:
        pass
    return [json.loads(line) for line in data.splitlines() if line.endswith(b"}")]


async def test_slow_consumer_is_dropped_and_others_carry_on(
    start_server: StartServer, clients: Clients
) -> None:
    server = await start_server(send_buffer=64 * 1024, max_text=50_000, slow_timeout=0.3 * UNIT)
    alice = await clients.registered(server.port, "alice", "lobby")
    bob = await clients.registered(server.port, "bob", "lobby")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as slow:
        # A tiny receive buffer and no reads at all: output backs up on the server.
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.setblocking(False)
        loop = asyncio.get_running_loop()
        await loop.sock_connect(slow, ("127.0.0.1", server.port))
        await loop.sock_sendall(slow, b'{"type":"hello","nick":"slow"}\n')
        await loop.sock_sendall(slow, b'{"type":"join","room":"lobby"}\n')
        await bob.expect("joined", nick="slow")

        # The kernel takes a few MB on loopback before the server's own buffer grows.
        text = "x" * 50_000
        count = 200  # 10 MB
        for number in range(count):
            await alice.send({"type": "say", "room": "lobby", "text": text, "id": str(number)})
        left = await bob.expect("left", nick="slow")
        assert left["reason"] == "disconnected"
        got = [m["seq"] for m in bob.seen if m["type"] == "message"]
        while len(got) < count:
            got.append((await bob.expect("message"))["seq"])
        assert got == list(range(1, count + 1))
        assert (await alice.expect("ack", re=str(count - 1)))["seq"] == count

        tail = await recv_all(slow)  # the server closed it: EOF (or a reset) comes
        assert tail[0]["type"] == "hello"
        if tail[-1]["type"] == "bye":  # best effort: it may not have fit
            assert tail[-1] == {"type": "bye", "reason": "slow_consumer"}
        assert len([m for m in tail if m["type"] == "message"]) < count
    who = await bob.request({"type": "who", "room": "lobby"})
    assert sorted(who["members"]) == ["alice", "bob"]
    await prove_alive(alice, bob, "lobby", "still here")


async def test_flood_is_refused_then_allowed_after_refill(
    start_server: StartServer, clients: Clients
) -> None:
    server = await start_server(rate=10.0, burst=5)
    alice = await clients.registered(server.port, "alice", "lobby")
    bob = await clients.registered(server.port, "bob", "lobby")
    await asyncio.sleep(0.6 * UNIT)  # a full bucket
    lines = [
        json.dumps({"type": "say", "room": "lobby", "text": f"f{n}", "id": f"f{n}"}) + "\n"
        for n in range(12)
    ]
    unreadable_ids = '{"type":"ping","id":5}\n[1]\n{"type":"ping","id":"x"\n'
    await alice.send_raw("".join(lines).encode() + unreadable_ids.encode())  # one burst
    replies = await alice.quiet(0.3 * UNIT)
    acked = [m["re"] for m in replies if m["type"] == "ack"]
    assert acked == [f"f{n}" for n in range(5)]
    limited = [m for m in replies if m["type"] == "error"]
    assert {m["code"] for m in limited} == {"rate_limited"}
    # Each refused line still gets its one direct reply: the error carries its id if a cheap
    # scan finds a plain string one (the line is not parsed, so a broken line may keep its id).
    assert [m.get("re") for m in limited] == [*(f"f{n}" for n in range(5, 12)), None, None, "x"]
    heard = [m["text"] for m in await bob.quiet() if m["type"] == "message"]
    assert heard == [f"f{n}" for n in range(5)]  # the refused lines were dropped

    await asyncio.sleep(0.6 * UNIT)  # a full bucket again
    pings = [b'{"type":"ping","id":"p%d"}\n' % n for n in range(6)]
    blanks = b"\n\n   \n\r\n\t\n" * 20  # blank lines are free
    await alice.send_raw(b"".join(pings[:5]) + blanks + pings[5])
    replies = await alice.quiet(0.1 * UNIT)
    assert [(m["type"], m["re"]) for m in replies] == [
        *(("pong", f"p{n}") for n in range(5)),
        ("error", "p5"),
    ]
    assert replies[-1]["code"] == "rate_limited"
    await asyncio.sleep(0.35 * UNIT)  # refills about 3 tokens
    await prove_alive(alice, bob, "lobby", "after the refill")


async def test_connections_per_address_are_capped(
    start_server: StartServer, clients: Clients
) -> None:
    server = await start_server(max_per_ip=3)
    first = [await clients.open(server.port) for _ in range(2)]
    registered = await clients.registered(server.port, "alice")
    extra = await clients.connect(server.port)
    assert await extra.recv() == {"type": "bye", "reason": "too_many_connections"}
    assert await extra.reader.read() == b""
    assert (await registered.request({"type": "ping"}))["type"] == "pong"
    await first[0].close()
    await asyncio.sleep(0.1 * UNIT)
    again = await clients.open(server.port)  # a slot came free
    welcome = await again.request({"type": "hello", "nick": "bob"})
    assert welcome["type"] == "welcome"
