"""Search in both stores: query rules, hostile queries, edits and deletes by SQL, paging,
and the migration that builds the FTS5 index for a version-1 database."""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from chat_server.search import (
    SearchCursor,
    SearchIndex,
    index_of,
    matches,
    parse_query,
    to_fts5,
)
from chat_server.sqlite_search import SEARCH_MARK_MIGRATION, SEARCH_MIGRATION
from chat_server.sqlite_store import MIGRATIONS, SCHEMA_VERSION, SqliteStore, statements
from chat_server.store import MemoryStore, Store, StoredMessage

# Messages above their room's mark: stored, not yet in the FTS5 index.
UNINDEXED = (
    "SELECT COUNT(*) FROM messages m JOIN message_search_indexed i"
    " ON i.room_id = m.room_id AND m.seq > i.seq"
)

TEXTS = [
    "the deployment went fine",
    "Café au lait, s'il vous plaît",
    "we should deploy on friday",
    "NEAR the end AND or NOT",
    "a phrase right here",
    "here right phrase a",
    "col: value ^ caret (brackets)",
    "nothing to see",
]


async def fill(store: Store, room: str, texts: list[str], start_ts: int = 1_000) -> None:
    loop = asyncio.get_running_loop()
    created: asyncio.Future[BaseException | None] = loop.create_future()
    store.create_room(room, created.set_result)
    assert await created is None
    for seq, text in enumerate(texts, start=1):
        done: asyncio.Future[BaseException | None] = loop.create_future()
        sender = "alice" if seq % 2 else "Bob"
        store.append(StoredMessage(room, seq, sender, text, False, start_ts + seq), done.set_result)
        assert await done is None
    if isinstance(store, SqliteStore) and store.path in INDEXED:
        await indexed(store.path)


# Stores whose tests wait, after each fill, until the FTS5 index holds every message
# (otherwise a search right after a commit mostly scans the pending ones).
INDEXED: set[str] = set()


async def indexed(path: str) -> None:
    """Wait until the writer has moved every stored message into the FTS5 index."""
    other = sqlite3.connect(path, isolation_level=None)
    try:
        for _ in range(200):
            if other.execute(UNINDEXED).fetchone()[0] == 0:
                return
            await asyncio.sleep(0.02)
        raise AssertionError("the writer never indexed the pending messages")
    finally:
        other.close()


@pytest.fixture(params=["memory", "sqlite", "sqlite-indexed"])
async def store(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Store]:
    path = str(tmp_path / "db")
    made: Store = MemoryStore() if request.param == "memory" else SqliteStore(path)
    if request.param == "sqlite-indexed":
        monkeypatch.setattr("chat_server.sqlite_store._INDEX_DELAY", 0.0)
        INDEXED.add(path)
    await made.open()
    yield made
    await made.close()
    INDEXED.discard(path)


def searcher(store: Store) -> SearchIndex:
    index = index_of(store)
    assert index is not None
    return index


async def texts_for(store: Store, query: str, **kwargs: object) -> list[str]:
    page = await searcher(store).search(
        parse_query(query),
        kwargs.get("rooms"),  # type: ignore[arg-type]
        kwargs.get("sender"),  # type: ignore[arg-type]
        int(kwargs.get("limit", 50)),  # type: ignore[call-overload]
        None,
    )
    return [m.text for m in page.messages]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("deployment", ["the deployment went fine"]),
        ("deploy*", ["we should deploy on friday", "the deployment went fine"]),
        ("DEPLOY", ["we should deploy on friday"]),
        ("cafe", ["Café au lait, s'il vous plaît"]),
        ("PLAIT cafe", ["Café au lait, s'il vous plaît"]),
        ('"a phrase"', ["a phrase right here"]),
        ('"phrase a"', ["here right phrase a"]),
        ("phrase a", ["here right phrase a", "a phrase right here"]),
        ('"right her*"', ["a phrase right here"]),
        ("deploy friday", ["we should deploy on friday"]),
        ("deploy nothing", []),
    ],
)
async def test_query_rules(store: Store, query: str, expected: list[str]) -> None:
    await fill(store, "lobby", TEXTS)
    assert await texts_for(store, query) == expected


