"""The history store interface, and the in-memory store `--db :memory:` selects.

The server assigns each room message its `seq` on the event loop, then hands
it to the store with `append(message, done)`. The store commits messages in
the order it received them and calls `done(None)` on the event loop once a
message is durable (or `done(exc)` if it could not be stored); only then is
the message broadcast and acknowledged. A message that could not be stored
took no seq: the store never keeps a seq that does not follow the room's
last stored one, so the room hands the same seq to its next message. Reads
are async so a disk-backed store can serve them off the loop.

Every room also has a change counter, `rev`: each new message and each change
of one (an edit, a delete, a reaction added or taken back) takes the room's
next rev, assigned on the loop like seqs. A change goes through the same
ordered writer as `update(message, done)`, carrying the message's whole new
state, so it is committed (and broadcast) after the message it changes and in
rev order; the store refuses a rev that does not follow the room's last stored
one, exactly as it refuses a seq gap.
"""

from __future__ import annotations

import abc
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from protocol import ChatMessage, FileInfo, encode, encode_chat_message, format_ts

from .account_store import AccountStore, MemoryAccounts

if TYPE_CHECKING:
    from .moderation import BanRecord, ModerationRecords

__all__ = [
    "CommitCallback",
    "HistoryPage",
    "MemoryStore",
    "Reactions",
    "RoomRecord",
    "Store",
    "StoreError",
    "StoredMessage",
]

# A message's reactions: (emoji, nicks in the order they reacted), emoji in first-use order.
Reactions = tuple[tuple[str, tuple[str, ...]], ...]

CommitCallback = Callable[[BaseException | None], None]


class StoreError(Exception):
    """The store cannot be opened or used (a clear message for the person running the server)."""


@dataclass(slots=True)
class StoredMessage:
    """One room message as it is kept: never changed in place (a change makes a new one,
    see `edit`, `erase`, `react`). Not frozen: a frozen dataclass's `__init__` costs a
    `object.__setattr__` call per field, and one is built per `say`."""

    room: str
    seq: int
    sender: str
    text: str
    action: bool
    ts_ms: int
    # The shared file, if the message shares one. Kept by the files index, not the store:
    # the server attaches it (as it stands now) to messages it reads back.
    file: FileInfo | None = None

    # Version 2. `rev`: the room's change counter at the message's latest change
    # (0 only for a message built without one, e.g. by old tests: it is stored as its seq).
    rev: int = 0
    reply_to: int | None = None  # the seq of the message this one answers
    edited_ms: int | None = None  # when its text was last edited
    deleted: bool = False  # erased: text "" and no reactions
    reactions: Reactions = ()
    # Who may edit it: "account:NAME" (lower case) or "guest:TOKEN" (one connection).
    # Empty for messages stored before authors were recorded: nobody may edit those.
    author: str = ""

    def encode(self) -> bytes:
        """The `message` line for this stored message, built without a model (hot path)."""
        if self.file is not None or self.edited_ms is not None or self.reactions or self.deleted:
            return encode(self.to_wire())
        return encode_chat_message(
            self.room,
            self.seq,
            self.sender,
            self.text,
            self.action,
            format_ts(self.ts_ms),
            self.rev or self.seq,
            self.reply_to,
        )

    def to_wire(self) -> ChatMessage:
        """The `message` event for this stored message (its current state)."""
        return ChatMessage(
            room=self.room,
            seq=self.seq,
            sender=self.sender,
            text=self.text,
            action=self.action,
            ts=format_ts(self.ts_ms),
            rev=self.rev or self.seq,
            reply_to=self.reply_to,
            edited=None if self.edited_ms is None else format_ts(self.edited_ms),
            deleted=True if self.deleted else None,
            reactions={emoji: list(nicks) for emoji, nicks in self.reactions} or None,
            file=self.file,
        )

    def edit(self, text: str, rev: int, ts_ms: int) -> StoredMessage:
        """This message with its text replaced."""
        return self._changed(rev, text, ts_ms, self.deleted, self.reactions, self.file)

    def erase(self, rev: int) -> StoredMessage:
        """This message deleted: no text, no reactions, no file."""
        return self._changed(rev, "", self.edited_ms, True, (), None)

    def react(self, emoji: str, nick: str, remove: bool, rev: int) -> StoredMessage | None:
        """This message with `nick`'s `emoji` added (or removed); None when nothing changes."""
        found = dict(self.reactions)
        nicks = found.get(emoji, ())
        if remove:
            if nick not in nicks:
                return None
            kept = tuple(n for n in nicks if n != nick)
            reactions = tuple(
                (e, kept if e == emoji else n) for e, n in self.reactions if e != emoji or kept
            )
        else:
            if nick in nicks:
                return None
            if emoji in found:
                reactions = tuple((e, (*n, nick) if e == emoji else n) for e, n in self.reactions)
            else:
                reactions = (*self.reactions, (emoji, (nick,)))
        return self._changed(rev, self.text, self.edited_ms, self.deleted, reactions, self.file)

    def _changed(
        self,
        rev: int,
        text: str,
        edited_ms: int | None,
        deleted: bool,
        reactions: Reactions,
        file: FileInfo | None,
    ) -> StoredMessage:
        """A copy with what a change can change (`dataclasses.replace` costs eight times this)."""
        return StoredMessage(
            self.room,
            self.seq,
            self.sender,
            text,
            self.action,
            self.ts_ms,
            file,
            rev,
            self.reply_to,
            edited_ms,
            deleted,
            reactions,
            self.author,
        )


