"""What the client remembers about each joined room, so a reconnect misses nothing.

Pure bookkeeping, no I/O. For each room it keeps the last `seq` delivered to
the application. A message at or below it is a duplicate and dropped. After a
reconnect the room is *catching up*: the join's replay and any `history after`
pages are delivered in order, while live messages that arrive meanwhile wait
in a buffer, then go through the same filter. So the application sees every
seq once, in order, whatever the network did.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from protocol import ChatMessage

__all__ = ["RoomState", "RoomTracker"]


@dataclass(slots=True)
class RoomState:
    """One joined room."""

    last_seq: int | None = None  # None: nothing seen yet (join without `since`)
    catching_up: bool = False
    waiting: list[ChatMessage] = field(default_factory=list)


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

    def live(self, message: ChatMessage) -> list[ChatMessage]:
        """A live `message` arrived: what to deliver now (maybe nothing)."""
        state = self.rooms.get(message.room)
        if state is None:
            return [message]
        if state.catching_up:
            state.waiting.append(message)
            return []
        return self._accept(state, [message])

    def replayed(self, room: str, messages: list[ChatMessage], more: bool) -> list[ChatMessage]:
        """A history page that continues the room's stream (a join's replay or `after` page).

        While `more` is true the room keeps catching up, and the caller asks for
        the next page `after` `since(room)`. The last page releases the buffer.
        """
        state = self.joined(room)
        delivered = self._accept(state, messages)
        if not delivered and not messages and state.last_seq is None:
            state.last_seq = 0
        if more:
            state.catching_up = True
            return delivered
        state.catching_up = False
        waiting, state.waiting = state.waiting, []
        return delivered + self._accept(state, waiting)

    def start_catch_up(self, room: str) -> None:
        """A rejoin is under way: hold live messages until its replay is in."""
        self.joined(room).catching_up = True

    @staticmethod
    def _accept(state: RoomState, messages: list[ChatMessage]) -> list[ChatMessage]:
        fresh: list[ChatMessage] = []
        for message in messages:
            if state.last_seq is not None and message.seq <= state.last_seq:
                continue
            state.last_seq = message.seq
            fresh.append(message)
        return fresh
