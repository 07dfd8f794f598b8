"""`DmTracker`: the pure seq bookkeeping of stored DM conversations (version 2).

A DM between two accounts carries `seq`, per conversation, from 1. The tracker
remembers which seqs of each conversation were delivered, so a DM is handed to
the program once whether it came live, as an offline DM after `welcome`, or in
the catch-up a reconnect asks for (`history {with, after: since}`). Memory per
conversation stays small: every seq up to `floor` was seen; only the few seen
above it (out of order) are kept in a set.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["DmTracker"]


@dataclass(slots=True)
class _Conversation:
    floor: int = 0  # every seq up to here was delivered
    above: set[int] = field(default_factory=set)  # delivered seqs above the floor


class DmTracker:
    """Stored DM seqs delivered, per conversation (keyed by the other nick, any case)."""

    def __init__(self) -> None:
        self._conversations: dict[str, _Conversation] = {}

    def deliver(self, other: str, seq: int) -> bool:
        """Record `seq` of the conversation with `other`; False when it was delivered already."""
        conversation = self._conversations.setdefault(other.lower(), _Conversation())
        if seq <= conversation.floor or seq in conversation.above:
            return False
        conversation.above.add(seq)
        while conversation.floor + 1 in conversation.above:
            conversation.floor += 1
            conversation.above.discard(conversation.floor)
        return True

    def since(self, other: str) -> int:
        """The seq to catch up after: everything up to it was delivered."""
        conversation = self._conversations.get(other.lower())
        return conversation.floor if conversation else 0

    @property
    def conversations(self) -> list[str]:
        return list(self._conversations)
