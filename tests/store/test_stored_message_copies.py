"""`StoredMessage.edit`, `erase` and `react` copy every field a change does not touch."""

from __future__ import annotations

import dataclasses

from chat_server.store import StoredMessage
from protocol import FileInfo

FILE = FileInfo(id="f1", name="a.txt", size=3, sha256="ab" * 32, url="http://h/f1")


def _full() -> StoredMessage:
    """A message with no field left at its default."""
    return StoredMessage(
        room="lobby",
        seq=7,
        sender="alice",
        text="hi",
        action=True,
        ts_ms=1_764_000_000_000,
        file=FILE,
        rev=9,
        reply_to=3,
        edited_ms=1_764_000_000_500,
        deleted=False,
        reactions=(("+1", ("bob",)),),
        author="account:alice",
    )


def test_an_edit_changes_text_rev_and_time_only() -> None:
    before = _full()
    expected = dataclasses.replace(before, text="hello", rev=10, edited_ms=5)
    assert before.edit("hello", 10, 5) == expected


def test_an_erase_keeps_only_what_a_placeholder_shows() -> None:
    before = _full()
    expected = dataclasses.replace(before, text="", rev=10, deleted=True, reactions=(), file=None)
    assert before.erase(10) == expected


def test_a_reaction_changes_reactions_and_rev_only() -> None:
    before = _full()
    expected = dataclasses.replace(before, reactions=(("+1", ("bob", "carol")),), rev=10)
    assert before.react("+1", "carol", False, 10) == expected
    assert before.react("+1", "bob", False, 10) is None  # already there
    assert before.react("+1", "bob", True, 10) == dataclasses.replace(before, reactions=(), rev=10)
