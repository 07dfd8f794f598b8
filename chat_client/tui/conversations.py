"""Rooms and DMs as the TUI shows them: bounded logs, unread counts, mentions.

No widgets here, so it can be read and tested on its own.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from .lines import LogEntry, day_separator

__all__ = ["MAX_ENTRIES", "Conversation", "Conversations"]

MAX_ENTRIES = 5000  # per conversation: older entries are dropped (and re-fetched on scroll)


@dataclass(slots=True)
class Conversation:
    """One room (`#name`) or direct-message partner (`@nick`)."""

    key: str
    entries: deque[LogEntry] = field(default_factory=lambda: deque(maxlen=MAX_ENTRIES))
    unread: int = 0
    mentioned: bool = False
    topic: str = ""
    members: list[str] = field(default_factory=list)
    joined: bool = True
    oldest_seq: int | None = None
    older_exhausted: bool = False

    @property
    def is_room(self) -> bool:
        return self.key.startswith("#")

    @property
    def name(self) -> str:
        return self.key[1:]

    def append(self, entry: LogEntry) -> list[LogEntry]:
        """Add `entry` at the end; return what was added (a day separator too, maybe)."""
        added: list[LogEntry] = []
        if entry.day and entry.day != self._last_day():
            added.append(day_separator(entry.day))
        added.append(entry)
        if entry.seq is not None and self.oldest_seq is None:
            self.oldest_seq = entry.seq
        if len(self.entries) + len(added) > MAX_ENTRIES:
            self.older_exhausted = False  # what falls off can be fetched again
        self.entries.extend(added)
        if self.entries and self.entries[0].seq is not None:
            self.oldest_seq = self.entries[0].seq
        return added

    def prepend(self, older: list[LogEntry]) -> int:
        """Add older entries at the start; return how many entries were added."""
        room = MAX_ENTRIES - len(self.entries)
        if room <= 0 or not older:
            return 0
        older = older[-room:]
        with_days: list[LogEntry] = []
        day = ""
        for entry in older:
            if entry.day and entry.day != day:
                with_days.append(day_separator(entry.day))
                day = entry.day
            with_days.append(entry)
        first = self.entries[0] if self.entries else None
        if first is not None and first.content.plain.startswith("── ") and first.day == day:
            self.entries.popleft()  # the separator now sits above the older entries
        self.entries.extendleft(reversed(with_days))
        seqs = [entry.seq for entry in older if entry.seq is not None]
        if seqs:
            self.oldest_seq = min(seqs)
        return len(with_days)

    def _last_day(self) -> str:
        for entry in reversed(self.entries):
            if entry.day:
                return entry.day
        return ""


class Conversations:
    """Every conversation, in the order they were opened, and which one is in view."""

    def __init__(self) -> None:
        self.by_key: dict[str, Conversation] = {}
        self.current: str | None = None

    def get(self, key: str) -> Conversation:
        found = self.by_key.get(key)
        if found is None:
            found = self.by_key[key] = Conversation(key)
            if self.current is None:
                self.current = key
        return found

    def remove(self, key: str) -> None:
        self.by_key.pop(key, None)
        if self.current == key:
            self.current = next(iter(self.by_key), None)

    def show(self, key: str) -> Conversation:
        conversation = self.get(key)
        self.current = key
        conversation.unread = 0
        conversation.mentioned = False
        return conversation

    def step(self, offset: int) -> str | None:
        keys = list(self.by_key)
        if not keys:
            return None
        index = keys.index(self.current) if self.current in keys else 0
        return keys[(index + offset) % len(keys)]

    def in_view(self, key: str) -> bool:
        return self.current == key
