"""Search: what a typed query means, and the interface a store's search index offers.

A query is what a person typed. `parse_query` turns it into terms: words (every
one must match), `"phrases"` (their words in that order) and `word*` prefixes.
Nothing else has a meaning: FTS5 operators (`AND`, `OR`, `NOT`, `NEAR(`, `col:`,
`^`, brackets, a lone `*`) are words like any other, or separators when they are
punctuation. Words are folded the way SQLite's `unicode61 remove_diacritics 2`
tokenizer folds them (case and accents dropped; letters, digits and private-use
characters make words, everything else separates them), so the in-memory scan
and the FTS5 index agree on what matches.

Order: newest first, by (ts, room, seq); a page's `cursor` is the position of its
last hit, and the next page starts below it. `SearchIndex` is what a store
implements (`MemoryStore` scans, `SqliteStore` has an FTS5 index); a store without
can search is also a `SearchIndex` (see `index_of`); for one that is not,
`search` is answered `unavailable`.
"""

from __future__ import annotations

import abc
import base64
import binascii
import re
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .store import MemoryStore, Store, StoredMessage

__all__ = [
    "ScanIndex",
    "SearchCursor",
    "SearchIndex",
    "SearchPage",
    "Term",
    "fold",
    "index_of",
    "matches",
    "parse_query",
    "to_fts5",
    "words",
]


@dataclass(frozen=True, slots=True)
class Term:
    """One thing every hit must hold: a word, a prefix (`word*`) or a phrase (several words)."""

    words: tuple[str, ...]  # folded
    prefix: bool = False  # the last word is a prefix

    @property
    def phrase(self) -> bool:
        return len(self.words) > 1


def _is_word_char(char: str) -> bool:
    category = unicodedata.category(char)
    return category[0] in "LN" or category == "Co"


def fold(text: str) -> str:
    """Lower case without diacritics (as `remove_diacritics 2` does, near enough)."""
    decomposed = unicodedata.normalize("NFD", text.lower())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


_SPLIT = re.compile(r"\s+")


def words(text: str) -> list[str]:
    """The folded words of `text`: runs of letters, digits and private-use characters."""
    found: list[str] = []
    current: list[str] = []
    for char in fold(text):
        if _is_word_char(char):
            current.append(char)
        elif current:
            found.append("".join(current))
            current = []
    if current:
        found.append("".join(current))
    return found


def parse_query(query: str) -> list[Term]:
    """The terms of a typed query (possibly none: a query of punctuation matches nothing).

    `"..."` is a phrase (an unclosed quote runs to the end); outside quotes each
    word is a term, and a `*` right after a word makes it a prefix. Inside a
    phrase, a `*` right after its last word makes that word a prefix too.
    """
    terms: list[Term] = []
    parts = query.split('"')
    for index, part in enumerate(parts):
        if index % 2 == 1:  # inside quotes
            found = words(part)
            if found:
                terms.append(Term(tuple(found), prefix=_star_after_word(part)))
            continue
        for chunk in _SPLIT.split(part):
            found = words(chunk)
            for position, word in enumerate(found):
                last = position == len(found) - 1
                terms.append(Term((word,), prefix=last and _star_after_word(chunk)))
    return _unique(terms)


def _star_after_word(chunk: str) -> bool:
    """A chunk (or phrase) like `deplo*`: stars right after a word, nothing after them."""
    stripped = chunk.rstrip()
    if not stripped.endswith("*"):
        return False
    body = stripped.rstrip("*")
    return bool(body) and bool(words(body[-1]))


def _unique(terms: Iterable[Term]) -> list[Term]:
    return list(dict.fromkeys(terms))


def _quoted(word: str) -> str:
    return '"' + word.replace('"', '""') + '"'


