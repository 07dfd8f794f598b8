"""The files index contract, over memory, SQLite and Redis (a real redis-server).

The same rules on each: records by token, by id and by message; the quota kept over
distinct blobs with the oldest live files expired first; a blob given up is "doomed"
until the caller says it is unlinked, and meanwhile a record with its hash waits. On
Redis also between two indexes (two nodes) on one chat.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from chat_server.files.index import FileIndex, FileRecord, MemoryFileIndex, SqliteFileIndex
from chat_server.files.redis_index import RedisFileIndex
from tests.redis_support import RedisServer

MakeIndex = Callable[[], Awaitable[FileIndex]]


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def make_index(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[MakeIndex]:
    """Open indexes of one kind; on SQLite and Redis each one made sees the same data."""
    made: list[FileIndex] = []
    redis_server: RedisServer | None = None
    if request.param == "redis":
        redis_server = RedisServer(tmp_path)
        await redis_server.start()

    async def make() -> FileIndex:
        index: FileIndex
        if request.param == "memory":
            index = MemoryFileIndex()
        elif request.param == "sqlite":
            index = SqliteFileIndex(tmp_path / "files.sqlite3")
        else:
            assert redis_server is not None
            index = RedisFileIndex(redis_server.url, node=f"n{len(made)}")
        await index.open()
        made.append(index)
        return index

    try:
        yield make
    finally:
        for index in made:
            await index.close()
        if redis_server is not None:
            await redis_server.stop()


def record(n: int, size: int = 10, sha: int | None = None, created: int = 0) -> FileRecord:
    return FileRecord(
        id=f"id{n}",
        token=f"tok{n}",
        name=f"f{n}",
        size=size,
        sha256=f"{sha if sha is not None else n:064x}",
        sender="alice",
        room="lobby",
        to=None,
        created_ms=created or 1000 + n,
        host="h",
    )


async def test_records_by_token_id_and_message(make_index: MakeIndex) -> None:
    index = await make_index()
    for n in (1, 2, 3):
        assert await index.add(record(n), quota=1000) is not None
    assert await index.by_token("tok2") == record(2)
    assert await index.by_token("nothing") is None
    index.set_seq("id1", 9)
    await asyncio.sleep(0.05)  # on Redis the link is written in the background
    linked = index.by_message("lobby", 9)
    assert linked is not None and linked.id == "id1" and linked.seq == 9
    assert index.has_messages()
    removed = await index.remove_for_message("lobby", 9)
    assert removed.removed is not None and removed.removed.id == "id1"
    assert removed.doomed == [f"{1:064x}"]
    assert index.by_id("id1") is None and await index.by_token("tok1") is None
    assert (await index.remove_for_message("lobby", 9)).removed is None
    gone = await index.remove("id3")
    assert gone.removed == record(3) and await index.by_token("tok3") is None
    assert (await index.remove("id3")).removed is None


async def test_the_quota_expires_the_oldest_distinct_blobs_first(make_index: MakeIndex) -> None:
    index = await make_index()
    # Created out of order: expiry follows creation time, not the order of adding.
    assert await index.add(record(1, created=3000), quota=25) is not None
    assert await index.add(record(2, created=1000), quota=25) is not None
    third = await index.add(record(3, created=4000), quota=25)  # 30 > 25: the oldest goes
    assert third is not None
    assert [old.id for old in third.expired] == ["id2"]
    assert third.doomed == [f"{2:064x}"]
    expired = index.by_id("id2")
    assert expired is not None and expired.expired
    assert await index.by_token("tok2") is None
    # The same bytes again take no room: nothing expires, and the blob is not doomed.
    again = await index.add(record(4, sha=3, created=5000), quota=25)
    assert again is not None and again.expired == [] and again.doomed == []
    assert (await index.remove("id3")).doomed == []  # record 4 still needs the blob
    assert (await index.remove("id4")).doomed == [f"{3:064x}"]


async def test_a_doomed_hash_waits_until_its_blob_is_unlinked(make_index: MakeIndex) -> None:
    index = await make_index()
    await index.add(record(1), quota=100)
    change = await index.remove("id1")
    assert change.doomed == [f"{1:064x}"]
    assert await index.add(record(2, sha=1), quota=100) is None  # being unlinked: wait
    await index.blobs_deleted(change.doomed)
    assert await index.add(record(2, sha=1), quota=100) is not None
    # Blobs found on disk: only those no live record needs are doomed, once.
    unused = f"{7:064x}"
    assert await index.doom_unused([f"{1:064x}", unused]) == [unused]
    await index.blobs_deleted([unused])


async def test_a_deleted_message_opens_nothing_here_at_once(make_index: MakeIndex) -> None:
    index = await make_index()
    await index.add(record(1), quota=100)
    index.set_seq("id1", 5)
    index.hide_message("lobby", 5)  # before the delete reaches the index
    assert await index.by_token("tok1") is None


async def test_records_are_kept_across_a_reopen(make_index: MakeIndex) -> None:
    """SQLite and Redis keep records for the next index opened; memory keeps none."""
    first = await make_index()
    await first.add(record(1), quota=15)
    first.set_seq("id1", 3)
    await asyncio.sleep(0.05)
    await first.add(record(2), quota=15)  # expires the first
    second = await make_index()
    if isinstance(first, MemoryFileIndex):
        assert second.by_message("lobby", 3) is None
        assert await second.by_token("tok2") is None
        return
    kept = second.by_message("lobby", 3)
    assert kept is not None and kept.id == "id1" and kept.expired
    assert await second.by_token("tok2") == record(2)


# --- Redis: two nodes on one chat --------------------------------------------------------


async def events(url: str) -> list[dict[str, str]]:
    client: Any = aioredis.Redis.from_url(url, decode_responses=True)
    try:
        return [fields for _id, fields in await client.xrange("lanchat:events")]
    finally:
        await client.aclose()


@pytest.fixture
async def two_nodes(tmp_path: Path) -> AsyncIterator[tuple[RedisFileIndex, RedisFileIndex, str]]:
    server = RedisServer(tmp_path)
    await server.start()
    a, b = RedisFileIndex(server.url, "a"), RedisFileIndex(server.url, "b")
    await a.open()
    await b.open()
    try:
        yield a, b, server.url
    finally:
        await a.close()
        await b.close()
        await server.stop()


async def test_two_nodes_share_one_index(
    two_nodes: tuple[RedisFileIndex, RedisFileIndex, str],
) -> None:
    a, b, url = two_nodes
    await a.add(record(1), quota=15)
    a.set_seq("id1", 4)
    await asyncio.sleep(0.05)
    assert await b.by_token("tok1") == replace(record(1), seq=4)
    # b's view follows a's events, as its reader would hand them over.
    for fields in await events(url):
        if fields.get("k") == "file" and fields["n"] != "b":
            b.apply(fields)
    seen = b.by_message("lobby", 4)
    assert seen is not None and seen.id == "id1"
    # The quota is the chat's: b's file expires a's.
    change = await b.add(record(2), quota=15)
    assert change is not None and [old.id for old in change.expired] == ["id1"]
    assert await a.by_token("tok1") is None
    # A delete through a reaches b at once.
    assert (await a.remove("id2")).removed is not None
    assert await b.by_token("tok2") is None


async def test_nodes_adding_at_once_never_pass_the_quota(
    two_nodes: tuple[RedisFileIndex, RedisFileIndex, str],
) -> None:
    a, b, _url = two_nodes
    quota = 100
    adds = [(a if n % 2 else b).add(record(n, size=30), quota) for n in range(1, 21)]
    changes = await asyncio.gather(*adds)
    assert all(change is not None for change in changes)
    live = [n for n in range(1, 21) if await a.by_token(f"tok{n}") is not None]
    assert len(live) * 30 <= quota and len(live) == 3
    expired = sorted(old.id for change in changes if change for old in change.expired)
    assert len(expired) == 17 and len(set(expired)) == 17  # each expired once
