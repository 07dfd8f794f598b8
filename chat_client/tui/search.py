"""Reading a search line and marking what matched, with no Textual and no I/O.

`/search WORDS [in:#room] [from:nick]`: the filters are taken out of the words
and the rest goes to the server as the query. `matches` finds the spans of a
hit's text to highlight: each word of the query (without quotes; `word*` as a
prefix), case-insensitively, at the start of a word, as the server's index
matches them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["SearchRequest", "matches", "parse_search"]


@dataclass(frozen=True, slots=True)
class SearchRequest:
    query: str
    room: str | None = None
    sender: str | None = None


def parse_search(line: str) -> SearchRequest:
    """The query and filters of what follows `/search` (raises ValueError if no words)."""
    room: str | None = None
    sender: str | None = None
    words: list[str] = []
    for word in line.split():
        lower = word.lower()
        if lower.startswith("in:") and len(word) > 3:
            room = word[3:].removeprefix("#").lower()
        elif lower.startswith("from:") and len(word) > 5:
            sender = word[5:]
        else:
            words.append(word)
    if not words:
        raise ValueError("usage: /search WORDS [in:#room] [from:nick]")
    return SearchRequest(" ".join(words), room, sender)


def _terms(query: str) -> list[tuple[str, bool]]:
    """The words to mark: (text, is a prefix)."""
    terms: list[tuple[str, bool]] = []
    for word in re.findall(r"\w+\*?", query):
        prefix = word.endswith("*")
        word = word.rstrip("*")
        if word and word.upper() not in ("AND", "OR", "NOT", "NEAR"):
            terms.append((word, prefix))
    return terms


def matches(text: str, query: str) -> list[tuple[int, int]]:
    """Spans of `text` that match a word of `query`, in order, not overlapping."""
    spans: list[tuple[int, int]] = []
    for word, prefix in _terms(query):
        tail = r"\w*" if prefix else r"(?!\w)"
        pattern = re.compile(rf"(?<!\w){re.escape(word)}{tail}", re.IGNORECASE)
        spans.extend(found.span() for found in pattern.finditer(text))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
