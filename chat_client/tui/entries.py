"""One line of a conversation's log, as data: who, what, when, which seq.

Entries keep the facts, not their rendering, so one entry can be drawn again
(a pending line once acked, an edit, a delete, a reaction). No Textual here.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum

from protocol import FileInfo

__all__ = ["Entry", "Kind", "mentions"]

_ids = itertools.count(1)


class Kind(Enum):
    CHAT = "chat"  # a room message or a DM
    ACTION = "action"  # /me
    EVENT = "event"  # joins, parts, nick and topic changes
    NOTICE = "notice"  # local feedback: help, command results
    ERROR = "error"  # local feedback that something failed
    MARK = "mark"  # a line the user asked for, e.g. "log cleared"


@dataclass(slots=True, eq=False)
class Entry:
    """One log entry; `id` is unique for the life of the process."""

    kind: Kind
    text: str
    ts: datetime | None = None
    author: str = ""
    seq: int | None = None
    mention: bool = False
    pending: bool = False  # typed, not yet acknowledged by the server
    failed: bool = False  # the server refused it or it could not be sent
    file: FileInfo | None = None  # the file the message shares
    reply_to: int | None = None  # the seq this message answers
    quote: str = ""  # one line of the original ("bob: text"), shown above a reply
    edited: bool = False
    deleted: bool = False  # shown as a grey placeholder; `text` is then ""
    reactions: dict[str, list[str]] | None = None  # emoji -> nicks, in the order they came
    mine: frozenset[str] = frozenset()  # the emoji of `reactions` that are our own
    selected: bool = False  # the message the keys act on
    id: int = field(default_factory=lambda: next(_ids))
    local: datetime | None = field(default=None, init=False, repr=False)  # ts in local time
    day: date | None = field(default=None, init=False, repr=False)  # for day separators

    def __post_init__(self) -> None:
        if self.ts is not None:
            self.local = self.ts.astimezone()
            self.day = self.local.date()

    @property
    def is_message(self) -> bool:
        return self.kind in (Kind.CHAT, Kind.ACTION)


def mentions(text: str, nick: str) -> bool:
    """Does `text` name `nick` as a word (case-insensitive; `malice` is not `alice`)?"""
    if not nick:
        return False
    return re.search(rf"(?<![\w-]){re.escape(nick)}(?![\w-])", text, re.IGNORECASE) is not None
