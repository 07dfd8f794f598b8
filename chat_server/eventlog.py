"""The event-log seam: who gives a room message its seq, commits it and fans it out.

The hub never numbers messages itself. It hands a message's content to a
`MessageLog`, which

1. assigns the room's next seq and rev where that is decided: on the
   event loop for the single-process stores, inside Redis for a cluster, so
   nodes never hand out the same seq;
2. commits the message;
3. calls its one `subscriber` with the committed message, in seq order per
   room, on the event loop: the hub's fan-out to the room's members here;
4. then calls the append's `done` (the sender's ack, or `unavailable`).

A message that was not committed is never given to the subscriber, and its
seq is not used. History queries are behind the same interface, so a log kept
elsewhere (Redis Streams) answers them from where it keeps messages.

Edits, deletes and reactions: alone, `chat_server/changes.py` takes a change's
rev on the loop and commits it with `Store.update` (`changes` is None). A log
that numbers elsewhere gives a `ChangeLog` (`changes`): it takes the rev where
the log takes seqs, refuses a change computed from a state that is no longer
the message's (the caller reads it again and retries), and hands every change,
this node's and the others', to its `broadcast` in rev order, with the
messages, so every implementation keeps one order per room.

`StoreLog` is the single-process implementation over a `Store`: the seq is
assigned on the loop (`Room.next_seq`), as before the seam, so the say path
costs what it did.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from protocol import FileInfo, now_ms

from .rooms import Room
from .store import HistoryPage, Store, StoredMessage

__all__ = [
    "AppendDone",
    "Change",
    "ChangeBroadcast",
    "ChangeDone",
    "ChangeLog",
    "MessageLog",
    "StoreLog",
    "Subscriber",
]

# The fan-out: called once per committed message, in seq order per room.
Subscriber = Callable[[Room, StoredMessage], None]
# An append's outcome: the committed message, or the error that kept it out.
AppendDone = Callable[[StoredMessage | None, BaseException | None], None]


# A committed change: the room, the message as it stands, the event for the members
# (None: nothing to tell) and the feature a member needs to get it.
ChangeBroadcast = Callable[[Room, StoredMessage, BaseModel | None, str], None]
# A change's outcome: True once committed and broadcast here; False when the message had
# changed since it was read (nothing was stored: read it again and retry); or the error.
ChangeDone = Callable[[bool, BaseException | None], None]


@dataclass(frozen=True, slots=True)
class Change:
    """What a change did, for its event: `kind` is "edit", "delete" or "react"."""

    kind: str
    by: str  # the nick that made it
    ts_ms: int
    emoji: str = ""
    removed: bool = False


def _no_subscriber(_room: Room, _message: StoredMessage) -> None:
    return None


def _no_broadcast(_room: Room, _message: StoredMessage, _event: object, _feature: str) -> None:
    return None


class ChangeLog(abc.ABC):
    """Changes numbered and fanned out where the log numbers messages (several nodes)."""

    def __init__(self) -> None:
        self.broadcast: ChangeBroadcast = _no_broadcast

    @abc.abstractmethod
    def change(
        self,
        room: Room,
        before: StoredMessage,
        changed: StoredMessage,
        change: Change,
        done: ChangeDone,
    ) -> None:
        """Store `changed` (its rev is taken here) unless the message is no longer `before`."""


class MessageLog(abc.ABC):
    """Where a chat's room messages are numbered, committed and read back."""

    def __init__(self) -> None:
        self.subscriber: Subscriber = _no_subscriber
        self.changes: ChangeLog | None = None  # None: changes go to `Store.update`

    @abc.abstractmethod
    def append(
        self,
        room: Room,
        sender: str,
        text: str,
        action: bool,
        file: FileInfo | None,
        done: AppendDone,
        reply_to: int | None = None,
        author: str = "",
    ) -> None:
        """Number and commit a message; the subscriber, then `done`, run once committed.

        The message takes the room's next seq and its next rev (one counter shared by
        new messages and changes). On failure only `done` runs, with the error; the
        message took neither.
        """

    @abc.abstractmethod
    async def latest(self, room: str, limit: int) -> HistoryPage:
        """The latest `limit` committed messages; `more` if older ones exist."""

    @abc.abstractmethod
    async def before(self, room: str, seq: int, limit: int) -> HistoryPage:
        """The latest `limit` messages with a seq below `seq`; `more` if older ones exist."""

    @abc.abstractmethod
    async def after(self, room: str, seq: int, limit: int) -> HistoryPage:
        """The first `limit` messages with a seq above `seq`; `more` if later ones exist."""


class StoreLog(MessageLog):
    """One process: seqs from the room's counter on the loop, commits by the `Store`."""

    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store

    def append(
        self,
        room: Room,
        sender: str,
        text: str,
        action: bool,
        file: FileInfo | None,
        done: AppendDone,
        reply_to: int | None = None,
        author: str = "",
    ) -> None:
        message = StoredMessage(
            room.name,
            room.next_seq(),
            sender,
            text,
            action,
            now_ms(),
            file,
            room.next_rev(),
            reply_to,
            author=author,
        )

        def committed(error: BaseException | None) -> None:
            if error is not None:
                room.commit_failed(message.seq, message.rev)
                done(None, error)
                return
            self.subscriber(room, message)
            done(message, None)

        self.store.append(message, committed)

    async def latest(self, room: str, limit: int) -> HistoryPage:
        return await self.store.latest(room, limit)

    async def before(self, room: str, seq: int, limit: int) -> HistoryPage:
        return await self.store.before(room, seq, limit)

    async def after(self, room: str, seq: int, limit: int) -> HistoryPage:
        return await self.store.after(room, seq, limit)