@dataclass(slots=True)
class RoomRecord:
    """What the server needs to know about a stored room at start-up."""

    name: str
    topic: str = ""
    last_seq: int = 0
    last_rev: int = 0  # the room's change counter (0 for a room read from an old store: its seq)


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
    # False: `update` is refused, so edits, deletes and reactions are not offered.
    supports_changes: bool = True
    # False: ops and bans are not shared where they must be (several nodes), so
    # moderation is refused; and `search` is refused (no index of the whole chat).
    supports_moderation: bool = True
    supports_search: bool = True

    @abc.abstractmethod
    async def open(self) -> dict[str, RoomRecord]:
        """Open the store; return every known room. Raises `StoreError`."""

    @abc.abstractmethod
    def create_room(self, room: str, done: CommitCallback | None = None) -> None:
        """Record that a room exists; `done` runs once that is committed (or failed)."""

    @abc.abstractmethod
    def delete_room(self, room: str) -> None:
        """Forget a room that has no messages (an empty room expiring), with its stored
        ops and bans."""

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
    def update(self, message: StoredMessage, done: CommitCallback) -> None:
        """Queue the new state of a stored message (an edit, a delete, a reaction change).

        `message.rev` must be the room's next rev; a delete erases the old text for good.
        `done` runs on the event loop once it is committed (or failed), in order with appends.
        """

    def change_reaction(
        self, message: StoredMessage, emoji: str, nick: str, removed: bool, done: CommitCallback
    ) -> None:
        """Queue `message` whose one change is `nick`'s `emoji` added (or `removed`).

        A store that keeps a message whole stores it whole; one that keeps reactions
        apart writes only that one (`SqliteStore`).
        """
        self.update(message, done)

    @abc.abstractmethod
    async def message(self, room: str, seq: int) -> StoredMessage | None:
        """One message in its current state, or None when the room has no such seq."""

    @abc.abstractmethod
    async def changed_since(self, room: str, rev: int, limit: int) -> HistoryPage:
        """Messages whose rev is above `rev`, in rev order (each once), at most `limit`;
        `more` if others remain."""

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
        if not message.rev:
            message = replace(message, rev=message.seq)
        self._room(message.room).messages.append(message)
        done(None)

    def update(self, message: StoredMessage, done: CommitCallback) -> None:
        messages = self._messages(message.room)
        index = bisect_left(messages, message.seq, key=_seq)
        if index == len(messages) or messages[index].seq != message.seq:
            done(StoreError(f"#{message.room} has no message {message.seq}"))
            return
        messages[index] = message
        done(None)

    async def message(self, room: str, seq: int) -> StoredMessage | None:
        messages = self._messages(room)
        index = bisect_left(messages, seq, key=_seq)
        if index < len(messages) and messages[index].seq == seq:
            return messages[index]
        return None

    async def changed_since(self, room: str, rev: int, limit: int) -> HistoryPage:
        changed = sorted((m for m in self._messages(room) if m.rev > rev), key=_rev)
        return HistoryPage(changed[:limit], more=len(changed) > limit)

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


def _rev(message: StoredMessage) -> int:
    return message.rev
