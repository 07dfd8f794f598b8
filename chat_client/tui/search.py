"""Reading a search line and marking what matched, with no Textual and no I/O.

`/search WORDS [in:#room] [from:nick]`: the filters are taken out of the words
and the rest goes to the server as the query. `matches` finds the spans of a
hit's text to highlight: each word of the query (without quotes; `word*` as a
prefix), without regard to case or accents, at the start of a word, as the
server's index matches them.
"""

from __future__ import annotations

import re
import unicodedata
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


def _fold(text: str) -> tuple[str, list[int]]:
    """`text` lower-cased without accents, and for each of its characters the index of
    the character of `text` it came from."""
    folded: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text):
        decomposed = unicodedata.normalize("NFD", char)
        bare = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
        for piece in bare or char:
            folded.append(piece)
            origin.append(index)
    return "".join(folded), origin


def matches(text: str, query: str) -> list[tuple[int, int]]:
    """Spans of `text` that match a word of `query`, in order, not overlapping."""
    folded, origin = _fold(text)
    spans: list[tuple[int, int]] = []
    for word, prefix in _terms(query):
        tail = r"\w*" if prefix else r"(?!\w)"
        pattern = re.compile(rf"(?<!\w){re.escape(_fold(word)[0])}{tail}")
        for found in pattern.finditer(folded):
            start, end = found.span()
            spans.append((origin[start], origin[end - 1] + 1))
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start < merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged
