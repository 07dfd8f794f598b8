"""Says waiting for their ack, across reconnects: which to send, which the server has.

Pure bookkeeping, no I/O. A say is sent at most once per connection. When a
connection ends before its ack, the say is either already known to be stored
(its message came back live: `seen_seq`), or it is marked `sent_before_drop`
and, after the rejoin, matched against the replayed history by text and
action among our own messages; what the replay does not hold is sent again.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass

from protocol import ChatMessage

__all__ = ["PendingSay", "SayBook"]


@dataclass(slots=True)
class PendingSay:
    request_id: str
    room: str
    text: str
    action: bool
    sent: bool = False  # on the current connection
    reply_to: int | None = None  # version 2: the seq it answers
    sent_before_drop: bool = False  # its ack may have been lost in a drop
    seen_seq: int | None = None  # its message came back before the ack did

    def matches(self, message: ChatMessage) -> bool:
        return (self.room, self.text, self.action) == (message.room, message.text, message.action)


class SayBook:
    """Every say not yet acknowledged, in the order they were made."""

    def __init__(self) -> None:
        self._says: dict[str, PendingSay] = {}

    def add(self, say: PendingSay) -> None:
        self._says[say.request_id] = say

    def pop(self, request_id: str) -> PendingSay | None:
        return self._says.pop(request_id, None)

    def clear(self) -> list[str]:
        """Forget every say; return their request ids."""
        ids = list(self._says)
        self._says.clear()
        return ids

    def unsent(self, room: str) -> list[PendingSay]:
        return [say for say in self._says.values() if say.room == room and not say.sent]

    def unsent_outside(self, rooms: Container[str]) -> list[PendingSay]:
        """Unsent says to rooms no rejoin will release (the server decides about them)."""
        return [s for s in self._says.values() if not s.sent and s.room not in rooms]

    def seen_live(self, messages: list[ChatMessage], nick: str) -> None:
        """Own messages delivered live: note them against says still waiting for an ack."""
        for message in messages:
            if message.sender.lower() != nick.lower():
                continue
            for say in self._says.values():
                if say.sent and say.seen_seq is None and say.matches(message):
                    say.seen_seq = message.seq
                    break

    @staticmethod
    def dropped(say: PendingSay) -> int | None:
        """The connection ended before `say`'s ack: its seq if the server has it, else None."""
        if say.seen_seq is None:
            say.sent = False
            say.sent_before_drop = True
        return say.seen_seq

    def stored(self, room: str, replayed: list[ChatMessage], nick: str) -> list[tuple[str, int]]:
        """Says cut off by a drop that the replay of `room` shows stored: (request id, seq)."""
        mine = [m for m in replayed if m.sender.lower() == nick.lower()]
        found: list[tuple[str, int]] = []
        for say in list(self._says.values()):
            if say.room != room or not say.sent_before_drop:
                continue
            say.sent_before_drop = False
            match = next((m for m in mine if say.matches(m)), None)
            if match is not None:
                mine.remove(match)
                found.append((say.request_id, match.seq))
        return found
