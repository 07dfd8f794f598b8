"""The history store interface, and the in-memory store `--db :memory:` selects.

The server assigns each room message its `seq` on the event loop, then hands
it to the store with `append(message, done)`. The store commits messages in
the order it received them and calls `done(None)` on the event loop once a
message is durable (or `done(exc)` if it could not be stored); only then is
the message broadcast and acknowledged. A message that could not be stored
took no seq: the store never keeps a seq that does not follow the room's
last stored one, so the room hands the same seq to its next message. Reads
are async so a disk-backed store can serve them off the loop.
"""

from __future__ import annotations

import abc
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from protocol import ChatMessage, FileInfo, encode, encode_chat_message, format_ts

from .account_store import AccountStore, MemoryAccounts

if TYPE_CHECKING:
    from .moderation import BanRecord, ModerationRecords

__all__ = [
    "CommitCallback",
    "HistoryPage",
    "MemoryStore",
    "RoomRecord",
    "Store",
    "StoreError",
    "StoredMessage",
]

CommitCallback = Callable[[BaseException | None], None]


class StoreError(Exception):
    """The store cannot be opened or used (a clear message for the person running the server)."""


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One room message as it is kept."""

    room: str
    seq: int
    sender: str
    text: str
    action: bool
    ts_ms: int
    # The shared file, if the message shares one. Kept by the files index, not the store:
    # the server attaches it (as it stands now) to messages it reads back.
    file: FileInfo | None = None

    @property
    def rev(self) -> int:
        """The room's change counter at this message's latest change.

        Messages are not changed yet, so every message takes one rev: its seq.
        """
        return self.seq

    def encode(self) -> bytes:
        """The `message` line for this stored message, built without a model (hot path)."""
        if self.file is not None:
            return encode(self.to_wire())
        return encode_chat_message(
            self.room,
            self.seq,
            self.sender,
            self.text,
            self.action,
            format_ts(self.ts_ms),
            self.seq,  # its rev (see `rev`), without the property call on the hot path
        )

    def to_wire(self) -> ChatMessage:
        """The `message` event for this stored message."""
        return ChatMessage(
            room=self.room,
            seq=self.seq,
            sender=self.sender,
            text=self.text,
            action=self.action,
            ts=format_ts(self.ts_ms),
            rev=self.rev,
            file=self.file,
        )


@dataclass(slots=True)
class RoomRecord:
    """What the server needs to know about a stored room at start-up."""

    name: str
    topic: str = ""
    last_seq: int = 0


@dataclass(frozen=True, slots=True)
class HistoryPage:
    """Messages oldest first; `more` says further ones exist in the direction asked."""

    messages: list[StoredMessage]
    more: bool


class Store(AccountStore):
    """Where rooms, topics and messages live (and, as an `AccountStore`, accounts)."""

    # Called on the loop after each batch of commit callbacks has run. The server
    # flushes output here, so committed messages go out in the same loop pass
    # instead of waiting behind the next pass's reads.
    after_commits: Callable[[], None] | None = None

    @abc.abstractmethod
    async def open(self) -> dict[str, RoomRecord]:
        """Open the store; return every known room. Raises `StoreError`."""

    @abc.abstractmethod
    def create_room(self, room: str, done: CommitCallback | None = None) -> None:
        """Record that a room exists; `done` runs once that is committed (or failed)."""

    @abc.abstractmethod
    def delete_room(self, room: str) -> None:
        """Forget a room that has no messages (an empty room expiring)."""

    @abc.abstractmethod
    def sync(self, done: CommitCallback) -> None:
        """`done` runs once every write queued before this call is committed (or failed)."""

    @abc.abstractmethod
    def append(self, message: StoredMessage, done: CommitCallback) -> None:
        """Queue a message; `done` runs on the event loop once it is committed (or failed)."""

    @abc.abstractmethod
    def set_topic(self, room: str, topic: str, done: CommitCallback) -> None:
        """Queue a topic change; `done` runs on the event loop once it is committed."""

    @abc.abstractmethod
    async def latest(self, room: str, limit: int) -> HistoryPage:
        """The latest `limit` messages; `more` if older ones exist."""

    @abc.abstractmethod
    async def before(self, room: str, seq: int, limit: int) -> HistoryPage:
        """The latest `limit` messages with a seq below `seq`; `more` if older ones exist."""

    @abc.abstractmethod
    async def after(self, room: str, seq: int, limit: int) -> HistoryPage:
        """The first `limit` messages with a seq above `seq`; `more` if later ones exist."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Commit what is queued and close; appends after this are refused."""

    # -- moderation (optional: the defaults keep nothing) --------------------------

    async def load_moderation(self) -> ModerationRecords:
        """Every stored op and ban (read once at start)."""
        from .moderation import ModerationRecords

        return ModerationRecords()

    def save_op(self, room: str, account_key: str, op: bool, done: CommitCallback) -> None:
        """Record that an account is (or no longer is) an op of `room`."""
        done(None)

    def save_ban(
        self, room: str, nick_key: str, ban: BanRecord | None, done: CommitCallback
    ) -> None:
        """Record a ban (or with None, lift it)."""
        done(None)


@dataclass
class _MemoryRoom:
    topic: str = ""
    messages: list[StoredMessage] = field(default_factory=list)


class MemoryStore(MemoryAccounts, Store):
    """Keeps everything in memory and forgets it at exit (`--db :memory:`)."""

    def __init__(self) -> None:
        MemoryAccounts.__init__(self)
        self._rooms: dict[str, _MemoryRoom] = {}

    async def open(self) -> dict[str, RoomRecord]:
        return {}

    def create_room(self, room: str, done: CommitCallback | None = None) -> None:
        self._room(room)
        if done is not None:
            done(None)

    def delete_room(self, room: str) -> None:
        self._rooms.pop(room, None)

    def sync(self, done: CommitCallback) -> None:
        done(None)

    def append(self, message: StoredMessage, done: CommitCallback) -> None:
        self._room(message.room).messages.append(message)
        done(None)

    def set_topic(self, room: str, topic: str, done: CommitCallback) -> None:
        self._room(room).topic = topic
        done(None)

    async def latest(self, room: str, limit: int) -> HistoryPage:
        messages = self._messages(room)
        start = max(0, len(messages) - limit)
        return HistoryPage(messages[start:], more=start > 0)

    async def before(self, room: str, seq: int, limit: int) -> HistoryPage:
        messages = self._messages(room)
        end = bisect_left(messages, seq, key=_seq)
        start = max(0, end - limit)
        return HistoryPage(messages[start:end], more=start > 0)

    async def after(self, room: str, seq: int, limit: int) -> HistoryPage:
        messages = self._messages(room)
        start = bisect_right(messages, seq, key=_seq)
        end = start + limit
        return HistoryPage(messages[start:end], more=end < len(messages))

    async def close(self) -> None:
        return None

    def room_messages(self, rooms: list[str] | None) -> list[list[StoredMessage]]:
        """The messages of `rooms` (None: every room), for the search scan."""
        names = list(self._rooms) if rooms is None else rooms
        return [self._messages(name) for name in names]

    def _room(self, name: str) -> _MemoryRoom:
        room = self._rooms.get(name)
        if room is None:
            room = self._rooms[name] = _MemoryRoom()
        return room

    def _messages(self, room: str) -> list[StoredMessage]:
        found = self._rooms.get(room)
        return found.messages if found else []


def _seq(message: StoredMessage) -> int:
    return message.seq
