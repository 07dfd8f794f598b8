"""The store stays gap-free and whole when commits fail (issue: data integrity)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import resource
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest

from chat_server.server import ChatServer
from chat_server.sqlite_store import SqliteStore
from chat_server.store import CommitCallback, StoredMessage, StoreError
from tests.support import TIMEOUT, hermetic_env, make_config, registered, run_command

BUSY = 0.05  # seconds a commit waits for the lock the test holds


@asynccontextmanager
async def sqlite_server(path: Path) -> AsyncIterator[ChatServer]:
    server = ChatServer(make_config(db_path=str(path)), SqliteStore(str(path), busy_timeout=BUSY))
    await server.start()
    try:
        yield server
    finally:
        await server.close()


@contextmanager
def write_lock(path: Path) -> Iterator[None]:
    """Hold SQLite's write lock from another connection: every commit fails while held."""
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


async def test_failed_commit_takes_no_seq(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    async with sqlite_server(path) as server:
        alice = await registered(server.port, "alice", "lobby")
        assert (await alice.request({"type": "say", "room": "lobby", "text": "one"}))["seq"] == 1
        with write_lock(path):
            failed = [
                await alice.request({"type": "say", "room": "lobby", "text": f"lost {n}"})
                for n in range(2)
            ]
        assert [(e["type"], e["code"]) for e in failed] == [("error", "unavailable")] * 2
        ack = await alice.request({"type": "say", "room": "lobby", "text": "two"})
        assert ack["seq"] == 2
        bob = await registered(server.port, "bob")
        await bob.request({"type": "join", "room": "lobby", "since": 1})
        replay = await bob.expect("history")
        assert [(m["seq"], m["text"]) for m in replay["messages"]] == [(2, "two")]
        await alice.close()
        await bob.close()
    async with sqlite_server(path) as server:
        carol = await registered(server.port, "carol")
        page = await carol.request({"type": "history", "room": "lobby", "limit": 10})
        assert [(m["seq"], m["text"]) for m in page["messages"]] == [(1, "one"), (2, "two")]
        assert (await carol.request({"type": "join", "room": "lobby"}))["type"] == "room"
        ack = await carol.request({"type": "say", "room": "lobby", "text": "three"})
        assert ack["seq"] == 3
        await carol.close()


async def test_room_made_while_commits_fail_is_refused_then_made(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    async with sqlite_server(path) as server:
        alice = await registered(server.port, "alice")
        with write_lock(path):
            refused = await alice.request({"type": "join", "room": "new"})
            assert (refused["type"], refused["code"]) == ("error", "unavailable")
            listed = await alice.request({"type": "rooms"})
            assert listed["rooms"] == []  # nothing half done
        assert (await alice.request({"type": "join", "room": "new"}))["type"] == "room"
        ack = await alice.request({"type": "say", "room": "new", "text": "kept"})
        assert ack["type"] == "ack" and ack["seq"] == 1
        await alice.close()
    async with sqlite_server(path) as server:
        bob = await registered(server.port, "bob")
        assert (await bob.request({"type": "rooms"}))["rooms"][0]["room"] == "new"
        page = await bob.request({"type": "history", "room": "new"})
        assert [m["text"] for m in page["messages"]] == ["kept"]
        await bob.close()


async def test_one_bad_write_does_not_fail_the_batch(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "h.db"))
    await store.open()
    try:
        results: dict[str, BaseException | None] = {}
        done = asyncio.Event()

        def record(name: str) -> CommitCallback:
            def callback(error: BaseException | None) -> None:
                results[name] = error
                if len(results) == 4:
                    done.set()

            return callback

        store.create_room("good", record("room"))
        store.append(StoredMessage("good", 1, "a", "fine", False, 0), record("good 1"))
        store.append(StoredMessage("ghost", 1, "a", "no room", False, 0), record("ghost"))
        store.append(StoredMessage("good", 3, "a", "a gap", False, 0), record("gap"))
        await asyncio.wait_for(done.wait(), 5)
        assert results["room"] is None and results["good 1"] is None
        assert isinstance(results["ghost"], StoreError)
        assert isinstance(results["gap"], StoreError)
        page = await store.latest("good", 10)
        assert [m.text for m in page.messages] == ["fine"]
    finally:
        await store.close()


async def test_second_server_through_another_path_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "h.db"
    (tmp_path / "link.db").symlink_to(path)
    (tmp_path / "sub").mkdir()
    first = ChatServer(make_config(db_path=str(path)))
    await first.start()
    try:
        os.link(path, tmp_path / "hard.db")
        others = [
            str(tmp_path / "link.db"),
            str(tmp_path / "hard.db"),
            str(tmp_path / "sub" / ".." / "h.db"),
            path.as_uri(),
            path.as_uri() + "?cache=private",
        ]
        for other in others:
            with pytest.raises(StoreError, match="in use by another chat-server"):
                await ChatServer(make_config(db_path=other)).start()
    finally:
        await first.close()
    uri_server = ChatServer(make_config(db_path=path.as_uri()))
    await uri_server.start()  # a file: URI reaches the same file once nobody holds it
    try:
        alice = await registered(uri_server.port, "alice", "lobby")
        assert (await alice.request({"type": "say", "room": "lobby", "text": "hi"}))["seq"] == 1
        await alice.close()
    finally:
        await uri_server.close()
    assert not (tmp_path / "file:").exists()


@pytest.mark.slow
async def test_a_full_disk_refuses_writes_then_recovers(tmp_path: Path) -> None:
    limit = 512 * 1024

    def small_disk() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    db = str(tmp_path / "h.db")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "chat_server", "--host", "127.0.0.1", "--port", "0",
        "--db", db, "--rate", "0",
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE, preexec_fn=small_disk, env=hermetic_env(str(tmp_path)),
    )  # fmt: skip
    assert process.stderr is not None
    log = b""
    try:
        while not (found := re.search(rb"listening on \S+:(\d+)", log)):
            line = await asyncio.wait_for(process.stderr.readline(), 4 * TIMEOUT)
            assert line, log
            log += line
        alice = await registered(int(found.group(1)), "alice", "lobby")
        acked: list[int] = []
        for n in range(400):  # 400 x 4 KB: the history file outgrows the limit
            reply = await alice.request(
                {"type": "say", "room": "lobby", "text": f"{n} " + "x" * 3990}
            )
            if reply["type"] == "error":
                assert reply["code"] == "unavailable", reply
                break
            acked.append(reply["seq"])
        else:
            raise AssertionError("the disk never filled")
        assert acked == list(range(1, len(acked) + 1))
        resource.prlimit(process.pid, resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        ack = await alice.request({"type": "say", "room": "lobby", "text": "after"})
        assert (ack["type"], ack["seq"]) == ("ack", len(acked) + 1), ack
        await alice.close()
    finally:
        process.kill()
        await process.wait()
    code, out, err = await run_command("history", "lobby", "--db", db, "--limit", "1000")
    assert code == 0, err
    seqs = [json.loads(line)["seq"] for line in out.splitlines()]
    assert seqs == list(range(1, len(acked) + 2))
