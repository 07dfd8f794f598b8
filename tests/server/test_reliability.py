"""Nothing a client does may drop another client, burn a seq or lose an acknowledged line."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import resource
import socket
import sys
from dataclasses import replace
from pathlib import Path
from typing import cast

import pytest

from chat_server.config import ServerConfig
from chat_server.connection import ClientConnection
from chat_server.server import ChatServer
from tests.server.helpers import Clients, prove_alive
from tests.support import TIMEOUT, UNIT, Json, make_config, run_command


async def send_and_half_close(port: int, data: bytes, host: str = "127.0.0.1") -> bytes:
    """What `printf ... | nc -N` does: send everything, shut the write side, read to the end."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(data)
    await writer.drain()
    writer.write_eof()
    received = await asyncio.wait_for(reader.read(), TIMEOUT)
    writer.close()
    return received


def json_lines(data: bytes) -> list[Json]:
    return [json.loads(line) for line in data.splitlines()]


async def test_half_close_after_a_restart_keeps_every_line(
    tmp_path: Path, clients: Clients
) -> None:
    path = str(tmp_path / "h.db")
    async with ChatServer(make_config(db_path=path)) as server:
        alice = await clients.registered(server.port, "alice", "lobby")
        await alice.request({"type": "say", "room": "lobby", "text": "before"})
    async with ChatServer(make_config(db_path=path)) as server:  # the join now reads the store
        text = await send_and_half_close(server.port, b"deploybot\nrelease 1.2 is out\n")
        assert b"Now talking in #lobby" in text, text
        script = (
            b'{"type":"hello","nick":"bot"}\n{"type":"join","room":"lobby"}\n'
            b'{"type":"say","room":"lobby","text":"json too","id":"s1"}\n'
        )
        replies = json_lines(await send_and_half_close(server.port, script))
        assert {"type": "ack", "re": "s1", "seq": 3} in replies, replies
        reader = await clients.registered(server.port, "reader")
        page = await reader.request({"type": "history", "room": "lobby"})
        texts = [m["text"] for m in page["messages"]]
        assert texts == ["before", "release 1.2 is out", "json too"]


async def test_seqs_past_the_integer_range_are_invalid_messages(
    tmp_path: Path, clients: Clients
) -> None:
    async with ChatServer(make_config(db_path=str(tmp_path / "h.db"))) as server:
        alice = await clients.registered(server.port, "alice", "lobby")
        requests: list[Json] = [
            {"type": "history", "room": "lobby", "before": 2**63},
            {"type": "history", "room": "lobby", "after": 2**64},
            {"type": "join", "room": "lobby", "since": 10**30},
        ]
        for request in requests:
            reply = await alice.request(request)
            assert (reply["type"], reply["code"]) == ("error", "invalid_message"), reply
        edge = await alice.request({"type": "history", "room": "lobby", "before": 2**63 - 1})
        assert edge["type"] == "history"
        assert (await alice.request({"type": "ping"}))["type"] == "pong"
    code, out, err = await run_command(
        "history", "lobby", "--db", str(tmp_path / "h.db"), "--limit", "99999999999999999999"
    )
    assert code == 2 and out == "" and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1 and "limit" in err, err


WIDE = "\U0001d11e"  # four bytes in UTF-8


def say_line(room: str, text: str, request_id: str | None = None) -> bytes:
    message: Json = {"type": "say", "room": room, "text": text}
    if request_id is not None:
        message["id"] = request_id
    return json.dumps(message, ensure_ascii=False).encode() + b"\n"


