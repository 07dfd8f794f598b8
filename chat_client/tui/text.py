"""Turning untrusted text into something safe to put on a terminal.

Textual's `Content` strips only a few control characters (BEL, BS, VT, FF,
CR) and lets ESC, DEL and C1 through, and a `str` given to most widgets is
parsed as markup. So every string from the network goes through `literal()`:
control characters become visible stand-ins and the result is a `Content`,
which is never parsed as markup.
"""

from __future__ import annotations

import re

from textual.content import Content

__all__ = ["literal", "visible"]

# C0 except \n and \t, DEL, and C1: each shown as a symbol, never sent raw.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _stand_in(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # ␀ ... ␟
    return "\N{REPLACEMENT CHARACTER}"


def visible(text: str, *, single_line: bool = False) -> str:
    """`text` with control characters replaced (and newlines too when `single_line`)."""
    cleaned = _CONTROL.sub(_stand_in, text)
    if single_line:
        cleaned = cleaned.replace("\n", " ").replace("\t", " ")
    return cleaned.expandtabs(4) if "\t" in cleaned else cleaned


def literal(text: str, style: str = "", *, single_line: bool = False) -> Content:
    """`text` as Content shown exactly as written: no markup, no escape sequences."""
    content = Content(visible(text, single_line=single_line))
    return content.stylize(style) if style else content
