"""Search on `chat-server --redis` nodes: a node-local SQLite FTS5 index derived from Redis.

Redis has no full-text index (RediSearch is a module Debian's redis-server lacks),
so each node keeps its own copy of the room logs in a `SqliteStore` (`--db PATH`
with `--redis`: kept across restarts; without it a file in a temporary directory,
removed at close and rebuilt at the next start). The copy takes the messages and
changes in stream order, so its own rules hold (a seq follows the last one, a rev
follows the last rev), and search is exactly the SQLite store's: newest first,
AND of words, phrases, `prefix*`, room and `from` filters, the same cursor. An
edit is found by its new text only; a delete erases the text from the copy (the
SQLite store's erasure, WAL included) and from its index.

Keeping up: per room the copy's last seq and rev are the watermark. A catch-up
reads each room's stream from the entry of its last seq (`XRANGE`, 1,000 entries a
page, with the states of the messages read in the same round trip), skips what the
copy has and applies the rest in order. It runs every `CATCH_UP_INTERVAL` in the
background, and before every search over the rooms searched: a message acked on any
node (so committed in Redis) is found by a search that starts after the ack. A
copy that is missing or new is rebuilt this way from the streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any, Final

from redis.exceptions import RedisError

from .redis_store import PREFIX, RedisStore, parse_entry, parse_state
from .search import SearchCursor, SearchIndex, SearchPage, Term
from .sqlite_store import SqliteStore
from .store import CommitCallback, StoredMessage, StoreError

__all__ = ["CATCH_UP_INTERVAL", "RedisSearch"]

log = logging.getLogger(__name__)

CATCH_UP_INTERVAL: Final = 1.0  # seconds between two background catch-ups
_PAGE: Final = 1_000


class RedisSearch(SearchIndex):
    """The node's search index: a SQLite copy of the room logs kept in step with Redis."""

    def __init__(self, store: RedisStore, path: str | None = None) -> None:
        self.store = store
        self._temp: str | None = None
        if path is None:
            self._temp = tempfile.mkdtemp(prefix="lanchat-search-")
            path = str(Path(self._temp) / "search.sqlite3")
        self.path = path
        self.copy = SqliteStore(path)
        self._marks: dict[str, tuple[int, int]] = {}  # room -> (last seq, last rev) copied
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """Open the copy (another chat's copy is removed first, then rebuilt), start following."""
        await asyncio.to_thread(self._forget_another_chat)
        records = await self.copy.open()
        await asyncio.to_thread(Path(self.path + ".chat").write_text, self.store.chat_id + "\n")
        self._marks = {name: (r.last_seq, r.last_rev) for name, r in records.items()}
        self._task = asyncio.get_running_loop().create_task(self._follow(), name="search-index")

    def _forget_another_chat(self) -> None:
        mark = Path(self.path + ".chat")  # the id of the chat the copy was made from
        if mark.exists() and mark.read_text().strip() != self.store.chat_id:
            log.warning("the search index %s is another chat's: rebuilding it", self.path)
            for suffix in ("", "-wal", "-shm"):
                Path(self.path + suffix).unlink(missing_ok=True)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.copy.close()
        if self._temp is not None:
            shutil.rmtree(self._temp, ignore_errors=True)

    async def search(
        self,
        terms: list[Term],
        rooms: list[str] | None,
        sender: str | None,
        limit: int,
        before: SearchCursor | None,
    ) -> SearchPage:
        await self.catch_up(rooms)
        return await self.copy.search(terms, rooms, sender, limit, before)

    # -- keeping up -------------------------------------------------------------------

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(CATCH_UP_INTERVAL)
            try:
                await self.catch_up(None)
            except StoreError as exc:
                log.debug("search index not caught up: %s", exc)

    async def catch_up(self, rooms: list[str] | None) -> None:
        """Copy what Redis has beyond the copy's watermark, for `rooms` (None: every room)."""
        async with self._lock:
            try:
                names = (
                    rooms if rooms is not None else await self.store.reads.hkeys(PREFIX + "rooms")
                )
                for name in names:
                    await self._catch_up_room(name)
            except (RedisError, OSError) as exc:
                raise StoreError(f"Redis is unavailable ({exc})") from exc

    async def _catch_up_room(self, room: str) -> None:
        marks = self._marks.get(room)
        if marks is None:
            await _done(self.copy.create_room, room)
            marks = self._marks[room] = (0, 0)
        last_seq, last_rev = marks
        start = f"{last_seq}-0"
        reads: Any = self.store.reads
        while True:
            entries = await reads.xrange(PREFIX + "log:" + room, min=start, max="+", count=_PAGE)
            fresh = [(i, f) for i, f in entries if int(f["v"]) > last_rev]
            if fresh:
                seqs = [f.get("m") or i.partition("-")[0] for i, f in fresh]
                states = await reads.hmget(PREFIX + "state:" + room, seqs)
                errors: list[BaseException] = []
                for (entry_id, fields), state in zip(fresh, states, strict=True):
                    if state is None:
                        continue
                    rev = int(fields["v"])
                    if "m" in fields:
                        seq = int(fields["m"])
                        changed = replace(parse_state(room, seq, state), rev=rev)
                        self.copy.update(changed, _collect(errors))
                    else:
                        message: StoredMessage = parse_entry(room, entry_id, fields, state)
                        last_seq = message.seq
                        self.copy.append(message, _collect(errors))
                    last_rev = rev
                await _done(self.copy.sync)
                if errors:
                    raise StoreError(f"the search index of #{room} refused a change: {errors[0]}")
                self._marks[room] = (last_seq, last_rev)
            if len(entries) < _PAGE:
                return
            start = "(" + entries[-1][0]


def _collect(errors: list[BaseException]) -> CommitCallback:
    def done(error: BaseException | None) -> None:
        if error is not None:
            errors.append(error)

    return done


async def _done(call: Any, *args: Any) -> None:
    """Run a store write with a callback and wait for it; raise what it failed with."""
    future: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    def done(error: BaseException | None) -> None:
        if not future.done():
            future.set_result(error)

    call(*args, done)
    error = await future
    if error is not None:
        raise StoreError(str(error))
