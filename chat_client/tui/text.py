"""Turning untrusted text into something safe to put on a terminal.

Textual's `Content` strips only a few control characters (BEL, BS, VT, FF,
CR) and lets ESC, DEL and C1 through, and a `str` given to most widgets is
parsed as markup. So every string from the network goes through `literal()`:
control characters become visible stand-ins and the result is a `Content`,
which is never parsed as markup.

Two more things are changed for display only, so a line takes the same number
of cells in every terminal as Rich counts (else the border after it moves):
emoji variation selectors (U+FE0F) and skin-tone modifiers are dropped (tmux
3.3 draws `❤️` in 1 cell and `👍🏽` in 4, where Rich, like newer terminals,
counts 2 and 2; without them all agree: `❤` is 1, `👍` is 2), and bidi
embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), which make
a bidi terminal reorder what follows, become stand-ins like control characters.
"""

from __future__ import annotations

import re

from textual.content import Content

__all__ = ["literal", "visible"]

# C0 except \n and \t, DEL, and C1: each shown as a symbol, never sent raw.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


# Emoji presentation selector and the five skin-tone modifiers: widths terminals disagree on.
_AMBIGUOUS_WIDTH = re.compile("[\ufe0f\U0001f3fb-\U0001f3ff]")
_BIDI_CONTROL = re.compile("[\u202a-\u202e\u2066-\u2069]")


def _stand_in(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # ␀ ... ␟
    return "\N{REPLACEMENT CHARACTER}"


def visible(text: str, *, single_line: bool = False) -> str:
    """`text` with control characters replaced (and newlines too when `single_line`)."""
    cleaned = _CONTROL.sub(_stand_in, text)
    if not cleaned.isascii():
        cleaned = _AMBIGUOUS_WIDTH.sub("", cleaned)
        cleaned = _BIDI_CONTROL.sub("\N{REPLACEMENT CHARACTER}", cleaned)
    if single_line:
        cleaned = cleaned.replace("\n", " ").replace("\t", " ")
    return cleaned.expandtabs(4) if "\t" in cleaned else cleaned


def literal(text: str, style: str = "", *, single_line: bool = False) -> Content:
    """`text` as Content shown exactly as written: no markup, no escape sequences."""
    content = Content(visible(text, single_line=single_line))
    return content.stylize(style) if style else content
