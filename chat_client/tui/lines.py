"""How each kind of log entry looks: one `Content` per entry, built once."""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass
from datetime import datetime

from textual.content import Content

from .text import literal

__all__ = ["LogEntry", "chat_line", "day_separator", "event_line", "nick_style", "notice_line"]

# Readable on dark and light themes alike; a nick keeps its colour for ever.
NICK_COLOURS = (
    "#e06c75",
    "#98c379",
    "#e5c07b",
    "#61afef",
    "#c678dd",
    "#56b6c2",
    "#d19a66",
    "#be5046",
    "#7ec699",
    "#f78c6c",
    "#82aaff",
    "#c3e88d",
)


@dataclass(slots=True)
class LogEntry:
    """One entry in a conversation's log."""

    content: Content
    seq: int | None = None
    day: str = ""  # local date, for day separators
    mention: bool = False


def nick_style(nick: str) -> str:
    return "bold " + NICK_COLOURS[zlib.crc32(nick.lower().encode()) % len(NICK_COLOURS)]


def local_time(ts: datetime) -> tuple[str, str]:
    local = ts.astimezone()
    return local.strftime("%H:%M"), local.strftime("%A %d %B %Y")


def mentions(text: str, nick: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(nick)}(?![\w-])", text, re.IGNORECASE) is not None


def chat_line(
    ts: datetime, sender: str, text: str, *, action: bool, mention: bool, seq: int | None = None
) -> LogEntry:
    """`12:04 <alice> text`, or `12:04 * alice text` for an action; continuation lines indent."""
    clock, day = local_time(ts)
    body_style = "bold" if mention else ""
    if action:
        head = Content.assemble((clock, "dim"), " * ", (sender, nick_style(sender)), " ")
    else:
        head = Content.assemble((clock, "dim"), " ", (sender, nick_style(sender)), " ")
    indent = " " * min(head.cell_length, 24)
    body = literal(text, body_style).split("\n")
    parts: list[Content] = [head + body[0]]
    parts.extend(Content(indent) + line for line in body[1:])
    content = Content("\n").join(parts)
    if mention:
        content = content.stylize("on #4d3800")
    return LogEntry(content, seq, day, mention)


def event_line(ts: datetime, text: str) -> LogEntry:
    """Joins, parts, nick and topic changes: dim and set apart from chat."""
    clock, day = local_time(ts)
    return LogEntry(
        Content.assemble((clock, "dim"), " ", ("-- ", "dim"), literal(text, "italic dim")), day=day
    )


def notice_line(text: str, style: str = "italic") -> LogEntry:
    """Local feedback: help, errors, command results."""
    return LogEntry(literal(text, style))


def day_separator(day: str) -> LogEntry:
    return LogEntry(Content.assemble(("── " + day + " ──", "bold dim")), day=day)
