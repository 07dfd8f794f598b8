"""Rooms and their members, with no sockets: the broadcast core.

A `Room` knows its members (in join order), its topic, the seq counters and a
short tail of recent messages. `assigned_seq` is the last seq handed to a
message; `delivered_seq` the last one committed and broadcast (they differ
while the store is committing). The tail serves joins and history from memory
when it can, and fills the gap between a store read and the live stream.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

from .outbox import Flusher, Outgoing, RoomBatch
from .store import RoomRecord, StoredMessage

if TYPE_CHECKING:
    import asyncio

    from pydantic import BaseModel

__all__ = ["TAIL_SIZE", "Member", "Room", "RoomRegistry"]

TAIL_SIZE = 1024


class Member(Protocol):
    """What a room needs of a connection."""

    nick: str

    def send(self, out: Outgoing) -> None: ...

    def send_batch(self, batch: RoomBatch) -> None: ...

    def send_message(self, message: BaseModel) -> None: ...


class Room:
    """One chat room."""

    __slots__ = (
        "_flusher",
        "assigned_seq",
        "batch",
        "creating",
        "delivered_seq",
        "members",
        "name",
        "tail",
        "topic",
        "waiters",
    )

    def __init__(self, name: str, flusher: Flusher, topic: str = "", last_seq: int = 0) -> None:
        self.name = name
        self.topic = topic
        self.assigned_seq = last_seq
        self.delivered_seq = last_seq
        self.members: dict[Member, None] = {}
        self.tail: deque[StoredMessage] = deque(maxlen=TAIL_SIZE)
        self.batch: RoomBatch | None = None
        self.creating = False  # the store has not confirmed this new room yet
        self.waiters: list[asyncio.Future[bool]] = []  # joiners waiting for that
        self._flusher = flusher

    def __contains__(self, member: object) -> bool:
        return member in self.members

    @property
    def nicks(self) -> list[str]:
        return [member.nick for member in self.members]

    def add(self, member: Member) -> None:
        self.seal()
        self.members[member] = None

    def remove(self, member: Member) -> None:
        self.seal()
        self.members.pop(member, None)

    def seal(self) -> None:
        """Start a new batch for the next broadcast (after a membership change or a direct send
        that must not be overtaken by later broadcasts)."""
        self.batch = None

    def broadcast(self, out: Outgoing) -> None:
        """Queue `out` for every member, in order with the room's other broadcasts."""
        batch = self.batch
        if batch is None or batch.sealed:
            batch = self.batch = RoomBatch()
            self._flusher.batch_opened(batch)
            for member in self.members:
                member.send_batch(batch)
        batch.items.append(out)

    def next_seq(self) -> int:
        self.assigned_seq += 1
        return self.assigned_seq

    def delivered(self, message: StoredMessage) -> None:
        """Record that `message` was committed and is being broadcast."""
        self.delivered_seq = message.seq
        self.tail.append(message)

    def commit_failed(self, seq: int) -> None:
        """The message given `seq` was not stored: hand that seq out again.

        The store refuses every later message of the room until one follows the last
        stored seq, so the messages already given seqs after it fail too; only the
        first failure (the one right after the last delivered seq) rewinds.
        """
        if seq == self.delivered_seq + 1 and self.assigned_seq >= seq:
            self.assigned_seq = self.delivered_seq

    def tail_after(self, seq: int) -> list[StoredMessage] | None:
        """Delivered messages with a seq above `seq`, or None when the tail no longer has them."""
        if seq >= self.delivered_seq:
            return []
        tail = self.tail
        if not tail or tail[0].seq > seq + 1:
            return None
        start = bisect_right(tail, seq, key=_seq)  # by seq, never by position
        return [tail[i] for i in range(start, len(tail))]

    def tail_latest(self, limit: int) -> list[StoredMessage] | None:
        """The latest `limit` delivered messages, or None when the tail cannot tell."""
        tail = self.tail
        have_all = self.delivered_seq == len(tail) or (tail and tail[0].seq == 1)
        if len(tail) < limit and not have_all:
            return None
        start = max(0, len(tail) - limit)
        return [tail[i] for i in range(start, len(tail))]


class RoomRegistry:
    """Every room that exists, by name."""

    def __init__(self, flusher: Flusher) -> None:
        self._flusher = flusher
        self._rooms: dict[str, Room] = {}

    def load(self, records: Iterable[RoomRecord]) -> None:
        for record in records:
            self._rooms[record.name] = Room(
                record.name, self._flusher, record.topic, record.last_seq
            )

    def get(self, name: str) -> Room | None:
        return self._rooms.get(name)

    def create(self, name: str) -> Room:
        room = self._rooms[name] = Room(name, self._flusher)
        return room

    def __iter__(self) -> Iterator[Room]:
        return iter(self._rooms.values())

    def discard(self, room: Room) -> None:
        if self._rooms.get(room.name) is room:
            del self._rooms[room.name]

    def names(self) -> list[str]:
        return sorted(name for name, room in self._rooms.items() if not room.creating)


def _seq(message: StoredMessage) -> int:
    return message.seq