# Operators typed by a person are words (or separators), never syntax, never an error.
HOSTILE = [
    ('"', []),
    ("*", []),
    ("**", []),
    ("AND", ["NEAR the end AND or NOT"]),
    ("OR NOT", ["NEAR the end AND or NOT"]),
    ("deploy OR nothing", []),
    ("NOT deploy", []),
    ("NEAR(", ["NEAR the end AND or NOT"]),
    ("NEAR(deploy friday)", []),
    ("NEAR(end, 2)", []),
    ("col:", ["col: value ^ caret (brackets)"]),
    ("text:deploy", []),
    ("^", []),
    ("^caret", ["col: value ^ caret (brackets)"]),
    ('"unbalanced', []),
    ('"a phrase', ["a phrase right here"]),
    ('phrase"', ["here right phrase a", "a phrase right here"]),
    ("(brackets", ["col: value ^ caret (brackets)"]),
    ("brackets)", ["col: value ^ caret (brackets)"]),
    (")(", []),
    ("{col} : deploy", []),
    ("-deploy", ["we should deploy on friday"]),
    ("+deploy", ["we should deploy on friday"]),
    ("de*ploy", []),
    ("'", []),
    ("s'il", ["Café au lait, s'il vous plaît"]),
    ("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~" * 7, []),
]


@pytest.mark.parametrize(("query", "expected"), HOSTILE)
async def test_hostile_queries_neither_fail_nor_match_wrongly(
    store: Store, query: str, expected: list[str]
) -> None:
    await fill(store, "lobby", TEXTS)
    assert await texts_for(store, query[:200]) == expected


def test_every_word_is_quoted_in_the_fts5_expression() -> None:
    assert (
        to_fts5(parse_query('NEAR( "a b" c* d"e')) == '"near" AND "a b" AND "c" * AND "d" AND "e"'
    )
    assert to_fts5(parse_query('x""y')) == '"x" AND "y"'
    assert parse_query('!!! ** "" ^') == []
    assert matches(parse_query("écolE"), "une ecole") is True


async def test_room_and_from_filters(store: Store) -> None:
    await fill(store, "lobby", TEXTS)
    await fill(store, "games", ["deploy the dragons"], start_ts=5_000)
    assert await texts_for(store, "deploy*") == [
        "deploy the dragons",
        "we should deploy on friday",
        "the deployment went fine",
    ]
    assert await texts_for(store, "deploy*", rooms=["lobby"]) == [
        "we should deploy on friday",
        "the deployment went fine",
    ]
    assert await texts_for(store, "deploy*", sender="ALICE") == [
        "deploy the dragons",
        "we should deploy on friday",
        "the deployment went fine",
    ]
    assert await texts_for(store, "deploy*", sender="alice", rooms=["games"]) == [
        "deploy the dragons"
    ]
    bob = await texts_for(store, "deploy*", sender="bob")
    assert bob == []


