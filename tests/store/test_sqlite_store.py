"""The SQLite store through a real server: restarts, resume, paging, errors."""

from __future__ import annotations

import asyncio
import functools
import sqlite3
from pathlib import Path

import pytest

from chat_server.server import ChatServer
from chat_server.sqlite_store import SCHEMA_VERSION, SqliteStore, open_database
from chat_server.store import StoredMessage, StoreError
from tests.support import make_config, registered


async def start(path: Path) -> ChatServer:
    server = ChatServer(make_config(db_path=str(path)))
    await server.start()
    return server


async def say_many(port: int, nick: str, room: str, count: int) -> list[int]:
    client = await registered(port, nick, room)
    seqs = []
    for i in range(count):
        ack = await client.request({"type": "say", "room": room, "text": f"{nick} {i}"})
        assert ack["type"] == "ack", ack
        seqs.append(ack["seq"])
    await client.quit()
    return seqs


async def test_restart_keeps_history_topic_and_numbering(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    server = await start(path)
    assert await say_many(server.port, "alice", "lobby", 3) == [1, 2, 3]
    alice = await registered(server.port, "alice", "lobby")
    ack = await alice.request({"type": "topic", "room": "lobby", "topic": "plans"})
    assert ack["type"] == "ack"
    await alice.close()
    await server.close()

    server = await start(path)
    try:
        bob = await registered(server.port, "bob")
        welcome_rooms = (await bob.request({"type": "rooms"}))["rooms"]
        assert [r["room"] for r in welcome_rooms] == ["lobby"]
        room = await bob.request({"type": "join", "room": "lobby"})
        assert room["topic"] == "plans"
        history = await bob.expect("history")
        assert [m["text"] for m in history["messages"]] == ["alice 0", "alice 1", "alice 2"]
        ack = await bob.request({"type": "say", "room": "lobby", "text": "after restart"})
        assert ack["seq"] == 4
        await bob.close()
    finally:
        await server.close()


async def test_join_since_replays_exactly_the_gap(tmp_path: Path) -> None:
    server = await start(tmp_path / "h.db")
    try:
        await say_many(server.port, "alice", "dev", 10)
        bob = await registered(server.port, "bob")
        await bob.request({"type": "join", "room": "dev", "since": 4})
        history = await bob.expect("history")
        assert [m["seq"] for m in history["messages"]] == [5, 6, 7, 8, 9, 10]
        assert history["more"] is False
        await bob.close()
    finally:
        await server.close()


async def test_join_since_after_restart_reads_from_disk(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    server = await start(path)
    await say_many(server.port, "alice", "dev", 7)
    await server.close()
    server = await start(path)  # nothing in memory now: the replay comes from SQLite
    try:
        bob = await registered(server.port, "bob")
        await bob.request({"type": "join", "room": "dev", "since": 2})
        history = await bob.expect("history")
        assert [m["seq"] for m in history["messages"]] == [3, 4, 5, 6, 7]
        assert history["messages"][0]["text"] == "alice 2"
        await bob.close()
    finally:
        await server.close()


async def test_replay_cap_then_paging_after_and_before(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    await fill(path, "big", 1203)
    server = await start(path)
    try:
        bob = await registered(server.port, "bob")
        await bob.request({"type": "join", "room": "big", "since": 0})
        first = await bob.expect("history")
        assert [m["seq"] for m in first["messages"]] == list(range(1, 501))
        assert first["more"] is True
        second = await bob.request({"type": "history", "room": "big", "after": 500, "limit": 500})
        assert [m["seq"] for m in second["messages"]] == list(range(501, 1001))
        assert second["more"] is True
        third = await bob.request({"type": "history", "room": "big", "after": 1000, "limit": 500})
        assert [m["seq"] for m in third["messages"]] == list(range(1001, 1204))
        assert third["more"] is False
        back = await bob.request({"type": "history", "room": "big", "before": 101, "limit": 60})
        assert [m["seq"] for m in back["messages"]] == list(range(41, 101))
        assert back["more"] is True
        start_page = await bob.request({"type": "history", "room": "big", "before": 31})
        assert [m["seq"] for m in start_page["messages"]] == list(range(1, 31))
        assert start_page["more"] is False
        await bob.close()
    finally:
        await server.close()


async def test_concurrent_writers_keep_per_room_order(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    server = await start(path)
    rooms = ["r1", "r2", "r3"]
    try:
        senders = [await registered(server.port, f"s{i}", *rooms) for i in range(4)]
        watcher = await registered(server.port, "watcher", *rooms)

        async def flood(index: int) -> None:
            client = senders[index]
            for i in range(60):
                room = rooms[(index + i) % len(rooms)]
                await client.send({"type": "say", "room": room, "text": f"s{index}-{i}"})

        await asyncio.gather(*(flood(i) for i in range(len(senders))))
        seen: dict[str, list[int]] = {room: [] for room in rooms}
        while sum(map(len, seen.values())) < 240:
            message = await watcher.expect("message")
            seen[message["room"]].append(message["seq"])
        for room in rooms:
            assert seen[room] == list(range(1, len(seen[room]) + 1))
        for client in [*senders, watcher]:
            await client.close()
    finally:
        await server.close()
    store = SqliteStore(str(path))
    await store.open()
    try:
        for room in rooms:
            page = await store.latest(room, 500)
            assert [m.seq for m in page.messages] == seen[room]
            by_sender: dict[str, list[int]] = {}
            for m in page.messages:
                sender, number = m.text.split("-")
                by_sender.setdefault(sender, []).append(int(number))
            assert all(numbers == sorted(numbers) for numbers in by_sender.values())
    finally:
        await store.close()


async def test_second_server_on_the_same_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    server = await start(path)
    try:
        with pytest.raises(StoreError, match="in use by another chat-server"):
            await start(path)
    finally:
        await server.close()


async def test_corrupt_file_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    path.write_bytes(b"this is not a database at all\n" * 200)
    with pytest.raises(StoreError, match="not an SQLite database"):
        await start(path)


async def test_database_locked_by_another_program(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    await fill(path, "lobby", 1)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("PRAGMA locking_mode = EXCLUSIVE")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        store = SqliteStore(str(path))
        store_open = asyncio.create_task(store.open())
        with pytest.raises(StoreError, match="locked"):
            await asyncio.wait_for(store_open, 30)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


async def test_unwritable_location_gives_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "missing-dir" / "h.db"
    with pytest.raises(StoreError, match="cannot write"):
        await start(path)


async def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(StoreError, match="newer release"):
        await start(path)


async def test_store_pages_directly(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    await fill(path, "lobby", 20)
    store = SqliteStore(str(path))
    rooms = await store.open()
    try:
        assert rooms["lobby"].last_seq == 20
        latest = await store.latest("lobby", 5)
        assert [m.seq for m in latest.messages] == [16, 17, 18, 19, 20] and latest.more
        after = await store.after("lobby", 18, 5)
        assert [m.seq for m in after.messages] == [19, 20] and not after.more
        before = await store.before("lobby", 3, 5)
        assert [m.seq for m in before.messages] == [1, 2] and not before.more
        assert (await store.latest("nowhere", 5)).messages == []
    finally:
        await store.close()


async def test_append_after_close_is_refused(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "h.db"))
    await store.open()
    await store.close()
    errors: list[BaseException | None] = []
    store.append(StoredMessage("lobby", 1, "a", "t", False, 0), errors.append)
    assert isinstance(errors[0], StoreError)


async def fill(path: Path, room: str, count: int) -> None:
    """Write `count` messages to `room` through the store, waiting for every commit."""
    store = SqliteStore(str(path))
    records = await store.open()
    first = records[room].last_seq + 1 if room in records else 1
    loop = asyncio.get_running_loop()
    committed: asyncio.Future[None] = loop.create_future()
    remaining = count

    def done(error: BaseException | None) -> None:
        nonlocal remaining
        assert error is None, error
        remaining -= 1
        if remaining == 0:
            committed.set_result(None)

    store.create_room(room)
    for seq in range(first, first + count):
        store.append(StoredMessage(room, seq, "filler", f"m{seq}", False, 1_700_000_000_000), done)
    await committed
    await store.close()


def record_done(events: list[str], seq: int, error: BaseException | None) -> None:
    events.append(f"done {seq} {error}")


async def test_after_commits_runs_once_a_batch_of_callbacks_has_run(tmp_path: Path) -> None:
    # The server flushes output in this hook, so it must come after the callbacks
    # that queued the broadcasts, not before them.
    store = SqliteStore(str(tmp_path / "h.db"))
    await store.open()
    events: list[str] = []
    flushed = asyncio.Event()

    def after_commits() -> None:
        events.append("after")
        flushed.set()

    store.after_commits = after_commits
    try:
        store.create_room("lobby")
        for seq in (1, 2, 3):
            message = StoredMessage("lobby", seq, "alice", f"m{seq}", False, 0)
            store.append(message, functools.partial(record_done, events, seq))
        await asyncio.wait_for(flushed.wait(), 10)
        assert events == ["done 1 None", "done 2 None", "done 3 None", "after"]
    finally:
        await store.close()


@pytest.mark.parametrize(("fsync", "level"), [(False, 1), (True, 2)])
def test_fsync_chooses_full_synchronous(tmp_path: Path, fsync: bool, level: int) -> None:
    connection = open_database(str(tmp_path / "h.db"), fsync=fsync)
    try:
        assert connection.execute("PRAGMA synchronous").fetchone()[0] == level  # 1 NORMAL, 2 FULL
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        connection.close()


async def test_fsync_server_stores_and_serves_history(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    server = ChatServer(make_config(db_path=str(path), fsync=True))
    await server.start()
    try:
        assert await say_many(server.port, "alice", "lobby", 3) == [1, 2, 3]
    finally:
        await server.close()
    store = SqliteStore(str(path))
    await store.open()
    try:
        page = await store.latest("lobby", 10)
        assert [m.text for m in page.messages] == ["alice 0", "alice 1", "alice 2"]
    finally:
        await store.close()


def messages_in_database_file_alone(path: Path, copy: Path) -> int | None:
    """Messages the database file holds by itself (its WAL left out); None if mid-write."""
    copy.write_bytes(path.read_bytes())
    connection = sqlite3.connect(copy)
    try:
        return int(connection.execute("SELECT COUNT(*) FROM messages").fetchone()[0])
    except sqlite3.DatabaseError:
        return None
    finally:
        connection.close()


async def test_commits_reach_the_database_file_while_the_store_runs(tmp_path: Path) -> None:
    # The writer never checkpoints (so no commit waits for the disk): the checkpoint
    # thread copies the WAL into the database file, about once a second.
    path = tmp_path / "h.db"
    store = SqliteStore(str(path))
    await store.open()
    try:
        loop = asyncio.get_running_loop()
        committed: list[asyncio.Future[BaseException | None]] = []
        store.create_room("lobby")
        for seq in range(1, 51):
            future: asyncio.Future[BaseException | None] = loop.create_future()
            committed.append(future)
            store.append(StoredMessage("lobby", seq, "a", f"m{seq}", False, 0), future.set_result)
        assert await asyncio.gather(*committed) == [None] * 50
        found = None
        for _ in range(200):
            found = messages_in_database_file_alone(path, tmp_path / "copy.db")
            if found == 50:
                break
            await asyncio.sleep(0.05)
        assert found == 50
    finally:
        await store.close()


async def test_closing_leaves_every_commit_in_the_database_file(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    await fill(path, "lobby", 30)
    await fill(path, "lobby", 30)  # reopened: the checkpoint thread starts again
    assert messages_in_database_file_alone(path, tmp_path / "copy.db") == 60
