"""Nothing a client does may drop another client, burn a seq or lose an acknowledged line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from chat_server.server import ChatServer
from tests.server.helpers import Clients
from tests.support import TIMEOUT, Json, make_config, run_command


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