async def open_from(port: int, source: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A connection from the loopback address `source` (127.0.0.x)."""
    return await asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0), limit=1 << 24)


def connection_of(server: ChatServer, nick: str) -> ClientConnection:
    found = [c for c in server.context.connections if getattr(c, "nick", "") == nick]
    assert len(found) == 1, nick
    return cast(ClientConnection, found[0])


@pytest.mark.slow
async def test_a_burst_from_one_address_does_not_wipe_the_room(clients: Clients) -> None:
    config = ServerConfig()  # every default limit
    server = ChatServer(
        replace(
            make_config(),
            **{
                f: getattr(config, f)
                for f in (
                    "rate",
                    "burst",
                    "byte_rate",
                    "address_byte_rate",
                    "send_buffer",
                    "max_per_ip",
                )
            },
        )
    )
    async with server:
        bob = await clients.registered(server.port, "bob", "lobby")
        carol = await clients.registered(server.port, "carol", "lobby")
        senders: list[asyncio.StreamWriter] = []
        readers: list[asyncio.Task[bytes]] = []
        for n in range(45):
            reader, writer = await open_from(server.port, "127.0.0.2")
            writer.write(b'{"type":"hello","nick":"f%d"}\n{"type":"join","room":"lobby"}\n' % n)
            senders.append(writer)
            readers.append(asyncio.create_task(reader.read()))  # they read, too
        await bob.expect("joined", nick="f44", timeout=4 * TIMEOUT)
        line = say_line("lobby", WIDE * 4000)
        for writer in senders:
            writer.write(line * 28)  # ~20 MiB in all, every line within the limits
        await asyncio.gather(*(writer.drain() for writer in senders))
        await prove_alive(bob, carol, "lobby", "still here")
        seqs = [m["seq"] for m in bob.seen if m["type"] == "message"]
        assert seqs == list(range(1, len(seqs) + 1))
        assert not [m for m in bob.seen if m["type"] == "bye"]
        for writer in senders:
            writer.close()
        await asyncio.gather(*readers, return_exceptions=True)


async def test_replies_are_bounded_as_they_are_queued(clients: Clients) -> None:
    async with ChatServer(make_config()) as server:
        writer = await clients.registered(server.port, "writer", "big")
        for n in range(50):
            await writer.send_raw(say_line("big", WIDE * 4000, f"s{n}"))
        await writer.expect("ack", re="s49")
        greedy = socket.socket()
        greedy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        greedy.setblocking(False)
        loop = asyncio.get_running_loop()
        with greedy:
            await loop.sock_connect(greedy, ("127.0.0.1", server.port))
            joins = b'{"type":"join","room":"big","id":"j"}\n' * 29
            await loop.sock_sendall(greedy, b'{"type":"hello","nick":"greedy"}\n' + joins)
            await asyncio.sleep(0.5)  # the server does what it will with the lines
            connection = connection_of(server, "greedy")
            assert connection.unsent() < 3 * 850_000, connection.unsent()  # not 29 replies
            pages, tail, received = 0, b"", bytearray()
            marker = b'"type":"history"'
            while pages < 29 or not received.endswith(b"\n"):
                chunk = await asyncio.wait_for(loop.sock_recv(greedy, 1 << 20), TIMEOUT)
                assert chunk, "the server closed the connection"
                pages += (tail + chunk).count(marker)
                tail = (tail + chunk)[-(len(marker) - 1) :]
                received += chunk
        kinds = [json.loads(line)["type"] for line in bytes(received).splitlines()]
        assert kinds.count("room") == 29 and "bye" not in kinds


async def test_a_page_the_client_asked_for_is_paced_not_dropped(clients: Clients) -> None:
    config = make_config(max_text=10_000, slow_timeout=0.2)
    async with ChatServer(config) as server:
        writer = await clients.registered(server.port, "writer", "big")
        for n in range(200):
            await writer.send_raw(say_line("big", WIDE * 10_000, f"s{n}"))
        await writer.expect("ack", re="s199")
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a slow link: small window
        sock.connect(("127.0.0.1", server.port))
        reader, stream = await asyncio.open_connection(sock=sock, limit=1 << 24)
        stream.write(b'{"type":"hello","nick":"pager"}\n')
        stream.write(b'{"type":"history","room":"big","limit":500,"id":"h"}\n')
        data = b""
        try:
            while b'"re":"h"' not in data or not data.endswith(b"\n"):
                chunk = await asyncio.wait_for(reader.read(64 * 1024), TIMEOUT)
                assert chunk, "the server closed the connection"
                data += chunk
                await asyncio.sleep(0.005)
        finally:
            stream.close()
        page = json.loads(data.splitlines()[-1])
        assert page["type"] == "history" and len(page["messages"]) == 200
        assert len(data) > 3 * config.send_buffer  # far over the limit, yet not dropped


async def test_refusing_a_line_costs_no_parse(clients: Clients) -> None:
    async with ChatServer(make_config(rate=1.0, burst=5)) as server:
        bystander = await clients.registered(server.port, "bystander")
        flooder = await clients.open(server.port)
        heavy = b'{"type":"ping","id":"x","pad":[' + b"[]," * 21_000 + b"[]]}\n"
        assert len(heavy) < 65_536
        await flooder.send_raw(heavy * 300)
        loop = asyncio.get_running_loop()
        started = loop.time()
        assert (await bystander.request({"type": "ping"}))["type"] == "pong"
        waited = loop.time() - started
        got = [await flooder.recv() for _ in range(300)]
        assert [m.get("re") for m in got] == ["x"] * 300
        assert sum(m.get("code") == "rate_limited" for m in got) >= 295
        assert waited < 0.25 * UNIT, waited  # a parse each: 300 x ~2 ms


async def test_rooms_are_capped_and_unused_ones_expire(clients: Clients) -> None:
    config = make_config(max_rooms=5, max_rooms_per_client=3, room_expiry=0.2 * UNIT)
    async with ChatServer(config) as server:
        alice = await clients.registered(server.port, "alice", "r1", "r2", "r3")
        refused = await alice.request({"type": "join", "room": "r4"})
        assert (refused["type"], refused["code"]) == ("error", "limit_reached")
        bob = await clients.registered(server.port, "bob", "r4", "r5")
        refused = await bob.request({"type": "join", "room": "r6"})
        assert (refused["type"], refused["code"]) == ("error", "limit_reached")
        await bob.request({"type": "say", "room": "r5", "text": "history keeps r5"})
        for room in ("r4", "r5"):
            assert (await bob.request({"type": "part", "room": room}))["type"] == "ack"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + TIMEOUT
        while True:  # r4 (empty, no history) expires; r5 stays
            names = [r["room"] for r in (await bob.request({"type": "rooms"}))["rooms"]]
            if "r4" not in names or loop.time() > deadline:
                break
            await asyncio.sleep(0.05)
        assert names == ["r1", "r2", "r3", "r5"]
        assert (await bob.request({"type": "join", "room": "r6"}))["type"] == "room"
        carol = await clients.open(server.port)
        welcome = await carol.request({"type": "hello", "nick": "carol"})
        assert welcome["rooms"] == ["r1", "r2", "r3", "r5", "r6"]


async def test_recent_messages_in_memory_are_bounded_in_bytes(clients: Clients) -> None:
    budget = 300_000
    async with ChatServer(make_config(tail_bytes=budget)) as server:
        rooms = [f"r{n}" for n in range(20)]
        alice = await clients.registered(server.port, "alice", *rooms)
        for room in rooms:
            for n in range(20):
                await alice.send_raw(say_line(room, f"{n} " + WIDE * 3990, f"{room}-{n}"))
            await alice.expect("ack", re=f"{room}-19")
        kept = [m for room in server.context.hub.rooms for m in room.tail]
        assert sum(len(m.text.encode()) for m in kept) < budget
        assert 0 < len(kept) < 20
        bob = await clients.registered(server.port, "bob")
        await bob.request({"type": "join", "room": "r0", "since": 0})
        replay = await bob.expect("history", room="r0")
        assert [m["seq"] for m in replay["messages"]] == list(range(1, 21))
        await bob.request({"type": "join", "room": "r19", "since": 15})
        replay = await bob.expect("history", room="r19")
        assert [int(m["text"].split()[0]) for m in replay["messages"]] == [15, 16, 17, 18, 19]


async def test_unregistered_connections_time_out(clients: Clients) -> None:
    config = make_config(register_timeout=0.3 * UNIT, password="s3cret", auth_delay=0.01)
    async with ChatServer(config) as server:
        silent = await clients.open(server.port)
        prompt = await clients.open(server.port)
        await prompt.send_raw(b"not the password\n")  # text mode, at the password prompt
        member = await clients.open(server.port)
        welcome = await member.request({"type": "hello", "nick": "m", "password": "s3cret"})
        assert welcome["type"] == "welcome"
        assert await silent.recv() == {"type": "bye", "reason": "timeout"}
        lines = (await asyncio.wait_for(prompt.reader.read(), TIMEOUT)).decode().splitlines()
        assert lines[-1] == "* bye (timeout)", lines
        assert (await member.request({"type": "ping"}))["type"] == "pong"


@pytest.mark.slow
async def test_out_of_descriptors_is_logged_once_and_accepting_recovers(tmp_path: Path) -> None:
    def few_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path)}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chat_server", "--host", "127.0.0.1", "--port", "0",
        "--db", ":memory:", "--max-per-ip", "0", "--register-timeout", "1",
        "--tls-port", "0", "--no-announce", "--no-files",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, preexec_fn=few_descriptors, env=env,
    )  # fmt: skip
    assert process.stderr is not None
    log: list[bytes] = []
    try:
        while not (found := re.search(rb"listening on \S+:(\d+)", log[-1] if log else b"")):
            log.append(await asyncio.wait_for(process.stderr.readline(), 4 * TIMEOUT))
        port = int(found.group(1))
        drained = asyncio.create_task(_collect(process.stderr, log))
        opened = [await asyncio.open_connection("127.0.0.1", port) for _ in range(120)]
        await asyncio.sleep(0.5)
        size_while_full = sum(map(len, log))
        assert size_while_full < 20_000, size_while_full
        assert sum(b"Traceback" in line for line in log) == 0
        for reader, writer in opened:  # they never register: the server lets them go
            await asyncio.wait_for(reader.read(), 4 * TIMEOUT)
            writer.close()
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b'{"type":"hello","nick":"late"}\n')
        assert b'"welcome"' in await asyncio.wait_for(reader.readuntil(b'"welcome"'), TIMEOUT)
        writer.close()
    finally:
        process.kill()
        await process.wait()
    drained.cancel()


async def _collect(stream: asyncio.StreamReader, into: list[bytes]) -> None:
    async for line in stream:
        into.append(line)


async def test_password_guessing_is_throttled_closed_and_logged(
    clients: Clients, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(password="s3cret", auth_delay=0.2 * UNIT, auth_failures=3)
    caplog.set_level(logging.INFO)
    async with ChatServer(config) as server:
        reader, writer = await open_from(server.port, "127.0.0.3")
        guesses = b"".join(
            b'{"type":"hello","nick":"m","password":"guess%d","id":"g%d"}\n' % (n, n)
            for n in range(3)
        )
        loop = asyncio.get_running_loop()
        started = loop.time()
        writer.write(guesses)
        lines = [
            json.loads(line)
            for line in (await asyncio.wait_for(reader.read(), TIMEOUT)).splitlines()
        ]
        took = loop.time() - started
        writer.close()
        assert [m.get("code") or m.get("reason") for m in lines[1:]] == [
            "auth_failed", "auth_failed", "auth_failed", "auth_failed",
        ]  # fmt: skip
        assert lines[-1]["type"] == "bye"
        assert took >= 0.6 * UNIT  # waited 0.2 s, then 0.4 s
        # The same address waits even with the right password; another address does not.
        same = await clients.track_streams(*await open_from(server.port, "127.0.0.3"))
        other = await clients.track_streams(*await open_from(server.port, "127.0.0.4"))
        started = loop.time()
        await asyncio.gather(same.recv(), other.recv())
        hello = {"type": "hello", "nick": "x", "password": "s3cret"}
        welcome = await other.request({**hello, "nick": "other"})
        assert welcome["type"] == "welcome" and loop.time() - started < 0.4 * UNIT
        welcome = await same.request({**hello, "nick": "same"})
        assert welcome["type"] == "welcome" and loop.time() - started >= 0.7 * UNIT
    logged = [r.getMessage() for r in caplog.records if "wrong password" in r.getMessage()]
    assert len(logged) == 3 and all("127.0.0.3" in line for line in logged), logged
    assert "guess" not in caplog.text


async def test_a_dropped_users_nick_is_held_against_other_addresses(clients: Clients) -> None:
    async with ChatServer(make_config(nick_grace=0.5 * UNIT)) as server:
        watcher = await clients.registered(server.port, "watcher", "lobby")
        victim = await clients.registered(server.port, "victim", "lobby")
        victim.writer.transport.abort()  # dropped, not quit
        await watcher.expect("left", nick="victim")
        mallory = await clients.track_streams(*await open_from(server.port, "127.0.0.5"))
        await mallory.recv()
        taken = await mallory.request({"type": "hello", "nick": "Victim"})
        assert (taken["type"], taken["code"]) == ("error", "nick_taken"), taken
        assert (await mallory.request({"type": "hello", "nick": "mallory"}))["type"] == "welcome"
        refused = await mallory.request({"type": "nick", "nick": "victim"})
        assert refused["code"] == "nick_taken"
        back = await clients.open(server.port)  # the victim's own address gets it back
        assert (await back.request({"type": "hello", "nick": "victim"}))["type"] == "welcome"
        await back.send({"type": "quit"})  # quitting holds nothing
        await back.expect("bye")
        assert (await mallory.request({"type": "nick", "nick": "victim"}))["type"] == "ack"
        # A hold runs out: after the grace another address may take a dropped nick.
        bob = await clients.registered(server.port, "bob", "lobby")
        bob.writer.transport.abort()
        await watcher.expect("left", nick="bob")
        assert (await mallory.request({"type": "nick", "nick": "bob"}))["code"] == "nick_taken"
        await asyncio.sleep(0.6 * UNIT)
        assert (await mallory.request({"type": "nick", "nick": "bob"}))["type"] == "ack"
