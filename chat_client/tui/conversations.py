"""Rooms and DMs as the TUI shows them: bounded logs, unread counts, members.

No widgets here, so it can be read and tested on its own. A room's key is
`#name`, a DM's `@nick`.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .entries import Entry

__all__ = ["MAX_ENTRIES", "Conversation", "Conversations"]

MAX_ENTRIES = 5000  # per conversation: older entries are dropped (and re-fetched on scroll)


@dataclass(slots=True)
class Conversation:
    """One room (`#name`) or direct-message partner (`@nick`)."""

    key: str
    entries: deque[Entry] = field(default_factory=deque)
    unread: int = 0
    mentioned: bool = False
    topic: str = ""
    members: list[str] = field(default_factory=list)
    joined: bool = False  # for a room: our own `joined` came back (else: replay, or away)
    oldest_seq: int | None = None  # older history is fetched `before` this
    older_exhausted: bool = False
    read_seq: int = 0  # messages at or below it were seen
    synced_seq: int = 0  # the read marker as the server has it (version 2 `read`)
    line_seq: int = 0  # where the "read up to here" line is drawn
    ever_joined: bool = False
    absorbing: bool = False  # a first join's backlog: history, not news
    pending: list[Entry] = field(default_factory=list)  # typed, not yet back from the server
    ops: frozenset[str] = frozenset()  # the room's ops, lower case (version 2 `moderation`)
    put_out: str = ""  # we were kicked or banned: why, in plain words (empty: we were not)
    by_seq: dict[int, Entry] = field(default_factory=dict)  # the messages in `entries`
    replies: dict[int, list[Entry]] = field(default_factory=dict)  # seq -> replies shown to it
    gap: Entry | None = None  # the line between a page fetched `around` and the log
    gap_seqs: tuple[int, int] = (0, 0)  # the first and last seq of that gap

    @property
    def is_room(self) -> bool:
        return self.key.startswith("#")

    @property
    def name(self) -> str:
        return self.key[1:]

    @property
    def newest_seq(self) -> int | None:
        for entry in reversed(self.entries):
            if entry.seq is not None:
                return entry.seq
        return None

    def append(self, entry: Entry) -> bool:
        """Add `entry` at the end; False if it repeats a seq already shown."""
        if entry.seq is not None:
            newest = self.newest_seq
            if newest is not None and entry.seq <= newest:
                return False
            if self.oldest_seq is None:
                self.oldest_seq = entry.seq
        self.entries.append(entry)
        self._index(entry)
        while len(self.entries) > MAX_ENTRIES:
            dropped = self.entries.popleft()
            if dropped is self.gap:
                self.gap = None
            if dropped.seq is not None:
                self.older_exhausted = False  # what falls off can be fetched again
                self.oldest_seq = dropped.seq + 1
                self._unindex(dropped)
        return True

    def _index(self, entry: Entry) -> None:
        if entry.seq is not None and entry.is_message:
            self.by_seq[entry.seq] = entry
            if entry.reply_to is not None:
                self.replies.setdefault(entry.reply_to, []).append(entry)

    def _unindex(self, entry: Entry) -> None:
        if entry.seq is not None and self.by_seq.get(entry.seq) is entry:
            del self.by_seq[entry.seq]
            self.replies.pop(entry.seq, None)
            if entry.reply_to is not None:
                answers = self.replies.get(entry.reply_to, [])
                if entry in answers:
                    answers.remove(entry)

    def find(self, seq: int) -> Entry | None:
        """The message `seq` if it is in `entries`."""
        return self.by_seq.get(seq)

    def replies_to(self, seq: int) -> list[Entry]:
        """The replies to message `seq` that are in `entries`."""
        return [e for e in self.replies.get(seq, ()) if self.by_seq.get(e.seq or 0) is e]

    def prepend(self, older: Iterable[Entry]) -> list[Entry]:
        """Put older entries at the start (oldest first in `older`); return those added."""
        floor = self.oldest_seq
        fresh = [e for e in older if e.seq is None or floor is None or e.seq < floor]
        room = MAX_ENTRIES - len(self.entries)
        fresh = fresh[-room:] if room > 0 else []
        self.entries.extendleft(reversed(fresh))
        for entry in fresh:
            self._index(entry)
        seqs = [e.seq for e in fresh if e.seq is not None]
        if seqs:
            self.oldest_seq = min(seqs)
        return fresh

    def open_gap(self, line: Entry, first: int, last: int) -> None:
        """`line` (already in `entries`) stands for messages `first`..`last`, not loaded."""
        self.gap, self.gap_seqs = line, (first, last)

    def fill_gap(self, messages: Iterable[Entry], *, ends: bool) -> list[Entry]:
        """Put `messages` (oldest first) into the gap, after what is above it, and
        return those added (fewer when the log is full). The gap closes when it is
        filled, or when `ends` (nothing further exists) and all of them fitted."""
        if self.gap is None:
            return []
        first, last = self.gap_seqs
        inside = [e for e in messages if e.seq is not None and first <= e.seq <= last]
        fresh = inside[: max(0, MAX_ENTRIES - len(self.entries))]
        at = self.entries.index(self.gap)
        for offset, entry in enumerate(fresh):
            self.entries.insert(at + offset, entry)
            self._index(entry)
        start = (fresh[-1].seq or first) + 1 if fresh else first
        if len(fresh) == len(inside) and (ends or start > last):
            self.entries.remove(self.gap)
            self.gap = None
        else:
            self.gap_seqs = (start, last)
        return fresh

    def replace_gap_line(self, line: Entry) -> None:
        """Show `line` for what is left of the gap (a new entry: lines are drawn once)."""
        if self.gap is not None:
            self.entries[self.entries.index(self.gap)] = line
            self.gap = line

    def clear(self, mark: Entry) -> None:
        """Empty the log but for `mark`; older history reloads from the newest seq down."""
        newest = self.newest_seq
        self.entries.clear()
        self.gap = None
        self.by_seq.clear()
        self.replies.clear()
        self.entries.append(mark)
        if newest is not None:
            self.oldest_seq = newest + 1
            self.older_exhausted = False

    def set_members(self, nicks: Iterable[str]) -> None:
        """Members sorted case-insensitively, each nick once whatever the server sent."""
        unique = {nick.lower(): nick for nick in nicks}
        self.members = sorted(unique.values(), key=str.lower)

    def has_member(self, nick: str) -> bool:
        return nick.lower() in (m.lower() for m in self.members)

    def recount(self, me: str) -> None:
        """Unread and mention from the entries above `read_seq` (after the marker moved)."""
        fresh = [
            e
            for e in self.entries
            if e.is_message and e.seq is not None and e.seq > self.read_seq
            and e.author.lower() != me.lower()
        ]  # fmt: skip
        self.unread = len(fresh)
        self.mentioned = any(e.mention for e in fresh) or (bool(fresh) and not self.is_room)

    def mark_read(self) -> None:
        self.unread = 0
        self.mentioned = False
        newest = self.newest_seq
        if newest is not None:
            self.read_seq = max(self.read_seq, newest)


class Conversations:
    """Every conversation, in the order they were opened, and which one is in view."""

    def __init__(self) -> None:
        self.by_key: dict[str, Conversation] = {}
        self.current: str | None = None

    def __iter__(self) -> Iterator[Conversation]:
        return iter(list(self.by_key.values()))

    def __contains__(self, key: str) -> bool:
        return key in self.by_key

    def get(self, key: str) -> Conversation:
        found = self.by_key.get(key)
        if found is None:
            found = self.by_key[key] = Conversation(key)
            if self.current is None:
                self.current = key
        return found

    def find_dm(self, nick: str) -> Conversation | None:
        for conversation in self.by_key.values():
            if not conversation.is_room and conversation.name.lower() == nick.lower():
                return conversation
        return None

    def dm(self, nick: str) -> Conversation:
        return self.find_dm(nick) or self.get("@" + nick)

    def remove(self, key: str) -> None:
        keys = list(self.by_key)
        if key not in self.by_key:
            return
        index = keys.index(key)
        del self.by_key[key]
        if self.current == key:
            rest = list(self.by_key)
            self.current = rest[min(index, len(rest) - 1)] if rest else None

    def rename(self, old_key: str, new_key: str) -> None:
        """Give a conversation a new key, keeping its place in the order."""
        if old_key not in self.by_key or old_key == new_key:
            return
        items = [(new_key if k == old_key else k, c) for k, c in self.by_key.items()]
        conversation = self.by_key[old_key]
        conversation.key = new_key
        self.by_key = dict(items)
        if self.current == old_key:
            self.current = new_key

    def show(self, key: str) -> Conversation:
        """Bring `key` into view: its read line goes where reading stopped, then all is read."""
        conversation = self.get(key)
        if self.current != key:
            conversation.line_seq = max(conversation.line_seq, conversation.read_seq)
        self.current = key
        conversation.mark_read()
        return conversation

    def step(self, offset: int) -> str | None:
        keys = list(self.by_key)
        if not keys:
            return None
        index = keys.index(self.current) if self.current in keys else 0
        return keys[(index + offset) % len(keys)]

    def nth(self, number: int) -> str | None:
        """The key of conversation `number` as listed (1 is the first)."""
        keys = list(self.by_key)
        return keys[number - 1] if 0 < number <= len(keys) else None

    def next_active(self) -> str | None:
        """The next conversation with a mention, else with unread lines (Alt+A)."""
        keys = list(self.by_key)
        start = keys.index(self.current) + 1 if self.current in keys else 0
        ordered = keys[start:] + keys[:start]
        for want_mention in (True, False):
            for key in ordered:
                c = self.by_key[key]
                if key != self.current and c.unread and (c.mentioned or not want_mention):
                    return key
        return None
