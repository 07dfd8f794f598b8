"""What the client remembers about each joined room, so a reconnect misses nothing.

Pure bookkeeping, no I/O. For each room it keeps the last `seq` delivered to
the application. A message at or below it is a duplicate and dropped. After a
reconnect the room is *catching up*: the join's replay and any `history after`
pages are delivered in order, while live messages that arrive meanwhile wait
in a buffer, then go through the same filter. So the application sees every
seq once, in order, whatever the network did.

Version 2: it also keeps the room's highest `rev` seen (messages and the
`edited`, `deleted` and `reaction` events carry one). A rejoin then asks for
`changed_since` that rev, and the change events go through a rev filter the way
messages go through the seq filter: one at or below the last rev is already
shown, and during a catch-up they wait in the same buffer, in arrival order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TypeVar

from protocol import ChatMessage, MessageDeleted, MessageEdited, ReactionChanged

Change = MessageEdited | MessageDeleted | ReactionChanged

__all__ = ["Change", "RoomState", "RoomTracker"]


@dataclass(slots=True)
class RoomState:
    """One joined room."""

    last_seq: int | None = None  # None: nothing seen yet (join without `since`)
    last_rev: int | None = None  # None: no rev seen (a version-1 server, or nothing yet)
    catching_up: bool = False
    waiting: list[ChatMessage | Change] = field(default_factory=list)


class RoomTracker:
    """Seq bookkeeping for every room the client is in."""

    def __init__(self) -> None:
        self.rooms: dict[str, RoomState] = {}

    def joined(self, room: str) -> RoomState:
        return self.rooms.setdefault(room, RoomState())

    def parted(self, room: str) -> None:
        self.rooms.pop(room, None)

    def since(self, room: str) -> int | None:
        """The `since` for rejoining `room`: its last seen seq, if any."""
        state = self.rooms.get(room)
        return None if state is None else state.last_seq

    def resume_rev(self, room: str) -> int | None:
        """The `changed_since` for rejoining `room`: its highest rev seen, if any."""
        state = self.rooms.get(room)
        return None if state is None else state.last_rev

    def live(self, message: ChatMessage) -> list[ChatMessage]:
        """A live `message` arrived: what to deliver now (maybe nothing)."""
        state = self.rooms.get(message.room)
        if state is None:
            return [message]
        if state.catching_up:
            state.waiting.append(message)
            return []
        return self._accept(state, [message])

    def replayed(
        self, room: str, messages: list[ChatMessage], more: bool
    ) -> list[ChatMessage | Change]:
        """A history page that continues the room's stream (a join's replay or `after` page).

        While `more` is true the room keeps catching up, and the caller asks for
        the next page `after` `since(room)`. The last page releases the buffer.
        """
        state = self.joined(room)
        accepted = self._accept(state, messages)
        delivered: list[ChatMessage | Change] = [*accepted]
        if not delivered and not messages and state.last_seq is None:
            state.last_seq = 0
        if more:
            state.catching_up = True
            return delivered
        state.catching_up = False
        waiting, state.waiting = state.waiting, []
        return delivered + self._accept(state, waiting)

    def live_change(self, change: Change) -> list[ChatMessage | Change]:
        """A live change event: deliver it now, hold it (catching up) or drop it (seen)."""
        state = self.rooms.get(change.room)
        if state is None:
            return [change]
        if state.catching_up:
            state.waiting.append(change)
            return []
        return self._accept(state, [change])

    def resumed(
        self, room: str, pages: list[ChatMessage]
    ) -> tuple[list[ChatMessage], list[ChatMessage], list[ChatMessage | Change]]:
        """A `changed_since` replay is complete (every page of it, in rev order).

        Returns the new messages (above the last seq, in seq order), the current
        state of older messages that changed (each once, in rev order; the caller
        delivers these first), and what
        waited meanwhile (messages and changes not already covered, in arrival order).
        """
        state = self.joined(room)
        latest: dict[int, ChatMessage] = {}
        for message in pages:
            latest.pop(message.seq, None)
            latest[message.seq] = message  # a later page's state wins; order by its rev
        last = state.last_seq or 0
        fresh = sorted((m for m in latest.values() if m.seq > last), key=_seq)
        changed = [m for m in latest.values() if m.seq <= last]
        delivered: list[ChatMessage] = []
        for message in fresh:
            state.last_seq = message.seq
            delivered.append(message)
        for message in pages:
            if message.rev is not None:
                state.last_rev = max(state.last_rev or 0, message.rev)
        state.catching_up = False
        waiting, state.waiting = state.waiting, []
        return delivered, changed, self._accept(state, waiting)

    def start_catch_up(self, room: str) -> None:
        """A rejoin is under way: hold live messages until its replay is in."""
        self.joined(room).catching_up = True

    @staticmethod
    def _accept(state: RoomState, messages: list[M]) -> list[M]:
        fresh: list[M] = []
        for message in messages:
            rev = message.rev
            if isinstance(message, ChatMessage):
                if state.last_seq is not None and message.seq <= state.last_seq:
                    continue
                state.last_seq = message.seq
            elif state.last_rev is not None and rev is not None and rev <= state.last_rev:
                continue
            if rev is not None and (state.last_rev is None or rev > state.last_rev):
                state.last_rev = rev
            fresh.append(message)
        return fresh


M = TypeVar("M", ChatMessage, ChatMessage | Change)


def _seq(message: ChatMessage) -> int:
    return message.seq
