"""A search-index flush that fails for real (SQLite refuses the writer's statement) is
logged once and retried; no acked message is lost, and all become searchable through
the index once the failure clears, also after a restart."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import StartServer
from tests.server.helpers import Clients
from tests.support import TIMEOUT, Json, LineClient

# A real failure of the flush's transaction: SQLite aborts the statement that moves a
# room's mark, with the message a full disk gives, so the whole flush rolls back.
FAIL_FLUSH = (
    "CREATE TRIGGER flush_fails BEFORE UPDATE ON message_search_indexed"
    " BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
)
# Messages above their room's mark: stored, not yet in the FTS5 index.
UNINDEXED = (
    "SELECT COUNT(*) FROM messages m JOIN message_search_indexed i"
    " ON i.room_id = m.room_id AND m.seq > i.seq"
)
RETRYING = "could not update the search index (retrying)"
RECOVERED = "the search index is updated again"


def outside(path: str) -> sqlite3.Connection:
    """Another program's connection to the server's database file."""
    return sqlite3.connect(path, timeout=TIMEOUT, isolation_level=None)


def pending(path: str) -> int:
    with outside(path) as connection:
        return int(connection.execute(UNINDEXED).fetchone()[0])


def indexed(path: str, word: str) -> int:
    with outside(path) as connection:
        query = "SELECT COUNT(*) FROM message_search WHERE message_search MATCH ?"
        return int(connection.execute(query, (word,)).fetchone()[0])


async def say(client: LineClient, texts: list[str]) -> list[int]:
    seqs = []
    for text in texts:
        ack = await client.request({"type": "say", "room": "lobby", "text": text})
        assert ack["type"] == "ack", ack
        seqs.append(ack["seq"])
    return seqs


def hits(reply: Json) -> list[str]:
    assert reply["type"] == "search_results", reply
    return sorted(hit["text"] for hit in reply["results"])


async def eventually(what: str, condition: Callable[[], bool]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 3 * TIMEOUT
    while not condition():
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_a_failing_index_flush_is_retried_and_loses_nothing(
    start_server: StartServer,
    clients: Clients,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="chat_server.sqlite_store")
    path = str(tmp_path / "chat.sqlite3")
    server = await start_server(db_path=path)
    alice = await clients.registered(server.port, "alice", "lobby")
    with outside(path) as connection:
        connection.execute(FAIL_FLUSH)
    first = [f"kestrel number {n}" for n in range(30)]
    await say(alice, first)

    def warnings(text: str) -> int:
        return sum(text in record.getMessage() for record in caplog.records)

    await eventually("the failed flush in the log", lambda: warnings(RETRYING) >= 1)
    second = [f"kestrel again {n}" for n in range(30)]
    await say(alice, second)
    await asyncio.sleep(1.5)  # three more flush attempts (every 0.5 s), all failing
    assert warnings(RETRYING) == 1  # logged once, not once per attempt
    assert pending(path) == 60  # nothing reached the index...
    assert indexed(path, "kestrel") == 0
    # ...yet every acked message is stored and found (the pending ones are scanned).
    reply = await alice.request({"type": "search", "query": "kestrel", "limit": 100})
    assert hits(reply) == sorted(first + second)
    history = await alice.request({"type": "history", "room": "lobby", "limit": 100})
    assert [m["text"] for m in history["messages"]] == first + second

    with outside(path) as connection:  # the disk has room again
        connection.execute("DROP TRIGGER flush_fails")
    await eventually("the recovery in the log", lambda: warnings(RECOVERED) == 1)
    assert pending(path) == 0
    assert indexed(path, "kestrel") == 60  # now in the index itself
    reply = await alice.request({"type": "search", "query": "kestrel again", "limit": 100})
    assert hits(reply) == sorted(second)
    assert warnings(RETRYING) == 1

    await clients.close_all()
    await server.close()
    again = await start_server(db_path=path)
    bob = await clients.registered(again.port, "bob", "lobby")
    reply = await bob.request({"type": "search", "query": "kestrel", "limit": 100})
    assert hits(reply) == sorted(first + second)
