"""Edits, deletes and reactions on `chat-server --redis` nodes.

A change is one Lua script (`_CHANGE` in redis_store.py) sent through the node's
writer: it checks that the message is still at the rev the node read it at, takes
the room's next rev from `rev:ROOM` (the counter new messages take theirs from),
overwrites the message's state in `state:ROOM`, moves it in `revs:ROOM` (rev ->
seq, for `changed_since`) and adds a change entry `SEQ-N` after the stream's last
entry. A stale state (another node changed the message meanwhile) stores nothing
and answers 0: the caller reads the message again and retries. So two nodes never
lose one of two changes of one message, and revs stay gap-free per room.

Every node's one reader gets the change entries in the same `XREAD` as the
messages, in rev order, with the messages' states (texts live only there): it
updates the room's tail and hands the event to `broadcast` (the hub's members of
the room); the node that made the change acks it once its reader got there.

Erasure: a deleted message's state is overwritten without its text, file or
reactions, and the stream never held the text. The append-only file still holds
the commands that wrote it until Redis rewrites the file: after a delete, a node
asks for `BGREWRITEAOF`, at most once per `ERASE_REWRITE_INTERVAL` for the whole
chat (a key with that TTL says when the last one was asked for), so the text
leaves Redis's files within that interval plus the rewrite's own time.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from redis.exceptions import RedisError, ResponseError

from protocol import MessageDeleted, MessageEdited, ReactionChanged, format_ts
from protocol.features import Feature

from .eventlog import Change, ChangeDone, ChangeLog
from .redis_store import (
    PREFIX,
    RedisLog,
    RedisStore,
    parse_state,
    run_script,
    state_body,
)
from .rooms import Room
from .store import StoredMessage, StoreError

__all__ = ["ERASE_REWRITE_INTERVAL", "AofEraser", "RedisChanges"]

log = logging.getLogger(__name__)

ERASE_REWRITE_INTERVAL: Final = 30.0  # seconds between two rewrites asked for after deletes
_KINDS: Final = {"edit": "e", "delete": "d", "react": "x"}


class RedisChanges(ChangeLog):
    """A node's changes of room messages, numbered in Redis and fanned out by its reader."""

    def __init__(self, log_: RedisLog, eraser: AofEraser | None = None) -> None:
        super().__init__()
        self.log = log_
        self.store: RedisStore = log_.store
        self.eraser = eraser if eraser is not None else AofEraser(self.store)
        self._waiting: dict[tuple[str, int], ChangeDone] = {}
        log_.changes = self
        log_.change_entry = self.deliver

    def change(
        self,
        room: Room,
        before: StoredMessage,
        changed: StoredMessage,
        change: Change,
        done: ChangeDone,
    ) -> None:
        if self.log.fenced is not None:
            done(False, StoreError(self.log.fenced))
            return
        name = room.name
        keys = [
            PREFIX + "log:" + name,
            PREFIX + "state:" + name,
            PREFIX + "rev:" + name,
            PREFIX + "revs:" + name,
        ]
        args = [
            changed.seq,
            before.rev,
            state_body(changed),
            _KINDS[change.kind],
            change.by,
            change.ts_ms,
            change.emoji,
            int(change.removed),
            "",
        ]

        def finish(results: list[Any] | None, error: BaseException | None) -> None:
            if results is None:
                if "NOMSG" in str(error):  # deleted meanwhile: the caller reads it again
                    done(False, None)
                else:
                    done(False, error)
                return
            rev = int(results[0])
            if not rev:
                done(False, None)
                return
            if change.kind == "delete":
                self.eraser.erased()
            if room.delivered_rev >= rev:  # the reader was first
                done(True, None)
            else:
                self._waiting[(name, rev)] = done

        script = self.store.change_script
        self.store.put(lambda pipe: run_script(pipe, script, keys, args), 1, finish)

    def deliver(self, room: Room, fields: dict[str, str], state: str | None) -> None:
        """The reader's next change entry of `room` (revs in order): tail, members, ack."""
        rev, seq, kind = int(fields["v"]), int(fields["m"]), fields.get("k", "u")
        message = None if state is None else parse_state(room.name, seq, state)
        if message is not None:
            room.changed(message)  # the tail keeps the message as it stands now
        room.delivered_rev = rev
        ts = format_ts(int(fields.get("ts") or 0))
        by = fields.get("b", "")
        event: Any = None
        feature: str = Feature.EDIT
        if kind == "e" and message is not None and not message.deleted:
            # The state may be newer than this entry: never older, and its own entry follows.
            event = MessageEdited(room=room.name, seq=seq, text=message.text, by=by, ts=ts, rev=rev)
        elif kind == "d":
            event = MessageDeleted(room=room.name, seq=seq, by=by, ts=ts, rev=rev)
        elif kind == "x":
            feature = Feature.REACT
            event = ReactionChanged(
                room=room.name,
                seq=seq,
                emoji=fields.get("em", ""),
                nick=by,
                removed=fields.get("rm") == "1",
                ts=ts,
                rev=rev,
            )
        if message is not None:
            try:
                self.broadcast(room, message, event, feature)
            except Exception:
                log.exception("broadcasting a change of %s/%d failed", room.name, seq)
        done = self._waiting.pop((room.name, rev), None)
        if done is not None:
            done(True, None)


class AofEraser:
    """After deletes, has Redis rewrite its append-only file (rate-limited for the chat)."""

    def __init__(self, store: RedisStore, interval: float = ERASE_REWRITE_INTERVAL) -> None:
        self.store = store
        self.interval = interval
        self._task: asyncio.Task[None] | None = None
        self.rewrites = 0  # rewrites this node asked for (tests, logs)

    def erased(self) -> None:
        """A delete was committed: make sure a rewrite starts after it (one pending at most)."""
        if self._task is not None and not self._task.done():
            return
        self._task = asyncio.get_running_loop().create_task(self._rewrite(), name="aof-eraser")

    async def _rewrite(self) -> None:
        client = self.store.client
        gate = PREFIX + "erase-rewrite"
        for _ in range(600):  # gives up after about ten minutes of Redis refusing
            try:
                if await client.set(
                    gate, self.store.node or "1", nx=True, px=int(self.interval * 1000)
                ):
                    for _ in range(60):
                        try:
                            await client.bgrewriteaof()
                            self.rewrites += 1
                            log.info("asked Redis to rewrite its append-only file (deleted texts)")
                            return
                        except ResponseError as exc:  # one in progress began before the delete
                            log.debug("rewrite not started yet: %s", exc)
                            await asyncio.sleep(1.0)
                    break
                wait = await client.pttl(gate)
                await asyncio.sleep(max(wait, 100) / 1000)
            except (RedisError, OSError) as exc:
                log.debug("cannot ask for a rewrite now: %s", exc)
                await asyncio.sleep(1.0)
        log.error("Redis did not rewrite its append-only file after deletes")

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
