"""Order: concurrent senders in one room; every member sees seq 1..N with no gap, in order."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from tests.conftest import StartServer
from tests.server.helpers import Clients
from tests.support import Json, LineClient

SENDERS = 5
EACH = 100
TOTAL = SENDERS * EACH


async def send_all(sender: LineClient, name: str) -> None:
    """Pipelined, 1-4 lines per write, each write interleaved with the other senders'."""
    lines = [
        json.dumps({"type": "say", "room": "lobby", "text": f"{name}:{n}", "id": str(n)}) + "\n"
        for n in range(EACH)
    ]
    start = 0
    while start < EACH:
        size = 1 + start % 4
        await sender.send_raw("".join(lines[start : start + size]).encode())
        start += size
        await asyncio.sleep(0)


async def messages(client: LineClient, count: int) -> list[Json]:
    got: list[Json] = []
    while len(got) < count:
        message = await client.recv()
        if message["type"] == "message":
            got.append(message)
    return got


def check_order(received: list[Json], names: list[str]) -> None:
    assert [m["seq"] for m in received] == list(range(1, TOTAL + 1))
    for name in names:
        own = [m["text"] for m in received if m["from"] == name]
        assert own == [f"{name}:{number}" for number in range(EACH)]


@pytest.mark.parametrize("store", ["memory", "sqlite"])
async def test_concurrent_senders_are_seen_in_seq_order(
    start_server: StartServer, clients: Clients, tmp_path: Path, store: str
) -> None:
    db_path = str(tmp_path / "h.db") if store == "sqlite" else ":memory:"
    server = await start_server(db_path=db_path)
    names = [f"sender{i}" for i in range(SENDERS)]
    senders = [await clients.registered(server.port, name, "lobby") for name in names]
    listeners = [await clients.registered(server.port, f"ear{i}", "lobby") for i in range(2)]
    for client in [*senders, *listeners]:
        client.seen.clear()

    everyone = [*senders, *listeners]
    readers = [asyncio.create_task(messages(client, TOTAL)) for client in everyone]
    await asyncio.gather(*(send_all(s, n) for s, n in zip(senders, names, strict=True)))
    results = await asyncio.gather(*readers)

    for received in results:
        check_order(received, names)
    last = str(EACH - 1)
    for sender in senders:
        if not any(m.get("re") == last for m in sender.seen):
            await sender.expect("ack", re=last)
        acks = [m for m in sender.seen if m["type"] == "ack"]
        assert [a["re"] for a in acks] == [str(n) for n in range(EACH)]
        seqs = [a["seq"] for a in acks]
        assert seqs == sorted(seqs) and len(set(seqs)) == EACH
        sender_name = names[senders.index(sender)]
        by_seq = {m["seq"]: m["from"] for m in results[0]}
        assert {by_seq[s] for s in seqs} == {sender_name}
