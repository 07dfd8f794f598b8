"""The coalescing write path: a batch whose bytes were taken is never extended."""

from __future__ import annotations

import asyncio

from chat_server.outbox import Flusher, Outgoing, RoomBatch
from chat_server.rooms import Room
from protocol import Left


class RecordingMember:
    """A room member that records what the flusher writes to it."""

    def __init__(self, nick: str, flusher: Flusher) -> None:
        self.nick = nick
        self.features: frozenset[str] = frozenset()
        self.flusher = flusher
        self.chunks: list[RoomBatch] = []
        self.written: list[bytes] = []
        self.dirty = False
        self.on_flush: list[object] = []

    def send_batch(self, batch: RoomBatch) -> None:
        self.chunks.append(batch)
        if not self.dirty:
            self.dirty = True
            self.flusher.mark_dirty(self)

    def send(self, out: Outgoing) -> None:
        raise AssertionError("not used")

    def send_message(self, message: object) -> None:
        raise AssertionError("not used")

    def flush(self) -> None:
        self.dirty = False
        self.written.extend(chunk.json() for chunk in self.chunks)
        self.chunks.clear()
        for action in self.on_flush:
            action()  # type: ignore[operator]


def line(n: int) -> Outgoing:
    return Outgoing(json_line=b"m%d\n" % n, make=lambda: Left(room="x", nick="x", ts=""))


async def test_broadcast_during_flush_reaches_members_already_written() -> None:
    flusher = Flusher(asyncio.get_running_loop())
    room = Room("lobby", flusher)
    first, dropped, last = (RecordingMember(n, flusher) for n in ("first", "dropped", "last"))
    for member in (first, dropped, last):
        room.add(member)
    room.broadcast(line(1))

    def leave() -> None:  # what dropping a slow consumer does in the middle of a flush
        room.remove(dropped)
        room.broadcast(Outgoing(Left(room="lobby", nick="dropped", ts="2026-11-25T00:00:00.000Z")))

    dropped.on_flush.append(leave)
    await asyncio.sleep(0)  # the flush pass
    room.broadcast(line(2))  # arrives before the next pass
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    for member in (first, last):
        data = b"".join(member.written)
        assert data.startswith(b"m1\n") and data.endswith(b"m2\n"), (member.nick, data)
        assert b'"left"' in data, (member.nick, data)
