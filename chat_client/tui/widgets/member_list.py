"""The members of the room in view, on the right; click one to open a DM.

Members who are away (version 2) are dimmed, with their away text after the nick;
the room's ops (version 2 `moderation`) are marked `@`.
"""

from __future__ import annotations

from collections.abc import Mapping

from textual import events
from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ..text import literal

__all__ = ["MemberList"]


class MemberList(OptionList, can_focus=False):
    """One row per nick, cut with an ellipsis rather than wrapped onto more rows."""

    class Chosen(Message):
        def __init__(self, nick: str) -> None:
            super().__init__()
            self.nick = nick

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._nicks: list[str] = []
        self._away: dict[str, str] = {}  # of the nicks shown: lower case -> away text
        self._ops: frozenset[str] = frozenset()  # lower case
        self._width = 0

    def update_members(
        self,
        nicks: list[str],
        away: Mapping[str, str] | None = None,
        ops: frozenset[str] | None = None,
    ) -> None:
        width = self.scrollable_content_region.width
        away = away if away is not None else self._away
        ops = ops if ops is not None else self._ops
        shown_away = {n.lower(): away[n.lower()] for n in nicks if n.lower() in away}
        same = nicks == self._nicks and width == self._width and shown_away == self._away
        if same and ops == self._ops:
            return
        self._nicks, self._width, self._away, self._ops = list(nicks), width, shown_away, ops
        self.clear_options()
        # No ids: a server that lists a nick twice must not be able to crash the list.
        self.add_options(Option(self._row(nick, max(width, 4))) for nick in self._nicks)

    def _row(self, nick: str, width: int) -> Content:
        row = literal(nick, single_line=True)
        if nick.lower() in self._ops:
            row = Content.styled("@", "bold") + row
        text = self._away.get(nick.lower())
        if text is not None:
            row = (row + Content(" ") + literal(text, "italic", single_line=True)).stylize("dim")
        return row.truncate(width, ellipsis=True)

    def is_op(self, nick: str) -> bool:
        """Is `nick` shown as an op (`@`)?"""
        return nick.lower() in self._ops

    def away_text(self, nick: str) -> str | None:
        """The away text shown for `nick` (None: not away)."""
        return self._away.get(nick.lower())

    def on_resize(self, event: events.Resize) -> None:
        self.update_members(self._nicks)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if 0 <= event.option_index < len(self._nicks):
            self.post_message(self.Chosen(self._nicks[event.option_index]))
