"""One contract suite for every `MessageLog` (memory, SQLite, Redis): the event-log seam.

The log numbers a room's messages 1, 2, 3 … in the order it was given them, calls its
subscriber with each committed message in seq order before that append's `done`, and
answers history from what it committed. For Redis the fan-out is the node's reader
(`RedisLog.pump`), run here as a node runs it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from chat_server.eventlog import MessageLog, StoreLog
from chat_server.outbox import Flusher
from chat_server.rooms import Room
from chat_server.sqlite_store import SqliteStore
from chat_server.store import MemoryStore, Store, StoredMessage
from tests.redis_support import running_redis


@dataclass
class Harness:
    log: MessageLog
    store: Store
    rooms: list[Room] = field(default_factory=list)
    seen: list[tuple[str, int]] = field(default_factory=list)  # what the subscriber got

    async def room(self, name: str) -> Room:
        done: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
        self.store.create_room(name, done.set_result)
        assert await done is None
        room = Room(name, Flusher(asyncio.get_running_loop()))
        self.rooms.append(room)
        return room

    async def say(
        self, room: Room, text: str, reply_to: int | None = None, author: str = ""
    ) -> StoredMessage:
        outcome: asyncio.Future[tuple[StoredMessage | None, BaseException | None]]
        outcome = asyncio.get_running_loop().create_future()

        def done(message: StoredMessage | None, error: BaseException | None) -> None:
            if message is not None:  # the fan-out came first
                assert (
                    self.seen[-1] == (room.name, message.seq)
                    or (
                        room.name,
                        message.seq,
                    )
                    in self.seen
                )
            outcome.set_result((message, error))

        self.log.append(room, "alice", text, False, None, done, reply_to, author)
        message, error = await outcome
        assert error is None and message is not None
        return message


@pytest.fixture(params=["memory", "sqlite", "redis"])
async def harness(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Harness]:
    store: Store
    log: MessageLog
    pump: asyncio.Task[None] | None = None
    redis = None
    if request.param == "memory":
        store = MemoryStore()
        log = StoreLog(store)
    elif request.param == "sqlite":
        store = SqliteStore(str(tmp_path / "h.db"))
        log = StoreLog(store)
    else:
        from chat_server.redis_store import RedisLog, RedisStore, connect

        redis = await running_redis(tmp_path)
        store = RedisStore(redis.url)
        log = RedisLog(store)
    await store.open()
    harness = Harness(log, store)

    def subscriber(room: Room, message: StoredMessage) -> None:
        room.delivered(message)
        harness.seen.append((room.name, message.seq))

    log.subscriber = subscriber
    if redis is not None:
        from chat_server.redis_store import RedisLog, connect

        assert isinstance(log, RedisLog)
        reader = connect(redis.url, blocking=True)

        async def follow() -> None:
            while True:
                await log.pump(reader, list(harness.rooms), {}, 100)

        pump = asyncio.create_task(follow())
    try:
        yield harness
    finally:
        try:
            if pump is not None:
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pump
                await reader.aclose()
            await store.close()
        finally:  # the redis-server is stopped whatever went wrong above
            if redis is not None:
                await redis.stop()


async def test_seqs_follow_on_per_room_and_fan_out_in_order(harness: Harness) -> None:
    lobby, other = await harness.room("lobby"), await harness.room("other")
    seqs = [(await harness.say(lobby if i % 3 else other, f"m{i}")).seq for i in range(12)]
    assert seqs == [1, 1, 2, 2, 3, 4, 3, 5, 6, 4, 7, 8]
    assert [s for r, s in harness.seen if r == "lobby"] == list(range(1, 9))
    assert [s for r, s in harness.seen if r == "other"] == [1, 2, 3, 4]
    assert lobby.delivered_seq == 8


async def test_appends_given_at_once_keep_their_order(harness: Harness) -> None:
    room = await harness.room("lobby")
    done = await asyncio.gather(*(harness.say(room, f"m{i}") for i in range(30)))
    assert [(m.seq, m.text) for m in done] == [(i + 1, f"m{i}") for i in range(30)]
    assert [s for _, s in harness.seen] == list(range(1, 31))


async def test_history_pages_from_the_log(harness: Harness) -> None:
    room = await harness.room("lobby")
    for i in range(10):
        await harness.say(room, f"m{i + 1}")
    latest = await harness.log.latest("lobby", 3)
    assert ([m.seq for m in latest.messages], latest.more) == ([8, 9, 10], True)
    assert latest.messages[0].text == "m8" and latest.messages[0].sender == "alice"
    before = await harness.log.before("lobby", 4, 5)
    assert ([m.seq for m in before.messages], before.more) == ([1, 2, 3], False)
    after = await harness.log.after("lobby", 7, 2)
    assert ([m.seq for m in after.messages], after.more) == ([8, 9], True)
    end = await harness.log.after("lobby", 8, 5)
    assert ([m.seq for m in end.messages], end.more) == ([9, 10], False)
    assert (await harness.log.latest("nowhere", 5)).messages == []


async def test_a_message_takes_a_rev_and_keeps_its_reply_and_author(harness: Harness) -> None:
    room = await harness.room("lobby")
    first = await harness.say(room, "question", author="account:alice")
    second = await harness.say(room, "answer", reply_to=1, author="guest:abc-1")
    assert [(m.seq, m.rev) for m in (first, second)] == [(1, 1), (2, 2)]
    assert room.delivered_rev == 2
    stored = await harness.store.message("lobby", 2)
    assert stored is not None
    assert (stored.text, stored.reply_to, stored.author, stored.rev) == (
        "answer",
        1,
        "guest:abc-1",
        2,
    )
    one = await harness.store.message("lobby", 1)
    assert one is not None and (one.reply_to, one.author) == (None, "account:alice")
    assert await harness.store.message("lobby", 3) is None
    assert await harness.store.message("lobby", 0) is None
    assert await harness.store.message("nowhere", 1) is None
    wire = stored.to_wire()
    assert (wire.reply_to, wire.rev) == (1, 2)


async def test_changed_since_is_every_message_above_the_rev_in_rev_order(
    harness: Harness,
) -> None:
    room = await harness.room("lobby")
    for i in range(7):
        await harness.say(room, f"m{i + 1}", reply_to=i or None)
    page = await harness.store.changed_since("lobby", 4, 2)
    assert ([(m.seq, m.rev) for m in page.messages], page.more) == ([(5, 5), (6, 6)], True)
    page = await harness.store.changed_since("lobby", 6, 10)
    assert ([(m.seq, m.reply_to) for m in page.messages], page.more) == ([(7, 6)], False)
    page = await harness.store.changed_since("lobby", 0, 10)
    assert [m.rev for m in page.messages] == list(range(1, 8)) and not page.more
    assert (await harness.store.changed_since("lobby", 7, 10)).messages == []


async def test_update_changes_the_state_with_the_next_rev(harness: Harness) -> None:
    room = await harness.room("lobby")
    await harness.say(room, "typo", author="account:alice")
    await harness.say(room, "other")
    one = await harness.store.message("lobby", 1)
    assert one is not None
    assert harness.store.supports_changes  # every store keeps changes (Redis too)
    edited = one.edit("fixed", room.delivered_rev + 1, 1_800_000_000_000)
    outcome: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
    harness.store.update(edited, outcome.set_result)
    assert await outcome is None
    now = await harness.store.message("lobby", 1)
    assert now is not None
    assert (now.text, now.rev, now.edited_ms) == ("fixed", 3, 1_800_000_000_000)
    page = await harness.store.changed_since("lobby", 2, 10)
    assert [(m.seq, m.rev) for m in page.messages] == [(1, 3)]
    latest = await harness.log.latest("lobby", 5)
    assert [(m.seq, m.text, m.rev) for m in latest.messages] == [(1, "fixed", 3), (2, "other", 2)]
