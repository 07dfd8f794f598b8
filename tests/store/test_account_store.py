"""One contract suite for every `AccountStore` (memory, SQLite), and the schema migration."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chat_server.account_store import Account, AccountStore, StoredDm, pair_key
from chat_server.sqlite_store import MIGRATIONS, SCHEMA_VERSION, SqliteStore
from chat_server.store import MemoryStore, Store, StoredMessage


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    made: Store = (
        MemoryStore() if request.param == "memory" else SqliteStore(str(tmp_path / "a.db"))
    )
    await made.open()
    yield made
    await made.close()


async def done_of(call: object, *args: object) -> BaseException | None:
    """Run a store write that takes a `done` callback last; its outcome."""
    future: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
    assert callable(call)
    call(*args, future.set_result)
    return await future


def dm(pair: str, seq: int, sender: str = "alice", to: str = "bob") -> StoredDm:
    return StoredDm(pair, seq, sender, to, f"text {seq}", 1_700_000_000_000 + seq)


async def test_accounts_are_found_case_insensitively(store: AccountStore) -> None:
    assert await store.account("alice") is None
    assert await done_of(store.create_account, Account("Alice", "$argon2id$x")) is None
    assert await store.account("ALICE") == Account("Alice", "$argon2id$x")
    assert await done_of(store.create_account, Account("alice", "$other")) is not None
    assert await store.account_names() == ["Alice"]


async def test_dm_seqs_follow_on_with_no_gaps(store: AccountStore) -> None:
    pair = pair_key("bob", "Alice")
    assert pair == pair_key("alice", "BOB")
    assert await done_of(store.append_dm, dm(pair, 1), False) is None
    assert await done_of(store.append_dm, dm(pair, 3), False) is not None  # a gap: refused
    assert await done_of(store.append_dm, dm(pair, 2), True) is None
    assert await done_of(store.append_dm, dm(pair_key("a", "c"), 1), False) is None
    page = await store.dm_history(pair, None, None, 50)
    assert ([m.seq for m in page.messages], page.more) == ([1, 2], False)
    assert [m.seq for m in (await store.dm_history(pair, 2, None, 50)).messages] == [1]
    assert [m.seq for m in (await store.dm_history(pair, None, 1, 50)).messages] == [2]
    latest = await store.dm_history(pair, None, None, 1)
    assert ([m.seq for m in latest.messages], latest.more) == ([2], True)


async def test_pending_dms_until_delivered(store: AccountStore) -> None:
    pair = pair_key("alice", "bob")
    for seq in (1, 2, 3):
        assert await done_of(store.append_dm, dm(pair, seq), seq != 2) is None
    pending = await store.pending_dms("BOB")
    assert [m.seq for m in pending] == [1, 3]
    assert pending[0].text == "text 1" and pending[0].ts_ms == 1_700_000_000_001
    assert await done_of(store.dms_delivered, "bob", pending[:1]) is None
    assert [m.seq for m in await store.pending_dms("bob")] == [3]
    assert await store.pending_dms("alice") == []


async def test_markers_only_move_forward(store: AccountStore) -> None:
    assert await store.markers("alice") == {}
    assert await done_of(store.set_marker, "Alice", "#lobby", 5) is None
    assert await done_of(store.set_marker, "alice", "#lobby", 3) is None
    assert await done_of(store.set_marker, "alice", "@bob", 2) is None
    assert await store.markers("ALICE") == {"#lobby": 5, "@bob": 2}


async def test_accounts_dms_and_markers_survive_a_reopen(tmp_path: Path) -> None:
    path = str(tmp_path / "a.db")
    store = SqliteStore(path)
    await store.open()
    pair = pair_key("alice", "bob")
    await done_of(store.create_account, Account("alice", "$h"))
    await done_of(store.append_dm, dm(pair, 1), True)
    await done_of(store.set_marker, "alice", "#lobby", 9)
    await store.close()
    again = SqliteStore(path)
    await again.open()
    try:
        assert await again.account("alice") == Account("alice", "$h")
        assert await again.dm_seqs() == {pair: 1}
        assert [m.seq for m in await again.pending_dms("bob")] == [1]
        assert await again.markers("alice") == {"#lobby": 9}
    finally:
        await again.close()


def write_version_1_database(path: Path) -> None:
    """A database as the release before accounts left it: schema 1, a room, messages, a topic."""
    connection = sqlite3.connect(path)
    connection.executescript(MIGRATIONS[0])
    connection.execute("INSERT INTO rooms (name, topic) VALUES ('lobby', 'old topic')")
    connection.executemany(
        "INSERT INTO messages VALUES (1, ?, 'alice', ?, 0, ?)",
        [(seq, f"old {seq}", 1_600_000_000_000 + seq) for seq in (1, 2, 3)],
    )
    connection.execute("PRAGMA user_version = 1")
    connection.commit()
    connection.close()


async def test_a_version_1_database_is_migrated_keeping_history(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    write_version_1_database(path)
    store = SqliteStore(str(path))
    rooms = await store.open()
    try:
        assert (rooms["lobby"].topic, rooms["lobby"].last_seq) == ("old topic", 3)
        page = await store.latest("lobby", 10)
        assert [m.text for m in page.messages] == ["old 1", "old 2", "old 3"]
        await done_of(store.append, StoredMessage("lobby", 4, "bob", "new", False, 1))
        assert await done_of(store.create_account, Account("alice", "$h")) is None
        assert await store.account("alice") == Account("alice", "$h")
    finally:
        await store.close()
    version = sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0]
    assert version == SCHEMA_VERSION
