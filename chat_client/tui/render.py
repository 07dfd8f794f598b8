"""How an `Entry` looks: `Content` lines for a given width, built from its data.

Every string that came from the network (authors, text) goes through
`literal()`. Wrapped lines hang under the start of the text, not under the
timestamp, and web addresses become terminal hyperlinks (OSC 8). A reply has
a one-line quote of its original above it, reactions are counts under the
message, an edited message says "(edited)" and a deleted one is a grey
placeholder.
"""

from __future__ import annotations

import re
import zlib
from datetime import date

from textual.content import Content
from textual.style import Style

from .entries import Entry, Kind
from .text import literal

__all__ = ["READ_LINE", "day_line", "entry_lines", "nick_style", "read_line"]

# Two palettes of distinct hues, one readable on dark backgrounds, one on light.
DARK_NICKS = (
    "#e06c75", "#98c379", "#e5c07b", "#61afef", "#c678dd", "#56b6c2", "#d19a66", "#ff8fa3",
    "#7ec699", "#f78c6c", "#82aaff", "#c3e88d", "#ffcb6b", "#89ddff", "#f07178", "#b2ccd6",
)  # fmt: skip
LIGHT_NICKS = (
    "#a8323e", "#3a7d1e", "#8a6100", "#1f5fbf", "#7b3aa8", "#117a83", "#a04f0f", "#b0306a",
    "#2e7d5b", "#b8431b", "#3949ab", "#5b7c00", "#8d5a00", "#00699a", "#c0392b", "#4a5d6a",
)  # fmt: skip
URL = re.compile(r"\bhttps?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]")
MAX_INDENT = 24


def nick_style(nick: str, *, dark: bool = True) -> str:
    palette = DARK_NICKS if dark else LIGHT_NICKS
    return "bold " + palette[zlib.crc32(nick.lower().encode()) % len(palette)]


def day_line(day: date) -> Content:
    return literal("── " + day.strftime("%A %d %B %Y") + " ──", "bold dim")


READ_LINE = " read up to here "


def read_line(width: int) -> Content:
    """The line under the last message read: everything below it is new."""
    side = max(2, (width - len(READ_LINE)) // 2)
    return Content.styled("─" * side + READ_LINE + "─" * side, "bold red").truncate(width)


def _clock(entry: Entry) -> str:
    local = entry.local
    return f"{local.hour:02}:{local.minute:02}" if local is not None else ""


def _with_links(content: Content) -> Content:
    for found in URL.finditer(content.plain):
        content = content.stylize(Style(link=found.group(), underline=True), *found.span())
    return content


def _parts(entry: Entry, dark: bool) -> tuple[Content, Content]:
    """The head (time and author) and the body of an entry."""
    clock = (_clock(entry), "dim") if entry.ts else ""
    kind = entry.kind
    if kind is Kind.CHAT or kind is Kind.ACTION:
        body_style = "bold" if entry.mention else ""
        author = literal(entry.author, nick_style(entry.author, dark=dark), single_line=True)
        star = "* " if kind is Kind.ACTION else ""
        head = Content.assemble(clock, " " if clock else "", star, author, " ")
    elif kind is Kind.EVENT:
        body_style = "italic dim"
        head = Content.assemble(clock, " " if clock else "", ("-- ", "dim"))
    elif kind is Kind.ERROR:
        body_style = "bold red"
        head = Content.assemble(clock, " " if clock else "")
    elif kind is Kind.MARK:
        return Content(""), literal(f"── {entry.text} at {_clock(entry)} ──", "bold dim")
    else:
        body_style = "italic"
        head = Content("")
    if entry.deleted:
        return head, Content.styled("message deleted", "italic #808080")
    body = literal(entry.text, body_style)
    if entry.file is not None:
        gone = " (expired)" if entry.file.expired else "  (F4 or /download saves it)"
        body = Content.assemble("shared ", body, (gone, "dim italic"))
    elif "://" in entry.text:
        body = _with_links(body)
    if entry.edited:
        body = body + Content.styled(" (edited)", "dim")
    if entry.pending:
        body = body.stylize("dim") + Content.styled("  sending…", "dim italic")
    elif entry.failed:
        body = body.stylize("dim strike")
    return head, body


def entry_lines(entry: Entry, width: int, *, dark: bool = True) -> list[Content]:
    """`entry` wrapped to `width` cells; continuation lines hang under the text."""
    width = max(width, 10)
    head, body = _parts(entry, dark)
    text = body.plain
    if "\n" not in text and len(text) + head.cell_length < width and text.isascii():
        lines = [head + body]  # the common case: one short line, nothing to wrap
    else:
        lines = _wrapped(head, body, width)
    if entry.quote or entry.reactions:
        indent = Content(" " * min(head.cell_length, MAX_INDENT, width // 2))
        if entry.quote:
            quote = literal("↳ " + entry.quote, "dim italic", single_line=True)
            lines.insert(0, (indent + quote).truncate(width, ellipsis=True))
        if entry.reactions:
            lines.extend(_reaction_lines(entry, indent, width))
    if entry.mention:
        lines = [line.stylize("on #4d3800" if dark else "on #fff1c2") for line in lines]
    if entry.selected:
        lines = [line.stylize("on #1f3a5f" if dark else "on #cfe3ff") for line in lines]
    return lines


def _reaction_lines(entry: Entry, indent: Content, width: int) -> list[Content]:
    """Compact counts under the message, `👍 2  🎉 1`; our own reactions highlighted."""
    parts: list[Content] = []
    for emoji, nicks in (entry.reactions or {}).items():
        if nicks:
            style = "bold reverse" if emoji in entry.mine else ""
            parts.append(literal(f" {emoji} {len(nicks)} ", style, single_line=True))
    if not parts:
        return []
    row = Content(" ").join(parts)
    return [indent + line for line in row.wrap(max(width - indent.cell_length, 8))]


def _wrapped(head: Content, body: Content, width: int) -> list[Content]:
    indent = min(head.cell_length, MAX_INDENT, width // 2)
    lines: list[Content] = []
    for number, paragraph in enumerate(body.split("\n", allow_blank=True)):
        first = head if number == 0 else Content(" " * indent)
        room = width - (head.cell_length if number == 0 else indent)
        if room < 8:  # too narrow to hang: wrap under everything
            lines.extend((first + paragraph).wrap(width))
            continue
        wrapped = paragraph.wrap(room) or [Content("")]
        lines.append(first + wrapped[0])
        lines.extend(Content(" " * indent) + rest for rest in wrapped[1:])
    return lines
