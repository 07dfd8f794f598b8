"""Edits, deletes and reactions in the stores: revs, `changed_since`, erasure, migration."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chat_server.sqlite_store import MIGRATIONS, SqliteStore
from chat_server.store import MemoryStore, Store, StoredMessage, StoreError
from tests.redis_support import running_redis
from tests.store.test_account_store import done_of


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    made: Store
    redis = None
    if request.param == "memory":
        made = MemoryStore()
    elif request.param == "sqlite":
        made = SqliteStore(str(tmp_path / "c.db"))
    else:
        from chat_server.redis_store import RedisStore

        redis = await running_redis(tmp_path)
        made = RedisStore(redis.url)
    try:
        await made.open()
        assert await done_of(made.create_room, "lobby") is None
        yield made
        await made.close()
    finally:
        if redis is not None:
            await redis.stop()


def message(seq: int, rev: int, text: str = "", author: str = "account:alice") -> StoredMessage:
    return StoredMessage(
        "lobby",
        seq,
        "alice",
        text or f"m{seq}",
        False,
        1_700_000_000_000 + seq,
        None,
        rev,
        author=author,
    )


async def test_changes_keep_state_and_changed_since_pages_in_rev_order(store: Store) -> None:
    for seq in (1, 2, 3):
        assert await done_of(store.append, message(seq, seq)) is None
    one = await store.message("lobby", 1)
    assert one is not None and one.author == "account:alice"
    assert await done_of(store.update, one.edit("fixed", 4, 1_800_000_000_000)) is None
    three = await store.message("lobby", 3)
    assert three is not None
    reacted = three.react("👍", "bob", False, 5)
    assert reacted is not None
    assert await done_of(store.update, reacted) is None
    assert reacted.react("👍", "bob", False, 6) is None  # already there: no change
    reacted = reacted.react("👍", "carol", False, 6)
    assert reacted is not None
    assert await done_of(store.update, reacted) is None
    await done_of(store.append, StoredMessage("lobby", 4, "bob", "r", False, 1, None, 7, 1))
    two = await store.message("lobby", 2)
    assert two is not None
    assert await done_of(store.update, two.erase(8)) is None
    page = await store.changed_since("lobby", 3, 500)
    assert [(m.seq, m.rev) for m in page.messages] == [(1, 4), (3, 6), (4, 7), (2, 8)]
    assert not page.more
    by_seq = {m.seq: m for m in page.messages}
    assert by_seq[1].text == "fixed" and by_seq[1].edited_ms == 1_800_000_000_000
    assert by_seq[3].reactions == (("👍", ("bob", "carol")),)
    assert by_seq[4].reply_to == 1
    assert by_seq[2].deleted and by_seq[2].text == "" and not by_seq[2].reactions
    wire = by_seq[3].to_wire()
    assert wire.reactions == {"👍": ["bob", "carol"]} and wire.rev == 6
    page = await store.changed_since("lobby", 0, 2)
    assert [m.rev for m in page.messages] == [4, 6] and page.more  # each message once
    latest = await store.latest("lobby", 10)
    assert [m.rev for m in latest.messages] == [4, 8, 6, 7]


async def test_changed_since_pages_by_the_limit(store: Store) -> None:
    for seq in range(1, 601):
        store.append(message(seq, seq), lambda _e: None)
    await done_of(store.sync)
    page = await store.changed_since("lobby", 0, 500)
    assert len(page.messages) == 500 and page.more
    rest = await store.changed_since("lobby", page.messages[-1].rev, 500)
    assert [m.rev for m in rest.messages] == list(range(501, 601)) and not rest.more


async def test_sqlite_refuses_a_rev_gap_and_a_change_of_nothing(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "g.db"))
    await store.open()
    try:
        await done_of(store.create_room, "lobby")
        assert await done_of(store.append, message(1, 1)) is None
        assert isinstance(await done_of(store.append, message(2, 3)), StoreError)
        assert isinstance(await done_of(store.update, message(1, 3).edit("x", 3, 1)), StoreError)
        assert isinstance(await done_of(store.update, message(5, 2)), StoreError)
        assert await done_of(store.update, message(1, 2).edit("x", 2, 1)) is None
    finally:
        await store.close()
    reopened = SqliteStore(str(tmp_path / "g.db"))
    rooms = await reopened.open()
    try:
        assert (rooms["lobby"].last_seq, rooms["lobby"].last_rev) == (1, 2)
    finally:
        await reopened.close()


async def test_a_deleted_text_is_gone_from_the_database_and_wal_bytes(tmp_path: Path) -> None:
    path = tmp_path / "erase.db"
    secret = "the-launch-code-is-XYZZY-4711"
    store = SqliteStore(str(path))
    await store.open()
    try:
        await done_of(store.create_room, "lobby")
        for seq in range(1, 40):  # a few pages of neighbours around it
            text = secret if seq == 20 else f"filler message number {seq} " * 3
            assert await done_of(store.append, message(seq, seq, text)) is None
        with sqlite3.connect(path) as probe:  # the text is really on disk first
            # (busy while the store's checkpoint thread is copying: try again)
            for _ in range(200):
                if probe.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0:
                    break
                await asyncio.sleep(0.05)
        assert secret.encode() in path.read_bytes()
        found = await store.message("lobby", 20)
        assert found is not None
        assert await done_of(store.update, found.erase(40)) is None
        gone = await store.message("lobby", 20)
        assert gone is not None and gone.deleted and gone.text == ""
        wal = Path(f"{path}-wal")
        for file in (path, wal):
            if file.exists():
                assert secret.encode() not in file.read_bytes(), file
    finally:
        await store.close()
    assert secret.encode() not in path.read_bytes()


def write_version_1_database(path: Path) -> None:
    """Schema 1 (MIGRATIONS[0] only) with two rooms, history and a topic."""
    connection = sqlite3.connect(path)
    connection.executescript(MIGRATIONS[0])
    connection.execute("INSERT INTO rooms (name, topic) VALUES ('lobby', 'old topic')")
    connection.execute("INSERT INTO rooms (name, topic) VALUES ('games', '')")
    connection.executemany(
        "INSERT INTO messages VALUES (?, ?, 'alice', ?, 0, ?)",
        [(1, seq, f"old {seq}", 1_600_000_000_000 + seq) for seq in (1, 2, 3)]
        + [(2, seq, f"game {seq}", 1_600_000_000_000 + seq) for seq in (1, 2)],
    )
    connection.execute("PRAGMA user_version = 1")
    connection.commit()
    connection.close()


async def test_a_version_1_database_gets_revs_after_its_highest_seq(tmp_path: Path) -> None:
    path = tmp_path / "v1.db"
    write_version_1_database(path)
    store = SqliteStore(str(path))
    rooms = await store.open()
    try:
        assert (rooms["lobby"].topic, rooms["lobby"].last_seq, rooms["lobby"].last_rev) == (
            "old topic",
            3,
            3,
        )
        assert (rooms["games"].last_seq, rooms["games"].last_rev) == (2, 2)
        page = await store.latest("lobby", 10)
        assert [(m.text, m.rev, m.author) for m in page.messages] == [
            ("old 1", 1, ""),
            ("old 2", 2, ""),
            ("old 3", 3, ""),
        ]
        old = page.messages[0]
        assert await done_of(store.update, old.erase(4)) is None
        assert await done_of(store.append, message(4, 5)) is None
        changed = await store.changed_since("lobby", 3, 500)
        assert [(m.seq, m.rev) for m in changed.messages] == [(1, 4), (4, 5)]
    finally:
        await store.close()