def to_fts5(terms: list[Term]) -> str:
    """An FTS5 MATCH expression holding exactly `terms`: every word a quoted string.

    Quoted strings are never operators, so nothing typed changes the query's shape.
    A phrase is its words in one string; a prefix is a string followed by `*`.
    """
    parts = []
    for term in terms:
        text = _quoted(" ".join(term.words))
        parts.append(text + " *" if term.prefix else text)
    return " AND ".join(parts)


def matches(terms: list[Term], text: str) -> bool:
    """Whether `text` holds every term (the scan's rule; the FTS5 index applies the same)."""
    if not terms:
        return False
    found = words(text)
    return all(_holds(term, found) for term in terms)


def _holds(term: Term, found: list[str]) -> bool:
    size = len(term.words)
    for start in range(len(found) - size + 1):
        window = found[start : start + size]
        if window[:-1] != list(term.words[:-1]):
            continue
        last, wanted = window[-1], term.words[-1]
        if last == wanted or (term.prefix and last.startswith(wanted)):
            return True
    return False


@dataclass(frozen=True, slots=True, order=True)
class SearchCursor:
    """Where a page stopped: its last hit's position in (ts, room, seq) order."""

    ts_ms: int
    room: str
    seq: int

    def encode(self) -> str:
        raw = f"{self.ts_ms}:{self.seq}:{self.room}".encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, text: str) -> SearchCursor | None:
        """The cursor `text` names, or None when it is not one of ours."""
        try:
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)).decode()
            ts, seq, room = raw.split(":", 2)
            return cls(int(ts), room, int(seq))
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None

    @classmethod
    def of(cls, message: StoredMessage) -> SearchCursor:
        return cls(message.ts_ms, message.room, message.seq)


@dataclass(frozen=True, slots=True)
class SearchPage:
    """Hits newest first; `more` says older ones exist (then `cursor` is the last hit's)."""

    messages: list[StoredMessage]
    more: bool

    @property
    def cursor(self) -> SearchCursor | None:
        return SearchCursor.of(self.messages[-1]) if self.more and self.messages else None


class SearchIndex(abc.ABC):
    """What a store offers for `search`: room messages matching terms, newest first."""

    @abc.abstractmethod
    async def search(
        self,
        terms: list[Term],
        rooms: list[str] | None,
        sender: str | None,
        limit: int,
        before: SearchCursor | None,
    ) -> SearchPage:
        """Up to `limit` hits below `before`, in `rooms` (None: every room), by `sender`.

        `sender` compares without case. Messages with empty text (deleted) never match.
        """


def newest_first(messages: Iterable[StoredMessage]) -> list[StoredMessage]:
    return sorted(messages, key=SearchCursor.of, reverse=True)


def scan(
    messages: Iterable[StoredMessage],
    terms: list[Term],
    sender: str | None,
    limit: int,
    before: SearchCursor | None,
) -> SearchPage:
    """Search by reading every message (the in-memory store and DM conversations)."""
    wanted = sender.lower() if sender is not None else None
    hits = [
        message
        for message in messages
        if (wanted is None or message.sender.lower() == wanted)
        and (before is None or SearchCursor.of(message) < before)
        and matches(terms, message.text)
    ]
    hits = newest_first(hits)
    return SearchPage(hits[:limit], more=len(hits) > limit)


class ScanIndex(SearchIndex):
    """A search index that reads every message (the in-memory store's)."""

    def __init__(self, rooms: Callable[[list[str] | None], list[list[StoredMessage]]]) -> None:
        self._rooms = rooms

    async def search(
        self,
        terms: list[Term],
        rooms: list[str] | None,
        sender: str | None,
        limit: int,
        before: SearchCursor | None,
    ) -> SearchPage:
        every = (message for messages in self._rooms(rooms) for message in messages)
        return scan(every, terms, sender, limit, before)


def index_of(store: Store) -> SearchIndex | None:
    """The search index of `store`: itself when it is one, a scan for the memory store."""
    if isinstance(store, SearchIndex):
        return store
    if isinstance(store, MemoryStore):
        return ScanIndex(store.room_messages)
    return None
