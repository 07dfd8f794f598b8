"""Alt+digit as the keys they are.

Textual's input parser turns ESC followed by a digit (what a terminal sends for
Alt+1 ... Alt+9) into the characters macOS types with Option+digit (`¡™£¢∞§¶•ª`),
so Alt+1 would insert `¡`. The chat client wants irssi's and weechat's keys:
dropping those nine entries makes the parser report `alt+1` ... `alt+9` instead.
"""

from __future__ import annotations

from textual import _ansi_sequences

__all__ = ["use_alt_digits"]


def use_alt_digits() -> None:
    for digit in "0123456789":
        _ansi_sequences.ANSI_SEQUENCES_KEYS.pop(f"\x1b{digit}", None)  # type: ignore[attr-defined]