async def test_paging_over_rooms_has_no_gaps_and_no_repeats(store: Store) -> None:
    # Interleaved rooms: ts order alternates between them.
    loop = asyncio.get_running_loop()
    for room in ("a", "b", "c"):
        created: asyncio.Future[BaseException | None] = loop.create_future()
        store.create_room(room, created.set_result)
        await created
    expected: list[tuple[str, int]] = []
    seqs = {"a": 0, "b": 0, "c": 0}
    for n in range(90):
        room = "abc"[n % 3] if n % 7 else "a"
        seqs[room] += 1
        text = f"needle number {n}" if n % 4 else f"hay {n}"
        done: asyncio.Future[BaseException | None] = loop.create_future()
        store.append(
            StoredMessage(room, seqs[room], "u", text, False, 10_000 + n // 2), done.set_result
        )
        await done
        if n % 4:
            expected.append((room, seqs[room]))
    index = searcher(store)
    seen: list[tuple[str, int]] = []
    cursor: SearchCursor | None = None
    while True:
        page = await index.search(parse_query("needle"), None, None, 7, cursor)
        seen.extend((m.room, m.seq) for m in page.messages)
        if not page.more:
            break
        cursor = page.cursor
        assert cursor is not None
        assert SearchCursor.decode(cursor.encode()) == cursor
    assert len(seen) == len(set(seen)) == len(expected)
    assert set(seen) == set(expected)
    page_all = await index.search(parse_query("needle"), None, None, 100, None)
    assert [(m.room, m.seq) for m in page_all.messages] == seen


async def test_an_update_of_the_text_by_sql_is_found_by_its_new_text_only(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    store = SqliteStore(path)
    await store.open()
    await fill(store, "lobby", ["original wording here", "something else"])
    assert await texts_for(store, "original") == ["original wording here"]
    # Another part of the server edits and deletes with plain SQL; the triggers keep up.
    other = sqlite3.connect(path, isolation_level=None)
    other.execute(
        "UPDATE messages SET text = 'replacement words' WHERE seq = 1 AND room_id = "
        "(SELECT id FROM rooms WHERE name = 'lobby')"
    )
    assert await texts_for(store, "original") == []
    assert await texts_for(store, "replacement") == ["replacement words"]
    other.execute("UPDATE messages SET text = '' WHERE seq = 2")
    assert await texts_for(store, "something") == []
    assert await texts_for(store, "else") == []
    other.execute("INSERT INTO message_search (message_search) VALUES ('integrity-check')")
    other.close()
    await store.close()


async def test_edits_and_deletes_by_sql_once_the_messages_are_indexed(tmp_path: Path) -> None:
    path = str(tmp_path / "db")
    store = SqliteStore(path)
    await store.open()
    await fill(store, "lobby", ["original wording here", "something else", "third one"])
    other = sqlite3.connect(path, isolation_level=None)
    for _ in range(100):  # the writer indexes pending messages within half a second
        if other.execute(UNINDEXED).fetchone()[0] == 0:
            break
        await asyncio.sleep(0.05)
    assert other.execute(UNINDEXED).fetchone()[0] == 0
    assert await texts_for(store, "original") == ["original wording here"]
    other.execute("UPDATE messages SET text = 'replacement words' WHERE seq = 1")
    other.execute("UPDATE messages SET text = '' WHERE seq = 2")
    other.execute("DELETE FROM messages WHERE seq = 3")
    assert await texts_for(store, "original") == []
    assert await texts_for(store, "replacement") == ["replacement words"]
    assert await texts_for(store, "something") == []
    assert await texts_for(store, "third") == []
    other.close()
    await store.close()  # indexes what is still pending
    check = sqlite3.connect(path, isolation_level=None)
    assert check.execute(UNINDEXED).fetchone()[0] == 0
    check.execute("INSERT INTO message_search (message_search) VALUES ('integrity-check')")
    hits = check.execute(
        "SELECT rowid FROM message_search WHERE message_search MATCH '\"replacement\"'"
    ).fetchall()
    assert hits == [((1 << 32) + 1,)]
    check.close()


async def test_the_memory_store_never_finds_an_erased_text() -> None:
    store = MemoryStore()
    await store.open()
    await fill(store, "lobby", ["x"])
    assert await texts_for(store, "x") == ["x"]
    store._rooms["lobby"].messages[0] = StoredMessage("lobby", 1, "alice", "", False, 1)
    assert await texts_for(store, "x") == []


def test_migration_statements_keep_trigger_bodies_whole() -> None:
    for migration in (SEARCH_MIGRATION, SEARCH_MARK_MIGRATION):
        assert migration in MIGRATIONS
        found = statements(migration)
        assert any(
            s.startswith("CREATE TRIGGER message_search_update") and s.endswith("END;")
            for s in found
        )


async def test_a_version_1_database_gets_its_index_built(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = str(tmp_path / "old.sqlite3")
    old = sqlite3.connect(path, isolation_level=None)
    old.executescript(MIGRATIONS[0])
    old.execute("PRAGMA user_version = 1")
    old.execute("INSERT INTO rooms (name) VALUES ('lobby')")
    old.executemany(
        "INSERT INTO messages VALUES (1, ?, 'alice', ?, 0, ?)",
        [(n, f"old message {n} Müller", 1000 + n) for n in range(1, 301)],
    )
    old.close()
    monkeypatch.setattr("chat_server.sqlite_store._LARGE_MIGRATION", 100)
    caplog.set_level(logging.INFO, logger="chat_server.sqlite_store")
    store = SqliteStore(path)
    await store.open()
    try:
        assert sqlite3.connect(path).execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert any("over 300 messages" in r.getMessage() for r in caplog.records)
        page = await searcher(store).search(parse_query("muller 299"), None, None, 5, None)
        assert [m.seq for m in page.messages] == [299]
        page = await searcher(store).search(parse_query("mull*"), ["lobby"], None, 5, None)
        assert [m.seq for m in page.messages] == [300, 299, 298, 297, 296]
        assert page.more
        await fill(store, "new", ["fresh müller"])
        assert (await texts_for(store, "fresh"))[0] == "fresh müller"
    finally:
        await store.close()


async def test_a_version_5_database_moves_from_the_queue_to_marks(tmp_path: Path) -> None:
    path = str(tmp_path / "v5.sqlite3")
    old = sqlite3.connect(path, isolation_level=None)
    for version, migration in enumerate(MIGRATIONS[:5], start=1):
        for statement in statements(migration):
            old.execute(statement)
        old.execute(f"PRAGMA user_version = {version}")
    old.execute("INSERT INTO rooms (name) VALUES ('lobby'), ('dev')")
    insert = (
        "INSERT INTO messages (room_id, seq, sender, text, action, ts_ms) VALUES (?, ?, ?, ?, 0, ?)"
    )
    old.executemany(insert, [(1, n, "alice", f"indexed wombat {n}", 1000 + n) for n in (1, 2)])
    old.execute(
        "INSERT INTO message_search (rowid, text) SELECT key, 'indexed wombat ' ||"
        " (key & 4294967295) FROM message_search_pending"
    )  # the old writer's flush
    old.execute("DELETE FROM message_search_pending")
    old.executemany(insert, [(1, 3, "bob", "pending wombat 3", 1003), (2, 1, "bob", "dev x", 5)])
    old.execute("UPDATE messages SET text = 'edited kangaroo' WHERE room_id = 1 AND seq = 2")
    assert old.execute("SELECT COUNT(*) FROM message_search_pending").fetchone()[0] == 3
    old.close()
    store = SqliteStore(path)
    await store.open()
    try:
        wal = await asyncio.to_thread(os.path.getsize, f"{path}-wal")
        assert wal == 0  # the rebuild's WAL is not left behind
        check = sqlite3.connect(path, isolation_level=None)
        assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {name for (name,) in check.execute("SELECT name FROM sqlite_master")}
        assert "message_search_pending" not in tables
        assert "message_search_insert" not in tables  # a new message needs no trigger
        marks = check.execute("SELECT room_id, seq FROM message_search_indexed").fetchall()
        assert sorted(marks) == [(1, 3), (2, 1)]
        assert check.execute(UNINDEXED).fetchone()[0] == 0
        config = dict(check.execute("SELECT k, v FROM message_search_config").fetchall())
        assert (config["automerge"], config["crisismerge"]) == (16, 64)
        check.execute("INSERT INTO message_search (message_search) VALUES ('integrity-check')")
        found = check.execute(
            "SELECT rowid FROM message_search WHERE message_search MATCH '\"wombat\"'"
        ).fetchall()
        assert sorted(found) == [((1 << 32) + 1,), ((1 << 32) + 3,)]
        check.close()
        assert await texts_for(store, "wombat") == ["pending wombat 3", "indexed wombat 1"]
        assert await texts_for(store, "kangaroo") == ["edited kangaroo"]
        assert await texts_for(store, "k*") == ["edited kangaroo"]  # one-character prefix
        assert await texts_for(store, "x", rooms=["dev"]) == ["dev x"]
        await fill(store, "new", ["fresh wombat"], start_ts=2_000)
        assert await texts_for(store, "wombat") == [
            "fresh wombat",
            "pending wombat 3",
            "indexed wombat 1",
        ]
    finally:
        await store.close()


def segments(connection: sqlite3.Connection) -> int:
    """How many segments the FTS5 index has (from its structure record, rowid 10)."""
    row = connection.execute("SELECT block FROM message_search_data WHERE id = 10").fetchone()
    block = bytes(row[0])
    position, values = 4, list[int]()  # after the 4-byte cookie: varints nLevel, nSegment, ...
    while len(values) < 2:
        value = 0
        while True:
            byte = block[position]
            position += 1
            value = (value << 7) | (byte & 0x7F)
            if byte < 0x80:
                break
        values.append(value)
    return values[1]


async def test_an_idle_writer_merges_the_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("chat_server.sqlite_store._INDEX_BATCH", 10)  # a segment per group
    monkeypatch.setattr("chat_server.sqlite_store._MERGE_IDLE", 0.2)
    path = str(tmp_path / "db")
    store = SqliteStore(path)
    await store.open()
    loop = asyncio.get_running_loop()
    created: asyncio.Future[BaseException | None] = loop.create_future()
    store.create_room("lobby", created.set_result)
    assert await created is None
    for group in range(12):
        done: list[asyncio.Future[BaseException | None]] = []
        for seq in range(group * 10 + 1, group * 10 + 11):
            future: asyncio.Future[BaseException | None] = loop.create_future()
            store.append(
                StoredMessage("lobby", seq, "alice", f"needle {seq}", False, seq), future.set_result
            )
            done.append(future)
        assert await asyncio.gather(*done) == [None] * 10
    other = sqlite3.connect(path, isolation_level=None)
    try:
        for _ in range(300):  # the writer merges once the index has been quiet 0.2 s
            if other.execute(UNINDEXED).fetchone()[0] == 0 and segments(other) < 4:
                break
            await asyncio.sleep(0.02)
        assert segments(other) < 4
        other.execute("INSERT INTO message_search (message_search) VALUES ('integrity-check')")
    finally:
        other.close()
    page = await store.search(parse_query("needle"), None, None, 200, None)
    assert [m.seq for m in page.messages] == list(range(120, 0, -1))
    await store.close()
